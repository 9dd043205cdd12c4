"""Staff ticket pages: the list, one ticket (device, timeline, notes, SMS, one form per event the
user may fire now, the estimate editor), intake, notes.

Thin views: parse the form, call one service action, render. A form that fails is shown again
with what was typed (an estimate's lines are not lost) and the problem next to its field.
"""
import re
from datetime import date

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .. import lifecycle, pickup, signatures
from ..auth import ROLE_LABELS, can, require
from ..errors import DomainError, ValidationError
from ..extensions import db
from ..i18n import format_money, format_number, to_ascii_digits
from ..lifecycle import Actor
from ..models import Ticket
from ..notifications import reasons as sms_reasons
from ..notifications import templates as sms_templates
from ..services import loaners as loaner_service
from ..services import reception as reception_service
from ..services import tickets as ticket_service
from ..services import workbench as workbench_service
from ..validation import MAX_ALTERNATIVES, refuse_part_after_promise, refuse_past_dates
from . import money

bp = Blueprint("tickets", __name__, url_prefix="/tickets")

# Labels of every row a timeline can hold: the lifecycle's events and its audit records.
EVENT_LABELS = {**{k: r.label for k, r in lifecycle.EVENTS.items()}, **lifecycle.RECORDS}
FIELD_LABELS = {
    "reason": _l("Reason"), "part": _l("Part"), "expected_date": _l("Expected date"),
    "promised_date": _l("Promised date"), "work_done": _l("Work done"),
    "amount_paid": _l("Amount paid"), "collected_by": _l("Collected by"),
    "technician": _l("Technician"), "channel": _l("How the customer answered"),
    "lines": _l("Lines"), "estimate_version": _l("Estimate version"), "event": _l("Event"),
    "body": _l("Note"),
    "alternatives": _l("Alternatives"), "alternative": _l("Alternative chosen"),
}
CHANNEL_LABELS = {
    "link": _l("by the tracking link"), "phone": _l("by phone"), "in_person": _l("in person"),
    "pre_approved": _l("within the amount pre-approved at intake"),
}
NOTIFICATION_LABELS = {
    "pending": _l("waiting to be sent"), "sending": _l("sending"), "retry": _l("will retry"),
    "sent": _l("sent"), "delivered": _l("delivered"), "undelivered": _l("not delivered"),
    "failed": _l("failed"), "unknown": _l("unknown"),
    "cancelled": _l("not sent: no longer due"),
}
# Whether the new link went by SMS when the customer's link was replaced (its record's data).
RELINK_SMS_LABELS = {
    "texted": _l("texted to the customer"), "not_asked": _l("not sent: not asked for"),
    "opted_out": _l("not sent: the customer asked for no SMS"),
    "switched_off": _l("not sent: this SMS is switched off in the shop's SMS texts"),
}
ACTOR_LABELS = {"customer": _l("The customer"), "system": _l("The system")}
# Who takes a ticket on, named for a reader whose role fires nothing now (a manager reading an
# estimate the customer has not answered): from the lifecycle table's roles.
NEXT_ACTORS = {**ROLE_LABELS,
               lifecycle.CUSTOMER: _l("the customer (the link in their SMS or on the receipt)")}


def next_steps(ticket: Ticket) -> list[tuple]:
    """The events allowed from the ticket's state and who may fire each (the system's own
    acts left out: an approval within a pre-approved amount comes with the estimate, not
    later), as (label, [who]) in the table's order."""
    steps = []
    for name in lifecycle.allowed_events(ticket.state):
        rule = lifecycle.EVENTS[name]
        who = [NEXT_ACTORS[r] for r in (lifecycle.CUSTOMER, *lifecycle.STAFF_ROLES)
               if r in rule.roles]
        if name == "close":
            who.append(_l("automatically, when nobody answers the survey"))
        if who:
            label = _l("Revise the estimate") if name == "quote" and ticket.state == "estimate" \
                else rule.label
            steps.append((label, who, lifecycle.CUSTOMER in rule.roles))
    # what the ticket waits on first: the customer's answer before a revision of the estimate
    return [(label, who) for label, who, _customer in
            sorted(steps, key=lambda step: not step[2])]
# A loaner phone taken back with the event that ended the shop's care of the device.
LOANER_WITH = {"deliver": _l("at the hand-back"), "cancel": _l("at the cancellation")}
# How a loaner phone came back (lifecycle.clean_return).
LOANER_CONDITION_LABELS = {"fine": _l("Fine"), "damaged": _l("Damaged")}
# Events whose form edits cost lines (the estimate editor).
LINE_EVENTS = ("quote", "finish")
BLANK_LINES = 3  # empty rows offered without JavaScript
# The estimate form's alternatives (an original display or a copy one): as many as the
# estimate revised had, else this many offered to fill, each with this many blank rows (with
# JavaScript, "Add an alternative" adds a slot, up to validation.MAX_ALTERNATIVES).
ALTERNATIVE_SLOTS = 3
ALTERNATIVE_BLANK_LINES = 2
_ALTERNATIVE_FIELD = re.compile(r"^alt\d+_")


# --- the list ---------------------------------------------------------------------------------

@bp.get("/")
@require("tickets.view")
def index():
    state = request.args.get("state")
    state = state if state in lifecycle.TICKET_STATES else None
    q = (request.args.get("q") or "").strip()
    choices = ticket_service.list_choices()
    # a manager's two-branch shop: one branch's tickets, one technician's (a bad value: all)
    branch_id = request.args.get("branch", type=int)
    branch_id = branch_id if branch_id in {b.id for b in choices["branches"]} else None
    technician_id = request.args.get("technician", type=int)
    technician_id = technician_id if technician_id in {
        u.id for u in choices["technicians"]} else None
    limit = ticket_service.LIST_LIMIT
    items = ticket_service.list_tickets(state, q, limit=limit + 1, branch_id=branch_id,
                                        technician_id=technician_id)  # one more: are there?
    return render_template("tickets/index.html", items=items[:limit], state=state, q=q,
                           states=lifecycle.TICKET_STATES, labels=lifecycle.STATE_LABELS,
                           limit=limit, more=len(items) > limit, choices=choices,
                           branch_id=branch_id, technician_id=technician_id,
                           replaced_link=bool(q) and not items
                           and reception_service.searched_replaced_link(q))


# --- one ticket -------------------------------------------------------------------------------

def _iso_date(value):
    try:
        return date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _collector_words(check: dict) -> str:
    """How the hand-back's collector was confirmed, in the shop's words."""
    if check.get("method") == "override":
        return _("%(name)s, a manager: %(reason)s", name=check.get("by") or "-",
                 reason=check.get("reason") or "-")
    return str(pickup.METHODS.get(check.get("method"), check.get("method")))


def timeline(ticket: Ticket) -> list[dict]:
    """Every event and audit record of the ticket, oldest first: what, when, who and the data
    that matters to the next person (each detail typed, so the template formats it)."""
    rows = []
    # technicians by the user name the events record, shown by the name people know them by
    names = workbench_service.full_names(
        {(e.data or {}).get(k) for e in ticket.events for k in ("technician", "before")}
        - {None, ""})
    for e in ticket.events:
        d = e.data or {}
        details = []

        def add(key, kind="text", value=None, label=None):
            value = d.get(key) if value is None else value
            if value not in (None, "", []):
                details.append((label or FIELD_LABELS.get(key, key), value, kind))

        if e.event in ("send_to_repair", "claim", "assign"):
            technician = d.get("technician")
            if names.get(technician):
                add("technician", value=names[technician])
            elif technician:
                add("technician", "ltr")
            elif e.event == "assign":
                details.append((FIELD_LABELS["technician"],
                                _l("nobody: back in the repair queue"), "text"))
            if d.get("before"):
                add("before", value=names.get(d["before"]) or d["before"],
                    label=_l("Was with"))
        elif e.event == "admit":
            add("visit", "code", label=_l("Queue number"))
            add("customer_renamed_from", label=_l("Customer's name before this intake"))
            add("brought_by", label=_l("Brought by"))
            add("technician_name", label=_l("Technician (imported, no account here)"))
        elif e.event == "quote":
            add("total", "money", label=_l("Estimate total") if not d.get("alternatives")
                else _l("Common lines"))
            for alternative in d.get("alternatives") or []:  # each with its total
                details.append((_l("Alternative: %(name)s", name=alternative.get("name")),
                                alternative.get("total"), "money"))
            add("estimate_version", "number")
            add("promised_date", "date", _iso_date(d.get("promised_date")))
        elif e.event in ("approve", "decline"):
            add("channel", "text", CHANNEL_LABELS.get(d.get("channel"), d.get("channel")))
            add("alternative_name", label=_l("Alternative chosen"))
            add("pre_approved_amount", "money", label=_l("Pre-approved amount"))
            add("estimate_total", "money", label=_l("Estimate total"))
            add("estimate_version", "number")
            add("reason")
            add("ip", "ltr", label=_l("From the address"))
        elif e.event == "wait_parts":
            add("part")
            add("expected_date", "date", _iso_date(d.get("expected_date")))
            add("promised_date", "date", _iso_date(d.get("promised_date")))
        elif e.event == "finish":
            add("total", "money", label=_l("Final total"))
            if (d.get("total") or 0) != d.get("estimate_total", d.get("total")):
                add("estimate_total", "money", label=_l("Approved estimate"))
            if d.get("above_estimate_agreed"):
                how = CHANNEL_LABELS.get(d.get("above_estimate_channel"))
                details.append((_l("Above the approved estimate"),
                                _l("the customer agreed %(how)s", how=how) if how
                                else _l("the customer agreed"), "text"))
            add("work_done")
        elif e.event == "deliver":
            add("amount_paid", "money", label=_l("Amount paid"))
            add("payment_method", "text",
                lifecycle.PAYMENT_METHODS.get(d.get("payment_method"), d.get("payment_method")),
                label=_l("Paid by"))
            for part in d.get("payments") or []:  # split between methods: each part
                details.append((_l("Paid by %(method)s", method=lifecycle.PAYMENT_METHODS.get(
                    part.get("method"), part.get("method"))), part.get("amount"), "money"))
            add("collected_by")
            check = d.get("collector_check") or {}
            if check.get("method"):
                details.append((_l("Collector confirmed by"), _collector_words(check), "text"))
        elif e.event in ("collector_override", "collector_refused", "collector_code_sent"):
            add("reason")
            if e.event == "collector_refused":
                add("method", "text", pickup.METHODS.get(d.get("method")),
                    label=_l("Code typed"))
                add("tries", "number", label=_l("Wrong codes so far"))
                if d.get("locked"):
                    details.append((_l("Codes"), _l("locked until a manager confirms the "
                                                    "collector"), "text"))
        elif e.event == "refund":
            add("amount", "money", label=_l("Given back"))
            add("payment_method", "text",
                lifecycle.PAYMENT_METHODS.get(d.get("payment_method"), d.get("payment_method")),
                label=_l("Given back by"))
            add("reason")
        elif e.event in ("lend_loaner", "return_loaner"):
            add("description", label=_l("Loaner phone"))
            add("serial", "ltr", label=_l("IMEI or serial"))
            if e.event == "lend_loaner":
                add("condition", label=_l("Its condition"))
            else:  # as it came back (since the stock list; before, unsaid)
                add("condition", "text", LOANER_CONDITION_LABELS.get(d.get("condition")),
                    label=_l("As it came back"))
                add("note", label=_l("What is damaged"))
            if d.get("with_event") in LOANER_WITH:
                details.append((_l("Taken back"), LOANER_WITH[d["with_event"]], "text"))
        elif e.event == "replace_link":
            details.append((_l("SMS with the new link"),
                            RELINK_SMS_LABELS.get(d.get("sms"), d.get("sms")), "text"))
        elif e.event == "close":
            if d.get("survey_response_id"):
                details.append((_l("Survey"), _l("answered by the customer"), "text"))
            add("reason")
        else:
            add("reason")
        if d.get("signature_sha256") and e.event in signatures.MOMENT_OF:  # on the screen
            details.append((_l("Signed on the screen"), url_for(
                ".signature", ticket_id=ticket.id, moment=signatures.MOMENT_OF[e.event]),
                "signature"))
        if d.get(signatures.PAPER_FIELD) and e.event in signatures.MOMENT_OF:
            details.append((_l("Signed on paper"), d[signatures.PAPER_FIELD], "text"))
        # the name the hash-chained row records; the account's full name only when it is that
        # account's (the account link is not in the hash: an edited one must not rename)
        if e.actor is not None and e.actor.username == e.actor_name:
            who = e.actor.display_name
        elif e.actor_kind == "staff":
            who = e.actor_name
        else:
            who = ACTOR_LABELS.get(e.actor_kind, e.actor_name)
        rows.append({"event": e.event, "label": EVENT_LABELS.get(e.event, e.event), "at": e.at,
                     "who": who, "actor_kind": e.actor_kind, "details": details,
                     "from": e.from_state, "to": e.to_state})
    return rows


def loaner_back(form) -> dict:
    """How the loaner phone came back, as the box of the hand-back or the cancel says it
    (``loaner_condition``, ``loaner_note``: services.loaners.back_with)."""
    return {k: form.get(k) for k in ("loaner_condition", "loaner_note") if form.get(k)}


def _posted_lines(form, prefix: str = "") -> list[dict]:
    return [{"kind": kind, "description": desc, "qty": qty, "unit_price": price}
            for kind, desc, qty, price in zip(form.getlist(prefix + "line_kind"),
                                              form.getlist(prefix + "line_description"),
                                              form.getlist(prefix + "line_qty"),
                                              form.getlist(prefix + "line_unit_price"))]


def _sent_lines(form, prefix: str = "") -> list[dict]:
    """The editor's rows as typed, without the blank ones: "line 2" of an error is the second
    of these. ``prefix``: an alternative's editor ("alt2_")."""
    return [line for line in _posted_lines(form, prefix)
            if line["description"].strip() or line["unit_price"].strip()]


def _sent_alternatives(form) -> list[dict]:
    """The estimate form's alternatives as typed, each ``{"name", "lines"}`` in its place
    (a blank one too: the form shows them again where they were)."""
    slots = sorted({int(m.group(1)) for k in form
                    if (m := re.match(r"^alt(\d+)_", k)) and int(m.group(1)) <= 20})
    return [{"name": form.get(f"alt{i}_name", ""), "lines": _sent_lines(form, f"alt{i}_")}
            for i in slots]


def _alternatives_data(form, unit) -> list[dict]:
    """The alternatives filled in, as the lifecycle takes them (prices in rials): a blank
    one (no name, no line) is not offered. A price written wrong is named with its
    alternative, as the lifecycle names a bad line of one."""
    out = []
    for alternative in _sent_alternatives(form):
        if not alternative["name"].strip() and not alternative["lines"]:
            continue
        n = len(out) + 1
        lines = [{**line, "qty": line["qty"].strip() or "1"} for line in alternative["lines"]]
        try:
            lines = money.read_lines(lines, unit)
        except ValidationError as exc:
            at = (exc.extra.get("at") or {}).get("lines") or {}
            raise ValidationError(_("Some fields are not valid."), fields={
                "alternatives": _("Alternative %(n)s: %(problem)s", n=format_number(n),
                                  problem=exc.extra["fields"]["lines"])},
                at={"alternatives": {"alternative": n, **at}}) from None
        out.append({"name": alternative["name"], "lines": lines})
    return out


def _prefill_lines(ticket: Ticket, event: str) -> list:
    """The editor's starting lines: a revised estimate starts from the current one, the final
    bill from the estimate the customer approved (editable)."""
    if event == "finish":
        return list(ticket.final_lines() or ticket.estimate_lines())
    if event == "quote":
        return list(ticket.estimate_lines())
    return []


def render_ticket(ticket_id: int, status: int = 200, failed: dict | None = None):
    """The ticket page; ``failed`` = {"event", "values", "lines", "errors", "line_error"} of a
    form to show again as it was sent (``line_error``: {"line", "field"} of a bad cost line)."""
    ticket, notes = workbench_service.ticket_page(ticket_id)
    # another branch's device: read it (a customer asking here), act on it there
    elsewhere = not ticket_service.acts_here(ticket, current_user.role, current_user.branch_id)
    events = [] if elsewhere else [
        lifecycle.EVENTS[name]
        for name in lifecycle.allowed_events(ticket.state, current_user.role)]
    technicians = []
    if any(rule.name == "send_to_repair" for rule in events):
        # those who may work on it: its branch's, and those of no branch
        technicians = sorted(workbench_service.technicians_to_assign(ticket.branch_id),
                             key=lambda u: u.username)
    failed = failed or {}
    lines = {rule.name: (failed["lines"] if failed.get("event") == rule.name
                         and failed.get("lines") is not None
                         else _prefill_lines(ticket, rule.name))
             for rule in events if rule.name in LINE_EVENTS}
    # the estimate form's alternatives: as sent back, else the estimate's (a revision), and
    # blank ones to fill up to the slots offered
    alternatives = (failed["alternatives"] if failed.get("event") == "quote"
                    and failed.get("alternatives") is not None
                    else lifecycle.estimate_alternatives(ticket)
                    if any(rule.name == "quote" for rule in events) else [])
    alternatives = list(alternatives) + [{"name": "", "lines": []}] * max(
        0, ALTERNATIVE_SLOTS - len(alternatives))
    can_claim = (can(current_user, "tickets.claim") and ticket.technician_id is None
                 and not elsewhere
                 and ticket.state in workbench_service.BENCH_STATES)
    can_assign = workbench_service.can_assign(current_user, ticket)
    assign_to = (workbench_service.technicians_to_assign(ticket.branch_id)
                 if can_assign and current_user.role == "manager" else [])
    # money given back after the hand-back: the manager, while some of what was paid is left
    refundable = (lifecycle.refundable(ticket) if can(current_user, "tickets.refund")
                  and ticket.state in ("delivered", "closed") else 0)
    # the loaner phone out, and whether this user may lend one (the ticket open) or take it back
    loaner = loaner_service.out(ticket.id) if loaner_service.held(ticket) else None
    loaner_desk = can(current_user, "tickets.loaner") and not elsewhere
    can_lend = loaner_desk and loaner is None and ticket.state in lifecycle.LOANER_STATES
    # a branch that keeps a list of its loaner phones: the form offers its free ones
    stocked = can_lend and loaner_service.has_stock(ticket.branch_id)
    # each SMS by what it was for: a revised estimate is not the first one
    kinds = {e.id: sms_templates.kind_of(e.event, e.data) for e in ticket.events}
    words = sms_templates.event_labels()
    # (an SMS of its own kind about an event, a reminder, says so itself)
    sms_labels = {n.id: words.get(kinds.get(n.event_id, n.event) if n.event in lifecycle.EVENTS
                                  else n.event, n.event)
                  for n in ticket.notifications}
    # why one did not go or did not arrive, in the shop's words (not "failed 21211")
    why_not = {n.id: sms_reasons.explain(n.status, n.error_code, n.error_message)
               for n in ticket.notifications}
    # ...and which the desk may send again (once each: the copy is a row of its own)
    resent = {n.dedupe_key for n in ticket.notifications}
    desk = can(current_user, "reception.desk") and not elsewhere
    resendable = {n.id for n in ticket.notifications
                  if desk and f"resend:{n.id}" not in resent
                  and ticket_service.resend_refusal(ticket, n) is None}
    return render_template(
        "tickets/show.html", ticket=ticket, notes=notes, events=events,
        technicians=technicians, labels=lifecycle.STATE_LABELS, timeline=timeline(ticket),
        event_labels=EVENT_LABELS, field_labels=FIELD_LABELS,
        notification_labels=NOTIFICATION_LABELS, sms_labels=sms_labels, why_not=why_not,
        resendable=resendable,
        lines=lines,
        failed=failed,
        can_note=can(current_user, "tickets.note"), can_claim=can_claim,
        can_assign=can_assign, assign_to=assign_to, refundable=refundable, elsewhere=elsewhere,
        payment_methods=lifecycle.PAYMENT_METHODS, loaner=loaner, can_lend=can_lend,
        can_take_back=loaner_desk and loaner is not None, stocked=stocked,
        free_phones=loaner_service.free_phones(ticket.branch_id) if stocked else [],
        late=workbench_service.promised_late(ticket), blank_lines=BLANK_LINES,
        line_totals={name: sum(getattr(l, "total", 0) for l in rows)
                     for name, rows in lines.items()},
        estimate_lines=ticket.estimate_lines(), final_lines=ticket.final_lines(),
        alternatives=alternatives, alternative_blank_lines=ALTERNATIVE_BLANK_LINES,
        max_alternatives=MAX_ALTERNATIVES,
        estimate_alternatives=[  # each line with its total, as the estimate's lines
            {**a, "lines": [{**l, "total": l["qty"] * l["unit_price"]} for l in a["lines"]]}
            for a in lifecycle.estimate_alternatives(ticket)],
        chosen_alternative=lifecycle.chosen_alternative(ticket),
        can_relink=can(current_user, "tickets.relink") and not elsewhere,
        relinked=request.args.get("relinked") == "1" and can(current_user, "tickets.relink"),
        next_by=[] if events or elsewhere else next_steps(ticket)), status


@bp.get("/<int:ticket_id>")
@require("tickets.view")
def show(ticket_id: int):
    return render_ticket(ticket_id)


@bp.get("/<int:ticket_id>/signature/<any(intake, delivery):moment>")
@require("tickets.view")
def signature(ticket_id: int, moment: str):
    """The customer's signature drawn on the counter's screen (the timeline shows it)."""
    kept = ticket_service.signatures_of(ticket_service.get_ticket(ticket_id).id).get(moment)
    if kept is None:
        abort(404)
    resp = Response(kept.image, mimetype="image/png")
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/n/<number>")
@require("tickets.view")
def by_number(number: str):
    """The shelf label's QR code (links.shelf_url): the ticket of that number."""
    ticket_id = ticket_service.ticket_id_by_number(number)
    if ticket_id is None:
        return redirect(url_for(".index", q=number))
    return redirect(url_for(".show", ticket_id=ticket_id))


def event_data_from_form(form) -> dict:
    """Turn an event's form into the lifecycle's data (the same shape as the API's; numbers
    may be typed in Persian digits: the lifecycle's checks accept them). Money is typed in the
    unit the shop shows it in and becomes rials here. Blank editor rows are dropped; a
    half-filled one is kept so the lifecycle names what is missing."""
    rule = lifecycle.EVENTS.get(form.get("event", ""))
    money_fields = {name for name, kind in rule.fields.items()
                    if kind.rstrip("?") == "money"} if rule else set()
    unit = form.get("money_unit")  # the unit the form was drawn in
    data = {k: money.read(v, unit, k) if k in money_fields else v for k, v in form.items()
            if k not in ("csrf_token", "event", "version", "money_unit")
            and not k.startswith(("line_", "part_")) and not _ALTERNATIVE_FIELD.match(k)
            and v.strip() != ""}
    if "line_description" in form:
        data["lines"] = money.read_lines([{**line, "qty": line["qty"].strip() or "1"}
                                          for line in _sent_lines(form)], unit)
    if rule is not None and rule.name == "quote":  # the alternatives filled in, if any
        alternatives = _alternatives_data(form, unit)
        if alternatives:
            data["alternatives"] = alternatives
    if rule is not None and rule.name == "finish":  # the box is sent only when ticked
        data["above_estimate_ok"] = form.get("above_estimate_ok") == "1"
        if data["above_estimate_ok"] and form.get("above_estimate_channel"):
            data["above_estimate_channel"] = form.get("above_estimate_channel")
    if rule is not None and rule.name in lifecycle.LOANER_BACK_WITH:  # the box, when ticked
        data["loaner_returned"] = form.get("loaner_returned") == "1"
        data.update(loaner_back(form))
    if rule is not None and rule.name == "deliver":  # the delivery desk's checks, always
        data["differs_ok"] = form.get("differs_ok") == "1"
        data["method_needed"] = True
        if data.get("payment_method") == money.SPLIT:  # read as the desk reads it
            del data["payment_method"]
            data["payments"] = money.payment_parts(form)
    return data


def _version(form) -> int | None:
    try:
        return int(to_ascii_digits(form.get("version", "")))
    except ValueError:
        return None


@bp.post("/<int:ticket_id>/events")
@require("tickets.view")
def fire(ticket_id: int):
    event = request.form.get("event", "")
    try:
        refuse_past_dates(request.form, "promised_date", "expected_date")
        if event == "wait_parts":
            refuse_part_after_promise(request.form, ticket_service.promised_date(ticket_id))
        ticket = workbench_service.fire_event(
            ticket_id, event, current_user, event_data_from_form(request.form),
            expected_version=_version(request.form), ip=request.remote_addr)
    except DomainError as exc:
        db.session.expire_all()
        fields = exc.extra.get("fields") or {}
        # the page has no hand-back form to show them beside (the desk has): say them here
        flash(" ".join(map(str, fields.values())) if event == "deliver" and fields
              else exc.message, "danger")
        failed = {"event": event, "values": request.form.to_dict(), "errors": fields,
                  "lines": _sent_lines(request.form) if "line_description" in request.form
                  else None, "line_error": (exc.extra.get("at") or {}).get("lines"),
                  "alternatives": _sent_alternatives(request.form) if event == "quote"
                  else None,
                  "alternative_error": (exc.extra.get("at") or {}).get("alternatives")}
        return render_ticket(ticket_id, exc.status, failed)
    if event == "quote" and ticket.state == "repair":
        flash(_("Estimate sent and approved at once: it is within the amount the customer "
                "pre-approved at intake."), "success")
    else:
        flash(_("Done: %(event)s.", event=lifecycle.EVENTS[event].label), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@bp.post("/<int:ticket_id>/refund")
@require("tickets.refund")
def refund(ticket_id: int):
    """The manager gives money back after the hand-back (the ticket page's form): the amount
    typed in the shop's unit, how it was given back and why."""
    try:
        data = {"amount": money.read(request.form.get("amount", ""),
                                     request.form.get("money_unit"), "amount"),
                "payment_method": request.form.get("payment_method") or None,
                "reason": request.form.get("reason")}
        reception_service.refund(ticket_id, Actor.staff(current_user), data,
                                 expected_version=_version(request.form))
    except DomainError as exc:
        db.session.expire_all()
        return render_ticket(ticket_id, exc.status, {
            "event": "refund", "values": request.form.to_dict(),
            "errors": exc.extra.get("fields") or {"amount": exc.message}})
    flash(_("Given back: %(amount)s.", amount=format_money(data["amount"])), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@bp.post("/<int:ticket_id>/loaner")
@require("tickets.loaner")
def lend_loaner(ticket_id: int):
    """Lend the customer a loaner phone (the ticket page's form): what it is, its IMEI or
    serial, its condition."""
    try:
        loaner_service.lend(ticket_id, Actor.staff(current_user), {
            k: request.form.get(k) for k in ("loaner_id", "description", "serial",
                                             "condition")},
            expected_version=_version(request.form))
    except DomainError as exc:
        db.session.expire_all()
        return render_ticket(ticket_id, exc.status, {
            "event": "lend_loaner", "values": request.form.to_dict(),
            "errors": exc.extra.get("fields") or {"description": exc.message}})
    flash(_("Loaner phone lent. Print the receipt again: it names the loaner."), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="loaner"))


@bp.post("/<int:ticket_id>/loaner/return")
@require("tickets.loaner")
def return_loaner(ticket_id: int):
    """The customer gave the loaner phone back: how it came back (fine, or damaged and
    what is wrong) is asked."""
    try:
        loaner_service.take_back(ticket_id, Actor.staff(current_user),
                                 expected_version=_version(request.form),
                                 data={k: request.form.get(k) for k in ("condition", "note")},
                                 condition_required=True)
    except ValidationError as exc:
        db.session.expire_all()
        return render_ticket(ticket_id, exc.status, {
            "event": "return_loaner", "values": request.form.to_dict(),
            "errors": exc.extra.get("fields") or {"condition": exc.message}})
    except DomainError as exc:
        flash(exc.message, "danger")
    else:
        flash(_("Loaner phone taken back."), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="loaner"))


@bp.post("/<int:ticket_id>/link")
@require("tickets.relink")
def replace_link(ticket_id: int):
    """Replace the customer's link (the page's confirmation asked first: it breaks the printed
    QR code): the old one stops working at once; the new one texted to the customer when the
    box stays ticked. The page then offers to print the receipt again."""
    try:
        _ticket, texted = ticket_service.replace_link(
            ticket_id, Actor.staff(current_user, ip=request.remote_addr),
            text_customer=request.form.get("text_customer") == "1",
            expected_version=_version(request.form))
    except DomainError as exc:
        flash(exc.message, "danger")
        return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="customer-link"))
    flash(_("The customer's link is replaced: the old one no longer opens anything.") + " " + (
        _("The new link is texted to the customer.") if texted is not None else
        _("No SMS was sent: give the customer the new link from the receipt.")), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, relinked=1,
                            _anchor="customer-link"))


@bp.post("/<int:ticket_id>/notes")
@require("tickets.note")
def add_note(ticket_id: int):
    try:
        ticket_service.add_note(ticket_id, current_user, request.form.get("body", ""),
                                customer_visible=request.form.get("customer_visible") == "1")
    except DomainError as exc:
        flash(exc.message, "danger")
    else:
        flash(_("Note added."), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="notes"))


@bp.post("/<int:ticket_id>/sms")
@require("reception.desk")
def customer_sms(ticket_id: int):
    """The customer asked the desk for no SMS (or to have them again)."""
    ticket = ticket_service.get_ticket(ticket_id)
    texted = request.form.get("sms") == "on"
    ticket_service.set_customer_sms(ticket.customer_id, texted, by=current_user)
    flash(_("The customer gets SMS again.") if texted else
          _("No more SMS go to this customer."), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="sms"))


@bp.post("/<int:ticket_id>/customer/phone")
@require("reception.desk")
def correct_phone(ticket_id: int):
    """The customer's mobile number was written down wrong: the right one."""
    try:
        _ticket, texted_again = ticket_service.correct_phone(
            ticket_id, request.form.get("phone", ""), current_user,
            seen=request.form.get("seen"))
    except DomainError as exc:
        flash((exc.extra.get("fields") or {}).get("phone") or exc.message, "danger")
    else:
        flash(_("The mobile number is corrected; the SMS go to it.") + (" " + _(
            "The STOP came from the wrong number: the customer gets SMS again.")
            if texted_again else ""), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="sms"))


@bp.post("/<int:ticket_id>/sms/<int:notification_id>/resend")
@require("reception.desk")
def resend_sms(ticket_id: int, notification_id: int):
    """Send an SMS that did not go (or did not arrive) again."""
    try:
        ticket_service.resend_sms(ticket_id, notification_id, by=current_user)
    except DomainError as exc:
        flash(exc.message, "danger")
    else:
        flash(_("The SMS is being sent again."), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id, _anchor="sms"))


# --- intake -----------------------------------------------------------------------------------

@bp.get("/new")
@require("tickets.admit")
def new():
    """The old address of the intake form: reception's intake (the one form, with the receipt
    printed on admission) answers it now."""
    return redirect(url_for("reception.intake", **request.args))
