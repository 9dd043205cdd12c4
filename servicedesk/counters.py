"""Gap-free sequences in the database (queue numbers, ticket numbers), and row ids taken ahead
of the INSERT."""
from typing import Optional

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .extensions import db
from .models import Counter


_STATEMENTS: dict = {}


def _statement(dialect: str):
    stmt = _STATEMENTS.get(dialect)
    if stmt is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        table = Counter.__table__
        stmt = _STATEMENTS[dialect] = (
            insert(table).on_conflict_do_update(index_elements=[table.c.scope],
                                                set_={"value": table.c.value + 1})
            .returning(table.c.value))
    return stmt


def next_value(scope: str) -> int:
    """Increment and return the counter ``scope`` in the current transaction.

    One statement, INSERT .. ON CONFLICT DO UPDATE .. RETURNING: on PostgreSQL the conflicting
    row is locked until this transaction ends, so concurrent callers get consecutive values and
    never the same one; SQLite serialises writers.
    """
    conn = db.session.connection()  # a plain statement: cheaper than through the ORM session
    return conn.execute(_statement(conn.dialect.name),
                        {"scope": scope, "value": 1}).scalar_one()


_NEXTVAL = text("SELECT nextval(pg_get_serial_sequence(:table, 'id'))")


def reserve_id(table_name: str) -> Optional[int]:
    """An id for a new row of ``table_name`` known before its INSERT, so the object can be
    written in a later flush with the rest, or None when none can be taken safely.

    PostgreSQL: from the table's sequence. SQLite: the largest id plus one (what SQLite itself
    would assign), but only once this transaction has written something: it then holds the
    database's write lock until it ends, so no other connection can take the same id."""
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        return conn.execute(_NEXTVAL, {"table": table_name}).scalar_one()
    if conn.dialect.name == "sqlite" and conn.connection.dbapi_connection.in_transaction:
        # (the sqlite3 module opens a transaction at the first write: in_transaction says one
        # happened)
        return conn.execute(text(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table_name}"')
                            ).scalar_one()
    return None
