"""Where a write request's time goes: intake and a transition (and the staff ticket page, the
third scenario of bench/run.py), in one process, profiled.

Not a benchmark of throughput (bench/run.py is): this runs the JSON API's intake and
``send_to_repair`` through the WSGI app in this process (no server, no network), reports the
CPU time a request costs (median of several batches) and the statements it sends, then prints
cProfile's top functions, so a change to the write path can be judged before the full suite.

    .venv/bin/python bench/profile_writes.py                 # PostgreSQL, 300 requests each
    .venv/bin/python bench/profile_writes.py --db sqlite --requests 500 --top 40
    .venv/bin/python bench/profile_writes.py --no-profile    # CPU and statements only
    .venv/bin/python bench/profile_writes.py --no-profile --statements   # time per statement

The database comes from bench/run.py's helpers: a throwaway ``sd_bench_prof_*`` on PostgreSQL
(dropped after), ``prof.db`` in the bench work folder on SQLite (replaced by the next run). With ``--redis`` the SMS rows go to
rq as in production (no worker runs), in the bench's own Redis database and queue.
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from sqlalchemy import event  # noqa: E402

import run  # noqa: E402  (bench/ is not a package)


def package_of(path: str) -> str:
    """'sqlalchemy/orm', 'psycopg', 'servicedesk', 'stdlib json'... for a profiled file."""
    if "site-packages/" in path:
        parts = path.split("site-packages/", 1)[1].split("/")
        return "/".join(parts[:2]) if parts[0] == "sqlalchemy" else parts[0]
    if "/servicedesk/" in path:
        return "servicedesk/" + path.split("/servicedesk/", 1)[1].split("/")[0]
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    return "stdlib " + Path(path).stem


def report_profile(name: str, stats: pstats.Stats, args) -> None:
    # Deterministic, unlike the CPU time on a shared machine: Python function calls
    print(f"{name}: {stats.total_calls / args.requests:,.0f} function calls a request")
    print(f"--- {name}: own time by package (share of the profiled time)")
    by_package: dict = {}
    for (path, _line, _fn), row in stats.stats.items():
        by_package[package_of(path)] = by_package.get(package_of(path), 0) + row[2]
    total = sum(by_package.values())
    for package, own in sorted(by_package.items(), key=lambda x: -x[1])[:15]:
        print(f"    {package:28} {own / total:6.1%}")
    print(f"--- {name}: top {args.top} by {args.sort}")
    stats.sort_stats(args.sort).print_stats(args.top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--redis", action="store_true", help="hand SMS rows to rq (production)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--statements", action="store_true",
                        help="also time each statement in the driver, slowest first")
    args = parser.parse_args(argv)

    run.WORK.mkdir(parents=True, exist_ok=True)
    url = run.database(args.db, "prof")
    os.environ.update(DATABASE_URL=url, SECRET_KEY=uuid.uuid4().hex * 2, SMS_BACKEND="console",
                      SERVICEDESK_LOG_LEVEL="WARNING", PUBLIC_BASE_URL="http://shop.test",
                      SERVICEDESK_RATELIMIT_ENABLED="false")
    queue = None
    if args.redis:
        queue = f"sd-prof-{uuid.uuid4().hex[:8]}"
        os.environ.update(REDIS_URL=run.REDIS_URL, SERVICEDESK_RQ_QUEUE=queue)
    else:
        os.environ.pop("REDIS_URL", None)
    try:
        from servicedesk import create_app
        app = create_app()
        runner = app.test_cli_runner()
        with app.app_context():
            for cmd in (["init-db"], ["create-user", "bench", "--role", "reception",
                                      "--password", "bench-pass-1"]):
                out = runner.invoke(args=cmd)
                assert out.exit_code == 0, out.output
            token = runner.invoke(args=["api-token", "bench"]).output.strip().splitlines()[-1]
            out = runner.invoke(args=["create-user", "benchtech", "--role", "technician",
                                      "--password", "bench-pass-1"])
            assert out.exit_code == 0, out.output
            tech = runner.invoke(args=["api-token", "benchtech"]).output.strip().splitlines()[-1]
        client = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        from servicedesk.extensions import db
        with app.app_context():
            engine = db.engine
        statements = []
        timings: dict = {}  # statement -> [count, seconds], for the --statements table

        def before(conn, _cursor, statement, *_args):
            statements.append(statement)
            conn.info["prof_t0"] = time.perf_counter()

        def after(conn, _cursor, statement, *_args):
            row = timings.setdefault(" ".join(statement.split())[:150], [0, 0.0])
            row[0] += 1
            row[1] += time.perf_counter() - conn.info.pop("prof_t0")

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        counter = iter(range(10**9))

        def intake():
            n = next(counter)
            r = client.post("/api/v1/tickets", json={
                "customer": {"name": f"Customer {n}", "phone": f"0912{n:07d}"},
                "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A54"},
                "problem": "Cracked screen, touch works"}, headers=auth)
            assert r.status_code == 201, r.get_data(as_text=True)
            return r.get_json()["id"]

        ids = [intake() for _ in range(20)]  # warm-up
        pending = []

        def transition():
            r = client.post(f"/api/v1/tickets/{pending.pop()}/events",
                            json={"event": "send_to_repair"}, headers=auth)
            assert r.status_code == 200, r.get_data(as_text=True)

        browser = app.test_client(use_cookies=False)  # no session: bench/run.py sends none

        def page():  # the technician's page of a ticket in intake, as bench/run.py asks for it
            r = browser.get(f"/tickets/{ids[-1]}", headers={"Authorization": f"Bearer {tech}",
                                                          "Accept": "text/html"})
            assert r.status_code == 200, (r.status_code, r.headers.get("Location"))

        for tid in ids[:-1]:
            client.post(f"/api/v1/tickets/{tid}/events", json={"event": "send_to_repair"},
                        headers=auth)
        for name, op in (("intake", intake), ("transition", transition), ("ticket page", page)):
            if name == "transition":  # tickets to move, taken in before the clock starts
                pending = [intake() for _ in range(args.requests * (args.batches + 1) + 2)]
            cpu = []
            timings.clear()
            for _ in range(args.batches):
                statements.clear()
                start = time.process_time()
                for _ in range(args.requests):
                    op()
                cpu.append((time.process_time() - start) / args.requests * 1000)
                per_request = len(statements) / args.requests
            print(f"{name}: {statistics.median(cpu):.2f} ms CPU a request (batches: "
                  f"{', '.join(f'{c:.2f}' for c in cpu)}), {per_request:.1f} statements")
            if args.statements:  # wall time in the driver, the sender thread's included
                print(f"--- {name}: statements by time in the driver (µs a request, µs each)")
                total = args.requests * args.batches
                for text, (count, seconds) in sorted(timings.items(), key=lambda x: -x[1][1]):
                    print(f"    {seconds / total * 1e6:7.0f} {seconds / count * 1e6:7.0f}  {text}")
            if not args.no_profile:
                profile = cProfile.Profile(time.process_time)  # CPU, not waits
                profile.enable()
                for _ in range(args.requests):
                    op()
                profile.disable()
                report_profile(name, pstats.Stats(profile), args)
        pending = [intake()]
        for name, op in (("intake", intake), ("transition", transition), ("ticket page", page)):
            statements.clear()
            op()
            print(f"--- statements of one {name}:")
            for statement in statements:
                print("   ", " ".join(statement.split())[:160])
    finally:
        try:
            from servicedesk.extensions import db
            with app.app_context():
                db.engine.dispose()
        except Exception:  # noqa: BLE001
            pass
        run.drop(url)
        if queue:
            run._delete_queue(queue)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
