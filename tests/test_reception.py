"""The reception desk as its staff and customers meet it: the kiosk and its slip, the queue and
the wall display, queue SMS, intake with its printed receipt (QR code), the label, the delivery
desk, the worklist, and slips that read right in Persian and in English."""
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import jdatetime
import pytest
from sqlalchemy import func, select
from sqlalchemy import update as sa_update

from servicedesk import settings
from servicedesk.extensions import db
from servicedesk.i18n import format_datetime, localize_digits
from servicedesk.lifecycle import Actor, verify_records
from servicedesk.links import tracking_url
from servicedesk.models import (AuditLog, Branch, Customer, Device, Notification, Ticket, TicketEvent,
                                Setting, Visit, utcnow)
from servicedesk.services import reception
from servicedesk.services import tickets as ticket_service
from servicedesk.services.tickets import default_branch

from .conftest import INTAKE, LINES, PASSWORD, actor_for, jalali_in

VALID_IMEI = "490154203237518"
PERSIAN_DIGITS = set("۰۱۲۳۴۵۶۷۸۹")


# --- a QR decoder (ISO/IEC 18004), enough for the receipts' links ---------------------------
# It reads the printed modules as a phone would: format bits, mask, zigzag, blocks, segments.
# Nothing here asks the encoder what it put in.

_ALIGN = {1: [], 2: [6, 18], 3: [6, 22], 4: [6, 26], 5: [6, 30], 6: [6, 34], 7: [6, 22, 38],
          8: [6, 24, 42], 9: [6, 26, 46], 10: [6, 28, 50]}
# Error correction level M: (blocks, data codewords per block) per version.
_BLOCKS_M = {1: [(1, 16)], 2: [(1, 28)], 3: [(1, 44)], 4: [(2, 32)], 5: [(2, 43)], 6: [(4, 27)],
             7: [(4, 31)], 8: [(2, 38), (2, 39)], 9: [(3, 36), (2, 37)], 10: [(4, 43), (1, 44)]}
_MASKS = [lambda i, j: (i + j) % 2 == 0, lambda i, j: i % 2 == 0, lambda i, j: j % 3 == 0,
          lambda i, j: (i + j) % 3 == 0, lambda i, j: (i // 2 + j // 3) % 2 == 0,
          lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
          lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
          lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0]
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def qr_matrix(svg: str) -> list[list[int]]:
    """The module grid (1 = dark) of an SVG path QR code, without its quiet zone."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    dark = {(int(x), int(y)) for x, y in re.findall(r"M(\d+),(\d+)H", svg)}
    border = min(min(x for x, _ in dark), min(y for _, y in dark))
    n = size - 2 * border
    return [[int((c + border, r + border) in dark) for c in range(n)] for r in range(n)]


def decode_qr(m: list[list[int]]) -> str:
    n = len(m)
    version = (n - 17) // 4
    assert version in _BLOCKS_M, f"version {version} not supported by this small decoder"
    # format information, the copy along column 8 (bit i at rows 0-5, 7, 8, then n-7 .. n-1)
    rows = [0, 1, 2, 3, 4, 5, 7, 8] + list(range(n - 7, n))
    fmt = sum(m[r][8] << i for i, r in enumerate(rows)) ^ 0x5412
    level, mask = (fmt >> 13) & 3, (fmt >> 10) & 7
    assert level == 0, "expected error correction level M"
    reserved = [[False] * n for _ in range(n)]

    def block(r0, c0, h, w):
        for r in range(max(r0, 0), min(r0 + h, n)):
            for c in range(max(c0, 0), min(c0 + w, n)):
                reserved[r][c] = True
    centres = _ALIGN[version]
    for r in centres:
        for c in centres:
            if (r, c) not in ((6, 6), (6, centres[-1]), (centres[-1], 6)):  # not on a finder
                block(r - 2, c - 2, 5, 5)
    block(0, 0, 9, 9), block(0, n - 8, 9, 8), block(n - 8, 0, 8, 9)
    block(6, 0, 1, n), block(0, 6, n, 1)
    if version >= 7:
        block(0, n - 11, 6, 3), block(n - 11, 0, 3, 6)
    bits, col, up = [], n - 1, True
    while col > 0:
        if col == 6:
            col -= 1
        for r in (range(n - 1, -1, -1) if up else range(n)):
            for c in (col, col - 1):
                if not reserved[r][c]:
                    bits.append(m[r][c] ^ int(_MASKS[mask](r, c)))
        up, col = not up, col - 2
    codewords = [int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    sizes = [size for count, size in _BLOCKS_M[version] for _ in range(count)]
    blocks, pos = [[] for _ in sizes], 0
    for i in range(max(sizes)):
        for b, size in enumerate(sizes):
            if i < size:
                blocks[b].append(codewords[pos])
                pos += 1
    stream = "".join(f"{cw:08b}" for blk in blocks for cw in blk)
    out, i = [], 0

    def take(k):
        nonlocal i
        i += k
        return int(stream[i - k:i], 2)
    while i + 4 <= len(stream):
        mode = take(4)
        if mode == 0:
            break
        if mode == 4:  # bytes
            out.append(bytes(take(8) for _ in range(take(8 if version < 10 else 16))).decode())
        elif mode == 2:  # alphanumeric
            count = take(9 if version < 10 else 11)
            for _ in range(count // 2):
                a, b = divmod(take(11), 45)
                out.append(_ALNUM[a] + _ALNUM[b])
            if count % 2:
                out.append(_ALNUM[take(6)])
        elif mode == 1:  # numeric
            count = take(10 if version < 10 else 12)
            for _ in range(count // 3):
                out.append(f"{take(10):03d}")
            if count % 3:
                out.append(f"{take(7 if count % 3 == 2 else 4):0{count % 3}d}")
        else:
            raise AssertionError(f"unexpected QR mode {mode}")
    return "".join(out)


def qr_in(html: str) -> str:
    """What the (first) QR code on a page says."""
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    return decode_qr(qr_matrix(svg))


def test_the_decoder_reads_what_the_encoder_wrote():
    from servicedesk.slips import qr_svg
    for data in ("http://shop.test/t/ABCDEFGHJKLM", "https://repair.example.ir/t/7K3QX9P2XYZW",
                 "x" * 120):
        assert decode_qr(qr_matrix(str(qr_svg(data)))) == data


# --- a logged-in member of staff --------------------------------------------------------------

def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


class Staff:
    """A browser-like client: logged in through /login, forms sent with their CSRF token."""

    def __init__(self, app, username: str):
        self.app = app
        self.client = app.test_client()
        page = self.get("/login").get_data(as_text=True)
        resp = self.open("POST", "/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": csrf_of(page)})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        self.csrf = csrf_of(self.get("/").get_data(as_text=True))

    def open(self, method, url, **kw):
        # Each request in its own app context, as in production: nothing cached in ``g``
        # (the logged-in user, the CSRF token) carries over to the next request.
        with self.app.app_context():
            return self.client.open(url, method=method, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def post(self, url, data=None, **kw):
        return self.open("POST", url, data={**(data or {}), "csrf_token": self.csrf}, **kw)


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


def text(resp) -> str:
    return resp.get_data(as_text=True)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def reload(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def visit_by_label(label: str) -> Visit:
    return db.session.scalar(select(Visit).where(Visit.label == label))


# --- kiosk, numbers, slips --------------------------------------------------------------------

def test_kiosk_issues_a_number_and_prints_its_slip(desk):
    resp = desk.post("/kiosk", {"service": "repair"})
    assert resp.status_code == 302
    visit = visit_by_label("R-001")
    assert f"/visits/{visit.id}/slip" in resp.location and "print=1" in resp.location
    slip = text(desk.get(resp.location))
    assert 'dir="rtl"' in slip and "R-۰۰۱" in slip
    assert "data-autoprint" in slip and "data-return-to=\"/kiosk?lang=fa\"" in slip
    desk.post("/kiosk", {"service": "repair"})
    second = visit_by_label("R-002")
    page = text(desk.get(f"/visits/{second.id}/slip"))
    assert "R-۰۰۲" in page
    assert re.search(r'slip-ahead">[^<]*۱', page)  # one person ahead


def test_a_number_taken_at_the_kiosk_in_english_is_texted_in_english(desk):
    """A customer not on file switches the kiosk to English: their queue SMS are English (one
    on file keeps their own language); the kiosk goes back to the shop's language for the
    next customer."""
    resp = desk.post("/kiosk?lang=en", {"service": "repair", "phone": "09120005555"})
    assert "data-return-to=\"/kiosk?lang=fa\"" in text(desk.get(resp.location))
    [note] = db.session.scalars(select(Notification)).all()
    assert note.language == "en" and "your turn is near" in note.body
    assert "people ahead of you: nobody" in note.body  # not "0"
    assert visit_by_label("R-001").language == "en"
    desk.get("/kiosk?lang=fa")  # the slip's page goes back there by itself
    desk.post("/kiosk", {"service": "repair", "phone": "09120007777"})
    persian = db.session.scalars(select(Notification).where(
        Notification.to == "+989120007777")).all()
    # Persian says the count after the words, as the English does: with nobody ahead it
    # reads "people ahead of you: nobody", not "nobody people ahead of you"
    assert any("نفرات جلوتر از شما: ۱)" in n.body for n in persian), [n.body for n in persian]
    desk.post("/kiosk", {"service": "repair", "phone": "09120006666"})
    notes = db.session.scalars(select(Notification).order_by(Notification.id)).all()
    assert notes[-1].language == "fa"


def test_the_queue_slips_qr_code_opens_the_number_at_the_desk(desk):
    """Scanned at the desk: a repair number opens its intake, with the number attached (the
    intake serves it); a pickup number opens the queue, saying where it stands."""
    desk.post("/kiosk", {"service": "repair"})
    desk.post("/kiosk", {"service": "pickup"})
    repair, pickup = visit_by_label("R-001"), visit_by_label("P-001")
    for paper in ("", "?paper=58"):
        slip = text(desk.get(f"/visits/{repair.id}/slip{paper}"))
        assert qr_in(slip) == f"http://shop.test/desk/visits/{repair.id}"
    resp = desk.get(f"/desk/visits/{repair.id}")
    assert resp.status_code == 302 and resp.location == f"/desk/intake?visit_id={repair.id}"
    url = qr_in(text(desk.get(f"/visits/{pickup.id}/slip")))
    resp = desk.get(url.removeprefix("http://shop.test") + "?lang=en")
    assert resp.status_code == 302 and resp.location.startswith("/queue")
    assert "Number P-001: waiting." in text(desk.get(resp.location))


def test_kiosk_refuses_a_phone_that_is_not_a_phone_and_writes_nothing(desk):
    resp = desk.post("/kiosk", {"service": "repair", "phone": "12345"})
    assert resp.status_code == 422
    assert "is-invalid" in text(resp)
    assert count(Visit) == 0 and count(Notification) == 0


def test_kiosk_refuses_a_foreign_mobile_number_the_desk_takes_it(desk):
    """Anyone can type at the kiosk: a foreign mobile (paid SMS abroad, "SMS pumping") is
    refused there with a message saying why, and nothing is texted; the desk takes it (a
    tourist at the counter)."""
    resp = desk.post("/kiosk?lang=en", {"service": "repair", "phone": "+447911123456"})
    assert resp.status_code == 422
    assert "only this country&#39;s mobile numbers" in text(resp) or \
        "only this country's mobile numbers" in text(resp)
    assert count(Visit) == 0 and count(Notification) == 0
    resp = desk.post("/kiosk", {"service": "repair", "phone": "09120005555"})
    assert resp.status_code == 302 and count(Notification) == 1
    resp = desk.post("/queue/issue", {"service": "repair", "phone": "+447911123456"})
    assert resp.status_code == 302 and "/slip" in resp.location
    assert visit_by_label("R-002").phone == "+447911123456"


def test_queue_numbers_restart_each_day_per_branch(app):
    main = default_branch()
    north = Branch(name="North", code="B")
    db.session.add(north)
    db.session.commit()
    yesterday = utcnow() - timedelta(days=1)
    assert [reception.issue_number(main, "repair", now=yesterday).label for _ in range(3)] == \
        ["R-001", "R-002", "R-003"]
    assert reception.issue_number(main, "repair").label == "R-001"
    assert reception.issue_number(north, "repair").label == "R-001"
    assert reception.issue_number(main, "repair").label == "R-002"
    assert reception.issue_number(main, "pickup").label == "P-001"
    # yesterday's numbers are not in today's queue
    board = reception.queue_board(main)
    assert [w.visit.label for w in board["waiting"]] == ["R-001", "R-002", "P-001"]


def test_queue_sms_issued_then_near_then_called(app, users):
    app.config["QUEUE_NEAR_AHEAD"] = 2
    branch = default_branch()
    for _ in range(3):
        reception.issue_number(branch, "repair")
    mine = reception.issue_number(branch, "repair", phone="۰۹۱۲ ۱۲۳ ۴۵۶۷")
    assert mine.phone == "+989121234567"

    def sms():
        db.session.expire_all()
        return db.session.scalars(select(Notification).where(Notification.visit_id == mine.id)
                                  .order_by(Notification.id)).all()
    assert [n.event for n in sms()] == ["visit_issued"]
    assert "R-۰۰۴" in sms()[0].body and "۳" in sms()[0].body
    reception.call_next(branch, "1", users["reception"])  # 3 ahead -> 2: "a few left"
    assert [n.event for n in sms()] == ["visit_issued", "visit_near"]
    reception.call_next(branch, "1", users["reception"])
    reception.call_next(branch, "1", users["reception"])
    assert [n.event for n in sms()] == ["visit_issued", "visit_near"]
    called = reception.call_next(branch, "۲", users["reception"])
    assert called.id == mine.id and called.counter == "2"
    notes = sms()
    assert [n.event for n in notes] == ["visit_issued", "visit_near", "visit_called"]
    assert "۲" in notes[-1].body
    assert {n.to for n in notes} == {"+989121234567"}
    assert all(n.ticket_id is None and n.status == "sent" and n.encoding == "UCS-2"
               for n in notes)
    reception.recall(mine.id, users["reception"])  # called again: no second SMS
    assert len(sms()) == 3


def test_a_number_issued_with_few_ahead_is_told_its_turn_is_near_at_once(app, users, desk):
    """With no more than QUEUE_NEAR_AHEAD people ahead, the "turn near" SMS would never come:
    the first SMS says the turn is near (not "we will text you when it is"), it is not sent a
    second time, and the slip promises only the call's SMS."""
    app.config["QUEUE_NEAR_AHEAD"] = 2
    branch = default_branch()
    reception.issue_number(branch, "repair")
    mine = reception.issue_number(branch, "inquiry", phone="09121234567")
    reception.call_next(branch, "1", users["reception"])
    notes = db.session.scalars(select(Notification)
                               .where(Notification.visit_id == mine.id)).all()
    assert [n.event for n in notes] == ["visit_near"]
    assert "again" not in notes[0].body and "دوباره" not in notes[0].body
    slip = text(desk.get(f"/visits/{mine.id}/slip?lang=en"))
    assert "when your number is called" in slip and "when your turn is near" not in slip
    for _ in range(3):
        reception.issue_number(branch, "repair")
    later = reception.issue_number(branch, "repair", phone="09351234567")  # 4 ahead
    assert db.session.scalar(select(Notification.event).where(
        Notification.visit_id == later.id)) == "visit_issued"
    assert "when your turn is near" in text(desk.get(f"/visits/{later.id}/slip?lang=en"))


def test_queue_sms_in_the_known_customers_language_and_not_to_those_who_opted_out(
        app, users, make_ticket):
    make_ticket("intake", intake={
        "customer": {"name": "Hamid", "phone": "09351234567", "language": "en"},
        "device": {"kind": "phone", "brand": "Apple", "model": "iPhone 13"},
        "problem": "Battery"})
    branch = default_branch()
    en = reception.issue_number(branch, "pickup", phone="09351234567")
    note = db.session.scalar(select(Notification).where(Notification.visit_id == en.id))
    assert note.language == "en" and "P-001" in note.body and note.body.isascii()
    customer = db.session.scalar(select(Customer).where(Customer.phone == "+989351234567"))
    customer.sms_opt_out = True
    db.session.commit()
    quiet = reception.issue_number(branch, "pickup", phone="09351234567")
    assert db.session.scalar(select(Notification).where(Notification.visit_id == quiet.id)) \
        is None


# --- the queue and the wall display -----------------------------------------------------------

def test_call_next_shows_the_number_on_the_display(desk, users):
    for _ in range(2):
        desk.post("/kiosk", {"service": "repair"})
    queue = text(desk.get("/queue"))
    assert 'data-label="R-001"' in queue and 'data-label="R-002"' in queue
    resp = desk.post("/queue/next", {"counter": "۳"})
    assert resp.status_code == 302
    first = reload(visit_by_label("R-001"))
    assert first.status == "called" and first.counter == "3"
    assert first.called_by_id == users["reception"].id
    board = text(desk.get("/display/board"))
    assert 'data-label="R-001"' in board and "R-۰۰۱" in board and "۳" in board
    page = text(desk.get("/display"))
    assert 'hx-get="/display/board"' in page and 'hx-trigger="every 3s"' in page
    # the counter is remembered for the next call
    assert 'value="3"' in text(desk.get("/queue"))
    # typed in full, "Counter 2" is counter 2, not "Counter Counter 2" on the board and SMS
    desk.post("/queue/next", {"counter": "Counter 2"})
    assert reload(visit_by_label("R-002")).counter == "2"


def test_a_counter_typed_with_its_word_keeps_the_name_only():
    from servicedesk.services.reception import clean_counter
    for typed in ("Counter 2", " باجه ۲ ", "باجهٔ ۲", "باجه‌ی ۲", "Desk-2", "Counter #2",
                  "counter2", "COUNTER: 2"):
        assert clean_counter(typed) == "2", typed
    assert clean_counter("Desk B") == "B" and clean_counter("Counter") == "Counter"
    assert clean_counter("Counterfeit check") == "Counterfeit check"


def test_queue_actions_answer_htmx_with_the_board(desk):
    desk.post("/kiosk", {"service": "pickup"})
    visit = visit_by_label("P-001")
    resp = desk.post("/queue/next", {"counter": "1"}, headers={"HX-Request": "true"})
    assert resp.status_code == 200 and "<html" not in text(resp)
    assert "P-۰۰۱" in text(resp)
    resp = desk.post("/queue/next", {"counter": "1"}, headers={"HX-Request": "true"})
    assert "alert-info" in text(resp)  # nobody is waiting
    desk.post(f"/queue/{visit.id}/no-show", headers={"HX-Request": "true"})
    assert reload(visit).status == "no_show"
    first_call = reload(visit).called_at
    desk.post(f"/queue/{visit.id}/recall", headers={"HX-Request": "true"})
    visit = reload(visit)
    assert visit.status == "called" and visit.called_at > first_call and visit.counter == "1"


def test_a_pickup_or_a_question_is_marked_served_and_leaves_the_queue(desk):
    """No intake follows a pickup (P) or an inquiry (Q): the counter marks the number served
    once the customer was seen to; it counts as served today and cannot be called again."""
    desk.post("/kiosk", {"service": "pickup"})
    desk.post("/kiosk", {"service": "repair"})
    visit = visit_by_label("P-001")
    desk.post(f"/queue/{visit.id}/call", {"counter": "3"})
    board = text(desk.get("/queue/board"))
    row = board.split(f'data-visit="{visit.id}"', 1)[1].split("</tr>", 1)[0]
    assert "data-served" in row and "/desk/intake" not in row  # a pickup is no intake
    resp = desk.post(f"/queue/{visit.id}/served", headers={"HX-Request": "true"})
    assert "P-۰۰۱" in text(resp) and "alert-success" in text(resp)
    visit = reload(visit)
    assert visit.status == "served" and visit.served_at is not None
    board = text(desk.get("/queue/board?lang=en"))
    assert f'data-visit="{visit.id}"' not in board
    # numbers were called and served today: the board does not say none was
    assert "Nobody is at a counter now." in board and "No number called yet" not in board
    resp = desk.post(f"/queue/{visit.id}/served", headers={"HX-Request": "true"})
    assert "alert-danger" in text(resp)  # only a called number
    repair = visit_by_label("R-001")  # still waiting: not served by anyone's click
    resp = desk.post(f"/queue/{repair.id}/served", headers={"HX-Request": "true"})
    assert "alert-danger" in text(resp) and reload(repair).status == "waiting"


def test_call_a_given_number_out_of_turn(desk):
    for _ in range(3):
        desk.post("/kiosk", {"service": "repair"})
    third = visit_by_label("R-003")
    desk.post(f"/queue/{third.id}/call", {"counter": "2"})
    assert reload(third).status == "called"
    assert reload(visit_by_label("R-001")).status == "waiting"
    assert 'data-label="R-003"' in text(desk.get("/display/board"))


def test_reception_issues_a_number_with_a_phone(desk):
    resp = desk.post("/queue/issue", {"service": "inquiry", "phone": "٠٩١٢١٢٣٤٥٦٧"})
    assert resp.status_code == 302 and "back=queue" in resp.location
    visit = visit_by_label("Q-001")
    assert visit.phone == "+989121234567"
    slip = text(desk.get(resp.location))
    assert "Q-۰۰۱" in slip


def test_unknown_ids_are_not_found(desk):
    for url in ("/visits/99/slip", "/tickets/99/receipt", "/tickets/99/label",
                "/visits/99999999999999/slip", "/tickets/99999999999999/receipt",
                "/desk/intake?visit_id=99"):
        assert desk.get(url).status_code == 404, url
    assert desk.post("/queue/99999999999999/call", {"counter": "1"}).status_code == 404
    assert desk.get("/desk/intake?visit_id=99999999999999").status_code == 200


def test_a_polled_partial_after_logout_sends_the_page_to_login(app):
    """The wall display's board, polled after the session ended: the whole page goes to the
    login form, and back to the display after it (not to the bare board, frozen)."""
    from urllib.parse import parse_qs, urlsplit
    client = app.test_client()
    resp = client.get("/display/board", headers={
        "HX-Request": "true", "HX-Current-URL": "http://localhost/display?branch=1"})
    assert resp.status_code == 204
    login = urlsplit(resp.headers["HX-Redirect"])
    assert login.path == "/login" and parse_qs(login.query)["next"] == ["/display?branch=1"]
    # a page of another site named by the header is no destination
    resp = client.get("/display/board", headers={
        "HX-Request": "true", "HX-Current-URL": "http://evil.example/x"})
    assert "evil" not in resp.headers["HX-Redirect"]


def test_who_may_open_which_reception_page(app, users):
    tech = Staff(app, "technician1")
    assert tech.get("/kiosk").status_code == 403
    assert tech.get("/desk").status_code == 403
    assert tech.get("/desk/delivery").status_code == 403
    assert tech.post("/queue/next", {"counter": "1"}).status_code == 403
    assert tech.get("/display").status_code == 200
    manager = Staff(app, "manager1")
    assert manager.get("/desk").status_code == 200
    home = text(manager.get("/"))
    assert "/desk/delivery" in home and "/kiosk" in home
    assert "/desk/delivery" not in text(tech.get("/"))


# --- intake and the receipt -------------------------------------------------------------------

PROMISED = jalali_in(10)


def intake_form(**over):
    form = {"customer_phone": "۰۹۱۲۱۲۳۴۵۶۷", "customer_name": "نرگس رضایی",
            "customer_language": "fa", "device_kind": "Mobile phone", "device_brand": "Samsung",
            "device_model": "Galaxy A54", "device_serial": VALID_IMEI, "device_colour": "Black",
            "problem": "Cracked screen", "accessory": ["SIM card", "Case"],
            "accessories_other": "", "condition": "Scratched back", "service_type": "repair",
            "promised_date": PROMISED[0], "pre_approved_amount": "۵۰۰٬۰۰۰",
            # the same device again on purpose (tests of other things); the question the
            # desk is asked about a device still in the shop has a test of its own
            "twin_ok": "1"}
    form.update(over)
    return form


# A mobile number as people type or paste it: half-spaces (Shift+Space on a Persian keyboard),
# non-breaking and narrow spaces, invisible marks from a contact, Persian and Arabic digits mixed
# with Latin ones, dashes or the tatweel between the digit groups.
TYPED_MOBILES = ["۰۹۳۵\u200c۱۱۱\u200c۲۲۳۳", "0935\u00a0111\u00a02233", "09۳5 1۱1 ۲2۳3",
                 "٠٩٣٥-١١١-٢٢٣٣", "0935–111–2233", "+۹۸ ۹۳۵\u202f۱۱۱\u202f۲۲۳۳",
                 "۰۹۳۵ـ۱۱۱ـ۲۲۳۳", "\u200f۰۹۳۵ ۱۱۱ ۲۲۳۳\u200e", "0935\u2009111\u20092233"]


@pytest.mark.parametrize("typed", TYPED_MOBILES)
def test_a_mobile_number_is_read_however_its_digit_groups_are_set_apart(app, desk, api,
                                                                        make_ticket, typed):
    """At the kiosk, the queue's desk, the API's queue number and intake, the desk's intake
    and its correction of a mistyped number: the same number, +989351112233."""
    mobile = "+989351112233"
    desk.post("/kiosk", {"service": "repair", "phone": typed})
    assert visit_by_label("R-001").phone == mobile
    desk.post("/queue/issue", {"service": "inquiry", "phone": typed})
    assert visit_by_label("Q-001").phone == mobile
    made = api["reception"].post("/api/v1/visits", json={"service": "repair", "phone": typed})
    assert made.status_code == 201, made.get_json()
    assert visit_by_label("R-002").phone == mobile
    ticket = make_ticket("intake")  # taken down as 0912 123 4567: the desk corrects it
    resp = desk.post(f"/tickets/{ticket.id}/customer/phone?lang=en", {"phone": typed})
    assert resp.status_code == 302
    assert reload(ticket).customer.phone == mobile, text(desk.get(f"/tickets/{ticket.id}"))
    resp = desk.post("/desk/intake", intake_form(customer_phone=typed,
                                                 customer_name=ticket.customer.name))
    assert resp.status_code == 302, text(resp)
    made = api["reception"].post("/api/v1/tickets", json={
        **INTAKE, "customer": {"name": "Narges Rezaei", "phone": typed}})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["customer"]["phone"] == mobile
    assert count(Customer) == 1


@pytest.mark.parametrize("typed", ["\u200c\u00a0", "۰۹۳۵\u200c۱۱۱", "0935_111_2233"])
def test_a_number_that_is_not_a_mobile_however_typed_is_refused_and_writes_nothing(desk,
                                                                                 typed):
    resp = desk.post("/desk/intake?lang=en", intake_form(customer_phone=typed))
    assert resp.status_code == 422 and count(Customer) == 0


def test_a_promised_date_that_has_passed_is_refused_at_the_desk(desk):
    """A slip of the year or the month (1400 for 1405): the desk is told, nothing is written.
    A date that cannot exist is called that, not a format error."""
    resp = desk.post("/desk/intake?lang=en", intake_form(promised_date="1400/01/01"))
    page = text(resp)
    assert resp.status_code == 422 and "This date has already passed." in page
    assert 'value="1400/01/01"' in page  # kept, to be corrected
    assert count(Ticket) == 0 and count(Customer) == 0
    resp = desk.post("/desk/intake?lang=en", intake_form(promised_date="1405/12/31"))
    assert resp.status_code == 422 and "1405/12/31 is not a valid date." in text(resp)
    assert count(Ticket) == 0
    far = jalali_in(400)[0]  # more than a year ahead: a slip of the year
    resp = desk.post("/desk/intake?lang=en", intake_form(promised_date=far))
    assert resp.status_code == 422 and "more than a year away" in text(resp)
    assert count(Ticket) == 0


def test_an_intake_form_sent_twice_admits_the_device_once(desk):
    """A double click, or a slow network and a second press: the form's own key makes the
    second one answer with the first's ticket (one ticket, one SMS); a new form is a new
    intake. The key comes back with a form refused for its errors, so mending it and sending
    it twice is still one intake."""
    page = text(desk.get("/desk/intake"))
    key = re.search(r'name="intake_key" value="([^"]+)"', page).group(1)
    assert 'data-submit-once' in page
    refused = desk.post("/desk/intake", intake_form(intake_key=key, problem=""))
    assert f'name="intake_key" value="{key}"' in text(refused)
    first = desk.post("/desk/intake", intake_form(intake_key=key))
    second = desk.post("/desk/intake", intake_form(intake_key=key))
    assert first.status_code == second.status_code == 302
    assert first.location == second.location
    assert count(Ticket) == 1 and count(Notification) == 1
    assert "پیش‌تر ثبت شده بود" in text(desk.get(second.location))  # "...sent twice"
    other = re.search(r'name="intake_key" value="([^"]+)"',
                      text(desk.get("/desk/intake"))).group(1)
    assert other != key
    desk.post("/desk/intake", intake_form(intake_key=other))
    assert count(Ticket) == 2
    # the form brought back (the Back button keeps its key) and filled in for the next
    # customer: a new intake, not the earlier customer's receipt
    nextone = desk.post("/desk/intake", intake_form(
        intake_key=key, customer_phone="09127776655", customer_name="Ali Moradi",
        device_brand="Apple", device_model="iPhone 13", device_serial=""))
    assert nextone.status_code == 302 and nextone.location != first.location
    assert count(Ticket) == 3


def test_an_intake_of_a_device_still_in_the_shop_is_asked_about(desk, make_ticket):
    """The form typed again after the Back button (a new form, a new key), or a device that
    is in the shop already: the desk is shown the open ticket and admits it only when told it
    is another device (or came back)."""
    first = desk.post("/desk/intake", intake_form(twin_ok="", intake_key="k1"))
    assert first.status_code == 302 and count(Ticket) == 1
    # the same form sent twice is answered with its ticket, not asked about
    assert desk.post("/desk/intake", intake_form(twin_ok="", intake_key="k1")).location \
        == first.location
    again = desk.post("/desk/intake?lang=en", intake_form(intake_key="another-form",
                                                          twin_ok=""))
    assert again.status_code == 409 and count(Ticket) == 1
    page = text(again)
    ticket = db.session.scalar(select(Ticket))
    assert f'data-twin="{ticket.id}"' in page and "is still open" in page
    assert 'name="twin_ok"' in page
    told = desk.post("/desk/intake", intake_form(intake_key="another-form", twin_ok="1"))
    assert told.status_code == 302 and count(Ticket) == 2
    # another device of the same customer is no twin
    other = desk.post("/desk/intake", intake_form(intake_key="third", device_serial="",
                                                  device_model="Galaxy Tab S9", twin_ok=""))
    assert other.status_code == 302 and count(Ticket) == 3


def called_visit(desk) -> Visit:
    desk.post("/kiosk", {"service": "repair"})
    desk.post("/queue/next", {"counter": "1"})
    return visit_by_label("R-001")


def test_the_number_left_at_the_kiosk_is_filled_in_at_intake(desk):
    desk.post("/kiosk", {"service": "repair", "phone": "09121234567"})
    desk.post("/queue/next", {"counter": "1"})
    visit = visit_by_label("R-001")
    page = text(desk.get(f"/desk/intake?visit_id={visit.id}"))
    assert re.search(r'id="customer_phone"[^>]*value="۰۹۱۲ ۱۲۳ ۴۵۶۷"', page)  # page's digits
    assert 'hx-trigger="change, load"' in page  # looked up at once
    assert 'value="۰۹۱۲ ۱۲۳ ۴۵۶۷"' not in text(desk.get("/desk/intake"))


def test_a_foreign_number_reads_back_as_it_is_shown(desk):
    """A tourist's +44 number: shown with its country code (as 07911 123456 it would read as
    an Iranian number), so the intake form filled from the queue number admits it and the desk
    finds the customer by the number the pages show. (The desk issued the number: the kiosk
    takes only the shop's own country's numbers.)"""
    desk.post("/queue/issue", {"service": "repair", "phone": "+44 7911 123456"})
    desk.post("/queue/next", {"counter": "1"})
    visit = visit_by_label("R-001")
    page = text(desk.get(f"/desk/intake?visit_id={visit.id}&lang=en"))
    shown = re.search(r'id="customer_phone"[^>]*value="([^"]*)"', page).group(1)
    assert shown == "+44 7911 123456"
    resp = desk.post("/desk/intake", intake_form(visit_id=str(visit.id), customer_phone=shown))
    assert resp.status_code == 302, text(resp)
    ticket = db.session.scalar(select(Ticket))
    assert ticket.customer.phone == "+447911123456"
    assert shown in text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    found = desk.get("/desk/find", query_string={"q": shown, "lang": "en"})
    assert found.status_code == 302 and found.location == f"/tickets/{ticket.id}"


def test_intake_from_a_called_number_prints_the_receipt(desk, app):
    visit = called_visit(desk)
    page = text(desk.get(f"/desk/intake?visit_id={visit.id}"))
    assert "R-۰۰۱" in page
    resp = desk.post("/desk/intake", intake_form(visit_id=str(visit.id)))
    assert resp.status_code == 302, text(resp)
    ticket = db.session.scalar(select(Ticket))
    assert resp.location.startswith(f"/tickets/{ticket.id}/receipt")
    assert ticket.visit_id == visit.id and reload(visit).status == "served"
    assert ticket.customer.phone == "+989121234567"
    assert ticket.device.serial == VALID_IMEI and ticket.pre_approved_amount == 5_000_000
    assert ticket.accessories == "SIM card، Case"
    assert ticket.promised_date.isoformat() == PROMISED[1]
    receipt = text(desk.get(resp.location))
    assert localize_digits(ticket.number, "fa") in receipt and "نرگس رضایی" in receipt
    assert ticket.number not in receipt  # no Latin digits on a Persian slip
    assert "Cracked screen" in receipt and "Scratched back" in receipt
    assert "سیم‌کارت، قاب" in receipt and VALID_IMEI in receipt  # in the receipt's language
    assert "۰۹۱۲***۴۵۶۷" in receipt
    assert "9121234567" not in receipt and "۹۱۲۱۲۳۴۵۶۷" not in receipt
    assert qr_in(receipt) == tracking_url(ticket) == f"http://shop.test/t/{ticket.public_token}"
    assert f"data-qr=\"{tracking_url(ticket)}\"" in receipt
    assert format_datetime(ticket.promised_date, "long_date", locale="fa") in receipt
    assert "slip-terms" in receipt
    # reprint any time, on 58 mm paper too
    again = text(desk.get(f"/tickets/{ticket.id}/receipt?paper=58"))
    assert 'class="slip paper-58"' in again and qr_in(again) == tracking_url(ticket)


@pytest.mark.parametrize("typed", ["Mobile phone", "گوشی موبایل", " phone "])
def test_a_known_device_kind_reads_in_the_readers_language(desk, typed):
    resp = desk.post("/desk/intake", intake_form(device_kind=typed))
    assert resp.status_code == 302, text(resp)
    ticket = db.session.scalar(select(Ticket))
    assert ticket.device.kind == "phone"
    assert "گوشی موبایل Samsung Galaxy A54" in text(desk.get(f"/tickets/{ticket.id}/receipt"))
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert "Mobile phone Samsung Galaxy A54" in page and "گوشی موبایل" not in page


def test_accessories_ticked_at_the_desk_read_in_the_readers_language(desk, make_ticket):
    """A Persian desk ticks the usual items: an English customer's receipt and tracking page
    name them in English; what was typed stays as typed."""
    from .conftest import INTAKE
    resp = desk.post("/desk/intake", intake_form(accessory=["سیم‌کارت", "شارژر"],
                                                 accessories_other="قاب چرمی"))
    assert resp.status_code == 302, text(resp)
    ticket = db.session.scalar(select(Ticket))
    assert ticket.accessories == "سیم‌کارت، شارژر، قاب چرمی"
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert "SIM card, Charger, قاب چرمی" in receipt and "شارژر" not in receipt
    ready = make_ticket("ready", intake={**INTAKE, "accessories": ticket.accessories})
    track = text(desk.get(f"/t/{ready.public_token}?lang=en"))
    assert "what you left with it: SIM card, Charger, قاب چرمی." in track
    # a box ticked and the same thing typed again is listed once
    desk.post("/desk/intake", intake_form(accessory=["قاب"], accessories_other="case, stylus",
                                          customer_phone="09121110000"))
    twice = db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    assert twice.accessories == "قاب، stylus"
    # and an integration's English words read in Persian on the Persian page
    ticket.accessories = "case,  memory CARD, stylus"
    db.session.commit()
    assert "قاب، کارت حافظه، stylus" in text(desk.get(f"/tickets/{ticket.id}?lang=fa"))


@pytest.mark.parametrize("typed", ["samsung ", "SAMSUNG", "سامسونگ", "Samsung"])
def test_a_known_brand_is_stored_in_one_spelling(desk, typed):
    """However the desk typed it, reports and the warranty check see one brand; the form
    offers the usual brands."""
    assert '<datalist id="device-brands">' in text(desk.get("/desk/intake"))
    resp = desk.post("/desk/intake", intake_form(device_brand=typed))
    assert resp.status_code == 302, text(resp)
    assert db.session.scalar(select(Ticket)).device.brand == "Samsung"


def test_an_unknown_brand_is_kept_as_typed():
    from servicedesk.devices import brand_name
    assert brand_name("  Fairphone   Ltd ") == "Fairphone Ltd" and brand_name("iPhone") == "iPhone"
    # an Arabic keyboard's letters, a half-space, a direction mark: still the known brand
    for typed, brand in (("شيائومي", "Xiaomi"), ("نوكيا", "Nokia"), ("هواوي", "Huawei"),
                         ("وان\u200cپلاس", "OnePlus"), ("Samsung\u200f", "Samsung")):
        assert brand_name(typed) == brand, typed


def test_a_known_number_under_another_name_asks_which_name(desk):
    """A returning number with a different name typed (a relative, a new spelling): the desk
    chooses, instead of the ticket quietly going under the name on file."""
    assert desk.post("/desk/intake", intake_form()).status_code == 302
    resp = desk.post("/desk/intake?lang=en", intake_form(customer_name="Ali Rezaei"))
    page = text(resp)
    assert resp.status_code == 422 and "data-known-name" in page
    assert "This number is on file as نرگس رضایی. Choose the name the ticket goes under." in page
    assert "name to Ali Rezaei" in page
    assert "Someone else using this number: file it under نرگس رضایی, brought by Ali Rezaei" \
        in page
    assert db.session.scalar(select(func.count(Ticket.id))) == 1  # nothing written
    # the name on file
    assert 'name="known_phone" value="+989121234567"' in page  # what the answer is about
    assert desk.post("/desk/intake", intake_form(customer_name="Ali Rezaei", known_name="keep",
                                                 known_phone="+989121234567")).status_code == 302
    customer = db.session.scalar(select(Customer))
    assert customer.name == "نرگس رضایی"
    assert db.session.scalar(select(func.count(Ticket.id))) == 2
    # or someone else using the number (a family's one mobile): under the name on file, and
    # the ticket, its page and its receipt say who brought the device
    db.session.execute(sa_update(Customer).values(language="en"))  # the owner reads English
    db.session.commit()
    assert desk.post("/desk/intake", intake_form(customer_name="Samira Jafari",
                                                 known_name="brought", customer_language="fa",
                                                 known_phone="+989121234567")).status_code == 302
    db.session.expire_all()
    brought = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert brought.customer.name == "نرگس رضایی" and brought.brought_by == "Samira Jafari"
    assert brought.customer.language == "en"  # the SMS go to the owner, in their language
    assert "data-brought-by>Samira Jafari<" in text(desk.get(f"/tickets/{brought.id}/receipt"))
    assert "brought by Samira Jafari" in text(desk.get(f"/tickets/{brought.id}?lang=en"))
    page = text(desk.get(f"/desk/delivery?lang=en&q={brought.number}"))  # who may collect it
    assert "<span data-brought-by>brought by Samira Jafari</span>" in page
    # the relative comes back for it and gives their own name: the desk finds it by that name
    assert brought.number in text(desk.get("/desk/delivery?lang=en&q=jafari"))
    assert verify_records(brought) == []
    # or the name typed, which becomes the customer's (and the audit log says so)
    assert desk.post("/desk/intake", intake_form(customer_name="Ali Rezaei", known_name="rename",
                                                 known_phone="+989121234567")).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(Customer)).name == "Ali Rezaei"
    assert db.session.scalar(select(func.count(Customer.id))) == 1
    newest = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert "Ali Rezaei" in text(desk.get(f"/tickets/{newest.id}/receipt"))
    # the ticket's timeline keeps the name it was asked about (old receipts carry it)
    timeline = text(desk.get(f"/tickets/{newest.id}?lang=en"))
    assert "name before this intake" in timeline and "نرگس رضایی" in timeline
    assert newest.events[0].data["customer_renamed_from"] == "نرگس رضایی"
    assert db.session.scalar(select(AuditLog.action).where(AuditLog.action == "customer.rename"))


def test_an_answer_about_one_number_is_not_taken_for_another(desk):
    """The desk was asked about one number, answered, then corrected the number to another
    customer's: that customer is asked about, not renamed."""
    assert desk.post("/desk/intake", intake_form()).status_code == 302
    assert desk.post("/desk/intake", intake_form(customer_phone="09351112233",
                                                 customer_name="Other Person")).status_code == 302
    page = text(desk.post("/desk/intake", intake_form(customer_name="Ali Rezaei")))
    assert 'name="known_phone" value="+989121234567"' in page
    resp = desk.post("/desk/intake?lang=en", intake_form(customer_name="Ali Rezaei",
                                                         customer_phone="09351112233",
                                                 known_name="rename",
                                                 known_phone="+989121234567"))
    assert resp.status_code == 422 and "is on file as Other Person" in text(resp)
    names = db.session.scalars(select(Customer.name).order_by(Customer.id)).all()
    assert names == ["نرگس رضایی", "Other Person"]


@pytest.mark.parametrize("on_file, typed", [("نرگس رضایی", "نرگس  رضايي"),
                                            ("نرگس رضایی", "نرگس رضاىی"),  # ى for ی
                                            ("مهدی کاظمی", "مهدی کاظـمی"),  # a kashida
                                            ("محمد رضایی", "محمّد رضایی"),  # a vowel mark
                                            ("کاظم", "ﻛﺎﻇﻢ"),  # presentation forms
                                            ("نرگس رضایی", "نرگس\u200cرضایی "),
                                            ("narges rezaei", "Narges Rezaei")])
def test_the_same_name_written_another_way_is_not_asked_about(desk, on_file, typed):
    assert desk.post("/desk/intake", intake_form(customer_name=on_file)).status_code == 302
    resp = desk.post("/desk/intake", intake_form(customer_name=typed))
    assert resp.status_code == 302, text(resp)


def test_a_device_kind_the_shop_types_is_kept_as_typed(desk):
    assert desk.post("/desk/intake", intake_form(device_kind="کنسول بازی")).status_code == 302
    ticket = db.session.scalar(select(Ticket))
    assert ticket.device.kind == "کنسول بازی"
    assert "کنسول بازی Samsung" in text(desk.get(f"/tickets/{ticket.id}?lang=en"))


def test_intake_finds_the_returning_customer_by_phone(desk, make_ticket):
    make_ticket("delivered")  # Narges Rezaei, 0912 123 4567
    part = text(desk.get("/desk/customer?customer_phone=۰۹۱۲۱۲۳۴۵۶۷"))
    assert 'data-name="Narges Rezaei"' in part and 'data-language="fa"' in part
    part = text(desk.get("/desk/customer?customer_phone=09350000000"))
    assert "data-customer=" not in part and "<p" in part


@pytest.mark.parametrize("field,value,error_field", [
    ("device_serial", "490154203237519", "device_serial"),   # IMEI check digit wrong
    ("customer_phone", "12345", "customer_phone"),            # not a phone
    ("customer_phone", "02188776655", "customer_phone"),      # a landline: no SMS
    ("problem", "   ", "problem"),                            # no problem text
])
def test_a_bad_intake_is_refused_with_the_fields_error_and_nothing_is_written(
        desk, field, value, error_field):
    visit = called_visit(desk)
    before = {m: count(m) for m in (Ticket, Customer, Device, TicketEvent, Notification)}
    resp = desk.post("/desk/intake", intake_form(visit_id=str(visit.id), **{field: value}))
    assert resp.status_code == 422
    page = text(resp)
    assert re.search(rf'data-error-for="{error_field}">[^<]+<', page)
    assert f'id="{error_field}"' in page
    assert {m: count(m) for m in before} == before
    assert reload(visit).status == "called"
    # what was typed is kept
    assert "Galaxy A54" in page


def test_intake_straight_from_the_queue_moves_the_queue_on(desk, app):
    app.config["QUEUE_NEAR_AHEAD"] = 1
    for phone in ("", "", "09121111111"):
        desk.post("/kiosk", {"service": "repair", "phone": phone})
    first = visit_by_label("R-001")
    desk.post("/desk/intake", intake_form(visit_id=str(first.id)))
    assert reload(first).status == "served"
    third = visit_by_label("R-003")
    events = db.session.scalars(select(Notification.event)
                                .where(Notification.visit_id == third.id)).all()
    assert events == ["visit_issued", "visit_near"]


def test_label_for_the_shelf(desk, make_ticket):
    ticket = make_ticket("intake")
    page = text(desk.get(f"/tickets/{ticket.id}/label"))
    assert localize_digits(ticket.number, "fa") in page and "Narges Rezaei" in page
    assert "Galaxy A54" in page
    # its QR code opens the ticket for staff, never the customer's own link (whoever sees the
    # shelves could answer the estimate or stop the customer's SMS with it)
    shelf = qr_in(page)
    assert ticket.public_token not in shelf and shelf != tracking_url(ticket)
    assert shelf.endswith(f"/tickets/n/{ticket.number}")
    path = shelf.split("://", 1)[1].split("/", 1)[1]
    opened = desk.get("/" + path)
    assert opened.status_code == 302 and opened.location.endswith(f"/tickets/{ticket.id}")
    # the desk's scanner types it into the search, or into the hand-back's amount field
    found = desk.get("/desk/find", query_string={"q": shelf.upper()})
    assert found.status_code == 302 and found.location.endswith(f"/tickets/{ticket.id}")
    assert reception.scanned_query("1400000" + shelf.upper()) == ticket.number
    # printed from the ticket page, "Done" goes back to it
    assert re.search(rf'href="/tickets/{ticket.id}" class="slip-back"', page)
    # printed from the receipt after intake, back to the intake form
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?back=intake"))
    label_link = re.search(r'href="(/tickets/\d+/label[^"]*)"', receipt).group(1)
    again = text(desk.get(label_link.replace("&amp;", "&")))
    assert re.search(r'href="/desk/intake" class="slip-back"', again)


def test_receipt_opens_with_the_api_token_too(api, make_ticket):
    ticket = make_ticket("intake")
    resp = api["reception"].get(f"/tickets/{ticket.id}/receipt")
    assert resp.status_code == 200 and localize_digits(ticket.number, "fa") in text(resp)


def test_slips_carry_the_shop_settings_the_admin_set(desk, make_ticket, users, app):
    """The owner sets the shop's name, address, phone and receipt terms on the settings page;
    the next receipt and queue slip print them (not the configuration's defaults)."""
    from servicedesk.services import admin as admin_service
    with app.test_request_context():
        admin_service.update_settings(users["admin"], {
            **admin_service.current_settings(), "shop_name": "Mobile Doctor Tajrish",
            "shop_phone": "021-2222 3333", "shop_address": "Tajrish Sq., Tehran",
            "receipt_terms": "Devices left over 60 days are sold\nNo warranty on water damage"})
    ticket = make_ticket("intake")
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert "Mobile Doctor Tajrish" in receipt and "Tajrish Sq., Tehran" in receipt
    assert "Devices left over 60 days are sold" in receipt
    assert "No warranty on water damage" in receipt
    assert "Back up your data" not in receipt  # the built-in terms gave way to the shop's
    resp = desk.post("/kiosk", {"service": "repair"})
    slip = text(desk.get(resp.location))
    assert "Mobile Doctor Tajrish" in slip


# --- slips read right in Persian and in English -----------------------------------------------

def test_a_receipt_in_the_customers_language_keeps_the_staffs_tools(desk, make_ticket):
    """An English customer's receipt at a Persian desk: the slip in English, the buttons above
    it (print, paper, label, done) in the receptionist's Persian."""
    from .conftest import INTAKE
    ticket = make_ticket("intake", intake={**INTAKE, "customer": {
        **INTAKE["customer"], "language": "en"}})
    page = text(desk.get(f"/tickets/{ticket.id}/receipt?back=desk"))
    tools = page.split('<nav class="slip-tools"', 1)[1].split("</nav>", 1)[0]
    assert tools.startswith(' lang="fa" dir="rtl"')
    assert "چاپ" in tools and "۸۰ میلی‌متر" in tools and "Print" not in tools
    slip = page.split("</nav>", 1)[1]
    assert "Accessories" in slip and '<html lang="en"' in page
    # a receipt in the staff's own language needs no second language
    same = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=fa"))
    assert '<nav class="slip-tools">' in same


def test_slips_read_right_in_persian_and_in_english(desk, make_ticket):
    ticket = make_ticket("intake")
    admitted = ticket.events[0].at
    fa = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=fa"))
    assert '<html lang="fa" dir="rtl">' in fa
    jalali = format_datetime(admitted, "long", locale="fa")
    assert jalali in fa
    assert set(jalali) & PERSIAN_DIGITS and not re.search(r"[0-9]", jalali)
    local = admitted.astimezone(ZoneInfo("Asia/Tehran"))
    jday = jdatetime.date.fromgregorian(date=local.date())
    assert jday.year < 1500 and localize_digits(jday.year, "fa") in jalali
    assert jdatetime.date.j_months_fa[jday.month - 1] in jalali
    assert "۰۹۱۲***۴۵۶۷" in fa

    en = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert '<html lang="en" dir="ltr">' in en
    assert format_datetime(admitted, "long", locale="en") in en
    assert str(admitted.year) in en and "0912***4567" in en
    assert not set(en) & PERSIAN_DIGITS
    assert "Intake receipt" in en and "Customer" in en

    desk.post("/kiosk", {"service": "repair"})
    visit = visit_by_label("R-001")
    slip_fa = text(desk.get(f"/visits/{visit.id}/slip?lang=fa"))
    assert 'dir="rtl"' in slip_fa and "R-۰۰۱" in slip_fa
    assert format_datetime(visit.issued_at, "long", locale="fa") in slip_fa
    slip_en = text(desk.get(f"/visits/{visit.id}/slip?lang=en"))
    assert 'dir="ltr"' in slip_en and "R-001" in slip_en and "Repair" in slip_en
    assert not set(slip_en) & PERSIAN_DIGITS


def test_slips_print_on_thermal_paper_without_inline_styles_or_scripts(desk, make_ticket, app):
    ticket = make_ticket("intake")
    desk.post("/kiosk", {"service": "repair"})
    for url in (f"/tickets/{ticket.id}/receipt", f"/tickets/{ticket.id}/label",
                f"/visits/{visit_by_label('R-001').id}/slip", "/kiosk", "/queue", "/display",
                "/desk", "/desk/intake", "/desk/delivery"):
        page = text(desk.get(url))
        assert " style=" not in page, url
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url
        assert not re.search(r"<style", page), url
    assert 'class="slip paper-80"' in text(desk.get(f"/tickets/{ticket.id}/receipt"))
    assert 'class="slip paper-58"' in text(desk.get(f"/tickets/{ticket.id}/receipt?paper=۵۸"))
    css = (app.static_folder + "/css/print.css")
    with open(css) as f:
        sheet = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    assert "@page { margin: 0; }" in sheet
    assert not re.search(r"size:\s*80mm\s+auto", sheet)
    assert "width: 72mm" in sheet and "width: 48mm" in sheet


# --- the delivery desk ------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "tracking_url", "token", "number", "short_number", "phone", "serial"])
def test_the_delivery_desk_finds_a_ready_ticket(desk, make_ticket, query):
    make_ticket("intake")
    ticket = make_ticket("ready")
    q = {"tracking_url": tracking_url(ticket), "token": ticket.public_token.lower(),
         "number": ticket.number, "short_number": str(int(ticket.number.split("-")[1])),
         "phone": "۰۹۱۲۱۲۳۴۵۶۷", "serial": VALID_IMEI}[query]
    page = text(desk.get("/desk/delivery", query_string={"q": q}))
    if query in ("phone", "serial"):  # the customer's two tickets: the ready one first
        rows = re.findall(r'data-ticket="(\d+)"', page)
        assert rows[0] == str(ticket.id) and len(rows) == 2
        page = text(desk.get("/desk/delivery", query_string={"q": ticket.number}))
    assert f'data-ticket="{ticket.id}"' in page and 'data-state="ready"' in page
    assert f'data-amount-due="{ticket.amount_due}"' in page
    assert f"/desk/delivery/{ticket.id}" in page


def test_the_delivery_desk_lists_what_waits_to_go_back_and_keeps_the_past_apart(desk,
                                                                               make_ticket):
    """A customer of many visits, found by their phone: the devices still in the shop (the
    ready one first), and their delivered, closed and cancelled tickets behind a link, in a
    list of their own, not among those to hand back."""
    past = [make_ticket("closed"), make_ticket("delivered"), make_ticket("cancelled")]
    ready, repair = make_ticket("ready"), make_ticket("repair")
    page = text(desk.get("/desk/delivery", query_string={"q": "09121234567", "lang": "en"}))
    assert re.findall(r'<tr data-ticket="(\d+)"', page) == [str(ready.id), str(repair.id)]
    link = re.search(r'<a href="([^"]+)" data-show-done>([^<]+)</a>', page)
    assert link and "Also show those handed back or cancelled (3)" in link.group(2)
    page = text(desk.get(link.group(1).replace("&amp;", "&")))
    waiting, done = page.split("data-done-tickets", 1)
    assert re.findall(r'<tr data-ticket="(\d+)"', waiting) == [str(ready.id), str(repair.id)]
    assert re.findall(r'<tr data-ticket="(\d+)"', done) == [str(t.id) for t in
                                                             sorted(past, key=lambda t: -t.id)]
    assert "Handed back or cancelled" in done and "data-show-done" not in page
    # one device in the shop: it opens at once (its hand-back form), the past behind the link
    desk.post(f"/desk/delivery/{ready.id}", {"amount_paid": "1,400,000",
                                             "payment_method": "cash",
                                             "version": str(reload(ready).version)})
    page = text(desk.get("/desk/delivery", query_string={"q": "09121234567", "lang": "en"}))
    assert f'data-ticket="{repair.id}" data-state="repair"' in page
    assert "Also show those handed back or cancelled (4)" in page
    # nothing in the shop: the past tickets are what there is to see
    assert 'data-ticket="' in text(desk.get("/desk/delivery", query_string={
        "q": past[0].number}))


def test_send_to_repair_from_the_desks_worklist_is_one_confirmed_click(desk, make_ticket):
    """The worklist's button sends the device to the repair queue and stays on the worklist;
    a click not confirmed (a browser without JavaScript) opens the ticket page's form, as
    before; a page drawn before someone else sent it sends nothing twice."""
    ticket = make_ticket("intake")
    page = text(desk.get("/desk?lang=en"))
    row = page.split(f'data-ticket="{ticket.id}"', 1)[1].split("</li>", 1)[0]
    assert f'action="/desk/tickets/{ticket.id}/send"' in row and "data-confirm=" in row
    assert "cannot be taken back" in row
    form = {"version": str(ticket.version)}
    resp = desk.post(f"/desk/tickets/{ticket.id}/send", {**form, "confirmed": "0"})
    assert resp.status_code == 302
    assert resp.location.endswith(f"/tickets/{ticket.id}#event-send_to_repair")
    assert reload(ticket).state == "intake"
    resp = desk.post(f"/desk/tickets/{ticket.id}/send?lang=en", {**form, "confirmed": "1"})
    assert resp.status_code == 302 and resp.location.endswith("/desk")
    assert reload(ticket).state == "diagnosis"
    page = text(desk.get("/desk?lang=en"))
    assert f"{ticket.number}: Send to repair." in page
    assert f'data-send-to-repair="{ticket.id}"' not in page
    desk.post(f"/desk/tickets/{ticket.id}/send?lang=en", {**form, "confirmed": "1"})
    assert "alert-danger" in text(desk.get("/desk?lang=en"))
    assert [e.event for e in reload(ticket).events].count("send_to_repair") == 1


def test_a_receipt_scanned_into_the_amount_field_opens_its_ticket(desk, make_ticket):
    """After opening a ticket the cursor is in the amount: the scanner types the next
    customer's receipt there. That is a search, not a payment refused as no number."""
    first, second = make_ticket("ready"), make_ticket("ready")
    due = "۱٬۴۰۰٬۰۰۰"  # what the field held: a scan lands before or after it
    for scan in (tracking_url(second), second.number, tracking_url(second) + due,
                 due + second.number, second.number + due):
        resp = desk.post(f"/desk/delivery/{first.id}", {"amount_paid": scan,
                                                        "version": str(first.version)})
        assert resp.status_code == 302, scan
        page = text(desk.get(resp.location))
        assert f'data-ticket="{second.id}"' in page and 'data-state="ready"' in page
    assert reload(first).state == "ready" and reload(first).amount_paid is None


def test_a_branch_code_with_digits_is_read_as_a_ticket_numbers_start(desk, make_ticket):
    """The admin page allows a branch code such as T1 (Tehran 1): its numbers, T1-00042, are
    found however typed and scanned; "A42" is read both ways when a branch A4 exists too."""
    t1, a4 = Branch(name="Tehran 1", code="T1", active=True), Branch(name="A4", code="A4",
                                                                          active=True)
    db.session.add_all([t1, a4])
    db.session.commit()
    tehran, plain, other = make_ticket("ready"), make_ticket("ready"), make_ticket("intake")
    for ticket, number, branch in ((tehran, "T1-00042", t1), (plain, "A-00042", None),
                                   (other, "A4-00002", a4)):
        db.session.execute(sa_update(Ticket).where(Ticket.id == ticket.id).values(
            number=number, **({"branch_id": branch.id} if branch else {})))
    db.session.commit()
    for typed in ("T1-00042", "t1-42", "T142", "T1-۰۰۰۴۲", " t1 - 42 "):
        assert [t.id for t in reception.find_tickets(typed)] == [tehran.id], typed
    assert {t.id for t in reception.find_tickets("A42")} == {plain.id, other.id}
    assert [t.id for t in reception.find_tickets("A-42")] == [plain.id]
    # scanned into the amount field, wherever it lands
    for field in ("1,400,000T1-00042", "T1-000421400000", "۱۴۰۰۰۰۰ T1-00042"):
        assert reception.scanned_query(field, offered="1400000") == "T1-00042", field
    resp = desk.post(f"/desk/delivery/{plain.id}", {"amount_paid": "T1-00042",
                                                    "version": str(plain.version)})
    assert resp.status_code == 302
    assert f'data-ticket="{tehran.id}"' in text(desk.get(resp.location))
    assert reload(plain).state == "ready"


def test_a_device_going_back_unrepaired_says_so_where_the_desk_looks(desk, make_ticket, users):
    """Declined or returned unrepaired: "Not repaired" and the reason on the ticket, the
    delivery desk and the ready list, not only an amount due of 0."""
    declined = make_ticket("estimate")
    ticket_service.fire_event(declined.id, "decline", actor_for("decline", users),
                              {"reason": "Too expensive", "channel": "phone"})
    returned = make_ticket("diagnosis")
    ticket_service.fire_event(returned.id, "return_unrepaired",
                              actor_for("return_unrepaired", users), {"reason": "No parts"})
    repaired = make_ticket("ready")
    page = text(desk.get(f"/tickets/{declined.id}?lang=en"))
    assert 'data-unrepaired="decline"' in page
    assert "The customer declined the estimate. Reason: Too expensive" in page
    page = text(desk.get(f"/desk/delivery?q={returned.number}&lang=en"))
    assert 'data-unrepaired="return_unrepaired"' in page
    assert "Returned without a repair. Reason: No parts" in page
    ready = text(desk.get("/desk/delivery?lang=en"))
    for ticket, mark in ((declined, True), (returned, True), (repaired, False)):
        row = re.search(rf'data-ticket="{ticket.id}".*?</li>', ready, re.S).group(0)
        assert ("data-unrepaired" in row) == mark, ticket.number
    assert "data-unrepaired" not in text(desk.get(f"/tickets/{repaired.id}"))
    # and the receipt the customer takes home says so
    desk.post(f"/desk/delivery/{returned.id}", {"amount_paid": "0",
                                                "version": str(reload(returned).version)})
    slip = text(desk.get(f"/tickets/{returned.id}/delivery-receipt?lang=en"))
    assert "<dd data-unrepaired>Returned without a repair. No parts</dd>" in slip


def test_the_delivery_desk_names_no_amount_due_before_the_device_is_ready(desk, make_ticket):
    """"Amount due: 0" beside a device still waiting for the customer's approval read as
    "nothing to pay"; a device handed back shows what was paid."""
    waiting = make_ticket("estimate")
    page = text(desk.get(f"/desk/delivery?q={waiting.number}&lang=en"))
    assert "not ready to be handed back" in page and "Amount due" not in page
    handed = make_ticket("delivered")
    page = text(desk.get(f"/desk/delivery?q={handed.number}&lang=en"))
    assert "Amount due" not in page
    assert f'data-amount-paid="{handed.amount_paid}"' in page


def test_a_delivery_amount_left_empty_or_in_the_other_unit_is_named_so(desk, make_ticket):
    ticket = make_ticket("ready")
    for typed, words in (("", "This field is required."),
                         ("1,400,000 rial", "This field takes toman")):
        resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
            "amount_paid": typed, "version": str(ticket.version)})
        assert resp.status_code == 422 and words in text(resp), typed
        # the field comes back as it was sent, not refilled beside its error
        assert re.search(rf'id="amount_paid"[^>]*value="{typed}"', text(resp)), typed
    assert reload(ticket).state == "ready"


def test_the_delivery_desk_shows_a_bill_above_the_approved_estimate(desk, make_ticket, users):
    ticket = make_ticket("repair")
    ticket_service.fire_event(ticket.id, "finish", Actor.staff(users["technician"]), {
        "lines": [*LINES, {"kind": "part", "description": "Glass", "qty": 1,
                           "unit_price": 1_500_000}]})
    page = text(desk.get(f"/desk/delivery?q={ticket.number}&lang=en"))
    assert 'data-approved-estimate="14000000"' in page
    assert "approved an estimate of 1,400,000 toman; the bill is 150,000 toman more" in page
    same = make_ticket("ready")  # billed what was approved: nothing to say
    assert "data-approved-estimate" not in text(desk.get(f"/desk/delivery?q={same.number}"))


def test_a_pickup_number_leads_to_the_delivery_desk_which_lists_what_is_ready(desk,
                                                                              make_ticket):
    """A customer who took a "pickup" number is not admitted again: the queue sends them to
    the delivery desk (found by the phone they left at the kiosk), and the delivery desk opens
    on the devices ready to collect."""
    ready = make_ticket("ready")
    make_ticket("repair")
    pickup = reception.issue_number(default_branch(), "pickup", phone="09121234567")
    repair = reception.issue_number(default_branch(), "repair")
    board = text(desk.get("/queue/board"))
    row = board.split(f'data-visit="{pickup.id}"', 1)[1].split("</tr>", 1)[0]
    assert "data-to-delivery" in row and "/desk/intake" not in row
    assert "q=%2B989121234567" in row
    row = board.split(f'data-visit="{repair.id}"', 1)[1].split("</tr>", 1)[0]
    assert f"/desk/intake?visit_id={repair.id}" in row and "data-to-delivery" not in row
    page = text(desk.get("/desk/delivery?q=%2B989121234567"))
    assert f'data-ticket="{ready.id}"' in page
    page = text(desk.get("/desk/delivery"))
    listed = re.findall(r'<li class="list-group-item[^"]*" data-ticket="(\d+)"', page)
    assert listed == [str(ready.id)]  # the ready one only, not the one in repair


def test_a_customer_without_the_receipt_is_found_by_name_device_or_last_digits(desk,
                                                                               make_ticket):
    """The customer who lost the receipt and calls from another phone: a part of the name
    (however ی and ک were typed), of the device, or the last digits of the number."""
    karimi = make_ticket("ready", intake={
        "customer": {"name": "حمید كريمي", "phone": "09121112233"},  # Arabic ك and ي
        "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A52"},
        "problem": "Battery"})
    other = make_ticket("intake")  # Narges Rezaei, Samsung Galaxy A54, 0912 123 4567
    for q in ("کریمی", "حمید کریمی", "  کريمی ", "A52", "galaxy a52", "2233", "۲۲۳۳",
              "1112233"):
        found = reception.find_tickets(q)
        assert [t.id for t in found] == [karimi.id], q
    assert {t.id for t in reception.find_tickets("galaxy")} == {karimi.id, other.id}
    assert {t.id for t in reception.find_tickets("Rezaei")} == {other.id}
    assert reception.find_tickets("%") == [] and reception.find_tickets("_a") == []
    # the delivery desk and the ticket list read it the same way
    page = text(desk.get("/desk/delivery", query_string={"q": "galaxy"}))
    rows = page.split('class="table table-sm align-middle found-tickets"', 1)[1]
    assert f'data-ticket="{karimi.id}"' in rows and f'data-ticket="{other.id}"' in rows
    assert "۰۹۱۲ ۱۱۱ ۲۲۳۳" in rows  # each row says whose number it is
    page = text(desk.get("/tickets/", query_string={"q": "کریمی"}))
    assert f"/tickets/{karimi.id}" in page and f"/tickets/{other.id}\"" not in page
    page = text(desk.get("/tickets/", query_string={"q": "galaxy", "state": "intake"}))
    assert f"/tickets/{other.id}" in page and f"/tickets/{karimi.id}\"" not in page


def test_old_receipts_and_digit_codes_are_still_found(desk, make_ticket):
    """A branch's code changed (A to M): its old receipts (A-00001) are still found, typed
    and scanned. A branch whose code is all digits (2) does not hide A-00023 from "23".
    Digits of another script that are no numbers (²) are no error."""
    ticket = make_ticket("ready")
    main = default_branch()
    main.code = "M"
    db.session.commit()
    assert [t.id for t in reception.find_tickets(ticket.number)] == [ticket.id]
    assert reception.scanned_query("1,400,000" + ticket.number) == ticket.number
    db.session.add(Branch(name="Two", code="2", active=True))
    db.session.execute(sa_update(Ticket).where(Ticket.id == ticket.id).values(
        number="A-00023"))
    db.session.commit()
    assert ticket.id in [t.id for t in reception.find_tickets("23")]
    assert desk.get("/desk/find?q=²").status_code == 200
    assert desk.get("/desk/find?q=①²").status_code == 200


def test_a_brand_typed_in_persian_finds_the_devices_stored_in_its_one_spelling(desk,
                                                                            make_ticket):
    """Intake stores «سامسونگ» as Samsung: the search reads it the same way, alone or with
    the model."""
    samsung = make_ticket("intake")  # a Samsung Galaxy A54
    apple = make_ticket("intake", intake={**INTAKE, "device": {
        "kind": "phone", "brand": "اپل", "model": "iPhone 13"}})
    assert apple.device.brand == "Apple"
    assert [t.id for t in reception.find_tickets("سامسونگ")] == [samsung.id]
    assert [t.id for t in reception.find_tickets("سامسونگ galaxy")] == [samsung.id]
    assert [t.id for t in reception.find_tickets("اپل")] == [apple.id]
    assert reception.find_tickets("سامسونگ 13") == []


def test_a_search_that_reads_two_ways_finds_both(desk, make_ticket):
    """"A52" is ticket A-00052 and a Galaxy A52; "2233" ticket A-02233 and a number ending in
    2233: the desk sees both (a shop with a thousand tickets hits this on most searches)."""
    galaxy = make_ticket("ready", intake={
        "customer": {"name": "Hamid", "phone": "09121112233"},
        "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A52"},
        "problem": "Battery"})
    db.session.execute(sa_update(Ticket).where(Ticket.id == galaxy.id).values(number="A-02233"))
    db.session.commit()
    other = make_ticket("intake")
    db.session.execute(sa_update(Ticket).where(Ticket.id == other.id).values(number="A-00052"))
    db.session.commit()
    assert {t.id for t in reception.find_tickets("A52")} == {galaxy.id, other.id}
    db.session.execute(sa_update(Ticket).where(Ticket.id == galaxy.id).values(number="A-00001"))
    db.session.execute(sa_update(Ticket).where(Ticket.id == other.id).values(number="A-02233"))
    db.session.commit()
    assert {t.id for t in reception.find_tickets("2233")} == {galaxy.id, other.id}
    # the ticket a number names comes first, however many of a model came in since
    for _ in range(21):
        make_ticket("intake", intake={
            "customer": {"name": "Reza", "phone": "09121112299"},
            "device": {"kind": "phone", "brand": "Samsung", "model": "Galaxy A52"},
            "problem": "Screen"})
    db.session.execute(sa_update(Ticket).where(Ticket.id == other.id).values(number="A-00052"))
    db.session.execute(sa_update(Ticket).where(Ticket.id == galaxy.id).values(number="A-02233"))
    db.session.commit()
    found = reception.find_tickets("a52")
    assert len(found) == 20 and found[0].id == other.id
    # a state is asked of every reading, before the limit: the ready one is found
    assert [t.id for t in reception.find_tickets("2233", state="ready")] == [galaxy.id]
    page = text(desk.get("/tickets/", query_string={"q": "2233", "state": "ready"}))
    assert f"/tickets/{galaxy.id}" in page


def test_the_ticket_page_says_when_the_device_came_in_and_when_the_customer_arrived(
        desk, users):
    """One "received" time everywhere (the receipt's, the timeline's): the arrival with the
    queue number, minutes before, is named as such."""
    from .conftest import INTAKE
    visit = reception.issue_number(default_branch(), "repair")
    db.session.execute(sa_update(Visit).where(Visit.id == visit.id)
                       .values(issued_at=utcnow() - timedelta(minutes=7)))
    db.session.commit()
    ticket = ticket_service.admit({**INTAKE, "visit_id": visit.id},
                                  Actor.staff(users["reception"]))
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    received = re.search(r"<dd[^>]*data-received>([^<]+)</dd>", page)[1]
    arrived = re.search(r"<dd[^>]*data-arrived>([^<]+)</dd>", page)[1]
    admitted_at = db.session.get(Ticket, ticket.id).events[0].at
    assert received == format_datetime(admitted_at, locale="en")
    assert "queue number R-001" in arrived and received not in arrived


def test_a_short_serial_that_looks_like_a_ticket_number_is_found_too(desk, make_ticket):
    ticket = make_ticket("ready", intake={
        "customer": {"name": "Hamid", "phone": "09351234567"},
        "device": {"kind": "laptop", "brand": "Lenovo", "model": "T14", "serial": "PF3X12"},
        "problem": "Keyboard"})
    page = text(desk.get("/desk/delivery", query_string={"q": "pf3x12"}))
    assert f'data-ticket="{ticket.id}"' in page and 'data-state="ready"' in page


def test_deliver_at_the_desk_records_payment_and_prints(desk, make_ticket):
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "۱٬۴۰۰٬۰۰۰", "collected_by": "Ali (brother)",  # toman
        "payment_method": "card", "version": str(ticket.version)})
    assert resp.status_code == 302
    assert resp.location.startswith(f"/tickets/{ticket.id}/delivery-receipt")
    ticket = reload(ticket)
    assert ticket.state == "delivered" and ticket.amount_paid == 14_000_000
    deliver = ticket.events[-1]
    assert deliver.event == "deliver" and deliver.data["collected_by"] == "Ali (brother)"
    assert deliver.actor_name == "reception1"
    assert any(n.event == "deliver" for n in ticket.notifications)
    slip = text(desk.get(resp.location + "&lang=en"))
    assert "Ali (brother)" in slip and "1,400,000 toman" in slip
    assert "data-difference" not in slip  # paid what was due
    assert qr_in(slip).endswith(f"/s/{ticket.public_token}")
    # a second hand-back (double click) is refused, nothing changes
    again = desk.post(f"/desk/delivery/{ticket.id}", {"amount_paid": "0",
                                                      "version": str(ticket.version - 1)})
    assert again.status_code == 409
    assert reload(ticket).amount_paid == 14_000_000


def test_the_delivery_receipt_lists_what_was_returned_and_the_warranty(desk, make_ticket,
                                                                      users):
    """What a dispute needs: the accessories handed back, a line for the signature, and how long
    the work is under warranty (the days the reports count returns in)."""
    from .conftest import INTAKE
    ticket = make_ticket("delivered", intake={**INTAKE, "accessories": "Case, charger"})
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert "<dd data-accessories>Case, Charger</dd>" in slip
    assert "data-signature" in slip
    # counted from the hand-back, so a reprint months later promises no more
    until = format_datetime(ticket.events[-1].at + timedelta(days=90), "long_date", locale="en")
    assert f"under warranty for 90 days, until {until}" in slip
    fa = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=fa"))
    assert "۹۰" in fa  # the days in Persian digits
    # a device handed back unrepaired has no warranty to promise
    unrepaired = make_ticket("diagnosis")
    ticket_service.fire_event(unrepaired.id, "return_unrepaired",
                              actor_for("return_unrepaired", users), {"reason": "No parts"})
    ticket_service.fire_event(unrepaired.id, "deliver", actor_for("deliver", users),
                              {"amount_paid": 0})
    slip = text(desk.get(f"/tickets/{unrepaired.id}/delivery-receipt?lang=en"))
    assert "data-signature" in slip and "warranty" not in slip


def test_deliver_refuses_a_bad_amount(desk, make_ticket):
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}", {"amount_paid": "lots"})
    assert resp.status_code == 422 and "is-invalid" in text(resp)
    assert reload(ticket).state == "ready"


def test_the_desk_says_how_a_payment_was_made(desk, make_ticket, api, users):
    """Cash, the card reader or a card-to-card transfer: the till's count at the end of the
    day needs it. The desk must say it when something was paid; the receipt and the
    timeline show it. The API may send it (one of the three) or not."""
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "1,400,000", "version": str(ticket.version)})
    assert resp.status_code == 422 and "Say how it was paid." in text(resp)
    assert reload(ticket).state == "ready"
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "1,400,000", "payment_method": "transfer",
        "version": str(ticket.version)})
    assert resp.status_code == 302
    deliver = reload(ticket).events[-1]
    assert deliver.data["payment_method"] == "transfer" and "method_needed" not in deliver.data
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert "<dt>Paid by</dt><dd data-paid-by>Card to card</dd>" in slip
    assert "کارت به کارت" in text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=fa"))
    assert "Card to card" in text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    # nothing paid, nothing to say
    free = make_ticket("diagnosis")
    ticket_service.fire_event(free.id, "return_unrepaired",
                              actor_for("return_unrepaired", users), {"reason": "No parts"})
    resp = desk.post(f"/desk/delivery/{free.id}", {"amount_paid": "0",
                                                   "version": str(reload(free).version)})
    assert resp.status_code == 302
    # the API: optional, but one of the three
    other = make_ticket("ready")
    bad = api["reception"].post(f"/api/v1/tickets/{other.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000, "payment_method": "cheque"})
    assert bad.status_code == 422 and "payment_method" in bad.get_json()["fields"]
    good = api["reception"].post(f"/api/v1/tickets/{other.id}/events", json={
        "event": "deliver", "amount_paid": 14_000_000})
    assert good.status_code == 200


def test_a_payment_below_the_amount_due_needs_the_desk_to_say_so(desk, make_ticket):
    """A digit left out (or a figure typed in the wrong unit) must not hand the device back
    underpaid without a word."""
    ticket = make_ticket("ready")  # 14,000,000 rial due
    page = text(desk.get(f"/desk/delivery?lang=en&q={ticket.number}"))
    # the field takes toman, the unit the amount due is shown in, and offers that amount
    # grouped, as the amount due is shown: a zero missing or added is seen
    assert "Amount paid (toman)" in page and 'value="1,400,000"' in page
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "140,000", "version": str(ticket.version)})
    page = text(resp)
    assert resp.status_code == 422 and "is-invalid" in page
    assert "140,000 toman is 1,260,000 toman less than the amount due, 1,400,000 toman" in page
    assert 'value="140,000"' in page  # what was typed stays, to be corrected
    assert reload(ticket).state == "ready"
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "140,000", "differs_ok": "1", "payment_method": "cash",
        "version": str(ticket.version)})
    assert resp.status_code == 302  # a discount, said so
    assert reload(ticket).amount_paid == 1_400_000
    # the receipt says what the difference was, so the customer does not think they owe it
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert re.search(r"Discount or credit</dt><dd data-difference>1,260,000 toman", slip)


def test_a_payment_above_the_amount_due_needs_the_desk_to_say_so(desk, make_ticket):
    """Rials typed into the toman field (the old habit) would put ten times the price on the
    customer's receipt."""
    ticket = make_ticket("ready")  # 1,400,000 toman due
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "14,000,000", "version": str(ticket.version)})
    page = text(resp)
    assert resp.status_code == 422
    assert ("14,000,000 toman is 12,600,000 toman more than the amount due, 1,400,000 toman. "
            "Check the amount") in page
    assert reload(ticket).state == "ready"
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "1,500,000", "differs_ok": "1", "payment_method": "card",
        "version": str(ticket.version)})
    assert resp.status_code == 302  # an extra, said so
    assert reload(ticket).amount_paid == 15_000_000


def test_a_fee_paid_for_a_device_not_repaired_is_an_other_charge_on_the_receipt(desk,
                                                                               make_ticket,
                                                                               users):
    ticket = make_ticket("diagnosis")
    ticket_service.fire_event(ticket.id, "return_unrepaired", actor_for("return_unrepaired",
                                                                        users),
                              {"reason": "Board beyond repair"})
    ticket = reload(ticket)
    assert ticket.amount_due == 0
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "50,000", "differs_ok": "1", "payment_method": "cash",
        "version": str(ticket.version)})
    assert resp.status_code == 302
    slip = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert re.search(r"Other charges</dt><dd data-difference>50,000 toman", slip)
    assert "beyond the amount due" not in slip


def test_a_form_drawn_in_toman_is_read_in_toman_after_the_shop_switched_to_rial(desk,
                                                                                 make_ticket):
    ticket = make_ticket("ready")
    page = text(desk.get(f"/desk/delivery?q={ticket.number}"))
    assert 'name="money_unit" value="toman"' in page
    db.session.add(Setting(key="money_display", value="rial"))  # meanwhile, in the admin page
    db.session.commit()
    settings.invalidate()
    resp = desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": "1,400,000", "money_unit": "toman", "payment_method": "card",
        "version": str(ticket.version)})
    assert resp.status_code == 302
    assert reload(ticket).amount_paid == 14_000_000


def offered_then_paid(desk, ticket, typed: str):
    """The delivery desk's page for ``ticket`` (English) and the answer to paying ``typed``."""
    page = text(desk.get(f"/desk/delivery?lang=en&q={ticket.number}"))
    return page, desk.post(f"/desk/delivery/{ticket.id}", {
        "amount_paid": typed, "payment_method": "card", "version": str(ticket.version)})


def test_a_shop_that_shows_rial_types_rial(desk, make_ticket):
    db.session.add(Setting(key="money_display", value="rial"))  # the admin's choice
    db.session.commit()
    settings.invalidate()
    ticket = make_ticket("ready")
    page, resp = offered_then_paid(desk, ticket, "14,000,000")
    assert "Amount paid (rial)" in page and 'value="14,000,000"' in page
    assert resp.status_code == 302
    assert reload(ticket).amount_paid == 14_000_000


def test_a_toman_amount_with_too_many_decimals_says_how_to_write_it(desk, make_ticket):
    ticket = make_ticket("ready")
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", {
        "amount_paid": "1.400", "version": str(ticket.version)})
    assert resp.status_code == 422
    assert "never with a dot or a slash: in toman a dot is only for one decimal" in text(resp)
    assert reload(ticket).state == "ready"
    # named together with what else is wrong, so the form is mended in one go
    resp = desk.post("/desk/intake?lang=en", intake_form(pre_approved_amount="۱۲۳٫۴۵",
                                                         device_model=""))
    assert resp.status_code == 422 and "never with a dot" in text(resp)
    assert 'data-error-for="pre_approved_amount"' in text(resp)
    assert 'data-error-for="device_model"' in text(resp)
    assert db.session.scalar(select(func.count(Ticket.id))) == 1


def test_a_toman_amount_keeps_its_rials(desk, make_ticket, users):
    """An amount that is not a whole number of toman is offered and read with one decimal,
    so nothing is rounded away."""
    ticket = make_ticket("repair")
    ticket_service.fire_event(ticket.id, "finish", actor_for("finish", users), {"lines": [
        {"kind": "part", "description": "Cable", "qty": 1, "unit_price": 1_234_565}]})
    page, resp = offered_then_paid(desk, reload(ticket), "۱۲۳٬۴۵۶٫۵")
    assert 'value="123,456.5"' in page
    assert resp.status_code == 302
    assert reload(ticket).amount_paid == 1_234_565


def test_a_ticket_not_ready_is_not_handed_back(desk, make_ticket):
    ticket = make_ticket("repair")
    page = text(desk.get("/desk/delivery", query_string={"q": ticket.number}))
    assert f"/desk/delivery/{ticket.id}" not in page and "alert-warning" in page


def test_scanning_a_receipt_at_reception_opens_the_ticket(desk, make_ticket):
    ticket = make_ticket("intake")
    resp = desk.get("/desk/find", query_string={"q": tracking_url(ticket)})
    assert resp.status_code == 302 and resp.location == f"/tickets/{ticket.id}"
    assert "alert-warning" in text(desk.get("/desk/find?q=A-99999"))


# --- the worklist -----------------------------------------------------------------------------

def test_worklist_shows_the_queue_the_ready_oldest_first_and_estimates(desk, make_ticket):
    old = make_ticket("ready")
    new = make_ticket("ready", intake={
        "customer": {"name": "Hamid", "phone": "09351234567"},
        "device": {"kind": "phone", "brand": "Apple", "model": "iPhone 13"},
        "problem": "Battery"})
    estimate = make_ticket("estimate")
    make_ticket("repair")
    desk.post("/kiosk", {"service": "repair"})
    page = text(desk.get("/desk"))
    ready = page.split("worklist-ready")[1].split("worklist-estimates")[0]
    assert re.findall(r'data-ticket="(\d+)"', ready) == [str(old.id), str(new.id)]
    estimates = page.split("worklist-estimates")[1]
    assert re.findall(r'data-ticket="(\d+)"', estimates) == [str(estimate.id)]
    assert 'href="tel:+989121234567"' in estimates
    assert 'data-label="R-001"' in page.split("worklist-queue")[1]


def test_worklist_lists_devices_taken_in_and_not_sent_to_repair(desk, make_ticket):
    """Admitted, a device is on no technician's list until someone sends it to repair: the
    desk that took it in sees it, late after the intake time limit (2 h)."""
    from .test_late_list import entered_hours_ago
    forgotten = make_ticket("intake")
    fresh = make_ticket("intake")
    make_ticket("diagnosis")  # at the repair unit: not here
    entered_hours_ago(forgotten, 3)
    page = text(desk.get("/desk?lang=en"))
    taken_in = page.split("worklist-taken-in")[1].split("worklist-ready")[0]
    assert re.findall(r'data-ticket="(\d+)"', taken_in) == [str(forgotten.id), str(fresh.id)]
    assert re.findall(r'data-ticket="(\d+)" data-overdue', taken_in) == [str(forgotten.id)]
    assert f'action="/desk/tickets/{fresh.id}/send"' in taken_in


def test_worklist_flags_devices_and_estimates_waiting_past_their_time_limit(desk, make_ticket):
    from .test_late_list import entered_hours_ago
    forgotten = make_ticket("ready")       # limit 168 h: 200 h on the shelf
    fresh = make_ticket("ready")
    unanswered = make_ticket("estimate")   # limit 48 h: 50 h without an answer
    recent = make_ticket("estimate")
    entered_hours_ago(forgotten, 200)
    entered_hours_ago(unanswered, 50)
    page = text(desk.get("/desk?lang=en"))
    flagged = re.findall(r'data-ticket="(\d+)" data-overdue', page)
    assert flagged == [str(forgotten.id), str(unanswered.id)]
    assert str(fresh.id) in page and str(recent.id) in page
    assert page.count(">Overdue<") == 2


def test_reception_records_the_customers_answer_taken_by_phone(desk, make_ticket):
    yes = make_ticket("estimate")
    no = make_ticket("estimate")
    desk.post(f"/desk/tickets/{yes.id}/answer", {"decision": "approve", "channel": "phone",
                                                 "version": str(yes.version)})
    assert reload(yes).state == "repair"
    assert reload(yes).events[-1].data["channel"] == "phone"
    resp = desk.post(f"/desk/tickets/{no.id}/answer", {"decision": "decline", "reason": "",
                                                       "channel": "phone"})
    assert reload(no).state == "estimate"  # a decline needs its reason
    page = text(desk.get(resp.location))
    assert "alert-danger" in page
    # the desk lists many tickets: the message says which one and which field (fa by default)
    assert f"{localize_digits(no.number, 'fa')}: علت:" in page
    # back at that ticket's answer, open, the cursor in the reason: not at the search box
    card = page.split(f'id="estimate-{no.id}"', 1)[1].split("</details>", 1)[0]
    assert "data-answer-step open" in card and "autofocus" in card
    assert page.count("autofocus") == 1  # a browser focuses the first: not the scan box
    assert resp.location.endswith(f"#estimate-{no.id}")
    desk.post(f"/desk/tickets/{no.id}/answer", {"decision": "decline", "channel": "in_person",
                                                "reason": "too expensive"})
    assert reload(no).state == "ready"


def test_the_ticket_page_reprints_the_receipt_and_the_label(desk, make_ticket, app, users):
    ticket = make_ticket("intake")
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    receipt = re.search(r'href="([^"]+)" data-print="receipt"', page).group(1)
    label = re.search(r'href="([^"]+)" data-print="label"', page).group(1)
    assert 'data-print="delivery"' not in page  # nothing handed back yet
    # the receipt in the customer's language (as their SMS), the shelf label in the staff's
    assert localize_digits(ticket.number, "fa") in text(desk.get(receipt))
    assert ticket.number in text(desk.get(label))
    delivered = make_ticket("delivered")
    page = text(desk.get(f"/tickets/{delivered.id}?lang=en"))
    link = re.search(r'href="([^"]+)" data-print="delivery"', page).group(1)
    assert localize_digits(delivered.number, "fa") in text(desk.get(link))


def test_a_receipt_speaks_the_customers_language_unless_asked_for_another(desk, make_ticket):
    """An English speaker's receipt at a Persian desk: English, Gregorian dates, Latin digits,
    as their SMS; the staff can still ask for one in their own language."""
    from .conftest import INTAKE
    ticket = make_ticket("delivered", intake={**INTAKE, "customer": {
        "name": "Sara", "phone": "09351234567", "language": "en"}})
    for url in (f"/tickets/{ticket.id}/receipt", f"/tickets/{ticket.id}/delivery-receipt"):
        slip = text(desk.get(url))
        assert '<html lang="en" dir="ltr">' in slip and ticket.number in slip, url
        asked = text(desk.get(url + "?lang=fa"))
        assert '<html lang="fa" dir="rtl">' in asked, url
    label = text(desk.get(f"/tickets/{ticket.id}/label"))  # the shelf's: the staff's language
    assert '<html lang="fa" dir="rtl">' in label
    # a receipt asked for in a language does not switch the staff's screens to it
    desk.get(f"/tickets/{ticket.id}/receipt?lang=en")
    assert '<html lang="fa" dir="rtl">' in text(desk.get("/desk"))


def test_a_slip_the_relative_takes_is_in_the_desks_language(desk, make_ticket, users):
    """The owner reads English; their relative brought the phone in at a Persian desk and
    takes the receipt: it is in the desk's language, as is the delivery receipt when the
    relative collects it too. The owner's own slips stay in English (whatever the desk wrote
    as the collector: "owner" says nothing of a language); ?lang still asks for either."""
    from .conftest import INTAKE
    ticket = make_ticket("ready", intake={**INTAKE, "customer": {
        "name": "Sara", "phone": "09351234567", "language": "en"}})
    db.session.execute(sa_update(Ticket).where(Ticket.id == ticket.id).values(
        brought_by="Samira Jafari"))
    db.session.commit()
    receipt = f"/tickets/{ticket.id}/receipt"
    assert '<html lang="fa" dir="rtl">' in text(desk.get(receipt))
    assert '<html lang="en" dir="ltr">' in text(desk.get(receipt + "?lang=en"))
    reception.deliver(ticket.id, actor_for("deliver", users), ticket.amount_due,
                      collected_by="samira  jafari", payment_method="cash")
    slip = f"/tickets/{ticket.id}/delivery-receipt"
    assert '<html lang="fa" dir="rtl">' in text(desk.get(slip))
    # the owner collecting their own (their name however spelled, or no name written down)
    for collector in (" sara ", "owner", None):
        mine = make_ticket("ready", intake={**INTAKE, "customer": {
            "name": "Sara", "phone": "09351234567", "language": "en"}})
        reception.deliver(mine.id, actor_for("deliver", users), mine.amount_due,
                          collected_by=collector, payment_method="cash")
        for url in (f"/tickets/{mine.id}/receipt", f"/tickets/{mine.id}/delivery-receipt"):
            assert '<html lang="en" dir="ltr">' in text(desk.get(url)), (collector, url)


def test_the_menu_opens_the_reception_intake_form(desk):
    page = text(desk.get("/?lang=en"))
    assert re.search(r'href="/desk/intake"[^>]*>New intake<', page)


def test_digits_follow_the_page_language_on_every_render(desk):
    """A filter on a constant ({{ "0"|digits }}) was worked out once, when Jinja compiled the
    template, in the first request's language: the English kiosk then showed ۰ among 1-9."""
    fa = text(desk.get("/kiosk?lang=fa"))
    en = text(desk.get("/kiosk?lang=en"))
    assert re.search(r'data-key="0">۰<', fa) and re.search(r'data-key="0">0<', en)
    assert 'placeholder="0912 345 6789"' in en and 'placeholder="۰۹۱۲ ۳۴۵ ۶۷۸۹"' in fa
