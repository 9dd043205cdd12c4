"""Where the machine's CPU goes per request: the app's gunicorn workers, the database server,
Redis and the load client, for intake and a transition under the suite's load.

bench/run.py says how many requests a second; this says what each one costs and who pays:
the CPU seconds of each group of processes (from /proc) over a run, divided by the requests.
On two cores shared by all of them, the sum is what bounds the throughput.

    .venv/bin/python bench/cpu_split.py                      # PostgreSQL, Servicedesk and floor
    .venv/bin/python bench/cpu_split.py --db sqlite --requests 1000 --concurrency 8
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from _load import load  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pids) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    return total


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if any(comm.startswith(n) for n in names):
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def measure(system, requests: list[bytes], concurrency: int, expected: int, keep: bool):
    app = tree(system.server.proc.pid)
    groups = {"app (gunicorn)": app, "database": pids_named("postgres"),
              "redis": pids_named("redis-server")}
    before = {k: cpu_of(v) for k, v in groups.items()}
    per_process = {pid: cpu_of([pid]) for pid in app}
    me, wall = time.process_time(), time.monotonic()
    result = load(system.server.port, requests, concurrency, expected, keep_bodies=keep)
    client, wall = time.process_time() - me, time.monotonic() - wall
    after = {k: cpu_of(v) for k, v in groups.items()}
    # how busy each gunicorn process was: a worker's Python runs on one core at most (the GIL)
    busy = sorted((cpu_of([pid]) - cpu) / wall for pid, cpu in per_process.items())
    print("    busy (cores) per app process: " + ", ".join(f"{b:.2f}" for b in busy if b > 0.005))
    n = len(requests)
    split = {k: (after[k] - before[k]) / n * 1000 for k in groups}
    split["load client"] = client / n * 1000
    return result, split


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    run.WORK.mkdir(parents=True, exist_ok=True)
    systems = {"servicedesk": run.servicedesk(args.db, "3"), "floor": run.floor(args.db)}
    try:
        for s in systems.values():
            s.server.start()
        for name, s in systems.items():  # warm-up
            warm = load(s.server.port, [s.intake(10**6 + i) for i in range(40)],
                        args.concurrency, s.intake_status, keep_bodies=True)
            assert not warm.errors, warm.first_error()
        for round_no in range(args.rounds):
            for name, s in systems.items():
                base = (round_no + 1) * 100_000
                res, split = measure(s, [s.intake(base + i) for i in range(args.requests)],
                                     args.concurrency, s.intake_status, s.transition is not None)
                assert not res.errors, res.first_error()
                report(name, "intake", res, split)
                if s.transition:
                    ids = s.ids(res)
                    res2, split2 = measure(s, [s.transition(i) for i in ids], args.concurrency,
                                           s.transition_status, False)
                    assert not res2.errors, res2.first_error()
                    report(name, "transition", res2, split2)
    finally:
        for s in systems.values():
            s.server.stop()
            for step in s.cleanup:
                step()
    return 0


def report(name: str, scenario: str, result, split: dict) -> None:
    total = sum(split.values())
    parts = ", ".join(f"{k} {v:.2f}" for k, v in split.items())
    print(f"{name:12} {scenario:10} {result.rps:6.0f}/s  CPU ms a request: {total:.2f} "
          f"({parts})", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
