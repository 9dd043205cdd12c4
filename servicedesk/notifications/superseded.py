"""SMS that ask the customer for something (answer the estimate, collect the device) and are
not sent yet when the ticket stops waiting on it.

After an SMS outage, or while a late SMS waits for the sending hours, the estimate's SMS ("approve
or decline") may still be in the outbox when the desk records the answer the customer gave by
phone; "ready to collect" when the device was handed back already; a reminder whose wait ended.
Sent later, they ask for what can no longer be done. ``cancel_for_event`` cancels them in the
transaction of the event that makes them moot (the lifecycle calls it), so the ticket's page
says why at once; ``why_moot`` is read again just before a send (a row the sender held at that
moment). SMS that stay true (the admit receipt, "repair started") are kept.
"""
from typing import Optional

from sqlalchemy import select, update

from ..extensions import db
from ..models import Notification, Ticket, TicketEvent, utcnow

# The SMS's event (or reminder) -> (the state the ticket waits in while it asks, the events
# that start that wait). The row is about the wait its event_id started: once the ticket left
# that state, or a later event started the wait anew (a revised estimate), it is moot.
READY_EVENTS = ("finish", "decline", "return_unrepaired")
ASKING = {
    "quote": ("estimate", ("quote",)),
    "remind_estimate": ("estimate", ("quote",)),
    "finish": ("ready", READY_EVENTS),
    "decline": ("ready", READY_EVENTS),
    "return_unrepaired": ("ready", READY_EVENTS),
    "remind_pickup": ("ready", READY_EVENTS),
}
UNSENT = ("pending", "retry")

# The delivery job's own English notes (error_message); reasons.explain says them in the
# shop's words.
ANSWERED = "no longer due: the estimate was answered"
REPLACED = "no longer due: a new estimate replaced it"
HANDED_BACK = "no longer due: the device was handed back"
MOVED_ON = "no longer due: the ticket has moved on"
_BY_EVENT = {"approve": ANSWERED, "decline": ANSWERED, "quote": REPLACED,
             "deliver": HANDED_BACK}


def _asking_in(state: str) -> list[str]:
    return [kind for kind, (waits_in, _starts) in ASKING.items() if waits_in == state]


def cancel_for_event(ticket: Ticket, from_state: Optional[str], event_row: TicketEvent) -> int:
    """Cancel the ticket's SMS not sent yet that asked for what ``event_row`` (just fired from
    ``from_state``) answered or ended, in the caller's transaction. Returns how many."""
    kinds = _asking_in(from_state) if from_state else []
    if not kinds:  # (most events: no statement at all)
        return 0
    result = db.session.execute(
        update(Notification)
        .where(Notification.ticket_id == ticket.id, Notification.status.in_(UNSENT),
               Notification.event.in_(kinds),
               Notification.event_id.is_(None) | (Notification.event_id != event_row.id))
        .values(status="cancelled", error_code=None,
                error_message=_BY_EVENT.get(event_row.event, MOVED_ON), updated_at=utcnow())
        # the ticket's SMS loaded in the session (the API answers with them) say it too
        .execution_options(synchronize_session="fetch"))
    return result.rowcount


def why_moot(note: Notification) -> Optional[str]:
    """Why this SMS of a ticket no longer asks for anything possible (its note), or None while
    it does."""
    rule = ASKING.get(note.event)
    if rule is None or note.ticket_id is None:
        return None
    state, starts = rule
    ticket_state = db.session.scalar(select(Ticket.state).where(Ticket.id == note.ticket_id))
    latest = db.session.execute(
        select(TicketEvent.id, TicketEvent.event)
        .where(TicketEvent.ticket_id == note.ticket_id, TicketEvent.event.in_(starts))
        .order_by(TicketEvent.seq.desc()).limit(1)).first()
    if ticket_state == state and latest is not None and latest.id == note.event_id:
        return None
    if ticket_state == state and latest is not None and latest.event == "quote":
        return REPLACED
    if ticket_state in ("delivered", "closed") and state == "ready":
        return HANDED_BACK
    if state == "estimate" and ticket_state != "estimate":
        return ANSWERED
    return MOVED_ON
