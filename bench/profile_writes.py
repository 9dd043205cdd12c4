"""Where a write request's time goes: intake and a transition, in one process, profiled.

Not a benchmark of throughput (bench/run.py is): this runs the JSON API's intake and
``send_to_repair`` through the WSGI app in this process (no server, no network), reports the
CPU time a request costs (median of several batches) and the statements it sends, then prints
cProfile's top functions, so a change to the write path can be judged before the full suite.

    .venv/bin/python bench/profile_writes.py                 # PostgreSQL, 300 requests each
    .venv/bin/python bench/profile_writes.py --db sqlite --requests 500 --top 40
    .venv/bin/python bench/profile_writes.py --no-profile    # CPU and statements only

A throwaway database (``sd_bench_prof_*`` on PostgreSQL, a file in /tmp on SQLite) is created
and dropped. With ``--redis`` the SMS rows go to rq as in production (no worker runs).
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402

PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def make_database(db: str) -> tuple[str, callable]:
    if db == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="sd-prof-")) / "prof.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    name = f"sd_bench_prof_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--redis", action="store_true", help="hand SMS rows to rq (production)")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args(argv)

    url, drop = make_database(args.db)
    os.environ.update(DATABASE_URL=url, SECRET_KEY=uuid.uuid4().hex * 2, SMS_BACKEND="console",
                      SERVICEDESK_LOG_LEVEL="WARNING", PUBLIC_BASE_URL="http://shop.test",
                      SERVICEDESK_RATELIMIT_ENABLED="false")
    queue = None
    if args.redis:
        queue = f"sd-prof-{uuid.uuid4().hex[:8]}"
        os.environ.update(REDIS_URL=REDIS_URL, SERVICEDESK_RQ_QUEUE=queue)
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
        client = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        from servicedesk.extensions import db
        with app.app_context():
            engine = db.engine
        statements = []
        event.listen(engine, "before_cursor_execute",
                     lambda *a, **k: statements.append(a[2]))
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

        for tid in ids:
            client.post(f"/api/v1/tickets/{tid}/events", json={"event": "send_to_repair"},
                        headers=auth)
        for name, op in (("intake", intake), ("transition", transition)):
            if name == "transition":  # tickets to move, taken in before the clock starts
                pending = [intake() for _ in range(args.requests * (args.batches + 1) + 2)]
            cpu = []
            for _ in range(args.batches):
                statements.clear()
                start = time.process_time()
                for _ in range(args.requests):
                    op()
                cpu.append((time.process_time() - start) / args.requests * 1000)
                per_request = len(statements) / args.requests
            print(f"{name}: {statistics.median(cpu):.2f} ms CPU a request (batches: "
                  f"{', '.join(f'{c:.2f}' for c in cpu)}), {per_request:.1f} statements")
            if not args.no_profile:
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(args.requests):
                    op()
                profile.disable()
                stats = pstats.Stats(profile)
                # Deterministic, unlike the CPU time on a shared machine: Python function calls
                print(f"{name}: {stats.total_calls / args.requests:,.0f} function calls a "
                      f"request")
                print(f"--- {name}: own time by package (share of the profiled time)")
                by_package: dict = {}
                for (path, _line, _fn), row in stats.stats.items():
                    by_package[package_of(path)] = by_package.get(package_of(path), 0) + row[2]
                total = sum(by_package.values())
                for package, own in sorted(by_package.items(), key=lambda x: -x[1])[:15]:
                    print(f"    {package:28} {own / total:6.1%}")
                print(f"--- {name}: top {args.top} by {args.sort}")
                stats.sort_stats(args.sort).print_stats(args.top)
        statements.clear()
        intake()
        print("--- statements of one intake:")
        for s in statements:
            print("   ", " ".join(s.split())[:160])
        statements.clear()
        pending = [intake()]
        statements.clear()
        transition()
        print("--- statements of one transition:")
        for s in statements:
            print("   ", " ".join(s.split())[:160])
    finally:
        try:
            from servicedesk.extensions import db
            with app.app_context():
                db.engine.dispose()
        except Exception:  # noqa: BLE001
            pass
        drop()
        if queue:
            import redis
            r = redis.Redis.from_url(REDIS_URL)
            for key in r.scan_iter(f"rq:*{queue}*"):
                r.delete(key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
