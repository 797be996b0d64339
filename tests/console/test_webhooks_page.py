"""The Webhooks page (SPEC §14) in a real browser: an admin adds an endpoint and copies its
secret, sends a test that a real receiver verifies with the Standard Webhooks library, reads
the delivery log and replays; a viewer sees the log and no button."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext
from standardwebhooks import Webhook as Verifier

from tests import clock
from tests.console.conftest import Console, sign_in, staff_token
from tests.receiver import Receiver, receiving
from tests.support import start_thread_server

pytestmark = pytest.mark.moment(clock.WRITTEN_ON)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    server = start_thread_server(tmp_path_factory.mktemp("hooks"), webhook_allow_private=True)
    viewer, admin = staff_token(server, "vera", "viewer"), staff_token(server, "adam", "admin")
    yield Console(server, viewer, admin)
    server.stop()


def test_an_admin_adds_tests_and_replays_a_webhook_a_viewer_reads_it(
    context: BrowserContext, console: Console, receiver: Receiver
) -> None:
    page = sign_in(context, console, console.admin)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("licence-ops chat")
    page.get_by_label("every type, present and future").uncheck()
    page.get_by_label("webhook.test").check()
    page.get_by_role("button", name="Add the endpoint").click()
    secret = page.locator(".shown-once code.secret").inner_text()
    assert secret.startswith("whsec_")
    page.reload()
    assert page.locator(".shown-once").count() == 0  # shown once

    page.get_by_role("button", name="Send a test event").click()
    assert "Delivered" in page.locator("#outcome").inner_text()
    (arrived,) = receiver.wait_for(1)
    assert Verifier(secret).verify(arrived.body, arrived.headers)["type"] == "webhook.test"

    page.get_by_role("link", name="licence-ops chat").click()
    row = page.locator("tbody tr", has_text="webhook.test")
    assert "delivered" in row.inner_text()
    row.get_by_role("button", name="Replay").click()
    assert "Delivered" in page.locator("#outcome").inner_text()
    assert receiver.wait_for(2)[1].headers["webhook-id"] == arrived.headers["webhook-id"]

    page.get_by_role("button", name="Rotate the secret").click()  # a second step first
    page.get_by_role("button", name="Rotate the secret").click()
    assert page.locator(".shown-once code.secret").inner_text() != secret

    context.clear_cookies()
    viewer = sign_in(context, console, console.viewer)
    viewer.goto(console.url + "/ui/webhooks")
    assert "licence-ops chat" in viewer.locator("main").inner_text()
    for name in ("Send a test event", "Replay", "Add the endpoint"):
        assert viewer.get_by_role("button", name=name).count() == 0
    assert re.search(r"webhook\.test", viewer.locator("section.webhook").inner_text())
