"""`flask --app wsgi copy-db SOURCE_URL`: move a shop's data from one database to another,
normally from the embedded SQLite file to a fresh PostgreSQL database (deploy/README.md,
"Moving from the embedded database to PostgreSQL").

A plain table-by-table copy looks right (`flask check` and `verify-audit` pass) but leaves
PostgreSQL's id sequences at 1, so the next insert into every table fails with a duplicate key.
This copy keeps every id, then moves each sequence past the largest id it copied.

The rules, checked before anything is written:
- the source and the target are at the same Alembic revision, the one this code expects (the
  models describe that revision, and the copy reads and writes through them);
- the target holds nothing but what `init-db` writes (the default branch, which the copy
  replaces with the source's branches).

The copy runs in one transaction on the target (all or nothing) and reads the source in one
transaction too (a consistent snapshot), in foreign-key order and in batches. Rows go through
the models' column types, so timestamps keep their instant (SQLite stores naive UTC; PostgreSQL
gets timestamptz), booleans stay booleans and dates stay dates; JSON columns are copied as the
text the source holds (SQL NULL stays NULL, a JSON ``null`` stays ``null``), so nothing the audit
chain hashed is re-serialised.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import sqlalchemy as sa
from flask_babel import gettext as _

from .checks import MIGRATIONS, safe_url
from .extensions import db

BATCH = 1000
INIT_DB = "flask --app wsgi init-db"
# What `init-db` writes besides the schema: the default branch (cli.ensure_default_branch).
INIT_DB_TABLES = {"branches": 1}
SKIPPED = {"alembic_version"}  # set by init-db on the target already


class Refusal(Exception):
    """The copy cannot start (or could not finish): the message says what to do."""


@dataclass
class CopyReport:
    tables: list[tuple[str, int]] = field(default_factory=list)
    sequences: int = 0
    revision: str = ""

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.tables)


def source_engine(source: str) -> sa.engine.Engine:
    """An engine for SOURCE: a SQLAlchemy URL (``postgres://`` and ``postgresql://`` use psycopg
    3, as the app does) or the path of an existing SQLite file. A SQLite file that does not
    exist is refused rather than created empty."""
    from . import _database_url
    if "://" not in source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise Refusal(_("%(source)s is neither a database URL nor an existing SQLite file.",
                            source=source))
        source = f"sqlite:///{path.resolve()}"
    try:
        url = sa.engine.make_url(_database_url(source))
    except sa.exc.ArgumentError:
        raise Refusal(_("%(source)s is not a database URL "
                        "(e.g. sqlite:////srv/servicedesk/instance/servicedesk.db).",
                        source=repr(source))) from None
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            raise Refusal(_("The SQLite file %(file)s does not exist.",
                            file=url.database or "-"))
    return sa.create_engine(url)


def _same_database(a: sa.engine.URL, b: sa.engine.URL) -> bool:
    if a.get_backend_name() == "sqlite" and b.get_backend_name() == "sqlite":
        return bool(a.database and b.database) and \
            Path(a.database).resolve() == Path(b.database).resolve()
    return (a.get_backend_name(), a.host, a.port, a.database) == \
        (b.get_backend_name(), b.host, b.port, b.database)


def _revision(conn: sa.Connection) -> Optional[str]:
    from alembic.migration import MigrationContext
    if "alembic_version" not in sa.inspect(conn).get_table_names():
        return None
    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # not its "Context impl SQLiteImpl." chatter
    try:
        heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        alembic_log.setLevel(level)
    return ", ".join(sorted(heads)) or None


def _code_revision() -> str:
    from alembic.script import ScriptDirectory
    return ", ".join(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def _known(revision: str) -> bool:
    """Whether this code's migrations know ``revision`` (else the database is newer)."""
    from alembic.script import ScriptDirectory
    scripts = ScriptDirectory(str(MIGRATIONS))
    try:
        return all(scripts.get_revision(r) is not None for r in revision.split(", "))
    except Exception:  # noqa: BLE001 - alembic's "no such revision" comes in several kinds
        return False


def check_revisions(source: sa.Connection, target: sa.Connection, source_name: str) -> str:
    """The revision both databases are at; Refusal unless they agree with each other and with
    the code."""
    expected = _code_revision()
    src, tgt = _revision(source), _revision(target)
    if src is None:
        raise Refusal(_("%(source)s is not a Servicedesk database (no Alembic revision "
                        "recorded): give the URL of the shop's database.", source=source_name))
    if tgt is None:
        raise Refusal(_("The target database (DATABASE_URL) is not migrated: create it with "
                        "`%(init_db)s` first, then run copy-db again.", init_db=INIT_DB))
    if src != expected:
        if not _known(src):
            raise Refusal(_("The source is at revision %(found)s, which this code (at "
                            "%(expected)s) does not know; it was migrated by a newer release: "
                            "run copy-db from that release's code.", found=src,
                            expected=expected))
        raise Refusal(_("The source is at revision %(found)s but this code expects "
                        "%(expected)s: back it up, upgrade it with `DATABASE_URL=%(source)s "
                        "%(init_db)s`, then run copy-db again.", found=src, expected=expected,
                        source=source_name, init_db=INIT_DB))
    if tgt != expected:
        if not _known(tgt):
            raise Refusal(_("The target is at revision %(found)s, which this code (at "
                            "%(expected)s) does not know; it was migrated by a newer release: "
                            "run copy-db from that release's code.", found=tgt,
                            expected=expected))
        raise Refusal(_("The target is at revision %(found)s but this code expects "
                        "%(expected)s (as the source is): run `%(init_db)s` on it, then run "
                        "copy-db again.", found=tgt, expected=expected, init_db=INIT_DB))
    return expected


def check_schema(source: sa.Connection, target: sa.Connection) -> None:
    """Every table the models know is in both databases with the same columns, and the source
    holds no table the copy would leave behind."""
    known = set(db.metadata.tables)
    for side, conn in (("source", source), ("target", target)):
        inspector = sa.inspect(conn)
        present = {t for t in inspector.get_table_names() if not t.startswith("sqlite_")}
        missing = sorted(known - present)
        if missing:
            tables = ", ".join(missing)
            raise Refusal(_("The source has no table %(tables)s: it was not built by this "
                            "code's migrations (%(init_db)s).", tables=tables, init_db=INIT_DB)
                          if side == "source" else
                          _("The target has no table %(tables)s: it was not built by this "
                            "code's migrations (%(init_db)s).", tables=tables, init_db=INIT_DB))
        unknown = sorted(present - known - SKIPPED)
        if unknown and side == "source":
            raise Refusal(_("The source has tables this code does not know (%(tables)s): "
                            "their rows would not be copied.", tables=", ".join(unknown)))
        for name, table in db.metadata.tables.items():
            columns = {c["name"] for c in inspector.get_columns(name)}
            if columns != set(table.c.keys()):
                differ = ", ".join(sorted(columns ^ set(table.c.keys())))
                raise Refusal(_("The source's table %(table)s has columns %(columns)s that "
                                "differ from what this code expects.", table=name,
                                columns=differ) if side == "source" else
                              _("The target's table %(table)s has columns %(columns)s that "
                                "differ from what this code expects.", table=name,
                                columns=differ))


def check_target_empty(target: sa.Connection) -> None:
    """Refusal if the target holds anything but what init-db writes."""
    held = []
    for table in db.metadata.sorted_tables:
        count = target.scalar(sa.select(sa.func.count()).select_from(table))
        if count > INIT_DB_TABLES.get(table.name, 0):
            held.append(f"{table.name} {count}")
    if held:
        raise Refusal(_("The target database is not empty (rows: %(held)s): copy-db fills a "
                        "new database only. Create an empty one (createdb), run `%(init_db)s` "
                        "with DATABASE_URL pointing at it, and copy into that.",
                        held=", ".join(held), init_db=INIT_DB))


def _is_json(column: sa.Column) -> bool:
    return isinstance(column.type, sa.JSON)


def _reader(table: sa.Table) -> sa.Select:
    """All rows of ``table`` in key order, JSON columns as the text the database holds."""
    columns = [sa.cast(c, sa.Text).label(c.name) if _is_json(c) else c for c in table.c]
    return sa.select(*columns).order_by(*table.primary_key.columns)


def _writer(table: sa.Table, dialect: str) -> sa.Insert:
    """An INSERT of whole rows; JSON columns take the source's text as it is (PostgreSQL parses
    it into json; SQLite stores the text)."""
    values = {}
    for c in table.c:
        if _is_json(c):
            raw = sa.bindparam(f"raw_{c.name}", type_=sa.Text)
            values[c.name] = sa.cast(raw, c.type) if dialect == "postgresql" else raw
    return table.insert().values(values) if values else table.insert()


def _params(table: sa.Table, rows) -> list[dict]:
    json_cols = {c.name for c in table.c if _is_json(c)}
    return [{(f"raw_{k}" if k in json_cols else k): v for k, v in row._mapping.items()}
            for row in rows]


def advance_sequences(target: sa.Connection) -> int:
    """PostgreSQL: every serial or identity column's sequence set to the column's largest value
    (or back to 1 for an empty table), so the next insert gets the next id. Returns how many."""
    if target.dialect.name != "postgresql":
        return 0  # SQLite takes the next rowid from the table itself
    done = 0
    quote = target.dialect.identifier_preparer
    for table in db.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = target.scalar(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                     {"t": quote.format_table(table), "c": column.name})
            if sequence is None:
                continue
            top = target.scalar(sa.select(sa.func.max(column)))
            target.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v, :called)"),
                           {"s": sequence, "v": top or 1, "called": top is not None})
            done += 1
    return done


def _begin_snapshot(source: sa.Connection) -> None:
    """Read every table from one snapshot of the source. PostgreSQL: a repeatable-read, read-only
    transaction; SQLite (the driver begins transactions only to write): an explicit BEGIN, whose
    first read fixes what the connection sees (WAL)."""
    if source.dialect.name == "postgresql":
        source.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    elif source.dialect.name == "sqlite":
        source.exec_driver_sql("BEGIN")


def copy_database(source_url: str, echo: Callable[[str], None] = print) -> CopyReport:
    """Copy every table of the Servicedesk database at ``source_url`` into the app's database
    (DATABASE_URL), which must be freshly made by init-db; raises Refusal with what to do."""
    target_engine = db.engine
    engine = source_engine(source_url)
    shown_source = safe_url(engine.url.render_as_string(hide_password=False))
    shown_target = safe_url(target_engine.url.render_as_string(hide_password=False))
    if _same_database(engine.url, target_engine.url):
        engine.dispose()
        raise Refusal(_("The source and the target are the same database (%(target)s).",
                        target=shown_target))
    report = CopyReport()
    try:
        with engine.connect() as source, target_engine.connect() as target:
            _begin_snapshot(source)
            report.revision = check_revisions(source, target, shown_source)
            check_schema(source, target)
            check_target_empty(target)
            target.rollback()  # the checks' reads; the copy is one transaction of its own
            echo(_("Copying %(source)s -> %(target)s (revision %(revision)s)",
                   source=shown_source, target=shown_target, revision=report.revision))
            with target.begin():
                # The default branch init-db made: the source's branches take its place.
                for name in INIT_DB_TABLES:
                    target.execute(db.metadata.tables[name].delete())
                for table in db.metadata.sorted_tables:
                    report.tables.append((table.name, _copy_table(source, target, table)))
                    echo(_("  %(table)s %(count)s rows", table=f"{table.name:<20}",
                             count=f"{report.tables[-1][1]:>8}"))
                report.sequences = advance_sequences(target)
            source.rollback()
    finally:
        engine.dispose()
    return report


def _copy_table(source: sa.Connection, target: sa.Connection, table: sa.Table) -> int:
    insert = _writer(table, target.dialect.name)
    copied = 0
    try:
        # yield_per: a server-side cursor on PostgreSQL, so no table is held whole in memory
        for rows in source.execute(_reader(table).execution_options(yield_per=BATCH)) \
                .partitions(BATCH):
            target.execute(insert, _params(table, rows))
            copied += len(rows)
    except (sa.exc.DBAPIError, ValueError) as exc:  # a row PostgreSQL refuses, a bad date
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise Refusal(_("Copying %(table)s failed after %(count)s rows (%(reason)s); nothing "
                        "was written to the target.", table=table.name, count=copied,
                        reason=reason[0] if reason else type(exc).__name__)) from exc
    in_target = target.scalar(sa.select(sa.func.count()).select_from(table))
    if in_target != copied:  # cannot happen on an empty target; a cheap proof it did not
        raise Refusal(_("%(table)s: copied %(count)s rows but the target holds %(held)s; "
                        "nothing was written to the target.", table=table.name, count=copied,
                        held=in_target))
    return copied
