"""SMS texts as the manager edits them: the queue SMS are templates like the ticket SMS (edited on
the same page, switched off the same way), each event offers only the variables it can fill,
and a template that formats a variable is refused."""
from datetime import date

import pytest
from sqlalchemy import select

from servicedesk.errors import ValidationError
from servicedesk.extensions import db
from servicedesk.i18n import segments
from servicedesk.models import Notification, SmsTemplate
from servicedesk.notifications import templates
from servicedesk.services import admin as admin_service
from servicedesk.services import reception
from servicedesk.services.tickets import default_branch

from .test_admin import html, manager  # noqa: F401  (the manager's logged-in client)


def edit(app, users, event, language, body, enabled=True):
    with app.test_request_context():
        admin_service.save_template(users["manager"], event, language, body=body,
                                    enabled=enabled)


def queue_sms(visit):
    db.session.expire_all()
    return db.session.scalars(select(Notification).where(Notification.visit_id == visit.id)
                              .order_by(Notification.id)).all()


def test_the_queue_sms_are_listed_with_the_ticket_sms_for_editing(app):
    with app.test_request_context():
        events = admin_service.template_events()
    assert {"visit_issued", "visit_near", "visit_called", "admit", "deliver"} <= set(events)


def test_an_edited_queue_sms_is_what_the_customer_gets(app, users):
    edit(app, users, "visit_issued", "fa", "{shop_name}: نوبت شما {label}؛ {ahead} نفر جلوتر.")
    app.config["SHOP_NAME"] = "موبایل دکتر"
    app.config["QUEUE_NEAR_AHEAD"] = 0  # one ahead is not "near": the "issued" SMS goes
    reception.issue_number(default_branch(), "repair")
    mine = reception.issue_number(default_branch(), "repair", phone="09121234567")
    [note] = queue_sms(mine)
    assert note.body == "موبایل دکتر: نوبت شما R-۰۰۲؛ ۱ نفر جلوتر."


def test_a_queue_sms_switched_off_is_not_written(app, users):
    edit(app, users, "visit_issued", "fa", templates.default_body("visit_issued", "fa"),
         enabled=False)
    app.config["QUEUE_NEAR_AHEAD"] = 0  # one ahead is not "near": the "issued" SMS is due
    reception.issue_number(default_branch(), "repair")
    mine = reception.issue_number(default_branch(), "repair", phone="09121234567")
    assert queue_sms(mine) == []
    assert db.session.scalar(select(SmsTemplate.enabled)
                             .where(SmsTemplate.event == "visit_issued")) is False


@pytest.mark.parametrize("event, body, problem", [
    ("admit", "{shop_name}: your number is {label}", "Unknown variables: label."),
    ("visit_called", "{ticket_number} at counter {counter}",
     "Unknown variables: ticket_number."),
    ("admit", "{device:>400} received", "without formatting"),
    ("admit", "{device!r} received", "without formatting"),
    ("admit", "{device.__class__} received", "Unknown variables"),
    ("admit", "{device received", "Unbalanced braces"),
    # known only when another event happens: it would always go out empty
    ("finish", "Ready. {part} fitted.", "This SMS has no {part}"),
    ("admit", "Received ({reason})", "This SMS has no {reason}"),
    # money and the survey from their step on: at intake the estimate is "0 toman"
    ("admit", "Received; estimate {estimate_total}", "This SMS has no {estimate_total}"),
    ("quote", "{estimate_total}; due {amount_due}", "This SMS has no {amount_due}"),
    ("quote", "Rate us: {survey_url}", "This SMS has no {survey_url}"),
])
def test_a_template_with_a_variable_the_event_cannot_fill_is_refused(app, event, body, problem):
    with app.test_request_context("/?lang=en"):
        with pytest.raises(ValueError) as refused:
            templates.check_body(body, event)
    assert problem in str(refused.value)


def test_every_shipped_text_uses_only_its_events_variables(app):
    for event in templates.DEFAULTS:
        for language in app.config["LANGUAGES"]:
            with app.app_context():
                templates.check_body(templates.default_body(event, language), event)


def test_a_ticket_sms_that_does_not_show_the_queue_does_not_count_it(app, make_ticket):
    """The repair-queue count is a query: run only for a text that shows it."""
    from sqlalchemy import event as sa_event
    ticket = make_ticket("intake")
    seen = []

    def count_queries(conn, cursor, statement, *args):
        seen.append(statement)
    engine = db.engine
    sa_event.listen(engine, "before_cursor_execute", count_queries)
    try:
        with app.test_request_context():
            body = templates.render("approve", "en", ticket, {})
            counting = [s for s in seen if "count(" in s.lower()]
            seen.clear()
            with_queue = templates.render("send_to_repair", "en", ticket, {})
            counting_queue = [s for s in seen if "count(" in s.lower()]
    finally:
        sa_event.remove(engine, "before_cursor_execute", count_queries)
    assert "goes to a technician" in body and counting == []
    assert "Devices ahead of it: none." in with_queue and len(counting_queue) == 1


def test_a_text_saved_in_one_worker_reaches_the_others_within_the_cache_interval(app, users):
    """Each gunicorn worker keeps a snapshot of the shop's configuration for
    SETTINGS_CACHE_SECONDS: the worker that saves a text uses it at once, another one within
    the interval (two apps on one database play the two workers)."""
    import time

    from .conftest import INTAKE
    from servicedesk import create_app
    from servicedesk.services.people import issue_token

    second = create_app({**app.config, "SETTINGS_CACHE_SECONDS": 0.5})
    token = issue_token(users["reception"])

    def admit_sms(worker, phone):
        r = worker.test_client().post(
            "/api/v1/tickets", headers={"Authorization": f"Bearer {token}"},
            json={**INTAKE, "customer": {"name": "Narges", "phone": phone, "language": "en"}})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["notifications"][0]["body"]

    assert "we received your" in admit_sms(second, "09121110001")  # the second has a snapshot
    edit(app, users, "admit", "en", "{shop_name}: got your {device}.")
    assert admit_sms(app, "09121110002").endswith("got your Samsung Galaxy A54.")
    assert "we received your" in admit_sms(second, "09121110003")  # within its interval
    time.sleep(0.6)
    assert admit_sms(second, "09121110004").endswith("got your Samsung Galaxy A54.")


def test_a_variable_that_can_be_empty_is_said_in_words(app, users, make_ticket):
    """A quote without a promised date, with a text that shows it: the SMS says so rather than
    ending in "ready by:" with nothing after it."""
    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as ticket_service

    from .conftest import LINES
    edit(app, users, "quote", "fa", "{shop_name}: برآورد {estimate_total}، آماده تا: "
         "{promised_date}. {tracking_url}")
    edit(app, users, "quote", "en", "Estimate {estimate_total}, ready by: {promised_date}.")
    ticket = make_ticket("diagnosis")
    assert ticket.promised_date is None
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              {"lines": LINES})
    db.session.expire_all()
    [note] = db.session.scalars(select(Notification).where(
        Notification.ticket_id == ticket.id, Notification.event == "quote")).all()
    assert "آماده تا: هنوز تعیین نشده." in note.body
    with app.test_request_context():
        english = templates.render("quote", "en", ticket, {})
    assert english == "Estimate 1,400,000 toman, ready by: not set yet."


def test_the_preview_shows_how_a_text_reads_when_a_variable_is_empty(app, users):
    body = "Estimate {estimate_total}, ready by: {promised_date}."
    with app.test_request_context("/?lang=en"):
        shown = admin_service.preview("en", body, "quote")
        plain = admin_service.preview("en", "Estimate {estimate_total}.", "quote")
    assert shown["error"] is None and "ready by: not set yet." not in shown["text"]
    assert shown["if_empty"] == [{
        "when": "When the ticket has no promised date, it reads:",
        "text": "Estimate 1,400,000 toman, ready by: not set yet."}]
    assert plain["if_empty"] == []


def _within_pre_approved_sms(app, make_ticket, users):
    """Quote within the pre-approved amount; the SMS the customer got for it (or None)."""
    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as ticket_service

    from .conftest import INTAKE, LINES
    ticket = ticket_service.admit({**INTAKE, "pre_approved_amount": 20_000_000},
                                  Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {})
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              {"lines": LINES})
    db.session.expire_all()
    bodies = db.session.scalars(select(Notification.body).where(
        Notification.ticket_id == ticket.id, Notification.event.in_(("quote", "approve")))).all()
    assert len(bodies) <= 1
    return bodies[0] if bodies else None


def test_an_estimate_approved_at_once_follows_the_estimate_sms_switch_not_the_approvals(
        app, users, make_ticket):
    # the shop switched off "approved" (it is what the customer just said by phone): the
    # approval within the pre-approved amount still tells them the price and that work began
    edit(app, users, "approve", "fa", "تأیید شد.", enabled=False)
    edit(app, users, "approve", "en", "Approved.", enabled=True)
    body = _within_pre_approved_sms(app, make_ticket, users)
    assert body is not None and "۱٬۴۰۰٬۰۰۰ تومان" in body and "تأیید شد." != body
    # with the estimate's SMS switched off, so is the one that stands in for it
    edit(app, users, "quote", "fa", templates.default_body("quote", "fa"), enabled=False)
    assert _within_pre_approved_sms(app, make_ticket, users) is None


def test_the_template_list_says_what_a_variant_follows(app, users, manager):  # noqa: F811
    edit(app, users, "quote", "en", "Estimate {estimate_total}: {tracking_url}")
    page = html(manager.get("/admin/templates?lang=en"))
    assert page.count('data-follows="quote"') == 1  # the revision, in the estimate's words
    assert page.count("Estimate {estimate_total}: {tracking_url}") == 2
    edit(app, users, "quote", "en", "Estimate {estimate_total}: {tracking_url}", enabled=False)
    page = html(manager.get("/admin/templates?lang=en"))
    # now the approvals within the pre-approved amount (of a first or a revised estimate)
    # and the estimate with alternatives follow its switch too: off
    assert page.count('data-follows="quote"') == 4


def test_a_flagged_text_can_be_switched_off_without_rewriting_it(app, users):
    db.session.add(SmsTemplate(event="admit", language="en", enabled=True,
                               body="Got it; estimate {estimate_total}."))
    db.session.commit()
    edit(app, users, "admit", "en", "Got it; estimate {estimate_total}.", enabled=False)
    assert db.session.scalar(select(SmsTemplate.enabled)
                             .where(SmsTemplate.event == "admit")) is False
    with pytest.raises(ValidationError):  # switched on again, it must be mended
        edit(app, users, "admit", "en", "Got it; estimate {estimate_total}.", enabled=True)



def test_an_english_sms_after_a_persian_shop_name_reads_left_to_right(app, make_ticket):
    """Phones lay a message out in the direction of its first letter: an English SMS that
    starts with the Persian shop name gets a left-to-right mark first (else "...ahead of
    .it: 1"); a Persian one keeps none; a Persian SMS after a Latin shop name gets a
    right-to-left one."""
    from servicedesk.notifications.templates import directed
    english, persian = "{shop_name}: your phone is ready.", "{shop_name}: آماده است."
    assert directed("تعمیرات نگین: your phone is ready.", english, "en") == \
        "\u200eتعمیرات نگین: your phone is ready."
    assert directed("تعمیرات نگین: آماده است.", persian, "fa") == "تعمیرات نگین: آماده است."
    assert directed("Negin: آماده است.", persian, "fa") == "\u200fNegin: آماده است."
    assert directed("12: ready", "{n}: ready", "en") == "12: ready"
    # the template's own words decide, not the slot: English typed into the Persian text
    assert directed("Negin: got it.", "{shop_name}: got it.", "fa") == "Negin: got it."
    app.config["SHOP_NAME"] = "تعمیرات نگین"
    ticket = make_ticket("intake", intake={"customer": {
        "name": "Sam", "phone": "09121234500", "language": "en"}, "device": {
        "kind": "phone", "brand": "Apple", "model": "iPhone 12"}, "problem": "Screen"})
    [note] = ticket.notifications
    assert note.body.startswith("\u200eتعمیرات نگین:") and note.language == "en"
    persian = make_ticket("intake")
    assert persian.notifications[0].body.startswith("تعمیرات نگین:")


def test_the_ready_sms_links_to_the_customers_page_in_two_persian_parts(app, make_ticket,
                                                                       users):
    """"Ready to collect" is the SMS a customer acts on: its link opens the page with the
    bill, what to bring, the opening hours, the shop's phone and address (as the receipt's,
    the estimate's and the survey's SMS have theirs), and it stays within two parts."""
    app.config.update(PUBLIC_BASE_URL="https://repair.example.ir", SHOP_NAME="موبایل دکتر")
    ticket = make_ticket("ready")
    [ready] = [n for n in ticket.notifications if n.event == "finish"]
    assert f"https://repair.example.ir/t/{ticket.public_token}" in ready.body
    assert "آماده تحویل" in ready.body and "۱٬۴۰۰٬۰۰۰ تومان" in ready.body
    assert (ready.encoding, ready.segments) == ("UCS-2", 2), ready.body
    # ready unrepaired, the estimate declined: the same page (what to bring, the hours)
    from servicedesk.lifecycle import Actor
    from servicedesk.services.tickets import fire_event
    declined = make_ticket("estimate")
    fire_event(declined.id, "decline", Actor.staff(users["reception"]),
               {"reason": "گران است", "channel": "phone"})
    db.session.expire_all()
    [sms] = [n for n in db.session.get(type(declined), declined.id).notifications
             if n.event == "decline"]
    assert f"https://repair.example.ir/t/{declined.public_token}" in sms.body
    assert (sms.encoding, sms.segments) == ("UCS-2", 2), sms.body


# Parts a Persian SMS of each kind may take (UCS-2: 70 characters alone, 67 a part): the
# approval within the pre-approved amount replaces two SMS (the estimate and its approval).
# An estimate with alternatives names each one and its total.
PERSIAN_PARTS = {"approve_within": 3, "approve_within_revised": 3, "quote_choices": 3,
                 "requote_choices": 3}


def test_every_shipped_persian_sms_fits_its_parts_for_a_usual_ticket(app, make_ticket):
    """Each part of a Persian SMS is billed: with a usual shop name, device, amount, link and
    reason, no shipped text spills into a part it does not need."""
    app.config.update(PUBLIC_BASE_URL="https://repair.example.ir", SHOP_NAME="موبایل دکتر",
                      SHOP_PHONE="021-88001122")
    ticket = make_ticket("delivered")
    data = {"reason": "مشتری منصرف شد", "part": "ال‌سی‌دی", "amount": 5_000_000}
    ticket.promised_date = date(2027, 2, 4)
    over = {}
    for kind in templates.DEFAULTS:
        with app.test_request_context():
            if kind in templates.QUEUE_EVENTS:
                body = templates.render_queue(kind, "fa", {"label": "R-۰۱۷", "ahead": "۳",
                                                           "counter": "۲"})
            else:
                body = templates.fill(templates.default_body(kind, "fa"),
                                      templates.context(ticket, data, "fa"))
        assert "{" not in body, body
        encoding, parts = segments(body)
        if parts > PERSIAN_PARTS.get(kind, 2):
            over[kind] = (parts, len(body), body)
    assert over == {}
