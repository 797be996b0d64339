"""``statreport demo``: the whole pipeline in one command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_the_pipeline_and_leaves_the_emails(tmp_path: Path) -> None:
    data_dir = tmp_path / "statreport-demo"
    for _ in range(2):  # a second run replaces the first demo's data directory
        result = subprocess.run(
            [sys.executable, "-m", "statreport", "demo", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        "over-use OVERDUE",
        "over-use in window",
        "over-use regularized",
        "telemetry missing",
        "attestation overdue",
        "no active subscription",
    ):
        assert expected in out
    emails = sorted((data_dir / "outbox").glob("*.eml"))
    assert [e.name.split("-", 1)[1] for e in emails] == [
        "alice@vendor.example.eml",
        "bob@vendor.example.eml",
        "carol@vendor.example.eml",
    ]
    for email in emails:
        assert str(email) in out


def test_the_demo_refuses_a_folder_that_is_not_a_statreport_one(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    result = subprocess.run(
        [sys.executable, "-m", "statreport", "demo", "--data-dir", str(precious)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not a statreport data directory" in result.stderr
    assert (precious / "thesis.tex").exists()
