"""Outbound webhooks: the outbox of POSTs to the administrator's endpoints.

``write_for_event`` (called by ``lifecycle.fire``, and by ``lifecycle.record`` for the records
an outside program follows: ``RECORD_EVENTS``) writes one delivery row per active endpoint
that hears the event, in the event's transaction: a rolled-back event sends nothing, a
committed one is never lost. After the commit the rows go to the same sender as the SMS: an rq
job on Redis when REDIS_URL is set, else the in-process sender. The sweep hands over rows whose
hand-off failed, retries that are due and sends stuck mid-way.

The request (README, "Webhooks"): ``POST`` of a JSON body with the headers
``X-Servicedesk-Delivery`` (the row's uid: the same on every attempt, for the receiver to drop
a duplicate), ``X-Servicedesk-Event``, ``X-Servicedesk-Timestamp`` (Unix seconds of this
attempt) and ``X-Servicedesk-Signature: sha256=HEX``, the HMAC-SHA256 with the endpoint's
secret of ``TIMESTAMP + "." + BODY`` (the exact bytes). A receiver recomputes it, compares in
constant time and refuses a timestamp more than five minutes from its clock (a replayed
request).

Outcomes: a 2xx answer is ``sent``; a network error, a timeout, 5xx or 429 is tried again
after the next interval (``WEBHOOK_RETRY_INTERVALS``), and after the last one the row is
``failed`` with the reason; any other answer (4xx, a redirect, which is not followed) is
``failed`` at once: the receiver refused it and would again. A timeout after the request left
may have been received: the retry repeats it with the same delivery id (at least once). A
delivery whose endpoint was deleted before it was sent is ``cancelled``, never posted (the
deletion cancels those waiting; a sender that finds the endpoint deleted or gone, one it had
taken or the sweep's retry, cancels it then).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from datetime import timedelta, timezone
from typing import Iterable, Optional

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import event as sa_event
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .. import persist
from ..i18n import format_number, localize_digits
from ..extensions import db
from ..models import Ticket, TicketEvent, utcnow
from ..models.webhooks import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)
_INFO_KEY = "servicedesk_webhook_ids"

DEFAULT_RETRY_INTERVALS = (10, 60, 300, 900, 3600)  # seconds; then it is marked failed
DEFAULT_TIMEOUT = 5  # seconds, to connect and again to read the answer
REPLAY_WINDOW = 300  # seconds: what the README tells a receiver to accept
SIGNATURE_HEADER = "X-Servicedesk-Signature"
# A delivery's own English notes (``error``: for the API and the logs); ``explain`` says them
# in the shop's words on the endpoint's page.
DELETED = "the endpoint was deleted before it was sent"  # a cancelled delivery's error
SWITCHED_OFF = "the endpoint was switched off before it was sent"
STOPPED = "the sender stopped mid-send"
NO_ANSWER = "no answer in time"
_HTTP = re.compile(r"HTTP (\d{3})(?:: (redirects are not followed|refused by the receiver))?")
_GAVE_UP = re.compile(r"gave up after (\d+) attempts: (.*)", re.S)
USER_AGENT = "Servicedesk-Webhooks/1"

# What of each event's data an endpoint gets: the work and the money, never the customer's
# name, phone or who collected the device (personal data: a receiver that needs them asks the
# API for the ticket, with a token of its own), nor the customer's IP address, nor the problem
# as the desk typed it at intake (free text: it may hold the phone's unlock code).
PUBLIC_DATA = {
    "admit": ("device", "service_type", "visit", "waited_seconds"),
    "send_to_repair": ("technician",),
    "quote": ("lines", "total", "promised_date", "alternatives"),
    # the alternative the customer chose (its id and name) and the estimate it made
    "approve": ("channel", "alternative", "alternative_name", "estimate_total"),
    "decline": ("reason", "channel"),
    "return_unrepaired": ("reason",),
    "wait_parts": ("part", "expected_date", "promised_date"),
    "resume": (),
    "finish": ("lines", "total", "estimate_total", "work_done"),
    "deliver": ("amount_paid", "amount_due", "payment_method", "payments"),
    "close": (),
    "cancel": ("reason",),
    # Records (lifecycle.record: the state stays, "from" and "to" are the same). The refund's
    # amount and how it was given back, not its reason (the manager's words: they may name the
    # customer). The loaner phone by its loan, its stock id and its IMEI or serial (the
    # shop's phone, not the customer's), not the description or the condition as typed (free
    # text); back "fine" or "damaged" (a fixed choice), with the hand-back or cancel it came
    # back with, not the note. Who holds the ticket at the bench (a staff user name, as
    # send_to_repair's): a receiver crediting repairs to technicians misses those claimed
    # from the queue or reassigned without them. Not the pickup checks (collector_*): who
    # collects the device is personal, and a wrong code typed is the desk's security.
    "refund": ("amount", "payment_method"),
    "lend_loaner": ("loan_id", "loaner_id", "serial"),
    "return_loaner": ("loan_id", "condition", "with_event"),
    "claim": ("technician",),
    "assign": ("technician", "before"),
}
EVENTS = tuple(PUBLIC_DATA)
# The records of them (the others are transitions).
RECORD_EVENTS = frozenset({"refund", "lend_loaner", "return_loaner", "claim", "assign"})


def retry_intervals() -> list[int]:
    intervals = current_app.config.get("WEBHOOK_RETRY_INTERVALS")
    return list(DEFAULT_RETRY_INTERVALS if intervals is None else intervals)  # []: one try


def max_attempts() -> int:
    """The first try and one per retry interval."""
    return len(retry_intervals()) + 1


def timeout() -> float:
    return float(current_app.config.get("WEBHOOK_TIMEOUT") or DEFAULT_TIMEOUT)


# --- writing, in the event's transaction ------------------------------------------------------

def payload(ticket: Ticket, row: TicketEvent) -> dict:
    """The JSON an endpoint gets for an event: no personal data (``PUBLIC_DATA``)."""
    data = row.data or {}
    return {
        "event": row.event,
        "ticket": {"id": ticket.id, "number": ticket.number},
        "from": row.from_state, "to": row.to_state,
        "at": row.at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "actor": row.actor_kind,
        "data": {k: data[k] for k in PUBLIC_DATA.get(row.event, ()) if k in data},
    }


def write_for_event(ticket: Ticket, row: TicketEvent) -> int:
    """One delivery row per active endpoint that hears this event; returns how many. In a
    request the endpoints come from the shop's configuration snapshot (settings.snapshot: no
    query per event; one saved on the admin page is heard by the other workers within
    SETTINGS_CACHE_SECONDS, and the sender skips one switched off since)."""
    from .. import settings
    snap = settings.snapshot()
    if snap is not None:
        ids = [i for i, events in snap.webhooks if events is None or row.event in events]
    else:
        ids = [e.id for e in db.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
            .order_by(WebhookEndpoint.id)) if e.hears(row.event)]
    if not ids:
        return 0
    body = json.dumps(payload(ticket, row), ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True)
    session = db.session()
    for endpoint_id in ids:
        delivery = persist.insert(WebhookDelivery(
            uid=str(uuid.uuid4()), endpoint_id=endpoint_id, ticket_id=ticket.id,
            event_id=row.id, event=row.event, body=body))
        written(session, delivery.id)
    return len(ids)


def written(session: Session, delivery_id: int) -> None:
    session.info.setdefault(_INFO_KEY, set()).add(delivery_id)


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_INFO_KEY, None)
    if ids:
        dispatch(sorted(ids))


def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


def register_session_hooks() -> None:
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_soft_rollback",
                        lambda session, previous: _after_rollback(session))


def dispatch(ids: Iterable[int], attempts: Optional[dict] = None) -> None:
    """Hand committed rows to the sender (rq, or the in-process sender), as the SMS are
    (``outbox.hand_over``). Never raises: a row not handed over stays pending and the sweep
    sends it."""
    from .outbox import hand_over
    hand_over(ids, attempts, "webhook")


# --- sending ------------------------------------------------------------------------------------

class RetryLater(Exception):
    """A transient failure, recorded as ``retry``: rq may run the job again."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``timestamp + "." + body`` with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def claim(delivery_id: int) -> bool:
    """Take the row for sending when it is due; False when another sender has it or it is
    done (however many jobs hold its id, one attempt per interval)."""
    now = utcnow()
    result = db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id,
               WebhookDelivery.status.in_(("pending", "retry")),
               WebhookDelivery.next_attempt_at.is_(None)
               | (WebhookDelivery.next_attempt_at <= now))
        .values(status="sending", attempts=WebhookDelivery.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def deliver(delivery_id: int) -> str:
    """POST one delivery; returns its new status ("skipped" when not claimed). Raises
    RetryLater after recording a retry, for rq to run the job again."""
    import requests

    if not claim(delivery_id):
        return "skipped"
    row = db.session.get(WebhookDelivery, delivery_id)
    if row is None:  # gone since it was claimed (removed from the database by hand)
        return "skipped"
    endpoint = db.session.get(WebhookEndpoint, row.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        # deleted between the event and this send: its secret is gone, nothing is posted
        return _finish(row, "cancelled", None, DELETED)
    if not endpoint.active:
        return _finish(row, "failed", None, SWITCHED_OFF)
    body = row.body.encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
               "X-Servicedesk-Delivery": row.uid, "X-Servicedesk-Event": row.event,
               "X-Servicedesk-Timestamp": stamp,
               SIGNATURE_HEADER: sign(endpoint.secret, stamp, body)}
    url = endpoint.url
    db.session.rollback()  # no transaction held open across the request
    try:
        # stream: the answer's body is never read (a receiver cannot fill our memory)
        with requests.post(url, data=body, headers=headers, timeout=timeout(),
                           allow_redirects=False, stream=True) as answer:
            code = answer.status_code
    except requests.Timeout:
        return _retry_or_give_up(row, None, NO_ANSWER)
    except requests.RequestException as exc:
        return _retry_or_give_up(row, None, f"could not connect: {type(exc).__name__}")
    if 200 <= code < 300:
        row.sent_at = utcnow()
        return _finish(row, "sent", code, None)
    if code >= 500 or code == 429:
        return _retry_or_give_up(row, code, f"HTTP {code}")
    if 300 <= code < 400:
        return _finish(row, "failed", code, f"HTTP {code}: redirects are not followed")
    return _finish(row, "failed", code, f"HTTP {code}: refused by the receiver")


def explain(error: Optional[str]) -> Optional[str]:
    """A delivery's note (``error``) in the shop's words, for the endpoint's page: what
    happened and, where the administrator can act, what to do. A note this does not know
    (a row from an older version) is shown as it was written."""
    if not error:
        return None
    gave_up = _GAVE_UP.fullmatch(error)
    if gave_up:
        count = int(gave_up.group(1))
        return ngettext("Gave up after %(count)s attempt. The last: %(reason)s",
                        "Gave up after %(count)s attempts. The last: %(reason)s", count,
                        count=format_number(count), reason=explain(gave_up.group(2)))
    known = {DELETED: _("Not sent: the endpoint was deleted first."),
             SWITCHED_OFF: _("Not sent: the endpoint was switched off first."),
             STOPPED: _("The sender stopped in the middle of sending; it is sent again."),
             NO_ANSWER: _("The receiver did not answer in time.")}
    if error in known:
        return known[error]
    if error.startswith("could not connect"):
        return _("The receiver could not be reached: check its address and that it is "
                 "running.")
    http = _HTTP.fullmatch(error)
    if http is None:
        return error
    code = localize_digits(http.group(1))
    if http.group(2) == "redirects are not followed":
        return _("The receiver answered with a redirect (HTTP %(code)s), which is not "
                 "followed: give the endpoint its final address.", code=code)
    if http.group(2):
        return _("The receiver refused it (HTTP %(code)s): it would refuse it again; check "
                 "the receiver.", code=code)
    if http.group(1) == "429":
        return _("The receiver asked to slow down (HTTP %(code)s).", code=code)
    return _("The receiver had an error (HTTP %(code)s).", code=code)


def _finish(row: WebhookDelivery, status: str, code: Optional[int], error: Optional[str]) -> str:
    row.status, row.response_code, row.error = status, code, error and error[:255]
    row.updated_at = utcnow()
    db.session.commit()
    if status == "failed":
        log.warning("webhook delivery %s failed: %s", row.id, error)
    return status


def _retry_or_give_up(row: WebhookDelivery, code: Optional[int], reason: str) -> str:
    if row.attempts >= max_attempts():
        return _finish(row, "failed", code, f"gave up after {row.attempts} attempts: {reason}")
    row.next_attempt_at = utcnow() + timedelta(seconds=retry_intervals()[row.attempts - 1])
    _finish(row, "retry", code, reason)
    raise RetryLater(reason)


# --- the sweep and the admin's resend ---------------------------------------------------------

def stuck_after() -> timedelta:
    """A row ``sending`` this long was left by a sender that died mid-send."""
    return timedelta(seconds=2 * timeout() + 60)


def due(now=None, pending_after: timedelta = timedelta(minutes=2)) -> dict[int, int]:
    """Rows the sweep hands over again (id -> attempts so far): pending ones whose hand-off
    failed, due retries, and sends left stuck (made retries first)."""
    now = now or utcnow()
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == "sending",
               WebhookDelivery.updated_at <= now - stuck_after())
        .values(status="retry", next_attempt_at=now, updated_at=now,
                error=STOPPED)
        .execution_options(synchronize_session=False))
    db.session.commit()
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts).where(or_(
            (WebhookDelivery.status == "pending")
            & (WebhookDelivery.created_at <= now - pending_after),
            (WebhookDelivery.status == "retry") & (WebhookDelivery.next_attempt_at <= now)))
        .order_by(WebhookDelivery.id).limit(1000))
    return {r.id: r.attempts for r in rows}


def sweep(send=None, pending_after: timedelta = timedelta(minutes=2)) -> int:
    rows = due(pending_after=pending_after)
    if send is not None:
        for i in rows:
            send(i)
    else:
        dispatch(list(rows), attempts=rows)
    return len(rows)


def send_now(delivery_id: int) -> str:
    """Send in this thread (the in-process sender, the sweep command): a retry stays
    recorded for the sweep."""
    try:
        return deliver(delivery_id)
    except RetryLater:
        return "retry"
