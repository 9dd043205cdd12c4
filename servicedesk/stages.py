"""Stage durations, recorded as each stage of a ticket closes (for the turnaround reports).

The lifecycle calls ``on_event`` for every event, in the event's transaction, after the event
row is written. When the event closes a stage of DESIGN section 5, one ``TicketStage`` row is
added with the stage's two ends and its length in whole seconds:

=============  =======================================  ==========================
stage          from -> to                               written at
=============  =======================================  ==========================
queue_wait     visit issued -> visit called             admit (tickets from a visit)
intake         admit -> send_to_repair                  send_to_repair
diagnosis      send_to_repair -> quote                  quote
approval       quote -> approve | decline               approve, decline
repair         approve -> finish, minus parts waits     finish
waiting_parts  first wait_parts -> last resume;         finish (tickets that waited)
               seconds = the sum of the waits
pickup         ready (finish/decline/return) -> deliver deliver
total          admit -> deliver                         deliver
=============  =======================================  ==========================

One more row, not a turnaround stage, serves the technicians report: ``returned`` is written on
a repaired and delivered ticket when the same customer brings the same brand and model back
(admit of the later ticket): from the delivery to the new admission, so the report counts the
returns within the warranty period by comparing ``seconds``, without searching the customer's
later tickets for every repair. Only the first return of a ticket is recorded.

``rebuild`` derives the same rows from the event log in a few set-based statements (for data
written before the table existed, and for the benchmark's bulk data).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

from sqlalchemy import text

from .extensions import db
from .models._types import UTCDateTime
from .models.stages import STAGES, TicketStage

__all__ = ["STAGES", "TicketStage", "on_event", "duration", "rebuild", "rebuild_statements",
           "returns_statement", "holders_statement"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = timedelta(seconds=1)


def _epoch_second(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return (at - _EPOCH) // _SECOND


def duration(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end``: each end truncated to its second first, which
    is also what the SQL of ``rebuild`` computes on both databases."""
    return _epoch_second(end) - _epoch_second(start)


def _last(events, names: Iterable[str], before_seq: int):
    names = tuple(names)
    for e in reversed(events):
        if e.seq < before_seq and e.event in names:
            return e
    return None


def _first(events, names: Iterable[str], before_seq: int):
    names = tuple(names)
    for e in events:
        if e.seq < before_seq and e.event in names:
            return e
    return None


def _waits(events, after_seq: int, before_seq: int):
    """(total seconds, first wait event, last resume event) of the waits for parts between two
    events of one ticket."""
    total, first, last, open_wait = 0, None, None, None
    for e in events:
        if not after_seq < e.seq < before_seq:
            continue
        if e.event == "wait_parts":
            open_wait = e
            first = first or e
        elif e.event == "resume" and open_wait is not None:
            total += duration(open_wait.at, e.at)
            last, open_wait = e, None
    return total, first, last


def _row(ticket, stage: str, start: datetime, end: datetime, seconds: int,
         end_event: str) -> dict:
    technician = ticket.technician
    return dict(
        ticket_id=ticket.id, stage=stage, started_at=start, ended_at=end, seconds=seconds,
        end_event=end_event, branch_id=ticket.branch_id,
        technician_id=technician.id if technician is not None else ticket.technician_id,
        service_type=ticket.service_type, brand=ticket.device.brand)


# The events that make a ticket ready to collect (opening the pickup stage).
_READY_BY = ("finish", "decline", "return_unrepaired")
# Which stage an event closes, and which events open it.
_OPENED_BY = {
    "send_to_repair": ("intake", ("admit",)),
    "quote": ("diagnosis", ("send_to_repair",)),
    "approve": ("approval", ("quote",)),
    "decline": ("approval", ("quote",)),
}


_INSERT = TicketStage.__table__.insert()


def on_event(ticket, event_row) -> None:
    """Record the stages ``event_row`` closes, in the session's transaction (the caller
    commits). Plain INSERTs on the session's connection: nothing reads these rows as objects,
    and the ORM's unit of work would cost more than the statement."""
    event = event_row.event
    events = ticket.events
    seq, at = event_row.seq, event_row.at
    rows: list[dict] = []
    if event == "admit":
        visit = ticket.visit
        if visit is not None and visit.issued_at is not None and visit.called_at is not None:
            rows.append(_row(ticket, "queue_wait", visit.issued_at, visit.called_at,
                             duration(visit.issued_at, visit.called_at), event))
        returned = _came_back(ticket, at)
        if returned is not None:
            rows.append(returned)
    elif event in _OPENED_BY:
        stage, openers = _OPENED_BY[event]
        # A stage ends at its first closing event and starts at its first opener: a revised
        # estimate (a second quote) neither ends diagnosis again nor restarts the approval wait.
        start = _first(events, openers, seq)
        if start is not None and _last(events, (event,), seq) is None:
            rows.append(_row(ticket, stage, start.at, at, duration(start.at, at), event))
    elif event == "finish":
        start = _last(events, ("approve",), seq)
        if start is not None:
            waited, first, last = _waits(events, start.seq, seq)
            rows.append(_row(ticket, "repair", start.at, at,
                             duration(start.at, at) - waited, event))
            if first is not None and last is not None:
                rows.append(_row(ticket, "waiting_parts", first.at, last.at, waited, event))
    elif event == "deliver":
        ready = _last(events, _READY_BY, seq)
        if ready is not None:
            rows.append(_row(ticket, "pickup", ready.at, at, duration(ready.at, at), event))
        admitted = _last(events, ("admit",), seq)
        if admitted is not None:
            rows.append(_row(ticket, "total", admitted.at, at, duration(admitted.at, at), event))
    if rows:
        db.session.connection().execute(_INSERT, rows)


def _came_back(ticket, admitted_at: datetime) -> Optional[dict]:
    """The ``returned`` row of the customer's last repaired and delivered ticket for the same
    brand and model, if it has none yet (one indexed query per admission)."""
    customer_id = ticket.customer_id
    if customer_id is None or ticket.device is None:
        return None
    if getattr(ticket, "customer_is_new", False):  # written by this intake: no earlier ticket
        return None
    found = db.session.connection().execute(text(
        "SELECT t.id AS ticket_id, dl.ended_at AS delivered_at, t.branch_id AS branch_id, "
        "t.technician_id AS technician_id, t.service_type AS service_type, d.brand AS brand "
        "FROM tickets t JOIN devices d ON d.id = t.device_id "
        "JOIN ticket_stages dl ON dl.ticket_id = t.id AND dl.stage = 'pickup' "
        "JOIN ticket_stages rp ON rp.ticket_id = t.id AND rp.stage = 'repair' "
        "WHERE t.customer_id = :customer AND t.id <> :ticket AND d.brand = :brand "
        "AND d.model = :model AND NOT EXISTS (SELECT 1 FROM ticket_stages r "
        "WHERE r.ticket_id = t.id AND r.stage = 'returned') "
        "ORDER BY dl.ended_at DESC LIMIT 1").columns(delivered_at=UTCDateTime()),
        {"customer": customer_id, "ticket": ticket.id, "brand": ticket.device.brand,
         "model": ticket.device.model}).mappings().first()
    if found is None or found["delivered_at"] > admitted_at:
        return None
    return dict(
        ticket_id=found["ticket_id"], stage="returned", started_at=found["delivered_at"],
        ended_at=admitted_at, seconds=duration(found["delivered_at"], admitted_at),
        end_event="admit", branch_id=found["branch_id"], technician_id=found["technician_id"],
        service_type=found["service_type"], brand=found["brand"])


# --- the same rows from the event log, in bulk ----------------------------------------------

def _seconds_sql(dialect: str, start: str, end: str) -> str:
    if dialect == "postgresql":
        return (f"CAST(FLOOR(EXTRACT(EPOCH FROM {end})) - FLOOR(EXTRACT(EPOCH FROM {start}))"
                f" AS INTEGER)")
    return f"(CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER))"


_COLUMNS = ("ticket_id, stage, started_at, ended_at, seconds, end_event, branch_id, "
            "technician_id, service_type, brand")
_DIMS = "t.branch_id, t.technician_id, t.service_type, d.brand"


def rebuild_statements(dialect: str, where: str = "") -> list[str]:
    """SQL that inserts every stage row derivable from the event log (``dialect`` is
    ``postgresql`` or ``sqlite``). ``where`` restricts the tickets (a condition on ``t``)."""
    secs = lambda a, b: _seconds_sql(dialect, a, b)  # noqa: E731
    cond = f" AND {where}" if where else ""
    insert = f"INSERT INTO ticket_stages ({_COLUMNS}) "
    pair = ("SELECT t.id, '{stage}', s.at, e.at, {secs}, e.event, " + _DIMS + " "
            "FROM ticket_events e "
            "JOIN ticket_events s ON s.ticket_id = e.ticket_id AND s.event IN ({opens}) "
            "AND s.seq < e.seq "
            "JOIN tickets t ON t.id = e.ticket_id JOIN devices d ON d.id = t.device_id "
            "WHERE e.event IN ({closes})"
            # the first opener and the first closer (a revised estimate is a second quote)
            " AND NOT EXISTS (SELECT 1 FROM ticket_events x WHERE x.ticket_id = e.ticket_id "
            "AND ((x.event IN ({opens}) AND x.seq < s.seq) "
            "OR (x.event IN ({closes}) AND x.seq < e.seq)))" + cond)
    stmts = [
        insert + "SELECT t.id, 'queue_wait', v.issued_at, v.called_at, "
        + secs("v.issued_at", "v.called_at") + ", 'admit', "
        # nobody is assigned yet when a ticket is admitted
        "t.branch_id, NULL, t.service_type, d.brand "
        "FROM tickets t JOIN visits v ON v.id = t.visit_id "
        "JOIN devices d ON d.id = t.device_id "
        "WHERE v.called_at IS NOT NULL AND EXISTS (SELECT 1 FROM ticket_events a "
        "WHERE a.ticket_id = t.id AND a.event = 'admit')" + cond,
    ]
    for stage, opens, closes in (("intake", "'admit'", "'send_to_repair'"),
                                 ("diagnosis", "'send_to_repair'", "'quote'"),
                                 ("approval", "'quote'", "'approve', 'decline'"),
                                 ("pickup", ", ".join(f"'{e}'" for e in _READY_BY),
                                  "'deliver'"),
                                 ("total", "'admit'", "'deliver'")):
        stmts.append(insert + pair.format(stage=stage, secs=secs("s.at", "e.at"), opens=opens,
                                          closes=closes))
    # Waits for parts: the k-th wait of a ticket ends at its k-th resume.
    waits = ("WITH w AS (SELECT ticket_id, at, ROW_NUMBER() OVER (PARTITION BY ticket_id "
             "ORDER BY seq) AS k FROM ticket_events WHERE event = 'wait_parts'), "
             "r AS (SELECT ticket_id, at, ROW_NUMBER() OVER (PARTITION BY ticket_id "
             "ORDER BY seq) AS k FROM ticket_events WHERE event = 'resume'), "
             "waits AS (SELECT w.ticket_id, MIN(w.at) AS first_at, MAX(r.at) AS last_at, "
             "SUM(" + secs("w.at", "r.at") + ") AS secs FROM w "
             "JOIN r ON r.ticket_id = w.ticket_id AND r.k = w.k GROUP BY w.ticket_id) ")
    stmts.append(waits + insert + "SELECT t.id, 'repair', a.at, f.at, "
                 + secs("a.at", "f.at") + " - COALESCE(waits.secs, 0), 'finish', " + _DIMS
                 + " FROM ticket_events f "
                 "JOIN ticket_events a ON a.ticket_id = f.ticket_id AND a.event = 'approve' "
                 "JOIN tickets t ON t.id = f.ticket_id JOIN devices d ON d.id = t.device_id "
                 "LEFT JOIN waits ON waits.ticket_id = f.ticket_id "
                 "WHERE f.event = 'finish'" + cond)
    stmts.append(waits + insert + "SELECT t.id, 'waiting_parts', waits.first_at, "
                 "waits.last_at, waits.secs, 'finish', " + _DIMS + " FROM waits "
                 "JOIN ticket_events f ON f.ticket_id = waits.ticket_id AND f.event = 'finish' "
                 "JOIN tickets t ON t.id = waits.ticket_id "
                 "JOIN devices d ON d.id = t.device_id WHERE 1 = 1" + cond)
    stmts.append(holders_statement(dialect, where))
    stmts.append(returns_statement(dialect, where))
    return stmts


def _json_text(dialect: str, column: str, key: str) -> str:
    if dialect == "postgresql":
        return f"({column} ->> '{key}')"
    return f"json_extract({column}, '$.{key}')"


# The trail's entries that give a ticket to a technician (or, with none named, take it back).
_HOLDER_RECORDS = "'claim', 'assign'"


def holders_statement(dialect: str, where: str = "") -> str:
    """SQL crediting each stage row to the technician who held the ticket when the stage
    closed, as the lifecycle does: the last claim, assign or send_to_repair naming one up to
    the closing event (rows of tickets the trail never gave to anyone keep the ticket's
    technician: bulk data). The queue wait has no technician; a return keeps the current one."""
    named = _json_text(dialect, "h.data", "technician")
    holder = (f"(h.event IN ({_HOLDER_RECORDS}) "
              f"OR (h.event = 'send_to_repair' AND {named} IS NOT NULL))")
    cond = (f" AND ticket_stages.ticket_id IN (SELECT t.id FROM tickets t WHERE {where})"
            if where else "")
    return ("UPDATE ticket_stages SET technician_id = ("
            "SELECT u.id FROM ticket_events h LEFT JOIN users u ON u.username = " + named + " "
            "WHERE h.ticket_id = ticket_stages.ticket_id AND " + holder + " "
            "AND h.seq <= (SELECT MIN(c.seq) FROM ticket_events c "
            "WHERE c.ticket_id = ticket_stages.ticket_id AND c.event = ticket_stages.end_event) "
            "ORDER BY h.seq DESC LIMIT 1) "
            "WHERE stage NOT IN ('queue_wait', 'returned') AND EXISTS (SELECT 1 FROM "
            "ticket_events h WHERE h.ticket_id = ticket_stages.ticket_id AND " + holder + ")"
            + cond)


def returns_statement(dialect: str, where: str = "") -> str:
    """SQL inserting the ``returned`` rows: the first later admission of the same customer
    with the same brand and model after a repaired ticket's delivery (from the pickup and
    repair rows, so it runs after the other stages)."""
    secs = lambda a, b: _seconds_sql(dialect, a, b)  # noqa: E731
    cond = f" AND {where}" if where else ""
    insert = f"INSERT INTO ticket_stages ({_COLUMNS}) "
    return (insert + "SELECT t.id, 'returned', dl.ended_at, MIN(a2.at), "
            + secs("dl.ended_at", "MIN(a2.at)") + ", 'admit', " + _DIMS + " "
            "FROM ticket_stages dl "
            "JOIN ticket_stages rp ON rp.ticket_id = dl.ticket_id AND rp.stage = 'repair' "
            "JOIN tickets t ON t.id = dl.ticket_id JOIN devices d ON d.id = t.device_id "
            "JOIN tickets t2 ON t2.customer_id = t.customer_id AND t2.id <> t.id "
            "JOIN devices d2 ON d2.id = t2.device_id AND d2.brand = d.brand "
            "AND d2.model = d.model "
            "JOIN ticket_events a2 ON a2.ticket_id = t2.id AND a2.event = 'admit' "
            "AND a2.at >= dl.ended_at "
            "WHERE dl.stage = 'pickup'" + cond + " "
            "GROUP BY t.id, dl.ended_at, t.branch_id, t.technician_id, t.service_type, "
            "d.brand")


def rebuild(connection=None, where: Optional[str] = None) -> None:
    """Replace every stage row by the rows derived from the event log (the caller commits).

    For data that predates the table and for bulk loads; the rows equal what ``on_event``
    writes (the technician from the ticket's trail: ``holders_statement``)."""
    conn = connection if connection is not None else db.session.connection()
    dialect = conn.dialect.name
    if where:
        conn.execute(text(f"DELETE FROM ticket_stages WHERE ticket_id IN "
                          f"(SELECT t.id FROM tickets t WHERE {where})"))
    else:
        conn.execute(text("DELETE FROM ticket_stages"))
    for stmt in rebuild_statements(dialect, where or ""):
        conn.execute(text(stmt))
