"""The receipts on an office printer's sheets, measured in Chromium as they print (print media,
``page.pdf`` with the page size the slip's CSS asks for), in Persian and in English, with a
busy ticket: a long problem, a bill of many lines, signed on the counter's screen at both ends,
paid part in cash and part by the card reader.

A5: one copy on exactly one A5 page, nothing wider than the page's printable area, the
amounts in one column. A4: the shop's copy and the customer's, labelled, on one page, each
within its half, the cut between them at the sheet's middle. And a QR code's module is a whole
number of the printer's dots: 203 dpi on a thermal roll, 600 dpi on a sheet.
"""
import os
import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.services import reception as reception_service
from servicedesk.services import tickets as ticket_service
from servicedesk.services.tickets import default_branch

from ..test_signatures import SIGNED, data_url
from .conftest import ARTIFACTS, login
from .test_reception_e2e import pdf_pages
from .test_slip_fit_e2e import INTAKE, LINES, LONG_TERMS, MEASURE, amounts_out_of_line

MM = 96 / 25.4  # CSS px per mm
PT = 72 / 25.4  # PDF points per mm
SHEET_MM = {"a5": (148, 210), "a4": (210, 297)}
MARGIN_MM = 10
PROBLEM = ("The inner folding screen cracked along the hinge after a drop from a table; the "
           "outer screen flickers green and goes black when the phone is opened halfway; the "
           "phone restarts by itself while charging, and the fingerprint reader on the side "
           "key stopped reading after the fall. The customer says it got wet in the rain two "
           "weeks ago too. Data on it matters: photos not backed up.")
MORE_LINES = LINES + [
    {"kind": "part", "description": f"Screw set, hinge cover part {n} (original)", "qty": n,
     "unit_price": 150_000 * n} for n in range(1, 6)] + [
    {"kind": "labour", "description": "Board-level diagnosis of the charging restart",
     "qty": 1, "unit_price": 4_500_000},
    {"kind": "part", "description": "Fingerprint reader flex cable", "qty": 1,
     "unit_price": 2_800_000},
]
BILL = sum(line["qty"] * line["unit_price"] for line in MORE_LINES)


@pytest.fixture
def busy_ticket(app, users):
    """One ticket with everything on it, signed at the intake and at the hand-back, paid part
    in cash and part by the card reader; the till slip of the day."""
    app.config.update(SHOP_ADDRESS="Unit 12, 3rd floor, Alaeddin Mobile Trade Centre, "
                                   "Jomhouri Eslami Avenue, Tehran",
                      SHOP_PHONE="021 6671 2345", RECEIPT_TERMS=LONG_TERMS,
                      SHOP_NAME="Alaeddin Mobile Repair Centre — Jomhouri Branch")
    promised = (date.today() + timedelta(days=20)).isoformat()
    ticket = ticket_service.admit(dict(INTAKE, problem=PROBLEM, promised_date=promised,
                                       signature=data_url(SIGNED)),
                                  Actor.staff(users["reception"]))
    data = {"send_to_repair": ({"technician": "technician1"}, "reception"),
            "quote": ({"lines": MORE_LINES, "promised_date": promised}, "technician"),
            "approve": ({"channel": "phone"}, "reception"),
            "finish": ({"lines": MORE_LINES, "work_done": "Replaced the inner display, the "
                        "fingerprint flex and the protector; the hinge checked and cleaned; "
                        "the charging restart traced to the board and mended."},
                       "technician")}
    for event, (payload, role) in data.items():
        ticket_service.fire_event(ticket.id, event, Actor.staff(users[role]), dict(payload))
    reception_service.deliver(ticket.id, Actor.staff(users["reception"]), BILL, "Narges",
                              payments=[{"method": "cash", "amount": 100_000_000},
                                        {"method": "card", "amount": BILL - 100_000_000}],
                              signature=data_url(SIGNED))
    visit = reception_service.issue_number(default_branch(), "repair")
    db.session.expire_all()
    return {"receipt": f"/tickets/{ticket.id}/receipt",
            "delivery": f"/tickets/{ticket.id}/delivery-receipt",
            "till": "/desk/takings/slip", "label": f"/tickets/{ticket.id}/label",
            "queue": f"/visits/{visit.id}/slip"}


def open_slip(browser, base_url, path, lang, paper, media="print"):
    """The slip as it prints on ``paper``: print media, a window as wide as the page."""
    width_mm = SHEET_MM[paper][0] if paper in SHEET_MM else int(paper)
    context = browser.new_context(viewport={"width": round(width_mm * MM), "height": 1000},
                                  device_scale_factor=2, locale="fa-IR")
    context.add_init_script("window.print = function () {};")
    page = context.new_page()
    page.set_default_timeout(10_000)
    login(page, base_url, "reception1")
    page.emulate_media(media=media)
    page.goto(f"{base_url}{path}?lang={lang}&paper={paper}")
    page.evaluate("document.fonts.ready")
    return context, page


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sheet_problems(m, paper):
    """What is wrong with a measured sheet, in words (empty: it fits)."""
    found = []
    printable = (SHEET_MM[paper][0] - 2 * MARGIN_MM) * MM
    if m["page"]["scroll"] > m["page"]["client"]:
        found.append(f"the page scrolls sideways: {m['page']}")
    if m["body"]["width"] > printable + 0.5:
        found.append(f"wider than the page's printable area: {m['body']}")
    if m["outside"]:
        found.append(f"outside the printable area: {m['outside'][:8]}")
    if m["overflowing"]:
        found.append(f"content wider than its box: {m['overflowing'][:8]}")
    return found + amounts_out_of_line(m)


def pages_printed(page, paper):
    """What is wrong with the PDF Chromium prints (empty: exactly one page, of the sheet's
    size)."""
    pages = pdf_pages(page.pdf(prefer_css_page_size=True, print_background=True))
    width, height = SHEET_MM[paper]
    if len(pages) != 1 or abs(pages[0][0] - width * PT) > 1 \
            or abs(pages[0][1] - height * PT) > 1:
        return [f"printed on {len(pages)} pages (points): {pages}"]
    return []


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_a_busy_receipt_and_delivery_receipt_print_on_one_a5_page(live_server, browser,
                                                                 busy_ticket, lang):
    report = {}
    for slip in ("receipt", "delivery"):
        context, page = open_slip(browser, live_server.url, busy_ticket[slip], lang, "a5")
        try:
            expect(page.locator("img.slip-signature")).to_be_visible()
            assert page.locator(".slip-copy").count() == 1  # one copy a page
            assert page.locator("[data-copy-label]").count() == 0
            m = page.evaluate(MEASURE)
            found = sheet_problems(m, "a5") + pages_printed(page, "a5")
            if slip == "delivery" and len(m["amounts"]) < len(MORE_LINES) + 4:
                found.append(f"amounts not found: {m['amounts']}")
            if found:
                report[slip] = found
            if found or os.environ.get("SLIP_SHOTS"):
                shot(page, f"sheet-{slip}-{lang}-a5")
        finally:
            context.close()
    assert not report, "\n".join(f"{slip}: {line}" for slip, lines in report.items()
                                 for line in lines)


COPIES = r"""() => Array.from(document.querySelectorAll(".slip-copy")).map((el) => {
  const r = el.getBoundingClientRect();
  const label = el.querySelector("[data-copy-label]");
  return {copy: el.getAttribute("data-copy"), top: r.top, bottom: r.bottom,
          label: label ? label.textContent.trim() : null,
          content: Math.max(...Array.from(el.querySelectorAll("*"))
                                 .map((c) => c.getBoundingClientRect().bottom)) - r.top,
          cut: getComputedStyle(el).borderTopStyle};
})"""


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_an_a4_sheet_has_the_shops_copy_and_the_customers_each_on_its_half(
        live_server, browser, busy_ticket, lang):
    labels = {"en": ["Shop's copy", "Customer's copy"], "fa": ["نسخهٔ فروشگاه", "نسخهٔ مشتری"]}
    half = (SHEET_MM["a4"][1] / 2 - MARGIN_MM) * MM  # the top half, less the page's margin
    report = {}
    for slip in ("receipt", "delivery"):
        context, page = open_slip(browser, live_server.url, busy_ticket[slip], lang, "a4")
        try:
            copies = page.evaluate(COPIES)
            assert [c["copy"] for c in copies] == ["shop", "customer"], copies
            assert [c["label"] for c in copies] == labels[lang], copies
            shop, customer = copies
            # the cut (the customer's copy's top edge, dashed) at the sheet's middle, and
            # each copy's content within its half
            assert customer["cut"] == "dashed"
            found = []
            if abs(customer["top"] - shop["top"] - half) > 1 * MM:
                found.append(f"the cut is not at the middle: {copies}")
            for c in copies:
                if c["content"] > half + 0.5:
                    found.append(f"the {c['copy']}'s copy is taller than half the sheet "
                                 f"({c['content'] / MM:.1f} mm)")
            found += sheet_problems(page.evaluate(MEASURE), "a4") + pages_printed(page, "a4")
            assert page.locator("img.slip-signature").count() == 2
            if found:
                report[slip] = found
            if found or os.environ.get("SLIP_SHOTS"):
                shot(page, f"sheet-{slip}-{lang}-a4")
        finally:
            context.close()
    assert not report, "\n".join(f"{slip}: {line}" for slip, lines in report.items()
                                 for line in lines)


@pytest.mark.parametrize("paper", ["a5", "a4"])
def test_the_till_slip_prints_on_a_sheet_too(live_server, browser, busy_ticket, paper):
    for lang in ("fa", "en"):
        context, page = open_slip(browser, live_server.url, busy_ticket["till"], lang, paper)
        try:
            m = page.evaluate(MEASURE)
            found = sheet_problems(m, paper) + pages_printed(page, paper)
            if found or os.environ.get("SLIP_SHOTS"):
                shot(page, f"sheet-till-{lang}-{paper}")
            assert not found, found
            assert len(m["amounts"]) >= 6
            assert page.locator(".slip-copy").count() == 1  # the till's: one, unlabelled
        finally:
            context.close()


# Each QR code on the slip: its width in CSS px and in modules (the SVG's viewBox, the quiet
# zone counted), as the browser lays it out for print.
QR_BOXES = r"""() => Array.from(document.querySelectorAll(".qr svg")).map((svg) => ({
  width: svg.getBoundingClientRect().width, height: svg.getBoundingClientRect().height,
  modules: svg.viewBox.baseVal.width}))"""


@pytest.mark.parametrize("paper,dpi,sizes", [
    ("80", 203, {"receipt": (24, 31), "delivery": (24, 31), "label": (17, 23),
                 "queue": (17, 23)}),
    ("58", 203, {"receipt": (20, 27), "delivery": (20, 27), "label": (15, 21),
                 "queue": (15, 21)}),
    ("a5", 600, {"receipt": (22, 28), "delivery": (22, 28)}),
    ("a4", 600, {"receipt": (22, 28), "delivery": (22, 28)}),
])
def test_a_qr_codes_modules_are_whole_printer_dots(live_server, browser, busy_ticket, paper,
                                                  dpi, sizes):
    """A thermal head prints 203 dots an inch (8 a mm): a module 6.47 dots wide was drawn 6
    or 7, and some printers blurred the code. Each module is a whole number of dots, the code
    still a size a phone scans from the counter (about 20 to 30 mm)."""
    for slip, (low, high) in sizes.items():
        context, page = open_slip(browser, live_server.url, busy_ticket[slip], "en", paper)
        try:
            boxes = page.evaluate(QR_BOXES)
            assert boxes, slip
            for box in boxes:
                mm = box["width"] / MM
                dots = mm / box["modules"] * dpi / 25.4
                assert abs(dots - round(dots)) < 0.02, (slip, paper, mm, box, dots)
                assert low <= mm <= high, (slip, paper, mm)
                assert abs(box["height"] - box["width"]) < 0.01
        finally:
            context.close()


def test_the_queue_slip_and_the_label_stay_on_the_roll(live_server, browser, busy_ticket):
    for slip in ("label", "queue"):
        context, page = open_slip(browser, live_server.url, busy_ticket[slip], "en", "a5",
                                  media="screen")
        try:
            assert page.get_attribute("body", "data-paper") == "80"
            choices = page.eval_on_selector_all("[data-paper-choice]",
                                                "els => els.map(e => e.dataset.paperChoice)")
            assert choices == ["80", "58"], (slip, choices)
        finally:
            context.close()
    context, page = open_slip(browser, live_server.url, busy_ticket["receipt"], "en", "80",
                              media="screen")
    try:
        # the receipt's tools offer the sheets; picking one opens it on the sheet
        page.click("[data-paper-choice=a4]")
        expect(page.locator("body")).to_have_attribute("data-paper", "a4")
        expect(page.locator("[data-copy-label]")).to_have_text(["Shop's copy",
                                                                "Customer's copy"])
        assert re.search(r"[?&]paper=a4", page.url)
    finally:
        context.close()
