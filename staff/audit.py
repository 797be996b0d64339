"""The audit log of admin changes, as read: written in each change's own transaction
(``core.repository.append_audit``), shown here with what each change did, field by field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import NotFound
from core.store import Store
from staff import repository
from staff.schemas import AuditEntry


async def audit_log(store: Store, *, target: str | None, limit: int) -> list[AuditEntry]:
    """The newest admin changes first."""
    rows = await store.read(lambda con: repository.audit_entries(con, target=target, limit=limit))
    return [AuditEntry.model_validate(row) for row in rows]


async def audit_entry(store: Store, *, audit_id: int) -> AuditEntry:
    """One admin change, by its id."""
    rows = await store.read(
        lambda con: repository.audit_entries(con, target=None, limit=1, audit_id=audit_id)
    )
    if not rows:
        raise NotFound(f"No audit entry {audit_id}; the audit log lists them.")
    return AuditEntry.model_validate(rows[0])


@dataclass(frozen=True)
class Change:
    """One field a change touched: where in the document, and its value before and after
    (``None`` where it was absent)."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed"


#: The fields that name an element of a list (an order, an add-on): a list of them is
#: compared element by element by that name, not by position.
_NAMES = ("order_id", "addon_id", "key_id", "instance_id")


def changes(before: Any, after: Any) -> list[Change]:
    """What a change did, field by field: each leaf that was added, removed or changed, by
    its path (``orders[OF-1].addons[AO-8].entitlements.user_packs``)."""
    flat_before, flat_after = _flatten(before), _flatten(after)
    return [
        Change(path, flat_before.get(path), flat_after.get(path))
        for path in sorted(flat_before.keys() | flat_after.keys())
        if flat_before.get(path) != flat_after.get(path)
    ]


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{path}.{key}" if path else str(key)))
        return flat
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        flat = {}
        for index, item in enumerate(value):
            name = next((str(item[k]) for k in _NAMES if k in item), str(index))
            flat.update(_flatten(item, f"{path}[{name}]"))
        return flat
    if value is None or value == [] or value == {}:
        return {}
    return {path: value}
