"""THE ticket state machine (DESIGN section 2).

One table, ``EVENTS``, is the truth: states, events, who may fire them and what data each needs.
The transitions Machine, the API's OpenAPI document, the UI's buttons and the tests all read it.
``fire()`` is the only code in the program that writes ``Ticket.state``; in the caller's database
transaction it checks the role, the data and the state, changes the state, appends the audit
event (hash-chained) and writes the customer's SMS into the outbox. The caller commits.

The rows are written as they are made, one statement each on the session's connection
(``servicedesk.persist``), not left to the ORM's flush: the ticket's UPDATE carries its
version check, so a lost race is known at once, and the objects the caller answers with hold
exactly what was written.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Optional

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect, select
from transitions import Machine

from . import persist, signatures, stages
from . import validation as v
from .errors import Forbidden, TransitionNotAllowed, ValidationError
from .extensions import db
from .i18n import format_money_as_typed, format_number
from .models import (LOANER_CONDITIONS, CostLine, Loan, Ticket, TicketEvent, TicketSignature, User,
                     utcnow)
from .notifications import outbox, superseded, webhooks

TICKET_STATES = ("intake", "diagnosis", "estimate", "repair", "waiting_parts", "ready",
                 "delivered", "closed", "cancelled")
# A ticket being admitted exists for an instant in the pseudo-state "new" (never stored).
NEW = "new"

STATE_LABELS = {
    "intake": _l("Received"),
    "diagnosis": _l("In diagnosis"),
    "estimate": _l("Waiting for the customer's approval"),
    "repair": _l("In repair"),
    "waiting_parts": _l("Waiting for parts"),
    "ready": _l("Ready to collect"),
    "delivered": _l("Delivered"),
    "closed": _l("Closed"),
    "cancelled": _l("Cancelled"),
}

STAFF_ROLES = ("reception", "technician", "manager", "admin")
CUSTOMER = "customer"
SYSTEM = "system"
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who fires an event: a staff user, the customer (by their link) or the system."""

    kind: str  # "staff", "customer", "system"
    role: str  # a staff role, "customer" or "system"
    name: str
    user_id: Optional[int] = None
    ip: Optional[str] = None
    branch_id: Optional[int] = None  # a staff member's branch (None: every branch)

    @classmethod
    def staff(cls, user: User, ip: Optional[str] = None) -> "Actor":
        return cls("staff", user.role, user.username, user.id, ip, user.branch_id)

    @classmethod
    def customer(cls, ip: Optional[str] = None) -> "Actor":
        return cls("customer", CUSTOMER, CUSTOMER, None, ip)

    @classmethod
    def system(cls) -> "Actor":
        return cls("system", SYSTEM, SYSTEM)


# --- per-event data checks: raw dict in, clean JSON-safe dict out (or ValidationError) ---------

def _no_data(data: dict, ticket: Ticket, actor: Actor) -> dict:
    v.Fields(data).done()
    return {}


def _switch(f: v.Fields, name: str) -> Optional[bool]:
    """An optional true/false switch of an event's data (``differs_ok``, ``above_estimate_ok``):
    None when absent. Anything but a JSON boolean is refused: a ``"false"`` in quotes, read as
    absent, would let through what the client asked to have refused."""
    raw = f.data.get(name)
    if raw is None or isinstance(raw, bool):
        return raw
    f.errors[name] = _("Must be true or false.")
    return None


def _clean_admit(data: dict, ticket: Ticket, actor: Actor) -> dict:
    # services.admit validated the intake form and built the ticket; this records what it got.
    return dict(data)


def _clean_send_to_repair(data: dict, ticket: Ticket, actor: Actor) -> dict:
    f = v.Fields(data)
    name = f.take("technician", v.text, max_len=64, required=False)
    if name:
        tech = db.session.scalar(select(User).where(User.username == name))
        if tech is None or not tech.active or tech.role != "technician":
            f.errors["technician"] = _("No active technician with this user name.")
    return f.done()


def _clean_quote(data: dict, ticket: Ticket, actor: Actor) -> dict:
    """The estimate: its lines, and the alternatives the customer chooses between, when the
    technician offers some (an original display or a copy one), each with its own lines. With
    alternatives, the lines common to them all (the diagnosis, the labour) may be none."""
    f = v.Fields(data)
    alternatives = f.take("alternatives", v.estimate_alternatives, required=False) or []
    f.take("lines", v.cost_lines, allow_empty=bool(alternatives),
           required=not alternatives)
    f.take("promised_date", v.a_date, required=False)
    clean = f.done()
    clean.setdefault("lines", [])
    if not alternatives:
        clean.pop("alternatives", None)
    if ticket.state == "estimate" and _as_sent(clean["lines"]) == _as_sent(
            ticket.estimate_lines()) and _choices_as_sent(alternatives) == _choices_as_sent(
            estimate_alternatives(ticket)) and clean.get("promised_date") in (
            None, ticket.promised_date):
        # a revision the same as the estimate the customer has (a form sent again, a retried
        # request) would text them "your estimate changed" for nothing
        raise ValidationError(_("Some fields are not valid."), fields={"lines": _(
            "This is the estimate the customer already has: change a line or the date to "
            "send a revision.")})
    clean["total"] = sum(l["qty"] * l["unit_price"] for l in clean["lines"])
    for alternative in alternatives:
        # what the customer pays with it: the common lines and its own
        alternative["total"] = clean["total"] + alternative.pop("lines_total")
        if alternative["total"] > v.MAX_MONEY:
            raise ValidationError(_("Some fields are not valid."), fields={
                "alternatives": _("Alternative %(n)s: the lines add up to more than %(max)s.",
                                  n=format_number(alternative["id"]),
                                  max=format_money_as_typed(v.MAX_MONEY))})
    return clean


def estimate_alternatives(ticket: Ticket) -> list[dict]:
    """The alternatives of the ticket's current estimate (its quote event's), each
    ``{"id", "name", "lines", "total"}`` (``total``: with the common lines); none for an
    estimate without them."""
    quote = _quote_of(ticket)
    return list((quote.data or {}).get("alternatives") or []) if quote is not None else []


def estimate_range(ticket: Ticket) -> tuple[Optional[int], Optional[int]]:
    """(lowest, highest) of what the customer is asked to pay: an estimate offering
    alternatives none of which was chosen (not answered yet, or declined) counts from its
    cheapest alternative to its dearest (each with the common lines); any other estimate is
    its total twice; (None, None) before the first estimate."""
    if chosen_alternative(ticket) is None:
        totals = [a["total"] for a in estimate_alternatives(ticket)]
        if totals:
            return min(totals), max(totals)
    total = ticket.estimate_total
    return total, total


def chosen_alternative(ticket: Ticket) -> Optional[dict]:
    """The alternative the customer approved of the current estimate (``{"id", "name"}``),
    or None: none approved yet, or an estimate without alternatives."""
    for e in reversed(ticket.events):
        if e.event == "approve" and (e.data or {}).get("estimate_version") == \
                ticket.estimate_version and (e.data or {}).get("alternative") is not None:
            return {"id": e.data["alternative"], "name": e.data.get("alternative_name")}
    return None


def _quote_of(ticket: Ticket) -> Optional[TicketEvent]:
    return next((e for e in reversed(ticket.events) if e.event == "quote"
                 and (e.data or {}).get("estimate_version") == ticket.estimate_version), None)


def _choices_as_sent(alternatives) -> list[tuple]:
    return [(a["name"], _as_sent(a["lines"])) for a in alternatives]


def _as_sent(lines) -> list[tuple]:
    """Estimate lines as the customer reads them, to compare two estimates."""
    def get(line, key):
        return line[key] if isinstance(line, dict) else getattr(line, key)
    return [(get(l, "kind"), get(l, "description"), get(l, "qty"), get(l, "unit_price"))
            for l in lines]


def _clean_approve(data: dict, ticket: Ticket, actor: Actor) -> dict:
    """The customer's yes. To an estimate with alternatives it names the one chosen
    (``alternative``: its id), whose lines are added to the estimate's with it: the estimate
    approved is the common lines and the chosen one's (``estimate_total``)."""
    f = v.Fields(data)
    if actor.kind == "customer":
        f.clean["channel"] = "link"
        f.take("estimate_version", v.integer, minimum=1, maximum=v.MAX_ID, required=False)
    elif actor.kind == "system":  # within the amount pre-approved at intake
        f.clean["channel"] = "pre_approved"
        f.take("pre_approved_amount", v.integer, minimum=0, required=False)
        f.take("reason", v.text, max_len=300, required=False)
    else:
        f.take("channel", v.choice, ("phone", "in_person"))
    if "estimate_version" not in f.errors:  # a changed estimate is said first: look again
        _same_estimate(dict(f.clean), ticket)
    alternatives = estimate_alternatives(ticket)
    chosen_id = f.take("alternative", v.integer, minimum=1, maximum=v.MAX_ID, required=False)
    chosen = next((a for a in alternatives if a["id"] == chosen_id), None)
    if not alternatives and chosen_id is not None:
        f.errors["alternative"] = _("This estimate has no alternatives to choose between.")
    elif alternatives and chosen is None and "alternative" not in f.errors:
        options = ", ".join(f"{format_number(a['id'])} ({a['name']})" for a in alternatives)
        f.errors["alternative"] = (
            _("Choose one of the estimate's alternatives: %(options)s.", options=options)
            if chosen_id is None else
            _("The estimate has no alternative %(n)s. Its alternatives: %(options)s.",
              n=format_number(chosen_id), options=options))
    clean = _same_estimate(f.done(), ticket)
    clean["estimate_total"] = ticket.estimate_total
    if chosen is not None:
        clean["alternative_name"] = chosen["name"]
        clean["lines"] = [dict(line) for line in chosen["lines"]]
        clean["estimate_total"] = chosen["total"]
    return clean


def _same_estimate(clean: dict, ticket: Ticket) -> dict:
    """The customer answers the estimate they saw: if it was revised since (a new quote), their
    answer is refused and they must look at the new one. Records the version answered."""
    seen = clean.get("estimate_version", ticket.estimate_version)
    if seen != ticket.estimate_version:
        raise ValidationError(_("The estimate has changed since it was shown; look at the new "
                                "estimate and answer it again."),
                              fields={"estimate_version": _("The estimate has changed.")})
    clean["estimate_version"] = ticket.estimate_version
    return clean


def _clean_decline(data: dict, ticket: Ticket, actor: Actor) -> dict:
    f = v.Fields(data)
    if actor.kind == "customer":
        f.clean["channel"] = "link"
        f.take("estimate_version", v.integer, minimum=1, maximum=v.MAX_ID, required=False)
        f.take("reason", v.text, max_len=500, required=False)
    else:
        f.take("channel", v.choice, ("phone", "in_person"))
        f.take("reason", v.text, max_len=500)
    return _same_estimate(f.done(), ticket)


def _clean_reason(data: dict, ticket: Ticket, actor: Actor) -> dict:
    f = v.Fields(data)
    f.take("reason", v.text, max_len=500)
    return f.done()


def _clean_wait_parts(data: dict, ticket: Ticket, actor: Actor) -> dict:
    """The part, when it is expected, and the promise moved with it (``promise_moved`` when
    it replaces one the customer was given: their SMS says so)."""
    f = v.Fields(data)
    f.take("part", v.text, max_len=200)
    f.take("expected_date", v.a_date, required=False)
    promised = f.take("promised_date", v.a_date, required=False)
    clean = f.done()
    if promised is not None and ticket.promised_date is not None \
            and promised != ticket.promised_date:
        clean["promise_moved"] = True
    return clean


def _clean_finish(data: dict, ticket: Ticket, actor: Actor) -> dict:
    """The final bill. It records the estimate the customer approved beside it. ``above_estimate_ok:
    false`` (the ticket page's form sends it) refuses a bill above that estimate unless the
    technician ticks that the customer agreed to the higher amount: the receipt promised no
    charge without the customer's consent."""
    f = v.Fields(data)
    lines = f.take("lines", v.cost_lines, allow_empty=True)
    f.take("work_done", v.text, max_len=2000, required=False)
    # how the customer agreed to a bill above the estimate (the form asks with the box)
    channel = f.take("above_estimate_channel", v.choice, ("phone", "in_person"),
                     required=False)
    agreed_ok = _switch(f, "above_estimate_ok")
    approved = ticket.estimate_total
    total = sum(l["qty"] * l["unit_price"] for l in lines) if lines is not None else None
    # what the customer agreed to: the approved estimate, or the amount they pre-approved at
    # intake when that is more
    agreed = max(approved, ticket.pre_approved_amount or 0) if approved is not None else None
    above = agreed is not None and total is not None and total > agreed
    if above and agreed_ok is False:
        f.errors["lines"] = _(
            "The final bill, %(total)s, is %(difference)s above what the customer agreed to, "
            "%(approved)s. Ask the customer first, then tick \"The customer agreed to the "
            "higher amount\".", total=format_money_as_typed(total),
            difference=format_money_as_typed(total - agreed),
            approved=format_money_as_typed(agreed))
    clean = f.done()
    clean.pop("above_estimate_channel", None)  # recorded only with the agreement, below
    clean["total"] = total
    if approved is not None:
        clean["estimate_total"] = approved
        if above and agreed_ok is True:
            clean["above_estimate_agreed"] = True
            if channel:
                clean["above_estimate_channel"] = channel
    return clean


# How a hand-back was paid, as an Iranian shop's till counts it.
PAYMENT_METHODS = {"cash": _l("Cash"), "card": _l("Card reader"),
                   "transfer": _l("Card to card")}


def _clean_deliver(data: dict, ticket: Ticket, actor: Actor) -> dict:
    """``differs_ok: false`` (the delivery desk's form sends it) refuses a payment other than
    the amount due unless the desk ticks that it is meant (a discount, credit, an extra): a
    figure typed in the wrong unit or with a digit missing or added does not hand the device
    back underpaid, or put ten times the price on the customer's receipt. ``payment_method``
    (cash, card, transfer) says how it was paid; ``payments`` (two parts or more, each
    ``{"method", "amount"}``, adding up to the amount paid) instead, when it was split: 500,000
    in cash and 250,000 by card. ``method_needed: true`` (the desk's form) asks for one of
    them whenever something was paid."""
    f = v.Fields(data)
    paid = f.take("amount_paid", v.integer, minimum=0)
    f.take("collected_by", v.text, max_len=120, required=False)
    method = f.take("payment_method", v.choice, tuple(PAYMENT_METHODS), required=False)
    parts = f.take("payments", v.payment_parts, tuple(PAYMENT_METHODS), required=False)
    differs_ok = _switch(f, "differs_ok")
    if parts is not None and method is not None:
        f.errors["payment_method"] = _(
            "Send either payment_method (paid one way) or payments (split), not both.")
    if parts is not None and paid is not None and sum(p["amount"] for p in parts) != paid:
        f.errors["payments"] = _(
            "The parts add up to %(parts)s, not the amount paid, %(paid)s.",
            parts=format_money_as_typed(sum(p["amount"] for p in parts)),
            paid=format_money_as_typed(paid))
    if _switch(f, "method_needed") is True and paid and method is None and parts is None \
            and "payment_method" not in f.errors and "payments" not in f.errors:
        f.errors["payment_method"] = _("Say how it was paid.")
    due = ticket.amount_due or 0
    if differs_ok is False and paid is not None and paid != due:
        # (in rials through the API and the import, which take rials; else the shop's unit)
        words = {"paid": format_money_as_typed(paid),
                 "difference": format_money_as_typed(abs(due - paid)),
                 "due": format_money_as_typed(due)}
        if paid < due:
            problem = _("%(paid)s is %(difference)s less than the amount due, %(due)s.", **words)
        else:
            problem = _("%(paid)s is %(difference)s more than the amount due, %(due)s.", **words)
        f.errors["amount_paid"] = _(
            "%(problem)s Check the amount, or tick \"The amount differs from the amount due\" "
            "to hand the device back anyway.", problem=problem)
    clean = f.done()
    clean["amount_due"] = due  # beside what was paid: the till counts discounts from it
    # How the collector was confirmed (servicedesk.pickup.confirm: the services put it here
    # after checking the code; an import replays its history's)
    check = data.get("collector_check")
    if isinstance(check, dict) and check.get("method"):
        clean["collector_check"] = {k: check[k] for k in ("method", "reason", "by")
                                    if check.get(k) is not None}
    _signature_digest(data, clean)
    # the paper slip signed instead of the screen, and why (servicedesk.signatures)
    f = v.Fields(data)
    f.take(signatures.PAPER_FIELD, v.text, max_len=signatures.PAPER_REASON_MAX, required=False)
    clean.update(f.done())
    return clean


def _signature_digest(data: dict, clean: dict) -> None:
    """The SHA-256 of the customer's signature drawn on screen with the event (the services
    put it here beside the picture they keep: servicedesk.signatures), into its data."""
    digest = data.get("signature_sha256")
    if isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest):
        clean["signature_sha256"] = digest


def payment_parts(data: Optional[dict]) -> list[dict]:
    """How a hand-back's ``deliver`` event was paid, as parts ``{"method", "amount"}``: its
    ``payments`` when split, else one part of its ``payment_method`` (none when it recorded
    no method or nothing was paid)."""
    data = data or {}
    if data.get("payments"):
        return list(data["payments"])
    if data.get("payment_method") and data.get("amount_paid"):
        return [{"method": data["payment_method"], "amount": data["amount_paid"]}]
    return []


REFUND_ROLES = frozenset({"manager"})  # money out of the till: the manager's decision
# who confirms the collector of a device without a code (servicedesk.pickup): a manager
COLLECTOR_OVERRIDE_ROLES = frozenset({"manager"})


def refundable(ticket: Ticket) -> int:
    """What can still be given back: paid, less what was given back already (rials)."""
    return (ticket.amount_paid or 0) - (ticket.amount_refunded or 0)


def clean_refund(data: dict, ticket: Ticket) -> dict:
    """A refund after the hand-back: the amount (rials, at most what was paid and not given
    back yet), how it was given back (``PAYMENT_METHODS``) and why."""
    f = v.Fields(data)
    amount = f.take("amount", v.integer)
    if amount is not None and amount <= 0:
        f.errors["amount"] = _("Give back an amount above zero.")
        amount = None
    f.take("payment_method", v.choice, tuple(PAYMENT_METHODS))
    f.take("reason", v.text, max_len=500)
    left = refundable(ticket)
    if amount is not None and amount > left:
        f.errors["amount"] = _(
            "At most %(left)s can be refunded: %(paid)s was paid and %(refunded)s given back "
            "already.", left=format_money_as_typed(max(left, 0)),
            paid=format_money_as_typed(ticket.amount_paid or 0),
            refunded=format_money_as_typed(ticket.amount_refunded or 0))
    return f.done()


# A loaner device (a «گوشی امانی») lent while the customer's is in the shop: the desk lends it
# and takes it back, only while the ticket is open; the hand-back and the cancel are refused
# while it is out unless it comes back with them (services.tickets, not these rules: imports
# replay history through them, and imported tickets have no loans).
LOANER_ROLES = frozenset({"reception", "manager"})
# who keeps the branches' own loaner phones (the stock list): adds, edits, retires, marks fine
LOANER_STOCK_ROLES = frozenset({"manager", "admin"})
# Who replaces a customer's link (a forwarded SMS, a lost phone): the desk that prints the
# receipt and talks to the customer, and the manager; not the bench.
RELINK_ROLES = frozenset({"reception", "manager"})
LOANER_STATES = ("intake", "diagnosis", "estimate", "repair", "waiting_parts", "ready")
LOANER_BACK_WITH = ("deliver", "cancel")  # the events that end the shop's care of the device


def clean_loan(data: dict) -> dict:
    """What is lent: one of the branch's own loaner phones (``loaner_id``, its stock list: the
    service reads what it is), or a description typed ("Samsung A10, white") with its IMEI or
    serial (optional); and its condition as lent (optional)."""
    f = v.Fields(data)
    if data.get("loaner_id") not in (None, ""):
        f.take("loaner_id", v.integer, minimum=1, maximum=v.MAX_ID)
    else:
        f.take("description", v.text, max_len=120)
        f.take("serial", v.serial_or_imei, required=False)
    f.take("condition", v.text, max_len=500, required=False)
    return f.done()


def clean_return(data: dict, required: bool = False) -> dict:
    """How a loaner phone came back: ``condition`` "fine" or "damaged" (``required``: the
    desk's form asks; the API and the hand-back's box may leave it unsaid), and a ``note``,
    which a damaged one needs (what is wrong, for the manager who has it mended)."""
    f = v.Fields(data)
    condition = f.take("condition", v.choice, LOANER_CONDITIONS, required=required)
    note = f.take("note", v.text, max_len=500, required=False)
    if condition == "damaged" and not note:
        f.errors["note"] = _("Say what is damaged.")
    return f.done()


def _clean_close(data: dict, ticket: Ticket, actor: Actor) -> dict:
    f = v.Fields(data)
    f.take("survey_response_id", v.integer, minimum=1, maximum=v.MAX_ID, required=False)
    f.take("reason", v.text, max_len=200, required=False)
    return f.done()


# --- per-event effects on the ticket's other columns: the values fire() writes with the state --

def _apply_admit(ticket: Ticket, data: dict) -> dict:
    # who brought the device in for the customer on file: kept on the ticket for the search
    return {"brought_by": data["brought_by"]} if data.get("brought_by") else {}


def _apply_send_to_repair(ticket: Ticket, data: dict) -> dict:
    if not data.get("technician"):
        return {}
    return {"technician": db.session.scalar(
        select(User).where(User.username == data["technician"]))}


def _apply_quote(ticket: Ticket, data: dict) -> dict:
    data["estimate_version"] = ticket.estimate_version + 1
    changes = {"estimate_version": data["estimate_version"]}
    if data.get("promised_date"):
        changes["promised_date"] = data["promised_date"]
    return changes


def _apply_wait_parts(ticket: Ticket, data: dict) -> dict:
    return {"promised_date": data["promised_date"]} if data.get("promised_date") else {}


def _apply_deliver(ticket: Ticket, data: dict) -> dict:
    return {"amount_paid": data["amount_paid"]}


@dataclass(frozen=True)
class EventRule:
    name: str
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[str]
    clean: Callable[[dict, Ticket, Actor], dict]
    label: Any
    # The ticket's other columns the event sets (attribute -> value), from its clean data.
    apply: Optional[Callable[[Ticket, dict], dict]] = None
    # Fields of the event's data, for the OpenAPI document and the forms.
    fields: dict = field(default_factory=dict)
    # The cost lines in the event's data ("lines") are written as this stage's lines.
    lines: Optional[str] = None
    # What else a staff member's data may hold, beyond ``fields`` (the forms' inputs): the
    # switches and choices the forms give boxes of their own. ``data_fields`` adds the rest.
    more_fields: tuple[str, ...] = ()


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


EVENTS: dict[str, EventRule] = {r.name: r for r in (
    EventRule("admit", (NEW,), "intake", _roles("reception"), _clean_admit, _l("Admit"),
              _apply_admit),
    EventRule("send_to_repair", ("intake",), "diagnosis", _roles("reception", "technician"),
              _clean_send_to_repair, _l("Send to repair"), _apply_send_to_repair,
              {"technician": "string?"}),
    # Quoting again while the customer has not answered replaces the estimate (a new version):
    # an answer to the old one is refused, so the customer approves what they are charged.
    EventRule("quote", ("diagnosis", "estimate"), "estimate", _roles("technician"), _clean_quote,
              _l("Send estimate"), _apply_quote, {"lines": "lines", "promised_date": "date?"},
              lines="estimate", more_fields=("alternatives",)),
    # An estimate with alternatives: the approval names the one chosen, and its lines join
    # the estimate's (the estimate approved, which the bill starts from).
    EventRule("approve", ("estimate",), "repair", _roles(CUSTOMER, "reception", SYSTEM),
              _clean_approve, _l("Approve estimate"), None,
              {"channel": "phone|in_person", "alternative": "alternative?"}, lines="estimate"),
    EventRule("decline", ("estimate",), "ready", _roles(CUSTOMER, "reception"), _clean_decline,
              _l("Decline estimate"), None, {"reason": "string", "channel": "phone|in_person"}),
    EventRule("return_unrepaired", ("diagnosis",), "ready", _roles("technician"), _clean_reason,
              _l("Return unrepaired"), None, {"reason": "string"}),
    EventRule("wait_parts", ("repair",), "waiting_parts", _roles("technician"),
              _clean_wait_parts, _l("Wait for parts"), _apply_wait_parts,
              {"part": "string", "expected_date": "date?", "promised_date": "date?"}),
    EventRule("resume", ("waiting_parts",), "repair", _roles("technician"), _no_data,
              _l("Resume repair"), None, {}),
    EventRule("finish", ("repair",), "ready", _roles("technician"), _clean_finish,
              _l("Finish repair"), None, {"lines": "lines", "work_done": "string?"},
              lines="final", more_fields=("above_estimate_ok", "above_estimate_channel")),
    EventRule("deliver", ("ready",), "delivered", _roles("reception"), _clean_deliver,
              _l("Deliver"), _apply_deliver, {"amount_paid": "money", "collected_by": "string?",
                                        "payments": "payments?"},
              more_fields=("payment_method", "differs_ok", "method_needed", "pickup_code",
                           "sms_code", "signature", "signed_on_paper_reason")),
    EventRule("close", ("delivered",), "closed", _roles(CUSTOMER, SYSTEM), _clean_close,
              _l("Close"), None, {}),
    EventRule("cancel", ("intake",), "cancelled", _roles("reception", "manager"), _clean_reason,
              _l("Cancel the ticket"), None, {"reason": "string"}),
)}

# One shared machine for every ticket (never one per row: SQLAlchemy skips __init__ on load, and
# add_model without initial= resets the state). No auto transitions (to_delivered() would skip
# the workflow) and invalid triggers raise, so a double click is a 409, never a silent no-op.
MACHINE = Machine(
    model=None, states=[NEW, *TICKET_STATES], initial=None, auto_transitions=False,
    model_attribute="state", ignore_invalid_triggers=False,
    transitions=[{"trigger": r.name, "source": list(r.sources), "dest": r.dest}
                 for r in EVENTS.values()],
)


def data_fields(event: str) -> frozenset[str]:
    """Every field a staff member's data for ``event`` may hold: its ``fields``, its
    ``more_fields``, and ``loaner_returned`` with how the phone came back
    (``loaner_condition``, ``loaner_note``) for the events a loaner phone comes back with.
    The API refuses any other (a misspelt optional field, dropped, would do something else
    than asked)."""
    rule = EVENTS[event]
    return frozenset((*rule.fields, *rule.more_fields,
                      *(("loaner_returned", "loaner_condition", "loaner_note")
                        if event in LOANER_BACK_WITH else ())))


def allowed_events(state: str, role: Optional[str] = None) -> list[str]:
    """Events allowed from ``state`` (for ``role``, when given), in the table's order."""
    return [r.name for r in EVENTS.values()
            if state in r.sources and (role is None or role in r.roles)]


def event_hash(prev_hash: str, ticket_id: int, seq: int, event: str, from_state: Optional[str],
               to_state: str, actor_kind: str, actor_name: str, at: datetime, data: dict) -> str:
    """SHA-256 over the event and the hash of the one before it: editing any event breaks the
    chain from there on."""
    payload = json.dumps(
        [prev_hash, ticket_id, seq, event, from_state, to_state, actor_kind, actor_name,
         at.isoformat(timespec="microseconds"), data],
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _json_safe(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_json_safe(x) for x in value]
    return value


class _StateOf:
    """What the shared Machine moves: the state alone. The ticket's row is written with its
    other columns in one statement, not through an attribute change the ORM would flush."""

    def __init__(self, state: str) -> None:
        self.state = state


def fire(ticket: Ticket, event: str, actor: Actor, data: Optional[dict] = None, *,
         at: Optional[datetime] = None, notify: bool = True) -> TicketEvent:
    """Fire ``event`` on ``ticket`` in the current transaction; the caller commits.

    Raises ValidationError (unknown event, bad data), Forbidden (role), TransitionNotAllowed
    (state). A concurrent change to the same ticket raises StaleDataError (the version column),
    which services turn into Conflict. ``notify=False`` (imports) writes no SMS; ``at`` replays
    an event at its own time. A new ticket (not yet in the session: ``admit``) is written here,
    already in its first state.
    """
    rule = EVENTS.get(event) if isinstance(event, str) else None
    if rule is None:
        raise ValidationError(
            _("Unknown event. Known events: %(events)s.", events=", ".join(EVENTS)),
            fields={"event": _("Unknown event.")})
    if actor.role not in rule.roles:
        raise Forbidden(_("Your role (%(role)s) may not fire the event %(event)s.",
                          role=actor.role, event=event))
    from_state = ticket.state
    if from_state not in rule.sources:
        allowed = allowed_events(from_state)
        raise TransitionNotAllowed(
            _("The ticket is %(state)s: %(event)s is not allowed. Allowed now: %(allowed)s.",
              state=from_state, event=event, allowed=", ".join(allowed) or "-"),
            state=from_state, allowed=allowed)
    clean = rule.clean(data if data is not None else {}, ticket, actor)
    changes = rule.apply(ticket, clean) if rule.apply else {}
    moved = _StateOf(from_state)
    MACHINE.events[event].trigger(moved)
    changes["state"] = moved.state

    stored = _json_safe(clean)
    if actor.ip and actor.kind == "customer":
        stored["ip"] = actor.ip
    row = _append(ticket, event, None if from_state == NEW else from_state, actor, stored,
                  changes, at)
    if rule.lines:
        version = ticket.estimate_version
        persist.append_loaded(ticket, "lines", *(
            persist.insert(CostLine(ticket_id=ticket.id, stage=rule.lines,
                                    estimate_version=version, **line))
            for line in clean.get("lines") or ()))
    stages.on_event(ticket, row)

    # An SMS not sent yet that asked for what this event answered or ended (the estimate's
    # "approve or decline" once the desk took the answer by phone, "ready to collect" once it
    # was handed back) is cancelled with it, with the reason.
    superseded.cancel_for_event(ticket, None if from_state == NEW else from_state, row)
    # Every event has a template; none is written for imports, for the system closing an
    # unanswered survey, or when the template is off or the customer opted out (outbox decides).
    if notify and not (event == "close" and actor.kind == "system"):
        outbox.write_for_event(ticket, row)
    if notify:  # the administrator's webhooks (not for imported history)
        webhooks.write_for_event(ticket, row)
    return row


def _append(ticket: Ticket, name: str, from_state: Optional[str], actor: Actor, stored: dict,
            changes: dict, at: Optional[datetime]) -> TicketEvent:
    """Write the ticket's ``changes`` (its UPDATE with the version check, or the INSERT of a
    new ticket) and the next hash-chained event of its audit trail."""
    when = (at or utcnow()).astimezone(timezone.utc)
    changes["updated_at"] = when
    if inspect(ticket).transient:
        for key, value in changes.items():
            setattr(ticket, key, value)
        persist.insert(ticket)  # its id is in the event's hash
    else:
        persist.update(ticket, **changes)
    events = ticket.events
    seq = len(events) + 1
    prev_hash = events[-1].hash if events else GENESIS_HASH
    to_state = ticket.state
    row = persist.insert(TicketEvent(
        ticket_id=ticket.id, seq=seq, event=name, from_state=from_state, to_state=to_state,
        actor_kind=actor.kind, actor_id=actor.user_id, actor_name=actor.name, at=when,
        data=stored, ip=actor.ip, prev_hash=prev_hash,
        hash=event_hash(prev_hash, ticket.id, seq, name, from_state, to_state, actor.kind,
                        actor.name, when, stored)))
    persist.append_loaded(ticket, "events", row)
    return row


# Audit entries that are not transitions (the state stays): who claimed or was assigned a ticket,
# money given back after the hand-back.
RECORDS = {"claim": _l("Claimed"), "assign": _l("Assigned"), "refund": _l("Refunded"),
           "lend_loaner": _l("Loaner phone lent"), "return_loaner": _l("Loaner phone taken back"),
           # who collects the device (servicedesk.pickup): a manager's confirmation, a wrong
           # code typed at the desk, a one-time code texted to the owner
           "collector_override": _l("Collector confirmed by a manager"),
           "collector_refused": _l("Wrong pickup code"),
           "collector_code_sent": _l("Pickup code texted to the owner"),
           # the customer's link replaced (services.tickets.replace_link): a new token, the
           # old one dead; neither is in the record
           "replace_link": _l("Customer's link replaced")}
# Those the customer sees in their page's history (and gets an SMS for).
CUSTOMER_RECORDS = frozenset({"refund"})


def record(ticket: Ticket, name: str, actor: Actor, data: Optional[dict] = None, *,
           at: Optional[datetime] = None, notify: bool = True, **changes) -> TicketEvent:
    """Append a hash-chained audit entry that changes no state (e.g. a technician claiming a
    ticket), in the caller's transaction, with the ticket's ``changes`` (attribute -> value).
    Bumps the ticket's version, so it races like an event. The records an outside program
    follows (a refund, a loaner phone lent or taken back, who holds the ticket:
    ``webhooks.RECORD_EVENTS``) write the administrator's webhooks in the same transaction,
    as ``fire`` does; ``notify=False`` (imported history) writes none."""
    if name not in RECORDS:
        raise ValueError(f"unknown audit record {name!r}")
    row = _append(ticket, name, ticket.state, actor, _json_safe(data or {}), changes, at)
    if notify and name in webhooks.RECORD_EVENTS:
        webhooks.write_for_event(ticket, row)
    return row


def verify_records(ticket: Ticket) -> list[str]:
    """What the ticket's own rows say that its (hash-chained) trail does not: the bill, the
    estimate, the amount paid, the technician, and who acted (the account an event points
    to must be the one it names). The chain proves the events; this ties the rows the screens
    and reports read to them. Empty when they agree; else each disagreement in the current
    language (verify-audit's, the shop's), the events' and records' names as the trail has
    them."""
    problems = []

    def last(*names):
        return next((e for e in reversed(ticket.events) if e.event in names), None)

    quote = _quote_of(ticket)
    # an estimate with alternatives: its lines and those of the one the approval chose
    approval = next((e for e in reversed(ticket.events) if e.event == "approve"
                     and (e.data or {}).get("estimate_version") == ticket.estimate_version),
                    None)
    chosen = (approval.data or {}).get("lines", []) if approval is not None else []
    if ticket.estimate_version and quote is None:
        problems.append(_("estimate version %(version)s has no quote event",
                          version=format_number(ticket.estimate_version)))
    elif quote is not None and _as_sent(quote.data.get("lines", []) + chosen) != _as_sent(
            ticket.estimate_lines()):
        problems.append(_("the estimate's lines differ from its quote event"))
    finish = last("finish")
    if _as_sent(finish.data.get("lines", []) if finish is not None else []) != _as_sent(
            ticket.final_lines()):
        problems.append(_("the bill's lines differ from the finish event"))
    deliver = last("deliver")
    recorded = (deliver.data or {}).get("amount_paid") if deliver is not None else None
    if ticket.amount_paid != recorded:
        problems.append(_("the amount paid differs from the deliver event"))
    admit = ticket.events[0] if ticket.events else None
    if admit is not None and (admit.data or {}).get("brought_by") != ticket.brought_by:
        problems.append(_("who brought the device in differs from the admit event"))
    refunds = [(e.data or {}).get("amount") or 0 for e in ticket.events if e.event == "refund"]
    if (ticket.amount_refunded or 0) != sum(refunds):
        problems.append(_("the amount refunded differs from the refund records"))
    problems += _verify_loans(ticket)
    problems += _verify_signatures(ticket)
    holder = None
    for e in ticket.events:
        if e.event in ("claim", "assign") or (e.event == "send_to_repair"
                                               and (e.data or {}).get("technician")):
            holder = (e.data or {}).get("technician")
    held = ticket.technician.username if ticket.technician is not None else None
    if held != holder and not (holder is None and held is None):
        problems.append(_("the technician differs from the trail"))
    for e in ticket.events:
        if e.actor is not None and e.actor.username != e.actor_name:
            problems.append(_("event %(seq)s names %(name)s but points to another account",
                              seq=format_number(e.seq), name=e.actor_name))
    return problems


def _verify_loans(ticket: Ticket) -> list[str]:
    """The ticket's loan rows against its ``lend_loaner`` and ``return_loaner`` records: each
    loan lent by the record that names it (what, who, when), taken back by one (who, when) or
    still out with none, and no loan without its record."""
    problems = []
    loans = {loan.id: loan for loan in db.session.scalars(
        select(Loan).where(Loan.ticket_id == ticket.id).order_by(Loan.id))}
    lent, returned = {}, {}
    for e in ticket.events:
        if e.event in ("lend_loaner", "return_loaner"):
            (lent if e.event == "lend_loaner" else returned)[(e.data or {}).get("loan_id")] = e
    for loan_id, loan in loans.items():
        e = lent.get(loan_id)
        if e is None:
            problems.append(_("loan %(id)s has no lend_loaner record",
                              id=format_number(loan_id)))
        elif ((e.data or {}).get("description"), (e.data or {}).get("serial"),
              (e.data or {}).get("condition") or "", (e.data or {}).get("loaner_id"),
              e.actor_name, e.at) != (
                loan.description, loan.serial, loan.condition or "", loan.loaner_id,
                loan.lent_by_name, loan.lent_at):
            problems.append(_("loan %(id)s differs from its lend_loaner record",
                              id=format_number(loan_id)))
        back = returned.get(loan_id)
        if back is None and loan.returned_at is not None:
            problems.append(_("loan %(id)s is taken back without a return_loaner record",
                              id=format_number(loan_id)))
        elif back is not None and (back.actor_name, back.at, (back.data or {}).get("condition"),
                                   (back.data or {}).get("note")) != (
                loan.returned_by_name, loan.returned_at, loan.return_condition,
                loan.return_note):
            problems.append(_("loan %(id)s differs from its return_loaner record",
                              id=format_number(loan_id)))
    for loan_id in (lent.keys() | returned.keys()) - loans.keys():
        problems.append(_("the trail's loan %(id)s has no loan row", id=format_number(loan_id)))
    return problems


def _verify_signatures(ticket: Ticket) -> list[str]:
    """Each signature picture kept (servicedesk.signatures) against the SHA-256 its event
    records: a picture replaced, or one missing or not recorded, is named."""
    recorded = {e.id: e.data["signature_sha256"] for e in ticket.events
                if (e.data or {}).get("signature_sha256")}
    kept = {row.event_id: row for row in db.session.scalars(
        select(TicketSignature).where(TicketSignature.ticket_id == ticket.id))}
    differs = {"intake": _("the intake signature differs from its event"),
               "delivery": _("the delivery signature differs from its event")}
    problems = [differs.get(row.moment) or _("the %(moment)s signature differs from its event",
                                             moment=row.moment)
                for event_id, row in kept.items()
                if recorded.get(event_id) != signatures.digest(row.image)]
    problems += [_("event %(seq)s's signature has no picture", seq=format_number(e.seq))
                 for e in ticket.events if e.id in recorded and e.id not in kept]
    return problems


def verify_chain(ticket: Ticket) -> Optional[int]:
    """The seq of the first event edited or missing, or None when the chain holds. An event
    deleted from the middle breaks the next one's link; the last ones deleted leave the
    ticket in a state no remaining event led to (the seq after the last is reported), and a
    ticket with no events at all is missing its first."""
    prev = GENESIS_HASH
    last = None
    for row in ticket.events:
        expected = event_hash(prev, ticket.id, row.seq, row.event, row.from_state, row.to_state,
                              row.actor_kind, row.actor_name, row.at, row.data)
        if row.prev_hash != prev or row.hash != expected:
            return row.seq
        prev, last = row.hash, row
    if last is None:
        return 1
    if last.to_state != ticket.state:
        return last.seq + 1
    return None
