"""The customer's signature drawn on the counter's screen, at the intake and at the hand-back
(servicedesk.signatures): kept with the ticket, printed on its slips, vouched for by the audit
chain."""
import base64
import hashlib
import re
import struct
import zlib

import pytest
from sqlalchemy import select, update

from servicedesk.errors import ValidationError
from servicedesk.extensions import db
from servicedesk.lifecycle import verify_chain, verify_records
from servicedesk.models import Ticket, TicketEvent, TicketSignature

from .conftest import INTAKE
from .test_reception import Staff, count, intake_form, reload, text


def png(width: int = 480, height: int = 160, ink: int = 0) -> bytes:
    """A real PNG (greyscale, a stroke across it): what a canvas gives, to the byte format."""
    rows = b"".join(b"\x00" + bytes(ink if abs(y - height // 2) < 2 else 255
                                    for _x in range(width)) for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def data_url(picture: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(picture).decode()


SIGNED = png()
DIGEST = hashlib.sha256(SIGNED).hexdigest()


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


def test_a_signature_sent_with_the_api_intake_is_kept_printed_and_vouched_for(app, api, desk):
    resp = api["reception"].post("/api/v1/tickets", json={**INTAKE, "signature": data_url(SIGNED)})
    assert resp.status_code == 201, resp.get_json()
    ticket_id = resp.get_json()["id"]
    shown = api["reception"].get(f"/api/v1/tickets/{ticket_id}").get_json()
    assert shown["signatures"]["intake"]["sha256"] == DIGEST
    assert "delivery" not in shown["signatures"]
    admit = shown["history"][0]
    assert admit["event"] == "admit" and admit["data"]["signature_sha256"] == DIGEST

    # the receipt prints the picture above the signature line; the ticket page shows it
    receipt = text(desk.get(f"/tickets/{ticket_id}/receipt?lang=en"))
    printed = re.search(r'<img class="slip-signature" src="data:image/png;base64,([^"]+)"',
                        receipt)
    assert printed and base64.b64decode(printed.group(1)) == SIGNED
    page = text(desk.get(f"/tickets/{ticket_id}?lang=en"))
    assert "Signed on the screen" in page
    image = desk.get(f"/tickets/{ticket_id}/signature/intake")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.get_data() == SIGNED
    assert desk.get(f"/tickets/{ticket_id}/signature/delivery").status_code == 404

    ticket = db.session.get(Ticket, ticket_id)
    assert verify_chain(ticket) is None and verify_records(ticket) == []
    # a picture swapped afterwards no longer matches what the trail recorded
    db.session.execute(update(TicketSignature).where(TicketSignature.ticket_id == ticket_id)
                       .values(image=png(ink=90)))
    db.session.commit()
    assert verify_records(reload(ticket)) == ["امضای پذیرش با رویداد خود نمی‌خواند"]


@pytest.mark.parametrize("bad, why", [
    ("data:image/jpeg;base64,/9j/4AAQ", "PNG picture"),
    ("not base64 at all!", "PNG picture"),
    (base64.b64encode(b"GIF89a" + bytes(40)).decode(), "PNG picture"),
    (data_url(png(width=5000, height=10)), "too large"),
    (12345, "PNG picture"),
])
def test_a_signature_that_is_not_a_sensible_png_admits_nothing(api, bad, why):
    before = count(Ticket), count(TicketEvent)
    resp = api["reception"].post("/api/v1/tickets?lang=en", json={**INTAKE, "signature": bad})
    assert resp.status_code == 422
    assert why in resp.get_json()["fields"]["signature"]
    assert (count(Ticket), count(TicketEvent)) == before


def test_the_desk_intake_keeps_the_signature_drawn_and_a_form_sent_back_keeps_it_too(desk):
    picture = data_url(SIGNED)
    # another field to mend: the form comes back with the signature still in it
    resp = desk.post("/desk/intake?lang=en", intake_form(device_model="", signature=picture))
    assert resp.status_code == 422
    assert f'name="signature" value="{picture}"' in text(resp)
    assert count(Ticket) == 0
    resp = desk.post("/desk/intake?lang=en", intake_form(signature=picture))
    assert resp.status_code == 302
    kept = db.session.scalars(select(TicketSignature)).one()
    assert (kept.moment, kept.image, kept.sha256) == ("intake", SIGNED, DIGEST)
    # signed on paper (nothing drawn): no picture, the slip keeps its blank line
    desk.post("/desk/intake?lang=en", intake_form(signature="", customer_phone="09121112233"))
    unsigned = db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    receipt = text(desk.get(f"/tickets/{unsigned.id}/receipt?lang=en"))
    assert "slip-signature" not in receipt and "Customer's signature" in receipt
    assert "signature_sha256" not in (unsigned.events[0].data or {})


def test_the_collector_signs_the_hand_back_on_the_desk_and_the_delivery_receipt_prints_it(
        desk, api, make_ticket):
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "1,400,000", "payment_method": "cash",
        "version": str(ticket.version), "signature": data_url(SIGNED)})
    assert resp.status_code == 302, text(resp)
    ticket = reload(ticket)
    assert ticket.state == "delivered"
    deliver = ticket.events[-1]
    assert deliver.event == "deliver" and deliver.data["signature_sha256"] == DIGEST
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    printed = re.search(r'<img class="slip-signature" src="data:image/png;base64,([^"]+)"', slip)
    assert printed and base64.b64decode(printed.group(1)) == SIGNED
    shown = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert list(shown["signatures"]) == ["delivery"]
    assert verify_records(ticket) == []


def test_a_bad_signature_at_the_hand_back_hands_nothing_back(desk, api, make_ticket):
    ticket = make_ticket("ready")
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events?lang=en", json={
        "event": "deliver", "amount_paid": 14_000_000, "signature": "data:image/png;base64,AAAA"})
    assert resp.status_code == 422
    assert "PNG" in resp.get_json()["fields"]["signature"]  # (in the shop's language here)
    assert reload(ticket).state == "ready" and count(TicketSignature) == 0
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000, "signature": data_url(SIGNED)})
    assert resp.status_code == 200, resp.get_json()
    assert reload(ticket).state == "delivered" and count(TicketSignature) == 1


# --- the shop's setting: a signature required ----------------------------------------------

def require_signature(app, users, where: str) -> None:
    from servicedesk.services import admin as admin_service
    with app.test_request_context():
        admin_service.update_settings(users["admin"], {
            **admin_service.current_settings(), "signature_required": where})


def test_a_shop_that_requires_it_at_the_hand_back_hands_nothing_back_unsigned(
        app, users, desk, api, make_ticket):
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    page = text(desk.get(f"/desk/delivery?q={ticket.number}&lang=en"))
    assert "data-signature-required" in page and "required" in page
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "1,400,000", "payment_method": "cash", "version": str(ticket.version)})
    assert resp.status_code == 422
    assert "sign on the screen" in text(resp)
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events?lang=en", json={
        "event": "deliver", "amount_paid": 14_000_000})
    assert resp.status_code == 422 and "signature" in resp.get_json()["fields"]
    assert reload(ticket).state == "ready" and len(reload(ticket).events) == len(ticket.events)
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "1,400,000", "payment_method": "cash", "version": str(ticket.version),
        "signature": data_url(SIGNED)})
    assert resp.status_code == 302 and reload(ticket).state == "delivered"
    # the intake is not asked for one by this setting
    assert desk.post("/desk/intake?lang=en",
                     intake_form(customer_phone="09121112233")).status_code == 302
    assert "data-signature-required" not in text(desk.get("/desk/intake"))


def test_a_shop_that_requires_it_at_both_ends_admits_nothing_unsigned(app, users, desk, api):
    require_signature(app, users, "both")
    assert "data-signature-required" in text(desk.get("/desk/intake"))
    resp = desk.post("/desk/intake?lang=en", intake_form())
    assert resp.status_code == 422 and "sign on the screen at the intake" in text(resp)
    resp = api["reception"].post("/api/v1/tickets", json=INTAKE)
    assert resp.status_code == 422 and "signature" in resp.get_json()["fields"]
    assert count(Ticket) == 0
    resp = api["reception"].post("/api/v1/tickets", json={**INTAKE, "signature": data_url(SIGNED)})
    assert resp.status_code == 201


def test_the_settings_page_sets_it_and_names_a_value_it_does_not_offer(app, users):
    from servicedesk import settings
    from servicedesk.services import admin as admin_service
    admin = Staff(app, "admin1")
    page = text(admin.get("/admin/settings?lang=en"))
    assert "The customer signs on the counter's screen" in page
    assert 'value="handback"' in page and 'value="both"' in page
    with app.test_request_context():
        form = {**admin_service.current_settings(), "signature_required": "always"}
        with pytest.raises(ValidationError) as refused:
            admin_service.update_settings(users["admin"], form)
    assert "signature_required" in refused.value.fields
    require_signature(app, users, "both")
    with app.test_request_context():
        assert settings.get("signature_required") == "both"
