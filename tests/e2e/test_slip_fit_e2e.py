"""Every printed slip fits its paper, measured in the browser as it prints (print media, a
page as wide as the roll: 80 mm or 58 mm), in Persian and in English, with a busy day's data:
a long device name, a long customer name, a bill of 125,000,000 rials split between cash and
the card reader, a refund, a drawer count, long terms with a long link in them.

On each slip: nothing is wider than the page or sticks out of the printable area; an amount is
never broken over two lines (a label beside it may wrap); and the amounts stand in one column
whose edge, and whose figures' units digits, are one line within half a pixel (in Persian the
figure is at the start of the cell, on the right, the unit word after it). On 58 mm a bill's
or a till's line gives its words the whole width, its amount the line below.

SLIP_SHOTS=1 keeps a screenshot of every slip in test-artifacts/ (else only of a failing one).
"""
import os
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.reports import shop_today
from servicedesk.services import reception as reception_service
from servicedesk.services import tickets as ticket_service
from servicedesk.services.tickets import default_branch

from ..test_reception import VALID_IMEI
from .conftest import ARTIFACTS, login

MM = 96 / 25.4  # CSS px per mm
PAPER_PX = {"80": int(80 * MM), "58": int(58 * MM)}  # the page, not wider than the roll
PRINTABLE_MM = {"80": 72, "58": 48}

LONG_TERMS = "\n".join([
    "Keep this receipt: the device is handed back on it or on its QR code only, to the person "
    "named on it or to whoever brings the pickup code.",
    "Our terms in full: https://shop.example.ir/terms-and-conditions-of-repair-and-warranty-2026",
    "شرایط کامل تعمیر و گارانتی در نشانی https://shop.example.ir/terms-and-conditions-2026 "
    "آمده است.",
])

INTAKE = {
    "customer": {"name": "Mohammad-Reza Hosseinzadeh-Tabatabaei", "phone": "09121234567"},
    "device": {"kind": "phone", "brand": "Samsung",
               "model": "Galaxy Z Fold6 5G Enterprise Edition 1TB Crafted Black (SM-F956B/DS)",
               "serial": VALID_IMEI, "colour": "Crafted Black"},
    "problem": "Inner folding screen cracked along the hinge after a drop; the outer screen "
               "flickers; the phone restarts while charging.",
    "accessories": "charger, case, S Pen Fold Edition, SIM tray",
    "condition": "Scratches on the back glass, dent on the frame",
    "pre_approved_amount": 125_000_000,
}
LINES = [
    {"kind": "part", "description": "Inner folding display assembly, original Samsung service "
     "pack (GH82-35325A)", "qty": 1, "unit_price": 110_000_000},
    {"kind": "labour", "description": "Fitting and calibration", "qty": 1,
     "unit_price": 14_000_000},
    {"kind": "part", "description": "Screen protector", "qty": 2, "unit_price": 750_000},
]
BILL = 125_500_000  # rials: 12,550,000 toman


@pytest.fixture
def busy_day(app, users):
    """A ticket with everything on it, handed back with a split payment and part refunded;
    a plain one handed back by card to card; the drawer counted; a queue number."""
    app.config.update(SHOP_ADDRESS="Unit 12, 3rd floor, Alaeddin Mobile Trade Centre, "
                                   "Jomhouri Eslami Avenue, Tehran",
                      SHOP_PHONE="021 6671 2345", RECEIPT_TERMS=LONG_TERMS,
                      SHOP_NAME="Alaeddin Mobile Repair Centre — Jomhouri Branch")
    staff = {"send_to_repair": "reception", "quote": "technician", "approve": "reception",
             "finish": "technician"}
    promised = (date.today() + timedelta(days=20)).isoformat()

    def admitted():
        intake = dict(INTAKE, promised_date=promised)
        return ticket_service.admit(intake, Actor.staff(users["reception"]))

    def finished(ticket):
        data = {"send_to_repair": {"technician": "technician1"},
                "quote": {"lines": LINES, "promised_date": promised},
                "approve": {"channel": "phone"},
                "finish": {"lines": LINES, "work_done": "Replaced the inner display and the "
                           "protector; the hinge checked and cleaned."}}
        for event, role in staff.items():
            ticket_service.fire_event(ticket.id, event, Actor.staff(users[role]),
                                      dict(data[event]))
        return ticket

    big = finished(admitted())
    reception_service.deliver(big.id, Actor.staff(users["reception"]), BILL, "Narges",
                              payments=[{"method": "cash", "amount": 100_000_000},
                                        {"method": "card", "amount": BILL - 100_000_000}])
    reception_service.refund(big.id, Actor.staff(users["manager"]),
                             {"amount": 7_500_000, "payment_method": "card",
                              "reason": "the protector was not fitted"})
    plain = finished(admitted())
    reception_service.deliver(plain.id, Actor.staff(users["reception"]), 1_250_000,
                              "owner", payment_method="transfer")
    branch = default_branch()
    reception_service.count_till(branch, shop_today(), users["reception"], 95_000_000,
                                 2_000_000)
    visit = reception_service.issue_number(branch, "repair")
    db.session.expire_all()
    return {"receipt": f"/tickets/{big.id}/receipt",
            "label": f"/tickets/{big.id}/label",
            "delivery": f"/tickets/{big.id}/delivery-receipt",
            "till": "/desk/takings/slip",
            "queue": f"/visits/{visit.id}/slip"}


# --- measuring a slip -------------------------------------------------------------------------

MEASURE = r"""() => {
  const body = document.body.getBoundingClientRect();
  const html = document.documentElement;
  const out = {page: {scroll: html.scrollWidth, client: html.clientWidth},
               body: {left: body.left, right: body.right, width: body.width},
               outside: [], overflowing: [], amounts: []};
  const name = (el) => el.tagName.toLowerCase()
      + (typeof el.className === "string" && el.className.trim()
         ? "." + el.className.trim().replace(/\s+/g, ".") : "")
      + " " + (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
  for (const el of document.querySelectorAll(".slip-body *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < body.left - 0.5 || r.right > body.right + 0.5) {
      out.outside.push([name(el), Math.round(r.left * 10) / 10, Math.round(r.right * 10) / 10]);
    }
    const style = getComputedStyle(el);
    if (!style.display.startsWith("inline") && el.clientWidth > 0
        && el.scrollWidth > el.clientWidth + 1) {
      out.overflowing.push([name(el), el.scrollWidth, el.clientWidth]);
    }
  }
  // the words of a bill's or a till's line (not its amount): how wide they may run
  out.lineWords = Array.from(document.querySelectorAll(".slip-lines td:not(.amount)"))
    .map((td) => td.getBoundingClientRect().width);
  // an amount: a cell whose whole text is a figure and its unit word
  const MONEY = /^-?[0-9\u06f0-\u06f9][0-9\u06f0-\u06f9,\u066b\u066c.]*\s(toman|rial|تومان|ریال)$/;
  const DIGIT = /[0-9\u06f0-\u06f9]/;
  for (const el of document.querySelectorAll(".slip-body td, .slip-body dd")) {
    const text = el.textContent.trim().replace(/[\u200e\u200f\u2066-\u2069]/g, "");
    if (!MONEY.test(text)) continue;
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const digits = [];
    const tops = new Set();
    const lineHeight = parseFloat(getComputedStyle(el).lineHeight);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.data.length; i++) {
        const range = document.createRange();
        range.setStart(node, i); range.setEnd(node, i + 1);
        const r = range.getBoundingClientRect();
        if (r.height > 0 && node.data[i].trim()) tops.add(Math.round(r.top / (lineHeight / 2)));
        if (DIGIT.test(node.data[i])) digits.push(r.right);
      }
    }
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    out.amounts.push({text, lines: tops.size, units: digits[digits.length - 1],
                      thousands: digits[digits.length - 4],
                      boxEnd: style.direction === "rtl"
                        ? box.left + parseFloat(style.paddingLeft)
                        : box.right - parseFloat(style.paddingRight)});
  }
  return out;
}"""


def _spread(values):
    values = [v for v in values if v is not None]
    return round(max(values) - min(values), 2) if values else 0


def measure(page):
    return page.evaluate(MEASURE)


def problems(m, paper):
    """What is wrong with a measured slip, in words (empty: it fits)."""
    found = []
    if m["page"]["scroll"] > m["page"]["client"]:
        found.append(f"the page scrolls sideways: {m['page']}")
    if m["body"]["width"] > PRINTABLE_MM[paper] * MM + 0.5:
        found.append(f"the slip is wider than the printable {PRINTABLE_MM[paper]} mm: {m['body']}")
    if m["outside"]:
        found.append(f"outside the printable area: {m['outside'][:8]}")
    if m["overflowing"]:
        found.append(f"content wider than its box: {m['overflowing'][:8]}")
    # 58 mm: a line's words beside a 25 mm amount column had 21 mm, a word a line
    narrow = [round(w / MM, 1) for w in m["lineWords"] if w < m["body"]["width"] * 0.9]
    if paper == "58" and narrow:
        found.append(f"a line's words squeezed beside its amount (mm wide): {narrow}")
    return found + amounts_out_of_line(m)


def amounts_out_of_line(m: dict) -> list[str]:
    """The amounts of a measured slip (MEASURE) each on one line and in one column: their
    units', thousands' and boxes' edges within half a pixel."""
    found = []
    broken = [a["text"] for a in m["amounts"] if a["lines"] != 1]
    if broken:
        found.append(f"amounts broken over lines: {broken}")
    for key in ("units", "thousands", "boxEnd"):
        spread = _spread([a[key] for a in m["amounts"]])
        if spread > 0.5:
            found.append(f"amounts' {key} edges differ by {spread}px: "
                         f"{[(a['text'], round(a[key] or 0, 1)) for a in m['amounts']]}")
    return found


def open_slip(browser, base_url, path, lang, paper):
    """The slip as it prints: print media, on a page the roll's width."""
    context = browser.new_context(viewport={"width": PAPER_PX[paper], "height": 900},
                                  device_scale_factor=2, locale="fa-IR")
    context.add_init_script("window.print = function () {};")
    page = context.new_page()
    page.set_default_timeout(10_000)
    login(page, base_url, "reception1")
    page.emulate_media(media="print")
    sep = "&" if "?" in path else "?"
    page.goto(f"{base_url}{path}{sep}lang={lang}&paper={paper}")
    page.evaluate("document.fonts.ready")
    return context, page


SLIPS = ["receipt", "label", "delivery", "till", "queue"]


@pytest.mark.parametrize("paper", ["80", "58"])
@pytest.mark.parametrize("lang", ["fa", "en"])
def test_every_slip_fits_its_paper_with_its_amounts_in_one_column(live_server, browser,
                                                                 busy_day, lang, paper):
    check_slips(live_server, browser, busy_day, lang, paper, SLIPS)


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_amounts_in_rials_fit_the_58_mm_column_too(app, live_server, browser, busy_day, lang):
    """A shop that shows rials prints a figure a digit longer: 125,500,000 rial."""
    app.config["MONEY_DISPLAY"] = "rial"
    check_slips(live_server, browser, busy_day, lang, "58", ["delivery", "till"])


def check_slips(live_server, browser, busy_day, lang, paper, slips):
    report = {}
    counted = {}
    for slip in slips:
        context, page = open_slip(browser, live_server.url, busy_day[slip], lang, paper)
        try:
            expect(page.locator(".slip-body")).to_be_visible()
            m = measure(page)
            counted[slip] = len(m["amounts"])
            found = problems(m, paper)
            if found:
                report[slip] = found
            if found or os.environ.get("SLIP_SHOTS"):  # SLIP_SHOTS=1: every slip, to look at
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"slip-fit-{slip}-{lang}-{paper}.png"),
                                full_page=True)
        finally:
            context.close()
    # the amounts were found: the bill's lines and totals, the parts; the till's methods,
    # refund, count and hand-backs
    assert counted.get("delivery", 7) >= 7 and counted.get("till", 8) >= 8, counted
    assert not report, "\n".join(f"{slip}: {line}" for slip, lines in report.items()
                                 for line in lines)


# Where a sentence's full stop stands against its last letter: after it, on its right, in a
# left-to-right sentence (x of the stop minus x of the letter; positive when on the right).
FULL_STOP = r"""(needle) => {
  const walker = document.createTreeWalker(document.querySelector(".slip-body"),
                                           NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(needle);
    if (at < 0) continue;
    const stop = at + needle.length - 1;
    const rect = (i) => { const r = document.createRange(); r.setStart(node, i);
                          r.setEnd(node, i + 1); return r.getBoundingClientRect(); };
    return rect(stop).left - rect(stop - 1).left;
  }
  return null;
}"""


def test_an_english_sentence_on_a_persian_slip_keeps_its_full_stop_at_its_end(
        live_server, browser, busy_day):
    """The desk types the problem and the work done in English for an imported part, and the
    shop's terms may have an English line: on a Persian (right-to-left) slip, unisolated, the
    sentence's full stop was drawn at its left end (".while charging")."""
    for slip, needles in (("receipt", ["while charging.", "the pickup code."]),
                          ("delivery", ["checked and cleaned."])):
        context, page = open_slip(browser, live_server.url, busy_day[slip], "fa", "80")
        try:
            for needle in needles:
                shift = page.evaluate(FULL_STOP, needle)
                assert shift is not None and shift > 0, (slip, needle, shift)
        finally:
            context.close()


# Each figure with its unit word in a line's words (a split payment's "Cash 10,000,000 toman,
# Card reader 2,550,000 toman"): on which lines each of its letters stands.
FIGURES_IN_WORDS = r"""(selector) => {
  const MONEY = /-?[0-9\u06f0-\u06f9][0-9\u06f0-\u06f9,\u066b\u066c.]*\s(toman|rial|تومان|ریال)/g;
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    const chars = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.data.length; i++) chars.push([node, i, node.data[i]]);
    }
    const text = chars.map((c) => c[2]).join("");
    const lineHeight = parseFloat(getComputedStyle(el).lineHeight);
    for (const match of text.matchAll(MONEY)) {
      const tops = new Set();
      for (let k = match.index; k < match.index + match[0].length; k++) {
        const [node, i, ch] = chars[k];
        if (!ch.trim()) continue;
        const range = document.createRange();
        range.setStart(node, i); range.setEnd(node, i + 1);
        tops.add(Math.round(range.getBoundingClientRect().top / (lineHeight / 2)));
      }
      out.push({figure: match[0], lines: tops.size});
    }
  }
  return out;
}"""


@pytest.mark.parametrize("unit", ["toman", "rial"])
@pytest.mark.parametrize("lang", ["fa", "en"])
def test_a_split_payments_figures_keep_their_unit_on_the_58_mm_till_slip(
        app, live_server, browser, busy_day, lang, unit):
    """A hand-back paid part in cash and part by the card reader is one line of the till
    slip's words; at 58 mm it wraps, and it broke between a figure and its unit word
    ("2,550,000" at a line's end, "toman" starting the next)."""
    app.config["MONEY_DISPLAY"] = unit
    context, page = open_slip(browser, live_server.url, busy_day["till"], lang, "58")
    try:
        figures = page.evaluate(FIGURES_IN_WORDS, "[data-till-handbacks] td:not(.amount)")
        assert len(figures) >= 2, figures  # the split hand-back's two parts
        broken = [f["figure"] for f in figures if f["lines"] != 1]
        if broken:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"till-split-{lang}-{unit}.png"),
                            full_page=True)
        assert not broken, f"a figure broken from its unit: {broken}"
    finally:
        context.close()
