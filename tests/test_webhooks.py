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
from servicedesk.lifecycle import Actor, fire
from servicedesk.models import Loan, Ticket, WebhookDelivery, WebhookEndpoint
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


IMEI = "356938035643809"  # the shop's loaner phone's


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

    def test_a_refund_and_a_loaner_lent_and_taken_back_reach_the_receivers(
            self, app, receiver, make_ticket, users):
        """Accounting hears the money given back, the loaner tracker the phone lent and
        back: the amounts, the loan and the shop's phone, never the manager's or the desk's
        own words (which name the customer here) nor the customer's name or phone."""
        from servicedesk.services import loaners, reception
        endpoint(receiver, events=["refund", "lend_loaner", "return_loaner"])
        desk, manager = Actor.staff(users["reception"]), Actor.staff(users["manager"])
        ticket = make_ticket("intake")
        loaners.lend(ticket.id, desk, {"description": "Narges Rezaei's spare Nokia",
                                       "serial": IMEI, "condition": "Narges: scratched"})
        loaners.take_back(ticket.id, desk, data={"condition": "damaged",
                                                 "note": "Narges Rezaei dropped it"})
        paid = make_ticket("delivered")
        reception.refund(paid.id, manager, {"amount": 2_000_000, "payment_method": "card",
                                            "reason": "Narges Rezaei's screen failed again"})
        lent, back, refund = receiver.wait_for(3)
        (loan,) = db.session.scalars(select(Loan).where(Loan.ticket_id == ticket.id)).all()
        assert lent["json"]["event"] == "lend_loaner"
        assert lent["json"]["data"] == {"loan_id": loan.id, "serial": IMEI}
        assert (lent["json"]["from"], lent["json"]["to"]) == ("intake", "intake")
        assert lent["json"]["ticket"] == {"id": ticket.id, "number": ticket.number}
        assert back["json"]["event"] == "return_loaner"
        assert back["json"]["data"] == {"loan_id": loan.id, "condition": "damaged"}
        assert refund["json"]["event"] == "refund"
        assert refund["json"]["data"] == {"amount": 2_000_000, "payment_method": "card"}
        assert (refund["json"]["from"], refund["json"]["to"]) == ("delivered", "delivered")
        assert all(r["verified"] for r in receiver.received) and len(receiver.received) == 3
        raw = b"".join(r["body"] for r in receiver.received).decode()
        for personal in ("Narges", "Nokia", "09121234567", "scratched"):
            assert personal not in raw
        assert [(r.event, r.status) for r in deliveries()] == [
            ("lend_loaner", "sent"), ("return_loaner", "sent"), ("refund", "sent")]

    def test_a_stock_loaner_taken_back_with_the_hand_back_is_heard(
            self, app, receiver, make_ticket, users):
        """One of the shop's stock phones lent, and taken back with the hand-back: each record
        posted in its order, the phone by its stock id and IMEI."""
        from servicedesk.services import loaners
        from servicedesk.services import tickets as ticket_service
        endpoint(receiver, events=["admit", "lend_loaner", "return_loaner", "deliver"])
        ticket = make_ticket("ready")
        phone = loaners.save_phone(users["manager"], None, {
            "branch_id": ticket.branch_id, "label": "L1", "model": "Galaxy A10",
            "serial": IMEI})
        loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
        ticket_service.fire_event(ticket.id, "deliver", Actor.staff(users["reception"]), {
            **SAMPLE_DATA["deliver"], "loaner_returned": True, "loaner_condition": "fine"})
        got = [r["json"] for r in receiver.wait_for(4)]
        assert [g["event"] for g in got] == ["admit", "lend_loaner", "return_loaner", "deliver"]
        assert got[1]["data"] == {"loan_id": got[1]["data"]["loan_id"], "loaner_id": phone.id,
                                  "serial": IMEI}
        assert got[2]["data"] == {"loan_id": got[1]["data"]["loan_id"], "condition": "fine",
                                  "with_event": "deliver"}

    def test_who_holds_the_ticket_is_heard_and_the_pickup_checks_are_not(
            self, app, receiver, make_ticket, users):
        """A ticket given back to the queue and claimed: posted with the technicians' user
        names (as send_to_repair's). A manager confirming who collects the device is not (who
        collects it is the customer's business)."""
        from servicedesk.services import reception, workbench
        endpoint(receiver)
        ticket = make_ticket("diagnosis")
        workbench.assign(ticket.id, users["manager"], None)
        workbench.claim(ticket.id, users["technician"])
        ready = make_ticket("ready")
        reception.override_collector(ready.id, Actor.staff(users["manager"]),
                                     "Narges Rezaei's brother, ID card seen")
        events = [r["json"] for r in receiver.wait_for(2 + 2 + 5)]
        assert len(events) == 9
        records = [(e["event"], e["data"]) for e in events if e["event"] in ("assign", "claim")]
        assert records == [("assign", {"technician": None, "before": "technician1"}),
                           ("claim", {"technician": "technician1"})]
        assert "collector_override" not in {e["event"] for e in events}
        assert "collector_override" not in {r.event for r in deliveries()}

    def test_a_refund_that_rolled_back_posts_nothing(self, app, receiver, make_ticket, users):
        """The delivery row is written in the record's transaction: a refund that does not
        commit promises no POST."""
        from servicedesk.lifecycle import record
        endpoint(receiver, events=["refund"])
        ticket = make_ticket("delivered")
        record(ticket, "refund", Actor.staff(users["manager"]),
               {"amount": 1000, "payment_method": "cash", "reason": "x"},
               amount_refunded=1000)
        db.session.flush()
        assert [r.event for r in deliveries()] == ["refund"]  # with the record ...
        db.session.rollback()  # ... which does not commit
        assert deliveries() == []
        sweep(send=app.extensions["servicedesk_sender"].send_now, stuck_after=timedelta(0))
        assert receiver.received == []

    def test_imported_loaner_history_posts_nothing(self, app, receiver, users):
        from .test_import_history import LENT, _with_loan, import_lines
        endpoint(receiver)
        back = {"event": "return_loaner", "at": "2024-05-01T06:40:00Z", "actor": "reception1",
                "data": {"condition": "fine"}}
        with_deliver = _with_loan("loan-2", [LENT], {"loaner_returned": True})
        report = import_lines([json.dumps(_with_loan("loan-1", [LENT, back])),
                               json.dumps(with_deliver)])
        assert report.errors == [] and report.imported == 2
        assert deliveries() == []


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

    def test_a_webhook_deleted_after_the_event_is_queued_is_not_posted(
            self, app, twilio, receiver, make_ticket, worker_env):
        """The event's job is on Redis when the administrator deletes the endpoint: the
        worker sends nothing, and the delivery says why."""
        hook = endpoint(receiver)
        make_ticket("intake")
        assert [r.status for r in deliveries()] == ["pending"]  # queued, not sent
        svc.delete_endpoint(hook.id)
        run_burst(worker_env)
        assert receiver.received == []
        (row,) = deliveries()
        assert (row.status, row.attempts, row.error) == (
            "cancelled", 0, "the endpoint was deleted before it was sent")

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


def test_the_admin_form_offers_the_records_an_outside_program_follows(app, admin, receiver):
    page = html(admin.get("/admin/webhooks/new"))
    for event, label in (("refund", "Refunded"), ("lend_loaner", "Loaner phone lent"),
                         ("return_loaner", "Loaner phone taken back"), ("claim", "Claimed"),
                         ("assign", "Assigned")):
        assert f'value="{event}"' in page and label in page
    assert 'value="collector_override"' not in page
    resp = admin.post("/admin/webhooks/new", {"url": receiver.url, "every_event": "",
                                              "events": ["refund", "return_loaner"],
                                              "active": "y"})
    assert resp.status_code == 200
    hook = db.session.scalars(select(WebhookEndpoint)).one()
    assert hook.events == ["refund", "return_loaner"]


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
    assert "Gave up after 1 attempt. The last: The receiver had an error (HTTP 500)." in page
    assert f"/deliveries/{row.id}/resend" in page
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


def test_only_the_administrator_manages_webhooks(app, users, receiver):
    hook = endpoint(receiver)
    manager = Browser(app)
    manager.login(users["manager"].username)
    assert manager.get("/admin/webhooks").status_code == 403
    assert manager.post(f"/admin/webhooks/{hook.id}/delete",
                        csrf=False).status_code in (400, 403)
    manager.token("/")
    assert manager.post(f"/admin/webhooks/{hook.id}/delete").status_code == 403
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, hook.id).deleted_at is None
    assert audit_actions() == ["webhook.create"]


def test_the_admin_deletes_a_webhook_and_what_waited_for_it_is_never_sent(
        app, admin, receiver, make_ticket):
    """Deleted from its page after a confirmation, in the audit log without the secret: the
    delivery waiting for a retry is cancelled with the reason its page shows, nothing more
    is written or posted to it, and its page keeps its deliveries, with nothing to change."""
    app.config["WEBHOOK_RETRY_INTERVALS"] = [0, 0]
    hook = endpoint(receiver)
    secret = receiver.secret
    receiver.always(503)
    make_ticket("intake")
    (row,) = deliveries()
    assert row.status == "retry"
    page = html(admin.get(f"/admin/webhooks/{hook.id}"))
    assert 'data-confirm-step="delete"' in page and f"/admin/webhooks/{hook.id}/delete" in page
    resp = admin.post(f"/admin/webhooks/{hook.id}/delete")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/webhooks")
    listing = html(admin.get("/admin/webhooks"))
    assert "1 delivery still waiting is cancelled" in listing and "Deleted on" in listing
    (row,) = deliveries()
    assert (row.status, row.error) == ("cancelled", "the endpoint was deleted before it was sent")
    receiver.always(None)
    sweep(send=app.extensions["servicedesk_sender"].send_now, stuck_after=timedelta(0))
    make_ticket("intake")  # a later event writes nothing for it
    assert len(deliveries()) == 1
    assert [r["status"] for r in receiver.received] == [503]
    db.session.expire_all()
    gone = db.session.get(WebhookEndpoint, hook.id)
    assert (gone.active, gone.secret) == (False, "") and gone.deleted_at is not None
    page = html(admin.get(f"/admin/webhooks/{hook.id}"))
    assert "data-webhook-deleted" in page and "Cancelled" in page
    assert "Not sent: the endpoint was deleted first." in page
    for gone_action in ("/rotate", "/delete", "/resend", 'name="url"'):
        assert gone_action not in page
    # nothing to change on a deleted one: an old tab's buttons are refused
    assert admin.post(f"/admin/webhooks/{hook.id}/rotate").status_code == 302
    assert admin.post(f"/admin/webhooks/{hook.id}/delete").status_code == 302
    assert admin.post(f"/admin/webhooks/{hook.id}", {
        "url": receiver.url, "every_event": "y", "active": "y"}).status_code == 409
    db.session.expire_all()
    assert (db.session.get(WebhookEndpoint, hook.id).secret,
            db.session.get(WebhookEndpoint, hook.id).active) == ("", False)
    assert audit_actions() == ["webhook.create", "webhook.delete"]
    (entry,) = db.session.scalars(select(AuditLog).where(AuditLog.action == "webhook.delete"))
    assert entry.value_from["url"] == receiver.url
    assert entry.value_to == {"cancelled_deliveries": 1}
    assert secret not in json.dumps([entry.value_from, entry.value_to])


def test_a_delivery_being_sent_when_its_webhook_is_deleted_is_not_sent_again(
        app, receiver, make_ticket):
    """A sender had taken the delivery (its POST under way) when the endpoint was deleted: it
    is left to that sender; a sender that died mid-send leaves it to the sweep, whose sender
    finds the endpoint gone and cancels it, posting nothing."""
    from servicedesk.notifications import webhooks
    app.config["WEBHOOK_RETRY_INTERVALS"] = [0, 0]
    hook = endpoint(receiver)
    receiver.always(503)
    make_ticket("intake")
    (row,) = deliveries()
    assert webhooks.claim(row.id)  # a sender takes it ...
    assert svc.delete_endpoint(hook.id)[1] == 0  # ... and the endpoint is deleted meanwhile
    (row,) = deliveries()
    assert row.status == "sending"
    row.updated_at -= timedelta(minutes=10)  # that sender died mid-send, long ago
    db.session.commit()
    receiver.always(None)
    sweep(send=app.extensions["servicedesk_sender"].send_now, stuck_after=timedelta(0))
    (row,) = deliveries()
    assert (row.status, row.error) == ("cancelled", "the endpoint was deleted before it was sent")
    assert [r["status"] for r in receiver.received] == [503]


def test_flask_check_warns_of_an_endpoint_whose_deliveries_keep_failing(app, receiver,
                                                                        make_ticket):
    from servicedesk.checks import check_webhooks
    app.config["WEBHOOK_RETRY_INTERVALS"] = []
    app.config["SERVICEDESK_LOCALE"] = "en"  # check speaks the shop's language: here English
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


@pytest.mark.parametrize("note, english, persian", [
    ("gave up after 3 attempts: HTTP 503",
     "Gave up after 3 attempts. The last: The receiver had an error (HTTP 503).", "۵۰۳"),
    ("HTTP 401: refused by the receiver",
     "The receiver refused it (HTTP 401): it would refuse it again; check the receiver.", "۴۰۱"),
    ("HTTP 302: redirects are not followed",
     "The receiver answered with a redirect (HTTP 302), which is not followed: give the "
     "endpoint its final address.", "۳۰۲"),
    ("HTTP 429", "The receiver asked to slow down (HTTP 429).", "۴۲۹"),
    ("gave up after 4 attempts: could not connect: ConnectionError",
     "Gave up after 4 attempts. The last: The receiver could not be reached: check its "
     "address and that it is running.", "۴"),
    ("no answer in time", "The receiver did not answer in time.", None),
    ("the sender stopped mid-send",
     "The sender stopped in the middle of sending; it is sent again.", None),
    ("the endpoint was switched off before it was sent",
     "Not sent: the endpoint was switched off first.", None),
    ("something an older version wrote", "something an older version wrote", None),
])
def test_the_endpoints_page_says_a_deliverys_note_in_the_admins_language(
        app, note, english, persian):
    from flask_babel import force_locale
    with app.test_request_context():
        with force_locale("en"):
            assert svc.explain_error(note) == english
        with force_locale("fa"):
            said = svc.explain_error(note)
        if note.startswith("something"):
            assert said == note
        else:  # said in Persian, its figures in Persian digits
            assert said != english and re.search("[\u0600-\u06ff]", said), said
            assert persian is None or persian in said
