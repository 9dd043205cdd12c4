"""Reports on a small fixed history imported with import-history, every expected value worked
out by hand (below, next to the data). The same tests run on SQLite and on PostgreSQL
(TEST_DATABASE_URL), so they also show that both databases give the same numbers.

The shop is in Tehran (UTC+03:30 all year since 2022). January 2026 in Tehran runs from
2025-12-31T20:30Z to 2026-01-31T20:30Z. Jalali: 1 Dey 1404 = 2025-12-22, 1 Bahman 1404 =
2026-01-21.
"""
import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from sqlalchemy import event, select

from servicedesk import reports as r
from servicedesk.extensions import db
from servicedesk.models import AuditLog, Branch, SurveyResponse, User, Visit
from servicedesk.services.importer import import_lines

from .conftest import add_user

H = 3600
D = 86400
CUSTOMER_1 = {"name": "نرگس رضایی", "phone": "09121234567"}
SAMSUNG = {"kind": "phone", "brand": "Samsung", "model": "Galaxy A54"}


def line(kind, qty, price, stage):
    return {"stage": stage, "kind": kind, "description": kind, "qty": qty, "unit_price": price}


def ev(name, at, **data):
    out = {"event": name, "at": at}
    if data:
        out["data"] = data
    return out


# Stage durations of each ticket (seconds) are noted next to its events.
HISTORY = [
    {   # T1, tech_a: the plain repair. Saturday 2026-01-10 in Tehran.
        "external_id": "T1", "customer": CUSTOMER_1, "device": SAMSUNG,
        "problem": "Cracked screen", "technician": "tech_a",
        "visit": {"issued_at": "2026-01-10T06:00:00Z", "called_at": "2026-01-10T06:10:00Z"},
        "events": [ev("admit", "2026-01-10T06:15:00Z"),            # queue_wait 600
                   ev("send_to_repair", "2026-01-10T07:15:00Z"),   # intake 3600
                   ev("quote", "2026-01-10T09:15:00Z"),            # diagnosis 7200
                   ev("approve", "2026-01-10T10:15:00Z"),          # approval 3600
                   ev("finish", "2026-01-10T14:15:00Z"),           # repair 14400
                   ev("deliver", "2026-01-11T06:15:00Z"),          # pickup 57600, total 86400
                   ev("close", "2026-01-11T10:00:00Z")],
        "lines": [line("part", 1, 1_000_000, "estimate"), line("labour", 1, 200_000, "estimate"),
                  line("part", 1, 1_000_000, "final"), line("labour", 1, 300_000, "final")],
        "survey": {"csat": 5, "nps": 9, "comment": "عالی بود", "at": "2026-01-11T10:00:00Z"},
    },
    {   # T2, tech_a: two waits for parts. Monday 2026-01-12.
        "external_id": "T2", "customer": {"name": "Hamid Karimi", "phone": "09351234567"},
        "device": {"kind": "phone", "brand": "Apple", "model": "iPhone 13"},
        "problem": "Battery", "technician": "tech_a",
        "visit": {"issued_at": "2026-01-12T06:00:00Z", "called_at": "2026-01-12T06:30:00Z"},
        "events": [ev("admit", "2026-01-12T06:40:00Z"),            # queue_wait 1800
                   ev("send_to_repair", "2026-01-12T08:40:00Z"),   # intake 7200
                   ev("quote", "2026-01-12T12:40:00Z"),            # diagnosis 14400
                   ev("approve", "2026-01-13T06:40:00Z"),          # approval 64800
                   ev("wait_parts", "2026-01-13T08:40:00Z", part="Battery"),
                   ev("resume", "2026-01-14T08:40:00Z"),           # wait 86400
                   ev("wait_parts", "2026-01-14T10:40:00Z", part="Flex"),
                   ev("resume", "2026-01-14T12:40:00Z"),           # wait 7200: parts 93600
                   ev("finish", "2026-01-14T14:40:00Z"),           # repair 115200-93600=21600
                   ev("deliver", "2026-01-15T06:40:00Z"),          # pickup 57600, total 259200
                   ev("close", "2026-01-15T08:00:00Z")],
        "lines": [line("part", 1, 2_000_000, "estimate"), line("labour", 1, 500_000, "estimate"),
                  line("part", 1, 2_000_000, "final"), line("labour", 1, 500_000, "final")],
        "survey": {"csat": 2, "nps": 7, "comment": "خیلی دیر شد", "complaint": True,
                   "at": "2026-01-15T08:00:00Z"},
    },
    {   # T3, tech_b, warranty: the customer declines; no survey.
        "external_id": "T3", "customer": {"name": "Zahra Mousavi", "phone": "09191234567"},
        "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy S21"},
        "problem": "No sound", "technician": "tech_b", "service_type": "warranty",
        "events": [ev("admit", "2026-01-15T06:00:00Z"),
                   ev("send_to_repair", "2026-01-15T06:30:00Z"),   # intake 1800
                   ev("quote", "2026-01-15T07:30:00Z"),            # diagnosis 3600
                   ev("decline", "2026-01-16T07:30:00Z"),          # approval 86400
                   ev("deliver", "2026-01-16T09:30:00Z")],         # pickup 7200, total 99000
        "lines": [line("part", 1, 3_000_000, "estimate")],
    },
    {   # T4, tech_b: still in repair; promised for 2026-01-22. Tuesday 2026-01-20.
        "external_id": "T4", "customer": {"name": "Mahdi Sadeghi", "phone": "09131234567"},
        "device": {"kind": "phone", "brand": "Xiaomi", "model": "Redmi Note 12"},
        "problem": "Charging", "technician": "tech_b", "promised_date": "2026-01-22",
        "visit": {"issued_at": "2026-01-20T05:00:00Z", "called_at": "2026-01-20T05:05:00Z"},
        "events": [ev("admit", "2026-01-20T05:10:00Z"),            # queue_wait 300
                   ev("send_to_repair", "2026-01-20T05:40:00Z"),   # intake 1800
                   ev("quote", "2026-01-20T07:40:00Z"),            # diagnosis 7200
                   ev("approve", "2026-01-20T08:40:00Z")],         # approval 3600
        "lines": [line("labour", 1, 400_000, "estimate")],
    },
    {   # T5, tech_a: across midnight in Tehran. 19:00Z on the 31st is 22:30 on the 31st,
        # 21:00Z is 00:30 on 1 February.
        "external_id": "T5", "customer": {"name": "Leila Ahmadi", "phone": "09361234567"},
        "device": SAMSUNG, "problem": "Camera", "technician": "tech_a",
        "events": [ev("admit", "2026-01-31T19:00:00Z"),
                   ev("send_to_repair", "2026-01-31T20:00:00Z"),   # intake 3600 (31 Jan)
                   ev("quote", "2026-01-31T21:00:00Z"),            # diagnosis 3600 (31 Jan-1 Feb)
                   ev("approve", "2026-02-01T06:00:00Z"),          # approval 32400 (1 Feb)
                   ev("finish", "2026-02-01T10:00:00Z"),           # repair 14400
                   ev("deliver", "2026-02-02T10:00:00Z")],         # pickup 86400, total 140400
        "lines": [line("part", 1, 500_000, "estimate"), line("part", 1, 500_000, "final")],
    },
    {   # T6: cancelled at intake.
        "external_id": "T6", "customer": {"name": "Sina Rahimi", "phone": "09125556677"},
        "device": {"kind": "phone", "brand": "Google", "model": "Pixel 7"},
        "problem": "Back glass",
        "events": [ev("admit", "2026-01-18T06:00:00Z"),
                   ev("cancel", "2026-01-18T06:30:00Z", reason="changed their mind")],
    },
    {   # T7: T1's customer brings the same phone back 14 days after its delivery: a return.
        "external_id": "T7", "customer": CUSTOMER_1, "device": SAMSUNG,
        "problem": "Screen again", "service_type": "warranty",
        "events": [ev("admit", "2026-01-25T06:00:00Z"),
                   ev("cancel", "2026-01-25T06:20:00Z", reason="fixed at the counter")],
    },
]


@pytest.fixture
def history(app, users):
    add_user("tech_a", "technician", full_name="رضا احمدی")
    add_user("tech_b", "technician", full_name="Sara Karimi")
    report = import_lines(json.dumps(rec, ensure_ascii=False) for rec in HISTORY)
    assert report.errors == [] and report.imported == len(HISTORY)
    # A queue number not answered: Saturday 2026-01-10 09:50 in Tehran, called after 20 min.
    from servicedesk.services.tickets import default_branch
    db.session.add(Visit(branch_id=default_branch().id, service="repair", day=date(2026, 1, 10),
                         number=99, label="R-099", status="no_show",
                         issued_at=datetime(2026, 1, 10, 6, 20, tzinfo=timezone.utc),
                         called_at=datetime(2026, 1, 10, 6, 40, tzinfo=timezone.utc)))
    db.session.commit()
    db.session.expire_all()
    return report


def jan(**kw) -> r.Filters:
    return r.Filters(date(2026, 1, 1), date(2026, 1, 31), **kw)


def by_stage(rows, key=None):
    return {row["stage"]: (row["count"], row["median_seconds"], row["p90_seconds"],
                           row["mean_seconds"]) for row in rows if row["key"] == key}


# --- turnaround -------------------------------------------------------------------------------

JANUARY = {
    # sorted values -> median, p90 = v[h] interpolated at h = p * (n - 1)
    "queue_wait": (3, 600.0, 1560.0, 900.0),            # 300 600 1800
    "intake": (5, 3600.0, 5760.0, 3600.0),              # 1800 1800 3600 3600 7200
    "diagnosis": (4, 7200.0, 12240.0, 8100.0),          # 3600 7200 7200 14400 (T5 ends 1 Feb)
    "approval": (4, 34200.0, 79920.0, 39600.0),         # 3600 3600 64800 86400
    "repair": (2, 18000.0, 20880.0, 18000.0),           # 14400 21600
    "waiting_parts": (1, 93600.0, 93600.0, 93600.0),    # 93600
    "pickup": (3, 57600.0, 57600.0, 40800.0),           # 7200 57600 57600
    "total": (3, 99000.0, 227160.0, 148200.0),          # 86400 99000 259200
}


def test_turnaround_every_stage_in_january(history):
    rows = r.turnaround(jan())
    assert [row["stage"] for row in rows] == list(r.STAGES)
    assert by_stage(rows) == JANUARY


def test_turnaround_february_counts_only_stages_that_started_in_it(history):
    rows = r.turnaround(r.Filters(date(2026, 2, 1), date(2026, 2, 28)))
    stages = by_stage(rows)
    # T5: its quote (00:30 on 1 Feb in Tehran) opens the approval; intake, diagnosis and total
    # started on 31 January.
    assert stages["approval"] == (1, 32400.0, 32400.0, 32400.0)
    assert stages["repair"] == (1, 14400.0, 14400.0, 14400.0)
    assert stages["pickup"] == (1, 86400.0, 86400.0, 86400.0)
    for stage in ("queue_wait", "intake", "diagnosis", "waiting_parts", "total"):
        assert stages[stage] == (0, None, None, None)


def test_an_event_at_21_utc_on_the_31st_is_on_the_1st_in_tehran(history):
    first = by_stage(r.turnaround(r.Filters(date(2026, 2, 1), date(2026, 2, 1))))
    assert first["approval"] == (1, 32400.0, 32400.0, 32400.0)  # 21:00Z 31 Jan -> 06:00Z 1 Feb
    assert first["intake"][0] == 0  # 19:00Z and 20:00Z on the 31st: still the 31st in Tehran
    last = by_stage(r.turnaround(r.Filters(date(2026, 1, 31), date(2026, 1, 31))))
    assert last["intake"] == (1, 3600.0, 3600.0, 3600.0)
    assert last["diagnosis"][0] == 0  # ends on 1 February in Tehran


def test_turnaround_of_an_empty_range_has_every_stage_with_count_zero_and_nulls(history):
    rows = r.turnaround(r.Filters(date(2025, 6, 1), date(2025, 6, 30)))
    assert by_stage(rows) == {s: (0, None, None, None) for s in r.STAGES}


def test_turnaround_of_an_empty_database(app):
    assert by_stage(r.turnaround(jan())) == {s: (0, None, None, None) for s in r.STAGES}


def test_turnaround_for_one_technician(history):
    tech_a = _user_id("tech_a")
    stages = by_stage(r.turnaround(jan(technician_id=tech_a)))
    assert stages["intake"] == (3, 3600.0, 6480.0, 4800.0)  # 3600 3600 7200
    assert stages["repair"] == (2, 18000.0, 20880.0, 18000.0)
    assert stages["total"] == (2, 172800.0, 241920.0, 172800.0)  # 86400 259200
    # The queue wait closes at admission, before anyone is assigned.
    assert stages["queue_wait"] == (0, None, None, None)


def test_turnaround_filtered_by_service_type_and_brand(history):
    warranty = by_stage(r.turnaround(jan(service_type="warranty")))
    assert warranty["approval"] == (1, 86400.0, 86400.0, 86400.0)  # T3 only
    assert warranty["repair"][0] == 0
    apple = by_stage(r.turnaround(jan(brand="Apple")))
    assert apple["waiting_parts"] == (1, 93600.0, 93600.0, 93600.0)
    assert apple["intake"] == (1, 7200.0, 7200.0, 7200.0)


def test_turnaround_grouped_by_technician(history):
    rows = r.turnaround(jan(group_by="technician"))
    a, b = by_stage(rows, "tech_a"), by_stage(rows, "tech_b")
    assert a["repair"] == (2, 18000.0, 20880.0, 18000.0)
    assert b["approval"] == (2, 45000.0, 78120.0, 45000.0)  # 3600 86400
    assert b["repair"] == (0, None, None, None)
    assert by_stage(rows, None)["queue_wait"] == (3, 600.0, 1560.0, 900.0)  # unassigned
    labels = {row["key"]: row["key_label"] for row in rows}
    assert labels["tech_a"] == "رضا احمدی"


def test_turnaround_grouped_by_jalali_month(history):
    rows = r.turnaround(r.Filters(date(2026, 1, 1), date(2026, 2, 28), group_by="jalali_month"))
    assert sorted({row["key"] for row in rows}) == ["1404-10", "1404-11"]
    dey, bahman = by_stage(rows, "1404-10"), by_stage(rows, "1404-11")
    assert dey["pickup"] == (3, 57600.0, 57600.0, 40800.0)  # all delivered by 20 January
    # 1 Bahman = 21 January: T5, all of it (it started on 31 January)
    assert bahman["total"] == (1, 140400.0, 140400.0, 140400.0)
    assert bahman["intake"] == (1, 3600.0, 3600.0, 3600.0)


def test_turnaround_grouped_by_week_starts_on_saturday(history):
    rows = r.turnaround(jan(group_by="week", week_start=5))
    keys = [row["key"] for row in rows if row["stage"] == "queue_wait"]
    # Saturdays: 27 Dec (covering 1 Jan), 3, 10, 17 Jan... only weeks with stages appear
    assert keys[0] == "2026-01-10" and all(date.fromisoformat(k).weekday() == 5 for k in keys)
    assert by_stage(rows, "2026-01-10")["queue_wait"] == (2, 1200.0, 1680.0, 1200.0)


def _period_ranges(kind, start, end, week_start=5):
    """(key, first day, last day) of each period of ``kind`` over [start, end], cut to it."""
    from datetime import timedelta
    ps = r.periods(kind, start, end + timedelta(days=40), week_start)
    out = []
    for p, nxt in zip(ps, ps[1:]):
        if p.start > end:
            break
        out.append((p.key, max(p.start, start), min(nxt.start - timedelta(days=1), end)))
    return out


# Stages across the ends of periods: X1 from Friday 16 January (26 Dey, the week of the 10th)
# to Wednesday 21 January (1 Bahman, the week of the 17th); X2 across the Jalali new year, from
# 28 Esfand 1403 (2025-03-18) to 5 Farvardin 1404 (2025-03-25).
CROSSING = [
    {"external_id": "X1", "customer": {"name": "Ali Nouri", "phone": "09127778899"},
     "device": {"kind": "phone", "brand": "Apple", "model": "iPhone 11"},
     "problem": "Screen", "technician": "tech_b",
     "events": [ev("admit", "2026-01-16T07:00:00Z"),
                ev("send_to_repair", "2026-01-17T07:00:00Z"),  # intake 86400, week of 10 -> 17
                ev("quote", "2026-01-20T07:00:00Z"),           # diagnosis, in Dey
                ev("approve", "2026-01-21T07:00:00Z"),         # approval, Dey -> Bahman
                ev("finish", "2026-01-21T09:00:00Z"),
                ev("deliver", "2026-01-21T12:00:00Z")],        # total 16 -> 21 January
     "lines": [line("part", 1, 900_000, "estimate"), line("part", 1, 900_000, "final")]},
    {"external_id": "X2", "customer": {"name": "Mina Jafari", "phone": "09127778800"},
     "device": {"kind": "phone", "brand": "Xiaomi", "model": "Poco X5"},
     "problem": "Battery", "technician": "tech_a",
     "events": [ev("admit", "2025-03-18T07:00:00Z"),
                ev("send_to_repair", "2025-03-18T08:00:00Z"),  # intake, Esfand
                ev("quote", "2025-03-19T08:00:00Z"),           # diagnosis, Esfand
                ev("approve", "2025-03-22T08:00:00Z"),         # approval, Esfand -> Farvardin
                ev("finish", "2025-03-23T08:00:00Z"),          # repair, Farvardin
                ev("deliver", "2025-03-25T08:00:00Z")],        # total, Esfand -> Farvardin
     "lines": [line("part", 1, 700_000, "estimate"), line("part", 1, 700_000, "final")]},
]


@pytest.fixture
def crossing(history):
    report = import_lines(json.dumps(rec, ensure_ascii=False) for rec in CROSSING)
    assert report.errors == [] and report.imported == len(CROSSING)
    db.session.expire_all()


@pytest.mark.parametrize("kind", ["week", "month", "jalali_month"])
def test_a_period_grouped_is_that_period_asked_alone(crossing, kind):
    """DESIGN: a ticket counts in a stage when both ends fall in the range, and a row of a
    grouped report is a range of its own. T5's diagnosis (31 Jan -> 1 Feb) and its total
    (31 Jan -> 2 Feb) end in February but did not start in it: February alone leaves them
    out, so February's row does too; X1's stages across a Saturday and 1 Bahman likewise."""
    start, end = date(2025, 12, 1), date(2026, 2, 28)
    rows = r.turnaround(r.Filters(start, end, group_by=kind, week_start=5))
    for key, first, last in _period_ranges(kind, start, end):
        alone = by_stage(r.turnaround(r.Filters(first, last, week_start=5)))
        grouped = by_stage(rows, key) or {s: (0, None, None, None) for s in r.STAGES}
        assert grouped == alone, (key, first, last)


def test_farvardin_in_a_grouped_range_is_farvardin_asked_alone(api, crossing):
    """The reviewer's case: 1404/01 asked alone and as a row of 1403/12 to 1404/01."""
    get = api["manager"].get
    alone = get("/api/v1/reports/turnaround?from=1404/01/01&to=1404/01/31").get_json()
    grouped = get("/api/v1/reports/turnaround?from=1403/12/01&to=1404/01/31"
                  "&group_by=jalali_month").get_json()
    [farvardin] = [g for g in grouped["groups"] if g["key"] == "1404-01"]
    assert farvardin["stages"] == alone["stages"]
    counts = {s["stage"]: s["count"] for s in alone["stages"]}
    assert (counts["repair"], counts["approval"], counts["total"]) == (1, 0, 0)


def test_february_grouped_by_month_leaves_out_the_stages_begun_in_january(history):
    rows = r.turnaround(r.Filters(date(2026, 1, 1), date(2026, 2, 28), group_by="month"))
    february = by_stage(rows, "2026-02")
    assert february["diagnosis"] == (0, None, None, None)
    assert february["total"] == (0, None, None, None)
    assert february["approval"] == (1, 32400.0, 32400.0, 32400.0)
    assert by_stage(rows, "2026-01")["total"] == JANUARY["total"]


# --- cost and revenue ---------------------------------------------------------------------------

def costs_by_key(rows):
    keys = ("tickets", "estimates", "approved", "estimate_total", "final_total", "parts_total",
            "labour_total")
    return {row["key"]: tuple(row[k] for k in keys) for row in rows}


def test_costs_per_technician(history):
    assert costs_by_key(r.costs(jan(group_by="technician"))) == {
        # T1 + T2 + T5: estimates 1.2M + 2.5M + 0.5M; final 1.3M + 2.5M + 0.5M
        "tech_a": (3, 3, 3, 4_200_000, 4_300_000, 3_500_000, 800_000),
        # T3 (declined, 3M) + T4 (approved, in repair, 0.4M)
        "tech_b": (2, 2, 1, 3_400_000, 0, 0, 0),
        None: (2, 0, 0, 0, 0, 0, 0),  # T6, T7: cancelled before anyone was assigned
    }


def test_costs_per_month_gregorian_and_jalali(history):
    assert costs_by_key(r.costs(jan(group_by="month"))) == {
        "2026-01": (7, 5, 4, 7_600_000, 4_300_000, 3_500_000, 800_000)}
    assert costs_by_key(r.costs(jan(group_by="jalali_month"))) == {
        "1404-10": (5, 4, 3, 7_100_000, 3_800_000, 3_000_000, 800_000),  # to 20 January
        "1404-11": (2, 1, 1, 500_000, 500_000, 500_000, 0),  # T7 (25 Jan), T5 (31 Jan)
    }


def test_costs_per_service_type(history):
    assert costs_by_key(r.costs(jan(group_by="service_type"))) == {
        "repair": (5, 4, 4, 4_600_000, 4_300_000, 3_500_000, 800_000),
        "warranty": (2, 1, 0, 3_000_000, 0, 0, 0),
    }


def test_service_types_are_named_in_the_shops_words(app, users, history):
    """A type the shop renamed is grouped under its new name, in either language."""
    from flask_babel import refresh

    from servicedesk.services import admin as admin_service
    with app.test_request_context():
        admin_service.save_service_type(users["admin"], "warranty", code=None,
                                        name_fa="ادعای ضمانت", name_en="Guarantee claim",
                                        active=True)
    for lang, name in (("en", "Guarantee claim"), ("fa", "ادعای ضمانت")):
        with app.test_request_context(f"/?lang={lang}"):
            refresh()
            labels = {row["key"]: row["key_label"]
                      for row in r.costs(jan(group_by="service_type"))}
            assert labels["warranty"] == name, lang
            turnaround = {row["key"]: row["key_label"]
                          for row in r.turnaround(jan(group_by="service_type"))}
            assert turnaround["warranty"] == name, lang
    page = Staff(app, "manager1").get("/reports/surveys?from=2026-01-01&to=2026-01-31"
                                      "&group_by=service_type&lang=en")
    assert "Guarantee claim" in [row["Group name"] for row in page_table(page)]


def test_costs_rates_accuracy_and_average(history):
    row = r.costs(jan(group_by="month"))[0]
    assert row["approval_rate"] == 0.8  # 4 of 5 estimates
    assert row["finished"] == 3  # T1, T2, T5
    # billed 4.3M against the 4.2M their estimates said
    assert row["accuracy"] == round(4_300_000 / 4_200_000, 4)
    assert row["average_value"] == 1_433_330  # 4.3M / 3, to the whole toman (not 1,433,333)
    assert row["paid_total"] == 4_300_000  # import pays the final total at delivery


def test_the_average_is_named_per_repaired_ticket_as_it_is_counted(app, history):
    """Billed total / repaired tickets (4.3M / 3, not / 7 admitted): the column says so."""
    client = Staff(app, "manager1")
    url = "/reports/costs?from=2026-01-01&to=2026-01-31&group_by=month&lang="
    [row] = page_table(client.get(url + "en"))
    assert row["Average bill per repaired ticket (toman)"] == "143,333"
    fa = client.get(url + "fa").get_data(as_text=True)
    assert "میانگین صورت‌حساب هر پذیرش تعمیرشده" in fa
    assert "میانگین مبلغ هر پذیرش" not in fa  # "per admission": it is not


def test_the_approval_rate_is_of_the_estimates_answered(app, api, make_ticket):
    """One estimate approved, one the customer has not answered yet: all the answers so far
    are approvals (100%, not 50%), and the one waiting shows on its own."""
    make_ticket("repair")
    make_ticket("estimate")
    today = r.shop_today()
    [row] = r.costs(r.Filters(today, today, group_by="month"))
    assert (row["estimates"], row["approved"], row["declined"], row["awaiting"]) == (2, 1, 0, 1)
    assert row["approval_rate"] == 1.0
    client = Staff(app, "manager1")
    [shown] = page_table(client.get("/reports/costs?group_by=month&lang=en"))
    assert (shown["Approval rate"], shown["Estimates waiting for an answer"]) == ("100.0%", "1")
    export = client.get("/reports/costs?group_by=month&lang=en&format=csv")
    [exported] = list(csv.DictReader(io.StringIO(export.data.decode("utf-8-sig"))))
    assert (exported["Approval rate"], exported["Estimates waiting for an answer"]) == \
        ("1.0", "1")
    [api_row] = api["manager"].get("/api/v1/reports/costs?group_by=month").get_json()["rows"]
    assert (api_row["approved"], api_row["declined"], api_row["awaiting"]) == (1, 0, 1)


def test_costs_of_an_empty_range(history):
    assert r.costs(r.Filters(date(2025, 6, 1), date(2025, 6, 30), group_by="month")) == []


# --- technicians ------------------------------------------------------------------------------

def test_technicians_count_repairs_by_finish_date_returns_and_satisfaction(history):
    rows = r.technicians(jan(), warranty_days=90)
    assert [row["key"] for row in rows] == ["tech_a"]  # tech_b finished nothing
    a = rows[0]
    assert (a["finished"], a["median_seconds"], a["p90_seconds"], a["mean_seconds"]) == \
        (2, 18000.0, 20880.0, 18000.0)
    assert a["per_day"] == round(2 / 31, 2)
    assert (a["returns"], a["return_rate"]) == (1, 0.5)  # T1 came back 14 days later
    assert (a["responses"], a["csat_mean"]) == (2, 3.5)
    # with a 10-day warranty, 14 days later is no longer a return
    assert r.technicians(jan(), warranty_days=10)[0]["returns"] == 0
    feb = r.technicians(r.Filters(date(2026, 2, 1), date(2026, 2, 28)))
    assert [(x["key"], x["finished"]) for x in feb] == [("tech_a", 1)]  # T5, finished 1 Feb


# R1, tech_b: handed back at 00:30 on 5 January in Tehran (21:00Z on the 4th); the receipt of a
# 10-day warranty says "until 15 January". R2: the same phone back at 23:30 on 15 January
# (20:00Z): the last day printed, later in the day than the delivery (10 days 23 hours after it).
LATE_RETURN = [
    {"external_id": "R1", "customer": {"name": "Parisa Amini", "phone": "09124441122"},
     "device": {"kind": "phone", "brand": "Huawei", "model": "P30"}, "problem": "Port",
     "technician": "tech_b",
     "events": [ev("admit", "2026-01-03T06:00:00Z"), ev("send_to_repair", "2026-01-03T07:00:00Z"),
                ev("quote", "2026-01-03T08:00:00Z"), ev("approve", "2026-01-03T09:00:00Z"),
                ev("finish", "2026-01-04T10:00:00Z"), ev("deliver", "2026-01-04T21:00:00Z")],
     "lines": [line("part", 1, 300_000, "estimate"), line("part", 1, 300_000, "final")]},
    {"external_id": "R2", "customer": {"name": "Parisa Amini", "phone": "09124441122"},
     "device": {"kind": "phone", "brand": "Huawei", "model": "P30"}, "problem": "Port again",
     "events": [ev("admit", "2026-01-15T20:00:00Z"),
                ev("cancel", "2026-01-15T20:10:00Z", reason="looked at under warranty")]},
]


def test_a_return_on_the_receipts_last_warranty_day_counts_whatever_the_hour(app, history):
    report = import_lines(json.dumps(rec, ensure_ascii=False) for rec in LATE_RETURN)
    assert report.errors == [] and report.imported == 2

    def returns(days):
        rows = {row["key"]: row for row in r.technicians(jan(), warranty_days=days)}
        return rows["tech_b"]["returns"]
    assert returns(10) == 1  # back on 15 January, the last day the receipt printed
    assert returns(9) == 0  # "until 14 January": back a day after
    assert returns(0) == 0  # no warranty, no returns
    # what R1's delivery receipt printed
    from flask_babel import refresh

    from servicedesk.slips import _default_delivery_terms
    app.config["WARRANTY_DAYS"] = 10
    with app.test_request_context("/?lang=en"):
        refresh()
        [terms] = _default_delivery_terms(datetime(2026, 1, 4, 21, tzinfo=timezone.utc))
    assert "until 15 Jan 2026." in terms  # as the receipt writes its own date


def test_technician_daily_counts_by_the_shop_date(history):
    daily = r.technician_daily(jan())
    assert daily["kind"] == "day"
    counts = daily["series"]["رضا احمدی"]
    assert counts[9] == 1 and counts[13] == 1 and sum(counts) == 2  # 10 and 14 January


# --- surveys ----------------------------------------------------------------------------------

def test_survey_summary(history):
    row = r.survey(jan())[0]
    # delivered in January: T1, T2, T3; answered: T1 (5, NPS 9), T2 (2, NPS 7, complaint)
    assert (row["delivered"], row["responses"]) == (3, 2)
    assert row["response_rate"] == 0.6667
    assert row["csat_mean"] == 3.5
    assert row["nps"] == 50.0  # one promoter, one passive, no detractor
    assert (row["complaints"], row["low_scores"]) == (1, 1)


def test_the_nps_is_shown_to_a_tenth(app, history):
    """NPS is -100..100 to a tenth: "50.0", not "50.00"."""
    client = Staff(app, "manager1")
    url = "/reports/surveys?from=2026-01-01&to=2026-01-31&lang="
    [row] = page_table(client.get(url + "en"))
    assert (row["NPS"], row["Satisfaction (1-5)"]) == ("50.0", "3.50")
    [row] = page_table(client.get(url + "fa"))
    assert row["NPS"] == "۵۰٫۰"
    export = client.get(url + "en&format=csv")
    [exported] = list(csv.DictReader(io.StringIO(export.data.decode("utf-8-sig"))))
    assert exported["NPS"] == "50.0"


def test_survey_of_an_empty_range(history):
    row = r.survey(r.Filters(date(2025, 6, 1), date(2025, 6, 30)))[0]
    assert (row["delivered"], row["responses"], row["response_rate"], row["csat_mean"],
            row["nps"]) == (0, 0, None, None, None)


def test_survey_followups_and_status(history):
    items = r.survey_followups(jan())
    assert [(i["ticket_number"], i["csat"], i["comment"], i["followup_status"])
            for i in items] == [("A-00002", 2, "خیلی دیر شد", "open")]
    manager = db.session.scalar(select(User).where(User.role == "manager")) or add_user(
        "boss", "manager")
    r.set_followup_status(items[0]["id"], "contacted", by=manager)
    db.session.expire_all()
    assert db.session.get(SurveyResponse, items[0]["id"]).followup_status == "contacted"
    # who changed it and when: the audit log, as every change of the shop's records
    [logged] = db.session.scalars(select(AuditLog).where(
        AuditLog.action == "survey.followup")).all()
    assert (logged.actor_name, logged.object_id) == (manager.username, str(items[0]["id"]))
    assert (logged.value_from, logged.value_to) == ({"followup": "open"},
                                                    {"followup": "contacted"})
    assert r.survey_followups(jan(), status="open") == []
    assert len(r.survey_followups(jan(), status="contacted")) == 1


def test_the_followups_download_reads_like_the_page(app, history):
    """The technician as the page names them, the follow-up in words, times on the shop's
    clock (the page's), not UTC."""
    import csv as csv_module
    import io
    client = Staff(app, "manager1")
    export = client.get("/reports/surveys?lang=fa&table=followups&format=csv"
                        "&from=2026-01-01&to=2026-01-31").get_data(as_text=True)
    [row] = list(csv_module.DictReader(io.StringIO(export.lstrip("\ufeff"))))
    assert row["تعمیرکار"] and row["پیگیری"] == "باز"
    assert row["تحویل شد"].endswith("+03:30") and row["زمان پاسخ"].endswith("+03:30")


# --- queue and SMS ----------------------------------------------------------------------------

def test_queue_summary_and_heatmap(history):
    s = r.queue_summary(jan())
    assert (s["visits"], s["served"], s["no_shows"]) == (4, 3, 1)
    # waits 300 600 1200 1800
    assert (s["called"], s["median_wait_seconds"], s["p90_wait_seconds"],
            s["mean_wait_seconds"]) == (4, 900.0, 1620.0, 975.0)
    cells = {(c["weekday"], c["hour"]): (c["visits"], c["no_shows"], c["mean_wait"])
             for c in r.queue_heatmap(jan())}
    # Saturday 09:30 and 09:50, Monday 09:30, Tuesday 08:30 (Tehran)
    assert cells == {(5, 9): (2, 1, 900.0), (0, 9): (1, 0, 1800.0), (1, 8): (1, 0, 300.0)}


def test_sms_report_counts_and_segments(app, make_ticket):
    make_ticket("repair")  # admit, send_to_repair, quote, approve: four SMS in the outbox
    today = r.shop_today()
    rows = r.sms(r.Filters(today, today))
    summary = r.sms_summary(rows)
    assert summary["messages"] == 4
    assert summary["segments"] >= 4
    assert {row["event"] for row in rows} == {"admit", "send_to_repair", "quote", "approve"}
    # a reminder cancelled before it went was never billed: written, but no segments
    from servicedesk.models import Notification
    before = summary["segments"]
    note = db.session.scalars(select(Notification)).first()
    note.status = "cancelled"
    db.session.commit()
    after = r.sms_summary(r.sms(r.Filters(today, today)))
    assert after["messages"] == 4 and after["segments"] == before - note.segments
    assert after["sent"] == summary["sent"] - 1 and after["failed"] == 0
    # the page and its export say what each row is in words, not the codes
    client = Staff(app, "manager1")
    page = client.get("/reports/sms?lang=en").get_data(as_text=True)
    table = page.split('id="report-table"', 1)[1]
    assert "Send to repair" in table and ">send_to_repair<" not in table
    export = client.get("/reports/sms?lang=fa&format=csv").get_data(as_text=True)
    assert "ارسال به تعمیر" in export and ",send_to_repair," not in export
    assert "ارسال شد" in export and ",sent," not in export


def test_the_sms_report_says_why_messages_failed_in_the_shops_words(app, make_ticket):
    """Failures are grouped by what happened, in words (the provider's code beside, small):
    not "21211: 2", and a cancelled SMS says why in the table too."""
    from html import unescape

    from servicedesk.models import Notification
    for _ in range(3):
        make_ticket("intake")
    notes = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    for note, (status, code, message) in zip(notes, [
            ("failed", "21211", "The 'To' number is not a valid phone number"),
            ("failed", "21211", "The 'To' number is not a valid phone number"),
            ("failed", None, "gave up after 6 attempts: could not connect to Twilio")]):
        note.status, note.error_code, note.error_message = status, code, message
    db.session.commit()
    make_ticket("estimate")
    quote = db.session.scalar(select(Notification).where(Notification.event == "quote"))
    quote.status, quote.error_message = "cancelled", "no longer due: the estimate was answered"
    db.session.commit()
    client = Staff(app, "manager1")
    page = unescape(client.get("/reports/sms?lang=en").get_data(as_text=True))
    failures = page.split("data-sms-failures>", 1)[1].split("</ul>", 1)[0]
    assert "The number cannot get SMS (wrong, or not a mobile): check it with the customer." \
        in failures
    assert ">2</span>" in failures and 'data-sms-codes>(21211)</small>' in failures
    assert "Not sent after every attempt: the SMS service could not be reached or was busy." \
        in failures
    chart = json.loads(page.split('id="chart-sms">', 1)[1].split("</script>", 1)[0])
    assert chart["labels"][0].startswith("The number cannot get SMS")
    table = page.split('id="report-table"', 1)[1]
    assert "Not sent: the estimate was answered before it went." in table
    fa = unescape(client.get("/reports/sms?lang=fa").get_data(as_text=True))
    assert "این شماره پیامک دریافت نمی‌کند" in fa.split("data-sms-failures>", 1)[1]
    export = client.get("/reports/sms?lang=en&format=csv").get_data(as_text=True)
    assert "Not sent: the estimate was answered before it went." in export


def test_sms_segments_billed_are_those_sent_and_delivery_unknown_is_no_zero(app, make_ticket):
    """A message waiting to be sent or refused by the provider is not billed; a backend that
    never reports delivery (no message delivered or undelivered) has no delivery rate, not
    "Delivered 0 (0.0%)"."""
    from servicedesk.models import Notification
    make_ticket("repair")  # four SMS, sent by the console backend
    notes = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    assert [n.status for n in notes] == ["sent"] * 4
    notes[0].status, notes[1].status = "pending", "failed"
    db.session.commit()
    today = r.shop_today()
    summary = r.sms_summary(r.sms(r.Filters(today, today)))
    assert summary["segments"] == notes[2].segments + notes[3].segments
    assert (summary["sent"], summary["delivery_reports"], summary["delivery_rate"]) == \
        (2, 0, None)
    client = Staff(app, "manager1")

    def delivered_card():
        page = client.get("/reports/sms?lang=en").get_data(as_text=True)
        return re.search(r'text-muted">Delivered</div><div class="fs-5">([^<]*)<', page).group(1)
    assert delivered_card() == "–"
    notes[2].status = "delivered"
    db.session.commit()
    summary = r.sms_summary(r.sms(r.Filters(today, today)))
    assert (summary["delivered"], summary["delivery_rate"]) == (1, 0.5)
    assert summary["segments"] == notes[2].segments + notes[3].segments
    assert delivered_card() == "1 (50.0%)"


# --- the till's totals ---------------------------------------------------------------------------

def test_nothing_to_pay_counts_only_the_hand_backs_that_owed_nothing(app, users, make_ticket):
    """A bill let off entirely (1,400,000 toman due, nothing paid) had something to pay: it is
    a credit, in the discounts. The device returned unrepaired owed nothing. A hand-back that
    did not record what was due (older data) had nothing to pay only if nothing was paid."""
    from sqlalchemy import update as sa_update

    from servicedesk.models import TicketEvent
    from servicedesk.services import tickets as svc

    from .conftest import actor_for
    from .test_reception import Staff as Desk
    let_off = make_ticket("ready")
    svc.fire_event(let_off.id, "deliver", actor_for("deliver", users), {"amount_paid": 0})
    free = make_ticket("diagnosis")
    svc.fire_event(free.id, "return_unrepaired", actor_for("return_unrepaired", users),
                   {"reason": "No parts"})
    svc.fire_event(free.id, "deliver", actor_for("deliver", users), {"amount_paid": 0})
    old = make_ticket("delivered")  # paid in full, with no amount due recorded
    db.session.execute(sa_update(TicketEvent).where(
        TicketEvent.ticket_id == old.id, TicketEvent.event == "deliver")
        .values(data={"amount_paid": 14_000_000}))
    db.session.commit()
    today = r.shop_today()
    totals = r.handback_totals(r.Filters(today, today))
    assert (totals["handbacks"], totals["unpaid"], totals["discounts"]) == (3, 1, 14_000_000)
    page = Desk(app, "reception1").get("/desk/takings?lang=en").get_data(as_text=True)
    assert 'data-handbacks="3" data-unpaid="1" data-discounts="14000000"' in page
    assert "with nothing to pay: 1" in page and "discounts and credits: 1,400,000 toman" in page
    # the free one's record without what was due: nothing paid, so still nothing to pay
    db.session.execute(sa_update(TicketEvent).where(
        TicketEvent.ticket_id == free.id, TicketEvent.event == "deliver")
        .values(data={"amount_paid": 0}))
    db.session.commit()
    assert r.handback_totals(r.Filters(today, today))["unpaid"] == 1


# --- dashboard --------------------------------------------------------------------------------

def test_dashboard_counts(history):
    c = r.dashboard_counts(now=datetime(2026, 1, 25, 6, 30, tzinfo=timezone.utc))
    assert c["states"]["repair"] == 1 and c["open"] == 1  # T4
    assert c["overdue"] == 1  # T4, promised for 22 January
    assert (c["intakes"], c["deliveries"]) == (1, 0)  # T7 this morning
    c = r.dashboard_counts(now=datetime(2026, 1, 11, 20, 0, tzinfo=timezone.utc))
    assert (c["intakes"], c["deliveries"], c["overdue"]) == (0, 1, 0)  # T1 delivered on the 11th


def test_a_device_ready_and_not_collected_is_no_late_repair_on_the_dashboard(
        app, api, make_ticket):
    """The dashboard's 'overdue (promised date passed)' counted a device finished on time and
    waiting for its owner as a late repair: the workbench and the ticket page did not."""
    from servicedesk.services.workbench import promised_late
    ready, repair = make_ticket("ready"), make_ticket("repair")
    yesterday = r.shop_today() - timedelta(days=1)
    for ticket in (ready, repair):
        ticket.promised_date = yesterday
    db.session.commit()
    assert not promised_late(ready) and promised_late(repair)
    counts = api["manager"].get("/api/v1/reports/dashboard").get_json()
    assert counts["overdue"] == 1 and counts["states"]["ready"] == 1


# --- one statement per report, percentiles as percentile_cont -------------------------------

def test_each_report_is_one_sql_statement(history):
    statements = []

    def count(conn, cursor, statement, *args):
        if "set_config" not in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for call in (lambda: r.turnaround(jan(group_by="jalali_month")),
                     lambda: r.costs(jan(group_by="technician")),
                     lambda: r.technicians(jan(), warranty_days=90),  # a setting, read apart
                     lambda: r.survey(jan(group_by="week")),
                     lambda: r.survey_followups(jan()), lambda: r.queue_heatmap(jan()),
                     lambda: r.queue_summary(jan()), lambda: r.sms(jan()),
                     lambda: r.dashboard_counts(), lambda: r.technician_daily(jan())):
            statements.clear()
            call()
            assert len(statements) == 1, statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize("values", [
    [5], [1, 2], [7, 1, 3], [10, 20, 30, 40], [3, 3, 3, 9, 1], list(range(0, 1000, 7)),
    [86400, 1, 604800, 3600, 59, 61, 7200, 12, 99999, 100000, 5],
])
def test_window_percentiles_equal_percentile_cont(app, values):
    """The window emulation (what SQLite runs) against PostgreSQL's percentile_cont, or
    against the same formula in Python on SQLite."""
    q = r._Query()
    src = " UNION ALL ".join(f"SELECT 1 AS k, {v} AS v" for v in values)
    got = q.rows(f"WITH src AS ({src}), {r._window_stats_ctes('src', ('k',))} "
                 "SELECT n, median_v, p90_v, mean_v FROM stats")[0]
    if q.dialect == "postgresql":
        want = q.rows(f"WITH src AS ({src}) SELECT COUNT(*) AS n, "
                      "percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS median_v, "
                      "percentile_cont(0.9) WITHIN GROUP (ORDER BY v) AS p90_v, "
                      "AVG(v) AS mean_v FROM src")[0]
    else:
        want = {"n": len(values), "median_v": _cont(values, 0.5), "p90_v": _cont(values, 0.9),
                "mean_v": sum(values) / len(values)}
    for key in ("median_v", "p90_v", "mean_v"):
        assert float(got[key]) == pytest.approx(float(want[key]), abs=1e-6)
    assert int(got["n"]) == len(values)


def _cont(values, p):
    s = sorted(values)
    h = p * (len(s) - 1)
    lo = int(h)
    return s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo])


# --- filters ----------------------------------------------------------------------------------

def test_filters_accept_jalali_and_iso_and_name_bad_ones(app, users):
    add_user("tech_a", "technician")
    with app.test_request_context("/?lang=fa"):
        f = r.parse_filters({"from": "1404/10/11", "to": "2026-01-31", "technician": "tech_a",
                             "group_by": "week"}, r.TURNAROUND_GROUPS)
        assert (f.start, f.end, f.group_by, f.week_start) == \
            (date(2026, 1, 1), date(2026, 1, 31), "week", 5)
        assert f.technician_id == _user_id("tech_a")
        with pytest.raises(Exception) as exc:
            r.parse_filters({"from": "2026-02-01", "to": "2026-01-01", "technician": "nobody",
                             "group_by": "colour"}, r.TURNAROUND_GROUPS)
        assert set(exc.value.fields) == {"from", "technician", "group_by"}


def test_month_ranges_in_the_pages_calendar(app):
    """Month end: this month so far and the last whole month, Jalali on Persian pages."""
    from flask_babel import refresh
    from servicedesk.web.reports import month_ranges
    today = date(2026, 12, 6)  # 15 Azar 1405
    with app.test_request_context("/?lang=fa"):
        refresh()
        (_, this, end), (_, first, last) = month_ranges(today)
        assert (this, end) == (date(2026, 11, 22), today)  # 1 Azar
        assert (first, last) == (date(2026, 10, 23), date(2026, 11, 21))  # Aban 1405
    with app.test_request_context("/?lang=en"):
        refresh()
        (_, this, end), (_, first, last) = month_ranges(today)
        assert (this, first, last) == (date(2026, 12, 1), date(2026, 11, 1), date(2026, 11, 30))


def test_the_report_links_the_month_ranges_keeping_its_filters(app, history):
    client = Staff(app, "manager1")
    page = client.get("/reports/costs?group_by=technician&lang=fa").get_data(as_text=True)
    ranges = page.split("data-ranges", 1)[1].split("</div>", 1)[0]
    links = re.findall(r'href="([^"]+)"', ranges)
    assert len(links) == 2 and all("group_by=technician" in link for link in links)
    assert all("from=" in link and "to=" in link for link in links)
    assert client.get(links[1].replace("&amp;", "&")).status_code == 200


def test_a_brand_filter_reads_the_brand_as_intake_stores_it(app):
    with app.test_request_context("/?lang=fa"):
        for typed in ("samsung", " SAMSUNG ", "سامسونگ"):
            assert r.parse_filters({"brand": typed}, r.TURNAROUND_GROUPS).brand == "Samsung"


def test_weeks_start_on_the_shops_day_whoever_reads(app):
    """A manager reading in English at a Persian shop counts the same Saturday weeks as the
    desk; an English shop's weeks start on Monday."""
    from flask_babel import refresh
    for lang in ("fa", "en"):
        with app.test_request_context(f"/?lang={lang}"):
            refresh()  # the locale cached by an earlier context of this app's
            assert r.current_language() == lang
            f = r.parse_filters({"from": "2026-01-01", "to": "2026-01-31", "group_by": "week"},
                                r.TURNAROUND_GROUPS)
            assert f.week_start == 5 and r.trend_filters().week_start == 5
            assert r.periods("week", f.start, f.end, f.week_start)[0].start == date(2025, 12, 27)
    app.config["SERVICEDESK_LOCALE"] = "en"
    with app.test_request_context("/?lang=en"):
        refresh()
        assert r.parse_filters({"group_by": "week"}, r.TURNAROUND_GROUPS).week_start == 0


def test_periods_of_jalali_months_start_on_their_first_day(app):
    with app.test_request_context("/?lang=fa"):
        ps = r.periods("jalali_month", date(2026, 1, 1), date(2026, 3, 25))
        assert [(p.key, p.start) for p in ps] == [
            ("1404-10", date(2025, 12, 22)), ("1404-11", date(2026, 1, 21)),
            ("1404-12", date(2026, 2, 20)), ("1405-01", date(2026, 3, 21))]
        assert ps[0].label == "دی ۱۴۰۴"


def _user_id(username):
    from servicedesk.models import User
    return db.session.scalar(select(User.id).where(User.username == username))


# --- pages, exports and the API -----------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


class Staff:
    """A logged-in member of staff; each request in its own app context, as in production
    (nothing cached in ``g``, such as the CSRF token or the locale, carries over)."""

    def __init__(self, app, username, password="correct horse battery"):
        self.app, self.client = app, app.test_client()
        page = self.get("/login").get_data(as_text=True)
        resp = self.post("/login", {"username": username, "password": password},
                         token=CSRF_RE.search(page).group(1))
        assert resp.status_code in (302, 303)
        self.csrf = CSRF_RE.search(self.get("/").get_data(as_text=True)).group(1)

    def get(self, url, **kw):
        with self.app.app_context():
            return self.client.get(url, **kw)

    def post(self, url, data=None, token=None, **kw):
        with self.app.app_context():
            return self.client.post(url, data={**(data or {}),
                                               "csrf_token": token or self.csrf}, **kw)


@pytest.mark.parametrize("path", ["/reports/", "/reports/turnaround", "/reports/costs",
                                  "/reports/technicians", "/reports/surveys", "/reports/queue",
                                  "/reports/sms"])
def test_manager_opens_every_report_page(app, history, path):
    client = Staff(app, "manager1")
    resp = client.get(path + ("&" if "?" in path else "?") + "from=2026-01-01&to=2026-01-31")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html  # CSP: no inline code or styles
    if path in ("/reports/", "/reports/turnaround", "/reports/costs"):
        assert '<script type="application/json"' in html  # the charts' data


def test_reception_may_not_open_reports(app, history):
    client = Staff(app, "reception1")
    assert client.get("/reports/turnaround").status_code == 403
    assert "/reports/" not in client.get("/").get_data(as_text=True)


def test_report_csv_has_a_bom_raw_values_and_persian(app, history):
    client = Staff(app, "manager1")
    resp = client.get("/reports/turnaround?from=2026-01-01&to=2026-01-31&group_by=technician"
                      "&format=csv")
    assert resp.status_code == 200 and resp.content_type == "text/csv; charset=utf-8"
    assert "attachment" in resp.headers["Content-Disposition"]
    assert resp.data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    # raw values, so the header says their unit (the page shows hours and minutes)
    assert [h for h in table[0] if "(" in h] and all("(ثانیه)" in h for h in table[0][5:8])
    body = {(row[0], row[2]): row for row in table[1:]}
    assert body[("tech_a", "repair")][1] == "رضا احمدی"
    assert body[("tech_a", "repair")][4:8] == ["2", "18000.0", "20880.0", "18000.0"]


def test_report_xlsx_is_right_to_left_in_persian(app, history):
    from openpyxl import load_workbook
    client = Staff(app, "manager1")
    resp = client.get("/reports/costs?from=2026-01-01&to=2026-01-31&group_by=technician"
                      "&format=xlsx&lang=fa")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.data)).active
    assert ws.sheet_view.rightToLeft is True
    assert ws.freeze_panes == "A2"
    titles = [c.value for c in ws[1]]
    values = {row[0]: dict(zip(titles, row)) for row in ws.iter_rows(min_row=2, values_only=True)}
    assert values["tech_a"]["پذیرش‌های ثبت‌شده"] == 3
    assert values["tech_a"]["جمع برآوردها (ریال)"] == 4_200_000


def test_filters_stay_in_the_url_and_bad_ones_are_named(app, history):
    client = Staff(app, "manager1")
    html = client.get("/reports/costs?from=2026-01-01&to=2026-01-31&group_by=jalali_month"
                      "&lang=en").get_data(as_text=True)
    assert 'value="2026-01-01"' in html and 'value="jalali_month" selected' in html
    assert "(31 days, shop time)" in html
    one_day = client.get("/reports/costs?from=2026-01-05&to=2026-01-05&lang=en")
    assert "(1 day, shop time)" in one_day.get_data(as_text=True)
    # the export links keep the filters
    assert re.search(r'href="[^"]*from=2026-01-01[^"]*group_by=jalali_month[^"]*format=csv"',
                     html)
    # in Persian the form shows the Jalali dates the date picker writes (1 Jan 2026 = 1404/10/11),
    # in Persian digits
    html = client.get("/reports/costs?from=2026-01-01&to=2026-01-31&lang=fa").get_data(
        as_text=True)
    assert 'value="۱۴۰۴/۱۰/۱۱"' in html
    resp = client.get("/reports/costs?from=yesterday")
    assert resp.status_code == 422


def test_the_cost_report_counts_jalali_months_on_a_persian_page(app, history):
    client = Staff(app, "manager1")
    fa = client.get("/reports/costs?from=2026-01-01&to=2026-01-31&lang=fa").get_data(
        as_text=True)
    assert 'value="jalali_month" selected' in fa and "دی ۱۴۰۴" in fa
    en = client.get("/reports/costs?from=2026-01-01&to=2026-01-31&lang=en").get_data(
        as_text=True)
    assert 'value="month" selected' in en


def chart_of(resp, chart_id) -> dict:
    """The data the page hands its chart ``chart_id``."""
    html = resp.get_data(as_text=True)
    found = re.search(rf'<script type="application/json" id="{chart_id}">(.*?)</script>',
                      html, re.S)
    return json.loads(found.group(1))


def test_charts_by_period_have_every_period_of_the_range_the_empty_ones_too(app, history):
    """Bars of days or weeks apart do not stand side by side as if consecutive: an empty
    period is 0 (money) or a gap (a median, a score)."""
    client = Staff(app, "manager1")
    january = "from=2026-01-01&to=2026-01-31&lang=en"
    # Saturdays 27 Dec to 31 Jan: six weeks; stages only in the weeks of the 10th, 17th, 31st
    turnaround = chart_of(client.get(f"/reports/turnaround?{january}&group_by=week"),
                          "chart-turnaround")
    assert len(turnaround["labels"]) == 6
    total = turnaround["datasets"][-1]["data"]
    assert total[0] is None and total[1] is None and total[2] is not None
    # paid on 11 and 15 January (T3's hand-back on the 16th paid nothing); every day of January
    takings = chart_of(client.get(f"/reports/takings?{january}&group_by=day"),
                       "chart-takings")
    assert len(takings["labels"]) == 31
    paid = [sum(d["data"][i] for d in takings["datasets"]) for i in range(31)]
    assert [i + 1 for i, amount in enumerate(paid) if amount] == [11, 15]
    assert paid[11] == 0  # the 12th, between them
    # admissions in January only (T5's at 22:30 on the 31st): three months, two of them 0
    costs = chart_of(client.get("/reports/costs?from=2025-12-01&to=2026-02-28&lang=en"
                                "&group_by=month"), "chart-costs")
    assert costs["labels"] == ["December 2025", "January 2026", "February 2026"]
    assert [d["data"][0] for d in costs["datasets"]] == [0, 0, 0, 0]
    assert [d["data"][2] for d in costs["datasets"]] == [0, 0, 0, 0]
    assert costs["datasets"][1]["data"][1] == 430_000  # January's billed total, in toman
    survey = chart_of(client.get(f"/reports/surveys?{january}&group_by=week"), "chart-survey")
    assert len(survey["labels"]) == 6
    assert survey["datasets"][0]["data"][:2] == [None, None]  # no deliveries: no score


def test_a_bad_filter_shows_what_the_page_says_it_shows(app, users):
    """"Some filters are not valid; the report shows the last 30 days": and it does, with the
    bad field named in the page's words, not left empty."""
    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as svc

    from .conftest import INTAKE
    svc.admit(INTAKE, Actor.staff(users["reception"]))  # admitted today
    client = Staff(app, "manager1")
    resp = client.get("/reports/costs?from=1405/13/40&lang=en")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "the report shows the last 30 days" in page
    assert '<li data-bad-filter="from"><bdi>From</bdi>:' in page
    assert "Nothing in this range." not in page and 'data-export="csv"' in page
    assert client.get("/reports/costs?from=1405/13/40&format=csv").status_code == 422


def test_manager_sets_the_follow_up_of_a_complaint(app, history):
    client = Staff(app, "manager1")
    page = client.get("/reports/surveys?from=2026-01-01&to=2026-01-31")
    html = page.get_data(as_text=True)
    assert "خیلی دیر شد" in html
    item = r.survey_followups(jan())[0]
    # the ticket's number and the customer's phone as every Persian page writes them
    from servicedesk.i18n import localize_digits
    from servicedesk.slips import national_phone
    assert f"<bdi>{localize_digits(item['ticket_number'], 'fa')}</bdi>" in html
    assert localize_digits(national_phone(item["phone"]), "fa") in html
    assert item["phone"] not in html.replace(f'href="tel:{item["phone"]}"', "")
    resp = client.post(f"/reports/surveys/{item['id']}/followup",
                       {"status": "done",
                        "next": "/reports/surveys?from=2026-01-01&to=2026-01-31"})
    assert resp.status_code == 302 and resp.location.endswith("to=2026-01-31")
    db.session.expire_all()
    assert db.session.get(SurveyResponse, item["id"]).followup_status == "done"


def test_admin_sees_follow_ups_but_may_not_set_them(app, history):
    client = Staff(app, "admin1")
    html = client.get("/reports/surveys?from=2026-01-01&to=2026-01-31").get_data(as_text=True)
    assert "خیلی دیر شد" in html and "/followup" not in html
    item = r.survey_followups(jan())[0]
    assert client.post(f"/reports/surveys/{item['id']}/followup",
                       {"status": "done"}).status_code == 403


def test_dashboard_json_refresh(app, history):
    client = Staff(app, "manager1")
    data = client.get("/reports/dashboard.json").get_json()
    assert set(data["charts"]) == {"states", "turnaround", "satisfaction"}
    assert data["counts"]["states"]["repair"] == 1
    assert len(data["charts"]["turnaround"]["labels"]) == 12


def test_api_turnaround_shape(api, history):
    resp = api["manager"].get("/api/v1/reports/turnaround?from=2026-01-01&to=2026-01-31")
    assert resp.status_code == 200
    body = resp.get_json()
    assert list(body) == ["stages"]
    assert [s["stage"] for s in body["stages"]] == list(r.STAGES)
    assert body["stages"][1] == {"stage": "intake", "count": 5, "median_seconds": 3600.0,
                                 "p90_seconds": 5760.0, "mean_seconds": 3600.0}
    empty = api["manager"].get("/api/v1/reports/turnaround?from=2025-06-01&to=2025-06-30")
    assert empty.get_json()["stages"][0] == {"stage": "queue_wait", "count": 0,
                                             "median_seconds": None, "p90_seconds": None,
                                             "mean_seconds": None}
    tech = api["manager"].get("/api/v1/reports/turnaround?from=2026-01-01&to=2026-01-31"
                              "&technician=tech_a").get_json()
    assert tech["stages"][4]["count"] == 2


def test_api_costs_and_survey_shapes(api, history):
    rows = api["manager"].get("/api/v1/reports/costs?from=2026-01-01&to=2026-01-31"
                              "&group_by=technician").get_json()["rows"]
    assert {row["key"]: row for row in rows}["tech_a"] == {
        "key": "tech_a", "tickets": 3, "estimates": 3, "approved": 3, "declined": 0,
        "awaiting": 0, "estimate_total": 4_200_000, "estimate_total_min": 4_200_000,
        "estimate_total_max": 4_200_000, "final_total": 4_300_000,
        "parts_total": 3_500_000, "labour_total": 800_000, "paid_total": 4_300_000}
    survey = api["manager"].get("/api/v1/reports/survey?from=2026-01-01&to=2026-01-31")
    assert survey.get_json() == {"responses": 2, "response_rate": 0.6667, "csat_mean": 3.5,
                                 "nps": 50.0}


def test_the_api_counts_costs_by_the_shops_months_unless_told(app, api, history):
    """The Persian shop's page shows Jalali months; so does its API by default (and says so
    in the OpenAPI document); an English shop's, Gregorian months."""
    url = "/api/v1/reports/costs?from=2026-01-01&to=2026-01-31"

    def keys(query=""):
        return [row["key"] for row in api["manager"].get(url + query).get_json()["rows"]]

    def documented_default():
        doc = app.test_client().get("/api/v1/openapi.json").get_json()
        [param] = [p for p in doc["paths"]["/reports/costs"]["get"]["parameters"]
                   if p["name"] == "group_by"]
        return param["schema"]["default"]
    assert keys() == ["1404-10", "1404-11"] and documented_default() == "jalali_month"
    assert keys("&group_by=month") == ["2026-01"]
    app.config["SERVICEDESK_LOCALE"] = "en"
    assert keys() == ["2026-01"] and documented_default() == "month"


@pytest.mark.parametrize("report", ["survey", "technicians", "queue", "sms"])
def test_a_report_without_groups_says_it_is_not_grouped(api, report):
    resp = api["manager"].get(f"/api/v1/reports/{report}?group_by=technician&lang=en")
    assert resp.status_code == 422
    assert resp.get_json()["fields"] == {"group_by": "This report is not grouped."}


def test_api_needs_a_token_and_the_permission(app, api, history):
    assert app.test_client().get("/api/v1/reports/turnaround").status_code == 401
    assert api["technician"].get("/api/v1/reports/turnaround").status_code == 403
    bad = api["manager"].get("/api/v1/reports/costs?group_by=colour")
    assert bad.status_code == 422 and "group_by" in bad.get_json()["fields"]


def test_api_sets_a_follow_up(api, history):
    item = r.survey_followups(jan())[0]
    url = f"/api/v1/reports/survey/responses/{item['id']}/followup"
    assert api["admin"].post(url, json={"status": "done"}).status_code == 403
    assert api["manager"].post(url, json={"status": "maybe"}).status_code == 422
    # malformed JSON is a 400, as everywhere in the API; JSON that is no object a 422
    assert api["manager"].post(url, data="{bad", content_type="application/json"
                               ).status_code == 400
    assert api["manager"].post(url, json=["done"]).status_code == 422
    resp = api["manager"].post(url, json={"status": "done"})
    assert resp.get_json() == {"id": item["id"], "followup_status": "done"}


# --- a second branch ----------------------------------------------------------------------------

# Two tickets at Tajrish (code T), in January, with stage durations next to their events.
TAJRISH = [
    {   # B1, tech_b: a plain repair. Monday 2026-01-12.
        "external_id": "B1", "branch": "T",
        "customer": {"name": "Parisa Nouri", "phone": "09127778899"},
        "device": {"kind": "phone", "brand": "Huawei", "model": "P30"},
        "problem": "Screen", "technician": "tech_b",
        "visit": {"issued_at": "2026-01-12T05:30:00Z", "called_at": "2026-01-12T05:50:00Z"},
        "events": [ev("admit", "2026-01-12T06:00:00Z"),            # queue_wait 1200
                   ev("send_to_repair", "2026-01-12T07:00:00Z"),   # intake 3600
                   ev("quote", "2026-01-12T08:00:00Z"),            # diagnosis 3600
                   ev("approve", "2026-01-12T09:00:00Z"),          # approval 3600
                   ev("finish", "2026-01-12T11:00:00Z"),           # repair 7200
                   ev("deliver", "2026-01-13T06:00:00Z")],         # pickup 68400, total 86400
        "lines": [line("part", 1, 800_000, "estimate"), line("labour", 1, 200_000, "estimate"),
                  line("part", 1, 800_000, "final"), line("labour", 1, 300_000, "final")],
    },
    {   # B2, tech_a: the customer declines. Tuesday 2026-01-20.
        "external_id": "B2", "branch": "Tajrish",
        "customer": {"name": "Omid Jafari", "phone": "09128889900"},
        "device": {"kind": "phone", "brand": "Nokia", "model": "G21"},
        "problem": "Speaker", "technician": "tech_a",
        "events": [ev("admit", "2026-01-20T06:00:00Z"),
                   ev("send_to_repair", "2026-01-20T08:00:00Z"),   # intake 7200
                   ev("quote", "2026-01-20T10:00:00Z"),            # diagnosis 7200
                   ev("decline", "2026-01-20T12:00:00Z"),          # approval 7200
                   ev("deliver", "2026-01-20T14:00:00Z")],         # pickup 7200, total 28800
        "lines": [line("part", 1, 1_500_000, "estimate")],
    },
]

TAJRISH_JANUARY = {
    "queue_wait": (1, 1200.0, 1200.0, 1200.0),          # 1200
    "intake": (2, 5400.0, 6840.0, 5400.0),              # 3600 7200
    "diagnosis": (2, 5400.0, 6840.0, 5400.0),           # 3600 7200
    "approval": (2, 5400.0, 6840.0, 5400.0),            # 3600 7200
    "repair": (1, 7200.0, 7200.0, 7200.0),              # 7200
    "waiting_parts": (0, None, None, None),
    "pickup": (2, 37800.0, 62280.0, 37800.0),           # 7200 68400
    "total": (2, 57600.0, 80640.0, 57600.0),            # 28800 86400
}
# Both branches: JANUARY's values with Tajrish's added, worked out the same way.
BOTH_JANUARY = {
    "queue_wait": (4, 900.0, 1620.0, 975.0),            # 300 600 1200 1800
    "diagnosis": (6, 7200.0, 10800.0, 7200.0),          # 3600 3600 7200 7200 7200 14400
    "approval": (6, 5400.0, 75600.0, 28200.0),          # 3600 3600 3600 7200 64800 86400
    "repair": (3, 14400.0, 20160.0, 14400.0),           # 7200 14400 21600
    "waiting_parts": (1, 93600.0, 93600.0, 93600.0),    # 93600
    "pickup": (5, 57600.0, 64080.0, 39600.0),           # 7200 7200 57600 57600 68400
    "total": (5, 86400.0, 195120.0, 111960.0),          # 28800 86400 86400 99000 259200
}
COST_KEYS = ("tickets", "estimates", "approved", "estimate_total", "final_total", "parts_total",
             "labour_total")
MAIN_COSTS = (7, 5, 4, 7_600_000, 4_300_000, 3_500_000, 800_000)
# B1: estimate 0.8M + 0.2M, billed 0.8M + 0.3M; B2: estimate 1.5M, declined
TAJRISH_COSTS = (2, 2, 1, 2_500_000, 1_100_000, 800_000, 300_000)
BOTH_COSTS = (9, 7, 5, 10_100_000, 5_400_000, 4_300_000, 1_100_000)


@pytest.fixture
def two_branches(history):
    """The fixed history at the default branch (code A), and TAJRISH at a second one."""
    db.session.add(Branch(name="Tajrish", code="T"))
    db.session.commit()
    report = import_lines(json.dumps(rec, ensure_ascii=False) for rec in TAJRISH)
    assert report.errors == [] and report.imported == len(TAJRISH)
    db.session.expire_all()
    return {"A": _branch_id("A"), "T": _branch_id("T")}


def _branch_id(code):
    return db.session.scalar(select(Branch.id).where(Branch.code == code))


def test_each_branchs_turnaround_counts_only_its_tickets(two_branches):
    assert by_stage(r.turnaround(jan(branch_id=two_branches["A"]))) == JANUARY
    assert by_stage(r.turnaround(jan(branch_id=two_branches["T"]))) == TAJRISH_JANUARY
    both = by_stage(r.turnaround(jan()))
    assert {stage: both[stage] for stage in BOTH_JANUARY} == BOTH_JANUARY
    # intake: 1800 1800 3600 3600 3600 7200 7200 (mean 28800 / 7, to a tenth of a second)
    assert both["intake"] == (7, 3600.0, 7200.0, 4114.3)
    for stage in r.STAGES:  # no filter: every ticket of both, once
        assert both[stage][0] == JANUARY[stage][0] + TAJRISH_JANUARY[stage][0], stage


def test_each_branchs_costs_count_only_its_tickets(two_branches):
    def month(**kw):
        return costs_by_key(r.costs(jan(group_by="month", **kw)))["2026-01"]
    assert month(branch_id=two_branches["A"]) == MAIN_COSTS
    assert month(branch_id=two_branches["T"]) == TAJRISH_COSTS
    assert month() == BOTH_COSTS
    assert costs_by_key(r.costs(jan(group_by="technician", branch_id=two_branches["T"]))) == {
        "tech_b": (1, 1, 1, 1_000_000, 1_100_000, 800_000, 300_000),   # B1
        "tech_a": (1, 1, 0, 1_500_000, 0, 0, 0),                       # B2
    }


def test_the_api_filters_turnaround_and_costs_by_branch_id_code_or_name(api, two_branches):
    manager = api["manager"]
    url = "/api/v1/reports/turnaround?from=2026-01-01&to=2026-01-31&branch="

    def stages(branch):
        resp = manager.get(url + branch)
        assert resp.status_code == 200, resp.get_json()
        return {s["stage"]: (s["count"], s["median_seconds"], s["p90_seconds"],
                             s["mean_seconds"]) for s in resp.get_json()["stages"]}
    for branch in (str(two_branches["T"]), "T", "Tajrish"):
        assert stages(branch) == TAJRISH_JANUARY, branch
    for branch in (str(two_branches["A"]), "A", "شعبهٔ مرکزی"):  # the default's Persian name
        assert stages(branch) == JANUARY, branch
    assert stages("")["total"] == BOTH_JANUARY["total"]

    def costs(branch):
        resp = manager.get("/api/v1/reports/costs?from=2026-01-01&to=2026-01-31"
                           "&group_by=month&branch=" + branch)
        assert resp.status_code == 200
        return {row["key"]: tuple(row[k] for k in COST_KEYS) for row in resp.get_json()["rows"]}
    assert costs("T") == {"2026-01": TAJRISH_COSTS}
    assert costs("شعبهٔ مرکزی") == {"2026-01": MAIN_COSTS}
    assert costs("") == {"2026-01": BOTH_COSTS}

    unknown = manager.get(url + "Karaj")
    assert unknown.status_code == 422 and "branch" in unknown.get_json()["fields"]


class _Table(HTMLParser):
    """The rows of the page's table with the given id, as lists of cell texts (header first)."""

    def __init__(self, table_id):
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def page_table(resp, table_id="report-table") -> list[dict]:
    """The page's table as one dict per row, keyed by the column titles."""
    parser = _Table(table_id)
    parser.feed(resp.get_data(as_text=True))
    header, *body = parser.rows
    return [dict(zip(header, row)) for row in body if len(row) == len(header)]


def test_the_report_pages_filter_by_branch(app, two_branches):
    client = Staff(app, "manager1")
    url = "/reports/{}?from=2026-01-01&to=2026-01-31&lang=en&branch={}"
    page = client.get(url.format("turnaround", two_branches["T"]))
    html = page.get_data(as_text=True)
    assert f'<option value="{two_branches["T"]}" selected>Tajrish</option>' in html
    rows = {row["Stage"]: row for row in page_table(page)}
    assert {stage: row["Tickets"] for stage, row in rows.items()} == {
        "Queue wait": "1", "Intake": "2", "Diagnosis": "2", "Customer's approval": "2",
        "Repair (without parts waits)": "1", "Waiting for parts": "0", "Pickup": "2",
        "Total (admit to delivery)": "2"}
    # pickup 7200 68400; total 28800 86400
    assert [rows["Pickup"][k] for k in ("Median", "90th percentile", "Mean")] == \
        ["10 h 30 min", "17 h 18 min", "10 h 30 min"]
    assert rows["Total (admit to delivery)"]["90th percentile"] == "22 h 24 min"

    main = {row["Stage"]: row["Tickets"]
            for row in page_table(client.get(url.format("turnaround", two_branches["A"])))}
    both = {row["Stage"]: row["Tickets"]
            for row in page_table(client.get(url.format("turnaround", "")))}
    assert (main["Intake"], main["Total (admit to delivery)"]) == ("5", "3")
    assert (both["Intake"], both["Total (admit to delivery)"]) == ("7", "5")

    [tajrish] = page_table(client.get(url.format("costs", two_branches["T"])))
    assert tajrish["Group name"] == "January 2026"
    # money columns name their unit once, in the header, so the table fits the screen
    assert [tajrish[k] for k in ("Tickets admitted", "Estimates", "Approved", "Approval rate",
                                 "Repaired", "Estimates total (toman)", "Billed total (toman)",
                                 "Parts (toman)", "Labour (toman)")] == \
        ["2", "2", "1", "50.0%", "1", "250,000", "110,000", "80,000", "30,000"]
    [main] = page_table(client.get(url.format("costs", two_branches["A"])))
    [both] = page_table(client.get(url.format("costs", "")))
    assert (main["Tickets admitted"], main["Billed total (toman)"]) == ("7", "430,000")
    assert (both["Tickets admitted"], both["Billed total (toman)"]) == ("9", "540,000")

    # The export of a filtered page is filtered the same way.
    resp = client.get(url.format("turnaround", "T") + "&format=csv")
    table = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert {row["Stage code"]: row["Tickets"] for row in table} == {
        stage: str(values[0]) for stage, values in TAJRISH_JANUARY.items()}


# --- every report page exports its table --------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# page, extra filters, the columns that name each row and the whole numbers (as on the page)
EXPORTS = [
    ("turnaround", "&group_by=technician", ["Group name", "Stage", "Tickets"]),
    ("costs", "&group_by=technician", ["Group name", "Tickets admitted", "Estimates",
                                       "Approved", "Repaired"]),
    ("technicians", "", ["Technician", "Repairs finished", "Returns within warranty",
                         "Survey answers"]),
    ("surveys", "&group_by=technician", ["Group name", "Delivered", "Answers", "Complaints",
                                         "Low scores"]),
    ("queue", "", None),  # a heatmap on the page, a row per weekday and hour in the file
    ("sms", "", ["Event", "Status", "Messages", "Segments"]),
]


def _range_of(name) -> tuple[str, str]:
    # The history is in January 2026; the SMS report needs messages, written today.
    if name == "sms":
        today = r.shop_today().isoformat()
        return today, today
    return "2026-01-01", "2026-01-31"


def _shown(value: str) -> str:
    """A raw CSV value as the English page prints it (text, or a whole number)."""
    if value == "":
        return "–"
    return f"{int(value):,}" if value.lstrip("-").isdigit() else value


def _queue_cells(resp) -> dict:
    """The heatmap on the queue page: {(weekday, hour): visits} for the cells with visits."""
    parser = _Table("heatmap")
    parser.feed(resp.get_data(as_text=True))
    (_, *hours), *rows = parser.rows
    return {(row[0], hour): visits for row in rows for hour, visits in zip(hours, row[1:])
            if visits}


@pytest.mark.parametrize("name,extra,shown", EXPORTS, ids=[e[0] for e in EXPORTS])
def test_every_report_page_exports_what_it_shows_as_csv_and_xlsx(app, history, make_ticket,
                                                                 name, extra, shown):
    from openpyxl import load_workbook
    if name == "sms":
        make_ticket("repair")  # four SMS, written today
    client = Staff(app, "manager1")
    start, end = _range_of(name)
    url = f"/reports/{name}?from={start}&to={end}{extra}"
    page = client.get(url + "&lang=en")
    assert page.status_code == 200

    resp = client.get(url + "&lang=en&format=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"].startswith("attachment")
    assert f"{name}_{start}_{end}.csv" in resp.headers["Content-Disposition"]
    assert resp.data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads it as UTF-8
    header, *body = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert body, "the history has rows for every report"
    assert all(len(row) == len(header) for row in body)

    if shown is None:  # the queue: one row per heatmap cell with visits
        cells = _queue_cells(page)
        col = {title: i for i, title in enumerate(header)}
        assert {(row[col["Weekday"]], row[col["Hour"]]): row[col["Visits"]] for row in body} \
            == cells
        assert len(cells) == 3  # Saturday and Monday 9:00, Tuesday 8:00 (Tehran)
    else:
        # the page's money columns and the file's raw money and durations say their unit in
        # the header
        rows = [{re.sub(r" \(toman\)$", "", title): value for title, value in row.items()}
                for row in page_table(page)]
        bare = [re.sub(r" \((rial|seconds)\)$", "", title) for title in header]
        assert set(rows[0]) <= set(bare)  # what the page shows, the file has
        assert [[row[title] for title in shown] for row in rows] == \
            [[_shown(row[bare.index(title)]) for title in shown] for row in body]

    # The same table as a workbook: left-to-right in English, right-to-left in Persian.
    for lang, rtl in (("en", False), ("fa", True)):
        resp = client.get(f"{url}&lang={lang}&format=xlsx")
        assert resp.status_code == 200 and resp.mimetype == XLSX
        assert f"{name}_{start}_{end}.xlsx" in resp.headers["Content-Disposition"]
        ws = load_workbook(io.BytesIO(resp.data)).active
        assert bool(ws.sheet_view.rightToLeft) is rtl, lang
        titles, *values = list(ws.iter_rows(values_only=True))
        sheet = [[_number(v) for v in row] for row in values]
        file = [[_number(v) for v in row] for row in body]
        if lang == "en":  # the CSV's header and values ("1800.0" there, 1800 here)
            assert list(titles) == header and sheet == file
        else:  # titles and labels in Persian, the same numbers
            assert len(titles) == len(header) and titles[0] != header[0]
            assert [[v for v in row if isinstance(v, float)] for row in sheet] == \
                [[v for v in row if isinstance(v, float)] for row in file]


def _number(value):
    """A cell's value, a number when it reads as one ("1800.0" in the CSV, 1800 in a sheet)."""
    if value is None or value == "":
        return ""
    try:
        return float(value)
    except ValueError:
        return value


@pytest.mark.parametrize("query,field", [
    ("branch=%C2%B2", "branch"),                     # "²": a digit to str.isdigit, not to int
    ("technician=%C2%B2", "technician"),
    ("branch=99999999999999999999", "branch"),       # beyond the id column
    ("technician=2147483648", "technician"),
    ("brand=Sam%00sung", "brand"),                   # a NUL PostgreSQL cannot take
    ("branch=A%00", "branch"),
    ("from=9999-12-01&to=9999-12-31", "to"),         # the day after the range overflows
    ("from=0001-01-01&to=0001-01-20&group_by=week", "from"),  # Jalali year 1
])
def test_impossible_report_filters_are_refused_by_name(api, query, field):
    for url in ("/api/v1/reports/turnaround", "/api/v1/reports/costs"):
        resp = api["manager"].get(f"{url}?{query}")
        assert resp.status_code == 422, (url, resp.get_data(as_text=True)[:300])
        assert field in resp.get_json()["fields"], resp.get_json()


def test_the_date_fields_show_the_pages_digits_and_send_a_range_the_page_reads(app, users):
    """Persian: From and To in Persian digits (۱۴۰۴/۱۰/۱۱), as the till's day field, which
    the form sends back as they are and the page reads; English: the ISO dates."""
    import jdatetime
    client = Staff(app, "manager1")
    fa = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

    def fields(page):
        return tuple(re.search(rf'id="f-{name}" name="{name}"[^>]* value="([^"]*)"',
                               page).group(1) for name in ("from", "to"))

    page = client.get("/reports/costs?from=2026-01-01&to=2026-01-31").get_data(as_text=True)
    shown = fields(page)
    assert shown == tuple(jdatetime.date.fromgregorian(date=d).strftime("%Y/%m/%d").translate(fa)
                          for d in (date(2026, 1, 1), date(2026, 1, 31)))
    assert 'id="f-from" name="from" data-date data-digits="fa"' in page
    again = client.get("/reports/costs", query_string={"from": shown[0], "to": shown[1]})
    assert again.status_code == 200 and fields(again.get_data(as_text=True)) == shown
    page = client.get("/reports/costs?from=2026-01-01&to=2026-01-31&lang=en")
    assert fields(page.get_data(as_text=True)) == ("2026-01-01", "2026-01-31")
