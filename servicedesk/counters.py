"""Gap-free sequences in the database (queue numbers, ticket numbers)."""
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .extensions import db
from .models import Counter


def next_value(scope: str) -> int:
    """Increment and return the counter ``scope`` in the current transaction.

    One statement, INSERT .. ON CONFLICT DO UPDATE .. RETURNING: on PostgreSQL the conflicting
    row is locked until this transaction ends, so concurrent callers get consecutive values and
    never the same one; SQLite serialises writers.
    """
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (insert(Counter).values(scope=scope, value=1)
            .on_conflict_do_update(index_elements=[Counter.scope],
                                   set_={"value": Counter.value + 1})
            .returning(Counter.value))
    return db.session.execute(stmt).scalar_one()
