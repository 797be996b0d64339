"""The reference phone-home client against the real server: spool, batches, retries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonehome.client import PhoneHomeClient, Rejected, SendFailed, Spool, flush
from statreport.cli import main
from statreport.server import free_port
from tests.conftest import ServerFactory
from tests.support import RunningServer, make_report, query


def phone_home(server_url: str, key: str, spool: Path, ca: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [
            "phone-home",
            "--server",
            server_url,
            "--ca-cert",
            str(ca),
            "--spool",
            str(spool),
            "--max-attempts",
            "1",
            *extra,
        ],
        env={"STATREPORT_LICENSE_KEY": key},
    )
    return result.exit_code, result.output


def test_a_report_is_spooled_while_the_server_is_down_and_sent_later(
    server: RunningServer, acme_key: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    down = f"https://127.0.0.1:{free_port()}"
    code, output = phone_home(down, acme_key, spool, server.ca_cert, "--users", "42")
    assert code == 1, output
    assert "1 still spooled" in output
    pending = list((spool / "pending").glob("*.json"))
    assert len(pending) == 1
    report = json.loads(pending[0].read_text())
    assert report["metrics"] == {"users": 42}
    assert report["sequence"] == 0

    code, output = phone_home(server.url, acme_key, spool, server.ca_cert, "--users", "43")
    assert code == 0, output
    assert "2 stored" in output
    assert list((spool / "pending").glob("*.json")) == []
    # The administrator keeps a copy of what the server acknowledged, to check a statement.
    kept = sorted(
        json.loads(p.read_text())["metrics"]["users"] for p in (spool / "sent").glob("*.json")
    )
    assert kept == [42, 43]
    server.stop()
    rows = query(server.data_dir, "SELECT users, sequence FROM reports ORDER BY sequence")
    assert rows == [(42, 0), (43, 1)]
    instances = query(server.data_dir, "SELECT count(DISTINCT instance_id) FROM reports")
    assert instances == [(1,)]  # the installation keeps its instance_id across runs


def test_a_refused_key_keeps_the_spool(
    server: RunningServer, acme_key: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    code, output = phone_home(server.url, "srk_wrong", spool, server.ca_cert, "--users", "1")
    assert code == 1
    assert "not known" in output
    assert len(list((spool / "pending").glob("*.json"))) == 1


def test_reports_refused_for_good_are_set_aside_and_the_rest_is_sent(
    server: RunningServer, acme_key: str, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    good = [make_report(), make_report()]
    spool.add(good[0])
    spool.add(make_report(metrics={"users": 1, "gpus": 2}))
    spool.add(good[1])
    with PhoneHomeClient(server.url, license_key=acme_key, verify=server.verify()) as client:
        summary = flush(spool, client)
    assert (summary.stored, summary.rejected, summary.remaining) == (2, 1, 0)
    rejected = sorted(spool.rejected_dir.glob("*.reason.json"))
    assert len(rejected) == 1
    reason = json.loads(rejected[0].read_text())
    assert reason["status"] == 422
    assert "gpus" in reason["detail"]


def test_retry_after_is_honoured(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(rate_limit_per_minute=1)
    key = server.add_customer("acme")
    spool = Spool(tmp_path / "spool")
    spool.add(make_report())
    spool.add(make_report())
    sleeps: list[float] = []
    with PhoneHomeClient(
        server.url,
        license_key=key,
        verify=server.verify(),
        max_attempts=2,
        sleep=sleeps.append,
        jitter=lambda: 0.0,
    ) as client:
        summary = flush(spool, client, batch_size=1)
    assert summary.stored == 1
    assert summary.remaining == 1
    assert summary.error is not None
    assert "gave up" in summary.error
    assert len(sleeps) == 1
    assert 55 <= sleeps[0] <= 60  # the server's Retry-After, not the (zero) jittered backoff


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    client = PhoneHomeClient(
        "https://127.0.0.1:1", license_key="k", base_delay=0.5, max_delay=10, jitter=lambda: 1.0
    )
    assert [client.backoff(n) for n in range(6)] == [0.5, 1, 2, 4, 8, 10]
    low = PhoneHomeClient("https://127.0.0.1:1", license_key="k", jitter=lambda: 0.25)
    assert low.backoff(3) == pytest.approx(0.25 * 0.5 * 8)
    client.close()
    low.close()


def test_unreachable_server_is_retried_with_backoff_then_given_up(tmp_path: Path) -> None:
    sleeps: list[float] = []
    client = PhoneHomeClient(
        f"https://127.0.0.1:{free_port()}",
        license_key="k",
        max_attempts=4,
        sleep=sleeps.append,
        jitter=lambda: 1.0,
        base_delay=0.5,
    )
    with client, pytest.raises(SendFailed):
        client.send([make_report()])
    assert sleeps == [0.5, 1.0, 2.0]


def test_the_backlog_goes_in_batches(server: RunningServer, acme_key: str, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    for _ in range(25):
        spool.add(make_report())
    with PhoneHomeClient(server.url, license_key=acme_key, verify=server.verify()) as client:
        summary = flush(spool, client, batch_size=10)
    assert summary.stored == 25
    with server.admin() as http:
        metrics = http.get("/metrics").text
    # 3 requests: 10 + 10 + 5.
    assert 'statreport_http_requests_total{method="POST",route="/v1/reports",status="202"} 3.0' in (
        metrics
    )


def test_phone_home_exits_3_when_a_report_is_refused_for_good(
    server: RunningServer, acme_key: str, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.add(make_report(product_version="not-a-version"))
    code, output = phone_home(server.url, acme_key, spool.directory, server.ca_cert, "--flush-only")
    assert code == 3, output
    assert "1 rejected" in output
    assert list(spool.pending_dir.glob("*.json")) == []
    (reason,) = spool.rejected_dir.glob("*.reason.json")
    assert "MAJOR.MINOR.PATCH" in json.loads(reason.read_text())["detail"]


def test_dry_run_shows_the_report_that_would_be_sent_and_sends_nothing(
    server: RunningServer, acme_key: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    shown = []
    for _ in range(2):  # looking twice uses up nothing
        result = CliRunner().invoke(
            main,
            ["phone-home", "--spool", str(spool), "--dry-run", "--users", "7", "--tenants", "2"],
            env={"STATREPORT_LICENSE_KEY": None},  # no licence key needed to look
        )
        assert result.exit_code == 0, result.output
        shown.append(json.loads(result.stdout))
    assert list((spool / "pending").glob("*.json")) == []
    # It wrote one thing: the installation's id, as the docs and --help say.
    assert [p.name for p in spool.glob("*.json")] == ["instance.json"]
    report = shown[0]
    assert set(report) == {
        "schema_version",
        "report_id",
        "instance_id",
        "environment",
        "generated_at",
        "product_version",
        "sequence",
        "metrics",
    }
    assert report["metrics"] == {"users": 7, "tenants": 2}
    assert (shown[1]["instance_id"], shown[1]["sequence"]) == (report["instance_id"], 0)

    # The real run then sends a report of the same installation, with that sequence.
    code, output = phone_home(server.url, acme_key, spool, server.ca_cert, "--users", "7")
    assert code == 0, output
    server.stop()
    rows = query(server.data_dir, "SELECT instance_id::VARCHAR, sequence FROM reports")
    assert rows == [(report["instance_id"], 0)]


def test_phone_home_without_a_key_names_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["phone-home", "--spool", str(tmp_path / "spool"), "--users", "7"],
        env={"STATREPORT_LICENSE_KEY": None},
    )
    assert result.exit_code == 2
    assert "STATREPORT_LICENSE_KEY is required" in result.output
    assert list((tmp_path / "spool" / "pending").glob("*.json")) == []


def test_a_refusal_says_what_the_server_answered(server: RunningServer, acme_key: str) -> None:
    with (
        PhoneHomeClient(server.url, license_key=acme_key, verify=server.verify()) as client,
        pytest.raises(Rejected) as refused,
    ):
        client.send([make_report(product_version="not-a-version")])
    assert str(refused.value).startswith("the server answered 422: ")
    assert "MAJOR.MINOR.PATCH" in str(refused.value)
