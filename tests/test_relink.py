"""The customer's link replaced: a forwarded SMS, a lost phone, a receipt left on a bus. The desk
(or a manager, or a script through the API) gives the ticket a new link; the old one stops at
once, says it was replaced (410) and shows nothing of the repair, and its forms change nothing."""
import hashlib
import json
from html import unescape

import pytest
from sqlalchemy import select

from servicedesk.errors import Conflict, Forbidden
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor, verify_chain
from servicedesk.models import Notification, RetiredLink, SurveyResponse, Ticket
from servicedesk.services import tickets as ticket_service

from .conftest import INTAKE, add_user
from .test_public import Customer, html, survey, track
from .test_reception import Staff, reload
from .test_reception import text as raw_text

ENGLISH = {**INTAKE, "customer": {**INTAKE["customer"], "language": "en"}}


@pytest.fixture
def customer(app):
    return Customer(app)


@pytest.fixture
def desk(app, users):
    return Staff(app, "reception1")


def text(resp) -> str:
    """The page as read (its entities unescaped)."""
    return unescape(raw_text(resp))


def relink_sms(ticket: Ticket) -> list[Notification]:
    return [n for n in reload(ticket).notifications if n.event == "replace_link"]


def replace(ticket, users, role="reception", **kw):
    return ticket_service.replace_link(ticket.id, Actor.staff(users[role]), **kw)


# --- the service ---------------------------------------------------------------------------------

def test_replacing_the_link_gives_a_new_one_and_texts_it(app, users, make_ticket):
    ticket = make_ticket("estimate", intake=ENGLISH)
    old, version = ticket.public_token, ticket.version
    with app.test_request_context():
        replaced, sms = replace(ticket, users)
    ticket = reload(ticket)
    assert ticket.public_token != old and len(ticket.public_token) == len(old)
    assert ticket.state == "estimate" and ticket.version == version + 1
    record = ticket.events[-1]
    assert record.event == "replace_link" and record.actor_name == "reception1"
    assert record.data == {"sms": "texted"}
    # neither token in the trail, whose chain holds
    stored = json.dumps(record.data)
    assert old not in stored and ticket.public_token not in stored
    assert verify_chain(ticket) is None
    # the new link texted, in the customer's language, to their number
    (note,) = relink_sms(ticket)
    assert note.id == sms.id and note.to == ticket.customer.phone
    assert f"/t/{ticket.public_token}" in note.body and old not in note.body
    assert "the old one no longer works" in note.body
    # only the old token's hash is kept, not the ticket it led to
    retired = db.session.scalars(select(RetiredLink)).all()
    assert [r.token_hash for r in retired] == [hashlib.sha256(old.encode()).hexdigest()]
    assert not hasattr(retired[0], "ticket_id")


def test_no_sms_when_the_customer_opted_out_or_the_desk_untickets_it(app, users, make_ticket):
    ticket = make_ticket("repair")
    ticket_service.set_customer_sms(ticket.customer_id, False)
    with app.test_request_context():
        _t, sms = replace(ticket, users)
    assert sms is None and relink_sms(ticket) == []
    assert reload(ticket).events[-1].data == {"sms": "opted_out"}
    other = make_ticket("repair", intake={**INTAKE, "customer": {"name": "Ali",
                                                                 "phone": "09351112233"}})
    with app.test_request_context():
        _t, sms = replace(other, users, "manager", text_customer=False)
    assert sms is None and relink_sms(other) == []
    assert reload(other).events[-1].data == {"sms": "not_asked"}


def test_a_stale_screen_a_technician_and_another_branch_change_nothing(app, users, make_ticket):
    from servicedesk.models import Branch
    ticket = make_ticket("diagnosis")
    old = ticket.public_token
    with app.test_request_context():
        with pytest.raises(Conflict):
            replace(ticket, users, expected_version=ticket.version - 1)
        with pytest.raises(Forbidden):
            replace(ticket, users, "technician")
        branch = Branch(code="B2", name="Second")
        db.session.add(branch)
        db.session.commit()
        elsewhere = add_user("reception_b2", "reception")
        elsewhere.branch_id = branch.id
        db.session.commit()
        with pytest.raises(Forbidden):
            ticket_service.replace_link(ticket.id, Actor.staff(elsewhere))
    ticket = reload(ticket)
    assert ticket.public_token == old and ticket.events[-1].event == "send_to_repair"
    assert db.session.scalars(select(RetiredLink)).all() == []


def test_sms_not_sent_yet_and_an_sms_sent_again_carry_the_new_link(app, users, make_ticket):
    ticket = make_ticket("estimate", intake=ENGLISH)
    old = ticket.public_token
    quote = next(n for n in ticket.notifications if n.event == "quote")
    quote.status = "retry"  # the provider was down: it goes again later
    db.session.commit()
    with app.test_request_context():
        replace(ticket, users, text_customer=False)
    ticket = reload(ticket)
    quote = db.session.get(Notification, quote.id)
    assert f"/t/{ticket.public_token}" in quote.body and old not in quote.body
    # one that failed for good, sent again by the desk: with the link that works
    admit = next(n for n in ticket.notifications if n.event == "admit")
    admit.status = "failed"
    admit.body = admit.body.replace(ticket.public_token, old)  # as it was sent
    db.session.commit()
    with app.test_request_context():
        again = ticket_service.resend_sms(ticket.id, admit.id)
    assert f"/t/{ticket.public_token}" in again.body and old not in again.body


# --- the old link ----------------------------------------------------------------------------

def test_the_old_link_says_it_was_replaced_and_shows_nothing(app, users, customer, make_ticket):
    app.config["SHOP_PHONE"] = "021-88001122"
    ticket = make_ticket("delivered", intake=ENGLISH)
    old = ticket.public_token
    with app.test_request_context():
        replace(ticket, users)
    ticket = reload(ticket)
    for url in (f"/t/{old}?lang=en", f"/s/{old}?lang=en", f"/t/{old.lower()}?lang=en"):
        resp = customer.get(url)
        assert resp.status_code == 410, url
        page = html(resp)
        assert "data-link-replaced" in page and "This link was replaced" in page, url
        assert "newest SMS" in page and "tel:" in page, url
        for secret in (ticket.device.model, ticket.customer.name, ticket.number,
                       ticket.public_token):
            assert secret not in page, (url, secret)
    persian = html(customer.get(f"/t/{old}?lang=fa"))
    assert "data-link-replaced" in persian and "This link was replaced" not in persian
    # the new link works; a token that never was one is still a plain 404
    assert customer.get(track(ticket)).status_code == 200
    assert customer.get(survey(ticket)).status_code == 200
    assert customer.get("/t/NOTATOKEN234").status_code == 404


def test_forms_sent_with_the_old_link_change_nothing(app, users, customer, make_ticket):
    estimate = make_ticket("estimate")
    delivered = make_ticket("delivered", intake={**INTAKE, "customer": {
        "name": "Ali", "phone": "09351112233"}})
    pages = {t.id: t.public_token for t in (estimate, delivered)}
    customer.get(track(estimate))  # the page open on the phone: its form token
    customer.get(survey(delivered))
    with app.test_request_context():
        replace(estimate, users)
        replace(delivered, users)
    old_estimate, old_delivered = pages[estimate.id], pages[delivered.id]
    assert customer.post(f"/t/{old_estimate}/approve",
                         {"estimate_version": "1"}).status_code == 410
    assert customer.post(f"/t/{old_estimate}/decline", {"reason": "x"}).status_code == 410
    assert customer.post(f"/t/{old_estimate}/sms", {"sms": "off"}).status_code == 410
    assert customer.post(f"/s/{old_delivered}", {"csat": "1", "nps": "0"}).status_code == 410
    assert reload(estimate).state == "estimate"
    assert not reload(estimate).customer.sms_opt_out
    assert reload(delivered).state == "delivered"
    assert db.session.scalars(select(SurveyResponse)).all() == []


# --- the ticket page -------------------------------------------------------------------------

def test_the_desk_replaces_the_link_after_confirming_and_is_offered_the_receipt(
        app, desk, make_ticket):
    ticket = make_ticket("repair", intake=ENGLISH)
    old = ticket.public_token
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert "data-relink" in page and "Yes, replace the link" in page
    assert 'name="text_customer" value="1" checked' in page
    resp = desk.post(f"/tickets/{ticket.id}/link",
                     {"version": str(ticket.version), "text_customer": "1"})
    assert resp.status_code == 302 and "relinked=1" in resp.location
    ticket = reload(ticket)
    assert ticket.public_token != old and len(relink_sms(ticket)) == 1
    after = text(desk.get(resp.location.replace("#", "&lang=en#")))
    assert "The customer's link is replaced" in after
    assert "The new link is texted to the customer." in after
    assert "data-reprint=\"receipt\"" in after and f"/tickets/{ticket.id}/receipt" in after
    timeline = after[after.index('data-event="replace_link"'):]
    assert "Customer's link replaced" in timeline and "texted to the customer" in timeline
    # the receipt printed now carries the new link
    assert ticket.public_token in text(desk.get(f"/tickets/{ticket.id}/receipt"))


def test_a_stale_ticket_page_is_refused_and_nothing_changes(app, users, desk, make_ticket):
    ticket = make_ticket("repair")
    old, version = ticket.public_token, ticket.version
    # the page open at the desk while the technician moves the ticket on
    ticket_service.fire_event(ticket.id, "wait_parts", Actor.staff(users["technician"]),
                              {"part": "LCD"})
    resp = desk.post(f"/tickets/{ticket.id}/link?lang=en",
                     {"version": str(version), "text_customer": "1"})
    assert resp.status_code == 302
    page = text(desk.get(resp.location.replace("#", "?lang=en#")))
    assert "changed since you opened it" in page
    assert reload(ticket).public_token == old and relink_sms(ticket) == []


def test_the_box_unticked_sends_no_sms(app, desk, make_ticket):
    ticket = make_ticket("ready")
    resp = desk.post(f"/tickets/{ticket.id}/link", {"version": str(ticket.version)})
    assert resp.status_code == 302
    assert relink_sms(ticket) == [] and reload(ticket).events[-1].data == {"sms": "not_asked"}


def test_a_technician_neither_sees_nor_may_replace_the_link(app, users, make_ticket):
    ticket = make_ticket("repair")
    tech = Staff(app, "technician1")
    assert "data-relink" not in text(tech.get(f"/tickets/{ticket.id}"))
    assert tech.post(f"/tickets/{ticket.id}/link", {"version": str(ticket.version)}
                     ).status_code == 403
    assert reload(ticket).events[-1].event != "replace_link"


# --- the API ---------------------------------------------------------------------------------

def test_the_api_replaces_the_link_and_answers_the_new_one(app, api, make_ticket):
    ticket = make_ticket("estimate", intake=ENGLISH)
    old = ticket.public_token
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/tracking-link",
                                 json={"version": ticket.version})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    ticket = reload(ticket)
    assert body["tracking_url"].endswith(f"/t/{ticket.public_token}")
    assert old not in json.dumps(body["history"])  # (the SMS sent before keep theirs)
    assert body["history"][-1]["event"] == "replace_link"
    assert body["history"][-1]["data"] == {"sms": "texted"}
    assert body["notifications"][-1]["event"] == "replace_link"
    # no body at all: texted, as by default
    resp = api["manager"].post(f"/api/v1/tickets/{ticket.id}/tracking-link")
    assert resp.status_code == 200 and len(relink_sms(ticket)) == 2


def test_the_api_refuses_bad_input_stale_versions_and_roles(app, api, make_ticket):
    ticket = make_ticket("estimate")
    old, url = ticket.public_token, f"/api/v1/tickets/{ticket.id}/tracking-link"
    resp = api["reception"].post(url, json={"text_customer": "yes"})
    assert resp.status_code == 422 and "text_customer" in resp.get_json()["fields"]
    resp = api["reception"].post(url, json={"text_customr": False})
    assert resp.status_code == 400 and "text_customr" in resp.get_json()["fields"]
    resp = api["reception"].post(url, json={"version": ticket.version - 1})
    assert resp.status_code == 409 and resp.get_json()["code"] == "stale_version"
    assert api["technician"].post(url, json={}).status_code == 403
    assert api["reception"].post("/api/v1/tickets/999999/tracking-link").status_code == 404
    assert reload(ticket).public_token == old
    client = api["reception"]
    resp = client.client.post(url, json={"text_customer": False},
                              headers={**client.headers, "If-Match": '"1-x"'})
    assert resp.status_code == 412


def test_a_new_link_does_not_reopen_the_pages_of_a_repair_that_ended_long_ago(
        app, users, customer, make_ticket):
    from datetime import timedelta

    from sqlalchemy import update

    from servicedesk.models import TicketEvent, utcnow
    ticket = make_ticket("delivered")
    db.session.execute(update(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                       .values(at=utcnow() - timedelta(days=91)))
    db.session.commit()
    with app.test_request_context():
        replace(ticket, users, text_customer=False)
    resp = customer.get(track(reload(ticket)))
    assert resp.status_code == 410 and "data-link-ended" in html(resp)


def test_the_desks_search_for_an_old_link_says_it_was_replaced(app, users, desk, make_ticket):
    ticket = make_ticket("ready", intake=ENGLISH)
    old = ticket.public_token
    replace(ticket, users)
    new = reload(ticket).public_token
    replaced = "This customer link was replaced"
    # the old receipt's QR code scanned, the URL pasted, the token typed in lower case
    for typed in (f"http://shop.test/t/{old}", old.lower()):
        for page in (f"/desk/find?lang=en&q={typed}", f"/desk/delivery?lang=en&q={typed}",
                     f"/tickets/?lang=en&q={typed}"):
            body = text(desk.get(page))
            assert replaced in body and "No ticket matches this." not in body, page
            # which ticket it was is not said: the page shows nothing of it
            assert ticket.number not in body and new not in body, page
    # the new link finds the ticket; a token that never was one is simply not found
    assert desk.get(f"/desk/find?q={new}").status_code == 302
    body = text(desk.get(f"/desk/find?lang=en&q={'Q' * 12}"))
    assert "No ticket matches this." in body and replaced not in body
