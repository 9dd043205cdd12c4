"""The in-process sender of the embedded default (no Redis): after a commit, the new outbox rows
are sent by a daemon thread; it also sweeps every minute so retries and leftovers go out."""
import logging
import queue
import threading
from typing import Iterable

from .backends import TransientFailure

log = logging.getLogger(__name__)


class InProcessSender:
    def __init__(self, app):
        self.app = app
        self.queue: "queue.Queue[int]" = queue.Queue()
        self._thread = None
        self._lock = threading.Lock()

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

    def _send_all(self, ids: list[int]) -> None:
        with self.app.app_context():
            for i in ids:
                self._send_one(i)

    def send_now(self, notification_id: int) -> None:
        """Send in the calling thread (the sweep command, with nothing else running)."""
        self._send_one(notification_id)

    def _send_one(self, notification_id: int) -> None:
        from .delivery import deliver
        from ..extensions import db
        try:
            deliver(notification_id)
        except TransientFailure:
            pass  # recorded as 'retry'; the sweep sends it when due
        except Exception:  # noqa: BLE001
            log.exception("in-process send of notification %s failed", notification_id)
        finally:
            db.session.remove()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sms-sender",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        from .sweep import sweep
        while True:
            try:
                nid = self.queue.get(timeout=60)
            except queue.Empty:
                try:
                    with self.app.app_context():
                        sweep(send=self._send_one)
                except Exception:  # noqa: BLE001
                    log.exception("periodic outbox sweep failed")
                continue
            with self.app.app_context():
                self._send_one(nid)
            self.queue.task_done()
