from datetime import date, datetime
from typing import Optional

from sqlalchemy import (JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Text,
                        UniqueConstraint, func)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow


class Ticket(db.Model):
    """A device in the shop's care. Its ``state`` is written only by servicedesk.lifecycle."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    visit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visits.id"), unique=True)
    problem: Mapped[str] = mapped_column(Text)
    accessories: Mapped[str] = mapped_column(Text, default="")
    condition: Mapped[str] = mapped_column(Text, default="")
    service_type: Mapped[str] = mapped_column(String(40), default="repair")
    state: Mapped[str] = mapped_column(String(20), index=True)
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    promised_date: Mapped[Optional[date]]
    # The customer agreed at intake to any estimate up to this amount (rials).
    pre_approved_amount: Mapped[Optional[int]] = mapped_column(BigInteger)
    # Bumped by every quote: an approval is for one version of the estimate.
    estimate_version: Mapped[int] = mapped_column(default=0)
    amount_paid: Mapped[Optional[int]] = mapped_column(BigInteger)
    # Given back after the hand-back, in all (the ``refund`` records of the trail); None: none.
    amount_refunded: Mapped[Optional[int]] = mapped_column(BigInteger)
    # Who brought the device in, when not the customer on file (a family sharing one mobile
    # number); the admit event records it too.
    brought_by: Mapped[Optional[str]] = mapped_column(String(120))
    public_token: Mapped[str] = mapped_column(String(32), unique=True)
    # Who may collect the device (servicedesk.pickup): the short code printed on the intake
    # receipt (None: a ticket from before the codes, or imported); the wrong codes typed at the
    # desk since a manager last confirmed the collector (the desk is locked at MAX_TRIES); the
    # one-time code last texted to the owner (its hash), until when it holds, when it was sent.
    pickup_code: Mapped[Optional[str]] = mapped_column(String(8))
    pickup_tries: Mapped[int] = mapped_column(default=0)
    pickup_otp_hash: Mapped[Optional[str]] = mapped_column(String(64))
    pickup_otp_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    pickup_otp_sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    external_id: Mapped[Optional[str]] = mapped_column(String(80), unique=True)
    # The desk form's own key (or an API client's Idempotency-Key): the same intake sent twice
    # admits the device once (services.tickets.admit).
    intake_key: Mapped[Optional[str]] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Optimistic concurrency: an UPDATE that finds another version raises StaleDataError.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    branch = relationship("Branch")
    customer = relationship("Customer")
    device = relationship("Device")
    visit = relationship("Visit", back_populates="ticket")
    technician = relationship("User")
    events = relationship("TicketEvent", order_by="TicketEvent.seq", back_populates="ticket",
                          lazy="selectin")
    lines = relationship("CostLine", order_by="CostLine.id", back_populates="ticket",
                         lazy="selectin")
    notifications = relationship("Notification", order_by="Notification.id",
                                 back_populates="ticket", lazy="selectin")

    @property
    def above_estimate_agreement(self) -> Optional[str]:
        """How the customer agreed to a bill above the approved estimate ("phone",
        "in_person", or "" when not said), as the finish recorded it; None without one."""
        for event in reversed(self.events):
            if event.event == "finish":
                data = event.data or {}
                return (data.get("above_estimate_channel") or "") \
                    if data.get("above_estimate_agreed") else None
        return None

    def estimate_lines(self) -> list["CostLine"]:
        return [l for l in self.lines
                if l.stage == "estimate" and l.estimate_version == self.estimate_version]

    def final_lines(self) -> list["CostLine"]:
        return [l for l in self.lines if l.stage == "final"]

    @property
    def estimate_total(self) -> Optional[int]:
        lines = self.estimate_lines()
        return sum(l.total for l in lines) if lines else None

    @property
    def final_total(self) -> Optional[int]:
        if not any(e.event == "finish" for e in self.events):
            return None
        return sum(l.total for l in self.final_lines())

    @property
    def unrepaired(self) -> Optional["TicketEvent"]:
        """The decline or return-unrepaired event when the device is going (or went) back
        without a repair; None while it is in the shop's hands or after a repair."""
        if self.state not in ("ready", "delivered", "closed"):
            return None
        for e in reversed(self.events):
            if e.event in ("finish", "decline", "return_unrepaired"):
                return e if e.event != "finish" else None
        return None

    @property
    def amount_due(self) -> Optional[int]:
        """What the customer pays at pickup: the final lines; nothing if declined/unrepaired."""
        return self.final_total if self.final_total is not None else 0


class TicketEvent(db.Model):
    """Append-only audit trail of a ticket. Each row carries the hash of the one before it."""

    __tablename__ = "ticket_events"
    __table_args__ = (UniqueConstraint("ticket_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    seq: Mapped[int]
    event: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[Optional[str]] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor_kind: Mapped[str] = mapped_column(String(12))  # staff, customer, system
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[Optional[str]] = mapped_column(String(45))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    ticket = relationship("Ticket", back_populates="events")
    actor = relationship("User")


class CostLine(db.Model):
    """A line of an estimate (per estimate version) or of the final bill. Money in rials."""

    __tablename__ = "cost_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    stage: Mapped[str] = mapped_column(String(10))  # estimate, final
    estimate_version: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(10))  # part, labour
    description: Mapped[str] = mapped_column(String(200))
    qty: Mapped[int]
    unit_price: Mapped[int] = mapped_column(BigInteger)

    ticket = relationship("Ticket", back_populates="lines")

    @property
    def total(self) -> int:
        return self.qty * self.unit_price


class TicketNote(db.Model):
    """A note on a ticket: internal, or shown to the customer on the tracking page."""

    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    customer_visible: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author = relationship("User")


class TicketSignature(db.Model):
    """The customer's signature drawn on the counter's screen at one moment of the repair
    (servicedesk.signatures): the picture, and the event it was given with, whose data holds
    its SHA-256."""

    __tablename__ = "ticket_signatures"
    __table_args__ = (UniqueConstraint("ticket_id", "moment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    moment: Mapped[str] = mapped_column(String(20))  # intake, delivery
    event_id: Mapped[int] = mapped_column(ForeignKey("ticket_events.id"))
    image: Mapped[bytes] = mapped_column(LargeBinary)  # PNG
    sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Loan(db.Model):
    """A loaner device (a «گوشی امانی») lent to the ticket's customer while theirs is in the
    shop: what it is, its IMEI or serial and its condition as lent; who lent it and when, who
    took it back and when. Out while ``returned_at`` is None; a ticket has at most one out at a
    time (``uq_loans_one_out``). The ``lend_loaner`` and ``return_loaner`` records of the
    ticket's hash-chained trail say the same (lifecycle.verify_records ties them)."""

    __tablename__ = "loans"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    description: Mapped[str] = mapped_column(String(120))  # "Samsung A10, white"
    serial: Mapped[Optional[str]] = mapped_column(String(40))  # IMEI or serial
    condition: Mapped[str] = mapped_column(Text, default="")  # as lent
    lent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lent_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    lent_by_name: Mapped[str] = mapped_column(String(120))
    returned_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    returned_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    returned_by_name: Mapped[Optional[str]] = mapped_column(String(120))
    # The shop's own loaner phone lent (its stock list), or None: typed as free text.
    loaner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("loaners.id"), index=True)
    # As it came back: "fine" or "damaged" (LOANER_CONDITIONS) and what is wrong; None: taken
    # back without saying (the API before the stock list, a hand-back's box).
    return_condition: Mapped[Optional[str]] = mapped_column(String(10))
    return_note: Mapped[Optional[str]] = mapped_column(Text)

    ticket = relationship("Ticket")
    loaner = relationship("Loaner")
    lent_by = relationship("User", foreign_keys=[lent_by_id])
    returned_by = relationship("User", foreign_keys=[returned_by_id])

    @property
    def out(self) -> bool:
        return self.returned_at is None


LOANER_CONDITIONS = ("fine", "damaged")


class Loaner(db.Model):
    """One of a branch's own loaner phones (its stock list): the short label the desk calls it
    by ("A1"), its model, IMEI or serial and notes. Free unless a loan of it is out (``loans``,
    ``uq_loans_loaner_out``); a ``damaged`` one (as it came back) is not lent until the manager
    marks it fine; a retired one stays listed for its past loans. Changes are in the admin
    audit log; each loan is in its ticket's trail."""

    __tablename__ = "loaners"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    label: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(120))
    serial: Mapped[Optional[str]] = mapped_column(String(40))
    notes: Mapped[str] = mapped_column(Text, default="")
    condition: Mapped[str] = mapped_column(String(10), default="fine")
    condition_note: Mapped[str] = mapped_column(Text, default="")
    retired_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch = relationship("Branch")

    @property
    def description(self) -> str:
        """What a loan of it records as lent (the receipt prints it): its label and model."""
        return f"{self.label} ({self.model})"


Index("ix_tickets_state_created", Ticket.state, Ticket.created_at)
# One phone of the stock out at a time, whoever lends it at once (NULL: a free-text loan).
Index("uq_loans_loaner_out", Loan.loaner_id, unique=True,
      sqlite_where=Loan.returned_at.is_(None), postgresql_where=Loan.returned_at.is_(None))
# A label names one phone in use at its branch (a retired one's label may be given again),
# whatever its case: "a1" is "A1", as services/loaners.py checks it.
Index("uq_loaners_label_in_use", Loaner.branch_id, func.lower(Loaner.label), unique=True,
      sqlite_where=Loaner.retired_at.is_(None), postgresql_where=Loaner.retired_at.is_(None))
# One loaner out per ticket at a time, whoever lends at once; and the list of those out.
Index("uq_loans_one_out", Loan.ticket_id, unique=True,
      sqlite_where=Loan.returned_at.is_(None), postgresql_where=Loan.returned_at.is_(None))
Index("uq_tickets_intake_key", Ticket.intake_key, unique=True)
# The repair-queue counts (tracking page, send_to_repair SMS) from the index alone (0006;
# 0007 dropped the one by updated_at when the SMS took the page's rule).
Index("ix_tickets_branch_state_created", Ticket.branch_id, Ticket.state, Ticket.created_at,
      Ticket.id)


class RetiredLink(db.Model):
    """A customer's link (a ticket's ``public_token``) the shop replaced: a forwarded SMS, a
    lost phone, a receipt left behind. Only the token's hash is kept, and not its ticket: the
    old link's page says it was replaced (410) without the table telling anyone which ticket
    it led to, nor the old token itself (services.tickets.replace_link)."""

    __tablename__ = "retired_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
