"""The benchmark suite: Servicedesk beside django-helpdesk and a bare Flask floor, under gunicorn
with 2 workers, on SQLite and on PostgreSQL, driven by a bounded load generator on 127.0.0.1.

    .venv/bin/python bench/run.py                    # everything, ~4 minutes on 2 cores
    .venv/bin/python bench/run.py --db postgres --rounds 3 --requests 300
    .venv/bin/python bench/run.py --quick            # a smoke run: 1 round, 100 requests
    .venv/bin/python bench/run.py --with-sms         # then bench/bench_sms.py

Writes bench/RESULTS.md (its "HTTP" section; bench_sms.py writes the "SMS" one) and the raw
figures to bench/results/http-<time>.json. See bench/README.md for what each scenario measures.
"""
from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
RAW = BENCH / "results"
WORK = Path(os.environ.get("BENCH_WORKDIR", "/tmp/sd-bench"))
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Its own Redis database: rq job ids (sms-<row>-<attempt>) are global within one Redis database,
# so jobs left by test runs in database 0 (failed ones live 24 h) would silently absorb ours.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
sys.path.insert(0, str(BENCH))
import peer_django_helpdesk as peer  # noqa: E402  (bench/ is not a package)

# Every server gets the same gunicorn: 2 processes of 4 threads, keep-alive, no access log.
WORKERS, THREADS = 2, 4
GUNICORN_ARGS = ["--workers", str(WORKERS), "--worker-class", "gthread", "--threads",
                 str(THREADS), "--keep-alive", "30", "--timeout", "120", "--no-control-socket",
                 "--log-level", "warning"]


# --- the load generator: bench/_load.py (shared with the other bench_*.py) ------------------

from _load import Connection, Load, http_request, load, raw_request  # noqa: E402,F401  (re-exported to ctx)


# --- servers ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict, cwd: Path, ready_path: str):
        self.name, self.cmd, self.env, self.cwd = name, cmd, env, cwd
        self.ready_path = ready_path
        self.port = free_port()
        self.cmd = [*cmd[:-1], *GUNICORN_ARGS, "--bind", f"127.0.0.1:{self.port}", cmd[-1]]
        self.log = WORK / f"{name}.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Server":
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                conn = Connection(self.port)
                status, _, _ = conn.request(http_request("GET", self.ready_path))
                conn.close()
                if status < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- databases --------------------------------------------------------------------------------

def pg_engine():
    import sqlalchemy as sa
    return sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                            isolation_level="AUTOCOMMIT")


def create_pg(prefix: str) -> str:
    import sqlalchemy as sa
    name = f"sd_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    engine = pg_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg(url: str) -> None:
    import sqlalchemy as sa
    engine = pg_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def database(db: str, prefix: str) -> str:
    if db == "postgres":
        return create_pg(prefix)
    path = WORK / f"{prefix}.db"
    path.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def drop(url: str) -> None:
    if url.startswith("postgres"):
        drop_pg(url)


# --- the three systems ------------------------------------------------------------------------

def base_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERVICEDESK_", "TWILIO_", "SMS_", "REDIS_", "DATABASE_",
                                "GUNICORN_", "WEB_CONCURRENCY"))}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def flask(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class System:
    name: str
    server: Server
    url: str
    intake: Callable[[int], bytes]
    transition: Optional[Callable[[int], bytes]] = None
    page: Optional[Callable[[int], bytes]] = None  # GET the staff's ticket page
    intake_status: int = 201
    transition_status: int = 200
    cleanup: list = field(default_factory=list)
    env: Optional[dict] = None  # the environment its `flask` commands run with

    def ids(self, result: Load) -> list[int]:
        return [json.loads(b)["id"] for b, s in zip(result.bodies, result.statuses)
                if s == result.expected]


def phone(i: int) -> str:
    return f"0912{i:07d}"


def servicedesk(db: str, tag: str) -> System:
    url = database(db, "app")
    env = base_env(DATABASE_URL=url, SECRET_KEY=uuid.uuid4().hex * 2, SMS_BACKEND="console",
                   SERVICEDESK_LOG_LEVEL="WARNING", PUBLIC_BASE_URL="http://shop.test")
    queue = None
    if db == "postgres":  # the production shape: SMS rows handed to rq after commit
        queue = f"sd-bench-{uuid.uuid4().hex[:8]}"
        env.update(REDIS_URL=REDIS_URL, SERVICEDESK_RQ_QUEUE=queue)
    flask(env, "init-db")
    flask(env, "create-user", "bench", "--role", "reception", "--password", "bench-password-1")
    token = flask(env, "api-token", "bench").strip().splitlines()[-1]
    flask(env, "create-user", "benchtech", "--role", "technician", "--password",
          "bench-password-1")
    tech_token = flask(env, "api-token", "benchtech").strip().splitlines()[-1]
    server_env = {**env, "WEB_CONCURRENCY": str(WORKERS), "GUNICORN_THREADS": str(THREADS),
                  "GUNICORN_ACCESSLOG": "", "GUNICORN_MAX_REQUESTS": "0",
                  "GUNICORN_KEEPALIVE": "30", "GUNICORN_TIMEOUT": "120",
                  "GUNICORN_LOGLEVEL": "warning", "BIND": "unused",
                  # No per-address limits: the whole load comes from 127.0.0.1 (the API has
                  # none; the suite's tracking-page and login scenarios would hit theirs).
                  "SERVICEDESK_RATELIMIT_ENABLED": "false"}
    server = Server("servicedesk", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                    "wsgi:app"], server_env, ROOT, "/healthz")
    auth = {"Authorization": f"Bearer {token}"}
    counter = itertools.count(int(tag) * 1_000_000)

    def intake(_i: int) -> bytes:
        n = next(counter)
        return http_request("POST", "/api/v1/tickets", {
            "customer": {"name": f"Customer {n}", "phone": phone(n)},
            "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A54"},
            "problem": "Cracked screen, touch works"}, auth)

    def transition(ticket_id: int) -> bytes:
        return http_request("POST", f"/api/v1/tickets/{ticket_id}/events",
                            {"event": "send_to_repair"}, auth)

    def page(ticket_id: int) -> bytes:
        # The technician's ticket page (the staff pages take the API's bearer token too).
        return raw_request("GET", f"/tickets/{ticket_id}",
                           {"Authorization": f"Bearer {tech_token}", "Accept": "text/html"})

    system = System("servicedesk", server, url, intake, transition, page)
    system.env = env
    system.cleanup.append(lambda: drop(url))
    if queue:
        system.cleanup.append(lambda: _delete_queue(queue))
    return system


def _delete_queue(name: str) -> None:
    from redis import Redis
    from rq import Queue
    conn = Redis.from_url(REDIS_URL)
    Queue(name, connection=conn).delete(delete_jobs=True)
    for key in conn.scan_iter(f"rq:*{name}*"):
        conn.delete(key)


def floor(db: str) -> System:
    url = database(db, "floor")
    subprocess.run([sys.executable, str(BENCH / "floor_app.py"), "init", url], check=True)
    server = Server("floor", [sys.executable, "-m", "gunicorn", "floor_app:app"],
                    base_env(FLOOR_DATABASE_URL=url), BENCH, "/healthz")

    def intake(i: int) -> bytes:
        return http_request("POST", "/tickets", {
            "customer": {"name": f"Customer {i}", "phone": phone(i)},
            "problem": "Cracked screen, touch works"})

    system = System("floor", server, url, intake)
    system.cleanup.append(lambda: drop(url))
    return system


def django_helpdesk(db: str) -> System:
    if not peer.PYTHON.exists():
        peer.install()
    url = database(db, "peer")
    done = subprocess.run([str(peer.PYTHON), str(BENCH / "peer_django_helpdesk.py"), "setup",
                           url], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"peer setup failed:\n{done.stdout}\n{done.stderr}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    server = Server("django-helpdesk", [str(peer.VENV / "bin" / "gunicorn"),
                                        "peerproject.wsgi:application"],
                    base_env(PEER_DATABASE_URL=url), peer.PROJECT, "/api/")
    auth = {"Authorization": f"Token {info['token']}"}

    def intake(i: int) -> bytes:
        return http_request("POST", "/api/tickets/", {
            "queue": info["queue"], "title": "Samsung Galaxy A54: cracked screen",
            "description": "Cracked screen, touch works", "priority": 3,
            "submitter_email": f"customer{i}@example.com"}, auth)

    def transition(ticket_id: int) -> bytes:
        return http_request("POST", "/api/followups/", {
            "ticket": ticket_id, "user": info["user"], "title": "Sent to repair",
            "comment": "On the bench", "public": True, "new_status": 3}, auth)

    def page(ticket_id: int) -> bytes:
        return raw_request("GET", f"/tickets/{ticket_id}/",
                           {"Cookie": f"sessionid={info['session']}", "Accept": "text/html"})

    system = System("django-helpdesk", server, url, intake, transition, page, 201, 201)
    system.cleanup.append(lambda: drop(url))
    return system


# --- the run ----------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Series:
    """One system in one scenario on one database, over the rounds."""
    rps: list = field(default_factory=list)
    latencies: list = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def add(self, result: Load) -> None:
        self.rps.append(result.rps)
        self.latencies.extend(result.latencies)
        self.errors += result.errors
        if result.errors and not self.first_error:
            self.first_error = result.first_error()

    def summary(self) -> dict:
        return {"rps_median": statistics.median(self.rps), "rps_min": min(self.rps),
                "rps_max": max(self.rps), "rps_rounds": [round(r, 1) for r in self.rps],
                "p50_ms": percentile(self.latencies, 0.5) * 1000,
                "p99_ms": percentile(self.latencies, 0.99) * 1000,
                "requests": len(self.latencies), "errors": self.errors,
                "first_error": self.first_error}


def run_database(db: str, args, log: Callable[[str], None]) -> dict:
    """Start the three servers on ``db``, run the rounds, stop them; returns the series."""
    wanted = ["servicedesk", "floor"] + ([] if args.no_peer else ["django-helpdesk"])
    systems: dict[str, System] = {}
    notes: list[str] = []
    try:
        log(f"[{db}] setting up: {', '.join(wanted)}")
        systems["servicedesk"] = servicedesk(db, "1" if db == "sqlite" else "2")
        systems["floor"] = floor(db)
        if "django-helpdesk" in wanted:
            try:
                systems["django-helpdesk"] = django_helpdesk(db)
            except Exception as exc:  # noqa: BLE001 - the rest of the run still stands
                notes.append(f"django-helpdesk could not be set up: {exc}")
                log(notes[-1])
        if db == "sqlite" and args.sqlite_journal != "delete":
            # journal_mode=WAL is stored in the file: every connection of every system uses it
            for system in systems.values():
                path = system.url[len("sqlite:///"):]
                with sqlite3.connect(path) as conn:
                    mode = conn.execute(f"PRAGMA journal_mode={args.sqlite_journal}").fetchone()
                notes.append(f"{system.name}: SQLite journal_mode={mode[0]}")
        for system in systems.values():
            system.server.start()
        series: dict[tuple[str, str], Series] = {}
        # Warm-up, not measured: imports, pools, caches, a first page of every code path.
        for system in systems.values():
            warm = load(system.server.port, [system.intake(10**6 + i) for i in range(40)],
                        args.concurrency, system.intake_status, keep_bodies=True)
            if warm.errors:
                raise RuntimeError(f"{system.name} intake fails: {warm.first_error()}")
            if system.transition:
                ids = system.ids(warm)
                warm2 = load(system.server.port, [system.transition(i) for i in ids],
                             args.concurrency, system.transition_status)
                if warm2.errors:
                    raise RuntimeError(f"{system.name} transition fails: {warm2.first_error()}")
            if system.page:
                warm3 = load(system.server.port, [system.page(i) for i in system.ids(warm)],
                             args.concurrency, 200)
                if warm3.errors:
                    raise RuntimeError(f"{system.name} ticket page fails: "
                                       f"{warm3.first_error()}")
        names = list(systems)
        for round_no in range(args.rounds):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            fresh: dict[str, list[int]] = {}
            for name in order:  # intake (the floor: its three-row commit)
                system = systems[name]
                base = (round_no + 1) * 100_000
                reqs = [system.intake(base + i) for i in range(args.requests)]
                result = load(system.server.port, reqs, args.concurrency,
                              system.intake_status, keep_bodies=system.transition is not None)
                series.setdefault(("intake", name), Series()).add(result)
                if system.transition:
                    fresh[name] = system.ids(result)
            for name in order:  # transition on the tickets this round took in
                system = systems[name]
                if not system.transition:
                    continue
                reqs = [system.transition(i) for i in fresh[name]]
                result = load(system.server.port, reqs, args.concurrency,
                              system.transition_status)
                series.setdefault(("transition", name), Series()).add(result)
            for name in order:  # the ticket page of the tickets this round took in
                system = systems[name]
                if not system.page:
                    continue
                reqs = [system.page(i) for i in fresh[name]]
                result = load(system.server.port, reqs, args.concurrency, 200)
                series.setdefault(("ticket_page", name), Series()).add(result)
            log(f"[{db}] round {round_no + 1}/{args.rounds}: " + ", ".join(
                f"{s}/{n} {series[(s, n)].rps[-1]:.0f}/s" for s, n in series))
        extra = run_optional_modules(db, systems, args, log)
        return {"series": {f"{s}|{n}": v.summary() for (s, n), v in series.items()},
                "ratios": paired_ratios(series), "notes": notes, "extra": extra}
    finally:
        for system in systems.values():
            system.server.stop()
        for system in systems.values():
            for step in system.cleanup:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001
                    log(f"cleanup of {system.name}: {exc}")


def paired_ratios(series: dict) -> dict:
    """Servicedesk over the peer and over the floor, round by round (the same minute of the
    same noisy machine), then the median of those ratios."""
    out = {}
    for scenario in ("intake", "transition", "ticket_page"):
        mine = series.get((scenario, "servicedesk"))
        if not mine:
            continue
        # the floor commits rows: a yardstick for the writes, not for a page
        others = ((("django-helpdesk", scenario),) if scenario == "ticket_page"
                  else (("django-helpdesk", scenario), ("floor", "intake")))
        for other, key in others:
            theirs = series.get((key, other))
            if theirs:
                ratios = [a / b for a, b in zip(mine.rps, theirs.rps)]
                out[f"{scenario}|{other}"] = {"median": statistics.median(ratios),
                                              "min": min(ratios), "max": max(ratios)}
    return out


OPTIONAL_MODULES = ("bench_reception", "bench_pages", "bench_reports")


def run_optional_modules(db: str, systems: dict, args, log) -> dict:
    """Other scenarios, when their modules are present and offer
    ``run_in_suite(ctx) -> list[dict]`` (see bench/README.md); never required."""
    out = {}
    for name in OPTIONAL_MODULES:
        if not (BENCH / f"{name}.py").exists() or args.only_core:
            continue
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001
            out[name] = {"note": f"could not be imported: {type(exc).__name__}: {exc}"}
            continue
        hook = getattr(module, "run_in_suite", None)
        if hook is None:
            out[name] = {"note": "present, but offers no run_in_suite(ctx): run it on its own"}
            continue
        app = systems["servicedesk"]
        peer_system = systems.get("django-helpdesk")
        ctx = {"db": db, "port": app.server.port, "database_url": app.url,
               "token_headers": _auth_of(app), "load": load, "http_request": http_request,
               "rounds": args.rounds, "requests": args.requests,
               "concurrency": args.concurrency,
               "peer_port": peer_system.server.port if peer_system else None,
               # `flask` commands against the running app's database (users for logins)
               "flask": lambda *cmd: flask(app.env, *cmd)}
        try:
            log(f"[{db}] {name}.run_in_suite")
            out[name] = {"rows": module.run_in_suite(ctx)}
        except Exception as exc:  # noqa: BLE001
            out[name] = {"note": f"failed: {type(exc).__name__}: {exc}"}
    return out


def _auth_of(system: System) -> dict:
    raw = system.intake(0).decode(errors="replace")
    for line in raw.split("\r\n"):
        if line.lower().startswith("authorization:"):
            return {"Authorization": line.split(":", 1)[1].strip()}
    return {}


# --- the machine and the versions -------------------------------------------------------------

def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "kernel": platform.release(), "os": _os_name(), "load_before": os.getloadavg()}


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def versions(with_peer: bool) -> dict:
    from importlib.metadata import version
    out = {"python": platform.python_version()}
    for dist in ("Flask", "Werkzeug", "SQLAlchemy", "psycopg", "gunicorn", "rq", "redis",
                 "twilio"):
        try:
            out[dist] = version(dist)
        except Exception:  # noqa: BLE001
            out[dist] = "?"
    out["SQLite"] = sqlite3.sqlite_version
    try:
        import sqlalchemy as sa
        engine = pg_engine()
        with engine.connect() as conn:
            out["PostgreSQL"] = conn.execute(sa.text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception:  # noqa: BLE001
        out["PostgreSQL"] = "unreachable"
    try:
        from redis import Redis
        out["Redis"] = Redis.from_url(REDIS_URL).info("server")["redis_version"]
    except Exception:  # noqa: BLE001
        out["Redis"] = "unreachable"
    if with_peer and peer.PYTHON.exists():
        try:
            out.update({f"peer {k}": v for k, v in peer.versions().items()})
        except Exception:  # noqa: BLE001
            pass
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        out["servicedesk commit"] = head + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        pass
    return out


# --- RESULTS.md -------------------------------------------------------------------------------

def update_results(section: str, text: str) -> None:
    """Replace one section of bench/RESULTS.md (between its markers), keeping the others."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    current = RESULTS.read_text() if RESULTS.exists() else (
        "# Benchmark results\n\nWritten by `bench/run.py` (HTTP) and `bench/bench_sms.py` "
        "(SMS); see bench/README.md for the scenarios and how to run them.\n")
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(current)


def fmt_rps(s: dict) -> str:
    return f"{s['rps_median']:.0f} ({s['rps_min']:.0f}–{s['rps_max']:.0f})"


def render(report: dict) -> str:
    args = report["args"]
    lines = [
        "## HTTP",
        "",
        f"Run {report['started']} ({report['duration_s']:.0f} s): `{report['command']}`",
        "",
        f"Load: {args['requests']} requests per system per scenario per round, "
        f"{args['concurrency']} keep-alive connections, {args['rounds']} rounds (systems "
        f"interleaved, order rotated each round), after a warm-up. Servers: gunicorn "
        f"{WORKERS} workers × {THREADS} threads (gthread), no access log. On SQLite, "
        "Servicedesk and the floor open their connections with the same pragmas (WAL, "
        "synchronous=NORMAL, busy timeout); the peer keeps Django's, in journal mode "
        f"{args['sqlite_journal']}. Throughput is the "
        "median over rounds with the range; latencies p50/p99 over every request of all "
        "rounds; ratios are Servicedesk ÷ the other, per round, then the median (range).",
        "",
        "| database | scenario | system | requests/s median (range) | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for db, result in report["databases"].items():
        if "error" in result:
            lines.append(f"| {db} | — | — | run failed: {result['error'][:200]} | | | |")
            continue
        for key, s in result["series"].items():
            scenario, system = key.split("|")
            label = {"floor": "floor (3-row commit)"}.get(system, system)
            lines.append(f"| {db} | {scenario} | {label} | {fmt_rps(s)} | {s['p50_ms']:.1f} | "
                         f"{s['p99_ms']:.1f} | {s['errors']} |")
    lines += ["", "| database | scenario | ÷ django-helpdesk | ÷ floor |", "|---|---|---|---|"]
    for db, result in report["databases"].items():
        for scenario in ("intake", "transition", "ticket_page"):
            r = result.get("ratios", {})
            cells = []
            for other in ("django-helpdesk", "floor"):
                x = r.get(f"{scenario}|{other}")
                cells.append(f"{x['median']:.2f}× ({x['min']:.2f}–{x['max']:.2f})" if x
                             else "—")
            if any(c != "—" for c in cells):
                lines.append(f"| {db} | {scenario} | {cells[0]} | {cells[1]} |")
    lines += ["", "Goals (issue 9): intake ≥ 5× django-helpdesk's ticket creation with p99 under "
              "50 ms; a transition ≥ 5× its status change; within half of the floor (≥ 0.5×). "
              "Issue 5: the ticket page ≥ 5× django-helpdesk's, p50 under 15 ms.",
              ""]
    for db, result in report["databases"].items():
        series, r = result.get("series", {}), result.get("ratios", {})
        intake = series.get("intake|servicedesk")
        if not intake:
            continue
        checks = []
        for scenario in ("intake", "transition", "ticket_page"):
            x = r.get(f"{scenario}|django-helpdesk")
            if x:
                checks.append(f"{scenario} ÷ peer {x['median']:.1f}× "
                              f"{'met' if x['median'] >= 5 else 'NOT met'}")
            f = r.get(f"{scenario}|floor")
            if f:
                checks.append(f"{scenario} ÷ floor {f['median']:.2f}× "
                              f"{'met' if f['median'] >= 0.5 else 'NOT met'}")
        checks.append(f"intake p99 {intake['p99_ms']:.0f} ms "
                      f"{'met' if intake['p99_ms'] < 50 else 'NOT met'}")
        page = series.get("ticket_page|servicedesk")
        if page:
            checks.append(f"ticket page p50 {page['p50_ms']:.1f} ms "
                          f"{'met' if page['p50_ms'] < 15 else 'NOT met'}")
        lines.append(f"- {db}: " + "; ".join(checks))
    for db, result in report["databases"].items():
        for note in result.get("notes", []):
            lines.append(f"- {db}: {note}")
        for key, s in result.get("series", {}).items():
            if s["errors"]:
                lines.append(f"- {db} {key}: {s['errors']} errors, first: "
                             f"`{s['first_error'][:200]}`")
        for name, extra in result.get("extra", {}).items():
            if "note" in extra:
                lines.append(f"- {db} {name}: {extra['note']}")
            for row in extra.get("rows", []):
                lines.append(f"- {db} {name}: {json.dumps(row)[:300]}")
    lines += ["", "Setup: Servicedesk on SQLite is the embedded default (no Redis: the web "
              "process sends each SMS itself, after commit, in a background thread, console "
              "backend); on PostgreSQL it is the production shape (SMS rows handed to rq on "
              "Redis after commit; no worker runs during the HTTP benchmark). django-helpdesk "
              "renders its e-mails and hands them to Django's dummy backend. Everyone runs on "
              "the same gunicorn settings and database server, with their own default "
              "connection handling (SQLAlchemy's pool; Django's persistent connections).",
              "", "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
              "", "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200,
                        help="per system, scenario and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-peer", action="store_true", help="skip django-helpdesk")
    parser.add_argument("--only-core", action="store_true",
                        help="skip the optional bench_*.py modules of the other scenarios")
    parser.add_argument("--quick", action="store_true", help="1 round of 100 requests")
    parser.add_argument("--sqlite-journal", default="delete", choices=("delete", "wal"),
                        help="SQLite journal mode for the peer (delete: SQLite's and Django's "
                             "default; wal: what it could switch to). Servicedesk and the "
                             "floor always run WAL.")
    parser.add_argument("--with-sms", action="store_true", help="then run bench_sms.py")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests = 1, 100
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def log(msg: str) -> None:
        print(f"{time.time() - started:6.1f}s {msg}", flush=True)

    report = {"started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": "python bench/run.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:]),
              "args": vars(args), "machine": machine(), "databases": {}}
    report["command"] = report["command"].strip()
    for db in [d.strip() for d in args.db.split(",") if d.strip()]:
        try:
            report["databases"][db] = run_database(db, args, log)
        except Exception as exc:  # noqa: BLE001 - report it, run the other database
            log(f"[{db}] failed: {exc}")
            report["databases"][db] = {"error": str(exc)}
    report["machine"]["load_after"] = os.getloadavg()
    report["versions"] = versions(not args.no_peer)
    report["duration_s"] = time.time() - started
    text = render(report)
    print(text)
    if not args.no_write:
        RAW.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        (RAW / f"http-{stamp}.json").write_text(json.dumps(report, indent=1, default=str))
        update_results("http", text)
    if args.with_sms:
        import bench_sms
        return bench_sms.main([])
    return 1 if any("error" in r for r in report["databases"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
