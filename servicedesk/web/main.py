"""The staff home: what each role opens first."""
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from .. import lifecycle
from ..auth import require
from ..extensions import db
from ..models import Ticket

bp = Blueprint("main", __name__)


@bp.get("/")
@require("home")
def home():
    counts = dict(db.session.execute(
        select(Ticket.state, func.count(Ticket.id)).group_by(Ticket.state)).all())
    mine = []
    if current_user.role == "technician":
        mine = db.session.scalars(
            select(Ticket).where(Ticket.technician_id == current_user.id,
                                 Ticket.state.in_(("diagnosis", "estimate", "repair",
                                                   "waiting_parts")))
            .order_by(Ticket.updated_at)).all()
    return render_template("main/home.html", counts=counts, states=lifecycle.TICKET_STATES,
                           labels=lifecycle.STATE_LABELS, mine=mine)


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for it whatever the pages link to; the pages link to the SVG."""
    return redirect(url_for("static", filename="favicon.svg"), 301)
