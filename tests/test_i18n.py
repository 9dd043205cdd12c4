"""Tests for servicedesk/i18n.py: digits, Jalali dates in Tehran time, money, parsing, SMS segments.

Every expected date below was worked out by hand (Tehran is UTC+03:30 all year, no DST
since 2022; 1403 is a Jalali leap year, so 1403/12/30 = 2025-03-20 and 1404/01/01 =
2025-03-21; 1404 is not, so 1404/12/29 = 2026-03-20 and 1405/01/01 = 2026-03-21) and
cross-checked with jdatetime in test_hand_computed_dates_agree_with_jdatetime.

The module is loaded from its file path, so these tests need neither
servicedesk/__init__.py nor tests/conftest.py; only the last section (the staff language
switcher) drives the real app, with conftest's make_app.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import jdatetime
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from flask import Flask, g, render_template_string
from flask_babel import Babel, force_locale

_PATH = Path(__file__).resolve().parents[1] / "servicedesk" / "i18n.py"
_spec = importlib.util.spec_from_file_location("_servicedesk_i18n_under_test", _PATH)
i18n = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = i18n
_spec.loader.exec_module(i18n)

UTC = timezone.utc
TEHRAN = ZoneInfo("Asia/Tehran")


def make_app(**config) -> Flask:
    """A tiny app with Babel; the locale comes from g.lang, else SERVICEDESK_LOCALE."""
    app = Flask(__name__)
    app.config.update({"SERVICEDESK_LOCALE": "fa", "SERVICEDESK_TIMEZONE": "Asia/Tehran",
                       "MONEY_DISPLAY": "toman", **config})

    def select_locale() -> str:
        return g.get("lang") or app.config["SERVICEDESK_LOCALE"]

    Babel(app, locale_selector=select_locale)
    i18n.init_app(app)
    return app


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def fa(app):
    with app.test_request_context():
        g.lang = "fa"
        yield app


@pytest.fixture
def en(app):
    with app.test_request_context():
        g.lang = "en"
        yield app


# ---------------------------------------------------------------- digits


def test_to_ascii_digits_persian_and_arabic():
    assert i18n.FA_DIGITS == "۰۱۲۳۴۵۶۷۸۹"
    assert i18n.to_ascii_digits("۰۱۲۳۴۵۶۷۸۹") == "0123456789"
    assert i18n.to_ascii_digits("٠١٢٣٤٥٦٧٨٩") == "0123456789"
    # Only digits change: letters, dashes and separators stay.
    assert i18n.to_ascii_digits("IMEI ۳۵-٤٥ x") == "IMEI 35-45 x"
    assert i18n.to_ascii_digits("۱٬۲۳۴") == "1٬234"
    assert i18n.to_ascii_digits("A-0912") == "A-0912"
    assert i18n.to_ascii_digits(None) == ""


def test_localize_digits_explicit_locale():
    assert i18n.localize_digits("A-0912", "fa") == "A-۰۹۱۲"
    assert i18n.localize_digits("A-0912", "fa_IR") == "A-۰۹۱۲"
    assert i18n.localize_digits("A-0912", "en") == "A-0912"
    assert i18n.localize_digits(2026, "fa") == "۲۰۲۶"
    assert i18n.localize_digits(None, "fa") == ""
    # Round trip.
    assert i18n.to_ascii_digits(i18n.localize_digits("1405/09/01", "fa")) == "1405/09/01"


def test_localize_digits_follows_request_locale(fa):
    assert i18n.localize_digits("42") == "۴۲"
    with force_locale("en"):
        assert i18n.localize_digits("42") == "42"


def test_current_language_and_direction(app):
    with app.test_request_context():
        g.lang = "fa_IR"
        assert i18n.current_language() == "fa"
        assert i18n.text_direction() == "rtl"
    with app.test_request_context():
        g.lang = "en"
        assert i18n.current_language() == "en"
        assert i18n.text_direction() == "ltr"


def test_current_language_fallbacks():
    assert i18n.current_language() == "fa"  # no app context at all
    bare = Flask(__name__)  # no Babel on this app
    bare.config["SERVICEDESK_LOCALE"] = "en"
    with bare.app_context():
        assert i18n.current_language() == "en"
    with make_app(SERVICEDESK_LOCALE="en").app_context():
        assert i18n.current_language() == "en"


# ---------------------------------------------------------------- dates


def test_hand_computed_dates_agree_with_jdatetime():
    cases = {
        date(2025, 3, 20): (1403, 12, 30),
        date(2025, 3, 21): (1404, 1, 1),
        date(2026, 3, 20): (1404, 12, 29),
        date(2026, 3, 21): (1405, 1, 1),
        date(2026, 11, 21): (1405, 8, 30),
        date(2026, 11, 22): (1405, 9, 1),
    }
    for greg, (y, m, d) in cases.items():
        j = jdatetime.date.fromgregorian(date=greg)
        assert (j.year, j.month, j.day) == (y, m, d), greg
        assert jdatetime.date(y, m, d).togregorian() == greg
    assert jdatetime.date(1403, 1, 1).isleap() and not jdatetime.date(1404, 1, 1).isleap()
    assert datetime(2026, 11, 21, 21, 0, tzinfo=UTC).astimezone(TEHRAN) == datetime(
        2026, 11, 22, 0, 30, tzinfo=TEHRAN)
    assert TEHRAN.utcoffset(datetime(2026, 7, 1)) == timedelta(hours=3, minutes=30)


def test_nowruz_1404_boundary_in_tehran(fa):
    # 20:29 UTC = 23:59 Tehran on 2025-03-20 = 30 Esfand 1403 (leap year).
    assert i18n.format_datetime(datetime(2025, 3, 20, 20, 29)) == "۱۴۰۳/۱۲/۳۰ ۲۳:۵۹"
    assert i18n.format_datetime(datetime(2025, 3, 20, 20, 29), "long_date") == "۳۰ اسفند ۱۴۰۳"
    # 20:31 UTC = 00:01 Tehran on 2025-03-21 = 1 Farvardin 1404.
    assert i18n.format_datetime(datetime(2025, 3, 20, 20, 31)) == "۱۴۰۴/۰۱/۰۱ ۰۰:۰۱"
    assert i18n.format_datetime(datetime(2025, 3, 20, 20, 31), "long") == "۱ فروردین ۱۴۰۴، ۰۰:۰۱"


def test_nowruz_1405_boundary_after_29_esfand(fa):
    # 1404 is not a leap year: 29 Esfand is the last day.
    assert i18n.format_datetime(datetime(2026, 3, 20, 20, 29), "date") == "۱۴۰۴/۱۲/۲۹"
    assert i18n.format_datetime(datetime(2026, 3, 20, 20, 30), "date") == "۱۴۰۵/۰۱/۰۱"
    assert i18n.format_datetime(datetime(2026, 3, 20, 20, 30), "time") == "۰۰:۰۰"


def test_utc_previous_day_is_next_day_in_tehran(app):
    t = datetime(2026, 11, 21, 21, 0)  # naive = UTC; 2026-11-22 00:30 in Tehran
    with app.test_request_context():
        g.lang = "fa"
        assert i18n.format_datetime(t) == "۱۴۰۵/۰۹/۰۱ ۰۰:۳۰"
        assert i18n.format_datetime(t, "date") == "۱۴۰۵/۰۹/۰۱"
        assert i18n.format_datetime(datetime(2026, 11, 21, 20, 29), "date") == "۱۴۰۵/۰۸/۳۰"
        assert i18n.format_datetime(t, "date", locale="en") == "2026-11-22"
    with app.test_request_context():
        g.lang = "en"
        assert i18n.format_datetime(t) == "2026-11-22 00:30"


def test_all_styles_fa_and_en(app):
    t = datetime(2026, 11, 22, 10, 35, tzinfo=UTC)  # 14:05 Tehran
    with app.test_request_context():
        g.lang = "fa"
        assert i18n.format_datetime(t) == "۱۴۰۵/۰۹/۰۱ ۱۴:۰۵"
        assert i18n.format_datetime(t, "date") == "۱۴۰۵/۰۹/۰۱"
        assert i18n.format_datetime(t, "time") == "۱۴:۰۵"
        assert i18n.format_datetime(t, "long") == "۱ آذر ۱۴۰۵، ۱۴:۰۵"
        assert i18n.format_datetime(t, "long_date") == "۱ آذر ۱۴۰۵"
    with app.test_request_context():
        g.lang = "en"
        assert i18n.format_datetime(t) == "2026-11-22 14:05"
        assert i18n.format_datetime(t, "date") == "2026-11-22"
        assert i18n.format_datetime(t, "time") == "14:05"
        assert i18n.format_datetime(t, "long") == "22 Nov 2026, 14:05"
        assert i18n.format_datetime(t, "long_date") == "22 Nov 2026"
        # Explicit locale wins over the request locale.
        assert i18n.format_datetime(t, "long", locale="fa") == "۱ آذر ۱۴۰۵، ۱۴:۰۵"


def test_aware_datetime_and_plain_date(fa):
    # An aware datetime in another zone: 2026-11-22 01:00+01:00 = 00:00 UTC = 03:30 Tehran.
    t = datetime(2026, 11, 22, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert i18n.format_datetime(t) == "۱۴۰۵/۰۹/۰۱ ۰۳:۳۰"
    # A date is shown as is (no time zone shift); time styles fall back to date styles.
    assert i18n.format_datetime(date(2026, 11, 22)) == "۱۴۰۵/۰۹/۰۱"
    assert i18n.format_datetime(date(2026, 11, 22), "long") == "۱ آذر ۱۴۰۵"
    assert i18n.format_datetime(date(2026, 11, 22), "long", locale="en") == "22 Nov 2026"
    assert i18n.format_datetime(None) == ""
    with pytest.raises(ValueError):
        i18n.format_datetime(date(2026, 11, 22), "time")
    with pytest.raises(ValueError):
        i18n.format_datetime(t, "short")


def test_shop_timezone_from_config():
    assert i18n.shop_timezone() == TEHRAN  # outside an app context: the default
    app = make_app(SERVICEDESK_TIMEZONE="UTC")
    with app.test_request_context():
        g.lang = "en"
        assert i18n.shop_timezone() == ZoneInfo("UTC")
        assert i18n.format_datetime(datetime(2026, 11, 21, 21, 0)) == "2026-11-21 21:00"


def test_fa_output_does_not_touch_global_jdatetime_locale(fa):
    before = jdatetime.get_locale()
    i18n.format_datetime(datetime(2026, 11, 22, 10, 35), "long")
    assert jdatetime.get_locale() == before


def test_parse_date_jalali_and_gregorian():
    assert i18n.parse_date("۱۴۰۵/۰۹/۰۱") == date(2026, 11, 22)
    assert i18n.parse_date("1405-09-01") == date(2026, 11, 22)
    assert i18n.parse_date("١٤٠٥/٩/١") == date(2026, 11, 22)  # Arabic digits, no padding
    assert i18n.parse_date("1403/12/30") == date(2025, 3, 20)  # leap 30 Esfand
    assert i18n.parse_date("1404/12/29") == date(2026, 3, 20)
    assert i18n.parse_date("1405/01/01") == date(2026, 3, 21)
    assert i18n.parse_date(" 2026-11-22 ") == date(2026, 11, 22)
    assert i18n.parse_date("۲۰۲۶/۱۱/۲۲") == date(2026, 11, 22)


@pytest.mark.parametrize("bad", ["", "1405", "1405/09", "1405-09/01", "22/11/2026",
                                 "1404/12/30", "1405/13/01", "2026-02-30", "abc", None])
def test_parse_date_rejects_bad_input(en, bad):
    with pytest.raises(ValueError) as err:
        i18n.parse_date(bad)
    message = str(err.value)
    assert "date" in message
    if bad == "1404/12/30":  # well formed but impossible: 1404 has no 30 Esfand
        assert message == "1404/12/30 is not a valid date."


# ---------------------------------------------------------------- numbers and money


def test_format_number(fa):
    assert i18n.format_number(1250000) == "۱٬۲۵۰٬۰۰۰"
    assert i18n.format_number(1250000, "en") == "1,250,000"
    assert i18n.format_number(-1234, "en") == "-1,234"
    assert i18n.format_number(999, "en") == "999"
    assert i18n.format_number(0) == "۰"
    assert i18n.format_number(None) == ""


def test_decimals_and_percentages_use_the_persian_separators(fa):
    assert i18n.format_decimal(1234.5) == "۱٬۲۳۴٫۵"
    assert i18n.format_decimal(4.25, 2) == "۴٫۲۵"
    assert i18n.format_decimal(1234.5, 1, "en") == "1,234.5"
    assert i18n.format_decimal(None) == ""
    assert i18n.format_percent(0.75) == "۷۵٫۰٪"
    assert i18n.format_percent(1.027) == "۱۰۲٫۷٪"
    assert i18n.format_percent(0.75, locale="en") == "75.0%"
    assert i18n.format_percent(None) == ""


def test_money_without_its_unit_word_for_a_column_that_names_it(fa):
    assert i18n.format_money(12_500_005, with_unit=False) == "۱٬۲۵۰٬۰۰۰٫۵"
    assert i18n.format_money(12_500_000, unit="rial", with_unit=False) == "۱۲٬۵۰۰٬۰۰۰"
    assert i18n.format_money(-50_000, locale="en", with_unit=False) == "-5,000"


def test_format_money_fa(fa):
    assert i18n.format_money(12_500_000) == "۱٬۲۵۰٬۰۰۰ تومان"
    assert i18n.format_money(12_500_000, unit="rial") == "۱۲٬۵۰۰٬۰۰۰ ریال"
    # Not a whole number of toman: its rials are a decimal digit, not rounded away.
    assert i18n.format_money(12_500_005) == "۱٬۲۵۰٬۰۰۰٫۵ تومان"
    assert i18n.format_money(-5) == "-۰٫۵ تومان"
    assert i18n.format_money(-500_000) == "-۵۰٬۰۰۰ تومان"
    assert i18n.format_money(0) == "۰ تومان"
    assert i18n.format_money(None) == ""


def test_format_money_en(en):
    assert i18n.format_money(12_500_000) == "1,250,000 toman"
    assert i18n.format_money(12_500_000, unit="rial") == "12,500,000 rial"
    assert i18n.format_money(12_500_005) == "1,250,000.5 toman"
    assert i18n.format_money(-500_000) == "-50,000 toman"
    assert i18n.format_money(9_990) == "999 toman"
    with pytest.raises(ValueError):
        i18n.format_money(100, unit="dollar")


def test_money_cell_isolates_a_negative_figure_in_persian_only(fa):
    """A slip's amount column: in Persian the minus of a negative amount stays on its figure's
    left (the figure isolated left to right); anything else is format_money, escaped."""
    assert str(i18n.money_cell(-7_500_000)) == '<bdi dir="ltr">-۷۵۰٬۰۰۰</bdi> تومان'
    assert str(i18n.money_cell(-7_500_000, unit="rial")) == (
        '<bdi dir="ltr">-۷٬۵۰۰٬۰۰۰</bdi> ریال')
    assert str(i18n.money_cell(7_500_000)) == "۷۵۰٬۰۰۰ تومان"
    assert str(i18n.money_cell(-7_500_000, locale="en")) == "-750,000 toman"
    assert str(i18n.money_cell(None)) == ""


def test_format_money_explicit_locale_and_config(app):
    with app.test_request_context():
        g.lang = "fa"
        assert i18n.format_money(12_500_000, locale="en") == "1,250,000 toman"
    with app.test_request_context():
        g.lang = "en"
        assert i18n.format_money(12_500_000, locale="fa") == "۱٬۲۵۰٬۰۰۰ تومان"
        assert i18n.format_money(10, locale="fa") == "۱ تومان"
    rial_app = make_app(MONEY_DISPLAY="rial")
    with rial_app.test_request_context():
        g.lang = "en"
        assert i18n.format_money(12_500_000) == "12,500,000 rial"
        assert i18n.format_money(12_500_000, unit="toman") == "1,250,000 toman"


def test_money_fields_read_and_offer_the_shops_unit(fa):
    """Staff type money in the unit it is shown in; it is stored in rials."""
    read = i18n.money_from_input
    assert read("1,250,000") == read("۱٬۲۵۰٬۰۰۰") == read(" 1 250 000 ") == 12_500_000
    assert read("123456.5") == read("۱۲۳٬۴۵۶٫۵") == read("123456.50") == 1_234_565
    assert read("0") == 0
    # what is not a toman amount goes on unchanged, for the validation to refuse in words
    assert read("lots") == "lots" and read("-5") == "-5"
    # a thousands separator typed as the decimal one (they sit side by side) is not 12.5
    # the field's unit word typed after the number is no error; another unit's word is
    assert read("1,700,000 تومان") == 17_000_000 and read("۱۲۰۰ toman") == 12_000
    for other in ("1,700,000 ریال", "1700000 rial"):  # ten times too small if read as toman
        with pytest.raises(ValueError, match="This field takes toman"):
            read(other)
    with pytest.raises(ValueError, match="This field takes rial"):
        read("1,500 toman", unit="rial")
    for typo in ("12.500", "۱۲٫۰۰۰", "123.45", "۱۵۰/۰۰۰", "1.700.000", "۱٫۷۰۰٫۰۰۰"):
        with pytest.raises(ValueError, match="never with a dot"):
            read(typo)
    # "1.5" is said for a million and a half: not read as 15 rials
    for short in ("1.5", "۱٫۵", "0.5", "99.9"):
        with pytest.raises(ValueError, match="less than a hundred toman"):
            read(short)
    assert read("100.5") == 1_005 and read("999.5") == 9_995 and read("15") == 150
    assert read(None) is None and read(7) == 7
    assert read("1,250,000", unit="rial") == "1,250,000"  # a rial shop's text is read as is
    offer = i18n.money_input  # as money is shown everywhere: grouped, the page's digits
    assert offer(12_500_000) == "۱٬۲۵۰٬۰۰۰" and offer(1_234_565) == "۱۲۳٬۴۵۶٫۵"
    assert offer(12_500_000, unit="rial") == "۱۲٬۵۰۰٬۰۰۰"
    assert offer(12_500_000, locale="en") == "1,250,000"
    assert offer("1,400") == "1,400" and offer(None) == ""  # typed text comes back as typed
    assert all(read(offer(n)) == n for n in (0, 10, 1_005, 9_995, 99_999, 1_234_565,
                                             12_500_000))
    assert i18n.money_unit_word() == "تومان"


def test_money_fields_in_a_rial_shop():
    with make_app(MONEY_DISPLAY="rial").test_request_context():
        g.lang = "en"
        assert i18n.money_unit_word() == "rial"
        assert i18n.money_input(1_234_565) == "1,234,565"
        assert i18n.money_from_input("1234565") == "1234565"


def test_unit_words_and_errors_come_from_the_catalog(tmp_path):
    catalog = Catalog(locale="fa")
    catalog.add("toman", "تومن")
    catalog.add("Enter a date as YYYY/MM/DD, for example %(example)s.",
                "تاریخ را به شکل سال/ماه/روز بنویسید، مثلاً %(example)s.")
    mo_dir = tmp_path / "fa" / "LC_MESSAGES"
    mo_dir.mkdir(parents=True)
    with (mo_dir / "messages.mo").open("wb") as fh:
        write_mo(fh, catalog)
    app = make_app(BABEL_TRANSLATION_DIRECTORIES=str(tmp_path))
    with app.test_request_context():
        g.lang = "fa"
        assert i18n.format_money(12_500_000) == "۱٬۲۵۰٬۰۰۰ تومن"
        assert i18n.format_money(12_500_000, unit="rial") == "۱۲٬۵۰۰٬۰۰۰ ریال"  # fallback
        assert i18n.format_money(12_500_000, locale="en") == "1,250,000 toman"
        with pytest.raises(ValueError, match="^تاریخ را به شکل.*مثلاً ۱۴۰۵/۰۹/۰۱"):
            i18n.parse_date("x")
    with app.test_request_context():
        g.lang = "en"  # an English page's example is in its calendar
        with pytest.raises(ValueError, match="for example 2026/11/22"):
            i18n.parse_date("x")


def test_parse_int():
    assert i18n.parse_int("۱٬۲۵۰٬۰۰۰") == 1_250_000
    assert i18n.parse_int("1,250,000") == 1_250_000
    assert i18n.parse_int(" ٤٥ ") == 45
    assert i18n.parse_int("۱۲ ۳۴۵") == 12_345
    assert i18n.parse_int("1\u00a0250") == 1_250  # no-break space
    assert i18n.parse_int("-۵۰۰") == -500
    assert i18n.parse_int("+7") == 7
    assert i18n.parse_int(42) == 42


@pytest.mark.parametrize("bad", ["", "  ", "12a", "1.5", "۱٫۵", "--5", "-", "abc", None])
def test_parse_int_rejects_non_numbers(en, bad):
    with pytest.raises(ValueError, match="is not a whole number"):
        i18n.parse_int(bad)


# ---------------------------------------------------------------- SMS segments


def test_segments_gsm7():
    assert i18n.segments("hello") == ("GSM-7", 1)
    assert i18n.segments("a" * 160) == ("GSM-7", 1)
    assert i18n.segments("a" * 161) == ("GSM-7", 2)
    assert i18n.segments("a" * 306) == ("GSM-7", 2)
    assert i18n.segments("a" * 307) == ("GSM-7", 3)
    assert i18n.segments("") == ("GSM-7", 0)
    enc, count = i18n.segments("Ticket A-12: ready @ 5£")
    assert (enc, count) == ("GSM-7", 1)


def test_segments_gsm7_extension_chars_count_double():
    assert i18n.segments("€" * 80) == ("GSM-7", 1)  # 160 septets
    assert i18n.segments("€" * 81) == ("GSM-7", 2)  # 162 septets
    assert i18n.segments("a" * 159 + "[") == ("GSM-7", 2)  # 161 septets
    # 306 septets, but the escape pair cannot straddle parts: 152 | 2+151 | 1.
    assert i18n.segments("a" * 152 + "€" + "a" * 152) == ("GSM-7", 3)


def test_segments_ucs2():
    assert i18n.segments("س" * 70) == ("UCS-2", 1)
    assert i18n.segments("س" * 71) == ("UCS-2", 2)
    assert i18n.segments("س" * 134) == ("UCS-2", 2)
    assert i18n.segments("س" * 135) == ("UCS-2", 3)
    assert i18n.segments("hello ۱") == ("UCS-2", 1)  # one Persian digit forces UCS-2
    # Emoji outside the BMP are two UTF-16 code units each and are never split.
    assert i18n.segments("😀" * 35) == ("UCS-2", 1)  # 70 units
    assert i18n.segments("😀" * 36) == ("UCS-2", 2)  # 33 + 3 per 67-unit part
    result = i18n.segments("سلام")
    assert (result.encoding, result.count) == ("UCS-2", 1)


# ---------------------------------------------------------------- Jinja wiring


TEMPLATE = ("{{ t|datetime }}|{{ t|date }}|{{ t|datetime('long') }}|{{ 12500000|money }}|"
            "{{ 'A-12'|digits }}|{{ 1234567|number }}|{{ get_locale() }}|"
            "{{ current_language() }}|{{ text_dir }}")


def test_jinja_filters_and_context_fa(app):
    t = datetime(2026, 11, 22, 10, 35)
    with app.test_request_context():
        g.lang = "fa"
        out = render_template_string(TEMPLATE, t=t)
    assert out == ("۱۴۰۵/۰۹/۰۱ ۱۴:۰۵|۱۴۰۵/۰۹/۰۱|۱ آذر ۱۴۰۵، ۱۴:۰۵|۱٬۲۵۰٬۰۰۰ تومان|"
                   "A-۱۲|۱٬۲۳۴٬۵۶۷|fa|fa|rtl")


def test_jinja_filters_and_context_en(app):
    t = datetime(2026, 11, 22, 10, 35)
    with app.test_request_context():
        g.lang = "en"
        out = render_template_string(TEMPLATE, t=t)
    assert out == ("2026-11-22 14:05|2026-11-22|22 Nov 2026, 14:05|1,250,000 toman|"
                   "A-12|1,234,567|en|en|ltr")


# ---------------------------------------------------------------- the staff language switcher
# These drive the real app (tests/conftest.py's make_app), not the tiny one above.

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def shop(database_url, tmp_path):
    """The service desk itself, in Persian by default (SERVICEDESK_LOCALE = "fa")."""
    from servicedesk.extensions import db

    from .conftest import make_app
    shop = make_app(database_url, tmp_path)
    with shop.app_context():
        yield shop
        db.session.remove()
        db.engine.dispose()


def add_staff(username, language=None):
    from .conftest import add_user
    return add_user(username, "reception", language=language).id


def saved_language(user_id):
    """The user's language as stored, read afresh from the database."""
    from servicedesk.extensions import db
    from servicedesk.models import User
    db.session.expire_all()
    return db.session.get(User, user_id).language


class Visitor:
    """A browser: cookies kept, the CSRF token read from the last page, each request in its
    own app context (so nothing cached for one request leaks into the next)."""

    def __init__(self, app):
        self.app, self.client, self.csrf = app, app.test_client(), None

    def open(self, method, url, **kw):
        with self.app.app_context():
            resp = self.client.open(url, method=method, **kw)
        match = CSRF_RE.search(resp.get_data(as_text=True))
        if match:
            self.csrf = match.group(1)
        return resp

    def get(self, url):
        return self.open("GET", url)

    def post(self, url, data):
        return self.open("POST", url, data={"csrf_token": self.csrf, **data})

    def login(self, username):
        from .conftest import PASSWORD
        self.get("/login")
        resp = self.post("/login", {"username": username, "password": PASSWORD})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
        self.get("/")  # a login starts a new session, with a new CSRF token
        return resp

    def pick(self, lang, next_url="/"):
        return self.post("/language", {"lang": lang, "next": next_url})

    def session_lang(self):
        with self.client.session_transaction() as session:
            return session.get("lang")


def language_of(resp) -> str:
    assert resp.status_code == 200, resp.status_code
    page = resp.get_data(as_text=True)
    match = re.search(r'<html lang="(\w+)" dir="(\w+)">', page)
    lang, direction = match.groups()
    assert direction == ("rtl" if lang == "fa" else "ltr")
    # the navigation is translated with the page
    assert ("Log out" in page or "Log in" in page) == (lang == "en")
    return lang


def test_a_user_who_picks_english_gets_it_now_and_at_every_later_login(shop):
    user_id = add_staff("maryam")
    desk = Visitor(shop)
    desk.login("maryam")
    assert language_of(desk.get("/tickets/")) == "fa"  # the shop's language: nothing picked
    assert 'name="lang" value="en"' in desk.get("/tickets/").get_data(as_text=True)

    resp = desk.pick("en", next_url="/tickets/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/tickets/"
    page = desk.get("/tickets/")
    assert language_of(page) == "en" and "Tickets" in page.get_data(as_text=True)
    assert language_of(desk.get("/")) == "en"
    assert saved_language(user_id) == "en"

    # Logged out, the choice leaves with the session; the account keeps it.
    assert desk.post("/logout", {}).status_code == 302
    assert desk.session_lang() is None
    assert language_of(desk.get("/login")) == "fa"
    desk.login("maryam")
    assert language_of(desk.get("/")) == "en"
    # Another computer: the same, without picking again.
    other = Visitor(shop)
    other.login("maryam")
    assert language_of(other.get("/tickets/")) == "en"

    # Picking Persian again is saved the same way.
    other.pick("fa")
    assert language_of(other.get("/")) == "fa"
    assert saved_language(user_id) == "fa"
    assert language_of(desk.get("/")) == "fa"  # the open session on the first computer too


def test_the_language_one_user_picks_is_not_anothers(shop):
    first, second = add_staff("maryam"), add_staff("hamid")
    a, b = Visitor(shop), Visitor(shop)
    a.login("maryam")
    b.login("hamid")
    a.pick("en")
    assert language_of(a.get("/")) == "en"
    assert language_of(b.get("/")) == "fa"
    assert (saved_language(first), saved_language(second)) == ("en", None)


def test_an_anonymous_visitors_choice_is_kept_in_their_session_only(shop):
    from sqlalchemy import func, select

    from servicedesk.extensions import db
    from servicedesk.models import User
    user_id = add_staff("maryam")
    visitor = Visitor(shop)
    assert language_of(visitor.get("/login")) == "fa"
    resp = visitor.pick("en", next_url="/login")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login"
    assert language_of(visitor.get("/login")) == "en"
    assert language_of(visitor.get("/login")) == "en"  # kept from page to page
    assert visitor.session_lang() == "en"
    # Nothing is written for an anonymous choice, and nobody else sees it.
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(User)
                             .where(User.language.is_not(None))) == 0
    assert language_of(Visitor(shop).get("/login")) == "fa"

    # Logging in keeps the session's choice for this visit, but does not save it on the account:
    # the same person on another computer gets the shop's language.
    visitor.login("maryam")
    assert language_of(visitor.get("/")) == "en"
    assert saved_language(user_id) is None
    elsewhere = Visitor(shop)
    elsewhere.login("maryam")
    assert language_of(elsewhere.get("/")) == "fa"


def test_a_file_the_last_page_asked_for_does_not_take_back_the_language_just_picked(shop):
    """A browser still fetching the last page's stylesheet, favicon, polled queue board or
    dashboard figures when the next answer switched its language: that answer, made from the
    cookie the browser sent before the switch, must not set the session back (the desk's next
    page came in Persian again)."""
    from .conftest import add_user
    add_user("maryam", "manager")  # the dashboard is a manager's
    desk = Visitor(shop)
    desk.login("maryam")
    assert language_of(desk.get("/tickets/")) == "fa"
    before = desk.client.get_cookie("session").value
    assert language_of(desk.get("/tickets/?lang=en")) == "en"

    polled = {"HX-Request": "true"}  # the queue board the last page polls every 5 seconds
    fetched = {"Accept": "application/json"}  # the dashboard's script, once a minute
    for late, headers in (("/static/css/app.css", {}), ("/static/favicon.svg", {}),
                          ("/favicon.ico", {}), ("/queue/board", polled),
                          ("/reports/dashboard.json", fetched)):
        files = shop.test_client()  # the same browser, the file asked for before the switch
        files.set_cookie("session", before)
        with shop.app_context():
            resp = files.get(late, headers=headers)
        assert resp.status_code < 400, late
        for header in resp.headers.getlist("Set-Cookie"):
            if header.startswith("session="):  # the browser takes whatever cookie it is sent
                desk.client.set_cookie("session", header.split(";", 1)[0].split("=", 1)[1])
        assert language_of(desk.get("/tickets/")) == "en", late
    # A page of the app still renews the session, a late one included (the shift goes on).
    assert any(h.startswith("session=")
               for h in desk.get("/tickets/").headers.getlist("Set-Cookie"))


def test_the_switcher_ignores_unknown_languages_and_stays_on_the_site(shop):
    user_id = add_staff("maryam")
    desk = Visitor(shop)
    desk.login("maryam")
    for bad in ("de", "", "EN", "en-US"):
        assert desk.pick(bad).status_code == 302
        assert language_of(desk.get("/")) == "fa"
    assert saved_language(user_id) is None
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        resp = desk.pick("en", next_url=target)
        assert resp.status_code == 302 and resp.headers["Location"] == "/desk"  # reception's start


def test_a_shop_phone_as_typed_becomes_a_link_a_dialer_understands():
    assert i18n.tel_uri("۰۲۱-۸۸۷۷ ۶۶۵۵") == "tel:02188776655"
    assert i18n.tel_uri("+98 (21) 8877-6655") == "tel:+982188776655"
    assert i18n.tel_uri(None) == "tel:"
