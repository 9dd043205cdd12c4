from datetime import date, datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow

VISIT_STATUSES = ("waiting", "called", "served", "no_show")


class Visit(db.Model):
    """A queue number taken at the kiosk or reception."""

    __tablename__ = "visits"
    __table_args__ = (UniqueConstraint("branch_id", "day", "service", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service: Mapped[str] = mapped_column(String(20))
    day: Mapped[date]  # the shop's local date: numbers restart each day
    number: Mapped[int]
    label: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    phone: Mapped[Optional[str]] = mapped_column(String(20))  # optional, for queue SMS
    # the kiosk's language when the number was taken: the queue SMS of a customer not on file
    language: Mapped[Optional[str]] = mapped_column(String(5))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    called_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    served_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    counter: Mapped[Optional[str]] = mapped_column(String(20))
    called_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

    branch = relationship("Branch")
    called_by = relationship("User")
    ticket = relationship("Ticket", back_populates="visit", uselist=False)


Index("ix_visits_waiting", Visit.branch_id, Visit.status, Visit.issued_at)
