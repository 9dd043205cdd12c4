"""Links that leave the shop: in SMS, on receipts and in QR codes.

Their base is ``PUBLIC_BASE_URL``; unset, the address the request came to (as the receipt's QR
code). An SMS written outside a request (a reminder from the clock, the worker or cron) has no
request: it takes the address customers last reached the shop at, which each process notes on
the customers' pages (or, until one comes, on the staff's) and keeps in the settings table,
so the worker and the commands know it too.
"""
import logging

from flask import current_app, has_request_context, request
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

SEEN_KEY = "seen_base_url"
_NOTED = "servicedesk_seen_base_url"
# Pages whose address a customer's phone or the shop's staff reached; not the API, the health
# probes or the SMS provider's callbacks (a monitor on 127.0.0.1 is no customer).
_STAFF_BLUEPRINTS = frozenset({"reception", "workbench", "tickets", "reports", "admin", "main",
                               "auth"})


def public_base_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base and has_request_context():
        base = request.host_url
    if not base:
        base = _seen()
    return (base or "http://localhost:5000").rstrip("/")


def _seen():
    from . import settings
    return current_app.extensions.get(_NOTED) or settings.get(SEEN_KEY)


def note_base_url() -> None:
    """Before a request: keep the address it came to when it is a customer's page (the best
    proof that customers reach it) and differs from the one kept, or a staff page while none is
    kept yet. A write a process at most, while the address stays the same."""
    if current_app.config.get("PUBLIC_BASE_URL"):
        return
    public = request.blueprint == "public"
    if not public and request.blueprint not in _STAFF_BLUEPRINTS:
        return
    here = request.host_url.rstrip("/")
    noted = current_app.extensions.get(_NOTED)
    if noted == here or (noted and not public):
        return
    from . import settings
    stored = settings.get(SEEN_KEY)
    if stored and not public:
        current_app.extensions[_NOTED] = stored
        return
    if stored != here:
        _store(here)
        settings.invalidate()
    current_app.extensions[_NOTED] = here


def _store(url: str) -> None:
    """In a transaction of its own, best effort (a busy database must not fail the page)."""
    from .extensions import db
    from .models.admin import Setting
    try:
        with db.engine.begin() as connection:
            updated = connection.execute(
                Setting.__table__.update().where(Setting.key == SEEN_KEY).values(value=url))
            if updated.rowcount == 0:
                connection.execute(Setting.__table__.insert().values(key=SEEN_KEY, value=url))
    except SQLAlchemyError as exc:
        log.warning("could not keep the shop's address %s: %s", url, exc)


def tracking_url(ticket) -> str:
    return f"{public_base_url()}/t/{ticket.public_token}"


def desk_visit_url(visit) -> str:
    """The queue slip's QR code: for the desk's scanner (staff only), not the customer."""
    return f"{public_base_url()}/desk/visits/{visit.id}"


def survey_url(ticket) -> str:
    return f"{public_base_url()}/s/{ticket.public_token}"
