"""Backups (SPEC §9): a consistent copy of the database while the server runs."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core import repository
from core.auth import Actor
from core.errors import Conflict, InvalidPayload
from core.identifiers import FILE_NAME_PATTERN
from core.schemas import BackupMade
from core.store import Store

log = logging.getLogger("statreport.admin")


def _checked_name(name: str) -> str:
    """The request's rule again, where the path is made: never a path, whoever calls."""
    if not re.fullmatch(FILE_NAME_PATTERN, name):
        raise InvalidPayload(
            "The backup name must be a plain file name; nothing was written.",
            errors=[{"loc": ["body", "destination"], "msg": "a plain file name"}],
        )
    return name


async def backup(store: Store, *, folder: Path, name: str, actor: Actor) -> BackupMade:
    """Write a consistent copy of the database, as the new file ``name`` in ``folder``, while
    the server runs."""
    target = folder / _checked_name(name)

    def copy(con: duckdb.DuckDBPyConnection) -> int:
        # On the writer thread: no write can land between the first table copied and the last.
        if target.exists():
            raise Conflict(
                f"{name} already exists in the backup directory {folder}; choose a new name. "
                "Nothing was written."
            )
        folder.mkdir(parents=True, exist_ok=True)
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
            target=f"backup:{name}",
            before=None,
            after={"destination": str(target), "bytes": size},
        )
    )
    log.info("event=backup.written path=%s bytes=%d seconds=%.2f", target, size, seconds)
    return BackupMade(destination=str(target), bytes=size, seconds=round(seconds, 3))
