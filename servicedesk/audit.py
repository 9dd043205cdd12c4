"""The admin audit log (logins, user, setting and template changes, prints, exports) and the
check of the tickets' hash-chained trail.

``log()`` only adds a row to the current transaction: the action that changed something
commits it together with the change, so there is never a change without its record (nor a
record of a change that rolled back).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable, Optional

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import String, and_, cast, func, or_, select

from .extensions import db
from .models import Branch, Ticket, User, utcnow
from .models.admin import AuditLog

# Field names never written into value_from/value_to: secrets, and customers' phone numbers.
# (The shop's own phone, "shop_phone", is not personal data and stays.)
_SECRET_PARTS = ("password", "token", "secret", "hash")
_PERSONAL = frozenset({"phone", "customer_phone", "customer_name", "email"})


def _redacted(key: str) -> bool:
    k = str(key).lower()
    return k in _PERSONAL or any(part in k for part in _SECRET_PARTS)


def _clean(value: Any) -> Any:
    """A JSON-safe copy of ``value`` without secret or personal fields."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if not _redacted(k)}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _object_ref(obj: Any) -> tuple[Optional[str], Optional[str]]:
    """(type, id) of a model instance or of a ``(type, id)`` pair."""
    if obj is None:
        return None, None
    if isinstance(obj, tuple):
        kind, ident = obj
        return str(kind)[:40], (None if ident is None else str(ident)[:64])
    kind = getattr(obj, "__tablename__", type(obj).__name__.lower())
    ident = getattr(obj, "id", None)
    if ident is None:
        ident = getattr(obj, "key", None)  # settings are keyed by name
    return kind[:40], (None if ident is None else str(ident)[:64])


def _current_actor() -> Optional[User]:
    if not has_request_context():
        return None
    try:
        user = current_user._get_current_object()
    except Exception:  # no login manager on this app (scripts)
        return None
    return user if getattr(user, "is_authenticated", False) else None


def log(action: str, *, obj: Any = None, before: Any = None, after: Any = None,
        actor: Optional[User] = None, commit: bool = False) -> AuditLog:
    """Add an audit row to the current transaction (the caller's commit writes it).

    ``obj`` is a model instance or a ``(type, id)`` pair; ``before``/``after`` are the changed
    values (secret and personal fields are dropped). The actor and the IP address come from the
    logged-in user and the request when there are any; ``actor`` overrides the user.
    ``commit=True`` commits at once (for callers that have nothing else to commit, such as the
    login view).
    """
    user = actor if actor is not None else _current_actor()
    kind, ident = _object_ref(obj)
    row = AuditLog(
        at=utcnow(), action=action[:40], object_type=kind, object_id=ident,
        actor_id=getattr(user, "id", None),
        actor_name=(getattr(user, "username", "") or "")[:120],
        value_from=_clean(before) if before is not None else None,
        value_to=_clean(after) if after is not None else None,
        ip=(request.remote_addr or None) if has_request_context() else None)
    db.session.add(row)
    if commit:
        db.session.commit()
    return row


def changes(old: dict, new: dict) -> tuple[dict, dict]:
    """The fields that differ, as (before, after) dicts for ``log``."""
    keys = [k for k in new if old.get(k) != new.get(k)]
    return {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}


def search(*, action: Optional[str] = None, user: Optional[str] = None,
           date_from: Optional[date] = None, date_to: Optional[date] = None,
           limit: int = 100, offset: int = 0) -> tuple[list[AuditLog], bool]:
    """Audit rows, newest first: ``action`` exactly ("user.update") or a whole family ("user"),
    ``user`` a user name (what they did, and what was done to their account), the dates
    shop-local and inclusive. Returns (rows, more)."""
    from datetime import time, timedelta

    from .i18n import shop_timezone
    query = select(AuditLog)
    if action:
        if "." in action:
            query = query.where(AuditLog.action == action)
        else:
            query = query.where(AuditLog.action.startswith(action + ".", autoescape=True))
    if user:  # what they did, and what was done to their account
        name = user.strip().lower()
        account = select(User.id).where(func.lower(User.username) == name).scalar_subquery()
        query = query.where(or_(func.lower(AuditLog.actor_name) == name,
                                and_(AuditLog.object_type == "users",
                                     AuditLog.object_id == cast(account, String))))
    tz = shop_timezone()
    if date_from:
        query = query.where(AuditLog.at >= datetime.combine(date_from, time(), tz))
    if date_to:
        query = query.where(AuditLog.at < datetime.combine(date_to + timedelta(days=1), time(),
                                                           tz))
    rows = db.session.scalars(query.order_by(AuditLog.at.desc(), AuditLog.id.desc())
                              .limit(limit + 1).offset(offset)).all()
    return rows[:limit], len(rows) > limit


# What a row is about, by the name staff know it by: (model, column that names it).
_NAMED_BY = {"tickets": (Ticket, "number"), "users": (User, "username"),
             "branches": (Branch, "name")}


def object_names(rows: Iterable[AuditLog]) -> dict[tuple[str, str], str]:
    """{(object_type, object_id): name} for the rows' tickets (their number), users (their user
    name) and branches (their name): one query per kind, whatever the number of rows."""
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.object_type in _NAMED_BY and row.object_id and row.object_id.isdigit():
            wanted.setdefault(row.object_type, set()).add(int(row.object_id))
    names = {}
    for kind, ids in wanted.items():
        model, column = _NAMED_BY[kind]
        for ident, name in db.session.execute(select(model.id, getattr(model, column))
                                              .where(model.id.in_(ids))):
            names[(kind, str(ident))] = name
    return names


def actions() -> list[str]:
    """The actions recorded so far (for the search form)."""
    return list(db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))


def verify_ticket_chains(tickets: Optional[Iterable[Ticket]] = None) -> list[tuple[str, int]]:
    """(ticket number, seq of the first edited event) for every ticket whose trail is broken."""
    from .lifecycle import verify_chain
    if tickets is None:
        tickets = db.session.scalars(select(Ticket).order_by(Ticket.id))
    broken = []
    for ticket in tickets:
        seq = verify_chain(ticket)
        if seq is not None:
            broken.append((ticket.number, seq))
    return broken


def verify_customers_sms() -> list[tuple[int, str]]:
    """(customer id, problem) for every customer whose SMS switch (``sms_opt_out``, and who
    stopped them: ``opted_out_by``) is not what their last ``customer.sms`` record says: the
    columns the rules read, tied to the records. A customer with no record may be stopped by
    nobody named (the demo's customers), never by someone. The problems in the current
    language (verify-audit's: the shop's)."""
    from flask_babel import gettext as _

    from .i18n import format_number
    from .models import Customer
    last: dict[str, AuditLog] = {}
    for row in db.session.scalars(select(AuditLog).where(
            AuditLog.action == "customer.sms", AuditLog.object_type == Customer.__tablename__)
            .order_by(AuditLog.id)):
        last[row.object_id] = row
    problems = []
    for ident, stopped, by in db.session.execute(
            select(Customer.id, Customer.sms_opt_out, Customer.opted_out_by)
            .order_by(Customer.id)):
        row = last.get(str(ident))
        if row is None:
            if by is not None:
                problems.append((ident, _("SMS stopped by %(how)s with no customer.sms record",
                                          how=by)))
            continue
        said = row.value_to or {}
        record = format_number(row.id)
        if said.get("sms") is stopped and stopped:
            problems.append((ident, _("SMS stopped but the last customer.sms record "
                                      "(#%(record)s) says otherwise", record=record)))
        elif said.get("sms") is stopped:
            problems.append((ident, _("SMS sent but the last customer.sms record "
                                      "(#%(record)s) says otherwise", record=record)))
        elif stopped and said.get("how") != by:
            problems.append((ident, _("SMS stopped by %(how)s but the last customer.sms record "
                                      "(#%(record)s) says by %(said)s", how=by, record=record,
                                      said=said.get("how"))))
    return problems
