from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow


class SurveyResponse(db.Model):
    __tablename__ = "survey_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    csat: Mapped[int]  # 1..5
    nps: Mapped[Optional[int]]  # 0..10
    comment: Mapped[str] = mapped_column(Text, default="")
    complaint: Mapped[bool] = mapped_column(default=False)
    followup_status: Mapped[Optional[str]] = mapped_column(String(16))  # open, done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket = relationship("Ticket")
