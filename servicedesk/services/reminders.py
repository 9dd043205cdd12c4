"""Reminder SMS to customers who have not acted: an estimate nobody answered, a device nobody
collected. The approval and the pick-up are the stages a shop waits longest on, and a customer
who forgot the first SMS needs a second one, not a phone call from a busy desk.

A reminder goes once per estimate (a revised estimate may have its own) or hand-back, after the
days the shop set (``remind_estimate_days``, ``remind_pickup_days``; 0: none), as an SMS about
the event that started the wait: its outbox row is keyed by that event, so running twice, or
two runs at once, never sends two. It is written between ``REMINDER_HOURS`` of the shop's day,
or held until the next morning (``send_after``), never at 3 a.m. It follows the customer's
opt-out and the shop's switch for its template, like every SMS. The worker writes them on its
hourly clock; ``flask remind-customers`` does the same from cron.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone
from typing import Optional

from flask import current_app
from sqlalchemy import and_, exists, func, select

from .. import settings
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


def days_for(kind: str) -> int:
    return int(settings.get(REMINDERS[kind][2]) or 0)


def due(kind: str, now: datetime, limit: int = BATCH) -> list[tuple[int, int]]:
    """(ticket id, event id) of the tickets still waiting, since longer than the shop's days,
    on the event that started the wait, with no reminder about that event yet; the longest
    waits first. Customers who opted out are left out."""
    state, events, _setting = REMINDERS[kind]
    cutoff = now - timedelta(days=days_for(kind))
    started = (select(TicketEvent.ticket_id, func.max(TicketEvent.seq).label("seq"))
               .where(TicketEvent.event.in_(events)).group_by(TicketEvent.ticket_id)
               .subquery())
    return [tuple(row) for row in db.session.execute(
        select(Ticket.id, TicketEvent.id)
        .join(started, started.c.ticket_id == Ticket.id)
        .join(TicketEvent, and_(TicketEvent.ticket_id == Ticket.id,
                                TicketEvent.seq == started.c.seq))
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.state == state, TicketEvent.at < cutoff,
               Customer.sms_opt_out.is_(False),
               ~exists().where(Notification.event_id == TicketEvent.id,
                               Notification.event == kind))
        .order_by(TicketEvent.at, Ticket.id).limit(limit))]


def send_after(now: datetime) -> Optional[datetime]:
    """None within the shop's sending hours, else when they next begin (UTC)."""
    start, end = current_app.config.get("REMINDER_HOURS", (9, 20))
    tz = shop_timezone()
    local = now.astimezone(tz)
    if start <= local.hour < end:
        return None
    day = local.date() + timedelta(days=1 if local.hour >= end else 0)
    return datetime.combine(day, time(start), tz).astimezone(timezone.utc)


def remind(now: Optional[datetime] = None) -> dict[str, int]:
    """Write every reminder due at ``now``: {reminder: how many written}. Each ticket is its own
    transaction; a ticket that moved on meanwhile (the customer answered) is skipped."""
    now = now or utcnow()
    hold = send_after(now)
    written = {}
    for kind in REMINDERS:
        written[kind] = 0
        if days_for(kind) <= 0:
            continue
        while True:
            batch = due(kind, now)
            done = sum(_remind_one(kind, ticket_id, event_id, hold)
                       for ticket_id, event_id in batch)
            written[kind] += done
            if len(batch) < BATCH or done == 0:
                break
    return written


def _remind_one(kind: str, ticket_id: int, event_id: int, hold: Optional[datetime]) -> bool:
    state = REMINDERS[kind][0]
    try:
        with ticket_service.committing():
            ticket = ticket_service.get_ticket(ticket_id)
            event_row = db.session.get(TicketEvent, event_id)
            if ticket.state != state or event_row is None:
                return False
            return outbox.write_for_event(ticket, event_row, kind=kind,
                                          send_after=hold) is not None
    except DomainError as exc:
        log.info("reminder %s skipped for ticket %s: %s", kind, ticket_id, exc.message)
        return False
