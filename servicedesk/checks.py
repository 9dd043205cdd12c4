"""`flask --app wsgi check`: verifies the configuration and says what is wrong (issue 9).

One line per check, ``OK``, ``WARN`` (worth a look, does not fail) or ``FAIL`` and what to do,
in words a shop's administrator can act on; the exit status is 1 when any check fails, so a
deploy script or a systemd ``ExecStartPre`` can stop on it. Each check is a plain function
returning a ``Result``, so the readiness probe and the tests can call them one by one.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext, pgettext

from .cli import ShopCommand, shop_language

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
INIT_DB = "flask --app wsgi init-db"

# Values that have appeared in this repository, its docs or the usual tutorials: a key anyone
# can read signs nobody's session.
KNOWN_DEV_SECRETS = {
    "test-secret-key-not-for-production", "dev", "development", "secret", "secret-key",
    "secret_key", "changeme", "change-me", "change_me", "please-change-me", "your-secret-key",
    "supersecret", "default", "test", "testing", "servicedesk", "flask", "...",
}
MIN_SECRET_LENGTH = 32


# What each check is called on its line, in the shop's language; ``Result.name`` stays the
# check's own name (the tests and the readiness probe know them by it).
TITLES = {"database": _l("database"), "migrations": _l("migrations"), "redis": _l("redis"),
          "worker": _l("worker"), "sms": _l("sms"), "secret key": _l("secret key"),
          "translations": _l("translations"), "shop": _l("shop"),
          "environment": _l("environment"), "webhooks": _l("webhooks"),
          "trusted hosts": _l("trusted hosts")}


@dataclass
class Result:
    """One check's finding: ``message`` in the language it was made in (the command makes
    them in the shop's: cli.shop_language); OK, WARN and FAIL stay as they are, for the scripts
    and units that read them."""
    name: str
    ok: bool
    message: str
    warn: bool = False  # ok, but worth a look: printed WARN, does not fail the command

    def line(self) -> str:
        label = "FAIL" if not self.ok else "WARN" if self.warn else "OK  "
        return f"{label}  {TITLES.get(self.name, self.name)}: {self.message}"


class ConfigError(click.ClickException):
    """A setting so wrong that the app cannot be built (create_app raises it): every flask
    command, `check` among them, prints its FAIL line and exits 1 without a traceback, and a
    gunicorn worker fails to boot, which stops gunicorn (no restart loop of workers)."""

    def __init__(self, result: Result):
        # made before the app, and so its Babel, exists: in English (gettext without an app)
        super().__init__(result.line() + "\n" + _("(the other checks need the app: fix this "
                                                  "one, then run flask --app wsgi check again)"))

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


def unreadable_secret_key(path: Path, exc: OSError) -> Result:
    """The instance's secret_key file exists but this user cannot read it: typically made by a
    command run as root (0600, owner root) before the units ran as the service user."""
    import pwd
    path = Path(exc.filename) if getattr(exc, "filename", None) else path

    def user(uid: int) -> str:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)
    me = user(os.geteuid())
    try:
        st = path.stat()
        owner, mode = user(st.st_uid), f"{st.st_mode & 0o777:04o}"
    except OSError:
        owner = mode = None
    if owner is None:
        return Result("secret key", False, _(
            "cannot read %(path)s as user %(user)s: %(reason)s; made by another user (a "
            "command run as root?), it must belong to the user the service runs as: chown "
            "%(user)s: %(path)s (or set SECRET_KEY in /etc/servicedesk/env)",
            path=path, user=me, reason=exc.strerror or exc))
    return Result("secret key", False, _(
        "cannot read %(path)s (owner %(owner)s, mode %(mode)s) as user %(user)s: %(reason)s; "
        "made by another user (a command run as root?), it must belong to the user the "
        "service runs as: chown %(user)s: %(path)s (or set SECRET_KEY in "
        "/etc/servicedesk/env)", path=path, owner=owner, mode=mode, user=me,
        reason=exc.strerror or exc))


def database_url_problem(uri: str, given: str) -> Optional[Result]:
    """None when SQLAlchemy can make an engine of ``uri`` (it connects nowhere); else the FAIL
    line naming DATABASE_URL, its value shown with the password hidden."""
    try:
        sa.create_engine(sa.engine.make_url(uri), poolclass=sa.pool.NullPool).dispose()
    except Exception as exc:  # noqa: BLE001 - a parse error, a bad port, an unknown driver
        return Result("database", False, _(
            "DATABASE_URL %(value)s is not a database address SQLAlchemy can use (%(reason)s): "
            "for example %(example)s, or unset for the SQLite file in instance/",
            value=repr(safe_url(given)), reason=_reason(exc),
            example="postgresql://servicedesk:PASSWORD@127.0.0.1:5432/servicedesk"))
    return None


def safe_url(url: str) -> str:
    """A URL fit for a log or a terminal: the password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _("(unparseable URL)")
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def _reason(exc: BaseException) -> str:
    """The driver's own words, first line only (psycopg appends hints and SQL)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return (text[0] if text else type(orig).__name__)[:200]


def _sqlite_path(url: sa.engine.URL) -> Optional[Path]:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def check_database(app) -> Result:
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    shown = url.render_as_string(hide_password=True)
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        return Result("database", False, _("the SQLite file %(path)s does not exist (create "
                                           "it with: %(command)s)", path=path, command=INIT_DB))
    try:
        with _probe_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            version = conn.dialect.server_version_info
    except Exception as exc:  # noqa: BLE001 - any failure here is the answer
        return Result("database", False, _("cannot connect to %(url)s: %(reason)s", url=shown,
                                           reason=_reason(exc)))
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(url.get_backend_name(),
                                                                  url.get_backend_name())
    release = ".".join(str(p) for p in version or ())
    return Result("database", True, _("%(url)s answers (%(server)s)", url=shown,
                                      server=f"{name} {release}".rstrip()))


def check_migrations(app) -> Result:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        return Result("migrations", False, _("not checked: the database does not exist"))
    try:
        alembic_log = logging.getLogger("alembic")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)  # not its "Context impl SQLiteImpl." chatter
        with _probe_engine(url).connect() as conn:
            try:
                current = set(MigrationContext.configure(conn).get_current_heads())
            finally:
                alembic_log.setLevel(level)
            tables = set(sa.inspect(conn).get_table_names())
    except Exception as exc:  # noqa: BLE001
        return Result("migrations", False, _("not checked: the database is not reachable "
                                             "(%(reason)s)", reason=_reason(exc)))
    expected = ", ".join(sorted(heads))
    if current == heads:
        return Result("migrations", True, _("at the latest revision (%(revision)s)",
                                            revision=expected))
    if not current:
        if tables - {"alembic_version"}:
            return Result("migrations", False, _(
                "the tables were made without migrations (no revision recorded), so upgrades "
                "cannot be applied; the code expects revision %(revision)s", revision=expected))
        return Result("migrations", False, _(
            "the database is empty: no migration applied; the code expects revision "
            "%(revision)s (run: %(command)s)", revision=expected, command=INIT_DB))
    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    unknown = current - known
    if unknown:
        return Result("migrations", False, _(
            "the database is at revision %(revision)s, which this code does not know (is this "
            "code older than the database?)", revision=", ".join(sorted(unknown))))
    return Result("migrations", False, _(
        "the database is at revision %(revision)s but the code expects %(expected)s: run "
        "%(command)s to upgrade it", revision=", ".join(sorted(current)), expected=expected,
        command=INIT_DB))


def check_redis(app) -> Result:
    url = app.config.get("REDIS_URL")
    if not url:
        return Result("redis", True, _("not configured (REDIS_URL unset): SMS are sent by the "
                                       "web process itself, no worker needed"))
    from redis import Redis
    try:
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
            version = client.info("server").get("redis_version", "")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return Result("redis", False, _("cannot reach %(url)s: %(reason)s; SMS stay pending "
                                        "until it answers (REDIS_URL)", url=safe_url(url),
                                        reason=_reason(exc)))
    return Result("redis", True, _("%(url)s answers (%(server)s)", url=safe_url(url),
                                   server=f"Redis {version}".rstrip()))


# A worker sweeps every minute; one not seen for this long (or three of its rounds) is not running.
WORKER_STALE_AFTER = 5 * 60
WORKER_UNIT = "servicedesk-worker"


def worker_state(app, client) -> tuple[Optional[float], float, bool]:
    """(seconds since a worker last ran the outbox sweep on this Redis or None if never,
    its sweep period, whether that is too long ago)."""
    from .notifications.worker import read_heartbeat
    beat = read_heartbeat(app, client)
    if beat is None:
        return None, 60.0, True
    age = max(0.0, time.time() - beat["at"])
    return age, beat["every"], age > max(WORKER_STALE_AFTER, 3 * beat["every"])


def _ago(seconds: float) -> str:
    from .i18n import format_number
    if seconds < 120:
        return _("%(n)s s", n=format_number(round(seconds)))
    if seconds < 2 * 3600:
        return _("%(n)s minutes", n=format_number(round(seconds / 60)))
    if seconds < 2 * 86400:
        return _("%(n)s hours", n=format_number(round(seconds / 3600)))
    return _("%(n)s days", n=format_number(round(seconds / 86400)))


def check_worker(app) -> Optional[Result]:
    """With REDIS_URL set, SMS are sent only by a worker (flask --app wsgi worker): without
    one they pile up in the queue. A WARN, not a FAIL: the web unit runs this check before it
    starts, and at boot (or on a first install) the worker may simply not have started yet; a
    web that refused to start for that would be wrong."""
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    from redis import Redis

    from .notifications.queue import QUEUE_NAME
    try:
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            age, every, stale = worker_state(app, client)
            waiting = client.llen(f"rq:queue:{app.config.get('RQ_QUEUE', QUEUE_NAME)}")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return Result("worker", True, _("not checked: Redis does not answer (%(reason)s)",
                                        reason=_reason(exc)), warn=True)
    from .i18n import format_number
    jobs = ngettext("%(count)s SMS job waiting in the queue",
                    "%(count)s SMS jobs waiting in the queue", waiting,
                    count=format_number(waiting))
    if age is None:
        return Result("worker", True, _(
            "no worker has run the outbox sweep on this Redis yet; %(jobs)s: start %(unit)s "
            "(systemctl enable --now %(unit)s; flask --app wsgi worker)", jobs=jobs,
            unit=WORKER_UNIT), warn=True)
    if stale:
        return Result("worker", True, _(
            "no worker has run the outbox sweep for %(ago)s; %(jobs)s: start %(unit)s "
            "(systemctl status %(unit)s; flask --app wsgi worker)", ago=_ago(age), jobs=jobs,
            unit=WORKER_UNIT), warn=True)
    return Result("worker", True, _("last seen %(ago)s ago (outbox sweep every %(every)s); "
                                    "%(jobs)s", ago=_ago(age), every=_ago(every), jobs=jobs))


def check_sms(app) -> Result:
    cfg = app.config
    backend = (cfg.get("SMS_BACKEND") or "console").strip()
    if backend == "console":
        return Result("sms", True, _("console backend: messages are logged and marked sent, "
                                     "none reaches a phone (set SMS_BACKEND=twilio or http to "
                                     "send)"))
    if backend == "twilio":
        missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not cfg.get(n)]
        if not (cfg.get("TWILIO_FROM_NUMBER") or cfg.get("TWILIO_MESSAGING_SERVICE_SID")):
            missing.append(_("TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)"))
        if missing:
            return Result("sms", False, _("SMS_BACKEND is twilio but these are not set: "
                                          "%(names)s", names=", ".join(missing)))
        if not cfg.get("PUBLIC_BASE_URL"):
            return Result("sms", False, _("SMS_BACKEND is twilio but PUBLIC_BASE_URL is not "
                                          "set: the worker cannot build the delivery-report "
                                          "address or the links in messages"))
        problem = _twilio_problem(cfg)
        if problem:
            return Result("sms", False, problem)
        sender = cfg.get("TWILIO_FROM_NUMBER") or cfg.get("TWILIO_MESSAGING_SERVICE_SID")
        if cfg.get("TWILIO_API_BASE_URL"):
            said = _("twilio, sending as %(sender)s via %(url)s", sender=sender,
                     url=cfg["TWILIO_API_BASE_URL"])
        else:
            said = _("twilio, sending as %(sender)s", sender=sender)
        return _constructs(cfg, Result("sms", True, said))
    if backend == "http":
        if not cfg.get("SMS_HTTP_URL"):
            return Result("sms", False, _("SMS_BACKEND is http but the gateway's address is "
                                          "not set (SERVICEDESK_SMS_HTTP_URL)"))
        problem = _http_gateway_problem(cfg)
        if problem:
            return Result("sms", False, problem)
        return _constructs(cfg, Result("sms", True, _("http gateway %(url)s",
                                                      url=safe_url(cfg["SMS_HTTP_URL"]))))
    return Result("sms", False, _("SMS_BACKEND is %(value)s; it must be console, twilio or "
                                  "http", value=repr(backend)))


E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Twilio also sends from a name where the country allows it (up to 11 letters, digits, spaces
# and + - _ &, one letter at least), and from a short code.
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 +\-_&]{1,11}")
SHORT_CODE = re.compile(r"[0-9]{3,8}")


def _is_http_address(value) -> bool:
    parts = urlsplit(str(value))
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _twilio_problem(cfg) -> Optional[str]:
    """A mistyped Twilio setting, named, with what it should look like; None when they look
    right (whether Twilio accepts them shows at the first message)."""
    from .i18n import format_number
    base = cfg.get("TWILIO_API_BASE_URL")
    timeout = _("%(name)s %(value)s is not a number of seconds", name="TWILIO_TIMEOUT",
                 value=repr(cfg.get("TWILIO_TIMEOUT")))
    if base and not _is_http_address(base):
        return _("%(name)s %(value)s is not an http(s) address", name="TWILIO_API_BASE_URL",
                 value=repr(base))
    if base:
        # a Twilio-compatible server (an Iranian panel's, SignalWire): its ids and senders
        # are its own, whatever Twilio's look like
        return None if _is_number(cfg.get("TWILIO_TIMEOUT") or 10) else timeout
    sid = str(cfg.get("TWILIO_ACCOUNT_SID"))
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
        return _("TWILIO_ACCOUNT_SID %(value)s is not a Twilio account SID (AC and 32 "
                 "hexadecimal characters, on the Twilio console's first page; not the API "
                 "key's SK...)", value=repr(sid))
    service = cfg.get("TWILIO_MESSAGING_SERVICE_SID")
    if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", str(service)):
        return _("TWILIO_MESSAGING_SERVICE_SID %(value)s is not a messaging service SID (MG and "
                 "32 hexadecimal characters)", value=repr(service))
    sender = cfg.get("TWILIO_FROM_NUMBER")
    if sender and not any(p.fullmatch(str(sender))
                          for p in (E164, ALPHANUMERIC_SENDER, SHORT_CODE)):
        return _("TWILIO_FROM_NUMBER %(value)s is not a number in %(form)s form (+, the "
                 "country code and the number, no spaces: %(example)s), a short code, nor a "
                 "sender name (up to %(most)s letters, digits, spaces and + - _ &)",
                 value=repr(sender), form="E.164", example="+15005550006",
                 most=format_number(11))
    if not _is_number(cfg.get("TWILIO_TIMEOUT") or 10):
        return timeout
    return None


def _http_gateway_problem(cfg) -> Optional[str]:
    url = cfg.get("SMS_HTTP_URL")
    if not _is_http_address(url):
        return _("SERVICEDESK_SMS_HTTP_URL %(value)s is not an http(s) address: write it "
                 "whole, with https:// (for example https://sms.example.ir/send)",
                 value=repr(safe_url(str(url))))
    static = cfg.get("SMS_HTTP_STATIC_PARAMS")
    if isinstance(static, str):  # Flask keeps a value that is not JSON as a string
        try:
            static = json.loads(static)
        except ValueError as exc:  # the value holds the panel's API key: not printed
            return _("SERVICEDESK_SMS_HTTP_STATIC_PARAMS is not JSON (%(reason)s): write it in "
                     "single quotes with double quotes inside, %(example)s", reason=exc,
                     example="""SERVICEDESK_SMS_HTTP_STATIC_PARAMS='{"apikey": "...", """
                             """"from": "3000..."}'""")
    if static is not None and not isinstance(static, dict):
        return _("SERVICEDESK_SMS_HTTP_STATIC_PARAMS must be a JSON object of names and values "
                 "({...}), not a %(kind)s", kind=type(static).__name__)
    if not _is_number(cfg.get("SMS_HTTP_TIMEOUT") or 10):
        return _("%(name)s %(value)s is not a number of seconds",
                 name="SERVICEDESK_SMS_HTTP_TIMEOUT", value=repr(cfg.get("SMS_HTTP_TIMEOUT")))
    return None


def _constructs(cfg, ok: Result) -> Result:
    """Build the backend the worker would build: a bad setting (static parameters that are not
    JSON, a timeout that is not a number) shows here rather than at the first message."""
    from .notifications.backends import backend_from_config
    try:
        backend_from_config(cfg)
    except Exception as exc:  # noqa: BLE001
        return Result("sms", False, _("the %(backend)s backend cannot be set up: %(reason)s",
                                      backend=cfg.get("SMS_BACKEND"),
                                      reason=f"{type(exc).__name__}: {exc}"))
    return ok


def _secret_source(app) -> Optional[str]:
    key = app.config.get("SECRET_KEY")
    for name in ("SECRET_KEY", "SERVICEDESK_SECRET_KEY"):
        if os.environ.get(name) and os.environ[name] == key:
            return _("the environment (%(name)s)", name=name)
    instance = Path(app.instance_path)
    key_file = instance / "secret_key"
    if key_file.exists() and key_file.read_text().strip() == key:
        return _("the instance file %(path)s", path=key_file)
    config_file = instance / "config.py"
    if config_file.exists():
        values: dict = {}
        try:
            exec(compile(config_file.read_text(), str(config_file), "exec"), values)
        except Exception:  # noqa: BLE001 - create_app would have failed first
            return None
        if values.get("SECRET_KEY") == key:
            return _("the instance file %(path)s", path=config_file)
    return None


def check_secret(app) -> Result:
    key = app.config.get("SECRET_KEY")
    if not key:
        return Result("secret key", False, _("SECRET_KEY is not set"))
    key = str(key)
    if key.strip().lower() in KNOWN_DEV_SECRETS or "not-for-production" in key.lower():
        return Result("secret key", False, _("SECRET_KEY is a well-known development value: "
                                             "anyone could forge sessions; set a new random "
                                             "one"))
    try:
        source = _secret_source(app)
    except OSError as exc:  # the instance's secret_key file, owned by another user
        return unreadable_secret_key(Path(app.instance_path) / "secret_key", exc)
    if source is None:
        return Result("secret key", False, _("SECRET_KEY comes neither from the environment "
                                             "nor from the instance folder (is it written in "
                                             "code?)"))
    from .i18n import format_number
    if len(key) < MIN_SECRET_LENGTH:
        return Result("secret key", False, _(
            "SECRET_KEY from %(source)s is only %(length)s characters; use %(least)s or more "
            "(%(command)s)", source=source, length=format_number(len(key)),
            least=format_number(MIN_SECRET_LENGTH),
            command="python -c 'import secrets; print(secrets.token_hex(32))'"))
    return Result("secret key", True, _("from %(source)s, %(length)s characters", source=source,
                                        length=format_number(len(key))))


def check_translations(app) -> Result:
    """The catalogues are compiled at install time (.mo files are not in git); without them
    every page and SMS silently falls back to English."""
    folder = Path(__file__).resolve().parent / "translations"
    stale = []
    for po in sorted(folder.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            stale.append(po.parent.parent.name)
    if stale:
        return Result("translations", False, _(
            "not compiled, or older than their sources (%(languages)s): pages and SMS would be "
            "in English; run %(command)s", languages=", ".join(stale),
            command="flask --app wsgi i18n compile"))
    languages = sorted(po.parent.parent.name for po in folder.glob("*/LC_MESSAGES/*.po"))
    return Result("translations", True, _("compiled (%(languages)s)",
                                          languages=", ".join(languages) or _("none")))


def _deployed(app) -> bool:
    """Run as a production shop, not on the embedded default (SQLite, console SMS, no Redis)
    a developer or a first try starts with ``scripts/run``."""
    cfg = app.config
    return (not str(cfg.get("SQLALCHEMY_DATABASE_URI") or "").startswith("sqlite")
            or bool(cfg.get("REDIS_URL"))
            or (cfg.get("SMS_BACKEND") or "console").strip() != "console")


def check_shop(app) -> Result:
    """The shop's language, time zone and public address: a typo in any of them shows only
    later, as customers stored in a language nobody speaks, an error on the first date, or
    links in SMS that no phone can open."""
    cfg = app.config
    languages = cfg.get("LANGUAGES") or ("fa", "en")
    locale = cfg.get("SERVICEDESK_LOCALE")
    if locale not in languages:
        return Result("shop", False, _("SERVICEDESK_LOCALE is %(value)s; it must be one of "
                                       "%(languages)s", value=repr(locale),
                                       languages=", ".join(languages)))
    zone = cfg.get("SERVICEDESK_TIMEZONE") or "Asia/Tehran"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder of zones
        return Result("shop", False, _("SERVICEDESK_TIMEZONE %(value)s is not a time zone (for "
                                       "example Asia/Tehran)", value=repr(zone)))
    starts = cfg.get("QUEUE_DAY_STARTS", 4)
    if isinstance(starts, bool) or not isinstance(starts, int) or not 0 <= starts <= 23:
        return Result("shop", False, _("SERVICEDESK_QUEUE_DAY_STARTS is %(value)s; it must be "
                                       "an hour from 0 to 23 (the queue numbers restart then)",
                                       value=repr(starts)))
    base = cfg.get("PUBLIC_BASE_URL")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Result("shop", False, _("PUBLIC_BASE_URL %(value)s is not an http(s) "
                                           "address (for example https://repair.example.ir)",
                                           value=repr(base)))
        where = _("links in SMS and QR codes go to %(url)s", url=base)
    elif (cfg.get("SMS_BACKEND") or "console").strip() == "http":  # twilio: the sms check
        return Result("shop", False, _("PUBLIC_BASE_URL is not set, and SMS reach real phones: "
                                       "their links would lead to whatever address the staff "
                                       "opened the pages at; set it to the address customers "
                                       "reach the shop at (for example "
                                       "https://repair.example.ir)"))
    elif (_deployed(app) and not cfg.get("TRUSTED_HOSTS")
          and (cfg.get("SMS_BACKEND") or "").strip() != "twilio"):  # the sms check says it
        # A logged-in request with a made-up Host header would decide where the links in
        # reminder SMS lead (links.py keeps the address staff last opened).
        return Result("shop", False, _(
            "neither PUBLIC_BASE_URL nor SERVICEDESK_TRUSTED_HOSTS is set: a request with a "
            "forged Host header decides the address of the links in reminder SMS; set "
            "PUBLIC_BASE_URL to the address customers reach the shop at (for example "
            "https://repair.example.ir), or SERVICEDESK_TRUSTED_HOSTS to the shop's hosts (for "
            "example %(example)s)", example=HOSTS_EXAMPLE))
    else:
        where = _("PUBLIC_BASE_URL is not set: links go to the address each page was opened "
                  "at, and those in SMS written outside a request (reminders) to the one "
                  "staff last opened (set it where customers reach the shop from outside)")
    return Result("shop", True, _("%(locale)s, %(zone)s; %(where)s", locale=locale, zone=zone,
                                  where=where))


HOSTS_EXAMPLE = """'["repair.example.ir", "127.0.0.1", "localhost"]'"""
# Second-level labels under which anyone can register a name (co.ir, ac.ir, co.uk, com.tr...):
# ".co.ir" trusts every company's site in Iran, not the shop's own.
PUBLIC_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "id", "net", "org", "sch"})


def _covers_any_host(entry: str) -> bool:
    """Werkzeug's leading dot trusts the name and every name under it: "." every host written
    with a final dot (a client writes what it likes), ".ir" or ".co.ir" every site there."""
    if entry == ".":
        return True
    if not entry.startswith("."):
        return False
    labels = entry[1:].partition(":")[0].lower().split(".")
    return len(labels) == 1 or (len(labels) == 2 and labels[0] in PUBLIC_SECOND_LEVEL)


def _matches_nothing(entry) -> bool:
    """An entry that would not let in even its own name: Werkzeug has no wildcards ("*",
    "*.example.ir" are compared letter for letter) and wants a host, not an address
    ("https://repair.example.ir") nor a list in one string ("a.ir,b.ir")."""
    from werkzeug.sansio.utils import host_is_trusted
    if not isinstance(entry, str) or entry == ".":
        return not isinstance(entry, str)
    own = (entry[1:] if entry.startswith(".") else entry).lower()
    return not host_is_trusted(own, [entry])


def _is_address(entry: str) -> bool:
    """An IP address (with or without its port) or localhost: a name no customer types."""
    import ipaddress
    host = entry.lstrip(".")
    host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_trusted_hosts(app) -> Optional[Result]:
    """SERVICEDESK_TRUSTED_HOSTS as Werkzeug reads it (werkzeug.sansio.utils.host_is_trusted):
    names compared whole, a leading dot for a name and all under it, no wildcards, an empty
    list trusting every host. FAIL when no entry can match (every request answered 400); WARN
    for an empty list, an entry that covers other people's sites, entries that match nothing,
    PUBLIC_BASE_URL's host left out (customers' links refused), or, in a deployed shop,
    addresses only (the shop's name refused). No line when it is not set."""
    hosts = app.config.get("TRUSTED_HOSTS")
    if hosts is None:
        return None
    if isinstance(hosts, str):  # not JSON in the environment: Werkzeug takes it as one name
        hosts = [hosts] if hosts else []
    hosts = list(hosts) if isinstance(hosts, (list, tuple, set, frozenset)) else [hosts]
    shown = ", ".join(repr(h) for h in hosts)
    if not hosts:
        return Result("trusted hosts", True, _(
            "SERVICEDESK_TRUSTED_HOSTS is an empty list, which trusts every host: name the "
            "shop's hosts (for example %(example)s), or leave it unset", example=HOSTS_EXAMPLE),
            warn=True)
    dead = [h for h in hosts if _matches_nothing(h)]
    if len(dead) == len(hosts):
        return Result("trusted hosts", False, _(
            "SERVICEDESK_TRUSTED_HOSTS (%(hosts)s) matches no host, so every request is "
            "refused (400): it takes whole names in a JSON list, with no wildcards and no "
            "https://, a leading dot for a domain and its subdomains (for example %(example)s "
            "or '[\".example.ir\"]')", hosts=shown, example=HOSTS_EXAMPLE))
    problems = []
    wide = [h for h in hosts if h not in dead and _covers_any_host(h)]
    if wide:
        problems.append(_(
            "%(hosts)s trusts other people's sites too (a leading dot covers every name under "
            "it): a forged Host header would decide where the links in SMS lead; name the "
            "shop's own domain (repair.example.ir, or .example.ir for it and its subdomains)",
            hosts=", ".join(repr(h) for h in wide)))
    if dead:
        problems.append(_(
            "%(hosts)s matches no host (no wildcards, no https://, one name per entry of the "
            "JSON list; .example.ir for a domain and its subdomains)",
            hosts=", ".join(repr(h) for h in dead)))
    base = urlsplit(str(app.config.get("PUBLIC_BASE_URL") or ""))
    from werkzeug.sansio.utils import host_is_trusted
    if base.hostname and not host_is_trusted(base.hostname, hosts):
        problems.append(_(
            "PUBLIC_BASE_URL's host %(host)s is not among them: customers opening the links "
            "in their SMS would be refused (400); add it", host=base.hostname))
    elif _deployed(app) and all(_is_address(h) for h in hosts if h not in dead):
        problems.append(_(
            "only IP addresses or localhost: a shop reached by its name is refused (400), and "
            "one reached by an address has no certificate for https; add the name customers "
            "and staff reach the shop at (for example %(example)s)", example=HOSTS_EXAMPLE))
    if problems:
        return Result("trusted hosts", True,
                      pgettext("between problems", "; ").join(problems), warn=True)
    return Result("trusted hosts", True, shown)


# Whole numbers the deployment reads from the environment (gunicorn.conf.py), and the least
# each may be: a value int() refuses stops gunicorn at every start, in a restart loop.
DEPLOY_INTEGERS = {"WEB_CONCURRENCY": 1, "GUNICORN_THREADS": 1, "GUNICORN_TIMEOUT": 0,
                   "GUNICORN_GRACEFUL_TIMEOUT": 0, "GUNICORN_KEEPALIVE": 0,
                   "GUNICORN_MAX_REQUESTS": 0, "GUNICORN_MAX_REQUESTS_JITTER": 0,
                   "PROXY_HOPS": 0, "PORT": 1}
# Other variables the app or the deployment reads, checked for a comment left after a value.
DEPLOY_STRINGS = ("BIND", "FORWARDED_ALLOW_IPS")
SETTING_PREFIXES = ("SERVICEDESK_", "TWILIO_", "SMS_", "GUNICORN_")
# "value  # comment" (systemd's EnvironmentFile keeps it), not "Shop #1"
TRAILING_COMMENT = re.compile(r"\s#(\s|$)")
COMMENT_HINT = _l("systemd keeps comments written after a value: put them on their own line")


def _shown(name: str, value: str) -> str:
    """The value as the administrator typed it, unless it is a secret."""
    if re.search(r"SECRET_KEY|TOKEN|PASSWORD|STATIC_PARAMS", name):
        return _("%(name)s (value not shown)", name=name)
    if "://" in value:
        value = safe_url(value)
    return f"{name}={value!r}"


def check_environment(app) -> Result:
    """What the units read from /etc/servicedesk/env, as the shell or systemd left it: the
    numbers gunicorn.conf.py turns into int() (a comment after one stops every start), and
    any setting that kept a comment written after its value."""
    from . import ENV_SETTINGS
    problems, numbers, commented = [], [], False
    for name, least in DEPLOY_INTEGERS.items():
        raw = os.environ.get(name)
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            problems.append(_("%(setting)s: not a whole number", setting=f"{name}={raw!r}"))
            commented = commented or "#" in raw
            continue
        if value < least:
            problems.append(_("%(setting)s: must be %(least)s or more",
                              setting=f"{name}={raw!r}", least=least))
        else:
            numbers.append(f"{name}={value}")
    for name in sorted(os.environ):
        if name in DEPLOY_INTEGERS or not (name in ENV_SETTINGS or name in DEPLOY_STRINGS
                                            or name.startswith(SETTING_PREFIXES)):
            continue
        if TRAILING_COMMENT.search(os.environ[name]):
            problems.append(_("%(setting)s: ends in a comment",
                              setting=_shown(name, os.environ[name])))
            commented = True
    if problems:
        return Result("environment", False, pgettext("between problems", "; ").join(
            problems + [str(COMMENT_HINT)] * commented))
    return Result("environment", True, _("no comment left after a value; gunicorn's numbers: "
                                         "%(numbers)s", numbers=", ".join(numbers) if numbers
                                         else _("the defaults")))


WEBHOOK_FAILING = 3  # an active endpoint whose last deliveries all failed, this many or more


def check_webhooks(app) -> Optional[Result]:
    """An active webhook endpoint whose latest deliveries all failed (its receiver down, a
    rotated secret not copied, a wrong address): a WARN naming it. No line while every
    endpoint works (or none is registered), nor when the database cannot be read (the
    database and migrations checks say why; a missing SQLite file is not created here)."""
    from .models.webhooks import WebhookDelivery, WebhookEndpoint
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        return None
    endpoints, deliveries = WebhookEndpoint.__table__, WebhookDelivery.__table__
    failing = []
    try:
        with _probe_engine(url).connect() as conn:
            for endpoint in conn.execute(
                    sa.select(endpoints.c.id, endpoints.c.name, endpoints.c.url)
                    .where(endpoints.c.active.is_(True)).order_by(endpoints.c.id)):
                last = conn.scalars(
                    sa.select(deliveries.c.status)
                    .where(deliveries.c.endpoint_id == endpoint.id,
                           deliveries.c.status.in_(("sent", "failed")))
                    .order_by(deliveries.c.id.desc()).limit(WEBHOOK_FAILING)).all()
                if len(last) == WEBHOOK_FAILING and set(last) == {"failed"}:
                    failing.append(f"{endpoint.name or endpoint.id} ({safe_url(endpoint.url)})")
    except Exception:  # noqa: BLE001
        return None
    if not failing:
        return None
    from .i18n import format_number
    return Result("webhooks", True, _("the last %(count)s deliveries failed for: %(endpoints)s: "
                                      "see Administration, Webhooks",
                                      count=format_number(WEBHOOK_FAILING),
                                      endpoints=pgettext("between problems", "; ").join(failing)),
                  warn=True)


def _probe_engine(url: sa.engine.URL) -> sa.engine.Engine:
    """A one-connection engine with a short connect timeout: a check must answer, not hang on
    a firewall that drops packets."""
    args = {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)


CHECKS: tuple[Callable, ...] = (check_database, check_migrations, check_redis, check_worker,
                                check_sms, check_secret, check_translations, check_shop,
                                check_trusted_hosts, check_environment, check_webhooks)


def run_checks(app) -> list[Result]:
    """Each check's result; a check that does not apply here (the worker without Redis)
    returns None and prints no line."""
    return [result for result in (check(app) for check in CHECKS) if result is not None]


@click.command("check", cls=ShopCommand, help=_l(
    "Check the configuration: database, migrations, Redis and the worker, SMS backend, secret, "
    "translations, the shop's language, time zone and public address, the trusted hosts, the "
    "environment (gunicorn's numbers, comments left after values). WARN lines do not fail it."))
@with_appcontext
def check():
    """Each finding and the summary in the shop's language (SERVICEDESK_LOCALE); the OK, WARN
    and FAIL labels and the exit status (1 on any FAIL) as a script reads them."""
    from .i18n import format_number
    with shop_language():
        results = run_checks(current_app._get_current_object())
        for result in results:
            click.echo(result.line())
        failed = [r for r in results if not r.ok]
        warned = [r for r in results if r.ok and r.warn]
        if failed:
            click.echo(_("%(failed)s of %(total)s checks failed",
                         failed=format_number(len(failed)), total=format_number(len(results))))
        elif warned:
            click.echo(_("all %(total)s checks passed, %(warned)s with a warning (WARN does not "
                         "stop the web from starting)", total=format_number(len(results)),
                         warned=format_number(len(warned))))
        else:
            click.echo(_("all %(total)s checks passed", total=format_number(len(results))))
    if failed:
        click.get_current_context().exit(1)
