"""What the printed slips carry: the queue slip, the intake receipt, the shelf label and the
delivery receipt. QR codes are inline SVG (qrcode's SvgPathImage: no Pillow, crisp at any
printer resolution).

Slips are HTML print views for 80 mm thermal paper (72 mm printable) or 58 mm (48 mm); the
templates in templates/print/ lay them out. Nothing here formats for a reader: dates, digits and
money go through the i18n filters in the templates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Optional

import phonenumbers
import qrcode
import qrcode.constants
import qrcode.image.svg
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload, lazyload, selectinload

from . import settings, signatures, visits
from .errors import NotFound
from .extensions import db
from .i18n import format_datetime, format_number, to_ascii_digits
from .lifecycle import PAYMENT_METHODS
from .links import desk_visit_url, shelf_url, survey_url, tracking_url
from .models import Loan, Ticket, TicketSignature, User, Visit
from .validation import PHONE_REGION

# Paper width (mm) -> printable width (mm) of common thermal printers.
PAPERS = {"80": 72, "58": 48}
DEFAULT_PAPER = "80"

DEFAULT_RECEIPT_TERMS = (
    _l("Keep this receipt: the device is handed back on it or on its QR code."),
    _l("Back up your data: the shop is not responsible for data lost during the repair."),
    _l("An estimate is sent before any paid work; nothing is charged without your approval."),
    _l("A device not collected within 90 days of the ready notice may be disposed of."),
)


def paper(raw) -> str:
    """``"58"`` when asked for (``?paper=58``, any digits), else the 80 mm default."""
    value = to_ascii_digits(raw).strip().lower().removesuffix("mm")
    return value if value in PAPERS else DEFAULT_PAPER


@lru_cache(maxsize=2048)
def qr_svg(data: str) -> Markup:
    """The QR code of ``data`` as an inline <svg> (EC level M, 4-module quiet zone).

    Cached: a receipt is reprinted with the same link, and choosing the mask pattern is the
    costly part of making a code."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4,
                       image_factory=qrcode.image.svg.SvgPathImage)
    qr.add_data(data)
    return Markup(qr.make_image().to_string(encoding="unicode"))


def national_phone(e164: Optional[str]) -> str:
    """A phone number as the shop dials it: an Iranian one as at home, ``+989121234567`` ->
    ``0912 123 4567``; a foreign one with its country code, ``+44 7911 123456``, which the
    forms and the search read back (``07911 123456`` would be read as an Iranian number).
    ASCII digits; the template localises them."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    home = phonenumbers.region_code_for_number(number) == PHONE_REGION
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL if home
                                      else phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phone(e164: Optional[str]) -> str:
    """A phone number as the customer dials it, with the middle hidden: ``0912***4567``."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        digits = "".join(ch for ch in national if ch.isdigit())
    except phonenumbers.NumberParseException:
        digits = "".join(ch for ch in e164 if ch.isdigit())
    if len(digits) >= 10:
        return f"{digits[:4]}***{digits[-4:]}"
    return f"{digits[:2]}***{digits[-2:]}"


def ticket_for_print(ticket_id: int, lines: bool = False) -> Ticket:
    """The ticket with what a slip shows, in two queries (the ticket with its customer, device
    and branch; its events), not the six of a ticket page: reprints are on the desk's hot
    path."""
    options = [joinedload(Ticket.customer), joinedload(Ticket.device),
               joinedload(Ticket.branch), selectinload(Ticket.events),
               lazyload(Ticket.notifications)]
    if not lines:
        options.append(lazyload(Ticket.lines))
    ticket = db.session.scalar(select(Ticket).where(Ticket.id == ticket_id).options(*options))
    if ticket is None:
        raise NotFound(_("No such ticket."))
    return ticket


def _terms(key: str, default) -> list:
    """The terms printed on a slip: the shop's setting (set on the admin page, else config), else
    the built-in ones, one per line."""
    configured = settings.get(key)
    if configured:
        lines = configured.splitlines() if isinstance(configured, str) else configured
        return [line.strip() for line in lines if str(line).strip()]
    return list(default)


@dataclass(frozen=True)
class Shop:
    name: str
    phone: str
    branch: str
    address: str = ""


def _shop(branch) -> Shop:
    """The slip's heading, from the shop settings the admin page sets."""
    return Shop(settings.shop_name(), settings.get("shop_phone") or "",
                branch.name if branch else "", settings.get("shop_address") or "")


@dataclass(frozen=True)
class QueueSlip:
    shop: Shop
    visit: Visit
    service: object  # lazy translated service name
    ahead: int
    now_serving: Optional[Visit]
    sms: bool
    near: bool  # issued with few ahead: no "turn near" SMS will follow, only the call's
    desk_url: str  # what the QR code says: the desk's scanner opens this number
    qr: Markup


def now_serving(visit: Visit) -> Optional[Visit]:
    """The number called last at this visit's branch that day."""
    return db.session.scalar(
        select(Visit).where(Visit.branch_id == visit.branch_id, Visit.day == visit.day,
                            Visit.called_at.is_not(None))
        .order_by(Visit.called_at.desc(), Visit.id.desc()).limit(1))


def queue_slip(visit: Visit) -> QueueSlip:
    """Shop, number, service, time, the people ahead and the number now being served."""
    serving = now_serving(visit) if visit.status == "waiting" else None
    url = desk_visit_url(visit)
    ahead = visits.ahead(visit) if visit.status == "waiting" else 0
    return QueueSlip(_shop(visit.branch), visit, visits.SERVICES[visit.service][1], ahead,
                     serving, bool(visit.phone), ahead <= visits.near_ahead(), url, qr_svg(url))


@dataclass(frozen=True)
class Receipt:
    shop: Shop
    ticket: Ticket
    admitted_at: datetime
    masked_phone: str
    tracking_url: str
    qr: Markup
    terms: list
    loaner: Optional[Loan] = None  # the loaner phone the customer has now
    signature: Optional[str] = None  # drawn on the counter's screen (a data URL), if it was


def _loans(ticket: Ticket) -> list[Loan]:
    """The ticket's loaner phones, the first first; no query for a ticket whose trail lent
    none (most of them: reprints are on the desk's hot path)."""
    if not any(e.event == "lend_loaner" for e in ticket.events):
        return []
    return list(db.session.scalars(select(Loan).where(Loan.ticket_id == ticket.id)
                                   .order_by(Loan.id)))


def _signature(ticket: Ticket, event: str) -> Optional[str]:
    """The customer's signature drawn on the counter's screen with the ticket's ``event``
    (admit, deliver), inline for the slip; no query for one signed on paper (its event's data
    names no picture)."""
    row = next((e for e in reversed(ticket.events) if e.event == event), None)
    if row is None or not (row.data or {}).get("signature_sha256"):
        return None
    png = db.session.scalar(select(TicketSignature.image).where(
        TicketSignature.ticket_id == ticket.id, TicketSignature.event_id == row.id))
    return signatures.data_url(png) if png else None


def _admitted_at(ticket: Ticket) -> datetime:
    # The ticket's created_at is the customer's arrival (their queue number); the receipt
    # shows when the device was taken in.
    for event in ticket.events:
        if event.event == "admit":
            return event.at
    return ticket.created_at


def receipt(ticket: Ticket) -> Receipt:
    """The intake receipt: the ticket, the masked phone, the terms and the tracking QR."""
    url = tracking_url(ticket)
    return Receipt(_shop(ticket.branch), ticket, _admitted_at(ticket),
                   mask_phone(ticket.customer.phone), url, qr_svg(url),
                   _terms("RECEIPT_TERMS", DEFAULT_RECEIPT_TERMS),
                   next((loan for loan in _loans(ticket) if loan.out), None),
                   _signature(ticket, "admit"))


@dataclass(frozen=True)
class Label:
    ticket: Ticket
    admitted_at: datetime
    url: str  # what its QR code opens (links.shelf_url)
    qr: Markup


def label(ticket: Ticket) -> Label:
    """The shelf label: number, QR (the ticket's staff page, ``shelf_url``: the desks'
    scanners and the staff's phones open it; never the customer's own link), customer and
    device."""
    url = shelf_url(ticket)
    return Label(ticket, _admitted_at(ticket), url, qr_svg(url))


@dataclass(frozen=True)
class DeliveryReceipt:
    shop: Shop
    ticket: Ticket
    masked_phone: str
    delivered_at: Optional[datetime]
    delivered_by: str
    amount_paid: Optional[int]
    payment_method: str  # how it was paid, in words ("" when not recorded, or split)
    collected_by: str
    work_done: str
    lines: list
    amount_due: int
    survey_url: str
    qr: Markup
    terms: list
    loans: list = field(default_factory=list)  # the loaner phones lent, taken back
    # a payment split between methods: (method, its words, amount) of each part
    payments: list = field(default_factory=list)
    signature: Optional[str] = None  # drawn on the counter's screen (a data URL), if it was


def collected_by(ticket: Ticket) -> str:
    """Who the desk wrote down as collecting the device at its hand-back ("" if nobody)."""
    deliver = next((e for e in reversed(ticket.events) if e.event == "deliver"), None)
    return ((deliver.data or {}).get("collected_by") or "") if deliver is not None else ""


def delivery_receipt(ticket: Ticket) -> DeliveryReceipt:
    """What was handed back, the bill, the payment, and the survey link as a QR code."""
    deliver = next((e for e in reversed(ticket.events) if e.event == "deliver"), None)
    finish = next((e for e in reversed(ticket.events) if e.event == "finish"), None)
    data = deliver.data if deliver is not None else {}
    url = survey_url(ticket)
    return DeliveryReceipt(
        _shop(ticket.branch), ticket, mask_phone(ticket.customer.phone),
        deliver.at if deliver is not None else None,
        (deliver.actor.display_name if deliver is not None and deliver.actor
         else (deliver.actor_name if deliver is not None else "")),
        data.get("amount_paid", ticket.amount_paid),
        str(PAYMENT_METHODS.get(data.get("payment_method"), "")), collected_by(ticket),
        (finish.data.get("work_done") if finish is not None else "") or "",
        ticket.final_lines(), ticket.amount_due or 0, url, qr_svg(url),
        _terms("DELIVERY_TERMS", _default_delivery_terms(
            deliver.at if deliver is not None and finish is not None else None)),
        [loan for loan in _loans(ticket) if not loan.out],
        [(p["method"], str(PAYMENT_METHODS.get(p["method"], p["method"])), p["amount"])
         for p in data.get("payments") or []], _signature(ticket, "deliver"))


@dataclass(frozen=True)
class TillSlip:
    shop: Shop
    day: date
    staff: str  # whose hand-backs ("" for the whole branch's)
    summary: dict  # reports.takings_summary
    handbacks: list  # reports.handbacks
    totals: dict  # reports.handback_totals
    printed_at: datetime
    printed_by: str
    counts: list = field(default_factory=list)  # the drawer's counts of the day (TillCount)


def till_slip(branch, day: date, staff: Optional[User], summary: dict,
              handbacks: list, totals: dict, printed_by: User,
              counts: Optional[list] = None) -> TillSlip:
    """The day's takings at the desk, to count the till against: the totals by how they
    were paid, what was given off the amounts due, each hand-back, and the drawer's counts
    (what was in it against what it should hold)."""
    return TillSlip(_shop(branch), day, staff.display_name if staff is not None else "",
                    summary, handbacks, totals, datetime.now(timezone.utc),
                    printed_by.display_name, list(counts or []))


def _default_delivery_terms(repaired_and_delivered: Optional[datetime]) -> list:
    """The built-in terms of a delivery receipt: until when the work done is under warranty
    (the same days the reports count returns in, from the hand-back: a reprint promises no
    more), for a repaired device; none for one handed back unrepaired."""
    if repaired_and_delivered is None:
        return []
    days = int(settings.get("warranty_days"))
    if days <= 0:
        return []
    until = repaired_and_delivered + timedelta(days=days)
    return [_("The work done is under warranty for %(days)s days, until %(date)s. Keep this "
              "receipt for any claim.", days=format_number(days),
              date=format_datetime(until, "long_date"))]  # as the receipt's own date
