"""Delivered tickets whose customer never answered the survey close by themselves: from cron with
`flask close-unanswered`, and every hour in the worker (a real `flask worker` process)."""
from datetime import timedelta

import pytest
from sqlalchemy import update

from servicedesk.extensions import db
from servicedesk.models import Ticket, TicketEvent, utcnow

from .test_sms import redis_app_config, run_burst, worker_environment


def delivered_days_ago(make_ticket, days: float) -> Ticket:
    """A delivered ticket whose hand-back happened ``days`` ago."""
    ticket = make_ticket("delivered")
    db.session.execute(update(TicketEvent)
                       .where(TicketEvent.ticket_id == ticket.id, TicketEvent.event == "deliver")
                       .values(at=utcnow() - timedelta(days=days)))
    db.session.commit()
    return ticket


def state_of(ticket) -> str:
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id).state


def test_the_command_closes_what_was_delivered_longer_ago_than_the_shop_setting(app, make_ticket):
    old = delivered_days_ago(make_ticket, 8)
    recent = delivered_days_ago(make_ticket, 3)
    result = app.test_cli_runner().invoke(args=["close-unanswered"])
    assert result.exit_code == 0, result.output
    assert "۱ پذیرش که بیش از ۷ روز پیش تحویل شده" in result.output
    assert (state_of(old), state_of(recent)) == ("closed", "delivered")
    close = db.session.get(Ticket, old.id).events[-1]
    assert (close.event, close.actor_kind) == ("close", "system")
    assert "۷" in close.data["reason"] and "7" not in close.data["reason"]  # the shop's digits


def test_the_command_takes_the_number_of_days(app, make_ticket):
    recent = delivered_days_ago(make_ticket, 3)
    runner = app.test_cli_runner()
    assert "۰ پذیرش" in runner.invoke(args=["close-unanswered", "--days", "4"]).output
    assert state_of(recent) == "delivered"
    assert "۱ پذیرش که" in runner.invoke(args=["close-unanswered", "--days", "2"]).output
    assert state_of(recent) == "closed"


def test_the_command_refuses_a_nonsense_number_of_days(app, make_ticket):
    recent = delivered_days_ago(make_ticket, 3)
    result = app.test_cli_runner().invoke(args=["close-unanswered", "--days", "0"])
    assert result.exit_code != 0 and "--days" in result.output
    assert state_of(recent) == "delivered"


def test_the_command_follows_the_days_the_admin_set(app, make_ticket, users):
    from servicedesk.services import admin as admin_service
    recent = delivered_days_ago(make_ticket, 3)
    with app.test_request_context():
        admin_service.update_settings(users["admin"], {
            **admin_service.current_settings(), "auto_close_days": "2"})
    result = app.test_cli_runner().invoke(args=["close-unanswered"])
    assert "۱ پذیرش که بیش از ۲ روز پیش تحویل شده" in result.output
    assert state_of(recent) == "closed"


class TestWorkerClock:
    @pytest.fixture
    def app_config(self, fake_twilio):
        return redis_app_config(fake_twilio)

    def test_the_worker_closes_unanswered_delivered_tickets(self, app, app_config, database_url,
                                                            make_ticket, twilio):
        old = delivered_days_ago(make_ticket, 10)
        recent = delivered_days_ago(make_ticket, 1)
        out = run_burst(worker_environment(app, app_config, database_url))
        assert "auto-close closed 1 delivered ticket(s)" in out
        assert (state_of(old), state_of(recent)) == ("closed", "delivered")
