"""The pages a technician, a receptionist and a customer open on a phone, in a real browser, at
320, 360 and 390 px wide with the font at 100, 125 and 150 per cent (the root font size,
standing in for a phone's larger text setting), in Persian and in English; and at 800 (a tablet)
and 1280 px. None may push the page sideways, and what the reader came for stays on the screen:
the estimate editor's fields, line totals, remove buttons and running total; the worklist's
Claim button, promised date and late marker and the whole problem within a tap; a ticket list's
rows; the customer's progress, promised date and estimate.

Each page's problems are collected, not stopped at the first one, so a failure lists every
size and font that is wrong."""
import re
from datetime import timedelta

from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.links import survey_url, tracking_url
from servicedesk.models import Ticket
from servicedesk.services import tickets as ticket_service
from servicedesk.visits import shop_day
from servicedesk.web import workbench as workbench_views

from ..conftest import INTAKE
from .conftest import login

PHONES = (320, 360, 390)
WIDER = (800, 1280)
FONTS = (100, 125, 150)
LANGS = ("fa", "en")

LONG_FA = ("گوشی از دست افتاده، صفحه نمایش شکسته و لمس کار نمی‌کند؛ باتری هم زود خالی می‌شود و"
           " دوربین پشت تار است. مشتری می‌گوید قبلاً یک بار تعمیر شده است و قاب پشت را هم"
           " عوض کرده‌اند؛ رمز گوشی را روی رسید نوشته است.")
LONG_EN = ("Dropped in water last weekend, the screen flickers and touch does not respond; the"
           " battery drains overnight and the back camera is blurry.")
LONG_DEVICE = {**INTAKE["device"], "model": "Galaxy A54 5G Enterprise Edition"}


def reload(ticket_id: int) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id)


def queued(users, **intake) -> Ticket:
    """A device the reception sent to the repair queue, no technician named."""
    ticket = ticket_service.admit({**INTAKE, **intake}, Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {})
    return reload(ticket.id)


def open_page(page, url: str, width: int) -> None:
    page.emulate_media(reduced_motion="reduce")  # Bootstrap would scroll smoothly: measured mid-way
    page.set_viewport_size({"width": width, "height": 844})
    page.goto(url)
    page.evaluate("document.fonts.ready")  # measured in Vazirmatn, not in the fallback font


def set_font(page, percent: int) -> None:
    page.evaluate("p => { document.documentElement.style.fontSize = p + '%'; }", percent)


def sideways(page) -> int:
    """How many px the page reaches past the screen (0: it does not scroll sideways)."""
    return page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def off_screen(page, locator, vertical: bool = False) -> str | None:
    """None when the element is wholly within the screen's width (and height, if asked);
    else where it is."""
    box = locator.bounding_box()
    if box is None:
        return "not shown"
    size = page.viewport_size
    right = box["x"] + box["width"]
    if box["x"] < -0.5 or right > size["width"] + 0.5:
        return f"x {box['x']:.0f}..{right:.0f} of {size['width']}"
    if vertical and (box["y"] < -0.5 or box["y"] + box["height"] > size["height"] + 0.5):
        return f"y {box['y']:.0f}..{box['y'] + box['height']:.0f} of {size['height']}"
    return None


def look(page, where: str, problems: list, controls: dict, vertical=()) -> None:
    """Note the page's sideways scroll and every control that is not on the screen."""
    if reach := sideways(page):
        problems.append(f"{where}: the page scrolls {reach}px sideways")
    for name, locator in controls.items():
        if (out := off_screen(page, locator, vertical=name in vertical)) is not None:
            problems.append(f"{where}: {name} off the screen ({out})")


def report(problems: list) -> None:
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


# --- the estimate editor --------------------------------------------------------------------

def test_the_estimate_editor_is_a_card_per_line_on_a_phone_with_the_total_in_sight(
        live_server, page, make_ticket):
    ticket = make_ticket("diagnosis")  # technician1's
    login(page, live_server.url, "technician1")
    problems = []
    for lang in LANGS:
        for width in PHONES + WIDER:
            open_page(page, f"{live_server.url}/tickets/{ticket.id}?lang={lang}", width)
            form = page.locator('form[data-event-form="quote"]')
            first = form.locator("tr[data-line]").first
            first.locator("input[name=line_description]").fill("LCD")
            first.locator("input[name=line_qty]").fill("2")
            first.locator("input[name=line_unit_price]").fill("1200000")
            for font in FONTS:
                set_font(page, font)
                where = f"{lang} {width}px {font}%"
                # the first line at the top of the screen: the running total stays in sight
                first.evaluate("row => row.scrollIntoView({block: 'start', behavior: 'instant'})")
                look(page, where, problems, {
                    "kind": first.locator("select[name=line_kind]"),
                    "description": first.locator("input[name=line_description]"),
                    "qty": first.locator("input[name=line_qty]"),
                    "unit price": first.locator("input[name=line_unit_price]"),
                    "line total": first.locator("[data-line-total]"),
                    "remove button": first.locator("[data-remove-line]"),
                    "grand total": form.locator("[data-lines-total]"),
                }, vertical=("grand total", "line total"))
                typed = first.locator("input[name=line_description]").bounding_box()["width"]
                if width in PHONES and typed < width * 0.4:
                    problems.append(f"{where}: the description field is {typed:.0f}px wide")
                # on a desktop the lines stay a table, a column per field
                header = form.locator("thead")
                if width == 1280 and font == 100 and not header.is_visible():
                    problems.append(f"{where}: the editor is not a table")
                if width in PHONES and header.is_visible():
                    problems.append(f"{where}: the editor is still a table")
    report(problems)


def test_a_phone_adds_and_removes_lines_and_reads_a_lines_error_in_full(
        live_server, page, make_ticket):
    ticket = make_ticket("diagnosis")
    login(page, live_server.url, "technician1")
    open_page(page, f"{live_server.url}/tickets/{ticket.id}?lang=en", 360)
    set_font(page, 125)
    problems = []
    form = page.locator('form[data-event-form="quote"]')
    editor = form.locator("[data-lines-editor]")
    rows = form.locator("tr[data-line]")
    expect(rows).to_have_count(3)
    rows.nth(0).locator("input[name=line_description]").fill("Screen")
    rows.nth(0).locator("input[name=line_qty]").fill("2")
    rows.nth(0).locator("input[name=line_unit_price]").fill("1200000")  # toman
    expect(editor).to_have_attribute("data-total", "24000000")  # rials
    form.locator("[data-add-line]").click()
    expect(rows).to_have_count(4)
    rows.nth(3).locator("input[name=line_description]").fill("Glass")
    rows.nth(3).locator("input[name=line_unit_price]").fill("50000")
    expect(editor).to_have_attribute("data-total", "24500000")
    expect(rows.nth(3).locator("[data-line-total]")).to_have_text(re.compile("50,000 toman"))
    look(page, "en 360px 125%", problems, {
        "the added line's total": rows.nth(3).locator("[data-line-total]"),
        "the added line's remove button": rows.nth(3).locator("[data-remove-line]")})
    rows.nth(3).locator("[data-remove-line]").click()
    rows.nth(1).locator("[data-remove-line]").click()  # an empty line
    expect(rows).to_have_count(2)
    expect(editor).to_have_attribute("data-total", "24000000")
    expect(form.locator("[data-lines-total]")).to_have_text(re.compile("2,400,000"))

    # a line the server refuses comes back with its error under it, readable on the screen
    rows.nth(1).locator("input[name=line_description]").fill("Fitting")
    rows.nth(1).locator("input[name=line_qty]").fill("0")
    rows.nth(1).locator("input[name=line_unit_price]").fill("5000")
    form.locator("button[data-fire=quote]").click()
    error = page.locator('form[data-event-form="quote"] [data-error-line="2"]')
    expect(error).to_be_visible()
    for width in PHONES:
        page.set_viewport_size({"width": width, "height": 844})
        for font in FONTS:
            set_font(page, font)
            error.scroll_into_view_if_needed()
            look(page, f"en {width}px {font}%", problems, {"the line's error": error})
            if error.evaluate("e => e.scrollWidth > e.clientWidth + 1"):
                problems.append(f"en {width}px {font}%: the line's error is cut off")
    report(problems)
    assert reload(ticket.id).state == "diagnosis"


# --- the worklist ---------------------------------------------------------------------------

def test_the_worklist_on_a_phone_shows_claim_the_promise_and_the_whole_problem(
        live_server, page, users, monkeypatch):
    # no refresh while the rows are measured (a row replaced mid-measure is detached)
    monkeypatch.setattr(workbench_views, "POLL_SECONDS", 3600)
    late = queued(users, problem=LONG_FA, device=LONG_DEVICE)
    other = queued(users, problem=LONG_EN)
    for ticket in (late, other):
        ticket.promised_date = shop_day() - timedelta(days=2)
    db.session.commit()
    login(page, live_server.url, "technician1")
    problems = []
    for lang in LANGS:
        for width in PHONES + WIDER:
            open_page(page, f"{live_server.url}/workbench/?lang={lang}", width)
            for font in FONTS:
                set_font(page, font)
                where = f"{lang} {width}px {font}%"
                for ticket in (late, other):
                    row = page.locator(f'#bucket-queue tr[data-ticket="{ticket.id}"]')
                    row.scroll_into_view_if_needed()
                    look(page, f"{where} {ticket.number}", problems, {
                        "number": row.locator("td").first,
                        "Claim": row.locator("[data-claim]"),
                        "since": row.locator("td").nth(4),
                        "promised date and late marker": row.locator(".promised"),
                        "problem": row.locator(".problem"),
                    })
                    # the problem wraps: two or three lines, not one line cut at 22rem
                    lines = row.locator(".problem").evaluate(
                        "td => { const text = td.querySelector('summary') || td;"
                        " return text.getBoundingClientRect().height"
                        " / parseFloat(getComputedStyle(text).lineHeight); }")
                    if not 1.5 < lines < 3.6:
                        problems.append(f"{where} {ticket.number}: the problem shows "
                                        f"{lines:.1f} lines")
    report(problems)

    # a tap opens the whole problem, and the list's refresh (every second now) leaves it open
    monkeypatch.setattr(workbench_views, "POLL_SECONDS", 1)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/workbench/")
    problem = page.locator(f'#bucket-queue tr[data-ticket="{late.id}"] .problem summary')
    assert problem.evaluate("s => s.scrollHeight > s.clientHeight + 1")  # clamped
    closed = problem.bounding_box()["height"]
    problem.click()
    expect(page.locator(f'#bucket-queue tr[data-ticket="{late.id}"] details')).to_have_attribute(
        "open", "")
    assert problem.bounding_box()["height"] > closed
    assert problem.evaluate("s => s.scrollHeight <= s.clientHeight + 1")  # nothing cut off
    page.locator("#bucket-queue").evaluate("s => { s.dataset.before = 'refresh'; }")
    expect(page.locator("#bucket-queue[data-before]")).to_have_count(0, timeout=5_000)
    expect(page.locator(f'#bucket-queue tr[data-ticket="{late.id}"] details')).to_have_attribute(
        "open", "")
    # and Claim still works from a card
    page.locator(f'#bucket-queue tr[data-ticket="{late.id}"] [data-claim]').click()
    page.wait_for_url(f"{live_server.url}/tickets/{late.id}")
    assert reload(late.id).technician.username == "technician1"


# --- the ticket lists -----------------------------------------------------------------------

def test_the_ticket_list_and_the_desk_search_fit_a_phone(live_server, page, make_ticket):
    for state in ("intake", "diagnosis", "estimate", "waiting_parts"):
        make_ticket(state, intake={**INTAKE, "device": LONG_DEVICE})
    login(page, live_server.url, "reception1")
    problems = []
    for lang in LANGS:
        for width in PHONES + WIDER:
            for path in ("/tickets/?", "/desk/find?q=Rezaei&"):
                open_page(page, f"{live_server.url}{path}lang={lang}", width)
                row = page.locator("main tbody tr").first
                for font in FONTS:
                    set_font(page, font)
                    look(page, f"{path.rstrip('?&')} {lang} {width}px {font}%", problems, {
                        "number": row.locator("a").first,
                        "state": row.locator(".badge"),
                        "last cell": row.locator("td").last,
                    })
    report(problems)


# --- the customer's pages -------------------------------------------------------------------

def test_the_customers_pages_fit_a_phone_with_a_larger_font(
        live_server, page, make_ticket, users):
    estimate = make_ticket("estimate")
    in_queue = queued(users, device=LONG_DEVICE)
    in_queue.promised_date = shop_day() + timedelta(days=20)
    db.session.commit()
    parts = make_ticket("waiting_parts")
    delivered = make_ticket("delivered")
    pages = {"estimate": (tracking_url(estimate), ["[data-promised]", ".estimate-lines .amount"]),
             "repair queue": (tracking_url(in_queue), ["[data-promised]", "[data-queue-position]"]),
             "part awaited": (tracking_url(parts), ["[data-promised]", ".facts dd"]),
             "survey": (survey_url(delivered), ["label[for=nps-10]", "button[data-send-survey]"])}
    problems = []
    for name, (url, keys) in pages.items():
        for lang in LANGS:
            for width in PHONES + WIDER:
                open_page(page, f"{url}?lang={lang}", width)
                for font in FONTS:
                    set_font(page, font)
                    where = f"{name} {lang} {width}px {font}%"
                    controls = {"language switch": page.locator(".public-langs")}
                    if name != "survey":
                        controls["progress"] = page.locator(".steps")
                        for i in range(page.locator(".steps li").count()):
                            controls[f"step {i + 1}"] = page.locator(".steps li").nth(i)
                    for key in keys:
                        for i in range(page.locator(key).count()):
                            controls[f"{key} #{i + 1}"] = page.locator(key).nth(i)
                    look(page, where, problems, controls)
                    # a tap target, not a line of text
                    for link in page.locator(".public-langs a").all():
                        if (height := link.bounding_box()["height"]) < 40:
                            problems.append(f"{where}: a language link is {height:.0f}px tall")
                    # the receipt number is one word, not broken at its hyphen
                    number = page.locator("main bdi.ltr").first
                    if number.evaluate("b => b.getClientRects().length") != 1:
                        problems.append(f"{where}: the receipt number is broken over lines")
    report(problems)


def test_the_menu_folds_behind_one_button_on_a_phone(live_server, page, users):
    """A manager's nine links filled a phone's screen above every page: on a phone they open
    from one button; on a tablet or wider they are all in the bar."""
    login(page, live_server.url, "manager1")
    open_page(page, f"{live_server.url}/tickets/?lang=en", 390)
    reports = page.get_by_role("link", name="Reports")
    expect(reports).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(reports).to_be_visible()
    reports.click()
    page.wait_for_url(re.compile(r"/reports/"))
    open_page(page, f"{live_server.url}/tickets/?lang=en", 800)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("link", name="Reports")).to_be_visible()


# --- the manager's staff pages, now on the manager's phone -------------------------------------

def test_the_managers_new_pages_stay_on_a_phones_screen(live_server, page, users, make_ticket):
    """The staff accounts, one's own password, the loaner phones out and the bench's 'who
    holds what' are a manager's now, and a manager checks them on a phone: a user name
    written as an e-mail address pushed the whole users page (navbar and all) sideways, and
    so did, in a larger font, the ticket's 'hand on' form and its state's name."""
    from servicedesk.services import loaners

    from ..conftest import add_user
    north = add_user("reception.north.branch@example-shop.com", "reception")
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]),
                 {"description": "Samsung Galaxy A10 white", "serial": "490154203237518"})
    estimate = make_ticket("estimate")  # the longest state's name, and the manager's hand-on
    login(page, live_server.url, "manager1")
    problems = []
    for url in ("/admin/users", "/admin/users/new", f"/admin/users/{north.id}",
                "/account/password", "/desk/loaners", "/workbench/", "/tickets/?state=repair",
                f"/tickets/{ticket.id}", f"/tickets/{estimate.id}"):
        for lang in LANGS:
            for width in PHONES:
                open_page(page, f"{live_server.url}{url}?lang={lang}"
                          if "?" not in url else f"{live_server.url}{url}&lang={lang}", width)
                for font in (100, 150):
                    set_font(page, font)
                    look(page, f"{url} {lang} {width}px {font}%", problems, {})
    report(problems)
