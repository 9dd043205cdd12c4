"""The technician's workbench as technicians meet it: the worklist ("cartable") and its buckets,
claiming from the repair queue, the ticket page (timeline, notes, SMS, one form per allowed
event), the estimate editor, the pre-approved amount, waiting for parts, finishing with the lines
prefilled, returning a device unrepaired."""
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from servicedesk.extensions import db
from servicedesk.i18n import format_datetime
from servicedesk.lifecycle import Actor
from servicedesk.models import Notification, Ticket, TicketEvent, TicketNote
from servicedesk.services import tickets as ticket_service
from servicedesk.services import workbench
from servicedesk.visits import shop_day

from .conftest import INTAKE, PASSWORD, add_user, jalali_in

CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


class Staff:
    """A browser-like client: logged in through /login, forms sent with their CSRF token, each
    request in its own app context (nothing in ``g`` carries over, as in production)."""

    def __init__(self, app, username: str, lang: str = "en"):
        self.app = app
        self.client = app.test_client()
        token = CSRF.search(self.get("/login").get_data(as_text=True)).group(1)
        resp = self.open("POST", "/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        # the language the pages (and the messages they flash) are read in
        self.csrf = CSRF.search(self.get(f"/tickets/?lang={lang}").get_data(as_text=True)).group(1)

    def open(self, method, url, **kw):
        with self.app.app_context():
            return self.client.open(url, method=method, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def post(self, url, data=None, **kw):
        return self.open("POST", url, data={**(data or {}), "csrf_token": self.csrf}, **kw)


def html(resp) -> str:
    return resp.get_data(as_text=True)


def reload(ticket: Ticket) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)


@pytest.fixture
def tech(app, users):
    return Staff(app, "technician1")


@pytest.fixture
def queued(app, users):
    """queued(**intake) -> a ticket sent to the repair unit with no technician yet."""
    def make(**intake):
        ticket = ticket_service.admit({**INTAKE, **intake}, Actor.staff(users["reception"]))
        ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {})
        return reload(ticket)
    return make


def fire_form(staff, ticket, event, lines=(), **fields):
    """Send an event's form from the ticket page as the browser would (editor rows included)."""
    data = {"event": event, "version": str(reload(ticket).version), **fields}
    if lines:
        data.update({"line_kind": [l[0] for l in lines], "line_description": [l[1] for l in lines],
                     "line_qty": [l[2] for l in lines], "line_unit_price": [l[3] for l in lines]})
    return staff.post(f"/tickets/{ticket.id}/events", data)


def rows_of(page: str) -> list[str]:
    return re.findall(r'class="worklist-row[^"]*" data-ticket="(\d+)"', page)


def section(page: str, key: str) -> str:
    start = page.index(f'id="bucket-{key}"')
    end = page.find("<section", start)
    return page[start:end if end > 0 else None]


# --- the worklist ---------------------------------------------------------------------------

def test_the_repair_queue_lists_unclaimed_devices_oldest_first_with_a_claim_button(
        tech, queued, make_ticket):
    first, second = queued(), queued()
    make_ticket("diagnosis")  # already with technician1: not in the queue
    page = html(tech.get("/workbench/"))
    queue = section(page, "queue")
    assert rows_of(queue) == [str(first.id), str(second.id)]
    assert f'data-claim="{first.id}"' in queue
    assert 'data-bucket="queue" data-count="2"' in page


def test_a_technician_claims_a_ticket_and_it_moves_to_their_list(tech, queued, users):
    ticket = queued()
    resp = tech.post(f"/workbench/tickets/{ticket.id}/claim", {"version": ticket.version})
    assert resp.status_code == 302 and resp.location == f"/tickets/{ticket.id}"
    ticket = reload(ticket)
    assert ticket.technician_id == users["technician"].id and ticket.state == "diagnosis"
    claim = ticket.events[-1]
    assert (claim.event, claim.actor_name, claim.from_state, claim.to_state) == (
        "claim", "technician1", "diagnosis", "diagnosis")
    page = html(tech.get("/workbench/"))
    assert rows_of(section(page, "queue")) == []
    assert rows_of(section(page, "diagnosis")) == [str(ticket.id)]
    # the ticket page's timeline says who claimed it
    shown = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert 'data-event="claim"' in shown and "Claimed" in shown


def test_two_technicians_claiming_the_same_ticket_one_wins(app, tech, queued, users):
    add_user("technician2", "technician")
    other = Staff(app, "technician2")
    ticket = queued()
    seen = ticket.version  # both screens show the same version
    assert tech.post(f"/workbench/tickets/{ticket.id}/claim", {"version": seen}).status_code == 302
    resp = other.post(f"/workbench/tickets/{ticket.id}/claim", {"version": seen})
    assert resp.status_code == 302 and resp.location == "/workbench/"
    assert "changed since you opened it" in html(other.get("/workbench/?lang=en"))
    # even with a fresh screen the ticket stays with the first technician
    other.post(f"/workbench/tickets/{ticket.id}/claim", {"version": reload(ticket).version})
    assert "technician1 already has this ticket" in html(other.get("/workbench/?lang=en"))
    ticket = reload(ticket)
    assert ticket.technician.username == "technician1"
    assert [e.event for e in ticket.events].count("claim") == 1


def test_a_manager_hands_a_ticket_on_and_the_holder_gives_it_back(app, tech, queued, users):
    """A technician off sick: the manager gives their ticket to another, with a record of
    who had it; the one holding a ticket can give it back to the queue; nobody else can."""
    add_user("technician2", "technician", full_name="Omid Ahmadi")
    ticket = queued()
    tech.post(f"/workbench/tickets/{ticket.id}/claim", {"version": ticket.version})
    manager = Staff(app, "manager1")
    page = html(manager.get(f"/tickets/{ticket.id}"))
    assert 'data-assign' in page
    assert re.search(r'<option value="technician2"\s*>Omid Ahmadi</option>', page)
    resp = manager.post(f"/workbench/tickets/{ticket.id}/assign",
                        {"technician": "technician2", "version": reload(ticket).version})
    assert resp.status_code == 302
    ticket = reload(ticket)
    assert ticket.technician.username == "technician2" and ticket.state == "diagnosis"
    record = ticket.events[-1]
    assert (record.event, record.actor_name, record.data) == (
        "assign", "manager1", {"technician": "technician2", "before": "technician1"})
    shown = html(manager.get(f"/tickets/{ticket.id}?lang=en"))
    assert "Assigned" in shown and "Was with" in shown and "Omid Ahmadi" in shown
    assert "is with Omid Ahmadi now" in shown
    # the first technician no longer has it, and may not take it back by this door
    assert rows_of(section(html(tech.get("/workbench/")), "diagnosis")) == []
    resp = tech.post(f"/workbench/tickets/{ticket.id}/assign",
                     {"technician": "technician1", "version": ticket.version})
    assert reload(ticket).technician.username == "technician2"
    assert "data-assign" not in html(tech.get(f"/tickets/{ticket.id}"))
    assert "data-someone-elses" in html(tech.get(f"/tickets/{ticket.id}"))  # now Omid's
    # its holder gives it back to the queue
    other = Staff(app, "technician2")
    assert "data-someone-elses" not in html(other.get(f"/tickets/{ticket.id}"))
    page = html(other.get(f"/tickets/{ticket.id}"))
    assert "Give back to the repair queue" in page and "data-give-back" in page  # two taps
    resp = other.post(f"/workbench/tickets/{ticket.id}/assign", {"version": ticket.version})
    assert resp.status_code == 302 and resp.location == "/workbench/"
    ticket = reload(ticket)
    assert ticket.technician_id is None
    assert ticket.events[-1].data == {"technician": None, "before": "technician2"}
    assert rows_of(section(html(tech.get("/workbench/")), "queue")) == [str(ticket.id)]
    assert "nobody: back in the repair queue" in html(manager.get(f"/tickets/{ticket.id}"))
    # an old screen, a departed technician, a ticket no longer at the bench: refused, unchanged
    stale = manager.post(f"/workbench/tickets/{ticket.id}/assign",
                         {"technician": "technician1", "version": ticket.version - 1})
    assert stale.status_code == 302 and reload(ticket).technician_id is None
    assert "changed since you opened it" in html(manager.get("/workbench/?lang=en"))
    with pytest.raises(Exception) as refused:
        workbench.assign(ticket.id, users["manager"], "reception1")
    assert "reception1" in refused.value.extra["fields"]["technician"]
    from servicedesk.models import Branch
    north = Branch(name="North", code="N", active=True)
    db.session.add(north)
    db.session.commit()
    from servicedesk.services.people import create_user
    create_user("northtech", "technician", PASSWORD, branch=north)
    with pytest.raises(Exception) as refused:  # a technician of another branch
        workbench.assign(ticket.id, users["manager"], "northtech")
    assert "northtech" in refused.value.extra["fields"]["technician"]
    done = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    with pytest.raises(Exception) as refused:
        workbench.assign(done.id, users["manager"], "technician1")
    assert refused.value.status == 409 and reload(done).technician_id is None


def test_a_departed_technicians_tickets_go_back_to_the_queue(app, make_ticket, users):
    repair, waiting = make_ticket("repair"), make_ticket("waiting_parts")
    delivered = make_ticket("delivered")
    admin = Staff(app, "admin1")
    page = html(admin.get(f"/admin/users/{users['technician'].id}"))
    assert 'data-held="2"' in page and repair.number in page and delivered.number not in page
    resp = admin.post(f"/admin/users/{users['technician'].id}/return-tickets")
    assert resp.status_code == 302
    assert "2 tickets are back in the repair queue." in html(admin.get(resp.location))
    for ticket in (repair, waiting):
        ticket = reload(ticket)
        assert ticket.technician_id is None and ticket.events[-1].event == "assign"
        assert ticket.events[-1].actor_name == "admin1"
    assert reload(delivered).technician_id == users["technician"].id  # history stays
    assert 'data-held' not in html(admin.get(f"/admin/users/{users['technician'].id}"))


def test_only_technicians_claim_and_only_bench_staff_see_the_workbench(app, users, queued):
    ticket = queued()
    desk = Staff(app, "reception1")
    assert desk.get("/workbench/").status_code == 403
    assert desk.post(f"/workbench/tickets/{ticket.id}/claim",
                     {"version": ticket.version}).status_code == 403
    assert 'href="/workbench/"' not in html(desk.get("/tickets/"))
    manager = Staff(app, "manager1")
    assert manager.get("/workbench/").status_code == 200
    assert manager.post(f"/workbench/tickets/{ticket.id}/claim",
                        {"version": ticket.version}).status_code == 403
    assert reload(ticket).technician_id is None
    assert 'href="/workbench/"' in html(Staff(app, "technician1").get("/tickets/"))


def test_the_worklist_counts_its_buckets_and_flags_late_tickets(tech, make_ticket, users):
    late = make_ticket("repair")
    late.promised_date = shop_day() - timedelta(days=1)
    on_time = make_ticket("waiting_parts")
    on_time.promised_date = shop_day() + timedelta(days=3)
    waiting = make_ticket("estimate")
    db.session.commit()
    page = html(tech.get("/workbench/?lang=en"))
    counts = dict(re.findall(r'data-bucket="(\w+)" data-count="(\d+)"', page))
    assert counts == {"queue": "0", "diagnosis": "0", "repair": "1", "waiting_parts": "1",
                      "estimate": "1", "late": "1"}
    assert rows_of(section(page, "late")) == [str(late.id)]
    row = re.search(rf'<tr class="worklist-row ([^"]*)" data-ticket="{late.id}"', page)
    assert "late" in row.group(1)
    assert rows_of(section(page, "estimate")) == [str(waiting.id)]
    assert rows_of(section(page, "waiting_parts")) == [str(on_time.id)]


def test_the_worklist_polls_itself_and_answers_the_poll_with_a_partial(tech, queued):
    page = html(tech.get("/workbench/"))
    assert 'hx-get="/workbench/"' in page and 'hx-trigger="every 10s"' in page
    ticket = queued()  # arrives while the page is open
    partial = html(tech.get("/workbench/", headers={"HX-Request": "true"}))
    assert "<html" not in partial and "<nav" not in partial
    assert rows_of(section(partial, "queue")) == [str(ticket.id)]


def test_an_expired_session_sends_the_polling_page_to_the_login_form(app):
    resp = app.test_client().get("/workbench/", headers={"HX-Request": "true"})
    assert resp.status_code == 204 and resp.headers["HX-Redirect"].startswith("/login")


def test_a_manager_sees_every_technicians_tickets(app, make_ticket, users):
    ticket = make_ticket("repair")
    page = html(Staff(app, "manager1").get("/workbench/?lang=en"))
    assert rows_of(section(page, "repair")) == [str(ticket.id)]
    assert "Everyone&#39;s tickets" in page or "Everyone's tickets" in page


# --- the ticket page ------------------------------------------------------------------------

def test_the_ticket_page_shows_device_timeline_notes_and_sms(app, tech, make_ticket, users):
    ticket = make_ticket("repair")
    ticket_service.add_note(ticket.id, users["technician"], "Board swapped, internal only")
    ticket_service.add_note(ticket.id, users["technician"], "We found water damage",
                            customer_visible=True)
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    for text in ("Samsung Galaxy A54", "Cracked screen", "490154203237518",
                 "Board swapped, internal only", "We found water damage"):
        assert text in page
    events = re.findall(r'<li data-event="(\w+)" data-actor-kind="(\w+)"', page)
    assert events == [("admit", "staff"), ("send_to_repair", "staff"), ("quote", "staff"),
                      ("approve", "staff")]
    assert page.count('data-note="internal"') == 1 and page.count('data-note="public"') == 1
    # every SMS with its status
    sms = re.findall(r'data-sms-event="(\w+)" data-status="(\w+)"', page)
    assert [e for e, _ in sms] == ["admit", "send_to_repair", "quote", "approve"]
    assert all(status == "sent" for _, status in sms)
    # the approval names its channel and the estimate it was for
    assert "by phone" in page and "1,400,000 toman" in page


def test_one_form_per_event_the_role_may_fire_now(app, tech, make_ticket, users):
    ticket = make_ticket("repair")
    forms = lambda page: re.findall(r'data-event-form="(\w+)"', page)  # noqa: E731
    assert forms(html(tech.get(f"/tickets/{ticket.id}"))) == ["wait_parts", "finish"]
    desk = Staff(app, "reception1")
    assert forms(html(desk.get(f"/tickets/{ticket.id}"))) == []
    ready = make_ticket("ready")
    # the hand-back is done at the delivery desk (amount due, how it was paid, the receipt)
    page = html(desk.get(f"/tickets/{ready.id}"))
    assert forms(page) == []
    assert f'href="/desk/delivery?q={ready.number}" data-event-link="deliver"' in page
    assert forms(html(tech.get(f"/tickets/{ready.id}"))) == []
    # what the customer will read as typed is said so beside its field
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert 'data-texted="part"' in page and "in their SMS and on their page" in page


def test_a_hand_back_posted_from_the_ticket_page_gets_the_desks_checks(app, make_ticket):
    """An old page or a hand-made form: 140,000 toman typed for a 1,400,000 bill (a zero
    missing) is refused as at the desk, and a payment needs its method."""
    ticket = make_ticket("ready")
    desk = Staff(app, "reception1")
    form = {"event": "deliver", "version": str(ticket.version), "money_unit": "toman"}
    resp = desk.post(f"/tickets/{ticket.id}/events", {**form, "amount_paid": "140,000",
                                                      "payment_method": "cash"})
    assert reload(ticket).state == "ready"
    assert "less than the amount due" in html(resp)
    desk.post(f"/tickets/{ticket.id}/events", {**form, "amount_paid": "1,400,000"})
    assert reload(ticket).state == "ready"  # how was it paid?
    desk.post(f"/tickets/{ticket.id}/events", {**form, "amount_paid": "1,400,000",
                                               "payment_method": "card"})
    ticket = reload(ticket)
    assert ticket.state == "delivered" and ticket.events[-1].data["payment_method"] == "card"


def test_a_hand_back_posted_from_the_ticket_page_splits_as_at_the_desk(app, make_ticket):
    """The page's hand-back (a form posted from it) reads a split payment as the delivery
    desk does: 1,000,000 toman in cash and 400,000 by card, each part in the timeline."""
    ticket = make_ticket("ready")
    desk = Staff(app, "reception1")
    resp = desk.post(f"/tickets/{ticket.id}/events?lang=en", {
        "event": "deliver", "version": str(ticket.version), "money_unit": "toman",
        "amount_paid": "1,400,000", "payment_method": "split", "part_cash": "1,000,000",
        "part_card": "۴۰۰٬۰۰۰", "part_transfer": ""})
    assert resp.status_code == 302, html(resp)
    event = reload(ticket).events[-1]
    assert event.data["payments"] == [{"method": "cash", "amount": 10_000_000},
                                      {"method": "card", "amount": 4_000_000}]
    assert "payment_method" not in event.data and "part_cash" not in event.data
    # parts that do not add up are refused and said, nothing written
    other = make_ticket("ready")
    resp = desk.post(f"/tickets/{other.id}/events?lang=en", {
        "event": "deliver", "version": str(other.version), "money_unit": "toman",
        "amount_paid": "1,400,000", "payment_method": "split", "part_cash": "1,000,000",
        "part_card": "300,000"})
    assert reload(other).state == "ready"
    assert "The parts add up to 1,300,000 toman" in html(resp)


def test_a_note_can_be_internal_or_for_the_customer(app, tech, make_ticket):
    ticket = make_ticket("diagnosis")
    tech.post(f"/tickets/{ticket.id}/notes", {"body": "internal remark"})
    tech.post(f"/tickets/{ticket.id}/notes", {"body": "for you", "customer_visible": "1"})
    notes = db.session.scalars(select(TicketNote).order_by(TicketNote.id)).all()
    assert [(n.body, n.customer_visible) for n in notes] == [("internal remark", False),
                                                            ("for you", True)]


# --- the estimate editor --------------------------------------------------------------------

def test_quoting_from_the_editor_sends_the_estimate_and_its_link(app, tech, queued, users):
    ticket = queued()
    # prices are typed in toman, the unit the shop shows money in; stored in rials
    resp = fire_form(tech, ticket, "quote", [("part", "LCD", "۲", "۶۰۰٬۰۰۰"),
                                             ("labour", "Fitting", "", "200000"),
                                             ("part", "", "", "")],  # a blank row is ignored
                     promised_date=jalali_in(10)[0])
    assert resp.status_code == 302
    ticket = reload(ticket)
    assert ticket.state == "estimate" and ticket.estimate_version == 1
    assert [(l.kind, l.description, l.qty, l.unit_price) for l in ticket.estimate_lines()] == [
        ("part", "LCD", 2, 6_000_000), ("labour", "Fitting", 1, 2_000_000)]
    assert ticket.estimate_total == 14_000_000
    assert ticket.promised_date.isoformat() == jalali_in(10)[1]
    # whoever quotes an unclaimed ticket takes it
    assert ticket.technician_id == users["technician"].id
    assert [e.event for e in ticket.events][-2:] == ["claim", "quote"]
    sms = db.session.scalars(select(Notification).where(Notification.event == "quote")).one()
    assert f"/t/{ticket.public_token}" in sms.body and "۱٬۴۰۰٬۰۰۰" in sms.body


def test_a_bad_line_keeps_what_was_typed_and_changes_nothing(tech, make_ticket):
    ticket = make_ticket("diagnosis")
    before = reload(ticket).version
    resp = fire_form(tech, ticket, "quote", [("part", "Battery", "1", "abc")])
    assert resp.status_code == 422
    page = html(resp)
    assert 'value="Battery"' in page and 'value="abc"' in page
    assert 'data-error="lines"' in page
    # the error sits under the row it is about, whose price is marked
    assert 'data-error-line="1"' in page
    assert re.search(r'class="[^"]*line-price is-invalid"[^>]*value="abc"', page)
    ticket = reload(ticket)
    assert ticket.state == "diagnosis" and ticket.version == before and not ticket.lines


def test_a_rial_shop_types_prices_in_rial_as_pasted(tech, make_ticket):
    """A shop that shows rial types rial; a figure pasted with direction marks or a
    zero-width non-joiner reads as the browser's live total reads it."""
    from servicedesk import settings
    from servicedesk.models import Setting
    db.session.add(Setting(key="money_display", value="rial"))
    db.session.commit()
    settings.invalidate()
    ticket = make_ticket("diagnosis")
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert "Unit price (rial)" in page and 'data-money-unit="rial"' in page
    resp = fire_form(tech, ticket, "quote", [("part", "Screen", "1", "\u200e12,000,000\u200f"),
                                             ("labour", "Fitting", "1", "2\u200c000\u200c000")])
    assert resp.status_code == 302, html(resp)
    assert reload(ticket).estimate_total == 14_000_000


def test_a_price_with_too_many_decimals_is_shown_on_its_row(tech, make_ticket):
    ticket = make_ticket("diagnosis")
    resp = fire_form(tech, ticket, "quote", [("part", "Screen", "1", "100000"),
                                             ("part", "Glass", "1", "12.500")])
    page = html(resp)
    assert resp.status_code == 422 and 'data-error-line="2"' in page
    assert re.search(r'line-price is-invalid"[^>]*value="12.500"', page)
    assert reload(ticket).state == "diagnosis"


def test_a_price_said_as_one_and_a_half_is_not_read_as_15_rials(tech, make_ticket):
    """"1.5" at the bench means a million and a half toman: the customer must not be asked to
    approve fifteen rials."""
    ticket = make_ticket("diagnosis")
    resp = fire_form(tech, ticket, "quote", [("part", "Screen", "1", "1.5")])
    page = html(resp)
    assert resp.status_code == 422 and 'data-error-line="1"' in page
    assert "less than a hundred toman" in page and "1,500,000" in page
    assert reload(ticket).state == "diagnosis" and not reload(ticket).estimate_lines()


def test_a_bad_line_is_named_by_the_row_it_is_shown_in(tech, make_ticket):
    """Blank rows are dropped before the lines are checked: the row the error is shown under
    is the one that is wrong, not the one with the same number among all the rows."""
    ticket = make_ticket("diagnosis")
    resp = fire_form(tech, ticket, "quote", [("part", "Screen", "1", "100000"),
                                             ("part", "", "", ""),
                                             ("labour", "Fitting", "0", "5000")])
    page = html(resp)
    assert resp.status_code == 422
    bad_row = re.search(r'<tr data-line>((?:(?!</tr>).)*)</tr>\s*<tr class="line-error">', page,
                        re.S).group(1)
    assert 'value="Fitting"' in bad_row and re.search(r'line-qty is-invalid', bad_row)
    assert 'data-error-line="2"' in page
    assert reload(ticket).state == "diagnosis"


def test_a_stale_form_is_refused_instead_of_acting_twice(tech, make_ticket):
    ticket = make_ticket("repair")
    old = reload(ticket).version
    assert fire_form(tech, ticket, "wait_parts", part="LCD").status_code == 302
    resp = tech.post(f"/tickets/{ticket.id}/events", {"event": "resume", "version": old})
    assert resp.status_code == 409
    assert reload(ticket).state == "waiting_parts"


def test_an_estimate_within_the_pre_approved_amount_is_approved_at_once(tech, queued):
    ticket = queued(pre_approved_amount="۲۰٬۰۰۰٬۰۰۰")  # rials: the service's unit
    assert ticket.pre_approved_amount == 20_000_000
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert "pre-approved up to 2,000,000 toman" in page
    fire_form(tech, ticket, "quote", [("part", "Screen", "1", "1400000")])
    ticket = reload(ticket)
    assert ticket.state == "repair"
    approve = ticket.events[-1]
    assert (approve.event, approve.actor_kind, approve.data["channel"]) == (
        "approve", "system", "pre_approved")
    # the amount is recorded, and the timeline says it in the reader's language and unit
    assert approve.data["pre_approved_amount"] == 20_000_000 and "reason" not in approve.data
    assert approve.data["estimate_version"] == 1 and approve.data["estimate_total"] == 14_000_000
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert "approved at once" in page
    entry = re.search(r'data-event="approve".*?</li>', page, re.S).group(0)
    assert re.search(r"<dt>Pre-approved amount</dt>\s*<dd>2,000,000 toman</dd>", entry)
    fa = html(tech.get(f"/tickets/{ticket.id}?lang=fa"))
    assert "۲٬۰۰۰٬۰۰۰ تومان" in re.search(r'data-event="approve".*?</li>', fa, re.S).group(0)
    assert 'data-actor-kind="system"' in page
    # one SMS, saying it is approved and for how much; none asking the customer to approve
    sms = db.session.scalars(select(Notification).where(Notification.ticket_id == ticket.id,
                                                        Notification.event.in_(
                                                            ("quote", "approve")))).all()
    assert [n.event for n in sms] == ["approve"]
    assert "۱٬۴۰۰٬۰۰۰ تومان" in sms[0].body and "تأیید یا رد" not in sms[0].body
    # and the ticket's SMS list says what it was for
    assert re.search(r'data-sms-event="approve"[^>]*>\s*<div[^>]*>\s*<strong>Estimate approved '
                     r'within the pre-approved amount</strong>', page)


def test_an_estimate_above_the_pre_approved_amount_waits_for_the_customer(tech, queued):
    ticket = queued(pre_approved_amount="5000000")
    fire_form(tech, ticket, "quote", [("part", "Screen", "1", "1400000")])
    ticket = reload(ticket)
    assert ticket.state == "estimate"
    assert [e.event for e in ticket.events][-1] == "quote"


# --- repair: parts, finish, unrepaired ------------------------------------------------------

def test_a_date_that_has_passed_is_refused_on_the_ticket_page(tech, make_ticket):
    ticket = make_ticket("repair")
    resp = fire_form(tech, ticket, "wait_parts", part="LCD A54", expected_date="1404/09/15")
    assert resp.status_code == 422 and "This date has already passed." in html(resp)
    assert reload(ticket).state == "repair"


def test_waiting_for_a_part_and_resuming(tech, make_ticket):
    ticket = make_ticket("repair")
    typed, stored = jalali_in(5)
    fire_form(tech, ticket, "wait_parts", part="LCD A54", expected_date=typed)
    ticket = reload(ticket)
    assert ticket.state == "waiting_parts"
    assert ticket.events[-1].data == {"part": "LCD A54", "expected_date": stored}
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert "LCD A54" in page and stored in page
    assert re.findall(r'data-event-form="(\w+)"', page) == ["resume"]
    fire_form(tech, ticket, "resume")
    assert reload(ticket).state == "repair"


def test_a_part_expected_after_the_promised_date_moves_the_promise(tech, make_ticket):
    """The customer must not read "part expected on the 20th" beside "promised for the 15th":
    the technician is asked for a new promised date, and the page keeps what was typed."""
    ticket = make_ticket("repair")
    promised = reload(ticket).promised_date
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    hint = page.split('data-event-form="wait_parts"', 1)[1].split("</form>", 1)[0]
    assert f'data-promised="{promised.isoformat()}"' in hint
    assert 'name="promised_date" class="form-control form-control-sm mb-2 " value=""' in hint

    later, later_iso = jalali_in((promised - date.today()).days + 7)
    resp = fire_form(tech, ticket, "wait_parts", part="LCD A54", expected_date=later)
    page = html(resp)
    assert resp.status_code == 422
    assert 'data-error="promised_date"' in page and "after the date promised" in page
    assert f'value="{later}"' in page  # what was typed comes back
    ticket = reload(ticket)
    assert (ticket.state, ticket.promised_date) == ("repair", promised)

    # a new promise that does not read is named as such, not as "after the promise"
    resp = fire_form(tech, ticket, "wait_parts", part="LCD A54", expected_date=later,
                     promised_date="soon")
    page = html(resp)
    assert resp.status_code == 422 and "after the date promised" not in page
    assert 'data-error="promised_date"' in page

    # an explicit promise earlier than the part is refused the same way
    resp = fire_form(tech, ticket, "wait_parts", part="LCD A54", expected_date=later,
                     promised_date=jalali_in(3)[0])
    assert resp.status_code == 422 and reload(ticket).state == "repair"

    newer, newer_iso = jalali_in((promised - date.today()).days + 9)
    resp = fire_form(tech, ticket, "wait_parts", part="LCD A54", expected_date=later,
                     promised_date=newer)
    assert resp.status_code == 302
    ticket = reload(ticket)
    assert ticket.state == "waiting_parts" and ticket.promised_date.isoformat() == newer_iso
    assert ticket.events[-1].data == {"part": "LCD A54", "expected_date": later_iso,
                                      "promised_date": newer_iso, "promise_moved": True}
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    entry = page.split('<li data-event="wait_parts"', 1)[1].split("</li>", 1)[0]
    assert f"<dt>Promised date</dt>\n            <dd>{newer_iso}</dd>" in entry  # it moved
    # the customer hears the new date, in their language
    sms = ticket.notifications[-1]
    new_date = format_datetime(ticket.promised_date, "date", locale="fa")
    assert sms.event == "wait_parts" and new_date in sms.body and "LCD A54" in sms.body
    assert "Waiting for a part, new promised date" in page


def test_finish_starts_from_the_estimate_and_takes_the_edited_lines(tech, make_ticket):
    ticket = make_ticket("repair")
    page = html(tech.get(f"/tickets/{ticket.id}"))
    form = page[page.index('data-event-form="finish"'):]
    # the stored rials are offered in toman, the unit the prices are typed in
    assert 'value="Screen"' in form and 'value="1,200,000"' in form
    assert 'value="Fitting"' in form and 'value="200,000"' in form
    fire_form(tech, ticket, "finish", [("part", "Screen", "1", "1200000"),
                                       ("labour", "Fitting", "1", "150000"),
                                       ("part", "Screen protector", "1", "50000")],
              work_done="Replaced the screen")
    ticket = reload(ticket)
    assert ticket.state == "ready"
    assert ticket.final_total == 14_000_000 == ticket.amount_due
    assert [l.description for l in ticket.final_lines()] == ["Screen", "Fitting",
                                                             "Screen protector"]
    assert ticket.events[-1].data["work_done"] == "Replaced the screen"


def test_a_bill_above_the_approved_estimate_needs_the_customers_agreement(tech, make_ticket,
                                                                         users):
    """The receipt promises no charge without the customer's consent: a final bill above the
    approved estimate (1,400,000 toman) is refused until the technician ticks that the customer
    agreed; a bill at or below it goes through as before."""
    ticket = make_ticket("repair")
    above = [("part", "Screen", "1", "1200000"), ("labour", "Fitting", "1", "200000"),
             ("part", "Screen protector", "1", "150000")]
    resp = fire_form(tech, ticket, "finish", above)
    page = html(resp)
    assert resp.status_code == 422 and reload(ticket).state == "repair"
    assert "150,000 toman above what the customer agreed to, 1,400,000 toman" in \
        page.replace("&#34;", '"')
    assert 'value="Screen protector"' in page  # the lines typed come back

    fire_form(tech, ticket, "finish", above, above_estimate_ok="1",
              above_estimate_channel="in_person")
    ticket = reload(ticket)
    assert ticket.state == "ready" and ticket.amount_due == 15_500_000
    data = ticket.events[-1].data
    assert (data["total"], data["estimate_total"], data["above_estimate_agreed"]) == \
        (15_500_000, 14_000_000, True)
    assert data["above_estimate_channel"] == "in_person"  # how, in the hash-chained trail
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    entry = page.split('<li data-event="finish"', 1)[1].split("</li>", 1)[0]
    assert "Approved estimate" in entry and "the customer agreed in person" in entry

    # an amount pre-approved at intake above the estimate is the customer's agreement too
    from .conftest import INTAKE, LINES
    pre = make_ticket("diagnosis", intake={**INTAKE, "pre_approved_amount": 16_000_000})
    ticket_service.fire_event(pre.id, "quote", Actor.staff(users["technician"]),
                              {"lines": LINES})  # within it: approved at once
    assert reload(pre).state == "repair"
    fire_form(tech, pre, "finish", above)  # 1,550,000 toman, within the 1,600,000 agreed
    pre = reload(pre)
    assert pre.state == "ready" and "above_estimate_agreed" not in pre.events[-1].data

    cheaper = make_ticket("repair")
    fire_form(tech, cheaper, "finish", [("part", "Screen", "1", "1200000")])
    cheaper = reload(cheaper)
    assert cheaper.state == "ready" and "above_estimate_agreed" not in cheaper.events[-1].data


def test_return_unrepaired_needs_a_reason(tech, make_ticket):
    ticket = make_ticket("diagnosis")
    resp = fire_form(tech, ticket, "return_unrepaired", reason="")
    assert resp.status_code == 422 and reload(ticket).state == "diagnosis"
    fire_form(tech, ticket, "return_unrepaired", reason="Board beyond repair")
    ticket = reload(ticket)
    assert ticket.state == "ready" and ticket.amount_due == 0
    assert ticket.events[-1].data == {"reason": "Board beyond repair"}
    sms = db.session.scalars(select(Notification).order_by(Notification.id.desc())).first()
    assert sms.event == "return_unrepaired" and "Board beyond repair" in sms.body
    # the link to the page that says what to bring and when the shop is open, as "finish"
    assert sms.body.endswith(f"/t/{ticket.public_token}")


def test_an_event_the_role_may_not_fire_is_refused(app, make_ticket):
    ticket = make_ticket("diagnosis")
    desk = Staff(app, "reception1")
    resp = fire_form(desk, ticket, "quote", [("part", "Screen", "1", "100")])
    assert resp.status_code == 403
    assert reload(ticket).state == "diagnosis"
    assert db.session.scalar(select(func.count()).select_from(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.event == "quote")) == 0


def test_the_queue_position_counts_devices_ahead(queued):
    first, second, third = queued(), queued(), queued()
    assert [workbench.queue_position(t) for t in (first, second, third)] == [0, 1, 2]


def test_the_timeline_names_the_technician_as_people_know_them(app, users):
    """The send-to-repair and claim records keep the user name; the page shows the name."""
    add_user("sara", "technician", full_name="سارا محمدی")
    ticket = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]),
                              {"technician": "sara"})
    page = Staff(app, "reception1").get(f"/tickets/{ticket.id}").get_data(as_text=True)
    timeline = page.split('data-event="send_to_repair"', 1)[1].split("</li>", 1)[0]
    assert "سارا محمدی" in timeline and ">sara<" not in timeline
    # text people typed or the SMS the customer got keeps its own direction on an English page
    assert 'class="col-sm-8 text-prewrap" dir="auto"' in page  # the problem
    # the SMS in the direction of its language: an English text that starts with a Persian
    # shop name reads left to right all the same
    assert 'class="small text-prewrap sms-body" dir="rtl" lang="fa"' in page
    # the arrow to the new state points the way the page reads
    fa = Staff(app, "reception1", lang="fa").get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert '<span class="small text-muted">← ' in fa and "→" not in fa.split("<main", 1)[-1]
    assert '<span class="small text-muted">→ ' in page


def test_the_ticket_list_says_when_it_shows_only_the_newest(tech, make_ticket, monkeypatch):
    """It stops at LIST_LIMIT rows: past that it says so, instead of looking like every
    ticket; its search box and state filter are labelled."""
    from servicedesk.services import tickets as ticket_service
    monkeypatch.setattr(ticket_service, "LIST_LIMIT", 2)
    first = make_ticket("intake")
    make_ticket("intake")
    page = html(tech.get("/tickets/?lang=en"))  # exactly the limit: all of them, no note
    assert "data-list-limit" not in page and f'href="/tickets/{first.id}"' in page
    assert '<label class="visually-hidden" for="list-q">' in page and 'id="list-q"' in page
    make_ticket("repair")
    page = html(tech.get("/tickets/?lang=en"))
    assert "Only 2 are shown" in page
    assert f'href="/tickets/{first.id}"' not in page


def test_a_price_above_the_limit_is_refused_naming_the_limit_in_the_shops_unit(
        tech, make_ticket):
    """The limit was a bare number ("at most 10,000,000,000,000"), in rials, on a page where
    prices are typed in toman: a tenth of what it said looked allowed."""
    ticket = make_ticket("diagnosis")
    resp = fire_form(tech, ticket, "quote", lines=[("part", "Board", "1", "1000000000001")])
    page = html(resp)
    said = re.findall(r'data-error-line="1">([^<]*)<', page)
    assert said == ["Line 1: Must be at most 1,000,000,000,000 toman."], said  # in English:
    # technician1's language
    assert "10,000,000,000,000" not in page
    assert reload(ticket).state == "diagnosis"
