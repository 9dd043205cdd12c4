"""What the printed slips carry: the queue slip, the intake receipt, the shelf label, the
delivery receipt and the till slip. QR codes are inline SVG (qrcode's SvgPathImage: no Pillow),
sized so that each module is a whole number of the printer's dots (:class:`QR`).

Slips are HTML print views for 80 mm thermal paper (72 mm printable) or 58 mm (48 mm); the
receipts and the till slip print on office paper too, an A5 sheet (one copy) or an A4 sheet (a
receipt's shop copy and customer copy, one on each half, a cut line between them). The
templates in templates/print/ lay them out. Nothing here formats for a reader: dates, digits and
money go through the i18n filters in the templates.
"""
from __future__ import annotations

import re
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
# Office paper (width, height in mm) the receipts and the till slip also print on.
SHEETS = {"a5": (148, 210), "a4": (210, 297)}
# On these a receipt prints twice, the shop's copy and the customer's, one on each half.
TWO_COPIES = frozenset({"a4"})
# The slips (audit names) a sheet is offered for; the queue slip and the shelf label come out
# of the thermal printer at the desk (a label on an A5 sheet is a sheet to cut up).
SHEET_SLIPS = frozenset({"receipt", "delivery_receipt", "till"})
# (a paper size's name, as ISO 216 writes it, is not translated: "A4" in Persian too)
PAPER_CHOICES = {"80": _l("80 mm roll"), "58": _l("58 mm roll"),
                 "a5": _l("%(size)s sheet", size="A5"),
                 "a4": _l("%(size)s sheet, two copies", size="A4")}

DEFAULT_RECEIPT_TERMS = (
    _l("Keep this receipt: the device is handed back on it or on its QR code."),
    _l("Back up your data: the shop is not responsible for data lost during the repair."),
    _l("An estimate is sent before any paid work; nothing is charged without your approval."),
    _l("A device not collected within 90 days of the ready notice may be disposed of."),
)


def _paper_code(raw) -> str:
    # (SERVICEDESK_SLIP_PAPER=58 comes as the number 58: the environment's values are JSON)
    return to_ascii_digits(str(raw or "")).strip().lower().removesuffix("mm").strip()


def paper(raw, sheets: bool = True) -> str:
    """The paper a slip prints on: the one asked for (``?paper=58``, any digits; ``a5``,
    ``a4``), else the shop's (its ``slip_paper`` setting), else 80 mm. ``sheets=False`` for a
    slip only the thermal printer prints (the queue slip, the label): a sheet asked for or set
    gives the 80 mm roll."""
    offered = papers(sheets)
    for candidate in (_paper_code(raw), _paper_code(settings.get("slip_paper"))):
        if candidate in offered:
            return candidate
    return DEFAULT_PAPER


def papers(sheets: bool = True) -> tuple[str, ...]:
    """The papers a slip can be printed on: the rolls, and the sheets if ``sheets``."""
    return tuple(PAPERS) + (tuple(SHEETS) if sheets else ())


def is_sheet(code: str) -> bool:
    """Whether ``code`` (a :func:`paper`) is an office sheet rather than a thermal roll."""
    return code in SHEETS


def paper_label(code: str) -> str:
    """A paper as the slip's tools offer it, in the current language: "80 mm", "A5 sheet",
    "A4 sheet, two copies"."""
    if code in SHEETS:
        return str(PAPER_CHOICES[code])
    return _("%(mm)s mm", mm=format_number(int(code)))


def copies(code: str) -> tuple[str, ...]:
    """The copies a receipt prints on the paper ``code``: on A4 the shop's and the
    customer's (``"shop"``, ``"customer"``), one on each half; else one, unlabelled
    (``""``)."""
    return ("shop", "customer") if code in TWO_COPIES else ("",)


# --- QR codes a printer draws sharp ----------------------------------------------------------
# A thermal head prints at 203 dpi (8 dots a mm): a QR code 30 mm wide with 37 modules gave
# each module 6.47 dots, and the printer rounded them to 6 or 7 dots, unevenly: a blurred code
# some phones would not read. Each module is a whole number of dots instead, the code about as
# wide as before. On a sheet, for an office printer's 600 dpi (an even number of dots: whole
# at 300 dpi too).
THERMAL_DPI = 203
SHEET_DPI = 600
# (paper, size) -> the width aimed at (mm), with the quiet zone; the nearest whole dots win
QR_TARGET_MM = {("80", "normal"): 28, ("58", "normal"): 24, ("80", "small"): 20,
                ("58", "small"): 18, ("sheet", "normal"): 25, ("sheet", "small"): 20}
_SVG_SIZE = re.compile(r'^<svg width="[^"]*" height="[^"]*"')
_VIEWBOX = re.compile(r'viewBox="0 0 (\d+) \d+"')


def qr_dots(modules: int, code: str, size: str = "normal") -> tuple[int, int]:
    """(dpi, dots a module) of a QR code ``modules`` wide (with its quiet zone) on the paper
    ``code``: the whole number of dots that comes nearest to the slip's usual width."""
    sheet = is_sheet(code)
    dpi = SHEET_DPI if sheet else THERMAL_DPI
    target = QR_TARGET_MM[("sheet" if sheet else code, size)]
    step = 2 if sheet else 1
    per_module = target / modules * dpi / 25.4
    dots = max(step, int(round(per_module / step)) * step)
    return dpi, dots


@dataclass(frozen=True)
class QR:
    """A QR code to print: its SVG (as :func:`qr_svg` makes it) and its width in modules (the
    quiet zone counted). ``{{ qr }}`` is the bare SVG; ``{{ qr.on(paper) }}`` sizes it for the
    paper."""
    svg: Markup
    modules: int

    def __html__(self) -> str:
        return str(self.svg)

    def on(self, code: str, size: str = "normal") -> Markup:
        """The SVG sized for the paper ``code``: each module a whole number of printer dots
        (``size``: ``"normal"`` or ``"small"``, the queue slip's and the label's)."""
        dpi, dots = qr_dots(self.modules, code, size)
        mm = self.modules * dots * 25.4 / dpi
        return Markup(_SVG_SIZE.sub(
            f'<svg width="{mm:.4f}mm" height="{mm:.4f}mm" data-dpi="{dpi}" '
            f'data-module-dots="{dots}"', str(self.svg), count=1))


def qr_code(data: str) -> QR:
    """The QR code of ``data``, to size for the paper it prints on."""
    svg = qr_svg(data)
    return QR(svg, int(_VIEWBOX.search(str(svg)).group(1)))


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
    qr: QR


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
                     serving, bool(visit.phone), ahead <= visits.near_ahead(), url, qr_code(url))


@dataclass(frozen=True)
class Receipt:
    shop: Shop
    ticket: Ticket
    admitted_at: datetime
    masked_phone: str
    tracking_url: str
    qr: QR
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
                   mask_phone(ticket.customer.phone), url, qr_code(url),
                   _terms("RECEIPT_TERMS", DEFAULT_RECEIPT_TERMS),
                   next((loan for loan in _loans(ticket) if loan.out), None),
                   _signature(ticket, "admit"))


@dataclass(frozen=True)
class Label:
    ticket: Ticket
    admitted_at: datetime
    url: str  # what its QR code opens (links.shelf_url)
    qr: QR


def label(ticket: Ticket) -> Label:
    """The shelf label: number, QR (the ticket's staff page, ``shelf_url``: the desks'
    scanners and the staff's phones open it; never the customer's own link), customer and
    device."""
    url = shelf_url(ticket)
    return Label(ticket, _admitted_at(ticket), url, qr_code(url))


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
    qr: QR
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
        ticket.final_lines(), ticket.amount_due or 0, url, qr_code(url),
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
