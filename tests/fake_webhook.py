"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that checks each delivery's
signature as the README tells a shop's program to (HMAC-SHA256 of timestamp "." body with the
secret, compared in constant time, the timestamp within five minutes), and records it.

Knobs: ``secret`` (what it checks with), ``fail_next(n, status)`` answers the next n POSTs with
that status, ``always(status)`` answers every POST so (None: back to 204).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret: str, headers, body: bytes, now: float | None = None) -> bool:
    stamp = headers.get("X-Servicedesk-Timestamp", "")
    given = headers.get("X-Servicedesk-Signature", "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


class FakeWebhook:
    def __init__(self):
        self.lock = threading.Lock()
        self.secret = ""
        self.received: list[dict] = []  # every POST: status answered, verified, headers, json
        self._fail: list[int] = []
        self._always = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake.lock:
                    ok = verify(fake.secret, self.headers, body)
                    status = fake._fail.pop(0) if fake._fail else (fake._always or 204)
                    if not ok:
                        status = 401
                    fake.received.append({
                        "path": self.path, "status": status, "verified": ok,
                        "headers": dict(self.headers), "body": body,
                        "json": json.loads(body) if body else None})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/servicedesk"

    def start(self) -> "FakeWebhook":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self._fail.clear()
            self._always = None
            self.secret = ""

    def fail_next(self, n: int, status: int) -> None:
        with self.lock:
            self._fail.extend([status] * n)

    def always(self, status) -> None:
        with self.lock:
            self._always = status

    def delivered(self) -> list[dict]:
        """The POSTs it accepted (signature good, answered 2xx)."""
        with self.lock:
            return [r for r in self.received if r["verified"] and r["status"] < 300]

    def wait_for(self, n: int, timeout: float = 20) -> list[dict]:
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.delivered()) < n:
            time.sleep(0.05)
        return self.delivered()
