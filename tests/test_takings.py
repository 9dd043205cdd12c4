"""The till (what the desks took at the hand-backs): the delivery desk's day, its printed slip,
and the manager's takings report. On both databases: the amounts and methods are read from each
hand-back's event data, which SQLite and PostgreSQL read differently."""
import csv
import io
from datetime import datetime, timedelta, timezone

import jdatetime
import pytest
from sqlalchemy import select
from sqlalchemy import update as sa_update

from servicedesk import reports as r
from servicedesk.extensions import db
from servicedesk.models import AuditLog, TicketEvent
from servicedesk.services import tickets as ticket_service

from .conftest import add_user, actor_for
from .test_reception import Staff, reload, text

DUE = 14_000_000  # rials: the sample ticket's bill (1,400,000 toman)


@pytest.fixture
def day_of_handbacks(app, users, make_ticket):
    """Hand-backs of today: reception1 took cash and a card; reception2 a card-to-card
    transfer of a discounted bill; the API one with no method said; a device returned
    unrepaired paid nothing. One more was yesterday."""
    second = add_user("reception2", "reception", full_name="Sara Karimi")
    desk1, desk2 = Staff(app, "reception1"), Staff(app, "reception2")

    def hand_back(client, method, amount="1,400,000", **extra):
        ticket = make_ticket("ready")
        form = {"amount_paid": amount, "version": str(ticket.version), **extra}
        if method:
            form["payment_method"] = method
        resp = client.post(f"/desk/delivery/{ticket.id}", form)
        assert resp.status_code == 302, text(resp)
        return reload(ticket)

    tickets = {
        "cash": hand_back(desk1, "cash"),
        "card": hand_back(desk1, "card"),
        "transfer": hand_back(desk2, "transfer", "1,200,000", differs_ok="1"),
    }
    api_ticket = make_ticket("ready")
    ticket_service.fire_event(api_ticket.id, "deliver", actor_for("deliver", users),
                              {"amount_paid": DUE})
    tickets["api"] = reload(api_ticket)
    free = make_ticket("diagnosis")
    ticket_service.fire_event(free.id, "return_unrepaired", actor_for("return_unrepaired", users),
                              {"reason": "No parts"})
    resp = desk1.post(f"/desk/delivery/{free.id}", {"amount_paid": "0",
                                                    "version": str(reload(free).version)})
    assert resp.status_code == 302
    tickets["free"] = reload(free)
    yesterday = hand_back(desk1, "cash", "700,000", differs_ok="1")
    a_day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    db.session.execute(sa_update(TicketEvent).where(
        TicketEvent.ticket_id == yesterday.id, TicketEvent.event == "deliver")
        .values(at=a_day_ago))
    db.session.commit()
    tickets["yesterday"] = yesterday
    return {"tickets": tickets, "desk1": desk1, "desk2": desk2, "second": second,
            "yesterday": r.shop_today(a_day_ago)}


def amounts(html: str) -> dict:
    """The figures the page shows per method (``data-method``), as written."""
    import re
    return dict(re.findall(r'data-method="([a-z]+)">([^<]+)<', html))


def test_the_desk_counts_the_days_takings_by_how_they_were_paid(day_of_handbacks):
    desk = day_of_handbacks["desk1"]
    resp = desk.get("/desk/takings?lang=en")
    assert resp.status_code == 200
    page = text(resp)
    shown = amounts(page)
    # every method the desk offers, the one the API left out, and the total; in toman
    assert shown["cash"] == "1,400,000 toman"
    assert shown["card"] == "1,400,000 toman"
    assert shown["transfer"] == "1,200,000 toman"
    assert shown["none"] == "1,400,000 toman"
    assert shown["total"] == "5,400,000 toman"
    assert "4 hand-backs paid" in page and "1 hand-back paid" in page
    # one row per hand-back of today, the one with nothing to pay too; not yesterday's
    t = day_of_handbacks["tickets"]
    for name in ("cash", "card", "transfer", "api", "free"):
        assert f'data-ticket="{t[name].id}"' in page
    assert f'data-ticket="{t["free"].id}" data-unpaid' in page
    assert f'data-ticket="{t["yesterday"].id}"' not in page
    assert "Sara Karimi" in page and "Not recorded" in page
    # beside the till: all hand-backs, those with nothing to pay, the discount given
    assert 'data-handbacks="5" data-unpaid="1" data-discounts="2000000"' in page
    assert "discounts and credits: 200,000 toman" in page


def test_only_mine_counts_the_users_own_hand_backs(day_of_handbacks):
    page = text(day_of_handbacks["desk2"].get("/desk/takings?mine=1&lang=en"))
    shown = amounts(page)
    assert shown == {"cash": "0 toman", "card": "0 toman", "transfer": "1,200,000 toman",
                     "total": "1,200,000 toman"}
    assert f'data-ticket="{day_of_handbacks["tickets"]["transfer"].id}"' in page
    assert f'data-ticket="{day_of_handbacks["tickets"]["cash"].id}"' not in page


def test_another_day_is_asked_for_in_the_pages_calendar(day_of_handbacks):
    """Yesterday, typed as the Persian date picker writes it (Jalali, Persian digits)."""
    yesterday = jdatetime.date.fromgregorian(date=day_of_handbacks["yesterday"])
    typed = yesterday.strftime("%Y/%m/%d").translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    page = text(day_of_handbacks["desk1"].get("/desk/takings", query_string={"day": typed}))
    assert amounts(page)["total"] == "۷۰۰٬۰۰۰ تومان"
    assert f'data-ticket="{day_of_handbacks["tickets"]["yesterday"].id}"' in page


def test_the_day_field_shows_the_pages_digits_and_sends_a_day_the_page_reads(
        day_of_handbacks):
    """Persian: the day in Persian digits (۱۴۰۵/۰۹/۱۶), which the form sends back as it is
    and the page reads; English: the ISO date."""
    import re
    desk = day_of_handbacks["desk1"]
    yesterday = day_of_handbacks["yesterday"]
    j = jdatetime.date.fromgregorian(date=yesterday)
    page = text(desk.get("/desk/takings", query_string={"day": yesterday.isoformat()}))
    shown = re.search(r'id="till-day" name="day"[^>]* value="([^"]*)"', page).group(1)
    assert shown == j.strftime("%Y/%m/%d").translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    again = text(desk.get("/desk/takings", query_string={"day": shown}))  # the form, sent
    assert amounts(again)["total"] == "۷۰۰٬۰۰۰ تومان"
    page = text(desk.get("/desk/takings", query_string={"day": shown, "lang": "en"}))
    assert re.search(r'id="till-day" name="day"[^>]* value="([^"]*)"', page).group(1) == \
        yesterday.isoformat()


def test_a_bad_day_says_so_and_counts_today(day_of_handbacks):
    resp = day_of_handbacks["desk1"].get("/desk/takings?day=1405/13/40&lang=en")
    assert resp.status_code == 422
    page = text(resp)
    assert "is not a valid date" in page and 'aria-invalid="true"' in page
    assert amounts(page)["total"] == "5,400,000 toman"  # today's, as the heading says
    slip = day_of_handbacks["desk1"].get("/desk/takings/slip?day=yesterday&lang=en")
    assert slip.status_code == 422


def test_the_till_slip_prints_the_totals_and_each_hand_back(day_of_handbacks):
    desk = day_of_handbacks["desk1"]
    before = db.session.scalar(select(db.func.count()).select_from(AuditLog))
    resp = desk.get("/desk/takings/slip?mine=1&lang=en&paper=58")
    assert resp.status_code == 200
    slip = text(resp)
    shown = amounts(slip)
    assert shown["cash"] == "1,400,000 toman" and shown["card"] == "1,400,000 toman"
    assert shown["none"] == "1,400,000 toman"  # the API's hand-back, by the same user
    assert shown["transfer"] == "0 toman" and shown["total"] == "4,200,000 toman"
    assert "paper-58" in slip and "Counted and handed over" in slip and "Received" in slip
    assert '<dd data-unpaid>1</dd>' in slip  # reception1 handed back the free one
    t = day_of_handbacks["tickets"]
    assert t["cash"].number in slip and t["transfer"].number not in slip
    # a till slip printed is recorded, as every slip is
    db.session.expire_all()
    printed = db.session.scalars(select(AuditLog).where(AuditLog.action == "slip.print")
                                 .order_by(AuditLog.id.desc())).first()
    assert printed.object_type == "takings" and printed.value_to["slip"] == "till"
    assert db.session.scalar(select(db.func.count()).select_from(AuditLog)) == before + 1


def test_technicians_do_not_see_the_till(app, users):
    tech = Staff(app, "technician1")
    assert tech.get("/desk/takings").status_code == 403
    assert tech.get("/desk/takings/slip").status_code == 403
    assert Staff(app, "manager1").get("/desk/takings").status_code == 200


def test_the_delivery_desk_links_to_its_till(app, users):
    page = text(Staff(app, "reception1").get("/desk/delivery?lang=en"))
    assert '<a class="btn btn-outline-secondary btn-sm" href="/desk/takings">Today' in page


def test_the_managers_report_groups_takings_by_day_staff_and_branch(app, day_of_handbacks):
    manager = Staff(app, "manager1")
    today = r.shop_today()
    start = day_of_handbacks["yesterday"].isoformat()
    resp = manager.get(f"/reports/takings?from={start}&to={today.isoformat()}&lang=en")
    assert resp.status_code == 200
    page = text(resp)
    assert amounts(page)["total"] == "6,100,000 toman"  # both days
    assert amounts(page)["cash"] == "2,100,000 toman"

    with app.test_request_context("/?lang=en"):
        f = r.parse_filters({"from": start, "group_by": "staff"}, r.TAKINGS_GROUPS)
        rows = r.takings(f)
        by_staff = {(row["key"], row["method"]): (row["handbacks"], row["amount"])
                    for row in rows}
        assert by_staff == {("reception1", "cash"): (2, 21_000_000),
                            ("reception1", "card"): (1, DUE),
                            ("reception1", ""): (1, DUE),  # the API call, by the same user
                            ("reception2", "transfer"): (1, 12_000_000)}
        labels = {row["key"]: row["key_label"] for row in rows}
        assert labels["reception2"] == "Sara Karimi"
        days = r.takings(r.parse_filters({"from": start}, r.TAKINGS_GROUPS))
        per_day = {}
        for row in days:
            per_day[row["key"]] = per_day.get(row["key"], 0) + row["amount"]
        assert per_day == {day_of_handbacks["yesterday"].isoformat(): 7_000_000,
                           today.isoformat(): 54_000_000}
        branch = r.takings(r.parse_filters({"from": start, "group_by": "branch"},
                                           r.TAKINGS_GROUPS))
        assert sum(row["amount"] for row in branch) == 61_000_000
        assert len({row["key"] for row in branch}) == 1

    export = manager.get(f"/reports/takings?from={start}&group_by=staff&format=csv&lang=en")
    assert export.status_code == 200
    table = list(csv.reader(io.StringIO(text(export).lstrip("\ufeff"))))
    assert ["reception2", "Sara Karimi", "transfer", "Card to card", "1", "12000000"] in [
        row[:6] for row in table]

    one_by_one = text(manager.get(f"/reports/takings?from={start}&table=handbacks&lang=en"))
    assert 'name="table" value="handbacks"' in one_by_one  # a new range keeps the table
    for ticket in day_of_handbacks["tickets"].values():  # all, those with nothing paid too
        assert ticket.number in one_by_one, ticket.number
    assert "+00:00" not in one_by_one  # the shop's clock, as the page writes times


def test_a_hand_back_counts_on_the_shops_day_not_utcs(app, users, make_ticket):
    """21:30 UTC on the 1st is 01:00 on the 2nd in Tehran: the till of the 2nd holds it."""
    ticket = make_ticket("delivered")
    at = datetime(2026, 11, 1, 21, 30, tzinfo=timezone.utc)
    db.session.execute(sa_update(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.event == "deliver").values(at=at))
    db.session.commit()
    with app.test_request_context("/?lang=en"):
        on = {d: sum(row["amount"] for row in r.takings(r.parse_filters(
            {"from": d, "to": d}, r.TAKINGS_GROUPS))) for d in ("2026-11-01", "2026-11-02")}
    assert on == {"2026-11-01": 0, "2026-11-02": DUE}


def test_the_api_gives_the_takings_in_rials(app, api, day_of_handbacks):
    resp = api["manager"].get("/api/v1/reports/takings",
                              query_string={"group_by": "staff", "staff": "reception2"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["rows"] == [{"key": "reception2", "key_label": "Sara Karimi",
                             "method": "transfer", "handbacks": 1, "paid": 12_000_000,
                                 "refunds": 0, "refunded": 0, "amount": 12_000_000}]
    assert body["summary"]["amount"] == 12_000_000
    assert [m["method"] for m in body["summary"]["methods"]] == ["cash", "card", "transfer"]
    everyone = api["manager"].get("/api/v1/reports/takings").get_json()  # the last 30 days
    assert everyone["group_by"] == "day" and everyone["summary"]["amount"] == 61_000_000
    today = r.shop_today().isoformat()
    assert [row["key"] for row in everyone["rows"]][-1] == today
    everyone = api["manager"].get(f"/api/v1/reports/takings?from={today}").get_json()
    assert everyone["summary"]["amount"] == 54_000_000
    assert {m["method"]: m["amount"] for m in everyone["summary"]["methods"]}[""] == DUE
    assert api["reception"].get("/api/v1/reports/takings").status_code == 403
    bad = api["manager"].get("/api/v1/reports/takings?group_by=technician")
    assert bad.status_code == 422 and "group_by" in bad.get_json()["fields"]
    for name, value in (("brand", "Apple"), ("service_type", "warranty"),
                        ("technician", "technician1")):  # not how a till is counted
        refused = api["manager"].get(f"/api/v1/reports/takings?{name}={value}")
        assert refused.status_code == 422 and name in refused.get_json()["fields"]
    nobody = api["manager"].get("/api/v1/reports/takings?staff=nobody")
    assert nobody.status_code == 422 and "staff" in nobody.get_json()["fields"]
    assert everyone["totals"] == {"handbacks": 5, "unpaid": 1, "discounts": 2_000_000,
                                  "beyond": 0, "refunds": 0, "refunded": 0}


def test_the_one_by_one_page_says_when_it_is_cut_and_the_download_has_them_all(
        app, make_ticket, monkeypatch):
    for _ in range(3):
        make_ticket("delivered")
    monkeypatch.setattr(r, "HANDBACKS_SHOWN", 2)
    manager = Staff(app, "manager1")
    page = text(manager.get("/reports/takings?table=handbacks&lang=en"))
    assert "data-cut" in page and "The first 2 are shown" in page
    export = text(manager.get("/reports/takings?table=handbacks&format=csv&lang=en"))
    assert len(list(csv.reader(io.StringIO(export.lstrip("\ufeff"))))) == 1 + 3
