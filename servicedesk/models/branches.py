from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow


class Branch(db.Model):
    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # Prefix of this branch's ticket numbers, e.g. "A" gives A-00042.
    code: Mapped[str] = mapped_column(String(8), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Counter(db.Model):
    """A named sequence (ticket numbers per branch, queue numbers per branch, day and service).

    Incremented with one INSERT .. ON CONFLICT DO UPDATE .. RETURNING, so two counters issuing at
    the same instant get distinct consecutive values (the row lock serialises them on PostgreSQL).
    """

    __tablename__ = "counters"

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class TillCount(db.Model):
    """The cash drawer counted at a branch's desk (at the close, at a change of shift): what
    was in it, the float kept for change, and the cash the day's hand-backs and refunds say it
    should hold at that moment (kept as counted: later hand-backs do not change a count)."""

    __tablename__ = "till_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    day: Mapped[date]  # the shop's day counted
    counted: Mapped[int] = mapped_column(BigInteger)  # rials in the drawer, the float included
    float_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # change kept in it
    expected: Mapped[int] = mapped_column(BigInteger)  # the day's cash takings (rials) then
    note: Mapped[str] = mapped_column(Text, default="")
    counted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    counted_by_name: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    counted_by = relationship("User")

    @property
    def difference(self) -> int:
        """Over (> 0) or short (< 0): the cash in the drawer beyond the float, against what
        the day's cash hand-backs and refunds say."""
        return self.counted - self.float_amount - self.expected
