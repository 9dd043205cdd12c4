"""The generic HTTP gateway backend (the shape of Iranian SMS panels), against a local panel."""
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select, update

from servicedesk.extensions import db
from servicedesk.models import Notification, utcnow
from servicedesk.notifications.delivery import deliver
from servicedesk.notifications.sweep import sweep

from .conftest import INTAKE


class Panel:
    """A tiny SMS panel: records what it gets; answers with scripted statuses."""

    def __init__(self):
        self.received = []
        self.script = []
        self.bodies = []  # answers to give instead of {"messageid": ...}
        self.gate = None  # a threading.Event the next request waits for (a slow panel)
        self.arrived = threading.Event()
        panel = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, params):
                gate, panel.gate = panel.gate, None
                panel.arrived.set()
                if gate is not None:
                    gate.wait(30)
                status = panel.script.pop(0) if panel.script else 200
                answer = panel.bodies.pop(0) if panel.bodies else None
                if status == 200:
                    panel.received.append(params)
                body = json.dumps(answer if answer is not None else
                                  {"messageid": f"m{len(panel.received)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer({k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                self._answer({k: v[0] for k, v in parse_qs(raw).items()})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def panel():
    p = Panel()
    yield p
    p.server.shutdown()


@pytest.fixture
def app_config(panel):
    panel.received.clear()
    panel.script.clear()
    panel.bodies.clear()
    panel.gate = None
    panel.arrived.clear()
    return {"SMS_BACKEND": "http", "SMS_HTTP_URL": panel.url, "SMS_HTTP_METHOD": "GET",
            "SMS_HTTP_TO_PARAM": "receptor", "SMS_HTTP_MESSAGE_PARAM": "message",
            "SMS_HTTP_STATIC_PARAMS": '{"apikey": "k-123", "sender": "10004346"}',
            "SMS_HTTP_ID_FIELD": "messageid"}


def rows(ticket_id):
    db.session.expire_all()
    return db.session.scalars(select(Notification).where(Notification.ticket_id == ticket_id)
                              .order_by(Notification.id)).all()


def test_panel_gets_receiver_text_and_static_parameters(app, panel, make_ticket):
    ticket = make_ticket("intake")
    assert len(panel.received) == 1
    sent = panel.received[0]
    assert sent["receptor"] == "+989121234567"
    assert sent["apikey"] == "k-123" and sent["sender"] == "10004346"
    assert ticket.public_token in sent["message"]
    row = rows(ticket.id)[0]
    assert (row.status, row.provider_id) == ("sent", "m1")


def test_panel_unavailable_is_retried_and_a_rejection_is_final(app, panel, make_ticket):
    panel.script[:] = [503]
    ticket = make_ticket("intake")
    row = rows(ticket.id)[0]
    assert row.status == "retry" and row.next_attempt_at > utcnow()
    assert panel.received == []
    assert deliver(row.id) == "skipped"  # not due yet
    row.next_attempt_at = utcnow() - timedelta(seconds=1)  # its interval has passed
    db.session.commit()
    assert deliver(row.id) == "sent"
    assert rows(ticket.id)[0].status == "sent" and len(panel.received) == 1

    panel.script[:] = [400]
    other = make_ticket("intake", intake={**INTAKE, "customer": {"name": "B",
                                                                 "phone": "09351234567"}})
    row = rows(other.id)[0]
    assert (row.status, row.error_code) == ("failed", "400")


def test_a_row_is_sent_once_however_often_it_is_handed_over(app, panel, make_ticket):
    ticket = make_ticket("intake")
    row = rows(ticket.id)[0]
    assert deliver(row.id) == "skipped"  # already sent: the claim refuses it
    from servicedesk.notifications.outbox import dispatch
    dispatch([row.id, row.id])
    assert len(panel.received) == 1


def test_a_sender_that_cannot_work_gives_up_after_its_retries(app, panel, make_ticket):
    del app.config["SMS_HTTP_URL"]  # every send now raises KeyError before reaching a panel
    app.config["SMS_RETRY_INTERVALS"] = [0, 600]
    ticket = make_ticket("intake")
    row = rows(ticket.id)[0]
    assert (row.status, row.attempts) == ("retry", 1)
    assert row.error_message == "KeyError: 'SMS_HTTP_URL'"
    deliver(row.id)
    row = rows(ticket.id)[0]
    assert (row.status, row.attempts) == ("retry", 2)
    assert row.next_attempt_at > utcnow() + timedelta(seconds=590)  # waits longer each time
    row.next_attempt_at = utcnow() - timedelta(seconds=1)  # ten minutes on
    db.session.commit()
    deliver(row.id)
    row = rows(ticket.id)[0]
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.error_message == "gave up after 3 attempts: KeyError: 'SMS_HTTP_URL'"
    assert sweep(stuck_after=timedelta(0)) == 0
    assert rows(ticket.id)[0].attempts == 3
    assert panel.received == []


def test_a_panel_that_answers_a_refusal_with_200_is_not_counted_as_sent(app, panel, make_ticket):
    """Panels answer "no credit" or "sender line blocked" with 200 and their own status: with
    no message id in it, the SMS was not sent, and the shop reads the panel's words."""
    from flask_babel import force_locale
    from servicedesk.notifications.reasons import explain
    panel.bodies[:] = [{"return": {"status": 418, "message": "اعتبار کافی نیست"}}]
    ticket = make_ticket("intake")
    row = rows(ticket.id)[0]
    assert (row.status, row.provider_id) == ("failed", None)
    assert "اعتبار کافی نیست" in row.error_message
    with force_locale("en"):
        assert explain(row.status, row.error_code, row.error_message) == (
            "The SMS panel did not take the message (its credit, sender line or settings?). "
            'It answered: {"return": {"status": 418, "message": "اعتبار کافی نیست"}}')
    assert sweep(stuck_after=timedelta(0)) == 0  # not resent: a wrong field would resend all


def test_a_panels_message_id_may_sit_deeper_in_its_answer(app, panel, make_ticket):
    app.config["SMS_HTTP_ID_FIELD"] = "entries.0.messageid"
    panel.bodies[:] = [{"return": {"status": 200}, "entries": [{"messageid": 8792343}]}]
    ticket = make_ticket("intake")
    assert (rows(ticket.id)[0].status, rows(ticket.id)[0].provider_id) == ("sent", "8792343")


@pytest.mark.parametrize("to_format, receptor", [
    ("national", "09121234567"), ("international", "989121234567"), (None, "+989121234567")])
def test_the_receivers_number_goes_in_the_form_the_panel_takes(app, panel, make_ticket,
                                                              to_format, receptor):
    """Many Iranian panels refuse +98... (every SMS would fail): the shop says which form."""
    app.config["SMS_HTTP_TO_FORMAT"] = to_format
    make_ticket("intake", intake={**INTAKE, "customer": {"name": "N", "phone": "۰۹۱۲ ۱۲۳ ۴۵۶۷"}})
    assert [p["receptor"] for p in panel.received] == [receptor]


def test_a_receivers_form_the_backend_does_not_know_is_refused_at_setup(app):
    from servicedesk.notifications.backends import backend_from_config
    with pytest.raises(ValueError, match="SMS_HTTP_TO_FORMAT"):
        backend_from_config({**app.config, "SMS_HTTP_TO_FORMAT": "0098"})


def test_a_name_that_does_not_resolve_is_a_send_that_never_left(app):
    """The shop's DNS down: "Temporary failure in name resolution" is no "may have arrived";
    the SMS is retried as not sent."""
    import socket

    import requests
    from urllib3.connection import HTTPConnection
    from urllib3.exceptions import MaxRetryError, NameResolutionError
    from servicedesk.notifications.backends import _connect_phase
    conn = HTTPConnection("sms.example.ir", 443)
    down = requests.ConnectionError(MaxRetryError(None, "/send", NameResolutionError(
        "sms.example.ir", conn, socket.gaierror(-3, "Temporary failure in name resolution"))))
    assert _connect_phase(down)


def test_sms_refused_while_the_panels_credit_ran_out_go_after_the_top_up(app, panel,
                                                                        make_ticket):
    """The most common failure of a shop's panel: no credit left (402; Kavenegar answers 418).
    The SMS of the meantime wait within their attempts, not fail for good."""
    from flask_babel import force_locale
    from servicedesk.notifications.reasons import explain
    app.config["SMS_RETRY_INTERVALS"] = [0, 0]
    panel.script[:] = [418]
    panel.bodies[:] = [{"return": {"status": 418, "message": "اعتبار کافی نیست"}}]
    ticket = make_ticket("intake")
    row = rows(ticket.id)[0]
    assert (row.status, row.error_code) == ("retry", "418")
    assert "اعتبار کافی نیست" in row.error_message
    with force_locale("en"):
        assert explain(row.status, row.error_code, row.error_message) == (
            "The SMS panel's credit has run out: top it up. It is tried again a few times "
            "meanwhile.")
    sweep(stuck_after=timedelta(0))  # topped up meanwhile: the panel takes it
    row = rows(ticket.id)[0]
    assert (row.status, row.attempts, row.provider_id) == ("sent", 2, "m1")
    assert len(panel.received) == 1


def test_a_send_still_waiting_for_a_slow_panel_is_not_taken_for_stuck_and_sent_twice(
        app, panel, make_ticket):
    """The panel is given 120 s to answer (SERVICEDESK_SMS_HTTP_TIMEOUT): a send waiting 150 s
    for its answer is still in progress, and the sweep (every minute) leaves it alone: the
    customer gets the SMS once. Past what a send can last, a row left "sending" (its sender
    died) is sent again as before."""
    def sender_down():  # the hand-off after the commit fails: the SMS waits in the outbox
        app.config["REDIS_URL"] = "redis://127.0.0.1:6390/0"
        app.extensions.pop("servicedesk_rq_queue", None)

    app.config["SMS_HTTP_TIMEOUT"] = 120
    sender_down()
    ticket = make_ticket("intake")
    other = make_ticket("intake", intake={**INTAKE, "customer": {"name": "B",
                                                                 "phone": "09351234567"}})
    [row] = rows(ticket.id)
    assert row.status == "pending"
    app.config["REDIS_URL"] = None
    gate = panel.gate = threading.Event()

    def send():
        with app.app_context():
            deliver(row.id)
    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert panel.arrived.wait(10)
        db.session.execute(update(Notification).where(Notification.id == row.id)
                           .values(updated_at=utcnow() - timedelta(seconds=150)))
        db.session.commit()
        sweep()
        assert rows(ticket.id)[0].status == "sending"
        assert panel.received == []
    finally:
        gate.set()
        sender.join(30)
    assert rows(ticket.id)[0].status == "sent"
    assert len(panel.received) == 1

    # a row its sender left "sending" (it died) past what a send can last goes again
    db.session.execute(update(Notification).where(Notification.ticket_id == other.id)
                       .values(status="sending", attempts=1,
                               updated_at=utcnow() - timedelta(seconds=301)))
    db.session.commit()
    sweep()
    assert rows(other.id)[0].status == "sent" and len(panel.received) == 2


def test_an_rq_job_lives_as_long_as_its_send_may(app):
    """rq kills a job past its timeout (60 s by default): with a panel given 120 s, a job
    killed while the send waits would leave it to the sweep, to be sent twice."""
    import uuid

    from servicedesk.notifications.queue import enqueue, get_queue
    app.config.update(REDIS_URL="redis://127.0.0.1:6379/0", SMS_HTTP_TIMEOUT=120,
                      RQ_QUEUE=f"sd-test-{uuid.uuid4().hex[:8]}")
    queue = get_queue(app)
    try:
        enqueue(app, [1])
        assert queue.fetch_job(queue.job_ids[0]).timeout == 300
        app.config["SMS_HTTP_TIMEOUT"] = 10
        enqueue(app, [2])
        assert queue.fetch_job(queue.job_ids[1]).timeout == 80
    finally:
        queue.empty()
        queue.delete()


def test_a_panel_cannot_be_asked_so_an_unknown_outcome_is_sent_again(app, panel, make_ticket):
    """A panel's answer that never came: a panel cannot be asked whether it took the
    message (Twilio is asked), so after the wait it is sent again, as before; the customer
    may get it twice."""
    app.config.update(SMS_HTTP_TIMEOUT=1, SMS_RETRY_INTERVALS=[0])
    app.extensions.pop("servicedesk_sms_backend", None)
    gate = panel.gate = threading.Event()
    ticket = make_ticket("intake")  # the panel holds its answer past the timeout
    gate.set()
    row = rows(ticket.id)[0]
    assert row.status == "unknown" and row.unknown_since is not None
    for _ in range(100):  # the panel answers the request the sender gave up on
        if panel.received:
            break
        threading.Event().wait(0.05)
    sweep(stuck_after=timedelta(0))
    row = rows(ticket.id)[0]
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(panel.received) == 2
