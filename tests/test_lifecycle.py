"""The lifecycle table, exercised from every state with every event."""
import pytest
from sqlalchemy import func, select

from servicedesk import lifecycle
from servicedesk.errors import Forbidden, TransitionNotAllowed, ValidationError
from servicedesk.extensions import db
from servicedesk.lifecycle import EVENTS, STAFF_ROLES, TICKET_STATES, Actor
from servicedesk.models import CostLine, Notification, Ticket, TicketEvent
from servicedesk.services import tickets as svc

from .conftest import PATH_TO, PROMISED_DATE, SAMPLE_DATA, actor_for

FIRABLE = [e for e in EVENTS if e != "admit"]


def counts(ticket_id):
    return (db.session.scalar(select(func.count()).select_from(TicketEvent)
                              .where(TicketEvent.ticket_id == ticket_id)),
            db.session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.ticket_id == ticket_id)))


def test_every_state_is_reachable_and_the_table_covers_them():
    targets = {r.dest for r in EVENTS.values()}
    assert targets == set(TICKET_STATES)
    assert set(PATH_TO) == set(TICKET_STATES)


@pytest.mark.parametrize("state", TICKET_STATES)
@pytest.mark.parametrize("event", FIRABLE)
def test_every_event_from_every_state(make_ticket, users, state, event):
    ticket = make_ticket(state)
    events_before, sms_before = counts(ticket.id)
    rule = EVENTS[event]
    actor = actor_for(event, users)
    data = dict(SAMPLE_DATA[event])
    if (event, state) == ("quote", "estimate"):  # a revision changes something
        data["lines"] = [{**data["lines"][0], "unit_price": 11_000_000}, *data["lines"][1:]]
    if state in rule.sources:
        svc.fire_event(ticket.id, event, actor, data)
        db.session.expire_all()
        ticket = db.session.get(Ticket, ticket.id)
        assert ticket.state == rule.dest
        events_after, sms_after = counts(ticket.id)
        assert events_after == events_before + 1
        row = ticket.events[-1]
        assert (row.event, row.from_state, row.to_state) == (event, state, rule.dest)
        assert row.actor_name == actor.name and row.at is not None
        # one SMS per event, except the system closing an unanswered survey
        expected_sms = 0 if (event == "close" and actor.kind == "system") else 1
        assert sms_after == sms_before + expected_sms
    else:
        with pytest.raises(TransitionNotAllowed) as info:
            svc.fire_event(ticket.id, event, actor, data)
        assert info.value.state == state
        assert info.value.allowed == lifecycle.allowed_events(state)
        assert state in info.value.message
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).state == state
        assert counts(ticket.id) == (events_before, sms_before)


@pytest.mark.parametrize("event", FIRABLE)
def test_roles_that_may_not_fire_an_event_are_refused(make_ticket, users, event):
    rule = EVENTS[event]
    state = rule.sources[0]
    refused = [r for r in STAFF_ROLES if r not in rule.roles]
    for role in refused:
        ticket = make_ticket(state)
        before = counts(ticket.id)
        with pytest.raises(Forbidden):
            svc.fire_event(ticket.id, event, Actor.staff(users[role]), dict(SAMPLE_DATA[event]))
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).state == state
        assert counts(ticket.id) == before


def test_reception_cannot_quote(make_ticket, users):
    ticket = make_ticket("diagnosis")
    with pytest.raises(Forbidden):
        svc.fire_event(ticket.id, "quote", Actor.staff(users["reception"]), SAMPLE_DATA["quote"])


def test_bad_event_data_writes_nothing(make_ticket, users):
    ticket = make_ticket("diagnosis")
    before = counts(ticket.id)
    bad = [{"lines": []}, {"lines": [{"kind": "gift", "description": "x", "qty": 1,
                                      "unit_price": 5}]},
           {"lines": [{"kind": "part", "description": "x", "qty": 0, "unit_price": 5}]},
           {"lines": [{"kind": "part", "description": "x", "qty": 1, "unit_price": -5}]},
           {"lines": LINES_OK(), "promised_date": "tomorrow"}, {"lines": "screen"}]
    for data in bad:
        with pytest.raises(ValidationError):
            svc.fire_event(ticket.id, "quote", Actor.staff(users["technician"]), data)
    db.session.expire_all()
    assert counts(ticket.id) == before
    assert db.session.scalar(select(func.count()).select_from(CostLine)) == 0


def LINES_OK():
    return [{"kind": "part", "description": "x", "qty": 1, "unit_price": 5}]


def test_quote_records_lines_total_and_promised_date(make_ticket, users):
    ticket = make_ticket("estimate")
    assert ticket.estimate_total == 14_000_000
    assert ticket.estimate_version == 1
    assert str(ticket.promised_date) == PROMISED_DATE
    quote = [e for e in ticket.events if e.event == "quote"][0]
    assert quote.data["total"] == 14_000_000 and len(quote.data["lines"]) == 2


def test_final_total_and_amount_due_come_from_the_final_lines(make_ticket, users):
    ticket = make_ticket("ready")
    assert ticket.final_total == 14_000_000
    declined = make_ticket("estimate")
    svc.fire_event(declined.id, "decline", Actor.staff(users["reception"]),
                   SAMPLE_DATA["decline"])
    assert db.session.get(Ticket, declined.id).final_total is None


def test_pre_approved_estimate_is_approved_by_the_system(app, make_ticket, users):
    from .conftest import INTAKE
    ticket = make_ticket("diagnosis", intake={**INTAKE, "pre_approved_amount": 15_000_000})
    svc.fire_event(ticket.id, "quote", Actor.staff(users["technician"]), SAMPLE_DATA["quote"])
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.state == "repair"
    approve = ticket.events[-1]
    assert approve.event == "approve" and approve.actor_kind == "system"
    assert approve.data["channel"] == "pre_approved"
    assert approve.data["pre_approved_amount"] == 15_000_000


def test_estimate_above_pre_approved_amount_waits_for_the_customer(make_ticket, users):
    from .conftest import INTAKE
    ticket = make_ticket("diagnosis", intake={**INTAKE, "pre_approved_amount": 5_000_000})
    svc.fire_event(ticket.id, "quote", Actor.staff(users["technician"]), SAMPLE_DATA["quote"])
    assert db.session.get(Ticket, ticket.id).state == "estimate"


def test_customer_approval_of_an_old_estimate_is_refused(make_ticket, users):
    ticket = make_ticket("estimate")
    with pytest.raises(ValidationError):
        svc.fire_event(ticket.id, "approve", Actor.customer("10.0.0.9"),
                       {"estimate_version": ticket.estimate_version + 1})
    svc.fire_event(ticket.id, "approve", Actor.customer("10.0.0.9"),
                   {"estimate_version": ticket.estimate_version})
    row = db.session.get(Ticket, ticket.id).events[-1]
    assert row.actor_kind == "customer" and row.data["channel"] == "link"
    assert row.data["ip"] == "10.0.0.9" and row.data["estimate_version"] == 1


def test_stale_version_from_a_screen_is_a_conflict(make_ticket, users):
    from servicedesk.errors import Conflict
    ticket = make_ticket("intake")
    old = ticket.version
    svc.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {},
                   expected_version=old)
    with pytest.raises(Conflict):
        svc.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                       SAMPLE_DATA["quote"], expected_version=old)


def test_system_close_sends_no_sms_and_customer_close_thanks(make_ticket, users):
    ticket = make_ticket("delivered")
    before = counts(ticket.id)
    svc.fire_event(ticket.id, "close", Actor.system(), {})
    assert counts(ticket.id) == (before[0] + 1, before[1])


def test_audit_chain_detects_an_edited_event(make_ticket):
    ticket = make_ticket("ready")
    assert lifecycle.verify_chain(ticket) is None
    row = ticket.events[2]
    db.session.execute(TicketEvent.__table__.update().where(TicketEvent.id == row.id)
                       .values(actor_name="someone else"))
    db.session.commit()
    db.session.expire_all()
    assert lifecycle.verify_chain(db.session.get(Ticket, ticket.id)) == row.seq


def test_nothing_but_the_lifecycle_writes_ticket_state():
    """A source scan: `.state =` on a ticket appears in lifecycle.py only (via the machine)."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "servicedesk"
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"ticket\.state\s*=[^=]|Ticket\.state\s*:\s*", text):
            if path.name not in ("lifecycle.py",) and "models" not in path.parts:
                offenders.append(f"{path.name}: {m.group(0)}")
    assert offenders == []
