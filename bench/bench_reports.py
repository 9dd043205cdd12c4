"""Benchmark of the reports (issue 6) on PostgreSQL and SQLite.

Generates N tickets (default 1,000,000) with about 8 events each, spread over the Jalali year
1404 (2025-03-21 .. 2026-03-20, Tehran time), in bulk by straight SQL: a plan row per ticket
(deterministic pseudo-random durations from integer hashing, so both databases hold the same
data), then customers, devices, visits, tickets, events, cost lines, survey answers and SMS rows
as INSERT .. SELECT statements, and the stage rows from the event log by
``servicedesk.stages.rebuild`` (the migration's backfill). The schema comes from the migrations.

Then times every report for the whole year and for one month (Mehr 1404), several runs each,
and prints the medians and the EXPLAIN ANALYZE of the slowest report on PostgreSQL.

    python bench/bench_reports.py --tickets 200000
    python bench/bench_reports.py --tickets 1000000 --runs 5
    python bench/bench_reports.py --skip-load            # time again on the data already there
    python bench/bench_reports.py --only postgresql

Results are also written to bench/results/reports-<N>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servicedesk import create_app  # noqa: E402
from servicedesk.extensions import db  # noqa: E402

PG_ADMIN = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "sd_bench_reports"
SQLITE_PATH = ROOT / "bench" / "results" / "reports-bench.db"

YEAR = (date(2025, 3, 21), date(2026, 3, 20))  # Jalali 1404
MONTH = (date(2025, 9, 23), date(2025, 10, 22))  # Mehr 1404
T0 = int(datetime(2025, 3, 20, 20, 30, tzinfo=timezone.utc).timestamp())  # 1404/01/01 00:00 Tehran
DAYS = 365
TECHNICIANS = 20
BRANCHES = (("Main", "A"), ("شعبه ونک", "B"), ("شعبه تجریش", "C"))


def h(k: int) -> str:
    """A deterministic pseudo-random integer in [0, 2^31 - 1) per ticket ``i`` and salt ``k``
    (plain integer arithmetic: the same on both databases)."""
    return f"(((i + {k * 7919}) * {2654435761 + k * 2246822519}) % 2147483647)"


class Dialect:
    def __init__(self, name: str):
        self.name = name

    def ts(self, e: str) -> str:
        if self.name == "postgresql":
            return f"to_timestamp({e})"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {e}, 'unixepoch') || '.000000')"

    def local_day(self, e: str) -> str:
        if self.name == "postgresql":
            return f"CAST(to_timestamp({e}) AT TIME ZONE 'Asia/Tehran' AS DATE)"
        return f"date({e} + 12600, 'unixepoch')"

    def numbers(self, n: int) -> list[str]:
        if self.name == "postgresql":
            return ["CREATE TABLE bench_n (i INTEGER PRIMARY KEY)",
                    f"INSERT INTO bench_n SELECT generate_series(1, {n})"]
        return ["CREATE TABLE bench_n (i INTEGER PRIMARY KEY)",
                f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}) "
                "INSERT INTO bench_n SELECT i FROM g"]


def plan_sql(n: int) -> str:
    """One row per ticket: its path through the lifecycle and the epoch second of each event."""
    admit = f"({T0} + ((i - 1) * {DAYS} / {n}) * 86400 + 32400 + {h(1)} % 39600)"
    send = f"({admit} + 300 + {h(5)} % 7200)"
    claim = f"({send} + 60 + {h(6)} % 3600)"
    quote = f"({claim} + 1800 + {h(7)} % 172800)"
    decide = f"({quote} + 600 + {h(8)} % 86400)"
    wait = f"({decide} + 3600 + {h(9)} % 36000)"
    resume = f"({wait} + 86400 + {h(10)} % 432000)"
    p = f"({h(0)} % 100)"
    path = (f"CASE WHEN {p} < 55 THEN 'R' WHEN {p} < 85 THEN 'W' WHEN {p} < 92 THEN 'D' "
            f"WHEN {p} < 95 THEN 'U' WHEN {p} < 98 THEN 'C' ELSE 'O' END")
    return (
        "CREATE TABLE bench_plan AS SELECT i, path, tech, visit, admit_e, issued_e, called_e, "
        "send_e, claim_e, quote_e, decide_e, wait_e, resume_e, finish_e, return_e, cancel_e, "
        "CASE path WHEN 'D' THEN decide_e WHEN 'U' THEN return_e ELSE finish_e END "
        f"+ 1800 + {h(13)} % 259200 AS deliver_e "
        "FROM (SELECT i, path, tech, visit, admit_e, issued_e, called_e, send_e, claim_e, "
        "quote_e, decide_e, wait_e, resume_e, return_e, cancel_e, "
        f"CASE WHEN path = 'W' THEN resume_e ELSE decide_e END + 3600 + {h(11)} % 172800 "
        "AS finish_e FROM (SELECT i, " + path + " AS path, "
        f"2 + {h(20)} % {TECHNICIANS} AS tech, "
        f"CASE WHEN {h(2)} % 10 < 7 THEN 1 ELSE 0 END AS visit, {admit} AS admit_e, "
        f"{admit} - 300 - {h(3)} % 2400 AS issued_e, {admit} - 60 - {h(4)} % 200 AS called_e, "
        f"{send} AS send_e, {claim} AS claim_e, {quote} AS quote_e, {decide} AS decide_e, "
        f"{wait} AS wait_e, {resume} AS resume_e, "
        f"{claim} + 3600 + {h(12)} % 86400 AS return_e, "
        f"{admit} + 600 + {h(14)} % 3600 AS cancel_e FROM bench_n WHERE i <= {n}) x) y"
    )


# (event, time column, {path: seq}, from_state, to_state, actor kind)
EVENTS = (
    ("admit", "admit_e", dict.fromkeys("RWDUCO", 1), None, "intake", "reception"),
    ("send_to_repair", "send_e", dict.fromkeys("RWDUO", 2), "intake", "diagnosis", "reception"),
    ("claim", "claim_e", dict.fromkeys("RWDUO", 3), "diagnosis", "diagnosis", "technician"),
    ("quote", "quote_e", dict.fromkeys("RWDO", 4), "diagnosis", "estimate", "technician"),
    ("approve", "decide_e", dict.fromkeys("RW", 5), "estimate", "repair", "reception"),
    ("decline", "decide_e", {"D": 5}, "estimate", "ready", "reception"),
    ("return_unrepaired", "return_e", {"U": 4}, "diagnosis", "ready", "technician"),
    ("wait_parts", "wait_e", {"W": 6}, "repair", "waiting_parts", "technician"),
    ("resume", "resume_e", {"W": 7}, "waiting_parts", "repair", "technician"),
    ("finish", "finish_e", {"R": 6, "W": 8}, "repair", "ready", "technician"),
    ("deliver", "deliver_e", {"R": 7, "W": 9, "D": 6, "U": 5}, "ready", "delivered",
     "reception"),
    ("close", "deliver_e + 259200", {"R": 8, "W": 10, "D": 7}, "delivered", "closed",
     "customer"),
    ("cancel", "cancel_e", {"C": 2}, "intake", "cancelled", "reception"),
)


def load_statements(d: Dialect, n: int) -> list[tuple[str, str]]:
    customers = max(n // 2, 1)
    ts = d.ts
    stmts: list[tuple[str, str]] = []
    add = lambda label, sql: stmts.append((label, sql))  # noqa: E731
    for s in d.numbers(max(n + n // 20, TECHNICIANS + 1)):
        add("numbers", s)
    add("plan", plan_sql(n))
    now = ts(str(T0 + DAYS * 86400))
    for i, (name, code) in enumerate(BRANCHES, start=1):
        add("branches", f"INSERT INTO branches (id, name, code, active, created_at) VALUES "
                        f"({i}, '{name}', '{code}', TRUE, {now})")
    add("users", "INSERT INTO users (id, username, full_name, role, branch_id, password_hash, "
        "language, active, session_token, failed_logins, created_at) SELECT i, "
        "CASE WHEN i = 1 THEN 'bench_reception' ELSE 'tech' || (i - 1) END, "
        "CASE WHEN i = 1 THEN 'پذیرش' ELSE 'تکنسین ' || (i - 1) END, "
        "CASE WHEN i = 1 THEN 'reception' ELSE 'technician' END, 1 + i % 3, 'x', 'fa', TRUE, "
        f"'bench-session-' || i, 0, {now} FROM bench_n WHERE i <= {TECHNICIANS + 1}")
    add("customers", "INSERT INTO customers (id, name, phone, language, sms_opt_out, "
        f"created_at) SELECT i, 'مشتری ' || i, '+98' || (9120000000 + i), 'fa', FALSE, {now} "
        f"FROM bench_n WHERE i <= {customers}")
    cust = f"(1 + {h(21)} % {customers})"
    add("devices", "INSERT INTO devices (id, customer_id, kind, brand, model) SELECT i, "
        f"{cust}, 'phone', CASE {cust} % 6 WHEN 0 THEN 'Samsung' WHEN 1 THEN 'Apple' "
        "WHEN 2 THEN 'Xiaomi' WHEN 3 THEN 'Huawei' WHEN 4 THEN 'Nokia' ELSE 'Google' END, "
        f"'Model ' || ({cust} % 4) FROM bench_n WHERE i <= {n}")
    add("visits", "INSERT INTO visits (id, branch_id, service, day, number, label, status, "
        "issued_at, called_at, served_at, counter) SELECT i, 1 + i % 3, 'repair', "
        f"{d.local_day('issued_e')}, i, 'R-' || i, 'served', {ts('issued_e')}, "
        f"{ts('called_e')}, {ts('admit_e')}, '1' FROM bench_plan WHERE visit = 1")
    add("visits (no-shows)", "INSERT INTO visits (id, branch_id, service, day, number, label, "
        "status, issued_at, called_at, counter) SELECT i, 1 + i % 3, 'repair', "
        f"{d.local_day('e')}, i, 'R-' || i, 'no_show', {ts('e')}, {ts('e + 600')}, '1' FROM "
        f"(SELECT i, {T0} + ((i - {n} - 1) * {DAYS} / {max(n // 20, 1)}) * 86400 + 32400 "
        f"+ {h(15)} % 39600 AS e FROM bench_n WHERE i > {n}) x")
    part = f"(1000000 + ({h(22)} % 50) * 100000)"
    labour = f"(500000 + ({h(23)} % 20) * 50000)"
    final_part = f"({part} + (({h(24)} % 5) - 1) * 100000)"
    add("tickets", "INSERT INTO tickets (id, number, branch_id, customer_id, device_id, "
        "visit_id, problem, accessories, condition, service_type, state, technician_id, "
        "promised_date, estimate_version, amount_paid, public_token, created_at, updated_at, "
        "version) SELECT p.i, 'A-' || p.i, 1 + p.i % 3, d.customer_id, p.i, "
        "CASE WHEN p.visit = 1 THEN p.i END, 'صفحه شکسته', '', '', "
        "CASE p.i % 10 WHEN 0 THEN 'warranty' WHEN 1 THEN 'software' WHEN 2 THEN "
        "'data_recovery' ELSE 'repair' END, "
        "CASE p.path WHEN 'U' THEN 'delivered' WHEN 'C' THEN 'cancelled' WHEN 'O' THEN "
        "'estimate' ELSE 'closed' END, CASE WHEN p.path <> 'C' THEN p.tech END, "
        f"CASE WHEN p.path = 'O' THEN {d.local_day('p.admit_e + 259200')} END, "
        "CASE WHEN p.path IN ('R', 'W', 'D', 'O') THEN 1 ELSE 0 END, "
        f"CASE WHEN p.path IN ('R', 'W') THEN {final_part.replace('i', 'p.i')} + "
        f"{labour.replace('i', 'p.i')} WHEN p.path IN ('D', 'U') THEN 0 END, "
        "'T' || p.i, "
        f"{ts('CASE WHEN p.visit = 1 THEN p.issued_e ELSE p.admit_e END')}, "
        f"{ts('p.deliver_e')}, 1 FROM bench_plan p JOIN devices d ON d.id = p.i")
    for name, col, seqs, from_state, to_state, actor in EVENTS:
        seq = "CASE path " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in seqs.items()) + " END"
        paths = ", ".join(f"'{k}'" for k in seqs)
        actor_id = "1" if actor == "reception" else "tech" if actor == "technician" else "NULL"
        actor_name = {"reception": "'bench_reception'", "technician": "'tech' || (tech - 1)",
                      "customer": "'customer'"}[actor]
        kind = "'customer'" if actor == "customer" else "'staff'"
        frm = f"'{from_state}'" if from_state else "NULL"
        add(f"events: {name}", "INSERT INTO ticket_events (ticket_id, seq, event, from_state, "
            "to_state, actor_kind, actor_id, actor_name, at, data, prev_hash, hash) "
            f"SELECT i, {seq}, '{name}', {frm}, '{to_state}', {kind}, {actor_id}, {actor_name}, "
            f"{ts(col)}, '{{}}', '{'0' * 64}', '{'0' * 64}' FROM bench_plan "
            f"WHERE path IN ({paths})")
    line = ("INSERT INTO cost_lines (ticket_id, stage, estimate_version, kind, description, qty, "
            "unit_price) SELECT i, '{stage}', 1, '{kind}', '{desc}', 1, {price} FROM bench_plan "
            "WHERE path IN ({paths})")
    add("cost lines", line.format(stage="estimate", kind="part", desc="قطعه", price=part,
                                  paths="'R', 'W', 'D', 'O'"))
    add("cost lines", line.format(stage="estimate", kind="labour", desc="اجرت", price=labour,
                                  paths="'R', 'W', 'D', 'O'"))
    add("cost lines", line.format(stage="final", kind="part", desc="قطعه", price=final_part,
                                  paths="'R', 'W'"))
    add("cost lines", line.format(stage="final", kind="labour", desc="اجرت", price=labour,
                                  paths="'R', 'W'"))
    csat = f"(1 + {h(28)} % 5)"
    add("survey responses", "INSERT INTO survey_responses (id, ticket_id, csat, nps, comment, "
        f"complaint, created_at) SELECT i, i, {csat}, {h(29)} % 11, "
        f"CASE WHEN {csat} <= 2 THEN 'دیر تحویل شد' ELSE '' END, ({csat} = 1), "
        f"{ts('deliver_e + 7200')} FROM bench_plan WHERE path IN ('R', 'W', 'D') "
        f"AND {h(27)} % 10 < 4")
    status = f"({h(25)} % 20)"
    for event, col, paths in (("admit", "admit_e", "'R', 'W', 'D', 'U', 'C', 'O'"),
                              ("deliver", "deliver_e", "'R', 'W', 'D', 'U'")):
        add(f"notifications: {event}",
            "INSERT INTO notifications (ticket_id, event, kind, \"to\", "
            "language, body, encoding, segments, status, attempts, error_code, dedupe_key, "
            f"created_at, updated_at) SELECT i, '{event}', 'sms', '+98' || (9120000000 + i), "
            "'fa', "
            f"'پیامک', 'UCS-2', 1 + {h(26)} % 3, CASE {status} WHEN 0 THEN 'failed' WHEN 1 THEN "
            "'undelivered' WHEN 2 THEN 'failed' ELSE 'delivered' END, 1, "
            f"CASE {status} WHEN 0 THEN '30003' WHEN 1 THEN '30005' WHEN 2 THEN '21614' END, "
            f"'bench-' || i || '-{event}', {ts(col)}, {ts(col)} FROM bench_plan "
            f"WHERE path IN ({paths})")
    for label, sql in stage_statements(d):
        add(label, sql)
    add("drop plan", "DROP TABLE bench_plan")
    add("drop numbers", "DROP TABLE bench_n")
    return stmts


def stage_statements(d: Dialect) -> list[tuple[str, str]]:
    """The stage rows straight from the plan (what servicedesk.stages writes as each stage
    closes); the returns come from ``stages.rebuild_statements`` afterwards."""
    ts = d.ts
    ready = "CASE p.path WHEN 'D' THEN p.decide_e WHEN 'U' THEN p.return_e ELSE p.finish_e END"
    waited = "CASE WHEN p.path = 'W' THEN p.resume_e - p.wait_e ELSE 0 END"
    specs = (  # stage, start, end, seconds, end event, paths, technician
        ("queue_wait", "p.issued_e", "p.called_e", None, "'admit'", None, "NULL"),
        ("intake", "p.admit_e", "p.send_e", None, "'send_to_repair'", "RWDUO", "p.tech"),
        ("diagnosis", "p.send_e", "p.quote_e", None, "'quote'", "RWDO", "p.tech"),
        ("approval", "p.quote_e", "p.decide_e", None,
         "CASE p.path WHEN 'D' THEN 'decline' ELSE 'approve' END", "RWD", "p.tech"),
        ("repair", "p.decide_e", "p.finish_e", f"p.finish_e - p.decide_e - {waited}",
         "'finish'", "RW", "p.tech"),
        ("waiting_parts", "p.wait_e", "p.resume_e", None, "'finish'", "W", "p.tech"),
        ("pickup", ready, "p.deliver_e", None, "'deliver'", "RWDU", "p.tech"),
        ("total", "p.admit_e", "p.deliver_e", None, "'deliver'", "RWDU", "p.tech"),
    )
    out = []
    for stage, start, end, seconds, end_event, paths, tech in specs:
        cond = ("p.visit = 1" if paths is None
                else "p.path IN (" + ", ".join(f"'{x}'" for x in paths) + ")")
        out.append((f"stages: {stage}", (
            "INSERT INTO ticket_stages (ticket_id, stage, started_at, ended_at, seconds, "
            "end_event, branch_id, technician_id, service_type, brand) "
            f"SELECT p.i, '{stage}', {ts(start)}, {ts(end)}, "
            f"{seconds or f'{end} - {start}'}, {end_event}, 1 + p.i % 3, {tech}, "
            "CASE p.i % 10 WHEN 0 THEN 'warranty' WHEN 1 THEN 'software' WHEN 2 THEN "
            "'data_recovery' ELSE 'repair' END, d.brand "
            f"FROM bench_plan p JOIN devices d ON d.id = p.i WHERE {cond}")))
    return out


def make_app(url: str):
    return create_app({"DATABASE_URL": url, "SQLALCHEMY_ENGINE_OPTIONS": {},
                       "SERVICEDESK_LOCALE": "fa", "TESTING": True})


def prepare(kind: str, n: int) -> str:
    """Create an empty database at the head revision; returns its URL."""
    if kind == "postgresql":
        admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{PG_NAME}"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_NAME
    else:
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(SQLITE_PATH) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{SQLITE_PATH}"
    app = make_app(url)
    with app.app_context():
        from flask_migrate import upgrade
        upgrade(directory=str(ROOT / "migrations"))
    return url


def url_for(kind: str) -> str:
    if kind == "postgresql":
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_NAME
    return f"sqlite:///{SQLITE_PATH}"


LOADED_TABLES = ("devices", "visits", "tickets", "ticket_events", "cost_lines",
                 "survey_responses", "notifications", "ticket_stages")


def load(kind: str, url: str, n: int, from_events: bool = False) -> dict:
    from servicedesk import stages
    app = make_app(url)
    timings: dict[str, float] = {}
    with app.app_context():
        d = Dialect(kind)
        with db.engine.begin() as conn:
            if kind == "sqlite":
                conn.exec_driver_sql("PRAGMA journal_mode=OFF")
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
                conn.exec_driver_sql("PRAGMA cache_size=-1000000")
            else:
                conn.exec_driver_sql("SET synchronous_commit = off")
                conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
                conn.exec_driver_sql("SET work_mem = '256MB'")
            # Bulk load: the secondary indexes are built once at the end, not row by row.
            indexes = [ix for table in LOADED_TABLES
                       for ix in db.metadata.tables[table].indexes if not ix.unique]
            for ix in indexes:
                ix.drop(bind=conn)
            for label, sql in load_statements(d, n):
                if from_events and label.startswith("stages: "):
                    continue
                started = time.perf_counter()
                conn.execute(sa.text(sql))
                timings[label] = timings.get(label, 0) + time.perf_counter() - started
                print(f"  {label:<28} {timings[label]:8.1f} s", flush=True)
            started = time.perf_counter()
            for ix in indexes:
                ix.create(bind=conn)
            timings["indexes"] = time.perf_counter() - started
            print(f"  {'indexes':<28} {timings['indexes']:8.1f} s", flush=True)
            # Statistics first, or the planner joins the fresh event log blind.
            conn.exec_driver_sql("ANALYZE")
            started = time.perf_counter()
            if from_events:  # every stage row from the event log: the migration's backfill
                stages.rebuild(conn)
                label = "stage rows (rebuild)"
            else:  # the returns need the other tickets: derived from the stage rows
                conn.execute(sa.text(stages.returns_statement(kind)))
                label = "stages: returned"
            timings[label] = time.perf_counter() - started
            print(f"  {label:<28} {timings[label]:8.1f} s", flush=True)
            if kind == "postgresql":
                for table in ("branches", "users", "customers", "devices", "visits", "tickets",
                              "ticket_events", "cost_lines", "notifications",
                              "survey_responses", "ticket_stages"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
        started = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE" if kind == "postgresql" else "ANALYZE")
        timings["analyze"] = time.perf_counter() - started
        with db.engine.connect() as conn:
            counts = {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
                      for t in ("tickets", "ticket_events", "ticket_stages", "cost_lines",
                                "visits", "notifications", "survey_responses")}
    print(f"  rows: {counts}")
    return {"timings": timings, "rows": counts}


def report_calls(rng: tuple[date, date]):
    from servicedesk import reports as r
    f = r.Filters(rng[0], rng[1], week_start=5)
    return [
        ("turnaround", lambda: r.turnaround(f)),
        ("turnaround by technician", lambda: r.turnaround(r.with_group(f, "technician"))),
        ("turnaround by Jalali month", lambda: r.turnaround(r.with_group(f, "jalali_month"))),
        ("turnaround, one technician", lambda: r.turnaround(r.replace(f, technician_id=5))),
        ("costs by Jalali month", lambda: r.costs(r.with_group(f, "jalali_month"))),
        ("costs by technician", lambda: r.costs(r.with_group(f, "technician"))),
        ("technicians", lambda: r.technicians(f)),
        ("survey", lambda: r.survey(f)),
        ("survey follow-ups", lambda: r.survey_followups(f)),
        ("queue heatmap", lambda: r.queue_heatmap(f)),
        ("queue summary", lambda: r.queue_summary(f)),
        ("sms", lambda: r.sms(f)),
    ]


def time_reports(kind: str, url: str, runs: int) -> tuple[dict, dict]:
    app = make_app(url)
    results: dict = {}
    captured: dict = {}
    with app.test_request_context("/?lang=fa"):
        engine = db.engine
        last: dict = {}

        @sa.event.listens_for(engine, "before_cursor_execute")
        def capture(conn, cursor, statement, parameters, context, executemany):
            last["sql"], last["params"] = statement, parameters

        from servicedesk import reports as r
        r.dashboard_counts(now=datetime(2025, 10, 1, 9, tzinfo=timezone.utc))
        for label, rng in (("year", YEAR), ("month", MONTH)):
            for name, call in report_calls(rng):
                call()  # warm the cache and the plan
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    call()
                    samples.append(time.perf_counter() - started)
                    db.session.rollback()
                med = statistics.median(samples)
                results[f"{name} ({label})"] = {"median_s": med, "min_s": min(samples),
                                                "runs": runs}
                captured[f"{name} ({label})"] = (last["sql"], last["params"])
                print(f"  {name + ' (' + label + ')':<42} median {med * 1000:9.1f} ms   "
                      f"min {min(samples) * 1000:9.1f} ms", flush=True)
        sa.event.remove(engine, "before_cursor_execute", capture)
    return results, captured


def explain(url: str, sql: str, params) -> str:
    app = make_app(url)
    with app.app_context():
        conn = db.engine.raw_connection()
        try:
            cur = conn.cursor()
            # the session settings the app's report transactions run with
            cur.execute("SELECT set_config('work_mem', %s, false), "
                        "set_config('jit', 'off', false)",
                        (app.config.get("REPORTS_WORK_MEM", "64MB"),))
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            return "\n".join(r[0] for r in cur.fetchall())
        finally:
            conn.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument("--skip-load", action="store_true",
                        help="time the reports on the data loaded by a previous run")
    parser.add_argument("--stages-from-events", action="store_true",
                        help="derive every stage row from the event log (stages.rebuild, the "
                             "migration's backfill) instead of from the generator's plan")
    parser.add_argument("--explain", type=int, default=2,
                        help="how many of the slowest PostgreSQL reports to EXPLAIN ANALYZE")
    args = parser.parse_args(argv)
    out: dict = {"tickets": args.tickets, "runs": args.runs, "year": [str(x) for x in YEAR],
                 "month": [str(x) for x in MONTH]}
    for kind in ("postgresql", "sqlite"):
        if args.only and args.only != kind:
            continue
        print(f"== {kind}: {args.tickets:,} tickets", flush=True)
        if args.skip_load:
            url = url_for(kind)
        else:
            started = time.perf_counter()
            url = prepare(kind, args.tickets)
            out[f"{kind}_load"] = load(kind, url, args.tickets, args.stages_from_events)
            out[f"{kind}_load"]["total_s"] = time.perf_counter() - started
            print(f"  loaded in {out[f'{kind}_load']['total_s']:.0f} s")
        results, captured = time_reports(kind, url, args.runs)
        out[kind] = results
        if kind == "postgresql" and args.explain:
            slowest = sorted(results, key=lambda k: -results[k]["median_s"])[:args.explain]
            out["explain"] = {}
            for name in slowest:
                plan = explain(url, *captured[name])
                out["explain"][name] = plan
                print(f"\n-- EXPLAIN ANALYZE: {name}\n{plan}\n")
    path = ROOT / "bench" / "results" / f"reports-{args.tickets}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # keep the other database's figures from an earlier --only run
        previous = json.loads(path.read_text())
        previous.update(out)
        out = previous
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
