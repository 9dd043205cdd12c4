"""Technicians' actions and lookups: the worklist ("cartable"), claiming a ticket from the repair
queue, firing a technician's event (claiming the ticket on the way when nobody has it yet), and
the customer-facing place of a device in the repair queue.

Each action owns its one commit (through ``services.tickets.committing``, which turns a lost
race into Conflict). Only the lifecycle changes a ticket's state; a claim is a non-transition
audit record (``lifecycle.record``) that sets ``Ticket.technician``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from .. import lifecycle, settings, visits
from ..errors import Conflict, Forbidden, NotFound, ValidationError
from ..extensions import db
from ..lifecycle import Actor
from ..models import Branch, Ticket, TicketEvent, TicketNote, User
from . import tickets as ticket_service

# States in which a ticket sits at the repair bench (a technician may hold it).
BENCH_STATES = ("diagnosis", "estimate", "repair", "waiting_parts")
# The repair queue: devices waiting for a technician to pick them up, oldest first.
QUEUE_STATES = ("diagnosis", "repair", "waiting_parts")
# The events a technician fires; firing one on an unassigned ticket makes it theirs.
TECHNICIAN_EVENTS = frozenset(name for name, rule in lifecycle.EVENTS.items()
                              if "technician" in rule.roles)
WORKLIST_LIMIT = 300


@dataclass
class Row:
    """A ticket on the worklist with what the technician needs at a glance."""

    ticket: Ticket
    since: Optional[datetime]  # when it entered its current state
    late: bool  # past its promised date
    overdue: bool  # longer in its state than the shop's limit for it


@dataclass
class Worklist:
    mine: dict[str, list[Row]] = field(default_factory=dict)  # state -> rows
    queue: list[Row] = field(default_factory=list)  # unassigned, oldest first
    estimates: list[Row] = field(default_factory=list)  # waiting on the customer
    late: list[Row] = field(default_factory=list)  # past their promised date
    everyone: bool = False  # a manager's view: every technician's tickets
    branch_id: Optional[int] = None  # a manager's view of one branch (None: every branch)
    # a manager's view: what each technician holds, [(technician, {state: n, "late": n})]
    load: list[tuple[User, dict[str, int]]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"queue": len(self.queue), "estimate": len(self.estimates),
                "late": len(self.late),
                **{state: len(rows) for state, rows in self.mine.items()}}


def _rows(query) -> list[Row]:
    entered = settings.state_entered_at().label("since")
    today = visits.shop_day()
    found = db.session.execute(
        query.add_columns(entered)
        .options(joinedload(Ticket.device), joinedload(Ticket.technician))
        .limit(WORKLIST_LIMIT)).unique().all()
    overdue = settings.overdue_ids(t.id for t, _ in found)
    return [Row(t, since, bool(t.promised_date and t.promised_date < today), t.id in overdue)
            for t, since in found]


def _branch_filter(user: User):
    return (Ticket.branch_id == user.branch_id,) if user.branch_id else ()


def worklist(user: User, branch_id: Optional[int] = None) -> Worklist:
    """The cartable: a technician's own tickets by state, the unassigned repair queue (oldest
    first), their estimates waiting on customers and their tickets past the promised date. A
    manager sees every technician's tickets, of every branch or of ``branch_id`` (a manager
    acts anywhere: their own branch alone would hide the other's work, which the dashboard
    counts), and what each technician holds."""
    everyone = user.role != "technician"
    where = (Ticket.branch_id == branch_id,) if everyone and branch_id else ()
    if everyone:
        mine_filter = (Ticket.technician_id.is_not(None), *where)
    else:
        mine_filter = (Ticket.technician_id == user.id,)
        where = _branch_filter(user)
    work = Worklist(everyone=everyone, branch_id=branch_id if everyone else None)
    mine = _rows(select(Ticket).where(*mine_filter, Ticket.state.in_(BENCH_STATES))
                 .order_by(Ticket.promised_date.is_(None), Ticket.promised_date,
                           Ticket.created_at, Ticket.id))
    for state in ("diagnosis", "repair", "waiting_parts"):
        work.mine[state] = [r for r in mine if r.ticket.state == state]
    work.estimates = sorted((r for r in mine if r.ticket.state == "estimate"),
                            key=lambda r: (r.since is None, r.since))
    work.late = [r for r in mine if r.late]
    work.queue = _rows(select(Ticket).where(Ticket.technician_id.is_(None),
                                            Ticket.state.in_(QUEUE_STATES), *where)
                       .order_by(Ticket.created_at, Ticket.id))
    if everyone:
        work.load = _load(mine, branch_id)
    return work


def _load(rows: list[Row], branch_id: Optional[int]) -> list[tuple[User, dict[str, int]]]:
    """What each technician holds at the bench, by state, with those past the promised date:
    the busiest first, and the active technicians holding nothing last (the ones to give work
    to)."""
    held: dict[int, dict[str, int]] = {}
    people: dict[int, User] = {}
    for r in rows:
        tech = r.ticket.technician
        counts = held.setdefault(tech.id, dict.fromkeys((*BENCH_STATES, "late", "total"), 0))
        people[tech.id] = tech
        counts[r.ticket.state] += 1
        counts["total"] += 1
        counts["late"] += r.late
    for tech in technicians_to_assign(branch_id):
        if tech.id not in held:
            people[tech.id] = tech
            held[tech.id] = dict.fromkeys((*BENCH_STATES, "late", "total"), 0)
    return sorted(((people[i], counts) for i, counts in held.items()),
                  key=lambda pair: (-pair[1]["total"], pair[0].display_name.casefold()))


def _take(ticket: Ticket, user: User) -> None:
    """Make ``user`` the ticket's technician, with its audit record (same transaction)."""
    lifecycle.record(ticket, "claim", Actor.staff(user), {"technician": user.username},
                     technician=user)


def take_if_nobody_holds(ticket: Ticket, actor: Actor, event: str) -> None:
    """A technician who acts on a ticket nobody holds becomes its technician (so the reports
    credit the work to them), from the ticket page or the API alike."""
    if (actor.kind == "staff" and actor.role == "technician" and ticket.technician_id is None
            and event in TECHNICIAN_EVENTS and ticket.state in BENCH_STATES
            and event in lifecycle.allowed_events(ticket.state, actor.role)):
        _take(ticket, db.session.get(User, actor.user_id))


def claim(ticket_id: int, user: User, expected_version: Optional[int] = None) -> Ticket:
    """A technician takes a ticket from the repair queue. Refused (Conflict) when someone else
    holds it or the ticket changed since the technician's screen showed it."""
    if user.role != "technician":
        raise Forbidden(_("Only a technician can claim a ticket."))
    with ticket_service.committing():
        ticket = ticket_service.get_ticket(ticket_id)
        ticket_service.check_version(ticket, expected_version)
        ticket_service.check_branch(ticket, user.role, user.branch_id)
        if ticket.technician_id == user.id:
            return ticket
        if ticket.technician_id is not None:
            raise Conflict(_("%(name)s already has this ticket.",
                             name=ticket.technician.display_name))
        if ticket.state not in BENCH_STATES:
            raise Conflict(_("A ticket can be claimed only while it is at the repair bench."),
                           state=ticket.state)
        _take(ticket, user)
    return ticket


def branch_choices() -> list[Branch]:
    """The branches a manager's worklist can show one of (none to choose from in a shop of
    one branch)."""
    branches = list(db.session.scalars(select(Branch).where(Branch.active.is_(True))
                                       .order_by(Branch.id)))
    return branches if len(branches) > 1 else []


def technicians_to_assign(branch_id: Optional[int] = None) -> list[User]:
    """The active technicians a ticket may be given to (of the branch, when it has one, and
    those of no branch), by name."""
    query = select(User).where(User.role == "technician", User.active.is_(True))
    if branch_id is not None:
        query = query.where((User.branch_id == branch_id) | User.branch_id.is_(None))
    return sorted(db.session.scalars(query), key=lambda u: u.display_name.casefold())


def can_assign(user: User, ticket: Ticket) -> bool:
    """A manager gives any ticket at the bench to a technician, or back to the repair queue;
    the technician holding one can give it back to the queue (off sick, a part of another
    trade)."""
    if ticket.state not in BENCH_STATES:
        return False
    return user.role == "manager" or (user.role == "technician"
                                      and ticket.technician_id == user.id)


def _assign(ticket: Ticket, by: User, technician: Optional[User]) -> None:
    before = ticket.technician.username if ticket.technician is not None else None
    lifecycle.record(ticket, "assign", Actor.staff(by),
                     {"technician": technician.username if technician else None,
                      "before": before}, technician=technician)


def assign(ticket_id: int, by: User, username: Optional[str],
           expected_version: Optional[int] = None) -> Ticket:
    """Give a ticket at the bench to the technician named ``username``, or (None) back to the
    repair queue for anyone to claim; recorded in the ticket's trail with who it was with.
    Refused when ``by`` may not (``can_assign``), the technician is not an active one, or the
    ticket changed since it was shown."""
    with ticket_service.committing():
        ticket = ticket_service.get_ticket(ticket_id)
        ticket_service.check_version(ticket, expected_version)
        if ticket.state not in BENCH_STATES:
            raise Conflict(_("A ticket can be given to a technician only while it is at the "
                             "repair bench."), state=ticket.state)
        if not can_assign(by, ticket):
            raise Forbidden(_("Only a manager, or the technician who has it, can hand a ticket "
                              "on."))
        technician = None
        if username:
            technician = next((u for u in technicians_to_assign(ticket.branch_id)
                               if u.username == username), None)
            if technician is None:  # none such, gone, or of another branch
                raise ValidationError(_("Some fields are not valid."), fields={
                    "technician": _("No active technician is called %(name)s.",
                                    name=username)})
            if by.role != "manager" and technician.id != by.id:
                raise Forbidden(_("Only a manager can give a ticket to another technician."))
        if (technician.id if technician else None) == ticket.technician_id:
            return ticket
        _assign(ticket, by, technician)
    return ticket


def held_by(user_id: int) -> list[Ticket]:
    """The tickets at the bench ``user_id`` holds (a technician leaving the shop)."""
    return list(db.session.scalars(select(Ticket).where(
        Ticket.technician_id == user_id, Ticket.state.in_(BENCH_STATES))
        .order_by(Ticket.id)))


def return_to_queue(user_id: int, by: User) -> int:
    """Every ticket at the bench ``user_id`` holds goes back to the repair queue, each with
    its ``assign`` record; by an administrator or a manager. Returns how many."""
    with ticket_service.committing():
        tickets = held_by(user_id)
        for ticket in tickets:
            _assign(ticket, by, None)
    return len(tickets)


def fire_event(ticket_id: int, event: str, user: User, data: Optional[dict] = None,
               expected_version: Optional[int] = None, ip: Optional[str] = None) -> Ticket:
    """Fire ``event`` as staff member ``user`` from the ticket page. A technician who acts on a
    ticket nobody holds becomes its technician in the same transaction (so the reports credit
    the work to them); an estimate within the pre-approved amount is approved at once."""
    with ticket_service.committing():
        ticket = ticket_service.get_ticket(ticket_id)
        ticket_service.check_version(ticket, expected_version)
        ticket_service.fire_loaded(ticket, event, Actor.staff(user, ip), data)
    return ticket


def ticket_page(ticket_id: int) -> tuple[Ticket, list[TicketNote]]:
    """A ticket with everything its page shows, in a few queries (the customer, device,
    technician and the events with who fired them joined; its lines and SMS, and the notes
    with their authors, one query each)."""
    ticket = db.session.scalars(
        select(Ticket).where(Ticket.id == ticket_id)
        .options(joinedload(Ticket.customer), joinedload(Ticket.device),
                 joinedload(Ticket.technician),
                 joinedload(Ticket.events).joinedload(TicketEvent.actor))).unique().one_or_none()
    if ticket is None:
        raise NotFound(_("No such ticket."))
    notes = db.session.scalars(
        select(TicketNote).where(TicketNote.ticket_id == ticket.id)
        .options(joinedload(TicketNote.author)).order_by(TicketNote.id)).all()
    return ticket, list(notes)


def full_names(usernames: set) -> dict:
    """{user name: full name} of these users (the timeline shows people by their names)."""
    if not usernames:
        return {}
    return dict(db.session.execute(select(User.username, User.full_name)
                                   .where(User.username.in_(usernames))).all())


def queue_position(ticket: Ticket) -> Optional[int]:
    """Devices ahead of this one in its branch's repair queue (first come, first served), while
    it waits for diagnosis or repair; None in any other state."""
    if ticket.state not in ("diagnosis", "repair"):
        return None
    return db.session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.state == ticket.state, Ticket.branch_id == ticket.branch_id,
            Ticket.created_at < ticket.created_at)) or 0


def promised_late(ticket: Ticket, today: Optional[date] = None) -> bool:
    return bool(ticket.promised_date and ticket.state in BENCH_STATES
                and ticket.promised_date < (today or visits.shop_day()))
