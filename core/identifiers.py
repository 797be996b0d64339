"""The ids that admins choose (customers, orders, add-ons, keys): one pattern, everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import StringConstraints

#: Letters, digits, ``.``, ``_`` and ``-``, 1 to 64 of them, but never ``.`` or ``..`` (SPEC
#: §3 v2): spelled without a look-ahead, which pydantic's Rust regex engine does not have.
ID_PATTERN = (
    r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}"
    r"|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}"
    r"|\.\.[A-Za-z0-9._-]{1,62})$"
)

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
CustomerIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
KeyIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
CustomerIdQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
#: A UUID in its canonical 36-character form, any version.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
#: An instance's id as the wire format writes it.
InstanceIdPath = Annotated[str, Path(pattern=UUID_PATTERN)]
#: A named staff token's name (SPEC §10).
TOKEN_NAME_PATTERN = r"^[a-z0-9._-]{1,64}$"  # noqa: S105 (a pattern)
TokenNamePath = Annotated[str, Path(pattern=TOKEN_NAME_PATTERN)]
