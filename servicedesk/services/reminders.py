"""Reminder SMS to customers who have not acted: an estimate nobody answered, a device nobody
collected. The approval and the pick-up are the stages a shop waits longest on, and a customer
who forgot the first SMS needs a second one, not a phone call from a busy desk.

A reminder goes once per estimate (a revised estimate may have its own) or hand-back, after the
days the shop set (``remind_estimate_days``, ``remind_pickup_days``; 0: none), as an SMS about
the event that started the wait: its outbox row is keyed by that event, so running twice, or
two runs at once, never sends two. Only waits that began within the last ``LATE_LIMIT_DAYS``
days past the shop's days count, so switching reminders on (or a clock that was stopped) does
not text every customer of the last year, and imported history (``external_id``) is never
texted. Reminders are written only within ``REMINDER_HOURS`` of the shop's day, and sent at
once: one written at night could reach a customer who answered in the morning. A retry (the
first send failed) is looked at again: held until the morning outside the hours, cancelled once
the ticket stopped waiting on its event (``still_due``). They follow the
customer's opt-out, the shop's switch for the reminder's text, and for the SMS it reminds of
(a shop that phones its estimates sends no estimate reminder). The worker writes them on its
hourly clock, the web process without Redis too (``servicedesk.chores``); ``flask
remind-customers`` does the same from cron.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Optional

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select

from .. import links, settings
from ..errors import DomainError
from ..extensions import db
from ..i18n import shop_timezone
from ..models import Customer, Notification, Ticket, TicketEvent, utcnow
from ..notifications import outbox
from . import tickets as ticket_service

log = logging.getLogger(__name__)

# reminder -> (the state the ticket waits in, the events that start that wait, the setting)
REMINDERS = {
    "remind_estimate": ("estimate", ("quote",), "remind_estimate_days"),
    "remind_pickup": ("ready", ("finish", "decline", "return_unrepaired"),
                      "remind_pickup_days"),
}
BATCH = 500
# A wait older than the shop's days by more than this gets no reminder (see above).
LATE_LIMIT_DAYS = 7
DEFAULT_HOURS = (9, 20)


def days_for(kind: str) -> int:
    return int(settings.get(REMINDERS[kind][2]) or 0)


def due(kind: str, now: datetime, after: tuple = (), limit: int = BATCH) -> list[tuple]:
    """(ticket id, event id, when the wait began) of the tickets still waiting, since longer
    than the shop's days (and not past ``LATE_LIMIT_DAYS`` more), on the event that started the
    wait, with no reminder about that event yet; the longest waits first, after the (when, id)
    ``after`` (keyset paging). Customers who opted out and imported tickets are left out."""
    state, events, _setting = REMINDERS[kind]
    cutoff = now - timedelta(days=days_for(kind))
    started = (select(TicketEvent.ticket_id, func.max(TicketEvent.seq).label("seq"))
               .where(TicketEvent.event.in_(events)).group_by(TicketEvent.ticket_id)
               .subquery())
    query = (
        select(Ticket.id, TicketEvent.id, TicketEvent.at)
        .join(started, started.c.ticket_id == Ticket.id)
        .join(TicketEvent, and_(TicketEvent.ticket_id == Ticket.id,
                                TicketEvent.seq == started.c.seq))
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.state == state, Ticket.external_id.is_(None),
               TicketEvent.at < cutoff,
               TicketEvent.at >= cutoff - timedelta(days=LATE_LIMIT_DAYS),
               Customer.sms_opt_out.is_(False),
               ~exists().where(Notification.event_id == TicketEvent.id,
                               Notification.event == kind)))
    if after:
        at, ticket_id = after
        query = query.where(or_(TicketEvent.at > at,
                                and_(TicketEvent.at == at, Ticket.id > ticket_id)))
    return [tuple(row) for row in db.session.execute(
        query.order_by(TicketEvent.at, Ticket.id).limit(limit))]


def sending_hours() -> tuple[int, int]:
    """(first hour, hour after the last) of the shop's day reminders are written in; a setting
    that makes no sense (``[20, 9]``) is reported and the default used."""
    try:
        start, end = (int(h) for h in current_app.config.get("REMINDER_HOURS", DEFAULT_HOURS))
    except (TypeError, ValueError):
        start, end = -1, -1
    if not 0 <= start < end <= 24:
        log.warning("REMINDER_HOURS must be [start, end] with 0 <= start < end <= 24; "
                    "using %s", DEFAULT_HOURS)
        return DEFAULT_HOURS
    return start, end


def within_hours(now: datetime) -> bool:
    start, end = sending_hours()
    return start <= now.astimezone(shop_timezone()).hour < end


def next_opening(now: datetime) -> datetime:
    """The next start of the sending hours after ``now`` (UTC)."""
    start, _end = sending_hours()
    local = now.astimezone(shop_timezone())
    opening = local.replace(hour=start, minute=0, second=0, microsecond=0)
    if opening <= local:
        opening = (local + timedelta(days=1)).replace(hour=start, minute=0, second=0,
                                                      microsecond=0)
    return opening.astimezone(timezone.utc)


def still_due(note: Notification, now: datetime) -> tuple[str, object]:
    """What to do with a reminder about to be sent again: ``("send", None)``; ``("hold",
    when)`` outside the sending hours (a retry that fell due at night goes in the morning);
    ``("cancel", why)`` once the ticket is no longer waiting on the event the reminder is about
    (the customer answered, collected, or a new estimate was sent). Read at each attempt, so
    a held reminder never follows what the customer did meanwhile."""
    state, events, _setting = REMINDERS[note.event]
    ticket = db.session.get(Ticket, note.ticket_id)
    latest = db.session.scalar(
        select(TicketEvent.id).where(TicketEvent.ticket_id == note.ticket_id,
                                     TicketEvent.event.in_(events))
        .order_by(TicketEvent.seq.desc()).limit(1))
    if ticket is None or ticket.state != state or latest != note.event_id:
        return "cancel", "no longer due: the ticket has moved on"
    if ticket.customer.sms_opt_out:
        return "cancel", "the customer has opted out of SMS since"
    if not within_hours(now):
        return "hold", next_opening(now)
    return "send", None


def remind(now: Optional[datetime] = None) -> dict[str, int]:
    """Write every reminder due at ``now``: {reminder: how many written}; none outside the
    sending hours (the clock comes back within them). Each ticket is its own transaction."""
    now = now or utcnow()
    written = {kind: 0 for kind in REMINDERS}
    if not within_hours(now):
        return written
    if not links.base_url_known():  # a link to localhost would reach nobody: wait for one
        log.warning("reminders wait: no PUBLIC_BASE_URL, and no staff member has opened a "
                    "page yet, so their links would lead nowhere")
        return written
    for kind in REMINDERS:
        if days_for(kind) <= 0:
            continue
        after: tuple = ()
        while True:
            batch = due(kind, now, after)
            written[kind] += sum(_remind_one(kind, ticket_id, event_id)
                                 for ticket_id, event_id, _at in batch)
            if len(batch) < BATCH:
                break
            after = (batch[-1][2], batch[-1][0])
    return written


class _MovedOn(Exception):
    """The ticket left its waiting state while its reminder was being written."""


def _remind_one(kind: str, ticket_id: int, event_id: int) -> bool:
    """Write one reminder, unless the ticket moved on. The state is read again after the write,
    locked (PostgreSQL: FOR UPDATE; SQLite: the write holds the file's one writer turn), so an
    answer committed meanwhile rolls the reminder back instead of following it."""
    state = REMINDERS[kind][0]
    try:
        with ticket_service.committing():
            ticket = ticket_service.get_ticket(ticket_id)
            event_row = db.session.get(TicketEvent, event_id)
            if ticket.state != state or event_row is None:
                return False
            if outbox.write_for_event(ticket, event_row, kind=kind) is None:
                return False
            now_state = db.session.execute(
                select(Ticket.state).where(Ticket.id == ticket_id).with_for_update()).scalar()
            if now_state != state:
                raise _MovedOn
            return True
    except _MovedOn:
        return False
    except DomainError as exc:
        log.info("reminder %s skipped for ticket %s: %s", kind, ticket_id, exc.message)
        return False
