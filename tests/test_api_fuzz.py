"""Property-based pass over the JSON API's inputs: whatever a client sends, the API answers
without a server error, and a refused request (4xx) writes nothing."""
import json
from datetime import date, timedelta
from urllib.parse import urlencode

import jdatetime
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from servicedesk.extensions import db
from servicedesk.i18n import localize_digits
from servicedesk.lifecycle import EVENTS
from servicedesk.models import Counter, Ticket, Visit
from servicedesk.reports import COST_GROUPS, MAX_DAYS, TURNAROUND_GROUPS
from servicedesk.services.people import issue_token

from .conftest import LINES

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# --- values ----------------------------------------------------------------------------------

NASTY = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "\ufeff", "\u200f", "<script>alert(1)</script>",
    "' OR 1=1 --", "${jndi:x}", "{customer_name}", "%s%s%n", "../../etc/passwd", "null", "NaN",
    "۰۹۱۲۱۲۳۴۵۶۷", "09121234567", "+989121234567", "+15005550006", "490154203237518",
    "1405/09/01", "2026-02-30", "9999-12-31", "0000-01-01", "-1", "1e309", "x" * 5000,
    "repair", "phone", "in_person", "technician1", "part", "labour"])
# What most often gets past a type check and then breaks the database or the encoder.
HOSTILE = st.sampled_from(["\x00", "ok\x00", "\ud800", "a\udfffb", "\x1b[31m", 2**31, 2**31 - 1,
                           2**63, -2**31 - 1, 10**13, 10**13 + 1, 1e300, -0.0, True])
LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                 st.floats(), st.text(max_size=30), NASTY)
ANY = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=4)
                   | st.dictionaries(st.one_of(st.text(max_size=12), NASTY), inner, max_size=4),
                   max_leaves=12)


def maybe(good):
    """A plausible value most of the time, anything at all otherwise."""
    return st.one_of(good, good, ANY)


PHONE = maybe(st.sampled_from(["09121234567", "0912 123 4567", "+989351234567",
                               "۰۹۱۲۱۲۳۴۵۶۷", "+15005550006", "02112345678"]))
TEXT = maybe(st.text(min_size=1, max_size=40))
INT = maybe(st.integers(min_value=-10, max_value=10**14))
DATE = maybe(st.sampled_from(["2026-12-01", "1405/09/10", "2026-13-01", ""]))

CUSTOMER = maybe(st.fixed_dictionaries(
    {"name": TEXT, "phone": PHONE},
    optional={"language": maybe(st.sampled_from(["fa", "en", "de"]))}))
DEVICE = maybe(st.fixed_dictionaries(
    {"kind": TEXT, "brand": TEXT, "model": TEXT},
    optional={"serial": maybe(st.sampled_from(["490154203237518", "490154203237519",
                                                "SN-1234", "1" * 41])),
              "colour": TEXT}))
TICKET = st.one_of(ANY, st.fixed_dictionaries(
    {"customer": CUSTOMER, "device": DEVICE, "problem": TEXT},
    optional={"service_type": maybe(st.sampled_from(["repair", "warranty", "nope"])),
              "visit_id": INT, "promised_date": DATE, "pre_approved_amount": INT,
              "accessories": TEXT, "condition": TEXT, "extra": ANY}))

LINE = maybe(st.fixed_dictionaries(
    {"kind": maybe(st.sampled_from(["part", "labour", "gift"])), "description": TEXT,
     "qty": INT, "unit_price": INT}))
EVENT = st.one_of(ANY, st.fixed_dictionaries(
    {"event": maybe(st.sampled_from([*EVENTS, "delete", ""]))},
    optional={"lines": maybe(st.lists(LINE, max_size=3)), "promised_date": DATE,
              "expected_date": DATE, "channel": maybe(st.sampled_from(["phone", "in_person",
                                                                         "link"])),
              "reason": TEXT, "part": TEXT, "work_done": TEXT, "amount_paid": INT,
              "collected_by": TEXT, "technician": maybe(st.sampled_from(["technician1",
                                                                         "reception1"])),
              "version": INT, "estimate_version": INT}))
VISIT = st.one_of(ANY, st.fixed_dictionaries(
    {"service": maybe(st.sampled_from(["repair", "pickup", "inquiry", "nope"]))},
    optional={"phone": PHONE}))

# Valid requests with random (valid-looking) values, and the same with exactly one field
# replaced by anything at all or removed: the inputs most likely to get past the checks.
SOME_TEXT = st.text(min_size=1, max_size=60).filter(str.strip)
MONEY = st.integers(min_value=0, max_value=10**13)
GOOD_LINE = st.fixed_dictionaries({"kind": st.sampled_from(["part", "labour"]),
                                   "description": SOME_TEXT,
                                   "qty": st.integers(min_value=1, max_value=10_000),
                                   "unit_price": MONEY})
GOOD_TICKET = st.fixed_dictionaries({
    "customer": st.fixed_dictionaries({"name": SOME_TEXT,
                                       "phone": st.sampled_from(["09121234567",
                                                                 "+989351234567",
                                                                 "۰۹۱۲۱۲۳۴۵۶۷"]),
                                       "language": st.sampled_from(["fa", "en"])}),
    "device": st.fixed_dictionaries({"kind": SOME_TEXT, "brand": SOME_TEXT, "model": SOME_TEXT,
                                     "serial": st.sampled_from(["490154203237518", "SN-1"]),
                                     "colour": SOME_TEXT}),
    "problem": SOME_TEXT, "accessories": SOME_TEXT, "condition": SOME_TEXT,
    "service_type": st.sampled_from(["repair", "warranty"]),
    "promised_date": st.sampled_from(["2026-12-01", "1405/09/10"]),
    "pre_approved_amount": MONEY})
GOOD_EVENT_DATA = {
    "send_to_repair": st.fixed_dictionaries({"technician": st.just("technician1")}),
    "quote": st.fixed_dictionaries({"lines": st.lists(GOOD_LINE, min_size=1, max_size=4),
                                    "promised_date": st.just("2026-12-01")}),
    "approve": st.fixed_dictionaries({"channel": st.sampled_from(["phone", "in_person"])}),
    "decline": st.fixed_dictionaries({"reason": SOME_TEXT,
                                      "channel": st.sampled_from(["phone", "in_person"])}),
    "return_unrepaired": st.fixed_dictionaries({"reason": SOME_TEXT}),
    "wait_parts": st.fixed_dictionaries({"part": SOME_TEXT, "expected_date": st.just("2026-12-05")}),
    "resume": st.just({}),
    "finish": st.fixed_dictionaries({"lines": st.lists(GOOD_LINE, max_size=4),
                                     "work_done": SOME_TEXT}),
    "deliver": st.fixed_dictionaries({"amount_paid": MONEY, "collected_by": SOME_TEXT}),
    "close": st.just({}),
    "cancel": st.fixed_dictionaries({"reason": SOME_TEXT}),
}
REMOVE = object()


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _paths(inner, (*prefix, i))


def _replace(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    head, rest = path[0], path[1:]
    if not rest and new is REMOVE:
        del copy[head]
    else:
        copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def one_field_off(draw, valid):
    """A valid body with one field (at any depth) replaced by anything, or removed."""
    body = draw(valid)
    path = draw(st.sampled_from([p for p in _paths(body) if p]))
    return _replace(body, path, draw(st.one_of(ANY, NASTY, HOSTILE, st.just(REMOVE))))


# A body as a client might send it: JSON of any value, or bytes that are not JSON at all.
RAW = st.sampled_from([b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a": NaN}', b"1" * 400,
                       b'{"customer": {"name": "\\ud800"}}'])


# --- harness ---------------------------------------------------------------------------------

def snapshot(app) -> tuple:
    """Everything a request could write: the row count of every table, the counters, and the
    state and version of every ticket and visit."""
    with app.app_context():
        counts = tuple(db.session.scalar(select(func.count()).select_from(table))
                       for table in db.metadata.sorted_tables)
        counters = db.session.scalar(select(func.coalesce(func.sum(Counter.value), 0)))
        tickets = tuple(db.session.execute(
            select(Ticket.id, Ticket.state, Ticket.version).order_by(Ticket.id)).all())
        visits = tuple(db.session.execute(
            select(Visit.id, Visit.status).order_by(Visit.id)).all())
        return counts, counters, tickets, visits


@pytest.fixture
def tokens(app, users):
    return {role: issue_token(user) for role, user in users.items()}


def call(app, url, token, body=None, raw=None):
    """POST as a fresh request (its own app context and session, as in production)."""
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    with app.app_context():
        if raw is not None:
            return client.post(url, data=raw, headers=headers, content_type="application/json")
        data = json.dumps(body, allow_nan=True)
        return client.post(url, data=data, headers=headers, content_type="application/json")


def check(app, url, token, body=None, raw=None):
    before = snapshot(app)
    resp = call(app, url, token, body, raw)
    assert resp.status_code < 500, (resp.status_code, body, resp.get_data(as_text=True)[:500])
    if 400 <= resp.status_code < 500:
        assert resp.is_json and "error" in resp.get_json(), resp.get_data(as_text=True)[:300]
        assert snapshot(app) == before, (resp.status_code, body)
    return resp


ROLES = st.sampled_from(["reception", "reception", "technician", "manager", "admin"])


# --- the properties --------------------------------------------------------------------------

@FUZZ
@given(role=ROLES, body=st.one_of(TICKET, GOOD_TICKET, one_field_off(GOOD_TICKET)))
def test_post_tickets_never_fails_and_writes_nothing_when_refused(app, tokens, role, body):
    check(app, "/api/v1/tickets", tokens[role], body)


@FUZZ
@given(role=ROLES, raw=RAW)
def test_post_tickets_with_a_body_that_is_not_json(app, tokens, role, raw):
    resp = check(app, "/api/v1/tickets", tokens[role], raw=raw)
    assert resp.status_code >= 400


@st.composite
def event_request(draw):
    """(state to put a ticket in, role, body): mostly an event allowed from that state with
    valid-looking data, one field of it off, or anything at all."""
    name = draw(st.sampled_from([e for e in EVENTS if e != "admit"]))
    state = draw(st.sampled_from(EVENTS[name].sources))
    role = draw(st.sampled_from([r for r in ("reception", "technician", "manager", "admin")
                                 if r in EVENTS[name].roles] or ["reception"]))
    role = draw(st.one_of(st.just(role), st.just(role), ROLES))
    good = GOOD_EVENT_DATA[name].map(lambda data: {"event": name, **data})
    body = draw(st.one_of(good, one_field_off(good), EVENT))
    return state, role, body


@FUZZ
@given(req=event_request(), missing=st.integers(min_value=0, max_value=9))
def test_post_events_never_fails_and_writes_nothing_when_refused(app, tokens, make_ticket,
                                                                  req, missing):
    state, role, body = req
    ticket_id = make_ticket(state).id if missing else 10**6
    check(app, f"/api/v1/tickets/{ticket_id}/events", tokens[role], body)


@FUZZ
@given(role=ROLES, body=VISIT)
def test_post_visits_never_fails_and_writes_nothing_when_refused(app, tokens, role, body):
    check(app, "/api/v1/visits", tokens[role], body)


def test_a_technician_named_with_a_nul_byte_is_refused_not_a_server_error(app, tokens,
                                                                        make_ticket):
    """Found by the fuzzer on PostgreSQL (its text cannot hold NUL): the branch check looked
    the name up before the event's own check refused it."""
    ticket = make_ticket("intake")
    for name in ("\x00", "tech\x00nician1"):
        resp = call(app, f"/api/v1/tickets/{ticket.id}/events", tokens["reception"],
                    {"event": "send_to_repair", "technician": name})
        assert resp.status_code == 422, resp.get_data(as_text=True)
        assert "technician" in resp.get_json()["fields"]


def test_a_nul_in_a_report_filter_is_refused_after_the_permission(app, tokens):
    """Found by the fuzzer: a role without the report is told so (403) whatever it sent; one
    with it gets the filter named (422), never a server error."""
    url = "/api/v1/reports/costs?from=%00&to=2000-01-01"
    client = app.test_client()
    assert client.get(url, headers={"Authorization": f"Bearer {tokens['reception']}"}) \
        .status_code == 403
    resp = client.get(url, headers={"Authorization": f"Bearer {tokens['manager']}"})
    assert resp.status_code == 422 and "from" in resp.get_json()["fields"]
    assert client.get("/api/v1/reports/costs?from=%00").status_code == 401


def test_valid_inputs_still_work(app, tokens, make_ticket):
    """The harness itself: good requests are accepted (so the properties are not vacuous)."""
    from .conftest import INTAKE
    assert call(app, "/api/v1/tickets", tokens["reception"], INTAKE).status_code == 201
    assert call(app, "/api/v1/visits", tokens["reception"], {"service": "repair"}).status_code \
        == 201
    resp = call(app, f"/api/v1/tickets/{make_ticket('diagnosis').id}/events",
                tokens["technician"], {"event": "quote", "lines": LINES})
    assert resp.status_code == 200 and resp.get_json()["state"] == "estimate"


# --- calling the next number -----------------------------------------------------------------

CALLERS = st.one_of(st.just("reception"), ROLES)  # mostly the role that calls numbers
COUNTER = st.one_of(st.sampled_from(["1", "2", "Counter 3", "۴", " 5 ", "x" * 20, "x" * 21, "",
                                     " ", "\t", "\u200f"]),
                    NASTY, HOSTILE, st.text(max_size=25), st.integers(), ANY)
CALL_NEXT = maybe(st.fixed_dictionaries(
    {"counter": COUNTER},
    optional={"service": maybe(st.sampled_from(["repair", "pickup", "inquiry", "nope"]))}))


@FUZZ
@given(role=CALLERS, body=CALL_NEXT, waiting=st.sampled_from([None, "repair", "pickup"]))
def test_calling_the_next_number_never_fails_and_writes_nothing_when_refused(app, tokens, role,
                                                                             body, waiting):
    if waiting:  # someone to call (else the queue is empty: a 204)
        assert call(app, "/api/v1/visits", tokens["reception"],
                    {"service": waiting}).status_code == 201
    resp = check(app, "/api/v1/visits/next", tokens[role], body)
    assert resp.status_code in (200, 204) or 400 <= resp.status_code < 500


@FUZZ
@given(role=CALLERS, raw=RAW)
def test_calling_the_next_number_with_a_body_that_is_not_json(app, tokens, role, raw):
    call(app, "/api/v1/visits", tokens["reception"], {"service": "repair"})
    resp = check(app, "/api/v1/visits/next", tokens[role], raw=raw)
    assert resp.status_code >= 400


# --- the reports' filters --------------------------------------------------------------------

REPORT_GROUPS = {"/api/v1/reports/turnaround": TURNAROUND_GROUPS,
                 "/api/v1/reports/costs": COST_GROUPS,
                 "/api/v1/reports/survey": ()}
READERS = st.one_of(st.sampled_from(["manager", "admin"]), ROLES)  # mostly who may read them


def _date_text(day: date, style: str) -> str:
    if style == "jalali":
        j = jdatetime.date.fromgregorian(date=day)
        return f"{j.year:04d}/{j.month:02d}/{j.day:02d}"
    if style == "persian digits":
        return localize_digits(day.isoformat(), "fa")
    return day.isoformat()


@st.composite
def good_filters(draw, url):
    """Filters the endpoint accepts: a range of at most MAX_DAYS (ISO, Jalali or in Persian
    digits), and any of the others with a value that exists."""
    start = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
    end = start + timedelta(days=draw(st.integers(min_value=0, max_value=MAX_DAYS - 1)))
    style = st.sampled_from(["iso", "jalali", "persian digits"])
    params = {"from": _date_text(start, draw(style)), "to": _date_text(end, draw(style))}
    optional = {
        "technician": st.sampled_from(["technician1", "", " technician1 "]),
        "branch": st.sampled_from(["1", "A", "شعبهٔ مرکزی", "١", ""]),
        "service_type": st.sampled_from(["repair", "warranty", ""]),
        "brand": st.text(max_size=70).filter(lambda s: "\x00" not in s),
    }
    if REPORT_GROUPS[url]:
        optional["group_by"] = st.sampled_from(["", *REPORT_GROUPS[url]])
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        params[name] = draw(optional[name])
    return params


# Anything a client could put in a filter: random text, numbers of any size, dates at the ends
# of the calendar, and digits that are not ASCII.
ANY_FILTER = st.one_of(
    st.text(max_size=30), NASTY.filter(lambda s: len(s) <= 100),
    st.integers(min_value=-10, max_value=2**70).map(str),
    st.sampled_from(["0001-01-01", "9999-12-31", "9999-12-30", "1699/12/29", "0000/01/01",
                     "2026-02-30", "1404/12/30", "20260101", "2026-01-01T00:00", "²", "①",
                     "٣", "߁", "𝟙", "1²", "-1", "+1", "0", " 1 ", "1.0", "1e3", "0x1"]))
FILTER_NAMES = ("from", "to", "group_by", "technician", "branch", "service_type", "brand")


@st.composite
def report_request(draw):
    """(url, filters): accepted filters, mostly with one or two of them set to anything."""
    url = draw(st.sampled_from(sorted(REPORT_GROUPS)))
    params = draw(good_filters(url))
    for name in draw(st.lists(st.sampled_from(FILTER_NAMES), max_size=2, unique=True)):
        params[name] = draw(ANY_FILTER)
    return url, params


def get_report(app, url, token, params):
    """GET as a fresh request; the query string as a client would encode it (a lone surrogate
    goes out as the invalid UTF-8 bytes it stands for)."""
    query = urlencode(params, errors="surrogatepass")
    with app.app_context():
        return app.test_client().get(f"{url}?{query}",
                                     headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def some_history(app, make_ticket):
    """Tickets for the reports to count: one handed back, one waiting for an answer."""
    make_ticket("delivered")
    make_ticket("estimate")


@FUZZ
@given(role=READERS, req=report_request())
def test_report_filters_never_fail_and_a_report_writes_nothing(app, tokens, some_history, role,
                                                               req):
    url, params = req
    before = snapshot(app)
    resp = get_report(app, url, tokens[role], params)
    assert resp.status_code < 500, (resp.status_code, url, params,
                                    resp.get_data(as_text=True)[:300])
    if resp.status_code >= 400:
        assert resp.status_code == (422 if role in ("manager", "admin") else 403), params
        assert resp.is_json and "error" in resp.get_json(), resp.get_data(as_text=True)[:300]
    else:
        assert resp.is_json
    assert snapshot(app) == before, (url, params)  # a report, accepted or refused, is a read


def test_good_report_filters_and_calls_still_work(app, tokens, some_history):
    """The harness itself, for the properties above: good requests are answered."""
    today = date.today()
    resp = get_report(app, "/api/v1/reports/costs", tokens["manager"],
                      {"from": _date_text(today - timedelta(days=1), "jalali"),
                       "to": _date_text(today + timedelta(days=1), "persian digits"),
                       "group_by": "technician", "technician": "technician1", "branch": "A",
                       "service_type": "repair"})
    assert resp.status_code == 200
    [row] = resp.get_json()["rows"]
    assert (row["key"], row["tickets"], row["estimates"]) == ("technician1", 2, 2)
    bad = get_report(app, "/api/v1/reports/survey", tokens["admin"], {"branch": "nowhere"})
    assert bad.status_code == 422 and "branch" in bad.get_json()["fields"]
    assert call(app, "/api/v1/visits/next", tokens["reception"],
                {"counter": "1"}).status_code == 204  # nobody waiting
    call(app, "/api/v1/visits", tokens["reception"], {"service": "repair"})
    resp = call(app, "/api/v1/visits/next", tokens["reception"], {"counter": " 2 "})
    assert resp.status_code == 200 and resp.get_json()["counter"] == "2"
