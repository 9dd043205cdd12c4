"""The transactional outbox.

``write_for_event`` adds the SMS row in the same transaction as the ticket event. After the
transaction commits (never before: the worker must not see a row that may roll back), the new
rows are handed to the sender: rq when REDIS_URL is set, else the in-process sender. If that hand
-off fails (Redis down, process killed) the row is still pending and ``sweep`` sends it later.
"""
import logging
from datetime import datetime, timedelta
from typing import Iterable, Optional

from flask import current_app
from sqlalchemy import event as sa_event
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from .. import persist
from ..extensions import db
from ..i18n import segments
from ..models import Notification, Ticket, TicketEvent, utcnow
from . import templates

log = logging.getLogger(__name__)
_INFO_KEY = "servicedesk_outbox_ids"


def write_for_event(ticket: Ticket, event_row: TicketEvent, kind: Optional[str] = None,
                    extra: Optional[dict] = None) -> Optional[Notification]:
    """Write the customer's SMS for this event, unless they opted out or the template is off.
    ``kind``: another SMS about the same event (a reminder, ``"remind_estimate"``), one at
    the most, and only if the event's own SMS is sent: a shop that phones its estimates, or
    does not text a decline, sends no reminder of an SMS the customer never had. ``extra``:
    values for the text that the event does not keep (a one-time code)."""
    customer = ticket.customer
    if customer.sms_opt_out:
        return None
    language = customer.language or current_app.config["SERVICEDESK_LOCALE"]
    if kind and not templates.is_sent(event_row.event, event_row.data, language):
        return None
    body = templates.render(kind or event_row.event, language, ticket,
                            {**(event_row.data or {}), **(extra or {})})
    if body is None:
        return None
    encoding, count = segments(body)
    # The key names the event by its place in the ticket's chain, as unique as its id.
    note = persist.insert(Notification(
        ticket_id=ticket.id, event_id=event_row.id, event=kind or event_row.event,
        to=customer.phone, language=language, body=body, encoding=encoding, segments=count,
        dedupe_key=f"ticket:{ticket.id}:seq:{event_row.seq}:{kind or 'sms'}"),
        # another kind may be written twice at once (two reminder runs): one row, no error
        unless_exists="dedupe_key" if kind else None)
    if note is None:
        return None
    persist.append_loaded(ticket, "notifications", note)
    written(db.session(), note.id)
    return note


def written(session: Session, notification_id: int) -> None:
    """A row written in ``session``'s transaction without a flush: handed to the sender after
    the commit, like the rows a flush writes."""
    session.info.setdefault(_INFO_KEY, set()).add(notification_id)


def _after_flush(session: Session, flush_context) -> None:
    for obj in session.new:
        if isinstance(obj, Notification):
            written(session, obj.id)


def _after_commit(session: Session) -> None:
    ids = session.info.pop(_INFO_KEY, None)
    if ids:
        ids = sorted(i for i in ids if i is not None)
        dispatch(ids)
        if not session.expire_on_commit and _sends_in_this_call():
            # The objects were kept loaded past this commit (services.committing), but the
            # synchronous sender has just updated these rows from its own session.
            for nid in ids:
                obj = session.identity_map.get(identity_key(Notification, nid))
                if obj is not None:
                    session.expire(obj)


def _sends_in_this_call() -> bool:
    config = current_app.config
    return not config.get("REDIS_URL") and config.get("NOTIFY_INPROCESS") == "sync"


def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


def register_session_hooks() -> None:
    if not sa_event.contains(Session, "after_commit", _after_commit):
        sa_event.listen(Session, "after_flush", _after_flush)
        sa_event.listen(Session, "after_commit", _after_commit)
        sa_event.listen(Session, "after_soft_rollback",
                        lambda session, previous: _after_rollback(session))


def dispatch(ids: Iterable[int], attempts: Optional[dict] = None) -> None:
    """Hand committed SMS rows to the sender (``hand_over``)."""
    hand_over(ids, attempts, "sms")


def hand_over(ids: Iterable[int], attempts: Optional[dict] = None, kind: str = "sms") -> None:
    """Hand committed rows to the sender: rq with REDIS_URL, else the in-process sender;
    ``kind`` "sms" (notifications) or "webhook" (webhook deliveries). Never raises: a row that
    could not be handed over stays pending and the sweep sends it. ``attempts`` (id ->
    attempts so far) makes each re-enqueue a new rq job."""
    ids = list(ids)
    if not ids:
        return
    app = current_app._get_current_object()
    try:
        if app.config.get("REDIS_URL"):
            from .queue import enqueue, enqueue_webhooks
            (enqueue if kind == "sms" else enqueue_webhooks)(app, ids, attempts)
        else:
            sender = app.extensions["servicedesk_sender"]
            (sender.submit if kind == "sms" else sender.submit_webhooks)(ids)
    except Exception:  # noqa: BLE001 - the outbox row is the promise; the sweep keeps it
        log.exception("could not hand %d %s row(s) to the sender; the sweep will", len(ids),
                      kind)


def due(now: Optional[datetime] = None, pending_after: timedelta = timedelta(minutes=2),
        limit: int = 1000) -> dict[int, int]:
    """Rows the sweep should hand over again (id -> attempts so far): pending for a while
    (their hand-off after commit failed) and retries that are due."""
    now = now or utcnow()
    rows = db.session.execute(
        select(Notification.id, Notification.attempts).where(
            or_(
                (Notification.status == "pending")
                & (Notification.created_at <= now - pending_after)
                & or_(Notification.send_after.is_(None), Notification.send_after <= now),
                (Notification.status == "retry") & (Notification.next_attempt_at <= now),
            )).order_by(Notification.id).limit(limit))
    return {row.id: row.attempts for row in rows}
