"""Links that leave the shop: in SMS, on receipts and in QR codes.

Their base is ``PUBLIC_BASE_URL``; unset, the address the request came to (as the receipt's QR
code). An SMS written outside a request (a reminder from the clock, the worker or cron) has no
request: it takes the address the shop's staff last opened its pages at (where the SMS they
sent linked to), which each process notes and keeps in the settings table, so the worker and
the commands know it too. Only a staff member's request with a login counts (not an API
token's, from wherever an integration runs): the Host header is the client's to write, and an
anonymous visitor must not choose where customers' links lead.
"""
import logging

from flask import current_app, g, has_request_context, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

SEEN_KEY = "seen_base_url"
_NOTED = "servicedesk_seen_base_url"
# The staff's pages (not the API, the health probes or the SMS provider's callbacks).
_STAFF_BLUEPRINTS = frozenset({"reception", "workbench", "tickets", "reports", "admin", "main"})


def public_base_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base and has_request_context():
        if getattr(current_user, "is_authenticated", False):
            base = request.host_url
        else:
            # A customer's page (no login): its Host header is the client's to write, and an
            # SMS written here (a declined estimate's) must not send the customer's link to
            # an address whoever sent the request chose: where the staff open the shop.
            base = _seen() or request.host_url
    if not base:
        base = _seen()
    return (base or "http://localhost:5000").rstrip("/")


def base_url_known() -> bool:
    """Whether links can be built that lead somewhere: outside a request, only once
    PUBLIC_BASE_URL is set or a staff member has opened a page (see above)."""
    return bool(current_app.config.get("PUBLIC_BASE_URL") or has_request_context()
                or _seen())


def _seen():
    from . import settings
    return settings.get(SEEN_KEY)


def note_base_url() -> None:
    """Before a request: keep the address a logged-in staff member opened a page at, when it
    differs from the one kept. A write a process at most while the address stays the same."""
    if current_app.config.get("PUBLIC_BASE_URL") or request.blueprint not in _STAFF_BLUEPRINTS:
        return
    here = request.host_url.rstrip("/")
    if current_app.extensions.get(_NOTED) == here:
        return
    if not getattr(current_user, "is_authenticated", False) or g.get("via_token"):
        return  # an integration's token reaches the pages from wherever it runs
    from . import settings
    if settings.get(SEEN_KEY) != here:
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


def shelf_url(ticket) -> str:
    """The shelf label's QR code: the ticket's page, for staff (a login first), not the
    customer's link: whoever sees the shelves cannot answer the estimate or stop the SMS."""
    return f"{public_base_url()}/tickets/n/{ticket.number}"


def survey_url(ticket) -> str:
    return f"{public_base_url()}/s/{ticket.public_token}"
