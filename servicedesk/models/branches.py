from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

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
