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


def test_persian_translations_keep_the_placeholders():
    # Completeness of the whole catalogue is issue 7's open work (see the closing note); what
    # is translated must at least keep every placeholder, or a page or SMS breaks.
    problems = []
    for m in _catalog(FA_PO):
        if not m.id:
            continue
        msgid, msgstr = _first(m.id), _first(m.string)
        if not msgstr:
            continue
        if m.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        elif sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(msgstr)):
            problems.append(f"placeholders differ: {msgid!r} -> {msgstr!r}")
    assert problems == []


def test_persian_sms_templates_read_in_persian(app):
    from servicedesk.notifications.templates import DEFAULTS, default_body
    for event in DEFAULTS:
        fa = default_body(event, "fa")
        en = default_body(event, "en")
        assert fa != en, event
        assert any("\u0600" <= ch <= "\u06ff" for ch in fa), event
