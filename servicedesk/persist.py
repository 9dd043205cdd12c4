"""One-row writes on the session's connection, for the ticket write path (intake, ``fire``).

What the ORM's flush does for a row, without its unit of work: ``insert`` writes a new object's
row with one INSERT and attaches the object to the session as loaded and clean; ``update``
writes columns of a loaded object with one UPDATE and its version check (a lost race raises
StaleDataError, as a flush would), and the object then holds the values as committed. Both are
in the session's transaction, so the caller's commit or rollback covers them like any flush.

Measured on this machine (bench/README.md): a single-row INSERT costs about 426 us of CPU
through ``add`` and ``flush`` and 122 us as a statement on the session's connection; an
intake writes six rows and a transition three.

Related objects are given as keyword arguments, not set as attributes beforehand: setting a
relationship with a back-reference (``ticket.visit``) changes the other object too, and the
next flush would write it again. Here the foreign key columns are filled from them and both
sides are set as already loaded, so nothing is left for a flush to do.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from sqlalchemy import bindparam, inspect
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from .extensions import db


_WRITTEN = "servicedesk_persist_written"  # session.info: objects inserted in this transaction


def _forget_written(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


def _expunge_written(session: Session, previous_transaction) -> None:
    """A rollback expires what the session holds; objects whose INSERT it undid must go too,
    as a flush's new objects do: the next rows may get the same ids (SQLite) and must not
    meet them in the identity map."""
    for obj in session.info.pop(_WRITTEN, ()):
        if obj in session:
            session.expunge(obj)


def register_session_hooks() -> None:
    if not sa_event.contains(Session, "after_commit", _forget_written):
        sa_event.listen(Session, "after_commit", _forget_written)
        sa_event.listen(Session, "after_soft_rollback", _expunge_written)


class _Plan:
    """Per mapped class: the columns with their attribute names and defaults, the many-to-one
    relationships' key pairs, and the prebuilt statements."""

    def __init__(self, cls) -> None:
        mapper = inspect(cls)
        self.table = table = mapper.local_table
        (self.pk,) = mapper.primary_key
        self.pk_key = mapper.get_property_by_column(self.pk).key
        self.columns = [(mapper.get_property_by_column(c).key, c) for c in table.columns]
        # Statements' parameters are named by column; every mapped class here names its
        # attributes after its columns. Values the database would fill in itself (server
        # defaults, onupdate) are not read back here: such a column needs the ORM's flush.
        for key, column in self.columns:
            if key != column.key or column.server_default is not None \
                    or column.onupdate is not None:
                raise TypeError(f"{cls.__name__}.{key}: not writable by servicedesk.persist")
        self.many_to_one = {}
        for rel in mapper.relationships:
            if rel.direction.name == "MANYTOONE":
                self.many_to_one[rel.key] = [
                    (mapper.get_property_by_column(local).key,
                     rel.mapper.get_property_by_column(remote).key)
                    for local, remote in rel.local_remote_pairs]
        self.insert = table.insert()
        version = mapper.version_id_col
        self.version_key = mapper.get_property_by_column(version).key if version is not None \
            else None
        where = self.pk == bindparam("pk_")
        if version is not None:
            where = where & (version == bindparam("version_"))
        self.update = table.update().where(where)
        self.unless_exists: dict = {}  # (dialect, unique column) -> INSERT .. ON CONFLICT

    def insert_unless_exists(self, dialect: str, column: str):
        stmt = self.unless_exists.get((dialect, column))
        if stmt is None:
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            stmt = self.unless_exists[(dialect, column)] = (
                insert(self.table).on_conflict_do_nothing(index_elements=[self.table.c[column]])
                .returning(self.pk))
        return stmt


@lru_cache(maxsize=None)
def _plan(cls) -> _Plan:
    return _Plan(cls)


def _default(column) -> Any:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps a no-argument callable to take a context
    return default.arg if default.is_scalar else None


def insert(obj, unless_exists: Optional[str] = None, **related):
    """INSERT the new (transient) ``obj`` and attach it to the session, loaded and clean.

    Unset columns get their Python defaults; the primary key comes back from the database
    when not set. ``related``: many-to-one relationships (``customer=...``), set on both
    sides as loaded; those set on ``obj`` already count too. Related objects must be written
    already.

    ``unless_exists``: a unique column; when a row with the same value is there (or being
    written by a transaction that then commits), nothing is written and None is returned
    (INSERT .. ON CONFLICT DO NOTHING: one statement where a lookup first takes two)."""
    plan = _plan(type(obj))
    state_dict = inspect(obj).dict
    for name in plan.many_to_one:
        if name not in related and state_dict.get(name) is not None:
            related[name] = state_dict[name]
    for name, value in related.items():
        if value is not None and inspect(value).key is None:  # else its key would be None
            raise ValueError(f"{type(obj).__name__}.{name}: write the related object first")
        for local, remote in plan.many_to_one[name]:
            setattr(obj, local, None if value is None else getattr(value, remote))
    values = {}
    for key, column in plan.columns:
        if key not in state_dict:
            setattr(obj, key, _default(column))
        values[key] = state_dict[key]
    conn = db.session.connection()
    new_key = values[plan.pk_key] is None
    if new_key:
        del values[plan.pk_key]
    if unless_exists is not None:
        written = conn.execute(plan.insert_unless_exists(conn.dialect.name, unless_exists),
                               values).first()
        if written is None:
            return None
        setattr(obj, plan.pk_key, written[0])
    else:
        result = conn.execute(plan.insert, values)
        if new_key:
            setattr(obj, plan.pk_key, result.inserted_primary_key[0])
    make_transient_to_detached(obj)
    db.session.add(obj)
    db.session.info.setdefault(_WRITTEN, []).append(obj)
    for name, value in related.items():
        set_committed_value(obj, name, value)
    return obj


def update(obj, **values) -> None:
    """UPDATE columns of the loaded ``obj`` (attribute names; many-to-one relationships by
    object), bumping its version: StaleDataError when someone else changed the row first.
    ``obj`` then holds the values as committed (nothing left for a flush)."""
    plan = _plan(type(obj))
    related = {k: values.pop(k) for k in list(values) if k in plan.many_to_one}
    for name, value in related.items():
        for local, remote in plan.many_to_one[name]:
            values[local] = None if value is None else getattr(value, remote)
    state = inspect(obj)
    params = {**values, "pk_": state.identity[0]}
    if plan.version_key is not None:
        old = getattr(obj, plan.version_key)  # (loads it if the object was expired)
        params["version_"] = old
        values[plan.version_key] = params[plan.version_key] = old + 1
    result = db.session.connection().execute(plan.update, params)
    if result.rowcount != 1:
        raise StaleDataError(
            f"UPDATE statement on table '{plan.table.name}' expected to update 1 row(s); "
            f"{result.rowcount} were matched.")
    for key, value in {**values, **related}.items():
        set_committed_value(obj, key, value)


def link(obj, name: str, other) -> None:
    """Set the one-to-one or many-to-one ``obj.name`` to ``other`` and its back-reference to
    ``obj``, both as loaded: the rows are written by ``insert``/``update`` (the foreign key),
    not by a flush seeing a change on either side."""
    set_committed_value(obj, name, other)
    _point_back(obj, name, (other,))


def append_loaded(obj, collection: str, *items) -> None:
    """Add already written ``items`` to ``obj``'s loaded collection, as loaded (no change for
    a flush to write), and point each item back at ``obj``."""
    set_committed_value(obj, collection, [*getattr(obj, collection), *items])
    _point_back(obj, collection, items)


def _point_back(obj, name: str, others) -> None:
    back = inspect(obj).mapper.relationships[name].back_populates
    if back:
        for other in others:
            set_committed_value(other, back, obj)
