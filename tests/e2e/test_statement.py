"""The customer statement (SPEC §11), over HTTPS and from the CLI."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from statreport.cli import main
from tests import clock
from tests.conftest import ServerFactory
from tests.support import (
    ADMIN_TOKEN,
    RunningServer,
    assert_problem,
    customer,
    days,
    evaluate,
    order,
    send_daily,
)

#: Its dates are literal (a calendar of late 2026): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

INSTANCE = "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
PERIOD = {"from": "2026-10-01", "to": "2026-11-10"}


def _customer(server: RunningServer) -> None:
    terms = {**order("2026-01-01", "2026-12-31", 5), "counting": {"users": "production"}}
    key = server.add_customer("acme", customer("alice@vendor.example", terms))
    usage = dict.fromkeys(days("2026-10-01", "2026-11-10"), 40)
    usage.update(dict.fromkeys(days("2026-11-03", "2026-11-05"), 58))
    send_daily(server, key, usage, instance=INSTANCE)
    evaluate(server, "2026-11-10")


def test_the_statement_states_the_sha256_of_its_daily_rows(server: RunningServer) -> None:
    _customer(server)
    with server.admin() as http:
        page = http.get("/v1/customers/acme/statement", params=PERIOD)
        rows = http.get("/v1/customers/acme/statement", params={**PERIOD, "format": "csv"})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert rows.headers["content-type"].startswith("text/csv")
    digest = hashlib.sha256(rows.content).hexdigest()
    html = page.text
    assert digest in html  # both sides can refer to the same figures
    lines = rows.text.splitlines()
    assert lines[0] == "date,metric,usage,entitled,subscription,over"
    assert "2026-11-03,users,58,50,true,true" in lines
    assert "2026-11-06,users,40,50,true,false" in lines
    assert len(lines) == 1 + 41 * 8  # every day of the period, every metric
    # What the customer needs to check it: the order, the instance, the rule, the episode.
    assert "OF-2026-01-01" in html
    assert INSTANCE in html
    assert "only production instances count" in html
    assert "Over the entitlement on 3 days: 2026-11-03, 2026-11-04, 2026-11-05." in html
    # The episode, from its start to how it ended, whether or not an evaluation reported it.
    episode = (
        "<td>Users</td><td>2026-11-03</td><td>2026-12-03</td><td>58 / 50</td>"
        "<td>regularized (usage reduced)</td><td>2026-11-06</td>"
    )
    assert episode in html
    assert "<svg" in html
    assert "@page { size: A4;" in html
    # Entitlements in words: users as packs times their size, no raw item names.
    assert "<td>Users</td><td>5 packs \u00d7 10 = 50</td><td>2026-01-01</td>" in html
    assert "users_per_pack" not in html
    assert "30\ndays from then to regularize" in html
    # Self-contained: nothing is loaded from elsewhere.
    assert not re.search(r"<(script|link|img)\b", html)
    assert not re.search(r"(src|href)=\"https?:", html)


def test_a_period_over_400_days_or_reversed_is_refused(server: RunningServer) -> None:
    _customer(server)
    with server.admin() as http:
        long = http.get(
            "/v1/customers/acme/statement", params={"from": "2025-01-01", "to": "2026-02-05"}
        )
        reversed_ = http.get(
            "/v1/customers/acme/statement", params={"from": "2026-11-10", "to": "2026-11-01"}
        )
        unknown = http.get("/v1/customers/nobody/statement", params=PERIOD)
    assert_problem(long, 422, "1 to 400 days")
    assert_problem(reversed_, 422, "1 to 400 days")
    assert_problem(unknown, 404, "No customer 'nobody'")


def test_statreport_statement_writes_the_file(server: RunningServer, tmp_path: Path) -> None:
    _customer(server)
    target = tmp_path / "acme.html"
    result = CliRunner().invoke(
        main,
        [
            "statement", "acme", "--from", "2026-10-01", "--to", "2026-11-10", "-o", str(target),
            "--server", server.url, "--ca-cert", str(server.ca_cert),
        ],
        env={"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Licence usage statement" in target.read_text()
    # It says what it is as known at; asked for that instant again, the same bytes.
    known_at = re.search(r"as known at (\S+);", result.output)
    assert known_at is not None, result.output
    again = tmp_path / "again.html"
    result = CliRunner().invoke(
        main,
        [
            "statement", "acme", "--from", "2026-10-01", "--to", "2026-11-10", "-o", str(again),
            "--known-at", known_at.group(1), "--server", server.url,
            "--ca-cert", str(server.ca_cert),
        ],
        env={"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == target.read_bytes()


def test_subscription_tells_unlimited_from_no_licence(server: RunningServer) -> None:
    """SPEC §5 v3: a null entitlement read the same for 'unlimited' and 'no order at all'."""
    key = server.add_customer(
        "lapsed", customer("alice@vendor.example", order("2026-01-01", "2026-10-31", 5))
    )
    send_daily(server, key, dict.fromkeys(days("2026-10-25", "2026-11-05"), 70), instance=INSTANCE)
    period = {"from": "2026-10-30", "to": "2026-11-02"}
    with server.admin() as http:
        usage = http.get("/v1/customers/lapsed/usage", params=period).json()
        rows = http.get("/v1/customers/lapsed/statement", params={**period, "format": "csv"})
    by_day = {d["day"]: d for d in usage["days"]}
    # Tenants are not named by the order: unlimited while it runs, no licence after it.
    assert (by_day["2026-10-31"]["entitled"]["tenants"], by_day["2026-10-31"]["subscription"]) == (
        None,
        True,
    )
    assert (by_day["2026-11-01"]["entitled"]["users"], by_day["2026-11-01"]["subscription"]) == (
        None,
        False,
    )
    lines = rows.text.splitlines()
    assert "2026-10-31,users,70,50,true,true" in lines
    assert "2026-11-01,users,70,,false,false" in lines  # no licence: not judged over


CARRIED = "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e70"


def test_a_period_past_today_is_refused_and_episodes_are_judged_as_of_its_last_day(
    server: RunningServer,
) -> None:
    """Issue 26, item 5: an open episode read 'overdue' before its deadline when ``to`` lay
    after today, and an instance active on the first day from an earlier report was missing.
    Since §11 v3 a period may not end after the day it is known at: 422, naming today."""
    key = server.add_customer(
        "acme", customer("alice@vendor.example", order("2026-01-01", "2026-12-31", 5))
    )
    send_daily(server, key, {days("2026-10-31", "2026-10-31")[0]: 10}, instance=CARRIED)
    send_daily(server, key, dict.fromkeys(days("2026-11-20", "2026-12-05"), 70), instance=INSTANCE)
    with server.admin() as http:
        future = http.get(
            "/v1/customers/acme/statement", params={"from": "2026-11-01", "to": "2026-12-31"}
        )
        page = http.get(
            "/v1/customers/acme/statement", params={"from": "2026-11-01", "to": "2026-12-06"}
        ).text
    assert future.status_code == 422
    assert "after today (2026-12-06, UTC)" in future.json()["detail"]
    episode = re.search(r"<td>Users</td><td>2026-11-20</td><td>2026-12-20</td>.*?</tr>", page)
    assert episode is not None, page
    assert "in window" in episode.group(0)  # today is 2026-12-06: the deadline has not come
    assert "overdue" not in episode.group(0)
    assert CARRIED in page  # active on 2026-11-01 from its report of 10-31


def test_the_statement_names_its_sender_and_whom_to_ask(server_factory: ServerFactory) -> None:
    server = server_factory(
        vendor_name="Initrode <Software>", vendor_contact="licensing@initrode.example"
    )
    _customer(server)
    with server.admin() as http:
        html = http.get("/v1/customers/acme/statement", params=PERIOD).text
    assert "From Initrode &lt;Software&gt;." in html  # escaped, as every field
    assert "Questions about this statement: licensing@initrode.example" in html
