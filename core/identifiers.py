"""The ids that admins choose (customers, orders, add-ons, keys): one pattern, everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import StringConstraints

#: Letters, digits, ``.``, ``_`` and ``-``, 1 to 64 of them (SPEC §3).
ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
CustomerIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
KeyIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
CustomerIdQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
