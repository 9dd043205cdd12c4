"""Reminder SMS: an estimate nobody answered and a device nobody collected get one reminder each,
after the days the shop set, within the shop's sending hours; from cron with
`flask remind-customers`, and every hour in the worker (a real `flask worker` process)."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.models import Customer, Notification, TicketEvent, utcnow
from servicedesk.services import tickets as ticket_service
from servicedesk.services.reminders import remind, sending_hours, within_hours

from .conftest import LINES
from .test_sms import redis_app_config, run_burst, worker_environment

TEHRAN = ZoneInfo("Asia/Tehran")


def waited(ticket, event: str, days: float):
    """Move the ticket's last ``event`` (the one that started its wait) ``days`` into the past."""
    last = db.session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                       TicketEvent.event == event)
                             .order_by(TicketEvent.seq.desc()).limit(1))
    db.session.execute(update(TicketEvent).where(TicketEvent.id == last.id)
                       .values(at=utcnow() - timedelta(days=days)))
    db.session.commit()
    return ticket


def reminders(ticket=None, kind=None) -> list[Notification]:
    db.session.expire_all()
    query = select(Notification).where(Notification.event.like("remind_%"))
    if ticket is not None:
        query = query.where(Notification.ticket_id == ticket.id)
    if kind is not None:
        query = query.where(Notification.event == kind)
    return list(db.session.scalars(query.order_by(Notification.id)))


def at_noon() -> datetime:
    """Today at noon in the shop's time zone (within the sending hours), as UTC."""
    noon = datetime.combine(datetime.now(TEHRAN).date(), datetime.min.time().replace(hour=12),
                            TEHRAN)
    return noon.astimezone(timezone.utc)


def test_an_estimate_not_answered_gets_one_reminder_after_the_shops_days(app, make_ticket):
    old = waited(make_ticket("estimate"), "quote", 3)
    recent = waited(make_ticket("estimate"), "quote", 1)
    assert remind(now=at_noon()) == {"remind_estimate": 1, "remind_pickup": 0}
    [sms] = reminders(old)
    assert sms.event == "remind_estimate"
    assert "reminder" in sms.body.lower() or "یادآوری" in sms.body
    assert old.public_token in sms.body  # the link to approve or decline
    assert sms.to == old.customer.phone and sms.status == "sent"  # the console backend
    assert reminders(recent) == []
    # once: the next run writes nothing more for the same estimate
    assert remind(now=at_noon()) == {"remind_estimate": 0, "remind_pickup": 0}
    assert len(reminders(old)) == 1


def test_a_reminder_shows_money_in_the_unit_the_shop_chose(app, make_ticket, users):
    """The clock writes reminders outside any request: they still read the shop's setting,
    as the estimate's SMS did (a rial shop's customer must not read a figure ten times
    smaller)."""
    from servicedesk.services import admin as admin_service
    with app.test_request_context():
        admin_service.update_settings(users["admin"], {
            **admin_service.current_settings(), "money_display": "rial"})
    ticket = waited(make_ticket("estimate"), "quote", 3)
    remind(now=at_noon())
    [sms] = reminders(ticket)
    assert "۱۴٬۰۰۰٬۰۰۰ ریال" in sms.body, sms.body


def test_a_revised_estimate_may_be_reminded_of_again(app, make_ticket, users):
    ticket = waited(make_ticket("estimate"), "quote", 3)
    remind(now=at_noon())
    revised = [{**LINES[0], "unit_price": LINES[0]["unit_price"] - 1_000_000}, *LINES[1:]]
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              {"lines": revised})
    waited(ticket, "quote", 3)
    remind(now=at_noon())
    sent = reminders(ticket)
    assert len(sent) == 2 and sent[0].event_id != sent[1].event_id


def test_a_device_not_collected_gets_a_pickup_reminder(app, make_ticket):
    ready = waited(make_ticket("ready"), "finish", 4)
    not_yet = waited(make_ticket("ready"), "finish", 2)
    delivered = waited(make_ticket("delivered"), "finish", 10)
    assert remind(now=at_noon()) == {"remind_estimate": 0, "remind_pickup": 1}
    [sms] = reminders(ready)
    # the shop's phone, marked left to right: after Persian words it would read backwards
    assert sms.event == "remind_pickup" and "\u200e021-12345678\u200e" in sms.body
    # and the customer's page: the bill, what to bring, the opening hours, the address
    assert f"/t/{ready.public_token}" in sms.body
    assert reminders(not_yet) == [] and reminders(delivered) == []


def test_a_ticket_that_moved_on_is_not_reminded(app, make_ticket, users):
    answered = waited(make_ticket("estimate"), "quote", 3)
    ticket_service.fire_event(answered.id, "approve", Actor.staff(users["reception"]),
                              {"channel": "phone"})
    assert remind(now=at_noon())["remind_estimate"] == 0
    assert reminders(answered) == []


def test_opted_out_customers_switched_off_texts_and_zero_days_send_nothing(app, make_ticket,
                                                                           users):
    from servicedesk.services import admin as admin_service

    def setting(**values):
        with app.test_request_context():
            admin_service.update_settings(users["admin"], {
                **admin_service.current_settings(), **values})
    ticket = waited(make_ticket("estimate"), "quote", 5)
    ready = waited(make_ticket("ready"), "finish", 5)
    setting(remind_estimate_days="0", remind_pickup_days="0")
    assert remind(now=at_noon()) == {"remind_estimate": 0, "remind_pickup": 0}

    setting(remind_estimate_days="4", remind_pickup_days="4")
    for language in ("fa", "en"):  # the shop switched the pick-up reminder off
        with app.test_request_context():
            body = admin_service.template_row("remind_pickup", language)["body"]
            admin_service.save_template(users["admin"], "remind_pickup", language, body=body,
                                        enabled=False)
    assert remind(now=at_noon()) == {"remind_estimate": 1, "remind_pickup": 0}
    assert reminders(ready) == [] and len(reminders(ticket)) == 1

    customer = db.session.get(Customer, ticket.customer_id)
    customer.sms_opt_out = True
    db.session.commit()
    again = waited(make_ticket("estimate"), "quote", 5)
    assert remind(now=at_noon())["remind_estimate"] == 0 and reminders(again) == []


def test_no_reminder_is_written_at_night_the_morning_run_writes_it(app, make_ticket):
    """Written at night and held, a reminder could reach a customer who answered at 7:00: none
    is written outside the sending hours, and the first run within them writes it."""
    ticket = waited(make_ticket("estimate"), "quote", 3)
    today = datetime.now(TEHRAN).date()

    def tehran(hour, minute=0, day=today):
        return datetime(day.year, day.month, day.day, hour, minute,
                        tzinfo=TEHRAN).astimezone(timezone.utc)
    for night in (tehran(23), tehran(6), tehran(8, 59), tehran(20)):
        assert not within_hours(night)
        assert remind(now=night) == {"remind_estimate": 0, "remind_pickup": 0}
    assert reminders(ticket) == []
    assert within_hours(tehran(9)) and within_hours(tehran(19, 59))
    assert remind(now=tehran(9, 5))["remind_estimate"] == 1
    [sms] = reminders(ticket)
    assert sms.status == "sent" and sms.send_after is None


def failed_once(sms: Notification) -> Notification:
    """The reminder's first send failed for a moment (the provider was busy): due again now."""
    db.session.execute(update(Notification).where(Notification.id == sms.id).values(
        status="retry", attempts=1, provider_id=None, sent_at=None, error_code="503",
        error_message="busy", next_attempt_at=utcnow()))
    db.session.commit()
    return sms


def test_a_retried_reminder_is_cancelled_once_the_customer_has_answered(app, make_ticket,
                                                                        users):
    from servicedesk.notifications.delivery import deliver
    ticket = waited(make_ticket("estimate"), "quote", 3)
    remind(now=at_noon())
    [sms] = reminders(ticket)
    failed_once(sms)
    ticket_service.fire_event(ticket.id, "approve", Actor.staff(users["reception"]),
                              {"channel": "phone"})
    # cancelled with the answer, in its transaction: its retry finds nothing to send
    [sms] = reminders(ticket)
    assert sms.status == "cancelled" and sms.error_message == \
        "no longer due: the estimate was answered"
    assert deliver(sms.id) == "skipped"
    [sms] = reminders(ticket)
    assert sms.status == "cancelled" and sms.sent_at is None and sms.provider_id is None
    # nor after the customer opted out of SMS
    other = waited(make_ticket("ready"), "finish", 4)
    remind(now=at_noon())
    [pickup] = reminders(other)
    failed_once(pickup)
    other.customer.sms_opt_out = True
    db.session.commit()
    assert deliver(pickup.id) == "cancelled"
    assert "opted out" in reminders(other)[0].error_message


def test_a_retry_due_after_the_sending_hours_waits_for_the_morning(app, make_ticket):
    """A reminder written at 19:59 whose send failed must not wake the customer at 23:00."""
    from servicedesk.notifications.delivery import deliver
    from servicedesk.services.reminders import next_opening
    ticket = waited(make_ticket("ready"), "finish", 4)
    remind(now=at_noon())
    [sms] = reminders(ticket, "remind_pickup")
    failed_once(sms)
    hour = datetime.now(TEHRAN).hour
    # sending hours that hold neither this hour nor the next (the clock may turn meanwhile):
    # the retry is held, its attempt not counted
    app.config["REMINDER_HOURS"] = [hour + 2, 24] if hour < 22 else [2, 20]
    assert deliver(sms.id) == "retry"
    [held] = reminders(ticket)
    assert held.attempts == 1 and held.sent_at is None
    assert held.next_attempt_at == next_opening(utcnow())
    assert held.next_attempt_at.astimezone(TEHRAN).hour == app.config["REMINDER_HOURS"][0]
    assert held.next_attempt_at > utcnow()
    assert deliver(sms.id) == "skipped"  # not before the morning, whoever asks
    # the morning: within the hours, and the retry due
    app.config["REMINDER_HOURS"] = [0, 24]
    db.session.execute(update(Notification).where(Notification.id == sms.id).values(
        next_attempt_at=utcnow()))
    db.session.commit()
    assert deliver(sms.id) == "sent"
    assert reminders(ticket)[0].attempts == 2


def test_the_next_opening_of_the_sending_hours(app):
    from servicedesk.services.reminders import next_opening
    day = datetime(2026, 12, 6, tzinfo=TEHRAN).date()

    def tehran(hour, minute=0, days=0):
        return (datetime(day.year, day.month, day.day, hour, minute, tzinfo=TEHRAN)
                + timedelta(days=days)).astimezone(timezone.utc)
    assert next_opening(tehran(23)) == tehran(9, days=1)
    assert next_opening(tehran(6)) == tehran(9)
    assert next_opening(tehran(9)) == tehran(9, days=1)


def test_sending_hours_that_make_no_sense_fall_back_to_the_default(app):
    for hours in ((20, 9), (0, 25), ("x", 5), (9,)):
        app.config["REMINDER_HOURS"] = hours
        assert sending_hours() == (9, 20), hours
    app.config["REMINDER_HOURS"] = [0, 24]
    assert sending_hours() == (0, 24)


def test_old_waits_and_imported_history_are_not_texted(app, make_ticket, users):
    """Switching reminders on (or a clock that had stopped) must not text every customer whose
    device waited for months; imported tickets get no SMS at all."""
    ancient = waited(make_ticket("ready"), "finish", 3 + 8)  # past the shop's 3 days + 7
    recent = waited(make_ticket("ready"), "finish", 3 + 6)
    from servicedesk.models import Ticket
    imported = waited(make_ticket("ready"), "finish", 4)
    db.session.execute(update(Ticket).where(Ticket.id == imported.id)
                       .values(external_id="old-77"))
    db.session.commit()
    assert remind(now=at_noon())["remind_pickup"] == 1
    assert reminders(ancient) == [] and reminders(imported) == []
    assert len(reminders(recent)) == 1


def test_a_shop_that_phones_its_estimates_sends_no_estimate_reminder(app, make_ticket, users):
    from servicedesk.services import admin as admin_service
    for language in ("fa", "en"):  # the estimate SMS is off: the shop phones instead
        with app.test_request_context():
            body = admin_service.template_row("quote", language)["body"]
            admin_service.save_template(users["admin"], "quote", language, body=body,
                                        enabled=False)
    ticket = waited(make_ticket("estimate"), "quote", 3)
    assert remind(now=at_noon())["remind_estimate"] == 0 and reminders(ticket) == []


def test_a_pickup_reminder_follows_the_sms_of_what_made_the_device_ready(app, make_ticket,
                                                                         users):
    """Repaired, the customer had the "ready" SMS; declined, the "declined" one. A reminder goes
    only of an SMS the shop sends."""
    from servicedesk.services import admin as admin_service

    def switch_off(event):
        for language in ("fa", "en"):
            with app.test_request_context():
                body = admin_service.template_row(event, language)["body"]
                admin_service.save_template(users["admin"], event, language, body=body,
                                            enabled=False)
    switch_off("finish")  # the shop phones when a repair is done
    repaired = waited(make_ticket("ready"), "finish", 4)
    declined = make_ticket("estimate")
    ticket_service.fire_event(declined.id, "decline", Actor.staff(users["reception"]),
                              {"reason": "too dear", "channel": "phone"})
    waited(declined, "decline", 4)
    assert remind(now=at_noon())["remind_pickup"] == 1
    assert reminders(repaired) == [] and len(reminders(declined)) == 1


def test_an_answer_committed_while_the_reminder_is_written_wins(app, make_ticket, monkeypatch):
    """The state is read again, locked, after the reminder's row is written: an approval that
    committed in between rolls the reminder back."""
    from servicedesk.models import Ticket
    from servicedesk.notifications import outbox
    ticket = waited(make_ticket("estimate"), "quote", 3)
    write = outbox.write_for_event

    def answered_meanwhile(ticket_row, event_row, kind=None):
        note = write(ticket_row, event_row, kind=kind)
        db.session.execute(update(Ticket).where(Ticket.id == ticket_row.id)
                           .values(state="repair"))  # as if the customer's answer landed
        return note
    monkeypatch.setattr(outbox, "write_for_event", answered_meanwhile)
    assert remind(now=at_noon())["remind_estimate"] == 0
    assert reminders(ticket) == []
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "estimate"  # rolled back as a whole


def test_the_command_writes_and_sends_what_is_due(app, make_ticket):
    app.config["REMINDER_HOURS"] = (0, 24)  # whatever the hour the suite runs at
    ticket = waited(make_ticket("estimate"), "quote", 3)
    waited(make_ticket("ready"), "finish", 4)
    result = app.test_cli_runner().invoke(args=["remind-customers"])
    assert result.exit_code == 0, result.output
    assert "یادآوری‌ها: ۱ برآورد بی‌پاسخ، ۱ دستگاه تحویل‌نگرفته." in result.output
    assert [n.status for n in reminders()] == ["sent", "sent"]
    assert "۰ برآورد بی‌پاسخ" in app.test_cli_runner().invoke(args=["remind-customers"]).output
    assert len(reminders(ticket)) == 1


def test_the_ticket_page_lists_the_reminder(app, make_ticket, users):
    from .test_admin import Browser, html
    ticket = waited(make_ticket("estimate"), "quote", 3)
    remind(now=at_noon())
    staff = Browser(app)
    staff.login(users["reception"].username)
    page = html(staff.get(f"/tickets/{ticket.id}?lang=en"))
    assert 'data-sms-event="remind_estimate"' in page
    assert "Reminder: estimate not answered" in page


class TestLinksWithoutAConfiguredAddress:
    """No PUBLIC_BASE_URL (the embedded default): an SMS written in a request links to the
    address the request came to; a reminder written by the clock has no request, and links to
    the address the staff last opened the shop's pages at, not to localhost."""

    @pytest.fixture
    def app_config(self):
        return {"PUBLIC_BASE_URL": None}

    def test_no_reminder_before_the_shops_address_is_known(self, app, make_ticket):
        """The clock starts with the first request, maybe a customer's before any staff
        member's: a reminder then would link to localhost. It waits for the address."""
        ticket = waited(make_ticket("estimate"), "quote", 3)
        assert remind(now=at_noon()) == {"remind_estimate": 0, "remind_pickup": 0}
        assert reminders(ticket) == []
        app.config["PUBLIC_BASE_URL"] = "https://repair.example.ir"
        assert remind(now=at_noon())["remind_estimate"] == 1
        assert "https://repair.example.ir/t/" in reminders(ticket)[0].body

    def test_a_reminder_links_to_where_the_staff_open_the_shop(self, app, make_ticket, users):
        from servicedesk import settings
        from servicedesk.links import SEEN_KEY, public_base_url
        from servicedesk.models.admin import Setting
        from servicedesk.services.people import issue_token
        from .conftest import PASSWORD
        from .test_public import CSRF

        def get(url, client=None, **kw):  # each request in its own app context, as in production
            with app.app_context():
                return (client or app.test_client()).get(url, **kw)

        def logged_in(base_url):
            client = app.test_client()
            page = get("/login", client, base_url=base_url).get_data(as_text=True)
            token = next(t for t in CSRF.search(page).groups() if t)
            with app.app_context():
                client.post("/login", base_url=base_url, data={
                    "username": users["reception"].username, "password": PASSWORD,
                    "csrf_token": token})
            return client
        desk = logged_in("http://localhost")
        assert get("/desk", desk).status_code == 200
        assert db.session.get(Setting, SEEN_KEY).value == "http://localhost"
        lan = logged_in("http://repair.lan:8000")
        assert get("/desk", lan, base_url="http://repair.lan:8000").status_code == 200
        ticket = waited(make_ticket("estimate"), "quote", 3)
        # the Host header is the client's to write: anonymous requests change nothing, nor do
        # an integration's (its API token reaches the pages from wherever it runs)
        for url in (f"/t/{ticket.public_token}", "/login", "/desk", "/healthz"):
            get(url, base_url="http://evil.example")
        integration = {"Authorization": f"Bearer {issue_token(users['reception'])}"}
        assert get("/desk", headers=integration,
                   base_url="http://10.0.0.5:8000").status_code == 200
        db.session.expire_all()
        assert db.session.get(Setting, SEEN_KEY).value == "http://repair.lan:8000"
        remind(now=at_noon())
        [sms] = reminders(ticket)
        assert f"http://repair.lan:8000/t/{ticket.public_token}" in sms.body, sms.body
        # another process (the worker, a command) reads it from the database
        settings.invalidate()
        assert public_base_url() == "http://repair.lan:8000"


class TestWorkerClock:
    @pytest.fixture
    def app_config(self, fake_twilio):
        return redis_app_config(fake_twilio)

    def test_the_worker_writes_and_sends_the_reminders(self, app, app_config, database_url,
                                                       make_ticket, twilio):
        ticket = waited(make_ticket("ready"), "finish", 4)
        env = worker_environment(app, app_config, database_url)
        env["SERVICEDESK_REMINDER_HOURS"] = "[0, 24]"
        out = run_burst(env)
        assert "reminders written" in out, out
        [sms] = reminders(ticket)
        assert sms.event == "remind_pickup" and sms.status in ("sent", "delivered")


class TestInProcessClock:
    """The embedded default has no worker and maybe no cron: the web process keeps the clock
    from its first request on (a real thread, stopped at the end of the test)."""

    @pytest.fixture
    def app_config(self):
        return {"NOTIFY_INPROCESS": "thread", "REMINDER_HOURS": (0, 24),
                "AUTO_CLOSE_EVERY": 0.3}

    @pytest.fixture
    def clock(self, app):
        sender = app.extensions["servicedesk_sender"]
        yield sender
        sender.stop()

    def test_the_first_request_starts_the_clock(self, app, clock):
        assert clock._thread is None  # a command (init-db, ...) never starts it
        assert app.test_client().get("/healthz").status_code == 200
        assert clock._thread.is_alive()
        clock.stop()
        assert not clock._thread.is_alive()

    def test_a_period_that_does_not_read_does_not_stop_the_sms_thread(self, app, clock):
        from servicedesk.chores import period
        for value in ("soon", None, -5):
            app.config["SWEEP_EVERY"] = value
            assert period(app, "SWEEP_EVERY", 60) == 60, value
        app.config["SWEEP_EVERY"] = "0.3"
        assert period(app, "SWEEP_EVERY", 60) == 0.3
        app.config["SWEEP_EVERY"] = "every minute"
        clock.start()
        import time
        time.sleep(0.3)
        assert clock._thread.is_alive()

    def test_the_clock_writes_reminders_and_closes_unanswered_tickets(self, app, clock,
                                                                       make_ticket):
        import time

        from servicedesk.models import Ticket
        from .test_auto_close import delivered_days_ago
        estimate = waited(make_ticket("estimate"), "quote", 3)
        delivered = delivered_days_ago(make_ticket, 10)
        app.test_client().get("/healthz")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            sent = [n.status for n in reminders(estimate)]
            closed = db.session.get(Ticket, delivered.id).state == "closed"
            if sent == ["sent"] and closed:
                break
            time.sleep(0.2)
        assert sent == ["sent"] and closed, (sent, closed)
