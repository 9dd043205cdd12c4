"""The in-process sender of the embedded default (no Redis): after a commit, the new outbox rows
are sent by a daemon thread. The same thread keeps the shop's clock, as the worker does with
Redis: the outbox sweep every minute, so retries and leftovers go out, and the hourly chores
(reminders, auto-close: ``servicedesk.chores``), so a shop with no worker and no cron still
gets them. A web process starts it with its first request (``start``). A send that failed for
a while (recorded as a retry) brings the next sweep forward to when the retry is due, so the
first retry (10 seconds) is not held back to the minute's sweep."""
import logging
import queue
import threading
import time
from typing import Iterable, Optional

from .backends import TransientFailure

log = logging.getLogger(__name__)

RETRY_MARGIN = 0.5  # seconds after a retry's time: the sweep then finds it due


def _due_in(model, row_id: int) -> Optional[float]:
    """Seconds until the row's retry is due (0 when it is already), None when it is not
    waiting for one (it failed for good, or was cancelled)."""
    from ..extensions import db
    from ..models import utcnow
    row = db.session.get(model, row_id)
    if row is None or row.status != "retry" or row.next_attempt_at is None:
        return None
    return max(0.0, (row.next_attempt_at - utcnow()).total_seconds())


class InProcessSender:
    def __init__(self, app):
        self.app = app
        self.queue: "queue.Queue[int]" = queue.Queue()
        self._thread = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        """Keep the clock from now on (the first request of a web process; again after a
        stop)."""
        self._stop.clear()
        self._ensure_thread()

    def stop(self, timeout: float = 10) -> None:
        """Stop the thread after what it is doing (tests; a process shutting down)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def submit(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if self.app.config.get("NOTIFY_INPROCESS") == "sync":
            # Its own thread and app context, so its own database session; joined at once.
            t = threading.Thread(target=self._send_all, args=(ids,))
            t.start()
            t.join()
            return
        self._ensure_thread()
        for i in ids:
            self.queue.put(i)

    def submit_webhooks(self, ids: Iterable[int]) -> None:
        """Webhook deliveries (``notifications.webhooks``), sent like the SMS."""
        self.submit([("webhook", i) for i in ids])

    def _send_all(self, ids: list) -> None:
        with self.app.app_context():
            for i in ids:
                self._send_one(i)

    def send_now(self, notification_id: int) -> None:
        """Send in the calling thread (the sweep command, with nothing else running)."""
        self._send_one(notification_id)

    def _send_one(self, notification_id) -> Optional[float]:
        """Send one row; the seconds until its retry is due when it was recorded as one."""
        from .delivery import deliver
        from ..extensions import db
        from ..models import Notification
        from ..models.webhooks import WebhookDelivery
        if isinstance(notification_id, tuple):  # ("webhook", id)
            from . import webhooks
            try:
                if webhooks.send_now(notification_id[1]) == "retry":
                    return _due_in(WebhookDelivery, notification_id[1])
            except Exception:  # noqa: BLE001
                log.exception("in-process send of webhook delivery %s failed",
                              notification_id[1])
            finally:
                db.session.remove()
            return None
        try:
            deliver(notification_id)
        except TransientFailure:
            # recorded as 'retry'; the sweep sends it when due
            return _due_in(Notification, notification_id)
        except Exception:  # noqa: BLE001
            log.exception("in-process send of notification %s failed", notification_id)
        finally:
            db.session.remove()
        return None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sms-sender",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        from .. import chores
        from .sweep import sweep
        sweep_every = chores.period(self.app, "SWEEP_EVERY", 60)
        chores_every = chores.period(self.app, "AUTO_CLOSE_EVERY", 3600)
        now = time.monotonic()
        next_sweep = now + sweep_every
        next_chores = now if self.app.config.get("INPROCESS_CLOCK", True) else float("inf")
        while not self._stop.is_set():
            wait = max(0.0, min(next_sweep, next_chores) - time.monotonic())
            try:
                nid = self.queue.get(timeout=min(wait, 1.0))  # a stop is seen within a second
            except queue.Empty:
                nid = None
            if nid is not None:
                with self.app.app_context():
                    retry_in = self._send_one(nid)
                self.queue.task_done()
                if retry_in is not None:  # the sweep that sends it, when it is due
                    next_sweep = min(next_sweep, time.monotonic() + retry_in + RETRY_MARGIN)
            now = time.monotonic()
            if now >= next_sweep:
                retries: list[float] = []  # a retry that fails again may be due before a minute

                def send(row_id, retries=retries):
                    retry_in = self._send_one(row_id)
                    if retry_in is not None:
                        retries.append(retry_in + RETRY_MARGIN)

                chores.run(self.app, "periodic outbox sweep", lambda: sweep(send=send))
                next_sweep = time.monotonic() + min([sweep_every, *retries])
            if now >= next_chores:
                chores.run_hourly(self.app)
                next_chores = time.monotonic() + chores_every
