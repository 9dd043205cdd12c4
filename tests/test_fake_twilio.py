"""Tests for tests/fake_twilio.py, driven through the real twilio SDK."""

import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

try:
    from tests.fake_twilio import FakeTwilio, make_client
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from fake_twilio import FakeTwilio, make_client

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

FROM = "+15005550006"
TO = "+15551234567"


@pytest.fixture(scope="module")
def fake():
    with FakeTwilio() as f:
        yield f


@pytest.fixture(autouse=True)
def _clean(fake, monkeypatch):
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    fake.reset()
    yield
    fake.reset()


@pytest.fixture
def client(fake):
    return make_client(fake, timeout=5)


def test_create_success_is_recorded(fake, client):
    msg = client.messages.create(to=TO, from_=FROM, body="Your phone is ready",
                                 status_callback="http://127.0.0.1:1/cb")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert msg.status == "queued"
    assert msg.to == TO and msg.from_ == FROM and msg.body == "Your phone is ready"
    assert msg.direction == "outbound-api" and msg.api_version == "2010-04-01"
    assert msg.account_sid == fake.account_sid
    assert msg.date_created is not None and msg.date_created.tzinfo is not None
    assert msg.num_segments == "1"

    [rec] = fake.messages
    assert rec["sid"] == msg.sid
    assert (rec["to"], rec["from"], rec["body"]) == (TO, FROM, "Your phone is ready")
    assert rec["status_callback"] == "http://127.0.0.1:1/cb"
    assert fake.requests[-1]["status"] == 201
    assert fake.requests[-1]["form"]["Body"] == "Your phone is ready"

    # sids are unique; GET returns the stored message
    msg2 = client.messages.create(to=TO, from_=FROM, body="second")
    assert msg2.sid != msg.sid
    fetched = client.messages(msg.sid).fetch()
    assert fetched.sid == msg.sid and fetched.body == "Your phone is ready"
    assert [m.sid for m in client.messages.list(to=TO)] == [msg2.sid, msg.sid]
    assert len(fake.wait_for(2, timeout=1)) == 2


def test_messaging_service_is_accepted(fake, client):
    msg = client.messages.create(to=TO, messaging_service_sid="MG" + "0" * 32, body="x")
    assert msg.status == "accepted"


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"to": "+15005550001", "from_": FROM, "body": "x"}, 21211),
        ({"to": "+15005550002", "from_": FROM, "body": "x"}, 21612),
        ({"to": "+15005550003", "from_": FROM, "body": "x"}, 21408),
        ({"to": "+15005550004", "from_": FROM, "body": "x"}, 21610),
        ({"to": TO, "from_": "+15005550001", "body": "x"}, 21212),
        ({"to": TO, "from_": "+15005550007", "body": "x"}, 21606),
        ({"to": TO, "body": "x"}, 21603),
        ({"to": TO, "from_": FROM}, 21602),
        ({"to": "", "from_": FROM, "body": "x"}, 21604),
    ],
)
def test_permanent_errors(fake, client, kwargs, code):
    with pytest.raises(TwilioRestException) as ei:
        client.messages.create(**kwargs)
    assert ei.value.code == code
    assert ei.value.status == 400
    assert fake.messages == []


def test_fail_next_503_then_success(fake, client):
    fake.fail_next(2, status=503)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as ei:
            client.messages.create(to=TO, from_=FROM, body="x")
        assert ei.value.status == 503 and ei.value.code == 503
    assert fake.messages == []
    msg = client.messages.create(to=TO, from_=FROM, body="x")
    assert [m["sid"] for m in fake.messages] == [msg.sid]
    assert [r["status"] for r in fake.requests] == [503, 503, 201]


def test_fail_next_429(fake, client):
    fake.fail_next(1, status=429)
    with pytest.raises(TwilioException) as ei:
        client.messages.create(to=TO, from_=FROM, body="x")
    assert isinstance(ei.value, TwilioRestException)
    assert ei.value.status == 429 and ei.value.code == 20429
    assert fake.messages == []
    client.messages.create(to=TO, from_=FROM, body="x")
    assert len(fake.messages) == 1


def test_drop_next_is_ambiguous(fake, client):
    fake.drop_next(1)
    with pytest.raises(requests.exceptions.RequestException) as ei:
        client.messages.create(to=TO, from_=FROM, body="dropped")
    assert isinstance(ei.value, requests.exceptions.ConnectionError)
    [rec] = fake.messages  # Twilio "accepted" it although the client saw an error
    assert rec["body"] == "dropped"
    assert fake.requests[-1]["status"] == "dropped"
    client.messages.create(to=TO, from_=FROM, body="dropped")  # a retry duplicates
    assert len(fake.messages) == 2


def test_delay_next_times_out(fake):
    client = make_client(fake, timeout=1)
    fake.delay_next(1, seconds=2)
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.messages.create(to=TO, from_=FROM, body="slow")
    assert time.monotonic() - t0 < 1.9
    assert len(fake.messages) == 1  # accepted before the delay: ambiguous
    msg = client.messages.create(to=TO, from_=FROM, body="fast")  # knob used up
    assert msg.sid


def test_wrong_credentials(fake):
    other = FakeTwilio(account_sid=fake.account_sid, auth_token="wrong")
    other.base_url = fake.base_url  # not started: only borrow its credentials
    client = make_client(other)
    with pytest.raises(TwilioRestException) as ei:
        client.messages.create(to=TO, from_=FROM, body="x")
    assert ei.value.status == 401 and ei.value.code == 20003
    # another account's sid in the path, with our own credentials, is also refused
    other2 = FakeTwilio(account_sid="AC" + "1" * 32, auth_token=fake.auth_token)
    other2.base_url = fake.base_url
    with pytest.raises(TwilioRestException) as ei:
        make_client(other2).messages.create(to=TO, from_=FROM, body="x")
    assert ei.value.status == 401 and ei.value.code == 20003
    assert fake.messages == []


def test_unknown_path_404(fake):
    r = requests.get(fake.base_url + "/nope", timeout=5, proxies={"http": None})
    assert r.status_code == 404


def test_wait_for_times_out(fake):
    with pytest.raises(AssertionError):
        fake.wait_for(1, timeout=0.1)


@pytest.fixture
def receiver():
    """A tiny stdlib server that records POSTs (url, form, signature) and answers 204."""
    got = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
            url = f"http://{self.headers['Host']}{self.path}"
            got.append({"url": url, "form": form, "sig": self.headers.get("X-Twilio-Signature")})
            self.send_response(204)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.got = got
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/sms/status?x=1"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_status_callback_signed(fake, client, receiver):
    msg = client.messages.create(to=TO, from_=FROM, body="x", status_callback=receiver.url)
    validator = RequestValidator(fake.auth_token)

    assert fake.send_status_callback(msg.sid, "delivered") == 204
    cb = receiver.got[-1]
    assert cb["url"] == receiver.url
    assert cb["form"]["MessageSid"] == msg.sid
    assert cb["form"]["MessageStatus"] == cb["form"]["SmsStatus"] == "delivered"
    assert cb["form"]["AccountSid"] == fake.account_sid
    assert (cb["form"]["To"], cb["form"]["From"]) == (TO, FROM)
    assert "ErrorCode" not in cb["form"]
    assert validator.validate(cb["url"], cb["form"], cb["sig"])
    assert fake.messages[0]["status"] == "delivered"

    assert fake.send_status_callback(msg.sid, "undelivered", error_code=30003, tamper=True) == 204
    cb = receiver.got[-1]
    assert cb["form"]["ErrorCode"] == "30003"
    assert not validator.validate(cb["url"], cb["form"], cb["sig"])


def test_status_callback_explicit_url(fake, client, receiver):
    msg = client.messages.create(to=TO, from_=FROM, body="x")  # no StatusCallback
    with pytest.raises(ValueError):
        fake.send_status_callback(msg.sid, "sent")
    assert fake.send_status_callback(msg.sid, "sent", url=receiver.url) == 204
    cb = receiver.got[-1]
    assert RequestValidator(fake.auth_token).validate(cb["url"], cb["form"], cb["sig"])


def test_the_list_filters_and_pages_as_twilio_does(fake, client):
    """To and From filter; newest sent first, the unsent last; PageSize capped, the next page
    by next_page_uri; a DateSent filter goes by the day of date_sent, so a message still
    queued is in no DateSent list."""
    from datetime import datetime, timedelta, timezone
    old = [client.messages.create(to=TO, from_=FROM, body=f"old {i}") for i in range(3)]
    fake.mark_sent()
    queued = client.messages.create(to=TO, from_=FROM, body="still queued")
    client.messages.create(to="+15557654321", from_=FROM, body="another customer")
    client.messages.create(to=TO, from_="+15005550010", body="another sender")
    assert fake.get_message(queued.sid)["status"] == "queued"

    listed = client.messages.list(to=TO, from_=FROM)
    assert [m.sid for m in listed] == [old[2].sid, old[1].sid, old[0].sid, queued.sid]
    assert listed[-1].date_sent is None and listed[0].date_sent is not None

    fake.page_size_cap = 2
    page = client.messages.page(to=TO, from_=FROM, page_size=1000)
    assert [m.sid for m in page] == [old[2].sid, old[1].sid]
    second = page.next_page()
    assert [m.sid for m in second] == [old[0].sid, queued.sid]
    assert second.next_page() is None
    assert [r["query"].get("PageToken") for r in fake.requests[-2:]] == [
        None, "PA" + old[1].sid]

    today = datetime.now(timezone.utc)
    since = client.messages.list(to=TO, from_=FROM, date_sent_after=today - timedelta(days=1))
    assert queued.sid not in {m.sid for m in since} and len(since) == 3
    assert client.messages.list(to=TO, date_sent_before=today - timedelta(days=1)) == []
    assert fake.requests[-1]["query"]["DateSent<"].endswith("Z")  # the SDK's form, by its day


def test_a_create_can_be_taken_and_answered_with_a_5xx(fake, client):
    fake.fail_next(1, status=500, store=True)
    with pytest.raises(TwilioRestException) as ei:
        client.messages.create(to=TO, from_=FROM, body="taken")
    assert ei.value.status == 500
    assert [m["body"] for m in fake.messages] == ["taken"]


def test_list_requests_can_fail_or_be_slow(fake):
    client = make_client(fake, timeout=1)
    fake.fail_list_next(1, 500)
    with pytest.raises(TwilioException):
        client.messages.list(to=TO)
    fake.fail_list_next(1, 401)
    with pytest.raises(TwilioException):
        client.messages.list(to=TO)
    fake.delay_list_next(1, seconds=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.messages.list(to=TO)
    client.messages.create(to=TO, from_=FROM, body="x")  # create requests are not affected
    assert len(client.messages.list(to=TO)) == 1
