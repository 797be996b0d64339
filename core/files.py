"""Files written durably: what survives a crash is the whole file or no file."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder (after a rename or a link, the folder holds the new name)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace_durably(written: Path, path: Path) -> None:
    """Put the complete file ``written`` at ``path``, over what was there: fsync it, rename it,
    fsync the folder. After a crash ``path`` holds the old file or the new one, whole."""
    fsync_path(written)
    os.replace(written, path)
    fsync_path(path.parent)


def write_durably(path: Path, content: bytes) -> Path:
    """Write ``content`` to ``path`` through a temporary file (``replace_durably``)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(content)
    replace_durably(temporary, path)
    return path
