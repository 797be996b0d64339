"""Backups (SPEC §9): a consistent copy of the database while the server runs."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core import repository
from core.errors import Conflict, InvalidPayload
from core.schemas import BackupMade
from core.store import Store

log = logging.getLogger("statreport.admin")


async def backup(store: Store, *, destination: str, actor: str) -> BackupMade:
    """Write a consistent copy of the database to a new file while the server runs."""
    target = Path(destination)
    if not target.is_absolute():
        raise InvalidPayload(
            f"destination {destination!r} must be an absolute path on the server's machine.",
            errors=[{"loc": ["body", "destination"], "msg": "must be an absolute path"}],
        )

    def copy(con: duckdb.DuckDBPyConnection) -> int:
        # On the writer thread: no write can land between the first table copied and the last.
        if target.exists():
            raise Conflict(f"{target} already exists; choose a new file name. Nothing was written.")
        if not target.parent.is_dir():
            raise InvalidPayload(
                f"The folder {target.parent} does not exist on the server's machine; create it.",
                errors=[{"loc": ["body", "destination"], "msg": "its folder does not exist"}],
            )
        repository.copy_database(con, destination=str(target))
        return target.stat().st_size

    started = time.perf_counter()
    size = await store.write(copy, transaction=False)
    seconds = time.perf_counter() - started
    await store.write(
        lambda con: repository.append_audit(
            con,
            at=datetime.now(UTC),
            actor=actor,
            action="database.backup",
            target=f"backup:{target}",
            before=None,
            after={"destination": str(target), "bytes": size},
        )
    )
    log.info("event=backup.written path=%s bytes=%d seconds=%.2f", target, size, seconds)
    return BackupMade(destination=str(target), bytes=size, seconds=round(seconds, 3))
