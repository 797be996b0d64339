"""Every worked example of ``docs/rules.md`` is a test: the history its ``json example`` block
describes is built on a real server over TLS and evaluated, and the findings and daily usage
the block states must be the server's (so the documentation cannot drift from the code)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import clock
from tests.support import RunningServer, make_report, start_thread_server

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

RULES = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
EXAMPLES: list[dict[str, Any]] = [
    json.loads(block)
    for block in re.findall(r"^```json example\n(.*?)^```", RULES.read_text(), re.M | re.S)
]


def _instance_id(example: str, letter: str) -> str:
    """A random-looking, version 4 UUID, the same for the same example and letter."""
    digest = hashlib.sha256(f"{example}/{letter}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def _days(span: str) -> list[date]:
    first, last = (date.fromisoformat(part) for part in span.split(".."))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _reports(example: dict[str, Any]) -> list[dict[str, Any]]:
    """One report a day at noon per instance (a later line overrides an earlier one for the
    same days), or one a minute from noon with the sequences given."""
    environments: dict[str, str] = {}
    daily: dict[tuple[str, date], dict[str, Any]] = {}
    for line in example["reports"]:
        letter = line["instance"]
        environments.setdefault(letter, line.get("environment", "production"))
        metrics = {k: line[k] for k in ("users", "tenants", "worker_groups") if k in line}
        for day in _days(line["days"]):
            daily[(letter, day)] = {"metrics": metrics, "sequences": line.get("sequences")}
    reports = []
    for (letter, day), spec in sorted(daily.items()):
        common = {
            "instance_id": _instance_id(example["title"], letter),
            "environment": environments[letter],
            "metrics": spec["metrics"],
        }
        for minute, sequence in enumerate(spec["sequences"] or [None]):
            report = make_report(**common, generated_at=f"{day}T12:{minute:02d}:00Z")
            if sequence is not None:
                report["sequence"] = sequence
            reports.append(report)
    return reports


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_thread_server(tmp_path_factory.mktemp("rules"))
    yield running
    running.stop()


def test_the_rules_page_has_its_examples() -> None:
    assert len(EXAMPLES) >= 12
    assert len({example["title"] for example in EXAMPLES}) == len(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["title"] for e in EXAMPLES])
def test_a_worked_example_of_the_rules(server: RunningServer, example: dict[str, Any]) -> None:
    customer_id = re.sub(r"[^a-z0-9]+", "-", example["title"].lower()).strip("-")[:60]
    document = {
        "name": example["title"],
        "account_manager": "am@vendor.example",
        "orders": example["orders"],
    }
    key = server.add_customer(customer_id, document)
    with server.client(key) as http:
        sent = http.post("/v1/reports", json={"reports": _reports(example)})
    assert sent.status_code == 202, sent.text
    with server.admin() as http:
        for letter, day in example.get("retire", {}).items():
            instance = _instance_id(example["title"], letter)
            retired = http.post(f"/v1/instances/{instance}/retire", json={"retired_on": day})
            assert retired.status_code == 200, retired.text
        for day, expected in example.get("usage", {}).items():
            answer = http.get(
                f"/v1/customers/{customer_id}/usage", params={"from": day, "to": day}
            ).json()
            (usage,) = answer["days"]
            assert {m: usage["usage"][m] for m in expected} == expected, day
        for evaluation in example["evaluations"]:
            ran = http.post("/v1/evaluations", json={"as_of": evaluation["as_of"]})
            assert ran.status_code == 200, ran.text
            found = [f for f in ran.json()["findings"] if f["customer_id"] == customer_id]
            assert len(found) == len(evaluation["findings"]), (evaluation["as_of"], found)
            for actual, stated in zip(found, evaluation["findings"], strict=True):
                assert {k: actual.get(k) for k in stated} == stated, evaluation["as_of"]
