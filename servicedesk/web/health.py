"""Liveness and readiness probes (issue 9). No login, no rate limit, no cookie.

``/healthz`` answers 200 while the process can serve at all: a supervisor restarts the process
when it stops answering, so it must not depend on the database (a database outage would restart
every web process for nothing). ``/readyz`` says whether this process can do useful work now:
the database answers ``SELECT 1`` and is at this code's migration (not behind it: pages would
fail on a missing column), and, when ``REDIS_URL`` is set, Redis answers ``PING``; a load
balancer stops sending traffic while it answers 503. The body names the failing part but not the
driver's message (hosts and users stay out of a public answer; the log has them).

It also reports, without failing, whether a worker has run the outbox sweep lately: the worker
is not this process's readiness, and a balancer that dropped every web process because the
worker is down would turn "SMS are late" into "the shop is closed".
"""
import logging

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from ..extensions import db, limiter

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


def _answer(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
@limiter.exempt
def healthz():
    return _answer({"status": "ok"}, 200)


def _redis_client(app, url: str):
    """One client per app and URL, with short timeouts: a probe must answer within the
    balancer's own timeout even when Redis hangs."""
    from redis import Redis
    cached = app.extensions.get("servicedesk_health_redis")
    if cached is None or cached[0] != url:
        cached = (url, Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1))
        app.extensions["servicedesk_health_redis"] = cached
    return cached[1]


_REVISIONS: dict = {}


def _code_revisions() -> tuple[frozenset, frozenset]:
    """(the code's migration heads, every revision it knows), read from the migration scripts
    once per process."""
    if not _REVISIONS:
        from alembic.script import ScriptDirectory

        from ..checks import MIGRATIONS
        script = ScriptDirectory(str(MIGRATIONS))
        _REVISIONS["heads"] = frozenset(script.get_heads())
        _REVISIONS["known"] = frozenset(r.revision for r in script.walk_revisions())
    return _REVISIONS["heads"], _REVISIONS["known"]


def _migration_state(app, conn) -> str:
    """"ok" when the database is at the code's head; "ahead" when it is at a revision this code
    does not know (the upgrade's order: migrate, then reload; the old processes meanwhile read a
    schema that only grew, and must stay in the balancer); "behind" otherwise (not migrated,
    or migrated to an older revision: pages would fail on what is missing). Once "ok", this
    process does not ask again (migrations only go forward); any other answer is asked again
    at the next probe."""
    if app.extensions.get("servicedesk_migrations_ok"):
        return "ok"
    heads, known = _code_revisions()
    try:
        with conn.begin():  # its own transaction: a failed read leaves none aborted behind
            current = set(conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                          .scalars())
    except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
        log.warning("readiness: the database's migration revision cannot be read",
                    exc_info=True)
        return "behind"
    if current == heads:
        app.extensions["servicedesk_migrations_ok"] = True
        return "ok"
    if current - known:
        return "ahead"
    log.warning("readiness: the database is at revision %s, the code expects %s",
                ", ".join(sorted(current)) or "none", ", ".join(sorted(heads)))
    return "behind"


def _worker_state(app, url: str) -> str:
    from ..checks import worker_state
    try:
        age, _, stale = worker_state(app, _redis_client(app, url))
    except Exception:  # noqa: BLE001
        return "unknown"
    if age is None:
        return "never seen"
    return "not seen lately" if stale else "ok"


@bp.get("/readyz")
@limiter.exempt
def readyz():
    app = current_app._get_current_object()
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
            conn.rollback()
            checks["migrations"] = _migration_state(app, conn)
    except Exception:  # noqa: BLE001 - the probe reports; it never raises
        log.warning("readiness: the database does not answer", exc_info=True)
        checks["database"] = "unreachable"
        checks["migrations"] = "unknown"
    url = app.config.get("REDIS_URL")
    if url:
        try:
            _redis_client(app, url).ping()
            checks["redis"] = "ok"
            checks["worker"] = _worker_state(app, url)  # reported, never failing
        except Exception:  # noqa: BLE001
            log.warning("readiness: Redis does not answer", exc_info=True)
            checks["redis"] = "unreachable"
            checks["worker"] = "unknown"
    else:
        checks["redis"] = "not configured"
    failing = [name for name, state in checks.items() if state in ("unreachable", "behind")]
    if failing:
        return _answer({"status": "unavailable", "failing": failing, "checks": checks}, 503)
    return _answer({"status": "ready", "checks": checks}, 200)
