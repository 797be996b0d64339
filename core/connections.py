"""Bounds on what one client can hold: TLS handshakes, request heads, connections.

uvicorn with httptools keeps a connection that never sends a request, a request head that
never ends, and a header of any size; asyncio waits 60 s for a TLS handshake. Each is a way
for one client to exhaust memory or file descriptors (issue 11: 64 MiB headers, thousands of
idle connections). These bounds close them; a normal client never meets one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

log = logging.getLogger("statreport.http")

#: A client that has not finished its TLS handshake by then is dropped.
HANDSHAKE_TIMEOUT_SECONDS = 5.0
#: A request head (request line and headers) not complete by then is answered 408 and closed.
HEAD_TIMEOUT_SECONDS = 10.0
#: The largest request head, and the most header fields, answered otherwise with 431.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100


class BoundedLoop(uvloop.Loop):
    """uvloop, with a TLS handshake that must finish within ``HANDSHAKE_TIMEOUT_SECONDS``."""

    async def create_server(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> asyncio.AbstractServer:
        """``create_server`` with the handshake timeout, for uvicorn's TLS listener."""
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", HANDSHAKE_TIMEOUT_SECONDS)
        return await super().create_server(*args, **kwargs)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop uvicorn runs statreport on (``Config(loop=...)``)."""
    return BoundedLoop()


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline, a size and a count on each request
    head, and a cap on open connections (``bounded_protocol`` sets it from the settings)."""

    max_connections = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._parsed_head_bytes = 0  # what the parser has passed on of this head
        self._ends = 0  # heads and messages completed, to tell what a read carried
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit the connection if there is room, making room by closing a connection idle
        between requests (keep-alive) when there is none; and start the clock on its first
        head. Only when every open connection is busy is the new one refused."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._close_an_idle_one():
            log.warning("event=http.connection_refused open=%d", self.max_connections)
            transport.abort()
            return
        self._arm_head_timer()

    @property
    def idle(self) -> bool:
        """Between requests of a kept-alive connection: no head begun, no response owed."""
        return (
            self._in_head
            and self._head_bytes == 0
            and self._parsed_head_bytes == 0
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        )

    def _close_an_idle_one(self) -> bool:
        """Close one other connection idle between requests (a client reopens one when it
        needs it); False when every other one is busy."""
        for other in self.connections:
            if other is not self and isinstance(other, BoundedHttpProtocol) and other.idle:
                other.transport.close()
                other.connections.discard(other)
                log.info("event=http.idle_connection_closed reason=connection_limit")
                return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the head's deadline."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse, then count the bytes of a head still unfinished: the parser keeps at most
        ``MAX_HEAD_BYTES`` and one read of it before the request is refused."""
        if self._refused:
            return
        # Only a read in which no head and no message ended is wholly head: a read that ends
        # one also carries a body or the previous request.
        ends_before = self._ends
        super().data_received(data)
        if self._ends == ends_before and self._in_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, f"The request head is larger than {MAX_HEAD_BYTES} bytes.")

    def on_message_begin(self) -> None:
        """A new request: its head gets a fresh deadline."""
        super().on_message_begin()
        self._parsed_head_bytes = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        """Take the request target, counted toward the head's size."""
        if self._refused:
            return
        self._parsed_head_bytes += len(url)
        if self._parsed_head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, f"The request head is larger than {MAX_HEAD_BYTES} bytes.")
            return
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Take a header, up to ``MAX_HEADERS`` of them and ``MAX_HEAD_BYTES`` in all: counted
        as parsed too, since a head that arrives in one read is parsed whole before
        ``data_received`` can count it."""
        if self._refused:
            return
        if len(self.headers) >= MAX_HEADERS:
            self._refuse(431, f"The request has more than {MAX_HEADERS} header fields.")
            return
        self._parsed_head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._parsed_head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, f"The request head is larger than {MAX_HEAD_BYTES} bytes.")
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete: stop its clock, and hand the request to the app."""
        if self._refused:
            return
        self._in_head = False
        self._ends += 1
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Nothing more of a refused request reaches the app."""
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        """The next bytes begin the next request's head."""
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._parsed_head_bytes = 0
        self._ends += 1

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection that never sent a request
            return
        self._refuse(408, f"The request head did not arrive within {HEAD_TIMEOUT_SECONDS:g} s.")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer with a problem document and close, without reading further."""
        self._refused = True
        self._disarm_head_timer()
        title, slug = _REFUSALS[status]
        body = json.dumps(
            {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
        ).encode()
        self.transport.write(
            f"HTTP/1.1 {status} {title}\r\n".encode()
            + f"content-type: {PROBLEM_MEDIA_TYPE}\r\n".encode()
            + f"content-length: {len(body)}\r\n".encode()
            + b"connection: close\r\n\r\n"
            + body
        )
        self.transport.close()
        log.info("event=http.head_refused status=%d", status)


_REFUSALS = {
    408: ("Request Timeout", "head-timeout"),
    431: ("Request Header Fields Too Large", "head-too-large"),
}


def bounded_protocol(*, max_connections: int) -> type[BoundedHttpProtocol]:
    """The protocol class for uvicorn's ``Config(http=...)``, capped at ``max_connections``."""
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), {"max_connections": max_connections})
