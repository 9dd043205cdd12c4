"""Ticket actions: admit a device, fire an event, add a note."""
import hashlib
import json
import re
import secrets
from contextlib import contextmanager
from datetime import date
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from .. import audit, devices, lifecycle, persist, pickup, settings, signatures, visits
from .. import validation as v
from ..counters import next_value
from ..errors import Conflict, Forbidden, NotFound, StaleVersion, ValidationError
from ..extensions import db
from ..i18n import localize_digits, spelling_key, to_ascii_digits
from ..lifecycle import NEW, Actor
from ..models import (Branch, Customer, Device, RetiredLink, Ticket, TicketEvent, TicketNote,
                      TicketSignature, User, Visit, utcnow)
from ..notifications import outbox
from ..notifications import templates as sms_templates
from ..notifications import reasons as sms_reasons

SERVICE_TYPE_LABELS = {
    "repair": _l("Repair"), "warranty": _l("Warranty"), "software": _l("Software"),
    "data_recovery": _l("Data recovery"),
}
TOKEN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud, typed, scanned


def new_public_token(length: int = 12) -> str:
    """An opaque, unguessable token for the customer's links (never the ticket's number)."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(length))


@contextmanager
def committing(keep_loaded: bool = False):
    """Commit on success; roll back and turn a lost race into Conflict.

    ``keep_loaded``: the objects of the action stay loaded after the commit (no expiry), so an
    answer built from them right after (the API returns the ticket) costs no reload of the
    ticket, its customer, device, events, lines and notifications: they hold what was just
    committed.
    """
    session = db.session()
    try:
        yield
        expire = session.expire_on_commit
        if keep_loaded:
            session.expire_on_commit = False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire
    except (StaleDataError, IntegrityError):
        db.session.rollback()
        raise Conflict(_("Someone else changed this ticket at the same time; reload it and "
                         "try again.")) from None
    except pickup.WrongCode as exc:
        # A wrong pickup code, by whatever way the hand-back came (the desk, the ticket page,
        # the API): nothing of it is kept, but the wrong try is, in its own commit.
        db.session.rollback()
        count_wrong_code(exc.ticket_id, exc.actor, exc.method)
        raise
    except Exception:
        db.session.rollback()
        raise


# What acting on a ticket and answering with it read: its customer (the SMS), device (its label),
# technician and events (the audit chain), in the ticket's own query; its lines and SMS come in
# one query each (selectin: joined too, they would multiply the rows). Each statement costs
# more CPU than the rows it brings (bench/README.md), so one fewer is worth the repeated ticket
# columns on each event's row.
TICKET_WITH_PARTIES = (joinedload(Ticket.customer), joinedload(Ticket.device),
                       joinedload(Ticket.technician), joinedload(Ticket.events))


def get_ticket(ticket_id, with_parties: bool = False) -> Ticket:
    ticket = (db.session.get(Ticket, ticket_id, options=TICKET_WITH_PARTIES if with_parties
                             else None)
              if isinstance(ticket_id, int) and 0 < ticket_id <= v.MAX_ID else None)
    if ticket is None:
        raise NotFound(_("No such ticket."))
    return ticket


def clean_intake(payload) -> dict:
    """Check an intake (API or form). Returns clean values or raises one ValidationError that
    names every bad field (dotted names for nested ones, e.g. ``customer.phone``)."""
    f = v.Fields(payload)
    errors = {}
    customer = payload.get("customer")
    device = payload.get("device")
    allow = tuple(current_app.config.get("SMS_TEST_NUMBERS", ()))
    clean_customer, clean_device = {}, {}
    if not isinstance(customer, dict):
        errors["customer"] = _required_object(customer)
    else:
        for key, check, kwargs in (("name", v.text, {"max_len": 120}),
                                   ("phone", v.phone_e164, {"allow_numbers": allow})):
            try:
                clean_customer[key] = check(customer.get(key), **kwargs)
            except ValueError as exc:
                errors[f"customer.{key}"] = str(exc)
        lang = customer.get("language")
        if lang is not None:
            if lang not in current_app.config["LANGUAGES"]:
                errors["customer.language"] = _("Must be one of: %(options)s.",
                                                options=", ".join(current_app.config["LANGUAGES"]))
            else:
                clean_customer["language"] = lang
    if not isinstance(device, dict):
        errors["device"] = _required_object(device)
    else:
        for key, check, kwargs in (("kind", v.text, {"max_len": 40}),
                                   ("brand", v.text, {"max_len": 60}),
                                   ("model", v.text, {"max_len": 80}),
                                   ("serial", v.serial_or_imei, {}),
                                   ("colour", v.text, {"max_len": 40, "required": False})):
            try:
                clean_device[key] = check(device.get(key), **kwargs)
            except ValueError as exc:
                errors[f"device.{key}"] = str(exc)
        if clean_device.get("kind"):
            clean_device["kind"] = devices.kind_code(clean_device["kind"])
        if clean_device.get("brand"):
            clean_device["brand"] = devices.brand_name(clean_device["brand"])
    f.take("problem", v.text, max_len=2000)
    f.take("accessories", v.text, max_len=500, required=False)
    f.take("condition", v.text, max_len=500, required=False)
    # the shop's list (admin page), else the config's
    f.take("service_type", v.choice, settings.service_type_codes(), required=False)
    f.take("promised_date", v.a_date, required=False)
    f.take("pre_approved_amount", v.integer, minimum=0, required=False)
    f.take("visit_id", v.integer, minimum=1, maximum=v.MAX_ID, required=False)
    png = f.take("signature", signatures.read, required=False)
    try:  # the paper slip signed instead of the screen, and why
        paper = signatures.paper_reason(payload.get(signatures.PAPER_FIELD))
    except ValueError as exc:
        errors[signatures.PAPER_FIELD] = str(exc)
        paper = None
    if png and paper:
        errors.update(signatures.signed_two_ways().fields)
    f.errors.update(errors)
    clean = f.done()
    if paper:
        clean[signatures.PAPER_FIELD] = paper
    clean["customer"] = clean_customer
    clean["device"] = clean_device
    return clean


def _required_object(raw) -> str:
    """What is wrong with a part of the intake that must be an object (customer, device)."""
    if raw is None:
        return _("This field is required.")
    return _("Must be an object with its own fields.")


_CUSTOMER_BY_PHONE = select(Customer).where(Customer.phone == bindparam("phone"))  # built once


def find_or_create_customer(name: str, phone: str, language: Optional[str],
                            rename: bool = False,
                            update_known: bool = True) -> tuple[Customer, bool, Optional[str]]:
    """The customer with this phone number (True when written just now); a known one keeps
    the name on file unless ``rename`` (the desk chose the name typed): then the name it had.
    ``update_known=False`` (history imported): a known customer is left as they are (an old
    record's language does not change today's SMS).

    Written first, looked up only when the number is known: a walk-in is more often new, and
    the INSERT that finds the number taken writes nothing. Two desks taking in the same new
    number at once both get the one customer (the second waits for the first to commit)."""
    customer = persist.insert(
        Customer(name=name, phone=phone,
                 language=language or current_app.config["SERVICEDESK_LOCALE"]),
        unless_exists="phone")
    if customer is not None:
        return customer, True, None
    customer = db.session.scalar(_CUSTOMER_BY_PHONE, {"phone": phone})
    if not update_known:
        return customer, False, None
    if language:
        customer.language = language
    renamed_from = None
    if rename and customer.name != name:
        audit.log("customer.rename", obj=customer, before={"name": customer.name},
                  after={"name": name})
        renamed_from, customer.name = customer.name, name
    return customer, False, renamed_from


def set_customer_sms(customer_id: int, texted: bool, by: Optional[User] = None,
                     how: str = "staff") -> Customer:
    """Stop (``texted=False``) or start again the SMS to a customer: they asked the desk, or
    pressed the button on their own page (``how="link"``). Every SMS not yet written is
    affected; recorded in the audit log. Commits."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(_("No such customer."))
    if customer.sms_opt_out == (not texted):
        # Off already: by their number's STOP (21610), which a corrected number lifts; the
        # customer asking now makes it theirs, kept through a correction.
        if texted or customer.opted_out_by != "stop" or how == "stop":
            return customer
    customer.sms_opt_out = not texted
    customer.opted_out_at = None if texted else utcnow()
    customer.opted_out_by = None if texted else how
    audit.log("customer.sms", obj=customer, before={"sms": not texted},
              after={"sms": texted, "how": how}, actor=by)
    db.session.commit()
    return customer


# SMS not sent yet (or whose send to the wrong number may not have left, which the sweep sends
# again): a corrected number is where they go.
_UNSENT = ("pending", "retry", "unknown")


def correct_phone(ticket_id: int, raw, by: User, seen=None):
    """The customer's mobile number was taken down wrong (the SMS failed: not a mobile number,
    nobody's phone): the desk writes the right one. Every ticket of the customer's follows;
    their SMS not sent yet go to it, and those that failed may be sent again. Refused when the
    number is another customer's (one number, one customer). SMS stopped by the wrong number's
    STOP reply start again (its owner was not the customer). Audited; commits. Returns the
    ticket and whether the SMS started again.

    ``seen`` is the number the desk's page showed: when another desk corrected it meanwhile
    (two receptionists on one customer's call), this correction is refused and says to what,
    rather than silently putting the number back or over theirs. The change itself is
    conditional on the number read, so two at the same instant cannot both pass."""
    from ..models import Notification
    from ..notifications.backends import mask_phone
    from .reception import clean_phone  # (it imports us)
    phone = clean_phone(raw)
    if phone is None:
        raise ValidationError(_("Some fields are not valid."), fields={
            "phone": _("Enter a mobile phone number.")})
    with committing():
        ticket = get_ticket(ticket_id)
        check_branch(ticket, by.role, by.branch_id)
        customer = ticket.customer
        old = customer.phone
        seen_phone = clean_phone(seen) if seen else None
        if seen_phone is not None and seen_phone != old:
            raise _corrected_meanwhile(old)
        if phone == old:
            raise ValidationError(_("Some fields are not valid."), fields={
                "phone": _("This is the number on file already.")})
        holder = db.session.scalar(select(Customer).where(Customer.phone == phone))
        if holder is not None:
            raise Conflict(_("This number is on file for another customer, %(name)s.",
                             name=holder.name), fields={
                "phone": _("This number is on file for another customer, %(name)s.",
                           name=holder.name)})
        db.session.flush()
        if db.session.execute(update(Customer).where(
                Customer.id == customer.id, Customer.phone == old)
                .values(phone=phone)).rowcount != 1:
            raise _corrected_meanwhile(None)
        db.session.refresh(customer, ["phone"])
        # a STOP the wrong number's owner answered (Twilio 21610) was not the customer's
        stopped_by_number = customer.sms_opt_out and customer.opted_out_by == "stop"
        if stopped_by_number:
            customer.sms_opt_out, customer.opted_out_at, customer.opted_out_by = False, None, None
        db.session.flush()
        db.session.execute(
            Notification.__table__.update()
            .where(Notification.ticket_id.in_(select(Ticket.id).where(
                Ticket.customer_id == customer.id)),
                Notification.to == old, Notification.status.in_(_UNSENT))
            .values(to=phone))
        # masked: the audit log keeps no customer's number whole
        audit.log("customer.phone", obj=customer, before={"mobile": mask_phone(old)},
                  after={"mobile": mask_phone(phone)}, actor=by)
        if stopped_by_number:
            audit.log("customer.sms", obj=customer, before={"sms": False},
                      after={"sms": True, "how": "number corrected"}, actor=by)
    return ticket, stopped_by_number


def _corrected_meanwhile(now_on_file) -> Conflict:
    """Another desk corrected the customer's number since this page was opened."""
    from ..slips import national_phone
    message = (_("Someone corrected this customer's number meanwhile, to %(phone)s: check it "
                 "with the customer before changing it again.",
                 phone=localize_digits(national_phone(now_on_file))) if now_on_file else
               _("Someone corrected this customer's number at the same moment: open the "
                 "ticket again and check it with the customer."))
    return Conflict(message, fields={"phone": message})


# SMS the desk may send again: the provider refused them or they did not arrive (its attempts
# spent, or the report said so), not one cancelled because it was no longer due.
RESENDABLE = ("failed", "undelivered")


def latest_link_sms(ticket: Ticket):
    """The ticket's newest SMS that carries the link to the customer's page (the estimate to
    approve, the bill...), or None: the customer who lost it asks for it again."""
    link = f"/t/{ticket.public_token}"
    return next((n for n in reversed(ticket.notifications) if link in (n.body or "")), None)


def resend_refusal(ticket: Ticket, note) -> Optional[str]:
    """Why the desk may not send this SMS of the ticket again, or None when it may (the
    ticket page offers the button by the same rule ``resend_sms`` keeps)."""
    if note.status not in RESENDABLE and not (
            note.status in ("sent", "delivered")
            and getattr(latest_link_sms(ticket), "id", None) == note.id):
        return _("Only an SMS that was not sent or did not arrive, or the last one with the "
                 "customer's link, can be sent again.")
    if note.to == ticket.customer.phone and not sms_reasons.worth_sending_again(
            note.error_code):  # (a number corrected since may get it)
        return _("This number cannot get SMS: sent again, it would fail again.")
    if ticket.customer.sms_opt_out:
        return _("The customer asked for no SMS.")
    return None


def resend_sms(ticket_id: int, notification_id: int, by: Optional[User] = None):
    """Send a ticket's SMS that did not go again, as a new outbox row with its words (the
    credit was topped up, the phone is back on...), or the last one with the customer's link
    (they lost it), once per row: a double click writes one.
    Commits; the row is handed to the sender after the commit."""
    from ..i18n import segments
    from ..models import Notification
    ticket = get_ticket(ticket_id)
    if by is not None:  # another branch's desk reads the ticket, its own staff act on it
        check_branch(ticket, by.role, by.branch_id)
    old = db.session.get(Notification, notification_id)
    if old is None or old.ticket_id != ticket.id:
        raise NotFound(_("No such SMS."))
    refusal = resend_refusal(ticket, old)
    if refusal:
        raise Conflict(refusal)
    body = with_current_link(ticket, old.body)
    encoding, count = segments(body)
    with committing():
        note = persist.insert(Notification(
            ticket_id=ticket.id, event_id=old.event_id, event=old.event,
            to=ticket.customer.phone, language=old.language, body=body,
            encoding=encoding, segments=count, dedupe_key=f"resend:{old.id}"),
            unless_exists="dedupe_key")
        if note is None:
            raise Conflict(_("This SMS has been sent again already."))
        outbox.written(db.session(), note.id)
        audit.log("sms.resend", obj=ticket, after={"sms": old.id, "event": old.event},
                  actor=by)
    return note


# --- the customer's link replaced --------------------------------------------------------------

def link_hash(token: str) -> str:
    """What is kept of a retired customer link: its token's SHA-256 (the token, as typed in any
    case), enough to know the link again, not to rebuild it."""
    return hashlib.sha256(token.strip().upper().encode()).hexdigest()


def link_replaced(token: str) -> bool:
    """Whether ``token`` was a customer's link the shop replaced (``replace_link``)."""
    return db.session.get(RetiredLink, link_hash(token)) is not None


def replace_link(ticket_id, actor: Actor, text_customer: bool = True,
                 expected_version: Optional[int] = None):
    """Give the ticket's customer a new link (tracking page, estimate, survey, receipt QR)
    and retire the old one at once: a forwarded SMS, a lost phone, a receipt left behind.
    A ``replace_link`` record in the ticket's trail (neither token in it); the old token's
    hash kept (its page says "replaced", 410); SMS not sent yet carry the new link; and, with
    ``text_customer``, the new link texted to the customer in the same commit (unless they
    asked for no SMS or the shop switched that SMS off). Returns (ticket, the SMS or None)."""
    if not isinstance(text_customer, bool):
        raise ValidationError(_("Some fields are not valid."), fields={
            "text_customer": _("Must be true or false.")})
    with committing(keep_loaded=True):
        ticket = get_ticket(ticket_id, with_parties=True)
        if actor.role not in lifecycle.RELINK_ROLES:
            raise Forbidden(_("Your role (%(role)s) may not replace the customer's link.",
                              role=actor.role))
        if actor.kind == "staff":
            check_branch(ticket, actor.role, actor.branch_id)
        check_version(ticket, expected_version)
        old, new = ticket.public_token, new_public_token()
        customer = ticket.customer
        language = customer.language or current_app.config["SERVICEDESK_LOCALE"]
        sms = ("not_asked" if not text_customer else "opted_out" if customer.sms_opt_out
               else "switched_off" if not sms_templates.is_sent("replace_link", None, language)
               else "texted")
        row = lifecycle.record(ticket, "replace_link", actor, {"sms": sms}, public_token=new)
        persist.insert(RetiredLink(token_hash=link_hash(old), retired_at=row.at))
        # an SMS still to go (a retry, a reminder) must not bring the dead link
        for note in ticket.notifications:
            if note.status in _UNSENT and old in (note.body or ""):
                note.body = with_current_link(ticket, note.body)
        texted = outbox.write_for_event(ticket, row) if sms == "texted" else None
    return ticket, texted


# The customer's links in an SMS's text (their token after /t/ or /s/).
_LINK_TOKEN = re.compile(r"(/[ts]/)[A-Z2-9]{6,32}(?![A-Za-z0-9])")


def with_current_link(ticket: Ticket, body: str) -> str:
    """``body`` with its customer links leading to the ticket's link as it is now (one sent
    before the link was replaced, sent again, must not bring the dead one)."""
    return _LINK_TOKEN.sub(lambda m: m.group(1) + ticket.public_token, body or "")


def same_name(a: str, b: str) -> bool:
    """Two spellings of one name (``i18n.spelling_key``)."""
    return spelling_key(a) == spelling_key(b)


def build_ticket(clean: dict, branch: Branch, at=None, external_id=None,
                 rename: bool = False) -> Ticket:
    """A new ticket in the pseudo-state 'new', ready for the admit event, which writes it.

    The customer (when new) and the device are written first, and the shop's configuration
    taken (the SMS uses it; a reload is a query), before the ticket number is taken: on
    PostgreSQL taking it locks the branch's counter row until the commit, so every intake of
    the branch waits for the one holding it; the fewer round trips between the two, the more
    intakes a second."""
    c = clean["customer"]
    customer, new_customer, renamed_from = find_or_create_customer(
        c["name"], c["phone"], c.get("language"), rename=rename,
        update_known=external_id is None)
    d = clean["device"]
    device = persist.insert(Device(kind=d["kind"], brand=d["brand"], model=d["model"],
                                   serial=d.get("serial"), colour=d.get("colour")),
                            customer=customer)
    settings.snapshot()  # for the rest of the request (none outside one: an import sends no SMS)
    number = next_value(f"ticket:{branch.id}")
    ticket = Ticket(
        number=f"{branch.code}-{number:05d}", branch_id=branch.id, customer=customer,
        device=device, problem=clean["problem"], accessories=clean.get("accessories") or "",
        condition=clean.get("condition") or "",
        service_type=clean.get("service_type") or "repair",
        state=NEW, promised_date=clean.get("promised_date"),
        pre_approved_amount=clean.get("pre_approved_amount"),
        public_token=new_public_token(), external_id=external_id,
        # (an imported ticket's receipt was printed long ago, without one)
        pickup_code=None if external_id else pickup.new_code(),
        created_at=at or utcnow(), updated_at=at or utcnow(),
        # A new ticket has none yet: empty, not unloaded (no query to find that out).
        events=[], lines=[], notifications=[])
    # Not a column: the admit event's readers (stages: "is this device coming back?") learn
    # that the customer has no earlier ticket without asking the database.
    ticket.customer_is_new = new_customer
    ticket.customer_renamed_from = renamed_from  # for the timeline: old receipts carry it
    return ticket


LIST_LIMIT = 200


def list_tickets(state: Optional[str] = None, q: str = "", limit: int = LIST_LIMIT,
                 branch_id: Optional[int] = None,
                 technician_id: Optional[int] = None) -> list[tuple]:
    """The staff's ticket list, as (ticket, when it entered its current state): newest first,
    or, in one ``state``, the longest in it first (the device nobody collected, the estimate
    nobody answered); of one branch and one technician when given. ``q`` reads as the desks'
    search does (a number, a scanned link, a phone or its last digits, an IMEI, a name, a
    device: ``reception.find_tickets``). With each ticket's customer, device and technician,
    which the list shows (a few queries, not more a row)."""
    since = settings.state_entered_at()
    narrow = ((Ticket.branch_id == branch_id,) if branch_id is not None else ()) + (
        (Ticket.technician_id == technician_id,) if technician_id is not None else ())
    if q.strip():
        from .reception import find_tickets
        # narrowed in the search's query: after its limit, the newest matches of the other
        # branches (200 Samsungs) would leave this one's out
        found = find_tickets(q, limit=limit, state=state, where=narrow)
        entered = dict(db.session.execute(
            select(Ticket.id, since).where(Ticket.id.in_([t.id for t in found]))).all()) \
            if found else {}
        return [(t, entered.get(t.id)) for t in found]
    query = (select(Ticket, since).options(joinedload(Ticket.customer), joinedload(Ticket.device),
                                           joinedload(Ticket.technician))
             .limit(limit))
    if state is not None:
        # a ticket whose trail never says when it entered (bulk data) last on every database
        query = query.where(Ticket.state == state).order_by(since.asc().nulls_last(), Ticket.id)
    else:
        query = query.order_by(Ticket.id.desc())
    return [tuple(row) for row in db.session.execute(query.where(*narrow)).unique().all()]


def list_choices() -> dict:
    """What the ticket list can be narrowed to: the branches (when more than one) and the
    technicians (those who left too: tickets may still carry their name)."""
    branches = list(db.session.scalars(select(Branch).order_by(Branch.id)))
    technicians = sorted(db.session.scalars(select(User).where(User.role == "technician")),
                         key=lambda u: (not u.active, u.display_name.casefold()))
    return {"branches": branches if len(branches) > 1 else [], "technicians": technicians}


def page_of_tickets(states: Optional[list[str]], branch_id: Optional[int], limit: int,
                    offset: int) -> tuple[list[Ticket], bool]:
    """The API's list: a page of tickets, newest first, in ``states`` and of ``branch_id``
    when given (every branch otherwise), with their customer and device; and whether more
    follow it."""
    query = (select(Ticket).options(joinedload(Ticket.customer), joinedload(Ticket.device),
                                    joinedload(Ticket.technician))
             .order_by(Ticket.id.desc()))
    if states:
        query = query.where(Ticket.state.in_(states))
    if branch_id is not None:
        query = query.where(Ticket.branch_id == branch_id)
    rows = list(db.session.scalars(query.limit(limit + 1).offset(offset)))
    return rows[:limit], len(rows) > limit


def promised_date(ticket_id: int) -> Optional[date]:
    """The date promised to the ticket's customer (None: no promise, or no such ticket)."""
    return db.session.scalar(select(Ticket.promised_date).where(Ticket.id == ticket_id))


def default_branch() -> Branch:
    branch = db.session.scalar(select(Branch).where(Branch.active.is_(True)).order_by(Branch.id))
    if branch is None:
        raise ValidationError(_("No branch is set up; run init-db first."))
    return branch


def intake_key_for(key: Optional[str], payload, known_name: str) -> Optional[str]:
    """The key an intake is stored under: the form's (or client's) key and what the intake
    says, together. The same intake sent twice has the same one; the same key with another
    intake (a form brought back and filled in for the next customer, a client reusing a key)
    has another, and is admitted as the new intake it is."""
    if key is None or not str(key).strip():
        return None
    key = str(key).strip()
    said = json.dumps([key, payload, known_name], sort_keys=True, ensure_ascii=False,
                      default=str)
    # "desk:..." or "api:..." (whose key it was, for someone reading the table)
    return f"{key.split(':', 1)[0][:8]}:{hashlib.sha256(said.encode()).hexdigest()[:48]}"


def admitted_with(intake_key: Optional[str]) -> Optional[Ticket]:
    """The ticket an intake with this key made, if one did."""
    if not intake_key:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.intake_key == intake_key))


def admit(payload, actor: Actor, branch: Optional[Branch] = None,
          known_name: str = "keep", intake_key: Optional[str] = None,
          loaner_id=None) -> Ticket:
    """Intake: the customer's device becomes a ticket in 'intake'; the visit is served.

    A phone number already on file under another name: ``known_name="keep"`` (the API) files
    the ticket under the name on file, ``"brought"`` too, noting the name typed as who brought
    the device (a family sharing one mobile), ``"rename"`` changes the customer's name to the
    one typed, ``"ask"`` (the desk, until it chose) refuses with the name on file, so the
    receptionist decides.

    ``intake_key`` (the desk form's own, an API client's Idempotency-Key): the same intake
    sent twice (a double click, a retried request, both at once) admits the device once; the
    second gets the first's ticket, marked ``ticket.replayed``.

    ``loaner_id`` (the desk's intake form): one of the branch's loaner phones lent to the
    customer with the admit, in its transaction (a phone that may not be lent admits
    nothing)."""
    intake_key = intake_key_for(intake_key, payload, known_name)
    done = admitted_with(intake_key)
    if done is not None:
        done.replayed = True
        return done
    try:
        ticket = _admit(payload, actor, branch, known_name, intake_key, loaner_id)
    except Conflict:
        done = admitted_with(intake_key)  # the other one of two sent at once won
        if done is None:
            raise
        done.replayed = True
        return done
    ticket.replayed = False
    return ticket


def _admit(payload, actor: Actor, branch: Optional[Branch], known_name: str,
           intake_key: Optional[str], loaner_id=None) -> Ticket:
    with committing(keep_loaded=True):
        clean = clean_intake(payload)
        if known_name == "ask":
            _ask_about_a_known_name(clean["customer"])
        visit = None
        if clean.get("visit_id"):
            visit = db.session.get(Visit, clean["visit_id"])
            if visit is None:
                raise ValidationError(_("Some fields are not valid."),
                                      fields={"visit_id": _("No such visit.")})
            visits.check_admissible(visit)  # not served, not marked as not present
            if actor.kind == "staff" and actor.role in BRANCH_ROLES \
                    and actor.branch_id is not None and visit.branch_id != actor.branch_id:
                # the ticket goes to the visit's branch: its desk admits the customer (a
                # receptionist of another branch would open a ticket they cannot act on)
                raise Forbidden(_("Queue number %(label)s is at another branch (%(branch)s): "
                                  "its own reception admits it.",
                                  label=localize_digits(visit.label),
                                  branch=visit.branch.name if visit.branch else visit.branch_id))
            branch = visit.branch
        branch = branch or default_branch()
        if known_name == "brought":  # the SMS still go to the owner: in their language
            clean["customer"] = {**clean["customer"], "language": None}
        ticket = build_ticket(clean, branch, rename=known_name == "rename")
        ticket.intake_key = intake_key
        data = {"customer_id": None, "device": ticket.device.label, "problem": ticket.problem,
                "service_type": ticket.service_type, "accessories": ticket.accessories,
                "condition": ticket.condition}
        if visit is not None:
            now = utcnow()
            visit.status = "served"
            visit.served_at = now
            visit.called_at = visit.called_at or now
            # Both sides as loaded: fire() writes the ticket with the visit's id, and the
            # visit's own change is its status.
            persist.link(ticket, "visit", visit)
            # The timeline starts at the customer's arrival: the wait is measured.
            ticket.created_at = visit.issued_at
            data["visit"] = visit.label
            data["waited_seconds"] = int((now - visit.issued_at).total_seconds())
        # The ticket's INSERT (in fire) already carries the state "intake".
        data["customer_id"] = ticket.customer.id
        if ticket.customer_renamed_from:
            data["customer_renamed_from"] = ticket.customer_renamed_from
        if known_name == "brought" and not same_name(ticket.customer.name,
                                                     clean["customer"]["name"]):
            data["brought_by"] = clean["customer"]["name"]
        paper = clean.get(signatures.PAPER_FIELD)
        if actor.kind == "staff" and not clean.get("signature") and not paper \
                and signatures.required_with("admit"):
            raise signatures.missing("admit")
        if clean.get("signature"):  # drawn on the counter's screen: the chain vouches for it
            data["signature_sha256"] = signatures.digest(clean["signature"])
        if paper:  # the paper slip instead: why, in the chain with who admitted it
            data[signatures.PAPER_FIELD] = paper
        admitted = lifecycle.fire(ticket, "admit", actor, data)
        keep_signature(ticket, admitted, clean.get("signature"))
        if loaner_id not in (None, ""):
            from .loaners import lend_at_intake  # (it imports us)
            lend_at_intake(ticket, actor, loaner_id)
    return ticket


def keep_signature(ticket: Ticket, row: TicketEvent, png: Optional[bytes]) -> None:
    """The customer's signature given with the event ``row`` (the admit, the hand-back), in
    its transaction; its SHA-256 is in the event's data already."""
    if png:
        persist.insert(TicketSignature(ticket_id=ticket.id, moment=signatures.MOMENT_OF[row.event],
                                       event_id=row.id,
                                       image=png, sha256=signatures.digest(png)))


def signatures_of(ticket_id: int) -> dict[str, TicketSignature]:
    """The ticket's signatures drawn on screen, by moment (intake, delivery)."""
    return {s.moment: s for s in db.session.scalars(
        select(TicketSignature).where(TicketSignature.ticket_id == ticket_id))}


def _ask_about_a_known_name(customer: dict) -> None:
    on_file = db.session.scalar(select(Customer.name).where(Customer.phone == customer["phone"]))
    if on_file is not None and not same_name(on_file, customer["name"]):
        raise ValidationError(
            _("This number is on file under another name."),
            fields={"customer.name": _("This number is on file as %(name)s. Choose the name "
                                       "the ticket goes under.", name=on_file)},
            name_on_file=on_file, phone_asked_about=customer["phone"])


def check_version(ticket: Ticket, expected_version: Optional[int]) -> None:
    """Conflict when the ticket is not at the version the user's screen showed (a stale
    screen, a double click); nothing when no version was given."""
    if expected_version is not None and expected_version != ticket.version:
        raise StaleVersion(_("This ticket changed since you opened it; reload it and try "
                             "again."), state=ticket.state, version=ticket.version)


def ticket_id_by_number(number: str) -> Optional[int]:
    """The id of the ticket with this number as printed (any digits, any case), or None."""
    return db.session.scalar(select(Ticket.id).where(
        Ticket.number == to_ascii_digits(number).strip().upper()))


def fire_event(ticket_id, event, actor: Actor, data: Optional[dict] = None,
               expected_version: Optional[int] = None) -> Ticket:
    """Fire one event on a ticket and commit it with its audit row and SMS.

    ``expected_version`` (the version the user's screen showed) turns a stale screen or a
    double click into Conflict instead of acting twice.
    """
    with committing(keep_loaded=True):
        ticket = get_ticket(ticket_id, with_parties=True)
        check_version(ticket, expected_version)
        fire_loaded(ticket, event, actor, data)
    return ticket


def count_wrong_code(ticket_id, actor: Actor, method: str) -> None:
    """A wrong pickup or texted code typed at the desk: one more wrong try, recorded (who, when,
    which code) with the ticket's count; at ``pickup.MAX_TRIES`` the codes are locked."""
    with committing():
        ticket = get_ticket(ticket_id)
        tries = (ticket.pickup_tries or 0) + 1
        lifecycle.record(ticket, "collector_refused", actor,
                         {"method": method, "tries": tries,
                          "locked": tries >= pickup.MAX_TRIES}, pickup_tries=tries)


# The roles that work at one branch's counter or bench; a manager or an admin works anywhere.
BRANCH_ROLES = ("reception", "technician")


def acts_here(ticket: Ticket, role: str, branch_id: Optional[int]) -> bool:
    """Whether staff of ``role`` at ``branch_id`` act on the ticket: a receptionist or a
    technician on their own branch's tickets; staff of no branch (a workshop serving every
    branch), managers and admins on any."""
    return role not in BRANCH_ROLES or branch_id is None or ticket.branch_id == branch_id


def check_branch(ticket: Ticket, role: str, branch_id: Optional[int]) -> None:
    """Refuse (Forbidden) a receptionist's or technician's action on a ticket of another
    branch than their own: the device is not at their counter or bench (``acts_here``).
    Reading a ticket (a customer asking at another branch) and writing a note on it stay open
    to all."""
    if not acts_here(ticket, role, branch_id):
        raise Forbidden(_("Ticket %(number)s is at another branch (%(branch)s): its own staff, "
                          "or a manager, act on it.", number=localize_digits(ticket.number),
                          branch=ticket.branch.name if ticket.branch else ticket.branch_id))


def _check_technicians_branch(ticket: Ticket, username) -> None:
    """A device sent to a technician by name stays at its branch: the technician is of its
    branch, or of none (a workshop serving every branch), never one who could not act on it.
    (Imported history, replayed without this, keeps who really had it.) A name that is no
    name at all (a control character, too long) is left to the event's own check, which
    names it."""
    try:
        username = v.text(username, max_len=64)
    except ValueError:
        return
    tech = db.session.scalar(select(User).where(User.username == username))
    if tech is not None and tech.role == "technician" and \
            not acts_here(ticket, tech.role, tech.branch_id):
        raise ValidationError(_("Some fields are not valid."), fields={
            "technician": _("%(name)s works at another branch.", name=tech.display_name)})


def fire_loaded(ticket: Ticket, event: str, actor: Actor, data: Optional[dict]) -> None:
    """Fire an event on a loaded ticket in the caller's transaction. The hand-back and the
    cancel are refused while a loaner phone is out, unless ``"loaner_returned": true`` in
    ``data`` records its return with them (services.loaners.back_with). A technician acting on a
    ticket nobody holds takes it. An estimate within the amount the customer pre-approved at
    intake is approved at once: the customer gets the approval's SMS (with the amount), not one
    asking them to approve (not one with alternatives: the customer chooses)."""
    from .loaners import back_with  # (it imports us)
    from .workbench import take_if_nobody_holds  # the repair bench's rule (it imports us)
    if actor.kind == "staff":
        check_branch(ticket, actor.role, actor.branch_id)
    if event == "deliver" and actor.kind == "staff" and isinstance(data, dict):
        data = pickup.confirm(ticket, actor, data)  # who collects it (the shop's setting)
    if event in lifecycle.LOANER_BACK_WITH and (data is None or isinstance(data, dict)):
        # a loaner out comes back with the hand-back or the cancel, in its transaction
        data = dict(data or {})
        back_with(ticket, event, actor, data, data.pop("loaner_returned", None) is True)
    if event == "send_to_repair" and isinstance(data, dict) and data.get("technician"):
        _check_technicians_branch(ticket, data["technician"])
    take_if_nobody_holds(ticket, actor, event)
    signature = None
    if event == "deliver" and isinstance(data, dict) and "signature" in data:
        data = dict(data)  # received the device: drawn on the counter's screen
        try:
            signature = signatures.read(data.pop("signature"))
        except ValueError as exc:
            raise ValidationError(_("Some fields are not valid."),
                                  fields={"signature": str(exc)}) from None
        if signature:
            data["signature_sha256"] = signatures.digest(signature)
    paper = None
    if event == "deliver" and isinstance(data, dict) and signatures.PAPER_FIELD in data:
        data = dict(data)  # the paper slip signed instead of the screen: why
        try:
            paper = signatures.paper_reason(data.pop(signatures.PAPER_FIELD))
        except ValueError as exc:
            raise ValidationError(_("Some fields are not valid."),
                                  fields={signatures.PAPER_FIELD: str(exc)}) from None
        if paper:
            data[signatures.PAPER_FIELD] = paper
        if signature and paper:
            raise signatures.signed_two_ways()
    if event == "deliver" and actor.kind == "staff" and signature is None and paper is None \
            and signatures.required_with("deliver"):
        raise signatures.missing("deliver")
    if event != "quote" or ticket.pre_approved_amount is None:
        keep_signature(ticket, lifecycle.fire(ticket, event, actor, data), signature)
        return
    quote = lifecycle.fire(ticket, "quote", actor, data, notify=False)
    # alternatives are the customer's to choose between, whatever they pre-approved
    if (ticket.estimate_total or 0) > ticket.pre_approved_amount \
            or lifecycle.estimate_alternatives(ticket):
        outbox.write_for_event(ticket, quote)
        return
    # the amount, not a sentence: the timeline says it in the reader's language and unit
    lifecycle.fire(ticket, "approve", Actor.system(),
                   {"pre_approved_amount": ticket.pre_approved_amount})


def add_note(ticket_id, author, body: str, customer_visible: bool = False) -> TicketNote:
    with committing():
        ticket = get_ticket(ticket_id)
        try:
            body = v.text(body, max_len=4000)
        except ValueError as exc:
            raise ValidationError(str(exc), fields={"body": str(exc)}) from None
        note = TicketNote(ticket_id=ticket.id, author_id=author.id, body=body,
                          customer_visible=customer_visible)
        db.session.add(note)
    return note
