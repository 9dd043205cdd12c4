"""Outbound webhooks: each ticket event is posted, signed, to the administrator's endpoints by
the SMS machinery (in-process, or rq workers on the real Redis), retried, failed with its
reason, never sent for an event that rolled back; the admin page registers, rotates, resends."""
import json
import re
import socket
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from servicedesk.extensions import db
from servicedesk.lifecycle import fire
from servicedesk.models import Ticket, WebhookDelivery, WebhookEndpoint
from servicedesk.models.admin import AuditLog
from servicedesk.notifications.sweep import sweep
from servicedesk.services import webhooks as svc

from .conftest import INTAKE, PATH_TO, SAMPLE_DATA, actor_for
from .fake_webhook import FakeWebhook
from .test_admin import Browser, html
from .test_sms import redis_app_config, run_burst, walk, worker_environment


@pytest.fixture(scope="module")
def fake_receiver():
    fake = FakeWebhook().start()
    yield fake
    fake.stop()


@pytest.fixture
def receiver(fake_receiver):
    fake_receiver.reset()
    return fake_receiver


def endpoint(receiver, url=None, events=None, active=True):
    """An endpoint registered as the admin page does; the receiver checks with its secret."""
    made, secret = svc.save_endpoint(None, name="accounting", url=url or receiver.url,
                                     events=events, every_event=events is None, active=active)
    receiver.secret = secret
    return made


def deliveries(**where):
    db.session.expire_all()
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    for key, value in where.items():
        query = query.where(getattr(WebhookDelivery, key) == value)
    return db.session.scalars(query).all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- in-process (the embedded default) -------------------------------------------------------

class TestInProcess:
    @pytest.fixture
    def app_config(self):
        return {"WEBHOOK_RETRY_INTERVALS": [0, 0], "WEBHOOK_TIMEOUT": 2}

    def test_every_step_of_a_repair_reaches_the_accounting_program_signed(
            self, app, receiver, make_ticket):
        hook = endpoint(receiver)
        ticket = make_ticket("delivered")
        got = receiver.wait_for(len(PATH_TO["delivered"]) + 1)
        assert [r["json"]["event"] for r in got] == ["admit", *PATH_TO["delivered"]]
        assert all(r["verified"] for r in receiver.received)
        rows = deliveries()
        assert [(r.status, r.response_code, r.attempts) for r in rows] == [("sent", 204, 1)] * 6
        assert [r["headers"]["X-Servicedesk-Delivery"] for r in got] == [r.uid for r in rows]
        assert {r["headers"]["X-Servicedesk-Event"] for r in got} == {r.event for r in rows}
        deliver = got[-1]["json"]
        assert deliver["ticket"] == {"id": ticket.id, "number": ticket.number}
        assert (deliver["from"], deliver["to"]) == ("ready", "delivered")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", deliver["at"])
        assert deliver["data"]["amount_paid"] == SAMPLE_DATA["deliver"]["amount_paid"]
        # no personal data: not the customer's phone or name, nor who collected the device,
        # nor the problem as typed at the desk (free text)
        raw = b"".join(r["body"] for r in receiver.received).decode()
        for personal in ("9121234567", INTAKE["customer"]["name"], "collected_by", "owner",
                         INTAKE["problem"]):
            assert personal not in raw
        assert hook.id == rows[0].endpoint_id

    def test_an_endpoint_hears_only_its_events_and_an_inactive_one_nothing(
            self, app, receiver, make_ticket):
        endpoint(receiver, events=["deliver", "cancel"])
        svc.save_endpoint(None, name="off", url=receiver.url + "/off", events=None,
                          every_event=True, active=False)
        make_ticket("delivered")
        make_ticket("cancelled")
        assert [r["json"]["event"] for r in receiver.wait_for(2)] == ["deliver", "cancel"]
        assert [r.event for r in deliveries()] == ["deliver", "cancel"]
        assert not any(r["path"].endswith("/off") for r in receiver.received)

    def test_the_accounting_program_hears_the_alternatives_and_the_one_chosen(
            self, app, receiver, make_ticket, users):
        """An estimate offering an original or a copy display: the quote posts both with their
        totals, the approval the one the customer chose and the estimate it made."""
        from servicedesk.services import tickets as ticket_service

        from .test_estimate_alternatives import CHOICES
        ticket = make_ticket("diagnosis")
        endpoint(receiver, events=["quote", "approve"])
        ticket_service.fire_event(ticket.id, "quote", actor_for("quote", users), dict(CHOICES))
        ticket_service.fire_event(ticket.id, "approve", actor_for("approve", users),
                                  {"channel": "phone", "alternative": 2})
        quote, approve = (r["json"]["data"] for r in receiver.wait_for(2))
        assert [(a["id"], a["name"], a["total"]) for a in quote["alternatives"]] == [
            (1, "Original display", 50_000_000), (2, "Copy display", 33_000_000)]
        assert (approve["alternative"], approve["alternative_name"],
                approve["estimate_total"]) == (2, "Copy display", 33_000_000)

    def test_an_intake_through_the_api_is_heard_without_a_query_for_the_endpoints(
            self, app, receiver, api):
        """Every event asks which endpoints hear it: in a request the answer is the shop's
        configuration snapshot, not a query each time. One registered (or switched off) on
        the admin page is heard (or not) at the next event."""
        from sqlalchemy import event as sa_event
        endpoint(receiver, events=["admit"])
        sent = []

        def note(conn, cursor, statement, *_args):
            sent.append(statement)

        api["reception"].post("/api/v1/tickets", json=INTAKE)  # the snapshot, loaded once
        sa_event.listen(db.engine, "before_cursor_execute", note)
        try:
            assert api["reception"].post("/api/v1/tickets", json=INTAKE).status_code == 201
        finally:
            sa_event.remove(db.engine, "before_cursor_execute", note)
        assert len(receiver.wait_for(2)) == 2
        # (the sender reads the endpoint it posts to, by its id: not this question)
        assert sent and not [s for s in sent if "WHERE webhook_endpoints.active" in s]
        (hook,) = db.session.scalars(select(WebhookEndpoint)).all()
        svc.save_endpoint(hook.id, name=hook.name, url=hook.url, events=None,
                          every_event=True, active=False)
        assert api["reception"].post("/api/v1/tickets", json=INTAKE).status_code == 201
        assert len(deliveries()) == 2

    def test_an_event_that_rolled_back_sends_nothing(self, app, receiver, make_ticket, users):
        endpoint(receiver)
        ticket = make_ticket("intake")
        assert len(receiver.wait_for(1)) == 1
        fire(ticket, "send_to_repair", actor_for("send_to_repair", users), {})
        db.session.flush()
        assert len(deliveries()) == 2  # written with the event, in its transaction ...
        db.session.rollback()  # ... which does not commit
        db.session.commit()
        assert len(deliveries()) == 1
        assert db.session.get(Ticket, ticket.id).state == "intake"
        sweep(send=app.extensions["servicedesk_sender"].send_now, stuck_after=timedelta(0))
        assert [r["json"]["event"] for r in receiver.received] == ["admit"]

    def test_a_failing_receiver_is_retried_then_failed_with_its_reason(
            self, app, receiver, make_ticket):
        endpoint(receiver)
        receiver.always(503)
        make_ticket("intake")
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("retry", 1, 503)
        send = app.extensions["servicedesk_sender"].send_now
        sweep(send=send)
        assert deliveries()[0].status == "retry"
        sweep(send=send)
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("failed", 3, 503)
        assert row.error == "gave up after 3 attempts: HTTP 503"
        sweep(send=send)  # nothing more
        assert [r["status"] for r in receiver.received] == [503, 503, 503]

    def test_a_429_is_retried_and_sent_once(self, app, receiver, make_ticket):
        endpoint(receiver)
        receiver.fail_next(1, 429)
        make_ticket("intake")
        sweep(send=app.extensions["servicedesk_sender"].send_now)
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("sent", 2, 204)
        assert [r["status"] for r in receiver.received] == [429, 204]

    def test_a_receiver_that_refuses_is_not_retried(self, app, receiver, make_ticket):
        endpoint(receiver)
        receiver.secret = "not the secret"  # the receiver answers 401: a refusal
        make_ticket("intake")
        sweep(send=app.extensions["servicedesk_sender"].send_now)
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("failed", 1, 401)
        assert row.error == "HTTP 401: refused by the receiver"
        assert len(receiver.received) == 1

    def test_a_receiver_that_is_down_is_retried_then_failed(self, app, receiver, make_ticket):
        endpoint(receiver, url=f"http://127.0.0.1:{free_port()}/hook")
        make_ticket("intake")
        send = app.extensions["servicedesk_sender"].send_now
        sweep(send=send)
        sweep(send=send)
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("failed", 3, None)
        assert row.error.startswith("gave up after 3 attempts: could not connect")

    def test_the_signature_covers_the_timestamp_and_the_body(self, app, receiver, make_ticket):
        endpoint(receiver)
        make_ticket("intake")
        (sent,) = receiver.wait_for(1)
        from .fake_webhook import verify
        headers = sent["headers"]
        assert verify(receiver.secret, headers, sent["body"])
        assert not verify(receiver.secret, headers, sent["body"].replace(b"admit", b"cancel"))
        assert not verify(receiver.secret, {**headers, "X-Servicedesk-Timestamp":
                                            str(int(headers["X-Servicedesk-Timestamp"]) + 1)},
                          sent["body"])
        old = int(headers["X-Servicedesk-Timestamp"]) + 301  # replayed five minutes later
        assert not verify(receiver.secret, headers, sent["body"], now=old)

    def test_imported_history_posts_nothing(self, app, receiver, make_ticket, users):
        endpoint(receiver)
        ticket = make_ticket("intake")
        receiver.wait_for(1)
        fire(ticket, "send_to_repair", actor_for("send_to_repair", users), {}, notify=False)
        db.session.commit()
        assert [r.event for r in deliveries()] == ["admit"]


# --- rq on the real Redis, a real `flask worker` process ---------------------------------------

class TestRq:
    @pytest.fixture
    def app_config(self, fake_twilio):
        return {**redis_app_config(fake_twilio), "WEBHOOK_RETRY_INTERVALS": [0, 0, 0]}

    @pytest.fixture
    def worker_env(self, app, app_config, database_url):
        env = worker_environment(app, app_config, database_url)
        env["SERVICEDESK_WEBHOOK_RETRY_INTERVALS"] = "[0, 0, 0]"
        return env

    def test_the_worker_posts_each_event_once(self, app, twilio, receiver, make_ticket, users,
                                              worker_env):
        endpoint(receiver)
        ticket = make_ticket("intake")
        walk(ticket, users, ["send_to_repair"])
        assert [r.status for r in deliveries()] == ["pending", "pending"]  # queued, not sent
        assert receiver.received == []
        run_burst(worker_env)
        got = receiver.wait_for(2)
        assert [r["json"]["event"] for r in got] == ["admit", "send_to_repair"]
        assert [(r.status, r.attempts) for r in deliveries()] == [("sent", 1)] * 2
        run_burst(worker_env)  # nothing left to send
        assert len(receiver.received) == 2

    def test_rq_retries_a_failing_receiver_then_marks_it_failed(
            self, app, twilio, receiver, make_ticket, worker_env):
        endpoint(receiver)
        receiver.always(500)
        make_ticket("intake")
        run_burst(worker_env)
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("failed", 4, 500)
        assert row.error == "gave up after 4 attempts: HTTP 500"
        assert [r["status"] for r in receiver.received] == [500] * 4

    def test_rq_retries_until_the_receiver_takes_it(self, app, twilio, receiver, make_ticket,
                                                    worker_env):
        endpoint(receiver)
        receiver.fail_next(2, 502)
        make_ticket("intake")
        run_burst(worker_env)
        (row,) = deliveries()
        assert (row.status, row.attempts, row.response_code) == ("sent", 3, 204)
        assert len(receiver.delivered()) == 1


# --- the admin page ----------------------------------------------------------------------------

@pytest.fixture
def admin(app, users):
    browser = Browser(app)
    assert browser.login(users["admin"].username).status_code == 302
    return browser


def audit_actions():
    db.session.expire_all()
    return [a for (a,) in db.session.execute(
        select(AuditLog.action).where(AuditLog.action.startswith("webhook."))
        .order_by(AuditLog.id))]


def test_the_admin_registers_a_webhook_and_sees_its_secret_once(app, admin, receiver):
    resp = admin.post("/admin/webhooks/new", {"name": "Hesabdari", "url": receiver.url,
                                              "every_event": "", "events": ["deliver", "cancel"],
                                              "active": "y"})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    secret = re.search(r"data-webhook-secret>([^<]+)<", html(resp)).group(1)
    hook = db.session.scalars(select(WebhookEndpoint)).one()
    assert (hook.secret, hook.events, hook.active) == (secret, ["deliver", "cancel"], True)
    page = html(admin.get(f"/admin/webhooks/{hook.id}"))
    assert secret not in page and secret[-4:] in page
    assert "Hesabdari" in html(admin.get("/admin/webhooks"))
    resp = admin.post(f"/admin/webhooks/{hook.id}/rotate")
    new = re.search(r"data-webhook-secret>([^<]+)<", html(resp)).group(1)
    db.session.expire_all()
    assert new != secret and db.session.get(WebhookEndpoint, hook.id).secret == new
    assert audit_actions() == ["webhook.create", "webhook.rotate"]
    raw = json.dumps([r.value_to for r in db.session.scalars(select(AuditLog))])
    assert secret not in raw and new not in raw


@pytest.mark.parametrize("url,problem", [
    ("ftp://example.com/hook", "must start with https://"),
    ("https://user:pass@example.com/hook", "user name and password"),
    ("http://accounting.example.com/hook", "Use https://"),
    ("not a url", "must start with https://"),
])
def test_a_webhook_address_is_checked_when_saved(app, admin, url, problem):
    resp = admin.post("/admin/webhooks/new", {"url": url, "every_event": "y", "active": "y"})
    assert resp.status_code == 422
    assert problem in html(resp)
    assert db.session.scalar(select(func.count(WebhookEndpoint.id))) == 0


def test_plain_http_is_for_this_machine_and_without_redis_the_shops_network(app):
    assert svc.check_url("http://localhost:8080/h") == "http://localhost:8080/h"
    assert svc.check_url("http://192.168.1.20/hook")  # the back office's PC, embedded default
    assert svc.check_url("https://accounting.example.com/hook")
    app.config["REDIS_URL"] = "redis://127.0.0.1:6379/0"  # a server: https off this machine
    with pytest.raises(ValueError):
        svc.check_url("http://192.168.1.20/hook")
    assert svc.check_url("http://127.0.0.1:9000/hook")


def test_the_admin_sees_a_failed_delivery_and_sends_it_again(app, admin, receiver, make_ticket):
    app.config["WEBHOOK_RETRY_INTERVALS"] = []  # one try only
    hook = endpoint(receiver)
    receiver.always(500)
    make_ticket("intake")
    (row,) = deliveries()
    assert (row.status, row.error) == ("failed", "gave up after 1 attempts: HTTP 500")
    page = html(admin.get(f"/admin/webhooks/{hook.id}"))
    assert "HTTP 500" in page and f"/deliveries/{row.id}/resend" in page
    receiver.always(None)
    resp = admin.post(f"/admin/webhooks/{hook.id}/deliveries/{row.id}/resend")
    assert resp.status_code == 302
    (row,) = deliveries()
    assert (row.status, row.attempts, row.response_code) == ("sent", 1, 204)
    assert [r["status"] for r in receiver.received] == [500, 204]
    assert receiver.received[0]["headers"]["X-Servicedesk-Delivery"] == \
        receiver.received[1]["headers"]["X-Servicedesk-Delivery"]  # the same delivery id
    assert "webhook.resend" in audit_actions()
    assert admin.post(f"/admin/webhooks/{hook.id}/deliveries/{row.id}/resend").status_code == 302
    assert len(receiver.received) == 2  # a sent one is not sent again


def test_only_the_administrator_manages_webhooks(app, users):
    manager = Browser(app)
    manager.login(users["manager"].username)
    assert manager.get("/admin/webhooks").status_code == 403


def test_flask_check_warns_of_an_endpoint_whose_deliveries_keep_failing(app, receiver,
                                                                        make_ticket):
    from servicedesk.checks import check_webhooks
    app.config["WEBHOOK_RETRY_INTERVALS"] = []
    endpoint(receiver)
    make_ticket("intake")
    assert check_webhooks(app) is None  # it works
    receiver.always(503)
    make_ticket("intake")
    make_ticket("intake")
    assert check_webhooks(app) is None  # two failures after a success: not yet
    make_ticket("intake")
    result = check_webhooks(app)
    assert (result.ok, result.warn) == (True, True)
    assert result.line() == (f"WARN  webhooks: the last 3 deliveries failed for: accounting "
                             f"({receiver.url}): see Administration, Webhooks")
