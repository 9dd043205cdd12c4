"""SMS backends: console (log and mark sent), Twilio (the real SDK), and a generic HTTP gateway
for local SMS panels. Each ``send`` returns the provider's id or raises one of the three
failures, so the delivery job can sort the outcome without knowing the provider."""
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Optional

import requests

log = logging.getLogger(__name__)


class SendFailure(Exception):
    def __init__(self, code: Optional[str], message: str):
        super().__init__(message)
        self.code = None if code is None else str(code)
        self.message = message[:255]


class PermanentFailure(SendFailure):
    """The provider refused the message for good (bad number, opted out): never retry."""


class TransientFailure(SendFailure):
    """The message was certainly not accepted (throttled, could not connect): retry later."""


class AmbiguousFailure(SendFailure):
    """The request may have been accepted (timeout or 5xx after sending)."""


class LookupFailure(SendFailure):
    """Asking the provider whether a message went failed (timeout, 5xx, refused credentials):
    whether it went is still unknown."""


@dataclass
class Found:
    """A message the provider holds: its id, its status there and when it was created."""
    sid: str
    status: str
    created: datetime
    error_code: Optional[str] = None


def mask_phone(e164: str) -> str:
    """+989121234567 -> +98912***4567: enough to recognise, not enough to leak."""
    return e164[:6] + "***" + e164[-4:] if len(e164) > 10 else "***"


# A customer page's token opens that customer's page: it never goes into a log.
_LINK_TOKEN = re.compile(r"(/[ts]/)[A-Za-z0-9_-]+")


def redact_links(body: str) -> str:
    """``body`` with the token of every tracking or survey link replaced by ***."""
    return _LINK_TOKEN.sub(r"\1***", body)


@dataclass
class ConsoleBackend:
    """The default: writes the message to the log (masked phone, link tokens hidden; the full
    text is stored on the notification) and counts it as sent."""

    def send(self, to: str, body: str, status_callback: Optional[str] = None) -> str:
        log.info("SMS (console) to %s: %s", mask_phone(to), redact_links(body))
        return f"console-{uuid.uuid4().hex}"


# Twilio error codes that will never succeed on retry.
TWILIO_PERMANENT = {21211, 21212, 21408, 21602, 21603, 21604, 21606, 21610, 21612, 21614,
                    20404}
# Refusals of the account, not of the message: a token rotated in Twilio's console before the
# shop's settings, the sender's queue full. Every SMS of the meantime failed for good would be
# lost; retried (within the attempts' limit), they go once the account works again.
TWILIO_ACCOUNT_RETRY = {20003: "Twilio refused the account's credentials",
                        21611: "the sender's queue at Twilio is full"}


class TwilioBackend:
    def __init__(self, account_sid: str, auth_token: str, from_number: Optional[str] = None,
                 messaging_service_sid: Optional[str] = None, api_base_url: Optional[str] = None,
                 timeout: float = 10):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        # environment= pins edge and region empty: a TWILIO_REGION in the process environment
        # would otherwise rewrite the host (127.0.0.1 -> 127.ie1.0.1).
        self.client = Client(account_sid, auth_token,
                             http_client=TwilioHttpClient(timeout=timeout),
                             environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""})
        self.client.edge = None
        self.client.region = None
        if api_base_url:
            self.client.api.base_url = api_base_url.rstrip("/")
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid

    def send(self, to: str, body: str, status_callback: Optional[str] = None) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        kwargs = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            code = exc.code or exc.status
            if exc.status == 429 or code == 20429:
                raise TransientFailure(code, "throttled by Twilio") from exc
            if code in TWILIO_ACCOUNT_RETRY:
                raise TransientFailure(code, TWILIO_ACCOUNT_RETRY[code]) from exc
            if exc.status in (502, 503):
                # The edge refused the request (unavailable): it was not processed.
                raise TransientFailure(code, f"Twilio answered {exc.status}") from exc
            if exc.status >= 500:
                raise AmbiguousFailure(code, f"Twilio answered {exc.status}") from exc
            if code in TWILIO_PERMANENT or 400 <= exc.status < 500:
                raise PermanentFailure(code, str(exc.msg)) from exc
            raise TransientFailure(code, str(exc.msg)) from exc
        except TwilioException as exc:
            raise AmbiguousFailure(None, str(exc)) from exc
        except requests.ConnectionError as exc:
            # Refused before the request went out: nothing was accepted.
            if _connect_phase(exc):
                raise TransientFailure(None, "could not connect to Twilio") from exc
            raise AmbiguousFailure(None, "connection lost after sending") from exc
        except requests.Timeout as exc:
            if isinstance(exc, requests.ConnectTimeout):
                raise TransientFailure(None, "timed out connecting to Twilio") from exc
            raise AmbiguousFailure(None, "Twilio did not answer in time") from exc
        except requests.RequestException as exc:
            raise AmbiguousFailure(None, str(exc)[:200]) from exc
        return message.sid


    # Twilio's largest page: one request holds a customer's whole history with the shop
    LOOKUP_PAGE_SIZE = 1000
    # Past this many pages the lookup gives up (LookupFailure) rather than guess: more than
    # thousands of messages to one customer is not a customer.
    LOOKUP_PAGES = 5

    def sent_since(self, to: str, body: str, since: datetime) -> Iterator[list[Found]]:
        """The messages Twilio holds that this backend sent to ``to`` with ``body`` (the same
        sender number or Messaging Service) and created at or after ``since``, oldest first:
        one list per page read, so the caller can note its progress between requests (an
        empty list for a page without any). Raises LookupFailure when a request fails.

        No DateSent filter: it goes by the day, and by the date the message left Twilio,
        which a message still queued there does not have yet (it would hide the very message
        looked for). So the list is of every message to the number from the sender, newest
        first, read to its last page; ``since`` is matched on ``date_created``. Twilio sorts by
        the date sent and does not say where the unsent ones go: reading every page does not
        depend on it."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        query = {"to": to, "page_size": self.LOOKUP_PAGE_SIZE}
        if not self.messaging_service_sid:
            query["from_"] = self.from_number
        # date_created is to the second: a message created in the second ``since`` falls in
        since = since.replace(microsecond=0)
        page = None
        try:
            for _ in range(self.LOOKUP_PAGES):
                page = (self.client.messages.page(**query) if page is None
                        else page.next_page())
                if page is None:
                    return
                yield sorted((Found(m.sid, m.status or "", m.date_created,
                                    None if m.error_code is None else str(m.error_code))
                              for m in page if self._ours(m, body)
                              and m.date_created is not None and m.date_created >= since),
                             key=lambda f: f.created)
                if not page.next_page_url:
                    return
        except TwilioRestException as exc:
            raise LookupFailure(exc.code or exc.status,
                                f"Twilio answered {exc.status}: {exc.msg}"[:200]) from exc
        except TwilioException as exc:  # a page that was not a 200 (paging), or no JSON
            raise LookupFailure(_status_of(exc), str(exc)[:200]) from exc
        except requests.RequestException as exc:
            raise LookupFailure(None, "Twilio did not answer in time" if isinstance(
                exc, requests.Timeout) else "could not reach Twilio") from exc
        raise LookupFailure(None, f"more than {self.LOOKUP_PAGES} pages of messages")

    def _ours(self, message, body: str) -> bool:
        """Whether a listed message is one this backend would have sent with ``body``."""
        if message.body != body or message.direction not in (None, "outbound-api"):
            return False
        if self.messaging_service_sid:
            return message.messaging_service_sid == self.messaging_service_sid
        return message.from_ == self.from_number


def _status_of(exc: Exception) -> Optional[int]:
    """The HTTP status in a twilio-python TwilioException raised while paging."""
    for arg in getattr(exc, "args", ()):
        status = getattr(arg, "status_code", None)
        if status is not None:
            return status
    return None


def _connect_phase(exc: Exception) -> bool:
    text = repr(exc)
    # (a name that does not resolve, "Temporary failure in name resolution" when the shop's
    # DNS is down, is urllib3's NameResolutionError: nothing left either)
    return bool(re.search(r"NewConnectionError|NameResolutionError|Connection refused|"
                          r"Name or service", text))


# How a panel wants the receiver's number: many Iranian panels refuse +98... and take only
# 0912... ("national") or 98912... ("international", E.164 without its +).
TO_FORMATS = ("e164", "national", "international")


def receiver(e164: str, to_format: str) -> str:
    """``e164`` (+989121234567) as the panel wants it: +989121234567, 09121234567 or
    989121234567. A number of another country stays in full (without its + when
    "international"), as no national form reaches it from an Iranian panel."""
    if to_format == "national" and e164.startswith("+98"):
        return "0" + e164[3:]
    if to_format == "international":
        return e164.lstrip("+")
    return e164


# A panel's refusal of the shop's account, not of the message: the key (401, 403) or the
# credit (402; 418 is how Kavenegar says it) until someone mends it. Failed for good, every
# SMS of the meantime would be lost; retried within the attempts, they go after a top-up.
PANEL_ACCOUNT_RETRY = {401, 402, 403, 418}


class HttpGatewayBackend:
    """A generic SMS panel over HTTP (the shape Iranian panels use): URL, method, the names of
    the receiver and message parameters, static parameters (API key, sender line)."""

    def __init__(self, url: str, method: str = "POST", to_param: str = "to",
                 message_param: str = "message", static_params: Optional[dict] = None,
                 id_field: Optional[str] = None, timeout: float = 10,
                 to_format: str = "e164"):
        if to_format not in TO_FORMATS:
            raise ValueError(f"SMS_HTTP_TO_FORMAT {to_format!r}: one of {', '.join(TO_FORMATS)}")
        self.to_format = to_format
        self.url = url
        self.method = method.upper()
        self.to_param = to_param
        self.message_param = message_param
        self.static_params = static_params or {}
        self.id_field = id_field
        self.timeout = timeout

    def send(self, to: str, body: str, status_callback: Optional[str] = None) -> str:
        params = {**self.static_params, self.to_param: receiver(to, self.to_format),
                  self.message_param: body}
        try:
            if self.method == "GET":
                resp = requests.get(self.url, params=params, timeout=self.timeout)
            else:
                resp = requests.post(self.url, data=params, timeout=self.timeout)
        except requests.ConnectTimeout as exc:
            raise TransientFailure(None, "timed out connecting to the SMS gateway") from exc
        except requests.ConnectionError as exc:
            if _connect_phase(exc):
                raise TransientFailure(None, "could not connect to the SMS gateway") from exc
            raise AmbiguousFailure(None, "connection lost after sending") from exc
        except requests.RequestException as exc:
            raise AmbiguousFailure(None, "the SMS gateway did not answer in time") from exc
        if resp.status_code == 429:
            raise TransientFailure(429, "throttled by the SMS gateway")
        if resp.status_code in (502, 503):
            raise TransientFailure(resp.status_code, f"gateway answered {resp.status_code}")
        if resp.status_code >= 500:
            raise AmbiguousFailure(resp.status_code, f"gateway answered {resp.status_code}")
        if resp.status_code in PANEL_ACCOUNT_RETRY:
            raise TransientFailure(resp.status_code, _readable(resp.text)[:200])
        if resp.status_code >= 400:
            raise PermanentFailure(resp.status_code, resp.text[:200])
        if not self.id_field:
            return f"gw-{uuid.uuid4().hex}"
        # Panels answer a refusal (no credit, a blocked line, a bad number) with 200 and
        # their own status in the body: with the id's field named, an answer without an id
        # did not send the message. Not retried: a field named wrongly would resend each.
        provider_id = _field(resp.text, self.id_field)
        if provider_id in (None, "", 0):
            raise PermanentFailure(None, f"{PANEL_NO_ID}: {_readable(resp.text)[:180]}")
        return str(provider_id)


PANEL_NO_ID = "the SMS panel answered without a message id"


def _readable(text: str) -> str:
    """A panel's answer as the shop can read it: JSON with its \\u escapes as letters."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return " ".join(text.split())


def _field(text: str, path: str):
    """The value at ``path`` ("messageid", "entries.0.messageid") in a JSON answer, or
    None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    for key in path.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def backend_from_config(config) -> object:
    name = config.get("SMS_BACKEND") or "console"
    if name == "console":
        return ConsoleBackend()
    if name == "twilio":
        return TwilioBackend(
            config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
            from_number=config.get("TWILIO_FROM_NUMBER"),
            messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID"),
            api_base_url=config.get("TWILIO_API_BASE_URL"),
            timeout=float(config.get("TWILIO_TIMEOUT") or 10))
    if name == "http":
        static = config.get("SMS_HTTP_STATIC_PARAMS") or {}
        if isinstance(static, str):
            static = json.loads(static)
        return HttpGatewayBackend(
            config["SMS_HTTP_URL"], method=config.get("SMS_HTTP_METHOD", "POST"),
            to_param=config.get("SMS_HTTP_TO_PARAM", "to"),
            message_param=config.get("SMS_HTTP_MESSAGE_PARAM", "message"),
            static_params=static, id_field=config.get("SMS_HTTP_ID_FIELD"),
            to_format=config.get("SMS_HTTP_TO_FORMAT") or "e164",
            timeout=float(config.get("SMS_HTTP_TIMEOUT") or 10))
    raise ValueError(f"unknown SMS_BACKEND {name!r} (console, twilio or http)")
