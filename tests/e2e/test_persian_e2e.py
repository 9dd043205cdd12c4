"""What a Persian user sees, in a real browser: the reception queue, the reception worklist and
the intake form, the staff ticket page and the customer's tracking page (on a phone) render
right-to-left in Vazirmatn (the font really loaded and used), with Jalali dates and Persian
digits, Latin data (device model, IMEI) isolated, links and tokens with their Latin digits
intact, and no English left in the interface; and the same pages in English are left-to-right
with Gregorian dates and Latin digits.

Each page's checks are collected, not stopped at the first one, so a failure lists everything
wrong on the page; a page with problems is kept as a screenshot in test-artifacts/.
"""
import datetime as dt
import re
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import jdatetime
import pytest

from servicedesk import settings
from servicedesk.extensions import db
from servicedesk.i18n import localize_digits
from servicedesk.lifecycle import Actor
from servicedesk.links import tracking_url
from servicedesk.models import Ticket
from servicedesk.services import reception as reception_service
from servicedesk.services import tickets as ticket_service
from servicedesk.services.tickets import default_branch

from ..test_reception import VALID_IMEI
from .conftest import ARTIFACTS, login

TEHRAN = ZoneInfo("Asia/Tehran")
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
TO_ASCII = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "0123456789" * 2)

# Admitted at 20:45 UTC on 20 March 2026: already 00:15 on 21 March in Tehran, which is
# Nowruz, 1 Farvardin 1405. A page that forgets the time zone shows 29 Esfand 1404.
ADMITTED_AT = dt.datetime(2026, 3, 20, 20, 45, tzinfo=dt.timezone.utc)
PROMISED = dt.date(2026, 12, 1)
MODEL = "Galaxy A54"

INTAKE = {"customer": {"name": "نرگس رضایی", "phone": "09121234567", "language": "fa"},
          "device": {"kind": "گوشی همراه", "brand": "Samsung", "model": MODEL,
                     "serial": VALID_IMEI, "colour": "مشکی"},
          "problem": "صفحه شکسته", "accessories": "شارژر", "condition": "خط و خش پشت گوشی"}
LINES = [{"kind": "part", "description": "صفحه نمایش", "qty": 1, "unit_price": 12_000_000},
         {"kind": "labour", "description": "دستمزد نصب", "qty": 1, "unit_price": 2_000_000}]

# Latin words that are the fixture's own data or meant to stay Latin, not interface text.
USERNAMES = ("reception1", "technician1", "manager1", "admin1")  # conftest's users
LATIN_DATA = {"Samsung", "Galaxy", "IMEI", "SMS", "QR", "English"}  # "English": the switcher
GREGORIAN_YEAR = re.compile(r"(?<![0-9])(19[5-9][0-9]|20[0-9][0-9])(?![0-9])")
ANY_DATE = re.compile(r"[0-9۰-۹٠-٩]{4}[/-][0-9۰-۹٠-٩]{1,2}[/-][0-9۰-۹٠-٩]{1,2}")
URL = re.compile(r"https?://\S+")


def jalali_fa(value, fmt="%Y/%m/%d") -> str:
    """The Jalali date (in Tehran) of a UTC datetime or a date, in Persian digits, computed
    here with jdatetime rather than with the app's helper."""
    if isinstance(value, dt.datetime):
        local = value.astimezone(TEHRAN)
        return jdatetime.datetime.fromgregorian(datetime=local).strftime(fmt).translate(FA)
    return jdatetime.date.fromgregorian(date=value).strftime(fmt).translate(FA)


# --- the shop's data ------------------------------------------------------------------------

@pytest.fixture
def shop(app, users):
    """A repaired phone ready to collect (admitted at Nowruz), one waiting for the customer's
    answer to an estimate, and today's queue: R-001 called to counter 2, R-002 and P-001
    waiting. All text a customer or the receptionist typed is Persian."""
    def walk(ticket, *events):
        staff = {"send_to_repair": "reception", "quote": "technician", "approve": "reception",
                 "finish": "technician"}
        data = {"send_to_repair": {"technician": "technician1"},
                "quote": {"lines": LINES, "promised_date": PROMISED.isoformat()},
                "approve": {"channel": "phone"},
                "finish": {"lines": LINES, "work_done": "تعویض صفحه نمایش"}}
        for event in events:
            ticket_service.fire_event(ticket.id, event, Actor.staff(users[staff[event]]),
                                      dict(data[event]))

    ready = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    walk(ready, "send_to_repair", "quote", "approve", "finish")
    estimate = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    walk(estimate, "send_to_repair", "quote")
    db.session.get(Ticket, ready.id).created_at = ADMITTED_AT.replace(tzinfo=None)
    db.session.commit()

    branch = default_branch()
    for service in ("repair", "repair", "pickup"):
        reception_service.issue_number(branch, service)
    called = reception_service.call_next(branch, "2", users["reception"])
    db.session.expire_all()
    return SimpleNamespace(ready=db.session.get(Ticket, ready.id),
                           estimate=db.session.get(Ticket, estimate.id), called=called)


# --- reading the page -------------------------------------------------------------------------

VISIBLE_TEXT_JS = """() => {
  const shown = el => el.offsetParent !== null || el.getClientRects().length > 0;
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('input[placeholder], textarea[placeholder]'))
    if (shown(el)) parts.push(el.placeholder);
  for (const el of document.querySelectorAll('input[type=submit], input[type=button]'))
    if (shown(el)) parts.push(el.value);
  const sms = [...document.querySelectorAll('.sms-body')].map(el => el.innerText);
  const keys = [...document.querySelectorAll('kbd')].map(el => el.innerText);
  return {text: parts.join('\\n'), sms, keys};
}"""

FONT_JS = """async () => {
  await document.fonts.ready;
  const faces = [...document.fonts].filter(f => f.family.replace(/["']/g, '') === 'Vazirmatn');
  const first = el =>
    el ? getComputedStyle(el).fontFamily.split(',')[0].replace(/["']/g, '').trim() : null;
  const used = {};
  for (const sel of ['body', 'h1', 'main', '.btn', '.form-control', 'td', 'dd', 'label'])
    used[sel] = first(document.querySelector(sel));
  return {body: getComputedStyle(document.body).fontFamily, used,
          statuses: faces.map(f => f.status),
          check: document.fonts.check('16px Vazirmatn', 'پذیرش ۱۲۳')};
}"""

ISOLATION_JS = """(token) => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.data.includes(token)) continue;
    const parent = node.parentElement;
    if (parent.closest('script, style, .sms-body') || !parent.getClientRects().length) continue;
    let isolator = null;
    for (let el = parent; el && el !== document.body; el = el.parentElement) {
      // Blocks are isolated by the UA stylesheet anyway; what counts is an inline isolate.
      const style = getComputedStyle(el);
      if (el.tagName === 'BDI' || el.hasAttribute('dir') ||
          (style.display.startsWith('inline') &&
           ['isolate', 'isolate-override', 'plaintext'].includes(style.unicodeBidi))) {
        isolator = el; break;
      }
    }
    out.push({context: (parent.closest('dd, li, p, h1, td, div') || parent).innerText.slice(0, 120),
              isolated: isolator !== null,
              isolator: isolator ? isolator.outerHTML.slice(0, 160) : null,
              isolatorText: isolator ? isolator.textContent.trim() : null});
  }
  return out;
}"""

LINKS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('[href], [action], [hx-get], [hx-post], [src]'))
    for (const attr of ['href', 'action', 'hx-get', 'hx-post', 'src'])
      if (el.hasAttribute(attr)) out.push(el.getAttribute(attr));
  return out;
}"""

# Where the first line of a block of text sits: Persian text starts at the right.
TEXT_BOX_JS = """(sel) => {
  const el = document.querySelector(sel);
  const range = document.createRange();
  range.selectNodeContents(el);
  const r = range.getClientRects()[0];
  return {left: r.left, right: r.right, width: document.documentElement.clientWidth};
}"""


class Checks:
    """Problems found on the pages of one test, reported together at the end."""

    def __init__(self, name: str):
        self.name, self.problems = name, []

    def check(self, ok, what: str) -> bool:
        if not ok:
            self.problems.append(f"[{self.where}] {what}")
        return bool(ok)

    def open(self, page, url: str, where: str, ready: str = "main"):
        self.page, self.where, self.mark = page, where, len(self.problems)
        page.goto(url)
        page.wait_for_selector(ready)
        page.evaluate("document.fonts.ready.then(() => true)")

    def page_done(self):
        """Keep a screenshot of the current page if checks on it failed."""
        if len(self.problems) > self.mark:
            ARTIFACTS.mkdir(exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", self.where.lower()).strip("-")
            try:
                self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{slug}.png"),
                                     full_page=True)
            except Exception:  # noqa: BLE001 - the findings matter more than the picture
                pass

    def verify(self):
        assert not self.problems, (
            f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems)
            + f"\n(screenshots: {ARTIFACTS}/{self.name}-*.png)")


@pytest.fixture
def checks(request):
    return Checks(request.node.name)


@pytest.fixture
def phone(phone_page, request):
    """conftest's phone-sized page, kept as a screenshot when the test fails (conftest keeps
    only the `page` fixture's; the checks keep each page they found wrong)."""
    failed_before = request.session.testsfailed
    yield phone_page
    if request.session.testsfailed > failed_before:  # the call was reported failed
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            phone_page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-phone.png"),
                                  full_page=True)
        except Exception:  # noqa: BLE001 - the failure itself matters more
            pass


# --- what a Persian user notices ---------------------------------------------------------------

def fa(text: str) -> str:
    """``text`` as a Persian page shows it (ticket numbers too: Persian digits)."""
    return localize_digits(text, "fa")


def persian_page(c: Checks, *, latin_tokens=(), expect_text=(), isolated=(), headline="h1"):
    """The checks every Persian page gets; returns its visible text."""
    page = c.page
    direction, lang = (page.get_attribute("html", a) for a in ("dir", "lang"))
    c.check(direction == "rtl", f'<html dir> is {direction!r}, not "rtl"')
    c.check(lang == "fa", f'<html lang> is {lang!r}, not "fa"')
    c.check(page.evaluate("getComputedStyle(document.body).direction") == "rtl",
            "body is not laid out rtl")
    sheets = page.evaluate("[...document.styleSheets].map(s => s.href || '')")
    c.check(any("bootstrap.rtl" in s for s in sheets),
            f"Bootstrap's RTL stylesheet not loaded: {sheets}")

    # The headline starts at the right-hand side.
    box = page.evaluate(TEXT_BOX_JS, headline)
    c.check(box["right"] > box["width"] * 0.6,
            f"{headline} text is not on the right: {box}")

    # Vazirmatn: asked for, loaded, and what the glyphs are really drawn with.
    font = page.evaluate(FONT_JS)
    c.check(font["body"].split(",")[0].strip("\"' ") == "Vazirmatn",
            f"body font-family is {font['body']!r}")
    for sel, family in font["used"].items():
        c.check(family in (None, "Vazirmatn"), f"{sel} uses font {family!r}")
    c.check(font["statuses"] and all(s == "loaded" for s in font["statuses"]),
            f"Vazirmatn font face not loaded: {font['statuses']}")
    c.check(font["check"], "document.fonts.check('16px Vazirmatn') is false")
    drawn = drawn_with(page, headline)
    c.check("Vazirmatn" in drawn, f"{headline} is drawn with {drawn}, not Vazirmatn")

    seen = page.evaluate(VISIBLE_TEXT_JS)
    text = seen["text"]
    for expected in expect_text:
        c.check(expected in text, f"{expected!r} not on the page")

    # Digits: Persian everywhere except the Latin data, links and the SMS sent (as sent).
    rest = URL.sub(" ", text)
    for sms in seen["sms"]:
        rest = rest.replace(sms, " ")
    for key in seen["keys"]:
        rest = rest.replace(key, " ")
    for token in (*latin_tokens, *USERNAMES, settings.get("shop_name")):
        rest = rest.replace(token, " ")
    latin_digits = sorted({m for m in re.findall(r"\S*[0-9]\S*", rest)})
    c.check(not latin_digits, f"Latin digits shown: {latin_digits}")
    c.check(not re.search("[٠-٩]", text), "Arabic-Indic digits (٠-٩) shown instead of Persian")

    # Dates: Jalali, in Persian digits; no Gregorian year anywhere.
    for date in ANY_DATE.findall(URL.sub(" ", text)):
        year = int(date.translate(TO_ASCII)[:4])
        c.check(re.fullmatch("[۰-۹/]+", date) and 1300 <= year < 1500,
                f"date {date!r} is not a Jalali date in Persian digits")
    gregorian = GREGORIAN_YEAR.findall(rest.translate(TO_ASCII))
    c.check(not gregorian, f"Gregorian year(s) visible: {gregorian}")

    # Latin data is isolated so it reads in the right order.
    for token in isolated:
        found = page.evaluate(ISOLATION_JS, token)
        c.check(found, f"{token!r} not found on the page")
        for f in found:
            c.check(f["isolated"] and len(f["isolatorText"]) <= len(token) + 40,
                    f"{token!r} not isolated (<bdi> or dir): {f['context']!r} "
                    f"(nearest isolating element: {f['isolator']})")

    # Links, form targets, tel: links and tokens keep their Latin digits.
    for link in page.evaluate(LINKS_JS):
        c.check(not re.search("[۰-۹٠-٩]", link), f"non-Latin digits in a link: {link!r}")
        if link.startswith("tel:"):
            c.check(re.fullmatch(r"tel:\+?[0-9]+", link), f"tel: link is not dialable: {link!r}")

    # No English left in the interface.
    words = set(re.findall(r"[A-Za-z]{3,}", rest)) - LATIN_DATA
    c.check(not words, f"untranslated English: {untranslated_lines(rest)}")
    return text


def untranslated_lines(text: str) -> list:
    """The lines of text that still carry English words (for the report)."""
    out = []
    for line in text.splitlines():
        if set(re.findall(r"[A-Za-z]{3,}", line)) - LATIN_DATA and line.strip() not in out:
            out.append(line.strip())
    return out


def drawn_with(page, selector: str) -> list:
    """The font families Chromium really drew the text of ``selector`` with (DevTools)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        return [f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode",
                                                  {"nodeId": node})["fonts"]]
    finally:
        cdp.detach()


# --- the tests ---------------------------------------------------------------------------------

def test_reception_queue_worklist_and_intake_in_persian(live_server, page, shop, checks):
    base, c = live_server.url, checks
    login(page, base, "reception1")
    ready = shop.ready

    # The queue: numbers, the counter, the count waiting, the times, all in Persian digits.
    c.open(page, f"{base}/queue", "queue")
    persian_page(c, expect_text=["R-۰۰۱", "R-۰۰۲", "P-۰۰۱"])
    called = page.locator('.queue-called [data-label="R-001"]')
    c.check(called.locator(".queue-label").inner_text() == "R-۰۰۱", "called number not R-۰۰۱")
    c.check("۲" in called.inner_text(), f"counter 2 not shown as ۲: {called.inner_text()!r}")
    called_at = shop.called.called_at.replace(tzinfo=dt.timezone.utc).astimezone(TEHRAN)
    waiting = page.locator('.queue-waiting [data-label="R-002"]').inner_text()
    c.check(re.search("[۰-۹]{2}:[۰-۹]{2}", waiting), f"time not in Persian digits: {waiting!r}")
    call_time = called.locator("td").nth(2).inner_text()
    c.check(call_time.startswith(called_at.strftime("%H:%M").translate(FA)),
            f"call time {call_time!r} is not {called_at:%H:%M} Tehran time in Persian digits")
    count = page.locator("h2 .badge").first.inner_text()
    c.check(count == "۲", f"the count waiting shows {count!r}, not ۲")
    c.check(page.get_attribute("#issue-phone", "dir") == "ltr", "the mobile field is not ltr")
    c.page_done()

    # The worklist: the ready device, its amount, the customer's phone (a tel: link).
    c.open(page, f"{base}/desk", "worklist")
    persian_page(c, latin_tokens=[MODEL], isolated=[MODEL, fa(ready.number)],
                 expect_text=["۱٬۴۰۰٬۰۰۰", "۰۹۱۲ ۱۲۳ ۴۵۶۷", fa(shop.estimate.number)])
    tel = page.locator(f'.worklist-ready [data-ticket="{ready.id}"] a[href^="tel:"]')
    href = tel.get_attribute("href")
    c.check(href == "tel:+989121234567", f"tel: link is {href!r}")
    c.check(tel.inner_text() == "۰۹۱۲ ۱۲۳ ۴۵۶۷", f"phone shown as {tel.inner_text()!r}")
    c.page_done()

    # The intake form for the called number.
    c.open(page, f"{base}/desk/intake?visit_id={shop.called.id}", "intake")
    persian_page(c, expect_text=["R-۰۰۱"])
    badge = page.locator("[data-visit]").inner_text()
    c.check("R-۰۰۱" in badge, f"the number being served shows {badge!r}")
    for field in ("customer_phone", "device_serial", "pre_approved_amount"):
        c.check(page.get_attribute(f"#{field}", "dir") == "ltr", f"#{field} is not ltr")
    c.page_done()
    c.verify()


def test_staff_ticket_page_in_persian(live_server, page, shop, checks):
    base, c, ticket = live_server.url, checks, shop.ready
    login(page, base, "reception1")
    c.open(page, f"{base}/tickets/{ticket.id}", "ticket")
    received = jalali_fa(ADMITTED_AT, "%Y/%m/%d %H:%M")  # ۱۴۰۵/۰۱/۰۱ ۰۰:۱۵
    text = persian_page(c, latin_tokens=[MODEL, VALID_IMEI],
                        isolated=[MODEL, VALID_IMEI, fa(ticket.number)],
                        expect_text=[received, jalali_fa(PROMISED), "۱٬۴۰۰٬۰۰۰ تومان",
                                     "۱٬۲۰۰٬۰۰۰", "۲۰۰٬۰۰۰"])
    c.check(jalali_fa(ADMITTED_AT.date()) not in text,
            "the intake date is the UTC day (۱۴۰۴/۱۲/۲۹), not Tehran's")
    received_dd = page.locator("dl.ticket-facts dd").filter(
        has_text=re.compile("[0-9۰-۹]{4}/")).first.inner_text()  # "Received", the first date
    c.check(received_dd == received, f"'Received' shows {received_dd!r}, expected {received!r}")
    # The SMS text shows the tracking link, its token and port in Latin digits.
    sms = " ".join(page.locator(".sms-body").all_inner_texts())
    c.check(tracking_url(ticket) in sms, f"tracking link {tracking_url(ticket)} not in the SMS")
    # The customer's phone: Persian digits, as on the worklist.
    facts = page.locator("dl.ticket-facts").inner_text()
    c.check("۰۹۱۲ ۱۲۳ ۴۵۶۷" in facts, f"customer's phone not in Persian digits: {facts[:80]!r}")
    c.page_done()

    # Its receipt (the page's reprint link): the QR code and the link under it keep the
    # tracking link's Latin digits and token.
    c.open(page, base + page.get_attribute("[data-print=receipt]", "href"), "receipt", ".qr")
    url = tracking_url(ticket)
    qr = page.get_attribute(".qr", "data-qr")
    c.check(qr == url, f"the QR code carries {qr!r}, not {url!r}")
    printed = page.locator(".slip-url").inner_text()
    c.check(printed == url, f"the link printed under the QR code is {printed!r}")
    c.page_done()
    c.verify()


def test_tracking_page_in_persian_on_a_phone(live_server, phone, shop, checks):
    c, ready = checks, shop.ready
    c.open(phone, tracking_url(ready), "tracking ready")
    received = jalali_fa(ADMITTED_AT)  # ۱۴۰۵/۰۱/۰۱
    text = persian_page(c, latin_tokens=[MODEL], isolated=[MODEL, fa(ready.number)],
                        expect_text=[received, "۱٬۴۰۰٬۰۰۰ تومان"])
    c.check(jalali_fa(ADMITTED_AT.date()) not in text,
            "the intake date is the UTC day (۱۴۰۴/۱۲/۲۹), not Tehran's")
    due = phone.locator("[data-amount-due]").inner_text()
    c.check(due == "۱٬۴۰۰٬۰۰۰ تومان", f"amount due shows {due!r}")
    c.check(phone.evaluate("document.documentElement.scrollWidth <= innerWidth"),
            "the page scrolls sideways on a phone")
    c.check(ready.public_token in phone.url, "the token in the address changed")
    c.page_done()

    # The estimate waiting for the customer's answer: its lines, total and promised date.
    c.open(phone, tracking_url(shop.estimate), "tracking estimate")
    persian_page(c, latin_tokens=[MODEL], isolated=[MODEL, fa(shop.estimate.number)],
                 expect_text=["۱٬۲۰۰٬۰۰۰ تومان", "۲۰۰٬۰۰۰ تومان", "۱٬۴۰۰٬۰۰۰ تومان",
                              jalali_fa(PROMISED)])
    for form in phone.locator("#estimate form").all():
        action = form.get_attribute("action")
        c.check(f"/t/{shop.estimate.public_token}/" in action, f"decision posts to {action!r}")
    c.page_done()
    c.verify()


def english_page(c: Checks, *, expect_text=()):
    page = c.page
    html = page.locator("html")
    c.check(html.get_attribute("dir") == "ltr", f'<html dir> is {html.get_attribute("dir")!r}')
    c.check(html.get_attribute("lang") == "en", f'<html lang> is {html.get_attribute("lang")!r}')
    c.check(page.evaluate("getComputedStyle(document.body).direction") == "ltr", "body is not ltr")
    sheets = page.evaluate("[...document.styleSheets].map(s => s.href || '')")
    c.check(not any("bootstrap.rtl" in s for s in sheets),
            "the RTL stylesheet is loaded in English")
    box = page.evaluate(TEXT_BOX_JS, "h1")
    c.check(box["left"] < box["width"] * 0.4, f"h1 text is not on the left: {box}")
    seen = page.evaluate(VISIBLE_TEXT_JS)
    text = seen["text"]
    for sms in seen["sms"]:  # the SMS as sent, in the customer's language (Persian)
        text = text.replace(sms, " ")
    c.check(not re.search("[۰-۹٠-٩]", text),
            f"Persian digits in English: {sorted(set(re.findall(r'[^ ]*[۰-۹٠-٩][^ ]*', text)))}")
    for date in ANY_DATE.findall(text):
        c.check(date[:2] in ("19", "20"), f"date {date!r} is not Gregorian")
    c.check(not re.search(r"(?<![0-9])1[34][0-9][0-9]/", text), "a Jalali date in English")
    for expected in expect_text:
        c.check(expected in text, f"{expected!r} not on the page")
    c.page_done()
    return text


def test_the_same_pages_in_english_are_ltr_gregorian_with_latin_digits(
        live_server, page, phone, shop, checks):
    base, c, ticket = live_server.url, checks, shop.ready
    login(page, base, "reception1")
    page.goto(f"{base}/queue")
    page.click('form[action$="/language"] button[value=en]')  # the user's language, kept
    page.wait_for_selector('html[lang="en"]')
    local = ADMITTED_AT.astimezone(TEHRAN)  # 2026-03-21 00:15

    c.open(page, f"{base}/queue", "queue en")
    english_page(c, expect_text=["Queue", "R-001", "R-002", "P-001", "Counter 2"])
    c.open(page, f"{base}/desk", "worklist en")
    english_page(c, expect_text=["1,400,000 toman", "0912 123 4567", ticket.number])
    c.open(page, f"{base}/desk/intake?visit_id={shop.called.id}", "intake en")
    english_page(c, expect_text=["Number R-001", "Customer"])
    c.open(page, f"{base}/tickets/{ticket.id}", "ticket en")
    english_page(c, expect_text=[ticket.number, local.strftime("%Y-%m-%d %H:%M"),
                                 PROMISED.isoformat(), "1,400,000 toman", VALID_IMEI])

    c.open(phone, f"{tracking_url(ticket)}?lang=en", "tracking en")
    english_page(c, expect_text=[ticket.number, f"received {local:%Y-%m-%d}",
                                 "1,400,000 toman"])
    # The estimate in English; answering it keeps the language.
    c.open(phone, f"{tracking_url(shop.estimate)}?lang=en", "tracking estimate en")
    english_page(c, expect_text=["1,400,000 toman", PROMISED.isoformat(), "Approve the estimate"])
    for form in phone.locator("#estimate form").all():
        c.check("lang=en" in form.get_attribute("action"), f"{form.get_attribute('action')!r}")
    c.verify()

