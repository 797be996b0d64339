"""Working notes on findings (issue 28): what staff learnt or did ("called Jane 12-03, PO
expected"), dated and signed, kept by ``finding_id`` so that they follow a finding from run
to run; shown with the finding, on its evidence page and in the weekly email. Each note is
audited. A note never changes a finding or its evidence: those stay as the run knew them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from analytics import repository
from analytics.schemas import FindingNote
from core.auth import Actor
from core.database import Connection
from core.errors import NotFound
from core.repository import append_audit
from core.store import Store

log = logging.getLogger("statreport.analytics")


async def add_note(store: Store, *, finding_id: str, text: str, actor: Actor) -> FindingNote:
    """Keep a note on a finding some run holds (404 otherwise), audited in its transaction."""

    def write(con: Connection) -> dict[str, object] | None:
        customer_id = repository.finding_customer(con, finding_id=finding_id)
        if customer_id is None:
            return None
        at = store.stamp()
        note = repository.insert_note(
            con,
            finding_id=finding_id,
            customer_id=customer_id,
            written_at=at,
            author=actor.name,
            text=text,
        )
        append_audit(
            con,
            at=at,
            actor=actor,
            action="finding.note",
            target=f"finding:{finding_id}",
            before=None,
            after={"note_id": note["note_id"], "customer_id": customer_id, "text": text},
        )
        return note

    stored = await store.write(write)
    if stored is None:
        raise NotFound(
            f"No evaluation run holds finding {finding_id!r}; notes are kept on findings a "
            "run reported (GET /v1/evaluations lists them)."
        )
    note = FindingNote.model_validate(stored)
    log.info("event=finding.noted finding=%s note_id=%d actor=%s", finding_id, note.note_id, actor)
    return note


async def notes_of(store: Store, finding_ids: Sequence[str]) -> dict[str, list[FindingNote]]:
    """The notes of these findings, oldest first, by finding id (every id present)."""
    rows = await store.read(lambda con: repository.notes(con, finding_ids=list(finding_ids)))
    found: dict[str, list[FindingNote]] = {finding_id: [] for finding_id in finding_ids}
    for row in rows:
        found[row["finding_id"]].append(FindingNote.model_validate(row))
    return found
