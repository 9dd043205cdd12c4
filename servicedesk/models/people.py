import secrets
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._types import UTCDateTime, utcnow

# "kiosk" is a device's account, not a person's: the waiting room's tablet (take a number)
# and wall screen (now serving) of its branch, and nothing else (auth.PERMISSIONS).
ROLES = ("reception", "technician", "manager", "admin", "kiosk")
# Roles an API token is never issued to: staff pages take tokens too, so an administrator's
# would open every page, and a kiosk has no use for one (the API refuses it everything).
NO_TOKEN_ROLES = frozenset({"admin", "kiosk"})


class User(db.Model):
    """A staff account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(16))
    branch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("branches.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    language: Mapped[Optional[str]] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(default=True)
    # Flask-Login's alternative id: rotated on logout-everywhere, password change, deactivation,
    # so copies of an old session cookie stop working.
    session_token: Mapped[str] = mapped_column(String(64), unique=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    # Wrong passwords from the account's own browsers (a device cookie): counted apart, so a
    # stranger's cannot lock those browsers out, and theirs cannot guess without limit.
    device_failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The password is one another person set (an administrator or manager created the account
    # or reset it): the staff pages ask for one of their own first.
    password_change_due: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch = relationship("Branch")

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return self.session_token

    def end_sessions(self) -> None:
        """A new session token: every session and remember-me cookie issued so far stops
        working (the caller commits)."""
        self.session_token = secrets.token_hex(32)

    @property
    def display_name(self) -> str:
        return self.full_name or self.username


class ApiToken(db.Model):
    """An API token; only its SHA-256 is stored (the token itself is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # None: never expires (tokens issued before expiry existed); else refused from then on.
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    user = relationship("User")

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``, and its user still active."""
        return (self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
                and self.user.active)


class Customer(db.Model):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164
    language: Mapped[str] = mapped_column(String(5), default="fa")
    sms_opt_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Who stopped the SMS (None while they are sent): "staff" (the customer asked the desk),
    # "link" (they pressed the button on their page), "stop" (Twilio 21610: the number's owner
    # replied STOP, who may not be the customer: a corrected number lifts it). None with
    # sms_opt_out: not known (the demo's customers). The audit log's customer.sms rows record
    # each switch; this is what the rules read (verify-audit ties the two).
    opted_out_by: Mapped[Optional[str]] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(db.Model):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    brand: Mapped[str] = mapped_column(String(60))
    model: Mapped[str] = mapped_column(String(80))
    serial: Mapped[Optional[str]] = mapped_column(String(40), index=True)  # IMEI or serial
    colour: Mapped[Optional[str]] = mapped_column(String(40))

    customer = relationship("Customer")

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.brand, self.model) if p)
