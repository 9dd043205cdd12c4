"""A revised estimate: the technician quotes again while the customer has not answered. The new
version replaces the old one everywhere, the customer is told again, and an answer given to the
old version (an approve or decline from a page opened before) changes nothing: the customer must
see, and answer, what they will be charged."""
import re
from datetime import timedelta

import pytest

from servicedesk.lifecycle import Actor
from servicedesk.models import Notification
from servicedesk.services import tickets as ticket_service

from .conftest import INTAKE
from .test_public import Customer, html, reload, track

REVISED = {"lines": [{"kind": "part", "description": "Battery (original)", "qty": 1,
                      "unit_price": 9_000_000},
                     {"kind": "labour", "description": "Fitting", "qty": 1,
                      "unit_price": 2_000_000}]}


@pytest.fixture
def customer(app):
    return Customer(app)


def requote(ticket, users, data=REVISED):
    return ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                                     dict(data))


def sms_bodies(ticket):
    from servicedesk.extensions import db
    from sqlalchemy import select
    return [n.body for n in db.session.scalars(
        select(Notification).where(Notification.ticket_id == ticket.id,
                                   Notification.event == "quote").order_by(Notification.id))]


def test_a_second_quote_replaces_the_estimate_and_tells_the_customer_again(make_ticket, users):
    ticket = make_ticket("estimate")
    first_total = ticket.estimate_total
    requote(ticket, users)
    ticket = reload(ticket)
    assert ticket.state == "estimate" and ticket.estimate_version == 2
    assert ticket.estimate_total == 11_000_000 != first_total
    assert [l.description for l in ticket.estimate_lines()] == ["Battery (original)", "Fitting"]
    assert [e.data["estimate_version"] for e in ticket.events if e.event == "quote"] == [1, 2]
    # the customer hears of the new estimate too, and that the estimate changed to it
    first, second = sms_bodies(ticket)
    assert "۱٬۴۰۰٬۰۰۰ تومان" in first and "تغییر کرد" not in first
    assert "به ۱٬۱۰۰٬۰۰۰ تومان تغییر کرد" in second


def test_an_approval_from_a_page_showing_the_old_estimate_approves_nothing(customer, make_ticket,
                                                                          users):
    ticket = make_ticket("estimate")
    old_page = html(customer.get(track(ticket) + "?lang=en"))
    assert 'name="estimate_version" value="1"' in old_page
    requote(ticket, users)

    resp = customer.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "1"})
    page = html(customer.follow(resp))
    assert reload(ticket).state == "estimate"
    assert "The estimate has changed" in page
    assert "Battery (original)" in page and 'name="estimate_version" value="2"' in page

    resp = customer.post(f"{track(ticket)}/approve?lang=en", {"estimate_version": "2"})
    ticket = reload(ticket)
    assert ticket.state == "repair"
    approve = ticket.events[-1]
    assert approve.data["estimate_version"] == 2
    assert approve.data["estimate_total"] == 11_000_000


def test_a_decline_from_a_page_showing_the_old_estimate_declines_nothing(customer, make_ticket,
                                                                        users):
    ticket = make_ticket("estimate")
    customer.get(track(ticket) + "?lang=en")
    requote(ticket, users)
    resp = customer.post(f"{track(ticket)}/decline?lang=en",
                         {"estimate_version": "1", "reason": "too expensive"})
    page = html(customer.follow(resp))
    assert reload(ticket).state == "estimate" and "The estimate has changed" in page

    customer.post(f"{track(ticket)}/decline?lang=en",
                  {"estimate_version": "2", "reason": "still too expensive"})
    ticket = reload(ticket)
    assert ticket.state == "ready" and ticket.events[-1].data["estimate_version"] == 2


def test_a_revised_estimate_within_the_pre_approved_amount_is_approved_at_once(make_ticket,
                                                                              users):
    ticket = make_ticket("estimate", intake={**INTAKE, "pre_approved_amount": 12_000_000})
    assert ticket.state == "estimate"  # the first estimate (14M) was above it
    from servicedesk.services import workbench
    workbench.fire_event(ticket.id, "quote", users["technician"], dict(REVISED))
    ticket = reload(ticket)
    assert ticket.state == "repair"
    approve = ticket.events[-1]
    assert (approve.event, approve.actor_kind, approve.data["channel"]) == (
        "approve", "system", "pre_approved")
    assert approve.data["estimate_version"] == 2
    # one SMS: the new price, approved, and that it replaces the estimate they were asked about
    sms = ticket.notifications[-1]
    assert sms.event == "approve" and sms.event_id == approve.id
    assert "به ۱٬۱۰۰٬۰۰۰ تومان تغییر کرد" in sms.body and "تأیید شد" in sms.body


def test_quoting_after_the_customer_answered_is_refused(make_ticket, users):
    from servicedesk.errors import TransitionNotAllowed
    ticket = make_ticket("repair")
    with pytest.raises(TransitionNotAllowed):
        requote(ticket, users)
    assert reload(ticket).estimate_version == 1


def test_a_revised_estimate_keeps_one_diagnosis_and_one_approval_stage(make_ticket, users):
    """Turnaround: diagnosis ends at the first estimate; the customer's approval wait runs from
    the first estimate to their answer. The bulk rebuild from the event log agrees."""
    from sqlalchemy import select

    from servicedesk import stages
    from servicedesk.extensions import db
    from servicedesk.models.stages import TicketStage

    ticket = make_ticket("estimate")
    requote(ticket, users)
    ticket_service.fire_event(ticket.id, "approve", Actor.staff(users["reception"]),
                              {"channel": "phone"})
    ticket = reload(ticket)
    quotes = [e for e in ticket.events if e.event == "quote"]
    approve = ticket.events[-1]

    def rows():
        db.session.expire_all()
        return sorted((r.stage, r.started_at, r.ended_at, r.seconds) for r in db.session.scalars(
            select(TicketStage).where(TicketStage.ticket_id == ticket.id)))

    written = rows()
    by_stage = {r[0]: r for r in written}
    assert [r[0] for r in written].count("diagnosis") == 1
    assert [r[0] for r in written].count("approval") == 1
    assert by_stage["diagnosis"][2] == quotes[0].at
    assert (by_stage["approval"][1], by_stage["approval"][2]) == (quotes[0].at, approve.at)
    stages.rebuild(where=f"t.id = {ticket.id}")
    db.session.commit()
    assert rows() == written


def test_a_shop_that_set_the_estimate_sms_has_it_for_revisions_too(app, make_ticket, users):
    """Switched off, the estimate's SMS is off for a revision too; in the shop's own words, a
    revision is told in those words (until the shop sets the revision's text)."""
    from servicedesk.services import admin as admin_service
    ticket = make_ticket("estimate")
    with app.test_request_context():
        admin_service.save_template(users["manager"], "quote", "fa", body="{shop_name}: برآورد "
                                    "شما {estimate_total}. {tracking_url}", enabled=True)
    requote(ticket, users)
    # (a right-to-left mark first: the Latin shop name would turn the Persian SMS around)
    assert sms_bodies(ticket)[-1].startswith(
        "\u200fTest Repair Shop: برآورد شما ۱٬۱۰۰٬۰۰۰ تومان.")
    with app.test_request_context():
        admin_service.save_template(users["manager"], "quote", "fa", body="x", enabled=False)
    requote(ticket, users, {"lines": [{**REVISED["lines"][0], "unit_price": 8_000_000}]})
    assert len(sms_bodies(ticket)) == 2  # the third estimate went without an SMS
    with app.test_request_context():
        admin_service.save_template(users["manager"], "requote", "fa",
                                    body="{shop_name}: برآورد تازه {estimate_total}.",
                                    enabled=True)
    requote(ticket, users)
    assert sms_bodies(ticket)[-1] == "\u200fTest Repair Shop: برآورد تازه ۱٬۱۰۰٬۰۰۰ تومان."


def test_the_customers_history_tells_a_new_estimate_from_the_first(customer, make_ticket, users):
    ticket = make_ticket("estimate")
    requote(ticket, users)
    page = html(customer.get(track(ticket) + "?lang=en"))
    history = re.findall(r'<li data-event="quote"><div>([^<]*)</div>', page)
    assert history == ["A new estimate sent to you", "Estimate sent to you"]  # newest first


def test_the_same_estimate_sent_again_is_refused_and_texts_nobody(make_ticket, users):
    """The quote form sent twice, a request retried: the customer is not told "your estimate
    changed" for an identical one. A moved date alone is a revision."""
    from servicedesk.errors import ValidationError
    ticket = make_ticket("estimate")
    same = {"lines": [{"kind": l.kind, "description": l.description, "qty": l.qty,
                       "unit_price": l.unit_price} for l in ticket.estimate_lines()]}
    with pytest.raises(ValidationError) as refused:
        requote(ticket, users, same)
    assert "lines" in refused.value.extra["fields"]
    ticket = reload(ticket)
    assert ticket.estimate_version == 1 and len(sms_bodies(ticket)) == 1
    moved = {**same, "promised_date": (ticket.promised_date + timedelta(days=3)).isoformat()}
    requote(ticket, users, moved)
    assert reload(ticket).estimate_version == 2 and len(sms_bodies(reload(ticket))) == 2


def test_the_ticket_page_calls_a_second_quote_a_revision(app, make_ticket):
    from .test_workbench import Staff
    ticket = make_ticket("estimate")
    page = html(Staff(app, "technician1").get(f"/tickets/{ticket.id}?lang=en"))
    assert 'data-event-link="quote">Revise the estimate</a>' in page and "data-revision" in page


def test_a_revision_for_a_customer_who_wants_no_sms_says_to_phone_them(app, make_ticket):
    from servicedesk.services.tickets import set_customer_sms
    from .test_workbench import Staff
    ticket = make_ticket("estimate")
    set_customer_sms(ticket.customer_id, False)
    page = html(Staff(app, "technician1").get(f"/tickets/{ticket.id}?lang=en"))
    assert "tell them the new total by phone" in page and "they get an SMS" not in page
