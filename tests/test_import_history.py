"""import-history (DESIGN section 5): past tickets from JSON Lines, replayed through the lifecycle,
with their own timestamps, no SMS, idempotent by external_id, a bad line reported by number and
leaving nothing behind; and verify-audit over what was imported."""
import json
import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from servicedesk.extensions import db
from servicedesk.lifecycle import verify_chain
from servicedesk.models import (CostLine, Customer, Device, Notification, SurveyResponse,
                                Ticket, TicketEvent, Visit)
from servicedesk.models.stages import TicketStage
from servicedesk.services.importer import import_lines

from .conftest import INTAKE


@pytest.fixture
def app_config():
    """An English shop: the command's words are the shop's language (the Persian one below)."""
    return {"SERVICEDESK_LOCALE": "en"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


DELIVERED = {
    "external_id": "old-1001",
    "customer": {"name": "Hamid Karimi", "phone": "09351234567", "language": "en"},
    "device": {"kind": "phone", "brand": "Apple", "model": "iPhone 13"},
    "problem": "Battery drains fast",
    "technician": "technician1",
    "visit": {"issued_at": "2024-05-01T06:00:00Z", "called_at": "2024-05-01T06:12:30Z"},
    "events": [
        {"event": "admit", "at": "2024-05-01T06:20:00Z", "actor": "reception1"},
        {"event": "send_to_repair", "at": "2024-05-01T07:00:00Z", "actor": "reception1"},
        {"event": "quote", "at": "2024-05-01T09:30:00Z", "actor": "technician1",
         "data": {"promised_date": "2024-05-04"}},
        {"event": "approve", "at": "2024-05-01T14:00:00+03:30", "actor": "reception1",
         "data": {"channel": "phone"}},
        {"event": "finish", "at": "2024-05-02T11:00:00Z", "actor": "technician1",
         "data": {"work_done": "New battery"}},
        {"event": "deliver", "at": "2024-05-03T08:00:00Z", "actor": "reception1",
         "data": {"amount_paid": 9_000_000}},
        {"event": "close", "at": "2024-05-03T18:00:00Z"},
    ],
    "lines": [
        {"stage": "estimate", "kind": "part", "description": "Battery", "qty": 1,
         "unit_price": 7_000_000},
        {"stage": "estimate", "kind": "labour", "description": "Fitting", "qty": 1,
         "unit_price": 1_500_000},
        {"stage": "final", "kind": "part", "description": "Battery", "qty": 1,
         "unit_price": 7_000_000},
        {"stage": "final", "kind": "labour", "description": "Fitting", "qty": 1,
         "unit_price": 2_000_000},
    ],
    "survey": {"csat": 5, "nps": 9, "comment": "Quick and clean", "at": "2024-05-03T17:59:00Z"},
}

DECLINED = {
    "external_id": "old-1002",
    "customer": {"name": "زهرا موسوی", "phone": "09191234567"},
    "device": {"kind": "phone", "brand": "Xiaomi", "model": "Redmi Note 12"},
    "problem": "Does not charge",
    "events": [
        {"event": "admit", "at": "2024-06-10T05:00:00Z", "actor": "someone_from_old_system"},
        {"event": "send_to_repair", "at": "2024-06-10T05:30:00Z"},
        {"event": "quote", "at": "2024-06-11T09:00:00Z", "actor": "old_technician"},
        {"event": "decline", "at": "2024-06-11T12:00:00Z", "actor": "customer",
         "data": {"reason": "too expensive"}},
    ],
    "lines": [{"stage": "estimate", "kind": "part", "description": "Charging port", "qty": 1,
               "unit_price": 3_000_000}],
}

CANCELLED = {
    "external_id": "old-1003",
    "customer": {"name": "Leila Ahmadi", "phone": "09361234567"},
    "device": {"kind": "tablet", "brand": "Samsung", "model": "Tab S7"},
    "problem": "Screen flickers",
    "events": [
        {"event": "admit", "at": "2024-07-01T09:00:00Z"},
        {"event": "cancel", "at": "2024-07-01T09:45:00Z", "data": {"reason": "changed mind"}},
    ],
}


def write_jsonl(tmp_path, lines, name="history.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l, ensure_ascii=False)
                              for l in lines) + "\n", encoding="utf-8")
    return path


def run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    text = result.output + (getattr(result, "stderr", "") or "")
    return result, text


def ticket_by_external(external_id: str) -> Ticket:
    db.session.expire_all()
    return db.session.scalar(select(Ticket).where(Ticket.external_id == external_id))


def test_import_three_tickets_keeps_times_states_and_sends_nothing(app, users, tmp_path):
    path = write_jsonl(tmp_path, [DELIVERED, DECLINED, CANCELLED])
    result, text = run(app, "import-history", str(path))
    assert result.exit_code == 0, text
    assert "Imported 3" in text and "already present 0" in text and "failed 0" in text

    assert count(Ticket) == 3
    assert count(Notification) == 0

    delivered = ticket_by_external("old-1001")
    assert delivered.state == "closed"
    assert [e.event for e in delivered.events] == [
        "admit", "send_to_repair", "quote", "approve", "finish", "deliver", "close"]
    expected_at = [utc("2024-05-01T06:20:00"), utc("2024-05-01T07:00:00"),
                   utc("2024-05-01T09:30:00"), utc("2024-05-01T10:30:00"),  # 14:00 +03:30
                   utc("2024-05-02T11:00:00"), utc("2024-05-03T08:00:00"),
                   utc("2024-05-03T18:00:00")]
    assert [e.at for e in delivered.events] == expected_at
    assert delivered.created_at == utc("2024-05-01T06:00:00")  # the timeline starts at arrival
    # known users are linked, the close is the customer's (the survey was answered)
    assert delivered.events[0].actor_id == users["reception"].id
    assert delivered.events[2].actor_id == users["technician"].id
    assert delivered.events[-1].actor_kind == "customer"
    assert delivered.technician.username == "technician1"
    assert delivered.estimate_total == 8_500_000
    assert delivered.final_total == 9_000_000
    assert delivered.amount_paid == 9_000_000
    assert delivered.promised_date.isoformat() == "2024-05-04"
    assert verify_chain(delivered) is None

    visit = delivered.visit
    assert visit is not None and visit.status == "served"
    assert visit.issued_at == utc("2024-05-01T06:00:00")
    assert visit.called_at == utc("2024-05-01T06:12:30")
    assert visit.served_at == utc("2024-05-01T06:20:00")
    assert visit.label == "R-001"
    admit = delivered.events[0]
    assert admit.data["visit"] == "R-001"
    assert admit.data["waited_seconds"] == 20 * 60
    queue_wait = db.session.scalar(select(TicketStage).where(
        TicketStage.ticket_id == delivered.id, TicketStage.stage == "queue_wait"))
    assert queue_wait is not None and queue_wait.seconds == 12 * 60 + 30
    approval = db.session.scalar(select(TicketStage).where(
        TicketStage.ticket_id == delivered.id, TicketStage.stage == "approval"))
    assert approval.seconds == 60 * 60  # quote 09:30 UTC -> approve 14:00 Tehran (10:30 UTC)

    survey = db.session.scalar(select(SurveyResponse).where(
        SurveyResponse.ticket_id == delivered.id))
    assert (survey.csat, survey.nps, survey.comment) == (5, 9, "Quick and clean")
    assert delivered.events[-1].data.get("survey_response_id") == survey.id

    declined = ticket_by_external("old-1002")
    assert declined.state == "ready"
    assert [e.event for e in declined.events] == ["admit", "send_to_repair", "quote", "decline"]
    assert [e.at for e in declined.events] == [
        utc("2024-06-10T05:00:00"), utc("2024-06-10T05:30:00"), utc("2024-06-11T09:00:00"),
        utc("2024-06-11T12:00:00")]
    assert declined.events[0].actor_name == "someone_from_old_system"
    assert declined.events[-1].actor_kind == "customer"
    assert declined.estimate_total == 3_000_000 and declined.final_total is None
    assert declined.visit is None
    assert declined.customer.phone == "+989191234567"

    cancelled = ticket_by_external("old-1003")
    assert cancelled.state == "cancelled"
    assert [(e.event, e.at) for e in cancelled.events] == [
        ("admit", utc("2024-07-01T09:00:00")), ("cancel", utc("2024-07-01T09:45:00"))]
    assert cancelled.events[-1].data["reason"] == "changed mind"

    # Re-importing the same file adds nothing.
    events_before = count(TicketEvent)
    result, text = run(app, "import-history", str(path))
    assert result.exit_code == 0, text
    assert "Imported 0" in text and "already present 3" in text
    assert count(Ticket) == 3
    assert count(TicketEvent) == events_before
    assert count(Customer) == 3 and count(Visit) == 1
    assert count(Notification) == 0


def test_bad_lines_are_reported_by_number_and_leave_nothing(app, users, tmp_path):
    good_first = {**CANCELLED, "external_id": "good-1"}
    impossible = {
        "external_id": "bad-2",
        "customer": {"name": "Bad Two", "phone": "09120000002"},
        "device": {"kind": "phone", "brand": "Nokia", "model": "G21"},
        "problem": "Wet",
        "visit": {"issued_at": "2024-08-01T06:00:00Z", "called_at": "2024-08-01T06:05:00Z"},
        "events": [{"event": "admit", "at": "2024-08-01T06:10:00Z"},
                   {"event": "finish", "at": "2024-08-01T09:00:00Z"}],
        "lines": [{"stage": "final", "kind": "labour", "description": "Drying", "qty": 1,
                   "unit_price": 500_000}],
    }
    broken_json = '{"external_id": "bad-3", "customer": {"name": "Bad Three", '
    no_external_id = {k: v for k, v in CANCELLED.items() if k != "external_id"}
    no_external_id["customer"] = {"name": "Bad Four", "phone": "09120000004"}
    bad_phone = {**CANCELLED, "external_id": "bad-5",
                 "customer": {"name": "Bad Five", "phone": "12345"}}
    good_last = {**DECLINED, "external_id": "good-6"}
    path = write_jsonl(tmp_path, [good_first, impossible, broken_json, no_external_id,
                                  bad_phone, good_last])

    result, text = run(app, "import-history", str(path))
    assert result.exit_code != 0
    reported = {}
    for line in text.splitlines():
        if line.startswith("Line "):
            number, _, reason = line[len("line "):].partition(":")
            reported[int(number)] = reason.strip()
    assert sorted(reported) == [2, 3, 4, 5], text
    assert all(reported.values()), reported  # each with a reason
    assert "finish" in reported[2] and "intake" in reported[2]  # names the event and the state
    assert "JSON" in reported[3]
    assert "external_id" in reported[4]
    assert "phone" in reported[5]
    assert "Imported 2" in text and "failed 4" in text

    db.session.expire_all()
    assert sorted(db.session.scalars(select(Ticket.external_id))) == ["good-1", "good-6"]
    assert count(Ticket) == 2
    assert count(Customer) == 2
    assert count(Device) == 2
    assert count(TicketEvent) == len(good_first["events"]) + len(good_last["events"])
    assert count(Visit) == 0
    assert count(CostLine) == 1  # good-6's estimate line; none of bad-2's final line
    assert count(TicketStage, TicketStage.ticket_id.not_in(select(Ticket.id))) == 0
    assert count(Customer, Customer.phone.in_(
        ["+989120000002", "+989120000004", "+989120000005"])) == 0
    assert count(Customer, Customer.name.like("Bad %")) == 0
    assert count(Device, Device.brand == "Nokia") == 0
    assert count(Notification) == 0
    # A rolled-back line took no ticket number: numbers stay gap-free.
    assert sorted(db.session.scalars(select(Ticket.number))) == ["A-00001", "A-00002"]

    # The good lines are now present; the whole file again imports nothing twice.
    result, text = run(app, "import-history", str(path))
    assert "Imported 0" in text and "already present 2" in text and "failed 4" in text
    assert count(Ticket) == 2


def test_import_lines_directly(app, users):
    report = import_lines([json.dumps(CANCELLED), "", "   ", json.dumps(CANCELLED),
                           "[1, 2]"])
    assert report.imported == 1 and report.skipped == 1
    assert [n for n, _ in report.errors] == [5]
    assert count(Ticket) == 1 and count(Notification) == 0


def test_import_rejects_admit_not_first_and_unknown_events(app, users):
    not_first = {**CANCELLED, "external_id": "x-1",
                 "events": [{"event": "cancel", "at": "2024-07-01T09:00:00Z"}]}
    twice = {**CANCELLED, "external_id": "x-2",
             "events": [{"event": "admit", "at": "2024-07-01T09:00:00Z"},
                        {"event": "admit", "at": "2024-07-01T09:01:00Z"}]}
    unknown = {**CANCELLED, "external_id": "x-3",
               "events": [{"event": "admit", "at": "2024-07-01T09:00:00Z"},
                          {"event": "teleport", "at": "2024-07-01T09:01:00Z"}]}
    bad_time = {**CANCELLED, "external_id": "x-4",
                "events": [{"event": "admit", "at": "yesterday"}]}
    report = import_lines(json.dumps(r) for r in (not_first, twice, unknown, bad_time))
    assert report.imported == 0
    assert [n for n, _ in report.errors] == [1, 2, 3, 4]
    assert count(Ticket) == 0 and count(Customer) == 0 and count(TicketEvent) == 0


def test_import_rejects_time_running_backwards(app, users):
    """Events (and the visit before the admission) must be in time order: otherwise the stage
    durations of the turnaround reports come out negative."""
    backwards = {**CANCELLED, "external_id": "t-1", "events": [
        {"event": "admit", "at": "2024-07-01T09:00:00Z"},
        {"event": "cancel", "at": "2024-07-01T08:59:59Z", "data": {"reason": "r"}}]}
    issued_after_admit = {**DELIVERED, "external_id": "t-2",
                          "visit": {"issued_at": "2024-05-01T06:30:00Z"}}
    called_before_issued = {**DELIVERED, "external_id": "t-3",
                            "visit": {"issued_at": "2024-05-01T06:10:00Z",
                                      "called_at": "2024-05-01T06:05:00Z"}}
    same_instant = {**CANCELLED, "external_id": "t-4", "events": [
        {"event": "admit", "at": "2024-07-01T09:00:00Z"},
        {"event": "cancel", "at": "2024-07-01T09:00:00Z", "data": {"reason": "r"}}]}
    report = import_lines(json.dumps(r) for r in (backwards, issued_after_admit,
                                                  called_before_issued, same_instant))
    assert [n for n, _ in report.errors] == [1, 2, 3]
    assert "events[2]" in report.errors[0][1]
    assert "visit" in report.errors[1][1] and "visit" in report.errors[2][1]
    assert report.imported == 1
    assert [t.external_id for t in db.session.scalars(select(Ticket))] == ["t-4"]
    assert count(Visit) == 0
    assert count(TicketStage, TicketStage.seconds < 0) == 0


def test_import_rejects_a_survey_of_a_device_never_handed_back(app, users):
    """It would count in the satisfaction reports of a ticket that has no hand-back."""
    survey_of_cancelled = {**CANCELLED, "external_id": "s-1", "survey": {"csat": 1}}
    report = import_lines(json.dumps(r) for r in (survey_of_cancelled, DELIVERED))
    assert [n for n, _ in report.errors] == [1] and "survey" in report.errors[0][1]
    assert report.imported == 1
    assert [t.external_id for t in db.session.scalars(select(Ticket))] == ["old-1001"]
    assert count(SurveyResponse) == 1


def test_import_rejects_an_overlong_external_id(app, users):
    """Reported as a line error on every database (PostgreSQL would refuse the row)."""
    report = import_lines([json.dumps({**CANCELLED, "external_id": "x" * 81}),
                           json.dumps({**CANCELLED, "external_id": "y" * 80})])
    assert [n for n, _ in report.errors] == [1]
    assert "external_id" in report.errors[0][1]
    assert "SQL" not in report.errors[0][1]
    assert report.imported == 1 and count(Ticket) == 1


def test_verify_audit_after_import_and_after_tampering(app, users, tmp_path):
    path = write_jsonl(tmp_path, [DELIVERED, DECLINED, CANCELLED])
    result, text = run(app, "import-history", str(path))
    assert result.exit_code == 0, text

    result, text = run(app, "verify-audit")
    assert result.exit_code == 0, text
    assert "Audit chain intact" in text

    ticket = ticket_by_external("old-1002")
    number = ticket.number
    quote = next(e for e in ticket.events if e.event == "quote")
    tampered = dict(quote.data, total=1)
    db.session.execute(
        sa.text("UPDATE ticket_events SET data = :data WHERE id = :id")
        .bindparams(sa.bindparam("data", type_=sa.JSON)),
        {"data": tampered, "id": quote.id})
    db.session.commit()
    db.session.expire_all()

    result, text = run(app, "verify-audit")
    assert result.exit_code != 0
    assert f"Ticket {number}: chain broken at event {quote.seq}" in text
    assert "1 ticket(s)" in text
    assert "Audit chain intact" not in text
    # only the edited ticket is reported
    others = [t.number for t in db.session.scalars(select(Ticket)) if t.number != number]
    assert all(f"Ticket {n}:" not in text for n in others)


def test_a_survey_without_a_comment_imports(app, users):
    """Old systems write an empty comment as ""; it is optional, so it is no comment."""
    blank = {**DELIVERED, "external_id": "old-blank",
             "survey": {**DELIVERED["survey"], "comment": ""}}
    report = import_lines([json.dumps(blank)])
    assert report.imported == 1 and report.errors == []
    assert db.session.scalar(select(SurveyResponse.comment)) == ""


def test_history_keeps_a_part_that_came_after_the_promised_date(app, users):
    """The desk refuses a part expected after the promise (the customer would be told two dates);
    history records what happened, so an old repair that ran late still imports."""
    events = DELIVERED["events"]
    late = {**DELIVERED, "external_id": "old-late", "survey": None, "events": [
        *events[:4],
        {"event": "wait_parts", "at": "2024-05-02T08:00:00Z", "actor": "technician1",
         "data": {"part": "Battery", "expected_date": "2024-05-09"}},
        {"event": "resume", "at": "2024-05-09T08:00:00Z", "actor": "technician1"},
        {"event": "finish", "at": "2024-05-09T11:00:00Z", "actor": "technician1"},
    ]}
    report = import_lines([json.dumps(late)])
    assert (report.imported, report.errors) == (1, [])
    ticket = db.session.scalar(select(Ticket).where(Ticket.external_id == "old-late"))
    assert ticket.state == "ready" and ticket.promised_date.isoformat() == "2024-05-04"
    assert ticket.events[4].data["expected_date"] == "2024-05-09"


def test_history_of_a_technician_who_left_imports(app, users):
    """Their account deactivated: the repairs still import, credited to them (an "assign"
    record after the send to repair). No account here at all: imported, unassigned, the name
    kept in the admit's data."""
    from servicedesk.services.admin import deactivate_user
    deactivate_user(users["admin"], users["technician"].id)
    gone = {**DELIVERED, "external_id": "left-1"}
    stranger = {**DELIVERED, "external_id": "left-2", "technician": "old_technician",
                "customer": {**DELIVERED["customer"], "phone": "09351234568"}}
    report = import_lines([json.dumps(gone), json.dumps(stranger)])
    assert report.errors == [] and report.imported == 2
    ticket = ticket_by_external("left-1")
    assert ticket.technician_id == users["technician"].id and ticket.state == "closed"
    assert [e.event for e in ticket.events][1:3] == ["send_to_repair", "assign"]
    other = ticket_by_external("left-2")
    assert other.technician_id is None
    assert other.events[0].data["technician_name"] == "old_technician"
    assert verify_chain(ticket) is None and verify_chain(other) is None


def test_importing_an_old_ticket_leaves_a_known_customers_language(app, users, make_ticket):
    """Served in Persian today; an English record from 2024 does not switch their SMS."""
    make_ticket("intake", intake={**INTAKE, "customer": {
        "name": "Hamid Karimi", "phone": "09351234567", "language": "fa"}})
    assert import_lines([json.dumps(DELIVERED)]).imported == 1
    db.session.expire_all()
    customer = db.session.scalar(select(Customer).where(Customer.phone == "+989351234567"))
    assert customer.language == "fa"


def test_a_numeric_external_id_is_the_same_ticket_as_its_text(app, users):
    """An old system's ids are often numbers: 1003 imports, and "1003" afterwards is the
    ticket already there (idempotent), not a second one."""
    report = import_lines([json.dumps({**CANCELLED, "external_id": 1003}),
                           json.dumps({**CANCELLED, "external_id": "1003"})])
    assert (report.imported, report.skipped, report.errors) == (1, 1, [])
    assert ticket_by_external("1003") is not None and count(Ticket) == 1


def test_an_external_id_of_another_kind_is_called_that_not_missing(app, users):
    report = import_lines([json.dumps({**CANCELLED, "external_id": ["x"]}),
                           json.dumps({**CANCELLED, "external_id": None}),
                           json.dumps({**CANCELLED, "external_id": True})])
    assert [n for n, _ in report.errors] == [1, 2, 3]
    wrong_kind, missing, boolean = (message for _, message in report.errors)
    assert wrong_kind != missing and boolean == wrong_kind
    assert count(Ticket) == 0


def _with_loan(external_id, loan_events, deliver_data=None):
    events = [dict(e) for e in DELIVERED["events"]]
    events[-2] = {**events[-2], "data": {**events[-2].get("data", {}), **(deliver_data or {})}}
    return {**DELIVERED, "external_id": external_id, "survey": None,
            "events": events[:1] + loan_events + events[1:]}


LENT = {"event": "lend_loaner", "at": "2024-05-01T06:25:00Z", "actor": "reception1",
        "data": {"description": "Nokia 105", "serial": "490154203237518"}}


def test_history_imports_a_loaner_lent_and_taken_back(app, users):
    """A loaner lent at intake and taken back (damaged) before the hand-back, each at its own
    time, in the trail as a live one would be; or taken back with the hand-back."""
    from servicedesk.lifecycle import verify_records
    from servicedesk.models import Loan
    back = {"event": "return_loaner", "at": "2024-05-01T06:40:00Z", "actor": "reception1",
            "data": {"condition": "damaged", "note": "cracked screen"}}
    with_deliver = _with_loan("loan-2", [LENT], {"loaner_returned": True,
                                                 "loaner_condition": "fine"})
    report = import_lines([json.dumps(_with_loan("loan-1", [LENT, back])),
                           json.dumps(with_deliver)])
    assert report.errors == [] and report.imported == 2
    for external_id in ("loan-1", "loan-2"):
        ticket = db.session.scalar(select(Ticket).where(Ticket.external_id == external_id))
        (loan,) = db.session.scalars(select(Loan).where(Loan.ticket_id == ticket.id)).all()
        assert loan.lent_at == utc("2024-05-01T06:25:00") and loan.lent_by_name == "reception1"
        assert ticket.state == "closed"
        assert verify_chain(ticket) is None and verify_records(ticket) == []
    assert (loan.returned_at, loan.return_condition) == (utc("2024-05-03T08:00:00"), "fine")
    first = db.session.scalar(select(Ticket).where(Ticket.external_id == "loan-1"))
    back_row = [e for e in first.events if e.event == "return_loaner"][0]
    assert back_row.at == utc("2024-05-01T06:40:00") and back_row.data["note"] == "cracked screen"
    assert count(Notification) == 0


def test_history_with_a_loaner_never_taken_back_is_refused(app, users):
    """The hand-back with the loaner still out, a return of none, a second one out at once, a
    phone of the list: errors of their line, which imports nothing."""
    second = dict(LENT, at="2024-05-01T06:26:00Z")
    back = {"event": "return_loaner", "at": "2024-05-01T06:25:00Z", "actor": "reception1"}
    by_id = dict(LENT, data={"loaner_id": 1})
    report = import_lines(json.dumps(r) for r in (
        _with_loan("bad-1", [LENT]), _with_loan("bad-2", [back]),
        _with_loan("bad-3", [LENT, second]), _with_loan("bad-4", [by_id])))
    assert [n for n, _ in report.errors] == [1, 2, 3, 4]
    assert [m.split(":", 1)[0] for _, m in report.errors] == [
        "events[7] (deliver)", "events[2] (return_loaner)", "events[3] (lend_loaner)",
        "events[2] (lend_loaner)"]
    assert count(Ticket) == 0 and count(TicketEvent) == 0


def test_a_timestamp_in_the_future_refuses_its_line_by_number(app, users, tmp_path):
    """History has happened: a year typed 2052 for 2025 is refused, not imported to sit in
    the reports' future."""
    future = {**CANCELLED, "external_id": "future-2",
              "events": [{"event": "admit", "at": "2024-07-01T09:00:00Z"},
                         {"event": "cancel", "at": "2099-07-01T09:45:00Z",
                          "data": {"reason": "changed mind"}}]}
    future_visit = {**DELIVERED, "external_id": "future-3",
                    "visit": {"issued_at": "2099-05-01T06:00:00Z"}}
    future_survey = {**DELIVERED, "external_id": "future-4",
                     "survey": {**DELIVERED["survey"], "at": "2099-05-03T17:59:00Z"}}
    path = write_jsonl(tmp_path, [CANCELLED, future, future_visit, future_survey])
    result, text = run(app, "import-history", str(path))
    assert result.exit_code != 0
    for number, what in ((2, "events[2].at"), (3, "visit.issued_at"), (4, "survey.at")):
        [said] = {l for l in text.splitlines() if l.startswith(f"Line {number}:")}
        assert what in said and "2099" in said, said
    assert sorted(db.session.scalars(select(Ticket.external_id))) == ["old-1003"]
    assert count(Customer) == 1 and count(TicketEvent) == 2 and count(SurveyResponse) == 0


def test_cost_lines_no_event_takes_are_reported_by_number(app, users, tmp_path):
    """A ticket still in repair with its bill already in the export: the final lines are not
    silently dropped; the line says which were not imported."""
    in_repair = {**DELIVERED, "external_id": "in-repair", "survey": None,
                 "events": DELIVERED["events"][:4]}
    own_lines = {**DECLINED, "external_id": "own-lines",
                 "events": [*DECLINED["events"][:2],
                            {**DECLINED["events"][2], "data": {"lines": [
                                {"kind": "part", "description": "Port", "qty": 1,
                                 "unit_price": 2_000_000}]}},
                            DECLINED["events"][3]]}
    path = write_jsonl(tmp_path, [in_repair, own_lines, CANCELLED])
    result, text = run(app, "import-history", str(path))
    assert result.exit_code == 0, text
    assert "Imported 3" in text
    said = {int(l[5:].partition(":")[0]): l for l in text.splitlines() if l.startswith("Line ")}
    assert sorted(said) == [1, 2], text
    assert "3, 4" in said[1] and "final" in said[1] and "finish" in said[1]
    assert "1" in said[2] and "estimate" in said[2] and "quote" in said[2]
    assert ticket_by_external("in-repair").state == "repair"
    assert ticket_by_external("own-lines").estimate_total == 2_000_000


def test_an_imported_amount_refused_is_named_in_rials_as_in_the_file(app, users, tmp_path):
    paid_wrong = {**DELIVERED, "external_id": "paid-wrong", "survey": None,
                  "events": [*DELIVERED["events"][:5],
                             {"event": "deliver", "at": "2024-05-03T08:00:00Z",
                              "data": {"amount_paid": 8_000_000, "differs_ok": False}}]}
    result, text = run(app, "import-history", str(write_jsonl(tmp_path, [paid_wrong])))
    assert result.exit_code != 0
    [said] = {l for l in text.splitlines() if l.startswith("Line 1:")}
    assert "9,000,000 rial" in said and "toman" not in said, said


class TestInAPersianShop:
    @pytest.fixture
    def app_config(self):
        return {"SERVICEDESK_LOCALE": "fa"}

    def test_the_command_says_everything_in_persian(self, app, users, tmp_path):
        """One language per output: the shop's. The line numbers, the domain's errors and the
        command's own words ("line", "imported") were English and Persian mixed."""
        bad_phone = {**CANCELLED, "external_id": "bad-2",
                     "customer": {"name": "Bad Two", "phone": "12345"}}
        result, text = run(app, "import-history",
                           str(write_jsonl(tmp_path, [CANCELLED, bad_phone])))
        assert result.exit_code != 0
        said = set(text.splitlines())
        assert said == {next(l for l in said if l.startswith("سطر ۲: ")),
                        "واردشده ۱، از پیش موجود ۰، ناموفق ۱."}, said
        problem = next(l for l in said if l.startswith("سطر ۲: "))
        # no English word but the field's name (as the file spells it)
        assert not re.search(r"[A-Za-z]{3,}", re.sub(r"customer\.phone", "", problem)), problem
