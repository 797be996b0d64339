"""``statreport demo``: the whole pipeline in one command, checked against its designed fleet."""

from __future__ import annotations

import csv
import email
import io
import re
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from core.quarters import quarter_bounds
from statreport.demo import RETIRED_DAYS, DemoCustomer, sample_customers
from tests.support import query


def _run_demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statreport", "demo", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _csv_rows(message: EmailMessage) -> list[dict[str, str]]:
    for part in message.walk():
        if part.get_content_type() == "text/csv":
            return list(csv.DictReader(io.StringIO(part.get_content())))
    raise AssertionError(f"no CSV in the email to {message['To']}")


@pytest.mark.slow
def test_the_demo_emails_show_each_sample_customer_in_its_designed_situation(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "statreport-demo"
    for _ in range(2):  # a second run replaces the first demo's data directory
        result = _run_demo(data_dir)
        assert result.returncode == 0, result.stderr
    samples = sample_customers(datetime.now(UTC).date())
    assert 6 <= len(samples) <= 12
    # Every report sent was new: none was lost as a duplicate of another's report_id.
    sent = dict(query(data_dir, "SELECT source, count(*) FROM reports GROUP BY 1"))
    assert f"{sent['phone_home']:,} reports stored, 0 duplicates" in result.stderr
    quarter_match = re.search(r"signed (\d{4}Q\d) attestation \((\d+) reports", result.stderr)
    assert quarter_match is not None
    first, last = quarter_bounds(quarter_match[1])
    assert sent["attestation"] == int(quarter_match[2]) == 4 * ((last - first).days + 1)

    emails = {}
    for path in sorted((data_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        emails[message["To"]] = message
        assert str(path) in result.stdout  # the demo says where each email is
    assert sorted(emails) == sorted({sample.manager for sample in samples})

    rows: list[dict[str, str]] = []
    expected: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
    for sample in samples:
        if sample.situation is not None:
            kind, status = sample.situation
            row = (sample.customer_id, kind, status or "", sample.metric or "")
            expected[sample.manager].add(row)
    for manager, message in emails.items():
        rows += _csv_rows(message)
        found = {
            (row["customer_id"], row["kind"], row["status"], row["metric"])
            for row in _csv_rows(message)
        }
        assert found == expected[manager], manager
        charts = [part for part in message.walk() if part.get_content_type() == "image/png"]
        assert len(charts) == sum(1 for _, kind, _, _ in found if kind == "overuse")
        needing_action = {
            customer for customer, kind, status, _ in found if status != "regularized"
        }
        assert f": {len(needing_action)} account" in message["Subject"]

    # Every situation the issue asks the sample fleet to show is there.
    situations = {sample.situation for sample in samples}
    assert {
        ("overuse", "in_window"),
        ("overuse", "overdue"),
        ("overuse", "regularized"),
        ("telemetry_missing", None),
        ("attestation_overdue", None),
        ("no_active_subscription", None),
        ("instance_silent", None),
        ("instance_cloned", None),
        None,  # and a compliant one, which no email names
    } <= situations
    _check_the_v2_situations(data_dir, samples, rows, result.stderr)
    compliant = [sample.customer_id for sample in samples if sample.situation is None]
    for message in emails.values():
        text = message.get_body(("plain",))
        assert text is not None
        assert not any(customer in text.get_content() for customer in compliant)
    assert "Overdue                    Metric users" in result.stdout  # the findings table


def _check_the_v2_situations(
    data_dir: Path, samples: list[DemoCustomer], rows: list[dict[str, str]], stderr: str
) -> None:
    """The samples of contract v2: two missed quarters, a counting rule that decides, a silent,
    a cloned and a retired instance, each as the email's rows show it."""
    by_id = {sample.customer_id: sample for sample in samples}
    missed = [row["quarter"] for row in rows if row["kind"] == "attestation_overdue"]
    assert len(missed) == 2  # every missed quarter, one finding each,
    assert missed == sorted(missed)  # oldest first

    (production_only,) = [s for s in samples if any("counting" in o for o in s.orders)]
    assert production_only.situation is None  # compliant only because of its counting rule
    as_of = datetime.now(UTC).date() - timedelta(days=1)
    by_environment = dict(
        query(
            data_dir,
            "SELECT environment, sum(peak) FROM (SELECT instance_id, environment, "
            "max(users) AS peak FROM reports WHERE customer_id = ? AND usage_day = ? "
            "GROUP BY ALL) GROUP BY environment",
            [production_only.customer_id, as_of],
        )
    )
    entitled = 40
    assert by_environment["production"] <= entitled < sum(by_environment.values())

    (cloned,) = [row for row in rows if row["kind"] == "instance_cloned"]
    assert by_id[cloned["customer_id"]].cloned is not None
    assert int(cloned["regressions"]) >= 2
    (silent,) = [row for row in rows if row["kind"] == "instance_silent"]
    assert silent["environment"] == "production"

    (retiring,) = [s for s in samples if s.retired is not None]
    assert retiring.situation is None  # its decommissioned instance is not chased as silent
    retired = query(
        data_dir,
        "SELECT retired_on FROM instances WHERE customer_id = ? AND retired_on IS NOT NULL",
        [retiring.customer_id],
    )
    assert retired == [(datetime.now(UTC).date() - timedelta(days=RETIRED_DAYS),)]
    assert f"{retiring.customer_id} decommissioned its non_production instance" in stderr


def test_the_demo_refuses_a_folder_that_is_not_a_statreport_one(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    result = _run_demo(precious)
    assert result.returncode == 2
    assert "was not made by 'statreport demo'" in result.stderr
    assert (precious / "thesis.tex").exists()


def test_the_demo_never_wipes_a_real_data_directory(tmp_path: Path) -> None:
    real = tmp_path / "statreport-data"
    real.mkdir()
    (real / "statreport.duckdb").write_bytes(b"a licensor's history")
    result = _run_demo(real)
    assert result.returncode == 2
    assert "nothing in it was touched" in result.stderr
    assert (real / "statreport.duckdb").read_bytes() == b"a licensor's history"


@pytest.mark.slow
def test_demo_serve_started_without_a_terminal_stops_on_sigint(tmp_path: Path) -> None:
    """A shell starts a background job with SIGINT ignored; the demo takes it anyway."""

    def like_a_background_job() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    with subprocess.Popen(
        [sys.executable, "-m", "statreport", "demo", "--serve", "--data-dir", str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=like_a_background_job,
    ) as demo:
        try:
            assert demo.stdout is not None
            for line in demo.stdout:
                if "Press Ctrl+C to stop." in line:
                    break
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=60) == 0
        finally:
            demo.kill()
