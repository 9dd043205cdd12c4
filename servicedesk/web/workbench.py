"""Technician workbench: the worklist ("cartable") and claiming a ticket from the repair queue.

The worklist refreshes itself: the page polls its own URL with htmx every few seconds and gets
back only the worklist's partial (the ``HX-Request`` header says so). The ticket page itself, with
the estimate editor and every event's form, is ``web.tickets``.
"""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import lifecycle
from ..auth import require
from ..errors import DomainError
from ..i18n import localize_digits, to_ascii_digits
from ..services import workbench
from . import htmx

bp = Blueprint("workbench", __name__, url_prefix="/workbench")
POLL_SECONDS = 10


_hx = htmx.hx


bp.after_request(htmx.login_redirect_whole_page)


@bp.get("/")
@require("workbench.view")
def index():
    branches = workbench.branch_choices() if current_user.role != "technician" else []
    # a manager's choice of branch (every branch by default, as the dashboard counts)
    branch_id = request.args.get("branch", type=int)
    if branch_id not in {b.id for b in branches}:
        branch_id = None
    context = {"work": workbench.worklist(current_user, branch_id),
               "labels": lifecycle.STATE_LABELS, "poll_seconds": POLL_SECONDS,
               "branches": branches}
    if _hx():
        return render_template("workbench/_worklist.html", **context)
    return render_template("workbench/index.html", **context)


def _form_version():
    try:
        return int(to_ascii_digits(request.form.get("version", "")))
    except ValueError:
        return None


@bp.post("/tickets/<int:ticket_id>/assign")
@require("tickets.assign")
def assign(ticket_id: int):
    """A manager gives the ticket to a technician or back to the repair queue; the technician
    holding it gives it back to the queue."""
    username = request.form.get("technician", "").strip() or None
    try:
        ticket = workbench.assign(ticket_id, current_user, username,
                                  expected_version=_form_version())
    except DomainError as exc:
        flash(exc.message if not exc.extra.get("fields") else
              next(iter(exc.extra["fields"].values())), "danger")
        return redirect(url_for("tickets.show", ticket_id=ticket_id))
    if ticket.technician is not None:
        flash(_("Ticket %(number)s is with %(name)s now.",
                number=localize_digits(ticket.number), name=ticket.technician.display_name),
              "success")
    else:
        flash(_("Ticket %(number)s is back in the repair queue.",
                number=localize_digits(ticket.number)), "success")
    if current_user.role == "technician":
        return redirect(url_for(".index"))
    return redirect(url_for("tickets.show", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/claim")
@require("tickets.claim")
def claim(ticket_id: int):
    version = _form_version()
    try:
        ticket = workbench.claim(ticket_id, current_user, expected_version=version)
    except DomainError as exc:
        flash(exc.message, "danger")
        if request.form.get("next") == "ticket":
            return redirect(url_for("tickets.show", ticket_id=ticket_id))
        return redirect(url_for(".index"))
    flash(_("Ticket %(number)s is yours now.", number=localize_digits(ticket.number)), "success")
    return redirect(url_for("tickets.show", ticket_id=ticket.id))
