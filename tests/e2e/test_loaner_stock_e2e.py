"""The shop's own loaner phones in a real browser (Persian): the manager adds one on the loaner
phones page, the desk lends it from the ticket page's list of free ones, takes it back damaged
(the form asks how it came back), and the list shows it damaged until the manager marks it
fine."""
from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.models import Loaner
from servicedesk.services import loaners

from .conftest import login


def test_add_lend_take_back_damaged_and_mark_fine(live_server, page, users, make_ticket):
    ticket = make_ticket("repair")
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/desk/loaners")
    page.click("[data-add-phone] summary")
    page.fill("#stock-add-label", "الف۱")
    page.fill("#stock-add-model", "سامسونگ A10")
    page.click("[data-add-phone] [data-save-phone]")
    row = page.locator("[data-stock] tr[data-state=free]")
    expect(row).to_contain_text("سامسونگ A10")
    expect(row).to_contain_text("آزاد")
    phone = db.session.query(Loaner).one()

    # lent from the ticket page: the free phone is offered
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    page.click("[data-lend-form] summary")
    page.select_option("#loaner-id", str(phone.id))
    page.click("[data-lend]")
    expect(page.locator("[data-loaner-description]")).to_contain_text("الف۱ (سامسونگ A10)")

    # taken back: unsaid, the form asks; damaged with its note, recorded
    page.click("[data-take-back]")
    expect(page.locator("#loaner-back-condition-error")).to_be_visible()
    page.check("#loaner-back-damaged")
    page.fill("#loaner-back-note", "صفحه ترک خورده")
    page.click("[data-take-back]")
    expect(page.locator('[data-timeline] li[data-event="return_loaner"]')).to_contain_text(
        "آسیب‌دیده")
    db.session.expire_all()
    assert loaners.out(ticket.id) is None

    page.goto(f"{live_server.url}/desk/loaners")
    row = page.locator(f"[data-stock] tr[data-phone='{phone.id}']")
    expect(row).to_have_attribute("data-state", "damaged")
    expect(row).to_contain_text("صفحه ترک خورده")
    row.locator("[data-mark-fine]").click()
    expect(page.locator(f"[data-stock] tr[data-phone='{phone.id}']")).to_have_attribute(
        "data-state", "free")
