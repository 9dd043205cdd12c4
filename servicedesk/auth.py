"""Roles and the one permission check every view and the API use.

``PERMISSIONS`` is the role matrix for pages and API endpoints; which role may fire which ticket
event lives in the lifecycle table (``lifecycle.EVENTS``), the other half of the same matrix.
"""
from functools import wraps

from flask import abort, g, request
from flask_login import current_user

from .extensions import db, login_manager
from .models import User

ALL_STAFF = frozenset({"reception", "technician", "manager", "admin"})

PERMISSIONS: dict[str, frozenset] = {
    "home": ALL_STAFF,
    "tickets.view": ALL_STAFF,
    "tickets.admit": frozenset({"reception"}),
    "tickets.note": frozenset({"reception", "technician", "manager"}),
    "tickets.print": frozenset({"reception", "technician", "manager"}),
    "visits.view": ALL_STAFF,
    "visits.issue": frozenset({"reception", "manager"}),
    "visits.call": frozenset({"reception"}),
    "visits.display": ALL_STAFF,
    "reception.desk": frozenset({"reception", "manager"}),
    "tickets.deliver_desk": frozenset({"reception", "manager"}),
    "workbench.view": frozenset({"technician", "manager"}),
    "tickets.claim": frozenset({"technician"}),
    "reports.view": frozenset({"manager", "admin"}),
    "reports.followup": frozenset({"manager"}),
    "admin.manage": frozenset({"admin"}),
}


def can(user, action: str) -> bool:
    return bool(user and user.is_authenticated and user.role in PERMISSIONS[action])


def require(action: str):
    """View decorator: the login page for anonymous users, 403 for a role without ``action``."""
    if action not in PERMISSIONS:
        raise KeyError(action)

    def deco(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not can(current_user, action):
                abort(403)
            return view(*args, **kwargs)
        inner.permission = action
        return inner
    return deco


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return None


@login_manager.user_loader
def load_user(session_token: str):
    from sqlalchemy import select
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    return user if user is not None and user.active else None


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


def _role_labels():
    from flask_babel import lazy_gettext as _l
    return {"reception": _l("Reception"), "technician": _l("Technician"),
            "manager": _l("Manager"), "admin": _l("Administrator")}


ROLE_LABELS = _role_labels()
