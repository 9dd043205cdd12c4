"""Locale-aware formatting helpers: digits, money, Jalali dates, parsing and SMS segments.

Babel never prints Persian digits and has no Jalali calendar, so this module is the one
place that turns stored values (integer rials, UTC datetimes, ASCII digits) into what a
Persian or English reader expects, and turns what staff type (in any digit script) back
into stored values.

Rules:

- Money is stored as integer rials and shown in toman (rials / 10) or rial, with a
  translated unit word after the number.
- Datetimes are stored in UTC (naive means UTC) and shown in the shop time zone
  (``SERVICEDESK_TIMEZONE``, default Asia/Tehran).
- Persian output uses jdatetime with a per-object ``locale="fa_IR"``; never
  ``jdatetime.set_locale()``, which is thread-local and sticks to recycled threads.
- Never localize digits in URLs, QR payloads, ticket codes or ``tel:`` links.
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
import unicodedata
from typing import Any, Callable, NamedTuple
from zoneinfo import ZoneInfo

import jdatetime
from babel.dates import format_date as _babel_format_date
from flask import Flask, current_app, g, has_app_context
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from markupsafe import Markup

__all__ = [
    "FA_DIGITS",
    "ARABIC_DIGITS",
    "to_ascii_digits",
    "localize_digits",
    "current_language",
    "text_direction",
    "shop_timezone",
    "format_datetime",
    "format_money",
    "money_display",
    "money_unit_word",
    "money_input",
    "money_from_input",
    "strip_grouping",
    "format_number",
    "format_decimal",
    "format_percent",
    "parse_date",
    "parse_int",
    "SmsSegments",
    "segments",
    "init_app",
]

FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
"""Extended Arabic-Indic (Persian) digits, U+06F0..U+06F9, in order 0-9."""
ARABIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
"""Arabic-Indic digits, U+0660..U+0669, in order 0-9 (Arabic keyboards, some phones)."""

_TO_FA = str.maketrans("0123456789", FA_DIGITS)
_TO_ASCII = str.maketrans(FA_DIGITS + ARABIC_DIGITS, "0123456789" * 2)

FA_THOUSANDS_SEP = "\u066c"  # ARABIC THOUSANDS SEPARATOR "٬"
FA_COMMA = "\u060c"  # ARABIC COMMA "،"
FA_DECIMAL_SEP = "\u066b"  # ARABIC DECIMAL SEPARATOR "٫"
FA_PERCENT = "\u066a"  # ARABIC PERCENT SIGN "٪"

DEFAULT_LANGUAGE = "fa"
DEFAULT_TIMEZONE = "Asia/Tehran"
MONEY_UNITS = ("toman", "rial")
DATETIME_STYLES = ("datetime", "date", "time", "long", "long_date")

# Unit words shown after amounts. Extracted with `-k _l`; the fa catalog translates them.
_UNIT_WORDS = {"toman": _l("toman"), "rial": _l("rial")}
# Used only while the fa catalog lacks the unit words (fresh checkout, .mo not compiled).
_FA_UNIT_FALLBACK = {"toman": "تومان", "rial": "ریال"}

# Characters parse_int() skips: group separators, whitespace handled separately, bidi marks
# that Babel and copy/paste leave around numbers.
_INT_IGNORED = {",", FA_THOUSANDS_SEP, "\u200e", "\u200f", "\u200c", "\u061c"}
_MINUS_SIGNS = {"-", "\u2212"}  # hyphen-minus, MINUS SIGN
_DATE_RE = re.compile(r"^(\d{4})([-/])(\d{1,2})\2(\d{1,2})$")
_JALALI_YEAR_LIMIT = 1700


# ---------------------------------------------------------------- digits and language


def to_ascii_digits(s: Any) -> str:
    """Return ``s`` with Persian (۰-۹) and Arabic-Indic (٠-٩) digits replaced by ASCII 0-9.

    Every other character is kept as it is (separators included). ``None`` gives ``""``;
    other objects are ``str()``-ed. Use it to normalise typed codes and phone numbers
    before storing or looking them up.
    """
    if s is None:
        return ""
    return str(s).translate(_TO_ASCII)


def _language_of(locale: Any) -> str:
    """Map a locale (``Locale``, ``"fa_IR"``, ``"en-US"``, ...) to ``"fa"`` or ``"en"``."""
    if locale is None:
        return current_language()
    lang = getattr(locale, "language", None) or str(locale)
    lang = lang.replace("-", "_").split("_", 1)[0].lower()
    return "fa" if lang == "fa" else "en"


def current_language() -> str:
    """Return ``"fa"`` or ``"en"`` for the current Flask-Babel locale.

    Falls back to the ``SERVICEDESK_LOCALE`` config value when there is no app context
    or Babel is not set up on the app, and to ``"fa"`` after that.
    """
    locale = None
    if has_app_context() and "babel" in current_app.extensions:
        locale = get_locale()
    if locale is None:
        configured = _config("SERVICEDESK_LOCALE", DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE
        return _language_of(configured)
    return _language_of(locale)


def text_direction(locale: Any = None) -> str:
    """Return ``"rtl"`` for Persian and ``"ltr"`` otherwise."""
    return "rtl" if _language_of(locale) == "fa" else "ltr"


def localize_digits(s: Any, locale: Any = None) -> str:
    """Return ``str(s)`` with ASCII digits turned into Persian digits when the locale is fa.

    ``locale`` defaults to the current Flask-Babel locale; for any non-fa locale the text
    is returned unchanged. ``None`` gives ``""``.
    """
    if s is None:
        return ""
    text = str(s)
    if _language_of(locale) == "fa":
        return text.translate(_TO_FA)
    return text


def _config(key: str, default: Any) -> Any:
    """Read an app config value, or ``default`` outside an app context."""
    if has_app_context():
        return current_app.config.get(key, default)
    return default


# ---------------------------------------------------------------- dates


def shop_timezone() -> ZoneInfo:
    """Return the shop's time zone from ``SERVICEDESK_TIMEZONE`` (default Asia/Tehran)."""
    return ZoneInfo(_config("SERVICEDESK_TIMEZONE", DEFAULT_TIMEZONE) or DEFAULT_TIMEZONE)


def to_shop_time(value: _dt.datetime) -> _dt.datetime:
    """Convert a datetime (naive means UTC) to an aware datetime in the shop time zone."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(shop_timezone())


def format_datetime(value: _dt.datetime | _dt.date | None, style: str = "datetime",
                    locale: Any = None) -> str:
    """Format a datetime or date for display in the shop time zone.

    ``value`` is a ``datetime`` (naive means UTC; aware ones are converted) or a ``date``
    (shown as is). ``locale`` defaults to the current locale. Styles, fa / en:

    - ``"datetime"``: ``۱۴۰۵/۰۹/۰۱ ۱۴:۰۵`` / ``2026-11-22 14:05``
    - ``"date"``: ``۱۴۰۵/۰۹/۰۱`` / ``2026-11-22``
    - ``"time"``: ``۱۴:۰۵`` / ``14:05``
    - ``"long"``: ``۱ آذر ۱۴۰۵، ۱۴:۰۵`` / ``22 Nov 2026, 14:05``
    - ``"long_date"``: ``۱ آذر ۱۴۰۵`` / ``22 Nov 2026``

    fa uses the Jalali calendar with Persian month names and digits; en uses the
    Gregorian calendar. A plain ``date`` with ``"datetime"``/``"long"`` is shown as
    ``"date"``/``"long_date"``; ``"time"`` needs a datetime. ``None`` gives ``""``.

    Raises ``ValueError`` for an unknown style or ``"time"`` on a date, ``TypeError`` for
    a value that is neither a date nor a datetime.
    """
    if value is None:
        return ""
    if style not in DATETIME_STYLES:
        raise ValueError(f"unknown datetime style {style!r}; use one of {DATETIME_STYLES}")
    if isinstance(value, _dt.datetime):
        local: _dt.datetime | None = to_shop_time(value)
        day = local.date()
    elif isinstance(value, _dt.date):
        local = None
        day = value
        if style == "time":
            raise ValueError("style 'time' needs a datetime, not a date")
        style = {"datetime": "date", "long": "long_date"}.get(style, style)
    else:
        raise TypeError(f"expected a date or datetime, got {type(value).__name__}")

    clock = f"{local.hour:02d}:{local.minute:02d}" if local is not None else ""

    if _language_of(locale) == "fa":
        jday = jdatetime.date.fromgregorian(date=day, locale="fa_IR")
        if style == "time":
            text = clock
        elif style in ("date", "datetime"):
            text = f"{jday.year:04d}/{jday.month:02d}/{jday.day:02d}"
            if style == "datetime":
                text = f"{text} {clock}"
        else:  # long, long_date
            text = f"{jday.day} {jday.strftime('%B')} {jday.year}"
            if style == "long":
                text = f"{text}{FA_COMMA} {clock}"
        return text.translate(_TO_FA)

    if style == "time":
        return clock
    if style in ("date", "datetime"):
        text = day.isoformat()
        return f"{text} {clock}" if style == "datetime" else text
    text = _babel_format_date(day, "d MMM y", locale="en")
    return f"{text}, {clock}" if style == "long" else text


def parse_date(text: str) -> _dt.date:
    """Parse ``YYYY-MM-DD`` or ``YYYY/MM/DD`` typed in ASCII, Persian or Arabic digits.

    A year below 1700 is read as Jalali (``۱۴۰۵/۰۹/۰۱`` gives ``date(2026, 11, 22)``),
    anything else as Gregorian. Surrounding whitespace is ignored; month and day may have
    one or two digits. Returns a Gregorian ``datetime.date``.

    Raises ``ValueError`` with a translated message on malformed or impossible dates.
    """
    raw = "" if text is None else str(text)
    match = _DATE_RE.match(to_ascii_digits(raw).strip())
    if match is None:
        # the example in the calendar the page shows dates in: Jalali in Persian
        raise ValueError(_("Enter a date as YYYY/MM/DD, for example %(example)s.",
                           example=localize_digits("1405/09/01") if current_language() == "fa"
                           else "2026/11/22"))
    year, month, day = int(match.group(1)), int(match.group(3)), int(match.group(4))
    try:
        if year < _JALALI_YEAR_LIMIT:
            return jdatetime.date(year, month, day).togregorian()
        return _dt.date(year, month, day)
    except ValueError:
        raise ValueError(_("%(date)s is not a valid date.",
                           date=localize_digits(raw.strip()))) from None


# ---------------------------------------------------------------- spellings

# Arabic letter forms typed for Persian ones, and marks that do not change a word.
_SAME_SPELLING = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "\u200c": " ",
                                "\u0640": None, "\u200d": None, "\u200e": None,
                                "\u200f": None, "\u061c": None, "\u202a": None,
                                "\u202b": None, "\u202c": None, "\u2066": None,
                                "\u2067": None, "\u2069": None})


def spelling_key(text: str) -> str:
    """``text`` with what two spellings of one word differ in set aside: case, spaces, the
    half-space, the kashida, vowel marks, presentation forms, direction marks and Arabic letter
    forms (ي ى/ی, ك/ک). Two names, or a brand typed two ways, compare equal by it."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = unicodedata.normalize("NFKC", text).translate(_SAME_SPELLING)
    return " ".join(text.casefold().split())


# ---------------------------------------------------------------- numbers and money


def _group(n: int, lang: str) -> str:
    """Group an integer by thousands; fa uses "٬" and Persian digits."""
    text = f"{n:,}"
    if lang == "fa":
        return text.replace(",", FA_THOUSANDS_SEP).translate(_TO_FA)
    return text


def format_number(n: Any, locale: Any = None) -> str:
    """Format a whole number grouped by thousands: ``۱٬۲۵۰٬۰۰۰`` (fa) / ``1,250,000`` (en).

    Accepts ints and integral floats/Decimals (others are rounded half to even) and
    ``None`` (gives ``""``). ``locale`` defaults to the current locale.
    """
    if n is None:
        return ""
    if not isinstance(n, int):
        n = round(n)
    return _group(int(n), _language_of(locale))


def format_decimal(value: Any, places: int = 1, locale: Any = None) -> str:
    """A number with ``places`` decimal digits, grouped: ``۱٬۲۳۴٫۵`` (fa, with the Persian
    decimal separator, never a Latin point among Persian digits) / ``1,234.5`` (en).
    ``None`` gives ``""``."""
    if value is None:
        return ""
    lang = _language_of(locale)
    whole, _point, fraction = f"{abs(value):.{places}f}".partition(".")
    return ("-" if value < 0 else "") + _with_fraction(_group(int(whole), lang), fraction, lang)


def _with_fraction(number: str, fraction: str, lang: str) -> str:
    """A grouped whole ``number`` and its ``fraction`` digits, with the language's decimal
    separator (fa: ``٫`` and Persian digits; never a Latin point among Persian digits)."""
    if not fraction:
        return number
    if lang == "fa":
        return number + FA_DECIMAL_SEP + fraction.translate(_TO_FA)
    return number + "." + fraction


def format_percent(ratio: Any, places: int = 1, locale: Any = None) -> str:
    """A ratio as a percentage: 0.75 is ``۷۵٫۰٪`` (fa, the Persian percent sign after the
    number) / ``75.0%`` (en). ``None`` gives ``""``."""
    if ratio is None:
        return ""
    lang = _language_of(locale)
    return format_decimal(ratio * 100, places, lang) + (FA_PERCENT if lang == "fa" else "%")


def _unit_word(unit: str, lang: str) -> str:
    """The translated unit word in ``lang``, with a built-in Persian fallback."""
    if lang == current_language():
        word = str(_UNIT_WORDS[unit])
    else:
        with force_locale(lang):
            word = str(_UNIT_WORDS[unit])
    if lang == "fa" and word == unit:  # fa catalog missing or not compiled yet
        return _FA_UNIT_FALLBACK[unit]
    return word


def money_display() -> str:
    """``"toman"`` or ``"rial"``: the shop's choice on the admin settings page
    (``settings.get("money_display")``: in a request, in a job or a command alike; an SMS a
    reminder writes from the clock shows money as the shop's others do), else config
    ``MONEY_DISPLAY``, else toman."""
    unit = None
    if has_app_context() and "sqlalchemy" in current_app.extensions:
        from servicedesk import settings  # the app's settings table (absent in bare apps)
        unit = settings.get("money_display")
    if unit is None:
        unit = _config("MONEY_DISPLAY", "toman")
    return unit if unit in MONEY_UNITS else "toman"


def format_money(rials: int | None, locale: Any = None, unit: str | None = None,
                 with_unit: bool = True) -> str:
    """Format an amount stored in integer rials, with the unit word after the number.

    ``unit`` is ``"toman"`` or ``"rial"`` (default: :func:`money_display`).
    Toman is rials / 10; an amount that is not a whole number of toman keeps its rials as one
    decimal digit (``۱۲۳٬۴۵۶٫۵ تومان``), so nothing is rounded away and one screen never mixes
    toman and rial. fa: ``۱٬۲۵۰٬۰۰۰ تومان``; en: ``1,250,000 toman``. Negative amounts get a
    leading ``-``. ``None`` gives ``""``. ``with_unit=False`` leaves the unit word out (a table
    whose column header names the unit).
    """
    if rials is None:
        return ""
    if unit is None:
        unit = money_display()
    if unit not in MONEY_UNITS:
        raise ValueError(f"unknown money unit {unit!r}; use one of {MONEY_UNITS}")
    if isinstance(rials, bool) or not isinstance(rials, int):
        if not float(rials).is_integer():
            raise ValueError(f"money must be a whole number of rials, got {rials!r}")
        rials = int(rials)
    lang = _language_of(locale)
    sign = "-" if rials < 0 else ""
    if unit == "rial":
        number = sign + _group(abs(rials), lang)
    else:
        sign, whole, rest = _tomans(rials)
        number = sign + _with_fraction(_group(whole, lang), str(rest) if rest else "", lang)
    return f"{number} {_unit_word(unit, lang)}" if with_unit else number


def money_cell(rials: int | None, locale: Any = None, unit: str | None = None) -> Markup:
    """An amount as a printed slip's amount column shows it: :func:`format_money`, except that
    in a right-to-left language a negative figure is isolated left to right
    (``<bdi dir="ltr">-۷۵۰٬۰۰۰</bdi> تومان``). Unisolated, the bidi algorithm sets the minus
    sign of ``-۷۵۰٬۰۰۰ تومان`` on the figure's right, where it pushes the units digit out of
    the column the other amounts' units stand in, and reads as a trailing dash."""
    if rials is None:
        return Markup("")
    if rials >= 0 or text_direction(locale) != "rtl":
        return Markup.escape(format_money(rials, locale, unit))
    figure = format_money(rials, locale, unit, with_unit=False)
    word = format_money(0, locale, unit).split(" ", 1)[1]
    return Markup('<bdi dir="ltr">{}</bdi> {}').format(figure, word)


def use_rials_in_messages() -> None:
    """For the rest of the request (or command): amounts in the messages it gets back are in
    rials, as it types them. The API and the history import take money in rials; an error
    saying "at most 1,100,000 toman" to a client that sends rials reads as a tenth of what is
    meant."""
    g.money_typed_in = "rial"


def format_money_as_typed(rials: int | None, locale: Any = None) -> str:
    """An amount in a message that answers what was typed (an error, a refusal): in the unit
    the reader types money in, rials for the API and the import (``use_rials_in_messages``),
    else the shop's display unit (the staff's pages and forms)."""
    unit = g.get("money_typed_in") if has_app_context() else None
    return format_money(rials, locale=locale, unit=unit)


def tel_uri(phone: Any) -> str:
    """A phone number as typed in the shop's settings (any digits, spaces, dashes) as a
    ``tel:`` link a dialer understands: ASCII digits and a leading +."""
    digits = re.sub(r"[^0-9+]", "", to_ascii_digits(str(phone or "")))
    return "tel:" + digits[:1] + digits[1:].replace("+", "")


def money_unit_word() -> str:
    """The word of the unit money is shown (and typed) in, in the current language."""
    return _unit_word(money_display(), current_language())


# "12500", "12,500.5" (toman: one decimal digit is a whole number of rials; "12500.50" too,
# but not "12.500": a thousands separator typed as the decimal one, which sits beside it)
_MONEY_TYPED = re.compile(r"(\d+)(?:\.(\d)0?)?")
_DECIMAL = re.compile(r"\d+(?:[./]\d+)+")  # dots or slashes typed between thousands


def money_input(rials: Any, unit: str | None = None, locale: Any = None) -> str:
    """An amount stored in rials as a money field shows it for editing: in the unit the shop
    shows money in (:func:`money_display`), grouped in the page's digits as it is shown
    everywhere else (``۱٬۲۵۰٬۰۰۰``: a cashier comparing ``1250000`` with a card slip misses a
    zero), without the unit word (the label has it). A toman amount with rials left over keeps
    them as one decimal (``۱۲٬۵۰۰٫۵``), so nothing is rounded away. It reads back as typed
    (:func:`money_from_input`). Text (what was typed into a form that comes back) is returned
    as it is; ``None`` gives ``""``."""
    if rials is None:
        return ""
    if isinstance(rials, str):
        return rials
    return format_money(rials, locale, unit, with_unit=False)


def _tomans(rials: int) -> tuple[str, int, int]:
    """(sign, whole toman, rials left over) of an amount in rials."""
    whole, rest = divmod(abs(rials), 10)
    return ("-" if rials < 0 else ""), whole, rest


def strip_grouping(text: str) -> str:
    """``text`` in ASCII digits without thousands separators, spaces and direction marks (how
    numbers are typed and pasted)."""
    return "".join(ch for ch in to_ascii_digits(text)
                   if ch not in _INT_IGNORED and not ch.isspace())


def _without_unit_word(text: str, unit: str) -> str:
    """``text`` without the field's own unit word typed after the number ("۱٬۲۰۰ تومان" in a
    toman field). Another unit's word raises ValueError naming the field's unit: a figure
    typed in toman into a rial field would be ten times too small."""
    stripped = text.strip()

    def words(of: str) -> set[str]:  # the unit's code, its Persian word, its page word
        return {of, _FA_UNIT_FALLBACK[of], str(_UNIT_WORDS[of])}
    for word in words(unit):
        if stripped.lower().endswith(word.lower()) and len(stripped) > len(word):
            return stripped[:-len(word)].strip()
    for other in MONEY_UNITS:
        if other != unit and any(stripped.lower().endswith(w.lower()) for w in words(other)):
            raise ValueError(_("This field takes %(unit)s: write the amount in %(unit)s.",
                               unit=_UNIT_WORDS[unit]))
    return text


def money_from_input(raw: Any, unit: str | None = None) -> Any:
    """The rials of an amount typed into a money field, which takes the unit the shop shows
    money in (or ``unit``: the one the form was drawn in, if the shop changed it since): toman
    is rials / 10, and one decimal digit is allowed (``12,500.5`` toman is 125,005 rials), but
    not under a hundred toman: ``1.5`` is said for a million and a half, so it raises
    ValueError saying to write the whole amount.
    Digits in any script; thousands separators and spaces are ignored. What is not such a
    number (or not text) is returned unchanged, for the validation to refuse in words; in rial
    the text is returned unchanged too (the validation reads whole numbers). A toman amount
    with more decimals (``12.500``, ``1.700.000``: a thousands separator typed as the decimal
    one, which sits beside it) raises ValueError saying how to write it. The field's own unit
    word typed after the number is ignored."""
    if unit not in MONEY_UNITS:
        unit = money_display()
    if not isinstance(raw, str):
        return raw
    raw = _without_unit_word(raw, unit)
    if unit != "toman":
        return raw
    cleaned = strip_grouping(raw).replace(FA_DECIMAL_SEP, ".")
    match = _MONEY_TYPED.fullmatch(cleaned)
    if not match:
        if _DECIMAL.fullmatch(cleaned):
            raise ValueError(_("Separate thousands with a comma, or not at all (150000), "
                               "never with a dot or a slash: in toman a dot is only for one "
                               "decimal digit (one rial)."))
        return raw
    if match.group(2) is not None and int(match.group(1)) < 100:
        # "1.5" said as "one and a half" means a million and a half, not 15 rials (an amount
        # this small that was stored, from the API, cannot be typed back: none is that small)
        raise ValueError(_("%(typed)s toman is less than a hundred toman: write the whole "
                           "amount, for example %(example)s for one and a half million.",
                           typed=localize_digits(raw.strip()),
                           example=format_number(1_500_000)))
    return int(match.group(1)) * 10 + int(match.group(2) or 0)


def parse_int(text: Any) -> int:
    """Parse an integer typed in ASCII, Persian or Arabic digits.

    Thousands separators ``,`` and ``٬``, whitespace and bidi marks are ignored; a leading
    ``-``/``+`` is allowed. Raises ``ValueError`` with a translated message otherwise.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    raw = "" if text is None else str(text)
    cleaned = strip_grouping(raw)
    sign = 1
    if cleaned[:1] in _MINUS_SIGNS:
        sign, cleaned = -1, cleaned[1:]
    elif cleaned[:1] == "+":
        cleaned = cleaned[1:]
    if not cleaned or not all("0" <= ch <= "9" for ch in cleaned):
        raise ValueError(_("%(value)s is not a whole number.", value=raw.strip()))
    return sign * int(cleaned)


# ---------------------------------------------------------------- SMS segments

# GSM 03.38 default alphabet (without ESC) and its extension table (ESC + char = 2 septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class SmsSegments(NamedTuple):
    """Result of :func:`segments`: ``("GSM-7", 1)`` compares equal to a plain tuple."""

    encoding: str
    count: int


def _pack(units: list[int], single: int, per_part: int) -> int:
    """Count parts for a list of per-character sizes, never splitting a character."""
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return parts


def segments(body: str) -> SmsSegments:
    """Return ``(encoding, count)`` for an SMS body.

    ``"GSM-7"`` when every character is in the GSM 03.38 basic set or extension table
    (extension characters such as ``€ [ ] { }`` take two septets): 160 septets fit one
    SMS, 153 per part when concatenated. Otherwise ``"UCS-2"``, counted in UTF-16 code
    units: 70 in one SMS, 67 per part. A character (escape pair or surrogate pair) is
    never split between parts. An empty body gives a count of 0.
    """
    body = body or ""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        return SmsSegments("GSM-7", _pack(units, 160, 153))
    units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    return SmsSegments("UCS-2", _pack(units, 70, 67))


# ---------------------------------------------------------------- Flask wiring


def _date_filter(value: _dt.datetime | _dt.date | None, style: str = "date",
                 locale: Any = None) -> str:
    """Jinja ``date`` filter: :func:`format_datetime` with the ``"date"`` style by default."""
    return format_datetime(value, style, locale)


def list_separator(locale: Any = None) -> str:
    """What stands between the items of a line ("A-00006 · Amir · 0912..."): a middle dot in
    English; in Persian the Persian comma, as a Persian writer would, since a middle dot is
    read as the Persian zero beside a number ("۰۲:۲۸ · ۱ دقیقه" read as ten minutes)."""
    return f"{FA_COMMA} " if _language_of(locale) == "fa" else " \u00b7 "


def _template_context() -> dict[str, Any]:
    """Template globals: ``get_locale``, ``current_language``, ``text_dir`` and ``sep`` (the
    separator between the items of a line)."""
    return {
        "get_locale": get_locale,
        "current_language": current_language,
        "text_dir": text_direction(),
        "sep": list_separator(),
        "money_unit_word": money_unit_word,
        "money_unit": money_display,
    }


def init_app(app: Flask) -> None:
    """Register the Jinja filters and the locale context processor on ``app``.

    Filters: ``datetime`` (:func:`format_datetime`), ``date`` (date style), ``money``,
    ``money_cell`` (an amount in a slip's amount column, :func:`money_cell`),
    ``money_input`` (an amount as a money field shows it), ``digits``
    (:func:`localize_digits`) and ``number``. Templates also get ``get_locale()``,
    ``current_language()``, ``money_unit()`` (:func:`money_display`), ``money_unit_word()``
    and ``text_dir`` (``"rtl"``/``"ltr"``).
    """
    for name, fn in (("datetime", format_datetime), ("date", _date_filter),
                     ("money", format_money), ("money_cell", money_cell),
                     ("money_input", money_input),
                     ("digits", localize_digits), ("number", format_number),
                     ("tel", tel_uri)):
        app.add_template_filter(per_render(fn), name)
    app.context_processor(_template_context)


def per_render(fn: Callable) -> Callable:
    """``fn`` as a Jinja filter that runs at each render. Jinja works out a filter applied to a
    constant (``{{ "0"|digits }}``) once, when it compiles the template, in whatever language
    that first request had; the template is then cached, and every later page, English or
    Persian, showed that language's digits. A filter that takes the render's context is never
    worked out ahead (one that takes only the evaluation context still is)."""
    @pass_context
    @functools.wraps(fn)
    def at_render(_context, *args, **kwargs):
        return fn(*args, **kwargs)
    return at_render
