"""``statreport simulate`` and the admin CLI, against the real server."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from statreport.cli import main
from tests.support import ACME, ADMIN_TOKEN, RunningServer, query


def run(server: RunningServer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main,
        [*args, "--server", server.url, "--ca-cert", str(server.ca_cert)],
        env={"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    return result.exit_code, result.stdout, result.stderr


def test_simulate_sends_every_instance_every_day(server: RunningServer) -> None:
    code, out, _ = run(
        server, "simulate", "--customers", "2", "--instances", "5", "--days", "7", "--seed", "3"
    )
    assert code == 0, out
    assert "35 reports stored" in out
    server.stop()
    assert query(server.data_dir, "SELECT count(*), count(DISTINCT instance_id) FROM reports") == [
        (35, 5)
    ]
    per_customer = query(
        server.data_dir,
        "SELECT customer_id, count(DISTINCT usage_day) FROM reports GROUP BY 1 ORDER BY 1",
    )
    assert per_customer == [("sim-0000", 7), ("sim-0001", 7)]


def test_admin_cli_applies_customers_and_manages_keys(
    server: RunningServer, tmp_path: Path
) -> None:
    import json

    file = tmp_path / "customers.json"
    file.write_text(json.dumps({"acme": ACME}))
    code, out, _ = run(server, "customers", "apply", str(file))
    assert code == 0
    assert "applied acme: 1 order form," in out
    code, out, err = run(server, "keys", "create", "acme")
    assert code == 0
    key = out.strip()
    assert key.startswith("srk_")
    assert "shown only now" in err
    key_id = err.split("created key ")[1].split(" ")[0]
    code, out, _ = run(server, "keys", "revoke", key_id)
    assert (code, out.strip()) == (0, f"revoked {key_id}")
    code, out, err = run(server, "keys", "revoke", key_id)
    assert (code, out) == (1, "")
    assert f"{key_id} was already revoked at " in err
    assert "nothing changed" in err
    code, _, err = run(server, "keys", "revoke", "key_missing")
    assert code == 1
    assert "No licence key 'key_missing'" in err
    code, out, _ = run(server, "customers", "list")
    assert out.startswith("acme")


def test_a_rerun_only_resends_and_another_prefix_makes_another_fleet(
    server: RunningServer,
) -> None:
    args = ("simulate", "--customers", "2", "--instances", "4", "--days", "3")
    code, out, _ = run(server, *args)
    assert (code, "12 reports stored, 0 duplicates" in out) == (0, True), out
    code, out, _ = run(server, *args)  # the same fleet again: nothing is counted twice
    assert (code, "0 reports stored, 12 duplicates" in out) == (0, True), out
    code, out, err = run(server, *args, "--prefix", "other")
    assert (code, "12 reports stored, 0 duplicates" in out) == (0, True), out + err
    server.stop()
    instances = query(
        server.data_dir,
        "SELECT count(*), count(DISTINCT instance_id) FROM reports GROUP BY left(customer_id, 3)",
    )
    assert sorted(instances) == [(12, 4), (12, 4)]


def test_admin_cli_makes_lists_and_revokes_a_customers_link(server: RunningServer) -> None:
    server.add_customer("acme")
    code, out, err = run(server, "links", "create", "acme", "--days", "7", "--note", "Jane")
    assert code == 0, err
    url = out.strip()
    assert url.startswith(server.url + "/c/")
    assert "shown only now" in err
    link_id = err.split("created link ")[1].split(" ")[0]
    code, out, _ = run(server, "links", "list", "acme")
    assert code == 0
    assert link_id in out
    assert "note='Jane'" in out
    assert url.rsplit("/", 1)[1] not in out  # never the link itself
    with server.client() as http:
        assert http.get(url, follow_redirects=False).status_code == 303
    code, out, _ = run(server, "links", "revoke", "acme", link_id)
    assert (code, out.strip()) == (0, f"revoked {link_id}")
    with server.client() as http:
        assert http.get(url).status_code == 410
    code, _, err = run(server, "links", "create", "acme", "--days", "91")
    assert code == 2
    assert "91" in err
