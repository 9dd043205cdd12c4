"""Who collects a device: the hand-back's check of the collector.

Shops hand phones to the wrong person (a stranger with the customer's name, a relative the owner
did not send). A ticket gets a short pickup code at intake, printed on its receipt (and in the
"ready" SMS when the shop's text has ``{pickup_code}``). With the shop's ``handback_check``
setting at ``required`` the desk confirms the collector before the hand-back by one of:

- ``code``: the pickup code, typed (or scanned) from the receipt;
- ``sms_code``: a one-time code texted to the owner's mobile at the desk's request, through the
  outbox like every SMS (one a minute at most, it holds ``OTP_MINUTES``);
- ``override``: a manager's ``collector_override`` record with a written reason (an ID card
  seen, the receipt lost), which the next hand-back names.

The ``deliver`` event records which (``collector_check``). A wrong code changes nothing but the
count of wrong tries, itself recorded (``collector_refused``); at ``MAX_TRIES`` the codes are
locked until a manager's override. With the setting ``off`` (the default) a hand-back needs
none, but a code typed is still checked: a wrong one is never let through.

The pickup code is stored as it is printed, not hashed: the intake receipt is reprinted (a
printer jam, the 58 mm paper) and the "ready" SMS, days later, carries it, and a hash could give
neither; a six-digit hash would anyway fall to anyone who read it (a million tries). The code
keeps strangers at the counter out; the staff, who may hand back anyway, are kept honest by the
audit trail. The texted one-time code, which nobody needs to read again, is kept as an HMAC only.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from . import settings
from .errors import ValidationError
from .i18n import format_number, to_ascii_digits
from .lifecycle import COLLECTOR_OVERRIDE_ROLES, Actor
from .models import Ticket, TicketEvent, utcnow

CODE_LENGTH = 6
MAX_TRIES = 5  # wrong codes (either kind) before a manager must confirm the collector
OTP_MINUTES = 10
OTP_RESEND_SECONDS = 60
OVERRIDE_ROLES = COLLECTOR_OVERRIDE_ROLES  # who confirms the collector without a code
CHECKS = {"off": _l("Off: the desk hands back without a check"),
          "required": _l("Required: a pickup code, a code texted to the owner, or a manager")}
METHODS = {"code": _l("the pickup code on the receipt"),
           "sms_code": _l("a code texted to the owner's mobile"),
           "override": _l("a manager's confirmation")}


class WrongCode(ValidationError):
    """A pickup code or texted code that is not the ticket's: refused, and counted (after the
    rollback, in its own commit: services.tickets.committing)."""

    def __init__(self, message: str, field: str, method: str, ticket_id: int, actor: Actor):
        super().__init__(message, fields={field: message})
        self.method, self.ticket_id, self.actor = method, ticket_id, actor


def new_code() -> str:
    """A random pickup code of ``CODE_LENGTH`` digits."""
    return f"{secrets.randbelow(10 ** CODE_LENGTH):0{CODE_LENGTH}d}"


def required() -> bool:
    """Whether the shop requires the collector confirmed at the hand-back."""
    return settings.get("handback_check") == "required"


def locked(ticket: Ticket) -> bool:
    return (ticket.pickup_tries or 0) >= MAX_TRIES


def tries_left(ticket: Ticket) -> int:
    return max(MAX_TRIES - (ticket.pickup_tries or 0), 0)


def otp_hash(ticket: Ticket, code: str) -> str:
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, f"{ticket.id}:{code}".encode(), hashlib.sha256).hexdigest()


def since_ready(ticket: Ticket) -> list[TicketEvent]:
    """The ticket's records since it last changed state (its wait at the desk)."""
    rows = []
    for row in reversed(ticket.events):
        if row.from_state != row.to_state:
            break
        rows.append(row)
    return rows[::-1]


def override_of(ticket: Ticket) -> Optional[TicketEvent]:
    """The manager's ``collector_override`` of this wait at the desk, if any."""
    return next((r for r in reversed(since_ready(ticket)) if r.event == "collector_override"),
                None)


def _typed(raw) -> Optional[str]:
    """A code as typed or scanned: any digits, spaces and dashes dropped; None when empty."""
    if raw is None:
        return None
    text = to_ascii_digits(str(raw)).replace(" ", "").replace("-", "").strip()
    return text or None


def _wrong(ticket: Ticket, actor: Actor, field: str, method: str, what: str) -> WrongCode:
    left = tries_left(ticket) - 1
    if left <= 0:
        message = _("%(what)s That was the last try: the codes are locked, and only a manager "
                    "can confirm who collects the device.", what=what)
    else:
        message = what + " " + ngettext(
            "%(count)s try is left before the codes are locked.",
            "%(count)s tries are left before the codes are locked.", left,
            count=format_number(left))
    return WrongCode(message, field, method, ticket.id, actor)


def confirm(ticket: Ticket, actor: Actor, data: dict) -> dict:
    """The hand-back's ``data`` with ``pickup_code`` and ``sms_code`` checked and taken out and
    ``collector_check`` in their place (how the collector was confirmed), or unchanged when
    nothing confirms it and the shop does not require it. Raises ValidationError (a
    ``WrongCode`` for a wrong code) and changes nothing."""
    data = dict(data)
    code, sms = _typed(data.pop("pickup_code", None)), _typed(data.pop("sms_code", None))
    data.pop("collector_check", None)  # the desk's and the API's word is not taken for it
    override = override_of(ticket)
    if (code or sms) and locked(ticket):
        raise ValidationError(
            _("Too many wrong codes: they are locked. A manager must confirm who collects "
              "the device."), fields={"pickup_code" if code else "sms_code": _("Locked.")})
    if code:
        if not ticket.pickup_code:
            raise ValidationError(_("This ticket has no pickup code (it was received before "
                                    "the codes): text a code to the owner, or ask a manager."),
                                  fields={"pickup_code": _("This ticket has no pickup code.")})
        if not hmac.compare_digest(code, ticket.pickup_code):
            raise _wrong(ticket, actor, "pickup_code", "code",
                         _("The pickup code is wrong: it is not the one on this ticket's "
                           "receipt."))
        data["collector_check"] = {"method": "code"}
    elif sms:
        if not ticket.pickup_otp_hash:
            raise ValidationError(_("No code was texted for this ticket: send one first."),
                                  fields={"sms_code": _("No code was texted.")})
        if ticket.pickup_otp_expires_at is None or ticket.pickup_otp_expires_at < utcnow():
            raise ValidationError(_("The texted code has expired: send a new one."),
                                  fields={"sms_code": _("Expired.")})
        if not hmac.compare_digest(otp_hash(ticket, sms), ticket.pickup_otp_hash):
            raise _wrong(ticket, actor, "sms_code", "sms_code",
                         _("The texted code is wrong: it is not the last one sent to the "
                           "owner's mobile."))
        data["collector_check"] = {"method": "sms_code"}
    elif override is not None:
        data["collector_check"] = {"method": "override",
                                   "reason": (override.data or {}).get("reason"),
                                   "by": override.actor_name}
    elif required():
        message = _("Confirm who collects the device: type the pickup code from the receipt, "
                    "text a code to the owner's mobile, or ask a manager.")
        if locked(ticket):
            message = _("Too many wrong codes: they are locked. A manager must confirm who "
                        "collects the device.")
        raise ValidationError(message, fields={"pickup_code": message})
    return data


def otp_window_open(ticket: Ticket) -> Optional[int]:
    """Seconds to wait before another code may be texted, or None when one may be now."""
    sent = ticket.pickup_otp_sent_at
    if sent is None:
        return None
    wait = (sent + timedelta(seconds=OTP_RESEND_SECONDS) - utcnow()).total_seconds()
    return int(wait) + 1 if wait > 0 else None
