"""The customer signs the paper slip instead of the counter's screen, with a reason: the way
through for a shop whose setting asks for the screen when the tablet is broken, the customer
cannot draw or the browser runs no scripts (servicedesk.signatures.PAPER_FIELD). Recorded in the
event's data (the audit chain), shown in the timeline, listed for the managers."""
import pytest

from servicedesk.extensions import db
from servicedesk.lifecycle import verify_chain, verify_records
from servicedesk.models import Ticket, TicketEvent, TicketSignature

from .conftest import INTAKE
from .test_reception import Staff, count, intake_form, reload, text
from .test_signatures import SIGNED, data_url, require_signature

BROKEN = "The tablet screen is cracked"


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


def hand_back(desk, ticket, **over):
    form = {"amount_paid": "1,400,000", "payment_method": "cash",
            "version": str(ticket.version), **over}
    return desk.post(f"/desk/delivery/{ticket.id}?lang=en", form)


def test_the_hand_back_signed_on_paper_with_a_reason_goes_through_and_is_recorded(
        app, users, desk, api, make_ticket):
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    page = text(desk.get(f"/desk/delivery?q={ticket.number}&lang=en"))
    # said plainly, in fields a keyboard and a browser without scripts reach
    assert "the customer may sign the paper slip instead" in page
    assert 'name="signed_on_paper"' in page and 'name="signed_on_paper_reason"' in page
    resp = hand_back(desk, ticket, signed_on_paper="1",
                     signed_on_paper_reason=f"  {BROKEN}  ")
    assert resp.status_code == 302, text(resp)
    ticket = reload(ticket)
    assert ticket.state == "delivered"
    deliver = ticket.events[-1]
    assert deliver.event == "deliver" and deliver.actor_name == "reception1"
    assert deliver.data["signed_on_paper_reason"] == BROKEN  # stripped
    assert "signature_sha256" not in deliver.data and count(TicketSignature) == 0
    # the timeline says it; the slip keeps its blank line to sign
    shown = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert f"<dt>Signed on paper</dt>\n            <dd>{BROKEN}</dd>" in shown
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert "slip-signature" not in slip
    assert "Received the device and the accessories above: signature" in slip

    # the audit chain vouches for it: changing the reason afterwards breaks it
    assert verify_chain(ticket) is None and verify_records(ticket) == []
    db.session.execute(db.update(TicketEvent).where(TicketEvent.id == deliver.id).values(
        data={**deliver.data, "signed_on_paper_reason": "the customer refused"}))
    db.session.commit()
    assert verify_chain(reload(ticket)) is not None


def test_the_paper_slip_without_a_reason_hands_nothing_back(app, users, desk, make_ticket):
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    events = len(ticket.events)
    for reason in ("", "   "):
        resp = hand_back(desk, ticket, signed_on_paper="1", signed_on_paper_reason=reason)
        assert resp.status_code == 422
        page = text(resp)
        assert "Say why the customer signed the paper slip instead of the screen." in page
        assert 'id="signed_on_paper" name="signed_on_paper" value="1" checked' in page
    ticket = reload(ticket)
    assert ticket.state == "ready" and len(ticket.events) == events


def test_a_reason_that_is_too_long_or_holds_a_nul_hands_nothing_back(app, users, api,
                                                                     make_ticket):
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    # (the API answers in the token's user's language: the shop's, Persian)
    for reason, why in (("x" * 201, "۲۰۰"), ("broken\x00tablet", "غیرمجاز"),
                        (42, "متن")):
        resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
            "event": "deliver", "amount_paid": 14_000_000, "signed_on_paper_reason": reason})
        assert resp.status_code == 422
        assert why in resp.get_json()["fields"]["signed_on_paper_reason"]
    assert reload(ticket).state == "ready"


def test_a_drawing_and_the_paper_slip_both_are_refused(app, users, desk, api, make_ticket):
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    resp = hand_back(desk, ticket, signature=data_url(SIGNED), signed_on_paper="1",
                     signed_on_paper_reason=BROKEN)
    assert resp.status_code == 422 and "not both" in text(resp)
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events?lang=en", json={
        "event": "deliver", "amount_paid": 14_000_000, "signature": data_url(SIGNED),
        "signed_on_paper_reason": BROKEN})
    assert resp.status_code == 422  # (in the token's user's language: Persian)
    assert "نه هر دو" in resp.get_json()["fields"]["signed_on_paper_reason"]
    resp = api["reception"].post("/api/v1/tickets?lang=en", json={
        **INTAKE, "signature": data_url(SIGNED), "signed_on_paper_reason": BROKEN})
    assert resp.status_code == 422  # (in the token's user's language: Persian)
    assert "نه هر دو" in resp.get_json()["fields"]["signed_on_paper_reason"]
    assert reload(ticket).state == "ready" and count(TicketSignature) == 0
    assert count(Ticket) == 1


def test_the_api_hands_back_and_admits_signed_on_paper_and_says_so(app, users, api, make_ticket):
    ticket = make_ticket("ready")  # (admitted before the shop asked for the screen)
    require_signature(app, users, "both")
    resp = api["reception"].post("/api/v1/tickets?lang=en",
                                 json={**INTAKE, "signed_on_paper_reason": ""})
    assert resp.status_code == 422 and "signed_on_paper_reason" in resp.get_json()["fields"]
    assert count(Ticket) == 1
    resp = api["reception"].post("/api/v1/tickets",
                                 json={**INTAKE, "signed_on_paper_reason": "Injured hand"})
    assert resp.status_code == 201, resp.get_json()
    ticket_id = resp.get_json()["id"]
    shown = api["reception"].get(f"/api/v1/tickets/{ticket_id}").get_json()
    assert shown["signed_on_paper"]["intake"]["reason"] == "Injured hand"
    assert shown["signed_on_paper"]["intake"]["actor"] == "reception1"
    assert shown["signatures"] == {}
    assert shown["history"][0]["data"]["signed_on_paper_reason"] == "Injured hand"

    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000,
        "signed_on_paper_reason": "Injured hand"})
    assert resp.status_code == 200, resp.get_json()
    shown = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert shown["state"] == "delivered"
    assert shown["signed_on_paper"]["delivery"]["reason"] == "Injured hand"
    spec = api["reception"].get("/api/v1/openapi.json").get_json()
    assert "signed_on_paper_reason" in spec["components"]["schemas"]["NewTicket"]["properties"]


def test_the_desk_intake_signed_on_paper_when_the_shop_asks_for_the_screen(app, users, desk):
    require_signature(app, users, "both")
    page = text(desk.get("/desk/intake?lang=en"))
    assert "the customer may sign the paper slip instead" in page
    resp = desk.post("/desk/intake?lang=en", intake_form(signed_on_paper="1"))
    assert resp.status_code == 422 and count(Ticket) == 0
    assert "Say why the customer signed the paper slip" in text(resp)
    resp = desk.post("/desk/intake?lang=en", intake_form(signed_on_paper="1",
                                                         signed_on_paper_reason=BROKEN))
    assert resp.status_code == 302
    ticket = db.session.scalars(db.select(Ticket)).one()
    assert ticket.events[0].data["signed_on_paper_reason"] == BROKEN
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert "slip-signature" not in receipt and "Customer's signature" in receipt


def test_with_the_setting_off_the_form_does_not_ask_but_the_api_records_a_reason(
        app, users, desk, api, make_ticket):
    ticket = make_ticket("ready")
    # paper is the shop's way: no reason asked at the desk
    assert 'name="signed_on_paper"' not in text(desk.get(f"/desk/delivery?q={ticket.number}"))
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000, "signed_on_paper_reason": BROKEN})
    assert resp.status_code == 200
    assert reload(ticket).events[-1].data["signed_on_paper_reason"] == BROKEN


def test_the_managers_see_how_often_the_screen_was_bypassed(app, users, desk, api, make_ticket):
    require_signature(app, users, "handback")
    signed = make_ticket("ready")
    api["reception"].post(f"/api/v1/tickets/{signed.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000, "signature": data_url(SIGNED)})
    on_paper = make_ticket("ready")
    assert hand_back(desk, on_paper, signed_on_paper="1",
                     signed_on_paper_reason=BROKEN).status_code == 302
    manager = Staff(app, "manager1")
    totals = text(manager.get("/reports/takings?lang=en"))
    assert "Signed on the paper slip instead of the screen (intakes and hand-backs): 1" in totals
    listed = text(manager.get("/reports/takings?table=on_paper&lang=en"))
    assert BROKEN in listed and reload(on_paper).number in listed
    assert reload(signed).number not in listed
    csv = manager.get("/reports/takings?table=on_paper&format=csv&lang=en")
    assert csv.status_code == 200 and BROKEN in csv.get_data(as_text=True)
