"""The outbox sweep: hands rows that were never handed over, retries that are due and sends
stuck without an outcome back to the sender. Run every minute by the worker; also a command."""
from datetime import timedelta
from typing import Callable, Optional

from .delivery import reset_stuck
from .outbox import dispatch, due


def sweep(send: Optional[Callable[[int], None]] = None,
          stuck_after: Optional[timedelta] = None,
          pending_after: timedelta = timedelta(minutes=2)) -> int:
    """Re-enqueue what is due; returns how many rows were handed over. ``send`` sends each
    row in this thread instead (the command, when no worker runs)."""
    from . import webhooks
    reset_stuck(stuck_after)
    # webhook deliveries too: sent in this thread as ("webhook", id), or queued
    hooks = webhooks.sweep(None if send is None else (lambda i: send(("webhook", i))),
                           pending_after=pending_after if stuck_after is None else stuck_after)
    rows = due(pending_after=pending_after if stuck_after is None else stuck_after)
    if not rows:
        return hooks
    if send is not None:
        for i in rows:
            send(i)
    else:
        dispatch(list(rows), attempts=rows)
    return len(rows) + hooks
