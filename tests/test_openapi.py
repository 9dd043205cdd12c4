"""The API's OpenAPI document describes every endpoint the app serves under /api/v1 (with its
methods), so a client generated from it reaches the whole API, reports included; and what it says
of bodies and answers is what the endpoints do: real responses are checked against it."""
import re
from datetime import date, datetime

import pytest

from servicedesk import reports as r
from servicedesk.extensions import db
from servicedesk.models import Branch

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
          "integer": int, "number": (int, float)}


def _is(value, json_type: str) -> bool:
    """Whether ``value`` is of a JSON Schema type (a bool is no number)."""
    if isinstance(value, bool):
        return json_type == "boolean"
    return isinstance(value, _TYPES[json_type])


def mismatches(value, schema: dict, doc: dict, at: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema``, in the keywords the checks need ($ref, oneOf, type,
    enum, const, date formats, required, properties, items and their counts). Stricter than
    JSON Schema on one point: a key the schema's properties do not list is an error, so every
    field the API reads or writes must be in the document."""
    if "$ref" in schema:
        return mismatches(value, doc["components"]["schemas"][schema["$ref"].split("/")[-1]],
                          doc, at)
    if "oneOf" in schema:
        fits = sum(not mismatches(value, s, doc, at) for s in schema["oneOf"])
        return [] if fits == 1 else [f"{at}: fits {fits} of oneOf"]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if types and not any(_is(value, t) for t in types):
        return [f"{at}: {value!r} is not {'|'.join(types)}"]
    out = []
    if "enum" in schema and value not in schema["enum"] \
            or "const" in schema and value != schema["const"]:
        out.append(f"{at}: {value!r} is not one of the listed values")
    if isinstance(value, str) and schema.get("format") in ("date", "date-time"):
        parse = date.fromisoformat if schema["format"] == "date" else datetime.fromisoformat
        try:
            parse(value)
        except ValueError:
            out.append(f"{at}: {value!r} is not a {schema['format']}")
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        out += [f"{at}.{k}: missing" for k in schema.get("required", ()) if k not in value]
        out += [f"{at}.{k}: not in the document" for k in value if k not in props]
        for k in sorted(value.keys() & props.keys()):
            out += mismatches(value[k], props[k], doc, f"{at}.{k}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            out.append(f"{at}: {len(value)} items")
        for i, item in enumerate(value):
            out += mismatches(item, schema.get("items", {}), doc, f"{at}[{i}]")
    return out


def answer_schema(doc: dict, path: str, method: str, status: int) -> dict:
    return doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"][
        "schema"]


def test_every_api_route_is_in_the_openapi_document(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((re.sub(r"\{[^}]+\}", "{id}", path), method.lower()))
    documented = {(re.sub(r"\{[^}]+\}", "{id}", path), method)
                  for path, item in doc["paths"].items() for method in item}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_the_report_endpoints_document_their_filters(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    turnaround = doc["paths"]["/reports/turnaround"]["get"]
    names = {p["name"] for p in turnaround["parameters"]}
    assert {"from", "to", "branch", "technician", "service_type"} <= names
    ungrouped = answer_schema(doc, "/reports/turnaround", "get", 200)["oneOf"][0]
    assert "queue_wait" in ungrouped["properties"]["stages"]["items"]["properties"]["stage"]["enum"]


def test_the_event_bodies_document_the_optional_additions(app):
    """What the README lists beyond DESIGN section 5 is in the document a client reads."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    bodies = {}

    def collect(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "title" in node and "properties" in node:
                bodies[node["title"]] = node
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)
    collect(doc)
    assert bodies["finish"]["properties"]["above_estimate_ok"]["type"] == "boolean"
    assert "above_estimate_ok" not in bodies["finish"]["required"]
    assert "promised_date" in bodies["wait_parts"]["properties"]
    assert "promised_date" not in bodies["wait_parts"]["required"]
    assert bodies["deliver"]["properties"]["differs_ok"]["type"] == "boolean"
    assert "differs_ok" not in bodies["deliver"]["required"]


def test_deliver_reads_differs_ok(api, make_ticket):
    """differs_ok, in the document, is read: false refuses a payment other than the amount due."""
    ticket = make_ticket("ready")
    resp = api["reception"].post(f"/api/v1/tickets/{ticket.id}/events", json={
        "event": "deliver", "amount_paid": 1, "differs_ok": False})
    assert resp.status_code == 422
    assert set(resp.get_json()["fields"]) == {"amount_paid"}


LINE = {"kind": "part", "description": "Screen", "unit_price": 12_000_000}


@pytest.mark.parametrize("state, role, body, taken", [
    ("diagnosis", "technician", {"event": "quote", "lines": [LINE]}, True),
    ("diagnosis", "technician", {"event": "quote", "lines": []}, False),
    ("repair", "technician", {"event": "finish", "lines": []}, True),
    ("ready", "reception", {"event": "deliver", "amount_paid": 1, "differs_ok": True}, True),
], ids=["quote-line-without-qty", "quote-without-lines", "finish-without-lines",
        "deliver-differs-ok"])
def test_the_event_schema_takes_what_the_api_takes(app, api, make_ticket, state, role, body,
                                                   taken):
    """A body the API takes fits the document's Event schema, and one it refuses (422) does not."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    ticket = make_ticket(state)
    resp = api[role].post(f"/api/v1/tickets/{ticket.id}/events", json=body)
    assert resp.status_code == (200 if taken else 422), resp.get_json()
    found = mismatches(body, doc["components"]["schemas"]["Event"], doc)
    assert (found == []) == taken, found


def test_a_cost_line_without_qty_counts_the_documented_default(app, api, make_ticket):
    """qty may be left out of a line, and then counts as the document's default says."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    ticket = make_ticket("diagnosis")
    resp = api["technician"].post(f"/api/v1/tickets/{ticket.id}/events",
                                  json={"event": "quote", "lines": [LINE]})
    qty = doc["components"]["schemas"]["Line"]["properties"]["qty"]
    assert resp.get_json()["estimate_lines"][0]["qty"] == qty["default"] == 1


def test_a_ticket_and_the_ticket_list_answer_as_documented(app, api, make_ticket):
    """GET /tickets/{id} and GET /tickets carry the fields the document gives them, no more, no
    fewer: a list item is not a whole ticket (no history, notifications, lines or
    allowed events)."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    ticket = make_ticket("ready")
    one = api["reception"].get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert one["history"] and one["notifications"] and one["final_lines"]
    assert mismatches(one, answer_schema(doc, "/tickets/{id}", "get", 200), doc) == []
    listing = api["reception"].get("/api/v1/tickets").get_json()
    assert listing["items"]
    assert mismatches(listing, answer_schema(doc, "/tickets", "get", 200), doc) == []


def test_visits_answer_as_documented(app, api):
    """A number as issued (not called yet), as called to a counter and as looked up."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    desk = api["reception"]
    issued = desk.post("/api/v1/visits", json={"service": "repair"})
    called = desk.post("/api/v1/visits/next", json={"counter": 3})
    shown = desk.get(f"/api/v1/visits/{issued.get_json()['id']}")
    assert called.get_json()["counter"] == "3"
    for resp, path, method in ((issued, "/visits", "post"), (called, "/visits/next", "post"),
                               (shown, "/visits/{id}", "get")):
        schema = answer_schema(doc, path, method, resp.status_code)
        assert mismatches(resp.get_json(), schema, doc) == [], path


@pytest.mark.parametrize("report", ["turnaround", "costs", "takings"])
def test_the_report_groups_are_the_ones_answered_and_as_documented(app, api, make_ticket,
                                                                   report):
    """Every group_by the document lists is answered (in the documented shape), every other
    group is refused; and without group_by too."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    make_ticket("delivered")
    op = doc["paths"][f"/reports/{report}"]["get"]
    listed = [p for p in op["parameters"] if p["name"] == "group_by"][0]["schema"]["enum"]
    assert set(listed) <= set(r.GROUP_LABELS)
    for group in (None, *r.GROUP_LABELS):
        resp = api["manager"].get(f"/api/v1/reports/{report}",
                                  query_string={"group_by": group} if group else {})
        if group is not None and group not in listed:
            assert resp.status_code == 422, group
            continue
        assert resp.status_code == 200, (group, resp.get_json())
        assert mismatches(resp.get_json(), answer_schema(doc, f"/reports/{report}", "get", 200),
                          doc) == [], group


def test_the_dashboard_takes_a_branch_as_the_other_reports_do(app, api, make_ticket):
    """By id, code or name, as documented; a branch that is not there is a 422, not every
    branch counted."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    make_ticket()
    other = Branch(name="North", code="N")
    db.session.add(other)
    db.session.commit()
    param = [p for p in doc["paths"]["/reports/dashboard"]["get"]["parameters"]
             if p["name"] == "branch"][0]
    assert param["schema"] == {"type": "string"} and "code" in param["description"]
    manager = api["manager"]
    for named in (other.id, "N", "North"):
        assert manager.get(f"/api/v1/reports/dashboard?branch={named}").get_json()["open"] == 0
    assert manager.get("/api/v1/reports/dashboard").get_json()["open"] == 1
    for nowhere in ("Nowhere", "%00", "x" * 201):  # a NUL: PostgreSQL's text refuses it
        bad = manager.get(f"/api/v1/reports/dashboard?branch={nowhere}")
        assert bad.status_code == 422 and "branch" in bad.get_json()["fields"], nowhere


def test_the_created_answers_document_their_location(app, api):
    """The 201 of a new ticket and of a new visit documents the Location header they send."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, body in (("/tickets", {"customer": {"name": "Narges", "phone": "09121234567"},
                                     "device": {"kind": "phone", "brand": "Samsung",
                                                "model": "A54"}, "problem": "Screen"}),
                       ("/visits", {"service": "repair"})):
        documented = doc["paths"][path]["post"]["responses"]["201"]["headers"]
        resp = api["reception"].post(f"/api/v1{path}", json=body)
        assert resp.status_code == 201
        assert set(documented) <= set(resp.headers.keys()), path
    assert "WWW-Authenticate" in doc["paths"]["/tickets"]["get"]["responses"]["401"]["headers"]


def test_the_ticket_list_documents_its_filters_and_next_link(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/tickets"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"state", "branch", "limit", "offset"}
    assert "Link" in op["responses"]["200"]["headers"]


def test_the_error_bodies_are_the_documented_error(app, api, make_ticket):
    """Each kind of refusal answers the document's Error, nothing it does not list: a stale
    version's 409 names the current version, a wrong state's the state and allowed events."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    error = doc["components"]["schemas"]["Error"]
    ticket = make_ticket("diagnosis")
    events = f"/api/v1/tickets/{ticket.id}/events"
    answers = [
        api["reception"].post("/api/v1/tickets", data="{", content_type="application/json"),
        app.test_client().get("/api/v1/tickets"),
        api["reception"].post(events, json={"event": "quote", "lines": []}),
        api["reception"].get("/api/v1/tickets/999999"),
        api["technician"].post(events, json={"event": "resume"}),
        api["technician"].post(events, json={"event": "quote", "lines": [LINE], "version": 1}),
        api["technician"].post(events, json={"event": "quote", "lines": [{"kind": "x"}]}),
    ]
    assert [a.status_code for a in answers] == [400, 401, 403, 404, 409, 409, 422]
    assert answers[5].get_json()["version"] == ticket.version
    for resp in answers:
        assert mismatches(resp.get_json(), error, doc) == [], resp.get_json()
    # the kind of each, for a client that cannot match the translated text
    assert [a.get_json()["code"] for a in answers] == [
        "bad_request", "unauthorized", "forbidden", "not_found", "transition_not_allowed",
        "stale_version", "invalid"]


def test_every_request_body_says_it_takes_no_other_field(app):
    """The API refuses a field a body's schema does not list (400, code invalid): every object
    of every request body says so, down to the cost lines and the payment's parts."""
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    open_objects = []

    def walk(node, at):
        if isinstance(node, dict):
            if "$ref" in node:
                walk(doc["components"]["schemas"][node["$ref"].split("/")[-1]], node["$ref"])
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(at)
            for key, value in node.items():
                walk(value, f"{at}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{at}[{i}]")
    bodies = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                bodies += 1
                walk(operation["requestBody"], f"{method} {path}")
                assert "400" in operation["responses"], (method, path)
    assert bodies >= 8 and open_objects == []
    assert "unknown" in doc["components"]["schemas"]["Error"]["properties"]


def test_the_document_says_etag_and_if_match(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    get = doc["paths"]["/tickets/{id}"]["get"]
    assert "ETag" in get["responses"]["200"]["headers"] and "304" in get["responses"]
    assert "If-None-Match" in {p["name"] for p in get["parameters"]}
    events = doc["paths"]["/tickets/{id}/events"]["post"]
    assert "If-Match" in {p["name"] for p in events["parameters"]}
    assert "412" in events["responses"]
