"""The JSON API under /api/v1 (DESIGN section 5). Bearer tokens only: no cookies, so no CSRF."""
import hashlib
import json

from flask import Blueprint, Response, g, jsonify, request, url_for
from flask_babel import gettext as _

from .. import lifecycle, reports, signatures, visits
from .. import validation as v
from ..errors import (DomainError, Forbidden, NotFound, OutOfRange, StaleVersion,
                      UnknownFields, ValidationError)
from ..extensions import csrf
from ..i18n import format_number, use_rials_in_messages
from ..lifecycle import Actor
from ..links import tracking_url
from ..models import Ticket, Visit
from ..notifications import reasons as sms_reasons
from ..services import loaners, reception
from ..services import tickets as ticket_service
from ..services.people import user_for_token
from ..validation import MAX_ID
from ..auth import Unauthorized, bearer_token, can
from .errors import refuse_nul_input
from .openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


@bp.before_request
def authenticate():
    if request.endpoint == "api.openapi":
        return None
    user = user_for_token(bearer_token())
    if user is None:
        raise Unauthorized(_("A valid API token is required (Authorization: Bearer TOKEN)."))
    g.api_user = user
    # The same user for Flask-Login: current_user (locale choice, permission checks) reuses it
    # instead of running the request_loader, which would look the token up a second time.
    g._login_user = user
    g.via_token = True
    use_rials_in_messages()  # the API takes money in rials: its errors say amounts in rials
    refuse_nul_input()
    return None


def require(action: str) -> None:
    if not can(g.api_user, action):
        raise Forbidden(_("Your role (%(role)s) may not do this.", role=g.api_user.role))


# The fields each body the API takes may hold: a name, and for a field holding an object (or
# a list of objects) what that may hold in turn. Any other field is refused (400, code
# invalid, ``fields`` naming it): a misspelt optional field ("payment_methd"), dropped, would
# have the request succeed and do something else than asked.
LINE_FIELDS = dict.fromkeys(("kind", "description", "qty", "unit_price"))
PART_FIELDS = dict.fromkeys(("method", "amount"))
_NESTED = {"lines": [LINE_FIELDS], "payments": [PART_FIELDS],
           "alternatives": [{"name": None, "lines": [LINE_FIELDS]}]}
BODY_FIELDS = {
    "issue_visit": dict.fromkeys(("service", "phone")),
    "call_next_visit": dict.fromkeys(("counter", "service")),
    "create_ticket": {
        "visit_id": None,
        "customer": dict.fromkeys(("name", "phone", "language")),
        "device": dict.fromkeys(("kind", "brand", "model", "serial", "colour")),
        **dict.fromkeys(("problem", "service_type", "accessories", "condition",
                         "promised_date", "pre_approved_amount", "loaner_id", "signature",
                         signatures.PAPER_FIELD))},
    "refund": dict.fromkeys(("amount", "payment_method", "reason", "version")),
    "collector_override": dict.fromkeys(("reason",)),
    "text_pickup_code": {},
    "lend_loaner": dict.fromkeys(("description", "serial", "condition", "loaner_id", "version")),
    "return_loaner": dict.fromkeys(("condition", "note", "version")),
    "replace_link": dict.fromkeys(("text_customer", "version")),
    "followup": dict.fromkeys(("status",)),
}


def event_fields(event: str) -> dict:
    """What a body firing ``event`` may hold (``lifecycle.data_fields``, the event's name and
    the version the client saw)."""
    names = sorted(lifecycle.data_fields(event))
    return {"event": None, "version": None, **{name: _NESTED.get(name) for name in names}}


def unknown_fields(data: dict, known: dict, prefix: str = "") -> dict:
    """Each field of ``data`` (at any depth) that ``known`` does not list, by its dotted name
    (``customer.emial``; a list's items from 1: ``lines.2.quantity``), with what is known
    there."""
    found = {}
    for key, value in data.items():
        if key not in known:
            found[prefix + key] = _("Unknown field. Known here: %(known)s.",
                                    known=", ".join(known))
            continue
        inner = known[key]
        if isinstance(inner, dict) and isinstance(value, dict):
            found.update(unknown_fields(value, inner, f"{prefix}{key}."))
        elif isinstance(inner, list) and isinstance(value, list):
            for i, item in enumerate(value, start=1):
                if isinstance(item, dict):
                    found.update(unknown_fields(item, inner[0], f"{prefix}{key}.{i}."))
    return found


def refuse_unknown(data: dict, known: dict) -> None:
    """UnknownFields (400) when ``data`` holds a field ``known`` does not list."""
    found = unknown_fields(data, known)
    if found:
        names = list(found)
        raise UnknownFields(_("Unknown fields: %(names)s. Nothing was changed.",
                              names=", ".join(names[:10]) + (", ..." if len(names) > 10
                                                             else "")), fields=found)


def body(known: dict | None = None) -> dict:
    """The request's JSON object; with ``known`` (``BODY_FIELDS``), refused when it holds a
    field the endpoint does not read."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # arrays nested thousands deep: malformed for us, not a crash
        data = None
    if data is None:
        raise DomainError(_("The request body must be valid JSON (Content-Type: "
                            "application/json)."))
    if not isinstance(data, dict):
        raise ValidationError(_("The request body must be a JSON object."))
    if known is not None:
        refuse_unknown(data, known)
    return data


def actor() -> Actor:
    return Actor.staff(g.api_user, ip=request.remote_addr)


def visit_json(visit: Visit) -> dict:
    return {"id": visit.id, "number": visit.number, "label": visit.label,
            "service": visit.service, "status": visit.status,
            "issued_at": visit.issued_at.isoformat(),
            "called_at": visit.called_at.isoformat() if visit.called_at else None,
            "counter": visit.counter, "ahead": visits.ahead(visit)}


_ASK = object()


def loaner_json(loan) -> dict | None:
    """A loaner phone lent on a ticket (None: none out)."""
    if loan is None:
        return None
    return {"id": loan.id, "loaner_id": loan.loaner_id, "description": loan.description,
            "serial": loan.serial,
            "condition": loan.condition or None, "lent_at": loan.lent_at.isoformat(),
            "lent_by": loan.lent_by_name}


def ticket_json(ticket: Ticket, full: bool = True, loaner=_ASK) -> dict:
    """``loaner``: the loan out on the ticket when the caller has it (a list reads them all
    in one query), else it is looked up."""
    # an estimate whose alternatives the customer has not chosen between has no one total:
    # from its lowest to its highest (estimate_total: the lowest; README "Estimate totals")
    lowest, highest = lifecycle.estimate_range(ticket)
    data = {
        "id": ticket.id, "number": ticket.number, "state": ticket.state,
        "version": ticket.version, "tracking_url": tracking_url(ticket),
        "customer": {"id": ticket.customer.id, "name": ticket.customer.name,
                     "phone": ticket.customer.phone, "language": ticket.customer.language},
        "device": {"kind": ticket.device.kind, "brand": ticket.device.brand,
                   "model": ticket.device.model, "serial": ticket.device.serial,
                   "colour": ticket.device.colour},
        "problem": ticket.problem, "service_type": ticket.service_type,
        "technician": ticket.technician.username if ticket.technician else None,
        "promised_date": ticket.promised_date.isoformat() if ticket.promised_date else None,
        "estimate_total": lowest, "estimate_total_min": lowest,
        "estimate_total_max": highest, "final_total": ticket.final_total,
        "amount_paid": ticket.amount_paid,
        "amount_refunded": ticket.amount_refunded or 0,
        "loaner": loaner_json(loaner if loaner is not _ASK
                              else loaners.out(ticket.id) if loaners.held(ticket) else None),
        "created_at": ticket.created_at.isoformat(), "updated_at": ticket.updated_at.isoformat(),
    }
    if full:
        user = g.api_user
        # what this user may fire now: nothing on another branch's ticket (a 403 would answer)
        data["allowed_events"] = (
            lifecycle.allowed_events(ticket.state, user.role)
            if ticket_service.acts_here(ticket, user.role, user.branch_id) else [])
        data["estimate_lines"] = [_line(l) for l in ticket.estimate_lines()]
        data["estimate_alternatives"] = lifecycle.estimate_alternatives(ticket)
        data["chosen_alternative"] = lifecycle.chosen_alternative(ticket)
        data["final_lines"] = [_line(l) for l in ticket.final_lines()]
        # drawn on the counter's screen: when, and the picture's SHA-256 (as its event records)
        data["signatures"] = {
            signatures.MOMENT_OF[e.event]: {"signed_at": e.at.isoformat(),
                                            "sha256": e.data["signature_sha256"]}
            for e in ticket.events
            if e.event in signatures.MOMENT_OF and (e.data or {}).get("signature_sha256")}
        # signed on the paper slip instead of the screen: when, by whose hand, and why
        data["signed_on_paper"] = {
            signatures.MOMENT_OF[e.event]: {"at": e.at.isoformat(), "actor": e.actor_name,
                                            "reason": e.data[signatures.PAPER_FIELD]}
            for e in ticket.events
            if e.event in signatures.MOMENT_OF and (e.data or {}).get(signatures.PAPER_FIELD)}
        data["history"] = [{"event": e.event, "from": e.from_state, "to": e.to_state,
                            "actor": e.actor_name, "at": e.at.isoformat(), "data": e.data}
                           for e in ticket.events]
        # error: the delivery job's raw note (English, kept for scripts that read it);
        # reason: what it means, in the words reception reads beside the SMS
        data["notifications"] = [{"id": n.id, "event": n.event, "to": n.to, "status": n.status,
                                  "body": n.shown_body, "segments": n.segments,
                                  "attempts": n.attempts, "error_code": n.error_code,
                                  "error": n.error_message,
                                  "reason": sms_reasons.explain(n.status, n.error_code,
                                                                n.error_message)}
                                 for n in ticket.notifications]
    return data


def _line(line) -> dict:
    return {"kind": line.kind, "description": line.description, "qty": line.qty,
            "unit_price": line.unit_price, "total": line.total}


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


def service_field(data: dict, required: bool = True):
    """The "service" field: one of visits.SERVICES (None when optional and absent)."""
    service = data.get("service")
    if service is None and not required:
        return None
    if not isinstance(service, str) or service not in visits.SERVICES:
        raise ValidationError(_("Unknown service."),
                              fields={"service": _("Must be one of: %(options)s.",
                                                   options=", ".join(visits.SERVICES))})
    return service


@bp.post("/visits")
def issue_visit():
    require("visits.issue")
    data = body(BODY_FIELDS["issue_visit"])
    branch = g.api_user.branch or ticket_service.default_branch()
    # the same action as the kiosk: with a mobile number, the queue SMS follow it
    visit = reception.issue_number(branch, service_field(data), data.get("phone"))
    return jsonify(visit_json(visit)), 201, {
        "Location": url_for("api.get_visit", visit_id=visit.id)}


@bp.post("/visits/next")
def call_next_visit():
    require("visits.call")
    data = body(BODY_FIELDS["call_next_visit"])
    branch = g.api_user.branch or ticket_service.default_branch()
    # the same action as reception's button: the called customer and the next ones are texted
    visit = reception.call_next(branch, data.get("counter"), g.api_user,
                                service_field(data, required=False))
    if visit is None:
        empty = Response(status=204)
        del empty.headers["Content-Type"]  # no body, so no type of one
        return empty
    return jsonify(visit_json(visit))


@bp.get("/visits/<int:visit_id>")
def get_visit(visit_id: int):
    require("visits.view")
    if not 0 < visit_id <= MAX_ID:
        raise NotFound(_("No such visit."))
    return jsonify(visit_json(visits.get(visit_id)))


@bp.post("/tickets")
def create_ticket():
    if g.api_user.role not in lifecycle.EVENTS["admit"].roles:
        raise Forbidden(_("Your role (%(role)s) may not fire the event %(event)s.",
                          role=g.api_user.role, event="admit"))
    # A client's Idempotency-Key: a request retried (a timeout, a lost answer) admits the
    # device once; the retry gets the ticket with 200 instead of 201.
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 50:  # kept whole with the client's id: two long keys never read as one
        raise ValidationError(_("Some fields are not valid."), fields={
            "Idempotency-Key": _("At most %(count)s characters.", count=50)})
    data = body(BODY_FIELDS["create_ticket"])
    # ``loaner_id``: one of the branch's loaner phones lent with the admit, in its transaction
    # (as the desk's intake form); a phone that may not be lent admits nothing. It stays in
    # the intake the Idempotency-Key is kept with: another phone asked for is another intake.
    ticket = ticket_service.admit(data, actor(), branch=g.api_user.branch,
                                  intake_key=f"api:{g.api_user.id}:{key}" if key else None,
                                  loaner_id=data.get("loaner_id"))
    if ticket.replayed:
        return jsonify(ticket_json(ticket)), 200
    return jsonify(ticket_json(ticket)), 201, {
        "Location": url_for("api.get_ticket", ticket_id=ticket.id)}


@bp.get("/tickets")
def list_tickets():
    """Newest first: ``state`` (comma-separated), ``branch`` (id, code or name; default every
    branch), ``limit`` (1 to 500) and ``offset``. A ``Link: <...>; rel="next"`` header points
    to the next page while there is one."""
    require("tickets.view")
    args, errors = request.args, {}
    states = None
    if args.get("state"):
        states = args["state"].split(",")
        unknown = [s for s in states if s not in lifecycle.TICKET_STATES]
        if unknown:
            errors["state"] = _("Unknown state: %(states)s. Known states: %(options)s.",
                                states=", ".join(unknown),
                                options=", ".join(lifecycle.TICKET_STATES))
    branch_id = None
    try:
        branch = v.text(args.get("branch"), max_len=200, required=False)
    except ValueError as exc:
        errors["branch"], branch = str(exc), None
    if branch:
        branch_id = reports.branch_named(branch)
        if branch_id is None:
            errors["branch"] = _("No such branch.")
    limit, offset = _whole(args, "limit", 100, errors), _whole(args, "offset", 0, errors)
    if errors:
        raise ValidationError(_("Some filters are not valid."), fields=errors)
    _refuse_out_of_range({"limit": limit, "offset": offset})
    items, more = ticket_service.page_of_tickets(states, branch_id, limit, offset)
    headers = {}
    if more:
        headers["Link"] = '<%s>; rel="next"' % url_for(
            "api.list_tickets", **{**args.to_dict(), "limit": limit, "offset": offset + limit})
    out = loaners.out_for(t.id for t in items)
    return jsonify({"items": [ticket_json(t, full=False, loaner=out.get(t.id)) for t in items],
                    "limit": limit, "offset": offset}), 200, headers


# The paging arguments' ranges: one outside is refused (400), not answered as if the nearest
# value had been sent (a client asking for 1000 would read 500 as all there is).
PAGE_RANGES = {"limit": (1, 500), "offset": (0, MAX_ID)}


def _refuse_out_of_range(values: dict) -> None:
    wrong = {name: PAGE_RANGES[name] for name, value in values.items()
             if not PAGE_RANGES[name][0] <= value <= PAGE_RANGES[name][1]}
    if wrong:
        raise OutOfRange(
            _("Some filters are out of range: %(names)s.", names=", ".join(wrong)),
            fields={name: _("Must be from %(low)s to %(high)s.", low=format_number(low),
                            high=format_number(high))
                    for name, (low, high) in wrong.items()},
            ranges={name: {"minimum": low, "maximum": high}
                    for name, (low, high) in wrong.items()})


def _whole(args, name: str, default: int, errors: dict) -> int:
    """A whole-number query argument (``default`` when absent); a bad one goes to ``errors``."""
    raw = args.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        errors[name] = _("Must be a whole number.")
        return default


def ticket_etag(version: int, data: dict) -> str:
    """A ticket answer's entity tag: its version, then a digest of the answer itself. The
    version alone would call two answers the same that are not (an SMS sent since, which moves
    no version; another reader's allowed events); ``If-Match`` on a write reads the version."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False,
                                       default=str).encode()).hexdigest()[:16]
    return f"{version}-{digest}"


@bp.get("/tickets/<int:ticket_id>")
def get_ticket(ticket_id: int):
    """The ticket, with an ``ETag``: ``If-None-Match`` with it answers 304 while nothing of
    the answer changed."""
    require("tickets.view")
    data = ticket_json(ticket_service.get_ticket(ticket_id, with_parties=True))
    resp = jsonify(data)
    resp.set_etag(ticket_etag(data["version"], data))
    return resp.make_conditional(request)


def _pop_version(data: dict):
    """The ticket version a client says it saw (optional; 409 if the ticket moved on): the
    body's ``version``, or the version of the ``If-Match`` header's entity tag (an ``ETag`` of
    GET /tickets/ID; 412 if the ticket moved on, as HTTP has it)."""
    version = data.pop("version", None)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ValidationError(_("Some fields are not valid."),
                              fields={"version": _("Must be a whole number.")})
    tags = request.if_match
    if not tags or tags.star_tag:
        return version
    said = set()
    for tag in tags.as_set(include_weak=False):
        head = tag.split("-", 1)[0]
        said.add(int(head) if head.isascii() and head.isdigit() else -1)
    if version is not None and said != {version}:
        raise ValidationError(_("Some fields are not valid."), fields={"version": _(
            "The If-Match header names another version than this field.")})
    g.version_from_if_match = True
    # a tag this API never gave (or several versions) matches no ticket: 412
    return said.pop() if len(said) == 1 else -1


@bp.errorhandler(StaleVersion)
def stale_version(exc: StaleVersion):
    """A stale version is 409; one sent as If-Match is HTTP's 412 Precondition Failed."""
    status = 412 if g.get("version_from_if_match") else exc.status
    return jsonify(exc.to_dict()), status


@bp.post("/tickets/<int:ticket_id>/events")
def fire_event(ticket_id: int):
    require("tickets.view")
    data = dict(body())
    event = data.pop("event", None)
    if not isinstance(event, str) or not event:
        raise ValidationError(_("Some fields are not valid."), fields={"event": _(
            "This field is required.") if event in (None, "") else _("Must be text.")})
    rule = lifecycle.EVENTS.get(event)
    if rule is not None and g.api_user.role in rule.roles:
        # (an unknown event, or one the role may not fire, is refused as that by the lifecycle)
        refuse_unknown({"event": event, **data}, event_fields(event))
    version = _pop_version(data)
    ticket = ticket_service.fire_event(ticket_id, event, actor(), data, expected_version=version)
    return jsonify(ticket_json(ticket))


@bp.post("/tickets/<int:ticket_id>/refunds")
def refund(ticket_id: int):
    """Money given back after the hand-back: ``{"amount", "payment_method", "reason"}``
    (rials; ``version`` optional, as for events). 200 with the ticket: a refund is a record of
    the ticket's trail (its ``history``, where a client reads it back), not a thing with an
    address of its own, so no 201 and no Location to point at."""
    data = dict(body(BODY_FIELDS["refund"]))
    version = _pop_version(data)
    ticket = reception.refund(ticket_id, actor(), data, expected_version=version)
    return jsonify(ticket_json(ticket))


@bp.post("/tickets/<int:ticket_id>/collector-override")
def collector_override(ticket_id: int):
    """A manager confirms who collects a ready device without a code (an ID card seen, the
    receipt lost): ``{"reason"}``. The next ``deliver`` records it (``collector_check``) and
    the codes, if locked by wrong tries, are unlocked. 200 with the ticket (a record of its
    trail, as a refund)."""
    data = body(BODY_FIELDS["collector_override"])
    ticket = reception.override_collector(ticket_id, actor(), data.get("reason"))
    return jsonify(ticket_json(ticket))


@bp.post("/tickets/<int:ticket_id>/pickup-sms")
def text_pickup_code(ticket_id: int):
    """Text a one-time code to the owner's mobile, for the ``deliver`` event's ``sms_code``:
    ``{}``. 200 with the ticket; 409 when one was sent less than a minute ago, the codes are
    locked, or the owner receives no SMS."""
    body(BODY_FIELDS["text_pickup_code"])
    ticket = reception.text_pickup_code(ticket_id, actor())
    return jsonify(ticket_json(ticket))


@bp.post("/tickets/<int:ticket_id>/tracking-link")
def replace_link(ticket_id: int):
    """Replace the customer's link (a forwarded SMS, a lost phone, a receipt left behind):
    ``{"text_customer"?: true, "version"?}``. The old link stops working at once (its pages
    answer 410); with ``text_customer`` (the default) the new one is texted to the customer,
    unless they asked for no SMS. 200 with the ticket: its ``tracking_url`` is the new link,
    its history ends with the ``replace_link`` record (``data.sms`` says whether it was
    texted)."""
    data = dict(body(BODY_FIELDS["replace_link"])) if request.get_data() else {}
    version = _pop_version(data)
    ticket, _texted = ticket_service.replace_link(
        ticket_id, actor(), text_customer=data.get("text_customer", True),
        expected_version=version)
    return jsonify(ticket_json(ticket))


@bp.post("/tickets/<int:ticket_id>/loaner")
def lend_loaner(ticket_id: int):
    """Lend the customer a loaner phone while the ticket is open: ``{"description",
    "serial"?, "condition"?}``, or one of the branch's own phones ``{"loaner_id",
    "condition"?}`` (``version`` optional, as for events). 200 with the ticket, as for
    refunds: a loan is a record of the ticket's (its ``loaner``, its ``history``), not a thing
    with an address of its own, so no 201 and no Location to point at."""
    data = dict(body(BODY_FIELDS["lend_loaner"]))
    version = _pop_version(data)
    ticket = loaners.lend(ticket_id, actor(), data, expected_version=version)
    return jsonify(ticket_json(ticket))


@bp.post("/tickets/<int:ticket_id>/loaner/return")
def return_loaner(ticket_id: int):
    """The customer gave the loaner phone back: ``{"condition"?: "fine"|"damaged",
    "note"?}`` (a damaged one needs the note; ``version`` optional; no body at all is fine:
    its condition unsaid)."""
    data = dict(body(BODY_FIELDS["return_loaner"])) if request.get_data() else {}
    version = _pop_version(data)
    ticket = loaners.take_back(ticket_id, actor(), expected_version=version, data=data)
    return jsonify(ticket_json(ticket))


@bp.errorhandler(404)
def not_found(exc):
    return jsonify({"error": _("Not found.")}), 404


@bp.errorhandler(405)
def not_allowed(exc):
    return jsonify({"error": _("This method is not allowed here.")}), 405, {
        "Allow": ", ".join(getattr(exc, "valid_methods", None) or ())}


