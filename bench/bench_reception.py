"""Reception under load: issuing queue numbers and rendering receipts (with their QR codes).

The app runs under gunicorn (2 workers of 4 threads) on a throwaway PostgreSQL database; a
bounded load generator on 127.0.0.1 (fixed concurrency, fixed number of requests per round, raw
keep-alive sockets so the client spends little of the CPU it shares with the server) measures,
after a warm-up, several rounds of:

- ``issue (kiosk)``: POST /kiosk as the kiosk's browser does (session cookie, CSRF token), 302
  to the slip: a new number, committed.
- ``issue (API)``: POST /api/v1/visits with a bearer token, 201.
- ``receipt (reprint)``: GET /tickets/ID/receipt of a few tickets, the QR code already made.
- ``receipt (first print)``: GET /tickets/ID/receipt of tickets never printed: the QR code is
  made in the request.
- ``... (1 conn)``: the same on one connection, one request at a time: the latency of a single
  desk, without the queueing that 8 busy connections on 2 cores add.

    .venv/bin/python bench/bench_reception.py                # about 80 s on 2 cores
    .venv/bin/python bench/bench_reception.py --rounds 5 --concurrency 16 --requests 3000

Needs PostgreSQL on 127.0.0.1:5432 (PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/
postgres); the database it creates is dropped at the end. Prints requests a second and p50/p99
latency per round and the median over the rounds. See bench/README-reception.md.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
FQM_ISSUES_PER_SECOND = 120  # Free Queue Manager on this machine (the issue's figure)
PASSWORD = "bench password 1"


# --- the load client: bench/_load.py (shared with run.py) -------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import Connection, raw_request, run_load, summarize  # noqa: E402


class Session:
    """One logged-in browser on one connection: its session cookie and CSRF token."""

    CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')

    def __init__(self, port: int, username: str, password: str = PASSWORD):
        self.conn = Connection(port)
        self.cookies: dict = {}
        page = self.get("/login")
        token = self.CSRF.search(page).group(1).decode()
        status, _ = self.post("/login", {"username": username, "password": password,
                                          "csrf_token": token})
        assert status == 302, f"login failed: {status}"
        self.csrf = self.CSRF.search(self.get("/kiosk")).group(1).decode()

    def _headers(self) -> dict:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, headers: dict) -> None:
        for value in headers.get("set-cookie", []):
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]

    def get(self, path: str) -> bytes:
        status, headers, body = self.conn.request(raw_request("GET", path, self._headers()))
        self._keep(headers)
        return body

    def post(self, path: str, form: dict) -> tuple[int, bytes]:
        status, headers, body = self.conn.request(
            raw_request("POST", path, self._headers(), form=form))
        self._keep(headers)
        return status, body


# --- the server -------------------------------------------------------------------------------

def create_database() -> tuple[str, str]:
    import sqlalchemy as sa
    name = f"sd_bench_reception_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    import sqlalchemy as sa
    engine = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def prepare(env: dict, tickets: int) -> tuple[str, list[int]]:
    """Schema, the default branch, a reception user and its API token, and ``tickets``
    tickets admitted through the lifecycle. Returns (token, ticket ids)."""
    sys.path.insert(0, str(ROOT))
    from servicedesk import create_app
    from servicedesk.cli import ensure_default_branch
    from servicedesk.extensions import db
    from servicedesk.lifecycle import Actor
    from servicedesk.models import SmsTemplate
    from servicedesk.services import tickets as svc
    from servicedesk.services.people import create_user, issue_token
    app = create_app({"DATABASE_URL": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"],
                      "SMS_BACKEND": "console", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        db.create_all()
        branch = ensure_default_branch()
        # The intake SMS is not what is measured here: switched off, so the setup is quick and
        # no sender thread runs beside the benchmark.
        db.session.add(SmsTemplate(event="admit", language="fa", body="-", enabled=False))
        db.session.commit()
        user = create_user("bench", "reception", PASSWORD, branch=branch)
        token = issue_token(user, "bench")
        actor = Actor.staff(user)
        ids = []
        for i in range(tickets):
            ticket = svc.admit({
                "customer": {"name": f"Customer {i}", "phone": f"0912{1000000 + i:07d}"},
                "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A54"},
                "problem": "Cracked screen", "accessories": "SIM card", "condition": "scratches",
                "promised_date": "2026-12-01"}, actor, branch=branch)
            ids.append(ticket.id)
        db.session.remove()
        db.engine.dispose()
    return token, ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int, threads: int, workdir: Path):
    config = workdir / "gunicorn_bench.conf.py"  # explicit: not the repository's production one
    config.write_text("")
    log = open(workdir / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(config), "--workers", str(workers),
         "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", str(ROOT),
         "wsgi:app"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {workdir / 'gunicorn.log'}")
        try:
            status, _, _ = Connection(port).request(raw_request("GET", "/healthz"))
            if status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start in 30 s")


def stop(proc) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# --- main -------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8, help="connections (default: 8)")
    ap.add_argument("--requests", type=int, default=1000, help="issues per round")
    ap.add_argument("--receipts", type=int, default=500, help="receipt reprints per round")
    ap.add_argument("--first-prints", type=int, default=80, help="first prints per round")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sd-bench-reception-"))
    name, url = create_database()
    proc, finished = None, False
    try:
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": secrets.token_hex(32),
               "PUBLIC_BASE_URL": "https://repair.example.ir", "SMS_BACKEND": "console",
               "SERVICEDESK_RATELIMIT_ENABLED": "false", "SERVICEDESK_LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)
        reprinted = 20
        t0 = time.time()
        token, ids = prepare(env, reprinted + args.first_prints * (args.rounds + 1))
        print(f"prepared {len(ids)} tickets in {time.time() - t0:.1f} s; database {name}")
        proc = start_gunicorn(env, port, args.workers, args.threads, workdir)
        sessions = [Session(port, "bench") for _ in range(args.concurrency)]
        api = [Connection(port) for _ in range(args.concurrency)]
        cookie = [s._headers() for s in sessions]
        services = ("repair", "pickup", "inquiry")
        kiosk = [[raw_request("POST", "/kiosk", cookie[i],
                              form={"service": s, "csrf_token": sessions[i].csrf})
                  for s in services] for i in range(args.concurrency)]
        api_issue = [raw_request("POST", "/api/v1/visits",
                                 {"Authorization": f"Bearer {token}"},
                                 json_body=f'{{"service": "{s}"}}') for s in services]
        reprint_ids = ids[:reprinted]
        fresh = iter(ids[reprinted:])
        first_batches = [[next(fresh) for _ in range(args.first_prints)]
                         for _ in range(args.rounds + 1)]
        conns = [s.conn for s in sessions]

        def scenarios(r: int):
            batch = first_batches[r]
            stride = len(conns)
            return [
                ("issue (kiosk)", conns, lambda i, k: kiosk[i][k % 3], args.requests, 302),
                ("issue (kiosk, 1 conn)", conns[:1], lambda i, k: kiosk[0][k % 3],
                 args.requests // 5, 302),
                ("issue (API)", api, lambda i, k: api_issue[k % 3], args.requests, 201),
                ("receipt (reprint)", conns,
                 lambda i, k: raw_request("GET", f"/tickets/{reprint_ids[(i + k) % reprinted]}"
                                          "/receipt", cookie[i]), args.receipts, 200),
                ("receipt (first print)", conns,
                 lambda i, k: raw_request("GET", f"/tickets/{batch[k * stride + i]}/receipt",
                                          cookie[i]),
                 len(batch) - len(batch) % stride, 200),
                ("receipt (1 conn)", conns[:1],
                 lambda i, k: raw_request("GET", f"/tickets/{reprint_ids[k % reprinted]}"
                                          "/receipt", cookie[0]), args.receipts // 5, 200),
            ]

        # warm-up (round 0): connections, pools, templates, imports
        for label, cs, make, n, expected in scenarios(0):
            run_load(cs, make, min(n, 200), expected)
        results: dict = {}
        for r in range(1, args.rounds + 1):
            for label, cs, make, n, expected in scenarios(r):
                res = run_load(cs, make, n, expected)
                results.setdefault(label, []).append(res)
                print(f"round {r}  {label:24s} {res['n']:5d} req  {res['rps']:7.0f} req/s  "
                      f"p50 {res['p50']:6.2f} ms  p99 {res['p99']:6.2f} ms  "
                      f"errors {res['errors']}")
        print()
        print(f"median of {args.rounds} rounds; gunicorn {args.workers} workers x "
              f"{args.threads} threads, {args.concurrency} connections, PostgreSQL, "
              f"{os.cpu_count()} CPUs shared by client, server and database")
        print(f"{'scenario':24s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}")
        for label, rows in results.items():
            print(f"{label:24s} {statistics.median(x['rps'] for x in rows):8.0f} "
                  f"{statistics.median(x['p50'] for x in rows):8.2f} "
                  f"{statistics.median(x['p99'] for x in rows):8.2f}")
        kiosk_rps = statistics.median(x["rps"] for x in results["issue (kiosk)"])
        print(f"\nissuing at the kiosk: {kiosk_rps / FQM_ISSUES_PER_SECOND:.1f} x Free Queue "
              f"Manager's {FQM_ISSUES_PER_SECOND}/s (goal: 10 x)")
        errors = sum(x["errors"] for rows in results.values() for x in rows)
        finished = not errors
        return 1 if errors else 0
    finally:
        stop(proc)
        drop_database(name)
        if finished:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"gunicorn's log: {workdir / 'gunicorn.log'}", file=sys.stderr)


# --- in bench/run.py's suite ------------------------------------------------------------------

def run_in_suite(ctx: dict) -> list[dict]:
    """Issuing queue numbers (kiosk form and API) and reprinting receipts, on the suite's
    running Servicedesk (its database, after the intake rounds): medians over ctx rounds."""
    import sqlalchemy as sa
    port, conc = ctx["port"], ctx["concurrency"]
    n = max(ctx["requests"], 100)
    user = f"suite_kiosk_{secrets.token_hex(3)}"
    ctx["flask"]("create-user", user, "--role", "reception", "--password", PASSWORD)
    url = ctx["database_url"]
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.text("SELECT id FROM tickets ORDER BY id LIMIT 20")))
    engine.dispose()
    sessions = [Session(port, user) for _ in range(conc)]
    conns = [s.conn for s in sessions]
    services = ("repair", "pickup", "inquiry")
    kiosk = [[raw_request("POST", "/kiosk", s._headers(), form={"service": svc,
                                                                "csrf_token": s.csrf})
              for svc in services] for s in sessions]
    token = ctx["token_headers"]
    api_issue = [raw_request("POST", "/api/v1/visits", token, json_body=f'{{"service": "{svc}"}}')
                 for svc in services]
    api = [Connection(port) for _ in range(conc)]
    scenarios = [("issue (kiosk)", conns, lambda i, k: kiosk[i][k % 3], n, 302),
                 ("issue (API)", api, lambda i, k: api_issue[k % 3], n, 201)]
    if ids:
        scenarios.append(("receipt (reprint)", conns, lambda i, k: raw_request(
            "GET", f"/tickets/{ids[(i + k) % len(ids)]}/receipt", sessions[i]._headers()),
            n, 200))
    for label, cs, make, _n, expected in scenarios:  # warm-up
        run_load(cs, make, min(_n, 100), expected)
    rows = []
    for label, cs, make, _n, expected in scenarios:
        rounds = [run_load(cs, make, _n, expected) for _ in range(ctx["rounds"])]
        rows.append({"scenario": label, **summarize(rounds),
                     "note": f"median of {ctx['rounds']} rounds of {_n}, {len(cs)} connections"})
    for c in conns + api:
        c.close()
    return rows


if __name__ == "__main__":
    sys.exit(main())
