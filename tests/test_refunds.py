"""Money given back after the hand-back (a part that failed within the warranty, an
overcharge): the manager's refund, its place in the ticket's trail, the customer's SMS and page,
and the till and reports that count it. On both databases: the till reads each refund's amount
from its record's data, which SQLite and PostgreSQL read differently."""
import csv
import io

import pytest
from sqlalchemy import select

from servicedesk import lifecycle
from servicedesk.extensions import db
from servicedesk.models import Notification, Ticket, TicketEvent
from servicedesk.services import tickets as ticket_service

from .test_api import row_counts
from .test_reception import Staff, reload, text
from .test_takings import amounts

PAID = 14_000_000  # rials: what make_ticket("delivered") paid (1,400,000 toman)


def refund(api, role, ticket_id, **data):
    return api[role].post(f"/api/v1/tickets/{ticket_id}/refunds", json=data)


@pytest.fixture
def delivered(make_ticket):
    return make_ticket("delivered")


def test_the_manager_gives_part_of_the_payment_back_and_the_customer_is_told(api, delivered):
    resp = refund(api, "manager", delivered.id, amount=3_000_000, payment_method="cash",
                  reason="The screen's touch failed; the customer kept the old one")
    assert resp.status_code == 200, resp.get_json()
    t = resp.get_json()
    assert t["state"] == "delivered"  # a refund moves no state
    assert t["amount_paid"] == PAID and t["amount_refunded"] == 3_000_000
    last = t["history"][-1]
    assert last["event"] == "refund" and last["actor"] == "manager1"
    assert last["data"] == {"amount": 3_000_000, "payment_method": "cash",
                            "reason": "The screen's touch failed; the customer kept the old one"}
    sms = t["notifications"][-1]
    assert sms["event"] == "refund" and sms["to"] == "+989121234567"
    assert "Galaxy A54" in sms["body"] and "۳۰۰٬۰۰۰ تومان" in sms["body"]
    ticket = ticket_service.get_ticket(delivered.id)
    assert lifecycle.verify_chain(ticket) is None and lifecycle.verify_records(ticket) == []
    # a second refund: what is left of the payment, no more
    resp = refund(api, "manager", delivered.id, amount=PAID - 3_000_000 + 1,
                  payment_method="card", reason="the rest")
    assert resp.status_code == 422
    # at most what is left, in rials as the API takes them (not the shop's toman)
    assert "۱۱٬۰۰۰٬۰۰۰ ریال قابل" in resp.get_json()["fields"]["amount"]
    resp = refund(api, "manager", delivered.id, amount=PAID - 3_000_000,
                  payment_method="card", reason="the rest")
    assert resp.status_code == 200 and resp.get_json()["amount_refunded"] == PAID
    assert refund(api, "manager", delivered.id, amount=1, payment_method="cash",
                  reason="more").status_code == 422


def test_a_refund_answers_200_with_the_ticket_whose_history_holds_it(app, api, delivered):
    """A refund is a record of the ticket's, with no address of its own: no 201 with a
    Location a client could not GET; the ticket it answers with (and reads back) holds it."""
    resp = refund(api, "manager", delivered.id, amount=1_000_000, payment_method="card",
                  reason="overcharged")
    assert resp.status_code == 200 and "Location" not in resp.headers
    again = api["manager"].get(f"/api/v1/tickets/{delivered.id}").get_json()
    assert again["history"][-1] == resp.get_json()["history"][-1]
    assert again["history"][-1]["event"] == "refund"
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert set(doc["paths"]["/tickets/{id}/refunds"]["post"]["responses"]) >= {"200"}
    assert "201" not in doc["paths"]["/tickets/{id}/refunds"]["post"]["responses"]


def test_verify_records_spots_a_refunded_total_edited_behind_the_trail(api, delivered):
    assert refund(api, "manager", delivered.id, amount=1_000_000, payment_method="cash",
                  reason="overcharged").status_code == 200
    db.session.execute(Ticket.__table__.update().where(Ticket.id == delivered.id)
                       .values(amount_refunded=100))
    db.session.commit()
    db.session.expire_all()
    problems = lifecycle.verify_records(ticket_service.get_ticket(delivered.id))
    assert problems == ["مبلغ بازپرداخت‌شده با رکوردهای refund نمی‌خواند"]


@pytest.mark.parametrize("body, field", [
    ({"amount": 0, "payment_method": "cash", "reason": "x"}, "amount"),
    ({"amount": -5, "payment_method": "cash", "reason": "x"}, "amount"),
    ({"amount": "1e6", "payment_method": "cash", "reason": "x"}, "amount"),
    ({"amount": 1000, "payment_method": "cheque", "reason": "x"}, "payment_method"),
    ({"amount": 1000, "reason": "x"}, "payment_method"),
    ({"amount": 1000, "payment_method": "cash"}, "reason"),
    ({"amount": 1000, "payment_method": "cash", "reason": "   "}, "reason"),
    ({"amount": PAID + 10, "payment_method": "cash", "reason": "x"}, "amount"),
])
def test_a_bad_refund_is_refused_naming_the_field_and_changes_nothing(api, delivered, body,
                                                                     field):
    before = row_counts()
    resp = refund(api, "manager", delivered.id, **body)
    assert resp.status_code == 422
    assert field in resp.get_json()["fields"]
    assert row_counts() == before
    assert reload(delivered).amount_refunded is None


@pytest.mark.parametrize("role", ["reception", "technician", "admin"])
def test_only_the_manager_gives_money_back(api, delivered, role):
    before = row_counts()
    resp = refund(api, role, delivered.id, amount=1000, payment_method="cash", reason="x")
    assert resp.status_code == 403
    assert row_counts() == before


@pytest.mark.parametrize("state", ["ready", "repair", "cancelled"])
def test_no_refund_before_the_device_was_handed_back(api, make_ticket, state):
    ticket = make_ticket(state)
    before = row_counts()
    resp = refund(api, "manager", ticket.id, amount=1000, payment_method="cash", reason="x")
    assert resp.status_code == 409 and "پس از تحویل دستگاه" in resp.get_json()["error"]
    assert row_counts() == before


def test_a_refund_on_a_closed_ticket_and_for_a_customer_who_stopped_sms(api, make_ticket):
    ticket = make_ticket("closed")
    ticket_service.set_customer_sms(ticket.customer_id, False)
    resp = refund(api, "manager", ticket.id, amount=500_000, payment_method="transfer",
                  reason="late")
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "closed"
    assert db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.event == "refund")).all() == []


def test_a_stale_screen_does_not_give_the_money_back_twice(api, delivered):
    version = delivered.version
    first = refund(api, "manager", delivered.id, amount=1_000_000, payment_method="cash",
                   reason="overcharged", version=version)
    assert first.status_code == 200
    again = refund(api, "manager", delivered.id, amount=1_000_000, payment_method="cash",
                   reason="overcharged", version=version)  # the same form sent twice
    assert again.status_code == 409
    assert reload(delivered).amount_refunded == 1_000_000


def test_the_ticket_page_offers_the_manager_the_refund_form(app, delivered):
    manager, desk = Staff(app, "manager1"), Staff(app, "reception1")
    page = text(manager.get(f"/tickets/{delivered.id}?lang=en"))
    assert "data-refund-form" in page and "At most 1,400,000 toman" in page
    assert "data-refund-form" not in text(desk.get(f"/tickets/{delivered.id}?lang=en"))
    assert desk.post(f"/tickets/{delivered.id}/refund", {
        "amount": "1000", "payment_method": "cash", "reason": "x"}).status_code == 403
    # typed in toman, like every amount on the staff's pages; a refused form comes back open
    # with what was typed
    resp = manager.post(f"/tickets/{delivered.id}/refund?lang=en", {
        "amount": "2,000,000", "payment_method": "cash", "reason": "Overcharged for a part",
        "money_unit": "toman", "version": str(delivered.version)})
    assert resp.status_code == 422
    page = text(resp)
    assert "At most 1,400,000 toman can be refunded" in page
    assert 'value="Overcharged for a part"' in page and "<details" in page and " open>" in page
    assert reload(delivered).amount_refunded is None
    resp = manager.post(f"/tickets/{delivered.id}/refund?lang=en", {
        "amount": "150,000", "payment_method": "cash", "reason": "Overcharged for a part",
        "money_unit": "toman", "version": str(delivered.version)})
    assert resp.status_code == 302
    assert reload(delivered).amount_refunded == 1_500_000
    page = text(manager.get(f"/tickets/{delivered.id}?lang=en"))
    assert 'data-refunded="1500000"' in page and "Given back since: 150,000 toman" in page
    assert "At most 1,250,000 toman" in page  # what is left
    timeline = page[page.index("data-timeline"):]
    assert 'data-event="refund"' in timeline and "Overcharged for a part" in timeline


def test_the_customer_sees_the_money_given_back_on_their_page(app, api, delivered):
    assert refund(api, "manager", delivered.id, amount=2_000_000, payment_method="card",
                  reason="goodwill").status_code == 200
    with app.app_context():  # a request of its own, as the customer's phone makes
        page = text(app.test_client().get(f"/t/{delivered.public_token}?lang=en"))
    assert "Given back to you" in page and "200,000 toman" in page
    assert 'data-event="refund"' in page and "Money given back" in page
    # each refund of the history with its amount
    assert page.count("data-refund-amount>200,000 toman") == 1
    assert "goodwill" not in page  # the shop's reason stays inside


def test_the_till_counts_a_refund_on_its_day_against_how_it_was_given_back(app, api,
                                                                            make_ticket):
    desk = Staff(app, "reception1")
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "1,400,000", "payment_method": "card", "version": str(ticket.version)})
    assert resp.status_code == 302
    db.session.expire_all()  # the desk handed it back in a request of its own
    assert refund(api, "manager", ticket.id, amount=4_000_000, payment_method="cash",
                  reason="part returned").status_code == 200
    page = text(desk.get("/desk/takings?lang=en"))
    shown = amounts(page)
    # the card took 1,400,000; 400,000 went back out of the cash drawer
    assert shown["card"] == "1,400,000 toman" and shown["cash"] == "-400,000 toman"
    assert shown["total"] == "1,000,000 toman"
    assert 'data-refunds="1"' in page and "400,000 toman given back" in page
    rows = page[page.index('id="till-handbacks"'):]
    assert rows.count("data-ticket=") == 2 and "data-refund" in rows
    assert "Refund, given back by Cash" in rows
    # "only mine": the desk's own hand-backs; the manager's refund is not in them
    mine = amounts(text(desk.get("/desk/takings?mine=1&lang=en")))
    assert mine["total"] == "1,400,000 toman"
    slip = text(desk.get("/desk/takings/slip?lang=en"))
    assert "Refunds (1), given back" in slip and "-400,000 toman" in slip
    body = api["manager"].get("/api/v1/reports/takings?group_by=branch").get_json()
    assert body["summary"]["paid"] == 14_000_000 and body["summary"]["refunded"] == 4_000_000
    assert body["summary"]["amount"] == 10_000_000 and body["totals"]["refunds"] == 1
    cash = next(m for m in body["summary"]["methods"] if m["method"] == "cash")
    assert cash == {"method": "cash", "handbacks": 0, "paid": 0, "refunds": 1,
                    "refunded": 4_000_000, "amount": -4_000_000}
    manager = Staff(app, "manager1")
    resp = manager.get("/reports/takings?table=handbacks&format=csv&lang=en")
    # its own file name: the totals' download of the same range does not overwrite it
    assert "takings-handbacks_" in resp.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(text(resp).lstrip("\ufeff"))))
    kinds = {row[1] for row in table[1:]}
    assert kinds == {"Hand-back", "Refund"}
    refund_row = next(row for row in table[1:] if row[1] == "Refund")
    assert refund_row[table[0].index("Why it was given back")] == "part returned"
    totals = manager.get("/reports/takings?format=csv&lang=en")
    assert "takings_" in totals.headers["Content-Disposition"]


def test_the_cost_report_counts_what_was_paid_less_what_was_given_back(app, api, delivered):
    assert refund(api, "manager", delivered.id, amount=4_000_000, payment_method="cash",
                  reason="part returned").status_code == 200
    rows = api["manager"].get("/api/v1/reports/costs?group_by=branch").get_json()["rows"]
    assert sum(row["paid_total"] for row in rows) == PAID - 4_000_000


def test_the_refund_record_is_in_the_hash_chained_trail(api, delivered):
    assert refund(api, "manager", delivered.id, amount=1_000_000, payment_method="cash",
                  reason="overcharged").status_code == 200
    # an edited refund amount breaks the chain at its row
    row = db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == delivered.id, TicketEvent.event == "refund")).one()
    db.session.execute(TicketEvent.__table__.update().where(TicketEvent.id == row.id)
                       .values(data={**row.data, "amount": 1}))
    db.session.commit()
    db.session.expire_all()
    assert lifecycle.verify_chain(ticket_service.get_ticket(delivered.id)) == row.seq
