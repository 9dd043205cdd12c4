"""Loaner phones (a «گوشی امانی») lent while the customer's device is in the shop: lent and taken
back from the ticket page and the API, each a record of the ticket's hash-chained trail; the
hand-back and the cancel refused while one is out unless it comes back with them (in the same
transaction); the receipts, the ticket page and the desk's list of loaners out show them. On
both databases (TEST_DATABASE_URL)."""
import pytest
from sqlalchemy import select

from servicedesk import lifecycle
from servicedesk.errors import Conflict, Forbidden, ValidationError
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.models import Loan, TicketEvent
from servicedesk.services import loaners
from servicedesk.services import tickets as ticket_service

from .conftest import SAMPLE_DATA
from .test_api import row_counts as _row_counts
from .test_reception import Staff, reload, text

A10 = {"description": "Samsung A10, white", "serial": "490154203237518",
       "condition": "scratch on the back"}


def lend(api, role, ticket_id, **data):
    return api[role].post(f"/api/v1/tickets/{ticket_id}/loaner", json=data)


def take_back(api, role, ticket_id, **data):
    return api[role].post(f"/api/v1/tickets/{ticket_id}/loaner/return", json=data)


def row_counts() -> dict:
    counts = _row_counts()
    counts["Loan"] = db.session.scalar(select(db.func.count()).select_from(Loan))
    counts["out"] = db.session.scalar(select(db.func.count()).select_from(Loan).where(
        Loan.returned_at.is_(None)))
    return counts


def trail_ok(ticket_id) -> bool:
    db.session.expire_all()
    ticket = ticket_service.get_ticket(ticket_id)
    return lifecycle.verify_chain(ticket) is None and lifecycle.verify_records(ticket) == []


# --- the service ------------------------------------------------------------------------------

def test_reception_lends_a_loaner_and_takes_it_back_each_in_the_trail(users, make_ticket):
    ticket = make_ticket("repair")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, dict(A10))
    loan = loaners.out(ticket.id)
    assert (loan.description, loan.serial, loan.condition) == (
        "Samsung A10, white", "490154203237518", "scratch on the back")
    assert loan.lent_by_name == "reception1" and loan.returned_at is None
    ticket = reload(ticket)
    assert ticket.state == "repair"  # a loan moves no state
    lent = ticket.events[-1]
    assert lent.event == "lend_loaner" and lent.from_state == lent.to_state == "repair"
    assert lent.data == {"loan_id": loan.id, **A10} and lent.at == loan.lent_at
    assert trail_ok(ticket.id)

    manager = Actor.staff(users["manager"])
    loaners.take_back(ticket.id, manager)
    assert loaners.out(ticket.id) is None
    loan = db.session.get(Loan, loan.id)
    assert loan.returned_by_name == "manager1" and loan.returned_at is not None
    back = reload(ticket).events[-1]
    assert back.event == "return_loaner" and back.actor_name == "manager1"
    assert back.data == {"loan_id": loan.id, "description": "Samsung A10, white"}
    assert trail_ok(ticket.id)


def test_one_loaner_out_at_a_time_and_another_once_it_is_back(users, make_ticket):
    ticket = make_ticket("diagnosis")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"description": "Nokia 105"})
    before = row_counts()
    with pytest.raises(Conflict, match="Nokia 105"):
        loaners.lend(ticket.id, desk, {"description": "Samsung A10"})
    assert row_counts() == before
    loaners.take_back(ticket.id, desk)
    loaners.lend(ticket.id, desk, {"description": "Samsung A10"})
    assert [(l.description, l.out) for l in loaners.of_ticket(ticket.id)] == [
        ("Nokia 105", False), ("Samsung A10", True)]
    assert trail_ok(ticket.id)


def test_the_database_keeps_one_loaner_out_per_ticket(users, make_ticket):
    """Two desks lending at the same instant: the unique index is the last word."""
    ticket = make_ticket("intake")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    now = loaners.out(ticket.id).lent_at
    db.session.add(Loan(ticket_id=ticket.id, description="another", condition="",
                        lent_at=now, lent_by_name="x"))
    with pytest.raises(Exception):
        db.session.commit()
    db.session.rollback()


@pytest.mark.parametrize("state", ["delivered", "closed", "cancelled"])
def test_no_loaner_once_the_ticket_is_over(users, make_ticket, state):
    ticket = make_ticket(state)
    before = row_counts()
    with pytest.raises(Conflict):
        loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    assert row_counts() == before


@pytest.mark.parametrize("role", ["technician", "admin"])
def test_only_reception_and_the_manager_lend(users, make_ticket, role):
    ticket = make_ticket("repair")
    with pytest.raises(Forbidden):
        loaners.lend(ticket.id, Actor.staff(users[role]), {"description": "Nokia 105"})
    loaners.lend(ticket.id, Actor.staff(users["manager"]), {"description": "Nokia 105"})
    with pytest.raises(Forbidden):
        loaners.take_back(ticket.id, Actor.staff(users[role]))
    assert loaners.out(ticket.id) is not None


def test_taking_back_a_loaner_nobody_has_is_refused(users, make_ticket):
    ticket = make_ticket("repair")
    with pytest.raises(Conflict, match="گوشی امانی.*دست مشتری نیست"):
        loaners.take_back(ticket.id, Actor.staff(users["reception"]))


@pytest.mark.parametrize("data, field", [
    ({}, "description"), ({"description": "   "}, "description"),
    ({"description": "x" * 121}, "description"),
    ({"description": "Nokia", "serial": "490154203237519"}, "serial"),  # a bad check digit
    ({"description": "Nokia", "condition": "x" * 501}, "condition"),
])
def test_a_bad_loan_is_refused_naming_the_field(users, make_ticket, data, field):
    ticket = make_ticket("repair")
    before = row_counts()
    with pytest.raises(ValidationError) as exc:
        loaners.lend(ticket.id, Actor.staff(users["reception"]), data)
    assert field in exc.value.fields
    assert row_counts() == before


def test_the_hand_back_is_refused_while_the_loaner_is_out_naming_it(users, make_ticket):
    ticket = make_ticket("ready")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, dict(A10))
    before = row_counts()
    with pytest.raises(ValidationError) as exc:
        ticket_service.fire_event(ticket.id, "deliver", desk, dict(SAMPLE_DATA["deliver"]))
    assert "Samsung A10, white" in exc.value.message
    assert "Samsung A10, white" in exc.value.fields["loaner_returned"]
    assert row_counts() == before and reload(ticket).state == "ready"
    # ticked: the return is recorded, then the hand-back, in one commit
    ticket_service.fire_event(ticket.id, "deliver", desk,
                              {**SAMPLE_DATA["deliver"], "loaner_returned": True})
    ticket = reload(ticket)
    assert ticket.state == "delivered"
    assert [e.event for e in ticket.events[-2:]] == ["return_loaner", "deliver"]
    assert ticket.events[-2].data["with_event"] == "deliver"
    assert "loaner_returned" not in ticket.events[-1].data
    assert loaners.out(ticket.id) is None
    assert trail_ok(ticket.id)


def test_the_cancel_is_refused_while_the_loaner_is_out(users, make_ticket):
    ticket = make_ticket("intake")
    manager = Actor.staff(users["manager"])
    loaners.lend(ticket.id, manager, {"description": "Nokia 105"})
    with pytest.raises(ValidationError, match="Nokia 105"):
        ticket_service.fire_event(ticket.id, "cancel", manager, {"reason": "changed mind"})
    ticket_service.fire_event(ticket.id, "cancel", manager,
                              {"reason": "changed mind", "loaner_returned": True})
    ticket = reload(ticket)
    assert ticket.state == "cancelled" and loaners.out(ticket.id) is None
    assert trail_ok(ticket.id)


def test_a_hand_back_that_fails_leaves_the_loaner_out(users, make_ticket):
    """All or nothing: a refused hand-back (a mistyped amount) takes nothing back."""
    ticket = make_ticket("ready")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"description": "Nokia 105"})
    before = row_counts()
    with pytest.raises(ValidationError) as exc:
        ticket_service.fire_event(ticket.id, "deliver", desk, {
            "amount_paid": 1_400_000, "differs_ok": False, "loaner_returned": True})
    assert list(exc.value.fields) == ["amount_paid"]
    assert row_counts() == before
    assert loaners.out(ticket.id) is not None and reload(ticket).state == "ready"


def test_the_refusal_names_the_events_own_problems_too(users, make_ticket):
    ticket = make_ticket("ready")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"description": "Nokia 105"})
    with pytest.raises(ValidationError) as exc:
        ticket_service.fire_event(ticket.id, "deliver", desk, {"amount_paid": -1})
    assert set(exc.value.fields) == {"amount_paid", "loaner_returned"}


def test_an_event_not_allowed_now_is_still_a_409_with_a_loaner_out(users, make_ticket):
    ticket = make_ticket("repair")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"description": "Nokia 105"})
    with pytest.raises(lifecycle.TransitionNotAllowed):
        ticket_service.fire_event(ticket.id, "deliver", desk, dict(SAMPLE_DATA["deliver"]))


def test_verify_records_ties_the_loan_rows_to_the_trail(users, make_ticket):
    from servicedesk.i18n import format_number as n  # in the shop's language (Persian)
    ticket = make_ticket("repair")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, dict(A10))
    loan_id = loaners.out(ticket.id).id
    # a loaner marked back behind the trail's back
    db.session.execute(Loan.__table__.update().where(Loan.id == loan_id).values(
        returned_at=db.func.now(), returned_by_name="reception1"))
    db.session.commit()
    db.session.expire_all()
    assert lifecycle.verify_records(ticket_service.get_ticket(ticket.id)) == [
        f"امانت {n(loan_id)} بی‌رکورد return_loaner پس گرفته شده است"]
    # what was lent, edited
    db.session.execute(Loan.__table__.update().where(Loan.id == loan_id).values(
        returned_at=None, returned_by_name=None, description="Nokia 105"))
    db.session.commit()
    db.session.expire_all()
    assert lifecycle.verify_records(ticket_service.get_ticket(ticket.id)) == [
        f"امانت {n(loan_id)} با رکورد lend_loaner خود نمی‌خواند"]
    # a loan row nobody recorded
    db.session.execute(Loan.__table__.update().where(Loan.id == loan_id).values(
        description="Samsung A10, white"))
    db.session.execute(Loan.__table__.insert().values(
        ticket_id=ticket.id, description="ghost", condition="", lent_at=db.func.now(),
        lent_by_name="x", returned_at=db.func.now(), returned_by_name="x"))
    db.session.commit()
    db.session.expire_all()
    ghost = db.session.scalar(select(Loan.id).where(Loan.description == "ghost"))
    assert lifecycle.verify_records(ticket_service.get_ticket(ticket.id)) == [
        f"امانت {n(ghost)} هیچ رکورد lend_loaner ندارد",
        f"امانت {n(ghost)} بی‌رکورد return_loaner پس گرفته شده است"]


def test_verify_audit_reports_a_tampered_loan(app, users, make_ticket):
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["verify-audit"]).exit_code == 0
    db.session.execute(Loan.__table__.update().values(serial="123456"))
    db.session.commit()
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1 and "با رکورد lend_loaner خود نمی‌خواند" in result.output


def test_the_loan_records_are_in_the_hash_chain(users, make_ticket):
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    row = db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.event == "lend_loaner")).one()
    db.session.execute(TicketEvent.__table__.update().where(TicketEvent.id == row.id)
                       .values(data={**row.data, "description": "Samsung S24"}))
    db.session.commit()
    db.session.expire_all()
    assert lifecycle.verify_chain(ticket_service.get_ticket(ticket.id)) == row.seq


# --- the API ----------------------------------------------------------------------------------

def test_the_api_lends_and_takes_back_and_the_ticket_carries_the_loaner(app, api, make_ticket):
    from .test_openapi import answer_schema, mismatches
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    ticket = make_ticket("repair")
    assert api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()["loaner"] is None
    resp = lend(api, "reception", ticket.id, **A10, version=ticket.version)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    loaner = body["loaner"]
    assert {k: loaner[k] for k in ("description", "serial", "condition", "lent_by")} == {
        **A10, "lent_by": "reception1"}
    assert body["history"][-1]["event"] == "lend_loaner"
    assert body["notifications"][-1]["event"] != "lend_loaner"  # no SMS for a loan
    assert mismatches(body, answer_schema(doc, "/tickets/{id}/loaner", "post", 200), doc) == []
    # the list carries it too, as documented
    listing = api["manager"].get("/api/v1/tickets").get_json()
    assert mismatches(listing, answer_schema(doc, "/tickets", "get", 200), doc) == []
    assert next(t for t in listing["items"] if t["id"] == ticket.id)["loaner"]["id"] == \
        loaner["id"]
    # a second loaner while the first is out: 409 naming the one out
    again = lend(api, "manager", ticket.id, description="Nokia 105")
    assert again.status_code == 409 and "Samsung A10, white" in again.get_json()["error"]
    assert again.get_json()["code"] == "conflict"
    resp = take_back(api, "manager", ticket.id)
    assert resp.status_code == 200 and resp.get_json()["loaner"] is None
    assert resp.get_json()["history"][-1]["event"] == "return_loaner"
    assert mismatches(resp.get_json(), answer_schema(doc, "/tickets/{id}/loaner/return",
                                                     "post", 200), doc) == []
    assert take_back(api, "manager", ticket.id).status_code == 409
    # taken back with no body at all (nothing else to say)
    assert lend(api, "manager", ticket.id, description="Nokia 105").status_code == 200
    resp = api["reception"].client.post(f"/api/v1/tickets/{ticket.id}/loaner/return",
                                        headers=api["reception"].headers)
    assert resp.status_code == 200 and resp.get_json()["loaner"] is None


def test_a_loan_answers_200_with_the_ticket_whose_history_holds_it(app, api, make_ticket):
    """A loan is a record of the ticket's (its ``loaner``, its history), with no address of
    its own: no 201 without a Location a client could follow; the ticket it answers with (and
    reads back) holds it."""
    ticket = make_ticket("repair")
    resp = lend(api, "reception", ticket.id, **A10)
    assert resp.status_code == 200 and "Location" not in resp.headers
    again = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert again["loaner"] == resp.get_json()["loaner"]
    assert again["history"][-1] == resp.get_json()["history"][-1]
    assert again["history"][-1]["event"] == "lend_loaner"
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    responses = doc["paths"]["/tickets/{id}/loaner"]["post"]["responses"]
    assert "200" in responses and "201" not in responses


@pytest.mark.parametrize("role", ["technician", "admin"])
def test_the_api_lets_only_reception_and_the_manager_lend(api, make_ticket, role):
    ticket = make_ticket("repair")
    before = row_counts()
    assert lend(api, role, ticket.id, description="Nokia 105").status_code == 403
    assert take_back(api, role, ticket.id).status_code == 403
    assert row_counts() == before


def test_the_api_refuses_a_bad_loan_and_a_stale_version(api, make_ticket):
    ticket = make_ticket("intake")
    resp = lend(api, "reception", ticket.id, serial="490154203237519")
    assert resp.status_code == 422
    assert set(resp.get_json()["fields"]) == {"description", "serial"}
    assert lend(api, "reception", ticket.id, description="Nokia",
                version="1").status_code == 422
    assert lend(api, "reception", ticket.id, description="Nokia",
                version=ticket.version + 5).status_code == 409
    assert lend(api, "reception", 999_999, description="Nokia").status_code == 404
    assert reload(ticket).version == ticket.version


def test_the_api_hand_back_says_loaner_returned(app, api, make_ticket):
    from .test_openapi import mismatches
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    ticket = make_ticket("ready")
    assert lend(api, "reception", ticket.id, description="Nokia 105").status_code == 200
    before = row_counts()
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events",
                                 json={"event": "deliver", "amount_paid": 14_000_000})
    assert resp.status_code == 422
    body = resp.get_json()
    assert "Nokia 105" in body["error"] and "loaner_returned" in body["fields"]
    assert body["loaner"]["description"] == "Nokia 105"
    error = doc["paths"]["/tickets/{id}/events"]["post"]["responses"]["422"]
    assert mismatches(body, error["content"]["application/json"]["schema"], doc) == []
    assert row_counts() == before
    sent = {"event": "deliver", "amount_paid": 14_000_000, "loaner_returned": True}
    assert mismatches(sent, doc["components"]["schemas"]["Event"], doc) == []
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json=sent)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "delivered" and body["loaner"] is None
    assert [h["event"] for h in body["history"][-2:]] == ["return_loaner", "deliver"]
    assert trail_ok(ticket.id)


def test_the_api_cancel_with_the_loaner_back(api, make_ticket):
    ticket = make_ticket("intake")
    assert lend(api, "manager", ticket.id, description="Nokia 105").status_code == 200
    resp = api["manager"].post(f"/api/v1/tickets/{ticket.id}/events",
                               json={"event": "cancel", "reason": "no parts"})
    assert resp.status_code == 422 and "loaner_returned" in resp.get_json()["fields"]
    resp = api["manager"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "cancel", "reason": "no parts", "loaner_returned": True})
    assert resp.status_code == 200 and resp.get_json()["state"] == "cancelled"


# --- the pages --------------------------------------------------------------------------------

def test_the_desk_lends_from_the_ticket_page_and_the_receipt_names_the_loaner(app, make_ticket):
    ticket = make_ticket("intake")
    desk, technician = Staff(app, "reception1"), Staff(app, "technician1")
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert "data-lend-form" in page and "Lend a loaner phone" in page
    assert "data-lend-form" not in text(technician.get(f"/tickets/{ticket.id}?lang=en"))
    assert technician.post(f"/tickets/{ticket.id}/loaner",
                           {"description": "Nokia"}).status_code == 403
    # a refused form comes back open, with what was typed and the problem beside its field
    resp = desk.post(f"/tickets/{ticket.id}/loaner?lang=en", {
        "description": "", "serial": "490154203237519", "condition": "cracked corner",
        "version": str(ticket.version)})
    assert resp.status_code == 422
    page = text(resp)
    assert 'id="loaner-description-error"' in page and 'id="loaner-serial-error"' in page
    assert 'value="cracked corner"' in page and "data-lend-form open" in page
    assert loaners.out(ticket.id) is None
    resp = desk.post(f"/tickets/{ticket.id}/loaner", {**A10, "version": str(ticket.version)})
    assert resp.status_code == 302
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert "data-loaner-badge" in page and "Loaner phone with the customer" in page
    assert "Samsung A10, white" in page and "490154203237518" in page
    assert "scratch on the back" in page and "data-lend-form" not in page
    timeline = page[page.index("data-timeline"):]
    assert 'data-event="lend_loaner"' in timeline and "Loaner phone lent" in timeline
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert "data-loaner" in receipt and "Samsung A10, white" in receipt
    assert "to be returned when the device is collected" in receipt
    # in Persian: the loaner by its shop name and the date in the Jalali calendar
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=fa"))
    assert "گوشی امانی" in receipt and "۱۴۰" in receipt[receipt.index("data-loaner"):]
    # the technician sees it, but does not take it back
    page = text(technician.get(f"/tickets/{ticket.id}?lang=en"))
    assert "Loaner phone with the customer" in page and "data-take-back" not in page


def test_the_desk_takes_the_loaner_back_from_the_ticket_page(app, users, make_ticket):
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    manager = Staff(app, "manager1")
    ticket = reload(ticket)
    # the form asks how it came back: unsaid, or damaged with nothing said, it is refused
    for form, field in (({}, "condition"), ({"condition": "damaged", "note": " "}, "note")):
        resp = manager.post(f"/tickets/{ticket.id}/loaner/return?lang=en",
                            {**form, "version": str(ticket.version)})
        assert resp.status_code == 422
        assert f'id="loaner-back-{field}-error"' in text(resp)
        assert loaners.out(ticket.id) is not None
    resp = manager.post(f"/tickets/{ticket.id}/loaner/return", {
        "condition": "damaged", "note": "cracked screen", "version": str(ticket.version)})
    assert resp.status_code == 302
    assert loaners.out(ticket.id) is None
    page = text(manager.get(f"/tickets/{ticket.id}?lang=en"))
    assert "Loaner phone taken back" in page and "data-loaner-badge" not in page
    timeline = page[page.index("data-timeline"):]
    assert "As it came back" in timeline and "Damaged" in timeline
    assert "cracked screen" in timeline
    assert "data-lend-form" in page  # another can be lent now
    # the same form sent again: said, nothing written
    resp = manager.post(f"/tickets/{ticket.id}/loaner/return?lang=en",
                        {"version": str(ticket.version)}, follow_redirects=True)
    assert "changed since you opened it" in text(resp)


def test_no_lend_form_once_the_ticket_is_over(app, make_ticket):
    desk = Staff(app, "reception1")
    for state in ("delivered", "cancelled"):
        ticket = make_ticket(state)
        assert "data-lend-form" not in text(desk.get(f"/tickets/{ticket.id}?lang=en"))


def test_the_cancel_form_asks_for_the_loaner_back(app, users, make_ticket):
    ticket = make_ticket("intake")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    desk = Staff(app, "reception1")
    ticket = reload(ticket)
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    form = page[page.index('data-event-form="cancel"'):]
    assert "data-loaner-back" in form and 'name="loaner_returned"' in form
    resp = desk.post(f"/tickets/{ticket.id}/events?lang=en", {
        "event": "cancel", "reason": "no parts", "version": str(ticket.version)})
    assert resp.status_code == 422
    page = text(resp)
    form = page[page.index('data-event-form="cancel"'):]
    assert 'id="loaner_returned-error"' in form and "Nokia 105" in form
    assert 'aria-describedby="loaner_returned-error"' in form
    assert reload(ticket).state == "intake"
    resp = desk.post(f"/tickets/{ticket.id}/events", {
        "event": "cancel", "reason": "no parts", "loaner_returned": "1",
        "version": str(ticket.version)})
    assert resp.status_code == 302
    ticket = reload(ticket)
    assert ticket.state == "cancelled" and loaners.out(ticket.id) is None
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    timeline = page[page.index("data-timeline"):]
    assert "at the cancellation" in timeline


def test_the_delivery_desk_refuses_the_hand_back_until_the_loaner_is_ticked_back(
        app, users, make_ticket):
    ticket = make_ticket("ready")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), dict(A10))
    desk = Staff(app, "reception1")
    ticket = reload(ticket)
    page = text(desk.get(f"/desk/delivery?q={ticket.number}&lang=en"))
    assert "data-loaner-back" in page and "Samsung A10, white" in page
    form = {"amount_paid": "1,400,000", "payment_method": "cash", "money_unit": "toman",
            "version": str(ticket.version)}
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", form)
    assert resp.status_code == 422
    page = text(resp)
    assert 'id="loaner_returned-error"' in page and "still with the customer" in page
    assert 'value="1,400,000"' in page  # what was typed stays
    assert reload(ticket).state == "ready" and loaners.out(ticket.id) is not None
    resp = desk.post(f"/desk/delivery/{ticket.id}", {**form, "loaner_returned": "1"})
    assert resp.status_code == 302
    ticket = reload(ticket)
    assert ticket.state == "delivered" and loaners.out(ticket.id) is None
    receipt = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert "data-loaner-returned" in receipt and "Samsung A10, white" in receipt
    assert "returned on" in receipt


def test_the_list_of_loaners_out_from_the_desks_navigation(app, users, make_ticket):
    first, second = make_ticket("repair"), make_ticket("intake")
    desk = Actor.staff(users["reception"])
    loaners.lend(first.id, desk, {"description": "Nokia 105"})
    loaners.lend(second.id, Actor.staff(users["manager"]), dict(A10))
    for who in ("reception1", "manager1"):
        staff = Staff(app, who)
        home = text(staff.get("/desk?lang=en"))
        assert 'href="/desk/loaners"' in home
        page = text(staff.get("/desk/loaners?lang=en"))
        rows = page[page.index("data-loaners"):]
        # the longest out first: which ticket, which customer, since when, who lent it
        assert rows.index(f'data-ticket="{first.id}"') < rows.index(f'data-ticket="{second.id}"')
        assert "Nokia 105" in rows and "Samsung A10, white" in rows
        assert "Narges Rezaei" in rows and "reception1" in rows and "manager1" in rows
    loaners.take_back(first.id, desk)
    page = text(Staff(app, "reception1").get("/desk/loaners?lang=en"))
    assert "Nokia 105" not in page and 'data-loaners-count>1<' in page
    technician = Staff(app, "technician1")
    assert technician.get("/desk/loaners").status_code == 403
    assert 'href="/desk/loaners"' not in text(technician.get("/?lang=en"))


def test_the_demo_shop_has_a_loaner_out_and_its_trail_holds(app):
    """The demo's loaner is one of its branch's list (a few phones on it, the others free),
    out on the ticket waiting for parts; a second seed adds no phone twice."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    out = loaners.loaners_out()
    assert [loan.ticket.state for loan in out] == ["waiting_parts"]
    rows = loaners.stock()
    assert len(rows) >= 3 and [r.state for r in rows].count("out") == 1, rows
    assert out[0].loaner_id == next(r.phone.id for r in rows if r.state == "out")
    assert all(r.state == "free" for r in rows if r.state != "out")
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert len(loaners.stock()) == len(rows)
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 0, result.output


def test_another_branchs_desk_neither_lends_nor_lists_this_branchs_loaners(app, users,
                                                                           make_ticket):
    from servicedesk.models import Branch
    from servicedesk.services.people import create_user

    from .conftest import PASSWORD
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"description": "Nokia 105"})
    north = Branch(name="North", code="N", active=True)
    db.session.add(north)
    db.session.commit()
    northdesk = create_user("northdesk", "reception", PASSWORD, branch=north)
    with pytest.raises(Forbidden):
        loaners.take_back(ticket.id, Actor.staff(northdesk))
    assert loaners.out(ticket.id) is not None
    page = text(Staff(app, "northdesk").get("/desk/loaners?lang=en"))
    assert "Nokia 105" not in page and "data-no-loaners" in page
    page = text(Staff(app, "northdesk").get(f"/tickets/{ticket.id}?lang=en"))
    assert "Loaner phone with the customer" in page and "data-take-back" not in page
    # the manager sees every branch's
    assert "Nokia 105" in text(Staff(app, "manager1").get("/desk/loaners?lang=en"))


def test_an_answer_about_a_ticket_without_a_loaner_does_not_look_for_one(app, api, make_ticket):
    """The trail that comes with the ticket says whether a loaner is out: the API's intake and
    events (nearly all without one) send no query for it; with one out the answer carries it."""
    from sqlalchemy import event as sa_event
    looked = []

    def count(conn, cursor, statement, *args):
        if " loans" in statement:
            looked.append(statement)
    ticket = make_ticket("repair")
    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        resp = api["technician"].post(f"/api/v1/tickets/{ticket.id}/events",
                                      json={"event": "wait_parts", "part": "screen"})
        assert resp.status_code == 200 and resp.get_json()["loaner"] is None
        assert looked == []
        assert lend(api, "reception", ticket.id, **A10).status_code == 200
        looked.clear()
        resp = api["technician"].post(f"/api/v1/tickets/{ticket.id}/events",
                                      json={"event": "resume"})
        assert resp.get_json()["loaner"]["description"] == A10["description"]
        assert len(looked) == 1
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)


def test_a_loaners_items_are_parted_by_a_persian_comma_not_a_dot_read_as_zero(
        app, users, make_ticket):
    """"۱۴۰۵/۰۹/۱۶ ۰۳:۳۳ · رضا": the middle dot is drawn like the Persian zero, as on the
    rest of the desk's pages (list_separator): the ticket's loaner card, the list of loaners
    out and the message naming a loaner part their items with the Persian comma in Persian,
    and keep the dot in English."""
    from flask_babel import force_locale
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), dict(A10))
    desk = Staff(app, "reception1")
    for url in (f"/tickets/{ticket.id}", "/desk/loaners"):
        page = text(desk.get(url)).split("<body", 1)[-1]
        card = page.split('data-loaner', 1)[-1].split("</section>", 1)[0].split("</table>", 1)[0]
        assert "·" not in card, url
    assert "، <bdi" in text(desk.get(f"/tickets/{ticket.id}"))
    assert " · <bdi" in text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    with app.test_request_context(), force_locale("fa"):
        assert "·" not in loaners.named(loaners.out(ticket.id))
    # the intake receipt and, once handed back, the delivery receipt
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt")).split("data-loaner>", 1)[1]
    assert "·" not in receipt.split("</dd>", 1)[0] and "، " in receipt.split("</dd>", 1)[0]
