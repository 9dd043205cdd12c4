"""SMS throughput through rq to the fake Twilio, and the time from a committed event to the SMS.

    .venv/bin/python bench/bench_sms.py                 # ~3 minutes; writes RESULTS.md "SMS"
    .venv/bin/python bench/bench_sms.py --messages 300 --events 80 --no-write

Everything real but Twilio: a throwaway PostgreSQL database migrated by `init-db`, the
machine's Redis, worker processes started exactly as production starts them
(`python -m flask --app wsgi worker`, environment as in tests/test_sms.py's TestRq.worker_env),
the real twilio SDK talking HTTP to tests/fake_twilio.py's FakeTwilio in this process.

Two worker kinds are measured:

- ``fork``: the project's worker as it is (rq's ``Worker``: a forked work-horse per job);
- ``simple``: the same worker loop with rq's ``SimpleWorker`` (jobs run in the worker process),
  started by this script (``_simple-worker``) with the same app and queue: the proposed change.

Throughput: fill the queue with N outbox rows, start k burst workers, count messages a second at
the fake between its first and last message (worker start-up excluded). Latency: k workers
running (not burst), events committed at a steady rate through the real intake service, each
commit stamped by a SQLAlchemy ``after_commit`` listener placed before the outbox's, each arrival
stamped by the fake: median and p99 of the difference.

``--profile`` adds where the time of one forked job goes (create_app in the horse, the fork, a
cold and a warm delivery, rq's own per-job cost) measured piece by piece in a worker-like
process.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import run as suite  # noqa: E402  (bench/run.py: databases, machine, RESULTS.md)

REDIS_URL = suite.REDIS_URL
WORK = suite.WORK


# --- the fake, with arrival times -------------------------------------------------------------

def timed_fake():
    from tests.fake_twilio import FakeTwilio

    class TimedFakeTwilio(FakeTwilio):
        """Stamps each accepted message with perf_counter() (same clock as the commits)."""

        def __init__(self):
            super().__init__()
            self.arrivals: list[tuple[float, str]] = []

        def _validate_and_store(self, form):
            status, payload = super()._validate_and_store(form)
            if status == 201:
                with self._lock:
                    self.arrivals.append((time.perf_counter(), payload["to"]))
            return status, payload

    return TimedFakeTwilio().start()


# --- the app, the database, the workers -------------------------------------------------------

def worker_env(db_url: str, fake, queue: str, secret: str) -> dict:
    """As tests/test_sms.py TestRq.worker_env."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERVICEDESK_", "TWILIO_", "SMS_", "REDIS_", "DATABASE_"))}
    env.update({
        "DATABASE_URL": db_url, "REDIS_URL": REDIS_URL, "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
        "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": fake.base_url,
        "SECRET_KEY": secret, "PUBLIC_BASE_URL": "http://shop.test",
        "SERVICEDESK_RQ_QUEUE": queue, "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def make_app(db_url: str, fake, queue: str, secret: str):
    from servicedesk import create_app
    return create_app({
        "DATABASE_URL": db_url, "REDIS_URL": REDIS_URL, "RQ_QUEUE": queue,
        "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": fake.base_url, "SECRET_KEY": secret,
        "PUBLIC_BASE_URL": "http://shop.test", "LOG_LEVEL": "WARNING"})


def start_workers(kind: str, count: int, env: dict, burst: bool, tag: str) -> list:
    if kind == "fork":
        cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "_simple-worker"]
    if burst:
        cmd.append("--burst")
    procs = []
    for i in range(count):
        log = (WORK / f"sms-worker-{tag}-{i}.log").open("wb")
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop_workers(procs: list) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)  # rq's warm shutdown
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def simple_worker(burst: bool) -> None:
    """The project's run_worker with rq's SimpleWorker: the change proposed for
    servicedesk/notifications/worker.py (an option there; this is only its measurement)."""
    from redis import Redis
    from rq import SimpleWorker

    from servicedesk import create_app
    from servicedesk.notifications.queue import get_queue
    from servicedesk.notifications.sweep import sweep

    app = create_app()
    queue = get_queue(app)
    if burst:
        with app.app_context():
            sweep()
    SimpleWorker([queue], connection=Redis.from_url(app.config["REDIS_URL"])).work(
        burst=burst, with_scheduler=True)


def fill_outbox(app, count: int, body: str) -> list[int]:
    """``count`` pending SMS rows (as the outbox writes them), committed, then enqueued."""
    from servicedesk.extensions import db
    from servicedesk.models import Notification
    from servicedesk.notifications.queue import enqueue, get_queue
    tag = uuid.uuid4().hex[:8]
    with app.app_context():
        rows = [Notification(event="admit", to=f"+98912{i:07d}", language="fa", body=body,
                             encoding="UCS-2", segments=2, dedupe_key=f"bench:{tag}:{i}")
                for i in range(count)]
        db.session.add_all(rows)
        db.session.flush()
        ids = [r.id for r in rows]
        db.session.info.pop("servicedesk_outbox_ids", None)  # enqueue below, in one go
        db.session.commit()
        enqueue(app, ids)
        queued = len(get_queue(app))
        db.session.remove()
    if queued < count:
        raise RuntimeError(f"only {queued} of {count} jobs reached the queue: job ids taken "
                           "by jobs of another database in the same Redis database?")
    return ids


def throughput(app, fake, env, kind: str, workers: int, messages: int, body: str) -> dict:
    fake.reset()
    fake.arrivals.clear()
    fill_outbox(app, messages, body)
    started = time.perf_counter()
    procs = start_workers(kind, workers, env, burst=True, tag=f"{kind}{workers}")
    try:
        for p in procs:
            p.wait(timeout=600)
    finally:
        stop_workers(procs)
    times = sorted(t for t, _ in fake.arrivals)
    if len(times) < messages:
        raise RuntimeError(f"{kind} x{workers}: {len(times)} of {messages} messages arrived; "
                           f"see {WORK}/sms-worker-{kind}{workers}-0.log")
    steady = (len(times) - 1) / (times[-1] - times[0])
    lo, hi = times[len(times) // 10], times[(len(times) * 9) // 10]
    middle = ((len(times) * 9) // 10 - len(times) // 10) / (hi - lo)
    return {"kind": kind, "workers": workers, "messages": len(times),
            "per_second": steady, "per_second_middle80": middle,
            "per_worker": steady / workers, "startup_s": times[0] - started}


def latency(app, fake, env, kind: str, workers: int, events: int, rate: float,
            user_id: int) -> dict:
    """Events committed at ``rate`` a second through the real intake; commit -> fake."""
    from sqlalchemy import event as sa_event
    from sqlalchemy.orm import Session

    from servicedesk.extensions import db
    from servicedesk.lifecycle import Actor
    from servicedesk.models import User
    from servicedesk.services import tickets as svc

    fake.reset()
    fake.arrivals.clear()
    commits: dict[str, float] = {}
    current = {"phone": None}

    def stamp(session):
        # Runs before the outbox's after_commit hook (insert=True): the moment the row is
        # committed, before it is handed to rq.
        if session.info.get("servicedesk_outbox_ids") and current["phone"]:
            commits.setdefault(current["phone"], time.perf_counter())

    procs = start_workers(kind, workers, env, burst=False, tag=f"lat-{kind}{workers}")
    sa_event.listen(Session, "after_commit", stamp, insert=True)
    try:
        _wait_for_workers(app, workers)
        with app.app_context():
            actor = Actor.staff(db.session.get(User, user_id))
            interval, next_at = 1.0 / rate, time.perf_counter()
            for i in range(events):
                local = f"0935{(int(time.time()) % 1000):03d}{i:04d}"
                current["phone"] = "+98" + local[1:]
                svc.admit({"customer": {"name": f"Customer {i}", "phone": local,
                                        "language": "fa"},
                           "device": {"kind": "phone", "brand": "Samsung", "model": "A54"},
                           "problem": "Cracked screen"}, actor)
                db.session.remove()
                next_at += interval
                time.sleep(max(0.0, next_at - time.perf_counter()))
            current["phone"] = None
        fake.wait_for(events, timeout=120)
    finally:
        sa_event.remove(Session, "after_commit", stamp)
        stop_workers(procs)
    arrivals = {to: t for t, to in fake.arrivals}
    delays = sorted((arrivals[p] - t) * 1000 for p, t in commits.items() if p in arrivals)
    if len(delays) < events:
        raise RuntimeError(f"latency {kind}: only {len(delays)} of {events} matched")
    return {"kind": kind, "workers": workers, "events": len(delays), "rate": rate,
            "median_ms": statistics.median(delays), "p99_ms": suite.percentile(delays, 0.99),
            "max_ms": delays[-1]}


def _wait_for_workers(app, count: int, timeout: float = 60) -> None:
    from rq import Worker

    from servicedesk.notifications.queue import get_queue
    queue = get_queue(app)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(Worker.all(queue=queue)) >= count:
            time.sleep(0.5)  # registered; let it reach its blocking dequeue
            return
        time.sleep(0.1)
    raise RuntimeError("the workers did not register with Redis")


# --- where the time of a forked job goes ------------------------------------------------------

def profile(env: dict, repeats: int) -> dict:
    """In a fresh worker-like process (the same environment), time the pieces one forked job
    pays: the fork and reaping of a horse, create_app() in the horse (jobs.worker_app(): the
    pid changed, so the app is built again), the first delivery on a new app (new database
    connection, new twilio client and HTTP connection), a warm delivery, and rq's own cost
    per job (a no-op job through SimpleWorker)."""
    code = PROFILE_CODE.replace("__REPEATS__", str(repeats))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"profile failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PROFILE_CODE = r'''
import json, os, statistics, time, uuid
from servicedesk import create_app
from servicedesk.extensions import db
from servicedesk.models import Notification
from servicedesk.notifications import jobs
from servicedesk.notifications.delivery import deliver
R = __REPEATS__
app = create_app()          # the worker's own app (flask --app wsgi worker)
out = {}

def rows(n):
    with app.app_context():
        tag = uuid.uuid4().hex[:8]
        rs = [Notification(event="admit", to=f"+98935{i:07d}", language="fa", body="x" * 120,
                           encoding="GSM-7", segments=1, dedupe_key=f"prof:{tag}:{i}")
              for i in range(n)]
        db.session.add_all(rs); db.session.flush(); ids = [r.id for r in rs]
        db.session.info.pop("servicedesk_outbox_ids", None)
        db.session.commit(); db.session.remove()
        return ids

def med(xs): return statistics.median(xs) * 1000

# 1. fork + exit + reap of a process the size of the worker
ts = []
for _ in range(R):
    t = time.perf_counter(); pid = os.fork()
    if pid == 0: os._exit(0)
    os.waitpid(pid, 0); ts.append(time.perf_counter() - t)
out["fork_and_reap_ms"] = med(ts)

# 1b. what a horse imports again on every job: the worker process never sent anything, so the
# twilio REST modules are first imported (and the client built) inside each horse
ts = []
for _ in range(R):
    r, w = os.pipe(); pid = os.fork()
    if pid == 0:
        t = time.perf_counter()
        from servicedesk.notifications.backends import backend_from_config
        b = backend_from_config(app.config); b.client.messages
        os.write(w, str(time.perf_counter() - t).encode()); os._exit(0)
    os.close(w); ts.append(float(os.read(r, 64))); os.close(r); os.waitpid(pid, 0)
out["horse_twilio_import_ms"] = med(ts)

# 2. create_app() as a horse does it (modules already imported by the parent)
ts = []
for _ in range(R):
    t = time.perf_counter(); a = create_app()
    with a.app_context(): db.engine.dispose(close=False)
    ts.append(time.perf_counter() - t)
out["create_app_ms"] = med(ts)

# 3. a cold delivery: a fresh app's first send (new pool, new twilio client, new TCP)
ids = rows(R)
ts = []
for nid in ids:
    jobs._app = None
    t = time.perf_counter(); jobs.send_notification(nid); ts.append(time.perf_counter() - t)
cold_total = med(ts)
out["cold_job_total_ms"] = cold_total
out["cold_delivery_without_create_app_ms"] = cold_total - out["create_app_ms"]

# 4. a warm delivery: the same app, pool and HTTP connection (what SimpleWorker would do)
ids = rows(R * 4)
ts = []
for nid in ids:
    t = time.perf_counter(); jobs.send_notification(nid); ts.append(time.perf_counter() - t)
out["warm_job_ms"] = med(ts)

# 5. inside the warm delivery: the twilio HTTP call alone
from servicedesk.notifications.delivery import get_backend
with jobs.worker_app().app_context():
    backend = get_backend()
    ts = []
    for i in range(R * 4):
        t = time.perf_counter(); backend.send(f"+98936{i:07d}", "x" * 120, None)
        ts.append(time.perf_counter() - t)
out["twilio_http_call_ms"] = med(ts)
out["database_claim_and_record_ms"] = out["warm_job_ms"] - out["twilio_http_call_ms"]

# 6. rq's own cost per job: no-op jobs through a SimpleWorker in burst mode
from redis import Redis
from rq import Queue, SimpleWorker
conn = Redis.from_url(os.environ["REDIS_URL"])
q = Queue("sd-prof-" + uuid.uuid4().hex[:6], connection=conn)
n = R * 10
for i in range(n):
    q.enqueue("os.getpid", result_ttl=0)
t = time.perf_counter(); SimpleWorker([q], connection=conn).work(burst=True)
out["rq_noop_job_ms"] = (time.perf_counter() - t) / n * 1000
q.delete(delete_jobs=True)
print(json.dumps(out))
'''


# --- the run ----------------------------------------------------------------------------------

def render(report: dict) -> str:
    lines = ["## SMS (issue 3)", "",
             f"Run {report['started']} ({report['duration_s']:.0f} s): `{report['command']}`", "",
             "Throughput: messages a second accepted by the fake Twilio, from its first to its "
             "last message (worker start-up excluded); burst workers on a queue filled with "
             f"{report['args']['messages']} outbox rows.", "",
             "| worker | processes | messages/s | per process | middle 80 % |",
             "|---|---|---|---|---|"]
    for r in report["throughput"]:
        label = {"fork": "fork (as shipped: rq Worker)",
                 "simple": "simple (proposed: rq SimpleWorker)"}[r["kind"]]
        lines.append(f"| {label} | {r['workers']} | {r['per_second']:.0f} | "
                     f"{r['per_worker']:.0f} | {r['per_second_middle80']:.0f} |")
    lines += ["", f"Commit to SMS: {report['args']['events']} intakes committed at "
              f"{report['args']['rate']:g} a second through the intake service, workers "
              "running; from the commit of the outbox row to the fake accepting the message.",
              "", "| worker | processes | median ms | p99 ms | max ms |", "|---|---|---|---|---|"]
    for r in report["latency"]:
        lines.append(f"| {r['kind']} | {r['workers']} | {r['median_ms']:.0f} | "
                     f"{r['p99_ms']:.0f} | {r['max_ms']:.0f} |")
    goals = []
    for r in report["throughput"]:
        if r["workers"] == 1:
            goals.append(f"{r['kind']}: {r['per_worker']:.0f}/s per process "
                         f"({'met' if r['per_worker'] >= 100 else 'NOT met'})")
    for r in report["latency"]:
        goals.append(f"{r['kind']} median {r['median_ms']:.0f} ms "
                     f"({'met' if r['median_ms'] < 200 else 'NOT met'})")
    lines += ["", "Goals: ≥ 100 messages a second per worker process; median commit to send "
              "under 200 ms. " + "; ".join(goals) + "."]
    if report.get("profile"):
        p = report["profile"]
        lines += ["", "Where a forked job's time goes (medians, ms, measured piece by piece in "
                  "a worker-like process):", "",
                  "| piece | ms |", "|---|---|"]
        for key, label in [("fork_and_reap_ms", "fork + exit + reap of the work-horse"),
                           ("create_app_ms", "create_app() in the horse (jobs.worker_app: new pid)"),
                           ("horse_twilio_import_ms",
                            "twilio REST modules imported and client built in the horse"),
                           ("cold_delivery_without_create_app_ms",
                            "first delivery of a new app: new DB connection, twilio client, TCP"),
                           ("cold_job_total_ms", "one job of a fresh app (create_app + cold "
                                                 "delivery; twilio already imported)"),
                           ("warm_job_ms", "one job with a warm app, pool and HTTP connection"),
                           ("twilio_http_call_ms", "  of which the twilio SDK call to the fake"),
                           ("database_claim_and_record_ms",
                            "  of which claim + record (2 commits)"),
                           ("rq_noop_job_ms", "rq's own cost per job (no-op job, SimpleWorker)")]:
            if key in p:
                lines.append(f"| {label} | {p[key]:.1f} |")
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
              "", "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="per throughput run")
    parser.add_argument("--events", type=int, default=100, help="per latency run")
    parser.add_argument("--rate", type=float, default=10, help="events a second (latency)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--kinds", default="fork,simple")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.time()
    from datetime import datetime, timezone
    report = {"started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": ("python bench/bench_sms.py " + " ".join(
                  argv if argv is not None else sys.argv[1:])).strip(),
              "args": vars(args), "machine": suite.machine(), "throughput": [],
              "latency": []}

    def log(msg):
        print(f"{time.time() - started:6.1f}s {msg}", flush=True)

    db_url = suite.create_pg("sms")
    fake = timed_fake()
    queue = f"sd-bench-sms-{uuid.uuid4().hex[:8]}"
    secret = secrets.token_hex(32)
    env = worker_env(db_url, fake, queue, secret)
    try:
        suite.flask({**env, "SMS_BACKEND": "console"}, "init-db")
        app = make_app(db_url, fake, queue, secret)
        from servicedesk.extensions import db
        from servicedesk.services.people import create_user
        from servicedesk.services.tickets import default_branch
        with app.app_context():
            user = create_user("bench", "reception", "bench-password-1", branch=default_branch())
            user_id = user.id
            db.session.remove()
        body = ("سلام نرگس، گوشی Samsung Galaxy A54 شما با شماره پذیرش A-0001 در تعمیرگاه "
                "ثبت شد. پیگیری: http://shop.test/t/K7QW2M9XPLR4TZ8V")
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        counts = [int(c) for c in args.workers.split(",") if c.strip()]
        for kind in kinds:
            for count in counts:
                r = throughput(app, fake, env, kind, count, args.messages, body)
                log(f"throughput {kind} x{count}: {r['per_second']:.0f}/s "
                    f"({r['per_worker']:.0f} per process)")
                report["throughput"].append(r)
        for kind in kinds:
            r = latency(app, fake, env, kind, 1, args.events, args.rate, user_id)
            log(f"latency {kind} x1: median {r['median_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms")
            report["latency"].append(r)
        if not args.no_profile:
            report["profile"] = profile(env, 20)
            log(f"profile: {report['profile']}")
    finally:
        fake.stop()
        try:
            suite._delete_queue(queue)
        except Exception:  # noqa: BLE001
            pass
        suite.drop_pg(db_url)
    report["machine"]["load_after"] = os.getloadavg()
    report["versions"] = suite.versions(False)
    report["duration_s"] = time.time() - started
    text = render(report)
    print(text)
    if not args.no_write:
        suite.RAW.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        (suite.RAW / f"sms-{stamp}.json").write_text(json.dumps(report, indent=1, default=str))
        suite.update_results("sms", text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_simple-worker":
        simple_worker("--burst" in sys.argv)
    else:
        sys.exit(main())
