"""A manager's week in a real browser (Persian, right to left): the customer who calls the
manager about an estimate, and the staff accounts the manager looks after (DESIGN section 1:
the manager's "users") without asking an administrator."""
import re

from playwright.sync_api import expect

from ..conftest import PASSWORD, add_user
from .conftest import login, new_context


def test_a_manager_reading_an_unanswered_estimate_is_told_who_records_the_answer(
        live_server, page, users, make_ticket):
    """By DESIGN's roles the customer's answer is theirs (the link) or reception's (by phone):
    the manager's page says so and leads to the desk, instead of 'nothing to do' alone."""
    ticket = make_ticket("estimate")
    base = live_server.url
    login(page, base, "manager1")
    page.goto(f"{base}/tickets/{ticket.id}")
    assert page.locator("html").get_attribute("dir") == "rtl"
    steps = page.locator("[data-next-by] li")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("تأیید برآورد هزینه")
    expect(steps.nth(0)).to_contain_text("کارمند پذیرش")
    expect(steps.nth(0)).to_contain_text("مشتری (با پیوند پیامک یا رسیدش)")
    expect(steps.nth(2)).to_contain_text("تعمیرکار")
    hint = page.locator("[data-answer-hint]")
    expect(hint).to_be_visible()
    expect(page.locator('form[data-event-form="approve"]')).to_have_count(0)
    hint.locator("a").click()
    page.wait_for_url(f"{base}/desk#estimate-{ticket.id}")
    expect(page.locator(f"#estimate-{ticket.id}")).to_be_visible()


def test_reception_answering_an_estimate_sees_no_hint_meant_for_others(
        live_server, page, users, make_ticket):
    ticket = make_ticket("estimate")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    expect(page.locator('form[data-event-form="approve"]')).to_have_count(1)
    expect(page.locator("[data-next-by]")).to_have_count(0)
    expect(page.locator("[data-answer-hint]")).to_have_count(0)


def test_the_manager_logs_a_stolen_tablet_out_from_the_users_page(
        live_server, browser, page, users):
    """The waiting room's tablet was stolen: the manager deactivates its kiosk account from
    the navbar's staff pages, and the tablet is sent to the login page at once."""
    base = live_server.url
    add_user("lobby", "kiosk", full_name="کیوسک سالن")
    tablet_context = new_context(browser, viewport={"width": 1024, "height": 768},
                                 locale="fa-IR")
    try:
        tablet = tablet_context.new_page()
        login(tablet, base, "lobby", PASSWORD)
        tablet.goto(f"{base}/kiosk")
        assert "/kiosk" in tablet.url

        login(page, base, "manager1")
        page.get_by_role("link", name="کارکنان، پیامک و خدمات").click()
        page.get_by_role("link", name="کاربران").click()
        expect(page.get_by_role("link", name="admin1")).to_have_count(0)  # the admin's own
        page.get_by_role("link", name="lobby").click()
        page.locator("summary", has_text="غیرفعال").click()
        page.get_by_role("button", name="lobby").click()
        expect(page.locator(".alert-success")).to_be_visible()

        tablet.goto(f"{base}/kiosk")
        assert "/login" in tablet.url
    finally:
        tablet_context.close()


def test_the_managers_workbench_shows_both_branches_and_who_holds_what(
        live_server, page, users, make_ticket):
    """The manager of branch A reads the workbench: branch B's bench is there too (the
    dashboard counts it), each technician's load is listed busiest first with those holding
    nothing, and the manager can narrow it to one branch, which the page's refresh keeps."""
    from servicedesk.extensions import db
    from servicedesk.lifecycle import Actor
    from servicedesk.models import Branch
    from servicedesk.services import tickets as ticket_service
    from servicedesk.services.people import create_user

    from ..conftest import INTAKE

    vanak = Branch(name="شعبهٔ ونک", code="B")
    db.session.add(vanak)
    db.session.commit()
    desk_b = create_user("neda", "reception", PASSWORD, branch=vanak)
    create_user("omid", "technician", PASSWORD, full_name="امید رستمی", branch=vanak)
    for _ in range(2):
        ticket = ticket_service.admit(INTAKE, Actor.staff(desk_b), branch=vanak)
        ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(desk_b),
                                  {"technician": "omid"})
    at_a = make_ticket("diagnosis")  # branch A's, with technician1
    add_user("idle", "technician", full_name="بیکار")
    base = live_server.url

    login(page, base, "manager1")
    page.goto(f"{base}/workbench/")
    expect(page.locator('[data-bucket="diagnosis"]')).to_have_attribute("data-count", "3")
    load = page.locator("[data-technician-load] tbody tr")
    expect(load).to_have_count(3)
    expect(load.nth(0)).to_have_attribute("data-load", "omid")
    expect(load.nth(0)).to_have_attribute("data-total", "2")
    expect(load.nth(0)).to_contain_text("امید رستمی")
    expect(load.nth(2)).to_have_attribute("data-load", "idle")  # nothing: give them work
    expect(page.locator("#bucket-diagnosis tr[data-ticket]")).to_have_count(3)

    page.locator("[data-branch-choice] select").select_option(label="شعبهٔ مرکزی")
    page.locator("[data-branch-choice] button").click()
    expect(page.locator('[data-bucket="diagnosis"]')).to_have_attribute("data-count", "1")
    expect(page.locator(f'#bucket-diagnosis tr[data-ticket="{at_a.id}"]')).to_have_count(1)
    expect(page.locator('[data-load="omid"]')).to_have_count(0)
    assert f"branch={at_a.branch_id}" in page.locator("#worklist").get_attribute("hx-get")


def test_the_manager_lists_one_branchs_uncollected_devices_oldest_first(
        live_server, page, users, make_ticket):
    """Devices nobody collected, at branch B: the list narrows to a branch and a technician,
    and in one state puts the longest waiting first, with when each got there."""
    from datetime import timedelta

    from servicedesk.extensions import db
    from servicedesk.lifecycle import Actor
    from servicedesk.models import Branch, TicketEvent
    from servicedesk.services import tickets as ticket_service
    from servicedesk.services.people import create_user

    from ..conftest import INTAKE, LINES

    vanak = Branch(name="شعبهٔ ونک", code="B")
    db.session.add(vanak)
    db.session.commit()
    desk_b = create_user("neda", "reception", PASSWORD, branch=vanak)
    tech_b = create_user("omid", "technician", PASSWORD, full_name="امید رستمی", branch=vanak)
    ready_b = []
    for days_ago in (1, 9):  # the later one became ready nine days ago
        ticket = ticket_service.admit(INTAKE, Actor.staff(desk_b), branch=vanak)
        ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(desk_b),
                                  {"technician": "omid"})
        ticket_service.fire_event(ticket.id, "quote", Actor.staff(tech_b), {"lines": LINES})
        ticket_service.fire_event(ticket.id, "approve", Actor.staff(desk_b),
                                  {"channel": "phone"})
        ticket_service.fire_event(ticket.id, "finish", Actor.staff(tech_b), {"lines": LINES})
        finished = db.session.query(TicketEvent).filter_by(ticket_id=ticket.id,
                                                           event="finish").one()
        finished.at = finished.at - timedelta(days=days_ago)
        db.session.commit()
        ready_b.append(ticket)
    at_a = make_ticket("ready")
    base = live_server.url

    login(page, base, "manager1")
    page.goto(f"{base}/tickets/")
    page.locator("#list-state").select_option("ready")
    page.locator("#list-branch").select_option(label="شعبهٔ ونک")
    page.get_by_role("button", name="فیلتر").click()
    rows = page.locator("main tbody tr[data-ticket]")
    expect(rows).to_have_count(2)
    # the one waiting nine days first, then the one from yesterday; A's not at all
    expect(rows.nth(0)).to_have_attribute("data-ticket", str(ready_b[1].id))
    expect(rows.nth(1)).to_have_attribute("data-ticket", str(ready_b[0].id))
    expect(page.locator(f'tr[data-ticket="{at_a.id}"]')).to_have_count(0)
    expect(rows.nth(0).locator("[data-since]")).to_contain_text("۱۴۰")  # a Jalali date
    expect(rows.nth(0)).to_contain_text("امید رستمی")

    page.locator("#list-branch").select_option("")
    page.locator("#list-technician").select_option(label="امید رستمی")
    page.get_by_role("button", name="فیلتر").click()
    expect(rows).to_have_count(2)
    page.locator("#list-technician").select_option("")
    page.get_by_role("button", name="فیلتر").click()
    expect(rows).to_have_count(3)


def test_the_dashboards_late_count_leaves_out_devices_ready_on_time(
        live_server, page, users, make_ticket):
    """A device finished and waiting for its owner past the promised date is no late repair:
    the dashboard's figure agrees with the workbench's 'past the promised date'."""
    from datetime import timedelta

    from servicedesk.extensions import db
    from servicedesk.visits import shop_day

    ready, repair = make_ticket("ready"), make_ticket("repair")
    for ticket in (ready, repair):
        ticket.promised_date = shop_day() - timedelta(days=2)
    db.session.commit()
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/reports/")
    expect(page.locator('[data-count="overdue"]')).to_have_text("۱")
    page.goto(f"{live_server.url}/workbench/")
    expect(page.locator('[data-bucket="late"]')).to_have_attribute("data-count", "1")


def test_the_manager_changes_their_own_password_from_the_navbar(live_server, browser, page,
                                                                 users):
    """The password typed in front of a customer: the manager's name in the navbar opens the
    page; the shop's other computer, still logged in as the manager, is logged out."""
    base = live_server.url
    other = new_context(browser, viewport={"width": 1280, "height": 900}, locale="fa-IR")
    try:
        back_office = other.new_page()
        login(back_office, base, "manager1")
        login(page, base, "manager1")
        page.locator("[data-own-account]").click()
        page.wait_for_url(f"{base}/account/password")
        page.get_by_label("گذرواژهٔ فعلی").fill(PASSWORD)
        page.get_by_label("گذرواژه جدید", exact=True).fill("one nobody saw 2026")
        page.get_by_label("تکرار گذرواژهٔ جدید").fill("one nobody saw 2026")
        page.get_by_role("button", name="تغییر گذرواژهٔ من").click()
        expect(page.locator(".alert-success")).to_contain_text("گذرواژهٔ شما تغییر کرد")
        page.goto(f"{base}/reports/")
        assert "/reports/" in page.url
        back_office.goto(f"{base}/reports/")
        assert "/login" in back_office.url
    finally:
        other.close()


def test_the_dashboards_late_figure_opens_the_late_tickets(live_server, page, users,
                                                           make_ticket):
    from datetime import timedelta

    from servicedesk.extensions import db
    from servicedesk.visits import shop_day

    late = make_ticket("waiting_parts")
    late.promised_date = shop_day() - timedelta(days=1)
    db.session.commit()
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/reports/")
    page.locator('[data-kpi-link="overdue"]').click()
    page.wait_for_url(re.compile(r"/workbench/.*#bucket-late$"))
    expect(page.locator(f'#bucket-late tr[data-ticket="{late.id}"]')).to_be_visible()


def test_the_desk_offers_a_manager_no_send_to_repair_they_cannot_do(live_server, page, users,
                                                                     make_ticket):
    """'Send to repair' on the desk opened, for a manager, a ticket page without that form."""
    ticket = make_ticket("intake")
    login(page, live_server.url, "manager1")
    page.goto(f"{live_server.url}/desk")
    expect(page.locator(f'a[href="/tickets/{ticket.id}"]').first).to_be_visible()
    expect(page.locator("[data-send-to-repair]")).to_have_count(0)
    page.context.clear_cookies()
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk")
    expect(page.locator(f'[data-send-to-repair="{ticket.id}"] button')).to_be_visible()
