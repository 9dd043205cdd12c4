"""Administration data: the admin audit log, shop settings and service types (issue 8)."""
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow


class AuditLog(db.Model):
    """Who did what to which object, when and from where (besides the tickets' own trail).

    ``value_from``/``value_to`` hold the changed fields before and after (never passwords,
    tokens or customers' phone numbers).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    actor_name: Mapped[str] = mapped_column(String(120), default="")
    action: Mapped[str] = mapped_column(String(40))  # e.g. login.ok, user.update
    object_type: Mapped[Optional[str]] = mapped_column(String(40))
    object_id: Mapped[Optional[str]] = mapped_column(String(64))
    value_from: Mapped[Optional[Any]] = mapped_column(JSON)
    value_to: Mapped[Optional[Any]] = mapped_column(JSON)
    ip: Mapped[Optional[str]] = mapped_column(String(45))

    actor = relationship("User")


# The search page filters by action and orders by time.
Index("ix_audit_log_action_at", AuditLog.action, AuditLog.at)


class Setting(db.Model):
    """A shop setting edited on the admin pages; unset keys fall back to app.config."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[Optional[Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServiceType(db.Model):
    """A kind of service offered at intake (repair, warranty, ...), named in both languages."""

    __tablename__ = "service_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_fa: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(default=True)

    def name(self, language: str) -> str:
        return (self.name_fa if language == "fa" else self.name_en) or self.code
