"""Outbound webhooks: the endpoints an administrator registers (a shop's accounting program, its
own SMS panel) and the outbox of their deliveries, one row per ticket event and endpoint."""
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow

# pending -> sending -> sent ; retry (a network error, 5xx or 429: due at next_attempt_at) ;
# failed (another answer, or the attempts ran out: error says why) ; cancelled (never sent:
# its endpoint was deleted first; error says so).
WEBHOOK_STATUSES = ("pending", "sending", "retry", "sent", "failed", "cancelled")


class WebhookEndpoint(db.Model):
    """A URL that hears about ticket events. ``events`` None: every event. The secret signs each
    delivery (HMAC-SHA256); it must be kept readable to sign, so it is stored as is and shown
    to the administrator once, then only its last characters. A deleted one (``deleted_at``)
    stays, switched off and its secret wiped, for its deliveries' history."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[Optional[Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def hears(self, event: str) -> bool:
        return self.active and self.deleted_at is None and (
            self.events is None or event in self.events)

    @property
    def secret_hint(self) -> str:
        return self.secret[-4:]


class WebhookDelivery(db.Model):
    """One POST promised by a ticket event to one endpoint, written in the event's transaction.
    ``body`` is the JSON sent, fixed when written: every attempt sends the same bytes."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id"), index=True)
    event_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket_events.id"))
    event: Mapped[str] = mapped_column(String(24))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    response_code: Mapped[Optional[int]]
    error: Mapped[Optional[str]] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    endpoint = relationship("WebhookEndpoint")


# The admin page lists an endpoint's latest deliveries; the sweep looks for due ones.
Index("ix_webhook_deliveries_endpoint_id", WebhookDelivery.endpoint_id, WebhookDelivery.id)
Index("ix_webhook_deliveries_status_due", WebhookDelivery.status,
      WebhookDelivery.next_attempt_at)
