"""The outbox sweep: hands rows that were never handed over, retries that are due and sends
stuck without an outcome back to the sender. Run every minute by the worker; also a command."""
from typing import Callable, Optional

from flask import current_app

from .delivery import reset_stuck
from .outbox import due_ids


def sweep(send: Optional[Callable[[int], None]] = None) -> int:
    """Re-enqueue what is due; returns how many rows were handed over."""
    reset_stuck()
    ids = due_ids()
    if not ids:
        return 0
    if send is not None:
        for i in ids:
            send(i)
    elif current_app.config.get("REDIS_URL"):
        from .queue import enqueue
        enqueue(current_app._get_current_object(), ids)
    else:
        current_app.extensions["servicedesk_sender"].submit(ids)
    return len(ids)
