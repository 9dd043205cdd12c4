"""The API's OpenAPI document describes every endpoint the app serves under /api/v1 (with its
methods), so a client generated from it reaches the whole API, reports included."""
import re


def test_every_api_route_is_in_the_openapi_document(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
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
    stage = (turnaround["responses"]["200"]["content"]["application/json"]["schema"]
             ["properties"]["stages"]["items"])
    assert "queue_wait" in stage["properties"]["stage"]["enum"]
    costs = doc["paths"]["/reports/costs"]["get"]
    group_by = [p for p in costs["parameters"] if p["name"] == "group_by"][0]
    assert set(group_by["schema"]["enum"]) == {"technician", "month", "jalali_month",
                                               "service_type"}


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
