"""Gap-free sequences in the database (queue numbers, ticket numbers)."""
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
