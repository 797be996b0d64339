"""Which reports a quarter's bundle holds: the UTC day of ``generated_at``, as the server counts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.attestation import verify_bundle
from phonehome.attestation import reports_of_quarter
from phonehome.client import Spool
from statreport.cli import main
from tests import clock
from tests.support import make_report

#: Its dates are literal (2026Q3 and its edges): it runs on the day they were written for.
pytestmark = pytest.mark.moment(clock.WRITTEN_ON)

KEY = "srk_test-key-for-the-export"


def test_a_report_written_with_an_offset_belongs_to_the_quarter_of_its_utc_day() -> None:
    # 01:30 on 1 October at +02:00 is 23:30 on 30 September in UTC: the third quarter.
    late_q3 = make_report(generated_at="2026-10-01T01:30:00+02:00")
    # 23:30 on 30 September at -05:00 is 04:30 on 1 October in UTC: the fourth quarter.
    early_q4 = make_report(generated_at="2026-09-30T23:30:00-05:00")
    plain_q3 = make_report(generated_at="2026-09-30T12:00:00Z")
    reports = [late_q3, early_q4, plain_q3]
    assert reports_of_quarter(reports, quarter="2026Q3") == [late_q3, plain_q3]
    assert reports_of_quarter(reports, quarter="2026Q4") == [early_q4]


def test_a_report_without_a_valid_time_is_in_no_quarter() -> None:
    naive = make_report(generated_at="2026-09-30T12:00:00")
    assert reports_of_quarter([naive, {"generated_at": "yesterday"}], quarter="2026Q3") == []


def test_export_makes_a_bundle_that_verify_accepts_across_a_quarter_boundary(
    tmp_path: Path,
) -> None:
    source = tmp_path / "reports.jsonl"
    reports = [
        make_report(generated_at="2026-07-01T00:30:00+02:00"),  # 30 June UTC: Q2, left out
        make_report(generated_at="2026-07-01T12:00:00Z"),
        make_report(generated_at="2026-08-15T12:00:00Z"),
        make_report(generated_at="2026-10-01T01:30:00+02:00"),  # 30 September UTC: kept
    ]
    source.write_text("\n".join(json.dumps(r) for r in reports) + "\n")
    target = tmp_path / "bundle.json"
    result = CliRunner().invoke(
        main,
        [
            "attest", "export", "--quarter", "2026Q3", "--reports", str(source),
            "--officer-name", "Jane Roe", "--officer-title", "CFO",
            "--certified-on", "2026-10-05", "--output", str(target),
        ],
        env={"STATREPORT_LICENSE_KEY": KEY},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = verify_bundle(target.read_bytes(), license_key=KEY)
    assert [r["report_id"] for r in bundle.reports] == [r["report_id"] for r in reports[1:]]


def test_the_spool_forgets_what_was_sent_more_than_400_days_ago(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    old = spool.sent_dir / f"{(time.time_ns() - 401 * 86_400 * 10**9):020d}-a.json"
    recent = spool.sent_dir / f"{(time.time_ns() - 399 * 86_400 * 10**9):020d}-b.json"
    for path in (old, recent):
        path.write_text("{}")
    sent = spool.add({"report_id": "c"})
    spool.acknowledged([sent])
    assert sorted(p.name for p in spool.sent_dir.iterdir()) == sorted([recent.name, sent.name])
    assert list(spool.pending_dir.iterdir()) == []
