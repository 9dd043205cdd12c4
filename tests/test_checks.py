"""`flask --app wsgi check`, the /healthz and /readyz probes, and gunicorn's access log: on a
database migrated by `init-db` (SQLite, or PostgreSQL under TEST_DATABASE_URL), the real Redis,
and closed ports for the parts that are down."""
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from servicedesk import create_app

from .conftest import _pg_url, create_pg_database, drop_pg_database, on_postgres

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"


def closed_port() -> int:
    """A port nobody listens on: bound by us a moment ago, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until_up(server: subprocess.Popen, base: str, what: str, seconds: float = 30) -> None:
    """Until ``base``/healthz answers 200; the test fails (with what the server printed when
    it kept its output) if ``server`` exits or ``seconds`` pass first."""
    deadline = time.time() + seconds
    while True:
        try:
            assert OPENER.open(base + "/healthz", timeout=2).status == 200
            return
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                if server.poll() is None:
                    os.killpg(server.pid, 15)
                stream = server.stdout or server.stderr
                pytest.fail(f"{what} did not start:\n" +
                            (stream.read().decode() if stream else ""))
            time.sleep(0.2)


def fresh_database(tmp_path: Path, name: str) -> tuple[str, object]:
    """An empty database on the suite's engine; returns its URL and how to drop it."""
    if on_postgres():
        db_name = create_pg_database()
        return _pg_url(db_name), lambda: drop_pg_database(db_name)
    return f"sqlite:///{tmp_path / (name + '.db')}", lambda: None


def shell_env(url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERVICEDESK_", "TWILIO_", "SMS_", "REDIS_", "SECRET_"))}
    env.update({"DATABASE_URL": url, "NO_PROXY": "127.0.0.1,localhost", **extra})
    return env


@pytest.fixture(scope="module")
def migrated_url(tmp_path_factory):
    """A database brought to the latest revision the way a deploy does it: `init-db`."""
    url, drop = fresh_database(tmp_path_factory.mktemp("migrated"), "migrated")
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "init-db"], cwd=ROOT,
                          env=shell_env(url, SECRET_KEY=secrets.token_hex(32)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    yield url
    drop()


def build_app(url: str, instance: Path, **overrides):
    """The app as production builds it (no schema work), over the test settings; its secret
    key lives in the instance folder, where create_app would have generated it."""
    config = {}
    exec((ROOT / "config" / "testing.py").read_text(), config)
    config = {k: v for k, v in config.items() if k.isupper()}
    key = secrets.token_hex(32)
    # in English (the shop's language below is Persian where a test says so)
    config.update({"DATABASE_URL": url, "SECRET_KEY": key, "SERVICEDESK_LOCALE": "en",
                   **overrides})
    app = create_app(config)
    app.instance_path = str(instance)
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "secret_key").write_text(key)
    return app


def head_revision() -> str:
    from alembic.script import ScriptDirectory
    return ", ".join(sorted(ScriptDirectory(str(ROOT / "migrations")).get_heads()))


def base_revision() -> str:
    from alembic.script import ScriptDirectory
    return list(ScriptDirectory(str(ROOT / "migrations")).walk_revisions())[-1].revision


def run_check(app):
    result = app.test_cli_runner().invoke(args=["check"])
    lines = {line.split(":", 1)[0].split(None, 1)[1]: line
             for line in result.output.splitlines() if line.startswith(("OK", "WARN", "FAIL"))}
    return result.exit_code, lines, result.output


def test_check_passes_on_a_migrated_database_with_console_sms(migrated_url, tmp_path):
    code, lines, output = run_check(build_app(migrated_url, tmp_path))
    assert code == 0, output
    assert set(lines) == {"database", "migrations", "redis", "sms", "secret key", "translations",
                          "shop", "environment"}
    assert all(line.startswith("OK") for line in lines.values()), output
    assert "latest revision" in lines["migrations"]
    assert "console" in lines["sms"]
    assert "instance file" in lines["secret key"]
    assert "en, Asia/Tehran; links in SMS and QR codes go to http://shop.test" in lines["shop"]
    assert output.rstrip().endswith("all 8 checks passed")


@pytest.mark.parametrize("setting, value, words", [
    ("SERVICEDESK_LOCALE", "de", "SERVICEDESK_LOCALE is 'de'; it must be one of fa, en"),
    ("SERVICEDESK_TIMEZONE", "Mars/Base", "'Mars/Base' is not a time zone"),
    ("SERVICEDESK_TIMEZONE", "America", "'America' is not a time zone"),  # a folder of zones
    ("PUBLIC_BASE_URL", "repair.example.ir", "is not an http(s) address"),
    ("QUEUE_DAY_STARTS", 24, "SERVICEDESK_QUEUE_DAY_STARTS is 24; it must be an hour from 0 to 23"),
    ("QUEUE_DAY_STARTS", "4", "SERVICEDESK_QUEUE_DAY_STARTS is '4'"),
])
def test_check_names_a_shop_setting_that_does_not_work(migrated_url, tmp_path, setting, value,
                                                      words):
    code, lines, output = run_check(build_app(migrated_url, tmp_path, **{setting: value}))
    assert code == 1 and lines["shop"].startswith("FAIL") and words in lines["shop"], output


def test_check_says_where_links_go_without_a_public_address(migrated_url, tmp_path):
    # the embedded default (SQLite); a production database wants its hosts named (below)
    trusted = {} if migrated_url.startswith("sqlite") else {"TRUSTED_HOSTS": ["shop.test"]}
    code, lines, output = run_check(build_app(migrated_url, tmp_path, PUBLIC_BASE_URL=None,
                                              **trusted))
    assert code == 0, output
    assert "PUBLIC_BASE_URL is not set" in lines["shop"]
    # SMS to real phones through a gateway: their links must lead where customers reach
    panel = build_app(migrated_url, tmp_path, PUBLIC_BASE_URL=None, SMS_BACKEND="http",
                      SMS_HTTP_URL="http://127.0.0.1:9/send")
    code, lines, output = run_check(panel)
    assert code == 1 and lines["shop"].startswith("FAIL"), output
    assert "SMS reach real phones" in lines["shop"]


def test_check_fails_in_production_when_the_host_header_decides_the_links(migrated_url,
                                                                           tmp_path):
    """Neither PUBLIC_BASE_URL nor TRUSTED_HOSTS, on a production setup (Redis here; or
    PostgreSQL, or SMS reaching phones): a forged Host header would decide the links in
    reminder SMS. The check fails saying what to set; naming the hosts is enough."""
    production = build_app(migrated_url, tmp_path, PUBLIC_BASE_URL=None,
                           REDIS_URL="redis://127.0.0.1:9/0")
    code, lines, output = run_check(production)
    assert code == 1 and lines["shop"].startswith("FAIL"), output
    assert "forged Host header" in lines["shop"]
    assert "set PUBLIC_BASE_URL" in lines["shop"] and "SERVICEDESK_TRUSTED_HOSTS" in lines["shop"]
    named = build_app(migrated_url, tmp_path, PUBLIC_BASE_URL=None,
                      REDIS_URL="redis://127.0.0.1:9/0", TRUSTED_HOSTS=["repair.example.ir"])
    code, lines, output = run_check(named)
    assert lines["shop"].startswith("OK"), output


@pytest.mark.redis
def test_check_reaches_a_configured_redis(migrated_url, tmp_path):
    code, lines, output = run_check(build_app(migrated_url, tmp_path, REDIS_URL=REDIS_URL))
    assert code == 0, output
    assert lines["redis"].startswith("OK") and "answers (Redis" in lines["redis"]


@pytest.mark.parametrize("how", ["empty", "create_all", "behind"])
def test_check_fails_on_an_unmigrated_database(tmp_path, how):
    url, drop = fresh_database(tmp_path, "unmigrated")
    try:
        app = build_app(url, tmp_path / "instance")
        if how == "behind":  # migrated once, then the code moved on
            done = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade",
                 base_revision()], cwd=ROOT, capture_output=True, text=True, timeout=120,
                env=shell_env(url, SECRET_KEY=secrets.token_hex(32)))
            assert done.returncode == 0, done.stdout + done.stderr
        elif how == "create_all":  # tables exist but no revision was ever recorded
            from servicedesk.extensions import db
            with app.app_context():
                db.create_all()
                db.engine.dispose()
        elif url.startswith("sqlite"):
            Path(url.removeprefix("sqlite:///")).touch()  # the file exists, nothing in it
        code, lines, output = run_check(app)
        assert code == 1, output
        assert lines["database"].startswith("OK")
        assert lines["migrations"].startswith("FAIL")
        if how == "empty":
            assert "no migration applied" in lines["migrations"]
            assert "flask --app wsgi init-db" in lines["migrations"]
        elif how == "create_all":
            assert "made without migrations" in lines["migrations"]
        else:
            assert f"at revision {base_revision()} but" in lines["migrations"]
            assert "run flask --app wsgi init-db to upgrade it" in lines["migrations"]
        assert f"expects {'revision ' if how != 'behind' else ''}{head_revision()}" in \
            lines["migrations"]
        assert output.rstrip().endswith("1 of 8 checks failed")
    finally:
        drop()


def test_check_names_a_missing_sqlite_file(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'nowhere.db'}", tmp_path / "instance")
    code, lines, output = run_check(app)
    assert code == 1
    assert "does not exist" in lines["database"] and "init-db" in lines["database"]
    assert not (tmp_path / "nowhere.db").exists()  # the check created nothing


def test_check_fails_for_twilio_without_credentials(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path, SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=None,
                    TWILIO_AUTH_TOKEN=None, TWILIO_FROM_NUMBER=None)
    code, lines, output = run_check(app)
    assert code == 1, output
    assert lines["sms"] == ("FAIL  sms: SMS_BACKEND is twilio but these are not set: "
                            "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER "
                            "(or TWILIO_MESSAGING_SERVICE_SID)")
    others = [line for name, line in lines.items() if name != "sms"]
    assert all(line.startswith("OK") for line in others), output


def test_check_accepts_twilio_with_a_messaging_service(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path, SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32,
                    TWILIO_AUTH_TOKEN="t" * 32, TWILIO_MESSAGING_SERVICE_SID="MG" + "0" * 32)
    code, lines, output = run_check(app)
    assert code == 0, output
    assert "sending as MG" in lines["sms"]


def test_check_fails_for_an_http_gateway_without_its_address(migrated_url, tmp_path):
    code, lines, _ = run_check(build_app(migrated_url, tmp_path, SMS_BACKEND="http"))
    assert code == 1
    assert "SERVICEDESK_SMS_HTTP_URL" in lines["sms"]


@pytest.mark.redis
def test_check_fails_when_redis_is_unreachable(migrated_url, tmp_path):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    code, lines, output = run_check(build_app(migrated_url, tmp_path, REDIS_URL=url))
    assert code == 1, output
    assert lines["redis"].startswith(f"FAIL  redis: cannot reach {url}")
    assert "SMS stay pending" in lines["redis"]


def test_check_refuses_a_development_secret_key(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path)
    app.config["SECRET_KEY"] = "test-secret-key-not-for-production"
    code, lines, _ = run_check(app)
    assert code == 1
    assert "well-known development value" in lines["secret key"]


def test_check_refuses_a_secret_key_written_in_code(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path)
    app.config["SECRET_KEY"] = secrets.token_hex(32)  # neither environment nor instance folder
    code, lines, _ = run_check(app)
    assert code == 1
    assert "neither from the environment nor from the instance folder" in lines["secret key"]


def test_the_check_command_from_the_shell(migrated_url, tmp_path):
    cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "check"]
    good = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=shell_env(migrated_url, SECRET_KEY=secrets.token_hex(32),
                                        PUBLIC_BASE_URL="https://repair.example.ir",
                                        SERVICEDESK_LOCALE="en"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK    secret key: from the environment (SECRET_KEY)" in good.stdout
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=shell_env(migrated_url, SECRET_KEY="dev", SMS_BACKEND="twilio",
                                       SERVICEDESK_LOCALE="en"))
    assert bad.returncode == 1
    assert "FAIL  sms: SMS_BACKEND is twilio but these are not set" in bad.stdout
    assert "FAIL  secret key: SECRET_KEY is a well-known development value" in bad.stdout
    assert "2 of 8 checks failed" in bad.stdout


# --- probes -----------------------------------------------------------------------------------

def test_healthz_answers_without_login(migrated_url, tmp_path):
    response = build_app(migrated_url, tmp_path).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_answers_even_when_the_database_is_down(tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/none"
    assert build_app(url, tmp_path).test_client().get("/healthz").status_code == 200


@pytest.mark.redis
def test_readyz_is_ready_with_database_and_redis(migrated_url, tmp_path):
    client = build_app(migrated_url, tmp_path, REDIS_URL=REDIS_URL).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert {k: v for k, v in body["checks"].items() if k != "worker"} == {
        "database": "ok", "migrations": "ok", "redis": "ok"}
    assert "worker" in body["checks"]  # reported, whatever it says (tests at the end)


def test_readyz_without_redis_configured(migrated_url, tmp_path):
    response = build_app(migrated_url, tmp_path).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "ok",
                                             "redis": "not configured"}


@pytest.mark.redis
def test_readyz_names_redis_when_it_is_down(migrated_url, tmp_path):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    response = build_app(migrated_url, tmp_path, REDIS_URL=url).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["redis"]
    assert body["checks"] == {"database": "ok", "migrations": "ok", "redis": "unreachable",
                              "worker": "unknown"}
    assert str(url) not in response.get_data(as_text=True)  # no address in a public answer


def test_readyz_names_the_database_when_it_is_down(tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/none"
    response = build_app(url, tmp_path).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["database"]


# --- gunicorn ---------------------------------------------------------------------------------

def test_gunicorn_access_log_carries_no_tokens_or_query_strings(migrated_url, tmp_path):
    port = closed_port()
    log = tmp_path / "access.log"
    env = shell_env(migrated_url, SECRET_KEY=secrets.token_hex(32), BIND=f"127.0.0.1:{port}",
                    WEB_CONCURRENCY="1", GUNICORN_ACCESSLOG=str(log), PROXY_HOPS="1")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                               "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    token = "K7QW2M9XPLR4TZ8V"
    try:
        opener = OPENER
        base = f"http://127.0.0.1:{port}"
        wait_until_up(server, base, "gunicorn")
        for path, headers in [
                (f"/t/{token}?lang=en&phone=PHONE09121234567", {"Referer": f"{base}/t/{token}",
                                                           "X-Forwarded-For": "203.0.113.9"}),
                (f"/s/{token}", {}),
                ("/api/v1/tickets?state=intake", {"Authorization": "Bearer sd_secret_value"})]:
            request = urllib.request.Request(base + path, headers=headers)
            try:
                opener.open(request, timeout=5)
            except urllib.error.HTTPError:
                pass  # 404/401: the line is logged all the same
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    lines = text.splitlines()
    assert len(lines) >= 4, text
    assert any('"GET /t/:token" 404' in line for line in lines), text
    assert any('"GET /s/:token"' in line for line in lines), text
    assert any('"GET /api/v1/tickets" 401' in line for line in lines), text
    for secret in (token, "lang=", "PHONE", "sd_secret_value", "Bearer", "203.0.113.9",
                   "127.0.0.1", "Referer", "?"):
        assert secret not in text, f"{secret!r} in the access log:\n{text}"


def test_the_development_servers_log_carries_no_tokens_addresses_or_phones(migrated_url):
    """``scripts/run`` serves the embedded default with ``flask run``: its access line must
    not keep what gunicorn's does not (a customer's link, a phone looked up at the desk, the
    client's address)."""
    port = closed_port()
    env = shell_env(migrated_url, SECRET_KEY=secrets.token_hex(32))
    server = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "run",
                               "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    token = "K7QW2M9XPLR4TZ8V"
    try:
        opener = OPENER
        base = f"http://127.0.0.1:{port}"
        wait_until_up(server, base, "flask run")
        for path in (f"/t/{token}?lang=en", f"/s/{token}",
                     "/desk/customer?customer_phone=09121234567"):
            try:
                opener.open(base + path, timeout=5)
            except urllib.error.HTTPError:
                pass  # 404, or the login page: the line is logged all the same
    finally:
        server.terminate()
        out = server.communicate(timeout=30)[0].decode()
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # werkzeug colours the request line
    assert '"GET /t/:token HTTP/1.1" 404' in out, out
    assert '"GET /desk/customer HTTP/1.1"' in out, out
    for secret in (token, "lang=", "09121234567", "127.0.0.1 - -"):
        assert secret not in out, f"{secret!r} in the log:\n{out}"


def test_a_database_error_names_no_customer_data(app):
    """A failing statement's message (what the log and a console traceback show) carries the
    SQL but not the values bound to it."""
    from sqlalchemy import text as sql_text
    from sqlalchemy.exc import DBAPIError

    from servicedesk.extensions import db
    with app.app_context():
        with pytest.raises(DBAPIError) as caught:
            db.session.execute(sql_text("SELECT * FROM no_such_table WHERE phone = :phone"),
                               {"phone": "+989121118899"})
        db.session.rollback()
    assert "no_such_table" in str(caught.value)
    assert "+989121118899" not in str(caught.value)


def test_with_redis_down_the_login_and_customer_pages_still_answer(database_url, tmp_path,
                                                                    make_ticket):
    """Rate limits kept in Redis (production): Redis down must not turn the login page and the
    customers' tracking pages into 500s."""
    ticket = make_ticket("diagnosis")
    shop = build_app(database_url, tmp_path / "shop", RATELIMIT_ENABLED=True,
                     RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}/0")
    client = shop.test_client()
    assert client.get("/login").status_code == 200
    assert client.post("/login", data={"username": "x", "password": "y"}).status_code in (
        400, 401)
    assert client.get(f"/t/{ticket.public_token}").status_code == 200


@pytest.mark.parametrize("args", [[], ["--no-demo"]])
def test_scripts_run_starts_a_demo_shop_or_with_no_demo_an_empty_one(tmp_path, args):
    """The README's first command, on a new database: the demo shop with its printed staff
    passwords, or (``--no-demo``, a real shop) no customers or tickets and one admin account
    whose printed password logs in."""
    port = closed_port()
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    env = shell_env(url, SECRET_KEY=secrets.token_hex(32), PORT=str(port))
    server = subprocess.Popen(["bash", "scripts/run", *args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:  # it installs what it needs first
        wait_until_up(server, f"http://127.0.0.1:{port}", "scripts/run", seconds=240)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        out = server.communicate(timeout=30)[0].decode()
    app = build_app(url, tmp_path / "instance")
    with app.app_context():
        from sqlalchemy import func, select

        from servicedesk.extensions import db
        from servicedesk.models import Ticket, User
        from servicedesk.services.people import authenticate
        tickets = db.session.scalar(select(func.count()).select_from(Ticket))
        roles = set(db.session.scalars(select(User.role)))
        if args:
            assert tickets == 0 and roles == {"admin"}, out
            password = re.search(r"گذرواژه: (\S+)", out).group(1)  # the shop's language
            assert authenticate("admin", password)[0] is not None
            assert "demo" not in out.split("empty database", 1)[1].splitlines()[0]
        else:
            assert tickets == 9 and "reception" in roles, out
            assert "scripts/run --no-demo" in out


@pytest.mark.parametrize("message, logged", [
    ('127.0.0.1 - - [06/Dec/2026 20:20:00] "GET /t/K7QW2M9XPLR4?lang=en HTTP/1.1" 200 -',
     '- - - [06/Dec/2026 20:20:00] "GET /t/:token HTTP/1.1" 200 -'),
    ("Exception on /s/K7QW2M9XPLR4/ [POST]", "Exception on /s/:token/ [POST]"),
    ("Exception on /desk/customer?customer_phone=09121234567 [GET]",
     "Exception on /desk/customer [GET]"),
    ("SMS to +98912***4567: follow http://shop/t/***",
     "SMS to +98912***4567: follow http://shop/t/***"),
    ("backed up to /srv/s/backup.db", "backed up to /srv/s/backup.db"),
    ("ratio 3/4? fine", "ratio 3/4? fine"),
])
def test_log_messages_lose_tokens_and_queries_and_nothing_else(message, logged):
    import logging

    from servicedesk.logscrub import ScrubFilter
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, message, None, None)
    assert ScrubFilter().filter(record) is True
    assert record.getMessage() == logged


# --- the worker's heartbeat -------------------------------------------------------------------

# A Redis database of these tests' own: the worker's registrations and heartbeat land here.
WORKER_REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def worker_redis():
    from redis import Redis
    client = Redis.from_url(WORKER_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def run_worker_burst(url: str) -> None:
    """One round of `flask --app wsgi worker --burst`: the sweep (and its heartbeat), the
    queue emptied, then it exits."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=shell_env(url, SECRET_KEY=secrets.token_hex(32),
                                        REDIS_URL=WORKER_REDIS_URL))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.redis
def test_check_warns_while_no_worker_runs_and_says_when_one_was_last_seen(migrated_url, tmp_path,
                                                                         worker_redis):
    import json

    app = build_app(migrated_url, tmp_path, REDIS_URL=WORKER_REDIS_URL)
    worker_redis.rpush("rq:queue:servicedesk-sms", "job-1", "job-2")  # SMS piling up
    code, lines, output = run_check(app)
    assert code == 0, output  # a warning: the web unit still starts (the worker may be next)
    assert lines["worker"].startswith("WARN  worker: no worker has run the outbox sweep"), output
    assert "2 SMS jobs waiting in the queue: start servicedesk-worker" in lines["worker"]
    assert output.rstrip().endswith("all 9 checks passed, 1 with a warning (WARN does not stop "
                                    "the web from starting)")
    worker_redis.delete("rq:queue:servicedesk-sms")

    run_worker_burst(migrated_url)  # a worker runs the sweep: its heartbeat is written
    code, lines, output = run_check(app)
    assert code == 0, output
    assert re.fullmatch(r"OK    worker: last seen \d+ s ago \(outbox sweep every 60 s\); "
                        r"0 SMS jobs waiting in the queue", lines["worker"]), output
    assert output.rstrip().endswith("all 9 checks passed")

    key = "servicedesk-sms:last-sweep"
    assert 0 < worker_redis.ttl(key) <= 7 * 24 * 3600  # a heartbeat does not stay forever
    worker_redis.set(key, json.dumps({"at": time.time() - 20 * 60, "every": 60}))
    code, lines, output = run_check(app)
    assert code == 0, output
    assert lines["worker"].startswith("WARN  worker: no worker has run the outbox sweep for "
                                      "20 minutes; 0 SMS jobs waiting"), output


def test_check_has_no_worker_line_without_redis(migrated_url, tmp_path):
    code, lines, output = run_check(build_app(migrated_url, tmp_path))
    assert code == 0 and "worker" not in lines, output


@pytest.mark.redis
def test_check_does_not_judge_the_worker_while_redis_is_down(migrated_url, tmp_path):
    url = f"redis://127.0.0.1:{closed_port()}/0"
    code, lines, output = run_check(build_app(migrated_url, tmp_path, REDIS_URL=url))
    assert code == 1 and lines["redis"].startswith("FAIL"), output
    assert lines["worker"].startswith("WARN  worker: not checked: Redis does not answer"), output


# --- /readyz: the migration, the worker -------------------------------------------------------

def shell(url: str, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env=shell_env(url, SECRET_KEY=secrets.token_hex(32)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_readyz_is_unavailable_while_the_database_is_behind_the_code(tmp_path):
    """After `git pull` and a reload without `init-db`, the pages fail on missing columns:
    the balancer must hear it. Once migrated it is ready again, and from then on this process
    does not read the revision at every probe."""
    import sqlalchemy as sa

    from servicedesk.extensions import db
    url, drop = fresh_database(tmp_path, "behind")
    try:
        shell(url, "db", "upgrade", base_revision())
        app = build_app(url, tmp_path / "instance")
        client = app.test_client()
        for _ in range(2):  # a failing state is asked again, not cached
            response = client.get("/readyz")
            assert response.status_code == 503
            body = response.get_json()
            assert body["failing"] == ["migrations"]
            assert body["checks"] == {"database": "ok", "migrations": "behind",
                                      "redis": "not configured"}
        shell(url, "init-db")
        response = client.get("/readyz")
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["checks"]["migrations"] == "ok"

        statements = []
        with app.app_context():
            listen = (db.engine, "before_cursor_execute",
                      lambda conn, cursor, statement, *a: statements.append(statement))
            sa.event.listen(*listen)
            try:
                assert client.get("/readyz").status_code == 200
            finally:
                sa.event.remove(*listen)
            db.engine.dispose()
        assert statements and not any("alembic_version" in s for s in statements), statements
    finally:
        drop()


def test_readyz_is_unavailable_on_an_empty_database(tmp_path):
    url, drop = fresh_database(tmp_path, "empty")
    try:
        if url.startswith("sqlite"):
            Path(url.removeprefix("sqlite:///")).touch()
        response = build_app(url, tmp_path / "instance").test_client().get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["failing"] == ["migrations"]
    finally:
        drop()


def test_readyz_stays_ready_while_the_database_is_ahead_of_the_code(tmp_path):
    """The upgrade's order is migrate, then reload: meanwhile the old processes see a revision
    they do not know, on a schema that only grew. They must stay in the balancer."""
    import sqlalchemy as sa
    url, drop = fresh_database(tmp_path, "ahead")
    try:
        shell(url, "init-db")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_next'"))
        engine.dispose()
        response = build_app(url, tmp_path / "instance").test_client().get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["checks"]["migrations"] == "ahead"
    finally:
        drop()


@pytest.mark.redis
def test_readyz_reports_the_worker_but_does_not_fail_for_it(migrated_url, tmp_path,
                                                            worker_redis):
    import json
    client = build_app(migrated_url, tmp_path, REDIS_URL=WORKER_REDIS_URL).test_client()
    key = "servicedesk-sms:last-sweep"
    for beat, state in [(None, "never seen"), (time.time() - 3600, "not seen lately"),
                        (time.time(), "ok")]:
        if beat is not None:
            worker_redis.set(key, json.dumps({"at": beat, "every": 60}))
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["checks"]["worker"] == state


# --- settings mistyped in /etc/servicedesk/env --------------------------------------------------

TWILIO_OK = {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
             "TWILIO_AUTH_TOKEN": "t" * 32, "TWILIO_FROM_NUMBER": "+15005550006"}
GATEWAY_OK = {"SMS_BACKEND": "http", "SMS_HTTP_URL": "https://sms.example.ir/send"}


@pytest.mark.parametrize("settings, words", [
    ({**GATEWAY_OK, "SMS_HTTP_URL": "sms.example.ir/send"},
     "SERVICEDESK_SMS_HTTP_URL 'sms.example.ir/send' is not an http(s) address: write it whole, "
     "with https://"),
    ({**GATEWAY_OK, "SMS_HTTP_STATIC_PARAMS": "{'apikey': 'k-SECRET-123'}"},
     "SERVICEDESK_SMS_HTTP_STATIC_PARAMS is not JSON (Expecting property name"),
    ({**GATEWAY_OK, "SMS_HTTP_STATIC_PARAMS": [["apikey", "k-SECRET-123"]]},
     "SERVICEDESK_SMS_HTTP_STATIC_PARAMS must be a JSON object"),
    ({**GATEWAY_OK, "SMS_HTTP_TIMEOUT": "10s"},
     "SERVICEDESK_SMS_HTTP_TIMEOUT '10s' is not a number"),
    ({**TWILIO_OK, "TWILIO_ACCOUNT_SID": "XY123"},
     "TWILIO_ACCOUNT_SID 'XY123' is not a Twilio account SID (AC and 32 hexadecimal"),
    ({**TWILIO_OK, "TWILIO_ACCOUNT_SID": "SK" + "0" * 32}, "is not a Twilio account SID"),
    ({**TWILIO_OK, "TWILIO_FROM_NUMBER": "+15005550006  # main line"},
     "TWILIO_FROM_NUMBER '+15005550006  # main line' is not a number in E.164 form"),
    ({**TWILIO_OK, "TWILIO_FROM_NUMBER": "09121234567"}, "is not a number in E.164 form"),
    ({**TWILIO_OK, "TWILIO_FROM_NUMBER": None, "TWILIO_MESSAGING_SERVICE_SID": "MG123"},
     "TWILIO_MESSAGING_SERVICE_SID 'MG123' is not a messaging service SID"),
])
def test_check_names_a_mistyped_sms_setting(migrated_url, tmp_path, settings, words):
    code, lines, output = run_check(build_app(migrated_url, tmp_path, **settings))
    assert code == 1, output
    assert lines["sms"].startswith("FAIL  sms: ") and words in lines["sms"], output
    assert "k-SECRET-123" not in output  # the panel's API key stays off the screen


@pytest.mark.parametrize("settings", [
    {**TWILIO_OK, "TWILIO_FROM_NUMBER": "RepairShop"},  # a sender name, where allowed
    {**TWILIO_OK, "TWILIO_FROM_NUMBER": "Fix-It Shop"},  # Twilio takes - + _ & in names
    {**TWILIO_OK, "TWILIO_FROM_NUMBER": "A&B Repairs"},
    {**TWILIO_OK, "TWILIO_FROM_NUMBER": "894546"},  # a short code
    # a Twilio-compatible server (an Iranian panel's line, SignalWire's ids): its own formats
    {**TWILIO_OK, "TWILIO_API_BASE_URL": "https://sms.example.ir/twilio",
     "TWILIO_ACCOUNT_SID": "3b6f1c2e-5d4a-4f7e-9b1a-2c3d4e5f6a7b",
     "TWILIO_FROM_NUMBER": "30001234"},
    {**GATEWAY_OK, "SMS_HTTP_STATIC_PARAMS": {"apikey": "k"}, "SMS_HTTP_URL": "http://10.0.0.5/s"},
    {**GATEWAY_OK, "SMS_HTTP_STATIC_PARAMS": '{"apikey": "k"}'},
])
def test_check_accepts_well_formed_sms_settings(migrated_url, tmp_path, settings):
    code, lines, output = run_check(build_app(migrated_url, tmp_path, **settings))
    assert code == 0 and lines["sms"].startswith("OK"), output


@pytest.mark.parametrize("env, line", [
    ({"PROXY_HOPS": "1   # nginx"},
     "FAIL  environment: PROXY_HOPS='1   # nginx': not a whole number; systemd keeps comments "
     "written after a value: put them on their own line"),
    ({"WEB_CONCURRENCY": "four", "GUNICORN_THREADS": "0", "GUNICORN_TIMEOUT": "30s"},
     "FAIL  environment: WEB_CONCURRENCY='four': not a whole number; GUNICORN_THREADS='0': "
     "must be 1 or more; GUNICORN_TIMEOUT='30s': not a whole number"),
    ({"SERVICEDESK_SETTINGS_CACHE_SECONDS": "2 # per process", "TWILIO_AUTH_TOKEN": "s3cr3t #"},
     "FAIL  environment: SERVICEDESK_SETTINGS_CACHE_SECONDS='2 # per process': ends in a "
     "comment; TWILIO_AUTH_TOKEN (value not shown): ends in a comment; systemd keeps comments "
     "written after a value: put them on their own line"),
    ({"WEB_CONCURRENCY": "4", "GUNICORN_THREADS": " 4", "PROXY_HOPS": "1",
      "SERVICEDESK_SHOP_NAME": "Repair #1"},  # a '#' inside a value is no comment
     "OK    environment: no comment left after a value; gunicorn's numbers: WEB_CONCURRENCY=4, "
     "GUNICORN_THREADS=4, PROXY_HOPS=1"),
])
def test_check_reads_the_environment_the_units_read(migrated_url, tmp_path, monkeypatch, env,
                                                    line):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, lines, output = run_check(build_app(migrated_url, tmp_path))
    assert lines["environment"] == line, output
    assert code == (0 if line.startswith("OK") else 1), output
    assert "s3cr3t" not in output


def test_a_comment_after_proxy_hops_stops_gunicorn_and_check_says_so(migrated_url):
    """The restart loop an admin met: gunicorn.conf.py's int() refuses the value at every
    start, while `flask check` (the unit's ExecStartPre) used to pass."""
    env = shell_env(migrated_url, SECRET_KEY=secrets.token_hex(32), PROXY_HOPS="1   # nginx",
                    SERVICEDESK_LOCALE="en")
    gunicorn = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                               "--check-config", "wsgi:app"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert gunicorn.returncode != 0 and "invalid literal for int()" in gunicorn.stderr
    check = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "check"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "FAIL  environment: PROXY_HOPS='1   # nginx': not a whole number" in check.stdout


# --- settings that stop the app before any check runs -----------------------------------------

def unreadable(monkeypatch, path: Path) -> None:
    """``path`` reads as it does for the service user when root made it (0600, owner root):
    the tests run as root, whom the kernel lets read anything."""
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Path, "read_text", read_text)


def test_an_unreadable_secret_key_file_is_a_fail_line_not_a_traceback(migrated_url, tmp_path,
                                                                      monkeypatch):
    """No SECRET_KEY in the environment: create_app reads instance/secret_key, which a command
    run as root made. `flask check` (and every command) says which file and what to do."""
    from click.testing import CliRunner
    from flask import Flask
    from flask.cli import FlaskGroup
    instance = tmp_path / "instance"
    instance.mkdir()
    key_file = instance / "secret_key"
    key_file.write_text(secrets.token_hex(32))
    key_file.chmod(0o600)
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(instance))
    for name in ("SECRET_KEY", "SERVICEDESK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = {}
    exec((ROOT / "config" / "testing.py").read_text(), config)
    config = {k: v for k, v in config.items() if k.isupper() and k != "SECRET_KEY"}
    config["DATABASE_URL"] = migrated_url
    unreadable(monkeypatch, key_file)
    cli = FlaskGroup(create_app=lambda: create_app(config))
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 1, result.output
    assert f"FAIL  secret key: cannot read {key_file} (owner " in result.output, result.output
    assert "Permission denied" in result.output and "chown " in result.output
    assert f": {key_file} (or set SECRET_KEY in /etc/servicedesk/env)" in result.output
    assert isinstance(result.exception, SystemExit)  # click's exit, not the PermissionError


def test_check_names_an_unreadable_secret_key_file_beside_a_configured_key(migrated_url,
                                                                           tmp_path,
                                                                           monkeypatch):
    app = build_app(migrated_url, tmp_path)  # its key also in instance/secret_key
    unreadable(monkeypatch, tmp_path / "secret_key")
    code, lines, output = run_check(app)
    assert code == 1, output
    assert lines["secret key"].startswith(f"FAIL  secret key: cannot read "
                                          f"{tmp_path / 'secret_key'} (owner "), output
    assert "chown" in lines["secret key"]


@pytest.mark.parametrize("url, shown", [
    ("postgresql//x", "'postgresql//x'"),
    ("postgresql://servicedesk:hunter2@127.0.0.1:notaport/servicedesk",
     "'postgresql://servicedesk:***@127.0.0.1:notaport/servicedesk'"),
    ("sqlite://relative.db", "'sqlite://relative.db'"),
])
def test_a_malformed_database_url_is_a_fail_line_naming_it(url, shown):
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "check"], cwd=ROOT,
                          env=shell_env(url, SECRET_KEY=secrets.token_hex(32)),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL  database: DATABASE_URL {shown} is not a database address" in done.stderr, \
        done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stdout + done.stderr


# --- in the shop's language -------------------------------------------------------------------

def test_check_speaks_persian_to_a_persian_shop_and_keeps_the_names_a_script_types(
        migrated_url, tmp_path):
    """An Iranian shop's administrator reads `flask check` in Persian: each finding and the
    summary; the settings' names, values and commands stay as typed (Latin, to be copied), and
    OK, WARN and FAIL and the exit status stay as the units and scripts read them."""
    import re
    app = build_app(migrated_url, tmp_path, SERVICEDESK_LOCALE="fa", SMS_BACKEND="twilio")
    code, lines, output = run_check(app)
    assert code == 1, output
    sms = lines["پیامک"]
    assert sms.startswith("FAIL  پیامک: SMS_BACKEND برابر twilio است ولی این‌ها تنظیم نشده‌اند: "
                          "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER (یا "
                          "TWILIO_MESSAGING_SERVICE_SID)"), output
    assert lines["مهاجرت‌ها"].startswith("OK    مهاجرت‌ها: در آخرین نسخه ("), output
    assert "فروشگاه: fa، Asia/Tehran؛ پیوندهای پیامک‌ها و کدهای QR به http://shop.test " \
           "می‌روند" in output
    assert output.rstrip().endswith("۱ بررسی از ۸ بررسی رد شد"), output
    # no English sentence left: only the names a script types are in Latin letters
    words = re.sub(r"\w[\w+.-]*://\S+|/\S+|\b(OK|WARN|FAIL|twilio|fa|en|Asia|Tehran|"
                   r"SQLite|PostgreSQL|Redis|gunicorn|instance)\b|[A-Z][A-Z0-9_]+", "", output)
    assert not re.search(r"[a-z]{3,}", words), words


def test_check_speaks_english_to_an_english_shop(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path, SERVICEDESK_LOCALE="en", SMS_BACKEND="twilio")
    code, lines, output = run_check(app)
    assert code == 1, output
    assert lines["sms"].startswith("FAIL  sms: SMS_BACKEND is twilio but these are not set: "
                                   "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"), output
    assert output.rstrip().endswith("1 of 8 checks failed"), output


def test_check_from_the_shell_in_persian(migrated_url):
    """As the web unit's ExecStartPre runs it: the shop's language from the environment."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "check"], cwd=ROOT,
                          env=shell_env(migrated_url, SECRET_KEY="dev", SERVICEDESK_LOCALE="fa"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  کلید مخفی: SECRET_KEY یک مقدار شناخته‌شدهٔ ویژهٔ توسعه است" in done.stdout, \
        done.stdout


# --- SERVICEDESK_TRUSTED_HOSTS, as Werkzeug reads it ------------------------------------------

def status_for_host(app, host: str) -> int:
    """What the app answers a request whose Host header is ``host``."""
    return app.test_client().get("/healthz", headers={"Host": host}).status_code


@pytest.mark.parametrize("hosts, forged, words", [
    ([".ir", "shop.test"], "attacker.ir", "'.ir' trusts other people's sites too"),
    ([".co.ir", "shop.test"], "attacker.co.ir", "'.co.ir' trusts other people's sites too"),
    ([".", "shop.test"], "attacker.example.", "'.' trusts other people's sites too"),
    ([], "attacker.example", "an empty list, which trusts every host"),
])
def test_check_warns_when_the_trusted_hosts_let_in_other_peoples_sites(migrated_url, tmp_path,
                                                                       hosts, forged, words):
    """A leading dot trusts every name under it (".ir": any Iranian site; "." any name written
    with a final dot, which a client may send), an empty list every host: a forged Host header
    would decide where the links in SMS lead. A WARN saying what to name instead."""
    app = build_app(migrated_url, tmp_path, TRUSTED_HOSTS=hosts)
    assert status_for_host(app, forged) == 200  # what the warning is about, as the app answers
    code, lines, output = run_check(app)
    assert code == 0, output
    line = lines["trusted hosts"]
    assert line.startswith("WARN  trusted hosts: ") and words in line, output
    assert "repair.example.ir" in line  # what to set instead


@pytest.mark.parametrize("hosts", [["*"], ["*.shop.test"], ["https://shop.test"],
                                   "shop.test,localhost"])
def test_check_fails_when_no_trusted_host_can_match(migrated_url, tmp_path, hosts):
    """Werkzeug has no wildcards and wants names, not addresses: "*" is not "every host" but
    none, so every request is refused (400). A FAIL, with how to write the list."""
    app = build_app(migrated_url, tmp_path, TRUSTED_HOSTS=hosts)
    assert status_for_host(app, "shop.test") == 400
    code, lines, output = run_check(app)
    assert code == 1, output
    assert lines["trusted hosts"].startswith("FAIL  trusted hosts: SERVICEDESK_TRUSTED_HOSTS ("
                                             ) and "matches no host" in output, output
    assert "'[\".example.ir\"]'" in lines["trusted hosts"]


def test_check_warns_of_a_trusted_host_that_matches_nothing_beside_good_ones(migrated_url,
                                                                           tmp_path):
    app = build_app(migrated_url, tmp_path, TRUSTED_HOSTS=["shop.test", "*.shop.test"])
    assert status_for_host(app, "shop.test") == 200
    assert status_for_host(app, "a.shop.test") == 400  # the "wildcard" let nothing in
    code, lines, output = run_check(app)
    assert code == 0 and lines["trusted hosts"].startswith("WARN"), output
    assert "'*.shop.test' matches no host" in lines["trusted hosts"], output


def test_check_warns_when_the_public_address_is_not_a_trusted_host(migrated_url, tmp_path):
    """Customers open the links in their SMS at PUBLIC_BASE_URL: a list without its host
    answers them 400."""
    app = build_app(migrated_url, tmp_path, TRUSTED_HOSTS=["127.0.0.1", "localhost"])
    assert status_for_host(app, "shop.test") == 400
    code, lines, output = run_check(app)
    assert code == 0 and lines["trusted hosts"].startswith("WARN"), output
    assert "PUBLIC_BASE_URL's host shop.test is not among them" in lines["trusted hosts"]


@pytest.mark.redis
def test_check_warns_of_addresses_only_in_a_deployed_shop(migrated_url, tmp_path):
    """Deployed (Redis here), no public address, and only IP addresses trusted: a shop reached
    by its name is refused; one reached by an address has no https. On the embedded default
    (a first try on a laptop) the same list says nothing."""
    deployed = build_app(migrated_url, tmp_path, PUBLIC_BASE_URL=None, REDIS_URL=REDIS_URL,
                         TRUSTED_HOSTS=["127.0.0.1", "localhost"])
    code, lines, output = run_check(deployed)
    assert lines["trusted hosts"].startswith("WARN  trusted hosts: only IP addresses or "
                                             "localhost"), output
    assert "repair.example.ir" in lines["trusted hosts"]
    if migrated_url.startswith("sqlite"):
        first_try = build_app(migrated_url, tmp_path, PUBLIC_BASE_URL=None,
                              TRUSTED_HOSTS=["127.0.0.1", "localhost"])
        code, lines, output = run_check(first_try)
        assert lines["trusted hosts"] == "OK    trusted hosts: '127.0.0.1', 'localhost'", output


def test_check_is_content_with_the_shops_own_hosts(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path,
                    TRUSTED_HOSTS=["shop.test", ".example.ir", "127.0.0.1", "localhost"])
    code, lines, output = run_check(app)
    assert code == 0, output
    assert lines["trusted hosts"] == ("OK    trusted hosts: 'shop.test', '.example.ir', "
                                      "'127.0.0.1', 'localhost'"), output


def test_check_warns_of_the_trusted_hosts_in_persian(migrated_url, tmp_path):
    app = build_app(migrated_url, tmp_path, SERVICEDESK_LOCALE="fa",
                    TRUSTED_HOSTS=[".ir", "shop.test"])
    code, lines, output = run_check(app)
    assert lines["میزبان‌های مجاز"].startswith(
        "WARN  میزبان‌های مجاز: '.ir' سایت‌های دیگران را هم مجاز می‌کند"), output
