"""What the console's browser tests share: a signed-in staff member's browser (headless
Chromium from Debian's ``chromium`` package, driven by Playwright) that may load nothing from
anywhere but the console."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support import RunningServer, chromium


@dataclass
class Console:
    """A server with a customer over its licence, and a viewer's and an admin's token."""

    server: RunningServer
    viewer: str
    admin: str

    @property
    def url(self) -> str:
        return self.server.url


def staff_token(server: RunningServer, name: str, role: str) -> str:
    with server.admin() as http:
        response = http.post("/v1/tokens", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """A fresh browser profile that records every request it makes: all must go to the
    console's own origin (nothing from a CDN, a font service or anywhere else)."""
    # The server's certificate is self-signed for the test; the connection is still TLS.
    made = browser.new_context(ignore_https_errors=True)
    made.set_default_timeout(10_000)
    requested: list[str] = []
    made.on("request", lambda request: requested.append(request.url))
    yield made
    made.close()
    foreign = [u for u in requested if not u.startswith((console.url + "/", "data:"))]
    assert foreign == []
    assert requested  # the test did load pages


def sign_in(context: BrowserContext, console: Console, token: str) -> Page:
    page = context.new_page()
    page.goto(console.url + "/")
    assert page.url.startswith(console.url + "/ui/login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    assert page.url == console.url + "/ui/"
    return page


def csrf_of(page: Page) -> str:
    value = page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value
