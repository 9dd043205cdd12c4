"""The load client shared by the benchmarks (bench/run.py, bench_reception.py, bench_pages.py in
the suite): a keep-alive HTTP/1.1 client on a raw socket, request builders, and two bounded
load generators.

A raw socket rather than http.client: the client shares the machine's two cores with the
servers, so the less CPU it spends, the more the figures measure the servers.
"""
from __future__ import annotations

import itertools
import json
import socket
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Optional


class Connection:
    """One keep-alive connection: send prepared bytes, read one response (Content-Length or
    chunked). A reused connection the server closed while idle is reopened once."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.sock: Optional[socket.socket] = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _fill(self) -> None:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def request(self, raw: bytes) -> tuple[int, dict, bytes]:
        """(status, headers as lower-case name -> list of values, body)."""
        reused = self.sock is not None
        try:
            return self._request(raw)
        except (ConnectionError, OSError):
            if not reused:
                raise
            return self._request(raw)

    def _request(self, raw: bytes) -> tuple[int, dict, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.sendall(raw)
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers: dict = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
                body = self._chunked()
            else:
                length = int((headers.get("content-length") or ["0"])[0])
                while len(self.buf) < length:
                    self._fill()
                body, self.buf = self.buf[:length], self.buf[length:]
            if "close" in ",".join(headers.get("connection", [])).lower():
                self.close()
            return status, headers, body
        except Exception:
            self.close()
            raise

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                self._fill()
            body, self.buf = body + self.buf[:size], self.buf[size + 2:]
            if size == 0:
                return body


def http_request(method: str, path: str, body: Optional[dict] = None,
                 headers: Optional[dict] = None) -> bytes:
    """A request with an optional JSON body, accepting JSON."""
    data = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def raw_request(method: str, path: str, headers: dict | None = None,
                form: dict | None = None, json_body: str | None = None) -> bytes:
    """A request as a browser or a script sends it: a form, a JSON text, or no body."""
    body = b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        lines.append("Content-Type: application/x-www-form-urlencoded")
    elif json_body is not None:
        body = json_body.encode()
        lines.append("Content-Type: application/json")
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Load:
    """One bounded run: n requests over a fixed number of connections."""
    n: int
    wall: float
    latencies: list
    statuses: list
    bodies: list
    expected: int

    @property
    def rps(self) -> float:
        return self.n / self.wall

    @property
    def errors(self) -> int:
        return sum(1 for s in self.statuses if s != self.expected)

    def first_error(self) -> str:
        for status, body in zip(self.statuses, self.bodies):
            if status != self.expected:
                return f"{status}: {(body or b'').decode(errors='replace')[:300]}"
        return ""


def load(port: int, requests: list[bytes], concurrency: int, expected: int,
         keep_bodies: bool = False) -> Load:
    """Send every prepared request once, ``concurrency`` at a time, each connection kept alive;
    the clock runs from the first send to the last answer."""
    n = len(requests)
    latencies, statuses = [0.0] * n, [0] * n
    bodies: list = [None] * n
    counter = itertools.count()
    start = threading.Barrier(concurrency + 1)

    def client():
        conn = Connection(port)
        start.wait()
        while True:
            i = next(counter)  # atomic under the GIL
            if i >= n:
                break
            t0 = time.perf_counter()
            try:
                status, _, body = conn.request(requests[i])
            except Exception as exc:  # noqa: BLE001 - counted as an error, not retried
                status, body = -1, repr(exc).encode()
            latencies[i] = time.perf_counter() - t0
            statuses[i] = status
            if keep_bodies or status != expected:
                bodies[i] = body
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return Load(n, time.perf_counter() - t0, latencies, statuses, bodies, expected)


def run_load(conns: list, make_request: Callable[[int, int], bytes], n: int,
             expected: int) -> dict:
    """``n`` requests over the given (already set up, e.g. logged-in) connections, one thread
    each, back to back; ``make_request(i, k)`` is the k-th request of connection i."""
    per = [n // len(conns) + (1 if i < n % len(conns) else 0) for i in range(len(conns))]
    latencies: list = []
    errors: list = []
    lock = threading.Lock()
    start_gate = threading.Barrier(len(conns) + 1)

    def worker(i: int, conn) -> None:
        mine, bad = [], 0
        start_gate.wait()
        for k in range(per[i]):
            raw = make_request(i, k)
            t0 = time.perf_counter()
            try:
                status, _, _ = conn.request(raw)
            except (ConnectionError, OSError):
                status = -1
            mine.append(time.perf_counter() - t0)
            bad += status != expected
        with lock:
            latencies.extend(mine)
            errors.append(bad)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"n": n, "rps": n / wall, "p50": percentile(latencies, 0.50) * 1000,
            "p99": percentile(latencies, 0.99) * 1000, "errors": sum(errors)}


def percentile(sorted_values: list, q: float) -> float:
    """Nearest rank of an already sorted list (q in 0..1)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def summarize(rounds: list[dict]) -> dict:
    """Medians over rounds of ``run_load`` results."""
    return {"rps": round(statistics.median(r["rps"] for r in rounds), 1),
            "p50_ms": round(statistics.median(r["p50"] for r in rounds), 2),
            "p99_ms": round(statistics.median(r["p99"] for r in rounds), 2),
            "errors": sum(r["errors"] for r in rounds)}
