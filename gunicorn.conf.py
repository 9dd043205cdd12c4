"""Gunicorn settings for Servicedesk in production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Every number can be changed from the environment (the systemd unit's EnvironmentFile or the
Procfile's platform), so one file serves a one-counter shop and a chain. See deploy/README.md.

The access log carries no personal data: no client address, no user agent, no referer (a
customer's browser sends the tracking page, token and all, as the referer), no query string,
and the tokens of customer links (/t/TOKEN, /s/TOKEN) are replaced by ":token".
"""
import logging
import multiprocessing
import os

from gunicorn.glogging import Logger

from servicedesk.logscrub import ScrubFilter, scrub_path, scrub_text


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# --- sockets and processes --------------------------------------------------------------------

# Behind nginx on the same host; a platform that sets PORT gets every interface on that port.
bind = os.environ.get("BIND") or (f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT")
                                  else "127.0.0.1:8000")
# Processes: each holds its own database pool. Two per core is plenty for an app that waits on
# the database; threads cover the waits inside a process (gthread worker, keep-alive capable).
workers = _int("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)  # keep <= the pool size (SQLAlchemy's default is 5)
# No preload: the app is built in each worker, so no database connection, Redis client or
# in-process sender thread is ever shared across a fork.
preload_app = False

# --- time limits ------------------------------------------------------------------------------

timeout = _int("GUNICORN_TIMEOUT", 30)           # a request stuck longer: the worker is replaced
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)  # finish requests on restart/HUP
keepalive = _int("GUNICORN_KEEPALIVE", 5)        # nginx keeps upstream connections open
# Recycle workers now and then: bounds the memory of any slow leak, jitter avoids all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# gunicorn's control socket (for gunicornc) defaults to ~/.gunicorn/gunicorn.ctl: shared by
# every instance of the user and not writable under ProtectSystem=strict. Off unless a path is
# given.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "/run/servicedesk/gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
# Heartbeat files in memory, not on a disk that may stall (and ProtectSystem=strict allows it).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Only the proxy on this host may say the request came over https (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# How many proxies stand in front (nginx: 1). Above 0, X-Forwarded-For/-Proto/-Host from that
# many hops become the request's address, scheme and host, so rate limits key on the customer,
# not on nginx (see post_worker_init).
PROXY_HOPS = _int("PROXY_HOPS", 0)

# --- logs -------------------------------------------------------------------------------------

loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
errorlog = os.environ.get("GUNICORN_ERRORLOG", "-")            # stderr: the journal
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # "" turns it off
# time, method, path (tokens replaced, no query), status, bytes, milliseconds, worker pid
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %(p)s'

class ScrubbedLogger(Logger):
    """Builds only the atoms that carry no personal data; any other atom in a changed format
    (%(h)s, %(r)s with the raw URI, %({authorization}i)s, %(f)s...) prints as "-"."""

    SAFE = ("t", "m", "s", "B", "b", "M", "D", "L", "T", "H", "p")

    def atoms(self, resp, req, environ, request_time):
        full = super().atoms(resp, req, environ, request_time)
        atoms = {k: full[k] for k in self.SAFE}
        atoms["U"] = scrub_path(environ.get("PATH_INFO"))
        atoms["r"] = f"{atoms['m']} {atoms['U']} {atoms['H']}"
        return atoms

    def exception(self, msg, *args, **kwargs):  # "Error handling request /t/TOKEN?..."
        super().exception(msg, *(scrub_text(a) for a in args), **kwargs)

    def error(self, msg, *args, **kwargs):
        super().error(msg, *(scrub_text(a) for a in args), **kwargs)


logger_class = ScrubbedLogger


def post_worker_init(worker):
    """Runs in each worker after the app is loaded."""
    for handler in logging.getLogger().handlers:  # gunicorn's, set after the app's
        handler.addFilter(ScrubFilter())
    if PROXY_HOPS > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix
        worker.wsgi = ProxyFix(worker.wsgi, x_for=PROXY_HOPS, x_proto=PROXY_HOPS,
                               x_host=PROXY_HOPS)
