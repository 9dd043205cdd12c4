"""The customer's pages: no login, reached by the opaque token in the SMS and the receipt QR."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from .. import lifecycle
from ..errors import DomainError
from ..extensions import db, limiter
from ..lifecycle import Actor
from ..models import Ticket, TicketNote
from ..services import tickets as ticket_service

bp = Blueprint("public", __name__)


@bp.before_request
def customer_language():
    """Customer pages speak the customer's language (the switcher still wins)."""
    from flask import g
    token = (request.view_args or {}).get("token")
    if token and len(token) <= 40:
        language = db.session.scalar(
            select(Ticket.customer_id).where(Ticket.public_token == token.upper()))
        if language is not None:
            from ..models import Customer
            g.page_language = db.session.get(Customer, language).language


def _ticket_for(token: str) -> Ticket:
    if not token or len(token) > 40:
        abort(404)
    ticket = db.session.scalar(select(Ticket).where(Ticket.public_token == token.upper()))
    if ticket is None:
        abort(404)
    return ticket


@bp.get("/t/<token>")
@limiter.limit("60 per minute")
def track(token: str):
    ticket = _ticket_for(token)
    notes = db.session.scalars(select(TicketNote).where(
        TicketNote.ticket_id == ticket.id, TicketNote.customer_visible.is_(True))
        .order_by(TicketNote.id)).all()
    return render_template("public/track.html", ticket=ticket, notes=notes,
                           labels=lifecycle.STATE_LABELS,
                           event_labels={k: r.label for k, r in lifecycle.EVENTS.items()})


@bp.post("/t/<token>/<decision>")
@limiter.limit("10 per minute")
def decide(token: str, decision: str):
    if decision not in ("approve", "decline"):
        abort(404)
    ticket = _ticket_for(token)
    data = {"estimate_version": request.form.get("estimate_version", "")}
    if decision == "decline":
        data = {"reason": request.form.get("reason") or None}
    try:
        ticket_service.fire_event(ticket.id, decision, Actor.customer(request.remote_addr), data)
    except DomainError as exc:
        flash(exc.message, "danger")
    else:
        flash(_("Thank you: your answer was recorded."), "success")
    return redirect(url_for("public.track", token=token))
