"""Why an SMS was not sent or did not arrive, in the shop's words.

The delivery job keeps the provider's code and its own English note (``error_code``,
``error_message``: for the API, the logs and whoever reads Twilio's docs). Reception sees the
ticket's SMS list, where "failed 21211" says nothing: ``explain`` says what happened and what
to do about it (check the number with the customer, tell the administrator...).
"""
import re
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..i18n import localize_digits
from . import superseded
from .backends import PANEL_NO_ID
from .delivery import FOUND_NOTE, LATE_NOTE, LOOKUP_FAILED

_CHECK_NUMBER = _l("The number cannot get SMS (wrong, or not a mobile): check it with the "
                   "customer.")
_SETTINGS = _l("The SMS account refused the shop's settings (account, token or sender "
               "number): tell the administrator.")

# Twilio's codes (the send's answer, 2xxxx; a delivery report, 3xxxx).
BY_CODE = {
    "21211": _CHECK_NUMBER, "21612": _CHECK_NUMBER, "21614": _CHECK_NUMBER,
    "21604": _CHECK_NUMBER,
    "21408": _l("The SMS account may not send to this country: the administrator enables it "
                "in the Twilio console."),
    "21610": _l("The customer blocked the shop's SMS (they replied STOP): they get no SMS "
                "now."),
    "20003": _SETTINGS, "20404": _SETTINGS, "21212": _SETTINGS, "21603": _SETTINGS,
    "21606": _SETTINGS, "21611": _SETTINGS,
    "30003": _l("The phone was off or out of reach, and the operator gave up."),
    "30004": _l("The message was blocked: the number does not take messages from this "
                "sender."),
    "30005": _l("The operator does not know this number: check it with the customer."),
    "30006": _l("The number is a landline or its operator cannot be reached: ask the customer "
                "for a mobile number."),
    "30007": _l("The operator filtered the message out (as spam)."),
    "30008": _l("The operator reported an error it did not explain."),
}
# An HTTP SMS panel's answers about the shop's account (backends.PANEL_ACCOUNT_RETRY).
PANEL_KEY = ("401", "403")
PANEL_CREDIT = ("402", "418")
# The number itself cannot get SMS: sent again, it fails again.
NUMBER_CODES = frozenset({"21211", "21604", "21610", "21612", "21614", "30005", "30006"})
_GAVE_UP = re.compile(r"gave up after (\d+) attempts")


def explain(status: str, error_code: Optional[str],
            error_message: Optional[str]) -> Optional[str]:
    """What the shop reads beside an SMS that did not go or did not arrive (None for one on
    its way or delivered, unless it was found at Twilio after its answer was lost): the
    reason, in the current language."""
    code = (error_code or "").strip()
    message = error_message or ""
    if status == "cancelled":
        if "opted out" in message:
            return _("Not sent: the customer asked for no SMS.")
        if "queue number" in message:
            return _("Not sent: by then the queue number had been called, served or passed.")
        if message == superseded.ANSWERED:
            return _("Not sent: the estimate was answered before it went.")
        if message == superseded.REPLACED:
            return _("Not sent: a new estimate replaced it before it went (the customer gets "
                     "that one).")
        if message == superseded.HANDED_BACK:
            return _("Not sent: the device was handed back before it went.")
        return _("Not sent: the ticket had moved on before it was due.")
    if message == FOUND_NOTE and status in ("sent", "delivered"):
        # (one that did not arrive says why, by its code, as any other)
        return _("Twilio's answer was lost, but the message was found at Twilio afterwards: "
                 "it was not sent again.")
    if status == "unknown":
        if message.startswith(LOOKUP_FAILED):
            return _("Twilio did not say whether it took the message, nor could it be asked "
                     "since: it is asked again later, and the message is sent again only if "
                     "Twilio does not have it.")
        if current_app.config.get("SMS_BACKEND") == "twilio":
            return _("Twilio did not say whether it took the message: it is asked before the "
                     "message is sent again, so the customer gets it once.")
        return _("The SMS service did not say whether it took the message: it is sent again "
                 "unless a delivery report comes.")
    if status == "retry":
        if message == LATE_NOTE:
            return _("Late: it waits for the morning, so as not to wake the customer.")
        if code == "20003":
            return _("The SMS account refused the shop's credentials: tell the "
                     "administrator. It is tried again a few times meanwhile.")
        if code in PANEL_KEY:
            return _("The SMS panel refused the shop's key: tell the administrator. It is "
                     "tried again a few times meanwhile.")
        if code in PANEL_CREDIT:
            return _("The SMS panel's credit has run out: top it up. It is tried again a few "
                     "times meanwhile.")
        if code in ("429", "20429", "21611"):
            return _("The SMS service is busy: it is tried again shortly.")
        return _("The SMS service could not be reached: it is tried again shortly.")
    if status not in ("failed", "undelivered"):
        return None
    if code in BY_CODE:
        return str(BY_CODE[code])
    if code in PANEL_KEY:
        return _("The SMS panel refused the shop's key: tell the administrator.")
    if code in PANEL_CREDIT:
        return _("Not sent: the SMS panel's credit had run out.")
    if message.startswith(PANEL_NO_ID):
        return _("The SMS panel did not take the message (its credit, sender line or "
                 "settings?). It answered: %(answer)s", answer=message[len(PANEL_NO_ID) + 2:])
    gave_up = _GAVE_UP.match(message)
    if gave_up:
        attempts = int(gave_up.group(1))
        if "outcome was unknown" in message:
            return _("The SMS service did not confirm it after %(n)s attempts: it may have "
                     "arrived.", n=localize_digits(attempts))
        return _("Not sent after %(n)s attempts: the SMS service could not be reached or "
                 "was busy.", n=localize_digits(attempts))
    if code.isdigit() and len(code) == 3:  # an HTTP SMS panel's answer
        return _("The SMS panel refused the message (%(code)s): tell the administrator.",
                 code=localize_digits(code))
    if status == "undelivered":
        return _("The operator could not deliver it.")
    return _("The SMS service refused the message.")


def worth_sending_again(error_code: Optional[str]) -> bool:
    """Whether an SMS that did not go could go if sent again (not when its number cannot get
    SMS at all)."""
    return (error_code or "").strip() not in NUMBER_CODES


# The notes the SMS report groups failures by (reports.SMS_NOTE), without the attempts counted
# or the panel's own words.
GAVE_UP_GROUP = "gave up after all attempts"
GAVE_UP_UNKNOWN_GROUP = "gave up after all attempts; the last outcome was unknown"


def explain_group(status: str, error_code: Optional[str], note: Optional[str]) -> Optional[str]:
    """What a group of SMS of the report (one status, error code and note) says in the shop's
    words, as ``explain`` says it of one SMS; None for those on their way or delivered."""
    if status in ("failed", "undelivered") and (error_code or "").strip() not in BY_CODE:
        if note == GAVE_UP_UNKNOWN_GROUP:
            return _("The SMS service did not confirm them after every attempt: they may have "
                     "arrived.")
        if note == GAVE_UP_GROUP:
            return _("Not sent after every attempt: the SMS service could not be reached or "
                     "was busy.")
        if note == PANEL_NO_ID:
            return _("The SMS panel did not take the message (its credit, sender line or "
                     "settings?).")
    return explain(status, error_code, note)
