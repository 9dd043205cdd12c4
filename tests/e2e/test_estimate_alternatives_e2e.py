"""An estimate with alternatives in real browsers (Persian, right to left): the technician
writes the common line and two alternatives (an original display and a copy one) in the
estimate form; the customer opens the SMS link on a phone, sees the two side by side with
their totals, and chooses the copy one; the final bill starts from the common line and the
chosen one's."""
import re

from playwright.sync_api import expect

from servicedesk import lifecycle

from .conftest import login
from .test_workbench_e2e import no_sideways_scroll, queued, reload


def test_the_customer_chooses_between_an_original_and_a_copy_display_on_a_phone(
        live_server, page, phone_page, users):
    ticket = queued(users)
    base = live_server.url

    # --- the technician writes the estimate with its alternatives -------------------------
    login(page, base, "technician1")
    page.goto(f"{base}/tickets/{ticket.id}")
    form = page.locator('form[data-event-form="quote"]')
    common = form.locator("tr[data-line]")
    common.nth(0).locator("select[name=line_kind]").select_option("labour")
    common.nth(0).locator("input[name=line_description]").fill("اجرت تعویض")
    common.nth(0).locator("input[name=line_unit_price]").fill("۵۰۰۰۰۰")
    # the alternatives follow the form, their fields in it (form="event-quote")
    alternatives = page.locator("details[data-alternatives]")
    alternatives.locator("> summary").click()
    original = alternatives.locator('[data-alternative="1"]')
    original.locator("input[name=alt1_name]").fill("ال‌سی‌دی اصلی")
    original.locator("input[name=alt1_line_description]").first.fill("ال‌سی‌دی اورجینال")
    original.locator("input[name=alt1_line_unit_price]").first.fill("۴۵۰۰۰۰۰")
    copy = alternatives.locator('[data-alternative="2"]')
    copy.locator("input[name=alt2_name]").fill("ال‌سی‌دی کپی")
    copy.locator("input[name=alt2_line_description]").first.fill("ال‌سی‌دی های‌کپی")
    copy.locator("input[name=alt2_line_unit_price]").first.fill("2800000")
    # a second line of the copy one, added with the editor's button: a glass, free
    copy.locator("[data-add-line]").click()
    copy.locator("input[name=alt2_line_description]").nth(2).fill("گلس")
    copy.locator("input[name=alt2_line_unit_price]").nth(2).fill("0")
    expect(copy.locator("[data-lines-total]")).to_have_text(re.compile("۲٬۸۰۰٬۰۰۰"))
    alternatives.locator("button[data-fire-alternatives]").click()
    expect(page.locator(".state-badge[data-state=estimate]")).to_be_visible()
    expect(page.locator('[data-alternative-view="2"]')).to_contain_text("ال‌سی‌دی کپی")
    ticket = reload(ticket.id)
    assert [(a["name"], a["total"]) for a in lifecycle.estimate_alternatives(ticket)] == [
        ("ال‌سی‌دی اصلی", 50_000_000), ("ال‌سی‌دی کپی", 33_000_000)]

    # --- the customer sees them side by side on a phone and chooses the copy one ------------
    phone_page.goto(f"{base}/t/{ticket.public_token}")
    estimate = phone_page.locator("#estimate")
    cards = estimate.locator(".alternative")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator("[data-alternative-total]")).to_have_text(
        re.compile("۵٬۰۰۰٬۰۰۰"))
    expect(cards.nth(1).locator("[data-alternative-total]")).to_have_text(
        re.compile("۳٬۳۰۰٬۰۰۰"))
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert abs(first["y"] - second["y"]) < 1  # side by side, on one row
    assert first["x"] > second["x"]  # right to left: the first on the right
    assert no_sideways_scroll(phone_page)
    choose = cards.nth(1).locator("summary[data-choose]")
    approve = cards.nth(1).locator("button[data-approve]")
    expect(approve).to_be_hidden()
    box = choose.bounding_box()
    assert box["height"] >= 44  # a thumb-sized button
    choose.tap()
    expect(approve).to_be_visible()
    expect(approve).to_contain_text("۳٬۳۰۰٬۰۰۰")
    assert reload(ticket.id).state == "estimate"  # nothing sent yet
    approve.tap()
    expect(phone_page.locator('[data-decision="approve"]')).to_contain_text("ال‌سی‌دی کپی")
    expect(phone_page.locator(".alert-success")).to_be_visible()
    ticket = reload(ticket.id)
    assert ticket.state == "repair" and ticket.estimate_total == 33_000_000
    assert ticket.events[-1].data["alternative"] == 2

    # --- the final bill starts from the common line and the chosen one's ------------------
    page.goto(f"{base}/tickets/{ticket.id}")
    expect(page.locator("[data-chosen-alternative]")).to_contain_text("ال‌سی‌دی کپی")
    finish = page.locator('form[data-event-form="finish"]')
    descriptions = finish.locator("input[name=line_description]")
    assert [descriptions.nth(i).input_value() for i in range(3)] == [
        "اجرت تعویض", "ال‌سی‌دی های‌کپی", "گلس"]
    expect(finish.locator("[data-lines-total]")).to_have_text(re.compile("۳٬۳۰۰٬۰۰۰"))


def test_the_technician_adds_a_fourth_alternative_and_removes_an_empty_one(live_server, page,
                                                                           users):
    """Three slots come with the page (all it offers without JavaScript); "Add an alternative"
    adds one up to four, and an empty one can be removed: the ones after it move up a place."""
    ticket = queued(users)
    base = live_server.url
    login(page, base, "technician1")
    page.goto(f"{base}/tickets/{ticket.id}")
    alternatives = page.locator("details[data-alternatives]")
    alternatives.locator("> summary").click()
    slots = alternatives.locator("[data-alternative-slots] > fieldset[data-alternative]")
    add = alternatives.locator("button[data-add-alternative]")
    expect(slots).to_have_count(3)
    expect(add).to_be_visible()
    # an empty slot can go while two stay: the third goes, and comes back with the button
    expect(slots.nth(2).locator("[data-remove-alternative]")).to_be_visible()
    slots.nth(2).locator("[data-remove-alternative]").click()
    expect(slots).to_have_count(2)
    expect(slots.nth(0).locator("[data-remove-alternative]")).to_be_hidden()  # two at least
    add.click()
    add.click()
    expect(slots).to_have_count(4)
    expect(add).to_be_hidden()  # at most four
    fourth = slots.nth(3)
    expect(fourth.locator("input[name=alt4_name]")).to_be_focused()
    expect(fourth.locator("label[for=quote-alt4-name]")).to_contain_text("۴")
    # a slot with something typed in it is not removed; an empty one is, and the one after it
    # takes its place and number
    fourth.locator("input[name=alt4_name]").fill("باتری")
    expect(fourth.locator("[data-remove-alternative]")).to_be_hidden()
    slots.nth(2).locator("[data-remove-alternative]").click()
    expect(slots).to_have_count(3)
    third = slots.nth(2)
    expect(third.locator("input[name=alt3_name]")).to_have_value("باتری")
    expect(third.locator("label[for=quote-alt3-name]")).to_contain_text("۳")
    add.click()
    expect(slots).to_have_count(4)

    def fill(n, name, price, extra=None):
        slot = slots.nth(n - 1)
        slot.locator(f"input[name=alt{n}_name]").fill(name)
        slot.locator(f"input[name=alt{n}_line_description]").first.fill(name)
        slot.locator(f"input[name=alt{n}_line_unit_price]").first.fill(price)
        if extra:  # a line added with the slot's own editor (a slot added by the button too)
            slot.locator("[data-add-line]").click()
            slot.locator(f"input[name=alt{n}_line_description]").nth(2).fill(extra[0])
            slot.locator(f"input[name=alt{n}_line_unit_price]").nth(2).fill(extra[1])

    fill(1, "ال‌سی‌دی اصلی", "۴۵۰۰۰۰۰")
    fill(2, "ال‌سی‌دی کپی", "۲۸۰۰۰۰۰")
    fill(3, "باتری", "۹۰۰۰۰۰")
    fill(4, "ال‌سی‌دی کپی و باتری", "۳۶۰۰۰۰۰", ("گلس", "۱۰۰۰۰۰"))
    expect(slots.nth(3).locator("[data-lines-total]")).to_have_text(re.compile("۳٬۷۰۰٬۰۰۰"))
    alternatives.locator("button[data-fire-alternatives]").click()
    expect(page.locator('[data-alternative-view="4"]')).to_contain_text("ال‌سی‌دی کپی و باتری")
    ticket = reload(ticket.id)
    assert ticket.state == "estimate"
    assert [(a["id"], a["name"], a["total"]) for a in lifecycle.estimate_alternatives(ticket)] \
        == [(1, "ال‌سی‌دی اصلی", 45_000_000), (2, "ال‌سی‌دی کپی", 28_000_000),
            (3, "باتری", 9_000_000), (4, "ال‌سی‌دی کپی و باتری", 37_000_000)]
    # the revision form offers the four, and no fifth
    alternatives = page.locator("details[data-alternatives]")
    expect(alternatives.locator("[data-alternative-slots] > fieldset")).to_have_count(4)
    expect(alternatives.locator("button[data-add-alternative]")).to_be_hidden()
