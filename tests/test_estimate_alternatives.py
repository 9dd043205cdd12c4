"""An estimate with alternatives: the technician offers an original display or a copy one, the
customer chooses (on their page, or by phone through the desk), and the chosen one's lines
with the common ones become the estimate approved: what the bill starts from, what reports and
the amount due read. An estimate without alternatives works as before."""
import pytest
from flask_babel import force_locale

from servicedesk import lifecycle
from servicedesk.errors import ValidationError
from servicedesk.lifecycle import Actor
from servicedesk.models import Notification
from servicedesk.services import tickets as ticket_service

from .conftest import INTAKE, LINES
from .test_public import Customer, html, reload, track
from .test_workbench import Staff

COMMON = [{"kind": "labour", "description": "Diagnosis and fitting", "qty": 1,
           "unit_price": 5_000_000}]
ORIGINAL = {"name": "Original display", "lines": [
    {"kind": "part", "description": "Display (original)", "qty": 1, "unit_price": 45_000_000}]}
COPY = {"name": "Copy display", "lines": [
    {"kind": "part", "description": "Display (high copy)", "qty": 1, "unit_price": 28_000_000}]}
CHOICES = {"lines": COMMON, "alternatives": [ORIGINAL, COPY]}


@pytest.fixture
def customer(app):
    return Customer(app)


@pytest.fixture
def quoted(make_ticket, users):
    """A ticket whose estimate offers the original and the copy display."""
    ticket = make_ticket("diagnosis")
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              dict(CHOICES))
    return reload(ticket)


def approve(ticket, users, **data):
    with force_locale("en"):
        return ticket_service.fire_event(ticket.id, "approve", Actor.staff(users["reception"]),
                                     {"channel": "phone", **data})


def test_an_estimate_with_alternatives_waits_for_the_customers_choice(quoted):
    assert quoted.state == "estimate"
    alternatives = lifecycle.estimate_alternatives(quoted)
    assert [(a["id"], a["name"], a["total"]) for a in alternatives] == [
        (1, "Original display", 50_000_000), (2, "Copy display", 33_000_000)]
    # until the customer chooses, the estimate's own lines are the common ones
    assert [l.description for l in quoted.estimate_lines()] == ["Diagnosis and fitting"]


def test_the_chosen_alternative_and_the_common_lines_are_the_estimate_approved(quoted, users):
    approve(quoted, users, alternative=2)
    ticket = reload(quoted)
    assert ticket.state == "repair"
    assert [l.description for l in ticket.estimate_lines()] == [
        "Diagnosis and fitting", "Display (high copy)"]
    assert ticket.estimate_total == 33_000_000
    event = ticket.events[-1]
    assert event.data["alternative"] == 2 and event.data["alternative_name"] == "Copy display"
    assert event.data["estimate_total"] == 33_000_000
    assert lifecycle.chosen_alternative(ticket) == {"id": 2, "name": "Copy display"}
    assert lifecycle.verify_records(ticket) == []


def test_an_approval_without_a_choice_is_refused_and_changes_nothing(quoted, users):
    with pytest.raises(ValidationError) as refused:
        approve(quoted, users)
    assert "alternative" in refused.value.extra["fields"]
    assert "Copy display" in refused.value.extra["fields"]["alternative"]
    ticket = reload(quoted)
    assert ticket.state == "estimate" and ticket.events[-1].event == "quote"


def test_a_choice_the_estimate_does_not_offer_is_refused(quoted, users):
    with pytest.raises(ValidationError) as refused:
        approve(quoted, users, alternative=3)
    assert "no alternative" in refused.value.extra["fields"]["alternative"]
    assert reload(quoted).state == "estimate"


def test_a_choice_on_an_estimate_without_alternatives_is_refused(make_ticket, users):
    ticket = make_ticket("estimate")
    with pytest.raises(ValidationError) as refused:
        approve(ticket, users, alternative=1)
    assert "no alternatives" in refused.value.extra["fields"]["alternative"]
    assert reload(ticket).state == "estimate"


def test_an_estimate_without_alternatives_is_approved_as_before(make_ticket, users):
    ticket = make_ticket("estimate")
    approve(ticket, users)
    ticket = reload(ticket)
    assert ticket.state == "repair" and ticket.estimate_total == 14_000_000
    assert "alternative" not in ticket.events[-1].data
    assert lifecycle.verify_records(ticket) == []


@pytest.mark.parametrize("alternatives, problem", [
    ([ORIGINAL], "two alternatives or more"),
    ([ORIGINAL, {**COPY, "name": "original DISPLAY"}], "has this name already"),
    ([ORIGINAL, {"name": "Copy", "lines": []}], "Alternative 2"),
    ([ORIGINAL, {"lines": COPY["lines"]}], "Alternative 2"),
    ([ORIGINAL, COPY, COPY | {"name": "C"}, COPY | {"name": "D"}, COPY | {"name": "E"}],
     "At most"),
])
def test_alternatives_that_cannot_be_offered_are_refused(make_ticket, users, alternatives,
                                                         problem):
    ticket = make_ticket("diagnosis")
    with pytest.raises(ValidationError) as refused, force_locale("en"):
        ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                                  {"lines": COMMON, "alternatives": alternatives})
    assert problem in refused.value.extra["fields"]["alternatives"]
    assert reload(ticket).state == "diagnosis"


def test_an_estimate_needs_lines_when_it_offers_no_alternatives(make_ticket, users):
    ticket = make_ticket("diagnosis")
    with pytest.raises(ValidationError) as refused:
        ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                                  {"lines": []})
    assert "lines" in refused.value.extra["fields"]


def test_alternatives_need_no_common_lines(make_ticket, users):
    ticket = make_ticket("diagnosis")
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              {"alternatives": [ORIGINAL, COPY]})
    ticket = reload(ticket)
    approve(ticket, users, alternative=1)
    ticket = reload(ticket)
    assert ticket.estimate_total == 45_000_000
    assert [l.description for l in ticket.estimate_lines()] == ["Display (original)"]


def test_a_pre_approved_amount_does_not_choose_for_the_customer(app, users):
    ticket = ticket_service.admit({**INTAKE, "pre_approved_amount": 90_000_000},
                                  Actor.staff(users["reception"]))
    ticket_service.fire_event(ticket.id, "send_to_repair", Actor.staff(users["reception"]), {})
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              dict(CHOICES))
    assert reload(ticket).state == "estimate"


def test_the_bill_starts_from_the_chosen_alternative(quoted, users):
    approve(quoted, users, alternative=1)
    ticket_service.fire_event(quoted.id, "finish", Actor.staff(users["technician"]),
                              {"lines": [{"kind": "part", "description": "Display (original)",
                                          "qty": 1, "unit_price": 45_000_000}] + COMMON,
                               "above_estimate_ok": False})
    ticket = reload(quoted)
    assert ticket.state == "ready" and ticket.amount_due == 50_000_000


# --- the JSON API -----------------------------------------------------------------------------

def test_the_api_quotes_alternatives_and_approves_the_one_chosen(api, make_ticket):
    ticket = make_ticket("diagnosis")
    url = f"/api/v1/tickets/{ticket.id}"
    resp = api["technician"].post(f"{url}/events", {"event": "quote", **CHOICES})
    assert resp.status_code == 200, resp.get_json()
    body = api["reception"].get(url).get_json()
    assert [(a["id"], a["name"], a["total"]) for a in body["estimate_alternatives"]] == [
        (1, "Original display", 50_000_000), (2, "Copy display", 33_000_000)]
    assert body["chosen_alternative"] is None

    refused = api["reception"].post(f"{url}/events", {"event": "approve", "channel": "phone"})
    assert refused.status_code == 422 and "alternative" in refused.get_json()["fields"]
    refused = api["reception"].post(f"{url}/events", {"event": "approve", "channel": "phone",
                                                      "alternative": 7})
    assert refused.status_code == 422 and "alternative" in refused.get_json()["fields"]
    assert api["reception"].get(url).get_json()["state"] == "estimate"

    resp = api["reception"].post(f"{url}/events", {"event": "approve", "channel": "phone",
                                                   "alternative": 1})
    assert resp.status_code == 200, resp.get_json()
    body = api["reception"].get(url).get_json()
    assert body["state"] == "repair" and body["estimate_total"] == 50_000_000
    assert body["chosen_alternative"] == {"id": 1, "name": "Original display"}
    assert [l["description"] for l in body["estimate_lines"]] == [
        "Diagnosis and fitting", "Display (original)"]


def test_the_api_refuses_an_unknown_field_inside_an_alternative(api, make_ticket):
    ticket = make_ticket("diagnosis")
    resp = api["technician"].post(f"/api/v1/tickets/{ticket.id}/events", {
        "event": "quote", "lines": COMMON,
        "alternatives": [ORIGINAL, {**COPY, "price": 1}]})
    assert resp.status_code == 400
    assert "alternatives.2.price" in resp.get_json()["fields"]


def test_the_api_names_the_bad_line_of_an_alternative(api, make_ticket):
    ticket = make_ticket("diagnosis")
    bad = {"name": "Copy", "lines": [{"kind": "part", "description": "Display", "qty": 0,
                                      "unit_price": 1}]}
    resp = api["technician"].post(f"/api/v1/tickets/{ticket.id}/events", {
        "event": "quote", "lines": COMMON, "alternatives": [ORIGINAL, bad]})
    assert resp.status_code == 422
    assert resp.get_json()["at"]["alternatives"] == {"alternative": 2, "line": 1,
                                                     "field": "qty"}


def test_the_openapi_document_names_alternatives(app):
    from servicedesk.web.openapi import openapi_document
    doc = openapi_document()
    events = {e["title"]: e for e in doc["components"]["schemas"]["Event"]["oneOf"]}
    assert "alternatives" in events["quote"]["properties"]
    assert "alternative" in events["approve"]["properties"]
    assert "alternative" not in events["approve"]["required"]
    ticket = doc["components"]["schemas"]["Ticket"]
    assert {"estimate_alternatives", "chosen_alternative"} <= set(ticket["required"])


# --- the SMS ----------------------------------------------------------------------------------

def quote_sms(ticket):
    from servicedesk.extensions import db
    from sqlalchemy import select
    return db.session.scalars(select(Notification.body).where(
        Notification.ticket_id == ticket.id, Notification.event == "quote")).all()


def test_the_estimate_sms_names_each_alternative_and_its_total(quoted):
    [body] = quote_sms(quoted)
    assert "Original display ۵٬۰۰۰٬۰۰۰ تومان" in body
    assert "Copy display ۳٬۳۰۰٬۰۰۰ تومان" in body
    assert f"/t/{quoted.public_token}" in body


def test_the_estimate_reminder_names_the_alternatives_too(quoted):
    from servicedesk.notifications import templates
    values = templates.context(quoted, {}, "en", {"estimate_total"})
    assert values["estimate_total"] == (
        "Original display 5,000,000 toman / Copy display 3,300,000 toman")


# --- the ticket page --------------------------------------------------------------------------

def _form(page: str, event: str) -> str:
    """The event's form; the estimate's with its alternatives (beside it, their fields in it)."""
    start = page.index(f'id="event-{event}"')
    end = page.index("</form>", start)
    if event == "quote":
        end = page.index("</details>", page.index("data-alternatives", end))
    return page[start:end]


def test_the_technician_offers_alternatives_with_the_estimate_form(app, users, make_ticket):
    """Without JavaScript: the form's blank alternatives are filled and sent as they are."""
    ticket = make_ticket("diagnosis")
    tech = Staff(app, users["technician"].username)
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    form = _form(page, "quote")
    assert 'name="alt1_name" form="event-quote"' in form
    assert 'name="alt2_line_description" form="event-quote"' in form
    resp = tech.post(f"/tickets/{ticket.id}/events?lang=en", data={
        "event": "quote", "version": str(ticket.version), "money_unit": "toman",
        "line_kind": ["labour", "part"], "line_description": ["Fitting", ""],
        "line_qty": ["1", ""], "line_unit_price": ["500000", ""],
        "alt1_name": "Original display", "alt1_line_kind": ["part", "part"],
        "alt1_line_description": ["Display (original)", ""], "alt1_line_qty": ["", ""],
        "alt1_line_unit_price": ["4500000", ""],
        "alt2_name": "Copy display", "alt2_line_kind": ["part", "part"],
        "alt2_line_description": ["Display (copy)", ""], "alt2_line_qty": ["1", ""],
        "alt2_line_unit_price": ["2800000", ""],
        "alt3_name": "", "alt3_line_kind": ["part", "part"],
        "alt3_line_description": ["", ""], "alt3_line_qty": ["", ""],
        "alt3_line_unit_price": ["", ""]})
    assert resp.status_code == 302, html(resp)
    ticket = reload(ticket)
    assert ticket.state == "estimate"
    assert [(a["name"], a["total"]) for a in lifecycle.estimate_alternatives(ticket)] == [
        ("Original display", 50_000_000), ("Copy display", 33_000_000)]
    page = html(tech.get(f"/tickets/{ticket.id}?lang=en"))
    assert "Alternative 1: Original display" in page and "Alternative 2: Copy display" in page
    # the revision form starts from the alternatives offered
    assert 'value="Copy display"' in _form(page, "quote")


def test_one_alternative_alone_comes_back_with_what_was_typed(app, users, make_ticket):
    ticket = make_ticket("diagnosis")
    tech = Staff(app, users["technician"].username)
    tech.get(f"/tickets/{ticket.id}?lang=en")
    resp = tech.post(f"/tickets/{ticket.id}/events?lang=en", data={
        "event": "quote", "version": str(ticket.version), "money_unit": "toman",
        "line_kind": ["labour"], "line_description": ["Fitting"], "line_qty": ["1"],
        "line_unit_price": ["500000"],
        "alt1_name": "Original display", "alt1_line_kind": ["part"],
        "alt1_line_description": ["Display (original)"], "alt1_line_qty": ["1"],
        "alt1_line_unit_price": ["4500000"]})
    assert resp.status_code == 422
    form = _form(html(resp), "quote")
    assert 'data-error="alternatives"' in form and "two alternatives or more" in form
    assert 'value="Original display"' in form and 'value="Display (original)"' in form
    assert reload(ticket).state == "diagnosis"


def test_the_desk_records_which_alternative_the_customer_chose_by_phone(app, users, quoted):
    desk = Staff(app, users["reception"].username)
    page = html(desk.get(f"/tickets/{quoted.id}?lang=en"))
    form = _form(page, "approve")
    assert 'name="alternative" id="approve-alternative-1" value="1"' in form
    assert "Copy display" in form
    resp = desk.post(f"/tickets/{quoted.id}/events?lang=en", data={
        "event": "approve", "version": str(quoted.version), "channel": "phone"})
    assert resp.status_code == 422
    assert 'data-error="alternative"' in _form(html(resp), "approve")
    assert reload(quoted).state == "estimate"
    resp = desk.post(f"/tickets/{quoted.id}/events?lang=en", data={
        "event": "approve", "version": str(quoted.version), "channel": "phone",
        "alternative": "2"})
    assert resp.status_code == 302
    page = html(desk.get(f"/tickets/{quoted.id}?lang=en"))
    assert "The customer chose: Copy display" in page
    assert "Alternative chosen" in page  # the timeline says which


# --- the customer's page ----------------------------------------------------------------------

def test_the_customer_sees_the_alternatives_side_by_side_and_chooses_one(customer, quoted):
    page = html(customer.get(track(quoted) + "?lang=en"))
    assert "Included in every choice" in page and "Diagnosis and fitting" in page
    assert page.count('class="alternative"') == 2
    assert 'data-alternative-total="50000000"' in page
    assert 'data-alternative-total="33000000"' in page
    assert "Decline them all" in page
    resp = customer.post(f"{track(quoted)}/approve?lang=en",
                         {"estimate_version": "1", "alternative": "2"})
    page = html(customer.follow(resp))
    assert "you chose Copy display" in page
    assert "You chose Copy display and approved 3,300,000 toman" in page
    ticket = reload(quoted)
    assert ticket.state == "repair" and ticket.estimate_total == 33_000_000
    assert ticket.events[-1].data["channel"] == "link"


def test_the_customer_page_in_persian_shows_the_choices(customer, quoted):
    page = html(customer.get(track(quoted)))
    assert "۵٬۰۰۰٬۰۰۰ تومان" in page and "۳٬۳۰۰٬۰۰۰ تومان" in page
    assert 'name="alternative" value="1"' in page and 'name="alternative" value="2"' in page


def test_an_answer_without_a_choice_tells_the_customer_to_choose(customer, quoted):
    customer.get(track(quoted) + "?lang=en")
    resp = customer.post(f"{track(quoted)}/approve?lang=en", {"estimate_version": "1"})
    page = html(customer.follow(resp))
    assert "Choose one of the estimate&#39;s alternatives" in page
    assert reload(quoted).state == "estimate"


def test_the_customer_declines_every_alternative(customer, quoted):
    customer.get(track(quoted) + "?lang=en")
    resp = customer.post(f"{track(quoted)}/decline?lang=en", {"estimate_version": "1"})
    customer.follow(resp)
    assert reload(quoted).state == "ready"


def test_a_choice_from_a_page_of_an_earlier_estimate_is_refused(customer, quoted, users):
    customer.get(track(quoted) + "?lang=en")
    ticket_service.fire_event(quoted.id, "quote", Actor.staff(users["technician"]),
                              {"lines": COMMON, "alternatives": [ORIGINAL, COPY | {
                                  "name": "Copy display, 6 months' warranty"}]})
    resp = customer.post(f"{track(quoted)}/approve?lang=en",
                         {"estimate_version": "1", "alternative": "2"})
    page = html(customer.follow(resp))
    assert "The estimate has changed" in page
    assert reload(quoted).state == "estimate"


def test_the_desk_worklist_has_a_button_for_each_alternative(app, users, quoted):
    desk = Staff(app, users["reception"].username)
    page = html(desk.get("/desk?lang=en"))
    card = page.split(f'id="estimate-{quoted.id}"', 1)[1].split("</details>", 1)[0]
    assert 'value="approve:1"' in card and 'value="approve:2"' in card
    assert "Approved Copy display, 3,300,000 toman" in card
    desk.post(f"/desk/tickets/{quoted.id}/answer", {"decision": "approve:1", "channel": "phone",
                                                   "version": str(quoted.version)})
    ticket = reload(quoted)
    assert ticket.state == "repair" and ticket.estimate_total == 50_000_000


def test_the_costs_report_counts_the_estimate_approved_with_its_alternative(api, quoted, users):
    approve(quoted, users, alternative=1)
    report = api["manager"].get("/api/v1/reports/costs")
    assert report.status_code == 200, report.get_data(as_text=True)
    [row] = report.get_json()["rows"]
    assert row["approved"] == 1 and row["estimate_total"] == 50_000_000


# --- a revised estimate with alternatives -----------------------------------------------------

def requote(ticket, users, data=None):
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              dict(data or {"lines": COMMON, "alternatives": [
                                  ORIGINAL, COPY | {"name": "Copy display, 6 months"}]}))
    return reload(ticket)


def test_a_revised_estimate_with_alternatives_texts_that_it_replaces_the_earlier_one(
        quoted, users):
    ticket = requote(quoted, users)
    first, second = quote_sms(ticket)
    assert "تغییر کرد" not in first
    assert "تغییر کرد" in second and "Copy display, 6 months ۳٬۳۰۰٬۰۰۰ تومان" in second
    # in English too
    from servicedesk.notifications import templates
    english = templates.render("quote", "en", ticket, ticket.events[-1].data)
    assert "has changed and replaces the earlier one" in english
    assert "Copy display, 6 months 3,300,000 toman" in english


def test_an_estimate_revised_to_offer_alternatives_says_it_replaces_the_one_before(
        make_ticket, users):
    ticket = requote(make_ticket("estimate"), users, CHOICES)
    assert "تغییر کرد" in quote_sms(ticket)[-1] and "Original display" in quote_sms(ticket)[-1]


def test_a_revision_with_alternatives_is_off_when_the_shop_switched_the_estimate_sms_off(
        app, quoted, users):
    from servicedesk.services import admin as admin_service
    with app.test_request_context():
        admin_service.save_template(users["manager"], "quote", "fa", body="x", enabled=False)
    assert len(quote_sms(requote(quoted, users))) == 1
    # the shop's list says what it follows: the estimate with alternatives, off with it
    with app.test_request_context():
        rows = {(r["event"], r["language"]): r for r in admin_service.template_rows()}
    row = rows[("requote_choices", "fa")]
    assert (row["follows"], row["enabled"]) == ("quote_choices", False)
    assert rows[("requote_choices", "en")]["enabled"] is True


def test_the_customers_page_says_a_revised_estimate_replaces_the_earlier_one(customer, quoted,
                                                                             users):
    page = html(customer.get(track(quoted) + "?lang=en"))
    assert "data-revised-estimate" not in page
    ticket = requote(quoted, users)
    page = html(customer.get(track(ticket) + "?lang=en"))
    assert 'data-revised-estimate="2"' in page
    assert "This is a new estimate (version 2): it replaces the one sent to you on" in page
    assert "Copy display, 6 months" in page
    # its history names the revision as such, as it does a revision without alternatives
    history = page.split("data-event=\"quote\"")
    assert len(history) == 3 and "A new estimate sent to you" in history[1]
    assert "Estimate sent to you" in history[2]
    page = html(customer.get(track(ticket) + "?lang=fa"))
    assert "برآورد تازه (نسخهٔ ۲)" in page


# --- the estimate's total while the customer has not chosen -----------------------------------

def test_the_api_gives_the_range_of_an_estimate_not_chosen_yet(api, make_ticket, quoted, users):
    url = f"/api/v1/tickets/{quoted.id}"
    body = api["reception"].get(url).get_json()
    # not the common lines alone (5,000,000 rials): the lowest alternative, and the range
    assert (body["estimate_total"], body["estimate_total_min"], body["estimate_total_max"]) == (
        33_000_000, 33_000_000, 50_000_000)
    [listed] = [t for t in api["reception"].get("/api/v1/tickets").get_json()["items"]
                if t["id"] == quoted.id]
    assert (listed["estimate_total_min"], listed["estimate_total_max"]) == (
        33_000_000, 50_000_000)
    approve(quoted, users, alternative=1)
    body = api["reception"].get(url).get_json()
    assert (body["estimate_total"], body["estimate_total_min"], body["estimate_total_max"]) == (
        50_000_000, 50_000_000, 50_000_000)
    # an estimate without alternatives: its total, thrice; none before an estimate
    plain = api["reception"].get(f"/api/v1/tickets/{make_ticket('estimate').id}").get_json()
    assert (plain["estimate_total"], plain["estimate_total_min"],
            plain["estimate_total_max"]) == (14_000_000, 14_000_000, 14_000_000)
    early = api["reception"].get(f"/api/v1/tickets/{make_ticket('diagnosis').id}").get_json()
    assert (early["estimate_total"], early["estimate_total_min"],
            early["estimate_total_max"]) == (None, None, None)


def test_alternatives_without_common_lines_have_a_total_in_the_api(api, make_ticket, users):
    ticket = make_ticket("diagnosis")
    ticket_service.fire_event(ticket.id, "quote", Actor.staff(users["technician"]),
                              {"alternatives": [ORIGINAL, COPY]})
    body = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert (body["estimate_total"], body["estimate_total_min"], body["estimate_total_max"]) == (
        28_000_000, 28_000_000, 45_000_000)


def test_the_openapi_document_names_the_estimate_range(app):
    from servicedesk.web.openapi import openapi_document
    doc = openapi_document()
    for schema in ("Ticket", "TicketSummary"):
        ticket = doc["components"]["schemas"][schema]
        assert {"estimate_total_min", "estimate_total_max"} <= set(ticket["required"])
        assert "lowest" in ticket["properties"]["estimate_total"]["description"]
    costs = doc["paths"]["/reports/costs"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]["properties"]["rows"]["items"]["properties"]
    assert {"estimate_total_min", "estimate_total_max"} <= set(costs)


def test_the_costs_report_counts_an_estimate_not_chosen_from_its_lowest_to_its_highest(
        app, api, quoted, make_ticket, users):
    import csv
    import io

    from servicedesk import reports as r
    from .test_reports import page_table
    make_ticket("estimate")  # 14,000,000 rials, waiting too
    declined = make_ticket("diagnosis")  # alternatives all declined: counted as offered
    ticket_service.fire_event(declined.id, "quote", Actor.staff(users["technician"]),
                              {"alternatives": [ORIGINAL, COPY]})
    ticket_service.fire_event(declined.id, "decline", Actor.staff(users["reception"]),
                              {"channel": "phone", "reason": "too dear"})
    today = r.shop_today()
    [row] = r.costs(r.Filters(today, today, group_by="month"))
    assert (row["awaiting"], row["declined"]) == (2, 1)
    assert (row["estimate_total_min"], row["estimate_total_max"]) == (
        33_000_000 + 14_000_000 + 28_000_000, 50_000_000 + 14_000_000 + 45_000_000)
    assert row["estimate_total"] == row["estimate_total_min"]
    [api_row] = api["manager"].get("/api/v1/reports/costs").get_json()["rows"]
    assert (api_row["estimate_total"], api_row["estimate_total_min"],
            api_row["estimate_total_max"]) == (75_000_000, 75_000_000, 109_000_000)
    manager = Staff(app, users["manager"].username)
    [shown] = page_table(manager.get("/reports/costs?group_by=month&lang=en"))
    assert shown["Estimates total (toman)"] == "from 7,500,000 to 10,900,000"
    export = manager.get("/reports/costs?group_by=month&lang=en&format=csv")
    [exported] = list(csv.DictReader(io.StringIO(export.data.decode("utf-8-sig"))))
    assert [v for k, v in exported.items() if k.startswith("Estimates total")] == [
        "75000000", "109000000"]  # (rials, as the export writes money)
    # chosen: one amount again
    approve(quoted, users, alternative=1)
    [row] = r.costs(r.Filters(today, today, group_by="month"))
    assert row["estimate_total_min"] == 50_000_000 + 14_000_000 + 28_000_000


def test_the_desk_card_and_the_ticket_page_show_the_range(app, users, quoted):
    desk = Staff(app, users["reception"].username)
    card = html(desk.get("/desk?lang=en")).split(f'id="estimate-{quoted.id}"', 1)[1].split(
        "</details>", 1)[0]
    assert "from 3,300,000 toman to 5,000,000 toman" in card
    assert "500,000 toman" not in card  # not the common lines alone
    page = html(desk.get(f"/tickets/{quoted.id}?lang=en"))
    assert "data-estimate-range>from 3,300,000 toman to 5,000,000 toman" in page
    page = html(desk.get("/desk?lang=fa"))
    assert "از ۳٬۳۰۰٬۰۰۰ تومان تا ۵٬۰۰۰٬۰۰۰ تومان" in page


def test_the_estimate_form_can_add_a_slot_up_to_four_with_javascript(app, users, make_ticket):
    """Without JavaScript, three slots to fill; the button to add one (and those to remove an
    empty one) are hidden until workbench.js shows them, with a blank slot to copy."""
    ticket = make_ticket("diagnosis")
    tech = Staff(app, users["technician"].username)
    form = _form(html(tech.get(f"/tickets/{ticket.id}?lang=en")), "quote")
    assert form.count("<fieldset class=\"border rounded p-2 mb-2\" data-alternative=") == 4
    assert 'data-alternative-slots data-max="4"' in form
    assert "data-add-alternative hidden>Add an alternative</button>" in form
    assert form.count("data-remove-alternative hidden") == 4  # three slots and the blank one
    blank = form.split("<template data-alternative-template>", 1)[1]
    assert 'name="alt__N___name"' in blank and 'name="alt__N___line_description"' in blank
    assert 'data-numbered="Alternative [[n]]: its name">Alternative __NUM__: its name' in blank
