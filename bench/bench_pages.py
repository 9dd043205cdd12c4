"""Benchmark of the two pages people open most: a technician's ticket page (/tickets/ID, logged
in) and the customer's tracking page (/t/TOKEN), under a bounded load.

* A throwaway PostgreSQL database, its schema from the migrations (``flask init-db``).
* 100,000 tickets (default) in bulk by straight SQL (INSERT .. SELECT generate_series): their
  customers and devices, every event of each ticket's path to its state, estimate and final
  lines, the SMS of every event, notes (a third visible to the customer) and survey answers.
* gunicorn with 2 worker processes (gthread, 4 threads each: the production gunicorn.conf.py),
  no access log, no worker recycling during the run, rate limits off (the tracking page allows a
  customer 30 requests a minute; the load comes from one address).
* A closed-loop load generator on 127.0.0.1: C keep-alive connections (default 4), each sending
  its next request as soon as the previous answer is in, over tickets sampled from every state.
  Several rounds of each page, interleaved; requests/s and the p50/p99 latency of each round,
  and their medians.

    .venv/bin/python bench/bench_pages.py                      # 100k tickets, 5 rounds
    .venv/bin/python bench/bench_pages.py --tickets 20000 --rounds 3 --requests 500
    .venv/bin/python bench/bench_pages.py --keep                 # keep the database

Prints a table and writes bench/results/pages-<N>.json. See bench/README-pages.md.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PG_ADMIN = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench password 1"
TECHNICIANS = 10

# Each state and the events of its path (DESIGN section 2), as the lifecycle would write them.
PATHS = {
    "intake": ["admit"],
    "diagnosis": ["admit", "send_to_repair"],
    "estimate": ["admit", "send_to_repair", "quote"],
    "repair": ["admit", "send_to_repair", "quote", "approve"],
    "waiting_parts": ["admit", "send_to_repair", "quote", "approve", "wait_parts"],
    "ready": ["admit", "send_to_repair", "quote", "approve", "finish"],
    "delivered": ["admit", "send_to_repair", "quote", "approve", "finish", "deliver"],
    "closed": ["admit", "send_to_repair", "quote", "approve", "finish", "deliver", "close"],
    "cancelled": ["admit", "cancel"],
}
MOVES = {"admit": (None, "intake"), "send_to_repair": ("intake", "diagnosis"),
         "quote": ("diagnosis", "estimate"), "approve": ("estimate", "repair"),
         "wait_parts": ("repair", "waiting_parts"), "finish": ("repair", "ready"),
         "deliver": ("ready", "delivered"), "close": ("delivered", "closed"),
         "cancel": ("intake", "cancelled")}
# A shop's year: most tickets long closed, a working set open. (state, share out of 100)
MIX = [("closed", 46), ("delivered", 8), ("cancelled", 6), ("ready", 8), ("repair", 8),
       ("waiting_parts", 4), ("estimate", 6), ("diagnosis", 9), ("intake", 5)]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- the database -----------------------------------------------------------------------------

def pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def admin_engine():
    url = PG_ADMIN.replace("postgresql://", "postgresql+psycopg://", 1)
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def create_database() -> str:
    name = f"sd_bench_pages_{uuid.uuid4().hex[:8]}"
    with admin_engine().connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    with admin_engine().connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def flask(env: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def _state_case() -> str:
    """SQL: the state of ticket i from the MIX shares (i mod 100, spread by a multiplier)."""
    parts, upto = [], 0
    for state, share in MIX:
        upto += share
        parts.append(f"WHEN (i * 37) % 100 < {upto} THEN '{state}'")
    return "CASE " + " ".join(parts) + " END"


def load(url: str, n: int) -> None:
    """N tickets and everything hanging off them, by INSERT .. SELECT on the server."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    paths = ", ".join(
        f"('{s}', ARRAY[{', '.join(repr(e) for e in evs)}])" for s, evs in PATHS.items())
    moves = ", ".join(f"('{e}', {'NULL' if a is None else repr(a)}, '{b}')"
                      for e, (a, b) in MOVES.items())
    customers = max(1, n * 7 // 10)
    statements = [
        # technicians besides the one who logs in (their hash is never checked)
        f"""INSERT INTO users (username, full_name, role, branch_id, password_hash, active,
                session_token, failed_logins, created_at)
            SELECT 'tech' || g, 'تکنسین ' || g, 'technician', 1, 'x', true,
                   md5('s' || g), 0, now() FROM generate_series(1, {TECHNICIANS}) g""",
        f"""INSERT INTO customers (id, name, phone, language, sms_opt_out, created_at)
            SELECT i, 'مشتری ' || i, '+98912' || lpad(i::text, 7, '0'),
                   CASE WHEN i % 10 = 0 THEN 'en' ELSE 'fa' END, false, now()
            FROM generate_series(1, {customers}) i""",
        f"""INSERT INTO devices (id, customer_id, kind, brand, model, serial, colour)
            SELECT i, 1 + i % {customers}, 'phone',
                   (ARRAY['Samsung','Apple','Xiaomi','Huawei'])[1 + i % 4],
                   'Model ' || (i % 97), lpad((350000000000000 + i)::text, 15, '0'), NULL
            FROM generate_series(1, {n}) i""",
        # state, technician (none while at reception or for half the repair queue), estimate
        # version, payment and last change follow from the ticket's path, in one pass
        f"""INSERT INTO tickets (id, number, branch_id, customer_id, device_id, problem,
                accessories, condition, service_type, state, technician_id, promised_date,
                pre_approved_amount, estimate_version, amount_paid, public_token, created_at,
                updated_at, version)
            SELECT s.i, 'A-' || lpad(s.i::text, 6, '0'), 1, 1 + s.i % {customers}, s.i,
                   'صفحه شکسته و باتری زود خالی می‌شود', 'قاب', 'خط روی قاب', 'repair',
                   s.state,
                   CASE WHEN s.state = 'intake' OR (s.state = 'diagnosis' AND s.i % 2 = 0)
                        THEN NULL ELSE tech.first + s.i % {TECHNICIANS} END,
                   (s.created + interval '3 days')::date, NULL,
                   CASE WHEN s.state IN ('intake', 'diagnosis', 'cancelled') THEN 0 ELSE 1 END,
                   CASE WHEN s.state IN ('delivered', 'closed') THEN 14000000 END,
                   upper(substr(md5('t' || s.i), 1, 12)), s.created,
                   s.created + cardinality(p.evs) * interval '3 hours', 1
            FROM (SELECT i, {_state_case()} AS state,
                         now() - ({n} - i) * interval '5 minutes' AS created
                  FROM generate_series(1, {n}) i) s
            JOIN (VALUES {paths}) p(state, evs) ON p.state = s.state
            CROSS JOIN (SELECT min(id) AS first FROM users WHERE username LIKE 'tech%') tech""",
        """INSERT INTO cost_lines (ticket_id, stage, estimate_version, kind, description, qty,
                unit_price)
            SELECT t.id, s.stage, 1, l.kind, l.description, 1, l.price
            FROM tickets t
            CROSS JOIN (VALUES ('part', 'LCD', 12000000), ('labour', 'تعویض', 2000000)) l(kind, description, price)
            CROSS JOIN (VALUES ('estimate'), ('final')) s(stage)
            WHERE t.estimate_version = 1
              AND (s.stage = 'estimate' OR t.state IN ('ready', 'delivered', 'closed'))""",
        f"""INSERT INTO ticket_events (ticket_id, seq, event, from_state, to_state, actor_kind,
                actor_id, actor_name, at, data, ip, prev_hash, hash)
            SELECT t.id, e.ord, e.ev, m.from_state, m.to_state,
                   CASE WHEN e.ev = 'close' THEN 'customer' ELSE 'staff' END,
                   CASE WHEN e.ev IN ('quote', 'finish', 'wait_parts') THEN t.technician_id END,
                   CASE WHEN e.ev = 'close' THEN 'customer'
                        WHEN e.ev IN ('quote', 'finish', 'wait_parts') THEN 'tech'
                        ELSE 'reception' END,
                   t.created_at + e.ord * interval '3 hours',
                   (CASE e.ev
                      WHEN 'quote' THEN '{{"total": 14000000, "estimate_version": 1, "promised_date": "2026-12-01"}}'
                      WHEN 'approve' THEN '{{"channel": "phone", "estimate_version": 1, "estimate_total": 14000000}}'
                      WHEN 'wait_parts' THEN '{{"part": "LCD", "expected_date": "2026-12-05"}}'
                      WHEN 'finish' THEN '{{"total": 14000000, "work_done": "تعویض ال‌سی‌دی"}}'
                      WHEN 'deliver' THEN '{{"amount_paid": 14000000}}'
                      WHEN 'cancel' THEN '{{"reason": "انصراف مشتری"}}'
                      ELSE '{{}}' END)::json,
                   NULL, md5(t.id || '-' || (e.ord - 1)) || md5('p'), md5(t.id || '-' || e.ord) || md5('h')
            FROM tickets t
            JOIN (VALUES {paths}) p(state, evs) ON p.state = t.state
            CROSS JOIN LATERAL unnest(p.evs) WITH ORDINALITY AS e(ev, ord)
            JOIN (VALUES {moves}) m(event, from_state, to_state) ON m.event = e.ev""",
        # the SMS of every event, sent
        """INSERT INTO notifications (ticket_id, event_id, event, kind, "to", language, body,
                encoding, segments, status, attempts, provider_id, dedupe_key, created_at,
                updated_at, sent_at)
            SELECT e.ticket_id, e.id, e.event, 'sms', c.phone, c.language,
                   'فروشگاه: وضعیت دستگاه شما تغییر کرد. پیگیری: https://shop.example/t/' ||
                   t.public_token, 'UCS-2', 2, 'delivered', 1, 'SM' || md5(e.id::text),
                   'ticket:' || e.ticket_id || '\\:event:' || e.id || '\\:sms', e.at, e.at, e.at
            FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
            JOIN customers c ON c.id = t.customer_id""",
        """INSERT INTO ticket_notes (ticket_id, author_id, body, customer_visible, created_at)
            SELECT t.id, t.technician_id,
                   CASE WHEN t.id % 3 = 0 THEN 'قطعه سفارش داده شد' ELSE 'یادداشت داخلی' END,
                   t.id % 3 = 0, t.created_at + interval '4 hours'
            FROM tickets t WHERE t.id % 3 <> 1""",
        """INSERT INTO survey_responses (ticket_id, csat, nps, comment, complaint,
                followup_status, created_at)
            SELECT id, 1 + id % 5, id % 11, '', false,
                   CASE WHEN id % 5 < 2 THEN 'open' END, updated_at
            FROM tickets WHERE state = 'closed'""",
    ]
    with engine.begin() as conn:
        for sql in statements:
            t0 = time.time()
            conn.execute(sa.text(sql))
            step = " ".join(sql.split()[:3])
            log(f"  {step} ... {time.time() - t0:.1f} s")
        for table in ("customers", "devices", "tickets"):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        counts = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in (
            "tickets", "ticket_events", "cost_lines", "notifications", "ticket_notes",
            "survey_responses")}
    engine.dispose()
    log("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def sample(url: str, size: int, seed: int = 5) -> list[tuple[int, str, str]]:
    """(id, token, state) of tickets drawn from every state, about as the mix has them."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, public_token, state FROM tickets ORDER BY md5(id::text || :seed) "
            "LIMIT :n"), {"seed": str(seed), "n": size}).all()
    engine.dispose()
    return [tuple(r) for r in rows]


# --- the server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
        env={**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
             "GUNICORN_THREADS": "4", "GUNICORN_ACCESSLOG": "", "GUNICORN_LOGLEVEL": "warning",
             "GUNICORN_MAX_REQUESTS": "0", "GUNICORN_KEEPALIVE": "30"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + proc.stderr.read())
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def login(port: int, username: str) -> str:
    """Log in through the form as a browser does; returns the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    cookie = resp.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    body = urlencode({"username": username, "password": PASSWORD, "csrf_token": token})
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 302:
        raise SystemExit(f"login failed: {resp.status}")
    return resp.getheader("Set-Cookie").split(";", 1)[0]


# --- the load -----------------------------------------------------------------------------------

def worker_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by the gunicorn workers of ``master``: a figure
    other work on the machine does not inflate, unlike wall-clock latency."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            fields = (pid / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_load(port: int, paths: list[str], headers: dict, requests: int, concurrency: int,
             check: bytes) -> dict:
    """Closed loop: ``concurrency`` keep-alive connections share ``requests`` requests over
    ``paths`` (round robin from a random start); each answer must be a 200 holding ``check``."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker(seed: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rnd = random.Random(seed)
        mine: list[float] = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            path = paths[rnd.randrange(len(paths))]
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{path}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - t0)
            if resp.status != 200 or check not in body:
                errors.append(f"{path}: {resp.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "seconds": round(elapsed, 3), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2)}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return float("nan")
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=1000, help="per page per round")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--sample", type=int, default=500, help="tickets the load draws from")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args(argv)

    started = time.time()
    load_before = list(os.getloadavg())  # other work on the machine skews every figure
    name = create_database()
    url = pg_url(name)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SMS_BACKEND")}
    env.update({"DATABASE_URL": url, "SECRET_KEY": secrets.token_hex(32),
                "PUBLIC_BASE_URL": "https://shop.example", "SERVICEDESK_RATELIMIT_ENABLED":
                "false", "SERVICEDESK_NOTIFY_INPROCESS": '"sync"'})
    proc = None
    try:
        log(f"database {name}: schema from the migrations")
        flask(env, "init-db")
        flask(env, "create-user", "bench_tech", "--role", "technician", "--password", PASSWORD)
        t0 = time.time()
        load(url, args.tickets)
        load_seconds = round(time.time() - t0, 1)
        log(f"{args.tickets:,} tickets loaded in {load_seconds} s")
        tickets = sample(url, args.sample)
        port = free_port()
        proc = start_gunicorn(env, port)
        cookie = login(port, "bench_tech")
        pages = {
            "ticket page /tickets/ID": ([f"/tickets/{i}" for i, _, _ in tickets],
                                        {"Cookie": cookie}, b'class="timeline"'),
            "tracking page /t/TOKEN": ([f"/t/{tok}" for _, tok, _ in tickets], {},
                                       b'class="state-now'),
        }
        for title, (paths, headers, check) in pages.items():  # warm both workers up
            run_load(port, paths, headers, 200, args.concurrency, check)
        rounds: dict[str, list[dict]] = {title: [] for title in pages}
        for r in range(args.rounds):
            order = list(pages) if r % 2 == 0 else list(reversed(pages))
            for title in order:
                paths, headers, check = pages[title]
                cpu0 = worker_cpu(proc.pid)
                res = run_load(port, paths, headers, args.requests, args.concurrency, check)
                res["cpu_ms_per_request"] = round(
                    (worker_cpu(proc.pid) - cpu0) * 1000 / max(res["requests"], 1), 2)
                rounds[title].append(res)
                log(f"round {r + 1} {title}: {res['rps']} req/s, p50 {res['p50_ms']} ms, "
                    f"p99 {res['p99_ms']} ms, server CPU {res['cpu_ms_per_request']} ms/req, "
                    f"errors {res['errors']}")
                if res["errors"]:
                    log(f"  e.g. {res['first_errors']}")
        summary = {title: {"rps": statistics.median(x["rps"] for x in rs),
                           "p50_ms": statistics.median(x["p50_ms"] for x in rs),
                           "p99_ms": statistics.median(x["p99_ms"] for x in rs),
                           "cpu_ms_per_request": statistics.median(
                               x["cpu_ms_per_request"] for x in rs),
                           "errors": sum(x["errors"] for x in rs)}
                   for title, rs in rounds.items()}
        print()
        print(f"{'page':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}  "
              f"(median of {args.rounds} rounds of {args.requests}, {args.concurrency} "
              f"connections)")
        for title, s in summary.items():
            print(f"{title:28} {s['rps']:>8} {s['p50_ms']:>8} {s['p99_ms']:>8} "
                  f"{s['cpu_ms_per_request']:>11}")
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"pages-{args.tickets}.json"
        out.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tickets": args.tickets,
            "load_seconds": load_seconds, "rounds": args.rounds, "requests": args.requests,
            "concurrency": args.concurrency, "server": "gunicorn 2 workers x 4 threads (gthread)",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(),
                        "load_average_before_after": [load_before, list(os.getloadavg())]},
            "summary": summary, "rounds_detail": rounds}, indent=2, ensure_ascii=False))
        log(f"written {out.relative_to(ROOT)}; total {round(time.time() - started)} s; load "
            f"average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
        return 0 if all(s["errors"] == 0 for s in summary.values()) else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.keep:
            log(f"kept database {name} ({url})")
        else:
            drop_database(name)


# --- in bench/run.py's suite ------------------------------------------------------------------

def run_in_suite(ctx: dict) -> list[dict]:
    """The ticket page (logged-in technician) and the tracking page on the suite's running
    Servicedesk: its database holds only the suite's own tickets (a few thousand, in intake and
    diagnosis), not the 100,000-ticket year this script builds when run on its own."""
    port, conc = ctx["port"], min(ctx["concurrency"], 4)
    user = f"suite_tech_{secrets.token_hex(3)}"
    ctx["flask"]("create-user", user, "--role", "technician", "--password", PASSWORD)
    url = ctx["database_url"]
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, public_token FROM tickets ORDER BY id DESC "
                                    "LIMIT 300")).all()
        total = conn.scalar(sa.text("SELECT count(*) FROM tickets"))
    engine.dispose()
    if not rows:
        return [{"note": "no tickets in the suite's database"}]
    cookie = login(port, user)
    http_request, load = ctx["http_request"], ctx["load"]
    n = max(ctx["requests"], 200)
    pages = {
        "ticket page /tickets/ID": [http_request("GET", f"/tickets/{i}",
                                                 headers={"Cookie": cookie}) for i, _ in rows],
        "tracking page /t/TOKEN": [http_request("GET", f"/t/{tok}") for _, tok in rows],
    }
    out = []
    for title, reqs in pages.items():
        batch = [reqs[k % len(reqs)] for k in range(n)]
        load(port, batch[:100], conc, 200)  # warm-up
        rounds = [load(port, batch, conc, 200) for _ in range(ctx["rounds"])]
        lat = sorted(x for r in rounds for x in r.latencies)
        out.append({"scenario": title, "rps": round(statistics.median(r.rps for r in rounds), 1),
                    "p50_ms": round(percentile(lat, 50) * 1000, 2),
                    "p99_ms": round(percentile(lat, 99) * 1000, 2),
                    "errors": sum(r.errors for r in rounds),
                    "note": f"{total} tickets, {ctx['rounds']} rounds of {n}, {conc} connections"})
    return out


if __name__ == "__main__":
    sys.exit(main())
