"""Input checks shared by the lifecycle, the services and the forms: phones, IMEIs, dates, money.

Each checker takes the raw value and returns the clean one or raises ValueError with a message a
user can read; ``Fields`` collects them per field so one response lists every problem.
"""
import re
import unicodedata
from datetime import date
from typing import Any, Callable, Mapping, Optional

import phonenumbers
from flask_babel import gettext as _
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from .errors import ValidationError
from .i18n import (format_datetime, format_money_as_typed, format_number, localize_digits,
                   strip_grouping)
from .i18n import parse_date as _parse_local_date
from .i18n import to_ascii_digits

MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _printable(value: str) -> str:
    """Refuse control characters (but tab and newline) and lone surrogates: PostgreSQL cannot
    store a NUL, and a surrogate cannot be encoded at all."""
    for ch in value:
        code = ord(ch)
        if (code < 32 and ch not in "\t\n\r") or 0xD800 <= code <= 0xDFFF or code == 0x7F:
            raise ValueError(_("Contains characters that are not allowed."))
    return value
# Row ids are INTEGER columns (32-bit on PostgreSQL): a larger id names no row, and binding it
# would fail in the database instead of finding nothing.
MAX_ID = 2**31 - 1


# The shop's country: numbers typed without a country code are read as its numbers.
PHONE_REGION = "IR"


# Between a number's digit groups people put more than spaces and "-": a half-space (ZWNJ:
# Shift+Space on a Persian keyboard), the invisible marks a number copied from a contact or a
# chat carries (direction marks, zero-width spaces), a non-breaking, thin or narrow space, any
# dash (‐ – — −), the Persian keyboard's tatweel (ـ). Each is read as a space.
_PHONE_GAPS = frozenset("\u0640\u2212\ufe63\uff0d")


def phone_text(raw: Any) -> str:
    """A typed phone number with ASCII digits and every kind of gap between its digit groups
    read as a space, stripped ("" when nothing is left)."""
    text = to_ascii_digits(raw)
    return "".join(" " if ch in _PHONE_GAPS or unicodedata.category(ch) in ("Zs", "Cf", "Pd")
                   else ch for ch in text).strip()


def phone_e164(raw: Any, region: str = PHONE_REGION, allow_numbers: tuple = ()) -> str:
    """A mobile number in E.164 (``09121234567``, Persian or Arabic digits, mixed with Latin
    ones, groups apart with spaces of any kind, half-spaces or dashes, give
    ``+989121234567``)."""
    if not isinstance(raw, str) or not phone_text(raw):
        raise ValueError(_("Enter a mobile phone number."))
    text = _printable(phone_text(raw))
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(_("This is not a phone number.")) from None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if e164 in allow_numbers:
        return e164
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("This is not a valid phone number."))
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise ValueError(_("This number cannot receive SMS; enter a mobile number."))
    return e164


def phone_is_home(e164: str, region: str = PHONE_REGION) -> bool:
    """Whether a number (E.164, from ``phone_e164``) belongs to the shop's own country."""
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.region_code_for_number(number) == region


def imei_valid(digits: str) -> bool:
    """The IMEI's 15th digit is a Luhn check digit over the first 14."""
    if len(digits) != 15 or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def serial_or_imei(raw: Any) -> Optional[str]:
    """A serial number, or an IMEI (15 digits) whose check digit must be right."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValueError(_("Must be text."))
    text = _printable(to_ascii_digits(raw).strip().replace(" ", "").replace("-", ""))
    if len(text) > 40:
        raise ValueError(_("Too long (at most %(n)s characters).", n=format_number(40)))
    if text.isdigit() and len(text) in (14, 15, 16, 17):
        if len(text) != 15 or not imei_valid(text):
            raise ValueError(_("This IMEI is not valid: check the 15 digits."))
    return text


def text(raw: Any, max_len: int = 500, required: bool = True) -> Optional[str]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise ValueError(_("This field is required."))
        return None
    if not isinstance(raw, str):
        raise ValueError(_("Must be text."))
    value = _printable(raw.strip())
    if len(value) > max_len:
        raise ValueError(_("Too long (at most %(n)s characters).", n=format_number(max_len)))
    return value


# The most money any one amount may be (rials): a bill, a line, a payment. Far above any repair,
# and small enough that the reports' sums over every ticket of a year never overflow 64 bits.
MAX_MONEY = 10**13


def integer(raw: Any, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """A whole number. JSON gives ints; forms give strings in any digits. Without a maximum it
    is an amount of money: at most MAX_MONEY, said with its unit (rials to the API and the
    import, the shop's unit on the staff's pages) rather than as a bare number."""
    if isinstance(raw, bool):
        raise ValueError(_("Must be a whole number."))
    if isinstance(raw, str):
        cleaned = strip_grouping(raw)
        if not cleaned.lstrip("-").isdigit():
            raise ValueError(_("Must be a whole number."))
        raw = int(cleaned)
    if not isinstance(raw, int):
        raise ValueError(_("Must be a whole number."))
    if raw < minimum:
        raise ValueError(_("Must be at least %(n)s.", n=format_number(minimum)))
    if maximum is None and raw > MAX_MONEY:
        raise ValueError(_("Must be at most %(amount)s.",
                           amount=format_money_as_typed(MAX_MONEY)))
    if maximum is not None and raw > maximum:
        raise ValueError(_("Must be at most %(n)s.", n=format_number(maximum)))
    return raw


def a_date(raw: Any) -> date:
    """``YYYY-MM-DD`` (a Jalali ``1405/09/01`` is accepted too, in any digits). A date written
    right but impossible (the 31st of Azar) is called that, not a format error."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(_("Enter a date as YYYY-MM-DD."))
    try:
        return _parse_local_date(raw)
    except ValueError as exc:
        if _DATE_SHAPE.match(to_ascii_digits(raw)):
            raise ValueError(str(exc)) from None
        raise ValueError(_("Enter a date as YYYY-MM-DD.")) from None


_DATE_SHAPE = re.compile(r"\s*\d{4}[-/]\d{1,2}[-/]\d{1,2}\s*$")


_UNREADABLE = object()


def _form_day(values: Mapping, name: str):
    """A form's date field: the date, None when left blank, ``_UNREADABLE`` when it does not
    read as a date (the action's own check then says what is wrong with it)."""
    raw = values.get(name)
    if not raw or not str(raw).strip():
        return None
    try:
        return a_date(raw)
    except ValueError:
        return _UNREADABLE


FAR_DAYS = 366  # a date the desks type further ahead than this is a typo in the year


def refuse_past_dates(values: Mapping, *names: str) -> None:
    """For the desks' forms: ValidationError naming each date that reads as a date but has
    already passed, or is more than a year away (a typo in the year, the month). The API and
    imports take any date."""
    from .visits import shop_day
    errors = {}
    today = shop_day()
    for name in names:
        day = _form_day(values, name)
        if day in (None, _UNREADABLE):
            continue
        if day < today:
            errors[name] = _("This date has already passed.")
        elif (day - today).days > FAR_DAYS:  # 1500 for 1405: no repair waits a year
            errors[name] = _("This date is more than a year away; check the year.")
    if errors:
        raise ValidationError(_("Some fields are not valid."), fields=errors)


def refuse_part_after_promise(values: Mapping, promised: Optional[date]) -> None:
    """For the ticket page's wait-for-parts form: a part expected after the date promised to the
    customer (``promised``, unless the form moves it) is refused, so the tracking page never
    says "part expected on the 20th" beside "promised for the 15th". The API and imports take
    it as sent (history records what happened). A date that does not read is left to the
    event's own check, which names it."""
    expected, moved = _form_day(values, "expected_date"), _form_day(values, "promised_date")
    if _UNREADABLE in (expected, moved):
        return
    promised = moved or promised
    if expected and promised and expected > promised:
        raise ValidationError(_("Some fields are not valid."), fields={"promised_date": _(
            "The part is expected on %(expected)s, after the date promised to the customer "
            "(%(promised)s): promise a date on or after the part's.",
            expected=format_datetime(expected, "date"),
            promised=format_datetime(promised, "date"))})


def choice(raw: Any, options: tuple) -> str:
    if raw not in options:
        raise ValueError(_("Must be one of: %(options)s.", options=", ".join(options)))
    return raw


class LineError(ValueError):
    """A problem with one line of a list: which line (from 1) and which of its fields."""

    def __init__(self, message: str, line: int, key: Optional[str]):
        super().__init__(message)
        self.line, self.key = line, key

    @classmethod
    def of(cls, line: int, key: Optional[str], problem: str) -> "LineError":
        return cls(_("Line %(n)s: %(problem)s", n=localize_digits(line), problem=problem),
                   line, key)

    def where(self) -> dict:
        """What a 422 says in ``at``: which line and field."""
        return {"line": self.line, "field": self.key}


# Each field of a cost line and its check (qty defaults to 1).
_LINE_CHECKS = (("kind", lambda raw: choice(raw, ("part", "labour"))),
                ("description", lambda raw: text(raw, max_len=200)),
                ("qty", lambda raw: integer(raw, minimum=1, maximum=10_000)),
                ("unit_price", lambda raw: integer(raw, minimum=0)))


def cost_lines(raw: Any, allow_empty: bool = False) -> list[dict]:
    """Estimate or final lines: kind part/labour, description, qty >= 1, unit_price >= 0 (rials)."""
    if not isinstance(raw, list):
        raise ValueError(_("Must be a list of lines."))
    if not raw and not allow_empty:
        raise ValueError(_("Add at least one line."))
    if len(raw) > 100:
        raise ValueError(_("Too many lines."))
    lines = []
    total = 0
    for i, line in enumerate(raw, start=1):
        if not isinstance(line, dict):
            raise LineError(_("Line %(n)s: must be an object.", n=localize_digits(i)), i, None)
        clean = {}
        for key, check in _LINE_CHECKS:
            try:
                clean[key] = check(line.get(key, 1) if key == "qty" else line.get(key))
            except ValueError as exc:
                raise LineError.of(i, key, str(exc)) from None
        # each line's price within the limit could still make a bill of 10**21 rials, whose sum
        # in a report overflows the database's integers (the month's report failed with it)
        total += clean["qty"] * clean["unit_price"]
        if total > MAX_MONEY:
            raise LineError.of(i, "unit_price", _(
                "The lines add up to more than %(n)s.", n=format_money_as_typed(MAX_MONEY)))
        lines.append(clean)
    return lines


class AlternativeError(LineError):
    """A problem with one alternative of an estimate: which one (from 1), and which of its
    lines and fields when it is in a line."""

    def __init__(self, message: str, alternative: int, line: Optional[int],
                 key: Optional[str]):
        super().__init__(message, line, key)
        self.alternative = alternative

    def where(self) -> dict:
        return {"alternative": self.alternative, "line": self.line, "field": self.key}


MAX_ALTERNATIVES = 4


def estimate_alternatives(raw: Any) -> list[dict]:
    """An estimate's alternatives the customer chooses between (an original display or a
    copy one): none (an empty list), or two to ``MAX_ALTERNATIVES``, each
    ``{"name", "lines"}`` with a name of its own and at least one line. Each comes back
    with its ``id`` (its place, from 1: what an approval names) and the total of its lines
    (``lines_total``)."""
    if not isinstance(raw, list):
        raise ValueError(_("Must be a list of alternatives, each with a name and its lines."))
    if not raw:
        return []
    if len(raw) < 2:
        raise ValueError(_("Offer two alternatives or more, or put these lines in the "
                           "estimate itself."))
    if len(raw) > MAX_ALTERNATIVES:
        raise ValueError(_("At most %(n)s alternatives.", n=localize_digits(MAX_ALTERNATIVES)))
    alternatives, names = [], set()
    for i, alternative in enumerate(raw, start=1):
        def bad(problem, line=None, key=None):
            return AlternativeError(_("Alternative %(n)s: %(problem)s", n=localize_digits(i),
                                      problem=problem), i, line, key)
        if not isinstance(alternative, dict):
            raise bad(_("must be an object."))
        try:
            name = text(alternative.get("name"), max_len=80)
        except ValueError as exc:
            raise bad(_("its name: %(problem)s", problem=str(exc)), key="name") from None
        if name.casefold() in names:
            raise bad(_("another alternative has this name already."), key="name")
        names.add(name.casefold())
        try:
            lines = cost_lines(alternative.get("lines"))
        except LineError as exc:
            raise bad(str(exc), exc.line, exc.key) from None
        except ValueError as exc:
            raise bad(str(exc), key="lines") from None
        alternatives.append({"id": i, "name": name, "lines": lines,
                             "lines_total": sum(l["qty"] * l["unit_price"] for l in lines)})
    return alternatives


def payment_parts(raw: Any, methods: tuple) -> list[dict]:
    """A payment split between methods (the ``deliver`` event's ``payments``): two or more
    parts ``{"method", "amount"}``, each method once, each amount a whole number of rials
    above zero. A bad part is named (``at``: which part, from 1, and which of its fields)."""
    if not isinstance(raw, list):
        raise ValueError(_("Must be a list of parts, each with a method and an amount."))
    if len(raw) < 2:
        raise ValueError(_("A payment split in parts has two parts or more; a payment made "
                           "one way is sent as payment_method."))
    if len(raw) > len(methods):
        raise ValueError(_("At most one part per payment method."))
    parts, seen, total = [], set(), 0
    for i, part in enumerate(raw, start=1):
        def bad(key, problem):
            return LineError(_("Part %(n)s: %(problem)s", n=localize_digits(i),
                               problem=problem), i, key)
        if not isinstance(part, dict):
            raise bad(None, _("must be an object."))
        try:
            method = choice(part.get("method"), methods)
        except ValueError as exc:
            raise bad("method", str(exc)) from None
        if method in seen:
            raise bad("method", _("this method is in an earlier part already."))
        seen.add(method)
        try:
            amount = integer(part.get("amount"), minimum=1)
        except ValueError as exc:
            raise bad("amount", str(exc)) from None
        total += amount
        if total > MAX_MONEY:
            raise bad("amount", _("The parts add up to more than %(n)s.",
                                  n=format_money_as_typed(MAX_MONEY)))
        parts.append({"method": method, "amount": amount})
    return parts


class Fields:
    """Collects clean values and per-field errors; ``done()`` raises them all at once."""

    def __init__(self, data: Any):
        if not isinstance(data, dict):
            raise ValidationError(_("The request body must be a JSON object."))
        self.data = data
        self.clean: dict = {}
        self.errors: dict = {}
        self.at: dict = {}  # field -> {"line", "field"}: where in a list the problem is

    def take(self, name: str, check: Callable, *args, required: bool = True, **kwargs):
        raw = self.data.get(name)
        if not required and (raw is None or (isinstance(raw, str) and not raw.strip())):
            return None  # an optional field left blank is not there (not "required")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            self.errors[name] = _("This field is required.")
            return None
        try:
            value = check(raw, *args, **kwargs)
        except ValueError as exc:
            self.errors[name] = str(exc)
            if isinstance(exc, LineError):
                self.at[name] = exc.where()
            return None
        self.clean[name] = value
        return value

    def done(self) -> dict:
        if self.errors:
            raise ValidationError(_("Some fields are not valid."), fields=self.errors,
                                  **({"at": self.at} if self.at else {}))
        return self.clean
