"""The background worker: an rq worker (with its scheduler, for retries) on the SMS queue; the
outbox sweep every minute, so rows whose hand-off failed (Redis down at commit time) or whose
worker died mid-send are sent anyway; and, every hour, the customers' reminders
(``services.reminders.remind``; also ``flask remind-customers``) and the close of delivered
tickets whose survey nobody answered (``services.surveys.auto_close``; also
``flask close-unanswered`` for cron)."""
import logging
import threading

from redis import Redis
from rq import SimpleWorker

from .. import chores
from .queue import get_queue

log = logging.getLogger(__name__)


def _sweep_loop(app, every: float, stop: threading.Event) -> None:
    """The worker's clock: the outbox sweep every ``every`` seconds, and the hourly chores
    (reminders, auto-close: ``servicedesk.chores``) every ``AUTO_CLOSE_EVERY`` seconds."""
    import time
    close_every = chores.period(app, "AUTO_CLOSE_EVERY", 3600)
    next_close = time.monotonic()  # once at start, then on the hour
    while not stop.wait(every):
        chores.run(app, "outbox sweep", _sweep_once)
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
        chores.run_hourly(app)
    try:
        connection = Redis.from_url(app.config["REDIS_URL"])
        # SimpleWorker: no fork per job (a fork re-imports twilio and rebuilds the app: ~140 ms a
        # message); jobs push their own app context and remove their session.
        SimpleWorker([queue], connection=connection).work(burst=burst, with_scheduler=True)
    finally:
        stop.set()
