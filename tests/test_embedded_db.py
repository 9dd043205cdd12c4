"""The embedded database's writers take turns (servicedesk/embedded.py): a second writer waits
for the first to finish instead of failing or sleeping in SQLite's busy handler, readers never
wait, the turn is given back however a transaction ends, and a writer kept waiting past the
busy timeout fails as SQLite does and leaves nothing behind. SQLite only, by nature."""
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from servicedesk import embedded

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "shop.db"
    conn = connect(path)
    conn.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, problem TEXT NOT NULL)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def short_timeout(monkeypatch):
    """Waits of 0.4 s instead of 10 s, so a lock that is never given back fails fast."""
    monkeypatch.setattr(embedded, "BUSY_TIMEOUT_MS", 400)


def connect(path, sqlite_waits=True) -> sqlite3.Connection:
    """A connection as the app opens it. sqlite_waits=False turns SQLite's own busy handler off,
    so a writer that reached SQLite while another holds the file fails at once: a writer that
    succeeds anyway waited its turn in Servicedesk's lock."""
    conn = sqlite3.connect(str(path), factory=embedded.Connection, check_same_thread=False)
    embedded.pragmas(conn)
    if not sqlite_waits:
        conn.execute("PRAGMA busy_timeout=0")
    return conn


def problems(path) -> list:
    conn = sqlite3.connect(str(path))
    try:
        return [row[0] for row in conn.execute("SELECT problem FROM tickets ORDER BY id")]
    finally:
        conn.close()


def in_thread(target):
    """Start target in a thread; return (thread, outcome), outcome filled when it ends."""
    outcome = {}

    def run():
        try:
            outcome["value"] = target()
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def write(path, problem, sqlite_waits=True):
    def go():
        conn = connect(path, sqlite_waits)
        try:
            conn.execute("INSERT INTO tickets (problem) VALUES (?)", (problem,))
            conn.commit()
        finally:
            conn.close()
        return problem
    return go


def test_a_second_writer_waits_for_the_first_and_both_land(path):
    first = connect(path, sqlite_waits=False)
    first.execute("INSERT INTO tickets (problem) VALUES ('screen')")  # transaction open
    thread, outcome = in_thread(write(path, "battery", sqlite_waits=False))
    thread.join(0.5)
    assert thread.is_alive(), "the second writer did not wait for the first"
    first.commit()
    thread.join(10)
    assert not thread.is_alive() and outcome == {"value": "battery"}
    assert problems(path) == ["screen", "battery"]
    first.close()


def test_a_writer_holds_the_files_writer_lock_until_it_commits(path):
    """The lock other processes wait on is an flock on FILE-writer."""
    import fcntl
    conn = connect(path)
    conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
    with open(f"{path}-writer", "rb") as other:  # another open file: as another process
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        conn.commit()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)
    conn.close()


def test_readers_do_not_wait_for_a_writer(path, short_timeout):
    write(path, "screen")()
    writer = connect(path)
    writer.execute("INSERT INTO tickets (problem) VALUES ('battery')")
    reader = connect(path)
    # the committed row, at once, without the uncommitted one
    assert [r[0] for r in reader.execute("SELECT problem FROM tickets")] == ["screen"]
    writer.rollback()
    reader.close()
    writer.close()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close", "with-block", "failed-write",
                                    "bad-statement", "script", "COMMIT-statement",
                                    "autocommit-switch"])
def test_the_turn_is_given_back_however_the_transaction_ends(path, short_timeout, ending):
    conn = connect(path)
    if ending == "with-block":
        with conn:
            conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
    elif ending == "failed-write":
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO tickets (problem) VALUES (NULL)")
        conn.rollback()
    elif ending == "bad-statement":  # fails before the driver opens a transaction
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            conn.execute("INSERT INTO no_such_table VALUES (1)")
    elif ending == "script":
        conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
        conn.executescript("INSERT INTO tickets (problem) VALUES ('charger');")
    elif ending == "COMMIT-statement":
        conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
        conn.execute("COMMIT")
    elif ending == "autocommit-switch":  # commits what was open
        conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
        conn.isolation_level = None
    else:
        conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
        getattr(conn, ending)()
    # the same thread writes again on another connection: it would wait and fail if the
    # first connection still held the turn
    write(path, "battery")()
    assert problems(path)[-1] == "battery"
    if ending != "close":
        conn.close()


def test_a_writer_kept_waiting_past_the_busy_timeout_fails_and_writes_nothing(
        path, short_timeout):
    first = connect(path)
    first.execute("INSERT INTO tickets (problem) VALUES ('screen')")
    thread, outcome = in_thread(write(path, "battery", sqlite_waits=False))
    thread.join(10)
    assert isinstance(outcome.get("error"), sqlite3.OperationalError)
    # it waited its turn for the whole timeout (SQLite, not waiting, would have failed at once
    # with its own plain message)
    assert "database is locked: another writer kept it for 0.4 s" in str(outcome["error"])
    first.commit()
    assert problems(path) == ["screen"]
    write(path, "charger")()  # and the file is free again for the next one
    assert problems(path) == ["screen", "charger"]
    first.close()


def test_writes_the_driver_sees_as_writes_wait_their_turn_too(path):
    """A comment before the statement, a WITH that inserts, a script that opens a transaction:
    each waits for the writer before it, and a transaction a script leaves open keeps the turn
    until it commits."""
    first = connect(path, sqlite_waits=False)
    first.execute("INSERT INTO tickets (problem) VALUES ('screen')")

    def others():
        conn = connect(path, sqlite_waits=False)
        conn.execute("-- from the import\n/* line 2 */ INSERT INTO tickets (problem) "
                     "VALUES ('battery')")
        conn.commit()
        conn.execute("WITH p(x) AS (SELECT 'charger') INSERT INTO tickets (problem) "
                     "SELECT x FROM p")
        conn.commit()
        conn.close()
    thread, outcome = in_thread(others)
    thread.join(0.5)
    assert thread.is_alive(), "a write behind a comment did not wait"
    first.commit()
    thread.join(10)
    assert outcome == {"value": None}

    first.executescript("BEGIN; INSERT INTO tickets (problem) VALUES ('speaker');")
    thread, outcome = in_thread(write(path, "camera", sqlite_waits=False))
    thread.join(0.5)
    assert thread.is_alive(), "the script's open transaction gave its turn away"
    first.commit()
    thread.join(10)
    assert outcome == {"value": "camera"}
    assert problems(path) == ["screen", "battery", "charger", "speaker", "camera"]
    first.close()


def test_a_lock_file_that_cannot_be_opened_does_not_stop_the_shop(path, caplog):
    """(Made by another user, say.) Writers of different processes then meet SQLite's busy
    handler, as before; the app keeps working and says why in the log."""
    embedded._locks.clear()
    os.remove(f"{path}-writer")
    os.mkdir(f"{path}-writer")  # cannot be opened as a file by anyone, root included
    try:
        with caplog.at_level("WARNING", logger="servicedesk.embedded"):
            write(path, "battery")()
        assert problems(path) == ["battery"]
        assert "busy handler" in caplog.text and "-writer" in caplog.text
    finally:
        embedded._locks.clear()


def child_writes_while_parent_holds(path, parent, before_write) -> None:
    """Fork while ``parent`` holds a write transaction. The child runs ``before_write`` and then
    writes with SQLite's own waiting off, so it succeeds only if it waits its turn in the lock;
    the parent commits half a second later. Both rows must land."""
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 when it waited its turn and wrote
        code = 1
        try:
            before_write()
            write(path, "battery", sqlite_waits=False)()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status
            sys.stderr.write(f"in the child: {exc!r}\n")
        finally:
            os._exit(code)
    time.sleep(0.5)
    parent.commit()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert problems(path) == ["screen", "battery"]
    parent.close()


def test_a_child_process_made_by_fork_keeps_its_parents_lock_intact(path):
    """A forked child shares its parent's open lock file. Dropping a connection it inherited
    must not unlock the parent, and its own writes wait for the parent's transaction."""
    parent = connect(path)
    parent.execute("INSERT INTO tickets (problem) VALUES ('screen')")  # holds the turn
    # in the child, the inherited connection closed (as dropping it would): the parent's
    # lock must stay where it is
    child_writes_while_parent_holds(path, parent, parent.close)


@pytest.fixture
def folder_of_nobody():
    """A folder of its own in /tmp (pytest's are root's only), owned by the user nobody."""
    import pwd
    import shutil
    import tempfile
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="sd-embedded-"))
    os.chmod(folder, 0o755)
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    yield folder, nobody
    shutil.rmtree(folder, ignore_errors=True)


def test_a_lock_file_made_by_root_still_serves_the_apps_own_user(folder_of_nobody):
    """`sudo flask ...` once, before the app ever ran: the lock file it made must still let the
    app's user (here nobody) take its turn, not lock it out of the database. The suite runs
    as root (CI and this machine do) to act as root and then as the app's own user."""
    assert os.geteuid() == 0, "this test switches users: run the suite as root, as CI does"
    folder, nobody = folder_of_nobody
    path = folder / "shop.db"
    sqlite3.connect(str(path)).close()
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    root_conn = connect(path)  # root makes the lock file and the table, and holds a write
    root_conn.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, problem TEXT NOT NULL)")
    root_conn.execute("INSERT INTO tickets (problem) VALUES ('screen')")
    owners = {name: os.stat(folder / name).st_uid for name in os.listdir(folder)}
    assert owners == dict.fromkeys(["shop.db", "shop.db-wal", "shop.db-shm", "shop.db-writer"],
                                   nobody.pw_uid)  # SQLite gives its files to the owner too

    def become_the_apps_user():
        root_conn.close()  # SQLite's rule for a forked child: no connection carried over
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    child_writes_while_parent_holds(path, root_conn, become_the_apps_user)


HOLDER = """
import sqlite3, sys
sys.path.insert(0, {root!r})
from servicedesk import embedded
conn = sqlite3.connect({path!r}, factory=embedded.Connection)
embedded.pragmas(conn)
conn.execute("PRAGMA busy_timeout=0")
conn.execute("INSERT INTO tickets (problem) VALUES ('from the other process')")
print("holding", flush=True)
sys.stdin.readline()
conn.commit()
print("committed", flush=True)
"""


@pytest.fixture
def other_process(path):
    """Another process holding a write transaction on the file until told to commit."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(path))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "holding"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait(10)


def test_writers_of_two_processes_take_turns(path, other_process):
    thread, outcome = in_thread(write(path, "battery", sqlite_waits=False))
    thread.join(0.5)
    assert thread.is_alive(), "this process's writer did not wait for the other process"
    other_process.stdin.write("\n")
    other_process.stdin.flush()
    assert other_process.stdout.readline().strip() == "committed"
    thread.join(10)
    assert outcome == {"value": "battery"}
    assert problems(path) == ["from the other process", "battery"]


def test_a_writer_waiting_on_another_process_gives_up_after_the_timeout(
        path, short_timeout, other_process):
    with pytest.raises(sqlite3.OperationalError, match="another writer kept it for 0.4 s"):
        write(path, "battery", sqlite_waits=False)()
    other_process.stdin.write("\n")
    other_process.stdin.flush()
    assert other_process.stdout.readline().strip() == "committed"
    assert problems(path) == ["from the other process"]


def test_the_app_on_sqlite_opens_its_connections_this_way(tmp_path):
    from servicedesk.extensions import db

    from .conftest import make_app
    app = make_app(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                assert isinstance(conn.connection.dbapi_connection, embedded.Connection)
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        finally:
            db.engine.dispose()


def test_a_row_pointing_at_nothing_is_refused_as_on_postgresql(tmp_path):
    """SQLite ignores foreign keys unless told: a device of a customer who does not exist
    would be kept, and PostgreSQL would refuse it. The embedded database refuses it too."""
    import sqlalchemy as sa

    from servicedesk.extensions import db
    from servicedesk.models import Device

    from .conftest import make_app
    app = make_app(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    with app.app_context():
        try:
            with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
                db.session.execute(sa.insert(Device).values(
                    customer_id=424242, kind="phone", brand="Samsung", model="A54"))
            db.session.rollback()
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0
        finally:
            db.session.remove()
            db.engine.dispose()
