"""The paper a slip prints on: the thermal rolls (80 mm, 58 mm) and an office printer's sheets
(A5, A4) for the receipts and the till slip, asked for by the desk (``?paper=``) or set for
the whole shop on the settings page; the queue slip and the shelf label stay on the roll. A
QR code's modules are whole printer dots. A split payment's words on the till slip keep each
figure with its unit. (How they lay out is measured in Chromium: tests/e2e/test_slip_*.)"""
import re

import pytest

from servicedesk import reports, slips
from servicedesk.services import reception as reception_service

from .conftest import actor_for
from .test_admin import SETTINGS_FORM, Browser
from .test_reception import Staff, text, visit_by_label


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


def body_class(page: str) -> str:
    return re.search(r'<body class="([^"]*)"', page).group(1)


def test_the_desk_asks_for_a_sheet_or_a_roll(app):
    with app.test_request_context():
        assert slips.paper(None) == "80" and slips.paper("") == "80"
        assert slips.paper("58") == "58" and slips.paper("۵۸") == "58"
        assert slips.paper("58mm") == "58" and slips.paper(" 58 MM ") == "58"
        assert slips.paper("A5") == "a5" and slips.paper("a4") == "a4"
        assert slips.paper("a3") == "80" and slips.paper("72") == "80"
        # the queue slip and the label: the roll, whatever is asked
        assert slips.paper("a5", sheets=False) == "80"
        assert slips.paper("58", sheets=False) == "58"
        assert slips.copies("a4") == ("shop", "customer") and slips.copies("a5") == ("",)


def test_the_receipt_opens_on_the_sheet_asked_for_and_the_label_stays_on_the_roll(
        desk, make_ticket):
    ticket = make_ticket("intake")
    a5 = text(desk.get(f"/tickets/{ticket.id}/receipt?paper=a5&lang=en"))
    assert body_class(a5) == "slip paper-a5 sheet" and "data-sheet" in a5
    assert "/static/css/print-a5.css" in a5 and "data-copy-label" not in a5
    # the tools above the slip offer the four papers; the label's only the rolls
    assert re.findall(r'data-paper-choice="(\w+)"', a5) == ["80", "58", "a5", "a4"]
    assert "A5 sheet" in a5 and "A4 sheet, two copies" in a5
    label = text(desk.get(f"/tickets/{ticket.id}/label?paper=a5&lang=en"))
    assert body_class(label) == "slip paper-80" and "print-a5.css" not in label
    assert re.findall(r'data-paper-choice="(\w+)"', label) == ["80", "58"]
    desk.post("/kiosk", {"service": "repair"})
    queue = text(desk.get(f"/visits/{visit_by_label('R-001').id}/slip?paper=a4"))
    assert body_class(queue) == "slip paper-80"


@pytest.mark.parametrize("lang,shop,customer", [
    ("en", "Shop's copy", "Customer's copy"), ("fa", "نسخهٔ فروشگاه", "نسخهٔ مشتری")])
def test_an_a4_receipt_has_the_shops_copy_and_the_customers(desk, make_ticket, users, lang,
                                                            shop, customer):
    ticket = make_ticket("ready")
    reception_service.deliver(ticket.id, actor_for("deliver", users), 14_000_000, "owner",
                              payment_method="cash")
    for slip in ("receipt", "delivery-receipt"):
        page = text(desk.get(f"/tickets/{ticket.id}/{slip}?paper=a4&lang={lang}"))
        assert "/static/css/print-a4.css" in page
        assert re.findall(r'data-copy="(\w+)"', page) == ["shop", "customer"]
        labels = re.findall(r'data-copy-label="\w+">([^<]+)<', page)
        assert labels == [shop, customer]
        # one heading for the page; the second copy's title is not a second h1
        assert page.count("<h1") == 1
        assert page.count("data-qr=") == 2


def test_the_stylesheets_give_a_sheet_its_page_and_a_roll_none(app):
    def sheet(name):
        with open(f"{app.static_folder}/css/{name}") as f:
            return re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    assert "@page { size: A5; margin: 10mm; }" in sheet("print-a5.css")
    assert "@page { size: A4; margin: 10mm; }" in sheet("print-a4.css")
    assert "size" not in re.search(r"@page \{[^}]*\}", sheet("print.css")).group(0)


def test_the_shop_sets_the_paper_its_receipts_print_on(app, users, desk, make_ticket):
    admin = Browser(app)
    assert admin.login(users["admin"].username).status_code == 302
    ticket = make_ticket("intake")
    assert 'name="slip_paper"' in text(admin.get("/admin/settings?lang=en"))
    assert admin.post("/admin/settings", {**SETTINGS_FORM, "slip_paper": "a5"}) \
        .status_code == 302
    assert body_class(text(desk.get(f"/tickets/{ticket.id}/receipt"))) == \
        "slip paper-a5 sheet"
    assert body_class(text(desk.get("/desk/takings/slip"))) == "slip paper-a5 sheet"
    # the desk still picks another for one slip; the label stays on the roll
    assert body_class(text(desk.get(f"/tickets/{ticket.id}/receipt?paper=58"))) == \
        "slip paper-58"
    assert body_class(text(desk.get(f"/tickets/{ticket.id}/label"))) == "slip paper-80"
    # a paper the shop cannot print on is refused, naming the field; nothing changes
    refused = admin.post("/admin/settings?lang=en", {**SETTINGS_FORM, "slip_paper": "a3"})
    assert refused.status_code in (200, 422) and "Must be one of" in text(refused)
    assert body_class(text(desk.get(f"/tickets/{ticket.id}/receipt"))) == \
        "slip paper-a5 sheet"


@pytest.mark.parametrize("modules", range(29, 66, 4))  # QR versions 1 to 10, quiet zone in
def test_a_qr_codes_modules_are_whole_dots_at_a_scannable_size(app, modules):
    for paper, low, high in (("80", 24, 31), ("58", 21, 27), ("a5", 24, 28), ("a4", 24, 28)):
        dpi, dots = slips.qr_dots(modules, paper)
        mm = modules * dots * 25.4 / dpi
        assert dpi == (600 if paper in ("a5", "a4") else 203) and dots >= 2
        assert low <= mm <= high, (paper, modules, dots, mm)
    assert slips.qr_dots(37, "80") == (203, 6)  # 27.8 mm, not 30 mm of 6.47 dots
    sized = str(slips.qr_code("http://shop.test/t/ABCDEFGHJKLM").on("80"))
    assert re.match(r'<svg width="(\d+\.\d+)mm" height="\1mm"', sized)


def test_a_split_payment_on_the_till_slip_keeps_each_figure_with_its_unit(app):
    parts = [{"method": "cash", "amount": 10_000_000}, {"method": "card", "amount": 4_105_000}]
    for lang in ("en", "fa"):
        with app.test_request_context(f"/?lang={lang}"):
            words = reports.parts_in_words(parts)
            printed = str(reports.parts_for_print(parts))
            assert re.sub(r"<[^>]+>", "", printed) == words  # the same words
            spans = re.findall(r'<span class="slip-money">([^<]+)</span>', printed)
            assert len(spans) == 2 and all(" " in s for s in spans), printed
    with app.test_request_context("/?lang=en"):
        assert re.findall(r'<span class="slip-money">([^<]+)</span>',
                          str(reports.parts_for_print(parts))) == ["1,000,000 toman",
                                                                   "410,500 toman"]


def test_the_paper_set_in_the_environment_is_a_number_there(app, desk, make_ticket):
    """SERVICEDESK_SLIP_PAPER=58 reaches the config as the number 58 (JSON)."""
    ticket = make_ticket("intake")
    app.config["SLIP_PAPER"] = 58
    assert body_class(text(desk.get(f"/tickets/{ticket.id}/receipt"))) == "slip paper-58"
    app.config["SLIP_PAPER"] = "a4"
    assert body_class(text(desk.get(f"/tickets/{ticket.id}/receipt"))) == \
        "slip paper-a4 sheet"
