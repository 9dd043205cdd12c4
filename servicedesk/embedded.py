"""The embedded database: one SQLite file serves a whole shop, so its connections are opened
with care.

- **Pragmas** (``pragmas``, run on every new connection): WAL lets the screens read while one
  of them writes, and commits without a sync of the whole file each time (synchronous=NORMAL is
  durable across a crash of the app; a power cut may lose the last commits, never corrupt the
  file); a writer waits for the lock instead of failing at once with "database is locked";
  foreign keys are enforced, as PostgreSQL does (SQLite's default is not to). Migrations turn
  them off while they run (migrations/env.py): rebuilding a table drops the old one.
- **One writer at a time, in line** (``Connection``): SQLite lets one transaction write at a
  time. A writer that finds the file locked is put to sleep by SQLite's busy handler in steps
  of 1, 2, 5, 10, 15, 20, 25 ... 100 ms and retries, so with the request threads and the
  in-process SMS sender all writing, a request could lose several rounds and wait hundreds of
  milliseconds for a lock held for one. Here a connection takes the file's write lock before
  its first write (the statement at which the driver opens the transaction) and gives it back
  at commit, rollback or close. The threads of a process queue on a thread lock, so the next
  one starts the moment the last one commits; the thread at the front also takes an exclusive
  flock on ``FILE-writer``, tried every 0.1 to 1 ms, so the processes (gunicorn workers, a
  command) take turns the same way. Readers never take it.

The lock waits as long as SQLite's busy timeout and then fails as SQLite does ("database is
locked"), so a writer that never finishes cannot hang the others for longer than before.
"""
import os
import sqlite3
import threading
import time

try:
    import fcntl
except ImportError:  # Windows: the threads of a process still queue; processes meet SQLite's
    fcntl = None     # busy handler as before

BUSY_TIMEOUT_MS = 10_000
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
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
            self.fd = os.open(os.path.abspath(database) + "-writer", os.O_RDWR | os.O_CREAT,
                              0o600)

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


_locks: dict[tuple, _FileLock] = {}


def _write_lock(database: str) -> _FileLock:
    # per process: a child made by fork shares its parent's open file, so it needs its own
    key = (os.getpid(), database)
    with _locks_guard:
        if key not in _locks:
            _locks[key] = _FileLock(database)
        return _locks[key]


def _is_write(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_WRITES)


class Connection(sqlite3.Connection):
    """A sqlite3 connection whose write transactions take the file's lock of this process
    (``sqlite3.connect(..., factory=Connection)``; SQLAlchemy: ``connect_args``)."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._file_lock = _write_lock(str(database))
        self._holding = False

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
            raise sqlite3.OperationalError("database is locked")
        self._holding = True

    def _release_unless_open(self) -> None:
        """After a statement: a write that did not leave a transaction open (it failed before
        the driver's BEGIN, or ran in autocommit) gives the lock back at once."""
        if self._holding and not self.in_transaction:
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

    def executescript(self, script):  # commits what was open, then runs in autocommit
        try:
            return super().executescript(script)
        finally:
            self.connection._release_unless_open()

    def _run(self, method, sql, parameters):
        connection = self.connection
        if not _is_write(sql):
            return method(sql, parameters)
        connection._before_write()
        try:
            return method(sql, parameters)
        finally:
            connection._release_unless_open()
