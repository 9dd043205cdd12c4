"""Report endpoints of the JSON API under /api/v1/reports (issue 6; DESIGN section 5).

Bearer tokens only (no cookies, so no CSRF), with the permission ``auth.API_PERMISSIONS``
names for each endpoint (``reports.view``; setting a survey follow-up needs
``reports.followup``). Filters as on the report pages: ``from`` and
``to`` (shop-time-zone dates, both inclusive), ``branch`` (id or code), ``technician`` (user
name), ``service_type``, ``brand``, ``group_by``. The shapes of turnaround, costs and survey are
the public contract of DESIGN section 5.
"""
from flask import Blueprint, g, jsonify, request
from flask_babel import gettext as _

from .. import lifecycle
from .. import reports as r
from .. import validation as v
from ..auth import api_user
from ..errors import ValidationError
from ..extensions import csrf
from ..i18n import use_rials_in_messages
from . import api
from .errors import refuse_nul_input

bp = Blueprint("api_reports", __name__, url_prefix="/api/v1/reports")
csrf.exempt(bp)

_STAGE_KEYS = ("stage", "count", "median_seconds", "p90_seconds", "mean_seconds")
_COST_KEYS = ("key", "tickets", "estimates", "approved", "declined", "awaiting",
              "estimate_total", "estimate_total_min", "estimate_total_max", "final_total",
              "parts_total", "labour_total", "paid_total")
_COST_DESCRIPTIONS = {
    "tickets": "tickets admitted in the range",
    "estimates": "of them, those quoted",
    "approved": "quoted and approved",
    "declined": "quoted and declined",
    "awaiting": "quoted, not answered yet (estimates = approved + declined + awaiting; an "
                "approval rate is approved / (approved + declined))",
    "estimate_total": "rials: the last estimate of each quoted ticket (one whose "
                      "alternatives were not chosen between, answered or not: its lowest; "
                      "the same as estimate_total_min)",
    "estimate_total_min": "rials: the estimates' total with each estimate whose alternatives "
                          "were not chosen between at its lowest alternative",
    "estimate_total_max": "rials: ...at its highest alternative (estimate_total_min and "
                          "estimate_total_max differ only when there are such estimates)",
    "final_total": "rials: the final lines of the repaired ones",
    "parts_total": "rials: the final part lines",
    "labour_total": "rials: the final labour lines",
    "paid_total": "rials: what their customers paid, less what was given back",
}


@bp.before_request
def authenticate():
    api_user()  # 401 without a valid token, 403 for a role without the endpoint's permission
    use_rials_in_messages()  # as the rest of the API: amounts in its errors in rials
    refuse_nul_input()


def _filters(groups: tuple = ()) -> r.Filters:
    # A date that does not read as one is refused as the rest of the API refuses it ("Enter a
    # date as YYYY-MM-DD."), not with the report pages' hint in the shop's calendar.
    errors = {}
    for name in ("from", "to"):
        raw = request.args.get(name)
        if raw and raw.strip():
            try:
                v.a_date(raw)
            except ValueError as exc:
                errors[name] = str(exc)
    if errors:
        raise ValidationError(_("Some filters are not valid."), fields=errors)
    return r.parse_filters(request.args, groups)


def _range(f: r.Filters) -> dict:
    return {"from": f.start.isoformat(), "to": f.end.isoformat()}


@bp.get("/turnaround")
def turnaround():
    """``{"stages": [{"stage", "count", "median_seconds", "p90_seconds", "mean_seconds"}]}``;
    with ``group_by``, ``{"groups": [{"key", "label", "stages": [...]}]}``."""
    f = _filters(r.TURNAROUND_GROUPS)
    rows = r.turnaround(f)
    if f.group_by is None:
        return jsonify({"stages": [{k: row[k] for k in _STAGE_KEYS} for row in rows]})
    groups: dict = {}
    for row in rows:
        group = groups.setdefault(row["key"], {"key": row["key"], "label": row["key_label"],
                                               "stages": []})
        group["stages"].append({k: row[k] for k in _STAGE_KEYS})
    return jsonify({"group_by": f.group_by, **_range(f), "groups": list(groups.values())})


@bp.get("/costs")
def costs():
    """``{"rows": [{"key", "tickets", "estimates", "approved", "declined", "awaiting",
    "estimate_total", "estimate_total_min", "estimate_total_max", "final_total",
    "parts_total", "labour_total", "paid_total"}]}`` over the
    tickets admitted in the range (``awaiting``: quoted, not answered yet; ``paid_total``: what
    their customers paid, less what was given back);
    ``group_by`` is one of ``reports.COST_GROUPS``; by default the shop's months (Jalali in a
    Persian shop, as its report page shows them)."""
    f = _filters(r.COST_GROUPS)
    if f.group_by is None:
        f = r.with_group(f, r.shop_month())
    return jsonify({"rows": [{k: row[k] for k in _COST_KEYS} for row in r.costs(f)]})


@bp.get("/survey")
def survey():
    """``{"responses", "response_rate", "csat_mean", "nps"}`` over the tickets delivered in
    the range (``response_rate`` a fraction, ``nps`` -100..100, nulls when nothing to rate)."""
    f = _filters()
    row = r.survey(f)[0]
    return jsonify({k: row[k] for k in ("responses", "response_rate", "csat_mean", "nps")})


@bp.get("/survey/followups")
def survey_followups():
    """The low scores and complaints of the range, with comments and follow-up status
    (``?status=open|contacted|done``)."""
    f = _filters()
    status = request.args.get("status") or None
    if status not in (None, *r.FOLLOWUP_STATUSES):
        raise ValidationError(_("Some fields are not valid."),
                              fields={"status": _("Must be one of: %(options)s.",
                                                  options=", ".join(r.FOLLOWUP_STATUSES))})
    items = r.survey_followups(f, status)
    keys = ("id", "ticket_id", "ticket_number", "customer", "technician", "csat", "nps",
            "comment", "complaint", "followup_status")
    out = []
    for item in items:
        row = {k: item[k] for k in keys}
        row["answered_at"] = item["answered_at"].isoformat() if item["answered_at"] else None
        row["delivered_at"] = item["delivered_at"].isoformat() if item["delivered_at"] else None
        out.append(row)
    return jsonify({"items": out})


@bp.post("/survey/responses/<int:response_id>/followup")
def set_followup(response_id: int):
    """``{"status": "open"|"contacted"|"done"}`` -> ``{"id", "followup_status"}``."""
    # 400 when not JSON or with a field it does not read, 422 when not an object
    data = api.body(api.BODY_FIELDS["followup"])
    response = r.set_followup_status(response_id, data.get("status"), by=g.api_user)
    return jsonify({"id": response.id, "followup_status": response.followup_status})


@bp.get("/technicians")
def technicians():
    """Per technician: repairs finished in the range, per day, repair time, returns within
    the warranty period and their customers' satisfaction."""
    f = _filters()
    return jsonify({**_range(f), "rows": r.technicians(f)})


@bp.get("/queue")
def queue():
    """The queue: totals and waits, and visits per weekday (0 = Monday) and hour."""
    f = _filters()
    return jsonify({**_range(f), "summary": r.queue_summary(f), "heatmap": r.queue_heatmap(f)})


@bp.get("/sms")
def sms():
    """SMS written in the range: totals (``segments``: of the messages sent, what the provider
    bills; ``delivery_reports``: how many delivery reports came, ``delivery_rate`` null when
    none did), failures by error code, and the rows per event, status and error code."""
    f = _filters()
    rows = r.sms(f)
    return jsonify({**_range(f), "summary": r.sms_summary(rows), "rows": rows})


@bp.get("/takings")
def takings():
    """What the desks took at the hand-backs: per group (a day by default; ``group_by`` one
    of ``reports.TAKINGS_GROUPS``) and payment method (``""``: not recorded), the paid
    hand-backs and what they paid, the refunds and what they gave back, and the amount the
    till holds (paid minus given back), in rials; the totals per method. A payment split
    between methods counts each part under its method, and the hand-back once in all.
    ``staff`` (a user name) counts one person's hand-backs and refunds."""
    unused = [name for name in ("technician", "service_type", "brand")
              if request.args.get(name)]
    if unused:  # a till counts money, not repairs: these would be silently ignored
        raise ValidationError(_("Some filters are not valid."), fields={
            name: _("Takings are not counted by this.") for name in unused})
    f = _filters(r.TAKINGS_GROUPS)
    if f.group_by is None:
        f = r.with_group(f, "day")
    try:
        staff = v.text(request.args.get("staff"), max_len=120, required=False)
    except ValueError as exc:
        raise ValidationError(_("Some filters are not valid."),
                              fields={"staff": str(exc)}) from None
    if staff and not r.known_staff(staff):
        raise ValidationError(_("Some filters are not valid."),
                              fields={"staff": _("No such user.")})
    rows = r.takings(f, staff)
    keys = ("key", "key_label", "method", *r.TAKINGS_FIGURES)
    summary = r.takings_summary(rows)
    return jsonify({"group_by": f.group_by, **_range(f),
                    "totals": r.handback_totals(f, staff),
                    "summary": {**{k: summary[k] for k in r.TAKINGS_FIGURES},
                                "methods": [{k: m[k] for k in ("method", *r.TAKINGS_FIGURES)}
                                            for m in summary["methods"]]},
                    "rows": [{k: row[k] for k in keys} for row in rows]})


@bp.get("/dashboard")
def dashboard():
    """Open tickets per state, overdue, today's intakes and deliveries, people waiting; of
    one branch (by id, code or name, as the other reports take it) or of all."""
    try:
        raw = v.text(request.args.get("branch"), max_len=200, required=False)
    except ValueError as exc:
        raise ValidationError(_("Some filters are not valid."),
                              fields={"branch": str(exc)}) from None
    branch_id = r.branch_named(raw) if raw else None
    if raw and branch_id is None:
        raise ValidationError(_("Some filters are not valid."),
                              fields={"branch": _("No such branch.")})
    return jsonify(r.dashboard_counts(branch_id))


def takings_path(get, record, date) -> dict:
    method = {"enum": ["", *lifecycle.PAYMENT_METHODS]}
    count = {"type": "integer"}
    # paid at the hand-backs, given back by refunds, and what the till holds: paid - refunded
    figures = {k: count for k in r.TAKINGS_FIGURES}
    # a hand-back paid partly one way and partly another (the deliver event's payments)
    figures["handbacks"] = {"type": "integer", "description": "paid hand-backs; under a "
                            "method, those with a part paid that way (a payment split between "
                            "methods counts under each, its amount split as paid); in the "
                            "summary's total, each hand-back once"}
    path = get("Takings at the hand-backs per group and payment method", record({
        "group_by": {"enum": list(r.TAKINGS_GROUPS)}, "from": date, "to": date,
        "totals": record({
            "handbacks": count,
            "unpaid": {"type": "integer", "description": "hand-backs with nothing to pay: "
                       "nothing was due (or, where what was due was not recorded, nothing was "
                       "paid); a bill let off entirely is in discounts instead"},
            "discounts": {"type": "integer", "description": "rials given off the amounts "
                          "due (due minus paid)"},
            "beyond": {"type": "integer", "description": "rials paid beyond the amounts due"},
            "refunds": count, "refunded": count}),
        "summary": record({**figures, "methods": {
            "type": "array", "items": record({"method": method, **figures})}}),
        "rows": {"type": "array", "items": record({
            "key": {"type": ["string", "null"]}, "key_label": {"type": ["string", "null"]},
            "method": method, **figures})}}),
        r.TAKINGS_GROUPS, default_group="day")
    path["get"]["parameters"] = [p for p in path["get"]["parameters"] if p["name"] not in (
        "technician", "service_type", "brand")]
    path["get"]["parameters"].append({"name": "staff", "in": "query",
                                      "schema": {"type": "string"},
                                      "description": "user name of who handed back or "
                                                     "gave money back"})
    return path


def openapi_paths() -> dict:
    """The report paths for the OpenAPI document (servicedesk/web/openapi.py merges them)."""
    date = {"type": "string", "format": "date"}
    common = [{"name": "from", "in": "query", "schema": date,
               "description": "first day, shop time zone (default: 30 days before to)"},
              {"name": "to", "in": "query", "schema": date,
               "description": "last day, inclusive (default: today)"},
              {"name": "branch", "in": "query", "schema": {"type": "string"}},
              {"name": "technician", "in": "query", "schema": {"type": "string"},
               "description": "user name"},
              {"name": "service_type", "in": "query", "schema": {"type": "string"}},
              {"name": "brand", "in": "query", "schema": {"type": "string"}}]
    num = {"type": ["number", "null"]}
    stage = {"type": "object", "properties": {
        "stage": {"enum": list(r.STAGES)}, "count": {"type": "integer"},
        "median_seconds": num, "p90_seconds": num, "mean_seconds": num}}
    stages = {"type": "array", "items": stage}

    def record(props: dict) -> dict:
        return {"type": "object", "required": list(props), "properties": props}

    def get(summary, schema, groups=None, default_group=None, group_description=None):
        params = list(common)
        if groups:
            params.append({"name": "group_by", "in": "query", "schema": {
                "enum": list(groups), **({"default": default_group} if default_group else {})},
                **({"description": group_description} if group_description else {})})
        return {"get": {"summary": summary, "parameters": params,
                        "responses": {"200": {"description": summary, "content": {
                            "application/json": {"schema": schema}}},
                            "401": {"description": "missing or bad token"},
                            "403": {"description": "role may not"},
                            "422": {"description": "invalid filters"}}}}

    return {
        "/reports/turnaround": get(
            "Turnaround per stage; with group_by, per group", {"oneOf": [
                record({"stages": stages}),
                record({"group_by": {"enum": list(r.TURNAROUND_GROUPS)}, "from": date,
                        "to": date, "groups": {"type": "array", "items": record({
                            "key": {"type": ["string", "null"]}, "label": {"type": "string"},
                            "stages": stages})}})]}, r.TURNAROUND_GROUPS),
        "/reports/costs": get(
            "Cost and revenue per group", {"type": "object", "properties": {"rows": {
                "type": "array", "items": {"type": "object", "properties": {
                    k: {"type": ["string", "null"]} if k == "key" else
                    {"type": "integer", "description": _COST_DESCRIPTIONS[k]}
                    for k in _COST_KEYS}}}}}, r.COST_GROUPS, default_group=r.shop_month(),
            group_description="default: the shop's months, jalali_month in a Persian shop "
                              "(SERVICEDESK_LOCALE fa), month in an English one"),
        "/reports/survey": get(
            "Survey results", {"type": "object", "properties": {
                "responses": {"type": "integer"}, "response_rate": num, "csat_mean": num,
                "nps": num}}),
        "/reports/survey/followups": get("Low scores and complaints", {"type": "object"}),
        "/reports/technicians": get("Technicians", {"type": "object"}),
        "/reports/queue": get("Queue", {"type": "object"}),
        "/reports/sms": get("SMS: totals (segments of the messages sent; delivery_rate null "
                            "when no delivery report came), failures by code, rows",
                            {"type": "object"}),
        "/reports/takings": takings_path(get, record, date),
        "/reports/dashboard": {"get": {
            "summary": "Open tickets per state, overdue, today's intakes and deliveries, "
                       "people waiting",
            "parameters": [{"name": "branch", "in": "query", "schema": {"type": "string"},
                            "description": "id, code or name (default: every branch)"}],
            "responses": {"200": {"description": "the counts", "content": {
                "application/json": {"schema": {"type": "object"}}}},
                "401": {"description": "missing or bad token"},
                "403": {"description": "role may not"},
                "422": {"description": "no such branch"}}}},
        "/reports/survey/responses/{id}/followup": {"post": {
            "summary": "Set the follow-up status of a low score or complaint",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["status"],
                "properties": {"status": {"enum": list(r.FOLLOWUP_STATUSES)}}}}}},
            "responses": {"200": {"description": "the new status"},
                          "400": {"description": "not JSON, or a field other than status "
                                                 "(code invalid)"},
                          "401": {"description": "missing or bad token"},
                          "403": {"description": "role may not"},
                          "404": {"description": "no such response"},
                          "422": {"description": "unknown status"}}}},
    }
