"""Named staff tokens (SPEC §10): created shown once, stored as hashes, revoked, audited."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from core.auth import ROOT, Actor, Keyring, Role, StaffTokenRecord, hash_secret, new_staff_token
from core.database import Connection
from core.errors import Conflict, NotFound, StoreUnavailable
from core.repository import append_audit
from core.store import Store
from staff import repository
from staff.schemas import TokenCreated, TokenInfo

log = logging.getLogger("statreport.tokens")


async def create_token(
    store: Store, keyring: Keyring, *, name: str, role: Role, actor: Actor
) -> TokenCreated:
    """A new token for ``name``; ``Conflict`` if the name is taken."""
    if name == ROOT:
        raise Conflict("'root' is the server's STATREPORT_ADMIN_TOKEN; choose another name.")
    token = new_staff_token()
    token_hash = hash_secret(token)
    now = datetime.now(UTC)

    def insert(con: Connection) -> None:
        if repository.staff_token_row(con, name) is not None:
            raise Conflict(
                f"A token named '{name}' already exists. Revoke it first "
                f"('statreport tokens revoke {name}'), or choose another name."
            )
        repository.insert_staff_token(con, name=name, role=role, token_hash=token_hash, at=now)
        append_audit(
            con,
            at=now,
            actor=actor,
            action="token.create",
            target=f"token:{name}",
            before=None,
            after={"name": name, "role": role.value},
        )

    await store.write(insert)
    keyring.add_staff(StaffTokenRecord(name=name, role=role, token_hash=token_hash))
    log.info("event=token.created name=%s role=%s actor=%s", name, role.value, actor)
    return TokenCreated(name=name, role=role, token=token)


async def revoke_token(store: Store, keyring: Keyring, *, name: str, actor: Actor) -> None:
    """From now on the token gets 401 and its console sessions end."""
    if name == ROOT:
        raise Conflict(
            "The root token cannot be revoked here: change STATREPORT_ADMIN_TOKEN and restart."
        )
    now = datetime.now(UTC)

    def delete(con: Connection) -> None:
        row = repository.staff_token_row(con, name)
        if row is None:
            raise NotFound(f"No token is named '{name}'. 'statreport tokens list' shows them.")
        repository.delete_staff_token(con, name)
        append_audit(
            con,
            at=now,
            actor=actor,
            action="token.revoke",
            target=f"token:{name}",
            before={"name": name, "role": row["role"]},
            after=None,
        )

    await store.write(delete)
    keyring.revoke_staff(name)
    log.info("event=token.revoked name=%s actor=%s", name, actor)


async def list_tokens(store: Store, keyring: Keyring) -> list[TokenInfo]:
    """Every named token by name, with when it was created and last used."""
    rows = await store.read(repository.staff_token_rows)
    used = keyring.last_used().tokens
    return [
        TokenInfo.model_validate(
            {**row, "last_used_at": used.get(row["name"], row["last_used_at"])}
        )
        for row in rows
    ]


async def write_uses(store: Store, keyring: Keyring) -> None:
    """Write when tokens and keys were last used; run once a minute and at shutdown, so a
    crash loses at most a minute of it. A failure is logged and retried next time."""
    uses = keyring.unwritten_uses()
    if not uses:
        return
    try:
        await store.write(lambda con: repository.record_uses(con, uses))
    except StoreUnavailable as exc:
        log.warning("event=uses.not_written error=%r", str(exc))
        return
    keyring.uses_written(uses)
