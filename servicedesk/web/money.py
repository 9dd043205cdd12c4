"""Money as the staff's forms take it: typed in the unit the shop shows money in (the one the
form was drawn in), read into rials before the services see it (they and the API take rials)."""
from typing import Any, Optional

from flask_babel import gettext as _

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
