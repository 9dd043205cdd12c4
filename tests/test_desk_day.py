"""A busy day at the desk, as reception, the technicians and the delivery desk meet it: the
right button for the number at the counter, a phone number mistyped said at once, a relative's
name found, slips that print when asked to."""
import re

from servicedesk.services import reception
from servicedesk.services.tickets import default_branch

from .test_reception import desk, text  # noqa: F401 - fixtures and helpers shared


def test_a_pickup_number_at_the_counter_goes_to_the_delivery_desk_from_the_worklist(
        desk, users):
    """A customer called with a pickup number (P-) has come for a device: the worklist's
    button beside them opens the delivery desk on their phone, not an intake that would take
    their device in again; a repair number's button is the intake."""
    pickup = reception.issue_number(default_branch(), "pickup", phone="09121234567")
    reception.call(pickup.id, "2", users["reception"])
    repair = reception.issue_number(default_branch(), "repair")
    reception.call(repair.id, "3", users["reception"])
    page = text(desk.get("/desk"))
    row = page.split(f'data-label="{pickup.label}"', 1)[1].split("</li>", 1)[0]
    assert "data-to-delivery" in row and "q=%2B989121234567" in row
    assert "/desk/intake" not in row
    row = page.split(f'data-label="{repair.label}"', 1)[1].split("</li>", 1)[0]
    assert f"/desk/intake?visit_id={repair.id}" in row and "data-to-delivery" not in row


def test_a_mistyped_mobile_is_said_as_soon_as_it_is_typed(desk, make_ticket):
    """A digit missing, one too many, or the shop's landline: the intake says so under the
    number when the cursor leaves it (in the desk's Persian), not only after the device, the
    problem and the accessories were typed and the whole form came back."""
    make_ticket("delivered")  # Narges Rezaei, 0912 123 4567
    short = text(desk.get("/desk/customer?customer_phone=۰۹۱۲۱۲۳۴۵۶"))
    assert "data-phone-problem" in short and "این شماره تلفن معتبر نیست" in short
    landline = text(desk.get("/desk/customer?customer_phone=02188776655"))
    assert "data-phone-problem" in landline and "پیامک" in landline  # cannot receive SMS
    assert "data-phone-problem" not in text(desk.get("/desk/customer?customer_phone="))
    known = text(desk.get("/desk/customer?customer_phone=0912 123 45 67"))
    assert "data-customer" in known and "data-phone-problem" not in known


def test_a_relative_back_without_the_receipt_is_found_by_their_own_name(desk, make_ticket,
                                                                        users):
    """A brother left his sister's phone under her number (the intake filed it under her name,
    brought by him) and comes back for it without the receipt: the delivery desk finds it by
    his name, however its ی and ک are typed."""
    from servicedesk.lifecycle import Actor
    from servicedesk.services import tickets as svc
    from servicedesk.extensions import db
    from .conftest import INTAKE, SAMPLE_DATA, actor_for
    hers = make_ticket("delivered")  # Narges Rezaei, 0912 123 4567
    brought = reception.admit({**INTAKE, "customer": {"name": "محمد حسینی",
                                                      "phone": "09121234567"},
                               "device": {"kind": "phone", "brand": "Xiaomi",
                                          "model": "Redmi Note 10"}},
                              Actor.staff(users["reception"]), known_name="brought")
    for event in ("send_to_repair", "quote", "approve", "finish"):
        svc.fire_event(brought.id, event, actor_for(event, users), dict(SAMPLE_DATA[event]))
    db.session.expire_all()
    for q in ("حسینی", "محمد حسيني", "  محمد "):
        assert [t.id for t in reception.find_tickets(q)] == [brought.id], q
    assert {t.id for t in reception.find_tickets("Narges")} == {hers.id, brought.id}
    page = text(desk.get("/desk/delivery?q=حسینی"))
    assert f'data-ticket="{brought.id}"' in page and "data-brought-by" in page


def test_items_of_a_line_are_parted_by_a_persian_comma_not_a_dot_read_as_zero(
        desk, make_ticket):
    """"۰۲:۲۸ · ۱ دقیقه در انتظار": the middle dot is drawn like the Persian zero, and the
    desk read ten minutes of waiting (or "۰ ۰ تومان" due). Persian pages part a line's items
    with the Persian comma; English ones keep the middle dot."""
    reception.issue_number(default_branch(), "repair")
    make_ticket("ready")
    for url in ("/queue/board", "/desk", "/desk/delivery"):
        page = text(desk.get(url))
        assert "·" not in page.split("<body", 1)[-1], url
    board = text(desk.get("/queue/board"))
    assert re.search(r"[۰-۹]{2}:[۰-۹]{2}، [۰-۹]+ دقیقه در انتظار", board)
    assert re.search(r"\d\d:\d\d · waiting \d+ min", text(desk.get("/queue/board?lang=en")))


def test_the_warranty_date_is_written_as_the_receipts_own_date(desk, make_ticket):
    """"until 2027-03-07" under "7 Dec 2026, 02:36": the customer's warranty date is written
    like the receipt's own date, in words (7 Mar 2027; ۱۶ اسفند ۱۴۰۵), in either language."""
    from datetime import timedelta
    from servicedesk.i18n import format_datetime
    ticket = make_ticket("delivered")
    until = ticket.events[-1].at + timedelta(days=90)
    english = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=en"))
    assert f"until {format_datetime(until, 'long_date', 'en')}." in english
    assert not re.search(r"until \d{4}-\d\d-\d\d", english)
    persian = text(desk.get(f"/tickets/{ticket.id}/delivery-receipt?lang=fa"))
    assert f"تا {format_datetime(until, 'long_date', 'fa')}،" in persian


def test_the_delivery_desk_sees_that_the_customer_agreed_to_the_higher_bill(desk, make_ticket,
                                                                             users):
    """The bill came above the estimate and the technician recorded that the customer agreed
    by phone: the delivery desk reads it beside the difference, not only a warning in red
    that would have it take the difference up with the customer again."""
    from servicedesk.services import tickets as svc
    from .conftest import LINES, actor_for
    extra = [*LINES, {"kind": "part", "description": "Frame", "qty": 1, "unit_price": 1_500_000}]
    agreed, silent = make_ticket("repair"), make_ticket("repair")
    svc.fire_event(agreed.id, "finish", actor_for("finish", users),
                   {"lines": extra, "above_estimate_ok": True, "above_estimate_channel": "phone"})
    svc.fire_event(silent.id, "finish", actor_for("finish", users), {"lines": extra})
    page = text(desk.get(f"/desk/delivery?q={agreed.number}"))
    note = page.split("data-approved-estimate", 1)[1].split("</p>", 1)[0]
    assert 'data-above-agreed="phone"' in note and "(تلفنی)" in note
    assert "text-danger" not in page.split("data-approved-estimate", 1)[0].rsplit("<p", 1)[1]
    page = text(desk.get(f"/desk/delivery?q={silent.number}"))
    assert "data-above-agreed" not in page
    assert "text-danger" in page.split("data-approved-estimate", 1)[0].rsplit("<p", 1)[1]
    english = text(desk.get(f"/desk/delivery?q={agreed.number}&lang=en"))
    assert "The customer agreed to the higher amount by phone." in english


def test_a_search_narrowed_to_a_branch_finds_its_tickets_under_the_others_newer_ones(
        app, make_ticket, users, monkeypatch):
    """The manager's ticket list, a search and a branch (or a technician): the search took
    the newest matches of every branch up to the list's limit and only then kept the
    branch's, so the second branch's Samsung under the first's newer Samsungs read "No
    tickets."."""
    from servicedesk.extensions import db
    from servicedesk.models import Branch, Ticket
    from servicedesk.services import tickets as ticket_service

    from .test_reception import Staff
    north = Branch(name="North", code="N", active=True)
    db.session.add(north)
    db.session.commit()
    older = make_ticket("repair")  # technician1's
    db.session.get(Ticket, older.id).branch_id = north.id
    db.session.commit()
    newer = [make_ticket("intake") for _ in range(3)]  # the first branch's, nobody's
    monkeypatch.setattr(ticket_service, "LIST_LIMIT", 2)
    manager = Staff(app, "manager1")
    device = older.device.brand
    page = text(manager.get(f"/tickets/?q={device}&branch={north.id}&lang=en"))
    assert f'data-ticket="{older.id}"' in page
    assert not any(f'data-ticket="{t.id}"' in page for t in newer)
    page = text(manager.get(f"/tickets/?q={device}&technician={users['technician'].id}"
                            "&lang=en"))
    assert f'data-ticket="{older.id}"' in page
