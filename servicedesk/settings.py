"""The shop's settings as the admin pages set them, over the app.config defaults, and what they
drive: per-state time limits (overdue tickets) and the service types offered at intake.

``get(key)`` reads the ``settings`` table once per request (one query for all keys) and falls
back to ``app.config`` for a key nobody has set.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Optional

from flask import current_app, has_request_context, request
from sqlalchemy import Select, and_, case, false, func, literal, or_, select

from .extensions import db
from .models import Ticket, TicketEvent, UTCDateTime, utcnow
from .models.admin import ServiceType, Setting

# key -> (app.config name, built-in default)
KEYS: dict[str, tuple[str, Any]] = {
    "shop_name": ("SHOP_NAME", ""),
    "shop_phone": ("SHOP_PHONE", ""),
    "shop_address": ("SHOP_ADDRESS", ""),
    "receipt_terms": ("RECEIPT_TERMS", ""),
    "money_display": ("MONEY_DISPLAY", "toman"),
    "auto_close_days": ("AUTO_CLOSE_DAYS", 7),
    "state_time_limits": ("STATE_TIME_LIMITS", {"intake": 2, "diagnosis": 24, "estimate": 48,
                                                "repair": 72, "ready": 168}),
}
MONEY_DISPLAYS = ("toman", "rial")
# States a ticket can wait in; delivered, closed and cancelled have no limit.
TIMED_STATES = ("intake", "diagnosis", "estimate", "repair", "waiting_parts", "ready")
BRANCH_HOURS = "branch_hours:"  # + branch id: free text such as "Sat-Wed 9-18"

_CACHE_ATTR = "_servicedesk_settings"
_TYPES_ATTR = "_servicedesk_service_types"


def _stored() -> Optional[dict]:
    """Every stored setting, read once per request; None outside a request (no cache)."""
    if not has_request_context():
        return None
    req = request._get_current_object()
    cache = getattr(req, _CACHE_ATTR, None)
    if cache is None:
        cache = {row.key: row.value for row in db.session.scalars(select(Setting))}
        setattr(req, _CACHE_ATTR, cache)
    return cache


def invalidate() -> None:
    """Forget this request's cached settings (after a change)."""
    if has_request_context():
        req = request._get_current_object()
        for attr in (_CACHE_ATTR, _TYPES_ATTR):
            if hasattr(req, attr):
                delattr(req, attr)


def default(key: str) -> Any:
    """The value of ``key`` from app.config (or the built-in default), ignoring the table."""
    key = key.lower()
    config_name, fallback = KEYS.get(key, (key.upper(), None))
    value = current_app.config.get(config_name)
    return fallback if value is None else value


def get(key: str) -> Any:
    """The shop's setting ``key`` (e.g. ``shop_name`` or ``SHOP_NAME``): the stored value, else
    app.config, else the built-in default."""
    key = key.lower()
    stored = _stored()
    if stored is not None:
        if key in stored and stored[key] is not None:
            return stored[key]
    else:
        value = db.session.scalar(select(Setting.value).where(Setting.key == key))
        if value is not None:
            return value
    return default(key)


def branch_hours(branch_id: int) -> str:
    return get(f"{BRANCH_HOURS}{branch_id}") or ""


# --- per-state time limits -----------------------------------------------------------------

def time_limits() -> dict[str, int]:
    """Hours a ticket may stay in each state before it is overdue (states without a limit are
    absent)."""
    limits = get("state_time_limits") or {}
    clean = {}
    for state, hours in limits.items():
        if state in TIMED_STATES and isinstance(hours, (int, float)) and not isinstance(
                hours, bool) and hours > 0:
            clean[state] = hours
    return clean


def state_entered_at():
    """SQL: when the ticket entered its current state (its last event that changed the state;
    records such as a claim keep the state and do not count)."""
    te = TicketEvent
    return (select(func.max(te.at))
            .where(te.ticket_id == Ticket.id, te.to_state == Ticket.state,
                   or_(te.from_state.is_(None), te.from_state != te.to_state))
            .correlate(Ticket)
            .scalar_subquery())


def overdue_condition(now: Optional[datetime] = None):
    """SQL condition: the ticket has been in its state longer than that state's limit."""
    now = now or utcnow()
    limits = time_limits()
    if not limits:
        return false()
    cutoff = case(
        {state: literal(now - timedelta(hours=hours), UTCDateTime())
         for state, hours in limits.items()},
        value=Ticket.state, else_=None)
    return and_(Ticket.state.in_(list(limits)), state_entered_at() < cutoff)


def overdue_tickets(query: Optional[Select] = None, now: Optional[datetime] = None) -> Select:
    """``query`` (default: every ticket) narrowed to the tickets past their state's limit, for
    the worklists and the manager's morning list."""
    query = select(Ticket) if query is None else query
    return query.where(overdue_condition(now))


def late_list(branch_id: Optional[int] = None, limit: int = 50,
              now: Optional[datetime] = None) -> tuple[int, list[tuple[Ticket, datetime]]]:
    """The manager's morning list: how many tickets are past their state's time limit, and the
    ``limit`` longest-waiting of them with when they entered their state (one query each)."""
    from sqlalchemy.orm import joinedload
    entered = state_entered_at().label("entered")
    query = overdue_tickets(select(Ticket, entered), now).options(
        joinedload(Ticket.device), joinedload(Ticket.technician), joinedload(Ticket.customer))
    counted = overdue_tickets(select(func.count(Ticket.id)), now)
    if branch_id is not None:
        query = query.where(Ticket.branch_id == branch_id)
        counted = counted.where(Ticket.branch_id == branch_id)
    rows = db.session.execute(query.order_by(entered, Ticket.id).limit(limit)).all()
    return db.session.scalar(counted) or 0, [(t, at) for t, at in rows]


def overdue_ids(ticket_ids, now: Optional[datetime] = None) -> set[int]:
    """Which of ``ticket_ids`` are overdue (one query, for flagging a page of a worklist)."""
    ids = list(ticket_ids)
    if not ids:
        return set()
    return set(db.session.scalars(
        overdue_tickets(select(Ticket.id).where(Ticket.id.in_(ids)), now)))


def entered_state_at(ticket: Ticket) -> Optional[datetime]:
    """When ``ticket`` entered its current state (from its loaded events)."""
    for row in reversed(ticket.events):
        if row.to_state == ticket.state and row.from_state != row.to_state:
            return row.at
    return None


def past_limit(state: str, entered: Optional[datetime], now: Optional[datetime] = None) -> bool:
    """True when a ticket that entered ``state`` at ``entered`` has stayed longer than the
    state's limit (states without a limit never are)."""
    hours = time_limits().get(state)
    if not hours or entered is None:
        return False
    return entered < (now or utcnow()) - timedelta(hours=hours)


def is_overdue(ticket: Ticket, now: Optional[datetime] = None) -> bool:
    """True when ``ticket`` has been in its state longer than the state's limit."""
    return past_limit(ticket.state, entered_state_at(ticket), now)


# --- service types ---------------------------------------------------------------------------

def _builtin_service_types() -> list[dict]:
    """The config's service types with their translated names (used until the shop edits the
    list, which then starts from these)."""
    from flask_babel import force_locale

    from .services.tickets import SERVICE_TYPE_LABELS
    rows = []
    for code in current_app.config.get("SERVICE_TYPES", ()):
        label = SERVICE_TYPE_LABELS.get(code, code)
        with force_locale("fa"):
            name_fa = str(label)
        with force_locale("en"):
            name_en = str(label)
        rows.append({"code": code, "name_fa": name_fa, "name_en": name_en, "active": True})
    return rows


def _all_service_types() -> list[dict]:
    """Every service type (read once per request, like the settings)."""
    req = request._get_current_object() if has_request_context() else None
    cached = getattr(req, _TYPES_ATTR, None)
    if cached is not None:
        return cached
    rows = db.session.scalars(select(ServiceType).order_by(ServiceType.id)).all()
    found = ([{"code": r.code, "name_fa": r.name_fa, "name_en": r.name_en, "active": r.active}
              for r in rows] if rows else _builtin_service_types())
    if req is not None:
        setattr(req, _TYPES_ATTR, found)
    return found


def service_types(active_only: bool = True) -> list[dict]:
    """The service types as dicts (code, name_fa, name_en, active): the shop's list, else the
    config's built-in ones."""
    return [t for t in _all_service_types() if t["active"] or not active_only]


def service_type_codes() -> tuple[str, ...]:
    """Codes offered at intake (for the intake form and its check)."""
    return tuple(t["code"] for t in service_types())


def service_type_label(code: str, language: Optional[str] = None) -> str:
    """The name of a service type in ``language`` (default: the page's)."""
    from .i18n import current_language
    language = language or current_language()
    for t in service_types(active_only=False):
        if t["code"] == code:
            return (t["name_fa"] if language == "fa" else t["name_en"]) or code
    return code
