"""A loaner phone at the desk, in a real browser (Persian): lent from the ticket page, the
hand-back refused while it is out (the box named and the cursor on it), ticked returned, handed
back, and the delivery receipt says the loaner came back."""
import re

from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.models import Ticket
from servicedesk.services import loaners

from .conftest import login


def test_lend_at_the_desk_then_the_hand_back_waits_for_the_loaner(live_server, page, users,
                                                                   make_ticket):
    ticket = make_ticket("ready")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    page.click("[data-lend-form] summary")
    page.fill("#loaner-description", "سامسونگ A10، سفید")
    page.fill("#loaner-serial", "490154203237518")
    page.fill("#loaner-condition", "خط روی قاب")
    page.click("[data-lend]")
    expect(page.locator("[data-loaner-badge]")).to_have_text("گوشی امانی دست مشتری")
    expect(page.locator("[data-loaner-description]")).to_contain_text("سامسونگ A10، سفید")
    expect(page.locator('[data-timeline] li[data-event="lend_loaner"]')).to_contain_text(
        "گوشی امانی داده شد")

    # the desk's navigation lists it
    page.click("nav >> text=گوشی‌های امانی")
    expect(page.locator(f'[data-loaners] tr[data-ticket="{ticket.id}"]')).to_contain_text(
        "سامسونگ A10، سفید")

    # to the delivery desk from the ticket; handing back without the loaner is refused
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    page.click('[data-event-link="deliver"]')
    expect(page.locator("[data-loaner-back]")).to_contain_text("سامسونگ A10، سفید")
    page.click("label[for=paid-cash]")
    page.click("form button.btn-success")
    error = page.locator("#loaner_returned-error")
    expect(error).to_contain_text("هنوز دست مشتری است")
    box = page.locator(f"#loaner_returned-{ticket.id}")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_be_focused()  # the cursor goes to the first refused field (forms.js)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "ready"

    # ticked: handed back, and the receipt says the loaner came back
    box.check()
    page.click("form button.btn-success")
    page.wait_for_url(re.compile(rf"/tickets/{ticket.id}/delivery-receipt"))
    expect(page.locator("[data-loaner-returned]")).to_contain_text("سامسونگ A10، سفید")
    expect(page.locator("[data-loaner-returned]")).to_contain_text("پس داده‌شده در ۱۴")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "delivered"
    assert loaners.out(ticket.id) is None
