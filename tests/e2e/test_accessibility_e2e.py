"""What an axe review measured, measured again in a browser: text contrast (WCAG AA, 4.5:1)
against the background it is really drawn on, tap targets' sizes, the accessible names a screen
reader reads, and the cursor put in the field a refused form asks to mend."""
import re

from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.links import tracking_url

from ..test_late_list import entered_hours_ago
from .conftest import login
from .test_phone_layouts import open_page

# The text's colour and the first opaque background behind it (rgba text blended over it).
COLOURS = """el => {
  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
  let bg = null;
  for (let n = el; n; n = n.parentElement) {
    const c = rgba(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c.slice(0, 3); break; }
  }
  return {fg: rgba(getComputedStyle(el).color), bg: bg || [255, 255, 255]};
}"""


def luminance(rgb) -> float:
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(locator) -> float:
    c = locator.evaluate(COLOURS)
    fg, bg = c["fg"], c["bg"]
    if len(fg) == 4:  # a translucent text colour: what it looks like over its background
        a = fg[3]
        fg = [a * f + (1 - a) * b for f, b in zip(fg[:3], bg)]
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def box(locator) -> dict:
    b = locator.bounding_box()
    assert b is not None, "not shown"
    return b


# --- 6, 9. the tracking page ----------------------------------------------------------------

def test_the_sms_switch_and_the_progress_read_on_a_phone(live_server, phone_page, make_ticket,
                                                         users):
    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as ticket_service
    returned = make_ticket("diagnosis")
    ticket_service.fire_event(returned.id, "return_unrepaired", Actor.staff(users["technician"]),
                              {"reason": "The main board is damaged"})
    page = phone_page
    for lang in ("fa", "en"):
        page.goto(f"{tracking_url(returned)}?lang={lang}")
        switch = page.locator(".public-sms button[name=sms]")
        assert contrast(switch) >= 4.5, contrast(switch)
        assert box(switch)["height"] >= 44 - 0.5
        skipped = page.locator(".steps li.skipped").first
        assert skipped.evaluate("e => getComputedStyle(e).color") == "rgb(108, 117, 125)"
        assert contrast(skipped) >= 4.5
        assert contrast(page.locator(".steps li.done").first) >= 4.5
    # the words a screen reader hears, though they are not seen
    expect(page.locator(".steps li.done").first).to_contain_text("(done)")
    expect(page.locator(".steps li.skipped").first).to_contain_text("(skipped)")
    hidden = page.locator(".steps li.done .visually-hidden").first
    assert box(hidden)["width"] <= 1 and box(hidden)["height"] <= 1


# --- 4. the till ------------------------------------------------------------------------------

def test_a_till_over_reads_in_dark_yellow(live_server, page, users):
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/takings?lang=en")
    page.fill("#till-counted", "50,000")  # nothing was taken: all of it is over
    page.locator("#till-count button").click()
    over = page.locator("[data-till-counts] tbody tr[data-count] td").nth(1)
    expect(over).to_contain_text("over by")
    assert contrast(over) >= 4.5, contrast(over)


# --- 7. the reception desk --------------------------------------------------------------------

def test_an_overdue_row_reads_and_its_button_is_named(live_server, page, make_ticket):
    forgotten = make_ticket("intake")
    entered_hours_ago(forgotten, 3)
    number = forgotten.number
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk?lang=en")
    row = page.locator(f'li[data-ticket="{forgotten.id}"][data-overdue]')
    link = row.locator("a").first
    assert contrast(link) >= 4.5, contrast(link)
    button = page.get_by_role("button", name=f"Send to repair {number}")
    expect(button).to_have_count(1)
    assert contrast(button) >= 4.5, contrast(button)


# --- 8. the kiosk -----------------------------------------------------------------------------

def test_the_kiosks_language_links_are_finger_sized(live_server, page, users):
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/kiosk?lang=fa")
    links = page.locator(".kiosk-langs a")
    assert links.count() == 2
    for i in range(2):
        b = box(links.nth(i))
        assert b["width"] >= 44 - 0.5 and b["height"] >= 44 - 0.5, b
    expect(page.locator('.kiosk-langs a[aria-current="page"]')).to_have_attribute("lang", "fa")


# --- 11. the estimate editor ------------------------------------------------------------------

def test_the_remove_line_button_is_a_target_on_a_desk_and_on_a_phone(live_server, page,
                                                                    make_ticket):
    ticket = make_ticket("diagnosis")
    login(page, live_server.url, "technician1")
    for width, least in ((1280, (44, 32)), (360, (44, 44))):
        open_page(page, f"{live_server.url}/tickets/{ticket.id}?lang=en", width)
        button = page.locator("#event-quote [data-remove-line]").first
        b = box(button)
        assert b["width"] >= least[0] - 0.5 and b["height"] >= least[1] - 0.5, (width, b)


# --- 1, 3. the cursor in the field to mend ----------------------------------------------------

def test_an_estimate_sent_empty_puts_the_cursor_in_the_first_description(live_server, page,
                                                                         make_ticket):
    ticket = make_ticket("diagnosis")
    login(page, live_server.url, "technician1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}?lang=en")
    page.locator("#event-quote button[data-fire=quote]").click()
    page.wait_for_load_state()
    first = page.locator("#event-quote input[name=line_description]").first
    expect(first).to_be_focused()
    expect(first).to_have_attribute("aria-invalid", "true")
    expect(first).to_have_accessible_description(re.compile(r"\S"))


def test_an_empty_survey_puts_the_cursor_on_the_satisfaction_scale(live_server, phone_page,
                                                                   make_ticket):
    delivered = make_ticket("delivered")
    db.session.expire_all()
    page = phone_page
    page.goto(f"{live_server.url}/s/{delivered.public_token}?lang=en")
    page.locator("button[data-send-survey]").click()
    page.wait_for_load_state()
    expect(page.locator("#csat-1")).to_be_focused()
    expect(page.locator("#csat-1")).to_have_accessible_description(
        re.compile("Choose how satisfied you are"))
