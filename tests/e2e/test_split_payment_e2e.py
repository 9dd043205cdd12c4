"""A payment split at the delivery desk in a real browser: "Split" shows an amount per method,
what is still to split is said as it is typed, the next empty amount takes the rest, and the
receipt prints each part. Without JavaScript the form still splits."""
from playwright.sync_api import expect

from .conftest import login, new_context


def test_the_desk_splits_a_payment_with_the_rest_computed_as_it_types(live_server, page,
                                                                      make_ticket):
    ticket = make_ticket("ready")  # 1,400,000 toman due
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}&lang=en")
    expect(page.locator("#part_cash")).to_be_hidden()
    page.click("label[for=paid-split]")
    expect(page.locator("#part_cash")).to_be_visible()
    expect(page.locator("#part_cash")).to_be_focused()
    page.keyboard.type("1,000,000")
    rest = page.locator("[data-split-rest]")
    expect(rest).to_have_text("Still to split: 400,000 toman")
    expect(page.locator("#part_card")).to_have_attribute("placeholder", "400,000")
    page.click("#part_card")  # the next empty amount takes the rest
    expect(page.locator("#part_card")).to_have_value("400,000")
    expect(rest).to_have_text("The parts add up to the amount paid.")
    page.fill("#part_card", "500,000")
    expect(rest).to_have_text("100,000 toman more than the amount paid")
    page.fill("#part_card", "400,000")
    page.click(".delivery-ticket form button.btn-success")
    page.wait_for_url(f"**/tickets/{ticket.id}/delivery-receipt**")
    # the receipt is in the customer's language
    expect(page.locator("[data-paid-part=cash]")).to_have_text("۱٬۰۰۰٬۰۰۰ تومان")
    expect(page.locator("[data-paid-part=card]")).to_have_text("۴۰۰٬۰۰۰ تومان")


def test_without_javascript_the_desk_still_splits(live_server, browser, make_ticket):
    ticket = make_ticket("ready")
    context = new_context(browser, java_script_enabled=False, locale="fa-IR")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        login(page, live_server.url, "reception1")
        page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}&lang=en")
        page.click("label[for=paid-split]")
        expect(page.locator("#part_cash")).to_be_visible()  # CSS shows them, no script
        page.fill("#part_cash", "1,000,000")
        page.fill("#part_transfer", "400,000")
        page.click(".delivery-ticket form button.btn-success")
        page.wait_for_url(f"**/tickets/{ticket.id}/delivery-receipt**")
        expect(page.locator("[data-paid-part=transfer]")).to_have_text("۴۰۰٬۰۰۰ تومان")
    finally:
        context.close()
