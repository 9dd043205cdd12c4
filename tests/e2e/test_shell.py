"""The staff shell in a real browser: log in, see the home page and a ticket, in Persian."""
from servicedesk.i18n import localize_digits

from .conftest import login


def test_login_and_ticket_page_in_persian(live_server, page, users, make_ticket):
    ticket = make_ticket("diagnosis")
    login(page, live_server.url, "technician1")
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "fa"
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    assert localize_digits(ticket.number, "fa") in page.inner_text("h1")
    # the technician may quote now: the estimate form is offered
    assert page.locator("form input[name=event][value=quote]").count() == 1
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "Vazirmatn" in font


def test_wrong_password_stays_on_login(live_server, page, users):
    page.goto(f"{live_server.url}/login")
    page.fill("input[name=username]", "reception1")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "/login" in page.url
    assert page.locator(".alert-danger").count() == 1
