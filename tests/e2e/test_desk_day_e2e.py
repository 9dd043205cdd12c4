"""A busy day at the desk in a real browser, as the people who use it all day find it: the
cursor where the next typing goes, the right button for the right number, columns that read."""
import time

from playwright.sync_api import expect

from .conftest import login, new_context


def assert_printed_once(page, seconds: float = 5) -> None:
    """The slip asked the browser to print it, once (conftest counts window.print()); polled
    from here: the pages' CSP refuses the string Playwright's wait_for_function evaluates."""
    deadline = time.monotonic() + seconds
    while page.evaluate("() => window.__prints || 0") == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.__prints || 0") == 1, page.url


def test_a_hand_back_refused_for_its_payment_method_puts_the_cursor_on_the_methods(
        live_server, page, make_ticket):
    """Enter on the amount offered, the method forgotten: the desk is told to say how it was
    paid, and the cursor waits on the payment buttons (the arrow keys choose one), not back in
    the amount, where the next digits would change what the customer paid."""
    ticket = make_ticket("ready")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}")
    expect(page.locator("#amount_paid")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#payment_method-error")).to_be_visible()
    expect(page.locator("#paid-cash")).to_be_focused()
    page.keyboard.press("ArrowLeft")  # the next method along (right to left)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tickets/{ticket.id}/delivery-receipt**")
    expect(page.locator("[data-paid-by]")).not_to_be_empty()


def test_a_problem_written_in_the_other_script_stays_beside_its_label(live_server, page,
                                                                     make_ticket):
    """A problem typed in English on a Persian ticket page (and a Persian one on an English
    page) is read beside "Problem", like every other fact, not on a line of its own under it,
    where the technician's eye does not look for it."""
    from ..conftest import INTAKE
    english = make_ticket("diagnosis")  # "Cracked screen"
    persian = make_ticket("diagnosis", intake={**INTAKE, "problem": "صفحه شکسته است"})
    login(page, live_server.url, "reception1")
    for ticket, lang in ((english, "fa"), (persian, "en")):
        page.goto(f"{live_server.url}/tickets/{ticket.id}?lang={lang}")
        label = page.locator(".ticket-facts dt").nth(2)
        value = page.locator(".ticket-facts dd").nth(2)
        assert value.inner_text().strip() == ticket.problem
        assert abs(label.bounding_box()["y"] - value.bounding_box()["y"]) < 4, lang


def test_an_intake_from_a_number_with_its_phone_puts_the_cursor_past_the_phone(
        live_server, page, users, make_ticket):
    """The customer left their mobile at the kiosk: the intake opens with it filled in, and the
    cursor is not left at its end (the brand typed next would join the number). A returning
    customer's name fills in and the cursor waits at the brand; a new customer's, at the name."""
    from servicedesk.services import reception
    from servicedesk.services.tickets import default_branch
    make_ticket("delivered")  # Narges Rezaei, 0912 123 4567
    known = reception.issue_number(default_branch(), "repair", phone="09121234567")
    new = reception.issue_number(default_branch(), "repair", phone="09351112233")
    login(page, live_server.url, "reception1")

    page.goto(f"{live_server.url}/desk/intake?visit_id={known.id}")
    expect(page.locator("#customer_name")).to_have_value("Narges Rezaei")
    expect(page.locator("#device_brand")).to_be_focused()
    page.keyboard.type("Xiaomi")
    expect(page.locator("#device_brand")).to_have_value("Xiaomi")
    expect(page.locator("#customer_phone")).to_have_value("۰۹۱۲ ۱۲۳ ۴۵۶۷")

    page.goto(f"{live_server.url}/desk/intake?visit_id={new.id}")
    expect(page.locator("#customer-hint")).not_to_be_empty()  # "New customer."
    expect(page.locator("#customer_name")).to_be_focused()
    page.keyboard.type("کامران اکبری")
    expect(page.locator("#customer_name")).to_have_value("کامران اکبری")
    expect(page.locator("#customer_phone")).to_have_value("۰۹۳۵ ۱۱۱ ۲۲۳۳")


def test_a_mobile_with_a_digit_missing_is_said_when_the_cursor_leaves_it(live_server, page,
                                                                         users):
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk/intake")
    page.keyboard.type("۰۹۱۲۵۵۵۶۶۷")  # ten digits
    page.keyboard.press("Tab")
    expect(page.locator("#customer-hint [data-phone-problem]")).to_have_text(
        "این شماره تلفن معتبر نیست.")
    page.fill("#customer_phone", "۰۹۱۲۵۵۵۶۶۷۸")
    page.keyboard.press("Tab")
    expect(page.locator("#customer-hint")).to_have_text("مشتری جدید.")


def test_print_label_and_print_receipt_print_when_clicked(live_server, page, make_ticket):
    """"Print label" on a ticket, and "Label" on the receipt just printed at intake, print
    the slip as it opens (a click on its own Print again was needed), and Done goes back."""
    ticket = make_ticket("intake")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    for kind in ("label", "receipt"):
        page.click(f"[data-print={kind}]")
        page.wait_for_url(f"**/tickets/{ticket.id}/{kind}**")
        assert_printed_once(page)
        page.click(".slip-back")
        page.wait_for_url(f"**/tickets/{ticket.id}")
    page.goto(f"{live_server.url}/tickets/{ticket.id}/receipt?print=1&back=intake")
    assert_printed_once(page)
    page.click("[data-label-link]")
    page.wait_for_url(f"**/tickets/{ticket.id}/label**")
    assert_printed_once(page)
    page.click(".slip-back")
    page.wait_for_url("**/desk/intake")


TEXT_RIGHT = """cells => cells.map(cell => {
  const range = document.createRange(); range.selectNodeContents(cell);
  return Math.round(range.getBoundingClientRect().right); })"""


def test_amounts_in_a_column_line_up_by_their_last_digit_in_persian(live_server, page,
                                                                    make_ticket):
    """۱۲٬۰۰۰٬۰۰۰ and ۲٬۰۰۰٬۰۰۰ toman one under the other: the units under the units, as the
    English page has them, on the ticket's bill, the delivery desk and the till."""
    ticket = make_ticket("ready")  # a screen at 12,000,000 and its fitting at 2,000,000
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/tickets/{ticket.id}")
    for column in (4, 5):  # unit price, total
        rights = page.locator(".lines-view").first.locator(
            f"tbody td:nth-child({column})").evaluate_all(TEXT_RIGHT)
        assert len(rights) == 2 and rights[0] == rights[1], (column, rights)
    page.goto(f"{live_server.url}/desk/delivery?q={ticket.number}")
    rights = page.locator(".delivery-ticket tbody td:nth-child(3)").evaluate_all(TEXT_RIGHT)
    assert len(rights) == 2 and rights[0] == rights[1], rights
    page.fill("#amount_paid", "۱۳۰۰۰۰۰")  # toman: 13,000,000 rials, a discount
    page.click("label[for=paid-cash]")
    page.check("#differs_ok")
    page.click(".delivery-ticket form button.btn-success")
    page.wait_for_url("**/delivery-receipt**")
    make_ticket("delivered")  # 14,000,000 rials, paid by no recorded method
    page.goto(f"{live_server.url}/desk/takings")
    rights = page.locator("table:has(th.num) tbody tr td:last-child").evaluate_all(TEXT_RIGHT)
    assert len(rights) == 2 and rights[0] == rights[1], rights


def test_the_customers_phone_number_is_not_broken_across_two_lines(live_server, page, users):
    """Whatever the length of the names before it (the customer's, the relative's who brought
    the device), the mobile number on the ticket is read whole: not 0912 at the end of one
    line and 555 6677 on the next."""
    from servicedesk.lifecycle import Actor
    from servicedesk.services import reception
    from ..conftest import INTAKE
    login(page, live_server.url, "reception1")
    reception.admit(INTAKE, Actor.staff(users["reception"]))  # Narges Rezaei's number
    for n in range(2, 14):
        ticket = reception.admit(
            {**INTAKE, "customer": {"name": "محمد " + "حسینی" * n,
                                    "phone": INTAKE["customer"]["phone"]},
             "device": {"kind": "phone", "brand": "Xiaomi", "model": f"Mi {n}"}},
            Actor.staff(users["reception"]), known_name="brought")
        page.goto(f"{live_server.url}/tickets/{ticket.id}")
        lines = page.locator(".ticket-facts a[href^='tel:']").evaluate(
            "a => a.getClientRects().length")
        assert lines == 1, n


def test_a_technician_at_a_tablet_reads_the_device_and_its_condition_first(
        live_server, browser, make_ticket):
    """At a 10-inch tablet (800 px wide) the ticket's facts come after the forms and the
    timeline: the device, its problem, its condition at intake and what came with it are
    read at the top, before the estimate is written; the wide desk keeps one copy, beside."""
    from ..conftest import INTAKE
    ticket = make_ticket("diagnosis", intake={**INTAKE, "condition": "خط روی قاب پشتی",
                                              "accessories": "قاب"})
    context = new_context(browser, viewport={"width": 800, "height": 1280}, has_touch=True,
                          locale="fa-IR")
    tablet = context.new_page()
    login(tablet, live_server.url, "technician1")
    tablet.goto(f"{live_server.url}/tickets/{ticket.id}")
    brief = tablet.locator("[data-brief]")
    expect(brief).to_be_visible()
    expect(brief).to_contain_text("Cracked screen")
    expect(brief).to_contain_text("خط روی قاب پشتی")
    assert brief.bounding_box()["y"] < tablet.locator(".next-step").bounding_box()["y"]
    context.close()
    desk = new_context(browser, viewport={"width": 1366, "height": 768}, locale="fa-IR")
    wide = desk.new_page()
    login(wide, live_server.url, "technician1")
    wide.goto(f"{live_server.url}/tickets/{ticket.id}")
    expect(wide.locator("[data-brief]")).to_be_hidden()
    desk.close()


def test_enter_in_an_estimate_line_goes_to_the_next_line_and_sends_nothing(
        live_server, browser, make_ticket):
    """The technician types a part and its price and presses Enter (the tablet's keyboard
    puts it where "next" is): the cursor goes on to the next line, a new one after the last,
    and the estimate, with its SMS to the customer, is sent only by its button."""
    from servicedesk.extensions import db
    from servicedesk.models import Ticket
    ticket = make_ticket("diagnosis")
    context = new_context(browser, viewport={"width": 800, "height": 1280}, has_touch=True,
                          locale="fa-IR")
    tablet = context.new_page()
    login(tablet, live_server.url, "technician1")
    tablet.goto(f"{live_server.url}/tickets/{ticket.id}")
    rows = tablet.locator("#event-quote tr[data-line]")
    count = rows.count()
    for i, (what, price) in enumerate((("باتری اصلی", "۹۰۰۰۰۰"), ("دستمزد تعویض", "۲۰۰۰۰۰"))):
        rows.nth(i).locator("input[name=line_description]").fill(what)
        rows.nth(i).locator("input[name=line_unit_price]").fill(price)
        rows.nth(i).locator("input[name=line_unit_price]").press("Enter")
        expect(rows.nth(i + 1).locator("input[name=line_description]")).to_be_focused()
    assert count == 3  # the editor opens with three blank lines; the cursor is in the third
    tablet.keyboard.press("Enter")  # Enter in the last line adds one
    expect(rows).to_have_count(count + 1)
    expect(rows.nth(count).locator("input[name=line_description]")).to_be_focused()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "diagnosis"  # nothing was sent
    tablet.click("#event-quote button[data-fire=quote]")
    expect(tablet.locator(".state-badge")).to_have_attribute("data-state", "estimate")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).estimate_total == 11_000_000  # toman typed
    context.close()


def test_enter_after_the_reason_for_a_refusal_declines_the_estimate(live_server, page,
                                                                    make_ticket):
    """The customer says no on the phone; the desk types why and presses Enter: the estimate
    is declined with that reason. (The form's first button, "Approved", took the Enter: the
    repair started and the customer got the approval's SMS.)"""
    from servicedesk.extensions import db
    from servicedesk.models import Ticket
    ticket = make_ticket("estimate")
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/desk")
    card = page.locator(f"#estimate-{ticket.id}")
    card.locator("summary").click()
    card.locator("input[name=reason]").fill("گران است")
    card.locator("input[name=reason]").press("Enter")
    expect(page.locator(".alert-success")).to_be_visible()
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.state == "ready"
    assert ticket.events[-1].event == "decline"
    assert ticket.events[-1].data["reason"] == "گران است"


def test_enter_after_the_number_at_the_queues_issue_form_takes_no_number(live_server, page,
                                                                          users):
    """As at the kiosk: reception types a walk-in's mobile under "Issue a number" and presses
    Enter; no repair number is printed for someone who came to collect, the cursor goes to the
    services to choose one."""
    from sqlalchemy import select
    from servicedesk.extensions import db
    from servicedesk.models import Visit
    login(page, live_server.url, "reception1")
    page.goto(f"{live_server.url}/queue")
    page.fill("#issue-phone", "۰۹۱۲۱۲۳۴۵۶۷")
    page.locator("#issue-phone").press("Enter")
    expect(page.locator("#issue-phone ~ div button[name=service]").first).to_be_focused()
    assert page.url.endswith("/queue")
    db.session.expire_all()
    assert db.session.scalar(select(Visit)) is None
