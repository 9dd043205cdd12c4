"""The shop's periodic chores, run every ``AUTO_CLOSE_EVERY`` seconds (an hour) by whatever
keeps the clock: the rq worker when Redis is set, else the web process's in-process sender (the
embedded default needs no cron). Each chore is safe to run in two processes at once: reminders
are keyed by the event they are about, and the auto-close re-reads each ticket in its own
transaction. ``flask remind-customers`` and ``flask close-unanswered`` do the same from cron."""
import logging

log = logging.getLogger(__name__)


def remind_customers() -> None:
    from .services.reminders import remind
    written = remind()
    if any(written.values()):
        log.info("reminders written: %s", written)


def close_unanswered() -> None:
    from .services.surveys import auto_close
    count = auto_close()
    if count:
        log.info("auto-close closed %d delivered ticket(s) with no survey answer", count)


HOURLY = (("reminders", remind_customers), ("auto-close", close_unanswered))


def period(app, name: str, default: float) -> float:
    """A clock's period from the config (``AUTO_CLOSE_EVERY``, ``SWEEP_EVERY``): one that does
    not read as positive seconds is the default, so a typo in the environment cannot stop the
    thread that keeps the clock (and, without Redis, sends the SMS)."""
    try:
        seconds = float(app.config.get(name))
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


def run(app, what: str, job) -> None:
    """``job`` in a fresh app context; a failure is logged and the clock keeps going (the
    database or Redis may be back next time)."""
    from .extensions import db
    try:
        with app.app_context():
            try:
                job()
            finally:
                db.session.remove()
    except Exception:  # noqa: BLE001
        log.exception("%s failed", what)


def run_hourly(app) -> None:
    for what, job in HOURLY:
        run(app, what, job)
