"""The shop's settings as the admin pages set them, over the app.config defaults, and what they
drive: per-state time limits (overdue tickets) and the service types offered at intake.

The shop's configuration (the ``settings`` table, the service types, the SMS template
overrides and the active webhook endpoints) changes a few times a year and is read by every intake and every event (the SMS
carries the shop's name; its text may be overridden). In a request it comes from a snapshot of
all three tables that each worker process keeps for ``SETTINGS_CACHE_SECONDS`` (2 s by default):
at most one reload a process per interval instead of two or three queries a request. A change
saved on the admin pages replaces the snapshot of the process that saved it at once, so the
manager sees it on the next page; other processes (gunicorn workers) see it within the
interval. One request sees one snapshot from start to end. Outside a request (commands, the
worker's jobs) every read goes to the database.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from flask import current_app, has_request_context, request
from sqlalchemy import Select, and_, case, false, func, literal, or_, select

from .extensions import db
from .models import SmsTemplate, Ticket, TicketEvent, UTCDateTime, utcnow
from .models.admin import ServiceType, Setting

# key -> (app.config name, built-in default)
KEYS: dict[str, tuple[str, Any]] = {
    "shop_name": ("SHOP_NAME", ""),
    # The name in Latin letters, for what is written in English (SMS, slips, pages); empty:
    # the shop name. An English SMS with a Persian name in it is billed as Unicode (70
    # characters a part, not 160).
    "shop_name_en": ("SHOP_NAME_EN", ""),
    "shop_phone": ("SHOP_PHONE", ""),
    "shop_address": ("SHOP_ADDRESS", ""),
    "receipt_terms": ("RECEIPT_TERMS", ""),
    "delivery_terms": ("DELIVERY_TERMS", ""),
    "money_display": ("MONEY_DISPLAY", "toman"),
    # The paper the receipts and the till slip print on unless the desk picks another
    # (servicedesk.slips.PAPER_CHOICES): a thermal roll, or an office printer's A5 or A4 sheet.
    "slip_paper": ("SLIP_PAPER", "80"),
    "auto_close_days": ("AUTO_CLOSE_DAYS", 7),
    # Days before the reminder SMS (0: none): an estimate unanswered, a device not collected.
    "remind_estimate_days": ("REMIND_ESTIMATE_DAYS", 2),
    "remind_pickup_days": ("REMIND_PICKUP_DAYS", 3),
    # Days after the hand-back the work is under warranty: on the delivery receipt, and a
    # device back within them counts as a return in the reports.
    "warranty_days": ("WARRANTY_DAYS", 90),
    # Days a loaner phone may be out before the stock list flags it overdue.
    "loaner_overdue_days": ("LOANER_OVERDUE_DAYS", 14),
    # Whether the desk must confirm who collects a device (servicedesk.pickup.CHECKS): "off"
    # hands back as before; "required" asks for the pickup code, a texted code or a manager.
    "handback_check": ("HANDBACK_CHECK", "off"),
    # Where the customer must sign on the counter's screen (servicedesk.signatures.REQUIRED):
    # "off" (on screen or on paper, as the desk chooses), "handback", "both" (intake too).
    "signature_required": ("SIGNATURE_REQUIRED", "off"),
    "state_time_limits": ("STATE_TIME_LIMITS", {"intake": 2, "diagnosis": 24, "estimate": 48,
                                                "repair": 72, "ready": 168}),
}
MONEY_DISPLAYS = ("toman", "rial")
# States a ticket can wait in; delivered, closed and cancelled have no limit.
TIMED_STATES = ("intake", "diagnosis", "estimate", "repair", "waiting_parts", "ready")
BRANCH_HOURS = "branch_hours:"  # + branch id: free text such as "Sat-Wed 9-18"

_REQUEST_ATTR = "_servicedesk_config"
_EXTENSION = "servicedesk.config"


@dataclass(frozen=True)
class Snapshot:
    """The shop's configuration as stored, read in one go."""
    settings: dict
    # The service types (dicts: code, name_fa, name_en, active) in their order: the shop's
    # list, or the config's built-in ones until the shop edits it.
    service_types: tuple
    # (event, language) -> (body, enabled) for the SMS texts the manager changed
    templates: dict
    # The administrator's active webhook endpoints, (id, the events it hears or None for all):
    # every ticket event asks, and most shops have none
    webhooks: tuple
    loaded_at: float

    @classmethod
    def load(cls) -> "Snapshot":
        from .models.webhooks import WebhookEndpoint
        session = db.session
        return cls(
            settings={row.key: row.value for row in session.scalars(select(Setting))},
            service_types=tuple(_stored_service_types() or _builtin_service_types()),
            templates={(r.event, r.language): (r.body, r.enabled)
                       for r in session.scalars(select(SmsTemplate))},
            webhooks=tuple(
                (i, None if events is None else tuple(events))
                for i, events in session.execute(
                    select(WebhookEndpoint.id, WebhookEndpoint.events)
                    .where(WebhookEndpoint.active.is_(True),
                           WebhookEndpoint.deleted_at.is_(None))
                    .order_by(WebhookEndpoint.id))),
            loaded_at=time.monotonic())


class _Holder:
    def __init__(self):
        self.snapshot: Optional[Snapshot] = None
        self.lock = threading.Lock()


def _holder() -> _Holder:
    holder = current_app.extensions.get(_EXTENSION)
    if holder is None:
        holder = current_app.extensions.setdefault(_EXTENSION, _Holder())
    return holder


def snapshot() -> Optional[Snapshot]:
    """This request's snapshot of the shop's configuration (the process's, reloaded when older
    than SETTINGS_CACHE_SECONDS); None outside a request."""
    if not has_request_context():
        return None
    req = request._get_current_object()
    snap = getattr(req, _REQUEST_ATTR, None)
    if snap is not None:
        return snap
    holder = _holder()
    snap = holder.snapshot
    ttl = float(current_app.config.get("SETTINGS_CACHE_SECONDS", 2))
    if snap is None or time.monotonic() - snap.loaded_at >= ttl:
        # One thread reloads; the others of the process keep the previous snapshot meanwhile
        # (or wait for the first one).
        if holder.lock.acquire(blocking=snap is None):
            try:
                if holder.snapshot is snap:
                    holder.snapshot = Snapshot.load()
                snap = holder.snapshot
            finally:
                holder.lock.release()
    setattr(req, _REQUEST_ATTR, snap)
    return snap


def _stored() -> Optional[dict]:
    snap = snapshot()
    return snap.settings if snap is not None else None


def invalidate() -> None:
    """Forget the snapshot (after a change): this request and the next ones of this process read
    the tables again."""
    if has_request_context():
        req = request._get_current_object()
        if hasattr(req, _REQUEST_ATTR):
            delattr(req, _REQUEST_ATTR)
    try:
        holder = current_app.extensions.get(_EXTENSION)
    except RuntimeError:  # no app context
        return
    if holder is not None:
        holder.snapshot = None


def template_override(event: str, language: str) -> Optional[tuple[str, bool]]:
    """(body, enabled) of the manager's text for an SMS, or None when the shipped one applies."""
    snap = snapshot()
    if snap is not None:
        return snap.templates.get((event, language))
    row = db.session.scalar(
        select(SmsTemplate).where(SmsTemplate.event == event, SmsTemplate.language == language))
    return (row.body, row.enabled) if row is not None else None


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


def shop_name(language: Optional[str] = None) -> str:
    """The shop's name as written in ``language`` (the page's by default): its English name
    in English when it has one, else the shop name."""
    if language is None:
        from flask_babel import get_locale
        locale = get_locale() if has_request_context() else None
        language = locale.language if locale is not None else None
    if language == "en" and get("shop_name_en"):
        return get("shop_name_en")
    return get("shop_name") or ""


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
    """Every service type: the shop's list, else the config's built-in ones."""
    snap = snapshot()
    if snap is not None:
        return list(snap.service_types)
    return _stored_service_types() or _builtin_service_types()


def _stored_service_types() -> list[dict]:
    return [{"code": r.code, "name_fa": r.name_fa, "name_en": r.name_en, "active": r.active}
            for r in db.session.scalars(select(ServiceType).order_by(ServiceType.id))]


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
