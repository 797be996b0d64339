"""Numbers that stay true after the fact (SPEC §11 v3), over HTTPS: a run's evidence and a
statement read "as known at" an instant answer the same bytes, whatever arrives later."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import clock
from tests.conftest import ServerFactory
from tests.support import (
    INSTANCE,
    RunningServer,
    assert_problem,
    customer,
    days,
    order,
    send_daily,
)

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

README = Path(__file__).resolve().parents[2] / "README.md"
#: Another production instance of the customer, whose late reports arrive after the run.
LATE = "4e5f6a7b-8c9d-4e0f-8a1b-2c3d4e5f6a7b"
#: The story's split: what is asked on Monday, and what is asked again months later.
LATER = "# months later"


def _story() -> tuple[list[str], list[str]]:
    """The README's dispute story: the requests made when the finding is quoted, and the
    requests made again later."""
    section = README.read_text().split("## Quoting a finding in a dispute\n", 1)[1]
    block = section.split("```http\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    cut = next(n for n, line in enumerate(lines) if line.startswith(LATER))

    def asked(part: list[str]) -> list[str]:
        return [line for line in part if line and not line.startswith("#")]

    return asked(lines[:cut]), asked(lines[cut + 1 :])


def _ask(http: httpx.Client, line: str, values: dict[str, str]) -> httpx.Response:
    method, rest = line.split(" ", 1)
    target, _, body = rest.partition(" ")
    for name, value in values.items():
        target = target.replace(f"{{{name}}}", value)
    assert "{" not in target, f"the story names a value the test does not know: {target}"
    response = http.request(method, target, json=json.loads(body) if body else None)
    assert response.status_code == 200, (line, response.text)
    return response


def _statement_address(page: str) -> str:
    found = re.search(r"<code>(/v1/customers/[^<]+known_at=[^<]+)</code>", page)
    assert found is not None, page
    return html.unescape(found.group(1))


def test_the_readmes_dispute_story(server_factory: ServerFactory, tmp_path: Path) -> None:
    """Evaluate and quote; then a late report for a day the evidence shows, a new add-on, a
    retirement and a restart (which folds the instance-days); then the run's evidence and the
    statement's address answer the very same bytes, while what is known now has changed."""
    server = server_factory(data_dir=tmp_path / "data")
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-10-01", "2027-09-30", 5))
    )
    usage = dict.fromkeys(days("2026-10-20", "2026-11-09"), 48)
    usage.update(dict.fromkeys(days("2026-11-10", "2026-12-05"), 58))
    send_daily(server, key, usage)
    monday, later = _story()
    values = {"customer_id": "acme"}
    quoted: dict[str, bytes] = {}
    with server.admin() as http:
        run = _ask(http, monday[0], values).json()
        (finding,) = run["findings"]
        values |= {"evaluation_id": run["evaluation_id"], "finding_id": finding["finding_id"]}
        for line in monday[1:]:
            quoted[line] = _ask(http, line, values).content
    evidence_line, statement_line, csv_line = monday[1:]
    evidence = json.loads(quoted[evidence_line])
    page = quoted[statement_line].decode()
    values["statement_address"] = address = _statement_address(page)
    assert evidence["known_at"] == run["known_at"]
    assert f"As known at {address.rsplit('known_at=', 1)[1]}" in page
    peak = max((d for d in evidence["days"] if d["over"]), key=lambda d: d["usage"])
    assert (peak["usage"], peak["entitled"]) == (finding["peak_usage"], finding["entitled"])
    assert hashlib.sha256(quoted[csv_line]).hexdigest() in page
    assert "<code>sha256sum</code>" in page  # how the customer checks it

    # Afterwards: a late report for a day shown, a new add-on, a retirement, a restart.
    send_daily(server, key, {days("2026-11-20", "2026-11-20")[0]: 70}, instance=LATE)
    addon = {"addon_id": "AO-1", "effective": "2026-11-15", "entitlements": {"user_packs": 2}}
    edited = order("2026-10-01", "2027-09-30", 5, addons=[addon])
    with server.admin() as http:
        changed = http.put("/v1/customers/acme", json=customer("alice@vendor.example", edited))
        assert changed.status_code == 200, changed.text
        retired = http.post(f"/v1/instances/{INSTANCE}/retire", json={"retired_on": "2026-12-01"})
        assert retired.status_code == 200, retired.text
    server.stop()
    server = server_factory(data_dir=tmp_path / "data")

    with server.admin() as http:
        again = {line: _ask(http, line, values).content for line in later}
        now = http.get(
            "/v1/customers/acme/statement",
            params={"from": "2026-11-01", "to": "2026-12-05", "format": "csv"},
        ).text
    evidence_again, statement_again, csv_again = later
    assert again[evidence_again] == quoted[evidence_line]
    assert again[statement_again] == quoted[statement_line]
    assert again[csv_again] == quoted[csv_line]
    # What is known now is another story: the late report and the add-on count.
    assert "2026-11-20,users,128,70,true,true" in now.splitlines()
    assert "2026-11-20,users,58,50,true,true" in quoted[csv_line].decode().splitlines()


def test_the_newest_run_of_a_day_is_read_as_known_at_that_run(server: RunningServer) -> None:
    """``?as_of=`` still means the newest run of that day, as known at that run: a late report
    sent after it changes nothing in its evidence until a new run is made."""
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-10-01", "2027-09-30", 5))
    )
    send_daily(server, key, dict.fromkeys(days("2026-11-10", "2026-12-05"), 58))

    def evidence(finding_id: str, **params: str) -> Any:
        with server.admin() as http:
            response = http.get(f"/v1/findings/{finding_id}/evidence", params=params)
        assert response.status_code == 200, response.text
        return response

    with server.admin() as http:
        first = http.post("/v1/evaluations", json={"as_of": "2026-12-05"}).json()
    (finding,) = first["findings"]
    before = evidence(finding["finding_id"], as_of="2026-12-05").content
    send_daily(server, key, {days("2026-12-01", "2026-12-01")[0]: 90}, instance=LATE)
    assert evidence(finding["finding_id"], as_of="2026-12-05").content == before
    with server.admin() as http:
        second = http.post("/v1/evaluations", json={"as_of": "2026-12-05"}).json()
    assert second["known_at"] > first["known_at"]
    (finding_now,) = second["findings"]
    newest = evidence(finding_now["finding_id"], as_of="2026-12-05").json()
    assert newest["evaluation_id"] == second["evaluation_id"]
    assert newest["finding"]["peak_usage"] == 148 == finding_now["peak_usage"]
    # The first run's own evidence is still the first run's.
    quoted = evidence(finding["finding_id"], evaluation_id=first["evaluation_id"])
    assert quoted.content == before


def test_an_instant_in_the_future_or_a_period_after_it_is_refused(
    server: RunningServer,
) -> None:
    server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-10-01", "2027-09-30", 5))
    )
    with server.admin() as http:
        future = http.get(
            "/v1/customers/acme/statement",
            params={"from": "2026-11-01", "to": "2026-11-30", "known_at": "2027-01-01T00:00:00Z"},
        )
        assert_problem(future, 422, "known_at 2027-01-01T00:00:00.000000Z is after now")
        early = http.get(
            "/v1/customers/acme/statement",
            params={"from": "2026-11-01", "to": "2026-11-30", "known_at": "2026-11-15T08:00:00Z"},
        )
        assert_problem(early, 422, "'to' (2026-11-30) is after the day of known_at (2026-11-15)")
        naive = http.get(
            "/v1/customers/acme/statement",
            params={"from": "2026-11-01", "to": "2026-11-30", "known_at": "2026-11-15T08:00:00"},
        )
        assert naive.status_code == 422
        before = http.get(
            "/v1/customers/acme/statement",
            params={"from": "2026-11-01", "to": "2026-11-10", "known_at": "2026-11-15T08:00:00Z"},
        )
        assert_problem(before, 404, "No customer 'acme' as known at 2026-11-15T08:00:00.000000Z")
        unknown = http.get(
            "/v1/findings/f_0123456789abcdef/evidence", params={"evaluation_id": "ev_missing"}
        )
        assert_problem(unknown, 404, "No evaluation 'ev_missing'")
        neither = http.get("/v1/findings/f_0123456789abcdef/evidence")
        assert_problem(neither, 422, "give evaluation_id (the run quoted) or as_of")
