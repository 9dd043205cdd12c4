"""A payment split at the hand-back: 1,000,000 toman in cash and 400,000 by card. The deliver
event records the parts; the till, its slip and the takings report count each part under its
method (the cash drawer only the cash), the hand-back once; the desk's form, the receipt and
the timeline show them. On both databases (the parts are read from the event's JSON)."""
import csv
import io
import re

import pytest
from flask_babel import force_locale

from servicedesk import lifecycle
from servicedesk import reports as r
from servicedesk.errors import ValidationError
from servicedesk.services import reception as reception_service
from servicedesk.services import tickets as ticket_service

from .conftest import actor_for
from .test_reception import Staff, reload, text
from .test_takings import amounts

DUE = 14_000_000  # rials: the sample ticket's bill (1,400,000 toman)
SPLIT = [{"method": "cash", "amount": 10_000_000}, {"method": "card", "amount": 4_000_000}]


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


def split_at_the_desk(desk, ticket, **parts):
    form = {"amount_paid": "1,400,000", "payment_method": "split", "money_unit": "toman",
            "version": str(ticket.version), **{f"part_{k}": v for k, v in parts.items()}}
    return desk.post(f"/desk/delivery/{ticket.id}?lang=en", form)


# --- the lifecycle's checks ---------------------------------------------------------------------

def deliver(ticket, users, **data):
    return ticket_service.fire_event(ticket.id, "deliver", actor_for("deliver", users),
                                     {"amount_paid": DUE, **data})


def test_a_split_payment_is_recorded_part_by_part(make_ticket, users):
    ticket = deliver(make_ticket("ready"), users, payments=SPLIT)
    event = reload(ticket).events[-1]
    assert event.data["payments"] == SPLIT and "payment_method" not in event.data
    assert reload(ticket).amount_paid == DUE
    assert lifecycle.verify_records(reload(ticket)) == []
    assert lifecycle.verify_chain(reload(ticket)) is None
    assert lifecycle.payment_parts(event.data) == SPLIT
    # one method: one part, as before
    single = deliver(make_ticket("ready"), users, payment_method="transfer")
    assert lifecycle.payment_parts(reload(single).events[-1].data) == [
        {"method": "transfer", "amount": DUE}]


@pytest.mark.parametrize("payments, field, at, words", [
    ([{"method": "cash", "amount": DUE}], "payments", None, "two parts or more"),
    ("cash", "payments", None, "Must be a list"),
    ([{"method": "cash", "amount": 10_000_000}, {"method": "cheque", "amount": 4_000_000}],
     "payments", {"line": 2, "field": "method"}, "Part 2: Must be one of"),
    ([{"method": "cash", "amount": 10_000_000}, {"method": "cash", "amount": 4_000_000}],
     "payments", {"line": 2, "field": "method"}, "earlier part"),
    ([{"method": "cash", "amount": 0}, {"method": "card", "amount": DUE}],
     "payments", {"line": 1, "field": "amount"}, "Part 1: Must be at least 1"),
    ([{"method": "cash", "amount": "lots"}, {"method": "card", "amount": DUE}],
     "payments", {"line": 1, "field": "amount"}, "whole number"),
    ([{"method": "cash", "amount": 10_000_000}, "card"],
     "payments", {"line": 2, "field": None}, "must be an object"),
    ([{"method": "cash", "amount": 10_000_000}, {"method": "card", "amount": 3_000_000}],
     "payments", None, "add up to"),
])
def test_a_bad_split_is_refused_naming_the_part(make_ticket, users, payments, field, at,
                                                words):
    ticket = make_ticket("ready")
    with pytest.raises(ValidationError) as caught, force_locale("en"):
        deliver(ticket, users, payments=payments)
    assert field in caught.value.extra["fields"]
    assert words in caught.value.extra["fields"][field]
    assert caught.value.extra.get("at", {}).get(field) == at
    assert reload(ticket).state == "ready"


def test_a_split_and_a_single_method_together_are_refused(make_ticket, users):
    with pytest.raises(ValidationError) as caught:
        deliver(make_ticket("ready"), users, payments=SPLIT, payment_method="cash")
    assert "payment_method" in caught.value.extra["fields"]


# --- the API --------------------------------------------------------------------------------

def test_the_api_takes_a_split_and_shows_it_in_the_history(api, make_ticket):
    ticket = make_ticket("ready")
    bad = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "deliver", "amount_paid": DUE,
        "payments": [SPLIT[0], {"method": "card", "amount": -1}]})
    assert bad.status_code == 422
    assert bad.get_json()["at"] == {"payments": {"line": 2, "field": "amount"}}
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "deliver", "amount_paid": DUE, "payments": SPLIT})
    assert resp.status_code == 200, resp.get_json()
    deliver_entry = resp.get_json()["history"][-1]
    assert deliver_entry["event"] == "deliver" and deliver_entry["data"]["payments"] == SPLIT
    got = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert got["amount_paid"] == DUE and got["history"][-1]["data"]["payments"] == SPLIT


def test_the_openapi_document_describes_the_parts(app, api):
    doc = api["reception"].get("/api/v1/openapi.json").get_json()
    text_of = str(doc)
    assert "payments" in text_of
    schemas = [s for s in _walk(doc) if isinstance(s, dict) and "payments" in s
               and isinstance(s["payments"], dict) and s["payments"].get("type") == "array"]
    assert schemas, "the deliver event's payments are not in the document"
    parts = schemas[0]["payments"]
    assert parts["minItems"] == 2 and parts["items"]["required"] == ["method", "amount"]
    assert parts["items"]["properties"]["method"]["enum"] == list(lifecycle.PAYMENT_METHODS)


def _walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# --- the delivery desk's form, the receipt and the timeline ----------------------------------

def test_the_desk_splits_a_payment_and_the_receipt_shows_the_parts(desk, make_ticket):
    ticket = make_ticket("ready")
    page = text(desk.get(f"/desk/delivery?q={ticket.number}&lang=en"))
    assert 'value="split"' in page and 'name="part_cash"' in page and 'name="part_card"' in page
    resp = split_at_the_desk(desk, ticket, cash="1,000,000", card="۴۰۰٬۰۰۰", transfer="")
    assert resp.status_code == 302, text(resp)
    event = reload(ticket).events[-1]
    assert event.data["payments"] == SPLIT
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert '<dt>Paid by Cash</dt><dd data-paid-part="cash">1,000,000 toman</dd>' in slip
    assert '<dt>Paid by Card reader</dt><dd data-paid-part="card">400,000 toman</dd>' in slip
    assert "data-paid-by" not in slip
    assert "پرداخت نقدی" in text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=fa"))
    timeline = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert "<dt>Paid by Cash</dt>" in timeline and "1,000,000 toman" in timeline
    assert "<dt>Paid by Card reader</dt>" in timeline and "400,000 toman" in timeline


def test_a_split_that_does_not_add_up_is_sent_back_with_what_was_typed(desk, make_ticket):
    ticket = make_ticket("ready")
    resp = split_at_the_desk(desk, ticket, cash="1,000,000", card="300,000")
    assert resp.status_code == 422
    page = text(resp)
    assert "The parts add up to 1,300,000 toman, not the amount paid, 1,400,000 toman." in page
    assert 'value="1,000,000"' in page and 'value="300,000"' in page
    assert 'id="paid-split" value="split" autocomplete="off" checked' in page
    assert reload(ticket).state == "ready"
    # one part alone that is not the amount paid
    resp = split_at_the_desk(desk, ticket, card="1,300,000")
    assert resp.status_code == 422
    assert "The parts add up to 1,300,000 toman, not the amount paid" in text(resp)
    # "Split" with nothing typed says so
    resp = split_at_the_desk(desk, ticket)
    assert resp.status_code == 422 and "Type the amount paid each way." in text(resp)
    # a part typed wrong is named
    resp = split_at_the_desk(desk, ticket, cash="1,000,000", card="40O,000")
    assert resp.status_code == 422 and 'data-error="payments"' in text(resp)
    assert reload(ticket).state == "ready"


def test_a_split_with_one_part_is_that_method_and_amounts_without_split_are_ignored(
        desk, make_ticket):
    ticket = make_ticket("ready")
    resp = split_at_the_desk(desk, ticket, cash="1,400,000", card="0")
    assert resp.status_code == 302, text(resp)
    data = reload(ticket).events[-1].data
    assert data["payment_method"] == "cash" and "payments" not in data
    # a browser that shows the amounts always: they count only with "Split" chosen
    other = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{other.id}", {
        "amount_paid": "1,400,000", "payment_method": "card", "part_cash": "5",
        "version": str(other.version)})
    assert resp.status_code == 302
    data = reload(other).events[-1].data
    assert data["payment_method"] == "card" and "payments" not in data


# --- the till, its slip, the takings report ---------------------------------------------------

@pytest.fixture
def split_day(app, users, make_ticket, desk):
    """Today: one hand-back split 1,000,000 cash + 400,000 card at the desk, one paid in
    cash (700,000, a discount), and a refund of 100,000 in cash on the split one."""
    split = make_ticket("ready")
    assert split_at_the_desk(desk, split, cash="1,000,000", card="400,000").status_code == 302
    cash = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{cash.id}", {
        "amount_paid": "700,000", "payment_method": "cash", "differs_ok": "1",
        "version": str(cash.version)})
    assert resp.status_code == 302
    reception_service.refund(split.id, lifecycle.Actor.staff(users["manager"]),
                             {"amount": 1_000_000, "payment_method": "cash", "reason": "a cable"})
    return {"split": reload(split), "cash": reload(cash)}


def test_the_till_counts_each_part_under_its_method_and_the_hand_back_once(
        app, desk, split_day):
    page = text(desk.get("/desk/takings?lang=en"))
    shown = amounts(page)
    # cash: 1,000,000 + 700,000 - 100,000 refunded; card: 400,000
    assert shown["cash"] == "1,600,000 toman" and shown["card"] == "400,000 toman"
    assert shown["transfer"] == "0 toman" and shown["total"] == "2,000,000 toman"
    assert "2 hand-backs paid" in page  # the total and cash; the split one once in all
    assert 'data-handbacks="2" data-unpaid="0"' in page
    assert "Cash 1,000,000 toman · Card reader 400,000 toman" in page  # its row
    with app.test_request_context():
        branch = reception_service.branch_of(None)
        assert reception_service.expected_cash(branch, r.shop_today()) == 16_000_000
    slip = text(desk.get("/desk/takings/slip?lang=en"))
    assert amounts(slip)["cash"] == "1,600,000 toman" and amounts(slip)["card"] == "400,000 toman"
    # the same words on the slip (each figure kept with its unit word by a span around them)
    assert "Total (2)" in slip and "Cash 1,000,000 toman · Card reader 400,000 toman" in \
        re.sub(r"<[^>]+>", "", slip)


def test_the_drawer_counted_against_the_cash_parts_only(app, desk, split_day):
    resp = desk.post("/desk/takings/count", {"counted": "1,600,000", "float_amount": "0",
                                             "money_unit": "toman"})
    assert resp.status_code == 302, text(resp)
    from servicedesk.models import TillCount
    from servicedesk.extensions import db
    row = db.session.query(TillCount).order_by(TillCount.id.desc()).first()
    assert row.expected == 16_000_000 and row.difference == 0


def test_the_takings_report_and_its_exports_count_the_parts(app, api, split_day):
    body = api["manager"].get("/api/v1/reports/takings").get_json()
    rows = {row["method"]: row for row in body["rows"]}
    assert rows["cash"]["paid"] == 17_000_000 and rows["cash"]["handbacks"] == 2
    assert rows["card"]["paid"] == 4_000_000 and rows["card"]["handbacks"] == 1
    assert rows["cash"]["refunded"] == 1_000_000
    summary = body["summary"]
    assert summary["handbacks"] == 2 and summary["paid"] == 21_000_000
    assert summary["amount"] == 20_000_000
    assert {m["method"]: m["amount"] for m in summary["methods"]} == {
        "cash": 16_000_000, "card": 4_000_000, "transfer": 0}
    assert body["totals"]["handbacks"] == 2 and body["totals"]["discounts"] == 7_000_000
    manager = Staff(app, "manager1")
    report = text(manager.get("/reports/takings?lang=en"))
    shown = amounts(report)
    assert shown["cash"] == "1,600,000 toman" and shown["card"] == "400,000 toman"
    assert shown["total"] == "2,000,000 toman" and "2 hand-backs paid" in report
    exported = manager.get("/reports/takings?format=csv&lang=en")
    assert exported.status_code == 200
    table = list(csv.DictReader(io.StringIO(text(exported).lstrip("\ufeff"))))
    by_method = {row["Payment method code"]: row for row in table}
    assert by_method["card"]["Hand-backs paid"] == "1"
    one_by_one = manager.get("/reports/takings?format=csv&table=handbacks&lang=en")
    assert "Cash 1,000,000 toman · Card reader 400,000 toman" in text(one_by_one)


# --- imported history -----------------------------------------------------------------------

def test_imported_history_keeps_its_split_payments_and_refuses_a_bad_one(app, users, tmp_path):
    """Old tickets paid part in cash, part by card-to-card import with their parts; a split
    that does not add up is that line's error; a single method imports as before."""
    from .test_import_history import DELIVERED, run, ticket_by_external, write_jsonl

    def with_payment(external_id, data):
        events = [dict(e, data={**e.get("data", {}), **data}) if e["event"] == "deliver"
                  else e for e in DELIVERED["events"]]
        return {**DELIVERED, "external_id": external_id, "events": events}

    parts = [{"method": "cash", "amount": 5_000_000}, {"method": "transfer", "amount": 4_000_000}]
    path = write_jsonl(tmp_path, [
        with_payment("split-1", {"payments": parts}),
        with_payment("split-2", {"payments": [parts[0], {"method": "card", "amount": 1}]}),
        with_payment("single-3", {"payment_method": "card"})])
    result, output = run(app, "import-history", str(path))
    # (the command speaks the shop's language: Persian here)
    assert "واردشده ۲" in output and "ناموفق ۱" in output
    assert "سطر ۲" in output and "payments" in output
    split = ticket_by_external("split-1")
    assert split.amount_paid == 9_000_000
    assert next(e for e in split.events if e.event == "deliver").data["payments"] == parts
    assert lifecycle.verify_records(split) == []
    assert ticket_by_external("split-2") is None
    single = ticket_by_external("single-3")
    assert next(e for e in single.events if e.event == "deliver").data["payment_method"] == "card"
