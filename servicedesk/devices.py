"""Device kinds and accessories, shown in the reader's language.

Kinds: the shop's usual ones are stored as codes. Reception picks "Mobile phone" (or types
«گوشی موبایل»), an integration sends ``phone``: all are stored as ``phone``, so a ticket admitted
in Persian reads right in English and the other way round. A kind that is not one of these is
kept as typed and shown as typed.

Accessories are one text (the API's contract): the items ticked at the desk, in the staff's
language, then whatever was typed. Shown, each ticked item is named in the reader's language,
so an English customer's receipt does not list «شارژر» for a charger; typed items stay as typed.
"""
from __future__ import annotations

import re
from typing import Optional

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l

from .i18n import spelling_key

KINDS = {"phone": _l("Mobile phone"), "tablet": _l("Tablet"), "laptop": _l("Laptop"),
         "watch": _l("Smartwatch")}

ACCESSORIES = {"sim": _l("SIM card"), "memory_card": _l("Memory card"), "case": _l("Case"),
               "charger": _l("Charger"), "cable": _l("Cable"), "box": _l("Box")}

_by_name: dict[tuple, dict[str, str]] = {}


def _in_every_language(labels: dict) -> dict[str, str]:
    """Every one of ``labels``' names in every language (case-folded) -> its code; built once
    for each table (KINDS, ACCESSORIES)."""
    names = _by_name.get(tuple(labels))
    if names is None:
        names = {code: code for code in labels}
        for language in current_app.config["LANGUAGES"]:
            with force_locale(language):
                names.update({str(label).casefold(): code for code, label in labels.items()})
        _by_name[tuple(labels)] = names
    return names


def kind_code(kind: str) -> str:
    """``kind`` as stored: the code of a known kind named in any language, else as typed."""
    return _in_every_language(KINDS).get(" ".join(kind.split()).casefold(), kind)


def kind_label(kind: Optional[str]) -> str:
    """``kind`` in the current language: a known code's name, anything else as stored."""
    if not kind:
        return ""
    label = KINDS.get(kind)
    return str(label) if label is not None else kind


# The brands a phone shop sees most, with the other spellings typed at desks (Persian, mostly).
# Only the maker's name: "iPhone" or "Redmi" typed as the brand stays as typed, since it names
# the model line the device's label needs. A brand not here is kept as typed.
BRANDS = {
    "Samsung": ("سامسونگ", "سامسونک"), "Apple": ("اپل",), "Xiaomi": ("شیائومی", "شیاومی"),
    "Huawei": ("هواوی", "هوآوی"), "Honor": ("آنر", "هانر"), "Nokia": ("نوکیا",),
    "Motorola": ("موتورولا",), "Sony": ("سونی",), "LG": ("ال جی", "الجی"),
    "OnePlus": ("وان پلاس", "One Plus"), "Oppo": ("اوپو",), "Vivo": ("ویوو",),
    "Realme": ("ریلمی",), "Tecno": ("تکنو",), "Infinix": ("اینفینیکس",), "Google": ("گوگل",),
    "Asus": ("ایسوس",), "Lenovo": ("لنوو",), "HTC": ("اچ تی سی",), "GLX": ("جی ال ایکس",),
}
_BRAND_BY_NAME = {spelling_key(name): brand
                  for brand, others in BRANDS.items() for name in (brand, *others)}


def brand_name(typed: str) -> str:
    """A brand as stored: a known one however it was typed ("samsung ", «سامسونگ», «نوكيا»
    from an Arabic keyboard) in one spelling, so reports and the warranty check see one brand;
    another as typed, its spaces tidied."""
    tidy = " ".join(typed.split())
    return _BRAND_BY_NAME.get(spelling_key(tidy), tidy)


def choices() -> list[str]:
    """The known kinds' names in the current language, for the intake form's list."""
    return [str(label) for label in KINDS.values()]


def accessory_choices() -> list[str]:
    """The usual accessories' names in the current language, for the intake form's boxes."""
    return [str(label) for label in ACCESSORIES.values()]


def join_items(items: list[str]) -> str:
    """Items as one line, with the current language's list comma."""
    return ("، " if str(get_locale()) == "fa" else ", ").join(items)


def distinct_items(items: list[str]) -> list[str]:
    """Each item once: a box ticked and the same thing typed again ("قاب" beside the ticked
    Case, "case") is one item; a usual item is compared in every language."""
    seen, out = set(), []
    for item in items:
        tidy = " ".join(item.split())
        key = _in_every_language(ACCESSORIES).get(tidy.casefold(), tidy.casefold())
        if tidy and key not in seen:
            seen.add(key)
            out.append(tidy)
    return out


def accessories_label(text: Optional[str]) -> str:
    """Stored accessories in the current language: each usual item (named in any language)
    in this one, anything typed as typed, with this language's list comma."""
    if not text:
        return ""
    items = [" ".join(part.split()) for part in re.split(r"[،,]", text)]
    named = []
    for item in filter(None, items):
        code = _in_every_language(ACCESSORIES).get(item.casefold())
        named.append(str(ACCESSORIES[code]) if code else item)
    return join_items(named)
