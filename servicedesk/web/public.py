"""The customer's pages: no login, reached by the opaque token in the SMS and the receipt QR.

``/t/TOKEN`` tracks the repair (state in plain words, place in the repair queue, promised date,
notes meant for the customer, the estimate with Approve and Decline, what to bring at pickup,
the timeline); ``/s/TOKEN`` is the survey after hand-back, answered once. Both speak the
customer's language, are rate-limited, answer a plain 404 for an unknown or expired token and
never show the customer's phone number, the technicians' names or an internal note.
"""
from datetime import date, timedelta

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.orm import joinedload, lazyload

from .. import lifecycle, settings
from ..errors import Conflict, DomainError, NotFound, TransitionNotAllowed, ValidationError
from ..extensions import db, limiter
from ..lifecycle import Actor
from ..models import Customer, Ticket, TicketNote, utcnow
from ..notifications import templates as sms_templates
from ..services import reception, surveys
from ..services import tickets as ticket_service
from ..services import workbench

bp = Blueprint("public", __name__)

TOKEN_MAX = 40
# The timeline in the customer's words (the staff labels are orders: "Send estimate").
CUSTOMER_EVENTS = {
    "admit": _l("Device received"), "send_to_repair": _l("Sent to the repair unit"),
    "quote": _l("Estimate sent to you"), "requote": _l("A new estimate sent to you"),
    "requote_choices": _l("A new estimate sent to you"),  # revised, with alternatives
    "approve": _l("Estimate approved"),
    "approve_within": _l("Estimate approved: within the amount you approved at intake"),
    "approve_within_revised": _l("The new estimate approved: within the amount you approved "
                                 "at intake"),
    "wait_parts_promise": _l("Waiting for a part: a new date promised"),
    "decline": _l("Estimate declined"), "return_unrepaired": _l("Cannot be repaired"),
    "wait_parts": _l("Waiting for a part"), "resume": _l("Repair resumed"),
    "finish": _l("Repair finished"), "deliver": _l("Collected"), "close": _l("Closed"),
    "cancel": _l("Cancelled"), "refund": _l("Money given back"),
}
# The states' names as the customer reads them: the staff's, but addressed to the customer
# ("waiting for your approval", not "the customer's").
CUSTOMER_LABELS = {**lifecycle.STATE_LABELS, "estimate": _l("Waiting for your approval"),
                   "delivered": _l("Collected")}
# What each state means for the customer, in a sentence.
STATE_TEXT = {
    "intake": _l("We have received your device; it goes to the repair unit shortly."),
    "diagnosis": _l("A technician is examining your device to find the fault."),
    "estimate": _l("The estimate is ready: approve it below so we can start, or decline it."),
    "repair": _l("Your device is being repaired."),
    "waiting_parts": _l("The repair is waiting for a part."),
    "ready": _l("Your device is ready to collect."),
    "delivered": _l("You have collected your device. Thank you!"),
    "closed": _l("This repair is complete. Thank you for choosing us."),
    "cancelled": _l("This ticket was cancelled."),
}
# While the device waits its turn (no technician has it yet): it is not being examined or
# repaired yet, whatever the state's name says.
QUEUED_TEXT = {
    "diagnosis": _l("Your device is in the repair unit's queue, waiting for a technician to "
                    "examine it."),
    "repair": _l("The estimate is approved: your device is in the queue for a technician to "
                 "repair it."),
}
# The progress bar: the customer's steps, and the step each state stands at.
STEPS = (("intake", _l("Received")), ("diagnosis", _l("Diagnosis")), ("estimate", _l("Estimate")),
         ("repair", _l("Repair")), ("ready", _l("Ready")), ("delivered", _l("Collected")))
STEP_OF = {"intake": 0, "diagnosis": 1, "estimate": 2, "repair": 3, "waiting_parts": 3,
           "ready": 4, "delivered": 5, "closed": 5}
# A device handed back unrepaired (the estimate declined, or nothing to be done) also stands at
# "ready": its page must not show a repair that never happened.
UNREPAIRED_TEXT = {
    "ready": _l("Your device was not repaired. It is ready to collect."),
    "delivered": _l("You have collected your device, not repaired."),
    "closed": _l("You have collected your device, not repaired."),
}
# claims and assignments stay inside the shop; a refund is the customer's business
RECORDS = frozenset(lifecycle.RECORDS) - lifecycle.CUSTOMER_RECORDS
PICKED_KEPT = 5  # language choices kept in the session cookie: the latest tickets'


@bp.before_request
def load_ticket():
    """Find the token's ticket once (the device joined; its SMS not loaded: never shown here)
    and speak its customer's language, unless this browser picked one with the switcher: the
    ?lang= of this page, or one the customer picked on an earlier link (the survey link after
    the tracking link)."""
    token = (request.view_args or {}).get("token")
    g.public_ticket = None
    if token and len(token) <= TOKEN_MAX:
        row = db.session.execute(
            select(Ticket, Customer.language).join(Customer, Ticket.customer_id == Customer.id)
            .where(Ticket.public_token == token.upper())
            .options(joinedload(Ticket.device), lazyload(Ticket.notifications))).first()
        if row is not None:
            g.public_ticket, language = row
            # Kept per ticket (the tracking and survey links share its token), apart from the
            # staff's switcher: a desk that opened one customer's page in English opens the
            # next customer's in theirs.
            languages = current_app.config["LANGUAGES"]
            token = g.public_ticket.public_token
            kept = session.get("public_lang")
            picked = dict(kept) if isinstance(kept, dict) else {}  # another shape: start anew
            if request.args.get("lang") in languages:
                picked.pop(token, None)
                picked[token] = request.args["lang"]
                session["public_lang"] = dict(list(picked.items())[-PICKED_KEPT:])
            chosen = picked.get(token)
            g.page_language = chosen if chosen in languages else language
            ended = link_ended(g.public_ticket)
            if ended is not None and not _staff_view():
                g.public_ticket, g.public_link_ended = None, ended
        else:
            # a link the shop replaced (forwarded, on a lost phone): it says so, and nothing
            # else, not even whose it was
            g.public_link_replaced = ticket_service.link_replaced(token)


def link_ended(ticket: Ticket):
    """When the customer's pages of ``ticket`` closed (its last event's time, a replaced link
    aside): a repair that ended more than ``PUBLIC_LINK_DAYS`` ago; None while they are
    open."""
    days = current_app.config.get("PUBLIC_LINK_DAYS") or 0
    if days <= 0 or ticket.state not in reception.PAST_STATES or not ticket.events:
        return None
    # (a link replaced since does not open the pages again: it is the same repair's)
    last = max((e.at for e in ticket.events if e.event != "replace_link"), default=None)
    if last is None:
        return None
    return last if last < utcnow() - timedelta(days=int(days)) else None


@bp.errorhandler(404)
def not_found(exc):
    return render_template("public/not_found.html"), 404


@bp.errorhandler(410)
def link_closed(exc):
    """The page of a repair that ended long ago: when, and the shop's contact (the layout's
    footer); nothing of the device, the customer or the bill. The same for a link the shop
    replaced: that it was, where the new one is (the newest SMS, the shop)."""
    if g.get("public_link_replaced"):
        return render_template("public/link_replaced.html", **_page_context()), 410
    return render_template("public/link_ended.html", ended=g.get("public_link_ended"),
                           **_page_context()), 410


@bp.errorhandler(CSRFError)
def form_expired(exc):
    """A phone that restored an old tab, or lost its cookie, sends the form with a token that
    no longer matches. The link's own token is the customer's proof, so nothing is lost by
    asking again: the page comes back fresh (the survey with what was filled in) and says
    why. Nothing was recorded."""
    if "public_ticket" not in g:  # the check runs before this blueprint's own loading
        load_ticket()
    ticket = g.public_ticket
    if ticket is None:
        return link_closed(exc) if g.get("public_link_ended") or g.get(
            "public_link_replaced") else not_found(exc)
    message = _("This page had been open for a long time, so your answer was not sent. "
                "Here it is again: please send it once more.")
    if request.endpoint == "public.survey" and surveys.survey_status(ticket) == surveys.OPEN:
        return render_template("public/survey.html", status=surveys.OPEN, form=request.form,
                               errors={}, problem=message, ticket=ticket,
                               **_page_context()), 400
    flash(message, "warning")
    return redirect(url_for("public.track", token=ticket.public_token, **_lang_args()))


def _ticket_for(token: str) -> Ticket:
    ticket = g.get("public_ticket")
    if ticket is None:
        abort(410 if g.get("public_link_ended") or g.get("public_link_replaced") else 404)
    return ticket


def _lang_args() -> dict:
    """Keep the language the customer switched to across the page's own links and forms."""
    lang = request.args.get("lang")
    return {"lang": lang} if lang in ("fa", "en") else {}


def _last(ticket: Ticket, *names: str):
    for e in reversed(ticket.events):
        if e.event in names:
            return e
    return None


def _iso(value):
    try:
        return date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return None


def _page_context() -> dict:
    return {"shop_name": settings.shop_name(), "lang_args": _lang_args()}


@bp.get("/t/<token>")
@limiter.limit("30 per minute")
def track(token: str):
    ticket = _ticket_for(token)
    notes = db.session.scalars(select(TicketNote).where(
        TicketNote.ticket_id == ticket.id, TicketNote.customer_visible.is_(True))
        .order_by(TicketNote.id)).all()
    waiting = _last(ticket, "wait_parts") if ticket.state == "waiting_parts" else None
    history = [e for e in ticket.events if e.event not in RECORDS]
    unrepaired = ticket.unrepaired
    # waiting its turn while no technician has it: then its place in the queue (once one has
    # it, it is being examined or repaired, whatever else waits)
    position = workbench.queue_position(ticket) if ticket.technician_id is None else None
    queued = position is not None
    # steps passed without being done: the repair, and the estimate when none was given
    skipped = set() if unrepaired is None else (
        {"repair"} if unrepaired.event == "decline" else {"estimate", "repair"})
    return render_template(
        "public/track.html", ticket=ticket, notes=notes, labels=CUSTOMER_LABELS,
        state_text={**STATE_TEXT, **(UNREPAIRED_TEXT if unrepaired else {}),
                    **(QUEUED_TEXT if queued else {})},
        unrepaired=unrepaired, skipped=skipped,
        customer_events=CUSTOMER_EVENTS, history=history, event_kind=sms_templates.kind_of,
        steps=STEPS, step=STEP_OF.get(ticket.state), position=position,
        decision=_last(ticket, "approve", "decline"), waiting=waiting,
        alternatives=lifecycle.estimate_alternatives(ticket) if ticket.state == "estimate"
        else [],
        expected_date=_iso((waiting.data or {}).get("expected_date")) if waiting else None,
        survey_open=(ticket.state == "delivered" and surveys.response_of(ticket) is None),
        hours=settings.branch_hours(ticket.branch_id), finish=_last(ticket, "finish"),
        staff_view=_staff_view(), **_page_context())


def _staff_view() -> bool:
    """A member of staff opened the customer's page (the shelf label's QR code opens it):
    they see it, but may not answer for the customer here (their answer would be recorded as
    the customer's own, by the link)."""
    return bool(getattr(current_user, "is_authenticated", False))


@bp.post("/t/<token>/<decision>")
@limiter.limit("10 per minute")
def decide(token: str, decision: str):
    if decision not in ("approve", "decline"):
        abort(404)
    ticket = _ticket_for(token)
    if _staff_view():
        flash(_("You are logged in as staff: record the customer's answer on the ticket page "
                "(by phone or in person), not on the customer's own page."), "warning")
        return redirect(url_for("tickets.show", ticket_id=ticket.id))
    # The version of the estimate the customer saw: a revised estimate needs its own answer,
    # and an answer that does not say which one it is for (a page from before, a form posted
    # by hand) answers none.
    seen = request.form.get("estimate_version", "").strip()
    if not seen:
        flash(_("Your answer did not say which estimate it was for: look at the estimate below "
                "and answer it again."), "warning")
        return redirect(url_for("public.track", token=ticket.public_token, **_lang_args()))
    data = {"estimate_version": seen}
    if decision == "decline":
        data["reason"] = request.form.get("reason", "").strip() or None
    elif request.form.get("alternative", "").strip():  # the one chosen, of an estimate's
        data["alternative"] = request.form["alternative"].strip()
    try:
        answered = ticket_service.fire_event(ticket.id, decision,
                                             Actor.customer(request.remote_addr), data)
    except TransitionNotAllowed:
        flash(_("This estimate was already answered; here is where your repair stands now."),
              "warning")
    except (ValidationError, Conflict) as exc:
        db.session.rollback()
        if db.session.get(Ticket, ticket.id).state != "estimate":
            # answered at the same moment from another phone or by the shop: that answer stands
            flash(_("This estimate was already answered; here is where your repair stands "
                    "now."), "warning")
        else:
            # e.g. the estimate changed while the page was open: the new one needs its own
            # "yes"; or an alternative not chosen (a page of before the alternatives)
            flash((exc.extra.get("fields") or {}).get("alternative") or exc.message, "danger")
    else:
        chosen = lifecycle.chosen_alternative(answered) if decision == "approve" else None
        flash(_("Thank you: you chose %(name)s and approved the estimate; your device goes to "
                "a technician for the repair.", name=chosen["name"]) if chosen else
              _("Thank you: you approved the estimate; your device goes to a technician for "
                "the repair.")
              if decision == "approve" else
              _("Thank you: your answer was recorded. Your device is ready to collect."),
              "success")
    return redirect(url_for("public.track", token=ticket.public_token, **_lang_args()))


@bp.post("/t/<token>/sms")
@limiter.limit("10 per minute")
def customer_sms(token: str):
    """The customer stops the shop's SMS from their own page, or has them again."""
    ticket = _ticket_for(token)
    if _staff_view():  # the desk switches it on the ticket page, as the customer asked
        return redirect(url_for("tickets.show", ticket_id=ticket.id, _anchor="sms"))
    texted = request.form.get("sms") == "on"
    ticket_service.set_customer_sms(ticket.customer_id, texted, how="link")
    flash(_("We will text you again about your repairs.") if texted else
          _("We will send you no more SMS. This page keeps showing where your repair stands."),
          "success")
    return redirect(url_for("public.track", token=ticket.public_token, **_lang_args()))


@bp.route("/s/<token>", methods=["GET", "POST"])
@limiter.limit("5 per minute", methods=["POST"])
@limiter.limit("30 per minute", methods=["GET"])
def survey(token: str):
    ticket = _ticket_for(token)
    status = surveys.survey_status(ticket)
    context = {"ticket": ticket, **_page_context()}
    if request.method == "GET":
        if status == surveys.UNAVAILABLE:
            abort(404)  # not handed back yet
        return render_template("public/survey.html", status=status, form={}, errors={},
                               **context), 410 if status == surveys.CLOSED else 200
    if _staff_view():  # their answer would be recorded as the customer's own
        flash(_("You are logged in as staff: the survey is the customer's to answer."),
              "warning")
        return redirect(url_for("tickets.show", ticket_id=ticket.id))
    try:
        surveys.submit_survey(ticket.id, request.form.to_dict(), request.remote_addr)
    except surveys.AlreadyAnswered as exc:
        return render_template("public/survey.html", status=surveys.ANSWERED, form={},
                               errors={}, refused=exc.message, **context), 409
    except NotFound:
        abort(404)
    except DomainError as exc:
        return render_template("public/survey.html", status=surveys.OPEN,
                               form=request.form, errors=exc.extra.get("fields") or {},
                               problem=exc.message, **context), exc.status
    # the page it goes back to thanks them (no second "thank you" above it)
    return redirect(url_for("public.survey", token=ticket.public_token, **_lang_args()))
