"""The customer's survey after hand-back, and the close of delivered tickets nobody answered.

A survey link (``/s/TOKEN``, sent with ``deliver``) works once: the answer is a row of
``survey_responses``, whose ``ticket_id`` is unique, so the database itself refuses a second
answer, even two sent at the same instant. Answering closes the ticket as the customer; a low
score or a complaint puts it on the manager's follow-up list (``followup_status = "open"``).
Delivered tickets left unanswered are closed by the system after ``auto_close_days`` (a shop
setting, ``AUTO_CLOSE_DAYS`` by default), by the worker and by a command for cron.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Optional

from flask_babel import gettext as _
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from .. import lifecycle, settings
from .. import validation as v
from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..i18n import format_number
from ..lifecycle import Actor
from ..models import SurveyResponse, Ticket, TicketEvent, utcnow
from . import tickets as ticket_service

log = logging.getLogger(__name__)

# The same thresholds as the survey report's follow-up list (reports.LOW_CSAT, DETRACTOR_NPS).
LOW_CSAT = 2  # satisfaction 1 or 2 out of 5
DETRACTOR_NPS = 6  # would-recommend 0 to 6 out of 10

# What a survey link shows: the form, a thank-you for an answer already given, or nothing.
OPEN, ANSWERED, CLOSED, UNAVAILABLE = "open", "answered", "closed", "unavailable"
BATCH = 500  # tickets closed per look-up
# An answer sent after the clock closed its ticket for want of one (the page was opened in
# time) is kept within this long of the close; after it, the survey has closed (a complaint
# typed months later, or by whoever holds an old link, does not reopen a follow-up).
LATE_ANSWER_GRACE = timedelta(days=1)


class AlreadyAnswered(Conflict):
    """The survey of this ticket was answered before: a link works once."""


def response_of(ticket: Ticket) -> Optional[SurveyResponse]:
    return db.session.scalar(select(SurveyResponse).where(SurveyResponse.ticket_id == ticket.id))


def survey_status(ticket: Ticket) -> str:
    """``open`` while delivered and unanswered, ``answered`` once answered, ``closed`` when
    the ticket closed without an answer (the shop's days for it passed), else ``unavailable``
    (not handed back yet)."""
    if response_of(ticket) is not None:
        return ANSWERED
    if ticket.state == "closed":
        return CLOSED
    return OPEN if ticket.state == "delivered" else UNAVAILABLE


def needs_followup(csat: int, nps: Optional[int], complaint: bool) -> bool:
    return csat <= LOW_CSAT or (nps is not None and nps <= DETRACTOR_NPS) or complaint


def _flag(raw: Any) -> bool:
    return raw in (True, 1, "1", "on", "true", "yes", "y")


def clean_answer(data: dict) -> dict:
    """Satisfaction 1-5 (required), would-recommend 0-10, a comment, the complaint flag."""
    # A form sends every field, the blank ones as "": those were not answered.
    data = {k: (None if isinstance(x, str) and not x.strip() else x) for k, x in data.items()}
    f = v.Fields(data)
    f.take("csat", v.integer, minimum=1, maximum=5)
    f.take("nps", v.integer, minimum=0, maximum=10, required=False)
    f.take("comment", v.text, max_len=2000, required=False)
    if "csat" in f.errors:  # said as the customer reads the question, not as a field's rule
        f.errors["csat"] = _("Choose how satisfied you are: a number from 1 to 5.")
    if "nps" in f.errors:
        f.errors["nps"] = _("Choose a number from 0 to 10, or leave it out.")
    clean = f.done()
    clean["complaint"] = _flag(data.get("complaint"))
    return clean


def _already_answered() -> AlreadyAnswered:
    return AlreadyAnswered(_("This survey was already answered. Thank you!"))


def submit_survey(ticket_id: int, data: dict, ip: Optional[str] = None) -> SurveyResponse:
    """Record the customer's answer and close the ticket as the customer, in one transaction.

    Raises ValidationError (bad answer), AlreadyAnswered (a second answer: the unique
    ``ticket_id`` refuses it, whichever request came first) and NotFound (the ticket is not
    waiting for an answer: not handed back yet, or closed without one)."""
    clean = clean_answer(data if isinstance(data, dict) else {})
    try:
        ticket = ticket_service.get_ticket(ticket_id)
        if ticket.state != "delivered":
            if response_of(ticket) is not None:
                raise _already_answered()
            last = ticket.events[-1]
            if ticket.state == "closed" and last.actor_kind == "system" \
                    and utcnow() - last.at <= LATE_ANSWER_GRACE:
                # opened in time, sent after the clock closed it for want of an answer
                db.session.rollback()
                return _answer_after_a_close(ticket_id, clean)
            raise NotFound(_("This survey is not open."))
        response = _response(ticket, clean)
        db.session.add(response)
        db.session.flush()  # the unique ticket_id: a second answer fails here
        lifecycle.fire(ticket, "close", Actor.customer(ip),
                       {"survey_response_id": response.id})
        db.session.commit()
    except StaleDataError:
        # the ticket changed meanwhile: answered from another tab, or closed by the clock
        # for want of an answer just as this one came. That answer is kept all the same.
        db.session.rollback()
        return _answer_after_a_close(ticket_id, clean)
    except IntegrityError:
        db.session.rollback()
        raise _already_answered() from None
    except Exception:
        db.session.rollback()
        raise
    return response


def _response(ticket: Ticket, clean: dict) -> SurveyResponse:
    """The answer as stored: a low score or a complaint opens a follow-up."""
    return SurveyResponse(
        ticket_id=ticket.id, csat=clean["csat"], nps=clean.get("nps"),
        comment=clean.get("comment") or "", complaint=clean["complaint"],
        followup_status="open" if needs_followup(clean["csat"], clean.get("nps"),
                                                 clean["complaint"]) else None)


def _answer_after_a_close(ticket_id: int, clean: dict) -> SurveyResponse:
    ticket = ticket_service.get_ticket(ticket_id)
    if response_of(ticket) is not None or ticket.state != "closed":
        raise _already_answered()
    response = _response(ticket, clean)
    db.session.add(response)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _already_answered() from None
    return response


def _delivered_at():
    return (select(TicketEvent.ticket_id, func.max(TicketEvent.at).label("at"))
            .where(TicketEvent.event == "deliver").group_by(TicketEvent.ticket_id).subquery())


def unanswered_before(cutoff: datetime, limit: int = BATCH) -> list[int]:
    """Ids of delivered tickets handed back before ``cutoff`` with no survey answer."""
    delivered = _delivered_at()
    return list(db.session.scalars(
        select(Ticket.id).join(delivered, delivered.c.ticket_id == Ticket.id)
        .where(Ticket.state == "delivered", delivered.c.at < cutoff,
               ~exists().where(SurveyResponse.ticket_id == Ticket.id))
        .order_by(delivered.c.at, Ticket.id).limit(limit)))


def auto_close_days() -> int:
    return int(settings.get("auto_close_days") or 7)


def auto_close(days: Optional[int] = None, now: Optional[datetime] = None) -> int:
    """Close, as the system, every delivered ticket handed back more than ``days`` days before
    ``now`` (default: the shop's setting) whose survey nobody answered. No SMS is sent (the
    lifecycle writes none for this close). Each ticket is its own transaction: a customer
    answering at that very moment wins, and the ticket is skipped. Returns how many closed."""
    days = auto_close_days() if days is None else int(days)
    cutoff = (now or utcnow()) - timedelta(days=days)
    closed = 0
    while True:
        ids = unanswered_before(cutoff, BATCH)
        batch = 0
        for ticket_id in ids:
            try:
                with ticket_service.committing():
                    ticket = ticket_service.get_ticket(ticket_id)
                    if ticket.state != "delivered" or response_of(ticket) is not None:
                        continue
                    lifecycle.fire(ticket, "close", Actor.system(), {
                        "reason": _("No survey answer %(days)s days after delivery.",
                                    days=format_number(days))})
                batch += 1
            except DomainError as exc:  # answered or changed meanwhile: leave it be
                log.info("auto-close skipped ticket %s: %s", ticket_id, exc.message)
        closed += batch
        if len(ids) < BATCH or batch == 0:
            return closed
