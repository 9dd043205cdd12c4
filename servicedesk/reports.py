"""Reports as SQL (issue 6): the database aggregates, Python only formats.

Every report is one SQL statement over an indexed range, returning plain rows (dicts); the same
statement runs on SQLite and PostgreSQL and gives the same numbers:

- Ranges are shop-time-zone dates, both inclusive, turned into a half-open UTC interval here
  (an event at 21:00 UTC on the 1st is on the 2nd in Tehran).
- Percentiles are PostgreSQL's ``percentile_cont`` (linear interpolation between the two
  nearest ranks), computed with ``ROW_NUMBER``/``COUNT`` windows and exact integer rank
  arithmetic, since SQLite has no ordered-set aggregates.
- Periods are computed in SQL without a time-zone database: months and Jalali months by a
  CASE over their UTC starts (worked out here with zoneinfo and jdatetime), days, weeks and
  hours from the epoch plus the shop's UTC offset (a CASE when the range crosses a change).
- Turnaround reads ``ticket_stages`` (one row per closed stage, see ``servicedesk.stages``),
  never the event log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Mapping, Optional

import jdatetime
from babel.dates import format_date as babel_format_date
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import Date, bindparam, select, text

from . import audit, devices, settings, signatures
from . import validation as v
from .errors import NotFound, ValidationError
from .extensions import db
from .i18n import (current_language, format_datetime, format_money, format_number,
                   list_separator, localize_digits, parse_date, shop_timezone)
from .lifecycle import PAYMENT_METHODS
from .models import Branch, SurveyResponse, TicketEvent, User
from .models._types import UTCDateTime
from .models.stages import STAGES
from .visits import queue_day

STAGE_LABELS = {
    "queue_wait": _l("Queue wait"),
    "intake": _l("Intake"),
    "diagnosis": _l("Diagnosis"),
    "approval": _l("Customer's approval"),
    "repair": _l("Repair (without parts waits)"),
    "waiting_parts": _l("Waiting for parts"),
    "pickup": _l("Pickup"),
    "total": _l("Total (admit to delivery)"),
}

GROUP_LABELS = {
    "branch": _l("Branch"), "technician": _l("Technician"), "service_type": _l("Service type"),
    "brand": _l("Brand"), "day": _l("Day"), "week": _l("Week"), "month": _l("Month"),
    "jalali_month": _l("Jalali month"), "staff": _l("Staff"),
}
PERIODS = ("day", "week", "month", "jalali_month")
TURNAROUND_GROUPS = ("branch", "technician", "service_type", "brand", "week", "month",
                     "jalali_month")
COST_GROUPS = ("technician", "month", "jalali_month", "service_type", "branch", "brand")
TAKINGS_GROUPS = ("day", "staff", "branch", "week", "month", "jalali_month")
SURVEY_GROUPS = ("technician", "branch", "service_type", "week", "month", "jalali_month")

# Follow-up of low survey scores and complaints, set by the manager. No status yet = open.
FOLLOWUP_STATUSES = ("open", "contacted", "done")
FOLLOWUP_LABELS = {"open": _l("Open"), "contacted": _l("Customer contacted"),
                   "done": _l("Done")}
LOW_CSAT = 2  # a satisfaction of 1 or 2 out of 5 is a low score
DETRACTOR_NPS = 6  # NPS 0-6: detractors; 9-10: promoters

OPEN_STATES = ("intake", "diagnosis", "estimate", "repair", "waiting_parts", "ready")
# At the repair bench, the work promised not done yet: what the ticket page and the workbench
# call late (services.workbench.BENCH_STATES); a device ready on time and not collected keeps
# no promise waiting, and one not sent to repair yet is on the time-limit list.
PROMISE_STATES = ("diagnosis", "estimate", "repair", "waiting_parts")
MAX_DAYS = 1830  # five years: the longest range a report accepts
DEFAULT_DAYS = 30

_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --- filters ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """What a report covers: shop-local dates (inclusive) and optional dimensions."""

    start: date
    end: date
    branch_id: Optional[int] = None
    technician_id: Optional[int] = None
    service_type: Optional[str] = None
    brand: Optional[str] = None
    group_by: Optional[str] = None
    # Python weekday a week starts on: the shop's (shop_week_start), whoever reads the report.
    week_start: int = 5

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """The range as a half-open UTC interval [lo, hi)."""
        return local_midnight(self.start), local_midnight(self.end + timedelta(days=1))

    def query_args(self) -> dict:
        """The filters as URL query arguments (ISO dates, ids), for links and bookmarks."""
        args = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        for name, value in (("branch", self.branch_id), ("technician", self.technician_id),
                            ("service_type", self.service_type), ("brand", self.brand),
                            ("group_by", self.group_by)):
            if value not in (None, ""):
                args[name] = value
        return args


def local_midnight(day: date) -> datetime:
    """The UTC instant the shop's day ``day`` starts."""
    return datetime.combine(day, time(0), tzinfo=shop_timezone()).astimezone(timezone.utc)


def shop_today(now: Optional[datetime] = None) -> date:
    return (now or datetime.now(timezone.utc)).astimezone(shop_timezone()).date()


# Report ranges stay within these days: a calendar (Jalali weeks, the day after the range) exists
# around them, and no shop has tickets outside them.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _as_id(raw: str) -> Optional[int]:
    """``raw`` as a row id when it is written as one (ASCII digits that fit the column)."""
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) <= v.MAX_ID else None


def branch_named(raw: str) -> Optional[int]:
    """The id of the branch ``raw`` names, by id, code or name; None when none is."""
    number = _as_id(raw)
    query = (select(Branch.id).where(Branch.id == number) if number is not None
             else select(Branch.id).where((Branch.code == raw) | (Branch.name == raw)))
    return db.session.scalar(query)


def parse_filters(args: Mapping[str, Any], groups: tuple = (), default_days: int = DEFAULT_DAYS,
                  today: Optional[date] = None) -> Filters:
    """Filters from query arguments (``from``, ``to``, ``branch``, ``technician``,
    ``service_type``, ``brand``, ``group_by``). Dates may be ISO or Jalali, in any digits;
    ``branch`` is an id, code or name; ``technician`` an id or user name. Missing dates give
    the last ``default_days`` days. Raises ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    today = today or shop_today()

    def a_date(name: str) -> Optional[date]:
        raw = (args.get(name) or "").strip()
        if not raw:
            return None
        try:
            day = parse_date(raw)
        except ValueError as exc:
            errors[name] = str(exc)
            return None
        if not FIRST_DAY <= day <= LAST_DAY:  # the SQL and the period labels need a calendar
            errors[name] = _("%(date)s is not a valid date.", date=localize_digits(raw))
            return None
        return day

    def a_text(name: str, max_len: int) -> Optional[str]:
        try:
            return v.text(args.get(name), max_len=max_len, required=False)
        except ValueError as exc:
            errors[name] = str(exc)
            return None

    end = a_date("to") or today
    start = a_date("from") or end - timedelta(days=default_days - 1)
    if not errors:
        if start > end:
            errors["from"] = _("The start date is after the end date.")
        elif (end - start).days + 1 > MAX_DAYS:
            errors["to"] = _("A report covers at most %(days)s days.",
                             days=format_number(MAX_DAYS))

    branch_id = None
    raw = a_text("branch", 200)
    if raw:
        branch_id = branch_named(raw)
        if branch_id is None:
            errors["branch"] = _("No such branch.")

    technician_id = None
    raw = a_text("technician", 200)
    if raw:
        number = _as_id(raw)
        query = (select(User.id).where(User.id == number) if number is not None
                 else select(User.id).where(User.username == raw))
        technician_id = db.session.scalar(query)
        if technician_id is None:
            errors["technician"] = _("No such user.")

    service_type = (args.get("service_type") or "").strip() or None
    known = tuple(t["code"] for t in settings.service_types(active_only=False))
    if service_type and service_type not in known:
        errors["service_type"] = _("Must be one of: %(options)s.", options=", ".join(known))
    brand = devices.brand_name((a_text("brand", 200) or "")[:60]) or None  # as stored
    group_by = (args.get("group_by") or "").strip() or None
    if group_by and not groups:  # "Must be one of: ." would offer an empty list
        errors["group_by"] = _("This report is not grouped.")
    elif group_by and group_by not in groups:
        errors["group_by"] = _("Must be one of: %(options)s.", options=", ".join(groups))
    if errors:
        raise ValidationError(_("Some filters are not valid."), fields=errors)
    return Filters(start, end, branch_id, technician_id, service_type, brand, group_by,
                   week_start=shop_week_start())


def shop_week_start() -> int:
    """The weekday the shop's weeks start on: Saturday in a Persian shop, Monday in an English
    one. The shop's language decides, not the reader's: a manager reading in English and the
    desk reading in Persian count the same weeks."""
    return 5 if current_app.config.get("SERVICEDESK_LOCALE", "fa") == "fa" else 0


def shop_month() -> str:
    """The months the shop counts in: Jalali in a Persian shop, Gregorian in an English one
    (the shop's language, as for its weeks; a page follows its reader's)."""
    return "jalali_month" if current_app.config.get("SERVICEDESK_LOCALE", "fa") == "fa" \
        else "month"


# --- SQL building -------------------------------------------------------------------------------

class _Query:
    """One statement under construction: SQL text plus typed bound parameters."""

    def __init__(self) -> None:
        self.dialect = db.session.get_bind().dialect.name
        self.params: dict[str, Any] = {}
        self.types: dict[str, Any] = {}

    def bind(self, value: Any, type_: Any = None) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        if type_ is not None:
            self.types[name] = type_
        return ":" + name

    def ts(self, value: datetime) -> str:
        return self.bind(value, UTCDateTime())

    def epoch(self, column: str) -> str:
        """Whole seconds since 1970 of a stored UTC timestamp (truncated)."""
        if self.dialect == "postgresql":
            return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"
        return f"CAST(strftime('%s', {column}) AS INTEGER)"

    def seconds(self, start: str, end: str) -> str:
        return f"({self.epoch(end)} - {self.epoch(start)})"

    def json_text(self, column: str, key: str) -> str:
        """The text value of ``key`` (a fixed name, never user input) in a JSON column."""
        if self.dialect == "postgresql":
            return f"({column} ->> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    def json_integer(self, column: str, key: str) -> str:
        """The integer value of ``key`` in a JSON column (NULL when absent)."""
        return f"CAST({self.json_text(column, key)} AS BIGINT)"

    def json_item_text(self, column: str, key: str, index: int, field: str) -> str:
        """The text value of ``field`` in item ``index`` of the list ``key`` (fixed names and
        a number, never user input) in a JSON column; NULL when the list is shorter."""
        if self.dialect == "postgresql":
            return f"({column} -> '{key}' -> {int(index)} ->> '{field}')"
        return f"json_extract({column}, '$.{key}[{int(index)}].{field}')"

    def local_epoch(self, column: str, lo: datetime, hi: datetime) -> str:
        """Seconds since 1970 of the shop's wall-clock time at ``column`` (within [lo, hi))."""
        segments = _offset_segments(lo, hi)
        epoch = self.epoch(column)
        if len(segments) == 1:
            return f"({epoch} + {segments[0][1]})"
        whens = " ".join(f"WHEN {epoch} < {start} THEN {prev}"
                         for (start, _off), (_s, prev) in zip(segments[1:], segments))
        return f"({epoch} + CASE {whens} ELSE {segments[-1][1]} END)"

    def rows(self, sql: str, **column_types) -> list[dict]:
        """Run the statement; ``column_types`` types result columns (e.g. timestamps)."""
        if self.dialect == "postgresql":
            # A report sorts up to millions of durations: in memory, and without paying for
            # JIT compilation on every run (for this transaction only).
            work_mem = current_app.config.get("REPORTS_WORK_MEM", "64MB")
            db.session.execute(text("SELECT set_config('work_mem', :w, true), "
                                    "set_config('jit', 'off', true)"), {"w": work_mem})
        stmt = text(sql).bindparams(*(bindparam(n, type_=t) for n, t in self.types.items()))
        if column_types:
            stmt = stmt.columns(**column_types)
        return [dict(r._mapping) for r in db.session.execute(stmt, self.params)]


def _offset_segments(lo: datetime, hi: datetime) -> list[tuple[int, int]]:
    """[(epoch second a UTC offset starts, offset seconds)] of the shop's time zone over
    [lo, hi), the first from the start of time: one entry unless the range crosses a change
    (Tehran has had none since 2022)."""
    tz = shop_timezone()

    def offset(at: datetime) -> int:
        return int(at.astimezone(tz).utcoffset().total_seconds())

    at = lo - timedelta(days=1)
    segments = [(-(2 ** 62), offset(at))]
    while at < hi + timedelta(days=1):
        nxt = at + timedelta(days=1)
        if offset(nxt) != segments[-1][1]:
            a, b = at, nxt  # the change is in (a, b]: narrow it to the second
            while (b - a) > timedelta(seconds=1):
                mid = a + (b - a) / 2
                a, b = (mid, b) if offset(mid) == offset(a) else (a, mid)
            segments.append((int((b - _EPOCH).total_seconds()), offset(nxt)))
        at = nxt
    return segments


@dataclass(frozen=True)
class Period:
    key: str  # raw: YYYY-MM-DD (day, week start), YYYY-MM (month, Jalali month)
    label: str  # for people, in the current language
    start: date


def _period_label(kind: str, start: date) -> str:
    fa = current_language() == "fa"
    if kind == "jalali_month":
        j = jdatetime.date.fromgregorian(date=start, locale="fa_IR" if fa else "en_US")
        return localize_digits(f"{j.strftime('%B')} {j.year}")
    if kind == "month":
        return localize_digits(babel_format_date(start, "MMMM y", locale="fa" if fa else "en"))
    return format_datetime(start, "date")


def periods(kind: str, start: date, end: date, week_start: int = 5) -> list[Period]:
    """The periods of ``kind`` that overlap [start, end], in order (the first may start
    before ``start``)."""
    out: list[Period] = []
    if kind == "day":
        day = start
        while day <= end:
            out.append(Period(day.isoformat(), _period_label(kind, day), day))
            day += timedelta(days=1)
    elif kind == "week":
        day = start - timedelta(days=(start.weekday() - week_start) % 7)
        while day <= end:
            out.append(Period(day.isoformat(), _period_label(kind, day), day))
            day += timedelta(days=7)
    elif kind == "month":
        day = start.replace(day=1)
        while day <= end:
            out.append(Period(day.strftime("%Y-%m"), _period_label(kind, day), day))
            day = (day + timedelta(days=32)).replace(day=1)
    elif kind == "jalali_month":
        j = jdatetime.date.fromgregorian(date=start)
        j = jdatetime.date(j.year, j.month, 1)
        while j.togregorian() <= end:
            day = j.togregorian()
            out.append(Period(f"{j.year:04d}-{j.month:02d}", _period_label(kind, day), day))
            j = jdatetime.date(j.year + (j.month == 12), j.month % 12 + 1, 1)
    else:
        raise ValueError(kind)
    return out


def _period_sql(q: _Query, kind: str, column: str, f: Filters) -> tuple[str, list[Period]]:
    """SQL giving each row the index of its period in ``periods(kind, ...)``."""
    plist = periods(kind, f.start, f.end, f.week_start)
    if kind in ("day", "week"):
        lo, hi = f.bounds()
        first = (plist[0].start - _EPOCH_DATE).days
        step = 1 if kind == "day" else 7
        return f"(({q.local_epoch(column, lo, hi)} / 86400 - {first}) / {step})", plist
    if len(plist) == 1:
        return "0", plist
    whens = " ".join(f"WHEN {column} < {q.ts(local_midnight(p.start))} THEN {i}"
                     for i, p in enumerate(plist[1:]))
    return f"(CASE {whens} ELSE {len(plist) - 1} END)", plist


def _stats_ctes(source: str, keys: tuple[str, ...], dialect: str) -> str:
    """A CTE ``stats`` over ``source`` (columns ``keys`` and ``v``): per group, ``n``,
    ``mean_v``, ``median_v`` and ``p90_v``.

    PostgreSQL computes the percentiles with ``percentile_cont`` (one sort for both, the
    fastest way it has); SQLite, which has no ordered-set aggregates, with the window
    emulation below, which gives the same values (tests run both on the same data, and the
    emulation is also checked against percentile_cont on PostgreSQL)."""
    if dialect == "postgresql":
        cols = "".join(f"{k}, " for k in keys)
        group = f"GROUP BY {', '.join(keys)}" if keys else ""
        return (f"pct AS (SELECT {cols}COUNT(*) AS n, AVG(v) AS mean_v, "
                "percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY v) AS pc "
                f"FROM {source} {group}), "
                f"stats AS (SELECT {cols}n, mean_v, pc[1] AS median_v, pc[2] AS p90_v "
                "FROM pct)")
    return _window_stats_ctes(source, keys)


def _window_stats_ctes(source: str, keys: tuple[str, ...]) -> str:
    """``percentile_cont`` with window functions (CTEs ``ranked`` and ``stats``).

    For fraction p the position is h = p * (n - 1) (0-based) and the value is
    v[floor h] + (h - floor h) * (v[floor h + 1] - v[floor h]). With p = a/b,
    floor h = a*(n-1) / b and h - floor h = (a*(n-1) % b) / b in integer arithmetic, so the
    rows picked and their weights are exact on every database."""
    cols = "".join(f"{k}, " for k in keys)
    part = f"PARTITION BY {', '.join(keys)}" if keys else ""
    group = f"GROUP BY {cols}n, total" if keys else "GROUP BY n, total"

    def pick(a: int, b: int, name: str) -> str:
        lo = f"MAX(CASE WHEN rn = {a} * (n - 1) / {b} + 1 THEN v END)"
        hi = f"MAX(CASE WHEN rn = {a} * (n - 1) / {b} + 2 THEN v END)"
        return f"{lo} + COALESCE({hi} - {lo}, 0) * (({a} * (n - 1)) % {b}) / {float(b)} AS {name}"

    # One window for the three (same partition, order and whole-partition frame): one sort.
    window = f"({part} ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    return (
        f"ranked AS (SELECT {cols}v, ROW_NUMBER() OVER w AS rn, COUNT(*) OVER w AS n, "
        f"SUM(v) OVER w AS total FROM {source} WINDOW w AS {window}), "
        f"stats AS (SELECT {cols}n, total * 1.0 / n AS mean_v, {pick(1, 2, 'median_v')}, "
        f"{pick(9, 10, 'p90_v')} FROM ranked "
        f"WHERE rn IN ((n - 1) / 2 + 1, (n - 1) / 2 + 2, 9 * (n - 1) / 10 + 1, "
        f"9 * (n - 1) / 10 + 2) {group})"
    )


def _num(value, digits: int = 1) -> Optional[float]:
    return None if value is None else round(float(value), digits)


def _dimension_filters(q: _Query, f: Filters, alias: str, *, technician: bool = True,
                       device: Optional[str] = None) -> list[str]:
    """WHERE conditions for the dimension filters, on a table ``alias`` with the
    denormalised columns (``ticket_stages``) or on ``tickets`` (with ``device`` the devices
    alias for the brand)."""
    cond = []
    if f.branch_id is not None:
        cond.append(f"{alias}.branch_id = {q.bind(f.branch_id)}")
    if technician and f.technician_id is not None:
        cond.append(f"{alias}.technician_id = {q.bind(f.technician_id)}")
    if f.service_type:
        cond.append(f"{alias}.service_type = {q.bind(f.service_type)}")
    if f.brand:
        cond.append(f"{device or alias}.brand = {q.bind(f.brand)}")
    return cond


def _key_columns(group_by: Optional[str], key: str = "k") -> tuple[str, str]:
    """(SELECT columns naming the group, JOIN that brings them) for a grouped report."""
    if group_by == "technician":
        return ("u.username AS key_name, u.full_name AS key_label",
                f"LEFT JOIN users u ON u.id = {key}")
    if group_by == "staff":  # the key is the user name
        return ("u.username AS key_name, u.full_name AS key_label",
                f"LEFT JOIN users u ON u.username = {key}")
    if group_by == "branch":
        return ("b.code AS key_name, b.name AS key_label",
                f"LEFT JOIN branches b ON b.id = {key}")
    return "NULL AS key_name, NULL AS key_label", ""


def _group_key(group_by: Optional[str], row: dict, plist: Optional[list[Period]]) -> tuple:
    """(key, label) of a result row: the raw key an API returns and what people read."""
    k = row.get("k")
    if group_by in PERIODS:
        p = plist[int(k)]
        return p.key, p.label
    if group_by == "technician":
        if not k:
            return None, _("Unassigned")
        return row["key_name"], row["key_label"] or row["key_name"]
    if group_by == "branch":
        return row["key_name"], row["key_label"]
    if group_by == "staff":  # imported history names people who have no account
        return k, row["key_label"] or k
    if group_by == "service_type":  # in the shop's words (its own types, its renames)
        return k, settings.service_type_label(k)
    if group_by is None:
        return None, ""
    return k, k


# --- turnaround ---------------------------------------------------------------------------------

def turnaround(f: Filters, stages: tuple[str, ...] = STAGES) -> list[dict]:
    """Per stage (and group): count, median, p90 and mean seconds of the stages whose both
    ends fall in the range. Every stage appears for every group, with count 0 and nulls when
    no ticket completed it. Grouped by period, both ends fall in the period too: a period's
    row is what that period (within the range) asked alone gives."""
    q = _Query()
    lo, hi = f.bounds()
    plist = None
    same_period = []
    if f.group_by in PERIODS:
        key, plist = _period_sql(q, f.group_by, "s.ended_at", f)
        started, _plist = _period_sql(q, f.group_by, "s.started_at", f)
        # Grouped by the end alone, a stage begun in the period before would count in this
        # one's row though not when this period is asked alone.
        same_period.append(f"{started} = {key}")
    else:
        key = {None: "0", "branch": "s.branch_id",
               "technician": "COALESCE(s.technician_id, 0)",
               "service_type": "s.service_type", "brand": "s.brand"}[f.group_by]
    stages = tuple(s for s in stages if s in STAGES)
    lo_p, hi_p = q.ts(lo), q.ts(hi)
    # Both ends in the range; ended_at first, the index's range column.
    where = " AND ".join([f"s.ended_at >= {lo_p}", f"s.ended_at < {hi_p}",
                          f"s.started_at >= {lo_p}", f"s.started_at < {hi_p}",
                          *same_period, *_dimension_filters(q, f, "s")])
    label_cols, label_join = _key_columns(f.group_by, "st.k")
    if q.dialect == "postgresql":
        # One branch per stage, each an index range scan sorted by percentile_cont: the
        # planner runs them side by side in parallel workers (Parallel Append), where one
        # GROUP BY over all stages would sort every duration in one process.
        stats = "stats AS (SELECT k, stage, n, mean_v, pc[1] AS median_v, pc[2] AS p90_v " \
                "FROM (" + " UNION ALL ".join(
                    f"SELECT {key} AS k, '{stage}' AS stage, COUNT(*) AS n, "
                    "AVG(s.seconds) AS mean_v, percentile_cont(ARRAY[0.5, 0.9]) "
                    "WITHIN GROUP (ORDER BY s.seconds) AS pc FROM ticket_stages s "
                    f"WHERE s.stage = '{stage}' AND {where} GROUP BY 1"
                    for stage in stages) + ") pct)"
    else:
        stage_list = ", ".join(f"'{s}'" for s in stages)
        stats = (f"src AS (SELECT {key} AS k, s.stage AS stage, s.seconds AS v "
                 f"FROM ticket_stages s WHERE s.stage IN ({stage_list}) AND {where}), "
                 f"{_stats_ctes('src', ('k', 'stage'), q.dialect)}")
    sql = (f"WITH {stats} "
           f"SELECT st.k AS k, st.stage AS stage, st.n AS n, st.mean_v AS mean_v, "
           f"st.median_v AS median_v, st.p90_v AS p90_v, {label_cols} "
           f"FROM stats st {label_join}")
    found = q.rows(sql)
    # Shape the rows: every stage of every group, in the stages' order.
    by_group: dict = {}
    for row in found:
        key_raw, label = _group_key(f.group_by, row, plist)
        by_group.setdefault((key_raw, label), {})[row["stage"]] = row
    if not by_group:
        by_group = {(None, ""): {}} if f.group_by is None else {}
    out = []
    order = {p.key: i for i, p in enumerate(plist or [])}
    for (key_raw, label), cells in sorted(
            by_group.items(), key=lambda kv: (order.get(kv[0][0], 0), str(kv[0][1] or ""))):
        for stage in stages:
            row = cells.get(stage)
            out.append({"key": key_raw, "key_label": label, "stage": stage,
                        "stage_label": str(STAGE_LABELS[stage]),
                        "count": int(row["n"]) if row else 0,
                        "median_seconds": _num(row["median_v"]) if row else None,
                        "p90_seconds": _num(row["p90_v"]) if row else None,
                        "mean_seconds": _num(row["mean_v"]) if row else None})
    return out


# --- cost and revenue ---------------------------------------------------------------------------

def costs(f: Filters) -> list[dict]:
    """Per group, over the tickets admitted in the range: tickets, quoted (estimates),
    approved, declined, awaiting (quoted, not answered yet), finished; estimate, final, parts
    and labour totals (rials); the estimate total of the finished ones (for accuracy) and what
    was paid. The approval rate is of the estimates answered: one still waiting for the
    customer is neither approved nor declined yet."""
    q = _Query()
    lo, hi = f.bounds()
    group_by = f.group_by or "month"
    plist = None
    if group_by in PERIODS:
        key, plist = _period_sql(q, group_by, "a.at", f)
    else:
        key = {"technician": "COALESCE(t.technician_id, 0)", "service_type": "t.service_type",
               "branch": "t.branch_id", "brand": "d.brand"}[group_by]
    label_cols, label_join = _key_columns(group_by, "g.k")
    # The device only when its brand is asked for (a join over every ticket of the range).
    devices = ("JOIN devices d ON d.id = t.device_id "
               if f.brand or group_by == "brand" else "")
    lo_p = q.ts(lo)
    # the lines of the ticket's last estimate
    estimate = "cl.stage = 'estimate' AND cl.estimate_version = adm.ev"
    where = ["a.event = 'admit'", f"a.at >= {lo_p}", f"a.at < {q.ts(hi)}",
             *_dimension_filters(q, f, "t", device="d")]
    sql = (
        "WITH adm AS ("
        "SELECT t.id AS ticket_id, t.estimate_version AS ev, "
        # what the customers paid and kept: less what was given back since
        "COALESCE(t.amount_paid, 0) - COALESCE(t.amount_refunded, 0) AS paid, "
        f"{key} AS k, "
        "CASE WHEN t.estimate_version > 0 THEN 1 ELSE 0 END AS quoted, "
        "CASE WHEN ap.end_event = 'approve' THEN 1 ELSE 0 END AS approved, "
        "CASE WHEN ap.end_event = 'decline' THEN 1 ELSE 0 END AS declined, "
        "CASE WHEN t.estimate_version > 0 AND ap.id IS NULL THEN 1 ELSE 0 END AS awaiting, "
        "CASE WHEN fin.id IS NOT NULL THEN 1 ELSE 0 END AS finished "
        "FROM ticket_events a JOIN tickets t ON t.id = a.ticket_id "
        f"{devices}"
        # answered (approved or declined), repaired: the ticket's approval and repair rows
        # (one index probe each)
        "LEFT JOIN ticket_stages ap ON ap.ticket_id = t.id AND ap.stage = 'approval' "
        "LEFT JOIN ticket_stages fin ON fin.ticket_id = t.id AND fin.stage = 'repair' "
        f"WHERE {' AND '.join(where)}), "
        # Tickets per group from the admissions, money per group from their cost lines: two
        # hash aggregates, no per-ticket grouping of the lines.
        "counts AS (SELECT adm.k AS k, COUNT(*) AS tickets, SUM(adm.quoted) AS estimates, "
        "SUM(adm.approved) AS approved, SUM(adm.declined) AS declined, "
        "SUM(adm.awaiting) AS awaiting, SUM(adm.finished) AS finished, "
        "SUM(COALESCE(adm.paid, 0)) AS paid_total FROM adm GROUP BY adm.k), "
        "money AS (SELECT adm.k AS k, "
        f"SUM(CASE WHEN {estimate} THEN cl.qty * cl.unit_price ELSE 0 END) AS estimate_total, "
        "SUM(CASE WHEN cl.stage = 'final' THEN cl.qty * cl.unit_price ELSE 0 END) "
        "AS final_total, "
        "SUM(CASE WHEN cl.stage = 'final' AND cl.kind = 'part' "
        "THEN cl.qty * cl.unit_price ELSE 0 END) AS parts_total, "
        "SUM(CASE WHEN cl.stage = 'final' AND cl.kind = 'labour' "
        "THEN cl.qty * cl.unit_price ELSE 0 END) AS labour_total, "
        f"SUM(CASE WHEN adm.finished = 1 AND {estimate} THEN cl.qty * cl.unit_price ELSE 0 END) "
        "AS finished_estimate_total "
        "FROM adm JOIN cost_lines cl ON cl.ticket_id = adm.ticket_id GROUP BY adm.k), "
        # An estimate with alternatives none of which was chosen (not answered yet, or
        # declined): its lines are the common ones only; it counts from its lowest to its
        # highest alternative (each one's total has the common lines in it).
        f"{_unchosen_alternatives(q)}, "
        "g AS (SELECT c.k AS k, c.tickets AS tickets, c.estimates AS estimates, "
        "c.approved AS approved, c.declined AS declined, c.awaiting AS awaiting, "
        "c.finished AS finished, c.paid_total AS paid_total, "
        "m.estimate_total AS estimate_total, m.final_total AS final_total, "
        "m.parts_total AS parts_total, m.labour_total AS labour_total, "
        "m.finished_estimate_total AS finished_estimate_total, "
        "COALESCE(m.estimate_total, 0) + COALESCE(x.add_min, 0) AS estimate_total_min, "
        "COALESCE(m.estimate_total, 0) + COALESCE(x.add_max, 0) AS estimate_total_max "
        "FROM counts c LEFT JOIN money m ON m.k = c.k LEFT JOIN alts x ON x.k = c.k) "
        f"SELECT g.*, {label_cols} FROM g {label_join}")
    out = []
    for row in q.rows(sql):
        key_raw, label = _group_key(group_by, row, plist)
        r = {"key": key_raw, "key_label": label}
        for name in ("tickets", "estimates", "approved", "declined", "awaiting", "finished",
                     "estimate_total_min", "estimate_total_max", "final_total",
                     "parts_total", "labour_total", "finished_estimate_total", "paid_total"):
            r[name] = int(row[name] or 0)
        # the estimates' total: an estimate whose alternatives are not chosen counts with its
        # lowest (estimate_total_max: with its highest; the same without such estimates)
        r["estimate_total"] = r["estimate_total_min"]
        # of the estimates answered: one the customer has not answered yet is no refusal
        r["approval_rate"] = _ratio(r["approved"], r["approved"] + r["declined"])
        # Accuracy: what the finished repairs were billed against what they were quoted.
        r["accuracy"] = _ratio(r["final_total"], r["finished_estimate_total"])
        # to the whole toman (10 rials): an average's odd rials read as "۹۸۵٬۷۱۴٫۳ تومان"
        r["average_value"] = (int(round(r["final_total"] / r["finished"], -1))
                              if r["finished"] else None)
        out.append(r)
    order = {p.key: i for i, p in enumerate(plist or [])}
    out.sort(key=lambda r: (order.get(r["key"], 0), str(r["key_label"] or r["key"] or "")))
    return out


def _unchosen_alternatives(q: "_Query") -> str:
    """The ``alts`` CTE over ``adm``: per group, what the quoted tickets not approved whose
    last estimate offers alternatives add to the sum of their estimate lines (the common ones)
    at the lowest (``add_min``) and at the highest (``add_max``) of their alternatives. One
    probe of each such ticket's events; an approved one's estimate lines have its choice."""
    totals = [f"CAST({q.json_item_text('qe.data', 'alternatives', i, 'total')} AS BIGINT)"
              for i in range(v.MAX_ALTERNATIVES)]
    # two alternatives at least: a missing third or fourth stands as the first
    totals = totals[:2] + [f"COALESCE({t}, {totals[0]})" for t in totals[2:]]
    lowest, highest = ("LEAST", "GREATEST") if q.dialect == "postgresql" else ("MIN", "MAX")
    common = f"COALESCE({q.json_integer('qe.data', 'total')}, 0)"
    return (
        "alts AS (SELECT adm.k AS k, "
        f"SUM({lowest}({', '.join(totals)}) - {common}) AS add_min, "
        f"SUM({highest}({', '.join(totals)}) - {common}) AS add_max "
        "FROM adm JOIN ticket_events qe ON qe.ticket_id = adm.ticket_id "
        "AND qe.event = 'quote' "
        "WHERE adm.quoted = 1 AND adm.approved = 0 "
        f"AND {q.json_integer('qe.data', 'estimate_version')} = adm.ev "
        f"AND {totals[0]} IS NOT NULL GROUP BY adm.k)")


def _ratio(a, b, digits: int = 4) -> Optional[float]:
    return round(a / b, digits) if b else None


# --- technicians --------------------------------------------------------------------------------

def technicians(f: Filters, warranty_days: Optional[int] = None) -> list[dict]:
    """Per technician, over the repairs finished in the range (by finish date): how many,
    per day, the repair time (median, p90, mean seconds, without parts waits), how many came
    back within the warranty period (the same customer admitted the same brand and model again
    by the last day of the warranty the delivery receipt printed: the shop's date of the
    delivery plus the warranty days) and their customers' satisfaction."""
    q = _Query()
    lo, hi = f.bounds()
    days = (warranty_days if warranty_days is not None
            else int(settings.get("warranty_days")))
    # Shop-local dates, as the receipt's "under warranty until" date: a device back in the
    # afternoon of that day is within it, whatever the hour of the delivery. The returns came
    # after the range's repairs, up to now: the offsets cover that span.
    until = max(hi, datetime.now(timezone.utc))
    returned = (f"({q.local_epoch('ret.ended_at', lo, until)} / 86400 "
                f"- {q.local_epoch('ret.started_at', lo, until)} / 86400 <= {q.bind(days)})"
                if days > 0 else "1 = 0")
    where = ["s.stage = 'repair'", f"s.ended_at >= {q.ts(lo)}", f"s.ended_at < {q.ts(hi)}",
             *_dimension_filters(q, f, "s")]
    sql = (
        "WITH rep AS (SELECT s.ticket_id AS ticket_id, COALESCE(s.technician_id, 0) AS k, "
        f"s.seconds AS v FROM ticket_stages s WHERE {' AND '.join(where)}), "
        f"{_stats_ctes('rep', ('k',), q.dialect)}, "
        # A return: the 'returned' row written when the customer brought the same brand
        # and model back (see servicedesk.stages), within the warranty period.
        "extra AS (SELECT rep.k AS k, "
        f"SUM(CASE WHEN {returned} THEN 1 ELSE 0 END) AS returns, "
        "COUNT(sr.id) AS responses, AVG(sr.csat * 1.0) AS csat_mean "
        "FROM rep LEFT JOIN ticket_stages ret ON ret.ticket_id = rep.ticket_id "
        "AND ret.stage = 'returned' "
        "LEFT JOIN survey_responses sr ON sr.ticket_id = rep.ticket_id "
        "GROUP BY rep.k) "
        "SELECT st.k AS k, st.n AS n, st.mean_v AS mean_v, st.median_v AS median_v, "
        "st.p90_v AS p90_v, e.returns AS returns, e.responses AS responses, "
        "e.csat_mean AS csat_mean, u.username AS key_name, u.full_name AS key_label "
        "FROM stats st JOIN extra e ON e.k = st.k LEFT JOIN users u ON u.id = st.k")
    out = []
    for row in q.rows(sql):
        key_raw, label = _group_key("technician", row, None)
        finished = int(row["n"])
        out.append({"key": key_raw, "key_label": label, "finished": finished,
                    "per_day": round(finished / f.days, 2),
                    "median_seconds": _num(row["median_v"]),
                    "p90_seconds": _num(row["p90_v"]), "mean_seconds": _num(row["mean_v"]),
                    "returns": int(row["returns"] or 0),
                    "return_rate": _ratio(int(row["returns"] or 0), finished),
                    "responses": int(row["responses"] or 0),
                    "csat_mean": _num(row["csat_mean"], 2)})
    out.sort(key=lambda r: (-r["finished"], str(r["key"] or "")))
    return out


def technician_daily(f: Filters) -> dict:
    """Repairs finished per technician per day (by the shop's finish date), or per week when
    the range is longer than two months: {"periods": [Period], "series": {technician: [n]}}."""
    q = _Query()
    lo, hi = f.bounds()
    kind = "day" if f.days <= 62 else "week"
    bucket, plist = _period_sql(q, kind, "s.ended_at", f)
    where = ["s.stage = 'repair'", f"s.ended_at >= {q.ts(lo)}", f"s.ended_at < {q.ts(hi)}",
             *_dimension_filters(q, f, "s")]
    sql = ("WITH x AS (SELECT COALESCE(s.technician_id, 0) AS k, "
           f"{bucket} AS p FROM ticket_stages s WHERE {' AND '.join(where)}), "
           "g AS (SELECT x.k AS k, x.p AS p, COUNT(*) AS n FROM x GROUP BY x.k, x.p) "
           "SELECT g.k AS k, g.p AS p, g.n AS n, u.username AS key_name, "
           "u.full_name AS key_label FROM g LEFT JOIN users u ON u.id = g.k")
    series: dict[str, list[int]] = {}
    for row in q.rows(sql):
        _key, label = _group_key("technician", row, None)
        series.setdefault(label, [0] * len(plist))[int(row["p"])] = int(row["n"])
    return {"kind": kind, "periods": plist, "series": dict(sorted(series.items()))}


# --- surveys ------------------------------------------------------------------------------------

def survey(f: Filters) -> list[dict]:
    """Per group, over the tickets delivered in the range: deliveries, survey responses,
    response rate, mean satisfaction (1-5), NPS (-100..100), complaints and low scores."""
    q = _Query()
    lo, hi = f.bounds()
    plist = None
    if f.group_by in PERIODS:
        key, plist = _period_sql(q, f.group_by, "e.at", f)
    else:
        key = {None: "0", "technician": "COALESCE(t.technician_id, 0)",
               "branch": "t.branch_id", "service_type": "t.service_type"}[f.group_by]
    where = ["e.event = 'deliver'", f"e.at >= {q.ts(lo)}", f"e.at < {q.ts(hi)}",
             *_dimension_filters(q, f, "t", device="d")]
    label_cols, label_join = _key_columns(f.group_by, "g.k")
    sql = (
        f"WITH x AS (SELECT {key} AS k, sr.id AS rid, sr.csat AS csat, sr.nps AS nps, "
        "sr.complaint AS complaint FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
        f"{'JOIN devices d ON d.id = t.device_id ' if f.brand else ''}"
        "LEFT JOIN survey_responses sr ON sr.ticket_id = e.ticket_id "
        f"WHERE {' AND '.join(where)}), "
        "g AS (SELECT x.k AS k, COUNT(*) AS delivered, COUNT(x.rid) AS responses, "
        "AVG(x.csat * 1.0) AS csat_mean, "
        "SUM(CASE WHEN x.nps >= 9 THEN 1 ELSE 0 END) AS promoters, "
        f"SUM(CASE WHEN x.nps <= {DETRACTOR_NPS} THEN 1 ELSE 0 END) AS detractors, "
        "COUNT(x.nps) AS nps_answers, "
        "SUM(CASE WHEN x.complaint THEN 1 ELSE 0 END) AS complaints, "
        f"SUM(CASE WHEN {_low_score_sql('x')} THEN 1 ELSE 0 END) AS low_scores "
        "FROM x GROUP BY x.k) "
        f"SELECT g.*, {label_cols} FROM g {label_join}")
    out = []
    for row in q.rows(sql):
        key_raw, label = _group_key(f.group_by, row, plist)
        answers = int(row["nps_answers"] or 0)
        out.append({
            "key": key_raw, "key_label": label, "delivered": int(row["delivered"]),
            "responses": int(row["responses"] or 0),
            "response_rate": _ratio(int(row["responses"] or 0), int(row["delivered"])),
            "csat_mean": _num(row["csat_mean"], 2),
            "nps": (round((int(row["promoters"]) - int(row["detractors"])) * 100 / answers, 1)
                    if answers else None),
            "complaints": int(row["complaints"] or 0), "low_scores": int(row["low_scores"] or 0),
        })
    order = {p.key: i for i, p in enumerate(plist or [])}
    out.sort(key=lambda r: (order.get(r["key"], 0), str(r["key_label"] or r["key"] or "")))
    if not out and f.group_by is None:
        out = [{"key": None, "key_label": "", "delivered": 0, "responses": 0,
                "response_rate": None, "csat_mean": None, "nps": None, "complaints": 0,
                "low_scores": 0}]
    return out


def _low_score_sql(alias: str) -> str:
    return (f"({alias}.csat <= {LOW_CSAT} OR {alias}.nps <= {DETRACTOR_NPS} "
            f"OR {alias}.complaint)")


def survey_followups(f: Filters, status: Optional[str] = None, limit: int = 500) -> list[dict]:
    """Low scores and complaints of the tickets delivered in the range, newest first, with
    their comments and follow-up status (``open`` when the manager has not set one)."""
    q = _Query()
    lo, hi = f.bounds()
    where = ["e.event = 'deliver'", f"e.at >= {q.ts(lo)}", f"e.at < {q.ts(hi)}",
             _low_score_sql("sr"), *_dimension_filters(q, f, "t", device="d")]
    if status:
        where.append(f"COALESCE(sr.followup_status, 'open') = {q.bind(status)}")
    sql = (
        "SELECT sr.id AS id, sr.csat AS csat, sr.nps AS nps, sr.comment AS comment, "
        "sr.complaint AS complaint, COALESCE(sr.followup_status, 'open') AS followup_status, "
        "sr.created_at AS answered_at, t.id AS ticket_id, t.number AS ticket_number, "
        "c.name AS customer, c.phone AS phone, u.username AS technician, "
        "u.full_name AS technician_name, e.at AS delivered_at "
        "FROM ticket_events e JOIN survey_responses sr ON sr.ticket_id = e.ticket_id "
        "JOIN tickets t ON t.id = e.ticket_id JOIN devices d ON d.id = t.device_id "
        "JOIN customers c ON c.id = t.customer_id LEFT JOIN users u ON u.id = t.technician_id "
        f"WHERE {' AND '.join(where)} ORDER BY sr.created_at DESC, sr.id DESC "
        f"LIMIT {int(limit)}")
    rows = q.rows(sql, answered_at=UTCDateTime(), delivered_at=UTCDateTime())
    for row in rows:
        row["complaint"] = bool(row["complaint"])
        # the technician as the page names them (the download's column; the API keeps both)
        row["technician_label"] = row["technician_name"] or row["technician"]
        row["followup_label"] = str(FOLLOWUP_LABELS.get(row["followup_status"],
                                                        row["followup_status"]))
    return rows


def set_followup_status(response_id: int, status: str,
                        by: Optional[User] = None) -> SurveyResponse:
    """The manager's follow-up of a low score or complaint: ``open``, ``contacted`` or
    ``done``, recorded in the audit log (who, when, from what) in the same commit."""
    if status not in FOLLOWUP_STATUSES:
        raise ValidationError(_("Some fields are not valid."),
                              fields={"status": _("Must be one of: %(options)s.",
                                                  options=", ".join(FOLLOWUP_STATUSES))})
    response = db.session.get(SurveyResponse, response_id)
    if response is None:
        raise NotFound(_("No such survey response."))
    before = response.followup_status or "open"
    response.followup_status = status
    if status != before:
        audit.log("survey.followup", obj=response, before={"followup": before},
                  after={"followup": status}, actor=by)
    db.session.commit()
    return response


# --- queue --------------------------------------------------------------------------------------

def queue_heatmap(f: Filters) -> list[dict]:
    """Visits issued in the range per weekday (0 = Monday) and hour of the shop's day:
    visits, no-shows and the mean wait until called (seconds)."""
    q = _Query()
    lo, hi = f.bounds()
    local = q.local_epoch("v.issued_at", lo, hi)
    where = [f"v.issued_at >= {q.ts(lo)}", f"v.issued_at < {q.ts(hi)}"]
    if f.branch_id is not None:
        where.append(f"v.branch_id = {q.bind(f.branch_id)}")
    sql = (
        f"SELECT (x.le / 86400 + 3) % 7 AS weekday, (x.le % 86400) / 3600 AS hour, "
        "COUNT(*) AS visits, SUM(x.no_show) AS no_shows, AVG(x.wait * 1.0) AS mean_wait "
        f"FROM (SELECT {local} AS le, "
        "CASE WHEN v.status = 'no_show' THEN 1 ELSE 0 END AS no_show, "
        f"CASE WHEN v.called_at IS NOT NULL THEN {q.seconds('v.issued_at', 'v.called_at')} "
        f"END AS wait FROM visits v WHERE {' AND '.join(where)}) x "
        "GROUP BY (x.le / 86400 + 3) % 7, (x.le % 86400) / 3600")
    rows = q.rows(sql)
    for row in rows:
        row["weekday"], row["hour"] = int(row["weekday"]), int(row["hour"])
        row["visits"], row["no_shows"] = int(row["visits"]), int(row["no_shows"] or 0)
        row["mean_wait"] = _num(row["mean_wait"])
    rows.sort(key=lambda r: (r["weekday"], r["hour"]))
    return rows


def queue_summary(f: Filters) -> dict:
    """Visits issued in the range: how many, served, no-shows, still waiting, and the wait
    until called (count, median, p90, mean seconds)."""
    q = _Query()
    lo, hi = f.bounds()
    where = [f"v.issued_at >= {q.ts(lo)}", f"v.issued_at < {q.ts(hi)}"]
    if f.branch_id is not None:
        where.append(f"v.branch_id = {q.bind(f.branch_id)}")
    cond = " AND ".join(where)
    sql = (
        f"WITH src AS (SELECT {q.seconds('v.issued_at', 'v.called_at')} AS v FROM visits v "
        f"WHERE {cond} AND v.called_at IS NOT NULL), {_stats_ctes('src', (), q.dialect)}, "
        "counts AS (SELECT COUNT(*) AS visits, "
        "SUM(CASE WHEN v.status = 'served' THEN 1 ELSE 0 END) AS served, "
        "SUM(CASE WHEN v.status = 'no_show' THEN 1 ELSE 0 END) AS no_shows, "
        "SUM(CASE WHEN v.status = 'waiting' THEN 1 ELSE 0 END) AS waiting "
        f"FROM visits v WHERE {cond}) "
        "SELECT c.visits AS visits, c.served AS served, c.no_shows AS no_shows, "
        "c.waiting AS waiting, st.n AS n, st.median_v AS median_v, st.p90_v AS p90_v, "
        "st.mean_v AS mean_v FROM counts c LEFT JOIN stats st ON 1 = 1")
    row = q.rows(sql)[0]
    visits = int(row["visits"] or 0)
    return {"visits": visits, "served": int(row["served"] or 0),
            "no_shows": int(row["no_shows"] or 0), "waiting": int(row["waiting"] or 0),
            "no_show_rate": _ratio(int(row["no_shows"] or 0), visits),
            "called": int(row["n"] or 0), "median_wait_seconds": _num(row["median_v"]),
            "p90_wait_seconds": _num(row["p90_v"]), "mean_wait_seconds": _num(row["mean_v"])}


# --- takings: the till ----------------------------------------------------------------------

def _till_rows(q: _Query, f: Filters, staff: Optional[str] = None,
               paid_only: bool = True, parts: bool = False) -> str:
    """The money that went through the desks in the range, one row each, as a subquery: the
    hand-backs (their ``deliver`` events; only those paid for unless ``paid_only`` is false)
    and the refunds (``refund`` records: money given back, a negative amount), of the branch
    asked for and, with ``staff``, made by that user. Columns: id, at, ticket_id, actor_id,
    actor_name, reason, kind ('handback' or 'refund'), amount (signed rials), due, method,
    payments (a split hand-back's parts, as JSON text), part. With ``parts``, a hand-back
    whose payment was split (``payments``) is one row per part, its amount and method, the
    first part numbered 0 (so counting the rows of part 0 counts each hand-back once);
    without, one row per hand-back, its whole amount (``method`` empty for a split one)."""
    lo, hi = f.bounds()
    common = [f"e.at >= {q.ts(lo)}", f"e.at < {q.ts(hi)}"]
    if f.branch_id is not None:
        common.append(f"t.branch_id = {q.bind(f.branch_id)}")
    if staff is not None:
        common.append(f"e.actor_name = {q.bind(staff)}")
    paid = q.json_integer("e.data", "amount_paid")
    handbacks = ["e.event = 'deliver'", *common] + ([f"{paid} > 0"] if paid_only else [])
    refunds = ["e.event = 'refund'", *common]
    method = f"COALESCE({q.json_text('e.data', 'payment_method')}, '')"
    columns = "e.id AS id, e.at AS at, e.ticket_id AS ticket_id, e.actor_id AS actor_id, " \
              f"e.actor_name AS actor_name, {q.json_text('e.data', 'reason')} AS reason, "
    due = q.json_integer('e.data', 'amount_due')
    source = "FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
    if parts:
        selects = []
        for i in range(len(PAYMENT_METHODS)):  # each method once: at most that many parts
            part_method = q.json_item_text("e.data", "payments", i, "method")
            part_amount = f"CAST({q.json_item_text('e.data', 'payments', i, 'amount')} " \
                          "AS BIGINT)"
            where = handbacks if i == 0 else [*handbacks, f"{part_method} IS NOT NULL"]
            selects.append(
                f"SELECT {columns}'handback' AS kind, "
                f"{f'COALESCE({part_amount}, {paid})' if i == 0 else part_amount} AS amount, "
                f"{due if i == 0 else 'NULL'} AS due, "
                f"{f'COALESCE({part_method}, {method})' if i == 0 else part_method} AS method, "
                f"NULL AS payments, {i} AS part {source}WHERE {' AND '.join(where)}")
        handback_rows = " UNION ALL ".join(selects)
    else:
        handback_rows = (
            f"SELECT {columns}'handback' AS kind, {paid} AS amount, {due} AS due, "
            f"{method} AS method, {q.json_text('e.data', 'payments')} AS payments, 0 AS part "
            f"{source}WHERE {' AND '.join(handbacks)}")
    return (
        f"({handback_rows} "
        "UNION ALL "
        f"SELECT {columns}'refund' AS kind, -{q.json_integer('e.data', 'amount')} AS amount, "
        f"NULL AS due, {method} AS method, NULL AS payments, 0 AS part "
        f"{source}WHERE {' AND '.join(refunds)})")


def _payment(raw: Optional[str]) -> tuple[str, str]:
    """(code, words) of a hand-back's payment method: ``""`` and "Not recorded" for none or
    one the desk no longer offers."""
    code = raw if raw in PAYMENT_METHODS else ""
    return code, str(PAYMENT_METHODS.get(code, _("Not recorded")))


def _parts(raw) -> list[dict]:
    """A split hand-back's parts as the database gave them (JSON text, or already a list)."""
    if not raw:
        return []
    parts = json.loads(raw) if isinstance(raw, str) else raw
    return [{"method": p.get("method"), "amount": int(p.get("amount") or 0)}
            for p in parts if isinstance(p, dict)]


def parts_in_words(parts: list[dict]) -> str:
    """A split payment as the desk reads it: "Cash 500,000 toman, Card reader 250,000
    toman" (in the shop's language and money)."""
    return list_separator().join(
        _("%(method)s %(amount)s", method=_payment(p["method"])[1],
          amount=format_money(p["amount"])) for p in parts)


def parts_for_print(parts: list[dict]) -> Markup:
    """:func:`parts_in_words` as a printed slip sets it, the same words: each figure and its
    unit word in one unbreakable piece (``slip-money``). At 58 mm a split hand-back's line
    wraps, and it broke between them ("2,550,000" ending a line, "toman" starting the next)."""
    words = Markup.escape(_("%(method)s %(amount)s"))
    return Markup(list_separator()).join(
        words % {"method": _payment(p["method"])[1],
                 "amount": Markup('<span class="slip-money">{}</span>').format(
                     format_money(p["amount"]))}
        for p in parts)


def known_staff(name: str) -> bool:
    """A user name the takings can be counted by: an account's, or one a hand-back names
    (imported history, a removed account)."""
    return db.session.scalar(select(User.id).where(User.username == name)) is not None \
        or db.session.scalar(select(TicketEvent.id).where(TicketEvent.actor_name == name)
                             .limit(1)) is not None


def takings(f: Filters, staff: Optional[str] = None) -> list[dict]:
    """What the desks took in the range: per group (a day by default, a week, a month, the
    staff member who handed the device back or gave money back, the branch) and payment
    method, how many paid hand-backs and what they paid, how many refunds and what they gave
    back, and the amount the till holds for them (paid minus given back; rials), as each
    hand-back and refund recorded them. ``method`` is ``""`` where none was recorded (history,
    or an API call that did not say)."""
    q = _Query()
    group_by = f.group_by or "day"
    plist = None
    if group_by in PERIODS:
        key, plist = _period_sql(q, group_by, "m.at", f)
    else:
        key = {"staff": "m.actor_name", "branch": "t.branch_id"}[group_by]
    label_cols, label_join = _key_columns(group_by, "g.k")
    sql = (
        f"WITH paid AS (SELECT {key} AS k, m.method AS method, m.kind AS kind, "
        f"m.amount AS amount, m.part AS part FROM {_till_rows(q, f, staff, parts=True)} m "
        "JOIN tickets t ON t.id = m.ticket_id), "
        "g AS (SELECT k, method, "
        "SUM(CASE WHEN kind = 'handback' THEN 1 ELSE 0 END) AS n, "
        "SUM(CASE WHEN kind = 'handback' AND part = 0 THEN 1 ELSE 0 END) AS n_once, "
        "SUM(CASE WHEN kind = 'handback' THEN amount ELSE 0 END) AS paid, "
        "SUM(CASE WHEN kind = 'refund' THEN 1 ELSE 0 END) AS refunds, "
        "SUM(CASE WHEN kind = 'refund' THEN -amount ELSE 0 END) AS refunded "
        "FROM paid GROUP BY k, method) "
        f"SELECT g.*, {label_cols} FROM g {label_join}")
    methods = list(PAYMENT_METHODS)
    out = []
    for row in q.rows(sql):
        key_raw, label = _group_key(group_by, row, plist)
        method, method_label = _payment(row["method"])
        paid, refunded = int(row["paid"] or 0), int(row["refunded"] or 0)
        out.append({"key": key_raw, "key_label": label, "method": method,
                    "method_label": method_label, "handbacks": int(row["n"] or 0),
                    "paid": paid, "refunds": int(row["refunds"] or 0), "refunded": refunded,
                    "amount": paid - refunded,
                    # a hand-back split between methods counts under each of them, and
                    # once (under its first part's) here: the totals count hand-backs by it
                    "handbacks_once": int(row["n_once"] or 0)})
    order = {p.key: i for i, p in enumerate(plist or [])}
    out.sort(key=lambda r: (order.get(r["key"], 0), str(r["key_label"] or r["key"] or ""),
                            methods.index(r["method"]) if r["method"] else len(methods)))
    return out


TAKINGS_FIGURES = ("handbacks", "paid", "refunds", "refunded", "amount")


def takings_summary(rows: list[dict]) -> dict:
    """The ``takings`` rows added up: per payment method (every method, 0 when none was used,
    in the till's order; "" last, only when some were not recorded) and in all (each hand-back
    once, though split between methods)."""
    by_method = {m: {"method": m, "method_label": str(label),
                     **{k: 0 for k in TAKINGS_FIGURES}}
                 for m, label in PAYMENT_METHODS.items()}
    once = 0
    for row in rows:
        cell = by_method.setdefault(row["method"], {
            "method": row["method"], "method_label": row["method_label"],
            **{k: 0 for k in TAKINGS_FIGURES}})
        for k in TAKINGS_FIGURES:
            cell[k] += row[k]
        once += row.get("handbacks_once", row["handbacks"])
    # a hand-back paid partly in cash and partly by card is in both methods' counts, and
    # once in all
    return {"methods": list(by_method.values()),
            **{k: sum(c[k] for c in by_method.values()) for k in TAKINGS_FIGURES},
            "handbacks": once}


HANDBACKS_SHOWN = 1000  # on a page; an export has them all


def handbacks(f: Filters, staff: Optional[str] = None,
              limit: Optional[int] = HANDBACKS_SHOWN) -> list[dict]:
    """The hand-backs of the range one by one, in the order they were made, those with
    nothing to pay too, and the refunds among them (``kind`` 'refund', a negative amount):
    when, which ticket, whose, what was due (when recorded) and paid, how, and who handed the
    device back or gave the money back (to count a till against)."""
    q = _Query()
    sql = (
        "SELECT m.at AS at, m.kind AS kind, t.id AS ticket_id, t.number AS ticket_number, "
        "c.name AS customer, m.actor_name AS staff, u.full_name AS staff_name, "
        "m.amount AS amount, m.due AS due, m.method AS method, m.reason AS reason, "
        "m.payments AS payments "
        f"FROM {_till_rows(q, f, staff, paid_only=False)} m "
        "JOIN tickets t ON t.id = m.ticket_id "
        "JOIN customers c ON c.id = t.customer_id "
        "LEFT JOIN users u ON u.id = m.actor_id ORDER BY m.at, m.id"
        + (f" LIMIT {int(limit)}" if limit is not None else ""))
    rows = q.rows(sql, at=UTCDateTime())
    for row in rows:
        row["amount"] = int(row["amount"] or 0)
        row["due"] = None if row["due"] is None else int(row["due"])
        row["parts"] = _parts(row.pop("payments"))
        row["method"], label = _payment(row["method"])
        row["method_label"] = label if row["amount"] else ""
        if row["parts"]:  # split: each method with its amount
            row["method"] = "split"
            row["method_label"] = parts_in_words(row["parts"])
        # the till slip's: the same words, a figure never parted from its unit
        row["method_print"] = (parts_for_print(row["parts"]) if row["parts"]
                               else row["method_label"])
        row["staff_label"] = row["staff_name"] or row["staff"]
        row["kind_label"] = _("Refund") if row["kind"] == "refund" else _("Hand-back")
    return rows


def handback_totals(f: Filters, staff: Optional[str] = None) -> dict:
    """Beside the takings: every hand-back of the range, those with nothing to pay
    (``unpaid``: nothing was due, as for a device going back unrepaired or a warranty job; or,
    where the hand-back did not record what was due, nothing was paid), what was given off the
    amount due (a discount, a credit, a whole bill let off: due minus paid, where the
    hand-back recorded what was due) or taken beyond it, and the refunds (how many, and what
    they gave back)."""
    q = _Query()
    paid, due = "COALESCE(m.amount, 0)", "m.due"
    handback = "m.kind = 'handback'"
    # A bill let off entirely had something to pay: it is a credit, counted in the discounts.
    nothing_to_pay = f"({due} = 0 OR ({due} IS NULL AND {paid} = 0))"
    sql = (
        f"SELECT SUM(CASE WHEN {handback} THEN 1 ELSE 0 END) AS handbacks, "
        f"SUM(CASE WHEN {handback} AND {nothing_to_pay} THEN 1 ELSE 0 END) AS unpaid, "
        f"SUM(CASE WHEN {handback} AND {due} > {paid} THEN {due} - {paid} ELSE 0 END) "
        "AS discounts, "
        f"SUM(CASE WHEN {handback} AND {paid} > {due} THEN {paid} - {due} ELSE 0 END) "
        "AS beyond, "
        "SUM(CASE WHEN m.kind = 'refund' THEN 1 ELSE 0 END) AS refunds, "
        "SUM(CASE WHEN m.kind = 'refund' THEN -m.amount ELSE 0 END) AS refunded "
        f"FROM {_till_rows(q, f, staff, paid_only=False)} m")
    row = q.rows(sql)[0]
    return {k: int(row[k] or 0)
            for k in ("handbacks", "unpaid", "discounts", "beyond", "refunds", "refunded")}


ON_PAPER_SHOWN = 1000  # on a page; an export has them all


def _on_paper_sql(q: "_Query", f: Filters) -> tuple[str, str, str]:
    """The FROM and WHERE of the admits and hand-backs of the range whose customer signed the
    paper slip instead of the screen (servicedesk.signatures.PAPER_FIELD in the event's data),
    of the branch asked for, and the reason's expression."""
    lo, hi = f.bounds()
    reason = q.json_text("e.data", signatures.PAPER_FIELD)
    where = ["e.event IN ('admit', 'deliver')", f"{reason} IS NOT NULL",
             f"e.at >= {q.ts(lo)}", f"e.at < {q.ts(hi)}"]
    if f.branch_id is not None:
        where.append(f"t.branch_id = {q.bind(f.branch_id)}")
    return ("FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
            "JOIN customers c ON c.id = t.customer_id LEFT JOIN users u ON u.id = e.actor_id",
            f"WHERE {' AND '.join(where)}", reason)


def signed_on_paper(f: Filters, limit: Optional[int] = ON_PAPER_SHOWN) -> list[dict]:
    """The intakes and hand-backs of the range signed on the paper slip instead of the counter's
    screen, one by one in the order they were made: when, which, which ticket, whose, who let
    the screen go and why (how often a shop that asks for the screen goes without it)."""
    q = _Query()
    source, where, reason = _on_paper_sql(q, f)
    sql = ("SELECT e.at AS at, e.event AS event, t.id AS ticket_id, t.number AS ticket_number, "
           "c.name AS customer, e.actor_name AS staff, u.full_name AS staff_name, "
           f"{reason} AS reason "
           f"{source} {where} ORDER BY e.at, e.id"
           + (f" LIMIT {int(limit)}" if limit is not None else ""))
    rows = q.rows(sql, at=UTCDateTime())
    for row in rows:
        row["staff_label"] = row["staff_name"] or row["staff"]
        row["moment_label"] = _("Intake") if row["event"] == "admit" else _("Hand-back")
    return rows


def signed_on_paper_count(f: Filters) -> int:
    """How many intakes and hand-backs of the range were signed on paper instead of the
    screen (``signed_on_paper``)."""
    q = _Query()
    source, where, _reason = _on_paper_sql(q, f)
    return int(q.rows(f"SELECT COUNT(*) AS n {source} {where}")[0]["n"] or 0)


# --- SMS ----------------------------------------------------------------------------------------

SENT_STATUSES = ("sent", "delivered", "undelivered")  # the provider took them: billed
FAILED_STATUSES = ("failed", "undelivered")
REPORTED_STATUSES = ("delivered", "undelivered")  # the provider's delivery report came


# What tells failures (and cancellations) with one error code apart, grouped on: the delivery
# job's note for a cancelled message (a few fixed ones), and for a failed one whether it gave up
# after its attempts (its outcome unknown or not) or the panel answered without an id; the
# rest of a note (the attempts, the provider's words) would split the groups.
SMS_NOTE = (
    "CASE WHEN n.status = 'cancelled' THEN n.error_message "
    "WHEN n.status NOT IN ('failed', 'undelivered') THEN NULL "
    "WHEN n.error_message LIKE 'gave up after %outcome was unknown%' "
    "THEN 'gave up after all attempts; the last outcome was unknown' "
    "WHEN n.error_message LIKE 'gave up after %' THEN 'gave up after all attempts' "
    "WHEN n.error_message LIKE 'the SMS panel answered without a message id%' "
    "THEN 'the SMS panel answered without a message id' END")


def sms(f: Filters) -> list[dict]:
    """Messages written in the range per event, status, error code and note (``SMS_NOTE``):
    how many and their segments (what the provider bills)."""
    q = _Query()
    lo, hi = f.bounds()
    where = [f"n.created_at >= {q.ts(lo)}", f"n.created_at < {q.ts(hi)}"]
    join = ""
    if f.branch_id is not None:
        join = "JOIN tickets t ON t.id = n.ticket_id "
        where.append(f"t.branch_id = {q.bind(f.branch_id)}")
    sql = ("SELECT n.event AS event, n.status AS status, n.error_code AS error_code, "
           f"{SMS_NOTE} AS note, COUNT(*) AS messages, SUM(n.segments) AS segments "
           f"FROM notifications n {join}WHERE {' AND '.join(where)} "
           f"GROUP BY n.event, n.status, n.error_code, {SMS_NOTE}")
    rows = q.rows(sql)
    for row in rows:
        row["messages"], row["segments"] = int(row["messages"]), int(row["segments"] or 0)
    rows.sort(key=lambda r: (r["event"], r["status"], r["error_code"] or "", r["note"] or ""))
    return rows


def sms_summary(rows: list[dict]) -> dict:
    """Totals of the ``sms`` rows (a handful of groups, not messages): written, sent,
    delivered, failed, failures by error code (``by_error``; ``failures``: by status, code
    and note, what tells their reasons apart), the segments of the messages sent (what the
    provider bills: not those waiting, failed or cancelled), and how many delivery reports
    came (none: the backend does not report delivery, and there is no delivery rate)."""
    total = {"messages": 0, "sent": 0, "delivered": 0, "delivery_reports": 0, "failed": 0,
             "pending": 0, "segments": 0, "by_error": {}, "failures": {}}
    for row in rows:
        n = row["messages"]
        total["messages"] += n
        if row["status"] in SENT_STATUSES:
            total["sent"] += n
            total["segments"] += row["segments"]
        if row["status"] in REPORTED_STATUSES:
            total["delivery_reports"] += n
        if row["status"] == "delivered":
            total["delivered"] += n
        if row["status"] in FAILED_STATUSES:
            total["failed"] += n
            code = row["error_code"] or "-"
            total["by_error"][code] = total["by_error"].get(code, 0) + n
            key = (row["status"], row["error_code"], row["note"])
            total["failures"][key] = total["failures"].get(key, 0) + n
        if row["status"] in ("pending", "sending", "retry", "unknown"):
            total["pending"] += n
    total["delivery_rate"] = (_ratio(total["delivered"], total["sent"])
                              if total["delivery_reports"] else None)
    return total


# --- dashboard ----------------------------------------------------------------------------------

def dashboard_counts(branch_id: Optional[int] = None, now: Optional[datetime] = None) -> dict:
    """Open tickets per state, overdue ones (promised date passed, the work not done yet),
    today's intakes and deliveries and the people waiting in the queue now."""
    q = _Query()
    today = shop_today(now)
    lo, hi = local_midnight(today), local_midnight(today + timedelta(days=1))
    states = ", ".join(f"'{s}'" for s in OPEN_STATES)
    promise = ", ".join(f"'{s}'" for s in PROMISE_STATES)
    tb = te = vb = ""
    if branch_id is not None:
        tb = f" AND t.branch_id = {q.bind(branch_id)}"
        te = (" AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = e.ticket_id"
              f" AND t.branch_id = {q.bind(branch_id)})")
        vb = f" AND v.branch_id = {q.bind(branch_id)}"
    sql = (
        f"SELECT 'state' AS kind, t.state AS k, COUNT(*) AS n FROM tickets t "
        f"WHERE t.state IN ({states}){tb} GROUP BY t.state "
        f"UNION ALL SELECT 'overdue', NULL, COUNT(*) FROM tickets t WHERE t.state IN ({promise}) "
        f"AND t.promised_date < {q.bind(today, Date())}{tb} "
        "UNION ALL SELECT 'intakes', NULL, COUNT(*) FROM ticket_events e "
        f"WHERE e.event = 'admit' AND e.at >= {q.ts(lo)} AND e.at < {q.ts(hi)}{te} "
        "UNION ALL SELECT 'deliveries', NULL, COUNT(*) FROM ticket_events e "
        f"WHERE e.event = 'deliver' AND e.at >= {q.ts(lo)} AND e.at < {q.ts(hi)}{te} "
        "UNION ALL SELECT 'waiting', NULL, COUNT(*) FROM visits v "
        f"WHERE v.status = 'waiting' AND v.day = {q.bind(queue_day(now), Date())}{vb}")
    out = {"states": {s: 0 for s in OPEN_STATES}, "overdue": 0, "intakes": 0,
           "deliveries": 0, "waiting": 0, "today": today.isoformat()}
    for row in q.rows(sql):
        if row["kind"] == "state":
            out["states"][row["k"]] = int(row["n"])
        else:
            out[row["kind"]] = int(row["n"])
    out["open"] = sum(out["states"].values())
    return out


def trend_filters(weeks: int = 12, branch_id: Optional[int] = None,
                  today: Optional[date] = None, week_start: Optional[int] = None) -> Filters:
    """The last ``weeks`` whole and current weeks, grouped by week (the dashboard's trends)."""
    today = today or shop_today()
    ws = week_start if week_start is not None else shop_week_start()
    first = today - timedelta(days=(today.weekday() - ws) % 7) - timedelta(weeks=weeks - 1)
    return Filters(first, today, branch_id=branch_id, group_by="week", week_start=ws)


def with_group(f: Filters, group_by: Optional[str]) -> Filters:
    return replace(f, group_by=group_by)


REPORT_FUNCTIONS: dict[str, Callable] = {
    "turnaround": turnaround, "costs": costs, "technicians": technicians, "survey": survey,
    "survey_followups": survey_followups, "queue_heatmap": queue_heatmap,
    "queue_summary": queue_summary, "sms": sms, "takings": takings, "handbacks": handbacks,
    "handback_totals": handback_totals, "technician_daily": technician_daily,
}
