"""Device kinds: the shop's usual ones are stored as codes and shown in the reader's language.

Reception picks "Mobile phone" (or types «گوشی موبایل»), an integration sends ``phone``: all are
stored as ``phone``, so a ticket admitted in Persian reads right in English and the other way
round. A kind that is not one of these is kept as typed and shown as typed.
"""
from __future__ import annotations

from typing import Optional

from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

KINDS = {"phone": _l("Mobile phone"), "tablet": _l("Tablet"), "laptop": _l("Laptop"),
         "watch": _l("Smartwatch")}

_by_name: Optional[dict[str, str]] = None


def _names() -> dict[str, str]:
    """Every known kind's name in every language (case-folded) -> its code; built once."""
    global _by_name
    if _by_name is None:
        names = {code: code for code in KINDS}
        for language in current_app.config["LANGUAGES"]:
            with force_locale(language):
                names.update({str(label).casefold(): code for code, label in KINDS.items()})
        _by_name = names
    return _by_name


def kind_code(kind: str) -> str:
    """``kind`` as stored: the code of a known kind named in any language, else as typed."""
    return _names().get(" ".join(kind.split()).casefold(), kind)


def kind_label(kind: Optional[str]) -> str:
    """``kind`` in the current language: a known code's name, anything else as stored."""
    if not kind:
        return ""
    label = KINDS.get(kind)
    return str(label) if label is not None else kind


def choices() -> list[str]:
    """The known kinds' names in the current language, for the intake form's list."""
    return [str(label) for label in KINDS.values()]
