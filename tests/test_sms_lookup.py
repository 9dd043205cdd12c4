"""An SMS whose send's outcome is unknown (Twilio's answer lost, or its sender killed mid-send)
is looked up at Twilio before it is sent again: the customer gets it once. The real twilio SDK
over HTTP to the fake Twilio; real rq workers on the real Redis for the killed one."""
import os
import signal
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import update

from servicedesk.extensions import db
from servicedesk.models import Notification, utcnow
from servicedesk.notifications.delivery import FOUND_NOTE, LOOKUP_FAILED
from servicedesk.notifications.reasons import explain
from servicedesk.notifications.sweep import sweep
from servicedesk.services import tickets as svc

from .conftest import PATH_TO, SAMPLE_DATA, actor_for, twilio_config
from .test_sms import REDIS_URL, notes, run_burst, sends, start_worker, walk, worker_environment


def methods(twilio) -> list:
    """What the sender asked Twilio, in order: POST a message, GET the list of messages."""
    return [r["method"] for r in twilio.requests]


def reason(row, lang):
    with force_locale(lang):
        return explain(row.status, row.error_code, row.error_message)


def lost_answer(app, twilio, how: str) -> None:
    """The next send reaches Twilio, which takes the message, but its answer is lost."""
    if how == "timeout":
        app.config["TWILIO_TIMEOUT"] = 1
        app.extensions.pop("servicedesk_sms_backend", None)
        twilio.delay_next(1, seconds=3)  # taken; the answer comes after the client gave up
    else:
        twilio.fail_next(1, 500, store=True)  # taken, then "500"


class TestInProcess:
    @pytest.fixture
    def app_config(self, fake_twilio):
        return {**twilio_config(fake_twilio), "SMS_RETRY_INTERVALS": [0, 0]}

    @pytest.mark.parametrize("how", ["timeout", "500"])
    def test_an_sms_twilio_took_whose_answer_was_lost_is_not_sent_twice(
            self, app, twilio, make_ticket, how):
        """"Your device is received": Twilio took it but its answer never came. After the
        wait the sweep finds it at Twilio: one SMS, the row sent with Twilio's sid."""
        lost_answer(app, twilio, how)
        ticket = make_ticket("intake")
        assert notes(ticket.id)[0].status == "unknown"
        waiting = reason(notes(ticket.id)[0], "en")
        sweep(stuck_after=timedelta(0))
        [msg] = twilio.messages
        row = notes(ticket.id)[0]
        assert (row.status, row.provider_id, row.attempts) == ("sent", msg["sid"], 1)
        assert row.error_message == FOUND_NOTE and row.unknown_since is None
        assert methods(twilio) == ["POST", "GET"]
        assert reason(row, "en") == ("Twilio's answer was lost, but the message was found at "
                                     "Twilio afterwards: it was not sent again.")
        assert "دوباره فرستاده نشد" in reason(row, "fa")
        sweep(stuck_after=timedelta(0))  # settled: nothing more goes
        assert methods(twilio) == ["POST", "GET"]
        assert waiting == ("Twilio did not say whether it took the message: it is asked "
                           "before the message is sent again, so the customer gets it once.")

    def test_one_twilio_never_got_is_sent_again_once(self, app, twilio, make_ticket):
        """The 500 came before Twilio stored anything: asked, Twilio has no such message, so it
        goes again, once."""
        twilio.fail_next(1, 500)
        ticket = make_ticket("intake")
        assert notes(ticket.id)[0].status == "unknown"
        sweep(stuck_after=timedelta(0))
        [msg] = twilio.messages
        row = notes(ticket.id)[0]
        assert (row.status, row.provider_id, row.attempts) == ("sent", msg["sid"], 2)
        assert row.error_message is None
        assert methods(twilio) == ["POST", "GET", "POST"]
        assert sends(twilio) == [500, 201]

    @pytest.mark.parametrize("failure", [500, 401, "timeout"])
    def test_when_twilio_cannot_be_asked_nothing_is_sent_blindly(
            self, app, twilio, make_ticket, failure):
        """Asking Twilio fails (down, the token just rotated, no answer in time): the SMS is
        not sent again on a guess; it waits as another unknown outcome and is asked about
        again; once Twilio answers, the message it took is found."""
        twilio.fail_next(1, 500, store=True)
        ticket = make_ticket("intake")
        if failure == "timeout":
            app.config["TWILIO_TIMEOUT"] = 1
            app.extensions.pop("servicedesk_sms_backend", None)
            twilio.delay_list_next(1, seconds=3)
        else:
            twilio.fail_list_next(1, failure)
        sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("unknown", 2)
        assert row.error_message.startswith(LOOKUP_FAILED)
        assert len(twilio.messages) == 1 and methods(twilio) == ["POST", "GET"]
        assert reason(row, "en").startswith("Twilio did not say whether it took the message, "
                                            "nor could it be asked since")
        assert "فقط اگر" in reason(row, "fa")
        sweep(stuck_after=timedelta(0))  # Twilio answers again
        [msg] = twilio.messages
        row = notes(ticket.id)[0]
        assert (row.status, row.provider_id, row.attempts) == ("sent", msg["sid"], 2)
        assert methods(twilio) == ["POST", "GET", "GET"]

    def test_twilio_never_answering_the_question_ends_failed_with_the_reason(
            self, app, twilio, make_ticket):
        twilio.fail_next(1, 500, store=True)
        twilio.fail_list_next(5, 500)
        ticket = make_ticket("intake")
        for _ in range(4):
            sweep(stuck_after=timedelta(0))
        row = notes(ticket.id)[0]
        assert (row.status, row.attempts) == ("failed", 3)
        assert row.error_message.startswith(
            "gave up after 3 attempts; the last outcome was unknown: could not ask Twilio "
            "whether it went")
        assert reason(row, "en") == ("The SMS service did not confirm it after 3 attempts: it "
                                     "may have arrived.")
        assert len(twilio.messages) == 1 and methods(twilio) == ["POST", "GET", "GET"]

    def test_a_row_left_sending_by_a_dead_sender_is_found_not_sent_twice(
            self, app, twilio, make_ticket):
        """The worker was killed while it waited for Twilio's answer: the row stays
        "sending", as a killed worker leaves it; Twilio had taken the message."""
        twilio.fail_next(1, 500, store=True)
        ticket = make_ticket("intake")
        nid = notes(ticket.id)[0].id
        db.session.execute(update(Notification).where(Notification.id == nid).values(
            status="sending", error_code=None, error_message=None, unknown_since=None,
            next_attempt_at=None, updated_at=utcnow() - timedelta(minutes=5)))
        db.session.commit()
        sweep()
        [msg] = twilio.messages
        row = notes(ticket.id)[0]
        assert (row.status, row.provider_id, row.attempts) == ("sent", msg["sid"], 1)
        assert methods(twilio) == ["POST", "GET"]

    def test_a_message_still_queued_at_twilio_is_found_past_the_first_pages(
            self, app, twilio, make_ticket, users):
        """The customer has had SMS from the shop before, and Twilio has not sent the lost
        one yet (no date sent: it lists after the sent ones): every page is read."""
        ticket = make_ticket("intake")
        walk(ticket, users, PATH_TO["closed"][:3])
        twilio.mark_sent()
        twilio.page_size_cap = 2
        earlier = len(twilio.messages)
        assert earlier >= 4
        lost_answer(app, twilio, "500")
        event = PATH_TO["closed"][3]
        svc.fire_event(ticket.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))
        assert notes(ticket.id)[-1].status == "unknown"
        sweep(stuck_after=timedelta(0))
        assert len(twilio.messages) == earlier + 1
        row = notes(ticket.id)[-1]
        assert (row.status, row.provider_id) == ("sent", twilio.messages[-1]["sid"])
        assert methods(twilio).count("GET") > 2  # past the first pages

    def test_the_same_text_another_row_already_holds_is_not_taken_for_this_one(
            self, app, twilio, make_ticket):
        """The desk sends the customer's last SMS again (they lost it); that copy's answer
        is lost before Twilio stored it. The first SMS, same text and number minutes ago, is
        the other row's: the copy goes."""
        from .test_reception import Staff
        ticket = make_ticket("intake")
        [first] = notes(ticket.id)
        twilio.fail_next(1, 500)
        desk = Staff(app, "reception1")
        assert desk.post(f"/tickets/{ticket.id}/sms/{first.id}/resend").status_code == 302
        first, copy = notes(ticket.id)
        assert copy.body == first.body and copy.status == "unknown"
        sweep(stuck_after=timedelta(0))
        first, copy = notes(ticket.id)
        assert [m["sid"] for m in twilio.messages] == [first.provider_id, copy.provider_id]
        assert (copy.status, copy.attempts) == ("sent", 2)
        assert methods(twilio) == ["POST", "POST", "GET", "POST"]  # asked, then sent

    def test_a_messaging_service_sms_is_found_by_its_service(self, app, twilio, make_ticket):
        app.config.update(TWILIO_FROM_NUMBER=None,
                          TWILIO_MESSAGING_SERVICE_SID="MG" + "a" * 32)
        app.extensions.pop("servicedesk_sms_backend", None)
        twilio.fail_next(1, 500, store=True)
        ticket = make_ticket("intake")
        sweep(stuck_after=timedelta(0))
        [msg] = twilio.messages
        row = notes(ticket.id)[0]
        assert msg["messaging_service_sid"] == "MG" + "a" * 32
        assert (row.status, row.provider_id) == ("sent", msg["sid"])
        assert "From" not in twilio.requests[-1]["query"]


class TestRq:
    @pytest.fixture
    def app_config(self, fake_twilio):
        import uuid
        return {**twilio_config(fake_twilio), "REDIS_URL": REDIS_URL,
                "RQ_QUEUE": f"sd-test-{uuid.uuid4().hex[:8]}",
                "SMS_RETRY_INTERVALS": [0, 0, 0, 0, 0]}

    def test_a_worker_killed_after_twilio_took_the_sms_sends_no_second(
            self, app, twilio, make_ticket, app_config, database_url):
        """The worker process is killed while it waits for Twilio's answer, after Twilio
        took the message: the sweep finds it at Twilio, and the next worker sends nothing."""
        env = worker_environment(app, app_config, database_url)
        twilio.delay_next(1, seconds=30)  # taken at once, the answer held back
        ticket = make_ticket("intake")
        proc = start_worker(env, burst=False)
        try:
            twilio.wait_for(1, timeout=60)
            assert notes(ticket.id)[0].status == "sending"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert notes(ticket.id)[0].status == "sending"
        assert sweep(stuck_after=timedelta(0)) == 1
        run_burst(env)
        [msg] = twilio.messages
        row = notes(ticket.id)[0]
        assert (row.status, row.provider_id, row.attempts) == ("sent", msg["sid"], 1)
        assert methods(twilio) == ["POST", "GET"]


def test_an_rq_job_lives_as_long_as_its_lookup_and_send_may(app, fake_twilio):
    """With Twilio a job may read the lookup's pages before it sends: rq must not kill it
    meanwhile (the row would be left "sending")."""
    import uuid

    from servicedesk.notifications.backends import TwilioBackend
    from servicedesk.notifications.queue import enqueue, get_queue
    app.config.update(twilio_config(fake_twilio), REDIS_URL=REDIS_URL, TWILIO_TIMEOUT=10,
                      RQ_QUEUE=f"sd-test-{uuid.uuid4().hex[:8]}")
    queue = get_queue(app)
    try:
        enqueue(app, [1])
        assert queue.fetch_job(queue.job_ids[0]).timeout == (
            20 * (1 + TwilioBackend.LOOKUP_PAGES) + 60)
    finally:
        queue.empty()
        queue.delete()
