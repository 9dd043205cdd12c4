"""Report exports: thin serialisers of a report's rows to CSV and XLSX.

Raw values only (the reports' rows): ISO dates, ASCII digits, integer rials, seconds; the
column titles are translated. CSV is UTF-8 with a BOM, or Excel shows Persian as mojibake;
XLSX sheets are right-to-left in Persian, with a frozen, bold header row.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable, Sequence

from flask_babel import gettext as _

from .i18n import to_shop_time

# Column kinds: how a value is written and, in XLSX, its number format.
KINDS = ("text", "digits", "int", "money", "seconds", "float", "ratio", "date", "datetime",
         "bool")
_XLSX_FORMATS = {"int": "#,##0", "money": "#,##0", "seconds": "#,##0.0", "float": "0.00",
                 "ratio": "0.0%", "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm"}


@dataclass(frozen=True)
class Column:
    key: str
    title: Any  # a (lazy) translated string
    kind: str = "text"


_TEXT_KINDS = ("text", "digits")
_NUMBER = re.compile(r"[+-][0-9][0-9 .,]*")


def formula_like(value: Any) -> bool:
    """Text a spreadsheet would run as a formula (``=HYPERLINK(...)`` typed into a survey
    comment, a customer's name): it starts with = @ + - or a tab or line break. A plain signed
    number (a phone in E.164, -5) is not one."""
    return (isinstance(value, str) and value[:1] in ("=", "@", "+", "-", "\t", "\r", "\n")
            and not _NUMBER.fullmatch(value))


def _raw(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind in _TEXT_KINDS and formula_like(value):
        return "'" + value  # shown as typed, never run (OWASP's CSV injection advice)
    if isinstance(value, datetime):  # the shop's clock, as its pages show it (with the offset)
        return to_shop_time(value).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if kind == "bool":
        return 1 if value else 0
    return value


def header(column: Column) -> str:
    """A column's title in a file: with the unit of its raw values where the page shows them
    otherwise (money in toman or with separators, durations as hours and minutes)."""
    unit = {"money": _("rial"), "seconds": _("seconds")}.get(column.kind)
    return f"{column.title} ({unit})" if unit else str(column.title)


def to_csv(columns: Sequence[Column], rows: Iterable[dict]) -> bytes:
    """CSV bytes, UTF-8 with a BOM: a header of column titles, then the raw values."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([header(c) for c in columns])
    for row in rows:
        writer.writerow([_raw(row.get(c.key), c.kind) for c in columns])
    return buffer.getvalue().encode("utf-8-sig")


def _cell_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        # Excel has no time zones: the shop's wall time, as in the CSV and on the pages.
        return to_shop_time(value).replace(tzinfo=None)
    if kind == "bool":
        return 1 if value else 0
    return value


def to_xlsx(columns: Sequence[Column], rows: Iterable[dict], title: str = "Report",
            rtl: bool = False) -> bytes:
    """XLSX bytes: one sheet named ``title``, right-to-left when ``rtl``, bold frozen header,
    numbers as numbers with a grouping format."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    # Sheet names: at most 31 characters, none of []:*?/\
    ws.title = "".join(ch for ch in str(title) if ch not in "[]:*?/\\")[:31] or "Report"
    ws.sheet_view.rightToLeft = bool(rtl)
    ws.append([header(c) for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    count = 0
    for row in rows:
        ws.append([_cell_value(row.get(c.key), c.kind) for c in columns])
        count += 1
        for cell in ws[count + 1]:
            if cell.data_type == "f":  # openpyxl takes text starting with "=" for a formula
                cell.data_type = "s"  # text, as typed
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        fmt = _XLSX_FORMATS.get(column.kind)
        if fmt:
            for (cell,) in ws.iter_rows(min_row=2, max_row=count + 1, min_col=index,
                                        max_col=index):
                cell.number_format = fmt
        ws.column_dimensions[letter].width = max(12, min(40, len(header(column)) + 4))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
