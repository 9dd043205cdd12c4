"""A fake Twilio REST server for tests, spoken to by the *real* twilio SDK.

Stdlib only (plus ``twilio.request_validator`` to sign status callbacks).

Usage::

    with FakeTwilio() as fake:
        client = make_client(fake, timeout=5)
        msg = client.messages.create(to="+15551234567", from_="+15005550006", body="hi")
        assert fake.messages[0]["sid"] == msg.sid
        fake.send_status_callback(msg.sid, "delivered")

Behaviour (see the SMS/Twilio reference notes, section 1):

* ``POST /2010-04-01/Accounts/<sid>/Messages.json`` (HTTP Basic ``sid:token``) creates a message;
  ``GET /2010-04-01/Accounts/<sid>/Messages/<MsgSid>.json`` fetches one;
  ``GET /2010-04-01/Accounts/<sid>/Messages.json`` lists them as Twilio does: filters ``To``,
  ``From``, ``DateSent`` / ``DateSent<`` (on or before) / ``DateSent>`` (on or after), each by
  the day (``YYYY-MM-DD``; the SDK sends ``YYYY-MM-DDTHH:MM:SSZ``, of which the day counts) of
  the message's ``date_sent``, so a message not sent yet (queued, no ``date_sent``) is in no
  DateSent list; sorted by ``date_sent``, newest first (Twilio does not say where the unsent
  go: here last, the harder case for a reader that stops early); ``PageSize`` (default 50, at
  most ``page_size_cap``, 1000 as at Twilio) with ``next_page_uri`` (``Page``, ``PageToken``)
  to the next page.  Bad or missing credentials, or a path sid that is not ours -> 401 /
  20003.  Any other path -> 404 / 20404.
* A message is ``queued`` (``accepted`` with a Messaging Service) without ``date_sent`` until
  ``mark_sent`` or a status callback of ``sent`` or later gives it one.
* Validation: no To -> 21604, no From and no MessagingServiceSid -> 21603, no Body (nor MediaUrl /
  ContentSid) -> 21602 (all 400, legacy error shape, so the SDK raises ``TwilioRestException``).
* Magic numbers: To +15005550001 -> 21211, ...02 -> 21612, ...03 -> 21408, ...04 -> 21610,
  ...09 -> 21614; From +15005550001 -> 21212, ...07 -> 21606, ...08 -> 21611.
* Failure knobs act on authenticated create requests (POST Messages.json), in this order:
  ``fail_next`` (answer the status, message NOT recorded; with ``store=True`` recorded first:
  Twilio took it and answered 5xx), then ``delay_next`` (the message is
  processed and recorded, then the response is held back -> client ReadTimeout, the ambiguous
  case; ``accept=False`` sleeps before processing instead), then ``drop_next`` (the message is
  processed and recorded, then the connection is closed without a response -> ConnectionError).
* ``fail_list_next`` / ``delay_list_next`` act on list requests (GET Messages.json): answer a
  status (5xx, 401...), or hold the answer back (the client times out).
* ``report_before_answer`` (a valid create): the message is recorded and its signed status
  callback is posted (and answered) before the API's own 201 goes out: a delivery report that
  overtakes the answer. What the app answered each such callback is in ``callback_answers``.
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages.",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
}

MAGIC_TO = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM = {
    "+15005550001": 21212,
    "+15005550007": 21606,
    "+15005550008": 21611,
}

_ACCOUNT_RE = r"/2010-04-01/Accounts/(?P<account>[^/]+)"
_LIST_RE = re.compile(_ACCOUNT_RE + r"/Messages\.json$")
_FETCH_RE = re.compile(_ACCOUNT_RE + r"/Messages/(?P<msg>[^/]+)\.json$")

_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€\f"
)


def _num_segments(body: str) -> int:
    if not body:
        return 1
    if all(c in _GSM7 for c in body):
        n = sum(2 if c in "^{}\\[~]|€\f" else 1 for c in body)
        single, multi = 160, 153
    else:
        n = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if n <= single else -(-n // multi)


def _rfc2822(dt: datetime) -> str:
    return email.utils.format_datetime(dt)


def error_body(code: int, status: int, message: str | None = None) -> dict:
    """The legacy Twilio error shape (raises TwilioRestException in the SDK)."""
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _DropConnection(Exception):
    """Raised inside the handler to close the socket without answering."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeTwilio/1.0"
    # HTTP/1.0: one request per connection, so no stale keep-alive sockets between tests.
    protocol_version = "HTTP/1.0"
    fake: "FakeTwilio"  # set on the per-instance subclass

    def log_message(self, format, *args):  # keep pytest output quiet
        pass

    # -- plumbing ----------------------------------------------------------
    def _read_form(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        form: dict = {}
        for k, v in pairs:
            if k in form:
                if not isinstance(form[k], list):
                    form[k] = [form[k]]
                form[k].append(v)
            else:
                form[k] = v
        return form

    def _send(self, status: int, payload, content_type="application/json") -> None:
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode("utf-8")
        else:
            data = payload.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query))
        form = self._read_form() if method == "POST" else {}
        record = {"method": method, "path": path, "query": query, "form": form, "status": None}
        self.fake._record_request(record)
        try:
            status, payload, ctype = self.fake._dispatch(method, path, query, form, self.headers)
        except _DropConnection:
            record["status"] = "dropped"
            self.close_connection = True
            return
        record["status"] = status
        try:
            self._send(status, payload, ctype)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
            self.close_connection = True

    def do_POST(self):
        self._handle("POST")

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


class FakeTwilio:
    """In-process fake of the Twilio Messages API on 127.0.0.1 (random port)."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None):
        self.account_sid = account_sid or "AC" + uuid.uuid4().hex
        self.auth_token = auth_token or uuid.uuid4().hex
        self.base_url: str | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._messages: list[dict] = []
        self._requests: list[dict] = []
        self.callback_answers: list[int] = []  # what the app answered report_before_answer
        self.page_size_cap = 1000  # Twilio's largest PageSize
        self._clear_knobs()

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> "FakeTwilio":
        if self._server is not None:
            raise RuntimeError("FakeTwilio already started")
        self._stopping.clear()
        handler = type("FakeTwilioHandler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="FakeTwilio", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wake any delayed handlers
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeTwilio":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection --------------------------------------------------------
    @property
    def messages(self) -> list[dict]:
        """Snapshot (a copy) of accepted messages, in acceptance order."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def requests(self) -> list[dict]:
        """Snapshot of every request received: method, path, query, form, status answered
        (an int, ``"dropped"``, or None while still being handled)."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def get_message(self, sid: str) -> dict | None:
        with self._lock:
            for m in self._messages:
                if m["sid"] == sid:
                    return dict(m)
        return None

    def reset(self) -> None:
        """Clear recorded messages/requests and all failure knobs."""
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self.callback_answers.clear()
            self.page_size_cap = 1000
            self._clear_knobs()

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        """Block until at least ``count`` messages were accepted; return the snapshot."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self._messages) >= count, timeout=timeout)
            if not ok:
                raise AssertionError(
                    f"FakeTwilio: expected >= {count} messages within {timeout}s, "
                    f"got {len(self._messages)}"
                )
            return [dict(m) for m in self._messages]

    # -- failure knobs -----------------------------------------------------
    def _clear_knobs(self) -> None:
        self._fail: list[tuple[int, bool]] = []  # (status, store), one per create request
        self._list_knobs: list[tuple[str, float]] = []  # ("fail", status) / ("delay", seconds)
        self._drop = 0
        self._delay: list[tuple[float, bool]] = []
        self._stall: list[float] = []
        self._report_first: list[tuple] = []  # (status, error_code), one per valid create

    def fail_next(self, n: int = 1, status: int = 429, store: bool = False) -> None:
        """The next ``n`` create requests answer ``status`` without recording the message.
        429 -> JSON code 20429; 5xx -> an HTML body (SDK: TwilioRestException, code == status);
        other statuses -> JSON with code == status (401/403 -> 20003). With ``store=True`` a
        valid message is recorded first (Twilio took it, then its answer was an error: the
        answer lost, the ambiguous case)."""
        with self._lock:
            self._fail.extend([(status, store)] * n)

    def fail_list_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` list requests answer ``status`` (as ``fail_next``'s bodies)."""
        with self._lock:
            self._list_knobs.extend([("fail", status)] * n)

    def delay_list_next(self, n: int = 1, seconds: float = 2.0) -> None:
        """The next ``n`` list requests are answered only after ``seconds`` (a client with a
        shorter timeout gives up first)."""
        with self._lock:
            self._list_knobs.extend([("delay", seconds)] * n)

    def mark_sent(self, sid: str | None = None) -> None:
        """Twilio sends the message ``sid`` (every one still queued or accepted, without a
        sid): status ``sent`` and a ``date_sent``, no status callback."""
        now = _rfc2822(datetime.now(timezone.utc).replace(microsecond=0))
        with self._lock:
            for m in self._messages:
                if (sid is None or m["sid"] == sid) and m["status"] in ("queued", "accepted"):
                    m["status"] = "sent"
                    m["date_sent"] = m["date_sent"] or now

    def drop_next(self, n: int = 1) -> None:
        """The next ``n`` create requests are processed (and recorded if valid), then the
        connection is closed without a response."""
        with self._lock:
            self._drop += n

    def stall_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """The next ``n`` message requests hang for ``seconds`` and are then dropped without
        being processed (the network died mid-request): a client killed meanwhile leaves no
        message behind."""
        with self._lock:
            self._stall.extend([seconds] * n)

    def delay_next(self, n: int = 1, seconds: float = 2.0, accept: bool = True) -> None:
        """The next ``n`` create requests sleep ``seconds`` before the response is sent.
        With ``accept=True`` (default) the message is recorded before sleeping (Twilio got it,
        the client timed out: ambiguous); with ``accept=False`` the sleep comes first."""
        with self._lock:
            self._delay.extend([(seconds, accept)] * n)

    def report_before_answer(self, status: str, error_code=None) -> None:
        """The next valid create request is recorded, then its signed status callback
        (``status``, ``error_code``) is posted to its StatusCallback, and only after the app
        answered it does the API's 201 go out: a carrier's fast rejection reaching the app
        before the sender has the message's sid. The app's answer goes to ``callback_answers``."""
        with self._lock:
            self._report_first.append((status, error_code))

    # -- status callbacks ---------------------------------------------------
    def send_status_callback(self, sid: str, status: str, error_code=None,
                             url: str | None = None, tamper: bool = False,
                             timeout: float = 10) -> int:
        """POST a signed status callback for message ``sid`` to its StatusCallback (or ``url``).
        Also updates the stored message's status. Returns the HTTP status code received."""
        with self._lock:
            msg = next((m for m in self._messages if m["sid"] == sid), None)
            if msg is not None:
                msg["status"] = status
                if status not in ("queued", "accepted", "sending", "scheduled"):
                    msg["date_sent"] = msg.get("date_sent") or _rfc2822(
                        datetime.now(timezone.utc).replace(microsecond=0))
                if error_code is not None:
                    msg["error_code"] = int(error_code)
        target = url or (msg or {}).get("status_callback")
        if not target:
            raise ValueError(f"no StatusCallback URL for message {sid!r} and no url given")
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "To": (msg or {}).get("to") or "",
            "From": (msg or {}).get("from") or "",
            "ApiVersion": API_VERSION,
        }
        if msg is not None and msg.get("messaging_service_sid"):
            params["MessagingServiceSid"] = msg["messaging_service_sid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        signature = RequestValidator(self.auth_token).compute_signature(target, params)
        if tamper:  # well-formed, but signed with the wrong token
            signature = RequestValidator(self.auth_token + "x").compute_signature(target, params)
        data = urllib.parse.urlencode(params).encode("utf-8")
        req = urllib.request.Request(
            target, data=data, method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use a proxy
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    # -- request handling (called from handler threads) ----------------------
    def _record_request(self, record: dict) -> None:
        with self._lock:
            self._requests.append(record)

    def _check_auth(self, account: str, headers) -> bool:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
        except Exception:
            return False
        return user == self.account_sid and password == self.auth_token and account == self.account_sid

    def _dispatch(self, method, path, query, form, headers):
        m_list = _LIST_RE.match(path)
        m_fetch = _FETCH_RE.match(path)
        match = m_list or m_fetch
        if match is None or (m_list and method not in ("POST", "GET")) or (m_fetch and method != "GET"):
            return 404, error_body(20404, 404, f"The requested resource {path} was not found"), "application/json"
        if not self._check_auth(match["account"], headers):
            return 401, error_body(20003, 401), "application/json"
        if m_fetch:
            msg = self.get_message(m_fetch["msg"])
            if msg is None:
                return 404, error_body(20404, 404, f"The requested resource {path} was not found"), "application/json"
            return 200, self._resource(msg), "application/json"
        if method == "GET":
            with self._lock:
                knob = self._list_knobs.pop(0) if self._list_knobs else None
            if knob is not None and knob[0] == "fail":
                return self._failure(knob[1])
            if knob is not None:
                self._stopping.wait(knob[1])
            return 200, self._list(path, query), "application/json"
        return self._create(form)

    def _take_knobs(self):
        with self._lock:
            fail = self._fail.pop(0) if self._fail else None
            if fail is not None:
                return fail, None, False
            delay = self._delay.pop(0) if self._delay else None
            if self._stall:
                delay = (self._stall.pop(0), None)
            drop = False
            if self._drop > 0:
                self._drop -= 1
                drop = True
            return None, delay, drop

    def _create(self, form):
        fail, delay, drop = self._take_knobs()
        if fail is not None:
            if fail[1]:  # Twilio took it, then answered an error
                self._validate_and_store(form)
            return self._failure(fail[0])
        if delay is not None and delay[1] is None:
            # stalled: the request never reaches processing; the connection just closes
            self._stopping.wait(delay[0])
            raise _DropConnection()
        if delay is not None and not delay[1]:
            self._stopping.wait(delay[0])
        status, payload = self._validate_and_store(form)
        if status == 201:
            with self._lock:
                report = self._report_first.pop(0) if self._report_first else None
            if report is not None:
                answer = self.send_status_callback(payload["sid"], *report)
                with self._lock:
                    self.callback_answers.append(answer)
        if delay is not None and delay[1]:
            self._stopping.wait(delay[0])
        if drop:
            raise _DropConnection()
        return status, payload, "application/json"

    @staticmethod
    def _failure(status: int):
        if status == 429:
            return 429, error_body(20429, 429), "application/json"
        if status >= 500:
            html = (f"<html><head><title>{status}</title></head>"
                    f"<body><h1>{status} Service Unavailable</h1></body></html>")
            return status, html, "text/html"
        code = 20003 if status in (401, 403) else status
        return status, error_body(code, status), "application/json"

    def _validate_and_store(self, form):
        def first(key):
            v = form.get(key)
            return v[0] if isinstance(v, list) else v

        to, from_, body = first("To"), first("From"), first("Body")
        mss = first("MessagingServiceSid")
        media = form.get("MediaUrl")
        media = media if isinstance(media, list) else ([media] if media else [])
        if not to:
            return 400, error_body(21604, 400)
        if not from_ and not mss:
            return 400, error_body(21603, 400)
        if not body and not media and not first("ContentSid"):
            return 400, error_body(21602, 400)
        if to in MAGIC_TO:
            return 400, error_body(MAGIC_TO[to], 400)
        if from_ in MAGIC_FROM:
            return 400, error_body(MAGIC_FROM[from_], 400)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        msg = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": self.account_sid,
            "to": to,
            "from": from_,
            "body": body or "",
            "messaging_service_sid": mss,
            "media_urls": media,
            "status_callback": first("StatusCallback"),
            "status": "accepted" if mss and not from_ else "queued",
            "error_code": None,
            "num_segments": _num_segments(body or ""),
            "date_created": _rfc2822(now),
            "date_sent": None,
            "form": dict(form),
        }
        with self._cond:
            self._messages.append(msg)
            self._cond.notify_all()
        return 201, self._resource(msg)

    def _resource(self, msg: dict) -> dict:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{msg['sid']}.json"
        return {
            "sid": msg["sid"],
            "account_sid": msg["account_sid"],
            "messaging_service_sid": msg["messaging_service_sid"],
            "to": msg["to"],
            "from": msg["from"],
            "body": msg["body"],
            "status": msg["status"],
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "num_segments": str(msg["num_segments"]),
            "num_media": str(len(msg["media_urls"])),
            "price": None,
            "price_unit": "USD",
            "error_code": msg["error_code"],
            "error_message": None,
            "date_created": msg["date_created"],
            "date_updated": msg["date_created"],
            "date_sent": msg.get("date_sent"),
            "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }

    def _list(self, path: str, query: dict) -> dict:
        with self._lock:
            msgs = [dict(m) for m in self._messages]
        if query.get("To"):
            msgs = [m for m in msgs if m["to"] == query["To"]]
        if query.get("From"):
            msgs = [m for m in msgs if m["from"] == query["From"]]
        for key, keep in (("DateSent", lambda d, v: d == v), ("DateSent<", lambda d, v: d <= v),
                          ("DateSent>", lambda d, v: d >= v)):
            if query.get(key):
                day = query[key][:10]  # by the day, GMT
                msgs = [m for m in msgs if m.get("date_sent")
                        and keep(_day(m["date_sent"]), day)]
        # newest sent first, the unsent last; among equals, the later created first
        order = list(enumerate(msgs))
        order.sort(key=lambda im: (im[1].get("date_sent") is not None,
                                   _when(im[1].get("date_sent")), im[0]), reverse=True)
        msgs = [m for _, m in order]
        page_size = max(1, min(int(query.get("PageSize") or 50), self.page_size_cap))
        page = int(query.get("Page") or 0)
        start = page * page_size
        token = query.get("PageToken") or ""
        if token.startswith("PA"):  # after the last message of the page before
            sids = [m["sid"] for m in msgs]
            if token[2:] in sids:
                start = sids.index(token[2:]) + 1
        chunk = msgs[start:start + page_size]
        base = {k: v for k, v in query.items() if k not in ("Page", "PageToken", "PageSize")}

        def uri(n: int, token: str | None = None) -> str:
            params = {**base, "PageSize": page_size, "Page": n}
            if token:
                params["PageToken"] = token
            return path + "?" + urllib.parse.urlencode(params)

        more = start + page_size < len(msgs)
        return {
            "messages": [self._resource(m) for m in chunk],
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1, "PA" + chunk[-1]["sid"]) if more and chunk else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "page": page,
            "page_size": page_size,
            "start": start,
            "end": start + max(len(chunk) - 1, 0),
            "uri": uri(page, token or None),
        }


def _when(rfc2822: str | None) -> datetime:
    if not rfc2822:
        return datetime.min.replace(tzinfo=timezone.utc)
    return email.utils.parsedate_to_datetime(rfc2822)


def _day(rfc2822: str) -> str:
    return _when(rfc2822).astimezone(timezone.utc).strftime("%Y-%m-%d")


def make_client(fake: FakeTwilio, timeout: float = 5):
    """A real ``twilio.rest.Client`` pointed at ``fake``: edge/region cleared, proxies ignored,
    ``TwilioHttpClient(timeout=timeout)``; any ``https://*.twilio.com`` URL is rewritten to the fake,
    so nothing can reach the real Twilio."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    if fake.base_url is None:
        raise RuntimeError("FakeTwilio is not started")
    base = fake.base_url

    class LocalTwilioHttpClient(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):
            url = re.sub(r"^https://[\w.-]+\.twilio\.com", base, url)
            return super().request(method, url, *args, **kwargs)

    http_client = LocalTwilioHttpClient(timeout=timeout)
    http_client.session.trust_env = False  # HTTP(S)_PROXY would apply even to 127.0.0.1
    client = Client(
        fake.account_sid, fake.auth_token, http_client=http_client,
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    client.edge = None
    client.region = None
    client.api.base_url = base
    return client
