"""The background worker: an rq worker (with its scheduler, for retries) on the SMS queue, and
the outbox sweep every minute, so rows whose hand-off failed (Redis down at commit time) or whose
worker died mid-send are sent anyway."""
import logging
import threading

from redis import Redis
from rq import SimpleWorker

from .queue import get_queue

log = logging.getLogger(__name__)


def _sweep_loop(app, every: float, stop: threading.Event) -> None:
    from ..extensions import db
    from .sweep import sweep
    while not stop.wait(every):
        try:
            with app.app_context():
                count = sweep()
                db.session.remove()
            if count:
                log.info("sweep re-enqueued %d notification(s)", count)
        except Exception:  # noqa: BLE001 - keep sweeping; Redis or the database may be back
            log.exception("outbox sweep failed")


def run_worker(app, burst: bool = False, sweep_every: float = 60) -> None:
    if not app.config.get("REDIS_URL"):
        raise SystemExit("REDIS_URL is not set: notifications are sent in-process, "
                         "no worker is needed.")
    queue = get_queue(app)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_sweep_loop, args=(app, sweep_every, stop), daemon=True).start()
    else:
        from .sweep import sweep
        with app.app_context():
            sweep()
    try:
        connection = Redis.from_url(app.config["REDIS_URL"])
        # SimpleWorker: no fork per job (a fork re-imports twilio and rebuilds the app: ~140 ms a
        # message); jobs push their own app context and remove their session.
        SimpleWorker([queue], connection=connection).work(burst=burst, with_scheduler=True)
    finally:
        stop.set()
