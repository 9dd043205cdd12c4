"""The OpenAPI 3.1 document of /api/v1, built from the lifecycle table so the two never drift."""
from .. import lifecycle
from ..visits import SERVICES
from . import api_reports

_LINE = {"type": "object", "required": ["kind", "description", "qty", "unit_price"],
         "properties": {"kind": {"enum": ["part", "labour"]},
                        "description": {"type": "string", "maxLength": 200},
                        "qty": {"type": "integer", "minimum": 1},
                        "unit_price": {"type": "integer", "minimum": 0,
                                       "description": "rials"}}}
_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer", "minimum": 0},
          "money": {"type": "integer", "minimum": 0, "description": "rials"},
          "date": {"type": "string", "format": "date"},
          "lines": {"type": "array", "items": _LINE},
          "phone|in_person": {"enum": ["phone", "in_person"]}}
_ERROR = {"type": "object", "required": ["error"],
          "properties": {"error": {"type": "string"}, "fields": {"type": "object"},
                         "at": {"type": "object", "description": "for a field that is a "
                                "list (lines): {field: {line (from 1), field}} of the problem"},
                         "state": {"type": "string"},
                         "allowed": {"type": "array", "items": {"type": "string"}}}}


# Event data the forms do not show as fields of their own (the ticket page has a box for it).
_EXTRA_DATA = {"finish": {"above_estimate_ok": {
    "type": "boolean", "description": "false: a bill above what the customer agreed to (the "
    "approved estimate, or the amount pre-approved at intake if more) is refused with 422; "
    "true: the customer agreed, recorded on the event; absent: taken as sent"}}}


def _event_schema(rule) -> dict:
    props = {"event": {"const": rule.name},
             "version": {"type": "integer", "description": "the ticket version you saw; a "
                         "different current version gives 409"}}
    required = ["event"]
    for name, kind in rule.fields.items():
        optional = kind.endswith("?")
        props[name] = _TYPES[kind.rstrip("?")]
        if not optional:
            required.append(name)
    props.update(_EXTRA_DATA.get(rule.name, {}))
    return {"type": "object", "title": rule.name, "required": required, "properties": props,
            "description": f"{', '.join(rule.sources)} -> {rule.dest}; fired by "
                           f"{', '.join(sorted(rule.roles))}"}


def _resp(desc: str, schema: str | None = None) -> dict:
    out = {"description": desc}
    if schema:
        out["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return out


def openapi_document() -> dict:
    api_events = [r for r in lifecycle.EVENTS.values()
                  if r.name not in ("admit", "close") and r.roles & set(lifecycle.STAFF_ROLES)]
    errors = {str(c): _resp(d, "Error") for c, d in (
        (400, "malformed JSON"), (401, "missing or bad token"), (403, "role may not"),
        (404, "not found"), (409, "not allowed in this state, or changed meanwhile"),
        (422, "invalid data"))}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Servicedesk API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Line": _LINE,
                "Visit": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "number": {"type": "integer"},
                    "label": {"type": "string"}, "status": {"enum": ["waiting", "called",
                                                                     "served", "no_show"]},
                    "issued_at": {"type": "string", "format": "date-time"},
                    "ahead": {"type": "integer"}}},
                "Ticket": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "number": {"type": "string"},
                    "state": {"enum": list(lifecycle.TICKET_STATES)},
                    "version": {"type": "integer"},
                    "tracking_url": {"type": "string", "format": "uri"},
                    "customer": {"type": "object"}, "device": {"type": "object"},
                    "technician": {"type": ["string", "null"]},
                    "estimate_total": {"type": ["integer", "null"]},
                    "final_total": {"type": ["integer", "null"]},
                    "history": {"type": "array", "items": {"type": "object", "properties": {
                        "event": {"type": "string"}, "from": {"type": ["string", "null"]},
                        "to": {"type": "string"}, "actor": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"}}}},
                    "notifications": {"type": "array", "items": {"type": "object", "properties": {
                        "event": {"type": "string"}, "to": {"type": "string"},
                        "status": {"type": "string"}, "body": {"type": "string"}}}}}},
                "NewTicket": {"type": "object", "required": ["customer", "device", "problem"],
                              "properties": {
                    "visit_id": {"type": "integer"},
                    "customer": {"type": "object", "required": ["name", "phone"], "properties": {
                        "name": {"type": "string"},
                        "phone": {"type": "string", "description": "a mobile; 0912.. and "
                                  "Persian digits accepted; stored as E.164"},
                        "language": {"enum": ["fa", "en"]}}},
                    "device": {"type": "object", "required": ["kind", "brand", "model"],
                               "properties": {"kind": {"type": "string"},
                                              "brand": {"type": "string"},
                                              "model": {"type": "string"},
                                              "serial": {"type": "string", "description":
                                                         "serial, or IMEI (check digit verified)"},
                                              "colour": {"type": "string"}}},
                    "problem": {"type": "string"}, "service_type": {"type": "string"},
                    "accessories": {"type": "string"}, "condition": {"type": "string"},
                    "promised_date": {"type": "string", "format": "date"},
                    "pre_approved_amount": {"type": "integer", "minimum": 0}}},
                "Event": {"oneOf": [_event_schema(r) for r in api_events]},
            },
        },
        "paths": {
            "/visits": {"post": {
                "summary": "Take a queue number",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["service"],
                    "properties": {"service": {"enum": list(SERVICES)},
                                   "phone": {"type": "string", "description":
                                             "the customer's mobile (optional): the queue "
                                             "SMS follow the number"}}}}}},
                "responses": {"201": _resp("the visit", "Visit"), **errors}}},
            "/visits/next": {"post": {
                "summary": "Call the next waiting number to a counter",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["counter"],
                    "properties": {"counter": {"type": ["string", "integer"]},
                                   "service": {"enum": list(SERVICES)}}}}}},
                "responses": {"200": _resp("the visit now called", "Visit"),
                              "204": {"description": "nobody waits"}, **errors}}},
            "/visits/{id}": {"get": {
                "summary": "One queue number with the people ahead of it",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": _resp("the visit", "Visit"), **errors}}},
            "/tickets": {
                "post": {"summary": "Admit a device (the ticket starts in intake)",
                         "requestBody": {"content": {"application/json": {"schema": {
                             "$ref": "#/components/schemas/NewTicket"}}}},
                         "responses": {"201": _resp("the ticket", "Ticket"), **errors}},
                "get": {"summary": "List tickets",
                        "parameters": [{"name": "state", "in": "query",
                                        "schema": {"type": "string"}},
                                       {"name": "limit", "in": "query",
                                        "schema": {"type": "integer"}},
                                       {"name": "offset", "in": "query",
                                        "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "{items: [Ticket]}"}, **errors}}},
            "/tickets/{id}": {"get": {
                "summary": "One ticket with its history and notifications",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": _resp("the ticket", "Ticket"), **errors}}},
            "/tickets/{id}/events": {"post": {
                "summary": "Fire a lifecycle event",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Event"}}}},
                "responses": {"200": _resp("the ticket", "Ticket"), **errors}}},
            **api_reports.openapi_paths(),
        },
    }
