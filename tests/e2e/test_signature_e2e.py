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


def test_without_scripts_the_desk_hands_back_through_the_paper_slip(
        app, live_server, browser, users, make_ticket):
    """A browser that runs no scripts (or a tablet whose pad is broken) at a shop that asks for
    the signature on the screen: the pad is not there, the form says the customer may sign the
    paper slip instead, and the hand-back goes through with the box ticked and a reason typed,
    from the keyboard."""
    from ..test_signatures import require_signature
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    context = browser.new_context(java_script_enabled=False, locale="en-US",
                                  viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        login(page, live_server.url, "reception1")
        page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}&lang=en")
        expect(page.locator("[data-signature-pad]")).to_be_hidden()  # needs the script
        expect(page.locator("[data-signature-paper-help]")).to_contain_text(
            "the customer may sign the paper slip instead")
        page.click("label[for=paid-cash]")
        # nothing drawn, nothing ticked: refused, and the form says why
        page.click("form[data-deliver-form] button.btn-success")
        expect(page.locator("[data-signature-paper-error]")).to_contain_text(
            "sign on the screen")
        # from the keyboard: the box, then the reason
        page.focus("#signed_on_paper")
        page.keyboard.press("Space")
        expect(page.locator("#signed_on_paper")).to_be_checked()
        page.keyboard.press("Tab")
        expect(page.locator("#signed_on_paper_reason")).to_be_focused()
        page.keyboard.type("The customer's hand is in a cast")
        page.click("label[for=paid-cash]")
        page.click("form[data-deliver-form] button.btn-success")
        page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
        expect(page.locator(".slip-sign[data-signature]")).to_be_visible()  # signed on paper
        expect(page.locator("img.slip-signature")).to_have_count(0)
    finally:
        context.close()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.state == "delivered"
    assert ticket.events[-1].data["signed_on_paper_reason"] == "The customer's hand is in a cast"


def test_the_pad_is_cleared_from_the_keyboard_and_the_paper_slip_replaces_a_drawing(
        app, live_server, page, users, make_ticket):
    from ..test_signatures import require_signature
    require_signature(app, users, "handback")
    ticket = make_ticket("ready")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}&lang=en")
    pad = "[data-signature-pad]"
    state = page.locator(f"{pad} [data-signature-state]")
    draw(page, pad, [(0.2, 0.3), (0.8, 0.6)])
    expect(state).to_have_text("Signed.")
    clear = page.get_by_role("button", name="Clear the signature")  # labelled
    clear.focus()
    page.keyboard.press("Enter")
    expect(state).to_contain_text("Not signed")
    assert page.input_value(f'{pad} input[name="signature"]') == ""
    # drawn again, then the paper slip chosen after all: the drawing goes, one is sent
    draw(page, pad, [(0.2, 0.3), (0.8, 0.6)])
    page.check("#signed_on_paper")
    expect(state).to_contain_text("Not signed")
    page.fill("#signed_on_paper_reason", "The pen does not write")
    page.click("label[for=paid-cash]")
    page.click("form[data-deliver-form] button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
    db.session.expire_all()
    deliver = db.session.get(Ticket, ticket.id).events[-1]
    assert deliver.data["signed_on_paper_reason"] == "The pen does not write"
    assert "signature_sha256" not in deliver.data
