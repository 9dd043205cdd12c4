"""The customer signs on the counter's screen in a real browser: drawn with the mouse (as a
finger or a pen would) at the intake, cleared and drawn again, printed on the receipt; at the
hand-back too."""
import base64
import re

from playwright.sync_api import expect
from sqlalchemy import select

from servicedesk.extensions import db
from servicedesk.models import Ticket, TicketSignature

from ..test_reception import VALID_IMEI
from .conftest import login
from .test_reception_e2e import png_pixels


def draw(page, pad: str, points) -> None:
    """A stroke through ``points`` (fractions of the canvas) on the signature pad."""
    canvas = page.locator(f"{pad} canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def ink(picture: bytes) -> int:
    """How many dark pixels a PNG (as the canvas made it) holds."""
    _w, _h, rows = png_pixels(picture)
    return sum(1 for row in rows for grey in row if grey < 128)


def test_the_customer_signs_the_intake_on_screen_and_the_receipt_prints_it(
        live_server, page, users):
    base = live_server.url
    login(page, base, "reception1")
    page.goto(f"{base}/desk/intake?lang=en")
    pad = "[data-signature-pad]"
    expect(page.locator(pad)).to_be_visible()  # shown where the script runs
    expect(page.locator(f"{pad} [data-signature-state]")).to_contain_text("signed on paper")
    draw(page, pad, [(0.1, 0.8), (0.3, 0.2), (0.5, 0.8)])
    expect(page.locator(f"{pad} [data-signature-state]")).to_have_text("Signed.")
    page.click("[data-signature-clear]")  # a slip of the pen: start again
    assert page.input_value(f'{pad} input[name="signature"]') == ""
    draw(page, pad, [(0.1, 0.5), (0.9, 0.5)])
    page.fill("#customer_phone", "09121234567")
    page.fill("#customer_name", "Narges Rezaei")
    page.fill("#device_brand", "Samsung")
    page.fill("#device_model", "")  # forgotten: the form comes back, the signature with it
    page.fill("#device_serial", VALID_IMEI)
    page.fill("#problem", "Cracked screen")
    page.click("form.intake-form button.btn-primary")
    expect(page.locator("#device_model")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"{pad} [data-signature-state]")).to_have_text("Signed.")
    page.fill("#device_model", "Galaxy A54")
    page.click("form.intake-form button.btn-primary")
    page.wait_for_url(re.compile(r"/tickets/\d+/receipt"))

    db.session.expire_all()
    ticket = db.session.scalars(select(Ticket)).one()
    kept = db.session.scalars(select(TicketSignature)).one()
    assert kept.moment == "intake" and kept.ticket_id == ticket.id
    assert ticket.events[0].data["signature_sha256"] == kept.sha256
    assert ink(kept.image) > 100  # the second stroke, drawn
    # the receipt shows the picture kept, above the signature line, inside the paper
    printed = page.locator("img.slip-signature")
    expect(printed).to_be_visible()
    src = printed.get_attribute("src")
    assert base64.b64decode(src.split(",", 1)[1]) == kept.image
    assert page.evaluate("document.body.scrollWidth <= document.body.clientWidth + 1")
    above = printed.bounding_box()
    line = page.locator(".slip-sign").bounding_box()
    assert above["y"] + above["height"] <= line["y"] + 1


def test_the_collector_signs_the_hand_back_on_screen(live_server, page, users, make_ticket):
    ticket = make_ticket("ready")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}&lang=en")
    draw(page, "[data-signature-pad]", [(0.2, 0.3), (0.4, 0.7), (0.8, 0.4)])
    page.click("label[for=paid-cash]")
    page.click("form[data-deliver-form] button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
    expect(page.locator("img.slip-signature")).to_be_visible()
    db.session.expire_all()
    kept = db.session.scalars(select(TicketSignature)).one()
    assert kept.moment == "delivery" and ink(kept.image) > 50
