"""Queue numbers: issue, call next, call a number, recall, no-show.

Numbers are per branch, per queue day and per service, labelled with the service's letter
(R-017 is the 17th repair visit of the day); they restart every day. The queue's day starts at
QUEUE_DAY_STARTS o'clock of the shop's clock (04:00), so a shop open past midnight keeps calling
the evening's numbers.
"""
from datetime import date, datetime, timedelta
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from .counters import next_value
from .errors import Conflict, NotFound, ValidationError
from .extensions import db
from .i18n import localize_digits, shop_timezone
from .models import Branch, User, Visit, utcnow

SERVICES = {
    "repair": ("R", _l("Repair")),
    "pickup": ("P", _l("Pickup")),
    "inquiry": ("Q", _l("Inquiry")),
}


DEFAULT_NEAR_AHEAD = 3  # "a few left": the SMS goes when this many people are ahead


def near_ahead() -> int:
    """How many people ahead make a turn "near" (config QUEUE_NEAR_AHEAD)."""
    return int(current_app.config.get("QUEUE_NEAR_AHEAD", DEFAULT_NEAR_AHEAD))


def shop_day(when: Optional[datetime] = None) -> date:
    return (when or utcnow()).astimezone(shop_timezone()).date()


def queue_day(when: Optional[datetime] = None) -> date:
    """The queue day ``when`` (default: now) falls in: the shop's date, shifted back by the hour
    the queue's day starts at (QUEUE_DAY_STARTS, 0 to 23)."""
    starts = int(current_app.config.get("QUEUE_DAY_STARTS", 4))
    local = (when or utcnow()).astimezone(shop_timezone())
    return (local - timedelta(hours=starts)).date()


def issue(branch: Branch, service: str, phone: Optional[str] = None,
          now: Optional[datetime] = None, language: Optional[str] = None) -> Visit:
    """Take the next number for ``service`` at ``branch`` (the caller commits); ``language``:
    the one the kiosk spoke, for the queue SMS."""
    if service not in SERVICES:
        raise ValidationError(_("Unknown service."),
                              fields={"service": _("Must be one of: %(options)s.",
                                                   options=", ".join(SERVICES))})
    now = now or utcnow()
    day = queue_day(now)
    number = next_value(f"visit:{branch.id}:{day.isoformat()}:{service}")
    visit = Visit(branch_id=branch.id, service=service, day=day, number=number,
                  label=f"{SERVICES[service][0]}-{number:03d}", status="waiting",
                  phone=phone, issued_at=now, language=language)
    db.session.add(visit)
    db.session.flush()
    return visit


def ahead(visit: Visit) -> int:
    """People still waiting before this visit at its branch today (any service)."""
    return db.session.scalar(
        select(func.count(Visit.id)).where(
            Visit.branch_id == visit.branch_id, Visit.day == visit.day,
            Visit.status == "waiting", Visit.issued_at < visit.issued_at)) or 0


def _mark_called(visit_id: int, counter: str, user: Optional[User], from_status: tuple) -> bool:
    result = db.session.execute(
        update(Visit).where(Visit.id == visit_id, Visit.status.in_(from_status))
        .values(status="called", called_at=utcnow(), counter=counter,
                called_by_id=user.id if user else None)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def call_next(branch: Branch, counter: str, user: Optional[User] = None,
              service: Optional[str] = None, now: Optional[datetime] = None) -> Optional[Visit]:
    """Call the longest-waiting number of the queue's day to ``counter``; None when nobody
    waits.

    Two counters pressing at once never get the same person: the UPDATE only takes a row still
    'waiting', and the loser tries the next one.
    """
    for _attempt in range(20):
        query = select(Visit.id).where(
            Visit.branch_id == branch.id, Visit.day == queue_day(now), Visit.status == "waiting")
        if service:
            query = query.where(Visit.service == service)
        visit_id = db.session.scalar(query.order_by(Visit.issued_at, Visit.id).limit(1))
        if visit_id is None:
            return None
        if _mark_called(visit_id, counter, user, ("waiting",)):
            db.session.expire_all()
            return db.session.get(Visit, visit_id)
    raise Conflict(_("Too many counters are calling at once; try again."))


def call(visit: Visit, counter: str, user: Optional[User] = None) -> Visit:
    """Call a specific number (or recall one already called)."""
    if not _mark_called(visit.id, counter, user, ("waiting", "called", "no_show")):
        raise Conflict(_("This number was already served."))
    db.session.refresh(visit)
    return visit


def _leave_called(visit: Visit, status: str, problem: str, **values) -> Visit:
    """A called number leaves the queue as ``status``: only if it is still called when the
    UPDATE runs (another desk may have admitted it meanwhile: its intake stays)."""
    result = db.session.execute(
        update(Visit).where(Visit.id == visit.id, Visit.status == "called")
        .values(status=status, **values).execution_options(synchronize_session=False))
    db.session.refresh(visit)
    if result.rowcount != 1:
        raise Conflict(problem)
    return visit


def no_show(visit: Visit) -> Visit:
    return _leave_called(visit, "no_show",
                         _("Only a called number can be marked as not shown."))


def serve(visit: Visit) -> Visit:
    """The called customer was seen to (a pickup, a question): the number leaves the queue.
    An intake serves its number itself."""
    return _leave_called(visit, "served", _("Only a called number can be marked as served."),
                         served_at=utcnow())


def check_admissible(visit: Visit) -> None:
    """Conflict unless ``visit`` can be admitted now (waiting or called, no ticket yet),
    saying what happened to it (``visit_status`` in the error): admitted already (its
    ticket's number), seen to without a ticket, or marked as not present when it was called,
    which a call again (the queue's "Call again") brings back to be admitted."""
    if visit.ticket is None and visit.status in ("waiting", "called"):
        return
    label = localize_digits(visit.label)
    if visit.ticket is not None:
        raise Conflict(_("Queue number %(label)s was admitted already: ticket %(number)s.",
                         label=label, number=localize_digits(visit.ticket.number)),
                       visit_status=visit.status)
    if visit.status == "no_show":
        raise Conflict(_("Queue number %(label)s was marked as not present when it was "
                         "called. Call it again from the queue (\"Call again\") to admit it.",
                         label=label), visit_status=visit.status)
    raise Conflict(_("Queue number %(label)s was served already.", label=label),
                   visit_status=visit.status)


def get(visit_id: int) -> Visit:
    visit = db.session.get(Visit, visit_id)
    if visit is None:
        raise NotFound(_("No such visit."))
    return visit
