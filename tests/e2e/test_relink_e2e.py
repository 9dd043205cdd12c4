"""The customer's link replaced from the ticket page, in a real browser (Persian): the button
only opens the confirmation, which says what breaks; confirmed, the old link says it was
replaced (410), the new one opens the repair, and the page offers the receipt again."""
import re

from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.models import Ticket

from .conftest import login


def test_the_desk_confirms_then_the_old_link_is_dead_and_the_receipt_offered(
        live_server, page, phone_page, users, make_ticket):
    ticket = make_ticket("estimate")
    old = ticket.public_token
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    confirm = page.locator("[data-relink-confirm]")
    expect(confirm).to_be_hidden()
    page.click("[data-relink] summary")  # the first tap only asks
    expect(page.locator("[data-relink]")).to_contain_text("کد QR رسید چاپ‌شده")
    expect(page.locator("#relink-sms")).to_be_checked()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).public_token == old
    confirm.click()
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}\?relinked=1"))
    expect(page.locator(".alert-success")).to_contain_text("لینک مشتری عوض شد")
    expect(page.locator('[data-reprint="receipt"]')).to_be_visible()
    expect(page.locator('[data-timeline] li[data-event="replace_link"]')).to_contain_text(
        "برای مشتری پیامک شد")
    db.session.expire_all()
    new = db.session.get(Ticket, ticket.id).public_token
    assert new != old

    # the customer's phone: the old link says so and nothing more; the new one works
    resp = phone_page.goto(f"{live_server.url}/t/{old}")
    assert resp.status == 410
    expect(phone_page.locator("[data-link-replaced]")).to_contain_text("این لینک عوض شده است")
    expect(phone_page.locator("body")).not_to_contain_text("Galaxy")
    resp = phone_page.goto(f"{live_server.url}/t/{new}")
    assert resp.status == 200
    expect(phone_page.locator("body")).to_contain_text("Galaxy")
