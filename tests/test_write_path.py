"""The ticket write path (servicedesk.persist): rows written as statements, not by a flush, still
commit together or not at all, and what the API answers is what a later read finds."""
import pytest
from sqlalchemy import text

from servicedesk.extensions import db
from servicedesk.models import Notification
from servicedesk.services import tickets as ticket_service

from .test_api import admit, fire, intake, row_counts


def stage_rows(ticket_id: int) -> int:
    return db.session.execute(text("SELECT count(*) FROM ticket_stages WHERE ticket_id = :t"),
                              {"t": ticket_id}).scalar_one()


def test_an_event_whose_sms_cannot_be_written_changes_nothing(app, api):
    ticket = admit(api)
    # Another row already holds the key of the SMS the next event writes: its INSERT fails
    # after the ticket's UPDATE, the event and the stage row went out.
    db.session.add(Notification(
        ticket_id=ticket["id"], event="send_to_repair", to="+989120000000", language="fa",
        body="x", encoding="GSM-7", segments=1, dedupe_key=f"ticket:{ticket['id']}:seq:2:sms"))
    db.session.commit()
    before = row_counts()

    resp = fire(api, "reception", ticket["id"], "send_to_repair")

    assert resp.status_code == 409, resp.get_json()
    assert row_counts() == before
    assert stage_rows(ticket["id"]) == 0
    now = api["reception"].get(f"/api/v1/tickets/{ticket['id']}").get_json()
    assert (now["state"], now["version"], len(now["history"])) == \
        ("intake", ticket["version"], 1)
    # the desk tries again once the stray row is gone: it goes through
    db.session.execute(text("DELETE FROM notifications WHERE body = 'x'"))
    db.session.commit()
    assert fire(api, "reception", ticket["id"], "send_to_repair").status_code == 200


def test_an_intake_whose_ticket_cannot_be_written_leaves_no_customer_or_device(
        app, api, monkeypatch):
    first = admit(api)
    token = db.session.execute(text("SELECT public_token FROM tickets WHERE id = :t"),
                               {"t": first["id"]}).scalar_one()
    before = row_counts()
    # The customer and the device are written first; the ticket's INSERT then fails.
    monkeypatch.setattr(ticket_service, "new_public_token", lambda: token)

    resp = api["reception"].post("/api/v1/tickets", json=intake(customer={
        "name": "Someone New", "phone": "+989351112233"}))

    assert resp.status_code == 409, resp.get_json()
    assert row_counts() == before


def test_the_answer_of_each_action_is_what_a_later_read_finds(app, api):
    ticket = admit(api, intake(pre_approved_amount=3_000_000))
    answers = [ticket]
    for role, event, data in (
            ("reception", "send_to_repair", {"technician": "technician1"}),
            ("technician", "quote", {"lines": [
                {"kind": "part", "description": "Screen", "qty": 1, "unit_price": 2_500_000},
                {"kind": "labour", "description": "Fitting", "qty": 1,
                 "unit_price": 400_000}]}),
            ("technician", "finish", {"lines": [
                {"kind": "part", "description": "Screen", "qty": 1,
                 "unit_price": 2_500_000}]}),
            ("reception", "deliver", {"amount_paid": 2_500_000})):
        resp = fire(api, role, ticket["id"], event, **data)
        assert resp.status_code == 200, resp.get_json()
        answers.append(resp.get_json())
        db.session.expire_all()
        read = api[role].get(f"/api/v1/tickets/{ticket['id']}").get_json()
        assert read == answers[-1]
    last = answers[-1]
    # the quote within the pre-approved amount was approved by the system in the same action
    assert [h["event"] for h in last["history"]] == [
        "admit", "send_to_repair", "quote", "approve", "finish", "deliver"]
    assert last["technician"] == "technician1"
    assert (last["estimate_total"], last["final_total"], last["amount_paid"]) == \
        (2_900_000, 2_500_000, 2_500_000)
    assert [a["version"] for a in answers] == [1, 2, 4, 5, 6]
    # one SMS an event, but none for the quote approved at once: its approval's SMS says both
    assert [n["event"] for n in last["notifications"]] == [
        "admit", "send_to_repair", "approve", "finish", "deliver"]


def test_a_rolled_back_action_leaves_no_stale_objects_in_the_session(app, users, monkeypatch):
    """The rows of an action that rolls back are forgotten by the session too: the next action
    in the same session (an import goes on after a bad line) may get the same ids (SQLite takes
    the largest plus one) and must not meet the old objects."""
    from servicedesk import lifecycle
    from servicedesk.lifecycle import Actor

    from .conftest import INTAKE
    reception = Actor.staff(users["reception"])
    held = []  # the objects of the failed action stay referenced, as a traceback would keep them
    original = lifecycle.fire

    def fire_then_fail(ticket, *args, **kwargs):
        original(ticket, *args, **kwargs)
        held.extend([ticket, ticket.customer, ticket.device, *ticket.events,
                     *ticket.notifications])
        raise RuntimeError("the action fails after its rows are written")

    monkeypatch.setattr(lifecycle, "fire", fire_then_fail)
    with pytest.raises(RuntimeError):
        ticket_service.admit({**INTAKE, "customer": {"name": "Rolled Back",
                                                   "phone": "09127654321"}}, reception)
    monkeypatch.setattr(lifecycle, "fire", original)
    assert row_counts()["Ticket"] == 0

    again = ticket_service.admit({**INTAKE, "customer": {"name": "Second Try",
                                                       "phone": "09127654321"}}, reception)
    db.session.expire_all()
    assert again.customer.name == "Second Try"
    assert again.number.endswith("-00001")  # the rolled-back intake took no number
    assert [e.event for e in again.events] == ["admit"]
    assert len(again.notifications) == 1
    assert row_counts()["Ticket"] == 1


def test_a_row_the_database_would_complete_is_refused_by_the_write_path(app):
    """A column with onupdate or a server default is filled by the flush, not by persist: using
    persist there would silently skip it, so it says so instead."""
    from servicedesk import persist
    from servicedesk.models import Setting
    with pytest.raises(TypeError, match="Setting.updated_at"):
        persist.insert(Setting(key="shop_name", value="x"))
    assert db.session.get(Setting, "shop_name") is None
