"""Reception actions: queue numbers (issue, call next, call, recall, no-show) with their SMS,
intake from a number, hand-back at the delivery desk, estimate answers taken by phone, and the
lookups the desk's screens read (queue, wall display, worklist, scanner search).

Each action owns its one commit. Queue SMS go through the same outbox as ticket SMS: the rows
are written in the action's transaction (``visit_id`` set, a unique dedupe key) and handed to
the sender after commit by the outbox's session hooks.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import joinedload

from .. import validation as v
from .. import devices, lifecycle, persist, pickup, settings, visits
from ..errors import Conflict, Forbidden, ValidationError
from ..extensions import db
from ..i18n import format_money, localize_digits, segments, to_ascii_digits
from ..lifecycle import Actor
from ..models import (Branch, Customer, Device, Notification, Ticket, TicketEvent, TillCount, User,
                      Visit, utcnow)
from ..notifications import outbox
from ..notifications import templates as sms_templates
from . import tickets as ticket_service
from .tickets import TOKEN_ALPHABET



@contextmanager
def _committing():
    try:
        yield
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def branch_of(user: Optional[User]) -> Branch:
    """The branch a staff member works at (the default branch when none is set)."""
    return (user.branch if user is not None and user.branch is not None
            else ticket_service.default_branch())


def _invalid(field: str, problem: str) -> ValidationError:
    return ValidationError(_("Some fields are not valid."), fields={field: problem})


def clean_phone(raw, field: str = "phone") -> Optional[str]:
    """An optional mobile number (any digits, 09... or +98..., its groups apart however:
    ``validation.phone_text``) as E.164; None when blank."""
    if raw is None or not v.phone_text(str(raw)):
        return None
    try:
        return v.phone_e164(str(raw), allow_numbers=tuple(
            current_app.config.get("SMS_TEST_NUMBERS", ())))
    except ValueError as exc:
        raise _invalid(field, str(exc)) from None


def clean_counter(raw) -> str:
    """A counter's name or number as typed (a form) or sent (the API: text or a number)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if raw is not None and not isinstance(raw, str):
        raise _invalid("counter", _("Must be text."))
    try:
        counter = v.text(to_ascii_digits(raw), max_len=20)
    except ValueError as exc:
        raise _invalid("counter", str(exc)) from None
    # "Counter 1" typed in full: the board and the SMS say "counter" themselves
    return _COUNTER_WORD.sub("", counter).strip() or counter


# The word, its Persian ezafe however written (باجهٔ, باجه‌ی), then a space, "#", ":" or "-"
# before the name, or a digit right after it ("Counter2"); never part of a word ("Counterfeit").
_COUNTER_WORD = re.compile(r"^\s*(?:counter|desk|باجه|میز)[\u064b-\u065f\u0670\u200c]*"
                           r"(?:\u200c?ی)?(?:[\s#:.\-]+(?=\w)|(?=\d))", re.IGNORECASE)


# --- queue SMS ------------------------------------------------------------------------------

def _ahead_in_words(ahead: int, language: str) -> str:
    """People ahead, as the SMS says it: "nobody" rather than "0"."""
    if ahead:
        return localize_digits(ahead, locale=language)
    with force_locale(language):
        return _("nobody")


def _write_queue_sms(visit: Visit, event: str, ahead: int = 0) -> Optional[Notification]:
    """The SMS for a queue event, once per visit and event, if the customer left a number."""
    if not visit.phone:
        return None
    key = f"visit:{visit.id}:{event}:sms"
    customer = db.session.scalar(select(Customer).where(Customer.phone == visit.phone))
    if customer is not None and customer.sms_opt_out:
        return None
    language = ((customer.language if customer is not None else visit.language)
                or current_app.config["SERVICEDESK_LOCALE"])
    body = sms_templates.render_queue(event, language, {
        "label": localize_digits(visit.label, locale=language),
        "ahead": _ahead_in_words(ahead, language),
        "counter": localize_digits(visit.counter or "", locale=language)})
    if body is None:
        return None
    encoding, count = segments(body)
    # Once per visit and event, however many desks move the queue at once (two counters
    # calling: both find the same person third in line): the second insert writes nothing.
    note = persist.insert(Notification(
        visit_id=visit.id, event=event, to=visit.phone, language=language, body=body,
        encoding=encoding, segments=count, dedupe_key=key), unless_exists="dedupe_key")
    if note is not None:
        outbox.written(db.session(), note.id)
    return note


def _left_the_queue(removed: Visit) -> None:
    """A waiting number left the queue: whoever now has exactly ``near_ahead()`` people ahead,
    and had one more before, is told their turn is near. A number issued with that few ahead
    never makes this step, so it is not told twice."""
    n = visits.near_ahead()
    candidate = db.session.scalar(
        select(Visit).where(Visit.branch_id == removed.branch_id, Visit.day == removed.day,
                            Visit.status == "waiting")
        .order_by(Visit.issued_at, Visit.id).offset(n).limit(1))
    if candidate is not None and candidate.phone and \
            (candidate.issued_at, candidate.id) > (removed.issued_at, removed.id):
        _write_queue_sms(candidate, "visit_near", ahead=n)


def _called(visit: Visit, was_waiting: bool) -> None:
    _write_queue_sms(visit, "visit_called")
    if was_waiting:
        _left_the_queue(visit)


# --- queue actions --------------------------------------------------------------------------

def issue_number(branch: Branch, service: str, phone=None,
                 now: Optional[datetime] = None, language: Optional[str] = None,
                 one_per_phone: bool = False, home_phones_only: bool = False) -> Visit:
    """Take the next number for ``service``; with a mobile number, text it and the people
    ahead (in ``language``, the kiosk's, unless the number is a customer's on file).

    ``one_per_phone`` (the waiting room's kiosk, which anyone can type at): a mobile number
    that already holds a number in the branch's queue is refused, so the shop's SMS cannot be
    sent to someone's phone again and again by taking numbers in their name.

    ``home_phones_only`` (the kiosk too): a mobile number outside the shop's own country (the
    region ``validation.phone_e164`` reads numbers in) is refused, so nobody can have the shop
    text paid foreign numbers from the waiting room; the desk and the API take them (tourists).
    """
    clean = clean_phone(phone)
    if clean and home_phones_only and not v.phone_is_home(clean) and clean not in tuple(
            current_app.config.get("SMS_TEST_NUMBERS", ())):
        raise _invalid("phone", _("The kiosk takes only this country's mobile numbers. Take "
                                  "your number without it, or ask at the desk."))
    if language not in current_app.config["LANGUAGES"]:
        language = None
    if clean and one_per_phone and db.session.scalar(select(Visit.id).where(
            Visit.branch_id == branch.id, Visit.day == visits.queue_day(now),
            Visit.phone == clean, Visit.status.in_(("waiting", "called"))).limit(1)):
        raise _invalid("phone", _("This mobile number already has a number in the queue. "
                                  "Take this one without it, or ask at the desk."))
    with _committing():
        visit = visits.issue(branch, service, phone=clean, now=now, language=language)
        if clean:
            # Issued with only a few ahead, the turn is near already: that is the SMS it gets
            # (the "issued" one promises a "near" one later, which would never come).
            ahead = visits.ahead(visit)
            _write_queue_sms(visit, "visit_issued" if ahead > visits.near_ahead()
                             else "visit_near", ahead=ahead)
    return visit


def call_next(branch: Branch, counter, user: Optional[User] = None,
              service: Optional[str] = None) -> Optional[Visit]:
    """Call the longest-waiting number to ``counter``; None when nobody waits."""
    counter = clean_counter(counter)
    with _committing():
        visit = visits.call_next(branch, counter, user, service or None)
        if visit is not None:
            _called(visit, was_waiting=True)
    return visit


def _visit_here(visit_id: int, user: Optional[User]) -> Visit:
    """The visit, when ``user`` works its branch's queue: a receptionist of another branch
    may not call, recall, serve or mark not shown a number in a queue they do not stand at
    (the customer would be texted to a counter of the wrong shop)."""
    visit = visits.get(visit_id)
    if user is not None and not ticket_service.acts_here(visit, user.role, user.branch_id):
        raise Forbidden(_("Queue number %(label)s is at another branch (%(branch)s): its own "
                          "reception calls it.", label=localize_digits(visit.label),
                          branch=visit.branch.name if visit.branch else visit.branch_id))
    return visit


def call(visit_id: int, counter, user: Optional[User] = None) -> Visit:
    """Call a given number (out of turn) to ``counter``."""
    counter = clean_counter(counter)
    with _committing():
        visit = _visit_here(visit_id, user)
        was_waiting = visit.status == "waiting"
        visits.call(visit, counter, user)
        _called(visit, was_waiting)
    return visit


def recall(visit_id: int, user: Optional[User] = None) -> Visit:
    """Call a called (or not shown) number again, to the same counter: it comes back to the
    top of the wall display."""
    with _committing():
        visit = _visit_here(visit_id, user)
        if visit.status not in ("called", "no_show") or not visit.counter:
            raise Conflict(_("Only a called number can be called again."))
        visits.call(visit, visit.counter, user)
    return visit


def no_show(visit_id: int, user: Optional[User] = None) -> Visit:
    with _committing():
        visit = visits.no_show(_visit_here(visit_id, user))
    return visit


def serve(visit_id: int, user: Optional[User] = None) -> Visit:
    with _committing():
        visit = visits.serve(_visit_here(visit_id, user))
    return visit


def admit(payload: dict, actor: Actor, branch: Optional[Branch] = None,
          known_name: str = "keep", intake_key: Optional[str] = None,
          ask_if_in_shop: bool = False, loaner_id=None) -> Ticket:
    """Intake, from a called number or directly (services.tickets.admit, which says what
    ``known_name`` does); a number admitted straight from the queue also moves the queue on
    for the SMS. ``ask_if_in_shop`` (the desk, until told): a device still in the shop
    (``open_twin``) is refused with Conflict naming its ticket (``twin_id``), unless this is
    the same intake sent again (its key answers with its ticket). ``loaner_id``: a loaner
    phone of the branch lent with the admit (services.tickets.admit)."""
    if ask_if_in_shop and ticket_service.admitted_with(
            ticket_service.intake_key_for(intake_key, payload, known_name)) is None:
        twin = open_twin(payload)
        if twin is not None:
            raise Conflict(_("%(number)s is open for this mobile and this device.",
                             number=localize_digits(twin.number)), twin_id=twin.id)
    waiting = None
    try:
        visit_id = v.integer(payload.get("visit_id"), minimum=1, maximum=v.MAX_ID)
    except ValueError:
        visit_id = None
    if visit_id is not None:
        visit = db.session.get(Visit, visit_id)
        waiting = visit if visit is not None and visit.status == "waiting" else None
    ticket = ticket_service.admit(payload, actor, branch=branch, known_name=known_name,
                                  intake_key=intake_key, loaner_id=loaner_id)
    if waiting is not None and not ticket.replayed:
        with _committing():
            _left_the_queue(db.session.get(Visit, waiting.id))
    return ticket


# --- the delivery desk and the phone -------------------------------------------------------

def deliver(ticket_id: int, actor: Actor, amount_paid, collected_by=None,
            expected_version: Optional[int] = None, differs_ok: bool = True,
            payment_method=None, method_needed: bool = False,
            loaner_returned: bool = False, payments: Optional[list] = None,
            loaner_back: Optional[dict] = None, pickup_code=None,
            sms_code=None, signature=None, signed_on_paper_reason=None) -> Ticket:
    """Hand the device back: record the payment, how it was paid and who collected it.
    The delivery desk's form (``differs_ok=False``, ``method_needed=True``): a payment other
    than the amount due must be ticked as meant, and a payment needs its method (the
    ``deliver`` event's checks). ``payments``: a payment split between methods (the parts
    ``{"method", "amount"}`` the desk filled in; one alone is a payment made that way). A
    loaner phone out must come back with it (``loaner_returned``, recorded in the same
    commit, with how it came back: ``loaner_back``, {"loaner_condition", "loaner_note"}),
    else the hand-back is refused. ``pickup_code`` or ``sms_code``: the code that confirms the
    collector (servicedesk.pickup). ``signature``: the collector's, drawn on the counter's
    screen (servicedesk.signatures; none: the slip is signed on paper).
    ``signed_on_paper_reason``: the paper slip signed instead of the screen, and why (None:
    not chosen; blank: refused, a reason is needed)."""
    data = {"amount_paid": amount_paid, "differs_ok": differs_ok,
            "method_needed": method_needed, "loaner_returned": loaner_returned,
            **(loaner_back or {})}
    if payments is not None:
        if not payments:
            raise _invalid("payments", _("Type the amount paid each way."))
        one, paid = _whole(payments[0].get("amount")), _whole(amount_paid)
        if len(payments) == 1 and None not in (one, paid) and one != paid:
            raise _invalid("payments", _(
                "The parts add up to %(parts)s, not the amount paid, %(paid)s.",
                parts=format_money(one), paid=format_money(paid)))
        if len(payments) == 1 and one is not None and one == paid:
            payment_method = payments[0].get("method")  # all of it one way after all
        else:
            data["payments"] = payments
    if payment_method:
        data["payment_method"] = payment_method
    if collected_by is not None and str(collected_by).strip():
        data["collected_by"] = collected_by
    for name, code in (("pickup_code", pickup_code), ("sms_code", sms_code)):
        if code is not None and str(code).strip():
            data[name] = code
    if signature:
        data["signature"] = signature
    if signed_on_paper_reason is not None:
        data["signed_on_paper_reason"] = signed_on_paper_reason
    return ticket_service.fire_event(ticket_id, "deliver", actor, data,
                                     expected_version=expected_version)


def _whole(raw) -> Optional[int]:
    """``raw`` as a whole number (a form's text in any digits too), or None."""
    try:
        return v.integer(raw)
    except ValueError:
        return None


def refund(ticket_id: int, actor: Actor, data: dict,
           expected_version: Optional[int] = None) -> Ticket:
    """Give money back after the hand-back (a part that failed, an overcharge): a ``refund``
    record in the ticket's trail with the amount, how it was given back and why, the ticket's
    refunded total and the customer's SMS, in one commit. Only the manager (``REFUND_ROLES``),
    only on a device handed back, never more than was paid and not given back yet."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        if actor.role not in lifecycle.REFUND_ROLES:
            raise Forbidden(_("Only a manager can give money back."))
        ticket_service.check_version(ticket, expected_version)
        if ticket.state not in ("delivered", "closed"):
            raise Conflict(_("Money is given back only after the device was handed back; "
                             "before, change the bill."), state=ticket.state)
        clean = lifecycle.clean_refund(data if isinstance(data, dict) else {}, ticket)
        row = lifecycle.record(ticket, "refund", actor, clean,
                               amount_refunded=(ticket.amount_refunded or 0) + clean["amount"])
        outbox.write_for_event(ticket, row)
    return ticket


# --- who collects the device (servicedesk.pickup) --------------------------------------------

def _waiting_at_the_desk(ticket: Ticket, actor: Actor) -> None:
    if actor.kind == "staff":
        ticket_service.check_branch(ticket, actor.role, actor.branch_id)
    if ticket.state != "ready":
        raise Conflict(_("The collector is confirmed only for a device ready to collect."),
                       state=ticket.state)


def text_pickup_code(ticket_id: int, actor: Actor) -> Ticket:
    """Text a one-time code to the owner's mobile, for the desk to ask the collector for: a
    ``collector_code_sent`` record and its SMS (through the outbox) in one commit. The code is
    kept only as an HMAC; it holds ``pickup.OTP_MINUTES`` and replaces any sent before. One a
    minute at most, none while the codes are locked."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        if actor.role not in lifecycle.EVENTS["deliver"].roles | pickup.OVERRIDE_ROLES:
            raise Forbidden(_("Your role may not hand devices back."))
        _waiting_at_the_desk(ticket, actor)
        if pickup.locked(ticket):
            raise Conflict(_("Too many wrong codes: they are locked. A manager must confirm "
                             "who collects the device."), state=ticket.state)
        wait = pickup.otp_window_open(ticket)
        if wait:
            raise Conflict(_("A code was texted less than a minute ago: wait %(seconds)s "
                             "seconds before sending another.",
                             seconds=localize_digits(wait)), state=ticket.state)
        if ticket.customer.sms_opt_out or not ticket.customer.phone:
            raise Conflict(_("The owner does not receive SMS from the shop: confirm with the "
                             "pickup code, or ask a manager."), state=ticket.state)
        code = pickup.new_code()
        now = utcnow()
        expires = now + timedelta(minutes=pickup.OTP_MINUTES)
        row = lifecycle.record(ticket, "collector_code_sent", actor,
                               {"expires_at": expires.isoformat(timespec="seconds")},
                               pickup_otp_hash=pickup.otp_hash(ticket, code),
                               pickup_otp_expires_at=expires, pickup_otp_sent_at=now)
        if outbox.write_for_event(ticket, row, extra={"one_time_code": code}) is None:
            raise Conflict(_("The SMS with the code is switched off in the shop's SMS texts: "
                             "confirm with the pickup code, or ask a manager."),
                           state=ticket.state)
    return ticket


def override_collector(ticket_id: int, actor: Actor, reason) -> Ticket:
    """A manager confirms who collects the device (an ID card seen, the receipt lost): a
    ``collector_override`` record with the reason, which the next hand-back names, and the
    wrong tries forgiven (the codes unlocked)."""
    with ticket_service.committing(keep_loaded=True):
        ticket = ticket_service.get_ticket(ticket_id, with_parties=True)
        if actor.role not in pickup.OVERRIDE_ROLES:
            raise Forbidden(_("Only a manager can confirm the collector without a code."))
        _waiting_at_the_desk(ticket, actor)
        try:
            clean = v.text(reason, max_len=500)
        except ValueError as exc:
            raise _invalid("reason", str(exc)) from None
        lifecycle.record(ticket, "collector_override", actor, {"reason": clean}, pickup_tries=0)
    return ticket


# --- the till: the cash drawer counted ------------------------------------------------------

def expected_cash(branch: Branch, day) -> int:
    """The cash the branch's drawer should hold from the day's hand-backs, less the cash given
    back by refunds (rials), as the takings count it."""
    from .. import reports
    summary = reports.takings_summary(reports.takings(reports.Filters(day, day, branch.id)))
    return next(m["amount"] for m in summary["methods"] if m["method"] == "cash")


def count_till(branch: Branch, day, user: User, counted, float_amount=None,
               note=None) -> TillCount:
    """Record the cash counted in the branch's drawer on ``day`` (today or an earlier day: a
    count is made at the close, not ahead of it): the amount in it, the float kept for change,
    and, kept with it, what the day's cash hand-backs and refunds say it should hold. In the
    audit log. ValidationError names a bad field."""
    from .. import audit
    from ..reports import shop_today
    f = v.Fields({"counted": counted, "float_amount": float_amount or 0, "note": note})
    f.take("counted", v.integer, minimum=0)
    f.take("float_amount", v.integer, minimum=0)
    f.take("note", v.text, max_len=500, required=False)
    if "counted" not in f.errors and "float_amount" not in f.errors \
            and f.clean["float_amount"] > f.clean["counted"]:
        f.errors["float_amount"] = _("The float is part of the cash counted: it cannot be more "
                                     "than it.")
    clean = f.done()
    if day > shop_today():
        raise _invalid("day", _("A till is counted on its day or after, not before."))
    with _committing():
        row = TillCount(branch_id=branch.id, day=day, counted=clean["counted"],
                        float_amount=clean["float_amount"], note=clean.get("note") or "",
                        expected=expected_cash(branch, day), counted_by_id=user.id,
                        counted_by_name=user.username)
        db.session.add(row)
        db.session.flush()
        audit.log("till.count", obj=row, actor=user, after={
            "day": day.isoformat(), "counted": row.counted, "float": row.float_amount,
            "expected": row.expected, "difference": row.difference})
    return row


def till_counts(branch: Branch, day) -> list[TillCount]:
    """The day's counts of the branch's drawer, the first first."""
    return list(db.session.scalars(select(TillCount).where(
        TillCount.branch_id == branch.id, TillCount.day == day).order_by(TillCount.id)))


def record_answer(ticket_id: int, actor: Actor, decision: str, channel: str = "phone",
                  reason=None, expected_version: Optional[int] = None,
                  alternative=None) -> Ticket:
    """The customer's answer to the estimate, taken by phone or in person (``alternative``:
    the one they chose of an estimate's alternatives)."""
    if decision not in ("approve", "decline"):
        raise _invalid("decision", _("Must be one of: %(options)s.",
                                     options="approve, decline"))
    data = {"channel": channel}
    if decision == "decline":
        data["reason"] = reason
    elif alternative is not None:
        data["alternative"] = alternative
    return ticket_service.fire_event(ticket_id, decision, actor, data,
                                     expected_version=expected_version)


# --- lookups --------------------------------------------------------------------------------

_TRACKING_PATH = re.compile(r"/[tT]/([A-Za-z0-9]{4,40})")
_SCANNED_LINK = re.compile(rf"/T/([{TOKEN_ALPHABET}]{{12}})")
# the shelf label's QR code (links.shelf_url), as the scanner types it (upper case)
_SHELF_LINK = re.compile(r"/TICKETS/N/([A-Z0-9]{1,8}-[0-9]{1,9})")


def _branch_codes() -> list[str]:
    """The branches' codes, the longest first (a ticket number starts with one: ``A-00042``,
    ``T1-00042``; a code may hold digits)."""
    codes = db.session.scalars(select(Branch.code)).all()
    return sorted({c.upper() for c in codes if c}, key=len, reverse=True)


_DIGITS = re.compile(r"[0-9]+")
# A ticket number as written, whatever the branches' codes are now (a code changed since the
# receipt was printed): a code of letters and digits, a hyphen, the number.
_WRITTEN_NUMBER = re.compile(r"([A-Z0-9]{1,8})-0*([0-9]{1,7})")
_SCANNED_NUMBER = re.compile(r"(?<![A-Z])[A-Z][A-Z0-9]{0,7}-[0-9]{5,9}")


def _ticket_numbers(compact: str) -> set[str]:
    """The ticket numbers ``compact`` (upper case, no spaces, ASCII digits) may be: a
    branch's code, an optional hyphen and the number with or without its leading zeros
    (``A-00042``, ``A42``, ``T1-42``), every reading when codes overlap (``A42`` is A-00042
    and, with a branch A4, A4-00002); and any code written with its hyphen (an old receipt's,
    from before its branch's code changed)."""
    out = set()
    for code in _branch_codes():
        if not compact.startswith(code):
            continue
        rest = compact[len(code):]
        rest = rest[1:] if rest.startswith("-") else rest
        if _DIGITS.fullmatch(rest) and len(rest) <= 9 and len(rest.lstrip("0")) <= 7:
            out.add(f"{code}-{int(rest):05d}")
    written = _WRITTEN_NUMBER.fullmatch(compact)
    if written:
        out.add(f"{written.group(1)}-{int(written.group(2)):05d}")
    return out


def scanned_query(raw, offered: str = "") -> Optional[str]:
    """What to search for when a money field got a receipt's scan (its tracking link, or a
    ticket number such as A-00049), wherever in the field it landed: the scanner types into
    whichever field has the cursor, before or after what the field held (``offered``, taken
    out first, or a number would run on into the amount's digits). None: no scan."""
    text = str(raw or "")
    if offered and offered in text:
        text = text.replace(offered, " ", 1)
    text = to_ascii_digits(text).upper()
    link = _SCANNED_LINK.search(text)
    if link:
        return f"/t/{link.group(1)}"
    shelf = _SHELF_LINK.search(text)
    if shelf:
        return shelf.group(1)
    codes = "|".join(re.escape(c) for c in _branch_codes())
    number = re.search(rf"(?<![A-Z])(?:{codes})-[0-9]{{5,9}}", text) if codes else None
    number = number or _SCANNED_NUMBER.search(text)  # an old code's receipt
    return number.group(0) if number else None


def _compact(text: str) -> str:
    return re.sub(r"[\s\u200e\u200f]", "", text).upper()


def _token_searched(text: str) -> Optional[str]:
    """The customer link's token a search gave (the receipt's QR code scanned, a tracking
    URL pasted, or the bare token typed), upper case; None for anything else."""
    compact = _compact(text)
    if _SHELF_LINK.search(compact):
        return None
    match = _TRACKING_PATH.search(text)
    if match:
        return match.group(1).upper()
    if len(compact) >= 8 and not compact.isdigit() and set(compact) <= set(TOKEN_ALPHABET):
        return compact
    return None


def searched_replaced_link(raw) -> bool:
    """Whether a search that found nothing was for a customer link the shop replaced (an old
    receipt's QR code): the desk is told so, rather than that nothing matches. Which ticket it
    was is not kept (``retired_links``), so the desk finds it by its number or phone."""
    token = _token_searched(to_ascii_digits(raw).strip())
    return token is not None and ticket_service.link_replaced(token)


# A ticket the shop is done with (handed back, closed or cancelled): after those still in it.
PAST_STATES = ("delivered", "closed", "cancelled")


def find_tickets(raw, limit: int = 20, state: Optional[str] = None,
                 where: tuple = ()) -> list[Ticket]:
    """What the scanner or the keyboard gave, in any digits; tickets ready to collect first,
    then those still in the shop, then the past ones (``PAST_STATES``), newest first in each;
    only those in ``state`` when given, and meeting ``where`` (the ticket list's branch and
    technician: in the query, not after its limit).

    A reading that names one thing wins at once: a tracking URL (the receipt's QR code or the
    label), a bare token, a whole mobile number, an IMEI/serial. Otherwise the readings that
    may each be meant are searched together: a ticket number (``A-00042``, ``a42``, ``42``),
    the last digits of a mobile number, a part of the customer's name (or of the name of who
    brought the device in for them) or of the device's brand and model. "A52" is ticket
    A-00052 and the Galaxy A52 both, "2233" ticket A-02233 and the customer whose number ends
    in 2233: the desk sees both and picks."""
    text = to_ascii_digits(raw).strip()
    if not text:
        return []
    exact, maybe, by_number = [], [], None
    compact = _compact(text)
    match = _TRACKING_PATH.search(text) or _SHELF_LINK.search(compact)
    if match and match.re is _SHELF_LINK:
        exact.append(Ticket.number == match.group(1))
    token = _token_searched(text)
    if token:
        exact.append(Ticket.public_token == token)
    if not match:
        try:
            phone = v.phone_e164(text, allow_numbers=tuple(
                current_app.config.get("SMS_TEST_NUMBERS", ())))
        except ValueError:
            phone = None
        if phone:
            exact.append(Ticket.customer_id.in_(
                select(Customer.id).where(Customer.phone == phone)))
        exact.append(Ticket.device_id.in_(
            select(Device.id).where(Device.serial == compact.replace("-", ""))))
        readings = []
        numbers = _ticket_numbers(compact)
        if numbers:
            readings.append(Ticket.number.in_(sorted(numbers)))
        if _DIGITS.fullmatch(compact) and len(compact.lstrip("0")) <= 7:
            # the number without its branch's code (also when a code is all digits)
            readings.append(Ticket.number.like(f"%-{int(compact):05d}"))
        if readings:
            by_number = or_(*readings)
            maybe.append(by_number)
        # for the customer who lost the receipt and calls from another phone
        if _DIGITS.fullmatch(compact) and 4 <= len(compact) <= 9:
            maybe.append(Ticket.customer_id.in_(
                select(Customer.id).where(Customer.phone.endswith(compact, autoescape=True))))
        elif not _DIGITS.fullmatch(compact) and len(compact) >= 2:
            needle = _searchable(text)
            maybe.append(Ticket.customer_id.in_(select(Customer.id).where(
                _searchable_sql(Customer.name).contains(needle, autoescape=True))))
            # the relative who brought it in, back to collect it
            maybe.append(_searchable_sql(Ticket.brought_by).contains(needle, autoescape=True))
            maybe.append(Ticket.device_id.in_(select(Device.id).where(
                _searchable_sql(Device.brand + " " + Device.model)
                .contains(needle, autoescape=True))))
            # a known brand in another spelling (stored as one: «سامسونگ» is Samsung), alone
            # or before the model ("سامسونگ a54")
            words = text.split()
            readings = {(" ".join(words), ""), (words[0], " ".join(words[1:]))}
            for typed, model in readings:
                brand = devices.brand_name(typed)
                if brand != typed:
                    maybe.append(Ticket.device_id.in_(select(Device.id).where(
                        Device.brand == brand,
                        _searchable_sql(Device.model).contains(_searchable(model),
                                                               autoescape=True))))
    # the ticket a number names comes first, however many Galaxy A52s came in since
    query = (select(Ticket).options(joinedload(Ticket.customer), joinedload(Ticket.device))
             .order_by(*([case((by_number, 0), else_=1)] if by_number is not None else []),
                       case((Ticket.state == "ready", 0), else_=1),
                       case((Ticket.state.in_(PAST_STATES), 1), else_=0), Ticket.id.desc())
             .limit(limit))
    if state is not None:
        query = query.where(Ticket.state == state)
    query = query.where(*where)
    for condition in [*exact, *([or_(*maybe)] if maybe else [])]:
        found = list(db.session.scalars(query.where(condition)).unique())
        if found:
            return found
    return []


# Letters written two ways on Persian and Arabic keyboards, and the joiner some type: a name
# searched for matches however it was written.
_SAME_LETTERS = (("ي", "ی"), ("ى", "ی"), ("ك", "ک"), ("\u200c", ""))


def _searchable(text: str) -> str:
    text = " ".join(text.split()).lower()
    for other, letter in _SAME_LETTERS:
        text = text.replace(other, letter)
    return text


def _searchable_sql(column):
    """``column`` as ``_searchable`` writes text, in SQL (lower() folds Latin letters only,
    on both databases; Persian has no case)."""
    expression = func.lower(column)
    for other, letter in _SAME_LETTERS:
        expression = func.replace(expression, other, letter)
    return expression


def open_twin(payload: dict) -> Optional[Ticket]:
    """A ticket still open (not handed back, closed or cancelled) for the same mobile and the
    same device (its serial, else its brand and model): this very intake typed again after the
    Back button (the form's own key cannot tell then), or a device already in the shop. None
    when there is none, or the intake does not read (its own checks will say why)."""
    device = payload.get("device") or {}
    try:
        phone = clean_phone((payload.get("customer") or {}).get("phone"))
        serial = v.serial_or_imei(device.get("serial") or None)
    except (ValidationError, ValueError):
        return None
    if not phone:
        return None
    same = (Device.serial == serial if serial else
            (Device.brand == devices.brand_name(str(device.get("brand") or "")))
            & (func.lower(Device.model) == " ".join(str(device.get("model") or "").split())
               .lower()))
    return db.session.scalar(
        select(Ticket).join(Customer, Customer.id == Ticket.customer_id)
        .join(Device, Device.id == Ticket.device_id)
        .where(Customer.phone == phone, same,
               Ticket.state.not_in(PAST_STATES))
        .order_by(Ticket.id.desc()).limit(1))


def find_customer(phone_raw) -> tuple[Optional[str], Optional[Customer], int]:
    """(E.164 or None, the customer with that number or None, their ticket count); None for
    a blank number. A number that is not a mobile one raises ``ValidationError`` (on
    ``customer_phone``): the desk is told while the customer is still at the counter."""
    phone = clean_phone(phone_raw, "customer_phone")
    if phone is None:
        return None, None, 0
    customer = db.session.scalar(select(Customer).where(Customer.phone == phone))
    count = 0
    if customer is not None:
        count = db.session.scalar(
            select(func.count(Ticket.id)).where(Ticket.customer_id == customer.id)) or 0
    return phone, customer, count


@dataclass(frozen=True)
class Waiting:
    visit: Visit
    waited_minutes: int


def _today(branch: Branch):
    return (Visit.branch_id == branch.id, Visit.day == visits.queue_day())


def queue_board(branch: Branch) -> dict:
    """Reception's queue today: the numbers waiting (oldest first, with their wait) and the
    numbers called and not yet admitted (latest first)."""
    now = utcnow()
    waiting = db.session.scalars(
        select(Visit).where(*_today(branch), Visit.status == "waiting")
        .order_by(Visit.issued_at, Visit.id)).all()
    called = db.session.scalars(
        select(Visit).where(*_today(branch), Visit.status.in_(("called", "no_show")))
        .order_by(Visit.called_at.desc(), Visit.id.desc())).all()
    served = db.session.scalar(
        select(func.count(Visit.id)).where(*_today(branch), Visit.status == "served")) or 0
    return {"waiting": [Waiting(vis, max(0, int((now - vis.issued_at).total_seconds() // 60)))
                        for vis in waiting],
            "called": called, "served": served}


def display_board(branch: Branch, limit: int = 7) -> dict:
    """The wall display: the numbers called today with their counters, latest first."""
    called = db.session.scalars(
        select(Visit).where(*_today(branch), Visit.status.in_(("called", "served")),
                            Visit.called_at.is_not(None))
        .order_by(Visit.called_at.desc(), Visit.id.desc()).limit(limit)).all()
    waiting = db.session.scalar(
        select(func.count(Visit.id)).where(*_today(branch), Visit.status == "waiting")) or 0
    return {"called": called, "waiting": waiting}


def _since(state: str, branch: Branch, now: Optional[datetime] = None):
    """Tickets of ``branch`` now in ``state`` as (ticket, when it entered the state, overdue),
    oldest first; overdue: longer in the state than the shop's time limit for it."""
    in_state = select(Ticket.id).where(Ticket.state == state, Ticket.branch_id == branch.id)
    entered = (select(TicketEvent.ticket_id, func.max(TicketEvent.at).label("at"))
               .where(TicketEvent.to_state == state, TicketEvent.ticket_id.in_(in_state))
               .group_by(TicketEvent.ticket_id)
               .subquery())
    rows = db.session.execute(
        select(Ticket, entered.c.at).join(entered, entered.c.ticket_id == Ticket.id)
        .options(joinedload(Ticket.customer), joinedload(Ticket.device))
        .where(Ticket.state == state, Ticket.branch_id == branch.id)
        .order_by(entered.c.at, Ticket.id)).unique().all()
    return [(ticket, at, settings.past_limit(state, at, now)) for ticket, at in rows]


def ready_to_collect(branch: Branch) -> list:
    """Devices of ``branch`` ready to collect, oldest first (see ``_since``)."""
    return _since("ready", branch)


def worklist(branch: Branch) -> dict:
    """Reception's worklist: numbers waiting, devices taken in and not yet sent to the repair
    unit, devices ready to collect (oldest first) and estimates waiting for the customer's
    answer (oldest first, to phone them)."""
    board = queue_board(branch)
    return {"waiting": board["waiting"], "called": board["called"],
            "taken_in": _since("intake", branch), "ready": ready_to_collect(branch),
            "estimates": _since("estimate", branch)}
