"""A service type the shop adds on the admin page is offered at intake, accepted by the intake
check, named in the shop's words, and filterable in the reports; a retired one is no longer
offered but its old tickets stay reportable."""
from servicedesk.lifecycle import Actor
from servicedesk.services import admin as admin_service
from servicedesk.services import tickets as ticket_service

from .conftest import INTAKE
from .test_admin import Browser


def add_type(app, users, **over):
    with app.test_request_context():
        return admin_service.save_service_type(users["admin"], None, **{
            "code": "battery", "name_fa": "تعویض باتری", "name_en": "Battery swap", **over})


def test_a_new_service_type_reaches_the_intake_and_the_reports(app, users):
    add_type(app, users)
    browser = Browser(app)
    browser.login(users["reception"].username)
    form = browser.get("/desk/intake?lang=en").get_data(as_text=True)
    assert 'value="battery"' in form and "Battery swap" in form
    ticket = ticket_service.admit({**INTAKE, "service_type": "battery"},
                                  Actor.staff(users["reception"]))
    assert ticket.service_type == "battery"

    manager = Browser(app)
    manager.login(users["manager"].username)
    page = manager.get("/reports/turnaround?service_type=battery&lang=en")
    assert page.status_code == 200 and "Battery swap" in page.get_data(as_text=True)


def test_a_retired_service_type_is_refused_at_intake(app, users):
    import pytest

    from servicedesk.errors import ValidationError
    add_type(app, users)
    with app.test_request_context():
        admin_service.save_service_type(users["admin"], "battery", code=None,
                                        name_fa="تعویض باتری", name_en="Battery swap",
                                        active=False)
    with pytest.raises(ValidationError) as refused:
        ticket_service.admit({**INTAKE, "service_type": "battery"},
                             Actor.staff(users["reception"]))
    assert "service_type" in refused.value.fields
