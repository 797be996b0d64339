"""Working notes on findings (issue 28): written by an admin over the API, audited, carried by
the finding's id into the next run, and shown in the next weekly email as it arrives at a
real SMTP server."""

from __future__ import annotations

import pytest

from tests.conftest import ServerFactory
from tests.e2e.test_weekly import MONDAY, by_recipient, populate, run_weekly, text_of
from tests.smtp import Recorder
from tests.support import assert_problem, evaluate

pytestmark = pytest.mark.moment(MONDAY, tick=False)


def test_a_note_is_audited_follows_its_finding_and_is_in_the_next_weekly_email(
    server_factory: ServerFactory, smtp: tuple[int, Recorder]
) -> None:
    port, recorder = smtp
    server = server_factory(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
    populate(server)
    first = evaluate(server, "2026-11-21")
    (acme,) = [f for f in first["findings"] if f["customer_id"] == "acme"]
    notes = f"/v1/findings/{acme['finding_id']}/notes"
    with server.admin() as http:
        assert http.get(notes).json() == []
        written = http.post(notes, json={"text": "  called Jane 12-03, PO expected  "})
        assert written.status_code == 201, written.text
        assert written.json()["text"] == "called Jane 12-03, PO expected"
        assert written.json()["author"] == "root"
        assert written.json()["customer_id"] == "acme"
        assert_problem(http.post(notes, json={"text": ""}), 422, "text")
        assert_problem(http.post(notes, json={"text": "x" * 2001}), 422, "2000")
        unknown = "/v1/findings/f_0000000000000000/notes"
        assert_problem(http.post(unknown, json={"text": "hello"}), 404, "No evaluation run")
        audit = http.get("/v1/audit-log", params={"target": f"finding:{acme['finding_id']}"})
        (entry,) = audit.json()
        assert entry["action"] == "finding.note"
        assert entry["after"]["text"] == "called Jane 12-03, PO expected"
        viewer = http.post("/v1/tokens", json={"name": "vera", "role": "viewer"}).json()["token"]
    with server.client(token=viewer) as http:
        assert http.get(notes).json()[0]["text"] == "called Jane 12-03, PO expected"
        assert_problem(http.post(notes, json={"text": "mine"}), 403, "viewer")

    run_weekly(server)  # a later run: the same finding id, so the note follows it
    email = text_of(by_recipient(recorder.wait_for(4))["alice@vendor.example"])
    assert ", root: called Jane 12-03, PO expected" in email
    bob = text_of(by_recipient(recorder.received)["bob@vendor.example"])
    assert "called Jane" not in bob  # another manager's finding carries no note of acme's
