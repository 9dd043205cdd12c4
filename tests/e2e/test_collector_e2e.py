"""Who collects a device, in a real browser at the delivery desk of a shop that requires the
collector confirmed: the pickup code read off the intake receipt (a wrong one refused first,
nothing handed back), a code texted to the owner at the desk's request, and a manager's
confirmation when the codes are locked."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from servicedesk.extensions import db
from servicedesk.i18n import to_ascii_digits
from servicedesk.models import Notification, Ticket
from servicedesk.services import admin as admin_service

from .conftest import login, new_context


@pytest.fixture
def required(app, users):
    with app.test_request_context():
        admin_service.update_settings(users["admin"], {
            **admin_service.current_settings(), "handback_check": "required"})


def state_of(ticket_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id).state


def test_the_desk_hands_back_with_the_code_from_the_receipt(live_server, page, make_ticket,
                                                            required):
    ticket = make_ticket("ready")
    base = live_server.url
    login(page, base, "reception1")
    page.goto(f"{base}/tickets/{ticket.id}/receipt?lang=fa")
    printed = to_ascii_digits(page.locator(".slip-pickup-code").inner_text()).strip()
    assert printed == ticket.pickup_code

    page.goto(f"{base}/desk/delivery?q={ticket.number}&lang=en")
    code = page.locator("#pickup_code")
    expect(code).to_be_visible()
    page.click("label[for=paid-cash]")
    wrong = "000000" if printed != "000000" else "111111"
    code.fill(wrong)
    page.click(".delivery-ticket form button.btn-success")
    expect(page.locator("#pickup_code-error")).to_contain_text("The pickup code is wrong")
    expect(page.locator("#pickup_code")).to_have_value("")  # a code typed is not shown back
    expect(page.locator("[data-collector]")).to_contain_text(
        "Wrong codes left before they are locked: 4")
    assert state_of(ticket.id) == "ready"

    page.fill("#pickup_code", printed)
    page.click("label[for=paid-cash]")
    page.click(".delivery-ticket form button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
    assert state_of(ticket.id) == "delivered"
    page.goto(f"{base}/tickets/{ticket.id}?lang=en")
    expect(page.locator('[data-timeline] li[data-event="deliver"]')).to_contain_text(
        "the pickup code on the receipt")


def test_a_code_texted_to_the_owner_or_a_manager_confirms_the_collector(
        live_server, page, browser, make_ticket, required):
    ticket = make_ticket("ready")
    base = live_server.url
    login(page, base, "reception1")
    page.goto(f"{base}/desk/delivery?q={ticket.number}&lang=en")
    expect(page.locator("#sms_code")).to_have_count(0)
    page.click("[data-text-code]")
    expect(page.locator(".alert-success")).to_contain_text("A code was texted to the owner")
    body = db.session.scalar(select(Notification.body).where(
        Notification.ticket_id == ticket.id, Notification.event == "collector_code_sent"))
    texted = to_ascii_digits(re.search(r"[0-9۰-۹]{6}", body).group())
    page.fill("#sms_code", texted)
    page.click("label[for=paid-cash]")
    page.click(".delivery-ticket form button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
    assert state_of(ticket.id) == "delivered"

    # another one, whose codes are locked by wrong tries: a manager confirms who collects it
    other = make_ticket("ready")
    wrong = "000000" if other.pickup_code != "000000" else "111111"
    page.goto(f"{base}/desk/delivery?q={other.number}&lang=en")
    for _ in range(5):
        page.fill("#pickup_code", wrong)
        page.click(".delivery-ticket form button.btn-success")
        expect(page.locator("#pickup_code-error, [data-locked]").first).to_be_visible()
    expect(page.locator("[data-collector][data-locked]")).to_contain_text("they are locked")
    manager = new_context(browser, locale="en-US").new_page()
    try:
        login(manager, base, "manager1")
        manager.goto(f"{base}/desk/delivery?q={other.number}&lang=en")
        manager.fill("#override_reason", "National ID card seen; receipt lost")
        manager.click("[data-collector-override] button")
        expect(manager.locator(".alert-success")).to_contain_text("You confirmed who collects it")
    finally:
        manager.context.close()
    page.goto(f"{base}/desk/delivery?q={other.number}&lang=en")
    expect(page.locator("[data-collector-confirmed]")).to_contain_text(
        "manager1 confirmed who collects it")
    page.click("label[for=paid-cash]")
    page.click(".delivery-ticket form button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{other.id}/delivery-receipt"))
    assert state_of(other.id) == "delivered"
