"""Two people firing events on the same ticket at once, on PostgreSQL: exactly one wins, the other
gets a clear conflict, and the loser leaves nothing behind (no audit row, no SMS)."""
import threading

import pytest
from sqlalchemy import func, select

from servicedesk.errors import Conflict, TransitionNotAllowed
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor, verify_chain
from servicedesk.models import Notification, Ticket, TicketEvent, User
from servicedesk.services import tickets as svc
from servicedesk.services.people import issue_token

from .conftest import INTAKE, SAMPLE_DATA, add_user

ROUNDS = 10
RACERS = (("quote", {"lines": SAMPLE_DATA["quote"]["lines"], "promised_date": "2026-12-01"}),
          ("return_unrepaired", {"reason": "board damaged"}))


def count(model, ticket_id) -> int:
    return db.session.scalar(select(func.count()).select_from(model)
                             .where(model.ticket_id == ticket_id))


@pytest.fixture
def staff(pg_app):
    return {"reception": add_user("reception1", "reception"),
            "technician": add_user("technician1", "technician")}


def ticket_in_diagnosis(staff) -> int:
    ticket = svc.admit(INTAKE, Actor.staff(staff["reception"]))
    svc.fire_event(ticket.id, "send_to_repair", Actor.staff(staff["reception"]),
                   {"technician": "technician1"})
    return ticket.id


def run_pair(target):
    """Run target(0) and target(1) in two threads; return their results (or exceptions)."""
    results = [None, None]

    def wrapped(i):
        try:
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            results[i] = exc

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def assert_one_new_event_and_sms(ticket_id, events_before, sms_before, winner_event):
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert count(TicketEvent, ticket_id) == events_before + 1
    assert ticket.events[-1].event == winner_event
    assert ticket.state == {"quote": "estimate", "return_unrepaired": "ready"}[winner_event]
    assert verify_chain(ticket) is None
    assert count(Notification, ticket_id) == sms_before + 1
    assert ticket.notifications[-1].event == winner_event
    return ticket


def test_two_events_at_once_exactly_one_wins(pg_app, staff):
    technician = Actor.staff(staff["technician"])
    outcomes = []
    for _round in range(ROUNDS):
        ticket_id = ticket_in_diagnosis(staff)
        events_before = count(TicketEvent, ticket_id)
        sms_before = count(Notification, ticket_id)
        barrier = threading.Barrier(2, timeout=30)

        def fire(i):
            event, data = RACERS[i]
            with pg_app.app_context():
                try:
                    loaded = db.session.get(Ticket, ticket_id)
                    assert loaded.state == "diagnosis"  # both load before either commits
                    barrier.wait()
                    svc.fire_event(ticket_id, event, technician, dict(data))
                    return event
                finally:
                    db.session.remove()

        results = run_pair(fire)
        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if not isinstance(r, str)]
        assert len(winners) == 1, results
        assert len(losers) == 1 and isinstance(losers[0], Conflict), results
        assert losers[0].message and losers[0].status == 409
        assert_one_new_event_and_sms(ticket_id, events_before, sms_before, winners[0])
        outcomes.append(winners[0])
    assert len(outcomes) == ROUNDS


def test_two_events_at_once_through_the_api(pg_app, staff):
    token = issue_token(staff["technician"])
    headers = {"Authorization": f"Bearer {token}"}
    for _round in range(ROUNDS):
        ticket_id = ticket_in_diagnosis(staff)
        events_before = count(TicketEvent, ticket_id)
        sms_before = count(Notification, ticket_id)
        barrier = threading.Barrier(2, timeout=30)

        def post(i):
            event, data = RACERS[i]
            client = pg_app.test_client()
            barrier.wait()
            response = client.post(f"/api/v1/tickets/{ticket_id}/events",
                                   json={"event": event, **data}, headers=headers)
            return event, response.status_code, response.get_json()

        results = run_pair(post)
        assert all(isinstance(r, tuple) for r in results), results
        statuses = sorted(status for _, status, _ in results)
        assert statuses == [200, 409], results
        (winner, _, body), = [r for r in results if r[1] == 200]
        (_, _, error), = [r for r in results if r[1] == 409]
        assert body["state"] in ("estimate", "ready")
        assert error.get("error")
        assert_one_new_event_and_sms(ticket_id, events_before, sms_before, winner)


def test_a_late_loader_gets_transition_not_allowed(pg_app, staff):
    """Not a race: the second fires after the first committed, and is told what is allowed."""
    ticket_id = ticket_in_diagnosis(staff)
    technician = Actor.staff(staff["technician"])
    svc.fire_event(ticket_id, "quote", technician, dict(RACERS[0][1]))
    with pytest.raises(TransitionNotAllowed) as info:
        svc.fire_event(ticket_id, "return_unrepaired", technician, {"reason": "x"})
    assert info.value.state == "estimate"
    assert "return_unrepaired" not in info.value.allowed


def test_a_stale_version_is_a_conflict(pg_app, staff):
    ticket_id = ticket_in_diagnosis(staff)
    version = db.session.get(Ticket, ticket_id).version
    technician = Actor.staff(staff["technician"])
    svc.fire_event(ticket_id, "quote", technician, dict(RACERS[0][1]), expected_version=version)
    events = count(TicketEvent, ticket_id)
    with pytest.raises(Conflict):
        svc.fire_event(ticket_id, "approve", Actor.staff(staff["reception"]),
                       {"channel": "phone"}, expected_version=version)
    assert count(TicketEvent, ticket_id) == events


def test_two_desks_taking_in_the_same_new_customer_at_once_both_succeed(pg_app, staff):
    """A customer brings two devices to two desks: both intakes go through, with one customer
    (the phone number is unique), not a conflict for the second desk."""
    from servicedesk.models import Customer
    token = issue_token(staff["reception"])
    headers = {"Authorization": f"Bearer {token}"}
    for n in range(ROUNDS):
        phone = f"+98935000{n:04d}"
        barrier = threading.Barrier(2, timeout=30)

        def post(i):
            client = pg_app.test_client()
            body = {**INTAKE, "customer": {"name": "Two Devices", "phone": phone},
                    "device": {**INTAKE["device"], "serial": None,
                               "model": ("Galaxy A54", "Galaxy Tab S9")[i]}}
            barrier.wait()
            response = client.post("/api/v1/tickets", json=body, headers=headers)
            return response.status_code, response.get_json()

        results = run_pair(post)
        assert [status for status, _ in results] == [201, 201], results
        db.session.expire_all()
        customers = db.session.scalars(select(Customer).where(Customer.phone == phone)).all()
        assert len(customers) == 1
        assert {body["customer"]["id"] for _, body in results} == {customers[0].id}
        assert sorted(body["device"]["model"] for _, body in results) == [
            "Galaxy A54", "Galaxy Tab S9"]


def test_the_same_intake_sent_twice_at_once_admits_the_device_once(pg_app, staff):
    """A retry sent while the first request is still running (same Idempotency-Key): one
    ticket, one SMS; both answers name it (one 201, one 200)."""
    token = issue_token(staff["reception"])
    for n in range(ROUNDS):
        barrier = threading.Barrier(2, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"twice-{n}"}

        def post(i):
            client = pg_app.test_client()
            barrier.wait()
            response = client.post("/api/v1/tickets", json=INTAKE, headers=headers)
            return response.status_code, response.get_json()

        results = run_pair(post)
        assert sorted(status for status, _ in results) == [200, 201], results
        assert len({body["number"] for _, body in results}) == 1
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Ticket.id))) == ROUNDS
    assert db.session.scalar(select(func.count(Notification.id))) == ROUNDS


def test_two_technicians_claiming_at_once_one_gets_it(pg_app, staff):
    """Both see the ticket free and claim in the same instant: one holds it, the other is told
    it changed; one claim in the audit trail, the chain intact."""
    from servicedesk.services import workbench
    second = add_user("technician2", "technician")
    technicians = (staff["technician"].id, second.id)  # ids: the objects are this thread's
    for _round in range(ROUNDS):
        ticket = svc.admit(INTAKE, Actor.staff(staff["reception"]))
        svc.fire_event(ticket.id, "send_to_repair", Actor.staff(staff["reception"]))
        ticket_id = ticket.id
        barrier = threading.Barrier(2, timeout=30)

        def claim(i):
            with pg_app.app_context():
                try:
                    user = db.session.get(User, technicians[i])
                    loaded = db.session.get(Ticket, ticket_id)
                    assert loaded.technician_id is None  # both load before either commits
                    barrier.wait()
                    workbench.claim(ticket_id, user)
                    return user.username
                finally:
                    db.session.remove()

        results = run_pair(claim)
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1, results
        assert [type(r) for r in results if not isinstance(r, str)] == [Conflict], results
        db.session.expire_all()
        ticket = db.session.get(Ticket, ticket_id)
        assert ticket.technician.username == winners[0]
        assert [e.event for e in ticket.events].count("claim") == 1
        assert verify_chain(ticket) is None


def test_two_counters_calling_at_once_both_call_and_the_near_sms_goes_once(pg_app, monkeypatch):
    """Counter 1 calls the next repair number while counter 2 calls the next pickup number:
    both move the queue on and both find the same customer now near their turn. Both calls
    go through (neither desk gets an error page), and that customer is texted once."""
    from servicedesk.models import Branch, Visit
    from servicedesk.services import reception
    from servicedesk.services.tickets import default_branch

    branch = default_branch()
    phones = [f"+98912100000{i}" for i in range(1, 7)]
    for phone, service in zip(phones, ["repair", "pickup", "repair", "repair", "repair",
                                       "repair"]):
        reception.issue_number(branch, service, phone)
    branch_id = branch.id
    # both desks reach "who is near now?" before either commits
    meet = threading.Barrier(2, timeout=10)
    real = reception._left_the_queue

    def both_then_go(removed):
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            pass
        return real(removed)

    monkeypatch.setattr(reception, "_left_the_queue", both_then_go)

    def press(i):
        with pg_app.app_context():
            try:
                return reception.call_next(db.session.get(Branch, branch_id), str(i + 1),
                                           None, ("repair", "pickup")[i]).label
            finally:
                db.session.remove()

    results = run_pair(press)
    assert not [r for r in results if isinstance(r, BaseException)], results
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Visit.id)).where(Visit.status == "called")) == 2
    near = [n.to for n in db.session.scalars(
        select(Notification).where(Notification.event == "visit_near").order_by(Notification.id))]
    # the first four were near when they took their numbers; the fifth is now (three ahead)
    assert near == phones[:5]


def test_two_desks_correcting_one_number_at_the_same_instant_one_wins(pg_app, staff):
    """Both desks read the customer's old number, then both write: the change is conditional
    on the number read, so the second finds it changed and is refused with a conflict, rather
    than writing over the first (the seen-number check alone cannot catch this instant)."""
    from sqlalchemy import event

    from servicedesk.models import Customer
    for _round in range(3):
        ticket = svc.admit({**INTAKE, "customer": {**INTAKE["customer"],
                                                   "phone": f"0912000000{_round}"}},
                           Actor.staff(staff["reception"]))
        db.session.execute(Customer.__table__.update().where(
            Customer.id == ticket.customer_id).values(phone="+15005550001"))
        db.session.commit()
        barrier = threading.Barrier(2, timeout=30)

        def both_read_first(conn, cursor, statement, params, context, executemany):
            if statement.startswith("UPDATE customers SET phone"):
                barrier.wait()  # each has read the old number before either writes

        numbers = (f"0912777880{_round}", f"0912777890{_round}")
        desk_id, ticket_id = staff["reception"].id, ticket.id

        def correct(i):
            with pg_app.app_context():
                try:
                    svc.correct_phone(ticket_id, numbers[i], db.session.get(User, desk_id),
                                      seen="+15005550001")
                    return numbers[i]
                finally:
                    db.session.remove()

        event.listen(db.engine, "before_cursor_execute", both_read_first)
        try:
            results = run_pair(correct)
        finally:
            event.remove(db.engine, "before_cursor_execute", both_read_first)
        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if not isinstance(r, str)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], Conflict)
        assert "همان لحظه" in losers[0].message  # "at the same moment", in the shop's language
        db.session.expire_all()
        customer_id = db.session.get(Ticket, ticket_id).customer_id
        assert db.session.get(Customer, customer_id).phone == "+98" + winners[0][1:]
