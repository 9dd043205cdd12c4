"""The delivery job: claim one outbox row, send it, record the outcome.

Outcomes: sent (the provider's id kept); permanent failure (code kept, never retried; Twilio
21610 also opts the customer out); transient failure, or an unexpected error in the sender
(``retry`` with a backoff, due at ``next_attempt_at``); ambiguous (timeout or 5xx after the
request left): ``unknown``. A row is claimed only when due, so however many jobs hold its id
(rq's own retry, the sweep's, a stale one) it is tried once per interval.

Every kind of attempt counts against one limit: one try plus one per retry interval
(``SMS_RETRY_INTERVALS``). Past it the row ends ``failed`` with "gave up after N attempts" and
the last reason.

Policy for ambiguous sends: the provider may have accepted the message and Twilio has no
idempotency key, so a blind resend risks a duplicate. The row waits (``unknown``, keeping when
that attempt began in ``unknown_since``) for ``stuck_after`` (2 minutes, or longer when the
backend's timeout lets a send last longer) and the interval of that attempt, whichever is
longer, then the sweep hands it back. Rows left in ``sending`` by a killed worker are treated
the same (the time they were last stamped as the attempt's start). With Twilio, the resend
first asks Twilio (one lookup per resend, ``_found_before_resending``): the messages to the
number from the same sender or Messaging Service, every page, matched on the same text and
created since that attempt began (less ``lookback``), not already another row's. Found: the
row is settled with that message's sid and status, noted "found at Twilio after an unknown
outcome", and not sent again; the lookup counts as no attempt. Not found: it is sent again.
The lookup itself failed (timeout, 5xx, refused credentials): nothing is sent; the attempt
counts as another unknown outcome, so the row waits and asks again, and once the attempts
run out it is ``failed`` with "the last outcome was unknown: could not ask Twilio whether it
went" (as is a row whose last attempt's own answer was lost: nothing follows it to look
up, and it may have arrived). So with Twilio a customer gets one copy unless Twilio's list
misses a message it took (its text changed on the way, or the list lagging past the wait).
The HTTP gateway and the console cannot be asked: there each resend after an unknown outcome may still be a
duplicate, as many copies as attempts, and once the attempts run out the row is ``failed``
though a copy may have arrived ("the last outcome was unknown"). The status callback URL names
the row, so a delivery report for an attempt whose answer was lost still settles the row
(``apply_status_callback``) and no resend follows it. Delivery is at least once only while
the attempts last.
"""
import logging
from datetime import timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import func, select, update

from .. import audit
from ..extensions import db
from ..links import public_base_url
from ..models import Customer, Notification, Visit, utcnow
from . import superseded
from .backends import (AmbiguousFailure, Found, LookupFailure, PermanentFailure,
                       TransientFailure, backend_from_config, mask_phone)

log = logging.getLogger(__name__)

DEFAULT_RETRY_INTERVALS = (10, 60, 300, 900, 3600)  # seconds; then it is marked failed


def retry_intervals() -> list[int]:
    return list(current_app.config.get("SMS_RETRY_INTERVALS") or DEFAULT_RETRY_INTERVALS)


# Past the longest a send can take, before a row still "sending" counts as stuck (its sender
# died): the time to write the row back after the answer, and clocks a little apart.
SEND_MARGIN = 60


def send_limit(config=None) -> float:
    """The longest one send can take, in seconds, before its HTTP client gives up: the
    timeout (``TWILIO_TIMEOUT``, ``SMS_HTTP_TIMEOUT``: the larger, whichever backend runs)
    counts once for the connection and again for the answer."""
    config = current_app.config if config is None else config
    timeouts = []
    for name in ("TWILIO_TIMEOUT", "SMS_HTTP_TIMEOUT"):
        try:
            timeouts.append(float(config.get(name) or 10))
        except (TypeError, ValueError):  # (flask check names it)
            timeouts.append(10.0)
    return 2 * max(timeouts)


def stuck_after() -> timedelta:
    """How long a row may stay ``sending`` (or ``unknown``) before the sweep sends it again:
    ``SMS_STUCK_AFTER`` (2 minutes), and never less than a send can still be in progress
    (``send_limit`` and a margin): a panel given 120 s to answer would otherwise get the same
    SMS twice while the first send still waits for its answer."""
    return timedelta(seconds=max(float(current_app.config.get("SMS_STUCK_AFTER", 120)),
                                 send_limit() + SEND_MARGIN))


def max_attempts() -> int:
    """The first try and one per retry interval."""
    return len(retry_intervals()) + 1


OPT_OUT_CODES = {"21610"}
# Statuses a provider callback (or the sender's own answer) may move to, in order: a later
# report never moves back.
STATUS_RANK = {"pending": 0, "retry": 0, "sending": 1, "unknown": 1, "sent": 2,
               "undelivered": 3, "failed": 3, "delivered": 4, "cancelled": 5}


def _below(status: str) -> list[str]:
    return [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]


def get_backend():
    app = current_app._get_current_object()
    backend = app.extensions.get("servicedesk_sms_backend")
    if backend is None:
        backend = backend_from_config(app.config)
        app.extensions["servicedesk_sms_backend"] = backend
    return backend


def claim(notification_id: int) -> bool:
    """Atomically take the row for sending; False when another worker has it or it is done."""
    now = utcnow()
    result = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id,
               Notification.status.in_(("pending", "retry")),
               (Notification.send_after.is_(None)) | (Notification.send_after <= now),
               # a retry waits its interval whoever holds its id: rq's retry of one job and
               # the sweep's next job would otherwise spend two attempts at once
               (Notification.next_attempt_at.is_(None)) | (Notification.next_attempt_at <= now))
        .values(status="sending", attempts=Notification.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount == 1


def deliver(notification_id: int) -> str:
    """Send one notification; returns the row's new status (or "skipped" if not claimed).

    Raises TransientFailure after recording a retry, so an rq job can let rq retry it too.
    """
    if not claim(notification_id):
        return "skipped"
    note = db.session.get(Notification, notification_id)
    if db.session.scalar(select(Customer.sms_opt_out).where(Customer.phone == note.to)):
        # The customer asked for no SMS after this one was written: a retry, or a first
        # attempt that waited (its hand-off failed, Redis was down, the worker was stopped).
        _finish(note, "cancelled", None, "the customer has opted out of SMS since")
        db.session.commit()
        return note.status
    moot = superseded.why_moot(note)
    if moot:  # the ticket stopped waiting on what it asks (held by the sender meanwhile)
        _finish(note, "cancelled", None, moot)
        db.session.commit()
        return note.status
    if note.visit_id is not None and _queue_sms_stale(note):
        _finish(note, "cancelled", None, "no longer due: the queue number has moved on")
        db.session.commit()
        return note.status
    if note.attempts > 1 and note.event.startswith("remind_"):
        held = _reminder_held(note)
        if held:
            return held
    if _held_for_the_morning(note):
        return note.status
    try:
        backend = get_backend()
    except Exception as exc:  # noqa: BLE001 - settings that cannot work: retried, then failed
        log.exception("notification %s: no SMS backend", note.id)
        return _retry_or_give_up(note, None, f"{type(exc).__name__}: {exc}", utcnow())
    if note.unknown_since is not None and hasattr(backend, "sent_since"):
        # An earlier attempt may have gone: ask Twilio before sending it again.
        settled = _found_before_resending(note, backend)
        if settled is not None:
            return settled
    callback = None
    if current_app.config.get("SMS_BACKEND") == "twilio":
        # The row's id rides in the URL (Twilio signs the whole URL): a report that comes
        # before this process has the message's sid, or about an attempt whose answer was
        # lost, still finds its row (apply_status_callback).
        callback = f"{public_base_url()}/sms/status?n={note.id}"
    now = utcnow()
    try:
        provider_id = backend.send(note.to, note.body, callback)
    except PermanentFailure as exc:
        _finish(note, "failed", exc.code, exc.message)
        if exc.code in OPT_OUT_CODES:  # a ticket's SMS or a queue number's, to a customer
            customer = db.session.scalar(
                select(Customer).where(Customer.phone == note.to))
            if customer and not customer.sms_opt_out:
                customer.sms_opt_out = True
                customer.opted_out_at = now
                customer.opted_out_by = "stop"
                # recorded as the number's STOP: a number corrected later lifts it
                audit.log("customer.sms", obj=customer, before={"sms": True},
                          after={"sms": False, "how": "stop", "mobile": mask_phone(note.to)})
        db.session.commit()
        log.warning("notification %s failed permanently: %s", note.id, exc.code)
        return "failed"
    except TransientFailure as exc:
        if _retry_or_give_up(note, exc.code, exc.message, now) == "failed":
            return "failed"
        raise
    except AmbiguousFailure as exc:
        # the earliest attempt in doubt since the last known outcome: what a resend looks for
        note.unknown_since = note.unknown_since or now
        return _unknown(note, exc.code, exc.message, now)
    except Exception as exc:  # noqa: BLE001 - a bug in a backend must not lose the message
        log.exception("notification %s: unexpected error", note.id)
        return _retry_or_give_up(note, None, f"{type(exc).__name__}: {exc}", now)
    return _record_sent(note, provider_id, now)


def _unknown(note: Notification, code: Optional[str], message: str, now) -> str:
    """The attempt ended without knowing whether the message went: ``unknown`` until the
    sweep hands it back (reset_stuck, after this attempt's interval and stuck_after), or
    ``failed`` when it was the last attempt. Commits; returns the status."""
    if note.attempts >= max_attempts():
        _finish(note, "failed", code,
                _gave_up(note.attempts, f"; the last outcome was unknown: {message}"))
    else:
        _finish(note, "unknown", code, message[:255])
        note.next_attempt_at = now + timedelta(seconds=_interval(note.attempts))
    db.session.commit()
    log.warning("notification %s: outcome unknown after attempt %s (%s)%s", note.id,
                note.attempts, message, "; gave up" if note.status == "failed" else "")
    return note.status


# The staff's notes (error_message) of what the lookup before a resend found: reasons.explain
# words them.
FOUND_NOTE = "found at Twilio after an unknown outcome: not sent again"
LOOKUP_FAILED = "could not ask Twilio whether it went"
# Twilio's statuses as the row's (as a delivery report would move it).
PROVIDER_STATUS = {"queued": "sent", "accepted": "sent", "scheduled": "sent", "sending": "sent",
                   "sent": "sent", "delivered": "delivered", "read": "delivered",
                   "undelivered": "undelivered", "failed": "failed"}


def lookback() -> timedelta:
    """How far before ``unknown_since`` a message found counts as this row's: Twilio's clock
    and ours a little apart, and rows whose time is their attempt's end rather than its start
    (left ``unknown`` before the time was kept): the longest a send lasts and a margin."""
    return timedelta(seconds=send_limit() + SEND_MARGIN)


def _found_before_resending(note: Notification, backend) -> Optional[str]:
    """Before sending again a row whose earlier attempt's outcome is unknown (its answer lost,
    or its sender stopped mid-send), ask Twilio whether a message with its text went to its
    number since that attempt began (``backend.sent_since``), from the same sender. One
    lookup per resend, within the attempt this claim counted.

    Found (the oldest such message no other row holds): the row takes its sid and status,
    with ``FOUND_NOTE``, and is not sent again; the lookup does not count as an attempt.
    Not found: the doubt is over, returns None and the caller sends. The lookup failed
    (timeout, 5xx, refused credentials): nothing is sent blindly; the attempt counts as
    another unknown outcome (``unknown``, looked up again at the next attempt; ``failed``
    with the reason once the attempts are spent). Returns the row's status when settled."""
    attempt = note.attempts
    since = note.unknown_since - lookback()
    try:
        for page in backend.sent_since(note.to, note.body, since):
            # each request lasts at most send_limit: stamping the claim after each keeps the
            # sweep from taking this row for stuck (and sending it) while it is looked up
            if not _still_claimed(note.id, attempt):
                log.warning("notification %s: taken for stuck during its lookup", note.id)
                db.session.expire(note)
                return "skipped"
            for found in page:
                holder = db.session.scalar(select(Notification.id).where(
                    Notification.provider_id == found.sid))
                if holder is None or holder == note.id:
                    return _settle_found(note, found)
    except LookupFailure as exc:
        db.session.expire(note)
        return _unknown(note, exc.code, f"{LOOKUP_FAILED}: {exc.message}", utcnow())
    # not found: the doubt is over; the send about to start is stamped as the attempt's
    if not _still_claimed(note.id, attempt, unknown_since=None):
        db.session.expire(note)
        return "skipped"
    db.session.expire(note)
    log.info("notification %s: not found at Twilio after an unknown outcome, sent again",
             note.id)
    return None


def _still_claimed(notification_id: int, attempt: int, **values) -> bool:
    """Stamp the claim as alive (``updated_at``, and ``values``) while it is still this
    attempt's; False when it is not (the sweep took it for stuck)."""
    moved = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "sending",
               Notification.attempts == attempt)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return moved == 1


def _settle_found(note: Notification, found: Found) -> str:
    """The row is the message Twilio already holds: its sid, its status there (a delivery
    report moves it on), ``FOUND_NOTE``; the claim's attempt uncounted, as nothing was sent.
    Only from ``sending``: a report that settled the row meanwhile stands."""
    status = PROVIDER_STATUS.get(found.status, "sent")
    now = utcnow()
    db.session.execute(
        update(Notification)
        .where(Notification.id == note.id, Notification.status == "sending")
        .values(status=status, provider_id=found.sid, sent_at=found.created or now,
                error_code=found.error_code if status in ("failed", "undelivered") else None,
                error_message=FOUND_NOTE, unknown_since=None,
                attempts=Notification.attempts - 1, updated_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.expire(note)
    log.warning("notification %s: found at Twilio (%s, %s) after an unknown outcome: not sent "
                "again", note.id, found.sid, found.status)
    return note.status


# A queue SMS is news only while its number is where the SMS says: "your turn is near" to a
# number already called or served, or "come to counter 2" the next morning, is noise.
QUEUE_SMS_DUE = {"visit_issued": ("waiting",), "visit_near": ("waiting",),
                 "visit_called": ("called",)}
# A number still "waiting" this long after it was taken belongs to a queue day that is over.
QUEUE_SMS_LIFE = timedelta(hours=12)


def _queue_sms_stale(note: Notification) -> bool:
    """Whether a queue SMS (its retry, or a send that waited) no longer says what is so."""
    visit = db.session.get(Visit, note.visit_id)
    if visit is None or visit.status not in QUEUE_SMS_DUE.get(note.event, (visit.status,)):
        return True
    return utcnow() - visit.issued_at > QUEUE_SMS_LIFE


def _interval(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th attempt (within the limit)."""
    return retry_intervals()[attempts - 1]


def _gave_up(attempts: int, detail: str) -> str:
    return f"gave up after {attempts} attempts{detail}"[:255]


def _retry_or_give_up(note: Notification, code: Optional[str], message: str,
                      now) -> str:
    """A failed attempt that may be tried again: ``retry`` after the next interval, or
    ``failed`` once the attempts are spent. Commits; returns the status."""
    if note.attempts >= max_attempts():
        _finish(note, "failed", code, _gave_up(note.attempts, f": {message}"))
    else:
        _finish(note, "retry", code, message[:255])
        note.next_attempt_at = now + timedelta(seconds=_interval(note.attempts))
    db.session.commit()
    return note.status


def _record_sent(note: Notification, provider_id: str, now) -> str:
    """The provider took the message. Moves the row to ``sent`` only from a lower status: a
    delivery report that overtook this answer (found the row by the id in its URL) has
    already moved it further and stands; the row then keeps the sid it took from the report,
    else gets this one."""
    moved = db.session.execute(
        update(Notification)
        .where(Notification.id == note.id, Notification.status.in_(_below("sent")))
        .values(status="sent", provider_id=provider_id, sent_at=now, error_code=None,
                error_message=None, unknown_since=None, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if not moved:
        db.session.execute(
            update(Notification)
            .where(Notification.id == note.id, Notification.provider_id.is_(None))
            .values(provider_id=provider_id)
            .execution_options(synchronize_session=False))
        db.session.execute(
            update(Notification)
            .where(Notification.id == note.id, Notification.sent_at.is_(None))
            .values(sent_at=now)
            .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.expire(note)
    return note.status


def _reminder_held(note: Notification) -> Optional[str]:
    """A reminder's retry goes only while it is still due and within the sending hours
    (``reminders.still_due``): else it waits for the morning (``retry``, the attempt not
    counted) or is ``cancelled`` with the reason. None: send it."""
    from ..services import reminders
    verdict, detail = reminders.still_due(note, utcnow())
    if verdict == "send":
        return None
    if verdict == "hold":
        _finish(note, "retry", note.error_code, note.error_message)
        note.attempts -= 1
        note.next_attempt_at = detail
    else:
        _finish(note, "cancelled", None, detail)
    db.session.commit()
    return note.status


LATE_NOTE = "late, outside the sending hours: held for the morning"


def late_after() -> timedelta:
    return timedelta(seconds=current_app.config.get("SMS_LATE_AFTER", 3600))


def _held_for_the_morning(note: Notification) -> bool:
    """An SMS that comes late (written over ``late_after`` ago: its sender was stopped or
    Redis down for hours, or a retry ran late) and outside the shop's sending hours
    (``REMINDER_HOURS``) waits for their start: a backlog sent when the worker comes back at
    3 a.m. wakes every customer in it. Held as a ``retry`` whose attempt does not count. An
    SMS of an event fired just now (the shop open late, a customer answering at night) goes
    at once."""
    from ..services import reminders
    now = utcnow()
    if now - note.created_at < late_after() or reminders.within_hours(now):
        return False
    _finish(note, "retry", None, LATE_NOTE)
    note.attempts -= 1
    note.next_attempt_at = reminders.next_opening(now)
    db.session.commit()
    log.info("notification %s: late, held until %s", note.id, note.next_attempt_at)
    return True


def _finish(note: Notification, status: str, code: Optional[str], message: Optional[str]):
    note.status = status
    note.error_code = code
    note.error_message = message
    note.updated_at = utcnow()


def reset_stuck(after: Optional[timedelta] = None) -> int:
    """Rows left in 'sending' (a worker died mid-send) or 'unknown' for a while go back to
    'retry' so they are sent again (the documented policy): after ``after`` (stuck_after)
    and, for 'unknown', the interval its attempt set. A row that has used all its attempts
    is marked 'failed' instead. Returns how many rows went back to 'retry'."""
    now = utcnow()
    after = stuck_after() if after is None else after
    limit = max_attempts()
    stuck = ((Notification.status == "sending")
             | ((Notification.status == "unknown")
                & (Notification.next_attempt_at.is_(None)
                   | (Notification.next_attempt_at <= now))))
    stuck = stuck & (Notification.updated_at <= now - after)
    spent = db.session.execute(
        select(Notification.id, Notification.status, Notification.attempts,
               Notification.error_message)
        .where(stuck, Notification.attempts >= limit)).all()
    for row in spent:
        if row.status == "sending":
            detail = "; the last outcome was unknown (the sender stopped mid-send)"
        else:
            detail = "; the last outcome was unknown" + (
                f": {row.error_message}" if row.error_message else "")
        # Still stuck as read: a delivery report or a late answer meanwhile wins.
        db.session.execute(
            update(Notification)
            .where(Notification.id == row.id, Notification.status == row.status,
                   Notification.attempts == row.attempts, stuck)
            .values(status="failed", error_message=_gave_up(row.attempts, detail),
                    updated_at=now)
            .execution_options(synchronize_session=False))
        log.warning("notification %s: gave up after %s attempts, the last outcome unknown",
                    row.id, row.attempts)
    result = db.session.execute(
        update(Notification)
        .where(stuck, Notification.attempts < limit)
        # a row left "sending" began its attempt when it was last stamped: its resend asks
        # Twilio first, as after an unknown answer (_found_before_resending)
        .values(status="retry", next_attempt_at=now, updated_at=now,
                unknown_since=func.coalesce(Notification.unknown_since,
                                            Notification.updated_at))
        .execution_options(synchronize_session=False))
    db.session.commit()
    return result.rowcount


def apply_status_callback(provider_id: str, status: str, error_code: Optional[str],
                          notification_id: Optional[int] = None) -> bool:
    """A provider's delivery report: moves the row forward only (a late 'sent' never
    overwrites 'delivered'). The row is found by the message's sid, else by the id the
    callback URL carries (``notification_id``): a report that came before the sender stored
    the sid, or about an attempt whose answer was lost (``unknown``), which then becomes the
    row's message. Returns False when no row is found."""
    note = db.session.scalar(select(Notification).where(Notification.provider_id == provider_id))
    if note is None and notification_id is not None:
        note = db.session.get(Notification, notification_id)
        if note is not None and note.provider_id is not None:
            # Another attempt's message (a duplicate after an unknown outcome): the row
            # follows the message whose sid it holds.
            log.info("notification %s: report on %s ignored, it holds %s",
                     note.id, provider_id, note.provider_id)
            return True
    if note is None:
        return False
    mapped = {"queued": "sent", "accepted": "sent", "sending": "sent", "sent": "sent",
              "delivered": "delivered", "undelivered": "undelivered", "failed": "failed",
              "read": "delivered"}.get(status)
    if mapped:
        values = {"status": mapped, "updated_at": utcnow(),
                  "provider_id": func.coalesce(Notification.provider_id, provider_id)}
        if error_code:
            values["error_code"] = str(error_code)[:20]
        # Conditional, not read-modify-write: the sender's answer or another report may
        # have moved the row since it was read.
        db.session.execute(
            update(Notification)
            .where(Notification.id == note.id, Notification.status.in_(_below(mapped)),
                   Notification.provider_id.is_(None)
                   | (Notification.provider_id == provider_id))
            .values(**values)
            .execution_options(synchronize_session=False))
        db.session.commit()
    return True
