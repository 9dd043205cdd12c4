"""Staff ticket pages: the list, one ticket (timeline, lines, SMS, the events the user may
fire now), intake, notes."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import lifecycle
from ..auth import can, require
from ..errors import DomainError
from ..extensions import db
from ..lifecycle import Actor
from ..models import Ticket, TicketNote, User
from ..services import tickets as ticket_service

bp = Blueprint("tickets", __name__, url_prefix="/tickets")


@bp.get("/")
@require("tickets.view")
def index():
    state = request.args.get("state")
    query = select(Ticket).order_by(Ticket.id.desc()).limit(200)
    if state in lifecycle.TICKET_STATES:
        query = query.where(Ticket.state == state)
    q = (request.args.get("q") or "").strip()
    if q:
        query = query.where(Ticket.number.ilike(f"%{q}%"))
    items = db.session.scalars(query).all()
    return render_template("tickets/index.html", items=items, state=state, q=q,
                           states=lifecycle.TICKET_STATES, labels=lifecycle.STATE_LABELS)


@bp.get("/<int:ticket_id>")
@require("tickets.view")
def show(ticket_id: int):
    ticket = ticket_service.get_ticket(ticket_id)
    notes = db.session.scalars(select(TicketNote).where(TicketNote.ticket_id == ticket.id)
                               .order_by(TicketNote.id)).all()
    events = [lifecycle.EVENTS[name]
              for name in lifecycle.allowed_events(ticket.state, current_user.role)]
    technicians = db.session.scalars(select(User).where(User.role == "technician",
                                                        User.active.is_(True))).all()
    return render_template("tickets/show.html", ticket=ticket, notes=notes, events=events,
                           technicians=technicians, labels=lifecycle.STATE_LABELS,
                           event_labels={k: r.label for k, r in lifecycle.EVENTS.items()},
                           can_note=can(current_user, "tickets.note"))


def event_data_from_form(form) -> dict:
    """Turn the ticket page's event form into the lifecycle's data (the same shape as the API's;
    numbers may be typed in Persian digits: the lifecycle's checks accept them)."""
    data = {k: v for k, v in form.items()
            if k not in ("csrf_token", "event", "version") and not k.startswith("line_")
            and v != ""}
    if "line_description" in form:
        lines = []
        for kind, desc, qty, price in zip(form.getlist("line_kind"),
                                          form.getlist("line_description"),
                                          form.getlist("line_qty"),
                                          form.getlist("line_unit_price")):
            if desc.strip() or price.strip():
                lines.append({"kind": kind, "description": desc, "qty": qty or "1",
                              "unit_price": price})
        data["lines"] = lines
    return data


@bp.post("/<int:ticket_id>/events")
@require("tickets.view")
def fire(ticket_id: int):
    event = request.form.get("event", "")
    try:
        version = int(request.form.get("version", ""))
    except ValueError:
        version = None
    try:
        ticket_service.fire_event(ticket_id, event, Actor.staff(current_user, request.remote_addr),
                                  event_data_from_form(request.form), expected_version=version)
    except DomainError as exc:
        flash(exc.message, "danger")
        for field, problem in (exc.extra.get("fields") or {}).items():
            flash(f"{field}: {problem}", "danger")
    else:
        flash(_("Done: %(event)s.", event=lifecycle.EVENTS[event].label), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@bp.post("/<int:ticket_id>/notes")
@require("tickets.note")
def add_note(ticket_id: int):
    try:
        ticket_service.add_note(ticket_id, current_user, request.form.get("body", ""),
                                customer_visible=request.form.get("customer_visible") == "1")
    except DomainError as exc:
        flash(exc.message, "danger")
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@bp.route("/new", methods=["GET", "POST"])
@require("tickets.admit")
def new():
    form = request.form
    errors = {}
    if request.method == "POST":
        payload = {
            "customer": {"name": form.get("customer_name"), "phone": form.get("customer_phone"),
                         "language": form.get("customer_language") or None},
            "device": {"kind": form.get("device_kind"), "brand": form.get("device_brand"),
                       "model": form.get("device_model"), "serial": form.get("device_serial"),
                       "colour": form.get("device_colour")},
            "problem": form.get("problem"),
            "accessories": form.get("accessories") or None,
            "condition": form.get("condition") or None,
            "service_type": form.get("service_type") or None,
            "promised_date": form.get("promised_date") or None,
            "pre_approved_amount": form.get("pre_approved_amount") or None,
            "visit_id": form.get("visit_id") or None,
        }
        try:
            ticket = ticket_service.admit(payload, Actor.staff(current_user, request.remote_addr),
                                          branch=current_user.branch)
        except DomainError as exc:
            flash(exc.message, "danger")
            errors = exc.extra.get("fields") or {}
        else:
            flash(_("Ticket %(number)s admitted.", number=ticket.number), "success")
            return redirect(url_for("tickets.show", ticket_id=ticket.id))
    from flask import current_app
    return render_template("tickets/new.html", form=form, errors=errors,
                           service_types=current_app.config["SERVICE_TYPES"]), \
        422 if errors else 200
