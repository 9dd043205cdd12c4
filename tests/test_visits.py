"""Queue numbers: per branch, per shop-local day and per service; calling, recalling, no-shows;
and on PostgreSQL, numbers issued and called from many threads at once."""
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from servicedesk import visits
from servicedesk.errors import Conflict, ValidationError
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.models import Branch, Visit
from servicedesk.services import tickets as svc
from servicedesk.services.tickets import default_branch

from .conftest import INTAKE


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def branch(app):
    return default_branch()


@pytest.fixture
def north(app):
    b = Branch(name="North", code="N")
    db.session.add(b)
    db.session.commit()
    return b


def test_numbers_per_branch_per_service(branch, north):
    now = utc(2025, 1, 15, 8, 0)
    issued = [visits.issue(branch, "repair", now=now),
              visits.issue(branch, "repair", now=now + timedelta(minutes=1)),
              visits.issue(branch, "pickup", now=now + timedelta(minutes=2)),
              visits.issue(north, "repair", now=now + timedelta(minutes=3)),
              visits.issue(branch, "repair", now=now + timedelta(minutes=4)),
              visits.issue(branch, "inquiry", now=now + timedelta(minutes=5)),
              visits.issue(north, "pickup", now=now + timedelta(minutes=6))]
    db.session.commit()
    assert [(v.branch_id, v.label) for v in issued] == [
        (branch.id, "R-001"), (branch.id, "R-002"), (branch.id, "P-001"), (north.id, "R-001"),
        (branch.id, "R-003"), (branch.id, "Q-001"), (north.id, "P-001")]
    assert [v.number for v in issued] == [1, 2, 1, 1, 3, 1, 1]
    assert all(v.status == "waiting" and v.day == date(2025, 1, 15) for v in issued)
    assert issued[0].issued_at == now


def test_unknown_service_is_refused(branch):
    with pytest.raises(ValidationError) as info:
        visits.issue(branch, "haircut")
    assert "service" in info.value.fields
    with pytest.raises(ValidationError):
        visits.issue(branch, None)


def test_numbers_restart_when_the_queue_day_starts(branch):
    # Tehran is UTC+03:30; the queue's day starts at 04:00 there (00:30 UTC): a shop open past
    # midnight goes on with the evening's numbers, and the morning starts again from 1.
    morning = visits.issue(branch, "repair", now=utc(2025, 1, 15, 5, 0))
    before_midnight = visits.issue(branch, "repair", now=utc(2025, 1, 15, 20, 29))
    after_midnight = visits.issue(branch, "repair", now=utc(2025, 1, 15, 20, 31))
    before_four = visits.issue(branch, "repair", now=utc(2025, 1, 16, 0, 29))
    after_four = visits.issue(branch, "repair", now=utc(2025, 1, 16, 0, 31))
    next_pickup = visits.issue(branch, "pickup", now=utc(2025, 1, 16, 0, 32))
    later = visits.issue(branch, "repair", now=utc(2025, 1, 16, 12, 0))
    db.session.commit()
    assert (morning.label, morning.day) == ("R-001", date(2025, 1, 15))
    assert (before_midnight.label, before_midnight.day) == ("R-002", date(2025, 1, 15))
    assert (after_midnight.label, after_midnight.day) == ("R-003", date(2025, 1, 15))
    assert (before_four.label, before_four.day) == ("R-004", date(2025, 1, 15))
    assert (after_four.label, after_four.day) == ("R-001", date(2025, 1, 16))
    assert (next_pickup.label, next_pickup.day) == ("P-001", date(2025, 1, 16))
    assert (later.label, later.day) == ("R-002", date(2025, 1, 16))
    # A UTC day boundary is not a queue day boundary.
    a = visits.issue(branch, "inquiry", now=utc(2025, 2, 1, 23, 59))
    b = visits.issue(branch, "inquiry", now=utc(2025, 2, 2, 0, 1))
    db.session.commit()
    assert (a.label, b.label) == ("Q-001", "Q-002")
    assert a.day == b.day == date(2025, 2, 1)


def test_a_number_taken_before_midnight_is_called_after_it(branch, app):
    """The customer who took a number at 23:50 is still in the queue at 00:10 (and the queue
    day's start is a setting: a shop that closes at 22:00 may restart at midnight)."""
    evening = visits.issue(branch, "repair", now=utc(2025, 1, 15, 20, 20))  # 23:50 in Tehran
    db.session.commit()
    called = visits.call_next(branch, "1", now=utc(2025, 1, 15, 20, 40))  # 00:10
    assert called is not None and called.id == evening.id
    late = visits.issue(branch, "repair", now=utc(2025, 1, 15, 20, 21))
    db.session.commit()
    app.config["QUEUE_DAY_STARTS"] = 0
    assert visits.call_next(branch, "1", now=utc(2025, 1, 15, 20, 40)) is None
    assert visits.call_next(branch, "1", now=utc(2025, 1, 15, 20, 25)).id == late.id


def test_ahead_counts_who_still_waits_before_you(branch, north, users):
    first = visits.issue(branch, "repair")
    second = visits.issue(branch, "pickup")
    third = visits.issue(branch, "repair")
    other_branch = visits.issue(north, "repair")
    db.session.commit()
    assert [visits.ahead(v) for v in (first, second, third)] == [0, 1, 2]
    assert visits.ahead(other_branch) == 0
    # yesterday's leftovers do not count
    stale = visits.issue(branch, "repair", now=datetime.now(timezone.utc) - timedelta(days=2))
    db.session.commit()
    assert visits.ahead(third) == 2 and visits.ahead(stale) == 0

    visits.call_next(branch, "1", users["reception"])
    db.session.commit()
    assert visits.ahead(third) == 1
    assert visits.ahead(second) == 0


def test_call_next_takes_the_oldest_waiting_and_counters_take_turns(branch, north, users):
    r1 = visits.issue(branch, "repair")
    p1 = visits.issue(branch, "pickup")
    r2 = visits.issue(branch, "repair")
    r3 = visits.issue(branch, "repair")
    visits.issue(north, "repair")
    db.session.commit()

    one = visits.call_next(branch, "1", users["reception"])
    db.session.commit()
    two = visits.call_next(branch, "2", users["manager"])
    db.session.commit()
    assert (one.id, two.id) == (r1.id, p1.id)
    assert (one.status, one.counter, one.called_by_id) == ("called", "1", users["reception"].id)
    assert (two.status, two.counter, two.called_by_id) == ("called", "2", users["manager"].id)
    assert one.called_at is not None and two.called_at >= one.called_at

    # by service: the oldest repair still waiting
    three = visits.call_next(branch, "1", users["reception"], service="repair")
    db.session.commit()
    assert three.id == r2.id
    assert visits.call_next(branch, "2", service="pickup") is None
    four = visits.call_next(branch, "2")
    db.session.commit()
    assert four.id == r3.id and four.counter == "2" and four.called_by_id is None
    # nobody left at this branch (the north branch's visit is not ours to call)
    assert visits.call_next(branch, "1") is None
    north_call = visits.call_next(north, "1")
    assert north_call is not None and north_call.branch_id == north.id


def test_call_next_skips_other_days(branch):
    visits.issue(branch, "repair", now=datetime.now(timezone.utc) - timedelta(days=1))
    db.session.commit()
    assert visits.call_next(branch, "1") is None


def test_call_recall_and_no_show_rules(branch, users):
    v1 = visits.issue(branch, "repair")
    v2 = visits.issue(branch, "repair")
    db.session.commit()

    # no-show only for a called number
    with pytest.raises(Conflict):
        visits.no_show(v1)
    assert v1.status == "waiting"

    # call a specific number out of order
    called = visits.call(v2, "3", users["reception"])
    db.session.commit()
    assert (called.status, called.counter) == ("called", "3")
    first_call = called.called_at

    # recall: still called, at the new counter, called again
    recalled = visits.call(v2, "4", users["manager"])
    db.session.commit()
    assert (recalled.status, recalled.counter, recalled.called_by_id) == (
        "called", "4", users["manager"].id)
    assert recalled.called_at >= first_call

    # the customer did not come: no-show; they may still be called back later
    visits.no_show(v2)
    db.session.commit()
    assert db.session.get(Visit, v2.id).status == "no_show"
    with pytest.raises(Conflict):
        visits.no_show(v2)  # already no_show
    assert visits.call_next(branch, "1").id == v1.id  # a no-show is not called by "next"
    db.session.commit()
    assert visits.call_next(branch, "1") is None
    back = visits.call(v2, "2", users["reception"])
    db.session.commit()
    assert back.status == "called"

    # admitting serves the visit; a served number cannot be called or no-showed again
    ticket = svc.admit({**INTAKE, "visit_id": v2.id}, Actor.staff(users["reception"]))
    db.session.expire_all()
    served = db.session.get(Visit, v2.id)
    assert served.status == "served" and served.ticket.id == ticket.id
    assert served.served_at is not None
    with pytest.raises(Conflict):
        visits.call(served, "1", users["reception"])
    db.session.rollback()
    with pytest.raises(Conflict):
        visits.no_show(served)
    assert db.session.get(Visit, v2.id).status == "served"


def test_get_unknown_visit(app):
    from servicedesk.errors import NotFound
    with pytest.raises(NotFound):
        visits.get(999_999)


# --- PostgreSQL: many counters and kiosks at once ---------------------------------------------

def _run_threads(count, target):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors


def test_forty_visits_from_eight_threads_get_1_to_40(pg_app):
    branch_id = default_branch().id
    threads, per_thread = 8, 5
    barrier = threading.Barrier(threads, timeout=30)
    numbers, lock = [], threading.Lock()

    def kiosk(i):
        with pg_app.app_context():
            try:
                branch = db.session.get(Branch, branch_id)
                db.session.commit()  # start each issue in its own, fresh transaction
                barrier.wait()
                for _ in range(per_thread):
                    visit = visits.issue(branch, "repair")
                    db.session.commit()
                    with lock:
                        numbers.append((visit.number, visit.label))
            finally:
                db.session.remove()

    _run_threads(threads, kiosk)
    assert sorted(n for n, _ in numbers) == list(range(1, 41))
    assert len({label for _, label in numbers}) == 40
    db.session.expire_all()
    stored = sorted(db.session.scalars(select(Visit.number).where(Visit.branch_id == branch_id)))
    assert stored == list(range(1, 41))


def test_eight_counters_calling_at_once_get_different_people(pg_app):
    branch = default_branch()
    waiting = [visits.issue(branch, "repair").id for _ in range(8)]
    db.session.commit()
    branch_id = branch.id
    barrier = threading.Barrier(8, timeout=30)
    called, lock = [], threading.Lock()

    def counter(i):
        with pg_app.app_context():
            try:
                b = db.session.get(Branch, branch_id)
                db.session.commit()
                barrier.wait()
                visit = visits.call_next(b, str(i + 1))
                db.session.commit()
                with lock:
                    called.append((visit.id if visit else None, str(i + 1)))
            finally:
                db.session.remove()

    _run_threads(8, counter)
    ids = [vid for vid, _ in called]
    assert None not in ids
    assert sorted(ids) == sorted(waiting)
    db.session.expire_all()
    rows = db.session.scalars(select(Visit).where(Visit.id.in_(waiting))).all()
    assert all(v.status == "called" for v in rows)
    # each visit is at the counter that called it
    assert {v.id: v.counter for v in rows} == dict(called)


def test_visits_through_the_api(api):
    first = api["reception"].post("/api/v1/visits", json={"service": "repair"})
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert {"id", "number", "label", "status", "issued_at", "ahead"} <= set(body)
    assert (body["number"], body["label"], body["status"], body["ahead"]) == (
        1, "R-001", "waiting", 0)
    second = api["reception"].post("/api/v1/visits", json={"service": "pickup"}).get_json()
    assert (second["label"], second["ahead"]) == ("P-001", 1)
    bad = api["reception"].post("/api/v1/visits", json={"service": "haircut"})
    assert bad.status_code == 422 and bad.get_json()["error"]

    called = api["reception"].post("/api/v1/visits/next", json={"counter": "2"})
    assert called.status_code == 200
    assert (called.get_json()["id"], called.get_json()["status"],
            called.get_json()["counter"]) == (body["id"], "called", "2")
    assert api["reception"].post("/api/v1/visits/next",
                                 json={"counter": "3"}).get_json()["label"] == "P-001"
    empty = api["reception"].post("/api/v1/visits/next", json={"counter": "2"})
    assert empty.status_code == 204
    assert api["reception"].post("/api/v1/visits/next", json={}).status_code == 422


@pytest.mark.parametrize("counter", ["\ud800", "ok\x00", True, ["2"], "", "x" * 21])
def test_calling_the_next_number_to_an_impossible_counter_is_refused(api, counter):
    assert api["reception"].post("/api/v1/visits", json={"service": "repair"}).status_code == 201
    resp = api["reception"].post("/api/v1/visits/next", json={"counter": counter})
    assert resp.status_code == 422 and "counter" in resp.get_json()["fields"]
    waiting = api["reception"].post("/api/v1/visits/next", json={"counter": 2}).get_json()
    assert waiting["label"] == "R-001" and waiting["counter"] == "2"  # still waiting until now


def test_a_number_called_through_the_api_texts_the_customer(api, app):
    from servicedesk.models import Notification
    issued = api["reception"].post("/api/v1/visits", json={"service": "repair",
                                                           "phone": "09121234567"})
    assert issued.status_code == 201
    api["reception"].post("/api/v1/visits/next", json={"counter": "3"})
    events = [n.event for n in db.session.scalars(select(Notification).order_by(Notification.id))]
    assert events == ["visit_near", "visit_called"]  # first in the queue: its turn is near


def test_not_shown_pressed_while_another_desk_admits_the_number_keeps_the_intake(app, users):
    """Desk B's screen still shows the number called; desk A admits its customer meanwhile.
    B's "not shown" is refused: the number stays served, as its ticket says."""
    from servicedesk.services import reception
    from servicedesk.services.tickets import default_branch

    from .conftest import INTAKE

    branch = default_branch()
    visit_id = reception.issue_number(branch, "repair").id
    reception.call_next(branch, "1")
    with app.app_context():
        seen = visits.get(visit_id)
        assert seen.status == "called"
        with app.app_context():  # the other desk, in its own request
            reception.admit({**INTAKE, "visit_id": visit_id}, Actor.staff(users["reception"]))
        with pytest.raises(Conflict):
            visits.no_show(seen)
        with pytest.raises(Conflict):
            visits.serve(seen)
        db.session.commit()
        db.session.remove()
    db.session.expire_all()
    assert db.session.get(Visit, visit_id).status == "served"


def test_admitting_a_number_marked_not_present_says_so_and_a_call_again_admits_it(api, users):
    """Not "already served": the number was marked as not present when called, and the desk's
    "Call again" brings it back, after which it is admitted."""
    from servicedesk.i18n import localize_digits
    from servicedesk.services import reception

    from .conftest import INTAKE
    from .test_api import row_counts

    visit = api["reception"].post("/api/v1/visits", json={"service": "repair"}).get_json()
    api["reception"].post("/api/v1/visits/next", json={"counter": "2"})
    reception.no_show(visit["id"])
    before = row_counts()
    resp = api["reception"].post("/api/v1/tickets", json={**INTAKE, "visit_id": visit["id"]})
    assert resp.status_code == 409, resp.get_json()
    body = resp.get_json()
    assert (body["code"], body["visit_status"]) == ("conflict", "no_show")
    assert "R-۰۰۱" in body["error"] and "«مراجعه نکرد»" in body["error"]
    assert "رسیدگی شده" not in body["error"]  # not "already served"
    assert row_counts() == before
    reception.recall(visit["id"], users["reception"])
    admitted = api["reception"].post("/api/v1/tickets", json={**INTAKE, "visit_id": visit["id"]})
    assert admitted.status_code == 201
    again = api["reception"].post("/api/v1/tickets", json={**INTAKE, "visit_id": visit["id"]})
    assert again.status_code == 409 and again.get_json()["visit_status"] == "served"
    assert localize_digits(admitted.get_json()["number"]) in again.get_json()["error"]
