"""Loaner devices: a cheap phone (a «گوشی امانی») lent to the customer while theirs is in the
shop, and taken back before the repaired one is handed over.

Built like a refund: each action is a hash-chained record in the ticket's trail
(``lend_loaner``, ``return_loaner``; lifecycle.record, which changes no state and bumps the
ticket's version) with the loan's row, in one commit. The hand-back and the cancel are refused
while a loaner is out unless it comes back with them (``back_with``, called by
services.tickets.fire_loaded in the event's own transaction).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from .. import audit, lifecycle, persist
from .. import settings as shop_settings
from .. import validation as v
from ..errors import Conflict, Forbidden, NotFound, ValidationError
from ..extensions import db
from ..i18n import format_datetime, list_separator, localize_digits
from ..lifecycle import Actor
from ..models import Branch, Loan, Loaner, Ticket, TicketEvent, utcnow
from . import admin as admin_service
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
    record (one of the branch's own phones, ``loaner_id``, or what is typed: a description and
    its IMEI or serial; its condition) and the loan's row, in one commit. At most one out per
    ticket, and a phone of the stock out on one ticket at a time."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        _check(ticket, actor)
        ticket_service.check_version(ticket, expected_version)
        lend_loaded(ticket, actor, data)
    return ticket


def lend_loaded(ticket: Ticket, actor: Actor, data: dict,
                at: Optional[datetime] = None, notify: bool = True) -> Loan:
    """The loan, in the caller's transaction (the lending form's, the intake's, an imported
    ticket's at its own time ``at``, with ``notify=False``: no webhook): see ``lend``."""
    if ticket.state not in lifecycle.LOANER_STATES:
        raise Conflict(_("A loaner phone is lent only while the ticket is open, not after "
                         "the hand-back or a cancellation."), state=ticket.state)
    already = out(ticket.id)
    if already is not None:
        raise Conflict(_("A loaner phone is out on this ticket already: %(loaner)s. Take "
                         "it back first.", loaner=named(already)), state=ticket.state)
    data = data if isinstance(data, dict) else {}
    typed = [k for k in ("description", "serial") if str(data.get(k) or "").strip()]
    if data.get("loaner_id") not in (None, "") and typed:
        # a phone picked from the list and another typed: which one the customer holds is a
        # guess either way (the list's first phone is picked until the desk changes it)
        problem = _("A phone is picked from the list and another is typed: pick “Another "
                    "phone” in the list to lend the one typed, or clear what is typed.")
        raise ValidationError(problem, fields={"loaner_id": problem})
    clean = lifecycle.clean_loan(data)
    if clean.get("loaner_id"):
        phone = lendable(clean["loaner_id"], ticket.branch_id)
        clean = {"loaner_id": phone.id, "description": phone.description,
                 **({"serial": phone.serial} if phone.serial else {}),
                 **({"condition": clean["condition"]} if clean.get("condition") else {})}
    now = at or utcnow()
    loan = persist.insert(Loan(
        ticket_id=ticket.id, description=clean["description"], serial=clean.get("serial"),
        condition=clean.get("condition") or "", lent_at=now, lent_by_id=actor.user_id,
        lent_by_name=actor.name, loaner_id=clean.get("loaner_id")))
    lifecycle.record(ticket, "lend_loaner", actor, {"loan_id": loan.id, **clean}, at=now,
                     notify=notify)
    return loan


def lend_at_intake(ticket: Ticket, actor: Actor, loaner_id) -> Loan:
    """One of the branch's loaner phones lent with the admit, in its transaction (the intake
    form): refused like any loan, and then nothing is admitted."""
    _check(ticket, actor)
    return lend_loaded(ticket, actor, {"loaner_id": loaner_id})


def lendable(loaner_id: int, branch_id: int) -> Loaner:
    """The branch's phone ``loaner_id`` if it may be lent now: ValidationError on
    ``loaner_id`` for another branch's, a retired or a damaged one; Conflict when it is out
    (the database's ``uq_loans_loaner_out`` has the last word when two desks lend it at
    once)."""
    phone = db.session.get(Loaner, loaner_id)
    problem = None
    if phone is None or phone.branch_id != branch_id:
        problem = _("No such loaner phone at this ticket's branch.")
    elif phone.retired_at is not None:
        problem = _("Loaner phone %(label)s is retired.", label=phone.label)
    elif phone.condition != "fine":
        problem = _("Loaner phone %(label)s came back damaged: a manager marks it fine "
                    "before it is lent again.", label=phone.label)
    if problem:
        raise ValidationError(problem, fields={"loaner_id": problem})
    holder = db.session.scalar(select(Loan).where(Loan.loaner_id == phone.id,
                                                  Loan.returned_at.is_(None))
                               .options(joinedload(Loan.ticket)))
    if holder is not None:  # named on its field, as the refusals above are
        problem = _("Loaner phone %(label)s is out already, on ticket %(number)s.",
                    label=phone.label, number=localize_digits(holder.ticket.number))
        raise Conflict(problem, fields={"loaner_id": problem})
    return phone


def take_back(ticket_id, actor: Actor, expected_version: Optional[int] = None,
              data: Optional[dict] = None, condition_required: bool = False) -> Ticket:
    """The customer gave the loaner phone back: a ``return_loaner`` record and the loan's
    return, in one commit. ``data``: how it came back (lifecycle.clean_return: ``condition``
    fine or damaged, ``note``; ``condition_required`` on the desk's form); a phone of the
    stock that came back damaged is not lent again until a manager marks it fine."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        _check(ticket, actor)
        ticket_service.check_version(ticket, expected_version)
        return_loaded(ticket, actor, data, condition_required)
    return ticket


def return_loaded(ticket: Ticket, actor: Actor, data: Optional[dict],
                  condition_required: bool = False,
                  at: Optional[datetime] = None, notify: bool = True) -> TicketEvent:
    """The return, in the caller's transaction (the form's, an imported ticket's at its own
    time ``at``, with ``notify=False``: no webhook): see ``take_back``."""
    loan = out(ticket.id)
    if loan is None:
        raise Conflict(_("No loaner phone is out on this ticket."), state=ticket.state)
    back = lifecycle.clean_return(data if data is not None else {}, condition_required)
    return _record_return(ticket, loan, actor, back=back, at=at, notify=notify)


def _record_return(ticket: Ticket, loan: Loan, actor: Actor,
                   with_event: Optional[str] = None, back: Optional[dict] = None,
                   at: Optional[datetime] = None, notify: bool = True) -> TicketEvent:
    now = at or utcnow()
    back = back or {}
    data = {"loan_id": loan.id, "description": loan.description, **back}
    if with_event:
        data["with_event"] = with_event
    persist.update(loan, returned_at=now, returned_by_id=actor.user_id,
                   returned_by_name=actor.name, return_condition=back.get("condition"),
                   return_note=back.get("note"))
    if loan.loaner_id is not None and back.get("condition"):
        # the stock phone as it came back: a damaged one waits for the manager
        phone = db.session.get(Loaner, loan.loaner_id)
        phone.condition = back["condition"]
        phone.condition_note = back.get("note") or ""
    return lifecycle.record(ticket, "return_loaner", actor, data, at=now, notify=notify)


def back_with(ticket: Ticket, event: str, actor: Actor, data: dict,
              returned: bool, at: Optional[datetime] = None, notify: bool = True) -> None:
    """Before ``event`` (the hand-back, the cancel) in its transaction: with a loaner out, it
    is refused (ValidationError on ``loaner_returned``, with the event's own field problems,
    so the form names them all at once) unless the loaner came back (``returned``), which is
    recorded first, with its condition when ``data`` says it (``loaner_condition``,
    ``loaner_note``: lifecycle.clean_return). An event the lifecycle refuses anyway (state,
    role) is left to it."""
    rule = lifecycle.EVENTS[event]
    back_data = {"condition": data.pop("loaner_condition", None),
                 "note": data.pop("loaner_note", None)}
    if ticket.state not in rule.sources or actor.role not in rule.roles:
        return
    loan = out(ticket.id)
    if loan is None:
        return
    fields = {}
    if not returned:
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
    try:
        back = lifecycle.clean_return(back_data)
    except ValidationError as exc:
        try:
            rule.clean(dict(data), ticket, actor)
        except ValidationError as own:
            fields = dict(own.fields)
        raise ValidationError(exc.message, fields={
            **fields, **{f"loaner_{k}": m for k, m in exc.fields.items()}}) from None
    _record_return(ticket, loan, actor, with_event=event, back=back, at=at, notify=notify)


# --- the branch's own loaner phones (the stock list) -------------------------------------------

@dataclass
class StockRow:
    """One phone of the stock list and its state now: ``free``, ``out`` (``loan``, with its
    ticket and customer), ``damaged`` (came back so, not lent) or ``retired``; ``overdue``
    when out and its ticket has waited for pickup past the shop's limit for ``ready``
    (``pickup_since``), or it has been out the shop's ``loaner_overdue_days`` or more (the
    settings page; ``LOANER_OVERDUE_DAYS`` until an admin sets it)."""
    phone: Loaner
    loan: Optional[Loan] = None
    pickup_since: Optional[datetime] = None
    overdue: Optional[str] = None  # "pickup" or "long"

    @property
    def state(self) -> str:
        if self.phone.retired_at is not None:
            return "retired"
        if self.loan is not None:
            return "out"
        return "free" if self.phone.condition == "fine" else "damaged"


def stock(branch_id: Optional[int] = None, now: Optional[datetime] = None) -> list[StockRow]:
    """The stock list (a branch's, or every branch's): in use first, by branch and label,
    each with the loan out of it (its ticket, customer and device) and whether that is
    overdue; the retired at the end. Two queries."""
    entered = shop_settings.state_entered_at().label("entered")
    query = (select(Loaner, Loan, entered)
             .outerjoin(Loan, (Loan.loaner_id == Loaner.id) & Loan.returned_at.is_(None))
             .outerjoin(Ticket, Ticket.id == Loan.ticket_id)
             .options(joinedload(Loaner.branch),
                      joinedload(Loan.ticket).joinedload(Ticket.customer),
                      joinedload(Loan.ticket).joinedload(Ticket.device))
             .order_by(Loaner.retired_at.is_not(None), Loaner.branch_id, Loaner.label,
                       Loaner.id))
    if branch_id is not None:
        query = query.where(Loaner.branch_id == branch_id)
    now = now or utcnow()
    long_days = shop_settings.get("loaner_overdue_days")  # the admin's, else the config's
    rows = []
    for phone, loan, since in db.session.execute(query).unique().all():
        row = StockRow(phone, loan)
        if loan is not None:
            if loan.ticket.state == "ready":
                row.pickup_since = since
            if loan.ticket.state == "ready" and shop_settings.past_limit("ready", since, now):
                row.overdue = "pickup"
            elif long_days and loan.lent_at <= now - timedelta(days=long_days):
                row.overdue = "long"
        rows.append(row)
    return rows


def free_phones(branch_id: int) -> list[Loaner]:
    """The branch's phones that may be lent now (in use, fine, none of their loans out), by
    label: what the lending forms offer."""
    busy = select(Loan.loaner_id).where(Loan.returned_at.is_(None),
                                        Loan.loaner_id.is_not(None))
    return list(db.session.scalars(
        select(Loaner).where(Loaner.branch_id == branch_id, Loaner.retired_at.is_(None),
                             Loaner.condition == "fine", Loaner.id.not_in(busy))
        .order_by(Loaner.label, Loaner.id)))


def has_stock(branch_id: int) -> bool:
    """Whether the branch keeps a stock list (any phone in use): the lending form then offers
    its phones, and typing one stays for the rest."""
    return db.session.scalar(select(Loaner.id).where(
        Loaner.branch_id == branch_id, Loaner.retired_at.is_(None)).limit(1)) is not None


def get_phone(loaner_id) -> Loaner:
    phone = (db.session.get(Loaner, loaner_id)
             if isinstance(loaner_id, int) and 0 < loaner_id <= v.MAX_ID else None)
    if phone is None:
        raise NotFound(_("No such loaner phone."))
    return phone


def _phone_values(phone: Loaner) -> dict:
    return {"branch_id": phone.branch_id, "label": phone.label, "model": phone.model,
            "serial": phone.serial, "notes": phone.notes or "", "condition": phone.condition,
            "condition_note": phone.condition_note or "",
            "retired": phone.retired_at is not None}


def _check_stock_role(by) -> None:
    if by.role not in lifecycle.LOANER_STOCK_ROLES:
        raise Forbidden(_("Only a manager or the administrator keeps the list of loaner "
                          "phones."))


def save_phone(by, loaner_id: Optional[int], data: dict) -> Loaner:
    """Add a phone to a branch's stock list (``loaner_id`` None) or edit one: ``branch_id``,
    ``label`` (the short name the desk calls it by, one per branch among those in use),
    ``model``, ``serial`` (IMEI or serial, optional), ``notes``. In the admin audit log."""
    _check_stock_role(by)
    f = v.Fields(data if isinstance(data, dict) else {})
    f.take("branch_id", v.integer, minimum=1, maximum=v.MAX_ID)
    f.take("label", v.text, max_len=20)
    f.take("model", v.text, max_len=120)
    f.take("serial", v.serial_or_imei, required=False)
    f.take("notes", v.text, max_len=500, required=False)
    if f.clean.get("branch_id") and db.session.get(Branch, f.clean["branch_id"]) is None:
        f.errors["branch_id"] = _("No such branch.")
    with admin_service.committing():
        phone = get_phone(loaner_id) if loaner_id is not None else None
        clean = f.clean
        if "label" in clean and "branch_id" in clean:
            taken = select(Loaner.id).where(
                Loaner.branch_id == clean["branch_id"], Loaner.retired_at.is_(None),
                func.lower(Loaner.label) == clean["label"].lower())
            if phone is not None:
                taken = taken.where(Loaner.id != phone.id)
            if db.session.scalar(taken.limit(1)) is not None:
                f.errors["label"] = _("Another loaner phone of this branch has this label.")
        if phone is not None and phone.branch_id != clean.get("branch_id", phone.branch_id) \
                and out_of(phone.id) is not None:
            f.errors["branch_id"] = _("It is out on a ticket: it moves to another branch once "
                                      "it is back.")
        clean = f.done()
        values = {"branch_id": clean["branch_id"], "label": clean["label"],
                  "model": clean["model"], "serial": clean.get("serial"),
                  "notes": clean.get("notes") or ""}
        if phone is None:
            phone = Loaner(**values, condition="fine", condition_note="")
            db.session.add(phone)
            db.session.flush()
            audit.log("loaner.create", obj=phone, after=_phone_values(phone), actor=by)
        else:
            before = _phone_values(phone)
            for key, value in values.items():
                setattr(phone, key, value)
            old, new = audit.changes(before, _phone_values(phone))
            if new:
                audit.log("loaner.update", obj=phone, before=old, after=new, actor=by)
    return phone


def out_of(loaner_id: int) -> Optional[Loan]:
    """The loan of this stock phone out now, or None."""
    return db.session.scalar(select(Loan).where(Loan.loaner_id == loaner_id,
                                                Loan.returned_at.is_(None)))


def retire(by, loaner_id) -> Loaner:
    """Take a phone off the list of those lent (sold, lost, beyond repair); it stays listed,
    retired, for its past loans. Not while it is out."""
    _check_stock_role(by)
    with admin_service.committing():
        phone = get_phone(loaner_id)
        if phone.retired_at is not None:
            raise Conflict(_("Loaner phone %(label)s is retired already.", label=phone.label))
        loan = out_of(phone.id)
        if loan is not None:
            raise Conflict(_("Loaner phone %(label)s is out on ticket %(number)s: take it "
                             "back first.", label=phone.label,
                             number=localize_digits(loan.ticket.number)))
        phone.retired_at = utcnow()
        audit.log("loaner.retire", obj=phone, before={"retired": False},
                  after={"retired": True}, actor=by)
    return phone


def mark_fine(by, loaner_id) -> Loaner:
    """The manager had a phone that came back damaged mended (or found it fine): it is lent
    again."""
    _check_stock_role(by)
    with admin_service.committing():
        phone = get_phone(loaner_id)
        if phone.condition == "fine":
            raise Conflict(_("Loaner phone %(label)s is fine already.", label=phone.label))
        before = {"condition": phone.condition, "condition_note": phone.condition_note}
        phone.condition, phone.condition_note = "fine", ""
        audit.log("loaner.mark_fine", obj=phone, before=before,
                  after={"condition": "fine", "condition_note": ""}, actor=by)
    return phone
