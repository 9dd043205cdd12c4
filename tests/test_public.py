"""The customer's pages as a customer meets them, from the SMS link or the receipt QR code: the
tracking page in their language, approving or declining the estimate (and approving again when
it changed), the survey that works once, the close of unanswered tickets, and what these pages
must never show (the phone number, internal notes)."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy import update as sa_update

from servicedesk.extensions import db
from servicedesk.i18n import localize_digits
from servicedesk.lifecycle import Actor
from servicedesk.models import Notification, SurveyResponse, Ticket, TicketEvent, utcnow
from servicedesk.services import surveys
from servicedesk.services import tickets as ticket_service

from .conftest import INTAKE, PARTS_EXPECTED, PROMISED_DATE, SAMPLE_DATA, make_app

# the form token, from a form or from the page's htmx headers (pages without a form)
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"|"X-CSRFToken": "([^"]+)"')
PHONE_FORMS = ("+989121234567", "989121234567", "09121234567", "9121234567",
               "۰۹۱۲۱۲۳۴۵۶۷", "۹۱۲۱۲۳۴۵۶۷", "912 123 4567", "0912 123 4567")
INTERNAL = "INTERNAL: customer dropped it twice, charge handling fee"
PUBLIC = "Your screen arrived from the supplier"


class Customer:
    """The customer's phone browser: no login; forms sent with the CSRF token of the page."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.csrf = None

    def get(self, url, **kw):
        with self.app.app_context():
            resp = self.client.get(url, **kw)
        found = CSRF.search(resp.get_data(as_text=True))
        if found:
            self.csrf = found.group(1) or found.group(2)
        return resp

    def post(self, url, data=None, **kw):
        with self.app.app_context():
            return self.client.post(url, data={**(data or {}), "csrf_token": self.csrf}, **kw)

    def follow(self, resp):
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return self.get(resp.location)


def html(resp) -> str:
    return resp.get_data(as_text=True)


def reload(ticket: Ticket) -> Ticket:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)


def track(ticket) -> str:
    return f"/t/{ticket.public_token}"


def survey(ticket) -> str:
    return f"/s/{ticket.public_token}"


@pytest.fixture
def customer(app):
    return Customer(app)


ENGLISH = {**INTAKE, "customer": {**INTAKE["customer"], "language": "en"}}


# --- the tracking page ----------------------------------------------------------------------

def test_the_tracking_page_speaks_the_customers_language(customer, make_ticket):
    fa = make_ticket("diagnosis")
    page = html(customer.get(track(fa)))
    assert '<html lang="fa" dir="rtl">' in page
    assert "Galaxy A54" in page and localize_digits(fa.number, "fa") in page
    en = make_ticket("estimate", intake={**ENGLISH, "customer": {"name": "Sara",
                                                                 "phone": "09351234567",
                                                                 "language": "en"}})
    page = html(customer.get(track(en)))
    assert '<html lang="en" dir="ltr">' in page
    # addressed to the customer, not in the staff's words ("the customer's approval")
    assert "Waiting for your approval" in page and "the customer" not in page
    assert "1,400,000 toman" in page  # the estimate total, in the customer's money unit
    # the switcher still wins, and the page's own forms keep the choice
    page = html(customer.get(track(en) + "?lang=fa"))
    assert 'dir="rtl"' in page and f'/t/{en.public_token}/approve?lang=fa"' in page


def test_a_language_picked_on_one_link_carries_over_to_the_next(app, customer, make_ticket):
    """A customer who switched the tracking page to English gets the survey link, a day later,
    in English too; another phone still gets the customer's own language."""
    ticket = make_ticket("delivered")
    assert 'lang="fa"' in html(customer.get(track(ticket)))
    assert '<html lang="en" dir="ltr">' in html(customer.get(track(ticket) + "?lang=en"))
    assert '<html lang="en" dir="ltr">' in html(customer.get(survey(ticket)))
    assert '<html lang="en" dir="ltr">' in html(customer.get(track(ticket)))
    assert '<html lang="fa" dir="rtl">' in html(Customer(app).get(survey(ticket)))
    # a session that kept the choice in another shape is started anew, not an error page
    with customer.client.session_transaction() as kept:
        kept["public_lang"] = "en"
    assert customer.get(survey(ticket)).status_code == 200
    # switching back is remembered the same way
    customer.get(survey(ticket) + "?lang=fa")
    assert '<html lang="fa" dir="rtl">' in html(customer.get(track(ticket)))
    # a staff member's switcher at the desk does not decide the customer's pages...
    english = make_ticket("delivered", intake={**ENGLISH, "customer": {
        "name": "Sara", "phone": "09351234567", "language": "en"}})
    desk = Customer(app)
    desk.get("/login?lang=fa")
    assert '<html lang="en" dir="ltr">' in html(desk.get(track(english)))
    # ...nor does a customer's page switched at the desk decide the staff's screens, or the
    # next customer's page
    desk.get(track(ticket) + "?lang=en")
    assert '<html lang="fa" dir="rtl">' in html(desk.get("/login"))
    assert '<html lang="en" dir="ltr">' in html(desk.get(track(english)))
    desk.get(track(english) + "?lang=fa")
    assert '<html lang="en" dir="ltr">' in html(desk.get(track(ticket)))  # its own choice


def test_the_tracking_page_says_where_the_repair_stands(customer, make_ticket, users):
    reception = Actor.staff(users["reception"])

    def unheld():  # sent to the repair unit with no technician named
        ticket = make_ticket("intake")
        ticket_service.fire_event(ticket.id, "send_to_repair", reception, {})
        return ticket
    first, second = unheld(), unheld()
    page = html(customer.get(track(second) + "?lang=en"))
    assert 'data-queue-position="1"' in page and "1 device ahead of yours" in page
    # waiting its turn, not "being examined" (which would contradict the place in the queue)
    assert "queue, waiting for a technician to examine it" in page and "is examining" not in page
    assert "Yours is next." in html(customer.get(track(first) + "?lang=en"))
    # once a technician has it, it is being examined, whatever else waits; no place shown
    held = make_ticket("diagnosis")
    page = html(customer.get(track(held) + "?lang=en"))
    assert "A technician is examining your device" in page and "data-queue-position" not in page
    repairing = make_ticket("repair")
    page = html(customer.get(track(repairing) + "?lang=en"))
    assert "Your device is being repaired." in page and "data-queue-position" not in page
    waiting = make_ticket("waiting_parts")
    page = html(customer.get(track(waiting) + "?lang=en"))
    assert "Waiting for parts" in page and "LCD" in page and PARTS_EXPECTED in page
    assert PROMISED_DATE in page  # the promised date
    assert 'aria-current="step"' in page
    ready = make_ticket("ready")
    page = html(customer.get(track(ready) + "?lang=en"))
    assert 'data-amount-due="14000000"' in page and "1,400,000 toman" in page
    assert "Bring your receipt" in page


def test_the_sms_and_the_tracking_page_give_the_same_place_in_the_queue(customer, users):
    """Both count the devices in diagnosis admitted before this one (the order the repair
    unit's queue takes them in): at the moment the SMS goes, the page says the same. The page
    stays live: an older ticket sent to the unit later goes ahead."""
    reception = Actor.staff(users["reception"])

    def admitted(phone):
        return ticket_service.admit({**ENGLISH, "customer": {
            "name": "Sara", "language": "en", "phone": phone}}, reception)
    oldest, older, newer = admitted("09351234567"), admitted("09351234568"), admitted("09351234569")

    def sms_count(ticket):
        body = db.session.scalar(select(Notification.body).where(
            Notification.ticket_id == ticket.id, Notification.event == "send_to_repair"))
        ahead = re.search(r"Devices ahead of it: (\d+|none)\.", body).group(1)
        return 0 if ahead == "none" else int(ahead)  # none, not "0"

    def page_count(ticket):
        page = html(customer.get(track(ticket)))
        return int(re.search(r'data-queue-position="(\d+)"', page).group(1))

    for ticket in (oldest, newer, older):  # the middle one reaches the unit last
        ticket_service.fire_event(ticket.id, "send_to_repair", reception, {})
        assert sms_count(ticket) == page_count(ticket)
    assert [sms_count(t) for t in (oldest, newer, older)] == [0, 1, 1]
    assert page_count(newer) == 2  # live: the older ticket now in the queue goes first
    # sent to a technician by name: being examined, nobody ahead (the page shows no place)
    named = admitted("09351234570")
    ticket_service.fire_event(named.id, "send_to_repair", reception,
                              {"technician": "technician1"})
    assert sms_count(named) == 0
    assert "data-queue-position" not in html(customer.get(track(named)))


def test_the_timeline_has_the_events_but_no_staff_names_or_claims(customer, make_ticket, users,
                                                                   app):
    from servicedesk.services import workbench
    ticket = ticket_service.admit(INTAKE, Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {})
    workbench.claim(ticket.id, users["technician"])
    page = html(customer.get(track(ticket) + "?lang=en"))
    assert re.findall(r'<li data-event="(\w+)"', page) == ["send_to_repair", "admit"]
    assert "technician1" not in page and "reception1" not in page


@pytest.mark.parametrize("state", ["intake", "diagnosis", "estimate", "repair",
                                   "waiting_parts", "ready", "delivered", "closed"])
def test_customer_pages_never_show_the_phone_number_or_internal_notes(
        customer, make_ticket, users, state):
    ticket = make_ticket(state)
    ticket_service.add_note(ticket.id, users["technician"], INTERNAL)
    ticket_service.add_note(ticket.id, users["technician"], PUBLIC, customer_visible=True)
    pages = [html(customer.get(track(ticket))), html(customer.get(track(ticket) + "?lang=en"))]
    assert all(PUBLIC in page for page in pages)  # the note meant for the customer is there
    if state == "delivered":
        pages.append(html(customer.get(survey(ticket))))
    for page in pages:
        assert INTERNAL not in page and "dropped it twice" not in page
        for phone in PHONE_FORMS:
            assert phone not in page, phone
        assert "Narges" not in page  # nor the customer's name
        assert "490154203237518" not in page  # nor the IMEI
        assert "127.0.0.1" not in page  # nor the address an answer came from


def test_unknown_tokens_get_a_plain_404(customer, make_ticket):
    ticket = make_ticket("estimate")
    for url in ("/t/NOTATOKEN234", "/s/NOTATOKEN234", "/t/" + "A" * 80):
        resp = customer.get(url)
        assert resp.status_code == 404, url
        page = html(resp)
        assert "navbar" not in page and "/login" not in page, url
    customer.get(track(ticket))  # a real page first: its form token
    assert customer.post("/t/NOTATOKEN234/approve").status_code == 404
    assert customer.post(f"{track(ticket)}/refund").status_code == 404
    assert customer.post("/s/NOTATOKEN234", {"csat": "5"}).status_code == 404
    # a lower-case token (typed from the receipt) is the same token
    assert customer.get(f"/t/{ticket.public_token.lower()}").status_code == 200


def test_the_pages_of_a_repair_that_ended_long_ago_close(app, customer, make_ticket):
    """An old SMS forwarded, a receipt in a drawer: 90 days after a repair's last event the
    link says when it ended and to call the shop, and shows nothing of the device, the customer
    or the bill; a repair still in the shop, or one that ended lately, stays open, and staff
    logged in still open it."""
    from .test_workbench import Staff
    old, recent, open_one = (make_ticket("delivered"), make_ticket("cancelled"),
                             make_ticket("waiting_parts"))
    long_ago = utcnow() - timedelta(days=91)
    for ticket in (old, open_one):  # every event of theirs 91 days old
        db.session.execute(sa_update(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                           .values(at=long_ago))
    db.session.commit()
    model = reload(old).device.model
    for url in (track(old), survey(old), track(old) + "?lang=en"):
        resp = customer.get(url)
        assert resp.status_code == 410, url
        page = html(resp)
        assert "data-link-ended" in page and model not in page, url
    assert "call or visit the shop" in html(customer.get(track(old) + "?lang=en"))
    assert customer.post(f"{track(old)}/sms", {"sms": "off"}).status_code == 410
    assert not reload(old).customer.sms_opt_out
    for ticket in (recent, open_one):
        assert customer.get(track(ticket)).status_code == 200
    assert Staff(app, "reception1").get(track(old)).status_code == 200
    app.config["PUBLIC_LINK_DAYS"] = 0  # a shop that keeps them open
    assert customer.get(track(old)).status_code == 200


def test_customer_pages_send_no_referrer_off_the_site(customer, make_ticket):
    ticket = make_ticket("delivered")
    for url in (track(ticket), survey(ticket), "/t/NOTATOKEN234"):
        resp = customer.get(url)
        assert resp.headers["Referrer-Policy"] == "same-origin", url
        assert resp.headers["Cache-Control"] == "no-store", url


# --- the estimate ---------------------------------------------------------------------------

def test_the_customer_approves_the_estimate_from_the_link(customer, make_ticket):
    ticket = make_ticket("estimate")
    page = html(customer.get(track(ticket) + "?lang=en"))
    assert 'name="estimate_version" value="1"' in page
    assert "Screen" in page and "Fitting" in page
    resp = customer.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "1"},
                         environ_base={"REMOTE_ADDR": "5.6.7.8"})
    page = html(customer.follow(resp))
    assert "you approved the estimate" in page
    ticket = reload(ticket)
    assert ticket.state == "repair"
    approve = ticket.events[-1]
    assert (approve.event, approve.actor_kind, approve.ip) == ("approve", "customer", "5.6.7.8")
    assert approve.data == {"channel": "link", "estimate_version": 1,
                            "estimate_total": 14_000_000, "ip": "5.6.7.8"}
    assert approve.at is not None
    assert 'data-decision="approve"' in page and "You approved 1,400,000 toman" in page
    assert db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.ticket_id == ticket.id, Notification.event == "approve")) == 1


def test_a_second_tap_on_approve_changes_nothing(customer, make_ticket):
    ticket = make_ticket("estimate")
    customer.get(track(ticket))
    customer.post(f"{track(ticket)}/approve", {"estimate_version": "1"})
    resp = customer.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "1"})
    assert "already answered" in html(customer.follow(resp))
    assert [e.event for e in reload(ticket).events].count("approve") == 1


def test_staff_opening_the_customers_page_cannot_answer_for_the_customer(app, make_ticket):
    """The shelf label's QR code opens the customer's page: a logged-in member of staff sees
    it, with a way to the ticket page, and an approval sent from it is not recorded as the
    customer's own (by the link)."""
    from .test_workbench import Staff
    ticket = make_ticket("estimate")
    staff = Staff(app, "technician1")
    page = html(staff.get(track(ticket) + "?lang=en"))
    assert "data-staff-view" in page and f'href="/tickets/{ticket.id}"' in page
    assert "data-approve" not in page
    resp = staff.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "1"})
    assert resp.status_code == 302 and resp.location == f"/tickets/{ticket.id}"
    assert reload(ticket).state == "estimate"


def test_a_bill_above_the_approved_estimate_is_explained_to_the_customer(customer, make_ticket,
                                                                        users):
    """The customer approved 1,400,000; the shop agreed an extra part with them and billed
    1,550,000: the page lists the bill and says by how much it is above the approval."""
    ticket = make_ticket("repair")
    extra = [*SAMPLE_DATA["finish"]["lines"], {"kind": "part", "description": "Charging flex",
                                               "qty": 1, "unit_price": 1_500_000}]
    ticket_service.fire_event(ticket.id, "finish", Actor.staff(users["technician"]), {
        "lines": extra, "above_estimate_ok": True})
    page = html(customer.get(track(ticket) + "?lang=en"))
    assert "data-bill" in page and "Charging flex" in page
    assert 'data-amount-due="15500000"' in page
    assert "150,000 toman more than the estimate you approved (1,400,000 toman)" in page
    same = make_ticket("ready")
    page = html(customer.get(track(same) + "?lang=en"))
    assert "data-bill" in page and "data-above-estimate" not in page


def test_the_customer_stops_the_sms_from_their_page_and_has_them_again(customer, make_ticket,
                                                                       users):
    """"Stop SMS from us" on the tracking page: no SMS is written for them after it (the
    page keeps working); "Text me again" undoes it. Both in the audit log."""
    from servicedesk.models import AuditLog
    ticket = make_ticket("diagnosis")
    page = html(customer.get(track(ticket) + "?lang=en"))
    assert 'data-sms="on"' in page and "Stop SMS from us" in page
    resp = customer.post(f"{track(ticket)}/sms?lang=en", {"sms": "off"})
    page = html(customer.follow(resp))
    assert 'data-sms="off"' in page and "no more SMS" in page
    db.session.expire_all()
    before = db.session.scalar(select(func.count(Notification.id)))
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              dict(SAMPLE_DATA["quote"]))
    assert db.session.scalar(select(func.count(Notification.id))) == before
    customer.post(f"{track(ticket)}/sms", {"sms": "on"})
    db.session.expire_all()  # as the next request would read it
    ticket_service.fire_event(ticket.id, "approve", Actor.staff(users["reception"]),
                              {"channel": "phone"})
    assert db.session.scalar(select(func.count(Notification.id))) == before + 1
    logged = db.session.scalars(select(AuditLog).where(AuditLog.action == "customer.sms")
                                .order_by(AuditLog.id)).all()
    assert [(a.value_to["sms"], a.value_to["how"]) for a in logged] == [(False, "link"),
                                                                       (True, "link")]


def test_the_desk_stops_a_customers_sms_when_asked(app, make_ticket):
    from .test_workbench import Staff
    ticket = make_ticket("diagnosis")
    desk = Staff(app, "reception1")
    assert "The customer asked for no SMS" in html(desk.get(f"/tickets/{ticket.id}?lang=en"))
    desk.post(f"/tickets/{ticket.id}/sms", {"sms": "off"})
    assert reload(ticket).customer.sms_opt_out
    assert "data-sms-off" in html(desk.get(f"/tickets/{ticket.id}"))
    tech = Staff(app, "technician1")
    assert tech.post(f"/tickets/{ticket.id}/sms", {"sms": "on"}).status_code == 403
    desk.post(f"/tickets/{ticket.id}/sms", {"sms": "on"})
    assert not reload(ticket).customer.sms_opt_out


@pytest.mark.parametrize("decision", ["approve", "decline"])
def test_an_answer_that_does_not_say_which_estimate_it_is_for_answers_none(
        customer, make_ticket, decision):
    """A page from before the estimate had versions, or a form posted by hand: the estimate
    may have been revised since, so the answer is not taken for the one now shown."""
    ticket = make_ticket("estimate")
    before = len(ticket.events)
    customer.get(track(ticket))
    resp = customer.post(f"{track(ticket)}/{decision}?lang=en", {"reason": "Too expensive"})
    assert resp.status_code == 302
    page = html(customer.follow(resp))
    assert "did not say which estimate it was for" in page
    ticket = reload(ticket)
    assert ticket.state == "estimate" and len(ticket.events) == before


def test_the_customer_declines_with_a_reason(customer, make_ticket):
    ticket = make_ticket("estimate")
    customer.get(track(ticket))
    resp = customer.post(f"{track(ticket)}/decline?lang=en",
                         {"estimate_version": "1", "reason": "Too expensive"})
    page = html(customer.follow(resp))
    ticket = reload(ticket)
    assert ticket.state == "ready" and ticket.amount_due == 0
    decline = ticket.events[-1]
    assert (decline.event, decline.actor_kind) == ("decline", "customer")
    assert decline.data["reason"] == "Too expensive" and decline.data["channel"] == "link"
    assert decline.data["estimate_version"] == 1
    assert "Declined on" in page and 'data-amount-due="0"' in page


def test_an_estimate_is_shown_in_one_unit(customer, make_ticket, users):
    """Toman, as the shop shows money, even when an amount is not a whole number of toman (its
    rials are a decimal digit): never a mix of toman and rial in one list."""
    ticket = make_ticket("diagnosis")
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]), {"lines": [
        {"kind": "part", "description": "Screen", "qty": 1, "unit_price": 12_345_675},
        {"kind": "labour", "description": "Fitting", "qty": 1, "unit_price": 6_000_000}]})
    estimate = html(customer.get(track(ticket) + "?lang=en")).split('id="estimate"', 1)[1]
    estimate = estimate.split("</ul>", 1)[0]
    assert "1,234,567.5 toman" in estimate and "600,000 toman" in estimate
    assert "1,834,567.5 toman" in estimate and "rial" not in estimate
    whole = make_ticket("estimate")  # every amount a whole number of toman
    estimate = html(customer.get(track(whole) + "?lang=en")).split('id="estimate"', 1)[1]
    assert "toman" in estimate.split("</ul>", 1)[0] and "rial" not in estimate.split("</ul>", 1)[0]


def steps_of(page: str) -> dict:
    """The progress bar: each step's class (done, current, skipped or none)."""
    return {key: cls for cls, key in re.findall(
        r'<li class="(\w*)" data-step="(\w+)"', page)}


def test_a_device_handed_back_unrepaired_is_not_shown_as_repaired(customer, make_ticket, users):
    """Declined, or returned by the technician: the page says it was not repaired and why,
    and its progress bar does not show a repair (or an estimate never given) as done."""
    declined = make_ticket("estimate")
    customer.get(track(declined))
    customer.post(f"{track(declined)}/decline", {"estimate_version": "1",
                                                "reason": "Too expensive"})
    page = html(customer.get(track(declined) + "?lang=en"))
    assert "Your device was not repaired. It is ready to collect." in page
    assert "Reason: Too expensive" in page
    assert steps_of(page) == {"intake": "done", "diagnosis": "done", "estimate": "done",
                              "repair": "skipped", "ready": "current", "delivered": ""}
    assert "Not repaired" in page

    returned = make_ticket("diagnosis")
    ticket_service.fire_event(returned.id, "return_unrepaired", Actor.staff(users["technician"]),
                              {"reason": "The main board is damaged"})
    page = html(customer.get(track(returned) + "?lang=en"))
    assert "Reason: The main board is damaged" in page
    assert steps_of(page)["estimate"] == steps_of(page)["repair"] == "skipped"
    ticket_service.fire_event(returned.id, "deliver", Actor.staff(users["reception"]),
                              {"amount_paid": 0})
    page = html(customer.get(track(returned) + "?lang=en"))
    assert "You have collected your device, not repaired." in page

    repaired = make_ticket("ready")
    page = html(customer.get(track(repaired) + "?lang=en"))
    assert "Your device is ready to collect." in page and "not repaired" not in page
    assert steps_of(page)["repair"] == "done" and "Reason:" not in page


def test_an_answer_from_a_page_left_open_too_long_is_asked_again_not_lost(customer, make_ticket):
    """The phone restored an old tab or lost its cookie: the form's token no longer matches.
    Nothing is recorded, and the customer lands back on the page, told to send it again."""
    ticket = make_ticket("estimate")
    customer.get(track(ticket))
    customer.csrf = "expired-token"
    resp = customer.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "1"})
    assert resp.status_code == 302 and resp.location.endswith(track(ticket) + "?lang=en")
    page = html(customer.follow(resp))
    assert "your answer was not sent" in page and "data-approve" in page
    assert reload(ticket).state == "estimate"
    resp = customer.post(f"{track(ticket)}/approve", {"estimate_version": "1"})  # fresh token
    assert reload(ticket).state == "repair"

    delivered = make_ticket("delivered")
    customer.get(survey(delivered))
    customer.csrf = "expired-token"
    resp = customer.post(survey(delivered) + "?lang=en",
                         {"csat": "5", "nps": "9", "comment": "Fast and friendly"})
    page = html(resp)
    assert resp.status_code == 400 and "your answer was not sent" in page
    assert "Fast and friendly" in page and 'value="5" checked' in page  # kept for resending
    assert surveys.response_of(reload(delivered)) is None


def test_an_approval_for_another_version_of_the_estimate_is_refused(customer, make_ticket):
    """A changed estimate needs a new approval: a "yes" sent from a page that showed another
    version of the estimate (an older quote) approves nothing; the page shows the estimate as
    it is now, and approving that one works."""
    ticket = make_ticket("estimate")
    page = html(customer.get(track(ticket) + "?lang=en"))
    shown = re.search(r'name="estimate_version" value="(\d+)"', page).group(1)
    assert shown == "1" == str(ticket.estimate_version)
    resp = customer.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "2"})
    page = html(customer.follow(resp))
    assert "The estimate has changed" in page
    ticket = reload(ticket)
    assert ticket.state == "estimate" and ticket.events[-1].event == "quote"
    assert 'name="estimate_version" value="1"' in page
    resp = customer.post(f"{track(ticket)}/approve", {"estimate_version": "1"})
    assert reload(ticket).state == "repair"
    assert reload(ticket).events[-1].data["estimate_version"] == 1


def test_a_pre_approved_estimate_is_shown_as_approved_at_once(customer, users):
    ticket = ticket_service.admit({**ENGLISH, "pre_approved_amount": 20_000_000},
                                  Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]),
                              {"technician": "technician1"})
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              SAMPLE_DATA["quote"])
    ticket = reload(ticket)
    assert ticket.state == "repair"
    page = html(customer.get(track(ticket)))
    assert "Approved at once" in page and "within the amount you agreed to" in page
    assert "data-approve" not in page


# --- the survey -----------------------------------------------------------------------------

def answer(customer, ticket, **form):
    customer.get(survey(ticket))
    return customer.post(survey(ticket) + "?lang=en", {"csat": "5", "nps": "10", **form})


def test_answering_the_survey_closes_the_ticket_and_thanks_the_customer(customer, make_ticket):
    ticket = make_ticket("delivered")
    page = html(customer.get(survey(ticket) + "?lang=en"))
    assert 'name="csat"' in page and 'name="nps"' in page and 'name="complaint"' in page
    resp = answer(customer, ticket, comment="Quick and friendly")
    page = html(customer.follow(resp))
    assert "Thank you" in page and 'data-survey="answered"' in page
    ticket = reload(ticket)
    assert ticket.state == "closed"
    close = ticket.events[-1]
    assert (close.event, close.actor_kind) == ("close", "customer")
    response = db.session.scalars(select(SurveyResponse)).one()
    assert (response.csat, response.nps, response.comment, response.complaint,
            response.followup_status) == (5, 10, "Quick and friendly", False, None)
    assert close.data["survey_response_id"] == response.id
    # the customer is thanked by SMS too
    assert db.session.scalars(select(Notification.event).order_by(Notification.id.desc())
                              ).first() == "close"


def test_the_survey_link_works_once(customer, make_ticket):
    ticket = make_ticket("delivered")
    answer(customer, ticket)
    resp = answer(customer, ticket, csat="1", comment="changed my mind")
    assert resp.status_code == 409
    assert "already answered" in html(resp)
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
    assert db.session.scalars(select(SurveyResponse.csat)).one() == 5
    # opening the link again thanks instead of asking
    page = html(customer.get(survey(ticket)))
    assert 'data-survey="answered"' in page and 'name="csat"' not in page


def test_the_database_refuses_a_second_answer_even_past_the_state_check(make_ticket):
    ticket = make_ticket("delivered")
    db.session.add(SurveyResponse(ticket_id=ticket.id, csat=4))
    db.session.commit()  # an answer that won a race, its close not yet committed
    with pytest.raises(surveys.AlreadyAnswered):
        surveys.submit_survey(ticket.id, {"csat": "2"})
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
    assert reload(ticket).state == "delivered"


@pytest.mark.parametrize("form, followup", [
    ({"csat": "2", "nps": "9"}, "open"),
    ({"csat": "4", "nps": "6"}, "open"),
    ({"csat": "5", "nps": "10", "complaint": "1", "comment": "Scratched the case"}, "open"),
    ({"csat": "4", "nps": "8"}, None),
    ({"csat": "3", "nps": "", "comment": ""}, None),  # what a browser sends left blank
])
def test_a_low_score_or_a_complaint_goes_on_the_managers_follow_up_list(
        customer, make_ticket, form, followup):
    ticket = make_ticket("delivered")
    customer.get(survey(ticket))
    assert customer.post(survey(ticket), form).status_code == 302
    response = db.session.scalars(select(SurveyResponse)).one()
    assert response.followup_status == followup
    assert response.complaint == ("complaint" in form)


def test_a_survey_without_a_satisfaction_score_is_asked_again(customer, make_ticket):
    ticket = make_ticket("delivered")
    customer.get(survey(ticket))
    resp = customer.post(survey(ticket) + "?lang=en", {"nps": "11", "comment": "hello"})
    assert resp.status_code == 422
    page = html(resp)
    assert 'data-error="csat"' in page and 'data-error="nps"' in page
    assert "a number from 1 to 5" in page and "a number from 0 to 10" in page  # as asked
    assert ">hello</textarea>" in page  # what was typed is kept
    assert reload(ticket).state == "delivered"
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_an_answer_sent_as_the_clock_closes_the_ticket_is_kept(app, make_ticket, monkeypatch):
    """The customer presses "send" while the auto-close closes the ticket for want of an
    answer: the answer is kept (the follow-up list needs a complaint most), not lost behind
    "already answered"."""
    ticket = make_ticket("delivered")
    real = surveys.needs_followup

    def closed_meanwhile(*args):
        monkeypatch.setattr(surveys, "needs_followup", real)  # once
        with app.app_context():  # the clock's own session, committing first
            ticket_service.fire_event(ticket.id, "close", Actor.system(), {})
        return real(*args)

    monkeypatch.setattr(surveys, "needs_followup", closed_meanwhile)
    response = surveys.submit_survey(ticket.id, {"csat": "1", "complaint": "1",
                                                 "comment": "Broke again"})
    db.session.expire_all()
    ticket = reload(ticket)
    assert ticket.state == "closed" and ticket.events[-1].actor_kind == "system"
    kept = db.session.get(SurveyResponse, response.id)
    assert (kept.csat, kept.complaint, kept.followup_status) == (1, True, "open")


def test_a_survey_opened_in_time_and_sent_after_the_close_is_kept(customer, make_ticket):
    ticket = make_ticket("delivered")
    customer.get(survey(ticket))  # the form, opened in time
    ticket_service.fire_event(ticket.id, "close", Actor.system(), {"reason": "no answer"})
    resp = customer.post(survey(ticket) + "?lang=en", {"csat": "2", "comment": "Slow"})
    assert resp.status_code == 302
    db.session.expire_all()
    kept = db.session.scalar(select(SurveyResponse).where(
        SurveyResponse.ticket_id == ticket.id))
    assert (kept.csat, kept.comment, kept.followup_status) == (2, "Slow", "open")


def test_an_answer_long_after_the_close_is_refused(customer, make_ticket):
    """A day after the clock closed it, the survey is closed: whoever holds the link cannot
    put a complaint on the manager's follow-up list months later."""
    ticket = make_ticket("delivered")
    customer.get(survey(ticket))
    ticket_service.fire_event(ticket.id, "close", Actor.system(), {"reason": "no answer"})
    db.session.execute(sa_update(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.event == "close")
        .values(at=utcnow() - surveys.LATE_ANSWER_GRACE - timedelta(minutes=1)))
    db.session.commit()
    resp = customer.post(survey(ticket) + "?lang=en", {"csat": "1", "complaint": "1"})
    assert resp.status_code in (404, 410)
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse).where(
        SurveyResponse.ticket_id == ticket.id)) == 0


def test_staff_cannot_answer_the_survey_or_stop_the_sms_for_the_customer(app, make_ticket):
    from .test_workbench import Staff
    ticket = make_ticket("delivered")
    staff = Staff(app, "reception1")
    resp = staff.post(survey(ticket), {"csat": "5"})
    assert resp.status_code == 302 and resp.location == f"/tickets/{ticket.id}"
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    assert reload(ticket).state == "delivered"
    page = html(staff.get(track(ticket)))
    assert "data-sms=" not in page
    resp = staff.post(f"{track(ticket)}/sms", {"sms": "off"})
    assert resp.status_code == 302 and not reload(ticket).customer.sms_opt_out


def test_the_survey_is_not_open_before_hand_back(customer, make_ticket):
    ticket = make_ticket("ready")
    assert customer.get(survey(ticket)).status_code == 404
    customer.get(track(ticket))
    assert customer.post(survey(ticket), {"csat": "5"}).status_code == 404
    assert reload(ticket).state == "ready"
    # the tracking page offers the survey only once the device is handed back
    delivered = make_ticket("delivered")
    assert survey(delivered) in html(customer.get(track(delivered)))
    assert survey(ticket) not in html(customer.get(track(ticket)))


# --- closing unanswered tickets -------------------------------------------------------------

def test_delivered_tickets_nobody_answered_close_after_the_configured_days(app, make_ticket,
                                                                           customer):
    old = make_ticket("delivered")
    answered = make_ticket("delivered")
    answer(customer, answered)
    app.config["AUTO_CLOSE_DAYS"] = 7
    assert surveys.auto_close() == 0  # handed back just now
    assert surveys.auto_close(now=utcnow() + timedelta(days=6)) == 0
    sms_before = db.session.scalar(select(func.count()).select_from(Notification))
    assert surveys.auto_close(now=utcnow() + timedelta(days=7, minutes=1)) == 1
    old = reload(old)
    assert old.state == "closed"
    close = old.events[-1]
    assert (close.event, close.actor_kind, close.actor_name) == ("close", "system", "system")
    assert "۷" in close.data["reason"]  # the shop's digits (the shop is Persian)
    # no "thank you" SMS for a survey nobody answered
    assert db.session.scalar(select(func.count()).select_from(Notification)) == sms_before
    # the link has expired: said so (410), no form to answer
    closed = customer.get(survey(old) + "?lang=en")
    assert closed.status_code == 410 and "This survey has closed" in html(closed)
    assert 'name="csat"' not in html(closed)
    # the answered one was closed by its customer, and nothing more happens to it
    assert [e.actor_kind for e in reload(answered).events if e.event == "close"] == ["customer"]
    assert surveys.auto_close(now=utcnow() + timedelta(days=30)) == 0


def test_the_number_of_days_is_the_shops_setting(app, make_ticket):
    ticket = make_ticket("delivered")
    app.config["AUTO_CLOSE_DAYS"] = 2
    assert surveys.auto_close(now=utcnow() + timedelta(days=1)) == 0
    assert surveys.auto_close(now=utcnow() + timedelta(days=2, minutes=1)) == 1
    assert reload(ticket).state == "closed"


# --- rate limits ----------------------------------------------------------------------------

def test_customer_pages_are_rate_limited(app, database_url, tmp_path):
    # An app of its own with the limits on (the suite's apps switch them off).
    limited = make_app(database_url, tmp_path / "limited", RATELIMIT_ENABLED=True,
                       WTF_CSRF_ENABLED=False)
    with limited.app_context():
        client = limited.test_client()
        codes = [client.get(f"/t/NOTATOKEN{i:03d}").status_code for i in range(31)]
        assert codes[:30] == [404] * 30 and codes[30] == 429
        codes = [client.post("/s/NOTATOKEN999", data={"csat": "5"}).status_code
                 for _ in range(6)]
        assert codes == [404] * 5 + [429]
        codes = [client.post("/t/NOTATOKEN999/approve").status_code for _ in range(11)]
        assert codes == [404] * 10 + [429]


def test_every_customer_page_says_how_to_reach_the_shop(customer, make_ticket):
    from servicedesk import settings
    from servicedesk.models import Setting
    ticket = make_ticket("waiting_parts")
    db.session.add_all([Setting(key="shop_phone", value="021-8877 6655"),
                        Setting(key="shop_address", value="Valiasr St., No. 12")])
    db.session.commit()
    settings.invalidate()
    page = html(customer.get(track(ticket) + "?lang=fa"))
    assert 'href="tel:02188776655"' in page and "۰۲۱-۸۸۷۷ ۶۶۵۵" in page
    assert "Valiasr St., No. 12" in page
    delivered = make_ticket("delivered")
    page = html(customer.get(track(delivered) + "?lang=en"))
    assert re.search(r"Amount paid</dt><dd data-amount-paid>1,400,000 toman", page)


def _referer_a_browser_sends(policy: str, page_url: str):
    """What a browser sends as Referer on a form of ``page_url`` posted to the same site,
    under the page's Referrer-Policy (the Fetch standard's table, same origin)."""
    if policy == "no-referrer":
        return None
    if policy in ("origin", "strict-origin"):
        return page_url.split("/t/")[0].split("/s/")[0] + "/"
    return page_url


def test_over_https_the_customer_can_still_answer_from_their_pages(app, make_ticket):
    """Over HTTPS the CSRF check wants a same-site Referer on a form: the customer pages'
    policy must let the browser send one to the shop (and none elsewhere)."""
    base = "https://shop.example"
    estimate, delivered = make_ticket("estimate"), make_ticket("delivered")
    customer = Customer(app)
    for ticket, path, form in (
            (estimate, track(estimate), ("/approve", {"estimate_version": "1"})),
            (delivered, survey(delivered), ("", {"csat": "5", "nps": "9"}))):
        page = customer.get(path, base_url=base)
        assert page.status_code == 200
        policy = page.headers["Referrer-Policy"]
        assert policy in ("same-origin", "strict-origin")  # nothing off the site
        referer = _referer_a_browser_sends(policy, base + path)
        headers = {"Referer": referer} if referer else {}
        resp = customer.post(path + form[0], form[1], base_url=base, headers=headers)
        assert resp.status_code == 302, html(resp)
        assert "expired" not in resp.location
    assert reload(estimate).state == "repair"
    assert reload(delivered).state == "closed"
