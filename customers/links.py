"""The customer's own view (SPEC §15): links an account manager sends a customer's
administrator, each opening a read-only view of that customer's own numbers with no account.

A link's token carries 256 random bits, is shown once and kept only as a hash. Opening it
exchanges it for a session (kept in the database, hashed too, so that any process serves it
and revoking the link ends it at once) and takes it out of the address bar. Creating and
revoking are audited; each page a session is shown counts as a view of its link."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core import repository as audit_repository
from core.auth import Actor, hash_secret
from core.database import Connection
from core.errors import NotFound
from core.store import Store
from customers import repository
from customers.schemas import Link, LinkCreated, LinkRequest

log = logging.getLogger("statreport.customers")

#: The longest a session of the customer's view lives, never past its link's expiry.
SESSION_LIFETIME = timedelta(hours=12)
#: The path the view lives under, and its links' prefix.
VIEW_PATH = "/c/"


def _audited(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "token_hash"}


async def create(
    store: Store, *, customer_id: str, request: LinkRequest, actor: Actor, base_url: str
) -> LinkCreated:
    """A new link to a customer's view; its address is in this answer only."""
    token = secrets.token_urlsafe(32)  # 256 random bits
    now = datetime.now(UTC)
    row = {
        "link_id": "lnk_" + secrets.token_hex(8),
        "customer_id": customer_id,
        "token_hash": hash_secret(token),
        "note": request.note,
        "created_at": now,
        "created_by": str(actor),
        "expires_at": now + timedelta(days=request.expires_in_days),
    }

    def write(con: Connection) -> bool:
        if repository.customer_row(con, customer_id=customer_id) is None:
            return False
        repository.insert_link(con, link=row)
        audit_repository.append_audit(
            con,
            at=now,
            actor=actor,
            action="customer_link.create",
            target=f"customer:{customer_id}",
            before=None,
            after=_audited(row),
        )
        return True

    if not await store.write(write):
        raise NotFound(f"No customer {customer_id!r}; GET /v1/customers lists them.")
    log.info(
        "event=customer_link.created customer=%s link=%s actor=%s",
        customer_id,
        row["link_id"],
        actor,
    )
    return LinkCreated(
        link_id=row["link_id"],
        url=f"{base_url.rstrip('/')}{VIEW_PATH}{token}",
        expires_at=row["expires_at"],
        note=row["note"],
    )


async def list_links(store: Store, *, customer_id: str) -> list[Link]:
    """A customer's links, newest first, never a token."""
    rows = await store.read(lambda con: repository.links(con, customer_id=customer_id))
    return [Link.model_validate(row) for row in rows]


async def revoke(store: Store, *, customer_id: str, link_id: str, actor: Actor) -> None:
    """Revoke a link at once: it answers 410 from now on, and so do its open sessions."""

    def write(con: Connection) -> bool:
        before = repository.link(con, link_id=link_id)
        if before is None or before["customer_id"] != customer_id:
            return False
        if before["revoked_at"] is None:
            now = datetime.now(UTC)
            repository.revoke_link(con, link_id=link_id, at=now)
            audit_repository.append_audit(
                con,
                at=now,
                actor=actor,
                action="customer_link.revoke",
                target=f"customer:{customer_id}",
                before=_audited(before),
                after={**_audited(before), "revoked_at": now},
            )
        return True

    if not await store.write(write):
        raise NotFound(f"Customer {customer_id!r} has no link {link_id!r}; its links are listed.")
    log.info(
        "event=customer_link.revoked customer=%s link=%s actor=%s", customer_id, link_id, actor
    )


@dataclass(frozen=True)
class Opened:
    """What opening a link came to: a session (its id, for the cookie, and its expiry), or
    why not (``gone``: expired or revoked; the customer, to name its account manager)."""

    session_id: str | None
    expires_at: datetime | None
    customer_id: str | None
    gone: str | None


async def open_link(store: Store, *, token: str) -> Opened:
    """Exchange a link's token for a session; None fields and ``gone`` when it cannot."""
    now = datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)

    def write(con: Connection) -> Opened:
        found = repository.link_by_token(con, token_hash=hash_secret(token))
        if found is None:
            return Opened(None, None, None, None)
        gone = _gone(found, now)
        if gone is not None:
            return Opened(None, None, found["customer_id"], gone)
        expires_at = min(now + SESSION_LIFETIME, found["expires_at"])
        repository.insert_session(
            con,
            session_hash=hash_secret(session_id),
            link_id=found["link_id"],
            expires_at=expires_at,
            now=now,
        )
        return Opened(session_id, expires_at, found["customer_id"], None)

    return await store.write(write)


def _gone(link: dict[str, Any], now: datetime) -> str | None:
    if link["revoked_at"] is not None:
        return f"was revoked on {link['revoked_at']:%Y-%m-%d}"
    if link["expires_at"] <= now:
        return f"expired on {link['expires_at']:%Y-%m-%d}"
    return None


@dataclass(frozen=True)
class Viewer:
    """Whose view a session shows: the customer, by its link; or, with ``gone``, why it no
    longer shows anything (the link expired or was revoked)."""

    customer_id: str
    link_id: str
    expires_at: datetime
    gone: str | None = None


async def viewer(store: Store, *, session_id: str | None) -> Viewer | None:
    """The customer a live session shows, counting the view; a Viewer with ``gone`` once its
    link expired or was revoked; None when there is no such session."""
    if not session_id:
        return None
    now = datetime.now(UTC)

    def write(con: Connection) -> Viewer | None:
        found = repository.session_link(con, session_hash=hash_secret(session_id), now=now)
        if found is None:
            return None
        gone = _gone(found, now)
        if gone is None:
            repository.count_view(con, link_id=found["link_id"], at=now)
        return Viewer(found["customer_id"], found["link_id"], found["expires_at"], gone)

    return await store.write(write)
