"""rq jobs. Each job pushes a fresh app context (the worker keeps one app per process, with the
engine disposed after fork) and ends by removing its session."""
import os

_app = None
_app_pid = None


def worker_app():
    global _app, _app_pid
    if _app is None or _app_pid != os.getpid():
        from .. import create_app
        _app = create_app()
        _app_pid = os.getpid()
        with _app.app_context():
            from ..extensions import db
            db.engine.dispose(close=False)  # never share a pool's sockets across a fork
    return _app


def send_notification(notification_id: int) -> str:
    from ..extensions import db
    from .delivery import deliver
    app = worker_app()
    with app.app_context():
        try:
            return deliver(notification_id)
        finally:
            db.session.remove()


def send_webhook(delivery_id: int) -> str:
    """POST one webhook delivery; a transient failure (recorded as a retry) raises, so rq
    runs the job again after its interval."""
    from ..extensions import db
    from .webhooks import deliver
    app = worker_app()
    with app.app_context():
        try:
            return deliver(delivery_id)
        finally:
            db.session.remove()


def sweep_outbox() -> int:
    from ..extensions import db
    from .sweep import sweep
    app = worker_app()
    with app.app_context():
        try:
            return sweep()
        finally:
            db.session.remove()
