"""The JSON API under /api/v1 (DESIGN section 5), as an integration sees it over HTTP."""
import copy
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from servicedesk.extensions import db
from servicedesk.i18n import localize_digits
from servicedesk.lifecycle import EVENTS, allowed_events
from servicedesk.models import (ApiToken, CostLine, Customer, Device, Notification, Ticket,
                                TicketEvent, Visit)
from servicedesk.services.people import issue_token, revoke_token, token_digest

from .conftest import INTAKE, LINES, SAMPLE_DATA

PHONE = "+989121234567"
API_EVENTS = ["send_to_repair", "quote", "approve", "decline", "return_unrepaired",
              "wait_parts", "resume", "finish", "deliver", "cancel"]


def intake(**changes):
    """A deep copy of INTAKE with top-level keys replaced (None removes a key)."""
    data = copy.deepcopy(INTAKE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def with_customer(**fields):
    data = intake()
    data["customer"].update(fields)
    return data


def with_device(**fields):
    data = intake()
    data["device"].update(fields)
    return data


def row_counts() -> dict:
    db.session.expire_all()
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Ticket, Customer, Device, TicketEvent, Notification, CostLine, Visit)}


def admit(api, data=None):
    resp = api["reception"].post("/api/v1/tickets", json=data or intake())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def fire(api, role, ticket_id, event, **data):
    return api[role].post(f"/api/v1/tickets/{ticket_id}/events", json={"event": event, **data})


# --- admitting a ticket -------------------------------------------------------------------------

def test_admit_returns_the_new_ticket_with_its_history_and_sms(api):
    resp = api["reception"].post("/api/v1/tickets", json=intake())
    assert resp.status_code == 201
    assert resp.content_type == "application/json"
    t = resp.get_json()
    assert t["state"] == "intake"
    assert re.fullmatch(r"A-\d{5}", t["number"]) and t["number"] == "A-00001"
    assert t["version"] >= 1
    assert "/t/" in t["tracking_url"]
    assert t["tracking_url"].startswith("http://shop.test/t/")
    token = t["tracking_url"].rsplit("/", 1)[1]
    assert len(token) >= 12 and t["number"] not in t["tracking_url"]
    assert t["customer"]["name"] == "Narges Rezaei"
    assert t["customer"]["phone"] == PHONE
    assert t["customer"]["language"] == "fa"
    assert t["device"] == {"kind": "phone", "brand": "Samsung", "model": "Galaxy A54",
                           "serial": "490154203237518", "colour": None}
    assert t["problem"] == "Cracked screen"
    assert t["service_type"] == "repair"
    assert t["technician"] is None
    assert t["estimate_total"] is None and t["final_total"] is None
    assert t["allowed_events"] == ["send_to_repair", "cancel"]
    assert [(h["event"], h["from"], h["to"], h["actor"]) for h in t["history"]] == [
        ("admit", None, "intake", "reception1")]
    assert len(t["notifications"]) == 1
    sms = t["notifications"][0]
    assert sms["event"] == "admit"
    assert sms["to"] == PHONE
    assert t["tracking_url"] in sms["body"]
    assert localize_digits(t["number"], "fa") in sms["body"]  # Persian digits in a fa SMS

    # The same ticket read back
    got = api["reception"].get(f"/api/v1/tickets/{t['id']}")
    assert got.status_code == 200
    g = got.get_json()
    assert (g["id"], g["number"], g["state"], g["tracking_url"]) == (
        t["id"], t["number"], "intake", t["tracking_url"])
    assert [h["event"] for h in g["history"]] == ["admit"]
    assert [n["to"] for n in g["notifications"]] == [PHONE]


def test_ticket_numbers_count_up(api):
    first = admit(api)
    second = admit(api, with_customer(phone="09351234567"))
    assert (first["number"], second["number"]) == ("A-00001", "A-00002")
    assert first["tracking_url"] != second["tracking_url"]


@pytest.mark.parametrize("raw", ["09121234567", "۰۹۱۲۱۲۳۴۵۶۷", "+98 912 123 4567",
                                 "00989121234567", "9121234567", "٠٩١٢١٢٣٤٥٦٧"])
def test_phone_spellings_are_stored_as_e164(api, raw):
    t = admit(api, with_customer(phone=raw))
    got = api["reception"].get(f"/api/v1/tickets/{t['id']}").get_json()
    assert got["customer"]["phone"] == PHONE
    assert got["notifications"][0]["to"] == PHONE
    assert db.session.scalar(select(Customer.phone)) == PHONE


def test_the_same_phone_reuses_the_customer(api):
    first = admit(api, with_customer(phone="09121234567"))
    second = admit(api, with_customer(phone="۰۹۱۲۱۲۳۴۵۶۷", language="en"))
    other = admit(api, with_customer(phone="09351234567", name="Someone Else"))
    assert first["customer"]["id"] == second["customer"]["id"]
    assert other["customer"]["id"] != first["customer"]["id"]
    assert second["customer"]["language"] == "en"
    counts = row_counts()
    assert counts["Customer"] == 2
    assert counts["Ticket"] == 3
    assert counts["Device"] == 3


def test_an_intake_retried_with_its_idempotency_key_admits_once(api, users):
    """A client whose first request timed out sends it again: with the same Idempotency-Key
    the device is admitted once and the retry gets that ticket (200, not 201). Another key,
    or another client with the same key, is another intake."""
    from .conftest import Api, add_user

    def send(client: Api, key: str):
        return client.client.post("/api/v1/tickets", json=intake(),
                                  headers={**client.headers, "Idempotency-Key": key})

    first, again = send(api["reception"], "k-1"), send(api["reception"], "k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["number"] == first.get_json()["number"]
    assert db.session.scalar(select(func.count(Ticket.id))) == 1
    assert db.session.scalar(select(func.count(Notification.id))) == 1
    assert send(api["reception"], "k-2").status_code == 201
    # the same key with another intake is that other intake, not the first one's answer
    changed = api["reception"].client.post("/api/v1/tickets", json={
        **intake(), "problem": "Battery"}, headers={**api["reception"].headers,
                                                    "Idempotency-Key": "k-1"})
    assert changed.status_code == 201 and changed.get_json()["problem"] == "Battery"
    other_desk = Api(api["reception"].client, issue_token(add_user("reception2", "reception")))
    assert send(other_desk, "k-1").status_code == 201
    assert db.session.scalar(select(func.count(Ticket.id))) == 4
    long = send(api["reception"], "k" * 51)
    assert long.status_code == 422 and "Idempotency-Key" in long.get_json()["fields"]
    assert db.session.scalar(select(func.count(Ticket.id))) == 4


def test_admit_takes_the_optional_fields(api):
    t = admit(api, intake(service_type="warranty", promised_date="2026-12-01",
                          pre_approved_amount=5_000_000, accessories="case",
                          customer={"name": "Ali", "phone": "09121234567", "language": "en"}))
    assert t["service_type"] == "warranty"
    assert t["promised_date"] == "2026-12-01"
    assert t["customer"]["language"] == "en"
    # An English customer gets the English SMS, with the link.
    assert t["notifications"][0]["body"].startswith("Test Repair Shop: we received your")
    assert t["tracking_url"] in t["notifications"][0]["body"]


# --- bad input writes nothing ------------------------------------------------------------------

def _expect_error(resp, status, field=None):
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.content_type == "application/json"
    body = resp.get_json()
    assert isinstance(body["error"], str) and body["error"]
    if field is not None:
        assert field in body["fields"], body
        assert body["fields"][field]
    return body


def test_malformed_json_is_400_and_writes_nothing(api):
    before = row_counts()
    resp = api["reception"].post("/api/v1/tickets", data='{"customer": {',
                                 content_type="application/json")
    body = _expect_error(resp, 400)
    assert "JSON" in body["error"]
    assert row_counts() == before


def test_a_json_array_is_422_and_writes_nothing(api):
    before = row_counts()
    resp = api["reception"].post("/api/v1/tickets", json=[INTAKE])
    body = _expect_error(resp, 422)
    assert "JSON" in body["error"]
    assert row_counts() == before


BAD_INTAKES = {
    "missing customer": (intake(customer=None), "customer"),
    "missing device": (intake(device=None), "device"),
    "missing problem": (intake(problem=None), "problem"),
    "blank problem": (intake(problem="   "), "problem"),
    "problem as a number": (intake(problem=42), "problem"),
    "customer as a string": (intake(customer="Narges"), "customer"),
    "missing name": (intake(customer={"phone": "09121234567"}), "customer.name"),
    "missing phone": (intake(customer={"name": "Narges"}), "customer.phone"),
    "phone as a number": (with_customer(phone=9121234567), "customer.phone"),
    "landline phone": (with_customer(phone="02112345678"), "customer.phone"),
    "short phone": (with_customer(phone="0912123456"), "customer.phone"),
    "letters as phone": (with_customer(phone="call me maybe"), "customer.phone"),
    "unknown language": (with_customer(language="de"), "customer.language"),
    "bad imei check digit": (with_device(serial="490154203237519"), "device.serial"),
    "16-digit imei": (with_device(serial="4901542032375181"), "device.serial"),
    "missing brand": (with_device(brand=None), "device.brand"),
    "model as a list": (with_device(model=["A54"]), "device.model"),
    "unknown service_type": (intake(service_type="magic"), "service_type"),
    "negative pre_approved_amount": (intake(pre_approved_amount=-1), "pre_approved_amount"),
    "float pre_approved_amount": (intake(pre_approved_amount=1.5), "pre_approved_amount"),
    "bool pre_approved_amount": (intake(pre_approved_amount=True), "pre_approved_amount"),
    "bad promised_date": (intake(promised_date="next week"), "promised_date"),
    "visit_id that does not exist": (intake(visit_id=999999), "visit_id"),
    "visit_id as text": (intake(visit_id="abc"), "visit_id"),
}


@pytest.mark.parametrize("case", list(BAD_INTAKES))
def test_bad_intake_is_422_naming_the_field_and_writes_nothing(api, case):
    data, field = BAD_INTAKES[case]
    before = row_counts()
    resp = api["reception"].post("/api/v1/tickets", json=data)
    _expect_error(resp, 422, field)
    assert row_counts() == before


def test_every_bad_field_is_named_at_once(api):
    data = intake(problem=7, service_type="magic")
    data["customer"]["phone"] = "02112345678"
    data["device"]["serial"] = "490154203237519"
    before = row_counts()
    body = _expect_error(api["reception"].post("/api/v1/tickets", json=data), 422)
    assert set(body["fields"]) == {"problem", "service_type", "customer.phone", "device.serial"}
    assert row_counts() == before


BAD_QUOTES = {
    "qty as text": ({"kind": "part", "description": "Screen", "qty": "abc",
                     "unit_price": 1000}),
    "unit_price as a float": ({"kind": "part", "description": "Screen", "qty": 1,
                               "unit_price": 1000.5}),
    "unit_price as a bool": ({"kind": "part", "description": "Screen", "qty": 1,
                              "unit_price": True}),
    "negative unit_price": ({"kind": "part", "description": "Screen", "qty": 1,
                             "unit_price": -5}),
    "zero qty": ({"kind": "part", "description": "Screen", "qty": 0, "unit_price": 1000}),
    "unknown kind": ({"kind": "tip", "description": "Screen", "qty": 1, "unit_price": 1000}),
    "no description": ({"kind": "part", "qty": 1, "unit_price": 1000}),
}


@pytest.mark.parametrize("case", list(BAD_QUOTES))
def test_bad_quote_lines_are_422_and_write_nothing(api, make_ticket, case):
    ticket = make_ticket("diagnosis")
    before = row_counts()
    resp = fire(api, "technician", ticket.id, "quote", lines=[LINES[0], BAD_QUOTES[case]])
    body = _expect_error(resp, 422, "lines")
    assert localize_digits(2) in body["fields"]["lines"]  # names the bad line, in its digits
    # and says where, for a client to mark the field
    field = ("kind" if "kind" in case else "description" if "description" in case
             else "qty" if "qty" in case else "unit_price")
    assert body["at"] == {"lines": {"line": 2, "field": field}}
    assert row_counts() == before
    got = api["technician"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert got["state"] == "diagnosis" and got["estimate_total"] is None


@pytest.mark.parametrize("lines", [[], "a screen", None])
def test_quote_without_usable_lines_is_422(api, make_ticket, lines):
    ticket = make_ticket("diagnosis")
    before = row_counts()
    data = {} if lines is None else {"lines": lines}
    _expect_error(fire(api, "technician", ticket.id, "quote", **data), 422, "lines")
    assert row_counts() == before


def test_bad_event_data_is_422_naming_the_field(api, make_ticket):
    ready = make_ticket("ready")
    repair = make_ticket("repair")
    intake_ticket = make_ticket("intake")
    before = row_counts()
    _expect_error(fire(api, "reception", ready.id, "deliver"), 422, "amount_paid")
    _expect_error(fire(api, "reception", ready.id, "deliver", amount_paid=-1), 422, "amount_paid")
    _expect_error(fire(api, "reception", ready.id, "deliver", amount_paid=1.5), 422,
                  "amount_paid")
    _expect_error(fire(api, "technician", repair.id, "wait_parts"), 422, "part")
    _expect_error(fire(api, "technician", repair.id, "wait_parts", part="LCD",
                       expected_date="soon"), 422, "expected_date")
    _expect_error(fire(api, "reception", intake_ticket.id, "cancel"), 422, "reason")
    _expect_error(fire(api, "reception", intake_ticket.id, "send_to_repair",
                       technician="reception1"), 422, "technician")
    _expect_error(fire(api, "reception", intake_ticket.id, "send_to_repair",
                       technician="nobody"), 422, "technician")
    assert row_counts() == before


def test_approve_through_the_api_needs_phone_or_in_person(api, make_ticket):
    ticket = make_ticket("estimate")
    before = row_counts()
    _expect_error(fire(api, "reception", ticket.id, "approve"), 422, "channel")
    _expect_error(fire(api, "reception", ticket.id, "approve", channel="link"), 422, "channel")
    assert row_counts() == before


def test_unknown_event_is_422_and_writes_nothing(api, make_ticket):
    ticket = make_ticket("intake")
    before = row_counts()
    body = _expect_error(fire(api, "reception", ticket.id, "teleport"), 422, "event")
    assert "send_to_repair" in body["error"]  # lists the known events
    # 'admit' exists in the table but only at intake: firing it on a ticket is a 409 or 422,
    # never a second admission
    resp = fire(api, "reception", ticket.id, "admit")
    assert resp.status_code in (409, 422)
    assert row_counts() == before


@pytest.mark.parametrize("payload", [{}, {"event": ""}, {"event": 5}, {"event": None},
                                     {"technician": "technician1"}])
def test_missing_event_field_is_422(api, make_ticket, payload):
    ticket = make_ticket("intake")
    before = row_counts()
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json=payload)
    _expect_error(resp, 422, "event")
    assert row_counts() == before


def test_event_body_must_be_a_json_object(api, make_ticket):
    ticket = make_ticket("intake")
    before = row_counts()
    url = f"/api/v1/tickets/{ticket.id}/events"
    _expect_error(api["reception"].post(url, data="{event", content_type="application/json"),
                  400)
    _expect_error(api["reception"].post(url, json=["send_to_repair"]), 422)
    _expect_error(api["reception"].post(url, json="send_to_repair"), 422)
    assert row_counts() == before


@pytest.mark.parametrize("version", ["1", True, 1.0])
def test_version_must_be_a_whole_number(api, make_ticket, version):
    ticket = make_ticket("intake")
    before = row_counts()
    resp = fire(api, "reception", ticket.id, "send_to_repair", version=version)
    _expect_error(resp, 422, "version")
    assert row_counts() == before


# --- authentication -----------------------------------------------------------------------------

def _expect_401(resp):
    body = _expect_error(resp, 401)
    assert "Bearer" in body["error"]


@pytest.mark.parametrize("url,method", [("/api/v1/tickets", "get"), ("/api/v1/tickets", "post"),
                                        ("/api/v1/tickets/1", "get"),
                                        ("/api/v1/tickets/1/events", "post"),
                                        ("/api/v1/visits", "post"),
                                        ("/api/v1/visits/next", "post")])
def test_no_token_is_401(app, users, url, method):
    client = app.test_client()
    before = row_counts()
    resp = getattr(client, method)(url, json={"service": "repair"} if method == "post" else None)
    _expect_401(resp)
    assert row_counts() == before


@pytest.mark.parametrize("header", ["Bearer sd_made-up-token", "Bearer ", "Basic cmVjZXB0aW9uMQ==",
                                    "sd_made-up-token"])
def test_bad_authorization_header_is_401(app, users, header):
    client = app.test_client()
    _expect_401(client.get("/api/v1/tickets", headers={"Authorization": header}))


def test_a_session_cookie_is_not_enough(app, users):
    client = app.test_client()
    login = client.get("/login")
    assert login.status_code == 200
    _expect_401(client.get("/api/v1/tickets"))


def test_token_of_a_deactivated_user_is_401(app, api, users):
    assert api["reception"].get("/api/v1/tickets").status_code == 200
    users["reception"].active = False
    db.session.commit()
    before = row_counts()
    _expect_401(api["reception"].get("/api/v1/tickets"))
    _expect_401(api["reception"].post("/api/v1/tickets", json=intake()))
    assert row_counts() == before
    # others are unaffected
    assert api["manager"].get("/api/v1/tickets").status_code == 200


def test_revoked_token_is_401(app, api, users):
    assert api["reception"].get("/api/v1/tickets").status_code == 200
    raw = api["reception"].headers["Authorization"][len("Bearer "):]
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(raw)))
    assert token is not None and token.user_id == users["reception"].id
    assert token.token_hash != raw  # only the hash is stored
    revoke_token(token.id)
    before = row_counts()
    _expect_401(api["reception"].get("/api/v1/tickets"))
    _expect_401(api["reception"].post("/api/v1/tickets", json=intake()))
    assert row_counts() == before
    # a fresh token of the same user still works
    fresh = issue_token(users["reception"])
    resp = app.test_client().get("/api/v1/tickets", headers={"Authorization": f"Bearer {fresh}"})
    assert resp.status_code == 200


def test_openapi_is_public_and_lists_every_api_event(app):
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert resp.content_type == "application/json"
    doc = resp.get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert {"/visits", "/visits/next", "/tickets", "/tickets/{id}",
            "/tickets/{id}/events"} <= set(doc["paths"])
    assert "post" in doc["paths"]["/tickets"] and "get" in doc["paths"]["/tickets"]
    event_schemas = doc["components"]["schemas"]["Event"]["oneOf"]
    names = [s["properties"]["event"]["const"] for s in event_schemas]
    assert sorted(names) == sorted(API_EVENTS)
    assert len(names) == len(set(names))
    by_name = {s["properties"]["event"]["const"]: s for s in event_schemas}
    assert set(by_name["quote"]["required"]) == {"event", "lines"}
    assert set(by_name["deliver"]["required"]) == {"event", "amount_paid"}
    assert by_name["approve"]["properties"]["channel"] == {"enum": ["phone", "in_person"]}
    assert set(by_name["decline"]["required"]) == {"event", "reason", "channel"}
    assert by_name["resume"]["required"] == ["event"]
    # every $ref points at a schema the document defines
    refs = re.findall(r'"\$ref":\s*"#/components/schemas/(\w+)"', resp.get_data(as_text=True))
    assert refs and set(refs) <= set(doc["components"]["schemas"])
    for url, path in doc["paths"].items():
        for op in path.values():
            assert "200" in op["responses"] or "201" in op["responses"]
            # every operation takes the token, but the document itself (served without one)
            public = op.get("security") == []
            assert ("401" in op["responses"]) != public, url
    assert [url for url, path in doc["paths"].items()
            if any(op.get("security") == [] for op in path.values())] == ["/openapi.json"]


# --- events over HTTP ---------------------------------------------------------------------------

def test_a_full_life_through_the_api(api):
    t = admit(api)
    tid = t["id"]

    resp = fire(api, "reception", tid, "send_to_repair", technician="technician1",
                version=t["version"])
    assert resp.status_code == 200, resp.get_json()
    t = resp.get_json()
    assert (t["state"], t["technician"]) == ("diagnosis", "technician1")

    resp = fire(api, "technician", tid, "quote", lines=LINES, promised_date="2026-12-01")
    assert resp.status_code == 200, resp.get_json()
    t = resp.get_json()
    assert t["state"] == "estimate"
    assert t["estimate_total"] == 14_000_000
    assert t["final_total"] is None
    assert t["promised_date"] == "2026-12-01"
    assert [(l["kind"], l["description"], l["qty"], l["unit_price"], l["total"])
            for l in t["estimate_lines"]] == [("part", "Screen", 1, 12_000_000, 12_000_000),
                                             ("labour", "Fitting", 1, 2_000_000, 2_000_000)]
    assert t["tracking_url"] in t["notifications"][-1]["body"]

    resp = fire(api, "reception", tid, "approve", channel="phone")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["state"] == "repair"

    final = [{"kind": "part", "description": "Screen", "qty": 1, "unit_price": 12_000_000},
             {"kind": "labour", "description": "Fitting", "qty": 2, "unit_price": 1_500_000}]
    resp = fire(api, "technician", tid, "finish", lines=final, work_done="Replaced the screen")
    assert resp.status_code == 200, resp.get_json()
    t = resp.get_json()
    assert t["state"] == "ready"
    assert t["final_total"] == 15_000_000
    assert t["estimate_total"] == 14_000_000

    resp = fire(api, "reception", tid, "deliver", amount_paid=15_000_000, collected_by="owner")
    assert resp.status_code == 200, resp.get_json()
    t = resp.get_json()
    assert t["state"] == "delivered"
    assert t["amount_paid"] == 15_000_000
    assert t["allowed_events"] == []

    t = api["manager"].get(f"/api/v1/tickets/{tid}").get_json()
    assert t["state"] == "delivered"
    assert [(h["event"], h["from"], h["to"], h["actor"]) for h in t["history"]] == [
        ("admit", None, "intake", "reception1"),
        ("send_to_repair", "intake", "diagnosis", "reception1"),
        ("quote", "diagnosis", "estimate", "technician1"),
        ("approve", "estimate", "repair", "reception1"),
        ("finish", "repair", "ready", "technician1"),
        ("deliver", "ready", "delivered", "reception1"),
    ]
    assert t["history"][3]["data"]["channel"] == "phone"
    assert t["history"][5]["data"]["amount_paid"] == 15_000_000
    assert t["estimate_total"] == 14_000_000 and t["final_total"] == 15_000_000
    assert [n["event"] for n in t["notifications"]] == [
        "admit", "send_to_repair", "quote", "approve", "finish", "deliver"]
    assert {n["to"] for n in t["notifications"]} == {PHONE}
    counts = row_counts()
    assert (counts["Ticket"], counts["TicketEvent"], counts["Notification"]) == (1, 6, 6)


def test_declined_estimate_goes_to_ready_with_nothing_to_pay(api, make_ticket):
    ticket = make_ticket("estimate")
    resp = fire(api, "reception", ticket.id, "decline", reason="too expensive",
                channel="in_person")
    assert resp.status_code == 200, resp.get_json()
    t = resp.get_json()
    assert t["state"] == "ready"
    assert t["final_total"] is None
    assert t["history"][-1]["data"]["reason"] == "too expensive"
    assert t["notifications"][-1]["event"] == "decline"


def test_waiting_for_parts_and_resuming(api, make_ticket):
    ticket = make_ticket("repair")
    t = fire(api, "technician", ticket.id, "wait_parts", part="LCD",
             expected_date="2026-12-05").get_json()
    assert t["state"] == "waiting_parts"
    assert t["history"][-1]["data"] == {"part": "LCD", "expected_date": "2026-12-05"}
    assert "LCD" in t["notifications"][-1]["body"]
    t = fire(api, "technician", ticket.id, "resume").get_json()
    assert t["state"] == "repair"
    assert [h["event"] for h in t["history"]][-2:] == ["wait_parts", "resume"]


def test_waiting_for_a_part_can_move_the_promised_date(api, make_ticket):
    """The ticket page refuses a part expected after the promise; the API takes the data as
    sent (as it takes past dates), and moves the promise when told to."""
    ticket = make_ticket("repair")
    promised = ticket.promised_date
    later = (promised + timedelta(days=7)).isoformat()
    t = fire(api, "technician", ticket.id, "wait_parts", part="LCD",
             expected_date=later).get_json()
    assert (t["state"], t["promised_date"]) == ("waiting_parts", promised.isoformat())
    fire(api, "technician", ticket.id, "resume")
    moved = (promised + timedelta(days=8)).isoformat()
    t = fire(api, "technician", ticket.id, "wait_parts", part="LCD", expected_date=later,
             promised_date=moved).get_json()
    assert (t["state"], t["promised_date"]) == ("waiting_parts", moved)
    assert t["history"][-1]["data"]["promised_date"] == moved
    _expect_error(fire(api, "technician", make_ticket("repair").id, "wait_parts", part="LCD",
                       promised_date="soon"), 422, "promised_date")


def test_the_api_bills_above_the_estimate_as_sent_and_records_the_estimate(api, make_ticket):
    """The ticket page asks for the customer's agreement; the API takes the final lines as sent
    (its contract) and the event keeps the approved estimate beside the bill."""
    ticket = make_ticket("repair")
    lines = [*LINES, {"kind": "part", "description": "Glass", "qty": 1, "unit_price": 500_000}]
    t = fire(api, "technician", ticket.id, "finish", lines=lines).get_json()
    assert t["state"] == "ready"
    data = t["history"][-1]["data"]
    assert (data["total"], data["estimate_total"]) == (14_500_000, 14_000_000)
    assert "above_estimate_agreed" not in data
    resp = fire(api, "technician", make_ticket("repair").id, "finish", lines=lines,
                above_estimate_ok=False)
    _expect_error(resp, 422, "lines")


def test_pre_approved_estimate_is_approved_at_once(api):
    t = admit(api, intake(pre_approved_amount=20_000_000))
    fire(api, "reception", t["id"], "send_to_repair", technician="technician1")
    resp = fire(api, "technician", t["id"], "quote", lines=LINES)
    assert resp.status_code == 200
    t = resp.get_json()
    assert t["state"] == "repair"
    assert [(h["event"], h["actor"]) for h in t["history"]][-2:] == [
        ("quote", "technician1"), ("approve", "system")]
    assert t["history"][-1]["data"]["channel"] == "pre_approved"


def test_an_event_not_allowed_in_the_state_is_409_and_writes_nothing(api, make_ticket):
    ticket = make_ticket("intake")
    before = row_counts()
    resp = fire(api, "technician", ticket.id, "quote", lines=LINES)
    body = _expect_error(resp, 409)
    assert body["state"] == "intake"
    assert body["allowed"] == ["send_to_repair", "cancel"]
    assert "intake" in body["error"]
    assert row_counts() == before
    got = api["technician"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert got["state"] == "intake" and got["estimate_total"] is None


@pytest.mark.parametrize("state,event,role", [
    ("delivered", "deliver", "reception"),   # a double click on deliver
    ("ready", "cancel", "reception"),
    ("repair", "approve", "reception"),
    ("cancelled", "send_to_repair", "reception"),
    ("estimate", "finish", "technician"),
])
def test_409_names_the_state_and_the_events_allowed_there(api, make_ticket, state, event, role):
    ticket = make_ticket(state)
    before = row_counts()
    body = _expect_error(fire(api, role, ticket.id, event, **SAMPLE_DATA[event]), 409)
    assert body["state"] == state
    assert body["allowed"] == allowed_events(state)
    assert row_counts() == before


def test_a_stale_version_is_409_and_writes_nothing(api, make_ticket):
    ticket = make_ticket("intake")
    seen = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()["version"]
    first = fire(api, "reception", ticket.id, "send_to_repair", version=seen)
    assert first.status_code == 200
    assert first.get_json()["version"] > seen
    before = row_counts()
    # a second screen that still shows the old version tries to cancel
    resp = fire(api, "reception", ticket.id, "cancel", reason="duplicate", version=seen)
    body = _expect_error(resp, 409)
    assert body["state"] == "diagnosis"
    assert row_counts() == before
    got = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert got["state"] == "diagnosis"
    assert [h["event"] for h in got["history"]] == ["admit", "send_to_repair"]


@pytest.mark.parametrize("state,event,role", [
    ("ready", "deliver", "technician"),
    ("diagnosis", "quote", "reception"),
    ("repair", "finish", "manager"),
    ("intake", "cancel", "admin"),
    ("intake", "cancel", "technician"),
    ("estimate", "approve", "technician"),
    ("estimate", "approve", "manager"),
    ("delivered", "close", "reception"),
])
def test_a_role_that_may_not_fire_the_event_gets_403(api, make_ticket, state, event, role):
    assert role not in EVENTS[event].roles
    ticket = make_ticket(state)
    before = row_counts()
    body = _expect_error(fire(api, role, ticket.id, event, **SAMPLE_DATA[event]), 403)
    assert role in body["error"]
    assert row_counts() == before
    assert api["manager"].get(f"/api/v1/tickets/{ticket.id}").get_json()["state"] == state


def test_cancel_by_reception_and_by_manager(api, make_ticket):
    for role in ("reception", "manager"):
        ticket = make_ticket("intake")
        resp = fire(api, role, ticket.id, "cancel", reason="customer changed their mind")
        assert resp.status_code == 200
        t = resp.get_json()
        assert t["state"] == "cancelled"
        assert t["history"][-1]["actor"] == f"{role}1"
        sms = t["notifications"][-1]["body"]
        assert "customer changed their mind" in sms
        # The customer is told which device and that it waits to be collected, not "a ticket".
        assert "Galaxy A54" in sms and "تحویل" in sms


@pytest.mark.parametrize("role", ["technician", "manager", "admin"])
def test_only_reception_admits(api, role):
    before = row_counts()
    _expect_error(api[role].post("/api/v1/tickets", json=intake()), 403)
    assert row_counts() == before


def test_events_on_a_missing_ticket_are_404(api):
    before = row_counts()
    _expect_error(fire(api, "reception", 999999, "send_to_repair"), 404)
    assert row_counts() == before


# --- listing and reading ------------------------------------------------------------------------

def test_list_by_state(api, make_ticket):
    repair_ids = {make_ticket("repair").id, make_ticket("repair").id}
    intake_id = make_ticket("intake").id
    ready_id = make_ticket("ready").id

    resp = api["technician"].get("/api/v1/tickets?state=repair")
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert {i["id"] for i in items} == repair_ids
    assert {i["state"] for i in items} == {"repair"}
    assert all(i["customer"]["phone"] == PHONE and "/t/" in i["tracking_url"] for i in items)

    both = api["technician"].get("/api/v1/tickets?state=repair,ready").get_json()["items"]
    assert {i["id"] for i in both} == repair_ids | {ready_id}

    everything = api["technician"].get("/api/v1/tickets").get_json()["items"]
    assert [i["id"] for i in everything] == sorted(repair_ids | {intake_id, ready_id},
                                                    reverse=True)

    nothing = api["technician"].get("/api/v1/tickets?state=delivered").get_json()
    assert nothing["items"] == []

    page = api["technician"].get("/api/v1/tickets?limit=2&offset=1").get_json()
    assert (page["limit"], page["offset"]) == (2, 1)
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything][1:3]


@pytest.mark.parametrize("query", ["state=fixed", "state=repair,fixed", "limit=abc"])
def test_bad_list_query_is_422(api, query):
    body = _expect_error(api["reception"].get(f"/api/v1/tickets?{query}"), 422)
    if query.startswith("state"):
        assert "fixed" in body["fields"]["state"]


def test_missing_ticket_is_404_json(api):
    body = _expect_error(api["reception"].get("/api/v1/tickets/999999"), 404)
    assert body == {"error": body["error"], "code": "not_found"}
    assert _expect_error(api["reception"].get("/api/v1/no-such-endpoint"), 404)["code"] == \
        "not_found"


def test_wrong_method_is_405_json(api):
    assert _expect_error(api["reception"].client.delete(
        "/api/v1/tickets/1", headers=api["reception"].headers), 405)["code"] == \
        "method_not_allowed"


# --- visits -------------------------------------------------------------------------------------

def issue(api, service, role="reception"):
    resp = api[role].post("/api/v1/visits", json={"service": service})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_visit_numbers_are_per_service_and_count_who_waits_ahead(api):
    r1 = issue(api, "repair")
    assert (r1["label"], r1["number"], r1["service"], r1["status"]) == ("R-001", 1, "repair",
                                                                        "waiting")
    assert r1["ahead"] == 0
    assert r1["issued_at"] and r1["called_at"] is None and r1["counter"] is None
    r2 = issue(api, "repair", role="manager")
    assert (r2["label"], r2["number"], r2["ahead"]) == ("R-002", 2, 1)
    p1 = issue(api, "pickup")
    assert (p1["label"], p1["number"], p1["ahead"]) == ("P-001", 1, 2)
    q1 = issue(api, "inquiry")
    assert (q1["label"], q1["ahead"]) == ("Q-001", 3)
    r3 = issue(api, "repair")
    assert (r3["label"], r3["ahead"]) == ("R-003", 4)
    assert len({r1["id"], r2["id"], p1["id"], q1["id"], r3["id"]}) == 5


@pytest.mark.parametrize("payload", [{"service": "coffee"}, {}, {"service": None},
                                     {"service": ["repair"]}])
def test_unknown_service_is_422(api, payload):
    before = row_counts()
    _expect_error(api["reception"].post("/api/v1/visits", json=payload), 422, "service")
    assert row_counts() == before


@pytest.mark.parametrize("role", ["technician", "admin"])
def test_issuing_a_visit_needs_reception_or_manager(api, role):
    before = row_counts()
    _expect_error(api[role].post("/api/v1/visits", json={"service": "repair"}), 403)
    assert row_counts() == before


def test_call_next_takes_the_oldest_waiting_visit(api):
    r1 = issue(api, "repair")
    p1 = issue(api, "pickup")
    r2 = issue(api, "repair")

    resp = api["reception"].post("/api/v1/visits/next", json={"counter": "2"})
    assert resp.status_code == 200
    called = resp.get_json()
    assert (called["id"], called["label"]) == (r1["id"], "R-001")
    assert (called["status"], called["counter"]) == ("called", "2")
    assert called["called_at"] is not None
    assert called["ahead"] == 0

    # the others moved up
    assert api["reception"].get(f"/api/v1/visits/{p1['id']}").get_json()["ahead"] == 0
    assert api["reception"].get(f"/api/v1/visits/{r2['id']}").get_json()["ahead"] == 1

    second = api["reception"].post("/api/v1/visits/next", json={"counter": 3}).get_json()
    assert (second["id"], second["label"], second["counter"]) == (p1["id"], "P-001", "3")
    third = api["reception"].post("/api/v1/visits/next", json={"counter": "2"}).get_json()
    assert (third["id"], third["label"]) == (r2["id"], "R-002")

    empty = api["reception"].post("/api/v1/visits/next", json={"counter": "2"})
    assert empty.status_code == 204
    assert empty.get_data() == b""

    # the called visits stay called
    got = api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()
    assert (got["status"], got["counter"]) == ("called", "2")


def test_call_next_when_nobody_waits_is_204(api):
    before = row_counts()
    resp = api["reception"].post("/api/v1/visits/next", json={"counter": "1"})
    assert resp.status_code == 204
    assert row_counts() == before


def test_call_next_for_one_service(api):
    issue(api, "repair")
    p1 = issue(api, "pickup")
    resp = api["reception"].post("/api/v1/visits/next", json={"counter": "1",
                                                               "service": "pickup"})
    assert resp.status_code == 200
    assert resp.get_json()["id"] == p1["id"]
    assert api["reception"].post("/api/v1/visits/next",
                                 json={"counter": "1", "service": "pickup"}).status_code == 204


@pytest.mark.parametrize("service", ["coffee", ["pickup"], {"a": 1}, 3])
def test_call_next_for_an_unknown_service_is_422(api, service):
    r1 = issue(api, "repair")
    resp = api["reception"].post("/api/v1/visits/next", json={"counter": "1", "service": service})
    _expect_error(resp, 422, "service")
    assert api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()["status"] == "waiting"


@pytest.mark.parametrize("payload", [{}, {"counter": ""}, {"counter": "   "},
                                     {"counter": ["2"]}, {"counter": None}])
def test_call_next_needs_a_counter(api, payload):
    r1 = issue(api, "repair")
    _expect_error(api["reception"].post("/api/v1/visits/next", json=payload), 422, "counter")
    assert api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()["status"] == "waiting"


@pytest.mark.parametrize("role", ["technician", "manager", "admin"])
def test_only_reception_calls_next(api, role):
    r1 = issue(api, "repair")
    _expect_error(api[role].post("/api/v1/visits/next", json={"counter": "2"}), 403)
    got = api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()
    assert (got["status"], got["counter"]) == ("waiting", None)


def test_missing_visit_is_404(api):
    _expect_error(api["reception"].get("/api/v1/visits/999999"), 404)


def test_admitting_with_a_visit_serves_it_once(api):
    r1 = issue(api, "repair")
    called = api["reception"].post("/api/v1/visits/next", json={"counter": "2"}).get_json()
    assert called["id"] == r1["id"]

    t = admit(api, intake(visit_id=r1["id"]))
    assert t["state"] == "intake"
    assert t["history"][0]["data"]["visit"] == "R-001"
    assert t["history"][0]["data"]["waited_seconds"] >= 0
    visit = api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()
    assert visit["status"] == "served"
    assert visit["called_at"] is not None

    before = row_counts()
    _expect_error(api["reception"].post("/api/v1/tickets", json=intake(visit_id=r1["id"])),
                  409)
    assert row_counts() == before
    assert api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()["status"] == "served"


def test_admitting_a_waiting_visit_serves_it_and_it_is_no_longer_called(api):
    r1 = issue(api, "repair")
    r2 = issue(api, "repair")
    t = admit(api, intake(visit_id=r1["id"]))
    assert t["number"] == "A-00001"
    assert api["reception"].get(f"/api/v1/visits/{r1['id']}").get_json()["status"] == "served"
    assert api["reception"].get(f"/api/v1/visits/{r2['id']}").get_json()["ahead"] == 0
    nxt = api["reception"].post("/api/v1/visits/next", json={"counter": "1"}).get_json()
    assert nxt["id"] == r2["id"]


# --- money and ids at realistic and extreme sizes -----------------------------------------------

def test_money_beyond_two_billion_rials_is_kept_exactly(api, make_ticket):
    """A high-end phone's board costs more than 2**31 rials; the sums must not overflow."""
    t = admit(api, intake(pre_approved_amount=2_500_000_000))
    assert t["state"] == "intake"
    fire(api, "reception", t["id"], "send_to_repair", technician="technician1")
    big = [{"kind": "part", "description": "Logic board", "qty": 1, "unit_price": 3_000_000_000},
           {"kind": "labour", "description": "Fitting", "qty": 2, "unit_price": 1_500_000}]
    resp = fire(api, "technician", t["id"], "quote", lines=big)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    t = resp.get_json()
    assert t["state"] == "estimate"  # above the pre-approved amount: the customer decides
    assert t["estimate_total"] == 3_003_000_000
    assert fire(api, "reception", t["id"], "approve", channel="in_person").status_code == 200
    assert fire(api, "technician", t["id"], "finish", lines=big).get_json()["final_total"] == \
        3_003_000_000
    t = fire(api, "reception", t["id"], "deliver", amount_paid=3_003_000_000).get_json()
    assert (t["state"], t["amount_paid"]) == ("delivered", 3_003_000_000)


def test_money_above_the_limit_is_422(api, make_ticket):
    ticket = make_ticket("diagnosis")
    before = row_counts()
    line = {"kind": "part", "description": "Gold", "qty": 1, "unit_price": 10**14}
    _expect_error(fire(api, "technician", ticket.id, "quote", lines=[line]), 422, "lines")
    _expect_error(api["reception"].post("/api/v1/tickets", json=intake(pre_approved_amount=10**14)),
                  422, "pre_approved_amount")
    assert row_counts() == before


@pytest.mark.parametrize("ticket_id", [2**31, 2**63, 10**30])
def test_huge_ticket_ids_are_404(api, ticket_id):
    _expect_error(api["reception"].get(f"/api/v1/tickets/{ticket_id}"), 404)
    _expect_error(fire(api, "reception", ticket_id, "cancel", reason="x"), 404)


@pytest.mark.parametrize("visit_id", [2**31, 10**12])
def test_huge_visit_ids_are_422_on_admit(api, visit_id):
    before = row_counts()
    _expect_error(api["reception"].post("/api/v1/tickets", json=intake(visit_id=visit_id)),
                  422, "visit_id")
    assert row_counts() == before


@pytest.mark.parametrize("visit_id", [2**31, 2**63, 10**30])
def test_huge_visit_ids_are_404(api, visit_id):
    _expect_error(api["reception"].get(f"/api/v1/visits/{visit_id}"), 404)


def test_an_offset_past_the_last_ticket_lists_nothing(api, make_ticket):
    make_ticket("intake")
    for offset in (1, 2**31 - 1):
        resp = api["reception"].get(f"/api/v1/tickets?offset={offset}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json()["items"] == []


@pytest.mark.parametrize("query, field, low, high", [
    ("limit=501", "limit", 1, 500), ("limit=0", "limit", 1, 500),
    ("limit=-3", "limit", 1, 500), ("offset=-1", "offset", 0, 2**31 - 1),
    ("offset=2147483648", "offset", 0, 2**31 - 1), ("offset=%d" % 10**30, "offset", 0,
                                                   2**31 - 1)])
def test_a_paging_argument_out_of_range_is_400_naming_the_range(api, make_ticket, query,
                                                                field, low, high):
    """Not answered as the nearest value: a client asking for 1000 would read the 500 it got
    as all there is."""
    make_ticket("intake")
    body = _expect_error(api["reception"].get(f"/api/v1/tickets?{query}"), 400, field)
    assert body["code"] == "invalid" and list(body["fields"]) == [field]
    assert body["ranges"] == {field: {"minimum": low, "maximum": high}}
    assert localize_digits(f"{high:,}").replace(",", "٬") in body["fields"][field]


# --- the answer of an action is what was committed (no reload after the commit) -----------------

def _without_sms_status(t: dict) -> dict:
    # The SMS may be sent between the action's answer and the GET (in-process sender).
    return {**t, "notifications": [{k: v for k, v in n.items()
                                    if k not in ("status", "attempts", "error_code", "error")}
                                   for n in t["notifications"]]}


def test_the_answer_of_an_intake_and_an_event_equals_a_fresh_read(api, app):
    created = api["reception"].post("/api/v1/tickets", json=intake(
        promised_date="2026-12-01", pre_approved_amount=1_000_000)).get_json()
    db.session.expunge_all()  # the GET reads from the database, not from the identity map
    read = api["reception"].get(f"/api/v1/tickets/{created['id']}").get_json()
    assert _without_sms_status(created) == _without_sms_status(read)
    for role, event, data in (("reception", "send_to_repair", {"technician": "technician1"}),
                              ("technician", "quote", {"lines": LINES})):
        fired = fire(api, role, created["id"], event, **data).get_json()
        db.session.expunge_all()
        read = api[role].get(f"/api/v1/tickets/{created['id']}").get_json()
        assert _without_sms_status(fired) == _without_sms_status(read), event


def test_an_api_request_looks_its_token_up_once(api, app):
    from sqlalchemy import event as sa_event
    api["reception"].get("/api/v1/tickets")  # the token's first use in the hour is noted
    seen = []

    def count(conn, cursor, statement, params, context, executemany):
        if "api_tokens" in statement:
            seen.append(statement)
    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        api["reception"].post("/api/v1/tickets", json=intake())
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert len(seen) == 1


def test_a_database_error_gets_the_json_error_not_a_bare_500(app, api):
    # A statement that fails leaves PostgreSQL's transaction aborted; the error handler, which
    # reads the caller's language through their token, must still answer in JSON.
    from sqlalchemy import text

    def broken():
        db.session.execute(text("SELECT * FROM no_such_table"))
    app.add_url_rule("/api/v1/_broken", "broken_for_test", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = api["reception"].get("/api/v1/_broken")
    assert resp.status_code == 500
    assert resp.is_json and resp.get_json()["error"]


def test_a_technician_working_through_the_api_takes_the_ticket_too(api, make_ticket, users):
    """As on the ticket page: the reports credit the work to whoever did it."""
    ticket = make_ticket("intake")
    assert fire(api, "reception", ticket.id, "send_to_repair").status_code == 200  # nobody yet
    resp = fire(api, "technician", ticket.id, "quote", lines=[LINES[0]])
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["technician"] == users["technician"].username
    assert [h["event"] for h in body["history"]][-2:] == ["claim", "quote"]


# --- branches: a desk acts on its own branch's tickets and queue ---------------------------------

def _other_branch_client(app, role="reception", code="N"):
    """An API client for a ``role`` user of a second branch (created with it)."""
    from servicedesk.models import Branch
    from servicedesk.services.people import create_user

    from .conftest import PASSWORD, Api
    branch = db.session.scalar(select(Branch).where(Branch.code == code))
    if branch is None:
        branch = Branch(name=f"Branch {code}", code=code)
        db.session.add(branch)
        db.session.commit()
    user = create_user(f"{role}_{code.lower()}", role, PASSWORD, branch=branch)
    return Api(app.test_client(), issue_token(user)), branch


def test_a_receptionist_cannot_admit_another_branchs_queue_number(app, api):
    """A ticket goes to its visit's branch: a receptionist of another branch admitting that
    visit would open a ticket they cannot act on, at a desk where the customer is not."""
    north, _ = _other_branch_client(app)
    visit = issue(api, "repair")  # at the first branch
    before = row_counts()
    body = _expect_error(north.post("/api/v1/tickets", json=intake(visit_id=visit["id"])), 403)
    assert localize_digits("R-001") in body["error"]
    assert row_counts() == before
    assert api["reception"].get(f"/api/v1/visits/{visit['id']}").get_json()["status"] == \
        "waiting"
    # its own branch's reception admits it
    assert admit(api, intake(visit_id=visit["id"]))["number"] == "A-00001"


# --- switches of the event data are true or false, never read from another type ------------------

@pytest.mark.parametrize("sent", ["false", 0, "no", [], {}])
def test_differs_ok_that_is_not_a_boolean_is_422(api, make_ticket, sent):
    """A client that sends "false" in quotes means false: reading it as absent would hand the
    device back with the wrong amount it asked to have refused."""
    ticket = make_ticket("ready")
    before = row_counts()
    _expect_error(fire(api, "reception", ticket.id, "deliver", amount_paid=1, differs_ok=sent),
                  422, "differs_ok")
    assert row_counts() == before
    assert api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()["state"] == "ready"


@pytest.mark.parametrize("sent", ["false", "true", 1])
def test_above_estimate_ok_that_is_not_a_boolean_is_422(api, make_ticket, sent):
    ticket = make_ticket("repair")
    before = row_counts()
    above = [{"kind": "part", "description": "Board", "qty": 1, "unit_price": 99_000_000}]
    _expect_error(fire(api, "technician", ticket.id, "finish", lines=above,
                       above_estimate_ok=sent), 422, "above_estimate_ok")
    assert row_counts() == before


def test_the_switches_as_booleans_still_work(api, make_ticket):
    ticket = make_ticket("ready")
    resp = fire(api, "reception", ticket.id, "deliver", amount_paid=1, differs_ok=True)
    assert resp.status_code == 200, resp.get_json()
    ticket = make_ticket("repair")
    above = [{"kind": "part", "description": "Board", "qty": 1, "unit_price": 99_000_000}]
    resp = fire(api, "technician", ticket.id, "finish", lines=above, above_estimate_ok=True)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["history"][-1]["data"]["above_estimate_agreed"] is True


def test_a_bill_adding_up_beyond_the_money_limit_is_422_and_the_report_still_answers(
        api, make_ticket):
    """Each line within the limit, the lines together far beyond it (10**21 rials): refused,
    naming the line where the sum passes it. Taken, such an estimate made the month's cost
    report fail (its sum overflowed the database's integers)."""
    ticket = make_ticket("diagnosis")
    huge = [{"kind": "part", "description": f"Board {i}", "qty": 10_000,
             "unit_price": 10**13} for i in range(100)]
    before = row_counts()
    body = _expect_error(fire(api, "technician", ticket.id, "quote", lines=huge), 422, "lines")
    assert body["at"]["lines"] == {"line": 1, "field": "unit_price"}
    half = {"kind": "part", "description": "Half", "qty": 1, "unit_price": 5 * 10**12}
    one = {"kind": "labour", "description": "One more rial", "qty": 1, "unit_price": 1}
    body = _expect_error(fire(api, "technician", ticket.id, "quote", lines=[half, half, one]),
                         422, "lines")
    assert body["at"]["lines"] == {"line": 3, "field": "unit_price"}
    assert row_counts() == before
    resp = fire(api, "technician", ticket.id, "quote", lines=[half, half])  # the limit itself
    assert resp.status_code == 200 and resp.get_json()["estimate_total"] == 10**13
    report = api["manager"].get("/api/v1/reports/costs")
    assert report.status_code == 200, report.get_data(as_text=True)
    assert report.get_json()["rows"][0]["estimate_total"] == 10**13


def test_allowed_events_are_none_on_another_branchs_ticket(app, api, make_ticket):
    """A ticket's allowed_events are what its reader may fire: another branch's receptionist
    reads the ticket (a customer asking there) but firing any event is a 403."""
    north, _ = _other_branch_client(app)
    ticket = make_ticket("intake")
    theirs = north.get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert theirs["allowed_events"] == []
    _expect_error(north.post(f"/api/v1/tickets/{ticket.id}/events",
                             json={"event": "cancel", "reason": "x"}), 403)
    assert api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()[
        "allowed_events"] == ["send_to_repair", "cancel"]
    assert api["manager"].get(f"/api/v1/tickets/{ticket.id}").get_json()[
        "allowed_events"] == ["cancel"]


# --- the HTTP headers a client relies on ---------------------------------------------------------

def test_a_new_ticket_and_a_new_visit_answer_with_their_location(api):
    """201 Created says where the new resource is read: the Location a client follows."""
    desk = api["reception"]
    created = desk.post("/api/v1/tickets", json=intake())
    assert created.status_code == 201
    assert created.headers["Location"].endswith(f"/api/v1/tickets/{created.get_json()['id']}")
    assert desk.get(created.headers["Location"]).get_json()["number"] == \
        created.get_json()["number"]
    visit = desk.post("/api/v1/visits", json={"service": "repair"})
    assert visit.status_code == 201
    assert desk.get(visit.headers["Location"]).get_json() == visit.get_json()


@pytest.mark.parametrize("header", [None, "Bearer sd_made-up-token"])
def test_a_401_names_the_bearer_scheme(app, users, header):
    """RFC 6750: a 401 carries WWW-Authenticate, so a client knows to send its token."""
    resp = app.test_client().get("/api/v1/tickets",
                                 headers={"Authorization": header} if header else {})
    _expect_401(resp)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    report = app.test_client().get("/api/v1/reports/costs")
    assert report.status_code == 401
    assert report.headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_405_lists_the_methods_allowed(api):
    """RFC 9110: a 405 carries Allow, the methods the address takes."""
    resp = api["reception"].client.delete("/api/v1/tickets/1", headers=api["reception"].headers)
    _expect_error(resp, 405)
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
    resp = api["reception"].client.put("/api/v1/tickets", headers=api["reception"].headers)
    _expect_error(resp, 405)
    assert {"GET", "POST"} <= set(resp.headers["Allow"].replace(" ", "").split(","))


# --- the ticket list: one branch's tickets, errors by field, the next page ----------------------

def test_the_list_shows_every_branch_unless_one_is_asked_for(app, api, make_ticket):
    """Reading is open to every branch (a customer asking at another one): the list keeps
    showing all of them, and ?branch= (id, code or name, as the reports take it) narrows it."""
    north, branch = _other_branch_client(app)
    here = make_ticket("intake").id
    there = north.post("/api/v1/tickets", json=intake()).get_json()["id"]
    every = api["reception"].get("/api/v1/tickets").get_json()["items"]
    assert {i["id"] for i in every} == {here, there}
    for named in ("A", "N", branch.id, branch.name):
        mine = north.get(f"/api/v1/tickets?branch={named}").get_json()["items"]
        assert [i["id"] for i in mine] == ([here] if named == "A" else [there]), named
    both = api["reception"].get("/api/v1/tickets?branch=N&state=intake").get_json()["items"]
    assert [i["id"] for i in both] == [there]
    _expect_error(api["reception"].get("/api/v1/tickets?branch=Nowhere"), 422, "branch")


@pytest.mark.parametrize("query, field", [("limit=abc", "limit"), ("offset=1.5", "offset"),
                                          ("state=fixed", "state"), ("branch=%00", "branch")])
def test_a_bad_list_filter_is_named_with_its_problem(api, query, field):
    """Like every other 422, fields maps the bad argument to what is wrong with it."""
    body = _expect_error(api["reception"].get(f"/api/v1/tickets?{query}"), 422, field)
    assert list(body["fields"]) == [field]
    if field == "state":
        assert "fixed" in body["fields"]["state"] and "repair" in body["fields"]["state"]


def test_the_list_links_to_its_next_page_while_there_is_one(api, make_ticket):
    ids = sorted((make_ticket("intake").id for _ in range(5)), reverse=True)
    seen, url = [], "/api/v1/tickets?limit=2&state=intake"
    while url:
        resp = api["reception"].get(url)
        assert resp.status_code == 200
        seen += [i["id"] for i in resp.get_json()["items"]]
        link = resp.headers.get("Link")
        url = re.match(r'<([^>]+)>; rel="next"$', link).group(1) if link else None
        assert url is None or "state=intake" in url
    assert seen == ids
    assert "Link" not in api["reception"].get("/api/v1/tickets?limit=5").headers


# --- a field of the wrong type says so, not that it is missing ----------------------------------

@pytest.mark.parametrize("field, sent", [("customer", "Narges"), ("customer", ["Narges"]),
                                         ("device", "Samsung A54"), ("device", 12)])
def test_a_customer_or_device_that_is_not_an_object_is_not_called_missing(api, field, sent):
    """A client that sent the customer as a string is told its shape is wrong, not that it
    left the customer out."""
    missing = _expect_error(api["reception"].post("/api/v1/tickets", json=intake(
        **{field: None})), 422, field)["fields"][field]
    body = _expect_error(api["reception"].post("/api/v1/tickets", json=intake(
        **{field: sent})), 422, field)
    assert body["fields"][field] != missing


@pytest.mark.parametrize("event", [5, ["quote"], {"name": "quote"}, True])
def test_an_event_name_that_is_not_text_is_not_called_missing(api, make_ticket, event):
    ticket = make_ticket("intake")
    missing = _expect_error(api["reception"].post(f"/api/v1/tickets/{ticket.id}/events",
                                                  json={}), 422, "event")["fields"]["event"]
    body = _expect_error(api["reception"].post(f"/api/v1/tickets/{ticket.id}/events",
                                               json={"event": event}), 422, "event")
    assert body["fields"]["event"] != missing


# --- bodies no client sends: too large, nested too deep --------------------------------------------

def test_a_body_nested_too_deep_is_400_not_a_crash(api):
    before = row_counts()
    deep = "[" * 100_000 + "]" * 100_000
    for url in ("/api/v1/tickets", "/api/v1/visits"):
        _expect_error(api["reception"].post(url, data=deep, content_type="application/json"),
                      400)
    assert row_counts() == before


def test_a_body_too_large_is_413(api):
    before = row_counts()
    huge = '{"service": "repair", "padding": "' + "x" * (2 * 1024 * 1024) + '"}'
    assert _expect_error(api["reception"].post("/api/v1/visits", data=huge,
                                               content_type="application/json"),
                         413)["code"] == "too_large"
    assert row_counts() == before
    assert api["reception"].post("/api/v1/visits", json={"service": "repair"}).status_code == 201


def test_nobody_waiting_is_a_bare_204(api):
    resp = api["reception"].post("/api/v1/visits/next", json={"counter": "1"})
    assert resp.status_code == 204
    assert resp.data == b"" and "Content-Type" not in resp.headers


@pytest.mark.parametrize("query", ["from=yesterday", "to=2026.12.01", "from=12/01/2026"])
def test_a_report_date_that_does_not_read_is_refused_as_the_api_refuses_dates(api, make_ticket,
                                                                               query):
    """The reports say what an event's date says: the API's dates are YYYY-MM-DD."""
    ticket = make_ticket("repair")
    event = _expect_error(fire(api, "technician", ticket.id, "wait_parts", part="LCD",
                               expected_date="yesterday"), 422, "expected_date")
    field = query.split("=")[0]
    for report in ("turnaround", "costs", "survey"):
        body = _expect_error(api["manager"].get(f"/api/v1/reports/{report}?{query}"), 422,
                             field)
        assert body["fields"][field] == event["fields"]["expected_date"], report


# --- fields a request does not read -------------------------------------------------------------

def test_a_misspelt_payment_method_is_refused_and_the_device_stays(api, make_ticket):
    """"payment_methd" used to be dropped: the hand-back went through with no method, as if
    the client had not said how it was paid."""
    ticket = make_ticket("ready")
    before = row_counts()
    body = _expect_error(fire(api, "reception", ticket.id, "deliver", amount_paid=14_000_000,
                              payment_methd="card"), 400, "payment_methd")
    assert body["code"] == "invalid" and body["unknown"] == ["payment_methd"]
    assert "payment_method" in body["fields"]["payment_methd"]  # what it may have meant
    assert row_counts() == before
    got = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert (got["state"], got["version"]) == ("ready", ticket.version)


@pytest.mark.parametrize("role, state, url, sent, unknown", [
    ("reception", None, "/api/v1/visits", {"service": "repair", "phnoe": "09121234567"},
     ["phnoe"]),
    ("reception", None, "/api/v1/visits/next", {"counter": "1", "servce": "repair"},
     ["servce"]),
    ("reception", None, "/api/v1/tickets", {**INTAKE, "promised": "2026-12-01",
                                            "customer": {**INTAKE["customer"], "lang": "en"}},
     ["promised", "customer.lang"]),
    ("technician", "diagnosis", "/api/v1/tickets/{id}/events",
     {"event": "quote", "lines": [LINES[0], {**LINES[1], "quantity": 2}]},
     ["lines.2.quantity"]),
    ("reception", "ready", "/api/v1/tickets/{id}/events",
     {"event": "deliver", "amount_paid": 14_000_000,
      "payments": [{"method": "cash", "amount": 4_000_000},
                   {"method": "card", "amonut": 10_000_000}]}, ["payments.2.amonut"]),
    ("technician", "intake", "/api/v1/tickets/{id}/events",
     {"event": "send_to_repair", "technican": "technician1", "note": "x"},
     ["technican", "note"]),
    ("manager", "delivered", "/api/v1/tickets/{id}/refunds",
     {"amount": 1_000_000, "payment_method": "cash", "reason": "r", "methd": "card"},
     ["methd"]),
    ("reception", "repair", "/api/v1/tickets/{id}/loaner",
     {"description": "Samsung A10", "imei": "490154203237518"}, ["imei"]),
    ("reception", "repair", "/api/v1/tickets/{id}/loaner/return", {"returned": True},
     ["returned"]),
    ("manager", None, "/api/v1/reports/survey/responses/1/followup",
     {"status": "done", "note": "called back"}, ["note"]),
], ids=["visit", "next", "intake", "quote-line", "deliver-part", "send-to-repair", "refund",
        "loaner", "loaner-return", "followup"])
def test_every_endpoint_refuses_a_field_it_does_not_read(api, make_ticket, role, state, url,
                                                        sent, unknown):
    ticket_id = make_ticket(state).id if state else None

    def seen():
        if ticket_id is None:
            return None
        got = api["manager"].get(f"/api/v1/tickets/{ticket_id}").get_json()
        return got["state"], got["version"], got["loaner"], got["amount_refunded"]
    before, ticket_before = row_counts(), seen()
    resp = api[role].post(url.format(id=ticket_id), json=sent)
    body = _expect_error(resp, 400)
    assert body["code"] == "invalid"
    assert sorted(body["unknown"]) == sorted(body["fields"]) == sorted(unknown)
    assert row_counts() == before and seen() == ticket_before


def test_every_field_an_event_documents_is_read(app, api, make_ticket):
    """What the OpenAPI document lists for an event is exactly what the API takes for it."""
    from servicedesk.web.api import event_fields
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    for schema in doc["components"]["schemas"]["Event"]["oneOf"]:
        name = schema["properties"]["event"]["const"]
        assert set(schema["properties"]) == set(event_fields(name)), name
        assert schema["additionalProperties"] is False


# --- money in the API's errors ------------------------------------------------------------------

def test_the_amounts_in_an_api_error_are_in_rials_as_sent(api, make_ticket):
    """The API takes rials: "1,400,000 toman due" beside an amount_paid of 14,000,000 rials
    reads as a tenth of it. The shop shows toman (the default), its API errors say rials."""
    ticket = make_ticket("ready")  # due: 14,000,000 rials
    problem = _expect_error(fire(api, "reception", ticket.id, "deliver", amount_paid=13_000_000,
                                 differs_ok=False), 422, "amount_paid")["fields"]["amount_paid"]
    assert "۱۳٬۰۰۰٬۰۰۰ ریال" in problem and "۱٬۰۰۰٬۰۰۰ ریال" in problem
    assert "۱۴٬۰۰۰٬۰۰۰ ریال" in problem and "تومان" not in problem
    split = _expect_error(fire(api, "reception", ticket.id, "deliver", amount_paid=14_000_000,
                               payments=[{"method": "cash", "amount": 4_000_000},
                                         {"method": "card", "amount": 9_000_000}]),
                          422, "payments")["fields"]["payments"]
    assert "۱۳٬۰۰۰٬۰۰۰ ریال" in split and "۱۴٬۰۰۰٬۰۰۰ ریال" in split and "تومان" not in split
    ticket = make_ticket("repair")  # approved: 14,000,000 rials
    above = [{"kind": "part", "description": "Board", "qty": 1, "unit_price": 15_000_000}]
    bill = _expect_error(fire(api, "technician", ticket.id, "finish", lines=above,
                              above_estimate_ok=False), 422, "lines")["fields"]["lines"]
    assert "۱۵٬۰۰۰٬۰۰۰ ریال" in bill and "۱۴٬۰۰۰٬۰۰۰ ریال" in bill and "تومان" not in bill
    # (the SMS an API request writes keep the shop's unit: test_refunds)


# --- ETag and If-Match --------------------------------------------------------------------------

def test_a_ticket_read_again_unchanged_is_304_and_a_change_gives_a_new_etag(api, make_ticket):
    ticket = make_ticket("intake")
    url = f"/api/v1/tickets/{ticket.id}"
    first = api["reception"].get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith(f'"{ticket.version}-')
    same = api["reception"].client.get(url, headers={**api["reception"].headers,
                                                     "If-None-Match": etag})
    assert same.status_code == 304 and same.data == b"" and same.headers["ETag"] == etag
    fire(api, "reception", ticket.id, "send_to_repair")
    moved = api["reception"].client.get(url, headers={**api["reception"].headers,
                                                      "If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["ETag"] != etag
    assert moved.get_json()["state"] == "diagnosis"


def test_if_match_is_the_version_check_of_a_write(api, make_ticket):
    ticket = make_ticket("intake")
    url, version = f"/api/v1/tickets/{ticket.id}", ticket.version
    etag = api["reception"].get(url).headers["ETag"]
    fire(api, "reception", ticket.id, "send_to_repair")  # someone else moved it on
    before = row_counts()
    stale = api["technician"].client.post(
        f"{url}/events", json={"event": "return_unrepaired", "reason": "board"},
        headers={**api["technician"].headers, "If-Match": etag})
    body = _expect_error(stale, 412)
    assert body["code"] == "stale_version" and body["version"] == version + 1
    assert row_counts() == before
    fresh = api["technician"].get(url).headers["ETag"]
    done = api["technician"].client.post(
        f"{url}/events", json={"event": "return_unrepaired", "reason": "board"},
        headers={**api["technician"].headers, "If-Match": fresh})
    assert done.status_code == 200 and done.get_json()["state"] == "ready"
    never = api["reception"].client.post(
        f"{url}/events", json={"event": "deliver", "amount_paid": 0},
        headers={**api["reception"].headers, "If-Match": '"made-up"'})
    assert _expect_error(never, 412)["code"] == "stale_version"


def test_a_failed_sms_says_why_in_the_shops_words_beside_the_raw_error(api, make_ticket):
    """The notifications list gave only the delivery job's English note ("The 'To' number is
    not a valid phone number."); reason says it as reception reads it, in the shop's language
    (or the one asked for), and the raw error stays for the scripts that read it."""
    ticket = make_ticket("intake")
    sms = ticket.notifications[0]
    sms.status, sms.error_code = "failed", "21211"
    sms.error_message = "The 'To' number is not a valid phone number."
    db.session.commit()
    got = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()["notifications"][0]
    assert got["error"] == "The 'To' number is not a valid phone number."
    assert got["error_code"] == "21211"
    assert got["reason"].startswith("این شماره پیامک دریافت نمی‌کند"), got["reason"]
    from flask_babel import refresh
    refresh()  # the test's app context, which every request here shares, kept the language
    got = api["reception"].get(f"/api/v1/tickets/{ticket.id}?lang=en").get_json()
    got = got["notifications"][0]
    assert got["reason"] == ("The number cannot get SMS (wrong, or not a mobile): check it with "
                             "the customer.")
    assert got["error"] == "The 'To' number is not a valid phone number."
    sms.status, sms.error_code, sms.error_message = "sent", None, None
    db.session.commit()
    got = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()["notifications"][0]
    assert got["reason"] is None


def test_an_amount_above_the_limit_is_refused_naming_the_limit_in_rials(api, make_ticket):
    """The API takes rials: its refusal names the limit in rials, with the unit."""
    ticket = make_ticket("diagnosis")
    resp = fire(api, "technician", ticket.id, "quote", version=ticket.version, lines=[
        {"kind": "part", "description": "Board", "qty": 1, "unit_price": 10**13 + 1}])
    assert resp.status_code == 422, resp.get_json()
    said = str(resp.get_json())
    assert "۱۰٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰ ریال" in said, said
