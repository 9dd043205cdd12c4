"""Money as the staff's forms take it: typed in the unit the shop shows money in (the one the
form was drawn in), read into rials before the services see it (they and the API take rials)."""
from typing import Any, Optional

from flask_babel import gettext as _

from .. import lifecycle
from ..errors import ValidationError
from ..i18n import money_from_input
from ..validation import LineError


def read(raw: Any, unit: Optional[str], field: str) -> Any:
    """``raw`` as rials (see ``money_from_input``); a toman amount written wrong is refused
    with the field named."""
    try:
        return money_from_input(raw, unit)
    except ValueError as exc:
        raise ValidationError(_("Some fields are not valid."), fields={field: str(exc)}) \
            from None


def read_lines(lines: list[dict], unit: Optional[str]) -> list[dict]:
    """Cost lines with their unit prices as rials; a price written wrong is refused naming its
    line, as the lifecycle names a bad line (``at``: which line and field)."""
    out = []
    for i, line in enumerate(lines, start=1):
        try:
            out.append({**line, "unit_price": money_from_input(line["unit_price"], unit)})
        except ValueError as exc:
            bad = LineError.of(i, "unit_price", str(exc))
            raise ValidationError(_("Some fields are not valid."), fields={"lines": str(bad)},
                                  at={"lines": bad.where()}) from None
    return out


SPLIT = "split"  # the hand-back's "split the payment" choice, beside the methods


def payment_parts(form) -> list[dict]:
    """A split payment's parts as typed in a hand-back form (``part_cash``...: the delivery
    desk's, and one posted from the ticket page): each method with an amount, in the shop's
    money unit read into rials; a method left blank or at 0 took no part."""
    parts = []
    for code in lifecycle.PAYMENT_METHODS:
        typed = (form.get(f"part_{code}") or "").strip()
        if typed:
            amount = read(typed, form.get("money_unit"), f"part_{code}")
            if amount not in (0, "0"):  # a text the lifecycle refuses, naming the part
                parts.append({"method": code, "amount": amount})
    return parts
