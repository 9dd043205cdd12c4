import re
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow

# pending -> sending -> sent -> delivered | undelivered ; failed (permanent) ; retry (transient,
# due at next_attempt_at) ; unknown (timed out after the request left: may have been accepted);
# cancelled (never sent: the customer opted out meanwhile, a queue number moved on, or it asked
# for what was done before it went: notifications/superseded.py; error_message says which).
NOTIFICATION_STATUSES = ("pending", "sending", "retry", "sent", "delivered", "undelivered",
                         "failed", "unknown", "cancelled")


class Notification(db.Model):
    """The outbox: one SMS promised by an event, written in the event's transaction."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id"), index=True)
    visit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("visits.id"), index=True)
    event_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket_events.id"))
    event: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(10), default="sms")
    to: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5))
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(6))
    segments: Mapped[int]
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    provider_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    error_code: Mapped[Optional[str]] = mapped_column(String(20))
    error_message: Mapped[Optional[str]] = mapped_column(String(255))
    # One message per (ticket event, kind): a double click or a re-run never sends twice.
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    send_after: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # When the attempt whose outcome is not known began (its answer lost, or its sender
    # stopped mid-send): the next send first asks Twilio whether a message went since then.
    unknown_since: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    ticket = relationship("Ticket", back_populates="notifications")

    # SMS whose text holds a secret for the customer alone (the one-time code to collect a
    # device): staff read it with its digits hidden, else the desk could read the code off the
    # ticket's page instead of asking the collector for it.
    SECRET_EVENTS = frozenset({"collector_code_sent"})

    @property
    def shown_body(self) -> str:
        """The text as the staff's pages and the API show it."""
        if self.event not in self.SECRET_EVENTS:
            return self.body
        return _DIGIT_RUN.sub(lambda m: "•" * len(m.group()), self.body)


# six digits alone (not a ticket number's, after its branch code's dash)
_DIGIT_RUN = re.compile(r"(?<![0-9۰-۹٠-٩\-])[0-9۰-۹٠-٩]{6}(?![0-9۰-۹٠-٩])")
Index("ix_notifications_status_due", Notification.status, Notification.next_attempt_at)


class SmsTemplate(db.Model):
    """A manager-editable SMS text per event and language."""

    __tablename__ = "sms_templates"
    __table_args__ = (UniqueConstraint("event", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(24))
    language: Mapped[str] = mapped_column(String(5))
    body: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
