"""The customer's signature drawn on the counter's screen (a tablet, a signature pad, a mouse),
at the intake (accepting the receipt's terms) and at the hand-back (received the device): a PNG
kept with the ticket, printed on its slips in place of the blank line, its SHA-256 in the event's
data so the audit chain vouches for the picture (``flask verify-audit`` compares them).

Drawn on paper instead, the slip's line is signed as before, unless the shop's setting
``signature_required`` asks for one on the screen (``required_with``): then the desk may still
say the customer signed the paper slip instead, and why (``PAPER_FIELD``: no tablet that day, a
customer who cannot draw, a browser without scripts), recorded in the event's data so the chain
vouches for who let the screen go and why; the reports count them (reports.signed_on_paper).
"""
import base64
import binascii
import hashlib
import struct
from typing import Optional

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from . import settings
from . import validation as v
from .errors import ValidationError

# The events the customer may sign with, and the moment of the repair each is kept as.
MOMENT_OF = {"admit": "intake", "deliver": "delivery"}
# The shop's setting ``signature_required``: where the desk may not go on without a signature
# drawn on the screen (a shop with a tablet or a signature pad at the counter).
REQUIRED = {"off": _l("No: on the screen or on the paper slip, as the desk chooses"),
            "handback": _l("At the hand-back"),
            "both": _l("At the intake and at the hand-back")}
MAX_BYTES = 200_000  # a signature pad's PNG is 5 to 30 KB
MAX_WIDTH, MAX_HEIGHT = 2400, 1200
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URL = "data:image/png;base64,"
# The paper slip signed instead of the screen: the field (the desk's forms, the API's, the event's
# data) holding why; a short reason, as a manager reads it in a list.
PAPER_FIELD = "signed_on_paper_reason"
PAPER_REASON_MAX = 200


def read(raw) -> Optional[bytes]:
    """The signature sent (a ``data:image/png;base64,`` URL, as a canvas gives it, or the bare
    base64) as PNG bytes; None when none was drawn. ValueError, in the reader's language, for
    anything that is not a PNG picture of a sensible size."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise ValueError(_("A signature is a PNG picture, as a data URL."))
    text = raw.strip()
    if text.startswith("data:"):
        if not text.startswith(DATA_URL):
            raise ValueError(_("A signature is a PNG picture, as a data URL."))
        text = text[len(DATA_URL):]
    if len(text) > MAX_BYTES * 4 // 3 + 4:
        raise ValueError(_("The signature's picture is too large."))
    try:
        png = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(_("A signature is a PNG picture, as a data URL.")) from None
    # the header: the PNG signature, then the IHDR chunk with the width and height
    if len(png) < 33 or not png.startswith(PNG_MAGIC) or png[12:16] != b"IHDR":
        raise ValueError(_("A signature is a PNG picture, as a data URL."))
    width, height = struct.unpack(">II", png[16:24])
    if not (0 < width <= MAX_WIDTH and 0 < height <= MAX_HEIGHT) or len(png) > MAX_BYTES:
        raise ValueError(_("The signature's picture is too large."))
    return png


def required_with(event: str) -> bool:
    """Whether the shop's setting asks for a signature on the screen with ``event`` (admit,
    deliver) fired by staff (the desk's forms and the API's)."""
    rule = settings.get("signature_required")
    return (event == "deliver" and rule in ("handback", "both")) or (
        event == "admit" and rule == "both")


def paper_reason(raw) -> Optional[str]:
    """Why the customer signed the paper slip instead of the screen, stripped; None when the
    paper slip was not chosen (the field absent or null). ValueError, in the reader's language,
    for the choice made without a reason, a reason too long or one with control characters."""
    if raw is None:
        return None
    if isinstance(raw, str) and not raw.strip():
        raise ValueError(_("Say why the customer signed the paper slip instead of the screen."))
    return v.text(raw, max_len=PAPER_REASON_MAX)


def signed_two_ways():
    """The refusal of a signature drawn on the screen sent with the paper slip chosen too: one
    of them is a mistake, and the record would not say which the customer gave."""
    message = _("Either the signature drawn on the screen or the paper slip, not both: clear "
                "the drawing or untick the paper slip.")
    return ValidationError(message, fields={PAPER_FIELD: message})


def missing(event: str):
    """The refusal of ``event`` without the signature the shop's setting asks for."""
    message = (_("The shop asks the customer to sign on the screen at the intake: have them "
                 "sign in the box, or, if the screen cannot be used, tick that they signed the "
                 "paper slip and say why; then admit the device.") if event == "admit" else
               _("The shop asks whoever collects the device to sign on the screen: have them "
                 "sign in the box, or, if the screen cannot be used, tick that they signed the "
                 "paper slip and say why; then hand it back."))
    return ValidationError(message, fields={"signature": message})


def digest(png: bytes) -> str:
    return hashlib.sha256(png).hexdigest()


def data_url(png: bytes) -> str:
    """The picture inline, for a slip (printed without another request) or a page."""
    return DATA_URL + base64.b64encode(png).decode("ascii")
