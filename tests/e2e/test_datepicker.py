"""The Jalali date picker on Persian pages writes a Jalali date the server understands."""
from datetime import date

import jdatetime
from playwright.sync_api import expect

from servicedesk.i18n import parse_date

from .conftest import login


def test_jalali_picker_fills_a_date_the_server_parses(live_server, page, users, make_ticket):
    ticket = make_ticket("repair")
    login(page, live_server.url, "technician1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    field = page.locator("input[name=expected_date]").first
    field.click()
    popup = page.locator(".jdp-popup:not([hidden])")
    assert popup.count() == 1
    # the month title is the current Jalali month, in Persian
    today = jdatetime.date.today()
    title = popup.locator(".jdp-head span").inner_text()
    assert jdatetime.date.j_months_fa[today.month - 1] in title
    popup.locator(".jdp-day").nth(9).click()  # the 10th of this Jalali month
    value = field.input_value()
    assert value == f"{today.year}/{today.month:02d}/10"
    assert parse_date(value) == jdatetime.date(today.year, today.month, 10).togregorian()
    assert isinstance(parse_date(value), date)


def test_the_calendar_closes_when_tab_moves_on_and_lets_the_next_click_through(
        live_server, page, users):
    """A receptionist types the promised date and tabs on: the calendar must not stay open
    over the form; and a click elsewhere lands where it was aimed."""
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/intake")
    field = page.locator("input[name=promised_date]")
    field.click()
    assert page.locator(".jdp-popup:not([hidden])").count() == 1
    field.type("1405/10/01")
    page.keyboard.press("Tab")
    assert page.locator(".jdp-popup:not([hidden])").count() == 0
    assert field.input_value() == "1405/10/01"
    field.click()
    assert page.locator(".jdp-popup:not([hidden])").count() == 1
    page.evaluate("""() => { window.clicks = 0; const b = document.querySelector(
        'form button[type=submit], form button:not([type])');
        b.addEventListener('click', e => { e.preventDefault(); window.clicks += 1; }); }""")
    page.locator("form button[type=submit], form button:not([type])").first.click()
    assert page.evaluate("window.clicks") == 1
    assert page.locator(".jdp-popup:not([hidden])").count() == 0


def test_the_calendar_opens_on_the_typed_month_and_works_from_the_keyboard(
        live_server, page, users):
    """A date already in the field opens its own month, not this one; ArrowDown enters the
    calendar on that day, arrows move (right to left), Enter picks; the placeholder is an
    example from today, not a fixed year that goes stale."""
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/reports/costs")
    field = page.locator("input[name=to]")
    field.fill("")
    today = jdatetime.date.today()
    placeholder = field.get_attribute("placeholder")
    assert placeholder.startswith("مثلاً ") and str(today.year).translate(
        str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) in placeholder
    later = today + jdatetime.timedelta(days=70)  # two or three months on
    field.fill(f"{later.year}/{later.month:02d}/{later.day:02d}")
    field.press("Escape")
    page.locator("h1").first.click()
    field.click()
    popup = page.locator(".jdp-popup:not([hidden])")
    title = popup.locator(".jdp-head span").inner_text()
    assert jdatetime.date.j_months_fa[later.month - 1] in title
    field.press("ArrowDown")
    current = popup.locator(".jdp-day[aria-pressed=true]")
    assert current.evaluate("e => e === document.activeElement")
    page.keyboard.press("ArrowLeft")  # the next day, on the left in right-to-left
    page.keyboard.press("Enter")
    nxt = later + jdatetime.timedelta(days=1)
    # written in Persian digits on a Persian page, as the field shows its day
    assert field.input_value() == f"{nxt.year}/{nxt.month:02d}/{nxt.day:02d}".translate(
        str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert page.locator(".jdp-popup:not([hidden])").count() == 0
    expect(field).to_be_focused()  # back in the field, the calendar closed
    # past a month's edge the calendar turns the page and stays open; Escape closes it
    field.press("ArrowDown")
    for _ in range(6):
        page.keyboard.press("ArrowDown")  # six weeks on: the next month
    assert popup.count() == 1
    assert page.evaluate("document.activeElement.classList.contains('jdp-day')")
    page.keyboard.press("Escape")
    assert page.locator(".jdp-popup:not([hidden])").count() == 0
    expect(field).to_be_focused()


def test_the_calendar_opens_where_it_can_be_seen_on_a_short_screen(live_server, browser,
                                                                   users):
    """A laptop's 1366x700: the promised date at the foot of the screen opens its calendar
    above the field, not below the screen's edge; a field with room below opens it below."""
    from .conftest import new_context
    context = new_context(browser, viewport={"width": 1366, "height": 700}, locale="fa-IR")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        login(page, live_server.url, "reception1")
        page.goto(f"{live_server.url}/desk/intake")
        field = page.locator("input[name=promised_date]")
        # the field at the foot of the screen, as the desk reaches it scrolling down the form
        # (at once: Bootstrap scrolls smoothly, and the click would come mid-way)
        page.evaluate("""(el) => { const r = el.getBoundingClientRect();
            window.scrollBy({top: r.bottom - window.innerHeight + 8, behavior: "instant"}); }""",
                      field.element_handle())
        field.click()
        popup = page.locator(".jdp-popup:not([hidden])")
        expect(popup).to_have_count(1)
        box = field.bounding_box()
        assert 700 - 120 < box["y"] + box["height"] <= 700, box  # at the foot indeed
        shown = popup.bounding_box()
        assert shown["y"] >= 0 and shown["y"] + shown["height"] <= 700, (shown, box)
        assert shown["y"] + shown["height"] <= field.bounding_box()["y"] + 1  # above it
        # the next month (six weeks' rows, maybe) stays on the screen too
        for _ in range(3):
            popup.locator(".jdp-head button").nth(1).click()
            shown = popup.bounding_box()
            assert shown["y"] >= 0 and shown["y"] + shown["height"] <= 700, shown
        popup.locator(".jdp-day").nth(9).click()
        expect(popup).to_have_count(0)
        # with room below (a taller screen), below as before
        page.set_viewport_size({"width": 1366, "height": 1300})
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("input[name=customer_name]").click()
        field.click()
        expect(popup).to_have_count(1)
        shown = popup.bounding_box()
        assert shown["y"] >= field.bounding_box()["y"] + field.bounding_box()["height"] - 1
    finally:
        context.close()


def test_the_tills_day_is_in_persian_digits_and_the_calendar_keeps_them(live_server, page,
                                                                        users):
    """The till's day reads ۱۴۰۵/۰۹/۱۶, not 1405/09/16; a day picked in the calendar is
    written in Persian digits too, and the form sent shows that day."""
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/takings")
    field = page.locator("#till-day")
    today = jdatetime.date.today()
    fa = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    assert field.input_value() == today.strftime("%Y/%m/%d").translate(fa)
    field.click()
    popup = page.locator(".jdp-popup:not([hidden])")
    popup.locator(".jdp-day").nth(0).click()  # the 1st of this month
    first = jdatetime.date(today.year, today.month, 1)
    assert field.input_value() == first.strftime("%Y/%m/%d").translate(fa)
    page.locator("form[action$='/desk/takings'] button.btn-outline-primary").click()
    page.wait_for_load_state()
    expect(field).to_have_value(first.strftime("%Y/%m/%d").translate(fa))
    expect(field).not_to_have_attribute("aria-invalid", "true")
