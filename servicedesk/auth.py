"""Roles and the one permission check every view and the API use.

``PERMISSIONS`` is the role matrix for pages and API endpoints; which role may fire which ticket
event lives in the lifecycle table (``lifecycle.EVENTS``), the other half of the same matrix.
"""
import time
from functools import wraps

from flask import abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user, login_fresh

from .errors import DomainError, Forbidden
from .extensions import db, login_manager
from .lifecycle import (COLLECTOR_OVERRIDE_ROLES, EVENTS, LOANER_ROLES, LOANER_STOCK_ROLES,
                        REFUND_ROLES, RELINK_ROLES)
from .models import User

ALL_STAFF = frozenset({"reception", "technician", "manager", "admin"})
# The waiting room's device account (a tablet, a wall screen): in no permission but the three
# pages it shows customers, and in none of the API's (API_PERMISSIONS), whatever token it holds.
KIOSK = "kiosk"


def _firing(*events: str) -> frozenset:
    """The staff roles that may fire all of ``events``: a page that only fires them is open to
    the roles the lifecycle table names, never to more."""
    return frozenset.intersection(ALL_STAFF, *(EVENTS[e].roles for e in events))


PERMISSIONS: dict[str, frozenset] = {
    "home": ALL_STAFF,
    "account.password": ALL_STAFF,  # one's own password (the kiosk's is changed for it)
    "tickets.view": ALL_STAFF,
    "tickets.admit": frozenset({"reception"}),
    "tickets.note": frozenset({"reception", "technician", "manager"}),
    "tickets.print": frozenset({"reception", "technician", "manager"}),
    "visits.view": ALL_STAFF,
    "visits.issue": frozenset({"reception", "manager"}),
    # the kiosk page (take a number), its printed slip and the wall display: the staff's as
    # before, and all the waiting room's device account may open
    "visits.kiosk": frozenset({"reception", "manager", KIOSK}),
    "visits.slip": ALL_STAFF | {KIOSK},
    "visits.call": frozenset({"reception"}),
    "visits.display": ALL_STAFF | {KIOSK},
    "reception.desk": frozenset({"reception", "manager"}),
    "tickets.deliver_desk": frozenset({"reception", "manager"}),
    "tickets.deliver": _firing("deliver"),  # hand a device back (the desk's button)
    # who collects it (servicedesk.pickup): a code texted to the owner, at the desk's request;
    # a manager's confirmation without a code
    "tickets.collector_code": _firing("deliver") | COLLECTOR_OVERRIDE_ROLES,
    "tickets.collector_override": COLLECTOR_OVERRIDE_ROLES,
    "tickets.answer": _firing("approve", "decline"),  # the customer's answer, by phone
    "workbench.view": frozenset({"technician", "manager"}),
    "tickets.claim": frozenset({"technician"}),
    # a manager hands a ticket on; a technician gives their own back (services.workbench)
    "tickets.assign": frozenset({"technician", "manager"}),
    "tickets.refund": REFUND_ROLES,  # money given back after the hand-back
    "tickets.loaner": LOANER_ROLES,  # lend a loaner phone, take it back
    # replace the customer's link (a forwarded SMS, a lost phone): a new one, the old dead
    "tickets.relink": RELINK_ROLES,
    # the loaner phones' page (those out, the branch's own) and keeping that list
    "loaners.view": LOANER_ROLES | LOANER_STOCK_ROLES,
    "loaners.stock": LOANER_STOCK_ROLES,
    "reports.view": frozenset({"manager", "admin"}),
    "reports.followup": frozenset({"manager"}),
    "admin.templates": frozenset({"manager", "admin"}),  # SMS templates and service types
    # staff accounts (DESIGN: the manager's "users"); a manager's reach is narrower
    # (services.admin.STAFF_A_MANAGER_MANAGES): their shop's reception, technicians and kiosks
    "admin.users": frozenset({"manager", "admin"}),
    "admin.manage": frozenset({"admin"}),
}

# The JSON API answers a missing token with 401 and a role without the permission with 403, in
# JSON (never the login page), so its views are not wrapped by ``require``; the permission each
# endpoint needs is declared here, and its blueprint checks it after the token. Together with the
# ``permission`` of the pages this covers every route: tests/test_route_matrix.py fails for a
# route in neither (nor in its short list of public routes).
API_PERMISSIONS: dict[str, str] = {
    "api.issue_visit": "visits.issue",
    "api.call_next_visit": "visits.call",
    "api.get_visit": "visits.view",
    "api.create_ticket": "tickets.admit",  # the lifecycle's roles for "admit"
    "api.list_tickets": "tickets.view",
    "api.get_ticket": "tickets.view",
    "api.fire_event": "tickets.view",  # then the lifecycle's roles for the event fired
    "api.refund": "tickets.refund",
    "api.collector_override": "tickets.collector_override",
    "api.text_pickup_code": "tickets.collector_code",
    "api.replace_link": "tickets.relink",
    "api.lend_loaner": "tickets.loaner",
    "api.return_loaner": "tickets.loaner",
    "api_reports.turnaround": "reports.view",
    "api_reports.costs": "reports.view",
    "api_reports.survey": "reports.view",
    "api_reports.survey_followups": "reports.view",
    "api_reports.set_followup": "reports.followup",
    "api_reports.technicians": "reports.view",
    "api_reports.queue": "reports.view",
    "api_reports.sms": "reports.view",
    "api_reports.takings": "reports.view",
    "api_reports.dashboard": "reports.view",
}


def can(user, action: str) -> bool:
    return bool(user and user.is_authenticated and user.role in PERMISSIONS[action])


def require(action: str, fresh: bool = False):
    """View decorator: the login page for anonymous users, 403 for a role without ``action``.

    ``fresh`` (user and role management, settings) also wants a login typed in this session:
    a session restored from the remember-me cookie, or a bearer token, is sent to the login
    page to confirm the password first (``auth.login`` is the refresh view).
    """
    if action not in PERMISSIONS:
        raise KeyError(action)

    def deco(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not can(current_user, action):
                abort(403)
            if (current_user.password_change_due and action != "account.password"
                    and not g.get("via_token")):
                return _own_password_first()
            if fresh and not login_fresh():
                return login_manager.needs_refresh()
            return view(*args, **kwargs)
        inner.permission = action
        return inner
    return deco


def _own_password_first():
    """A staff page asked for with a password another person set: the page to change it
    instead, nothing done (a form posted is not taken). A fragment htmx polls sends the whole
    page there, not the form into a corner of the screen. (A bearer token's requests go on:
    the token was made for a program, not handed over as the password was.)"""
    from .web.htmx import hx
    target = url_for("auth.own_password")
    if hx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (the scheme in any case, RFC 7235)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    return None


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    # RFC 6750: a 401 names the scheme a client is to authenticate with
    headers = {"WWW-Authenticate": 'Bearer realm="servicedesk"'}


def api_user() -> User:
    """The JSON API's check, before each of its views: the user of the request's bearer token
    (else 401), whose role has the permission ``API_PERMISSIONS`` names for the endpoint (else
    403; an endpoint missing there is refused to everyone). Sets ``g.api_user``."""
    from flask_babel import gettext as _

    from .services.people import user_for_token
    user = user_for_token(bearer_token())
    if user is None:
        raise Unauthorized(_("A valid API token is required (Authorization: Bearer TOKEN)."))
    action = API_PERMISSIONS.get(request.endpoint)
    if action is None or not can(user, action):
        raise Forbidden(_("Your role (%(role)s) may not do this.", role=user.role))
    g.api_user = user
    return user


@login_manager.user_loader
def load_user(session_token: str):
    from sqlalchemy import select
    if session_too_old():
        # logged out; the remember-me cookie, if ticked, starts a new session (Flask-Login
        # asks again), else the login page
        session.pop("_user_id", None)
        session.pop("_fresh", None)
        start_session_clock()
        return None
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    return user if user is not None and user.active else None


def session_too_old() -> bool:
    """Whether this browser's session began (a password typed, or the remember-me cookie)
    more than ``SESSION_MAX_HOURS`` ago. Pages renew a session's cookie, so one in use never
    idles out: a copy of it taken from a shared desk would work as long as it is used. A
    session from before this rule starts counting now."""
    hours = current_app.config.get("SESSION_MAX_HOURS") or 0
    since = session.get("since")
    if not isinstance(since, (int, float)):
        start_session_clock()
        return False
    return hours > 0 and time.time() - since > hours * 3600


def start_session_clock() -> None:
    """A session begins now: a login, or a session restored from the remember-me cookie."""
    session["since"] = int(time.time())


@login_manager.request_loader
def load_user_from_request(req):
    """Staff pages (receipts, slips) also accept the API's bearer token."""
    from .services.people import user_for_token
    raw = bearer_token()
    if raw:
        user = user_for_token(raw)
        g.via_token = user is not None
        return user
    return None


class SessionInterface(SecureCookieSessionInterface):
    """No session cookie for a request authenticated by its bearer token: a client that keeps
    cookies (a script, a spreadsheet's web query) would send it back on its next request, and
    Flask-Login's strong session protection takes a cookie-only session it did not make at a
    login for a stolen one: the next request would be sent to the login page.

    A request for a static file (or for nothing) writes no session cookie either, unless it
    changed the session. Flask renews a permanent session's cookie on every request, with the
    session the request came with: a stylesheet, a font or the favicon the last page asked for
    still on its way when the next answer changed the session (the language picked with
    ``?lang=``, a flash message) set the cookie back to what it was before, and the desk's
    next page came in the other language, or without its message. The same for a fragment htmx
    fetches (the queue board every few seconds) and for JSON a page's script fetches (the
    dashboard's figures every minute): pages renew the session, what a page polls does not, so
    a screen left open no longer keeps its login alive by itself either."""

    def should_set_cookie(self, app, session) -> bool:
        if g.get("via_token"):
            return False
        if not session.modified and (_is_static(request.endpoint) or _polled()):
            return False
        return super().should_set_cookie(app, session)


# Endpoints of files, not pages: the browser fetches them beside a page, not after it.
FILE_ENDPOINTS = frozenset({"static", "main.favicon"})


def _polled() -> bool:
    """A request a page's script makes on its own: an htmx fragment, or JSON asked for by
    ``fetch`` (a page the browser navigates to asks for HTML)."""
    return bool(request.headers.get("HX-Request")) \
        or request.accept_mimetypes.best == "application/json"


def _is_static(endpoint: str | None) -> bool:
    """A static file's endpoint (the app's or a blueprint's), or none at all (a 404)."""
    return endpoint is None or endpoint in FILE_ENDPOINTS or endpoint.endswith(".static")


def _role_labels():
    from flask_babel import lazy_gettext as _l
    return {"reception": _l("Reception"), "technician": _l("Technician"),
            "manager": _l("Manager"), "admin": _l("Administrator"),
            KIOSK: _l("Kiosk / wall display")}


ROLE_LABELS = _role_labels()
