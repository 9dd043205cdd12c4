"""Manager's dashboard and reports (issue 6).

One page per report under /reports/, the dashboard at /reports/. Filters live in the query
string (bookmarkable: from, to, branch, technician, service_type, brand, group_by); every
report page exports its table with ``?format=csv`` or ``?format=xlsx``. The views parse the
filters, call one function of ``servicedesk.reports`` (one SQL statement each) and either
render, export or hand the charts their data as JSON.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional
from urllib.parse import urlencode

import click
import jdatetime
from flask import (Blueprint, flash, jsonify, redirect, render_template, request,
                   send_file, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from .. import audit, settings
from .. import reports as r
from ..auth import can, require
from ..errors import ValidationError
from ..exports import Column, to_csv, to_xlsx
from ..extensions import db
from ..i18n import (current_language, format_datetime, format_decimal, format_money,
                    format_number, format_percent, localize_digits, money_display,
                    money_unit_word)
from ..lifecycle import STATE_LABELS
from ..models import Branch, User
from ..notifications import reasons as sms_reasons
from ..notifications import templates as sms_templates
from .auth import local_path
from .tickets import NOTIFICATION_LABELS

bp = Blueprint("reports", __name__, url_prefix="/reports")

REFRESH_SECONDS = 60  # the dashboard reloads its numbers and charts this often


# --- formatting helpers for the templates ---------------------------------------------------

def duration(seconds: Optional[float]) -> str:
    """A duration for people: 2 d 3 h, 3 h 20 min, 12 min, 40 s (digits localised)."""
    if seconds is None:
        return "–"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        text = _("%(days)s d %(hours)s h", days=days, hours=hours)
    elif hours:
        text = _("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
    elif minutes:
        text = _("%(minutes)s min", minutes=minutes)
    else:
        text = _("%(seconds)s s", seconds=secs)
    return localize_digits(text)


def percent(ratio: Optional[float]) -> str:
    return "–" if ratio is None else format_percent(ratio)


def decimal(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else format_decimal(value, digits)


def cell(value: Any, kind: str) -> str:
    """A table cell's text for a column kind (exports.KINDS, and ``float1``: a figure to a
    tenth, which a file writes as it is)."""
    if kind == "seconds":
        return duration(value)
    if kind == "money":  # the column's header names the unit
        return format_money(value, with_unit=False) if value is not None else "–"
    if kind == "ratio":
        return percent(value)
    if kind == "float":
        return decimal(value, 2)
    if kind == "float1":  # NPS: -100..100 to a tenth, as computed; "100.00" read as false
        return decimal(value, 1)
    if kind == "int":
        return format_number(value) if value is not None else "–"
    if kind == "datetime":  # the shop's clock and the page's calendar
        return format_datetime(value) if value is not None else "–"
    if value is None or value == "":
        return "–"
    return localize_digits(value) if kind == "digits" else str(value)


def date_input(day) -> str:
    """A date for the filter form: Jalali YYYY/MM/DD in Persian (what the date picker writes),
    ISO otherwise; Latin digits either way, so it travels in URLs as typed (the form's fields
    show it through ``|digits``, in the page's digits: the server reads any)."""
    if current_language() == "fa":
        j = jdatetime.date.fromgregorian(date=day)
        return f"{j.year:04d}/{j.month:02d}/{j.day:02d}"
    return day.isoformat()


def month_ranges(today) -> list[tuple[Any, Any, Any]]:
    """(label, first day, last day) of this month so far and the last whole one, in the
    page's calendar (a Jalali month in Persian): a month-end report in one click."""
    if current_language() == "fa":
        j = jdatetime.date.fromgregorian(date=today)
        first = jdatetime.date(j.year, j.month, 1)
        last_end = first - jdatetime.timedelta(days=1)
        last_first = jdatetime.date(last_end.year, last_end.month, 1)
        this = first.togregorian()
        previous = (last_first.togregorian(), last_end.togregorian())
    else:
        this = today.replace(day=1)
        last_end = this - timedelta(days=1)
        previous = (last_end.replace(day=1), last_end)
    return [(_l("This month"), this, today), (_l("Last month"), *previous)]


def range_links() -> list[tuple[Any, str]]:
    """The month ranges as links to this report with its other filters kept."""
    args = {k: v for k, v in request.args.items() if k not in ("from", "to", "format")}
    return [(label, f"{request.path}?" + urlencode({**args, "from": date_input(start),
                                                    "to": date_input(end)}))
            for label, start, end in month_ranges(r.shop_today())]


@bp.context_processor
def report_helpers():
    return {"duration": duration, "percent": percent, "decimal": decimal, "cell": cell,
            "date_input": date_input, "REPORT_PAGES": PAGES, "range_links": range_links}


def _money_unit_value(rials: Optional[int]) -> Optional[float]:
    """Chart values in the unit prices are shown in (toman or rial)."""
    if rials is None:
        return None
    return rials / 10 if money_display() == "toman" else rials


# --- the pages --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    name: str
    title: Any
    groups: tuple = ()
    filters: tuple = ("branch", "technician", "service_type", "brand")
    default_group: Optional[str] = None


PAGES = {p.name: p for p in (
    Page("turnaround", _l("Turnaround"), r.TURNAROUND_GROUPS),
    Page("costs", _l("Cost and revenue"), r.COST_GROUPS, default_group="month"),
    Page("technicians", _l("Technicians"), (), ("branch", "service_type", "brand")),
    Page("surveys", _l("Surveys"), r.SURVEY_GROUPS, ("branch", "technician", "service_type")),
    Page("queue", _l("Queue"), (), ("branch",)),
    Page("sms", _l("SMS"), (), ("branch",)),
    Page("takings", _l("Takings"), r.TAKINGS_GROUPS, ("branch",), default_group="day"),
)}

GROUP_COLUMNS = [Column("key", _l("Group")), Column("key_label", _l("Group name"))]


def _timing_columns(median_label) -> list[Column]:
    return [Column("median_seconds", median_label, "seconds"),
            Column("p90_seconds", _l("90th percentile"), "seconds"),
            Column("mean_seconds", _l("Mean"), "seconds")]


TURNAROUND_COLUMNS = [
    *GROUP_COLUMNS, Column("stage", _l("Stage code")), Column("stage_label", _l("Stage")),
    Column("count", _l("Tickets"), "int"), *_timing_columns(_l("Median")),
]
COST_COLUMNS = [
    *GROUP_COLUMNS,
    Column("tickets", _l("Tickets admitted"), "int"), Column("estimates", _l("Estimates"), "int"),
    Column("approved", _l("Approved"), "int"),
    Column("awaiting", _l("Estimates waiting for an answer"), "int"),
    # of the estimates answered (approved or declined)
    Column("approval_rate", _l("Approval rate"), "ratio"),
    Column("finished", _l("Repaired"), "int"),
    # an estimate whose alternatives were not chosen between: at its lowest, and (the export's
    # column; the page shows "from ... to ...") at its highest
    Column("estimate_total", _l("Estimates total"), "money"),
    Column("estimate_total_max", _l("Estimates total, alternatives not chosen at their highest"),
           "money"),
    Column("final_total", _l("Billed total"), "money"),
    Column("parts_total", _l("Parts"), "money"), Column("labour_total", _l("Labour"), "money"),
    Column("accuracy", _l("Billed / estimated (repaired)"), "ratio"),
    # billed total / repaired tickets: the tickets admitted but not repaired are not in it
    Column("average_value", _l("Average bill per repaired ticket"), "money"),
    Column("paid_total", _l("Paid, less money given back"), "money"),
]
TECHNICIAN_COLUMNS = [
    Column("key", _l("User name")), Column("key_label", _l("Technician")),
    Column("finished", _l("Repairs finished"), "int"),
    Column("per_day", _l("Per day"), "float"), *_timing_columns(_l("Median repair time")),
    Column("returns", _l("Returns within warranty"), "int"),
    Column("return_rate", _l("Return rate"), "ratio"),
    Column("responses", _l("Survey answers"), "int"),
    Column("csat_mean", _l("Satisfaction (1-5)"), "float"),
]
SURVEY_COLUMNS = [
    *GROUP_COLUMNS,
    Column("delivered", _l("Delivered"), "int"), Column("responses", _l("Answers"), "int"),
    Column("response_rate", _l("Response rate"), "ratio"),
    Column("csat_mean", _l("Satisfaction (1-5)"), "float"), Column("nps", _l("NPS"), "float1"),
    Column("complaints", _l("Complaints"), "int"), Column("low_scores", _l("Low scores"), "int"),
]
FOLLOWUP_COLUMNS = [
    Column("ticket_number", _l("Ticket"), "digits"), Column("customer", _l("Customer")),
    Column("phone", _l("Phone")), Column("technician_label", _l("Technician")),
    Column("csat", _l("Satisfaction (1-5)"), "int"), Column("nps", _l("NPS"), "int"),
    Column("complaint", _l("Complaint"), "bool"), Column("comment", _l("Comment")),
    Column("followup_label", _l("Follow-up")),
    Column("delivered_at", _l("Delivered"), "datetime"),
    Column("answered_at", _l("Answered"), "datetime"),
]
QUEUE_COLUMNS = [
    Column("weekday", _l("Weekday (0 = Monday)"), "int"), Column("weekday_label", _l("Weekday")),
    Column("hour", _l("Hour"), "int"), Column("visits", _l("Visits"), "int"),
    Column("no_shows", _l("No-shows"), "int"), Column("mean_wait", _l("Mean wait"), "seconds"),
]
SMS_COLUMNS = [
    Column("event_label", _l("Event")), Column("status_label", _l("Status")),
    Column("reason", _l("Why not sent or not delivered")),
    Column("error_code", _l("Error code")), Column("messages", _l("Messages"), "int"),
    Column("segments", _l("Segments"), "int"),
]

TAKINGS_COLUMNS = [
    *GROUP_COLUMNS, Column("method", _l("Payment method code")),
    Column("method_label", _l("Paid by")), Column("handbacks", _l("Hand-backs paid"), "int"),
    Column("paid", _l("Paid"), "money"), Column("refunds", _l("Refunds"), "int"),
    Column("refunded", _l("Given back"), "money"),
    Column("amount", _l("Amount (paid less given back)"), "money"),
]
HANDBACK_COLUMNS = [
    Column("at", _l("Handed back"), "datetime"),
    Column("kind_label", _l("What")),
    Column("ticket_number", _l("Ticket"), "digits"),
    Column("customer", _l("Customer")), Column("staff_label", _l("Handed back by")),
    Column("method_label", _l("Paid by")), Column("due", _l("Amount due"), "money"),
    Column("amount", _l("Amount paid (given back: less than 0)"), "money"),
    Column("reason", _l("Why it was given back")),
]


# The intakes and hand-backs signed on paper instead of the screen (reports.signed_on_paper)
ON_PAPER_COLUMNS = [
    Column("at", _l("When"), "datetime"), Column("moment_label", _l("What")),
    Column("ticket_number", _l("Ticket"), "digits"), Column("customer", _l("Customer")),
    Column("staff_label", _l("By")), Column("reason", _l("Why not on the screen")),
]


def _options() -> dict:
    """What the filter form offers: branches, technicians, service types."""
    branches = db.session.execute(select(Branch.id, Branch.name).order_by(Branch.id)).all()
    technicians = db.session.execute(
        select(User.id, User.username, User.full_name).where(User.role == "technician")
        .order_by(User.username)).all()
    return {"branches": branches, "technicians": technicians,
            # every type the shop has had (a report may cover a retired one)
            "service_types": [(t["code"], settings.service_type_label(t["code"]))
                              for t in settings.service_types(active_only=False)]}


def _filters(page: Page) -> tuple[r.Filters, dict]:
    """The page's filters from the query string; on bad input, the defaults and the errors."""
    try:
        f = r.parse_filters(request.args, page.groups)
        errors = {}
    except ValidationError as exc:
        f = r.parse_filters({}, page.groups)
        errors = exc.fields
    if f.group_by is None and page.default_group:
        group = page.default_group
        if group == "month" and current_language() == "fa" and "jalali_month" in page.groups:
            group = "jalali_month"  # the months a Persian page speaks of (Azar, not December)
        f = r.with_group(f, group)
    return f, errors


# The filters an export records in the audit log besides its range (each cut to 80 characters).
EXPORT_FILTERS = ("branch", "technician", "service_type", "brand", "group_by", "table", "status")


def _export(name: str, f: r.Filters, columns, rows, fmt: str):
    """The report's table as a CSV or XLSX download; who exported what is audited (customers'
    names and phone numbers leave the shop in these files)."""
    # a report's second table (the hand-backs one by one, the follow-ups) has a name of its
    # own: the two downloads of one range must not overwrite each other
    table = request.args.get("table")
    part = f"{name}-{table}" if table and table.isidentifier() and len(table) <= 20 else name
    filename = f"{part}_{f.start.isoformat()}_{f.end.isoformat()}.{fmt}"
    if fmt == "csv":
        data, mimetype = to_csv(columns, rows), "text/csv"  # Flask adds the charset
    else:
        data = to_xlsx(columns, rows, title=str(PAGES[name].title),
                       rtl=current_language() == "fa")
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    filters = {k: v[:80] for k, v in request.args.items() if k in EXPORT_FILTERS and v}
    audit.log("report.export", obj=("report", name),
              after={"format": fmt, "from": f.start, "to": f.end, "rows": len(rows), **filters},
              commit=True)
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True,
                     download_name=filename)


def _rows(name: str, query) -> tuple[r.Filters, dict, list]:
    """The page's filters (on bad input, the defaults and the errors) and the rows
    ``query(filters)`` gives for them: on bad input the page says it shows the defaults, so it
    does (an export is refused until the filters are right)."""
    f, errors = _filters(PAGES[name])
    return f, errors, query(f)


def _page(name: str, columns, rows, f: r.Filters, errors: dict, **context):
    """The report page ``reports/<name>.html``, or its table exported (``?format=csv|xlsx``)."""
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx") and not errors:
        return _export(name, f, columns, rows, fmt)
    status = 422 if errors else 200
    return render_template(f"reports/{name}.html", page=PAGES[name], f=f, errors=errors,
                           columns=columns, rows=rows, options=_options(),
                           export_links=_export_links(), group_labels=r.GROUP_LABELS,
                           **context), status


def _export_links() -> dict:
    args = request.args.to_dict()
    args.pop("format", None)
    links = {}
    for fmt in ("csv", "xlsx"):
        links[fmt] = request.path + "?" + urlencode({**args, "format": fmt})
    return links


# --- charts: data for Chart.js, built here so tests can read it -----------------------------

def chart(kind: str, labels: list, datasets: list[dict], y_title: str = "",
          stacked: bool = False) -> dict:
    return {"type": kind, "labels": [str(x) for x in labels],
            "datasets": [{"label": str(d["label"]), "data": d["data"],
                          **({"axis": d["axis"]} if d.get("axis") else {})} for d in datasets],
            "yTitle": str(y_title), "stacked": stacked}


def _hours(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds / 3600, 2)


def _x_axis(rows: list[dict], f: r.Filters) -> tuple[list, list]:
    """(keys, labels) of a chart's groups: grouped by period, every period of the range, the
    empty ones too (else the bars of days or months apart stand side by side, as if
    consecutive); otherwise the groups the rows have."""
    if f.group_by in r.PERIODS:
        plist = r.periods(f.group_by, f.start, f.end, f.week_start)
        return [p.key for p in plist], [p.label for p in plist]
    groups = list(dict.fromkeys((row["key"], row["key_label"]) for row in rows))
    return [key for key, _label in groups], [label or key or "–" for key, label in groups]


def turnaround_chart(rows: list[dict], f: r.Filters) -> dict:
    if f.group_by in r.PERIODS:
        keys, labels = _x_axis(rows, f)
        medians = {(x["key"], x["stage"]): x["median_seconds"] for x in rows}
        stages = [s for s in r.STAGES if s != "queue_wait"]
        datasets = [{"label": r.STAGE_LABELS[s],  # no median in a period without tickets
                     "data": [_hours(medians.get((k, s))) for k in keys]} for s in stages]
        return chart("line", labels, datasets, _("Median, hours"))
    if f.group_by:
        totals = [row for row in rows if row["stage"] == "total"]
        return chart("bar", [row["key_label"] or row["key"] or "–" for row in totals],
                     [{"label": _("Median total, hours"),
                       "data": [_hours(row["median_seconds"]) for row in totals]}],
                     _("Hours"))
    return chart("bar", [row["stage_label"] for row in rows],
                 [{"label": _("Median"), "data": [_hours(x["median_seconds"]) for x in rows]},
                  {"label": _("90th percentile"),
                   "data": [_hours(x["p90_seconds"]) for x in rows]}], _("Hours"))


def costs_chart(rows: list[dict], f: r.Filters) -> dict:
    keys, labels = _x_axis(rows, f)
    by_key = {row["key"]: row for row in rows}

    def money(name):  # nothing admitted in a period: 0
        return [_money_unit_value(by_key[k][name] if k in by_key else 0) for k in keys]
    return chart("bar", labels, [
        {"label": _("Estimates total"), "data": money("estimate_total")},
        {"label": _("Billed total"), "data": money("final_total")},
        {"label": _("Parts"), "data": money("parts_total")},
        {"label": _("Labour"), "data": money("labour_total")},
    ], money_unit_word())


def takings_chart(rows: list[dict], f: r.Filters) -> dict:
    """The amount of each group, a bar stacked by payment method (0 on a day nothing was
    taken)."""
    keys, labels = _x_axis(rows, f)
    methods = list(dict.fromkeys((row["method"], row["method_label"]) for row in rows))
    amounts = {(row["key"], row["method"]): row["amount"] for row in rows}
    return chart("bar", labels,
                 [{"label": label,
                   "data": [_money_unit_value(amounts.get((key, method), 0)) for key in keys]}
                  for method, label in methods], money_unit_word(), stacked=True)


def technicians_chart(daily: dict) -> dict:
    return chart("bar", [p.label for p in daily["periods"]],
                 [{"label": name, "data": counts} for name, counts in daily["series"].items()],
                 _("Repairs finished"), stacked=True)


def survey_chart(rows: list[dict], f: r.Filters) -> dict:
    keys, labels = _x_axis(rows, f)
    by_key = {row["key"]: row for row in rows}
    # no deliveries in a period: no score and no rate (a gap in the line, not a 0)
    found = [by_key.get(k, {}) for k in keys]
    kind = "line" if f.group_by in r.PERIODS else "bar"
    return chart(kind, labels, [
        {"label": _("Satisfaction (1-5)"), "data": [x.get("csat_mean") for x in found]},
        # on an axis of its own (0 to 100): beside a 1-5 score on one axis, the score's
        # bars were too short to read
        {"label": _("Response rate, %"), "axis": "y2",
         "data": [None if x.get("response_rate") is None
                  else round(x["response_rate"] * 100, 1) for x in found]},
    ])


def weekday_order() -> list[int]:
    """Python weekdays in the order of the shop's week: Saturday first in Persian."""
    start = 5 if current_language() == "fa" else 0
    return [(start + i) % 7 for i in range(7)]


def weekday_labels() -> dict:
    return {0: _("Monday"), 1: _("Tuesday"), 2: _("Wednesday"), 3: _("Thursday"),
            4: _("Friday"), 5: _("Saturday"), 6: _("Sunday")}


def heatmap(cells: list[dict]) -> dict:
    """The queue heatmap as a grid: weekdays (shop order) by the hours that had visits, each
    cell with its count and a heat class 0-5 (CSS, no inline styles)."""
    hours = sorted({c["hour"] for c in cells}) or list(range(9, 21))
    peak = max((c["visits"] for c in cells), default=0)
    by = {(c["weekday"], c["hour"]): c for c in cells}
    labels = weekday_labels()
    grid = []
    for wd in weekday_order():
        row = []
        for hour in hours:
            c = by.get((wd, hour))
            visits = c["visits"] if c else 0
            heat = 0 if not visits or not peak else 1 + min(4, int(5 * visits / (peak + 1)))
            row.append({"visits": visits, "no_shows": c["no_shows"] if c else 0,
                        "mean_wait": c["mean_wait"] if c else None, "heat": heat})
        grid.append({"weekday": wd, "label": labels[wd], "cells": row})
    return {"hours": hours, "rows": grid}


# --- views -------------------------------------------------------------------------------------

def dashboard_data(branch_id: Optional[int] = None) -> dict:
    """Everything the dashboard shows (the page embeds it; /reports/dashboard.json refreshes
    it): counts, the turnaround and satisfaction trends of the last 12 weeks."""
    counts = r.dashboard_counts(branch_id)
    trend = r.trend_filters(12, branch_id)
    turn = r.turnaround(trend, stages=("repair", "total"))
    sat = r.survey(trend)
    periods = r.periods("week", trend.start, trend.end, trend.week_start)
    labels = [p.label for p in periods]

    def series(rows, pick):
        by_key = {}
        for row in rows:
            by_key.setdefault(row["key"], []).append(row)
        return [pick(by_key.get(p.key, [])) for p in periods]

    def median(stage):
        return lambda rows: next((_hours(x["median_seconds"]) for x in rows
                                  if x["stage"] == stage), None)

    state_labels = [str(STATE_LABELS[s]) for s in r.OPEN_STATES]
    return {
        "counts": counts,
        "charts": {
            "states": chart("bar", state_labels, [{"label": _("Open tickets"), "data": [
                counts["states"][s] for s in r.OPEN_STATES]}]),
            "turnaround": chart("line", labels, [
                {"label": _("Median total, hours"), "data": series(turn, median("total"))},
                {"label": _("Median repair, hours"), "data": series(turn, median("repair"))},
            ], _("Hours")),
            "satisfaction": chart("line", labels, [
                {"label": _("Satisfaction (1-5)"),
                 "data": series(sat, lambda rows: rows[0]["csat_mean"] if rows else None)},
            ]),
        },
    }


@bp.get("/")
@require("reports.view")
def dashboard():
    branch_id = request.args.get("branch", type=int)
    data = dashboard_data(branch_id)
    late_count, late = settings.late_list(branch_id)
    return render_template("reports/dashboard.html", data=data, labels=STATE_LABELS,
                           late=late, late_count=late_count, limits=settings.time_limits(),
                           refresh_seconds=REFRESH_SECONDS, options=_options(),
                           branch_id=branch_id, page=None)


@bp.get("/dashboard.json")
@require("reports.view")
def dashboard_json():
    data = dashboard_data(request.args.get("branch", type=int))
    counts = data["counts"]
    # The numbers as the page shows them, so the script only swaps text.
    shown = {k: format_number(counts[k]) for k in ("open", "overdue", "intakes", "deliveries",
                                                   "waiting")}
    shown.update({f"state-{s}": format_number(n) for s, n in counts["states"].items()})
    return jsonify({**data, "shown": shown})


@bp.get("/turnaround")
@require("reports.view")
def turnaround():
    f, errors, rows = _rows("turnaround", r.turnaround)
    return _page("turnaround", TURNAROUND_COLUMNS, rows, f, errors,
                 chart_data=turnaround_chart(rows, f))


@bp.get("/costs")
@require("reports.view")
def costs():
    f, errors, rows = _rows("costs", r.costs)
    return _page("costs", COST_COLUMNS, rows, f, errors,
                 chart_data=costs_chart(rows, f))


@bp.get("/technicians")
@require("reports.view")
def technicians():
    f, errors, rows = _rows("technicians", r.technicians)
    daily = (r.technician_daily(f) if request.args.get("format") is None
             else {"periods": [], "series": {}})
    return _page("technicians", TECHNICIAN_COLUMNS, rows, f, errors,
                 chart_data=technicians_chart(daily),
                 warranty_days=settings.get("warranty_days"))


@bp.get("/surveys")
@require("reports.view")
def surveys():
    f, errors = _filters(PAGES["surveys"])
    status = request.args.get("status") or None
    if status not in (None, *r.FOLLOWUP_STATUSES):
        errors = {**errors, "status": _("Unknown follow-up status.")}
        status = None
    if request.args.get("table") == "followups":
        rows = r.survey_followups(f, status)
        return _page("surveys", FOLLOWUP_COLUMNS, rows, f, errors)
    rows = r.survey(f)
    followups = r.survey_followups(f, status)
    return _page("surveys", SURVEY_COLUMNS, rows, f, errors,
                 chart_data=survey_chart(rows, f), followups=followups, status=status,
                 followup_statuses=r.FOLLOWUP_STATUSES, followup_labels=r.FOLLOWUP_LABELS,
                 can_followup=can(current_user, "reports.followup"))


@bp.post("/surveys/<int:response_id>/followup")
@require("reports.followup")
def set_followup(response_id: int):
    r.set_followup_status(response_id, request.form.get("status", ""), by=current_user)
    flash(_("Follow-up updated."), "success")
    # Back to the list the manager was on, never to another site.
    target = local_path(request.form.get("next")) or ""
    if not target.startswith("/reports/"):
        target = url_for("reports.surveys")
    return redirect(target)


@bp.get("/queue")
@require("reports.view")
def queue():
    f, errors, cells = _rows("queue", r.queue_heatmap)
    labels = weekday_labels()
    for c in cells:
        c["weekday_label"] = str(labels[c["weekday"]])
    summary = (r.queue_summary(f) if request.args.get("format") is None
               else None)
    return _page("queue", QUEUE_COLUMNS, cells, f, errors,
                 grid=heatmap(cells), summary=summary)


@bp.get("/sms")
@require("reports.view")
def sms():
    f, errors, rows = _rows("sms", r.sms)
    events = sms_templates.event_labels()
    for row in rows:  # the codes stay for the summary; people read the words
        row["event_label"] = str(events.get(row["event"], row["event"]))
        row["status_label"] = str(NOTIFICATION_LABELS.get(row["status"], row["status"]))
        row["reason"] = str(sms_reasons.explain_group(row["status"], row["error_code"],
                                                      row["note"]) or "") \
            if row["status"] in ("failed", "undelivered", "cancelled") else ""
    summary = r.sms_summary(rows)
    # the failures by reason, in the shop's words (the provider's code beside, small)
    failures = {}
    for (status, code, note), n in summary["failures"].items():
        reason = str(sms_reasons.explain_group(status, code, note))
        group = failures.setdefault(reason, {"reason": reason, "codes": [], "messages": 0})
        group["messages"] += n
        if code and code not in group["codes"]:
            group["codes"].append(code)
    failures = sorted(failures.values(), key=lambda g: (-g["messages"], g["reason"]))
    chart_data = chart("bar", [g["reason"] for g in failures] or ["–"],
                       [{"label": _("Failed messages"),
                         "data": [g["messages"] for g in failures] or [0]}])
    return _page("sms", SMS_COLUMNS, rows, f, errors, summary=summary,
                 chart_data=chart_data, failures=failures)


@bp.get("/takings")
@require("reports.view")
def takings():
    f, errors = _filters(PAGES["takings"])
    if request.args.get("table") == "handbacks":
        exported = request.args.get("format") in ("csv", "xlsx")
        rows = r.handbacks(f, limit=None if exported else r.HANDBACKS_SHOWN)
        return _page("takings", HANDBACK_COLUMNS, rows, f, errors,
                     cut=len(rows) == r.HANDBACKS_SHOWN and not exported)
    if request.args.get("table") == "on_paper":  # signed on paper instead of the screen
        exported = request.args.get("format") in ("csv", "xlsx")
        rows = r.signed_on_paper(f, limit=None if exported else r.ON_PAPER_SHOWN)
        return _page("takings", ON_PAPER_COLUMNS, rows, f, errors, on_paper_table=True,
                     cut=len(rows) == r.ON_PAPER_SHOWN and not exported)
    rows = r.takings(f)
    return _page("takings", TAKINGS_COLUMNS, rows, f, errors, summary=r.takings_summary(rows),
                 totals=r.handback_totals(f), chart_data=takings_chart(rows, f),
                 on_paper=r.signed_on_paper_count(f))


@bp.cli.command("rebuild-stages")
def rebuild_stages():
    """Recompute every ticket's stage rows from the event log (after repairing data by hand;
    the lifecycle keeps them current otherwise): flask --app wsgi reports rebuild-stages"""
    from .. import stages
    stages.rebuild()
    db.session.commit()
    count = db.session.scalar(select(db.func.count()).select_from(stages.TicketStage))
    click.echo(f"stage rows rebuilt: {count}")
