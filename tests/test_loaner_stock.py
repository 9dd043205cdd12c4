"""The branch's own loaner phones (its stock list): the manager or the administrator adds,
edits, retires a phone and marks a damaged one fine (each in the admin audit log); the desk
lends one of the branch's free phones (the free-text way stays), never one out already (a
database constraint), nor a damaged, retired or other branch's one; taken back, it says how it
came back, in the ``return_loaner`` record of the hash-chained trail. On both databases."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from servicedesk.errors import Conflict, Forbidden, NotFound, ValidationError
from servicedesk.extensions import db
from servicedesk.lifecycle import Actor
from servicedesk.models import AuditLog, Branch, Loan, Loaner, Ticket
from servicedesk.services import loaners
from servicedesk.services import tickets as ticket_service

from .test_loaners import row_counts, trail_ok
from .test_reception import reload


def add_phone(user, label="A1", model="Samsung A10, white", serial="490154203237518",
              notes="", branch_id=None):
    return loaners.save_phone(user, None, {
        "branch_id": branch_id or ticket_service.default_branch().id, "label": label,
        "model": model, "serial": serial, "notes": notes})


def counts() -> dict:
    c = row_counts()
    c["Loaner"] = db.session.scalar(select(db.func.count()).select_from(Loaner))
    c["audit"] = db.session.scalar(select(db.func.count()).select_from(AuditLog))
    return c


# --- the stock list ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["manager", "admin"])
def test_the_manager_and_the_admin_add_edit_and_retire_a_phone(users, role):
    phone = add_phone(users[role], notes="charger in the drawer")
    assert [r.state for r in loaners.stock()] == ["free"]
    assert loaners.free_phones(phone.branch_id) == [phone]
    logged = db.session.scalars(select(AuditLog).where(AuditLog.action.like("loaner.%"))
                                .order_by(AuditLog.id)).all()
    assert [(a.action, a.actor_name) for a in logged] == [("loaner.create", role + "1")]
    loaners.save_phone(users[role], phone.id, {
        "branch_id": phone.branch_id, "label": "A2", "model": "Nokia 105", "serial": ""})
    db.session.expire_all()
    phone = db.session.get(Loaner, phone.id)
    assert (phone.label, phone.model, phone.serial) == ("A2", "Nokia 105", None)
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "loaner.update")
                             ).value_to == {"label": "A2", "model": "Nokia 105",
                                            "serial": None, "notes": ""}
    loaners.retire(users[role], phone.id)
    assert [r.state for r in loaners.stock()] == ["retired"]
    assert loaners.free_phones(phone.branch_id) == []
    with pytest.raises(Conflict):
        loaners.retire(users[role], phone.id)


@pytest.mark.parametrize("role", ["reception", "technician"])
def test_only_the_manager_and_the_admin_keep_the_list(users, role):
    phone = add_phone(users["manager"])
    before = counts()
    with pytest.raises(Forbidden):
        add_phone(users[role], label="B1")
    with pytest.raises(Forbidden):
        loaners.retire(users[role], phone.id)
    assert counts() == before


@pytest.mark.parametrize("data, field", [
    ({"label": "", "model": "Nokia"}, "label"),
    ({"label": "A1", "model": ""}, "model"),
    ({"label": "x" * 21, "model": "Nokia"}, "label"),
    ({"label": "B1", "model": "Nokia", "serial": "490154203237519"}, "serial"),
    ({"label": "a1", "model": "Nokia"}, "label"),  # the label of another phone in use
    ({"label": "B1", "model": "Nokia", "branch_id": 999}, "branch_id"),
])
def test_a_bad_phone_is_refused_naming_the_field_and_nothing_is_written(users, data, field):
    add_phone(users["manager"])
    before = counts()
    with pytest.raises(ValidationError) as err:
        loaners.save_phone(users["manager"], None, {
            "branch_id": ticket_service.default_branch().id, **data})
    assert field in err.value.fields
    assert counts() == before


def test_a_retired_phones_label_may_be_given_again(users):
    old = add_phone(users["manager"])
    loaners.retire(users["manager"], old.id)
    new = add_phone(users["manager"], model="Nokia 105")
    assert [(r.phone.id, r.state) for r in loaners.stock()] == [(new.id, "free"),
                                                                 (old.id, "retired")]


def test_the_database_keeps_a_label_once_per_branch_whatever_its_case(users):
    """Two managers adding "A1" and "a1" at the same instant (each passed the service's
    case-blind check): the unique index on lower(label) refuses the second; a retired phone's
    label is free again, and another branch may use it."""
    from sqlalchemy.exc import IntegrityError
    phone = add_phone(users["manager"])
    fields = {"model": "Nokia 105", "notes": "", "condition": "fine", "condition_note": ""}
    db.session.add(Loaner(branch_id=phone.branch_id, label="a1", **fields))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    loaners.retire(users["manager"], phone.id)
    north = Branch(name="North", code="N", active=True)
    db.session.add_all([north, Loaner(branch_id=phone.branch_id, label="a1", **fields)])
    db.session.flush()
    db.session.add(Loaner(branch_id=north.id, label="A1", **fields))
    db.session.commit()


def test_no_such_phone(users):
    with pytest.raises(NotFound):
        loaners.retire(users["manager"], 12345)


# --- lending one of them ----------------------------------------------------------------------

def test_the_desk_lends_a_free_phone_and_the_list_says_out_with_ticket_and_customer(
        users, make_ticket):
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    loan = loaners.out(ticket.id)
    assert (loan.loaner_id, loan.description, loan.serial) == (
        phone.id, "A1 (Samsung A10, white)", "490154203237518")
    lent = reload(ticket).events[-1]
    assert lent.event == "lend_loaner" and lent.data["loaner_id"] == phone.id
    assert trail_ok(ticket.id)
    (row,) = loaners.stock()
    assert row.state == "out" and row.loan.ticket.number == ticket.number
    assert row.loan.ticket.customer.name == "Narges Rezaei" and row.overdue is None
    assert loaners.free_phones(phone.branch_id) == []


def test_one_phone_is_not_out_twice(users, make_ticket):
    phone = add_phone(users["manager"])
    first, second = make_ticket("repair"), make_ticket("intake")
    desk = Actor.staff(users["reception"])
    loaners.lend(first.id, desk, {"loaner_id": phone.id})
    before = counts()
    with pytest.raises(Conflict, match="A1"):  # names the phone
        loaners.lend(second.id, desk, {"loaner_id": phone.id})
    assert counts() == before
    loaners.take_back(first.id, desk)
    loaners.lend(second.id, desk, {"loaner_id": phone.id})
    assert loaners.out(second.id).loaner_id == phone.id


def test_the_database_keeps_one_phone_out_once(users, make_ticket):
    """Two desks lending the same phone at the same instant: the partial unique index."""
    phone = add_phone(users["manager"])
    first, second = make_ticket("repair"), make_ticket("intake")
    loaners.lend(first.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    db.session.add(Loan(ticket_id=second.id, description="A1", condition="", loaner_id=phone.id,
                        lent_at=loaners.out(first.id).lent_at, lent_by_name="x"))
    with pytest.raises(Exception):
        db.session.commit()
    db.session.rollback()


def test_a_damaged_a_retired_or_another_branchs_phone_is_not_lent(users, make_ticket):
    north = Branch(name="North", code="N", active=True)
    db.session.add(north)
    db.session.commit()
    theirs = add_phone(users["manager"], label="N1", branch_id=north.id)
    retired = add_phone(users["manager"], label="R1")
    loaners.retire(users["manager"], retired.id)
    ticket = make_ticket("repair")
    desk = Actor.staff(users["reception"])
    before = counts()
    for phone in (theirs, retired):
        with pytest.raises(ValidationError) as err:
            loaners.lend(ticket.id, desk, {"loaner_id": phone.id})
        assert "loaner_id" in err.value.fields
    with pytest.raises(ValidationError):
        loaners.lend(ticket.id, desk, {"loaner_id": "abc"})
    assert counts() == before


def test_taken_back_damaged_it_waits_for_the_manager_to_mark_it_fine(users, make_ticket):
    phone = add_phone(users["manager"])
    ticket, other = make_ticket("repair"), make_ticket("intake")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"loaner_id": phone.id})
    # damaged needs a note; a condition that is neither is refused; nothing changes
    before = counts()
    for data, field in (({"condition": "damaged"}, "note"), ({"condition": "broken"},
                                                              "condition")):
        with pytest.raises(ValidationError) as err:
            loaners.take_back(ticket.id, desk, data=data)
        assert field in err.value.fields
    with pytest.raises(ValidationError):  # the desk's form asks for it
        loaners.take_back(ticket.id, desk, data={}, condition_required=True)
    assert counts() == before and loaners.out(ticket.id) is not None
    loaners.take_back(ticket.id, desk, data={"condition": "damaged", "note": "cracked screen"})
    back = reload(ticket).events[-1]
    assert back.event == "return_loaner"
    assert (back.data["condition"], back.data["note"]) == ("damaged", "cracked screen")
    assert trail_ok(ticket.id)
    (row,) = loaners.stock()
    assert row.state == "damaged" and row.phone.condition_note == "cracked screen"
    assert loaners.free_phones(phone.branch_id) == []
    with pytest.raises(ValidationError, match="A1"):
        loaners.lend(other.id, desk, {"loaner_id": phone.id})
    with pytest.raises(Forbidden):
        loaners.mark_fine(users["reception"], phone.id)
    loaners.mark_fine(users["manager"], phone.id)
    assert [r.state for r in loaners.stock()] == ["free"]
    loaners.lend(other.id, desk, {"loaner_id": phone.id})


def test_taken_back_fine_it_is_free_again(users, make_ticket):
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"loaner_id": phone.id})
    loaners.take_back(ticket.id, desk, data={"condition": "fine"})
    assert reload(ticket).events[-1].data["condition"] == "fine"
    assert loaners.free_phones(phone.branch_id) == [phone] and trail_ok(ticket.id)


def test_a_phone_out_is_not_retired(users, make_ticket):
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    with pytest.raises(Conflict, match="A1"):
        loaners.retire(users["manager"], phone.id)


def test_the_hand_back_takes_the_phone_back_with_its_condition(users, make_ticket):
    phone = add_phone(users["manager"])
    ticket = make_ticket("ready")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"loaner_id": phone.id})
    ticket = reload(ticket)
    with pytest.raises(ValidationError) as err:
        ticket_service.fire_event(ticket.id, "deliver", desk, {
            **lifecycle_sample("deliver"), "loaner_returned": True,
            "loaner_condition": "damaged"})
    assert "loaner_note" in err.value.fields
    assert reload(ticket).state == "ready"
    ticket_service.fire_event(ticket.id, "deliver", desk, {
        **lifecycle_sample("deliver"), "loaner_returned": True, "loaner_condition": "damaged",
        "loaner_note": "no charger"})
    ticket = reload(ticket)
    back = [e for e in ticket.events if e.event == "return_loaner"][-1]
    assert back.data["with_event"] == "deliver" and back.data["note"] == "no charger"
    assert ticket.state == "delivered" and trail_ok(ticket.id)
    assert [r.state for r in loaners.stock()] == ["damaged"]


def lifecycle_sample(event):
    from .conftest import SAMPLE_DATA
    return dict(SAMPLE_DATA[event])


def test_overdue_when_waiting_for_pickup_or_out_long(app, users, make_ticket):
    desk = Actor.staff(users["reception"])
    one, two, three = (add_phone(users["manager"], label=label, serial="")
                       for label in ("A1", "A2", "A3"))
    ready, repair, fresh = make_ticket("ready"), make_ticket("repair"), make_ticket("repair")
    for ticket, phone in ((ready, one), (repair, two), (fresh, three)):
        loaners.lend(ticket.id, desk, {"loaner_id": phone.id})
    now = loaners.out(ready.id).lent_at
    ready_limit = timedelta(hours=lifecycle_limits()["ready"])
    rows = {r.phone.label: r for r in loaners.stock(now=now + ready_limit + timedelta(hours=1))}
    assert rows["A1"].overdue == "pickup" and rows["A2"].overdue is None
    assert rows["A1"].pickup_since is not None
    rows = {r.phone.label: r for r in loaners.stock(now=now + timedelta(days=15))}
    assert rows["A2"].overdue == "long" and rows["A3"].overdue == "long"
    rows = {r.phone.label: r for r in loaners.stock(now=now + timedelta(hours=1))}
    assert [rows[k].overdue for k in ("A1", "A2", "A3")] == [None, None, None]


def lifecycle_limits():
    from servicedesk import settings
    return settings.time_limits()


# --- the pages --------------------------------------------------------------------------------

def test_the_manager_keeps_the_list_on_the_loaner_phones_page(app, users):
    from .test_reception import Staff, text
    manager = Staff(app, "manager1")
    page = text(manager.get("/desk/loaners?lang=en"))
    assert "data-no-stock" in page and "data-add-phone" in page
    # a refused phone comes back with what was typed and the problem beside its field
    resp = manager.post("/desk/loaners/stock?lang=en", {
        "branch_id": str(ticket_service.default_branch().id), "label": "A1", "model": "",
        "serial": "490154203237518", "notes": "charger in the drawer"})
    assert resp.status_code == 422
    page = text(resp)
    assert 'id="stock-add-model-error"' in page and "data-add-phone open" in page
    assert 'value="charger in the drawer"' in page
    assert db.session.scalar(select(db.func.count()).select_from(Loaner)) == 0
    resp = manager.post("/desk/loaners/stock", {
        "branch_id": str(ticket_service.default_branch().id), "label": "A1",
        "model": "Samsung A10, white", "serial": "490154203237518", "notes": ""})
    assert resp.status_code == 302
    (phone,) = db.session.scalars(select(Loaner)).all()
    page = text(manager.get("/desk/loaners?lang=en"))
    row = page[page.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-state="free"' in row and "Samsung A10, white" in row and "Free" in row
    # edited, then retired
    resp = manager.post(f"/desk/loaners/stock/{phone.id}", {
        "branch_id": str(phone.branch_id), "label": "A1", "model": "Samsung A10, black"})
    assert resp.status_code == 302
    assert manager.post(f"/desk/loaners/stock/{phone.id}/retire").status_code == 302
    page = text(manager.get("/desk/loaners?lang=en"))
    row = page[page.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-state="retired"' in row and "Samsung A10, black" in row
    # retiring it again: said, nothing changes
    resp = manager.post(f"/desk/loaners/stock/{phone.id}/retire?lang=en")
    assert resp.status_code == 409 and "retired already" in text(resp)


def test_the_desk_sees_the_list_but_does_not_keep_it(app, users):
    from .test_reception import Staff, text
    phone = add_phone(users["manager"])
    desk = Staff(app, "reception1")
    page = text(desk.get("/desk/loaners?lang=en"))
    assert f'data-phone="{phone.id}"' in page and "data-add-phone" not in page
    assert "data-retire" not in page
    assert desk.post(f"/desk/loaners/stock/{phone.id}/retire").status_code == 403
    assert desk.post("/desk/loaners/stock", {"label": "B1", "model": "x"}).status_code == 403
    admin = Staff(app, "admin1")
    assert 'href="/desk/loaners"' in text(admin.get("/?lang=en"))
    assert "data-add-phone" in text(admin.get("/desk/loaners?lang=en"))


def test_lending_from_the_ticket_page_picks_a_free_phone(app, users, make_ticket):
    from .test_reception import Staff, text
    ticket = make_ticket("repair")
    desk = Staff(app, "reception1")
    # no list: the form asks what is lent, as before
    assert "data-free-phones" not in text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    phone = add_phone(users["manager"])
    damaged = add_phone(users["manager"], label="A2", model="Nokia 105", serial="")
    damaged.condition = "damaged"
    db.session.commit()
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    picker = page[page.index("data-free-phones"):].split("</select>", 1)[0]
    assert f'value="{phone.id}"' in picker and f'value="{damaged.id}"' not in picker
    resp = desk.post(f"/tickets/{ticket.id}/loaner", {
        "loaner_id": str(phone.id), "description": "", "version": str(ticket.version)})
    assert resp.status_code == 302
    assert loaners.out(ticket.id).loaner_id == phone.id
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    assert "A1 (Samsung A10, white)" in page
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert "A1 (Samsung A10, white)" in receipt
    stock = text(desk.get("/desk/loaners?lang=en"))
    row = stock[stock.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-state="out"' in row and ticket.number in row and "Narges Rezaei" in row
    stock = text(desk.get("/desk/loaners?lang=fa"))  # since when: the Jalali date
    assert "از ۱۴۰" in stock[stock.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    # another ticket: the phone out is not offered; sent anyway, it is refused, said
    other = make_ticket("intake")
    page = text(desk.get(f"/tickets/{other.id}?lang=en"))
    picker = page[page.index("data-free-phones"):].split("</select>", 1)[0]
    assert f'value="{phone.id}"' not in picker and "None is free" in picker
    resp = desk.post(f"/tickets/{other.id}/loaner?lang=en", {
        "loaner_id": str(phone.id), "version": str(other.version)})
    assert resp.status_code == 409 and "out already" in text(resp)
    assert loaners.out(other.id) is None
    # the typed way stays
    resp = desk.post(f"/tickets/{other.id}/loaner", {
        "loaner_id": "", "description": "Nokia 105", "version": str(other.version)})
    assert resp.status_code == 302 and loaners.out(other.id).loaner_id is None


def test_a_damaged_phone_on_the_list_and_the_manager_marks_it_fine(app, users, make_ticket):
    from .test_reception import Staff, text
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    desk = Actor.staff(users["reception"])
    loaners.lend(ticket.id, desk, {"loaner_id": phone.id})
    loaners.take_back(ticket.id, desk, data={"condition": "damaged", "note": "cracked screen"})
    manager = Staff(app, "manager1")
    page = text(manager.get("/desk/loaners?lang=en"))
    row = page[page.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-state="damaged"' in row and "cracked screen" in row and "data-mark-fine" in row
    assert manager.post(f"/desk/loaners/stock/{phone.id}/fine").status_code == 302
    page = text(manager.get("/desk/loaners?lang=en"))
    row = page[page.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-state="free"' in row


def test_the_list_marks_a_phone_overdue(app, users, make_ticket):
    from .test_reception import Staff, text
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    page = text(Staff(app, "manager1").get("/desk/loaners?lang=en"))
    assert "data-overdue-mark" not in page
    # lent 20 days ago (the trail says so too: verify-audit ties them)
    lent = [e for e in reload(ticket).events if e.event == "lend_loaner"][-1]
    loan = loaners.out(ticket.id)
    then = loan.lent_at - timedelta(days=20)
    loan.lent_at = lent.at = then
    db.session.commit()
    page = text(Staff(app, "manager1").get("/desk/loaners?lang=en"))
    row = page[page.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-overdue="long"' in row and "Overdue: out a long time" in row


# --- the API ----------------------------------------------------------------------------------

def test_the_api_lends_a_phone_of_the_list_and_takes_it_back_damaged(app, api, users,
                                                                      make_ticket):
    from .test_openapi import answer_schema, mismatches
    phone = add_phone(users["manager"])
    ticket = make_ticket("repair")
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/loaner",
                                 json={"loaner_id": phone.id})
    assert resp.status_code == 200
    loaner = resp.get_json()["loaner"]
    assert (loaner["loaner_id"], loaner["description"], loaner["serial"]) == (
        phone.id, "A1 (Samsung A10, white)", "490154203237518")
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert mismatches(resp.get_json(), answer_schema(
        doc, "/tickets/{id}/loaner", "post", 200), doc) == []
    other = make_ticket("intake")
    resp = api["reception"].post(f"/api/v1/tickets/{other.id}/loaner",
                                 json={"loaner_id": phone.id})
    assert resp.status_code == 409 and resp.get_json()["code"] == "conflict"
    assert list(resp.get_json()["fields"]) == ["loaner_id"]  # the field, as a 422 names it
    # back: a condition that is neither, or damaged without a note, is refused; nothing changes
    for body, field in (({"condition": "broken"}, "condition"),
                        ({"condition": "damaged"}, "note")):
        resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/loaner/return", json=body)
        assert resp.status_code == 422 and field in resp.get_json()["fields"]
        assert loaners.out(ticket.id) is not None
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/loaner/return",
                                 json={"condition": "damaged", "note": "cracked screen"})
    assert resp.status_code == 200 and resp.get_json()["loaner"] is None
    history = resp.get_json()["history"]
    assert history[-1]["event"] == "return_loaner"
    resp = api["reception"].post(f"/api/v1/tickets/{other.id}/loaner",
                                 json={"loaner_id": phone.id})
    assert resp.status_code == 422 and "loaner_id" in resp.get_json()["fields"]
    assert trail_ok(ticket.id)


def test_the_api_still_lends_by_description_and_takes_back_without_a_body(api, make_ticket):
    ticket = make_ticket("repair")
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/loaner",
                                 json={"description": "Nokia 105"})
    assert resp.status_code == 200 and resp.get_json()["loaner"]["loaner_id"] is None
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/loaner/return")
    assert resp.status_code == 200 and loaners.out(ticket.id) is None
    assert trail_ok(ticket.id)


# --- lending at intake ------------------------------------------------------------------------

def test_the_intake_form_lends_a_free_phone_with_the_admit(app, users, make_ticket):
    from .test_reception import Staff, intake_form, text
    desk = Staff(app, "reception1")
    # no list: the intake form offers none
    assert "data-intake-loaner" not in text(desk.get("/desk/intake?lang=en"))
    phone = add_phone(users["manager"])
    page = text(desk.get("/desk/intake?lang=en"))
    picker = page[page.index("data-intake-loaner"):].split("</select>", 1)[0]
    assert f'value="{phone.id}"' in picker and "A1" in picker
    before = counts()
    resp = desk.post("/desk/intake", intake_form(loaner_id=str(phone.id)))
    assert resp.status_code == 302
    ticket = db.session.scalar(select(Ticket).order_by(Ticket.id.desc()))
    assert [e.event for e in ticket.events] == ["admit", "lend_loaner"]
    assert loaners.out(ticket.id).loaner_id == phone.id and trail_ok(ticket.id)
    assert counts()["Loan"] == before["Loan"] + 1
    receipt = text(desk.get(f"/tickets/{ticket.id}/receipt?lang=en"))
    assert "data-loaner" in receipt and "A1 (Samsung A10, white)" in receipt
    # the phone out is offered no more; sent anyway (a stale form), nothing is admitted
    assert f'value="{phone.id}"' not in text(desk.get("/desk/intake?lang=en"))
    before = counts()
    resp = desk.post("/desk/intake?lang=en", intake_form(loaner_id=str(phone.id)))
    assert resp.status_code == 409 and "A1" in text(resp)
    assert counts() == before


def test_a_damaged_phone_at_intake_admits_nothing_and_names_the_field(app, users):
    from .test_reception import Staff, intake_form, text
    phone = add_phone(users["manager"])
    phone.condition = "damaged"
    db.session.commit()
    desk = Staff(app, "reception1")
    before = counts()
    resp = desk.post("/desk/intake?lang=en", intake_form(loaner_id=str(phone.id)))
    assert resp.status_code == 422
    assert 'id="loaner_id-error"' in text(resp)
    assert counts() == before


def test_the_api_intake_lends_a_phone_of_the_list_with_the_admit(app, api, users):
    from .conftest import INTAKE
    from .test_openapi import answer_schema, mismatches
    phone = add_phone(users["manager"])
    before = counts()
    resp = api["reception"].post("/api/v1/tickets", json={**INTAKE, "loaner_id": phone.id})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert [h["event"] for h in body["history"]] == ["admit", "lend_loaner"]
    assert (body["loaner"]["loaner_id"], body["loaner"]["description"]) == (
        phone.id, "A1 (Samsung A10, white)")
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert mismatches(body, answer_schema(doc, "/tickets", "post", 201), doc) == []
    assert "loaner_id" in doc["components"]["schemas"]["NewTicket"]["properties"]
    assert counts()["Loan"] == before["Loan"] + 1 and trail_ok(body["id"])
    # the phone out now: the next intake asking for it admits nothing
    before = counts()
    again = api["reception"].post("/api/v1/tickets", json={
        **INTAKE, "loaner_id": phone.id, "problem": "Battery"})
    assert again.status_code == 409 and "A1" in again.get_json()["error"]
    # named on its field, as a retired or another branch's phone is (a 422's fields)
    assert again.get_json()["fields"] == {"loaner_id": again.get_json()["error"]}
    assert counts() == before


def test_a_phone_the_api_intake_may_not_lend_admits_nothing_and_names_the_field(api, users):
    from .conftest import INTAKE
    north = Branch(name="North", code="N", active=True)
    db.session.add(north)
    db.session.commit()
    theirs = add_phone(users["manager"], label="N1", branch_id=north.id)
    damaged = add_phone(users["manager"], label="D1", serial="")
    damaged.condition = "damaged"
    db.session.commit()
    before = counts()
    for loaner_id in (theirs.id, damaged.id, 999_999, "abc", 0):
        resp = api["reception"].post("/api/v1/tickets", json={**INTAKE, "loaner_id": loaner_id})
        assert resp.status_code == 422, (loaner_id, resp.get_json())
        assert resp.get_json()["code"] == "invalid" and "loaner_id" in resp.get_json()["fields"]
    assert counts() == before


def test_the_delivery_desk_takes_the_phone_back_damaged_with_the_hand_back(app, users,
                                                                           make_ticket):
    from .test_reception import Staff, text
    phone = add_phone(users["manager"])
    ticket = make_ticket("ready")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    ticket = reload(ticket)
    desk = Staff(app, "reception1")
    page = text(desk.get(f"/desk/delivery?q={ticket.number}&lang=en"))
    assert "data-loaner-condition" in page and 'name="loaner_condition"' in page
    form = {"amount_paid": "1,400,000", "payment_method": "cash", "money_unit": "toman",
            "version": str(ticket.version), "loaner_returned": "1",
            "loaner_condition": "damaged", "loaner_note": ""}
    resp = desk.post(f"/desk/delivery/{ticket.id}?lang=en", form)
    assert resp.status_code == 422 and 'id="loaner_note-error"' in text(resp)
    assert reload(ticket).state == "ready" and loaners.out(ticket.id) is not None
    resp = desk.post(f"/desk/delivery/{ticket.id}", {**form, "loaner_note": "cracked screen"})
    assert resp.status_code == 302
    assert reload(ticket).state == "delivered" and trail_ok(ticket.id)
    page = text(Staff(app, "manager1").get("/desk/loaners?lang=en"))
    row = page[page.index(f'data-phone="{phone.id}"'):].split("</tr>", 1)[0]
    assert 'data-state="damaged"' in row and "cracked screen" in row


def test_the_cancel_form_takes_the_phone_back_with_its_condition(app, users, make_ticket):
    from .test_reception import Staff, text
    phone = add_phone(users["manager"])
    ticket = make_ticket("intake")
    loaners.lend(ticket.id, Actor.staff(users["reception"]), {"loaner_id": phone.id})
    ticket = reload(ticket)
    desk = Staff(app, "reception1")
    resp = desk.post(f"/tickets/{ticket.id}/events", {
        "event": "cancel", "reason": "no parts", "loaner_returned": "1",
        "loaner_condition": "fine", "version": str(ticket.version)})
    assert resp.status_code == 302
    back = [e for e in reload(ticket).events if e.event == "return_loaner"][-1]
    assert back.data["condition"] == "fine" and back.data["with_event"] == "cancel"
    page = text(desk.get(f"/tickets/{ticket.id}?lang=en"))
    timeline = page[page.index("data-timeline"):]
    assert "As it came back" in timeline and "at the cancellation" in timeline


def test_a_phone_picked_from_the_list_and_another_typed_is_refused_not_guessed(
        app, api, users, make_ticket):
    """The list's first phone is picked until the desk changes it: a desk that typed the
    phone it was lending had the list's phone recorded instead, silently."""
    from .test_reception import Staff, text
    ticket = make_ticket("repair")
    phone = add_phone(users["manager"])
    desk = Staff(app, "reception1")
    before = counts()
    resp = desk.post(f"/tickets/{ticket.id}/loaner?lang=en", {
        "loaner_id": str(phone.id), "description": "Nokia 105", "serial": "",
        "version": str(ticket.version)})
    assert resp.status_code == 422
    page = text(resp)
    form = page[page.index("data-lend-form"):].split("</details>", 1)[0]
    assert "A phone is picked from the list and another is typed" in form
    assert 'value="Nokia 105"' in form  # what was typed stays
    assert loaners.out(ticket.id) is None and counts() == before
    # in Persian too, and through the API (a serial typed counts as typing a phone)
    resp = desk.post(f"/tickets/{ticket.id}/loaner?lang=fa", {
        "loaner_id": str(phone.id), "description": "", "serial": "490154203237518",
        "version": str(ticket.version)})
    assert resp.status_code == 422 and "گوشی دیگری" in text(resp)
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/loaner",
                                 json={"loaner_id": phone.id, "description": "Nokia 105"})
    assert resp.status_code == 422 and list(resp.get_json()["fields"]) == ["loaner_id"]
    assert loaners.out(ticket.id) is None and counts() == before
    # picking alone, or typing alone ("Another phone"), lends as before
    resp = desk.post(f"/tickets/{ticket.id}/loaner", {
        "loaner_id": "", "description": "Nokia 105", "version": str(ticket.version)})
    assert resp.status_code == 302 and loaners.out(ticket.id).loaner_id is None
