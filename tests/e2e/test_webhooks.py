"""Signed webhooks (SPEC §14 v3) to real HTTP receivers on loopback, their signatures checked
with the Standard Webhooks library a customer's receiver would use."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from standardwebhooks import Webhook as Verifier

from tests.conftest import ServerFactory
from tests.e2e.test_weekly import MONDAY, populate, run_weekly
from tests.receiver import HANG, Arrived, receiving
from tests.support import RunningServer, ServerProcess, assert_problem, evaluate, spawn_server
from webhooks.service import new_secret

pytestmark = pytest.mark.moment(MONDAY)

#: Retries a second apart, so a test sees them.
FAST = {"webhook_allow_private": True, "webhook_retry_schedule": "1,1,1"}


def register(server: RunningServer, url: str, **body: Any) -> dict[str, Any]:
    with server.admin() as http:
        answer = http.post("/v1/webhooks", json={"url": url, **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def verified(secret: str, arrived: Arrived) -> dict[str, Any]:
    """The body, once the library has checked its signature (it raises otherwise)."""
    body: dict[str, Any] = Verifier(secret).verify(arrived.body, arrived.headers)
    return body


def recorded(server: RunningServer, webhook_id: str, status: str) -> dict[str, Any]:
    """The endpoint's one delivery once the log has it in ``status`` (the receiver hears an
    attempt a moment before the server records what came of it)."""
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = log_of(server, webhook_id)
        if len(rows) == 1 and rows[0]["status"] == status:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError(f"the delivery log never said {status}: {rows}")


def docs_receiver() -> Callable[[str, bytes, dict[str, str]], dict[str, Any] | None]:
    """The ``receive`` function of docs/webhooks.md, run as written there."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    block = re.search(r"```python\n(.*?)```", page, re.DOTALL)
    assert block is not None
    scope: dict[str, Any] = {}
    exec(compile(block[1], "docs/webhooks.md", "exec"), scope)  # noqa: S102 - our own docs
    receive: Callable[[str, bytes, dict[str, str]], dict[str, Any] | None] = scope["receive"]
    return receive


def log_of(server: RunningServer, webhook_id: str, **params: str) -> list[dict[str, Any]]:
    with server.admin() as http:
        answer = http.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def test_where_a_webhook_may_be_sent_and_who_may_register_one(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    with server.admin() as http:
        for url, needle in (
            ("http://hooks.example.com/x", "https://"),
            ("https://user:pw@hooks.example.com/x", "credentials"),
            ("https://127.0.0.1/x", "non-public"),
            ("https://10.1.2.3/x", "non-public"),
            ("https://169.254.169.254/latest", "non-public"),
            ("https://[::1]/x", "non-public"),
            ("https://localhost/x", "non-public"),
        ):
            assert_problem(http.post("/v1/webhooks", json={"url": url}), 422, needle)
        assert_problem(
            http.post(
                "/v1/webhooks", json={"url": "https://8.8.8.8/x", "events": ["finding.nope"]}
            ),
            422,
            "Input should be 'finding.opened'",
        )
        created = http.post("/v1/webhooks", json={"url": "https://8.8.8.8/hooks"})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.startswith("whsec_")
        listed = http.get("/v1/webhooks").text
        assert secret not in listed
        assert "secret" not in http.get(f"/v1/webhooks/{created.json()['webhook_id']}").json()
        viewer = http.post("/v1/tokens", json={"name": "vera", "role": "viewer"}).json()["token"]
        audit = http.get(
            "/v1/audit-log", params={"target": f"webhook:{created.json()['webhook_id']}"}
        )
        assert audit.json()[0]["action"] == "webhook.create"
        assert secret not in audit.text
    with server.client(token=viewer) as http:
        assert http.get("/v1/webhooks").status_code == 200
        assert_problem(http.post("/v1/webhooks", json={"url": "https://8.8.8.8/x"}), 403, "viewer")


def test_a_run_announces_its_findings_signed_once_each(server_factory: ServerFactory) -> None:
    server = server_factory(public_url="https://statreport.vendor.example", **FAST)
    populate(server)
    with receiving() as receiver:
        hook = register(server, receiver.url, description="ops chat")
        first = evaluate(server, "2026-11-22")
        kinds = {f["kind"] for f in first["findings"]}
        expected = len(first["findings"]) + 1  # one finding.opened each, and the run
        arrived = receiver.wait_for(expected)
        bodies = [verified(hook["secret"], a) for a in arrived]
        assert sorted(b["type"] for b in bodies) == sorted(
            ["finding.opened"] * len(first["findings"]) + ["evaluation.completed"]
        )
        acme = next(
            b
            for b in bodies
            if b["type"] == "finding.opened" and b["data"]["finding"]["customer_id"] == "acme"
        )
        assert acme["text"].startswith("acme (Alice) is over its users licence: 54 of 50 (+8.0 %)")
        assert acme["data"]["evidence_url"].startswith(
            "https://statreport.vendor.example/ui/findings/f_"
        )
        assert acme["data"]["evaluation_id"] == first["evaluation_id"]
        completed = next(b for b in bodies if b["type"] == "evaluation.completed")
        assert set(completed["data"]["findings"]) == kinds
        ids = [a.headers["webhook-id"] for a in arrived]
        assert len(set(ids)) == len(ids)
        receive = docs_receiver()  # the few lines docs/webhooks.md gives receivers
        assert receive(hook["secret"], arrived[0].body, arrived[0].headers) == bodies[0]
        assert receive(hook["secret"], arrived[0].body + b" ", arrived[0].headers) is None
        assert receive(new_secret(), arrived[0].body, arrived[0].headers) is None

        evaluate(server, "2026-11-22")  # the same day again: nothing new about a finding
        receiver.wait_for(expected + 1)
        assert receiver.types()[expected:] == ["evaluation.completed"]
        evaluate(server, "2026-11-20")  # an earlier day: announces nothing at all
        run_weekly(server, dry_run=True, force=True)  # nor does a dry run
        with pytest.raises(AssertionError):
            receiver.wait_for(expected + 2, timeout=3)
    delivered = log_of(server, hook["webhook_id"], status="delivered")
    assert len(delivered) == expected + 1
    assert all(d["attempts"] == 1 for d in delivered)


def test_retries_keep_the_id_410_disables_and_a_replay_resends(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(**FAST)
    with receiving(plan=[500, 503, 200]) as flaky, receiving(plan=[410]) as gone:
        hook = register(server, flaky.url, events=["webhook.test", "evaluation.completed"])
        dead = register(server, gone.url, events=["evaluation.completed"])
        evaluate(server, "2026-11-22")  # no customer: only evaluation.completed
        arrived = flaky.wait_for(3, timeout=30)
        assert len({a.headers["webhook-id"] for a in arrived}) == 1  # the same event, 3 times
        # The 503 said Retry-After: 2, longer than the schedule's 1 s: it was honoured.
        assert arrived[2].at - arrived[1].at >= 1.9
        row = recorded(server, hook["webhook_id"], "delivered")
        assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 3, 200)

        gone.wait_for(1)
        with server.admin() as http:
            for _ in range(50):
                state = http.get(f"/v1/webhooks/{dead['webhook_id']}").json()
                if not state["enabled"]:
                    break
                time.sleep(0.1)
            assert state["enabled"] is False
            assert "410" in state["disabled_reason"]
            audit = http.get("/v1/audit-log", params={"target": f"webhook:{dead['webhook_id']}"})
            newest = audit.json()[0]
            assert (newest["action"], newest["actor"]) == (
                "webhook.disable",
                "system",
            )

            replay = http.post(
                f"/v1/webhooks/{hook['webhook_id']}/deliveries/{row['event_id']}/replay"
            )
            assert replay.status_code == 200, replay.text
            assert replay.json()["delivered"] is True
            assert flaky.wait_for(4)[-1].headers["webhook-id"] == row["event_id"]

            tested = http.post(f"/v1/webhooks/{hook['webhook_id']}/test")
            assert tested.json()["delivered"] is True
            assert verified(hook["secret"], flaky.wait_for(5)[-1])["type"] == "webhook.test"


def test_a_rotated_secret_signs_beside_the_old_one(server_factory: ServerFactory) -> None:
    server = server_factory(**FAST)
    with receiving() as receiver:
        hook = register(server, receiver.url, events=["webhook.test"])
        with server.admin() as http:
            rotated = http.post(f"/v1/webhooks/{hook['webhook_id']}/rotate-secret").json()
            assert rotated["secret"] != hook["secret"]
            assert http.post(f"/v1/webhooks/{hook['webhook_id']}/test").json()["delivered"]
        (arrived,) = receiver.wait_for(1)
        assert len(arrived.headers["webhook-signature"].split(" ")) == 2
        assert verified(hook["secret"], arrived)["type"] == "webhook.test"  # the old one
        assert verified(rotated["secret"], arrived)["type"] == "webhook.test"  # and the new


def test_a_dead_receiver_holds_only_its_own_endpoint(server_factory: ServerFactory) -> None:
    server = server_factory(**FAST)
    with receiving(plan=[HANG] * 10) as dead, receiving() as alive:
        register(server, dead.url, events=["evaluation.completed"])
        live = register(server, alive.url, events=["evaluation.completed"])
        evaluate(server, "2026-11-22")
        dead.wait_for(1)
        (arrived,) = alive.wait_for(1, timeout=5)  # not after the dead one's 10 s
        assert verified(live["secret"], arrived)["type"] == "evaluation.completed"
        with server.admin() as http:  # the API answers meanwhile
            assert http.get("/v1/webhooks").status_code == 200


def spawn(data_dir: Path) -> ServerProcess:
    return spawn_server(
        data_dir,
        STATREPORT_WEBHOOK_ALLOW_PRIVATE="true",
        STATREPORT_WEBHOOK_RETRY_SCHEDULE="1",
    )


@pytest.mark.slow
def test_kill_9_with_deliveries_pending_loses_none(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with receiving(plan=[HANG] * 3) as receiver:
        running = spawn(data_dir)
        populate(running.server)
        hook = register(running.server, receiver.url)
        run = evaluate(running.server, "2026-11-22")
        expected = len(run["findings"]) + 1
        receiver.wait_for(1)  # attempts in flight, the rest pending
        running.kill()
        receiver.release.set()  # the hung answers go nowhere now
        restarted = spawn(data_dir)
        try:
            delivered: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while len(delivered) < expected and time.monotonic() < deadline:
                time.sleep(0.5)
                delivered = log_of(restarted.server, hook["webhook_id"], status="delivered")
            assert len(delivered) == expected
            answered = [a for a in receiver.arrived if a.answered == 200]
            ids = [a.headers["webhook-id"] for a in answered]
            # Every event arrived; one answered just before the kill but not yet recorded
            # comes again after the restart, as a retry: with the same id.
            assert set(ids) == {d["event_id"] for d in delivered}
            first = {verified(hook["secret"], a)["type"]: a for a in answered}
            assert set(first) == {"finding.opened", "evaluation.completed"}
        finally:
            restarted.terminate()


def test_an_endpoint_failing_for_5_days_is_disabled(
    server_factory: ServerFactory, moment: time_machine.Traveller
) -> None:
    server = server_factory(webhook_allow_private=True, webhook_retry_schedule=",".join(["1"] * 20))
    with receiving(plan=[500] * 100) as failing:
        hook = register(server, failing.url, events=["evaluation.completed"])
        evaluate(server, "2026-11-22")
        failing.wait_for(1)
        for _ in range(100):  # the first failure is recorded: the endpoint fails from then
            if any(d["attempts"] for d in log_of(server, hook["webhook_id"])):
                break
            time.sleep(0.1)
        # Still failing, 5 days on. From now: the module's clock has gone on from MONDAY for
        # as long as the tests before this one took.
        moment.move_to(datetime.now(UTC) + timedelta(days=5, minutes=1))
        with server.admin() as http:
            for _ in range(100):
                state = http.get(f"/v1/webhooks/{hook['webhook_id']}").json()
                if not state["enabled"]:
                    break
                time.sleep(0.1)
            assert state["enabled"] is False
            assert "every delivery failed since 2026-11-23" in state["disabled_reason"]
            audit = http.get("/v1/audit-log", params={"target": f"webhook:{hook['webhook_id']}"})
            assert (audit.json()[0]["action"], audit.json()[0]["actor"]) == (
                "webhook.disable",
                "system",
            )
            enabled = http.patch(f"/v1/webhooks/{hook['webhook_id']}", json={"enabled": True})
            assert enabled.json()["enabled"] is True
            assert enabled.json()["disabled_reason"] is None
