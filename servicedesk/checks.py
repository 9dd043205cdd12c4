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


@dataclass
class Result:
    name: str
    ok: bool
    message: str
    warn: bool = False  # ok, but worth a look: printed WARN, does not fail the command

    def line(self) -> str:
        label = "FAIL" if not self.ok else "WARN" if self.warn else "OK  "
        return f"{label}  {self.name}: {self.message}"


class ConfigError(click.ClickException):
    """A setting so wrong that the app cannot be built (create_app raises it): every flask
    command, `check` among them, prints its FAIL line and exits 1 without a traceback, and a
    gunicorn worker fails to boot, which stops gunicorn (no restart loop of workers)."""

    def __init__(self, result: Result):
        super().__init__(result.line() + "\n(the other checks need the app: fix this one, "
                                         "then run flask --app wsgi check again)")

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
        about = f" (owner {user(st.st_uid)}, mode {st.st_mode & 0o777:04o})"
    except OSError:
        about = ""
    return Result("secret key", False,
                  f"cannot read {path}{about} as user {me}: {exc.strerror or exc}; made by "
                  f"another user (a command run as root?), it must belong to the user the "
                  f"service runs as: chown {me}: {path} (or set SECRET_KEY in "
                  "/etc/servicedesk/env)")


def database_url_problem(uri: str, given: str) -> Optional[Result]:
    """None when SQLAlchemy can make an engine of ``uri`` (it connects nowhere); else the FAIL
    line naming DATABASE_URL, its value shown with the password hidden."""
    try:
        sa.create_engine(sa.engine.make_url(uri), poolclass=sa.pool.NullPool).dispose()
    except Exception as exc:  # noqa: BLE001 - a parse error, a bad port, an unknown driver
        return Result("database", False,
                      f"DATABASE_URL {safe_url(given)!r} is not a database address SQLAlchemy "
                      f"can use ({_reason(exc)}): for example postgresql://servicedesk:PASSWORD@"
                      "127.0.0.1:5432/servicedesk, or unset for the SQLite file in instance/")
    return None


def safe_url(url: str) -> str:
    """A URL fit for a log or a terminal: the password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
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
        return Result("database", False, f"the SQLite file {path} does not exist "
                                         f"(create it with: {INIT_DB})")
    try:
        with _probe_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            version = conn.dialect.server_version_info
    except Exception as exc:  # noqa: BLE001 - any failure here is the answer
        return Result("database", False, f"cannot connect to {shown}: {_reason(exc)}")
    name = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(url.get_backend_name(),
                                                                  url.get_backend_name())
    release = ".".join(str(p) for p in version or ())
    return Result("database", True, f"{shown} answers ({name} {release})".rstrip())


def check_migrations(app) -> Result:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    url = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        return Result("migrations", False, "not checked: the database does not exist")
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
        return Result("migrations", False, f"not checked: the database is not reachable "
                                           f"({_reason(exc)})")
    expected = ", ".join(sorted(heads))
    if current == heads:
        return Result("migrations", True, f"at the latest revision ({expected})")
    if not current:
        if tables - {"alembic_version"}:
            return Result("migrations", False, "the tables were made without migrations (no "
                                               "revision recorded), so upgrades cannot be "
                                               f"applied; the code expects revision {expected}")
        return Result("migrations", False, f"the database is empty: no migration applied; the "
                                           f"code expects revision {expected} (run: {INIT_DB})")
    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    unknown = current - known
    if unknown:
        return Result("migrations", False, f"the database is at revision "
                                           f"{', '.join(sorted(unknown))}, which this code does "
                                           "not know (is this code older than the database?)")
    return Result("migrations", False, f"the database is at revision "
                                       f"{', '.join(sorted(current))} but the code expects "
                                       f"{expected}: run {INIT_DB} to upgrade it")


def check_redis(app) -> Result:
    url = app.config.get("REDIS_URL")
    if not url:
        return Result("redis", True, "not configured (REDIS_URL unset): SMS are sent by the "
                                     "web process itself, no worker needed")
    from redis import Redis
    try:
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
            version = client.info("server").get("redis_version", "")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001
        return Result("redis", False, f"cannot reach {safe_url(url)}: {_reason(exc)}; SMS "
                                      "stay pending until it answers (REDIS_URL)")
    return Result("redis", True, f"{safe_url(url)} answers (Redis {version})".rstrip())


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
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


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
        return Result("worker", True, f"not checked: Redis does not answer ({_reason(exc)})",
                      warn=True)
    jobs = f"{waiting} SMS job{'s' if waiting != 1 else ''} waiting in the queue"
    if age is None:
        return Result("worker", True, f"no worker has run the outbox sweep on this Redis yet; "
                                      f"{jobs}: start {WORKER_UNIT} (systemctl enable --now "
                                      f"{WORKER_UNIT}; flask --app wsgi worker)", warn=True)
    if stale:
        return Result("worker", True, f"no worker has run the outbox sweep for {_ago(age)}; "
                                      f"{jobs}: start {WORKER_UNIT} (systemctl status "
                                      f"{WORKER_UNIT}; flask --app wsgi worker)", warn=True)
    return Result("worker", True, f"last seen {_ago(age)} ago (outbox sweep every "
                                  f"{every:.0f} s); {jobs}")


def check_sms(app) -> Result:
    cfg = app.config
    backend = (cfg.get("SMS_BACKEND") or "console").strip()
    if backend == "console":
        return Result("sms", True, "console backend: messages are logged and marked sent, none "
                                   "reaches a phone (set SMS_BACKEND=twilio or http to send)")
    if backend == "twilio":
        missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not cfg.get(n)]
        if not (cfg.get("TWILIO_FROM_NUMBER") or cfg.get("TWILIO_MESSAGING_SERVICE_SID")):
            missing.append("TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)")
        if missing:
            return Result("sms", False, "SMS_BACKEND is twilio but these are not set: "
                                        + ", ".join(missing))
        if not cfg.get("PUBLIC_BASE_URL"):
            return Result("sms", False, "SMS_BACKEND is twilio but PUBLIC_BASE_URL is not set: "
                                        "the worker cannot build the delivery-report address "
                                        "or the links in messages")
        problem = _twilio_problem(cfg)
        if problem:
            return Result("sms", False, problem)
        sender = cfg.get("TWILIO_FROM_NUMBER") or cfg.get("TWILIO_MESSAGING_SERVICE_SID")
        where = f" via {cfg['TWILIO_API_BASE_URL']}" if cfg.get("TWILIO_API_BASE_URL") else ""
        return _constructs(cfg, Result("sms", True, f"twilio, sending as {sender}{where}"))
    if backend == "http":
        if not cfg.get("SMS_HTTP_URL"):
            return Result("sms", False, "SMS_BACKEND is http but the gateway's address is not "
                                        "set (SERVICEDESK_SMS_HTTP_URL)")
        problem = _http_gateway_problem(cfg)
        if problem:
            return Result("sms", False, problem)
        return _constructs(cfg, Result("sms", True, f"http gateway "
                                                    f"{safe_url(cfg['SMS_HTTP_URL'])}"))
    return Result("sms", False, f"SMS_BACKEND is {backend!r}; it must be console, twilio or "
                                "http")


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
    base = cfg.get("TWILIO_API_BASE_URL")
    if base and not _is_http_address(base):
        return f"TWILIO_API_BASE_URL {base!r} is not an http(s) address"
    if base:
        # a Twilio-compatible server (an Iranian panel's, SignalWire): its ids and senders
        # are its own, whatever Twilio's look like
        return None if _is_number(cfg.get("TWILIO_TIMEOUT") or 10) else \
            f"TWILIO_TIMEOUT {cfg.get('TWILIO_TIMEOUT')!r} is not a number of seconds"
    sid = str(cfg.get("TWILIO_ACCOUNT_SID"))
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
        return (f"TWILIO_ACCOUNT_SID {sid!r} is not a Twilio account SID (AC and 32 hexadecimal "
                "characters, on the Twilio console's first page; not the API key's SK...)")
    service = cfg.get("TWILIO_MESSAGING_SERVICE_SID")
    if service and not re.fullmatch(r"MG[0-9a-fA-F]{32}", str(service)):
        return (f"TWILIO_MESSAGING_SERVICE_SID {service!r} is not a messaging service SID (MG "
                "and 32 hexadecimal characters)")
    sender = cfg.get("TWILIO_FROM_NUMBER")
    if sender and not any(p.fullmatch(str(sender))
                          for p in (E164, ALPHANUMERIC_SENDER, SHORT_CODE)):
        return (f"TWILIO_FROM_NUMBER {sender!r} is not a number in E.164 form (+, the country "
                "code and the number, no spaces: +15005550006), a short code, nor a sender "
                "name (up to 11 letters, digits, spaces and + - _ &)")
    if not _is_number(cfg.get("TWILIO_TIMEOUT") or 10):
        return f"TWILIO_TIMEOUT {cfg.get('TWILIO_TIMEOUT')!r} is not a number of seconds"
    return None


def _http_gateway_problem(cfg) -> Optional[str]:
    url = cfg.get("SMS_HTTP_URL")
    if not _is_http_address(url):
        return (f"SERVICEDESK_SMS_HTTP_URL {safe_url(str(url))!r} is not an http(s) address: "
                "write it whole, with https:// (for example https://sms.example.ir/send)")
    static = cfg.get("SMS_HTTP_STATIC_PARAMS")
    if isinstance(static, str):  # Flask keeps a value that is not JSON as a string
        try:
            static = json.loads(static)
        except ValueError as exc:  # the value holds the panel's API key: not printed
            return (f"SERVICEDESK_SMS_HTTP_STATIC_PARAMS is not JSON ({exc}): write it in "
                    "single quotes with double quotes inside, "
                    """SERVICEDESK_SMS_HTTP_STATIC_PARAMS='{"apikey": "...", "from": "3000..."}'""")
    if static is not None and not isinstance(static, dict):
        return ("SERVICEDESK_SMS_HTTP_STATIC_PARAMS must be a JSON object of names and values "
                f"({{...}}), not a {type(static).__name__}")
    if not _is_number(cfg.get("SMS_HTTP_TIMEOUT") or 10):
        return (f"SERVICEDESK_SMS_HTTP_TIMEOUT {cfg.get('SMS_HTTP_TIMEOUT')!r} is not a number "
                "of seconds")
    return None


def _constructs(cfg, ok: Result) -> Result:
    """Build the backend the worker would build: a bad setting (static parameters that are not
    JSON, a timeout that is not a number) shows here rather than at the first message."""
    from .notifications.backends import backend_from_config
    try:
        backend_from_config(cfg)
    except Exception as exc:  # noqa: BLE001
        return Result("sms", False, f"the {cfg.get('SMS_BACKEND')} backend cannot be set up: "
                                    f"{type(exc).__name__}: {exc}")
    return ok


def _secret_source(app) -> Optional[str]:
    key = app.config.get("SECRET_KEY")
    for name in ("SECRET_KEY", "SERVICEDESK_SECRET_KEY"):
        if os.environ.get(name) and os.environ[name] == key:
            return f"the environment ({name})"
    instance = Path(app.instance_path)
    key_file = instance / "secret_key"
    if key_file.exists() and key_file.read_text().strip() == key:
        return f"the instance file {key_file}"
    config_file = instance / "config.py"
    if config_file.exists():
        values: dict = {}
        try:
            exec(compile(config_file.read_text(), str(config_file), "exec"), values)
        except Exception:  # noqa: BLE001 - create_app would have failed first
            return None
        if values.get("SECRET_KEY") == key:
            return f"the instance file {config_file}"
    return None


def check_secret(app) -> Result:
    key = app.config.get("SECRET_KEY")
    if not key:
        return Result("secret key", False, "SECRET_KEY is not set")
    key = str(key)
    if key.strip().lower() in KNOWN_DEV_SECRETS or "not-for-production" in key.lower():
        return Result("secret key", False, "SECRET_KEY is a well-known development value: "
                                           "anyone could forge sessions; set a new random one")
    try:
        source = _secret_source(app)
    except OSError as exc:  # the instance's secret_key file, owned by another user
        return unreadable_secret_key(Path(app.instance_path) / "secret_key", exc)
    if source is None:
        return Result("secret key", False, "SECRET_KEY comes neither from the environment nor "
                                           "from the instance folder (is it written in code?)")
    if len(key) < MIN_SECRET_LENGTH:
        return Result("secret key", False, f"SECRET_KEY from {source} is only {len(key)} "
                                           f"characters; use {MIN_SECRET_LENGTH} or more "
                                           "(python -c 'import secrets; "
                                           "print(secrets.token_hex(32))')")
    return Result("secret key", True, f"from {source}, {len(key)} characters")


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
        return Result("translations", False, f"not compiled, or older than their sources "
                                             f"({', '.join(stale)}): pages and SMS would be in "
                                             "English; run flask --app wsgi i18n compile")
    languages = sorted(po.parent.parent.name for po in folder.glob("*/LC_MESSAGES/*.po"))
    return Result("translations", True, f"compiled ({', '.join(languages) or 'none'})")


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
        return Result("shop", False, f"SERVICEDESK_LOCALE is {locale!r}; it must be one of "
                                     f"{', '.join(languages)}")
    zone = cfg.get("SERVICEDESK_TIMEZONE") or "Asia/Tehran"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder of zones
        return Result("shop", False, f"SERVICEDESK_TIMEZONE {zone!r} is not a time zone "
                                     "(for example Asia/Tehran)")
    starts = cfg.get("QUEUE_DAY_STARTS", 4)
    if isinstance(starts, bool) or not isinstance(starts, int) or not 0 <= starts <= 23:
        return Result("shop", False, f"SERVICEDESK_QUEUE_DAY_STARTS is {starts!r}; it must be "
                                     "an hour from 0 to 23 (the queue numbers restart then)")
    base = cfg.get("PUBLIC_BASE_URL")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Result("shop", False, f"PUBLIC_BASE_URL {base!r} is not an http(s) address "
                                         "(for example https://repair.example.ir)")
        where = f"links in SMS and QR codes go to {base}"
    elif (cfg.get("SMS_BACKEND") or "console").strip() == "http":  # twilio: the sms check
        return Result("shop", False, "PUBLIC_BASE_URL is not set, and SMS reach real phones: "
                                     "their links would lead to whatever address the staff "
                                     "opened the pages at; set it to the address customers "
                                     "reach the shop at (for example https://repair.example.ir)")
    elif (_deployed(app) and not cfg.get("TRUSTED_HOSTS")
          and (cfg.get("SMS_BACKEND") or "").strip() != "twilio"):  # the sms check says it
        # A logged-in request with a made-up Host header would decide where the links in
        # reminder SMS lead (links.py keeps the address staff last opened).
        return Result("shop", False, "neither PUBLIC_BASE_URL nor SERVICEDESK_TRUSTED_HOSTS is "
                                     "set: a request with a forged Host header decides the "
                                     "address of the links in reminder SMS; set PUBLIC_BASE_URL "
                                     "to the address customers reach the shop at (for example "
                                     "https://repair.example.ir), or SERVICEDESK_TRUSTED_HOSTS "
                                     "to the shop's hosts (for example "
                                     "'[\"repair.example.ir\", \"127.0.0.1\", \"localhost\"]')")
    else:
        where = ("PUBLIC_BASE_URL is not set: links go to the address each page was opened "
                 "at, and those in SMS written outside a request (reminders) to the one "
                 "staff last opened (set it where customers reach the shop from outside)")
    return Result("shop", True, f"{locale}, {zone}; {where}")


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
COMMENT_HINT = "systemd keeps comments written after a value: put them on their own line"


def _shown(name: str, value: str) -> str:
    """The value as the administrator typed it, unless it is a secret."""
    if re.search(r"SECRET_KEY|TOKEN|PASSWORD|STATIC_PARAMS", name):
        return f"{name} (value not shown)"
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
            problems.append(f"{name}={raw!r}: not a whole number")
            commented = commented or "#" in raw
            continue
        if value < least:
            problems.append(f"{name}={raw!r}: must be {least} or more")
        else:
            numbers.append(f"{name}={value}")
    for name in sorted(os.environ):
        if name in DEPLOY_INTEGERS or not (name in ENV_SETTINGS or name in DEPLOY_STRINGS
                                            or name.startswith(SETTING_PREFIXES)):
            continue
        if TRAILING_COMMENT.search(os.environ[name]):
            problems.append(f"{_shown(name, os.environ[name])}: ends in a comment")
            commented = True
    if problems:
        return Result("environment", False, "; ".join(problems + [COMMENT_HINT] * commented))
    return Result("environment", True, "no comment left after a value; gunicorn's numbers: "
                                       + (", ".join(numbers) if numbers else "the defaults"))


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
    return Result("webhooks", True, f"the last {WEBHOOK_FAILING} deliveries failed for: "
                                    f"{'; '.join(failing)}: see Administration, Webhooks",
                  warn=True)


def _probe_engine(url: sa.engine.URL) -> sa.engine.Engine:
    """A one-connection engine with a short connect timeout: a check must answer, not hang on
    a firewall that drops packets."""
    args = {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)


CHECKS: tuple[Callable, ...] = (check_database, check_migrations, check_redis, check_worker,
                                check_sms, check_secret, check_translations, check_shop,
                                check_environment, check_webhooks)


def run_checks(app) -> list[Result]:
    """Each check's result; a check that does not apply here (the worker without Redis)
    returns None and prints no line."""
    return [result for result in (check(app) for check in CHECKS) if result is not None]


@click.command("check")
@with_appcontext
def check():
    """Check the configuration: database, migrations, Redis and the worker, SMS backend,
    secret, translations, the shop's language, time zone and public address, the environment
    (gunicorn's numbers, comments left after values). WARN lines do not fail it."""
    results = run_checks(current_app._get_current_object())
    for result in results:
        click.echo(result.line())
    failed = [r for r in results if not r.ok]
    warned = [r for r in results if r.ok and r.warn]
    if failed:
        click.echo(f"{len(failed)} of {len(results)} checks failed")
        click.get_current_context().exit(1)
    if warned:
        click.echo(f"all {len(results)} checks passed, {len(warned)} with a warning (WARN does "
                   "not stop the web from starting)")
        return
    click.echo(f"all {len(results)} checks passed")
