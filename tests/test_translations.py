"""The Persian catalogue is complete and consistent with the code."""
import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
FA_PO = ROOT / "servicedesk" / "translations" / "fa" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def _catalog(path):
    with path.open("rb") as f:
        return read_po(f)


def _first(value):
    return value if isinstance(value, str) else (value[0] if value else "")


def test_every_message_in_the_code_is_in_the_persian_catalogue(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    in_code = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog(pot) if m.id}
    catalogue = {_first(m.id): m for m in _catalog(FA_PO) if m.id}
    missing = sorted(in_code - catalogue.keys())
    assert missing == [], f"not in the fa catalogue (run flask i18n extract): {missing[:20]}"


def test_every_persian_message_is_translated_and_keeps_its_placeholders():
    # A Persian user must never meet an English string: an empty msgstr falls back to English.
    # A placeholder lost or renamed in translation breaks the page or the SMS at run time.
    problems = []
    for m in _catalog(FA_PO):
        if not m.id:
            continue
        msgid = _first(m.id)
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        if m.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif not all(s.strip() for s in strings):
            problems.append(f"untranslated: {msgid!r}")
        elif any(sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(s))
                 for s in strings):
            problems.append(f"placeholders differ: {msgid!r} -> {strings!r}")
    assert problems == [], f"{len(problems)} problems, first: {problems[:10]}"


def test_persian_sms_templates_read_in_persian(app):
    from servicedesk.notifications.templates import DEFAULTS, default_body
    for event in DEFAULTS:
        fa = default_body(event, "fa")
        en = default_body(event, "en")
        assert fa != en, event
        assert any("\u0600" <= ch <= "\u06ff" for ch in fa), event


# Latin digits a Persian text may keep: a standard's name and an example of a ticket number
# (ticket numbers are printed and scanned as they are).
LATIN_DIGITS_ALLOWED = ("ISO 8601", "A-00042")


def test_persian_translations_write_numbers_in_persian_digits():
    latin = []
    for m in _catalog(FA_PO):
        if not m.id:
            continue
        for s in [m.string] if isinstance(m.string, str) else m.string:
            text = PLACEHOLDER.sub("", s)
            for allowed in LATIN_DIGITS_ALLOWED:
                text = text.replace(allowed, "")
            if re.search(r"[0-9]", text):
                latin.append(s)
    assert latin == []
