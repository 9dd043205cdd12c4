"""The repair bench and the customer's phone in real browsers (Persian, right to left): a
technician claims a device from the repair queue, writes the estimate in the editor and sends
it; the customer opens the SMS link on a phone-sized screen, reads the estimate and approves it;
the technician finishes with the final lines prefilled; after hand-back the customer answers the
survey, and a second answer from another tab is refused. The worklist refreshes by itself."""
import re

from playwright.sync_api import expect
from sqlalchemy import func, select

from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.links import survey_url, tracking_url
from servicedesk.models import Notification, SurveyResponse, Ticket
from servicedesk.services import tickets as ticket_service

from ..conftest import INTAKE, jalali_in
from .conftest import login


def reload(ticket_id: int) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket_id)


def queued(users) -> Ticket:
    """A device the reception sent to the repair unit with no technician named."""
    ticket = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {})
    return reload(ticket.id)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_claim_quote_approve_on_a_phone_finish_and_answer_the_survey_once(
        live_server, page, phone_page, users):
    ticket = queued(users)
    base = live_server.url

    # --- the technician claims it from the repair queue --------------------------------
    login(page, base, "technician1")
    page.goto(f"{base}/workbench/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    row = page.locator(f'#bucket-queue tr[data-ticket="{ticket.id}"]')
    expect(row).to_be_visible()
    row.locator("button[data-claim]").click()
    page.wait_for_url(f"{base}/tickets/{ticket.id}")
    expect(page.locator("[data-technician=technician1]")).to_be_visible()

    # --- writes the estimate: two lines, one added with the button, Persian digits ---------
    # (prices in toman, the unit the shop shows money in)
    form = page.locator('form[data-event-form="quote"]')
    rows = form.locator("tr[data-line]")
    expect(rows).to_have_count(3)
    rows.nth(0).locator("input[name=line_description]").fill("LCD")
    rows.nth(0).locator("input[name=line_qty]").fill("۲")
    rows.nth(0).locator("input[name=line_unit_price]").fill("۶۰۰۰۰۰")
    rows.nth(1).locator("select[name=line_kind]").select_option("labour")
    rows.nth(1).locator("input[name=line_description]").fill("تعویض")
    rows.nth(1).locator("input[name=line_unit_price]").fill("200000")
    form.locator("[data-add-line]").click()
    expect(rows).to_have_count(4)
    rows.nth(3).locator("input[name=line_description]").fill("گلس")
    rows.nth(3).locator("input[name=line_unit_price]").fill("50000")
    rows.nth(2).locator("[data-remove-line]").click()  # an empty row, removed
    expect(rows).to_have_count(3)
    # the live total, in toman and Persian digits: 2 x 600,000 + 200,000 + 50,000
    expect(form.locator("[data-lines-total]")).to_have_text(re.compile("۱٬۴۵۰٬۰۰۰"))
    form.locator("input[name=promised_date]").fill(jalali_in(10)[0])
    form.locator("button[data-fire=quote]").click()
    expect(page.locator(".state-badge[data-state=estimate]")).to_be_visible()
    expect(page.locator('[data-sms-event="quote"]')).to_be_visible()
    ticket = reload(ticket.id)
    assert ticket.estimate_total == 14_500_000 and ticket.estimate_version == 1

    # --- the customer opens the SMS link on a phone and approves ---------------------------
    sms = db.session.scalars(select(Notification).where(Notification.ticket_id == ticket.id,
                                                        Notification.event == "quote")).one()
    link = tracking_url(ticket)
    assert link in sms.body and link.startswith(base)
    phone_page.goto(link)
    assert phone_page.locator("html").get_attribute("dir") == "rtl"
    estimate = phone_page.locator("#estimate")
    expect(estimate).to_be_visible()
    expect(estimate).to_contain_text("LCD")
    expect(estimate).to_contain_text("گلس")
    expect(estimate.locator("[data-estimate-total]")).to_have_text(re.compile("۱٬۴۵۰٬۰۰۰"))
    assert no_sideways_scroll(phone_page)
    content = phone_page.content()
    assert "09121234567" not in content and "+989121234567" not in content
    assert "۰۹۱۲۱۲۳۴۵۶۷" not in content
    # Approving takes two taps: the first only opens the answer and names the price.
    opener = phone_page.locator("summary[data-approve-open]")
    approve = phone_page.locator("button[data-approve]")
    expect(approve).to_be_hidden()
    box = opener.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 300  # a thumb-sized button
    opener.tap()
    expect(approve).to_be_visible()
    expect(approve).to_contain_text("۱٬۴۵۰٬۰۰۰")
    assert reload(ticket.id).state == "estimate"  # nothing sent yet
    # Opening the decline closes the approval: one answer is open at a time.
    phone_page.locator("details.decline summary").tap()
    expect(phone_page.locator("button[data-decline]")).to_be_visible()
    expect(approve).to_be_hidden()
    opener.tap()
    box = approve.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 300
    approve.tap()
    expect(phone_page.locator('[data-decision="approve"]')).to_be_visible()
    expect(phone_page.locator(".alert-success")).to_be_visible()
    ticket = reload(ticket.id)
    assert ticket.state == "repair"
    assert (ticket.events[-1].actor_kind, ticket.events[-1].data["channel"],
            ticket.events[-1].data["estimate_version"]) == ("customer", "link", 1)

    # --- the technician finishes, the final lines prefilled from the estimate -------------
    page.goto(f"{base}/tickets/{ticket.id}")
    finish = page.locator('form[data-event-form="finish"]')
    descriptions = finish.locator("input[name=line_description]")
    assert [descriptions.nth(i).input_value() for i in range(3)] == ["LCD", "تعویض", "گلس"]
    expect(finish.locator("[data-lines-total]")).to_have_text(re.compile("۱٬۴۵۰٬۰۰۰"))
    finish.locator("tr[data-line]").nth(2).locator("[data-remove-line]").click()  # no glass
    finish.locator("textarea[name=work_done]").fill("تعویض ال‌سی‌دی")
    finish.locator("button[data-fire=finish]").click()
    expect(page.locator(".state-badge[data-state=ready]")).to_be_visible()
    ticket = reload(ticket.id)
    assert ticket.final_total == 14_000_000 == ticket.amount_due

    # --- hand-back at reception, then the survey on the phone -------------------------------
    ticket_service.fire_event(ticket.id, "deliver", Actor.staff(users["reception"]),
                              {"amount_paid": ticket.amount_due})
    link = survey_url(reload(ticket.id))
    other_tab = phone_page.context.new_page()  # the same link, opened twice
    other_tab.goto(link)
    phone_page.goto(link)
    assert no_sideways_scroll(phone_page)
    phone_page.locator("label[for=csat-5]").tap()
    phone_page.locator("label[for=nps-9]").tap()
    phone_page.fill("textarea[name=comment]", "خیلی خوب بود")
    phone_page.locator("button[data-send-survey]").tap()
    expect(phone_page.locator('[data-survey="answered"]')).to_be_visible()
    assert reload(ticket.id).state == "closed"

    other_tab.bring_to_front()
    other_tab.locator("label[for=csat-1]").tap()
    expect(other_tab.locator("#csat-1")).to_be_checked()
    other_tab.locator("button[data-send-survey]").tap()
    expect(other_tab.locator("[data-refused]")).to_be_visible()
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
    response = db.session.scalars(select(SurveyResponse)).one()
    assert (response.csat, response.nps, response.comment) == (5, 9, "خیلی خوب بود")
    other_tab.close()


def test_the_worklist_refreshes_itself(live_server, page, users):
    login(page, live_server.url, "technician1")
    page.goto(f"{live_server.url}/workbench/")
    expect(page.locator('[data-bucket="queue"]')).to_have_attribute("data-count", "0")
    ticket = queued(users)  # reception sends a device while the page stays open
    row = page.locator(f'#bucket-queue tr[data-ticket="{ticket.id}"]')
    expect(row).to_be_visible(timeout=15_000)
    expect(page.locator('[data-bucket="queue"]')).to_have_attribute("data-count", "1")
    assert page.locator("nav.navbar").count() == 1  # the partial, not a page inside the page
