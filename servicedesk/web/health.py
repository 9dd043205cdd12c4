"""Liveness and readiness probes (issue 9). No login, no rate limit, no cookie.

``/healthz`` answers 200 while the process can serve at all: a supervisor restarts the process
when it stops answering, so it must not depend on the database (a database outage would restart
every web process for nothing). ``/readyz`` says whether this process can do useful work now:
the database answers ``SELECT 1`` and, when ``REDIS_URL`` is set, Redis answers ``PING``; a load
balancer stops sending traffic while it answers 503. The body names the failing part but not the
driver's message (hosts and users stay out of a public answer; the log has them).
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


@bp.get("/readyz")
@limiter.exempt
def readyz():
    app = current_app._get_current_object()
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - the probe reports; it never raises
        log.warning("readiness: the database does not answer", exc_info=True)
        checks["database"] = "unreachable"
    url = app.config.get("REDIS_URL")
    if url:
        try:
            _redis_client(app, url).ping()
            checks["redis"] = "ok"
        except Exception:  # noqa: BLE001
            log.warning("readiness: Redis does not answer", exc_info=True)
            checks["redis"] = "unreachable"
    else:
        checks["redis"] = "not configured"
    failing = [name for name, state in checks.items() if state == "unreachable"]
    if failing:
        return _answer({"status": "unavailable", "failing": failing, "checks": checks}, 503)
    return _answer({"status": "ready", "checks": checks}, 200)
