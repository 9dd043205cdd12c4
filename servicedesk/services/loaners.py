"""Loaner devices: a cheap phone (a «گوشی امانی») lent to the customer while theirs is in the
shop, and taken back before the repaired one is handed over.

Built like a refund: each action is a hash-chained record in the ticket's trail
(``lend_loaner``, ``return_loaner``; lifecycle.record, which changes no state and bumps the
ticket's version) with the loan's row, in one commit. The hand-back and the cancel are refused
while a loaner is out unless it comes back with them (``back_with``, called by
services.tickets.fire_loaded in the event's own transaction).
"""
from __future__ import annotations

from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import lifecycle, persist
from ..errors import Conflict, Forbidden, ValidationError
from ..extensions import db
from ..i18n import format_datetime, list_separator
from ..lifecycle import Actor
from ..models import Loan, Ticket, TicketEvent, utcnow
from . import tickets as ticket_service


def out(ticket_id: int) -> Optional[Loan]:
    """The loaner the ticket's customer has now, or None."""
    return db.session.scalar(select(Loan).where(Loan.ticket_id == ticket_id,
                                                Loan.returned_at.is_(None)))


def held(ticket) -> bool:
    """Whether the ticket's trail says its customer has a loaner now (its last lend or return
    record is a lend): read from the events that come with the ticket, so an answer about a
    ticket without one (nearly all) costs no query."""
    for event in reversed(ticket.events):
        if event.event in ("lend_loaner", "return_loaner"):
            return event.event == "lend_loaner"
    return False


def out_for(ticket_ids) -> dict[int, Loan]:
    """{ticket id: the loaner out} for these tickets, in one query (a list of tickets)."""
    ids = list(ticket_ids)
    if not ids:
        return {}
    return {loan.ticket_id: loan for loan in db.session.scalars(
        select(Loan).where(Loan.ticket_id.in_(ids), Loan.returned_at.is_(None)))}


def of_ticket(ticket_id: int) -> list[Loan]:
    """Every loaner lent on the ticket, the first first."""
    return list(db.session.scalars(select(Loan).where(Loan.ticket_id == ticket_id)
                                   .order_by(Loan.id)))


def loaners_out(branch_id: Optional[int] = None) -> list[Loan]:
    """The loaners out now, the longest out first, with their ticket and its customer and
    device (the desk's list); of one branch's tickets when ``branch_id`` is given."""
    query = (select(Loan).join(Loan.ticket).where(Loan.returned_at.is_(None))
             .options(joinedload(Loan.ticket).joinedload(Ticket.customer),
                      joinedload(Loan.ticket).joinedload(Ticket.device),
                      joinedload(Loan.lent_by))
             .order_by(Loan.lent_at, Loan.id))
    if branch_id is not None:
        query = query.where(Ticket.branch_id == branch_id)
    return list(db.session.scalars(query))


def named(loan: Loan) -> str:
    """The loaner as a message names it: what it is, its IMEI or serial, when it was lent."""
    what = loan.description + (list_separator() + loan.serial if loan.serial else "")
    return _("\"%(loaner)s\" (lent on %(date)s)", loaner=what,
             date=format_datetime(loan.lent_at, "date"))


def _check(ticket: Ticket, actor: Actor) -> None:
    if actor.role not in lifecycle.LOANER_ROLES:
        raise Forbidden(_("Only reception or a manager lends a loaner phone or takes it back."))
    if actor.kind == "staff":
        ticket_service.check_branch(ticket, actor.role, actor.branch_id)


def lend(ticket_id, actor: Actor, data: dict,
         expected_version: Optional[int] = None) -> Ticket:
    """Lend the ticket's customer a loaner phone while the ticket is open: a ``lend_loaner``
    record (what, its IMEI or serial, its condition) and the loan's row, in one commit. At
    most one out per ticket."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        _check(ticket, actor)
        ticket_service.check_version(ticket, expected_version)
        if ticket.state not in lifecycle.LOANER_STATES:
            raise Conflict(_("A loaner phone is lent only while the ticket is open, not after "
                             "the hand-back or a cancellation."), state=ticket.state)
        already = out(ticket.id)
        if already is not None:
            raise Conflict(_("A loaner phone is out on this ticket already: %(loaner)s. Take "
                             "it back first.", loaner=named(already)), state=ticket.state)
        clean = lifecycle.clean_loan(data if isinstance(data, dict) else {})
        now = utcnow()
        loan = persist.insert(Loan(
            ticket_id=ticket.id, description=clean["description"], serial=clean.get("serial"),
            condition=clean.get("condition") or "", lent_at=now, lent_by_id=actor.user_id,
            lent_by_name=actor.name))
        lifecycle.record(ticket, "lend_loaner", actor, {"loan_id": loan.id, **clean}, at=now)
    return ticket


def take_back(ticket_id, actor: Actor, expected_version: Optional[int] = None) -> Ticket:
    """The customer gave the loaner phone back: a ``return_loaner`` record and the loan's
    return, in one commit."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        _check(ticket, actor)
        ticket_service.check_version(ticket, expected_version)
        loan = out(ticket.id)
        if loan is None:
            raise Conflict(_("No loaner phone is out on this ticket."), state=ticket.state)
        _record_return(ticket, loan, actor)
    return ticket


def _record_return(ticket: Ticket, loan: Loan, actor: Actor,
                   with_event: Optional[str] = None) -> TicketEvent:
    now = utcnow()
    data = {"loan_id": loan.id, "description": loan.description}
    if with_event:
        data["with_event"] = with_event
    persist.update(loan, returned_at=now, returned_by_id=actor.user_id,
                   returned_by_name=actor.name)
    return lifecycle.record(ticket, "return_loaner", actor, data, at=now)


def back_with(ticket: Ticket, event: str, actor: Actor, data: dict,
              returned: bool) -> None:
    """Before ``event`` (the hand-back, the cancel) in its transaction: with a loaner out, it
    is refused (ValidationError on ``loaner_returned``, with the event's own field problems,
    so the form names them all at once) unless the loaner came back (``returned``), which is
    recorded first. An event the lifecycle refuses anyway (state, role) is left to it."""
    rule = lifecycle.EVENTS[event]
    if ticket.state not in rule.sources or actor.role not in rule.roles:
        return
    loan = out(ticket.id)
    if loan is None:
        return
    if not returned:
        fields = {}
        try:
            rule.clean(dict(data), ticket, actor)
        except ValidationError as exc:
            fields = dict(exc.fields)
        if event == "deliver":
            message = _("The loaner phone %(loaner)s is still with the customer. Take it back "
                        "before handing the device over, and tick \"Loaner phone returned\".",
                        loaner=named(loan))
        else:
            message = _("The loaner phone %(loaner)s is still with the customer. Take it back "
                        "before cancelling, and tick \"Loaner phone returned\".",
                        loaner=named(loan))
        raise ValidationError(message, fields={**fields, "loaner_returned": message},
                              loaner={"id": loan.id, "description": loan.description,
                                      "serial": loan.serial})
    _record_return(ticket, loan, actor, with_event=event)
