"""The OpenAPI 3.1 document of /api/v1, built from the lifecycle table so the two never drift."""
import copy

from .. import lifecycle
from ..errors import ERROR_CODES
from ..models import LOANER_CONDITIONS
from ..validation import MAX_ID, MAX_MONEY
from ..visits import SERVICES
from . import api_reports

_LINE = {"type": "object", "required": ["kind", "description", "unit_price"],
         "properties": {"kind": {"enum": ["part", "labour"]},
                        "description": {"type": "string", "maxLength": 200},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 10_000,
                                "default": 1},
                        "unit_price": {"type": "integer", "minimum": 0, "maximum": MAX_MONEY,
                                       "description": "rials; the lines (qty x unit_price) "
                                                      f"add up to at most {MAX_MONEY}"}}}
_TYPES = {"string": {"type": "string"}, "integer": {"type": "integer", "minimum": 0},
          "money": {"type": "integer", "minimum": 0, "maximum": MAX_MONEY,
                    "description": "rials"},
          "date": {"type": "string", "format": "date"},
          "lines": {"type": "array", "items": _LINE, "maxItems": 100},
          "phone|in_person": {"enum": ["phone", "in_person"]},
          "alternative": {"type": "integer", "minimum": 1, "description": "the id of the "
                          "estimate's alternative the customer chose (estimate_alternatives of "
                          "GET /tickets/{id}): needed, and only allowed, when the estimate "
                          "offers alternatives (422 on alternative otherwise); its lines join "
                          "the estimate's"},
          "payments": {
              "type": "array", "minItems": 2, "maxItems": len(lifecycle.PAYMENT_METHODS),
              "description": "a payment split between methods (500,000 in cash and 250,000 "
                             "by card): each method once, the amounts adding up to "
                             "amount_paid; instead of payment_method. A bad part is named "
                             "in `at` (line: the part, from 1; field)",
              "items": {"type": "object", "required": ["method", "amount"],
                        "properties": {"method": {"enum": list(lifecycle.PAYMENT_METHODS)},
                                       "amount": {"type": "integer", "minimum": 1,
                                                  "maximum": MAX_MONEY,
                                                  "description": "rials"}}}}}
_INT, _STR = {"type": "integer"}, {"type": "string"}
# An estimate's alternatives the customer chooses between (an original display or a copy).
_ALTERNATIVES = {
    "type": "array", "maxItems": 4, "description": "optional: two to four alternatives the "
    "customer chooses between (an original part or a copy one), each with its own lines; "
    "lines then holds the lines common to them all (may be empty). The approval names the "
    "one chosen (alternative). An empty list: none. A bad one is named in `at` "
    "(alternative: from 1, line, field)",
    "items": {"type": "object", "required": ["name", "lines"], "properties": {
        "name": {"type": "string", "maxLength": 80, "description": "what the customer "
                 "chooses, in their words: each alternative's own"},
        "lines": {"type": "array", "items": _LINE, "minItems": 1, "maxItems": 100}}}}
_ALTERNATIVE_OUT = {"type": "object", "required": ["id", "name", "lines", "total"],
                    "properties": {
    "id": {"type": "integer", "description": "what an approval names (alternative)"},
    "name": _STR,
    "lines": {"type": "array", "items": _LINE},
    "total": {"type": "integer", "description": "rials: the estimate with this alternative "
              "(the common lines and its own)"}}}
_INT_OR_NULL, _STR_OR_NULL = {"type": ["integer", "null"]}, {"type": ["string", "null"]}
_DATE_OR_NULL = {"type": ["string", "null"], "format": "date"}
_DATE_TIME = {"type": "string", "format": "date-time"}
_ERROR = {"type": "object", "required": ["error", "code"],
          "properties": {"error": {"type": "string", "description": "what is wrong, in the "
                                   "user's language (Accept-Language); amounts in it are "
                                   "in rials, as the API takes them"},
                         "code": {"type": "string", "enum": list(ERROR_CODES),
                                  "description": "the kind of error, for a client to tell "
                                  "them apart: invalid (422, see fields; 400 for fields "
                                  "the endpoint does not read, see unknown, or a paging "
                                  "argument out of range, see ranges), "
                                  "transition_not_allowed (409, see state and allowed), "
                                  "stale_version (409, see version), conflict (409: another "
                                  "change came first or the thing is taken), forbidden, "
                                  "not_found, unauthorized, method_not_allowed, too_large, "
                                  "rate_limited, bad_request, server_error"},
                         "fields": {"type": "object", "description": "invalid: each bad "
                                    "field (dotted for a nested one: customer.phone, "
                                    "lines.2.qty with a list's items from 1) and what is wrong "
                                    "with it; conflict: the field whose value is taken "
                                    "(loaner_id for a loaner phone out on another ticket)"},
                         "unknown": {"type": "array", "items": {"type": "string"},
                                     "description": "400 invalid: the fields of the body "
                                     "that the endpoint does not read (also in fields); "
                                     "nothing was done"},
                         "at": {"type": "object", "description": "for a field that is a "
                                "list (lines): {field: {line (from 1), field}} of the problem"},
                         "state": {"type": "string", "description": "409: the ticket's "
                                   "state now"},
                         "loaner": {"type": "object", "description": "the loaner phone "
                                    "still out, when a hand-back or a cancel is refused for "
                                    "it: {id, description, serial}"},
                         "allowed": {"type": "array", "items": {"type": "string"},
                                     "description": "409 for an event its state does not "
                                                    "allow: the events it allows"},
                         "version": {"type": "integer", "description": "409 for a version "
                                     "that is not the ticket's: its version now"},
                         "ranges": {"type": "object", "description": "400 invalid for "
                                    "a paging argument out of range: {name: {minimum, "
                                    "maximum}}"},
                         "visit_status": {"enum": ["waiting", "called", "served", "no_show"],
                                          "description": "409 for a queue number that "
                                          "cannot be admitted: its status (no_show: marked as "
                                          "not present; the desk calls it again, then it can "
                                          "be)"}}}


def _record(props: dict) -> dict:
    """An object of the API's answers: it always carries every one of ``props`` (null where
    there is no value)."""
    return {"type": "object", "required": list(props), "properties": props}


_LOANER_RETURNED = {
    "type": "boolean", "description": "true: the loaner phone out on the ticket came back; its "
    "return is recorded with the event (all or nothing). Without it, the event is refused with "
    "422 on loaner_returned while a loaner is out"}
# A loaner phone lent while the ticket is open (null: none out).
_LOANER = {"type": ["object", "null"], "required": [
    "id", "loaner_id", "description", "serial", "condition", "lent_at", "lent_by"], "properties": {
    "id": _INT, "loaner_id": {"type": ["integer", "null"], "description": "the branch's own "
                              "loaner phone lent (its stock list); null: typed as text"},
    "description": _STR, "serial": _STR_OR_NULL, "condition": _STR_OR_NULL,
    "lent_at": {"type": "string", "format": "date-time"},
    "lent_by": {"type": "string", "description": "user name"}}}
_VERSION = {"type": "integer", "description": "the ticket's version you saw: 409 if it changed"}
# How a loaner phone came back (a phone of the branch's list that came back damaged is not lent
# again until a manager marks it fine).
_CONDITION_BACK = {"enum": list(LOANER_CONDITIONS), "description": "how the loaner phone came "
                   "back; optional (unsaid: the phone stays as it was)"}
_NOTE_BACK = {"type": "string", "maxLength": 500,
              "description": "what is damaged: needed with condition damaged (422 on note)"}
_LOANER_BACK = {"loaner_condition": {**_CONDITION_BACK, "description": "with loaner_returned: "
                                     + _CONDITION_BACK["description"]},
                "loaner_note": {**_NOTE_BACK, "description": "with loaner_condition damaged: "
                                "what is damaged (422 on loaner_note without it)"}}

# The customer's signature drawn on a screen (servicedesk.signatures).
_SIGNATURE = {"type": "string", "maxLength": 270_000, "description": "the customer's "
              "signature drawn on a screen: a PNG as a data URL (data:image/png;base64,...) "
              "or bare base64, at most 200 KB and 2400 x 1200 pixels (422 on signature "
              "otherwise). Kept with the ticket, printed on the slip; its SHA-256 goes into "
              "the event's data (signature_sha256)"}

# The paper slip signed instead of the screen (servicedesk.signatures.PAPER_FIELD).
_ON_PAPER = {"type": "string", "minLength": 1, "maxLength": 200, "description": "the customer "
             "signed the paper slip instead of the screen, and why (no tablet that day, a "
             "customer who cannot draw): a short reason, stripped (empty: 422 on "
             "signed_on_paper_reason; with signature too: 422 on signed_on_paper_reason). "
             "What the shop's signature_required setting accepts instead of signature; taken "
             "and recorded with the setting off too. The event's data records it (the audit "
             "chain, with who fired the event); the slip keeps its blank signature line"}

# Event data the forms do not show as fields of their own (the ticket page and the delivery
# desk have a box for it), and a field an event checks more narrowly than its kind.
_EXTRA_DATA = {
    "quote": {"lines": {**_TYPES["lines"], "minItems": 1,
                        "description": "at least one line (a final bill may have none); with "
                                       "alternatives, the lines common to them all (none "
                                       "allowed)"},
              "alternatives": _ALTERNATIVES},
    "finish": {"above_estimate_ok": {
        "type": "boolean", "description": "false: a bill above what the customer agreed to "
        "(the approved estimate, or the amount pre-approved at intake if more) is refused with "
        "422; true: the customer agreed, recorded on the event; absent: taken as sent"},
        "above_estimate_channel": {"enum": ["phone", "in_person"], "description": "how the "
                                   "customer agreed to a bill above the estimate (recorded "
                                   "with above_estimate_ok: true)"}},
    "deliver": {"differs_ok": {
        "type": "boolean", "description": "false: an amount_paid other than the amount due "
        "(a figure mistyped) is refused with 422 on amount_paid; true or absent: taken as "
        "sent"},
        "payment_method": {"enum": list(lifecycle.PAYMENT_METHODS),
                           "description": "how it was paid: cash, the card reader, or a "
                                          "card-to-card transfer (a payment split between "
                                          "them: payments)"},
        "method_needed": {
            "type": "boolean", "description": "true: an amount_paid above zero sent without "
            "payment_method or payments is refused with 422 on payment_method (the delivery "
            "desk asks how it was paid); false or absent: taken as sent"},
        "loaner_returned": _LOANER_RETURNED, **_LOANER_BACK,
        # who collects the device (servicedesk.pickup)
        "pickup_code": {
            "type": "string", "maxLength": 20, "description": "the pickup code printed on the "
            "intake receipt (any digits): confirms the collector. Required, or sms_code, or a "
            "manager's collector-override first, when the shop's setting asks to confirm the "
            "collector (422 on pickup_code when none is given); a wrong one is refused with "
            "422, changes nothing but the count of wrong tries, and after 5 the codes are "
            "locked until a manager's override. The event's data records how the collector "
            "was confirmed: collector_check {method: code|sms_code|override, reason?, by?}"},
        "sms_code": {
            "type": "string", "maxLength": 20, "description": "instead of pickup_code: the "
            "one-time code texted to the owner by POST /tickets/{id}/pickup-sms (holds 10 "
            "minutes; 422 when wrong or expired)"},
        "signature": _SIGNATURE, "signed_on_paper_reason": _ON_PAPER},
    "cancel": {"loaner_returned": _LOANER_RETURNED, **_LOANER_BACK}}

# A ticket as GET /tickets lists it; GET /tickets/{id} and the events add the rest.
_TICKET_SUMMARY = {
    "id": _INT, "number": _STR, "state": {"enum": list(lifecycle.TICKET_STATES)},
    "version": _INT, "tracking_url": {"type": "string", "format": "uri"},
    "customer": _record({"id": _INT, "name": _STR,
                         "phone": {"type": "string", "description": "E.164"},
                         "language": _STR}),
    "device": _record({"kind": _STR, "brand": _STR, "model": _STR, "serial": _STR_OR_NULL,
                       "colour": _STR_OR_NULL}),
    "problem": _STR, "service_type": _STR, "technician": _STR_OR_NULL,
    "promised_date": _DATE_OR_NULL,
    "estimate_total": {"type": ["integer", "null"], "description": "rials: the estimate's "
                       "total (null before one); while the customer has not chosen between "
                       "its alternatives, the lowest of them (as estimate_total_min)"},
    "estimate_total_min": {"type": ["integer", "null"], "description": "rials: the least "
                           "the estimate asks: its lowest alternative while none is chosen, "
                           "else its total (null before an estimate)"},
    "estimate_total_max": {"type": ["integer", "null"], "description": "rials: the most the "
                           "estimate asks: its highest alternative while none is chosen, else "
                           "its total (null before an estimate)"},
    "final_total": _INT_OR_NULL, "amount_paid": _INT_OR_NULL,
    "amount_refunded": {"type": "integer", "description": "given back after the hand-back, "
                        "in all (rials)"},
    "loaner": _LOANER,
    "created_at": _DATE_TIME, "updated_at": _DATE_TIME}
_BILLED_LINE = _record({**_LINE["properties"], "total": _TYPES["money"]})


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


def _resp(desc: str, schema: str | None = None, headers: dict | None = None) -> dict:
    out = {"description": desc}
    if schema:
        out["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    if headers:
        out["headers"] = headers
    return out


def _location(of: str) -> dict:
    return {"Location": {"description": f"where the new {of} is read (GET)",
                         "schema": {"type": "string", "format": "uri-reference"}}}


def openapi_document() -> dict:
    api_events = [r for r in lifecycle.EVENTS.values()
                  if r.name not in ("admit", "close") and r.roles & set(lifecycle.STAFF_ROLES)]
    errors = {str(c): _resp(d, "Error") for c, d in (
        (400, "malformed JSON (code bad_request); a field the endpoint does not read "
              "(code invalid, unknown naming each; nothing was done); a paging argument "
              "out of range (code invalid, ranges)"), (403, "role may not"),
        (404, "not found"), (409, "not allowed in this state, or changed meanwhile"),
        (422, "invalid data"))}
    errors["401"] = _resp("missing or bad token", "Error", {"WWW-Authenticate": {
        "description": "Bearer", "schema": {"type": "string"}}})
    if_match = {"name": "If-Match", "in": "header", "schema": {"type": "string"},
                "description": "the ETag of GET /tickets/{id}: the version check, as the "
                               "body's version (412 when the ticket changed since)"}
    precondition = _resp("If-Match names another version than the ticket's (code "
                         "stale_version, version the ticket's now)", "Error")
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Servicedesk API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Line": _LINE,
                "Visit": _record({
                    "id": _INT, "number": _INT, "label": _STR, "service": {"enum": list(SERVICES)},
                    "status": {"enum": ["waiting", "called", "served", "no_show"]},
                    "issued_at": _DATE_TIME,
                    "called_at": {"type": ["string", "null"], "format": "date-time"},
                    "counter": {"type": ["string", "null"], "description": "as called (a "
                                "number sent is kept as text)"},
                    "ahead": _INT}),
                "TicketSummary": _record(_TICKET_SUMMARY),
                "Ticket": _record({
                    **_TICKET_SUMMARY,
                    "allowed_events": {"type": "array", "description": "the events you may "
                                       "fire now (your role's; none on another branch's ticket "
                                       "when you work at one branch)", "items": {"enum": [r.name for r in
                                                                          api_events]}},
                    "estimate_lines": {"type": "array", "items": _BILLED_LINE},
                    "estimate_alternatives": {
                        "type": "array", "items": _ALTERNATIVE_OUT, "description": "the "
                        "alternatives the current estimate offers (none: an estimate "
                        "without); estimate_lines holds the common lines, and once one is "
                        "approved, its lines too"},
                    "chosen_alternative": {
                        "type": ["object", "null"], "required": ["id", "name"],
                        "properties": {"id": _INT, "name": _STR},
                        "description": "the alternative approved (null: none yet, or an "
                                       "estimate without alternatives)"},
                    "final_lines": {"type": "array", "items": _BILLED_LINE},
                    "signatures": {
                        "type": "object", "description": "the customer's signatures drawn on "
                        "the counter's screen, by moment (intake, delivery; none: signed on "
                        "paper, or not at all)", "additionalProperties": _record({
                            "signed_at": _DATE_TIME,
                            "sha256": {"type": "string", "description": "of the PNG, as its "
                                       "event's data records it (the audit chain)"}})},
                    "signed_on_paper": {
                        "type": "object", "description": "the moments (intake, delivery) the "
                        "customer signed the paper slip instead of the screen, with why "
                        "(signed_on_paper_reason)", "additionalProperties": _record({
                            "at": _DATE_TIME, "actor": _STR, "reason": _STR})},
                    "history": {"type": "array", "items": _record({
                        "event": _STR, "from": _STR_OR_NULL, "to": _STR, "actor": _STR,
                        "at": _DATE_TIME, "data": {"type": "object"}})},
                    "notifications": {"type": "array", "items": _record({
                        "id": _INT, "event": _STR, "to": _STR, "status": _STR, "body": _STR,
                        "segments": _INT, "attempts": _INT, "error_code": _STR_OR_NULL,
                        "error": {**_STR_OR_NULL, "description": "the delivery job's own note, "
                                  "in English (as logged): what the provider or the job said"},
                        "reason": {**_STR_OR_NULL, "description": "why it was not sent or did "
                                   "not arrive and what to do, in your language (the words "
                                   "reception reads beside the SMS); null for an SMS on its "
                                   "way or delivered"}})}}),
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
                    "pre_approved_amount": {"type": "integer", "minimum": 0,
                                            "maximum": MAX_MONEY, "description": "rials"},
                    "loaner_id": {"type": "integer", "description": "one of the branch's own "
                                  "loaner phones (its stock list), lent to the customer with "
                                  "the admit, in its transaction: one that may not be lent "
                                  "(retired, damaged, another branch's: 422 on loaner_id; out: "
                                  "409) admits nothing"},
                    "signature": _SIGNATURE, "signed_on_paper_reason": _ON_PAPER}},
                "Event": {"oneOf": [_event_schema(r) for r in api_events]},
            },
        },
        "paths": {
            "/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "the OpenAPI document", "content": {
                    "application/json": {"schema": {"type": "object"}}}}}}},
            "/visits": {"post": {
                "summary": "Take a queue number",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["service"],
                    "properties": {"service": {"enum": list(SERVICES)},
                                   "phone": {"type": "string", "description":
                                             "the customer's mobile (optional): the queue "
                                             "SMS follow the number"}}}}}},
                "responses": {"201": _resp("the visit", "Visit", _location("visit")),
                              **errors}}},
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
                         "parameters": [{"name": "Idempotency-Key", "in": "header",
                                         "schema": {"type": "string", "maxLength": 50},
                                         "description": "a retry with the same key admits "
                                                        "the device once (200)"}],
                         "requestBody": {"content": {"application/json": {"schema": {
                             "$ref": "#/components/schemas/NewTicket"}}}},
                         "responses": {"201": _resp("the ticket", "Ticket",
                                                    _location("ticket")),
                                       "200": _resp("the ticket an earlier request with this "
                                                    "Idempotency-Key made", "Ticket"),
                                       **errors}},
                "get": {"summary": "List tickets",
                        "parameters": [{"name": "state", "in": "query",
                                        "schema": {"type": "string"},
                                        "description": "one state, or several separated by "
                                                       "commas: " + ",".join(
                                                           lifecycle.TICKET_STATES)},
                                       {"name": "branch", "in": "query",
                                        "schema": {"type": "string"},
                                        "description": "id, code or name (default: every "
                                                       "branch)"},
                                       {"name": "limit", "in": "query",
                                        "schema": {"type": "integer", "minimum": 1,
                                                   "maximum": 500, "default": 100},
                                        "description": "out of range: 400, code invalid, "
                                                       "ranges naming the range"},
                                       {"name": "offset", "in": "query",
                                        "schema": {"type": "integer", "minimum": 0,
                                                   "maximum": MAX_ID, "default": 0},
                                        "description": "out of range: 400, as limit; past "
                                                       "the last ticket: no items"}],
                        "responses": {"200": {
                            "description": "newest first",
                            "headers": {"Link": {
                                "description": '<URL>; rel="next": the next page, while '
                                               'there is one',
                                "schema": {"type": "string"}}},
                            "content": {"application/json": {
                                "schema": _record({"items": {"type": "array", "items": {
                                    "$ref": "#/components/schemas/TicketSummary"}},
                                                   "limit": _INT, "offset": _INT})}}},
                            **errors}}},
            "/tickets/{id}": {"get": {
                "summary": "One ticket with its history and notifications",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}},
                               {"name": "If-None-Match", "in": "header",
                                "schema": {"type": "string"},
                                "description": "the ETag of an earlier answer: 304 while "
                                               "nothing of it changed"}],
                "responses": {"200": _resp("the ticket", "Ticket", {"ETag": {
                    "description": "\"VERSION-DIGEST\": the ticket's version, then a digest "
                                   "of this answer; If-Match on a write checks the version",
                    "schema": {"type": "string"}}}),
                              "304": {"description": "not modified since the If-None-Match "
                                                     "ETag"}, **errors}}},
            "/tickets/{id}/events": {"post": {
                "summary": "Fire a lifecycle event",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Event"}}}},
                "responses": {"200": _resp("the ticket", "Ticket"), **errors}}},
            "/tickets/{id}/refunds": {"post": {
                "summary": "Give money back after the hand-back (manager; the customer gets "
                           "an SMS)",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["amount", "payment_method", "reason"],
                    "properties": {
                        "amount": {"type": "integer", "minimum": 1, "description": "rials; at "
                                   "most what was paid and not given back yet"},
                        "payment_method": {"enum": list(lifecycle.PAYMENT_METHODS),
                                           "description": "how it was given back"},
                        "reason": {"type": "string", "maxLength": 500},
                        "version": {"type": "integer", "description": "the ticket's version "
                                    "you saw: 409 if it changed"}}}}}},
                "responses": {"200": _resp("the ticket, the refund the last entry of its "
                                           "history (a record of the ticket's, with no address "
                                           "of its own)", "Ticket"), **errors}}},
            "/tickets/{id}/collector-override": {"post": {
                "summary": "Confirm who collects a ready device without a code (manager): an "
                           "ID card seen, the receipt lost. The next deliver records it as "
                           "collector_check {method: override, reason, by}; codes locked by "
                           "wrong tries are unlocked",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"],
                    "properties": {"reason": {"type": "string", "maxLength": 500}}}}}},
                "responses": {"200": _resp("the ticket, whose history ends with the "
                                           "collector_override record", "Ticket"),
                              **errors}}},
            "/tickets/{id}/pickup-sms": {"post": {
                "summary": "Text a one-time code to the owner's mobile, for deliver's sms_code "
                           "(reception, manager; one a minute, 409 otherwise; 409 while the "
                           "codes are locked or when the owner receives no SMS)",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {}}}}},
                "responses": {"200": _resp("the ticket, whose history ends with the "
                                           "collector_code_sent record (the code is in the "
                                           "SMS only)", "Ticket"), **errors}}},
            "/tickets/{id}/tracking-link": {"post": {
                "summary": "Replace the customer's link (reception, manager): a forwarded SMS, "
                           "a lost phone, a receipt left behind. The ticket gets a new token at "
                           "once; the old link's pages answer 410 and its forms change nothing. "
                           "The printed receipt's QR code leads to the old link: print it again",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "text_customer": {"type": "boolean", "default": True,
                                          "description": "text the new link to the customer "
                                          "(not sent when they asked for no SMS or the shop "
                                          "switched that SMS off)"},
                        "version": _VERSION}}}}},
                "responses": {"200": _resp("the ticket: tracking_url is the new link; its "
                                           "history ends with the replace_link record, whose "
                                           "data.sms is texted, not_asked, opted_out or "
                                           "switched_off (neither link is in it)", "Ticket"),
                              **errors}}},
            "/tickets/{id}/loaner": {"post": {
                "summary": "Lend the customer a loaner phone while the ticket is open "
                           "(reception, manager; one out at a time)",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object",
                    "anyOf": [{"required": ["description"]}, {"required": ["loaner_id"]}],
                    "properties": {
                        "loaner_id": {"type": "integer", "description": "one of the "
                                      "ticket's branch's own loaner phones (its stock list), "
                                      "free and fine (422 on loaner_id for a retired, damaged "
                                      "or other branch's one; 409 when it is out); then "
                                      "description and serial come from the list"},
                        "description": {"type": "string", "maxLength": 120,
                                        "description": "what is lent: \"Samsung A10, white\" "
                                        "(without loaner_id)"},
                        "serial": {"type": "string", "maxLength": 40,
                                   "description": "its IMEI or serial (without loaner_id)"},
                        "condition": {"type": "string", "maxLength": 500,
                                      "description": "its condition as lent"},
                        "version": _VERSION}}}}},
                "responses": {"200": _resp("the ticket, whose loaner is the one lent and "
                                           "whose history ends with the lend_loaner (a record "
                                           "of the ticket's, with no address of its own)",
                                           "Ticket"), **errors}}},
            "/tickets/{id}/loaner/return": {"post": {
                "summary": "The customer gave the loaner phone back (reception, manager)",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "condition": _CONDITION_BACK, "note": _NOTE_BACK,
                        "version": _VERSION}}}}},
                "responses": {"200": _resp("the ticket", "Ticket"), **errors}}},
            **api_reports.openapi_paths(),
        },
    }
    for path in ("/tickets/{id}/events", "/tickets/{id}/refunds", "/tickets/{id}/loaner",
                 "/tickets/{id}/loaner/return", "/tickets/{id}/tracking-link"):
        operation = doc["paths"][path]["post"]
        operation["parameters"] = [*operation.get("parameters", []), if_match]
        operation["responses"]["412"] = precondition
    # A body holds only the fields its schema lists: any other is refused (400, invalid).
    schemas = doc["components"]["schemas"]
    for name in ("Line", "NewTicket", "Event"):
        schemas[name] = _closed(schemas[name])
    for item in doc["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                media["schema"] = _closed(media["schema"])
    return doc


def _closed(schema: dict) -> dict:
    """A copy of a request body's schema in which every object with listed properties says
    ``additionalProperties: false`` (the API refuses any other field: 400, code invalid)."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)
    close(schema)
    return schema
