"""The embedded database: one SQLite file serves a whole shop, so its connections are opened
with care.

- **Pragmas** (``pragmas``, run on every new connection): WAL lets the screens read while one
  of them writes, and commits without a sync of the whole file each time (synchronous=NORMAL is
  durable across a crash of the app; a power cut may lose the last commits, never corrupt the
  file); a writer waits for the lock instead of failing at once with "database is locked";
  foreign keys are enforced, as PostgreSQL does (SQLite's default is not to). Migrations turn
  them off while they run (migrations/env.py): rebuilding a table drops the old one.
- **One writer at a time, taking turns** (``Connection``): SQLite lets one transaction write at
  a time. A writer that finds the file locked is put to sleep by SQLite's busy handler in steps
  of 1, 2, 5, 10, 15, 20, 25 ... 100 ms and retries, so with the request threads and the
  in-process SMS sender all writing, a request could lose several rounds and wait hundreds of
  milliseconds for a lock held for one. Here a connection takes the file's write lock before
  the statement at which the driver opens a write transaction (INSERT, UPDATE, DELETE,
  REPLACE, a WITH that writes, BEGIN, SAVEPOINT, a script; leading comments skipped) and gives
  it back as soon as no transaction is open: at commit, rollback or close, or after any
  statement that ended it. The threads of a process wait on a thread lock, so the next one
  starts the moment the last one commits (not strictly first come, first served); the thread
  holding it also takes an exclusive flock on ``FILE-writer``, tried every 0.1 to 1 ms, so the
  processes (gunicorn workers, a command) take turns the same way. Readers never take it.

The lock waits as long as SQLite's busy timeout and then fails as SQLite does ("database is
locked: ..."), so a writer that never finishes cannot hang the others for longer than before.
If the lock file cannot be opened, processes fall back to SQLite's busy handler (logged).
A child made by fork starts with its own locks (SQLite's rule stands: it must not use the
connections it inherited).
"""
import logging
import os
import re
import sqlite3
import threading
import time
import weakref

try:
    import fcntl
except ImportError:  # Windows: the threads of a process still queue; processes meet SQLite's
    fcntl = None     # busy handler as before

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
# Statements that write or open a transaction that may write, after any leading comments
# (the driver skips them too before its implicit BEGIN); WITH .. counts when it writes.
_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN", "SAVEPOINT")
_WRITE_IN_WITH = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.I)
_locks_guard = threading.Lock()


def pragmas(dbapi_connection, _record=None) -> None:
    """The settings of every connection to the embedded database (see the module's text)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class _FileLock:
    """The writers of one database file in this process queue on a thread lock; the one at
    the front also holds an exclusive flock on ``FILE-writer``, which queues the processes."""

    def __init__(self, database: str):
        self.threads = threading.Lock()
        self.fd = None
        if fcntl is not None and database not in ("", ":memory:") \
                and not database.startswith("file:"):
            self.fd = _open_lock_file(os.path.abspath(database))

    def acquire(self) -> bool:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        if not self.threads.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            return False
        if self.fd is None:
            return True
        pause = 0.0001
        try:
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(pause)
                    pause = min(pause * 2, 0.001)
        except BaseException:
            self.threads.release()
            raise
        self.threads.release()
        return False

    def release(self) -> None:
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


def _open_lock_file(database: str):
    """``DATABASE-writer``: empty, only ever flocked, so read access is enough and anyone who
    may open the database may open it. Made by root (a command run with sudo), it is given to
    the database's owner, as SQLite does with its -wal and -shm files. If it cannot be opened,
    the processes meet SQLite's busy handler again (slower, still correct)."""
    path = database + "-writer"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("%s: %s; writers of different processes wait in SQLite's busy handler",
                    path, exc)
        return None
    try:
        os.fchmod(fd, 0o644)  # whatever the umask (fails, harmlessly, on another's file)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            st = os.stat(database)
            os.fchown(fd, st.st_uid, st.st_gid)
    except OSError:
        pass
    return fd


_locks: dict[tuple, _FileLock] = {}
_connections: "weakref.WeakSet[Connection]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A child made by fork shares its parent's open lock files: unlocking one would free the
    parent's lock. The child starts with its own locks, and the connections it inherited (which
    it must not use anyway) hold none."""
    global _locks_guard
    _locks_guard = threading.Lock()
    _locks.clear()
    for connection in list(_connections):
        connection._holding = False
        connection._file_lock = _FileLock("")  # a thread lock of its own, no file


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _write_lock(database: str) -> _FileLock:
    # per process: a child made by fork shares its parent's open file, so it needs its own
    key = (os.getpid(), database)
    with _locks_guard:
        if key not in _locks:
            _locks[key] = _FileLock(database)
        return _locks[key]


def _is_write(sql: str) -> bool:
    head = sql[_COMMENTS.match(sql).end():][:9].upper()
    if head.startswith(_WRITE_WORDS):
        return True
    return head.startswith("WITH") and _WRITE_IN_WITH.search(sql) is not None


class Connection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions take the file's lock of this process
    (``sqlite3.connect(..., factory=Connection)``; SQLAlchemy: ``connect_args``)."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._file_lock = _write_lock(str(database))
        self._holding = False
        _connections.add(self)

    @property
    def isolation_level(self):
        return sqlite3.Connection.isolation_level.__get__(self)

    @isolation_level.setter
    def isolation_level(self, value):  # None commits what was open (in C)
        sqlite3.Connection.isolation_level.__set__(self, value)
        self._release_unless_open()

    def cursor(self, factory=None):
        return super().cursor(factory or Cursor)

    # The C shortcuts make a plain cursor; these go through Cursor like everything else.
    def execute(self, sql, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script):
        return self.cursor().executescript(script)

    def _before_write(self) -> None:
        if self._holding:
            return
        if not self._file_lock.acquire():
            raise sqlite3.OperationalError(
                f"database is locked: another writer kept it for {BUSY_TIMEOUT_MS / 1000:g} s")
        self._holding = True

    def _release_unless_open(self) -> None:
        """After any statement, commit or rollback: with no transaction open (it ended, it
        failed before the driver's BEGIN, it ran in autocommit, SQLite rolled it back after
        an error), the lock goes back at once."""
        if getattr(self, "_holding", False) and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self._file_lock.release()

    def commit(self):
        try:
            return super().commit()
        finally:
            self._release_unless_open()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self._release_unless_open()

    def close(self):
        try:
            return super().close()
        finally:
            self._release()

    def __exit__(self, *exc_info):  # `with connection:` commits or rolls back in C
        try:
            return super().__exit__(*exc_info)
        finally:
            self._release_unless_open()

    def __del__(self):  # dropped without close: the transaction is gone, so is the lock
        if getattr(self, "_holding", False):
            self._release()


class Cursor(sqlite3.Cursor):
    def execute(self, sql, parameters=()):
        return self._run(super().execute, sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        return self._run(super().executemany, sql, seq_of_parameters)

    def executescript(self, script):  # commits what was open, then runs the script as is
        connection = self.connection
        connection._before_write()
        try:
            return super().executescript(script)
        finally:
            connection._release_unless_open()

    def _run(self, method, sql, parameters):
        connection = self.connection
        if _is_write(sql):
            connection._before_write()
        try:
            return method(sql, parameters)
        finally:  # a COMMIT, ROLLBACK or RELEASE statement, or an error, may end it too
            connection._release_unless_open()
