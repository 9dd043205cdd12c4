"""Reception in a real browser: a number taken at the kiosk shows up at reception and, called,
on the wall display; its intake prints an 80 mm receipt whose QR code (as the browser draws it)
decodes to the ticket's tracking link; a ready device is found by its receipt's link and
handed back."""
import re
import struct
import zlib

from playwright.sync_api import expect
from sqlalchemy import select

from servicedesk.extensions import db
from servicedesk.i18n import localize_digits
from servicedesk.links import tracking_url
from servicedesk.models import Ticket, Visit

from ..test_reception import VALID_IMEI, decode_qr
from .conftest import login, new_context

MM = 72 / 25.4  # PDF points per millimetre


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """(width, height) in points of each page of a PDF Chromium printed."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]


def png_pixels(png: bytes) -> tuple[int, int, list[list[int]]]:
    """(width, height, rows of grey levels) of an 8-bit RGB(A) PNG, as Chromium writes them."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([sum(line[x * bpp:x * bpp + 3]) // 3 for x in range(width)])
        prev = line
    return width, height, rows


def read_qr_screenshot(png: bytes, modules: int) -> list[list[int]]:
    """Sample the centre of each module of a screenshot of the whole QR code (quiet zone
    included: ``modules`` across), dark = 1, and drop the 4-module quiet zone."""
    width, height, px = png_pixels(png)
    grid = [[int(px[int((r + .5) * height / modules)][int((c + .5) * width / modules)] < 128)
             for c in range(modules)] for r in range(modules)]
    return [row[4:-4] for row in grid[4:-4]]


def test_kiosk_number_to_reception_to_display_to_an_80mm_receipt(
        live_server, page, context, browser, users):
    base = live_server.url
    login(page, base, "reception1")

    # The kiosk: one touch, a number and its slip.
    page.goto(f"{base}/kiosk")
    page.click("button[data-service=repair]")
    page.wait_for_url(re.compile(r"/visits/\d+/slip"))
    expect(page.locator(".slip-number")).to_have_text("R-۰۰۱")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")

    # Reception sees it waiting; the wall display shows nobody called yet.
    page.goto(f"{base}/queue")
    waiting = page.locator('.queue-waiting [data-label="R-001"]')
    expect(waiting).to_be_visible()
    display = context.new_page()
    display.goto(f"{base}/display")
    expect(display.locator(".display-now .display-empty")).to_be_visible()  # nobody called yet

    # Call next to counter 2 (typed in Persian digits): the display picks it up by itself.
    page.fill("#counter", "۲")
    page.keyboard.press("F2")
    expect(page.locator('.queue-called [data-label="R-001"]')).to_be_visible()
    expect(display.locator(".display-now .display-number")).to_have_text("R-۰۰۱", timeout=10_000)
    expect(display.locator(".display-now .display-counter")).to_contain_text("۲")

    # Intake from the called number.
    page.click('.queue-called [data-label="R-001"] a[href*="/desk/intake"]')
    page.wait_for_url(re.compile(r"/desk/intake\?visit_id=\d+"))
    page.fill("#customer_phone", "۰۹۱۲ ۱۲۳ ۴۵۶۷")
    page.fill("#customer_name", "نرگس رضایی")
    page.fill("#device_brand", "Samsung")
    page.fill("#device_model", "Galaxy A54")
    page.fill("#device_serial", VALID_IMEI)
    page.fill("#problem", "صفحه شکسته")
    page.check('input[name=accessory] >> nth=0')
    page.click("form.intake-form button.btn-primary")
    page.wait_for_url(re.compile(r"/tickets/\d+/receipt"))
    ticket_id = int(re.search(r"/tickets/(\d+)/receipt", page.url).group(1))
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.visit.label == "R-001" and ticket.visit.status == "served"
    url = tracking_url(ticket)
    assert url == f"{base}/t/{ticket.public_token}"
    expect(page.locator(".slip-ticket-number")).to_have_text(localize_digits(ticket.number, "fa"))
    expect(page.locator(".masked-phone")).to_have_text("۰۹۱۲***۴۵۶۷")

    # The receipt asked the browser to print it, once; printed to PDF: one page, 80 mm wide.
    page.wait_for_selector("body[data-page-size]")
    page.wait_for_function("window.__prints === 1")
    pages = pdf_pages(page.pdf(prefer_css_page_size=True, print_background=True))
    assert len(pages) == 1
    width, height = pages[0]
    assert abs(width - 80 * MM) < 0.5, width  # 226.77 pt
    assert 60 * MM < height < 400 * MM

    # The QR code as the browser draws it decodes to the tracking link.
    svg = page.locator(".qr svg")
    modules = int(re.search(r'viewBox="0 0 (\d+)', svg.evaluate("e => e.outerHTML")).group(1))
    box = svg.bounding_box()
    # about 28 mm on paper, each module a whole number of the printer's dots (203 dpi)
    dots = box["width"] * 25.4 / 96 / modules * 203 / 25.4
    assert 24 * 96 / 25.4 < box["width"] < 31 * 96 / 25.4 and abs(dots - round(dots)) < 0.02
    sharp = new_context(browser, storage_state=context.storage_state(), device_scale_factor=4,
                                locale="fa-IR")
    try:
        big = sharp.new_page()
        big.goto(f"{base}/tickets/{ticket_id}/receipt")
        shot = big.locator(".qr svg").screenshot()
    finally:
        sharp.close()
    assert decode_qr(read_qr_screenshot(shot, modules)) == url

    # On 58 mm paper the page is 58 mm wide.
    page.goto(f"{base}/tickets/{ticket_id}/receipt?paper=58")
    page.wait_for_selector("body[data-page-size]")
    (width58, _), = pdf_pages(page.pdf(prefer_css_page_size=True))
    assert abs(width58 - 58 * MM) < 0.5, width58  # 164.41 pt
    # each value under its label: the masked phone and the IMEI are not broken mid-number,
    # and nothing sticks out of the paper
    rects = page.eval_on_selector_all('.slip-fields bdi[dir="ltr"]',
                                      "els => els.map(e => e.getClientRects().length)")
    assert len(rects) == 2 and rects == [1, 1], rects
    assert page.evaluate("document.body.scrollWidth <= document.body.clientWidth + 1")


def test_calling_a_row_with_no_counter_says_the_counter_is_missing(live_server, page, users):
    base = live_server.url
    login(page, base, "reception1")
    page.goto(f"{base}/kiosk")
    page.click("button[data-service=repair]")
    page.wait_for_url(re.compile(r"/visits/\d+/slip"))
    page.goto(f"{base}/queue")
    page.fill("#counter", "")
    page.locator('.queue-waiting tr[data-label="R-001"] form button').click()
    # not silently nothing: the cursor is in the counter box, which says it is needed
    expect(page.locator("#counter")).to_be_focused()
    assert page.eval_on_selector("#counter", "el => el.validationMessage") != ""
    page.fill("#counter", "3")
    page.locator('.queue-waiting tr[data-label="R-001"] form button').click()
    expect(page.locator('.queue-called [data-label="R-001"]')).to_be_visible()


def test_queue_slip_prints_80mm_wide(live_server, page, users):
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/kiosk")
    page.fill("#phone", "09121234567")
    page.click("button[data-service=pickup]")
    page.wait_for_url(re.compile(r"/visits/\d+/slip"))
    expect(page.locator(".slip-number")).to_have_text("P-۰۰۱")
    page.wait_for_selector("body[data-page-size]")
    (width, height), = pdf_pages(page.pdf(prefer_css_page_size=True))
    assert abs(width - 80 * MM) < 0.5 and height < 200 * MM
    db.session.expire_all()
    assert db.session.scalar(select(Visit.phone)) == "+989121234567"


def test_a_ready_device_found_by_its_receipt_link_is_handed_back(
        live_server, page, users, make_ticket):
    ticket = make_ticket("ready")
    url = tracking_url(ticket)
    login(page, live_server.url, "reception1")

    # At reception the scanner types the link anywhere on the page (here a button has the
    # focus, as after a click): the ticket opens.
    page.goto(f"{live_server.url}/queue")
    page.focus("#call-next")
    page.keyboard.type(url)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/tickets/{ticket.id}")

    # At the delivery desk, the scan box has the focus.
    page.goto(f"{live_server.url}/desk/delivery")
    page.keyboard.type(url)
    page.keyboard.press("Enter")
    found = page.locator(f'.delivery-ticket[data-ticket="{ticket.id}"]')
    expect(found).to_be_visible()
    expect(page.locator(".amount-due")).to_contain_text("۱٬۴۰۰٬۰۰۰")
    # in toman, grouped in Persian digits as the amount due is shown
    assert page.input_value("#amount_paid") == localize_digits(
        f"{ticket.amount_due // 10:,}".replace(",", "٬"), "fa")
    # the amount offered is selected: typing (or a scan) replaces it
    assert page.evaluate("(() => { const f = document.getElementById('amount_paid');"
                         " return f === document.activeElement && f.selectionStart === 0"
                         " && f.selectionEnd === f.value.length; })()")
    page.fill("#collected_by", "علی")
    page.click("label[for=paid-card]")  # the card reader: a button of the group
    page.click("form button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
    expect(page.locator("[data-paid-by]")).to_have_text("کارتخوان")
    expect(page.locator(".slip-ticket-number")).to_have_text(localize_digits(ticket.number, "fa"))
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.state == "delivered" and ticket.amount_paid == 14_000_000
    assert ticket.events[-1].data["collected_by"] == "علی"


def test_intake_fills_in_a_returning_customer_from_their_phone(live_server, page, users,
                                                               make_ticket):
    make_ticket("delivered")  # Narges Rezaei, 0912 123 4567, Persian SMS
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/intake")
    page.fill("#customer_phone", "۰۹۱۲۱۲۳۴۵۶۷")
    page.keyboard.press("Tab")
    expect(page.locator("#customer-hint [data-customer]")).to_be_visible()
    expect(page.locator("#customer_name")).to_have_value("Narges Rezaei")


def test_recording_a_customers_answer_at_the_desk_takes_a_second_click(live_server, page,
                                                                       users, make_ticket):
    """An answer starts a repair: the desk opens the answer first, and its button names the
    amount approved."""
    ticket = make_ticket("estimate")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk")
    card = page.locator(f'.worklist-estimates [data-ticket="{ticket.id}"]')
    approve = card.locator('button[value="approve"]')
    expect(approve).to_be_hidden()
    card.locator("[data-answer-step] summary").click()
    expect(approve).to_be_visible()
    expect(approve).to_contain_text("۱٬۴۰۰٬۰۰۰")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "estimate"
    approve.click()
    expect(page.locator(".alert-success")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "repair"


def test_the_keyboard_reaches_the_page_and_the_first_refused_field(live_server, page, users):
    """The first Tab offers to skip the menu; an intake sent back with errors puts the cursor
    in the first refused field (the mobile number has the page's autofocus), which names its
    error for a screen reader."""
    base = live_server.url
    login(page, base, "reception1")
    page.goto(f"{base}/desk/intake?lang=en")
    page.focus(".navbar-brand")  # the menu's first link: the skip link comes before it
    page.keyboard.press("Shift+Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    page.fill("#customer_phone", "09121234567")
    page.fill("#customer_name", "Narges Rezaei")
    page.fill("#device_brand", "Samsung")
    page.fill("#device_serial", VALID_IMEI)
    page.fill("#problem", "Cracked screen")
    page.click("form.intake-form button.btn-primary")  # the model left empty
    model = page.locator("#device_model")
    expect(model).to_be_focused()
    expect(model).to_have_attribute("aria-invalid", "true")
    described = model.get_attribute("aria-describedby")
    assert page.locator(f"#{described}").inner_text().strip()


def test_enter_after_the_number_at_the_kiosk_takes_no_number(live_server, page, users):
    """A form's Enter presses its first button: a customer who typed their number and pressed
    Enter got a repair number whatever they came for. Enter moves on to the services."""
    base = live_server.url
    login(page, base, "reception1")
    page.goto(f"{base}/kiosk")
    page.fill("#phone", "09121234567")
    page.locator("#phone").press("Enter")
    expect(page.locator("button[data-service=repair]")).to_be_focused()
    assert "/kiosk" in page.url
    db.session.expire_all()
    assert db.session.scalar(select(Visit)) is None
    page.click("button[data-service=pickup]")
    page.wait_for_url(re.compile(r"/visits/\d+/slip"))
    db.session.expire_all()
    visit = db.session.scalar(select(Visit))
    assert visit.service == "pickup" and visit.phone == "+989121234567"


def test_the_waiting_rooms_tablet_logs_in_as_a_kiosk_and_keeps_itself_fresh(
        live_server, page, users):
    """The kiosk account lands on the kiosk, takes a number and prints its slip; left alone,
    the kiosk opens itself anew in the shop's language (its session and form stay alive
    through a quiet day and the night); staff pages are refused to it."""
    from ..conftest import add_user
    add_user("lobby", "kiosk")
    base = live_server.url
    page.clock.install()
    login(page, base, "lobby")
    assert page.url.endswith("/kiosk")
    page.click("button[data-service=repair]")
    page.wait_for_url(re.compile(r"/visits/\d+/slip"))
    expect(page.locator(".slip-number")).to_have_text("R-۰۰۱")
    assert page.evaluate("window.__prints") == 1

    page.goto(f"{base}/kiosk?lang=en")
    page.fill("#phone", "0912")
    page.clock.fast_forward("05:00")
    assert "lang=en" in page.url  # someone is at it: left as it is
    page.clock.fast_forward("11:00")
    page.wait_for_url(re.compile(r"/kiosk\?lang=fa$"))
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("#phone")).to_have_value("")

    for url in ("/tickets/", "/desk", "/queue"):
        assert page.goto(f"{base}{url}").status == 403, url
    assert page.goto(f"{base}/display").status == 200


def test_back_or_a_reload_at_the_tablet_does_not_print_the_last_customers_slip_again(
        live_server, page, users):
    """The slip prints once, when it is opened; Back to it, Forward to it or a reload bring
    it on screen without printing (a second paper with the same number is two customers on
    one turn), and once it went back to the kiosk, Back does not land on it."""
    from ..conftest import add_user
    add_user("lobby", "kiosk")
    base = live_server.url
    page.clock.install()
    login(page, base, "lobby")
    page.click("button[data-service=repair]")
    page.wait_for_url(re.compile(r"/visits/\d+/slip"))
    assert page.evaluate("window.__prints") == 1
    slip = page.url
    page.reload()
    page.wait_for_load_state("load")
    assert page.evaluate("window.__prints || 0") == 0  # a new document: counted afresh
    page.clock.fast_forward("00:30")  # back to the kiosk by itself
    page.wait_for_url(re.compile(r"/kiosk"))
    page.go_back()
    page.wait_for_load_state("load")
    assert page.url != slip or page.evaluate("window.__prints || 0") == 0
    other = page.context.new_page()  # opened anew in a tab of its own: it prints
    other.goto(slip)
    other.wait_for_function("window.__prints === 1")
    other.close()


def test_send_to_repair_from_the_desk_is_one_click_and_its_confirmation(live_server, page,
                                                                        users, make_ticket):
    """One click on the worklist's "Send to repair" asks (the step cannot be taken back);
    dismissed, nothing is sent; accepted, the device is at the repair unit and the desk is
    still on its worklist."""
    ticket = make_ticket("intake")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk?lang=en")
    button = page.locator(f'[data-send-to-repair="{ticket.id}"] button')
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    button.click()
    expect(button).to_be_visible()
    assert asked and ticket.number in asked[0] and "cannot be taken back" in asked[0]
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "intake"
    page.once("dialog", lambda d: d.accept())
    button.click()
    expect(page.locator(".alert-success")).to_contain_text(ticket.number)
    assert page.url.endswith("/desk")
    expect(page.locator(f'[data-send-to-repair="{ticket.id}"]')).to_have_count(0)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "diagnosis"
