"""Stage rows (servicedesk/stages.py): written by the lifecycle as each stage closes, the same
rows derived in bulk from the event log (``rebuild``, the migration's backfill), on SQLite and
PostgreSQL."""
import importlib.util
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, text

from servicedesk import stages
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.models.stages import TicketStage
from servicedesk.services import tickets as svc
from servicedesk.services.importer import import_lines

from .conftest import ROOT, SAMPLE_DATA, actor_for
from .test_reports import history  # noqa: F401  (the fixture)


def rows_of(ticket_id=None):
    query = select(TicketStage).order_by(TicketStage.ticket_id, TicketStage.stage)
    if ticket_id is not None:
        query = query.where(TicketStage.ticket_id == ticket_id)
    return [(s.ticket_id, s.stage, s.started_at, s.ended_at, s.seconds, s.end_event,
             s.branch_id, s.technician_id, s.service_type, s.brand)
            for s in db.session.scalars(query)]


def stage_seconds(ticket_id):
    return {row[1]: row[4] for row in rows_of(ticket_id)}


def test_each_stage_is_written_when_it_closes(app, users, make_ticket):
    ticket = make_ticket("diagnosis")
    assert set(stage_seconds(ticket.id)) == {"intake"}
    for event in ("quote", "approve", "wait_parts", "resume", "finish"):
        svc.fire_event(ticket.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))
    assert set(stage_seconds(ticket.id)) == {"intake", "diagnosis", "approval", "repair",
                                             "waiting_parts"}
    svc.fire_event(ticket.id, "deliver", actor_for("deliver", users),
                   dict(SAMPLE_DATA["deliver"]))
    row = {r[1]: r for r in rows_of(ticket.id)}
    assert set(row) == {"intake", "diagnosis", "approval", "repair", "waiting_parts", "pickup",
                        "total"}
    assert row["repair"][7] == users["technician"].id  # the technician assigned at the time
    assert row["total"][9] == "Samsung" and row["total"][8] == "repair"


def test_history_stage_durations(history):  # noqa: F811
    ids = {t: i for i, t in enumerate(("T1", "T2", "T3", "T4", "T5", "T6", "T7"), start=1)}
    assert stage_seconds(ids["T1"]) == {
        "queue_wait": 600, "intake": 3600, "diagnosis": 7200, "approval": 3600,
        "repair": 14400, "pickup": 57600, "total": 86400,
        "returned": 14 * 86400 - 15 * 60}  # T7 brought the phone back
    # two waits (24 h and 2 h) come out of the repair and make one waiting_parts row
    assert stage_seconds(ids["T2"]) == {
        "queue_wait": 1800, "intake": 7200, "diagnosis": 14400, "approval": 64800,
        "repair": 21600, "waiting_parts": 93600, "pickup": 57600, "total": 259200}
    # declined: the approval ends at the decline, the pickup starts there
    t3 = {r[1]: r for r in rows_of(ids["T3"])}
    assert t3["approval"][4:6] == (86400, "decline")
    assert t3["pickup"][4] == 7200 and "repair" not in t3
    assert set(stage_seconds(ids["T4"])) == {"queue_wait", "intake", "diagnosis", "approval"}
    assert stage_seconds(ids["T6"]) == {} and stage_seconds(ids["T7"]) == {}
    # the waiting_parts row spans the first wait to the last resume
    wp = {r[1]: r for r in rows_of(ids["T2"])}["waiting_parts"]
    assert (wp[2], wp[3]) == (datetime(2026, 1, 13, 8, 40, tzinfo=timezone.utc),
                              datetime(2026, 1, 14, 12, 40, tzinfo=timezone.utc))


def test_durations_are_whole_seconds_of_truncated_ends():
    a = datetime(2026, 1, 1, 10, 0, 0, 900000, tzinfo=timezone.utc)
    b = datetime(2026, 1, 1, 10, 0, 2, 100000, tzinfo=timezone.utc)
    assert stages.duration(a, b) == 2  # 10:00:00 -> 10:00:02, as the SQL computes it
    assert stages.duration(b, b) == 0


def test_rebuild_derives_the_same_rows_from_the_event_log(history):  # noqa: F811
    written = rows_of()
    assert len(written) > 20
    stages.rebuild()
    db.session.commit()
    assert rows_of() == written


def test_the_migration_backfill_derives_the_same_rows(history):  # noqa: F811
    """Migration 0002 fills ticket_stages for the tickets already there: its frozen copy of the
    statements gives what the lifecycle writes."""
    path = ROOT / "migrations" / "versions" / "0002_reports.py"
    spec = importlib.util.spec_from_file_location("migration_0002", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    written = rows_of()
    conn = db.session.connection()
    conn.execute(text("DELETE FROM ticket_stages"))
    for statement in migration._backfill(conn.dialect.name):
        conn.execute(text(statement))
    db.session.commit()
    assert rows_of() == written


def test_rebuild_of_some_tickets_only(history):  # noqa: F811
    before = rows_of()
    db.session.execute(text("UPDATE ticket_stages SET seconds = -1 WHERE ticket_id = 2"))
    stages.rebuild(where="t.id = 2")
    db.session.commit()
    assert rows_of() == before


def test_a_return_is_recorded_once_on_the_repaired_ticket(app, users):
    def record(ext, admit, deliver=None, repaired=True):
        events = [{"event": "admit", "at": admit}]
        if deliver:
            if repaired:
                events += [{"event": "send_to_repair", "at": admit},
                           {"event": "quote", "at": admit}, {"event": "approve", "at": admit},
                           {"event": "finish", "at": deliver}]
            else:
                events += [{"event": "send_to_repair", "at": admit},
                           {"event": "return_unrepaired", "at": deliver,
                            "data": {"reason": "no parts"}}]
            events.append({"event": "deliver", "at": deliver})
        return json.dumps({"external_id": ext, "customer": {"name": "X", "phone": "09121234567"},
                           "device": {"kind": "phone", "brand": "Nokia", "model": "G21"},
                           "problem": "p", "events": events,
                           "lines": [{"stage": "estimate", "kind": "part", "description": "x",
                                      "qty": 1, "unit_price": 10}]})
    report = import_lines([
        record("R1", "2026-01-01T06:00:00Z", "2026-01-02T06:00:00Z", repaired=False),
        record("R2", "2026-01-03T06:00:00Z", "2026-01-04T06:00:00Z"),
        record("R3", "2026-01-10T06:00:00Z"),  # comes back: R2 (repaired), not R1
        record("R4", "2026-01-11T06:00:00Z"),  # R2 already has its return
    ])
    assert report.errors == []
    returned = [r for r in rows_of() if r[1] == "returned"]
    assert [(r[0], r[4]) for r in returned] == [(2, 6 * 86400)]


def test_stage_rows_roll_back_with_the_event(app, users, make_ticket):
    ticket = make_ticket("intake")
    with pytest.raises(Exception):
        with svc.committing():
            from servicedesk import lifecycle
            lifecycle.fire(ticket, "send_to_repair", Actor.staff(users["reception"]), {})
            raise RuntimeError("the action fails after the event")
    db.session.expire_all()
    assert rows_of(ticket.id) == []


def test_rebuild_command(app, history):  # noqa: F811
    before = rows_of()
    db.session.execute(text("DELETE FROM ticket_stages"))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["reports", "rebuild-stages"])
    assert result.exit_code == 0, result.output
    assert f"stage rows rebuilt: {len(before)}" in result.output
    db.session.expire_all()
    assert rows_of() == before


def test_rebuild_credits_each_stage_to_the_technician_who_held_the_ticket_then(app, users):
    """A ticket diagnosed by one technician and repaired by another after the manager gave it
    on: the rows written as the stages closed credit each, and ``rebuild`` (the trail's claim,
    assign and send_to_repair records) gives the same rows, not the last holder's name on all."""
    from servicedesk.services import workbench

    from .conftest import INTAKE, add_user
    second = add_user("technician2", "technician")
    first = users["technician"]
    ticket = svc.admit(INTAKE, Actor.staff(users["reception"]))
    svc.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]),
                   {"technician": first.username})
    svc.fire_event(ticket.id, "quote", Actor.staff(first), dict(SAMPLE_DATA["quote"]))
    svc.fire_event(ticket.id, "approve", Actor.customer("127.0.0.1"), {})
    workbench.assign(ticket.id, users["manager"], second.username)
    for event in ("wait_parts", "resume", "finish"):
        svc.fire_event(ticket.id, event, Actor.staff(second), dict(SAMPLE_DATA[event]))
    svc.fire_event(ticket.id, "deliver", Actor.staff(users["reception"]),
                   dict(SAMPLE_DATA["deliver"]))
    db.session.expire_all()
    written = rows_of(ticket.id)
    by_stage = {r[1]: r[7] for r in written}
    assert by_stage["intake"] == first.id and by_stage["diagnosis"] == first.id
    assert by_stage["repair"] == second.id and by_stage["total"] == second.id
    stages.rebuild()
    db.session.commit()
    assert rows_of(ticket.id) == written
