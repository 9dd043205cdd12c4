"""The background worker: an rq worker (with its scheduler, for retries) on the SMS queue; the
outbox sweep every minute, so rows whose hand-off failed (Redis down at commit time) or whose
worker died mid-send are sent anyway; and, every hour, the customers' reminders
(``services.reminders.remind``; also ``flask remind-customers``) and the close of delivered
tickets whose survey nobody answered (``services.surveys.auto_close``; also
``flask close-unanswered`` for cron)."""
import json
import logging
import threading
import time

from redis import Redis
from rq import SimpleWorker

from .. import chores
from .queue import get_queue

log = logging.getLogger(__name__)


# The worker's heartbeat: after each round of the outbox sweep it writes when (and how often it
# sweeps) here, so `flask check` and /readyz can say whether any worker is running at all.
HEARTBEAT_TTL = 7 * 24 * 3600  # long enough to say "last seen 3 hours ago", not forever


def heartbeat_key(app) -> str:
    from .queue import QUEUE_NAME
    return f"{app.config.get('RQ_QUEUE', QUEUE_NAME)}:last-sweep"


def read_heartbeat(app, client) -> "dict | None":
    """``{"at": unix time, "every": seconds}`` of the last sweep on this Redis, or None."""
    raw = client.get(heartbeat_key(app))
    if raw is None:
        return None
    try:
        beat = json.loads(raw)
        return {"at": float(beat["at"]), "every": float(beat.get("every") or 60)}
    except (ValueError, TypeError, KeyError):
        return None


def _beat(app, every: float) -> None:
    """Write the heartbeat; a Redis that does not answer only costs this one beat."""
    try:
        get_queue(app).connection.set(heartbeat_key(app),
                                      json.dumps({"at": time.time(), "every": every}),
                                      ex=HEARTBEAT_TTL)
    except Exception:  # noqa: BLE001
        log.warning("could not write the worker's heartbeat to Redis", exc_info=True)


def _sweep_loop(app, every: float, stop: threading.Event) -> None:
    """The worker's clock: the outbox sweep every ``every`` seconds, and the hourly chores
    (reminders, auto-close: ``servicedesk.chores``) every ``AUTO_CLOSE_EVERY`` seconds."""
    close_every = chores.period(app, "AUTO_CLOSE_EVERY", 3600)
    next_close = time.monotonic()  # once at start, then on the hour
    _beat(app, every)  # a worker that just started is seen at once, not a minute later
    while not stop.wait(every):
        chores.run(app, "outbox sweep", _sweep_once)
        _beat(app, every)
        if time.monotonic() >= next_close:
            chores.run_hourly(app)
            next_close = time.monotonic() + close_every


def _sweep_once() -> None:
    from .sweep import sweep
    count = sweep()
    if count:
        log.info("sweep re-enqueued %d notification(s)", count)


def run_worker(app, burst: bool = False, sweep_every: float = 60) -> None:
    if not app.config.get("REDIS_URL"):
        raise SystemExit("REDIS_URL is not set: notifications are sent in-process, "
                         "no worker is needed.")
    queue = get_queue(app)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_sweep_loop, args=(app, sweep_every, stop), daemon=True).start()
    else:  # a burst does one round of the clock's work first
        chores.run(app, "outbox sweep", _sweep_once)
        _beat(app, sweep_every)
        chores.run_hourly(app)
    try:
        connection = Redis.from_url(app.config["REDIS_URL"])
        # SimpleWorker: no fork per job (a fork re-imports twilio and rebuilds the app: ~140 ms a
        # message); jobs push their own app context and remove their session.
        SimpleWorker([queue], connection=connection).work(burst=burst, with_scheduler=True)
    finally:
        stop.set()
