"""SMS at every step: the real twilio SDK over HTTP to the fake Twilio server, real Redis, real
rq workers (separate processes), injected faults."""
import re
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from servicedesk.extensions import db
from servicedesk.models import Customer, Notification, Ticket, utcnow
from servicedesk.notifications.delivery import deliver
from servicedesk.notifications.outbox import dispatch
from servicedesk.notifications.sweep import sweep
from servicedesk.services import tickets as svc

from .conftest import INTAKE, PATH_TO, SAMPLE_DATA, LiveServer, actor_for, twilio_config

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
LIFE = PATH_TO["closed"][:-1]  # admit .. deliver: every step a customer hears about


def notes(ticket_id):
    db.session.expire_all()
    return db.session.scalars(select(Notification).where(Notification.ticket_id == ticket_id)
                              .order_by(Notification.id)).all()


def walk(ticket, users, events):
    for event in events:
        svc.fire_event(ticket.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))


def sends(twilio) -> list:
    """What Twilio answered each request to send a message, in order."""
    return [r["status"] for r in twilio.requests if r["method"] == "POST"]


# --- in-process delivery (no Redis), twilio backend --------------------------------------------

class TestInProcess:
    @pytest.fixture
    def app_config(self, fake_twilio):
        return twilio_config(fake_twilio)

    def test_one_sms_per_step_in_the_customers_language(self, app, twilio, make_ticket, users):
        en = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "Hamid", "phone": "0935 123 4567", "language": "en"}})
        walk(en, users, LIFE)
        fa = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "نرگس", "phone": "۰۹۱۲۱۲۳۴۵۶۷", "language": "fa"}})
        walk(fa, users, LIFE)
        got = twilio.wait_for(2 * (len(LIFE) + 1))
        en_msgs = [m for m in got if m["to"] == "+989351234567"]
        fa_msgs = [m for m in got if m["to"] == "+989121234567"]
        assert len(en_msgs) == len(fa_msgs) == len(LIFE) + 1
        assert all(m["from"] == "+15005550006" for m in got)
        assert f"/t/{en.public_token}" in en_msgs[0]["body"]
        assert f"/t/{fa.public_token}" in fa_msgs[0]["body"]
        assert en_msgs[0]["body"].isascii()
        # Persian text for the Persian customer (Arabic-script letters, no English words)
        assert any("\u0600" <= ch <= "\u06ff" for ch in fa_msgs[0]["body"])
        assert "received" not in fa_msgs[0]["body"]
        rows = notes(en.id)
        assert [r.event for r in rows] == ["admit", *LIFE]
        assert all(r.status == "sent" and r.provider_id.startswith("SM") for r in rows)
        assert {r.provider_id for r in rows} == {m["sid"] for m in en_msgs}

    def test_persian_sms_counts_ucs2_segments(self, app, twilio, make_ticket):
        ticket = make_ticket("intake")
        row = notes(ticket.id)[0]
        assert row.language == "fa" and row.encoding == "UCS-2"
        assert row.segments == (1 if len(row.body) <= 70 else -(-len(row.body) // 67))

    def test_bad_number_fails_permanently_without_retry(self, app, twilio, make_ticket, users):
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        row = notes(ticket.id)[0]
        assert (row.status, row.error_code, row.attempts) == ("failed", "21211", 1)
        assert sweep(stuck_after=timedelta(0)) == 0
        assert notes(ticket.id)[0].attempts == 1
        assert twilio.messages == []

    def test_stop_reply_opts_the_customer_out(self, app, twilio, make_ticket, users):
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550004", "language": "en"}})
        row = notes(ticket.id)[0]
        assert (row.status, row.error_code) == ("failed", "21610")
        assert db.session.scalar(select(Customer.sms_opt_out).where(
            Customer.phone == "+15005550004")) is True
        walk(ticket, users, ["send_to_repair", "quote"])
        assert len(notes(ticket.id)) == 1  # later events write no SMS for them
        assert len(db.session.get(Ticket, ticket.id).events) == 3

    def test_a_stop_seen_on_a_queue_sms_opts_the_customer_out(self, app, twilio, make_ticket):
        """The customer on file came back for a queue number; Twilio answers 21610 (they
        replied STOP) to its SMS: the desk sees they get no SMS, as after a ticket's."""
        from servicedesk.services import reception
        from servicedesk.services.tickets import default_branch, set_customer_sms
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550004", "language": "en"}})
        set_customer_sms(ticket.customer_id, True)  # the desk turned them on again
        visit = reception.issue_number(default_branch(), "repair", phone="+15005550004")
        sms = db.session.scalar(select(Notification).where(Notification.visit_id == visit.id))
        assert (sms.status, sms.error_code) == ("failed", "21610")
        db.session.expire_all()
        assert db.session.get(Customer, ticket.customer_id).sms_opt_out is True

    def test_status_callback_moves_forward_only_and_needs_a_signature(
            self, app, twilio, make_ticket):
        server = LiveServer(app)
        try:
            app.config["PUBLIC_BASE_URL"] = server.url
            ticket = make_ticket("intake")
            row = notes(ticket.id)[0]
            msg = twilio.wait_for(1)[0]
            assert msg["status_callback"] == f"{server.url}/sms/status?n={row.id}"
            assert twilio.send_status_callback(msg["sid"], "delivered") == 204
            assert notes(ticket.id)[0].status == "delivered"
            assert twilio.send_status_callback(msg["sid"], "sent") == 204  # late, out of order
            assert notes(ticket.id)[0].status == "delivered"
            forged = twilio.send_status_callback(msg["sid"], "failed", error_code=30007,
                                                 tamper=True)
            assert forged == 403
            assert notes(ticket.id)[0].status == "delivered"
            assert notes(ticket.id)[0].error_code is None
            assert row.id == notes(ticket.id)[0].id
        finally:
            server.stop()

    def test_a_delivery_report_that_overtakes_twilios_answer_is_kept(
            self, app, twilio, make_ticket):
        server = LiveServer(app)
        try:
            app.config["PUBLIC_BASE_URL"] = server.url
            twilio.report_before_answer("undelivered", error_code=30007)
            ticket = make_ticket("intake")
            assert twilio.callback_answers == [204]
            row = notes(ticket.id)[0]
            assert (row.status, row.error_code) == ("undelivered", "30007")
            assert row.provider_id == twilio.messages[0]["sid"]
        finally:
            server.stop()

    # --- how long a message is tried ------------------------------------------------------

    def test_an_unknown_outcome_is_resent_until_the_attempts_run_out(
            self, app, twilio, make_ticket):
        app.config["SMS_RETRY_INTERVALS"] = [0, 0]  # three attempts in all
        twilio.fail_next(10, 500)  # Twilio may have taken each one: the outcome is unknown
        ticket = make_ticket("intake")
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("unknown", 1)
        for _ in range(5):
            sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("failed", 3)
        assert row.error_message == ("gave up after 3 attempts; the last outcome was unknown: "
                                     "Twilio answered 500")
        assert sends(twilio) == [500, 500, 500]

    @pytest.mark.parametrize("left_in", ["sending", "unknown"])
    def test_a_stuck_message_past_its_last_attempt_fails_instead_of_going_again(
            self, app, twilio, make_ticket, left_in):
        app.config["SMS_RETRY_INTERVALS"] = [0, 0]
        ticket = make_ticket("intake")
        nid = notes(ticket.id)[0].id
        # Its last attempt ended without an answer: a worker killed mid-send ('sending'), or
        # a timeout ('unknown', as earlier versions left rows they resent without end).
        db.session.execute(update(Notification).where(Notification.id == nid).values(
            status=left_in, attempts=3, provider_id=None, error_message=None,
            updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        twilio.reset()
        assert sweep() == 0
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("failed", 3)
        assert row.error_message.startswith(
            "gave up after 3 attempts; the last outcome was unknown")
        assert twilio.requests == []

    def test_a_report_on_a_send_whose_answer_was_lost_settles_it_without_a_resend(
            self, app, twilio, make_ticket):
        server = LiveServer(app)
        try:
            app.config.update(PUBLIC_BASE_URL=server.url, TWILIO_TIMEOUT=1,
                              SMS_RETRY_INTERVALS=[0, 0])
            twilio.delay_next(1, seconds=2)  # Twilio takes it; its answer comes too late
            ticket = make_ticket("intake")
            assert notes(ticket.id)[0].status == "unknown"
            sid = twilio.messages[0]["sid"]
            assert twilio.send_status_callback(sid, "delivered") == 204
            sweep(stuck_after=timedelta(0))
            row = notes(ticket.id)[0]
            assert (row.status, row.provider_id, row.attempts) == ("delivered", sid, 1)
            assert len(twilio.messages) == 1
        finally:
            server.stop()

    def test_a_retry_is_not_sent_before_it_is_due(self, app, twilio, make_ticket):
        app.config["SMS_RETRY_INTERVALS"] = [3600]
        twilio.fail_next(1, 429)
        ticket = make_ticket("intake")
        row = notes(ticket.id)[0]
        assert row.status == "retry" and row.next_attempt_at > utcnow() + timedelta(minutes=59)
        assert deliver(row.id) == "skipped"  # a job of another retry chain, an hour early
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("retry", 1)
        assert sends(twilio) == [429]


    def test_a_retry_after_the_customer_asked_for_no_sms_is_cancelled(self, app, twilio,
                                                                      make_ticket):
        from servicedesk.services.tickets import set_customer_sms
        app.config["SMS_RETRY_INTERVALS"] = [0]
        twilio.fail_next(1, 429)
        ticket = make_ticket("intake")
        row = notes(ticket.id)[0]
        assert row.status == "retry"
        set_customer_sms(ticket.customer_id, False)
        assert deliver(row.id) == "cancelled"
        row = notes(ticket.id)[0]
        assert row.status == "cancelled" and "opted out" in row.error_message
        assert sends(twilio) == [429]

    def test_an_sms_still_waiting_to_go_is_not_sent_once_the_customer_opted_out(
            self, app, twilio, make_ticket):
        """The hand-off after the commit failed (here Redis did not answer), so the SMS waits
        for the sweep; meanwhile the customer pressed "stop" on their page."""
        from servicedesk.services.tickets import set_customer_sms
        app.config["REDIS_URL"] = "redis://127.0.0.1:6390/0"  # nothing listens there
        app.extensions.pop("servicedesk_rq_queue", None)
        ticket = make_ticket("intake")
        assert notes(ticket.id)[0].status == "pending"
        set_customer_sms(ticket.customer_id, False, how="link")
        app.config["REDIS_URL"] = None  # the sender is back
        sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert row.status == "cancelled" and "opted out" in row.error_message
        assert twilio.requests == []

    def test_the_desk_reads_why_an_sms_did_not_go(self, app, twilio, api, make_ticket, users):
        """Not "failed 21211": what happened, and what to do about it."""
        from html import unescape
        app.config["SMS_RETRY_INTERVALS"] = [0]
        wrong = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        twilio.fail_next(2, 429)
        busy = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "Y", "phone": "09351234567", "language": "en"}})
        sweep(stuck_after=timedelta(0))
        assert notes(busy.id)[0].status == "failed"

        def reason(ticket, lang):
            with app.app_context():  # its own, as in production: the language is not kept
                page = unescape(api["reception"].get(f"/tickets/{ticket.id}?lang={lang}")
                                .get_data(as_text=True))
            return page[page.index("data-sms-reason>") + 16:].split("</div>")[0]

        assert reason(wrong, "en") == ("The number cannot get SMS (wrong, or not a mobile): "
                                       "check it with the customer.")
        assert reason(wrong, "fa") == ("این شماره پیامک دریافت نمی‌کند (اشتباه است یا شماره "
                                       "همراه نیست): آن را با مشتری بررسی کنید.")
        assert reason(busy, "en") == ("Not sent after 2 attempts: the SMS service could not "
                                      "be reached or was busy.")
        assert "پس از ۲ بار تلاش فرستاده نشد" in reason(busy, "fa")
        assert sends(twilio) == [400, 429, 429]  # the wrong number, then the busy one twice

    @pytest.mark.parametrize("then", ["serve", "no_show", "hours_later"])
    def test_a_queue_sms_retried_after_its_number_moved_on_is_not_sent(
            self, app, twilio, make_ticket, then):
        """"Come to counter 2" failed (Twilio busy); the customer came anyway and was served,
        or did not come: its retry would only confuse them."""
        from servicedesk.models import Visit
        from servicedesk.services import reception
        from servicedesk.services.tickets import default_branch
        app.config["SMS_RETRY_INTERVALS"] = [0]
        visit = reception.issue_number(default_branch(), "repair", phone="09121234567")
        twilio.fail_next(1, 429)
        assert reception.call_next(default_branch(), "2").id == visit.id
        called = db.session.scalar(select(Notification).where(
            Notification.visit_id == visit.id, Notification.event == "visit_called"))
        assert called.status == "retry"
        if then == "hours_later":  # still "called" on the board, a queue day ago
            db.session.execute(update(Visit).where(Visit.id == visit.id).values(
                issued_at=utcnow() - timedelta(hours=13)))
            db.session.commit()
        else:
            getattr(reception, then)(visit.id)
        sweep(stuck_after=timedelta(0))
        db.session.expire_all()
        called = db.session.get(Notification, called.id)
        assert called.status == "cancelled" and "moved on" in called.error_message
        from servicedesk.notifications.reasons import explain
        from flask_babel import force_locale
        with force_locale("en"):  # what the ticket's SMS list would say
            assert explain(called.status, called.error_code, called.error_message) == (
                "Not sent: by then the queue number had been called, served or passed.")
        assert sends(twilio) == [201, 429]  # "your turn is near", then the busy "called"
        assert db.session.get(Visit, visit.id).status == {
            "serve": "served", "no_show": "no_show", "hours_later": "called"}[then]

    def test_sms_refused_for_a_wrong_token_go_once_the_token_is_right(
            self, app, twilio, make_ticket, users):
        """The token was changed in Twilio's console before the shop's settings: the SMS of
        the meantime wait and go, not fail for good (every customer of the hour lost)."""
        app.config.update(SMS_RETRY_INTERVALS=[0, 0], TWILIO_AUTH_TOKEN="an-old-token")
        app.extensions.pop("servicedesk_sms_backend", None)
        ticket = make_ticket("intake")
        row = notes(ticket.id)[0]
        assert (row.status, row.error_code) == ("retry", "20003")
        app.config["TWILIO_AUTH_TOKEN"] = twilio.auth_token  # the administrator mends it
        app.extensions.pop("servicedesk_sms_backend", None)
        sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("sent", 2)
        assert sends(twilio) == [401, 201]

    def test_a_late_sms_waits_for_the_morning_not_to_wake_the_customer(
            self, app, twilio, make_ticket):
        """The sender was stopped for hours (Redis down, the worker not running) and comes
        back at night: its backlog waits for the shop's sending hours. An SMS of an event
        fired just now still goes at once, night or not."""
        from datetime import datetime
        from zoneinfo import ZoneInfo
        from flask_babel import force_locale
        from servicedesk.notifications.reasons import explain
        from servicedesk.services.reminders import next_opening
        app.config["REDIS_URL"] = "redis://127.0.0.1:6390/0"  # the hand-off fails
        app.extensions.pop("servicedesk_rq_queue", None)
        ticket = make_ticket("intake")
        app.config["REDIS_URL"] = None
        db.session.execute(update(Notification).where(Notification.ticket_id == ticket.id)
                           .values(created_at=utcnow() - timedelta(hours=3)))
        db.session.commit()
        hour = datetime.now(ZoneInfo("Asia/Tehran")).hour
        # sending hours that hold neither this hour nor the next: it is night for the test
        app.config["REMINDER_HOURS"] = [hour + 2, 24] if hour < 22 else [2, 20]
        sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts, row.sent_at) == ("retry", 0, None)
        assert row.next_attempt_at == next_opening(utcnow()) > utcnow()
        assert twilio.requests == []
        with force_locale("en"):
            assert explain(row.status, row.error_code, row.error_message).startswith(
                "Late: it waits for the morning")
        fresh = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "Y", "phone": "09351234567"}})
        assert notes(fresh.id)[0].status == "sent"  # just written: it goes, night or not
        # the morning
        app.config["REMINDER_HOURS"] = [0, 24]
        db.session.execute(update(Notification).where(Notification.id == row.id)
                           .values(next_attempt_at=utcnow()))
        db.session.commit()
        sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("sent", 1)
        assert sends(twilio) == [201, 201]

    def test_the_desk_sends_an_sms_that_did_not_go_again_once(
            self, app, twilio, make_ticket, users):
        """The panel's credit ran out (Twilio busy here) past the last attempt: once it works
        again, the desk sends the SMS again from the ticket's page; a double click sends it
        once, and the copy is a row of its own beside the failed one."""
        from .test_reception import Staff
        app.config["SMS_RETRY_INTERVALS"] = [0]
        twilio.fail_next(2, 429)
        ticket = make_ticket("intake")
        sweep(stuck_after=timedelta(0))
        [failed] = notes(ticket.id)
        assert failed.status == "failed"
        desk = Staff(app, "reception1")
        page = desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)
        assert page.count("data-sms-resend") == 1
        url = f"/tickets/{ticket.id}/sms/{failed.id}/resend"
        assert desk.post(url).status_code == 302
        assert desk.post(url).status_code == 302  # the double click
        first, copy = notes(ticket.id)
        assert (first.id, first.status) == (failed.id, "failed")
        assert (copy.status, copy.body, copy.to, copy.event) == (
            "sent", failed.body, failed.to, "admit")
        assert sends(twilio) == [429, 429, 201]
        page = desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)
        # sent again: no second copy of the failed one (the copy, the last SMS with the
        # customer's link, may go again if they lose it)
        assert f"/sms/{failed.id}/resend" not in page and page.count("data-sms-resend") == 1
        # a number that cannot get SMS (21211): nothing to send again, it would fail again
        wrong = notes(make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}}).id)[0]
        assert (wrong.status, wrong.error_code) == ("failed", "21211")
        page = desk.get(f"/tickets/{wrong.ticket_id}").get_data(as_text=True)
        assert "data-sms-resend" not in page
        desk.post(f"/tickets/{wrong.ticket_id}/sms/{wrong.id}/resend")
        assert len(notes(wrong.ticket_id)) == 1
        # the customer asked for no SMS: nothing goes again
        twilio.fail_next(2, 429)
        stopped = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "Z", "phone": "09131234567"}})
        sweep(stuck_after=timedelta(0))
        [refused] = notes(stopped.id)
        assert refused.status == "failed"
        from servicedesk.services.tickets import set_customer_sms
        set_customer_sms(stopped.customer_id, False)
        assert "data-sms-resend" not in desk.get(f"/tickets/{stopped.id}").get_data(
            as_text=True)
        desk.post(f"/tickets/{stopped.id}/sms/{refused.id}/resend")
        assert len(notes(stopped.id)) == 1

    def test_the_desk_corrects_a_mistyped_mobile_number_and_the_sms_go_to_it(
            self, app, twilio, make_ticket, users):
        """The number taken down is nobody's mobile (Twilio 21211): the desk writes the right
        one from the ticket's page; the failed SMS can be sent again, to it, and every SMS not
        sent yet of the customer's tickets goes to it. A bad number, the same one, or another
        customer's is refused and changes nothing."""
        from servicedesk.models import AuditLog

        from .test_reception import Staff
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        [wrong] = notes(ticket.id)
        assert (wrong.status, wrong.error_code) == ("failed", "21211")
        # a second ticket of the customer with an SMS waiting for its retry
        app.config["SMS_RETRY_INTERVALS"] = [3600]
        twilio.fail_next(1, 429)
        other = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        [waiting] = notes(other.id)
        assert waiting.status == "retry"
        # and one whose send may not have left (the sweep sends it again): to the right number
        third = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        db.session.execute(update(Notification).where(Notification.ticket_id == third.id)
                           .values(status="unknown"))
        db.session.commit()
        make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "Someone Else", "phone": "09351112233"}})
        desk = Staff(app, "reception1")
        url = f"/tickets/{ticket.id}/customer/phone"
        for typed, words in (("0912", "not a valid phone number"), ("+15005550001", "on file already"),
                             ("0935 111 2233", "another customer, Someone Else")):
            resp = desk.post(url + "?lang=en", {"phone": typed})
            assert resp.status_code == 302
            page = desk.get(f"/tickets/{ticket.id}?lang=en").get_data(as_text=True)
            assert words in page, typed
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).customer.phone == "+15005550001"
        assert "data-sms-resend" not in desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)

        assert desk.post(url, {"phone": "۰۹۱۲ ۷۷۷ ۸۸۹۹"}).status_code == 302
        db.session.expire_all()
        assert db.session.get(Ticket, other.id).customer.phone == "+989127778899"
        assert notes(other.id)[0].to == "+989127778899"  # the waiting one goes to it
        assert notes(third.id)[0].to == "+989127778899"
        page = desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)
        assert page.count("data-sms-resend") == 1  # the failed one may go again now
        assert desk.post(f"/tickets/{ticket.id}/sms/{wrong.id}/resend").status_code == 302
        first, copy = notes(ticket.id)
        assert (copy.to, copy.status, copy.body) == ("+989127778899", "sent", wrong.body)
        logged = db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.phone"))
        assert (logged.value_from, logged.value_to, logged.actor_name) == (
            {"mobile": "+15005***0001"}, {"mobile": "+98912***8899"}, "reception1")

    def test_two_desks_correcting_one_number_at_once_do_not_undo_each_other(
            self, app, twilio, make_ticket, users):
        """Two receptionists on one customer's call, each with the ticket open: the first
        correction stands; the second, from a page that showed the old number, is refused and
        says to what it was corrected, instead of putting its own over it."""
        from .test_reception import Staff
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        first, second = Staff(app, "reception1"), Staff(app, "reception1")
        page = second.get(f"/tickets/{ticket.id}").get_data(as_text=True)
        seen = re.search(r'name="seen" value="([^"]+)"', page).group(1)
        assert seen == "+15005550001"
        url = f"/tickets/{ticket.id}/customer/phone"
        first.post(url, {"phone": "09127778899", "seen": seen})
        resp = second.post(url + "?lang=en", {"phone": "09127778800", "seen": seen})
        assert resp.status_code == 302
        page = second.get(f"/tickets/{ticket.id}?lang=en").get_data(as_text=True)
        assert "number meanwhile, to 0912 777 8899" in page
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).customer.phone == "+989127778899"

    def test_a_stop_from_the_wrong_number_is_lifted_when_the_number_is_corrected(
            self, app, twilio, make_ticket, users):
        """The number taken down was a stranger's, who replied STOP (Twilio 21610): the
        customer was opted out by it. Corrected, the customer gets SMS again (the failed one
        can be sent to the right number); a stop the customer asked for at the desk stays."""
        from .test_reception import Staff
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550004", "language": "en"}})
        [stopped] = notes(ticket.id)
        assert (stopped.status, stopped.error_code) == ("failed", "21610")
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).customer.sms_opt_out is True
        desk = Staff(app, "reception1")
        resp = desk.post(f"/tickets/{ticket.id}/customer/phone?lang=en",
                         {"phone": "09127778899"})
        assert resp.status_code == 302
        page = desk.get(f"/tickets/{ticket.id}?lang=en").get_data(as_text=True)
        assert "the customer gets SMS again" in page
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).customer.sms_opt_out is False
        assert desk.post(f"/tickets/{ticket.id}/sms/{stopped.id}/resend").status_code == 302
        assert (notes(ticket.id)[-1].to, notes(ticket.id)[-1].status) == ("+989127778899",
                                                                           "sent")
        # the customer asks the desk for no SMS: a later correction keeps that
        svc.set_customer_sms(db.session.get(Ticket, ticket.id).customer_id, False,
                             by=users["reception"])
        assert desk.post(f"/tickets/{ticket.id}/customer/phone",
                         {"phone": "09127778800"}).status_code == 302
        db.session.expire_all()
        customer = db.session.get(Ticket, ticket.id).customer
        assert (customer.phone, customer.sms_opt_out) == ("+989127778800", True)

    def test_no_sms_asked_for_after_the_numbers_stop_is_kept_through_a_correction(
            self, app, twilio, make_ticket, users):
        """Stopped by a STOP (21610) on the number taken down, the customer then tells the desk
        they want no SMS at all: that is theirs now, and correcting the number does not start
        their SMS again."""
        from .test_reception import Staff
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550004", "language": "en"}})
        db.session.expire_all()
        customer_id = db.session.get(Ticket, ticket.id).customer_id
        assert db.session.get(Customer, customer_id).opted_out_by == "stop"
        svc.set_customer_sms(customer_id, False, by=users["reception"])
        db.session.expire_all()
        assert db.session.get(Customer, customer_id).opted_out_by == "staff"
        desk = Staff(app, "reception1")
        assert desk.post(f"/tickets/{ticket.id}/customer/phone",
                         {"phone": "09127778899"}).status_code == 302
        db.session.expire_all()
        customer = db.session.get(Customer, customer_id)
        assert (customer.phone, customer.sms_opt_out) == ("+989127778899", True)
        assert app.test_cli_runner().invoke(args=["verify-audit"]).exit_code == 0

    def test_who_stopped_the_sms_is_on_the_customer_and_verify_audit_ties_it_to_the_log(
            self, app, twilio, make_ticket, users):
        """The STOP reply, the desk and the customer's page each record who stopped the SMS
        on the customer (what a corrected number reads); verify-audit reports a customer
        whose switch says other than their last record (a STOP written over the customer's
        own stop would let a correction start their SMS again)."""
        from servicedesk.models import AuditLog
        stopped = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550004", "language": "en"}})
        asked = make_ticket("intake")
        svc.set_customer_sms(asked.customer_id, False, by=users["reception"])
        db.session.expire_all()
        by = dict(db.session.execute(select(Customer.id, Customer.opted_out_by)).all())
        assert (by[stopped.customer_id], by[asked.customer_id]) == ("stop", "staff")
        runner = app.test_cli_runner()
        result = runner.invoke(args=["verify-audit"])
        assert result.exit_code == 0 and "زنجیرهٔ ممیزی سالم است." in result.output, result.output
        db.session.execute(update(Customer).where(Customer.id == asked.customer_id)
                           .values(opted_out_by="stop"))
        db.session.commit()
        result = runner.invoke(args=["verify-audit"])
        assert result.exit_code == 1
        from servicedesk.i18n import localize_digits
        assert f"مشتری {localize_digits(asked.customer_id, 'fa')}: پیامک با stop قطع شده ولی " \
            "آخرین رکورد customer.sms" in result.output, result.output
        assert f"مشتری {localize_digits(stopped.customer_id, 'fa')}:" not in result.output
        # the customer starts them again from their page: the switch and the log agree again
        svc.set_customer_sms(asked.customer_id, True, how="link")
        svc.set_customer_sms(asked.customer_id, False, how="link")
        assert db.session.get(Customer, asked.customer_id).opted_out_by == "link"
        assert runner.invoke(args=["verify-audit"]).exit_code == 0
        assert db.session.scalar(select(AuditLog.value_to).where(
            AuditLog.action == "customer.sms").order_by(AuditLog.id.desc()).limit(1)) == {
                "sms": False, "how": "link"}

    def _sender_down(self, app):
        """The hand-off after the commit fails (nothing listens on this Redis): the SMS wait
        in the outbox, as after an outage."""
        app.config["REDIS_URL"] = "redis://127.0.0.1:6390/0"
        app.extensions.pop("servicedesk_rq_queue", None)

    def test_an_sms_asking_for_what_the_desk_already_recorded_is_cancelled_not_sent_later(
            self, app, twilio, api, make_ticket, users):
        """The SMS were down when the estimate went out; the customer phoned and the desk
        recorded the approval: the waiting "approve or decline" SMS is cancelled with the
        approval, saying why, and never goes; the receipt SMS, still true, still goes. Later
        the device is ready, then handed back before that SMS went: "ready to collect" is
        cancelled too."""
        from html import unescape

        def page(lang):
            with app.app_context():  # its own, as in production: the language is not kept
                return unescape(api["reception"].get(f"/tickets/{ticket.id}?lang={lang}")
                                .get_data(as_text=True))
        self._sender_down(app)
        ticket = make_ticket("diagnosis")
        svc.fire_event(ticket.id, "quote", actor_for("quote", users), dict(SAMPLE_DATA["quote"]))
        assert [(n.event, n.status) for n in notes(ticket.id)] == [
            ("admit", "pending"), ("send_to_repair", "pending"), ("quote", "pending")]
        answer = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events",
                                       json={"event": "approve", "channel": "phone"})
        assert answer.status_code == 200, answer.get_json()
        assert [(n["event"], n["status"]) for n in answer.get_json()["notifications"]] == [
            ("admit", "pending"), ("send_to_repair", "pending"), ("quote", "cancelled"),
            ("approve", "pending")]
        assert "Not sent: the estimate was answered before it went." in page("en")
        assert "فرستاده نشد: پیش از ارسال، جواب مشتری به برآورد هزینه ثبت شده بود." in page("fa")
        for event in ("finish", "deliver"):
            svc.fire_event(ticket.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))
        app.config["REDIS_URL"] = None  # the sender is back
        sweep(stuck_after=timedelta(0))
        assert [(n.event, n.status, n.error_message) for n in notes(ticket.id)] == [
            ("admit", "sent", None), ("send_to_repair", "sent", None),
            ("quote", "cancelled", "no longer due: the estimate was answered"),
            ("approve", "sent", None),
            ("finish", "cancelled", "no longer due: the device was handed back"),
            ("deliver", "sent", None)]
        assert len(sends(twilio)) == 4
        assert "Not sent: the device was handed back before it went." in page("en")

    def test_a_revised_estimate_cancels_the_waiting_sms_of_the_old_one(
            self, app, twilio, make_ticket, users):
        """The first estimate's SMS is still waiting when the technician revises it: only the
        new one goes (the old asks to approve a total that no longer stands)."""
        self._sender_down(app)
        ticket = make_ticket("estimate")
        lines = [{**SAMPLE_DATA["quote"]["lines"][0], "unit_price": 9_000_000}]
        svc.fire_event(ticket.id, "quote", actor_for("quote", users), {"lines": lines})
        quotes = [n for n in notes(ticket.id) if n.event == "quote"]
        assert [(n.status, n.error_message) for n in quotes] == [
            ("cancelled", "no longer due: a new estimate replaced it"), ("pending", None)]
        app.config["REDIS_URL"] = None
        sweep(stuck_after=timedelta(0))
        assert [n.status for n in notes(ticket.id) if n.event == "quote"] == [
            "cancelled", "sent"]

    def test_an_sms_the_sender_held_when_its_wait_ended_is_cancelled_at_its_send(
            self, app, twilio, make_ticket, users):
        """The estimate's SMS was in the sender's hands (held for the morning) when the
        customer's answer came by phone: at its next attempt it is cancelled, not sent."""
        self._sender_down(app)
        ticket = make_ticket("estimate")
        [quote] = [n for n in notes(ticket.id) if n.event == "quote"]
        db.session.execute(update(Notification).where(Notification.id == quote.id)
                           .values(status="sending"))
        db.session.commit()
        svc.fire_event(ticket.id, "approve", actor_for("approve", users), {"channel": "phone"})
        assert notes(ticket.id)[2].status == "sending"  # not the lifecycle's to touch
        db.session.execute(update(Notification).where(Notification.id == quote.id)
                           .values(status="retry", next_attempt_at=None))
        db.session.commit()
        app.config["REDIS_URL"] = None
        assert deliver(quote.id) == "cancelled"
        assert notes(ticket.id)[2].error_message == "no longer due: the estimate was answered"
        assert twilio.requests == []

    def test_the_desk_sends_the_last_sms_with_the_customers_link_again(
            self, app, twilio, make_ticket, users):
        """A customer calls: they lost the SMS with the estimate to approve. The desk sends
        the last SMS carrying their page's link again (once a click); older SMS that went
        are not offered."""
        from .test_reception import Staff
        ticket = make_ticket("estimate")
        rows = notes(ticket.id)
        link = f"/t/{ticket.public_token}"
        with_link = [n for n in rows if link in n.body]
        assert len(with_link) >= 2 and all(n.status == "sent" for n in rows)
        last = with_link[-1]
        desk = Staff(app, "reception1")
        page = desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)
        assert page.count("data-sms-resend") == 1
        assert f"/sms/{last.id}/resend" in page
        older = with_link[0]
        desk.post(f"/tickets/{ticket.id}/sms/{older.id}/resend")
        assert len(notes(ticket.id)) == len(rows)  # not the older one
        assert desk.post(f"/tickets/{ticket.id}/sms/{last.id}/resend").status_code == 302
        assert desk.post(f"/tickets/{ticket.id}/sms/{last.id}/resend").status_code == 302
        now = notes(ticket.id)
        assert len(now) == len(rows) + 1
        assert (now[-1].body, now[-1].status, now[-1].event) == (last.body, "sent", last.event)
        page = desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)
        assert f"/sms/{now[-1].id}/resend" in page and page.count("data-sms-resend") == 1


# --- rq on the real Redis, real worker processes -----------------------------------------------

def worker_environment(app, app_config, database_url) -> dict:
    """The environment of a `flask worker` process on the test's database, Redis queue and fake
    Twilio (as production passes it: the variables of DESIGN section 4)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVICEDESK_", "TWILIO_"))}
    env.update({
        "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": app_config["TWILIO_ACCOUNT_SID"],
        "TWILIO_AUTH_TOKEN": app_config["TWILIO_AUTH_TOKEN"],
        "TWILIO_FROM_NUMBER": app_config["TWILIO_FROM_NUMBER"],
        "TWILIO_API_BASE_URL": app_config["TWILIO_API_BASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"], "PUBLIC_BASE_URL": "http://shop.test",
        "SERVICEDESK_RQ_QUEUE": app_config["RQ_QUEUE"],
        "SERVICEDESK_SMS_RETRY_INTERVALS": "[0, 0, 0, 0, 0]",
        "SERVICEDESK_INSTANCE_NOTE": "worker", "NO_PROXY": "127.0.0.1,localhost",
    })
    return env


def start_worker(env: dict, burst: bool = True, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    if burst:
        cmd.append("--burst")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kw)


def run_burst(env: dict) -> str:
    proc = start_worker(env)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    return out.decode(errors="replace")


def redis_app_config(fake_twilio) -> dict:
    """The settings of an app whose SMS go through rq on the test Redis (a queue of its own)
    to the fake Twilio: a `flask worker` process started on worker_environment sends them."""
    return {**twilio_config(fake_twilio), "REDIS_URL": REDIS_URL,
            "RQ_QUEUE": f"sd-test-{uuid.uuid4().hex[:8]}"}


class TestInProcessRetry:
    """The embedded default's sender thread (no Redis): a send refused for a while is tried
    again when its retry is due, not held back to the next sweep (here an hour away)."""

    @pytest.fixture
    def app_config(self, fake_twilio):
        return {**twilio_config(fake_twilio), "NOTIFY_INPROCESS": "thread",
                "SWEEP_EVERY": 3600, "INPROCESS_CLOCK": False,
                "SMS_RETRY_INTERVALS": [1, 1]}

    @pytest.fixture
    def sender(self, app):
        sender = app.extensions["servicedesk_sender"]
        yield sender
        sender.stop()

    @staticmethod
    def settled(read, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            value = read()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def test_a_throttled_sms_is_sent_when_its_retry_is_due(self, app, sender, twilio,
                                                           make_ticket):
        twilio.fail_next(2, 429)  # the first try and the first retry
        ticket = make_ticket("intake")
        row = self.settled(lambda: [n for n in notes(ticket.id) if n.status == "sent"])
        assert row and row[0].attempts == 3, [(n.status, n.attempts) for n in notes(ticket.id)]
        assert sends(twilio) == [429, 429, 201]

    def test_a_webhook_refused_for_a_while_is_posted_again_when_due(self, app, sender,
                                                                    make_ticket):
        from servicedesk.models import WebhookDelivery
        from servicedesk.services import webhooks as hooks

        from .fake_webhook import FakeWebhook
        receiver = FakeWebhook().start()
        try:
            app.config["WEBHOOK_RETRY_INTERVALS"] = [1, 1]
            _made, receiver.secret = hooks.save_endpoint(
                None, name="accounting", url=receiver.url, events=None, every_event=True,
                active=True)
            receiver.fail_next(1, 503)
            make_ticket("intake")

            def sent():
                db.session.expire_all()
                return db.session.scalars(select(WebhookDelivery).where(
                    WebhookDelivery.status == "sent")).all()
            assert self.settled(sent), [r["status"] for r in receiver.received]
            assert [r["status"] for r in receiver.received] == [503, 204]
        finally:
            receiver.stop()


class TestRq:
    @pytest.fixture
    def queue_name(self):
        return f"sd-test-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def app_config(self, fake_twilio, queue_name):
        return {**twilio_config(fake_twilio), "REDIS_URL": REDIS_URL, "RQ_QUEUE": queue_name,
                "SMS_RETRY_INTERVALS": [0, 0, 0, 0, 0]}

    @pytest.fixture
    def worker_env(self, app, app_config, database_url):
        return worker_environment(app, app_config, database_url)

    def worker(self, env, burst=True, **kw):
        return start_worker(env, burst, **kw)

    def run_burst(self, env):
        return run_burst(env)

    def test_full_life_each_sms_once_through_rq(self, app, twilio, make_ticket, users,
                                               worker_env):
        ticket = make_ticket("intake")
        # the worker runs before the customer answers the estimate and before the hand-back:
        # an SMS asking for what is done already would be cancelled, not sent (superseded)
        for steps in (LIFE[:2], LIFE[2:4], LIFE[4:]):
            walk(ticket, users, steps)
            assert {r.status for r in notes(ticket.id)} <= {"pending", "sent"}
            assert notes(ticket.id)[-1].status == "pending"  # queued, not sent inline
            self.run_burst(worker_env)
        got = twilio.wait_for(len(LIFE) + 1)
        assert len(got) == len(LIFE) + 1
        assert len({m["body"] for m in got}) == len(got)
        rows = notes(ticket.id)
        assert [r.status for r in rows] == ["sent"] * (len(LIFE) + 1)
        self.run_burst(worker_env)  # nothing left: a second worker sends nothing again
        assert len(twilio.messages) == len(LIFE) + 1

    @pytest.mark.parametrize("status,failures", [(503, 2), (429, 1)])
    def test_transient_failures_are_retried_to_exactly_one_sms(
            self, app, twilio, make_ticket, worker_env, status, failures):
        twilio.fail_next(failures, status)
        ticket = make_ticket("intake")
        self.run_burst(worker_env)
        assert len(twilio.messages) == 1
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("sent", failures + 1)
        statuses = [r["status"] for r in twilio.requests if r["method"] == "POST"]
        assert statuses == [status] * failures + [201]

    def test_a_second_job_for_a_waiting_retry_sends_nothing(
            self, app, twilio, make_ticket, worker_env):
        app.config["SMS_RETRY_INTERVALS"] = [3600, 3600]
        worker_env["SERVICEDESK_SMS_RETRY_INTERVALS"] = "[3600, 3600]"
        twilio.fail_next(1, 429)
        ticket = make_ticket("intake")
        nid = notes(ticket.id)[0].id
        # The job the sweep queues for a due retry, here queued while rq's own retry of the
        # first job waits its hour: two chains for one message.
        dispatch([nid], attempts={nid: 1})
        self.run_burst(worker_env)
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("retry", 1)
        assert row.next_attempt_at > utcnow() + timedelta(minutes=59)
        assert sends(twilio) == [429]

    def test_permanent_failure_is_not_retried(self, app, twilio, make_ticket, worker_env):
        ticket = make_ticket("intake", intake={**INTAKE, "customer": {
            "name": "X", "phone": "+15005550001", "language": "en"}})
        self.run_burst(worker_env)
        row = notes(ticket.id)[0]
        assert (row.status, row.error_code, row.attempts) == ("failed", "21211", 1)
        assert len([r for r in twilio.requests if r["method"] == "POST"]) == 1

    def test_redis_down_at_commit_then_the_sweep_delivers(
            self, app, twilio, make_ticket, worker_env):
        app.config["REDIS_URL"] = "redis://127.0.0.1:6390/0"  # nothing listens there
        app.extensions.pop("servicedesk_rq_queue", None)
        ticket = make_ticket("intake")  # the intake itself succeeds
        assert db.session.get(Ticket, ticket.id).state == "intake"
        assert notes(ticket.id)[0].status == "pending"
        self.run_burst(worker_env)
        assert twilio.messages == []  # never reached the queue
        app.config["REDIS_URL"] = REDIS_URL
        app.extensions.pop("servicedesk_rq_queue", None)
        assert sweep(stuck_after=timedelta(0)) == 1
        self.run_burst(worker_env)
        assert len(twilio.wait_for(1)) == 1
        assert notes(ticket.id)[0].status == "sent"

    def test_worker_killed_mid_send_is_recovered_by_the_sweep(
            self, app, twilio, make_ticket, worker_env):
        twilio.stall_next(1, seconds=20)
        ticket = make_ticket("intake")
        proc = self.worker(worker_env, burst=False)
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                if any(r["status"] is None for r in twilio.requests):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("the worker never reached Twilio")
            assert notes(ticket.id)[0].status == "sending"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert notes(ticket.id)[0].status == "sending"  # stuck: nobody will finish it
        assert sweep(stuck_after=timedelta(0)) == 1
        self.run_burst(worker_env)
        assert len(twilio.wait_for(1)) == 1
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("sent", 2)


def test_the_console_sms_log_hides_the_phone_and_the_link_token(make_ticket, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="servicedesk.notifications.backends")
    ticket = make_ticket("intake")
    logged = "\n".join(r.getMessage() for r in caplog.records if "SMS (console)" in r.getMessage())
    sms = ticket.notifications[0]
    assert sms.status == "sent" and f"/t/{ticket.public_token}" in sms.body  # stored whole
    assert "/t/***" in logged and ticket.public_token not in logged
    assert "+98912***4567" in logged and "+989121234567" not in logged


def test_another_branchs_desk_cannot_send_an_sms_again_nor_correct_the_number(
        app, make_ticket):
    """A receptionist of another branch reads the ticket (a customer asking there) but does not
    act on it: no 'Send it again' nor 'Correct the mobile number' on the page, and a resend
    posted anyway is refused and writes no copy (correct_phone already refused it)."""
    from servicedesk.models import Branch
    from servicedesk.services.people import create_user

    from .conftest import PASSWORD
    from .test_reception import Staff
    ticket = make_ticket("intake")
    [sms] = notes(ticket.id)
    db.session.execute(update(Notification).where(Notification.id == sms.id)
                       .values(status="failed", error_code="30003"))
    north = Branch(name="North", code="N", active=True)
    db.session.add(north)
    db.session.commit()
    create_user("northdesk", "reception", PASSWORD, branch=north)
    north_desk = Staff(app, "northdesk")
    page = north_desk.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "data-sms-resend" not in page and "data-correct-phone" not in page
    resp = north_desk.post(f"/tickets/{ticket.id}/sms/{sms.id}/resend")
    assert resp.status_code == 302
    assert len(notes(ticket.id)) == 1  # no copy sent from the other branch
    # the ticket's own desk still may
    own = Staff(app, "reception1")
    page = own.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "data-sms-resend" in page and "data-correct-phone" in page
    own.post(f"/tickets/{ticket.id}/sms/{sms.id}/resend")
    assert len(notes(ticket.id)) == 2
