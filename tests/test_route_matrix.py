"""Every route for every role and for anonymous visitors: allowed where the role matrix says,
refused everywhere else.

The routes come from the app's URL map and the rules from ``auth.PERMISSIONS`` (a page's rule is
the ``permission`` its ``require`` decorator sets; the JSON API's are ``auth.API_PERMISSIONS``),
so a route added without a rule fails ``test_every_route_has_a_rule``, and a rule that does not
hold fails the sweep. The only routes without a rule are the short ``PUBLIC`` list below.

"Allowed" means not refused: no 401, no 403, no redirect to the login page (a 4xx from the empty
form or JSON body sent to a POST is fine; the GETs get real objects and must answer 200).
"Refused" means the login page for an anonymous visitor of a page, 401 for the API without a
token, 403 for a logged-in role without the permission.
"""
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from servicedesk.auth import API_PERMISSIONS, PERMISSIONS
from servicedesk.extensions import db
from servicedesk.models import ROLES, ApiToken
from servicedesk.services import reception as reception_service
from servicedesk.services import surveys
from servicedesk.services.people import issue_token
from servicedesk.services.tickets import default_branch

from .conftest import PASSWORD, add_user

# Reachable without a staff login, each for a reason of its own.
PUBLIC = {
    "static": "stylesheets, scripts, fonts",
    "auth.login": "the login form",
    "auth.set_language": "the language switcher, on the login page too",
    "health.healthz": "the supervisor's liveness probe",
    "health.readyz": "the load balancer's readiness probe",
    "public.track": "the customer's tracking page, behind its unguessable token",
    "public.decide": "the customer's answer to an estimate, behind the same token",
    "public.survey": "the customer's survey, behind its own token",
    "public.customer_sms": "the customer stopping (or restarting) the SMS, behind the token",
    "sms.status_callback": "Twilio's delivery reports, checked by their signature",
    "api.openapi": "the API's description (no data)",
    "main.favicon": "the browser's icon, a redirect to a static file",
}
# Any logged-in staff member, whatever the role.
ANY_STAFF = {"auth.logout": "logging out"}

# Old addresses kept for bookmarks: an allowed GET answers with a redirect to the new page.
MOVED = {"tickets.new": "the intake form, now reception's /desk/intake"}
# Addresses that send an allowed visitor on to the right page.
FORWARDS = {"reception.scanned_visit": "the queue slip's QR code: the number's intake or queue",
            "tickets.by_number": "the shelf label's QR code: the ticket of that number"}

ANONYMOUS = "anonymous"
REDIRECTS = (301, 302, 303, 307, 308)


@pytest.fixture
def app_config():
    # The sweep posts empty forms: CSRF is tested in test_security.py, here it would answer
    # 400 before the permission check is reached.
    return {"WTF_CSRF_ENABLED": False}


def permission_of(app, endpoint: str):
    view = app.view_functions[endpoint]
    return getattr(view, "permission", None) or API_PERMISSIONS.get(endpoint)


def routes(app):
    """(endpoint, rule, method) for every route and method, GETs first (the POSTs change
    things), public and any-staff routes left out."""
    found = {(rule.endpoint, rule.rule, method)
             for rule in app.url_map.iter_rules()
             for method in rule.methods - {"HEAD", "OPTIONS"}
             if rule.endpoint not in PUBLIC and rule.endpoint not in ANY_STAFF}
    return sorted(found, key=lambda r: (r[2] != "GET", r[1], r[2]))


def is_api(rule: str) -> bool:
    return rule.startswith("/api/")


# --- every route has a rule ------------------------------------------------------------------

def test_every_route_has_a_rule(app):
    missing, unknown, both = [], [], []
    for rule in app.url_map.iter_rules():
        action = permission_of(app, rule.endpoint)
        listed = rule.endpoint in PUBLIC or rule.endpoint in ANY_STAFF
        if action is None and not listed:
            missing.append(f"{rule.endpoint} {rule.rule}")
        elif action is not None and action not in PERMISSIONS:
            unknown.append(f"{rule.endpoint}: {action}")
        elif action is not None and listed:
            both.append(rule.endpoint)
    assert not missing, ("routes in neither the role matrix (auth.PERMISSIONS through require() "
                         "or auth.API_PERMISSIONS) nor this file's PUBLIC list", missing)
    assert not unknown, unknown
    assert not both, both


def test_the_matrix_names_only_real_routes_and_every_permission_guards_one(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(API_PERMISSIONS) <= endpoints, set(API_PERMISSIONS) - endpoints
    assert set(PUBLIC) | set(ANY_STAFF) <= endpoints
    used = {permission_of(app, e) for e in endpoints} - {None}
    assert used == set(PERMISSIONS), set(PERMISSIONS) ^ used
    assert all(set(roles) <= set(ROLES) for roles in PERMISSIONS.values())


def test_a_new_route_without_a_rule_is_caught(app):
    """The guard above is not vacuous: a page added without require() fails it."""
    from flask import Blueprint

    from servicedesk import create_app
    other = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "x"})
    bp = Blueprint("forgotten", __name__)
    bp.add_url_rule("/forgotten", "page", lambda: "secret")
    other.register_blueprint(bp)
    unguarded = [r.endpoint for r in other.url_map.iter_rules()
                 if permission_of(other, r.endpoint) is None
                 and r.endpoint not in PUBLIC and r.endpoint not in ANY_STAFF]
    assert unguarded == ["forgotten.page"]


# --- the sweep ---------------------------------------------------------------------------------

class Visitor:
    """One identity's browser (session cookie) and API client (bearer token); each request
    in its own app context, as in production."""

    def __init__(self, app, user=None):
        self.app = app
        self.client = app.test_client()
        self.token = None
        if user is not None:
            resp = self.open("POST", "/login", data={"username": user.username,
                                                     "password": PASSWORD})
            assert resp.status_code == 302, f"{user.username} could not log in"
            with app.app_context():
                self.token = issue_token(db.session.merge(user), "route matrix")

    def open(self, method, url, **kw):
        with self.app.app_context():
            return self.client.open(url, method=method, **kw)

    def request(self, method, url):
        if is_api(url):
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            return self.open(method, url, headers=headers,
                             json={} if method != "GET" else None)
        return self.open(method, url, data={} if method != "GET" else None)


@pytest.fixture
def everyone(users):
    """One account per role (the ``users`` fixture's staff, and the waiting room's kiosk)."""
    return {**users, "kiosk": add_user("kiosk1", "kiosk")}


@pytest.fixture
def world(app, users, make_ticket):
    """A real object for every URL parameter: a ticket handed back and surveyed, a visit in
    the queue, a user (not one of the sweep's) with an API token, a branch, a service type,
    an SMS template, a loaner phone, a webhook with a failed delivery and a static file."""
    ticket = make_ticket("delivered")
    response = surveys.submit_survey(ticket.id, {"csat": 2, "nps": 3, "comment": "slow"})
    visit = reception_service.issue_number(default_branch(), "repair")
    subject = add_user("subject", "reception")
    issue_token(subject, "subject's")
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == subject.id))
    from servicedesk.services import loaners
    phone = loaners.save_phone(users["admin"], None, {
        "branch_id": default_branch().id, "label": "A1", "model": "Nokia 105"})
    from servicedesk.models import WebhookDelivery
    from servicedesk.services import webhooks
    hook, _secret = webhooks.save_endpoint(None, name="books", url="https://books.example/h",
                                           events=None, every_event=True, active=False)
    delivery = WebhookDelivery(uid="0" * 36, endpoint_id=hook.id, ticket_id=ticket.id,
                               event="deliver", body="{}", status="failed")
    db.session.add(delivery)
    from servicedesk.models import TicketSignature
    db.session.add(TicketSignature(ticket_id=ticket.id, moment="intake",  # drawn on screen
                                   event_id=ticket.events[0].id, image=b"\x89PNG",
                                   sha256="0" * 64))
    db.session.commit()
    return {"webhook_id": hook.id, "delivery_id": delivery.id,
            "loaner_id": phone.id, "ticket_id": ticket.id, "visit_id": visit.id, "user_id": subject.id,
            "token_id": token_id, "branch_id": default_branch().id, "code": "repair",
            "event": "admit", "language": "fa", "response_id": response.id,
            "token": ticket.public_token, "decision": "approve", "filename": "css/app.css",
            "number": ticket.number, "notification_id": ticket.notifications[0].id,
            "moment": "intake"}


def fill(rule: str, values: dict) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(values[m.group(1)]), rule)


def refusal(resp):
    """How a request was refused: "401", "403", "login" (sent to the login page) or None."""
    if resp.status_code in (401, 403):
        return str(resp.status_code)
    if resp.status_code in REDIRECTS and urlsplit(resp.location or "").path == "/login":
        return "login"
    return None


@pytest.mark.parametrize("identity", [*ROLES, ANONYMOUS])
def test_every_route_answers_each_role_as_the_matrix_says(app, everyone, world, identity):
    visitor = Visitor(app, None if identity == ANONYMOUS else everyone[identity])
    wrong = []
    for endpoint, rule, method in routes(app):
        url = fill(rule, world)
        resp = visitor.request(method, url)
        got = refusal(resp)
        allowed = identity in PERMISSIONS[permission_of(app, endpoint)]
        if allowed:
            if got is not None or resp.status_code >= 500:
                wrong.append(f"{method} {url}: allowed, got {resp.status_code}")
            elif method == "GET" and (endpoint in MOVED or endpoint in FORWARDS):
                if resp.status_code not in REDIRECTS:
                    wrong.append(f"{method} {url}: moved, got {resp.status_code}, no redirect")
            elif method == "GET" and resp.status_code != 200:
                wrong.append(f"{method} {url}: allowed, got {resp.status_code}, not 200")
        else:
            expected = "403" if identity != ANONYMOUS else ("401" if is_api(rule) else "login")
            if got != expected:
                wrong.append(f"{method} {url}: refused with {expected}, got "
                             f"{resp.status_code} {resp.location or ''}")
    assert not wrong, "\n".join(wrong)


def test_the_api_never_takes_a_session_cookie(app, users, world):
    """A logged-in browser without a bearer token gets 401 from every API route (so a page on
    another site cannot drive the API with the staff member's cookie: no CSRF there)."""
    visitor = Visitor(app, users["admin"])
    for endpoint, rule, method in routes(app):
        if is_api(rule):
            resp = visitor.open(method, fill(rule, world), json={} if method != "GET" else None)
            assert resp.status_code == 401, f"{method} {rule}"


def test_public_routes_need_no_login(app, world):
    """The public GETs answer an anonymous visitor themselves (a 404 for a made-up token is
    theirs too), never with the login page."""
    visitor = Visitor(app)
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC and "GET" in rule.methods:
            resp = visitor.open("GET", fill(rule.rule, world))
            assert refusal(resp) is None and resp.status_code < 500, (rule.rule,
                                                                      resp.status_code)


def test_logout_is_for_staff_and_anyone_logged_in_may(app, everyone):
    resp = Visitor(app).open("POST", "/logout")
    assert refusal(resp) == "login"
    for role in ROLES:
        visitor = Visitor(app, everyone[role])
        start = "/kiosk" if role == "kiosk" else "/"  # the kiosk has no home page
        assert visitor.open("GET", start).status_code == 200
        assert visitor.open("POST", "/logout").status_code == 302
        assert refusal(visitor.open("GET", start)) == "login"

