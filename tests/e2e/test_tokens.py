"""Named staff tokens and roles over real TLS (SPEC §10): shown once, hashed, audited, revoked."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner

from statreport.cli import main
from tests.conftest import ServerFactory
from tests.support import (
    ACME,
    ADMIN_TOKEN,
    RunningServer,
    assert_problem,
    make_report,
    post,
    query,
    stored_bytes,
)


def _create(server: RunningServer, name: str, role: str) -> str:
    with server.admin() as http:
        created = http.post("/v1/tokens", json={"name": name, "role": role})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    assert created.json()["role"] == role
    token: str = created.json()["token"]
    return token


def test_a_viewer_reads_everything_and_changes_nothing(server: RunningServer) -> None:
    key = server.add_customer("acme")
    viewer = _create(server, "vera", "viewer")
    with server.client(viewer) as http:
        assert http.get("/v1/customers").status_code == 200
        assert http.get("/v1/customers/acme").status_code == 200
        assert http.get("/v1/audit-log").status_code == 200
        assert http.get("/metrics").status_code == 200
        refused = [
            http.put("/v1/customers/acme", json=ACME),
            http.post("/v1/customers/acme/license-keys"),
            http.post("/v1/evaluations", json={}),
            http.post("/v1/tokens", json={"name": "eve", "role": "admin"}),
        ]
        for response in refused:
            assert_problem(response, 403, "'vera' has the role 'viewer'", "needs an admin token")
        # Only admins see who holds a token.
        assert_problem(http.get("/v1/tokens"), 403, "'viewer'")
    assert post(server, viewer, make_report()).status_code == 401  # never a licence key
    with server.client(key) as http:
        assert_problem(http.get("/v1/customers"), 401, "licence key cannot be used")
    with server.admin() as http:
        names = [e["target"] for e in http.get("/v1/audit-log").json()]
    assert "customer:acme" in names
    assert names.count("token:vera") == 1  # the refused changes left nothing behind


def test_the_audit_log_names_the_token_and_the_token_is_kept_only_as_a_hash(
    server: RunningServer,
) -> None:
    alice = _create(server, "alice", "admin")
    with server.client(alice, headers={"X-Statreport-Actor": "ticket-4711"}) as http:
        assert http.put("/v1/customers/acme", json=ACME).status_code == 200
        entries = http.get("/v1/audit-log").json()
        listed = http.get("/v1/tokens").json()
    assert [(e["action"], e["actor"], e["on_behalf_of"]) for e in entries] == [
        ("customer.create", "alice", "ticket-4711"),
        ("token.create", "root", None),
    ]
    assert entries[1]["after"] == {"name": "alice", "role": "admin"}
    assert [t["name"] for t in listed] == ["alice"]
    assert "token" not in listed[0]
    last_used = datetime.fromisoformat(listed[0]["last_used_at"])
    assert (datetime.now(UTC) - last_used).total_seconds() < 60
    server.stop()
    stored = query(server.data_dir, "SELECT token_hash FROM staff_tokens")
    assert stored[0][0] != alice
    assert len(stored[0][0]) == 64
    assert alice not in stored_bytes(server.data_dir).decode("latin-1")


def test_names_are_unique_and_revocation_is_immediate(server: RunningServer) -> None:
    bob = _create(server, "bob", "admin")
    with server.admin() as http:
        again = http.post("/v1/tokens", json={"name": "bob", "role": "viewer"})
        assert_problem(again, 409, "'bob' already exists", "Revoke it first")
        bad = http.post("/v1/tokens", json={"name": "Bob Smith", "role": "admin"})
        assert_problem(bad, 422)
        for dots in (".", ".."):  # never a path segment of its own (SPEC §10 v3)
            assert_problem(http.post("/v1/tokens", json={"name": dots, "role": "viewer"}), 422)
        assert_problem(http.post("/v1/tokens", json={"name": "root", "role": "admin"}), 409)
        assert_problem(http.delete("/v1/tokens/root"), 409, "STATREPORT_ADMIN_TOKEN")
        assert http.delete("/v1/tokens/bob").status_code == 204
        assert_problem(http.delete("/v1/tokens/bob"), 404, "No token is named 'bob'")
        revoked = [e for e in http.get("/v1/audit-log").json() if e["action"] == "token.revoke"]
    assert revoked[0]["before"] == {"name": "bob", "role": "admin"}
    with server.client(bob) as http:
        assert_problem(http.get("/v1/customers"), 401, "not known or has been revoked")


def test_tokens_survive_a_restart(server_factory: ServerFactory) -> None:
    first = server_factory()
    carol = _create(first, "carol", "viewer")
    first.stop()
    again = server_factory(data_dir=first.data_dir)
    with again.client(carol) as http:
        assert http.get("/v1/customers").status_code == 200


def test_the_tokens_commands(server: RunningServer) -> None:
    common = ["--server", server.url, "--ca-cert", str(server.ca_cert)]
    runner = CliRunner()
    env = {"STATREPORT_ADMIN_TOKEN": ADMIN_TOKEN}
    created = runner.invoke(
        main, ["tokens", "create", "dave", "--role", "viewer", *common], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("srt_")
    listed = runner.invoke(main, ["tokens", "list", *common], env=env)
    assert "dave" in listed.stdout
    assert "viewer" in listed.stdout
    # The holder's own token, from STATREPORT_TOKEN, takes precedence over the root token.
    as_dave = runner.invoke(
        main, ["tokens", "create", "x", *common], env={**env, "STATREPORT_TOKEN": token}
    )
    assert as_dave.exit_code == 1
    assert "viewer" in as_dave.output
    revoked = runner.invoke(main, ["tokens", "revoke", "dave", *common], env=env)
    assert revoked.exit_code == 0, revoked.output
    again = runner.invoke(main, ["tokens", "revoke", "dave", *common], env=env)
    assert again.exit_code == 1
    assert "No token is named 'dave'" in again.output
    for command in (["tokens", "--help"], ["tokens", "create", "--help"]):
        assert runner.invoke(main, command).exit_code == 0
