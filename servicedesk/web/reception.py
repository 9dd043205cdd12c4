"""Reception desk (issue 4): the kiosk, the queue, the wall display, intake, the printed slips,
the delivery desk and reception's worklist.

Thin views: parse the form, call one action of services.reception (or read what slips.py says a
slip carries), render. The queue and the display are htmx partials polled by the page.
"""
import re
import secrets

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template,
                   request, session, url_for)
from flask_babel import gettext as _
from flask_babel import refresh as refresh_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .. import audit, devices, lifecycle, pickup, reports, settings, signatures, slips, visits
from ..auth import can, require
from ..errors import Conflict, DomainError, ValidationError
from ..i18n import (current_language, localize_digits, money_input, text_direction,
                    to_ascii_digits)
from ..lifecycle import Actor
from ..models import utcnow
from ..slips import national_phone
from ..validation import MAX_ID, refuse_past_dates
from ..extensions import db
from ..services import admin as admin_service
from ..services import loaners, reception
from ..services import workbench as workbench_service
from ..services import tickets as ticket_service
from ..services.tickets import SERVICE_TYPE_LABELS
from . import htmx, money
from .reports import date_input
from .tickets import CHANNEL_LABELS, loaner_back

bp = Blueprint("reception", __name__)
bp.add_app_template_filter(slips.national_phone, "national_phone")

# Where a printed slip's "back" button leads (names only: never a URL from the query string).
BACK = {"kiosk": "reception.kiosk", "queue": "reception.queue", "desk": "reception.desk",
        "intake": "reception.intake", "delivery": "reception.delivery",
        "takings": "reception.takings"}


_hx = htmx.hx


def _actor() -> Actor:
    return Actor.staff(current_user, request.remote_addr)


def _branch():
    return reception.branch_of(current_user)


def _problem(exc: DomainError) -> str:
    """One line for the user: the bad field's problem when there is one."""
    fields = exc.extra.get("fields") or {}
    return next(iter(fields.values()), exc.message)


def _form_errors(exc: DomainError) -> dict:
    """Field errors keyed by the form's input names (``customer.phone`` -> ``customer_phone``)."""
    return {k.replace(".", "_"): v for k, v in (exc.extra.get("fields") or {}).items()}


def _version() -> int | None:
    try:
        return int(to_ascii_digits(request.form.get("version", "")))
    except ValueError:
        return None


@bp.url_value_preprocessor
def _ids_in_range(endpoint, values):
    # An id beyond the INTEGER columns names no row (and would fail in the database).
    if any(isinstance(x, int) and not 0 < x <= MAX_ID for x in (values or {}).values()):
        abort(404)


bp.after_request(htmx.login_redirect_whole_page)


# --- kiosk and queue ------------------------------------------------------------------------

@bp.route("/kiosk", methods=["GET", "POST"])
@require("visits.kiosk")
def kiosk():
    errors = {}
    if request.method == "POST":
        try:
            visit = reception.issue_number(_branch(), request.form.get("service", ""),
                                           request.form.get("phone"),
                                           language=current_language(), one_per_phone=True,
                                           home_phones_only=True)
        except DomainError as exc:
            errors = _form_errors(exc) or {"service": exc.message}
        else:
            # in the language the customer took it in, whatever the kiosk account's is
            return redirect(url_for(".slip", visit_id=visit.id, print=1, back="kiosk",
                                    lang=current_language()))
    return render_template("reception/kiosk.html", services=visits.SERVICES, errors=errors,
                           form=request.form, fresh_url=_kiosk_url()), 422 if errors else 200


def _kiosk_url() -> str:
    """The kiosk for the next customer: in the shop's language."""
    return url_for("reception.kiosk", lang=current_app.config["SERVICEDESK_LOCALE"])


def _queue_context(message=None, category="success") -> dict:
    return {"board": reception.queue_board(_branch()), "counter": session.get("counter", ""),
            "services": visits.SERVICES, "message": message, "category": category}


def _queue_reply(message=None, category="success"):
    if _hx():
        return render_template("reception/_queue_board.html",
                               **_queue_context(message, category))
    if message:
        flash(message, category)
    return redirect(url_for(".queue"))


@bp.get("/queue")
@require("visits.view")
def queue():
    return render_template("reception/queue.html", **_queue_context())


@bp.get("/queue/board")
@require("visits.view")
def queue_board():
    return render_template("reception/_queue_board.html", **_queue_context())


@bp.post("/queue/issue")
@require("visits.issue")
def issue():
    try:
        visit = reception.issue_number(_branch(), request.form.get("service", ""),
                                       request.form.get("phone"))
    except DomainError as exc:
        flash(_problem(exc), "danger")
        return redirect(url_for(".queue"))
    return redirect(url_for(".slip", visit_id=visit.id, print=1, back="queue"))


def _called_message(visit):
    return _("Number %(label)s called to counter %(counter)s.",
             label=localize_digits(visit.label), counter=localize_digits(visit.counter))


@bp.post("/queue/next")
@require("visits.call")
def call_next():
    try:
        visit = reception.call_next(_branch(), request.form.get("counter", ""), current_user,
                                    request.form.get("service") or None)
    except DomainError as exc:
        return _queue_reply(_problem(exc), "danger")
    session["counter"] = to_ascii_digits(request.form.get("counter", "")).strip()
    if visit is None:
        return _queue_reply(_("Nobody is waiting."), "info")
    return _queue_reply(_called_message(visit))


@bp.post("/queue/<int:visit_id>/call")
@require("visits.call")
def call(visit_id: int):
    counter = request.form.get("counter") or session.get("counter", "")
    try:
        visit = reception.call(visit_id, counter, current_user)
    except DomainError as exc:
        return _queue_reply(_problem(exc), "danger")
    session["counter"] = visit.counter
    return _queue_reply(_called_message(visit))


def _on_the_board(action, message, category: str = "success"):
    """Run a queue action; answer with the board and what happened, or what went wrong."""
    try:
        visit = action()
    except DomainError as exc:
        return _queue_reply(_problem(exc), "danger")
    return _queue_reply(message(visit), category)


@bp.post("/queue/<int:visit_id>/recall")
@require("visits.call")
def recall(visit_id: int):
    return _on_the_board(lambda: reception.recall(visit_id, current_user), _called_message)


@bp.post("/queue/<int:visit_id>/no-show")
@require("visits.call")
def no_show(visit_id: int):
    return _on_the_board(lambda: reception.no_show(visit_id, current_user), lambda visit: _(
        "Number %(label)s marked as not shown.", label=localize_digits(visit.label)), "warning")


@bp.post("/queue/<int:visit_id>/served")
@require("visits.call")
def served(visit_id: int):
    return _on_the_board(lambda: reception.serve(visit_id, current_user), lambda visit: _(
        "Number %(label)s served.", label=localize_digits(visit.label)))


@bp.get("/display")
@require("visits.display")
def display():
    return render_template("reception/display.html",
                           board=reception.display_board(_branch()),
                           chime=request.args.get("chime") == "1")


@bp.get("/display/board")
@require("visits.display")
def display_board():
    return render_template("reception/_display_board.html",
                           board=reception.display_board(_branch()))


# --- printed slips --------------------------------------------------------------------------

def _print_args(kind: str) -> dict:
    back = BACK.get(request.args.get("back", ""))
    back_url = url_for(back) if back else None
    if back == "reception.kiosk":  # the next customer starts in the shop's language
        back_url = _kiosk_url()
    ticket_id = (request.view_args or {}).get("ticket_id")
    if back_url is None and ticket_id is not None:
        back_url = url_for("tickets.show", ticket_id=ticket_id)  # opened from the ticket
    sheets = kind in slips.SHEET_SLIPS  # the queue slip and the label: thermal only
    paper = slips.paper(request.args.get("paper"), sheets)
    return {"paper": paper, "sheet": slips.is_sheet(paper),
            "papers": {p: slips.paper_label(p) for p in slips.papers(sheets)},
            "copies": slips.copies(paper) if kind in ("receipt", "delivery_receipt") else ("",),
            "autoprint": request.args.get("print") == "1",
            "back_url": back_url,
            "back_name": request.args.get("back") if back else None}


VISIT_STATUS_LABELS = {"waiting": _l("waiting"), "called": _l("called"),
                       "served": _l("served"), "no_show": _l("not shown")}


def _printed(kind: str, obj, template: str, **context):
    """A printed slip, recorded in the audit log (who printed which slip of what, when: a
    receipt printed twice is a second claim ticket for the same device)."""
    args = _print_args(kind)
    page = render_template(template, **context, **args)  # before the commit expires the rows
    audit.log("slip.print", obj=obj, after={"slip": kind, "paper": args["paper"]}, commit=True)
    return page


@bp.get("/visits/<int:visit_id>/slip")
@require("visits.slip")
def slip(visit_id: int):
    visit = visits.get(visit_id)
    if not can(current_user, "visits.view") and visit.branch_id != _branch().id:
        # the kiosk, which sees no queue: its own branch's numbers, as on its wall display
        abort(404)
    return _printed("queue_slip", visit, "print/queue_slip.html", slip=slips.queue_slip(visit))


def _in_the_customers_language(ticket, relative_takes_it: bool = False) -> None:
    """A slip the customer takes home speaks their language, as their SMS do (an English
    speaker's receipt at a Persian desk is in English, Gregorian dates), unless the page was
    asked for in one (``?lang``). The shelf label stays in the staff's. A slip the relative
    who brought the device in takes (its receipt; the delivery receipt when they collect it
    too) is read by them, not by the owner, whose language the desk knows and theirs not: it
    stays in the desk's language, the one the desk spoke with them in (``?lang`` asks for
    another). "Collected by" alone says nothing of a language ("owner", "himself")."""
    if relative_takes_it:
        return
    language = ticket.customer.language
    if language in current_app.config["LANGUAGES"] and request.args.get("lang") is None:
        if language != current_language():  # the tools above the slip stay the staff's
            g.slip_tools = {"lang": current_language(), "dir": text_direction(),
                            "print": _("Print"), "done": _("Done"), "label": _("Label"),
                            "papers": {p: slips.paper_label(p) for p in slips.papers()}}
        g.page_language = language
        refresh_locale()


@bp.get("/tickets/<int:ticket_id>/receipt")
@require("tickets.print")
def receipt(ticket_id: int):
    ticket = slips.ticket_for_print(ticket_id)
    _in_the_customers_language(ticket, relative_takes_it=bool(ticket.brought_by))
    return _printed("receipt", ticket, "print/receipt.html", r=slips.receipt(ticket),
                    service_types=SERVICE_TYPE_LABELS)


@bp.get("/tickets/<int:ticket_id>/label")
@require("tickets.print")
def label(ticket_id: int):
    ticket = slips.ticket_for_print(ticket_id)
    return _printed("label", ticket, "print/label.html", l=slips.label(ticket))


@bp.get("/tickets/<int:ticket_id>/delivery-receipt")
@require("tickets.print")
def delivery_receipt(ticket_id: int):
    ticket = slips.ticket_for_print(ticket_id, lines=True)
    if ticket.state not in ("delivered", "closed"):
        raise Conflict(_("This device has not been handed back yet."))
    _in_the_customers_language(ticket, relative_takes_it=bool(ticket.brought_by) and (
        ticket_service.same_name(slips.collected_by(ticket), ticket.brought_by)))
    return _printed("delivery_receipt", ticket, "print/delivery_receipt.html",
                    d=slips.delivery_receipt(ticket))


# --- intake ---------------------------------------------------------------------------------

def intake_payload(form) -> dict:
    """The intake form as services.tickets.admit takes it (the API's shape); the desk's own
    checks first (a date already passed, a toman amount written wrong), each named together
    with whatever else the intake refuses, so the form is mended in one go."""
    desk_errors = {}
    try:
        refuse_past_dates(form, "promised_date")
    except ValidationError as exc:
        desk_errors.update(exc.fields)
    try:
        pre_approved = money.read(form.get("pre_approved_amount") or None, form.get("money_unit"),
                                  "pre_approved_amount")
    except ValidationError as exc:
        desk_errors.update(exc.fields)
        pre_approved = None
    payload = _intake_fields(form, pre_approved)
    if desk_errors:
        try:
            ticket_service.clean_intake(payload)
        except ValidationError as exc:
            desk_errors = {**exc.fields, **desk_errors}
        raise ValidationError(_("Some fields are not valid."), fields=desk_errors)
    return payload


def _intake_fields(form, pre_approved) -> dict:
    ticked = [a for a in form.getlist("accessory") if a.strip()]
    typed = re.split(r"[،,]", form.get("accessories_other") or "")  # "case, stylus": two
    accessories = devices.join_items(devices.distinct_items(ticked + typed))
    return {
        "customer": {"name": form.get("customer_name"), "phone": form.get("customer_phone"),
                     "language": form.get("customer_language") or None},
        "device": {"kind": form.get("device_kind"), "brand": form.get("device_brand"),
                   "model": form.get("device_model"), "serial": form.get("device_serial"),
                   "colour": form.get("device_colour")},
        "problem": form.get("problem"),
        "accessories": accessories or None,
        "condition": form.get("condition") or None,
        "service_type": form.get("service_type") or None,
        "promised_date": form.get("promised_date") or None,
        "pre_approved_amount": pre_approved,
        "visit_id": form.get("visit_id") or None,
        "signature": form.get("signature") or None,  # drawn on the counter's screen
        signatures.PAPER_FIELD: signed_on_paper(form),
    }


def signed_on_paper(form) -> str | None:
    """Why the customer signed the paper slip instead of the screen, as the desk's form says it:
    the box ticked gives the reason typed, blank too (the service asks for one); unticked,
    None (a reason left typed beside a drawing made after is not a second signature)."""
    if form.get("signed_on_paper") == "1":
        return form.get(signatures.PAPER_FIELD) or ""
    return None


def _known_name_choice(form) -> str:
    """The desk's answer about a number on file under another name ("keep", "brought" or
    "rename"), if it was asked about the number in the form now: a number corrected since is
    asked about anew (the answer was about another customer)."""
    choice = form.get("known_name")
    if choice not in ("keep", "brought", "rename"):
        return "ask"
    try:
        phone = reception.clean_phone(form.get("customer_phone"), "customer_phone")
    except DomainError:
        return "ask"
    return choice if phone and phone == form.get("known_phone") else "ask"


def _visit_from(raw):
    try:
        visit_id = int(to_ascii_digits(raw))
    except (TypeError, ValueError):
        return None
    return visits.get(visit_id) if 0 < visit_id <= MAX_ID else None


def _intake_key(form) -> str | None:
    """The form's own key (drawn with the form, kept when it comes back with errors): the
    same intake sent twice admits the device once."""
    key = (form.get("intake_key") or "").strip()
    return f"desk:{key}"[:64] if key else None


@bp.route("/desk/intake", methods=["GET", "POST"])
@require("tickets.admit")
def intake():
    visit = _visit_from(request.values.get("visit_id"))
    errors, status, asked = {}, 200, None
    twin = None
    if request.method == "POST":
        try:
            ticket = reception.admit(intake_payload(request.form), _actor(),
                                     branch=current_user.branch,
                                     known_name=_known_name_choice(request.form),
                                     intake_key=_intake_key(request.form),
                                     ask_if_in_shop=request.form.get("twin_ok") != "1",
                                     loaner_id=request.form.get("loaner_id") or None)
        except DomainError as exc:
            flash(exc.message, "danger")
            errors, status = _form_errors(exc), exc.status
            if exc.extra.get("twin_id"):  # the device still in the shop, shown with the form
                twin = ticket_service.get_ticket(exc.extra["twin_id"])
            if exc.extra.get("name_on_file"):
                asked = {"name": exc.extra["name_on_file"],
                         "phone": exc.extra["phone_asked_about"]}
        else:
            if ticket.replayed:  # the same form sent twice: one ticket, said so
                flash(_("Ticket %(number)s was admitted already: the form was sent twice.",
                        number=localize_digits(ticket.number)), "info")
            else:
                flash(_("Ticket %(number)s admitted.", number=localize_digits(ticket.number)),
                      "success")
            return redirect(url_for(".receipt", ticket_id=ticket.id, print=1, back="intake"))
    return render_template("reception/intake.html", form=request.form, errors=errors,
                           asked=asked, twin=twin, state_labels=lifecycle.STATE_LABELS,
                           intake_key=request.form.get("intake_key")
                           or secrets.token_urlsafe(24),
                           visit=visit, kinds=devices.choices(),
                           accessories=devices.accessory_choices(), brands=list(devices.BRANDS),
                           service_types=settings.service_type_codes(),
                           free_phones=loaners.free_phones(
                               current_user.branch_id or ticket_service.default_branch().id)
                           if can(current_user, "tickets.loaner") else []), status


@bp.get("/desk/customer")
@require("tickets.admit")
def customer_lookup():
    """htmx: whose phone number this is (their name and language fill the empty fields), or
    what is wrong with the number typed."""
    try:
        phone, customer, count = reception.find_customer(request.args.get("customer_phone"))
    except ValidationError as exc:
        return render_template("reception/_customer.html",
                               problem=exc.fields.get("customer_phone", exc.message))
    return render_template("reception/_customer.html", customer=customer, count=count,
                           phone=phone)


# --- scanning, delivery desk, worklist ------------------------------------------------------

@bp.get("/desk/visits/<int:visit_id>")
@require("visits.call")
def scanned_visit(visit_id: int):
    """The queue slip's QR code, scanned at the desk: a repair number still in the queue opens
    its intake (which serves it); any other number, the queue with word of where it stands."""
    visit = visits.get(visit_id)
    if visit.service == "repair" and visit.status in ("waiting", "called") \
            and can(current_user, "tickets.admit"):
        return redirect(url_for(".intake", visit_id=visit.id))
    flash(_("Number %(label)s: %(status)s.", label=localize_digits(visit.label),
            status=VISIT_STATUS_LABELS.get(visit.status, visit.status)), "info")
    return redirect(url_for(".queue"))


@bp.get("/desk/find")
@require("tickets.view")
def find():
    q = request.args.get("q", "")
    found = reception.find_tickets(q)
    if len(found) == 1:
        return redirect(url_for("tickets.show", ticket_id=found[0].id))
    return render_template("reception/find.html", q=q, found=found,
                           labels=lifecycle.STATE_LABELS,
                           replaced_link=not found and reception.searched_replaced_link(q))


def _delivery_page(q: str, ticket=None, errors=None, status=200):
    found = [ticket] if ticket is not None else (reception.find_tickets(q) if q.strip() else [])
    # what is still in the shop is what the desk hands back: the past (delivered, closed,
    # cancelled) apart, behind a link (``?all=1``), unless it is all the search found
    past = [t for t in found if t.state in reception.PAST_STATES]
    if len(past) < len(found):
        found = [t for t in found if t.state not in reception.PAST_STATES]
    else:
        past = []
    one = found[0] if len(found) == 1 else None
    can_deliver = one is not None and "deliver" in lifecycle.allowed_events(
        one.state, current_user.role)
    ready = reception.ready_to_collect(_branch()) if not q.strip() and ticket is None else []
    return render_template("reception/delivery.html", q=q, found=found, ticket=one,
                           can_deliver=can_deliver, errors=errors or {}, form=request.form,
                           labels=lifecycle.STATE_LABELS, ready=ready,
                           past=past, show_past=request.args.get("all") == "1",
                           payment_methods=lifecycle.PAYMENT_METHODS, split=money.SPLIT,
                           loaner=loaners.out(one.id) if can_deliver else None,
                           channel_labels=CHANNEL_LABELS,
                           collector=_collector(one) if one is not None else None,
                           replaced_link=not found and not past
                           and reception.searched_replaced_link(q)), status


def _collector(ticket) -> dict | None:
    """What the desk shows of who may collect a ready device (servicedesk.pickup): whether
    the shop asks, a manager's confirmation, the codes locked, a texted code still live."""
    if ticket.state != "ready":
        return None
    override = pickup.override_of(ticket)
    live = ticket.pickup_otp_expires_at is not None \
        and ticket.pickup_otp_expires_at > utcnow()
    return {"required": pickup.required(), "override": override,
            "locked": pickup.locked(ticket) and override is None,
            "tries_left": pickup.tries_left(ticket), "has_code": bool(ticket.pickup_code),
            "texted": live, "minutes": pickup.OTP_MINUTES,
            "may_text": can(current_user, "tickets.collector_code"),
            "may_override": can(current_user, "tickets.collector_override")}


@bp.get("/desk/delivery")
@require("tickets.deliver_desk")
def delivery():
    return _delivery_page(request.args.get("q", ""))


@bp.post("/desk/delivery/<int:ticket_id>")
@require("tickets.deliver")
def deliver(ticket_id: int):
    typed = request.form.get("amount_paid")
    if reception.scanned_query(typed):  # the next receipt, scanned into the amount field
        offered = money_input(ticket_service.get_ticket(ticket_id).amount_due or 0,
                              unit=request.form.get("money_unit"))  # what the field held
        return redirect(url_for(".delivery", q=reception.scanned_query(typed, offered)))
    split = request.form.get("payment_method") == money.SPLIT
    try:
        reception.deliver(ticket_id, _actor(),
                          money.read(request.form.get("amount_paid", ""),
                                     request.form.get("money_unit"), "amount_paid"),
                          request.form.get("collected_by"), expected_version=_version(),
                          differs_ok=request.form.get("differs_ok") == "1",
                          payment_method=None if split else request.form.get("payment_method"),
                          method_needed=True,
                          loaner_returned=request.form.get("loaner_returned") == "1",
                          loaner_back=loaner_back(request.form),
                          payments=money.payment_parts(request.form) if split else None,
                          pickup_code=request.form.get("pickup_code"),
                          sms_code=request.form.get("sms_code"),
                          signature=request.form.get("signature"),
                          signed_on_paper_reason=signed_on_paper(request.form))
    except DomainError as exc:
        flash(exc.message, "danger")
        ticket = ticket_service.get_ticket(ticket_id)
        return _delivery_page(ticket.number, ticket, _form_errors(exc), exc.status)
    flash(_("Handed back."), "success")
    return redirect(url_for(".delivery_receipt", ticket_id=ticket_id, print=1,
                            back="delivery"))


@bp.post("/desk/delivery/<int:ticket_id>/text-code")
@require("tickets.collector_code")
def text_pickup_code(ticket_id: int):
    """Text a one-time code to the owner's mobile, for the collector to give at the desk."""
    try:
        ticket = reception.text_pickup_code(ticket_id, _actor())
    except DomainError as exc:
        flash(exc.message, "danger")
        ticket = ticket_service.get_ticket(ticket_id)
        return _delivery_page(ticket.number, ticket, _form_errors(exc), exc.status)
    flash(_("A code was texted to the owner's mobile, %(phone)s: ask the collector for it. It "
            "holds for %(minutes)s minutes.",
            phone=localize_digits(national_phone(ticket.customer.phone)),
            minutes=localize_digits(pickup.OTP_MINUTES)), "success")
    return redirect(url_for(".delivery", q=ticket.number))


@bp.post("/desk/delivery/<int:ticket_id>/override")
@require("tickets.collector_override")
def override_collector(ticket_id: int):
    """A manager confirms who collects the device, with the reason (an ID card seen)."""
    try:
        ticket = reception.override_collector(ticket_id, _actor(),
                                              request.form.get("override_reason"))
    except DomainError as exc:
        flash(exc.message, "danger")
        ticket = ticket_service.get_ticket(ticket_id)
        return _delivery_page(ticket.number, ticket, _form_errors(exc), exc.status)
    flash(_("You confirmed who collects it: reception can hand it back."), "success")
    return redirect(url_for(".delivery", q=ticket.number))


# --- the till: what the desk took on a day ----------------------------------------------------

def _till() -> tuple[reports.Filters, bool, dict]:
    """The day the till page counts (``?day``, Jalali or Gregorian in any digits; today by
    default) at the user's branch, whether only the user's own hand-backs (``?mine=1``),
    and the errors (a bad day counts today, and says so)."""
    raw = (request.args.get("day") or "").strip() or reports.shop_today().isoformat()
    branch = str(_branch().id)
    try:
        f = reports.parse_filters({"from": raw, "to": raw, "branch": branch})
        errors = {}
    except ValidationError as exc:
        f = reports.parse_filters({"branch": branch}, default_days=1)
        errors = {"day": next(iter(exc.fields.values()))}
    return f, request.args.get("mine") == "1", errors


def _till_figures(f, mine: bool) -> tuple[dict, list, dict]:
    staff = current_user.username if mine else None
    return (reports.takings_summary(reports.takings(f, staff)),
            reports.handbacks(f, staff), reports.handback_totals(f, staff))


def _takings_page(f, mine: bool, errors: dict, count_form=None, count_errors=None,
                  status: int = 200):
    summary, handbacks, totals = _till_figures(f, mine)
    return render_template("reception/takings.html", f=f, mine=mine, errors=errors,
                           date_input=date_input, totals=totals,
                           summary=summary, handbacks=handbacks,
                           counts=reception.till_counts(_branch(), f.start),
                           count_form=count_form or {}, count_errors=count_errors or {},
                           today=f.start == reports.shop_today()), status


@bp.get("/desk/takings")
@require("tickets.deliver_desk")
def takings():
    f, mine, errors = _till()
    return _takings_page(f, mine, errors, status=422 if errors else 200)


@bp.post("/desk/takings/count")
@require("tickets.deliver_desk")
def count_till():
    """The cash in the drawer counted (the page's day, the user's branch): kept beside what
    the day's cash hand-backs and refunds say it should hold."""
    f, mine, errors = _till()
    if errors:
        return _takings_page(f, mine, errors, status=422)
    unit = request.form.get("money_unit")
    try:
        reception.count_till(
            _branch(), f.start, current_user,
            money.read(request.form.get("counted", ""), unit, "counted"),
            money.read(request.form.get("float_amount") or "0", unit, "float_amount"),
            request.form.get("note"))
    except DomainError as exc:
        return _takings_page(f, mine, {}, request.form, _form_errors(exc), exc.status)
    flash(_("The count is recorded."), "success")
    return redirect(url_for(".takings", day=date_input(f.start) if f.start !=
                            reports.shop_today() else None, _anchor="till-count"))


@bp.get("/desk/takings/slip")
@require("tickets.deliver_desk")
def takings_slip():
    f, mine, errors = _till()
    if errors:
        raise ValidationError(_("Some fields are not valid."), fields=errors)
    summary, handbacks, totals = _till_figures(f, mine)
    slip = slips.till_slip(_branch(), f.start, current_user if mine else None, summary,
                           handbacks, totals, current_user,
                           [] if mine else reception.till_counts(_branch(), f.start))
    return _printed("till", ("takings", f.start.isoformat()), "print/till_slip.html",
                    slip=slip)


@bp.get("/desk")
@require("reception.desk")
def desk():
    # a manager at the desk may not send a device to repair (the lifecycle's roles): no button
    # that opens a ticket page without the form
    return render_template("reception/desk.html", work=reception.worklist(_branch()),
                           labels=lifecycle.STATE_LABELS,
                           alternatives_of=lifecycle.estimate_alternatives,
                           may_send="send_to_repair" in lifecycle.allowed_events(
                               "intake", current_user.role))


def _flash_worklist_problem(ticket_id: int, problem: str) -> None:
    """What went wrong with one of the worklist's many tickets, saying which one."""
    try:
        number = localize_digits(ticket_service.get_ticket(ticket_id).number)
    except DomainError:
        number = None
    flash(_("Ticket %(number)s: %(problem)s", number=number, problem=problem)
          if number else problem, "danger")


@bp.post("/desk/tickets/<int:ticket_id>/answer")
@require("tickets.answer")
def answer(ticket_id: int):
    # "approve:2": approved with the estimate's alternative 2 (a button for each)
    decision, _sep, alternative = request.form.get("decision", "").partition(":")
    try:
        ticket = reception.record_answer(ticket_id, _actor(), decision,
                                         request.form.get("channel", "phone"),
                                         request.form.get("reason"),
                                         expected_version=_version(),
                                         alternative=alternative or None)
    except DomainError as exc:
        # the desk lists many tickets: say which one, and which field
        labels = {"reason": _("Reason"), "channel": _("How the customer answered"),
                  "decision": _("Answer"), "alternative": _("Alternative chosen")}
        fields = exc.extra.get("fields") or {}
        problem = "; ".join(f"{labels.get(k, k)}: {v}" for k, v in fields.items()) \
            or exc.message
        _flash_worklist_problem(ticket_id, problem)
        # back to that ticket's answer, open, to complete it (not the search box)
        return redirect(url_for(".desk", answer=ticket_id, _anchor=f"estimate-{ticket_id}"))
    else:
        flash(_("Ticket %(number)s: %(event)s.", number=localize_digits(ticket.number),
                event=lifecycle.EVENTS[decision].label), "success")
    return redirect(url_for(".desk"))


@bp.post("/desk/tickets/<int:ticket_id>/send")
@require("reception.desk")
def send_to_repair(ticket_id: int):
    """The worklist's "Send to repair", in one click: to the repair queue, nobody assigned.
    The browser asked first (``confirmed``): the step cannot be taken back (no event leads
    back to intake, cancelling is only from intake, the customer gets its SMS). Not asked
    (no JavaScript): the ticket page's form, where a technician can be chosen, as before."""
    if request.form.get("confirmed") != "1":
        return redirect(url_for("tickets.show", ticket_id=ticket_id,
                                _anchor="event-send_to_repair"))
    try:
        ticket = workbench_service.fire_event(ticket_id, "send_to_repair", current_user, {},
                                              expected_version=_version(),
                                              ip=request.remote_addr)
    except DomainError as exc:
        _flash_worklist_problem(ticket_id, _problem(exc))
    else:
        flash(_("Ticket %(number)s: %(event)s.", number=localize_digits(ticket.number),
                event=lifecycle.EVENTS["send_to_repair"].label), "success")
    return redirect(url_for(".desk"))


@bp.get("/desk/loaners")
@require("loaners.view")
def loaners_out():
    """The loaner phones: those out (which ticket, which customer, since when, who lent it)
    and the branch's own (its stock list: free, out, damaged, retired; overdue marked), with
    the manager's and the administrator's forms to add, edit, retire and mark fine (a
    receptionist's branch's; a manager's and an administrator's, every branch's)."""
    return render_loaners()


def render_loaners(status: int = 200, failed: dict | None = None):
    """The loaner phones' page; ``failed`` = {"form", "values", "errors"}: a stock form sent
    and refused, shown again as it was (``form``: "add" or the phone's id)."""
    branch_id = current_user.branch_id if current_user.role in ticket_service.BRANCH_ROLES \
        else None
    keeps = can(current_user, "loaners.stock")
    branches = admin_service.list_branches() if keeps else []
    return render_template(
        "reception/loaners.html", loans=loaners.loaners_out(branch_id),
        labels=lifecycle.STATE_LABELS, stock=loaners.stock(branch_id), keeps=keeps,
        branches=[b for b in branches if b.active], many_branches=len(branches) > 1,
        default_branch=current_user.branch_id or ticket_service.default_branch().id,
        failed=failed or {}), status


def _phone_form() -> dict:
    return {k: request.form.get(k, "") for k in ("branch_id", "label", "model", "serial",
                                                 "notes")}


def _stock_action(form, action, done):
    """Run a stock action; a refused one comes back on the page (422/409) with its form."""
    try:
        phone = action()
    except DomainError as exc:
        db.session.expire_all()
        return render_loaners(exc.status, {
            "form": form, "values": request.form.to_dict(),
            "errors": exc.extra.get("fields") or {"_": exc.message}})
    flash(done(phone), "success")
    return redirect(url_for(".loaners_out", _anchor=f"loaner-{phone.id}"))


@bp.post("/desk/loaners/stock")
@require("loaners.stock")
def add_loaner():
    """Add a phone to a branch's stock list."""
    data = _phone_form()
    return _stock_action("add", lambda: loaners.save_phone(current_user, None, data),
                         lambda p: _("Loaner phone %(label)s added.", label=p.label))


@bp.post("/desk/loaners/stock/<int:loaner_id>")
@require("loaners.stock")
def edit_loaner(loaner_id: int):
    data = _phone_form()
    return _stock_action(loaner_id, lambda: loaners.save_phone(current_user, loaner_id, data),
                         lambda p: _("Loaner phone %(label)s saved.", label=p.label))


@bp.post("/desk/loaners/stock/<int:loaner_id>/retire")
@require("loaners.stock")
def retire_loaner(loaner_id: int):
    return _stock_action(loaner_id, lambda: loaners.retire(current_user, loaner_id),
                         lambda p: _("Loaner phone %(label)s retired.", label=p.label))


@bp.post("/desk/loaners/stock/<int:loaner_id>/fine")
@require("loaners.stock")
def loaner_fine(loaner_id: int):
    return _stock_action(loaner_id, lambda: loaners.mark_fine(current_user, loaner_id),
                         lambda p: _("Loaner phone %(label)s is fine: it is lent again.",
                                     label=p.label))
