"""A real HTTP receiver for webhooks on loopback, recording what arrives; each request is
answered as the test planned (a status, or a receiver that never answers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Planned answers: a status code, or HANG (accept, read, never answer).
HANG = -1


@dataclass
class Arrived:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    """Where the receiver listens, its plan and what arrived."""

    url: str
    plan: list[int] = field(default_factory=list)
    arrived: list[Arrived] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def wait_for(self, count: int, timeout: float = 30) -> list[Arrived]:
        """At least ``count`` requests, or fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrived) >= count:
                    return list(self.arrived)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.arrived)} of {count} webhook requests arrived")

    def types(self) -> list[str]:
        """The ``type`` of each request's body, in the order they arrived."""
        with self.lock:
            return [json.loads(a.body)["type"] for a in self.arrived]


@contextmanager
def receiving(plan: list[int] | None = None) -> Iterator[Receiver]:
    """A receiver on a free loopback port for the ``with`` block."""
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                answer = state.plan.pop(0) if state.plan else 200
                state.arrived.append(Arrived(self.path, dict(self.headers), body, answer))
            if answer == HANG:
                state.release.wait(60)
                return
            self.send_response(answer)
            if answer in (429, 503):
                self.send_header("Retry-After", "2")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(
        url=f"http://127.0.0.1:{server.server_address[1]}/hooks", plan=list(plan or [])
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
