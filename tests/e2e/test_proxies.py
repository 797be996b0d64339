"""Behind a reverse proxy (SPEC §12 v3): the sign-in throttle counts each client, as seen
through ``STATREPORT_TRUSTED_PROXIES``, never the proxy."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests.conftest import ServerFactory
from tests.support import RunningServer


def _bad_sign_ins(server: RunningServer, client: str, times: int) -> list[int]:
    with server.client(follow_redirects=False) as http:
        return [
            http.post(
                "/ui/login", data={"token": "wrong"}, headers={"X-Forwarded-For": client}
            ).status_code
            for _ in range(times)
        ]


def test_one_clients_mistakes_do_not_lock_out_the_others(server_factory: ServerFactory) -> None:
    server = server_factory(trusted_proxies="127.0.0.1")
    assert _bad_sign_ins(server, "203.0.113.5", 6) == [401] * 5 + [429]
    assert _bad_sign_ins(server, "203.0.113.9", 1) == [401]  # another person behind the proxy


def test_without_trusted_proxies_the_forwarded_header_is_not_believed(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    assert _bad_sign_ins(server, "203.0.113.5", 5) == [401] * 5
    # A forged header cannot dodge the throttle: the address is the connection's.
    assert _bad_sign_ins(server, "203.0.113.9", 1) == [429]


def test_a_forwarded_header_from_an_untrusted_peer_is_not_believed(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(trusted_proxies="10.0.0.0/8")
    assert _bad_sign_ins(server, "203.0.113.5", 5) == [401] * 5
    assert _bad_sign_ins(server, "203.0.113.9", 1) == [429]


@pytest.mark.parametrize("value", ["proxy.example", "10.0.0.0/33", "127.0.0.1,,nonsense"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="addresses or networks"):
        Settings(trusted_proxies=value)
