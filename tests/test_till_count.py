"""The cash drawer counted at the close: what was in it, the float, and the cash the day's
hand-backs and refunds say it should hold, kept as counted, on the till page and its slip."""
from datetime import timedelta

from sqlalchemy import func, select

from servicedesk import reports as r
from servicedesk.extensions import db
from servicedesk.models import AuditLog, TillCount

from .test_reception import Staff, reload, text


def hand_back(desk, make_ticket, method, amount="1,400,000", **extra):
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": amount, "payment_method": method, "version": str(ticket.version),
        **extra})
    assert resp.status_code == 302, text(resp)
    db.session.expire_all()
    return reload(ticket)


def test_the_desk_counts_the_drawer_against_the_days_cash(app, api, make_ticket):
    desk = Staff(app, "reception1")
    cash = hand_back(desk, make_ticket, "cash")
    hand_back(desk, make_ticket, "card")  # not in the drawer
    assert api["manager"].post(f"/api/v1/tickets/{cash.id}/refunds", json={
        "amount": 4_000_000, "payment_method": "cash", "reason": "part returned"}
    ).status_code == 200  # 400,000 toman out of the drawer
    page = text(desk.get("/desk/takings?lang=en"))
    assert 'id="till-count"' in page and "data-till-counts" not in page  # nothing counted yet
    resp = desk.post("/desk/takings/count?lang=en", {
        "counted": "1,050,000", "float_amount": "100,000", "note": "end of day",
        "money_unit": "toman"})
    assert resp.status_code == 302
    [count] = db.session.scalars(select(TillCount)).all()
    # 1,400,000 cash taken - 400,000 given back = 1,000,000 expected; 1,050,000 - 100,000 float
    assert (count.counted, count.float_amount, count.expected) == (
        10_500_000, 1_000_000, 10_000_000)
    assert count.difference == -500_000 and count.counted_by_name == "reception1"
    assert count.day == r.shop_today()
    page = text(desk.get("/desk/takings?lang=en"))
    counted = page[page.index("data-till-counts"):]
    assert "short by 50,000 toman" in counted and "end of day" in counted
    assert "1,000,000 toman" in counted  # what the drawer should hold
    slip = text(desk.get("/desk/takings/slip?lang=en"))
    # on the slip the difference is an amount in the amounts' column, its label saying which
    assert "data-till-count" in slip
    assert '<dt>Cash short</dt><dd data-till-difference="short">50,000 toman</dd>' in slip
    [logged] = db.session.scalars(select(AuditLog).where(AuditLog.action == "till.count"))
    assert logged.value_to["difference"] == -500_000
    # a hand-back after the count does not change what that count found
    hand_back(desk, make_ticket, "cash")
    db.session.expire_all()
    assert db.session.get(TillCount, count.id).expected == 10_000_000
    # a recount after it (2,800,000 cash - 400,000 back, and the float): both counts kept
    assert desk.post("/desk/takings/count?lang=en", {
        "counted": "2,500,000", "float_amount": "100,000", "money_unit": "toman"}
    ).status_code == 302
    page = text(desk.get("/desk/takings?lang=en"))
    assert page.count('data-count="') == 2 and "matches" in page
    # the slip gives the last count, the drawer as handed over, and says there were others
    slip = text(desk.get("/desk/takings/slip?lang=en"))
    assert "matches" in slip and "short by" not in slip and "Earlier counts that day" in slip


def test_a_bad_count_is_refused_naming_the_field_and_stores_nothing(app, make_ticket):
    desk = Staff(app, "reception1")
    for form, field in (({"counted": ""}, "till-counted-error"),
                        ({"counted": "abc"}, "till-counted-error"),
                        ({"counted": "-5"}, "till-counted-error"),
                        ({"counted": "100", "float_amount": "x"}, "till-float-error"),
                        # the float is part of what was counted
                        ({"counted": "100,000", "float_amount": "200,000"},
                         "till-float-error")):
        resp = desk.post("/desk/takings/count?lang=en", {**form, "money_unit": "toman"})
        assert resp.status_code == 422, form
        page = text(resp)
        assert f'id="{field}"' in page, form
        assert f'value="{form["counted"]}"' in page  # what was typed, to correct
    tomorrow = (r.shop_today() + timedelta(days=1)).isoformat()
    resp = desk.post(f"/desk/takings/count?day={tomorrow}&lang=en",
                     {"counted": "100", "money_unit": "toman"})
    assert resp.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(TillCount)) == 0


def test_only_mine_counts_no_drawer(app, make_ticket):
    """A desk's own hand-backs are not a drawer: the count is the branch's, on its page."""
    desk = Staff(app, "reception1")
    assert 'id="till-count"' not in text(desk.get("/desk/takings?mine=1&lang=en"))
