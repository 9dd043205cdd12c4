"""The manager's morning list on the dashboard: the tickets that have stayed in their state
longer than the shop's time limit for it, longest-waiting first, with a link to each."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from servicedesk.extensions import db
from servicedesk.models import TicketEvent

from .test_admin import Browser


@pytest.fixture
def manager(app, users):
    browser = Browser(app)
    assert browser.login(users["manager"].username).status_code == 302
    return browser


def entered_hours_ago(ticket, hours: float):
    """Move every event of ``ticket`` ``hours`` into the past (as if it had waited that long)."""
    for event in db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)):
        event.at = event.at - timedelta(hours=hours)
    db.session.commit()


def late_rows(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'data-late-ticket="(\d+)"', page)]


def test_tickets_past_their_states_limit_are_listed_oldest_first(manager, make_ticket):
    fresh = make_ticket("intake")              # limit 2 h, just now
    late_intake = make_ticket("intake")        # 3 h: late
    later_diag = make_ticket("diagnosis")      # limit 24 h: 30 h, late and older
    ready_ok = make_ticket("ready")            # limit 168 h: 30 h, fine
    entered_hours_ago(late_intake, 3)
    entered_hours_ago(later_diag, 30)
    entered_hours_ago(ready_ok, 30)
    page = manager.get("/reports/?lang=en").get_data(as_text=True)
    assert late_rows(page) == [later_diag.id, late_intake.id]
    assert 'data-late-count="2"' in page
    assert f'href="/tickets/{later_diag.id}"' in page
    assert fresh.id not in late_rows(page) and ready_ok.id not in late_rows(page)


def test_no_late_ticket_says_so(manager, make_ticket):
    make_ticket("intake")
    page = manager.get("/reports/?lang=en").get_data(as_text=True)
    assert late_rows(page) == [] and "within its state's time limit" in page


def test_a_ticket_with_no_known_entry_into_its_state_comes_last_on_every_database(
        app, make_ticket):
    """The ticket list in one state puts the longest waiting first; a ticket whose trail says
    nothing of when it entered its state (bulk data) cannot be placed by its wait: it comes
    after the others on SQLite as on PostgreSQL (their default NULL orders differ)."""
    from servicedesk.services import tickets as svc

    unknown = make_ticket("intake")
    older = make_ticket("intake")
    newer = make_ticket("intake")
    entered_hours_ago(older, 5)
    entered_hours_ago(newer, 1)
    for event in db.session.scalars(select(TicketEvent)
                                    .where(TicketEvent.ticket_id == unknown.id)):
        event.to_state = "diagnosis"  # a bulk load whose trail never says it entered "intake"
    db.session.commit()
    rows = svc.list_tickets(state="intake")
    assert [t.id for t, _since in rows] == [older.id, newer.id, unknown.id]
    assert rows[-1][1] is None
