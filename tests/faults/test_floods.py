"""Header and connection floods, bounded in count and time, on loopback only: the server
refuses what is too big, drops what is idle, and keeps answering (issue 11 #6, #7)."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.connections import HANDSHAKE_TIMEOUT_SECONDS, HEAD_TIMEOUT_SECONDS
from tests.support import ServerProcess, spawn_server


@pytest.fixture
def child(tmp_path: Path) -> Iterator[ServerProcess]:
    process = spawn_server(tmp_path / "data", STATREPORT_MAX_CONNECTIONS="40")
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.terminate()


def _port(child: ServerProcess) -> int:
    return int(child.server.url.rsplit(":", 1)[1])


def _tls(child: ServerProcess) -> socket.socket:
    context = ssl.create_default_context(cafile=str(child.server.ca_cert))
    raw = socket.create_connection(("127.0.0.1", _port(child)), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _rss_kib(child: ServerProcess) -> int:
    status = Path(f"/proc/{child.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


def _healthy(child: ServerProcess) -> bool:
    with child.server.client() as http:
        return http.get("/healthz").status_code == 200


def test_a_huge_header_is_431_and_memory_stays_put(child: ServerProcess) -> None:
    before = _rss_kib(child)
    for _ in range(6):
        sock = _tls(child)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(64 * 16):  # 64 MiB, in 64 KiB pieces, unless refused first
                sock.sendall(b"a" * 65536)
        except OSError:
            pass  # the server answered and closed: the rest was never read
        status, problem = _answer(sock)
        sock.close()
        assert status == 431
        assert "larger than 65536 bytes" in str(problem["detail"])
    grown_mib = (_rss_kib(child) - before) / 1024
    print(f"RSS grew {grown_mib:.1f} MiB over six 64 MiB headers")
    assert grown_mib < 50  # before the bound: +856 MiB
    assert _healthy(child)


def test_too_many_header_fields_is_431(child: ServerProcess) -> None:
    sock = _tls(child)
    fields = b"".join(b"X-F%d: 1\r\n" % n for n in range(150))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    status, problem = _answer(sock)
    sock.close()
    assert status == 431
    assert "more than 100 header fields" in str(problem["detail"])


def test_a_head_that_never_ends_is_408_and_closed(child: ServerProcess) -> None:
    sock = _tls(child)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    started = time.monotonic()
    status, problem = _answer(sock)
    sock.close()
    assert status == 408
    assert time.monotonic() - started < HEAD_TIMEOUT_SECONDS + 5
    assert "did not arrive within" in str(problem["detail"])


def test_idle_connections_are_dropped_and_health_comes_back(child: ServerProcess) -> None:
    port = _port(child)
    # Some never start TLS; some finish it and never send a request; more than the cap.
    silent = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(30)]
    idle = [_tls(child) for _ in range(30)]
    started = time.monotonic()
    try:
        for sock in silent + idle:
            sock.settimeout(HEAD_TIMEOUT_SECONDS + 10)
        closed = 0
        for sock in silent + idle:
            try:
                closed += sock.recv(1) == b""
            except (OSError, ssl.SSLError):
                closed += 1
        waited = time.monotonic() - started
    finally:
        for sock in silent + idle:
            sock.close()
    print(f"60 idle connections dropped within {waited:.1f} s")
    assert closed == 60
    assert waited < HEAD_TIMEOUT_SECONDS + 5
    assert HANDSHAKE_TIMEOUT_SECONDS < HEAD_TIMEOUT_SECONDS
    assert _healthy(child)


def test_sigterm_ends_the_server_within_seconds_despite_idle_connections(
    child: ServerProcess,
) -> None:
    idle = []
    for _ in range(20):  # keep-alive connections, each after one answered request
        sock = _tls(child)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        idle.append(sock)
    started = time.monotonic()
    child.process.send_signal(signal.SIGTERM)
    child.process.wait(timeout=30)
    took = time.monotonic() - started
    for sock in idle:
        sock.close()
    print(f"SIGTERM took {took:.1f} s with 20 idle connections")
    # uvicorn re-raises the signal once shut down, as a signalled process should end.
    assert child.process.returncode in (0, -signal.SIGTERM)
    assert "event=store.closed" in child.log_path.read_text()  # a clean close, checkpointed
    assert took < 8  # it waited ~30 s before


def test_connections_beyond_the_cap_are_closed_at_once(child: ServerProcess) -> None:
    held = [_tls(child) for _ in range(40)]  # the cap (STATREPORT_MAX_CONNECTIONS)
    try:
        extra = _tls(child)
        extra.settimeout(3)
        try:
            refused = extra.recv(1) == b""
        except (OSError, ssl.SSLError):
            refused = True
        extra.close()
        assert refused
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while not _healthy(child):  # room again as soon as the flood lets go
        assert time.monotonic() < deadline
        time.sleep(0.1)
