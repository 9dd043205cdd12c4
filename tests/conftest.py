"""Fixtures: an app per test on SQLite (default) or PostgreSQL (TEST_DATABASE_URL), users and
their API clients, tickets in any state, and a guard that refuses connections off this machine.

Run on PostgreSQL: TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres pytest
(a throwaway database is created for the session and dropped after it).
"""
import logging
import os
import socket
import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from servicedesk import create_app
from servicedesk.extensions import db
from servicedesk.lifecycle import EVENTS, STAFF_ROLES, Actor

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


# --- nothing leaves this machine ------------------------------------------------------------

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ConnectionRefusedError(f"tests may not connect to {host}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    socket.socket.connect = _guarded_connect
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "TWILIO_EDGE",
                "TWILIO_REGION", "DATABASE_URL", "REDIS_URL", "SMS_BACKEND"):
        os.environ.pop(var, None)
    yield
    socket.socket.connect = _real_connect


@pytest.fixture(autouse=True, scope="session")
def _catalogues():
    from servicedesk.cli import compile_catalogues
    compile_catalogues()


# --- databases --------------------------------------------------------------------------------

def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def create_pg_database() -> str:
    name = f"sd_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name


def drop_pg_database(name: str) -> None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def on_postgres() -> bool:
    return bool(os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if on_postgres():
        name = create_pg_database()
        yield _pg_url(name)
        drop_pg_database(name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def pg_database_url(database_url):
    """A PostgreSQL database even when the suite runs on SQLite (for the concurrency proofs)."""
    if database_url.startswith("postgres"):
        yield database_url
        return
    name = create_pg_database()
    yield _pg_url(name)
    drop_pg_database(name)


_schema_ready: set = set()


def _migration_head() -> str:
    from alembic.script import ScriptDirectory
    return ScriptDirectory(str(ROOT / "migrations")).get_current_head()


def make_app(url: str, tmp_path: Path, **overrides):
    from servicedesk.cli import ensure_default_branch
    config = {"DATABASE_URL": url}
    testing = {}
    exec((ROOT / "config" / "testing.py").read_text(), testing)
    config.update({k: v for k, v in testing.items() if k.isupper()})
    config.update(overrides)
    app = create_app(config)
    app.instance_path = str(tmp_path)
    with app.app_context():
        if url not in _schema_ready:
            db.drop_all()
            db.create_all()
            # at the code's migration, as init-db leaves a shop (/readyz reads it); written
            # by hand: alembic's stamp would reconfigure (and silence) the app's loggers
            db.session.execute(sa.text("CREATE TABLE IF NOT EXISTS alembic_version "
                                       "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
            db.session.execute(sa.text("DELETE FROM alembic_version"))
            db.session.execute(sa.text("INSERT INTO alembic_version VALUES (:head)"),
                               {"head": _migration_head()})
            db.session.commit()
            _schema_ready.add(url)
        else:
            tables = [t.name for t in reversed(db.metadata.sorted_tables)]
            if url.startswith("postgres"):
                db.session.execute(sa.text(
                    "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for t in tables:
                    db.session.execute(sa.text(f'DELETE FROM "{t}"'))
            db.session.commit()
        ensure_default_branch()
    return app


@pytest.fixture
def app_config():
    """Settings for this test's app; a test module overrides this fixture to change them."""
    return {}


@pytest.fixture
def app(database_url, tmp_path, app_config):
    app = make_app(database_url, tmp_path, **app_config)
    ctx = app.app_context()
    ctx.push()
    yield app
    db.session.remove()
    ctx.pop()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def pg_app(pg_database_url, tmp_path):
    app = make_app(pg_database_url, tmp_path)
    ctx = app.app_context()
    ctx.push()
    yield app
    db.session.remove()
    ctx.pop()
    with app.app_context():
        db.engine.dispose()


# --- people -----------------------------------------------------------------------------------

PASSWORD = "correct horse battery"


def add_user(username: str, role: str, **kw):
    from servicedesk.services.people import create_user
    from servicedesk.services.tickets import default_branch
    return create_user(username, role, PASSWORD, branch=default_branch(), **kw)


@pytest.fixture
def users(app):
    """One user per staff role, keyed by role."""
    return {role: add_user(role + "1", role) for role in STAFF_ROLES}


class Api:
    """A test client that sends a user's bearer token and JSON."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url, **kw):
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url, json=None, **kw):
        return self.client.post(url, json=json, headers=self.headers, **kw)


@pytest.fixture
def api(app, users):
    """api[role] is a client authenticated as that role's user."""
    from servicedesk.services.people import issue_token
    client = app.test_client()
    return {role: Api(client, issue_token(user)) for role, user in users.items()}


# --- tickets ----------------------------------------------------------------------------------

INTAKE = {"customer": {"name": "Narges Rezaei", "phone": "09121234567"},
          "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A54",
                     "serial": "490154203237518"},
          "problem": "Cracked screen"}

LINES = [{"kind": "part", "description": "Screen", "qty": 1, "unit_price": 12_000_000},
         {"kind": "labour", "description": "Fitting", "qty": 1, "unit_price": 2_000_000}]

# Dates in the future whatever day the suite runs: a promised date in the past makes a ticket
# late on the worklists.
PROMISED_DATE = (date.today() + timedelta(days=60)).isoformat()
PARTS_EXPECTED = (date.today() + timedelta(days=30)).isoformat()


def jalali_in(days: int) -> tuple[str, str]:
    """A date ``days`` from today as the desks type it (Jalali, 1405/09/25) and as it is
    stored (ISO): the forms refuse a date that has passed."""
    import jdatetime
    day = date.today() + timedelta(days=days)
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d"), day.isoformat()

# Valid data for each event, as the API takes it.
SAMPLE_DATA = {
    "send_to_repair": {"technician": "technician1"},
    "quote": {"lines": LINES, "promised_date": PROMISED_DATE},
    "approve": {"channel": "phone"},
    "decline": {"reason": "too expensive", "channel": "phone"},
    "return_unrepaired": {"reason": "board damaged"},
    "wait_parts": {"part": "LCD", "expected_date": PARTS_EXPECTED},
    "resume": {},
    "finish": {"lines": LINES, "work_done": "Replaced the screen"},
    "deliver": {"amount_paid": 14_000_000, "collected_by": "owner"},
    "close": {},
    "cancel": {"reason": "customer changed their mind"},
}

PATH_TO = {
    "intake": [],
    "diagnosis": ["send_to_repair"],
    "estimate": ["send_to_repair", "quote"],
    "repair": ["send_to_repair", "quote", "approve"],
    "waiting_parts": ["send_to_repair", "quote", "approve", "wait_parts"],
    "ready": ["send_to_repair", "quote", "approve", "finish"],
    "delivered": ["send_to_repair", "quote", "approve", "finish", "deliver"],
    "closed": ["send_to_repair", "quote", "approve", "finish", "deliver", "close"],
    "cancelled": ["cancel"],
}


def actor_for(event: str, users: dict) -> Actor:
    """Someone allowed to fire ``event``: a staff user of the first allowed role, else the
    customer (by link) or the system."""
    roles = EVENTS[event].roles
    for role in STAFF_ROLES:
        if role in roles:
            return Actor.staff(users[role])
    return Actor.customer("127.0.0.1") if "customer" in roles else Actor.system()


@pytest.fixture
def make_ticket(app, users):
    """make_ticket(state) -> a committed ticket walked to ``state`` through the lifecycle."""
    from servicedesk.services import tickets as svc

    def make(state: str = "intake", intake=None):
        ticket = svc.admit(intake or INTAKE, Actor.staff(users["reception"]))
        for event in PATH_TO[state]:
            svc.fire_event(ticket.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))
        db.session.expire_all()
        return db.session.get(type(ticket), ticket.id)
    return make


# --- live servers -----------------------------------------------------------------------------

class LiveServer:
    """The app served over real HTTP on 127.0.0.1 (a thread), for browsers and callbacks."""

    def __init__(self, app):
        import threading
        from werkzeug.serving import make_server
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="session")
def fake_twilio():
    from .fake_twilio import FakeTwilio
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio(fake_twilio):
    fake_twilio.reset()
    return fake_twilio


def twilio_config(fake) -> dict:
    return {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid,
            "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": fake.base_url, "TWILIO_TIMEOUT": 5}


# --- alembic in a test ------------------------------------------------------------------------

@contextmanager
def kept_logging():
    """alembic's env.py runs logging.config.fileConfig, which disables every logger already
    created and resets levels: put them back, so later tests still see their logs."""
    manager = logging.root.manager
    saved = {name: (lg.disabled, lg.level, list(lg.handlers), lg.propagate)
             for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    root = (logging.root.level, list(logging.root.handlers))
    try:
        yield
    finally:
        for name, lg in list(manager.loggerDict.items()):
            if not isinstance(lg, logging.Logger):
                continue
            if name in saved:
                lg.disabled, lg.level, lg.handlers[:], lg.propagate = saved[name]
            else:
                lg.disabled = False
        logging.root.level, logging.root.handlers[:] = root[0], root[1]
