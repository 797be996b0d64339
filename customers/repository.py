"""Every SQL statement that touches customers, order forms, entitlements and licence keys."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from core.auth import LicenseKeyRecord
from core.database import KEYRING, Connection, notify, staged
from core.repository import rows_as_dicts
from customers.schemas import CustomerDocument


def license_keys(con: Connection) -> list[LicenseKeyRecord]:
    """Every licence key record."""
    return [
        LicenseKeyRecord(key_id=r[0], customer_id=r[1], key_hash=r[2], revoked=r[3] is not None)
        for r in con.execute(
            "SELECT key_id, customer_id, key_hash, revoked_at FROM license_keys"
        ).fetchall()
    ]


def insert_license_key(con: Connection, *, record: LicenseKeyRecord, created_at: datetime) -> None:
    """Store a new licence key's hash."""
    con.execute(
        "INSERT INTO license_keys (key_id, customer_id, key_hash, created_at) VALUES (?, ?, ?, ?)",
        [record.key_id, record.customer_id, record.key_hash, created_at],
    )
    notify(con, KEYRING)


def license_key(con: Connection, *, key_id: str) -> dict[str, Any] | None:
    """One key's public fields, or None."""
    row = con.execute(
        "SELECT key_id, customer_id, created_at, revoked_at FROM license_keys WHERE key_id = ?",
        [key_id],
    ).fetchone()
    if row is None:
        return None
    return {"key_id": row[0], "customer_id": row[1], "created_at": row[2], "revoked_at": row[3]}


def customer_license_keys(con: Connection, *, customer_id: str) -> list[dict[str, Any]]:
    """A customer's keys, without hashes."""
    rows = con.execute(
        "SELECT key_id, created_at, revoked_at, last_used_at FROM license_keys "
        "WHERE customer_id = ? ORDER BY created_at",
        [customer_id],
    ).fetchall()
    return [
        {"key_id": r[0], "created_at": r[1], "revoked_at": r[2], "last_used_at": r[3]} for r in rows
    ]


def revoke_license_key(con: Connection, *, key_id: str, at: datetime) -> None:
    """Mark a key revoked (idempotent: the first revocation time is kept)."""
    con.execute(
        "UPDATE license_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
        [at, key_id],
    )
    notify(con, KEYRING)


def customer_row(con: Connection, *, customer_id: str) -> dict[str, Any] | None:
    """A stored customer document with its timestamps, or None."""
    row = con.execute(
        "SELECT document, created_at, updated_at FROM customers WHERE customer_id = ?",
        [customer_id],
    ).fetchone()
    if row is None:
        return None
    return {
        **json.loads(row[0]),
        "customer_id": customer_id,
        "created_at": row[1],
        "updated_at": row[2],
    }


def customer_rows(con: Connection) -> list[dict[str, Any]]:
    """Every customer, ordered by id."""
    rows = con.execute(
        "SELECT customer_id, document, created_at, updated_at FROM customers ORDER BY customer_id"
    ).fetchall()
    return [
        {**json.loads(r[1]), "customer_id": r[0], "created_at": r[2], "updated_at": r[3]}
        for r in rows
    ]


#: Each table whose every version is kept: its versions, and the columns they keep.
_VERSIONED = {
    "customers": (
        "customer_versions",
        "customer_id, name, account_manager, air_gapped, air_gapped_since, document",
    ),
    "order_forms": ("order_form_versions", "*"),
    "entitlements": ("entitlement_versions", "*"),
}


def replace_customer(
    con: Connection,
    *,
    customer_id: str,
    document: CustomerDocument,
    created_at: datetime,
    updated_at: datetime,
) -> None:
    """Replace a customer and all its order forms and entitlements, in the caller's transaction.

    The versions they replace are kept, known until ``updated_at`` (SPEC §11 v3): what an
    evaluation, its evidence and a statement read "as known at" an instant.
    """
    for versions, _ in _VERSIONED.values():
        con.execute(
            f"UPDATE {versions} SET known_until = ? "  # noqa: S608 - a constant name
            "WHERE customer_id = ? AND known_until IS NULL",
            [updated_at, customer_id],
        )
    con.execute("DELETE FROM entitlements WHERE customer_id = ?", [customer_id])
    con.execute("DELETE FROM order_forms WHERE customer_id = ?", [customer_id])
    con.execute("DELETE FROM customers WHERE customer_id = ?", [customer_id])
    con.execute(
        "INSERT INTO customers (customer_id, name, account_manager, air_gapped, document, "
        "created_at, updated_at, air_gapped_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            customer_id,
            document.name,
            document.account_manager,
            document.air_gapped,
            document.model_dump_json(exclude_none=True),
            created_at,
            updated_at,
            document.effective_air_gapped_since(),
        ],
    )
    orders, entitlements = _order_tables(customer_id, document)
    with staged(con, "new_order_forms", orders), staged(con, "new_entitlements", entitlements):
        con.execute(
            "INSERT INTO order_forms (customer_id, order_id, start_on, end_on, users_per_pack, "
            "counting) SELECT customer_id, order_id, start_on, end_on, users_per_pack, "
            "counting::JSON FROM new_order_forms"
        )
        con.execute(
            "INSERT INTO entitlements (customer_id, order_id, addon_id, effective_on, item, "
            "quantity) SELECT * FROM new_entitlements"
        )
        for table, (versions, columns) in _VERSIONED.items():
            con.execute(
                f"INSERT INTO {versions} SELECT {columns}, ?, NULL FROM {table} "  # noqa: S608
                "WHERE customer_id = ?",
                [updated_at, customer_id],
            )


def _order_tables(customer_id: str, document: CustomerDocument) -> tuple[pa.Table, pa.Table]:
    """A customer's order forms and entitlement items as Arrow tables in the columns of
    ``order_forms`` and ``entitlements``, each inserted in one statement: row by row, 1,000
    orders held the writer (and every acknowledgement queued behind it) for 0.9 s (issue 32).
    One row per quantity of an order (``addon_id`` '') or of an add-on."""
    orders = pa.table(
        {
            "customer_id": pa.array([customer_id] * len(document.orders), pa.string()),
            "order_id": pa.array([o.order_id for o in document.orders], pa.string()),
            "start_on": pa.array([o.start for o in document.orders], pa.date32()),
            "end_on": pa.array([o.end for o in document.orders], pa.date32()),
            "users_per_pack": pa.array(
                [o.entitlements.users_per_pack for o in document.orders], pa.int32()
            ),
            "counting": pa.array([json.dumps(o.counting or {}) for o in document.orders]),
        }
    )
    items: list[tuple[str, str, Any, str, int]] = []
    for order in document.orders:
        for item, quantity in order.entitlements.model_dump(exclude_none=True).items():
            if item != "users_per_pack":
                items.append((order.order_id, "", order.start, item, quantity))
        for addon in order.addons:
            for item, quantity in addon.entitlements.model_dump(exclude_none=True).items():
                items.append((order.order_id, addon.addon_id, addon.effective, item, quantity))
    entitlements = pa.table(
        {
            "customer_id": pa.array([customer_id] * len(items), pa.string()),
            "order_id": pa.array([row[0] for row in items], pa.string()),
            "addon_id": pa.array([row[1] for row in items], pa.string()),
            "effective_on": pa.array([row[2] for row in items], pa.date32()),
            "item": pa.array([row[3] for row in items], pa.string()),
            "quantity": pa.array([row[4] for row in items], pa.int64()),
        }
    )
    return orders, entitlements


#: In the SQL both engines speak: the latest day's value is the first of an ordered list.
_INSTANCE_COLUMNS = (
    "i.instance_id::VARCHAR AS instance_id, "
    "(array_agg(d.environment ORDER BY d.day DESC))[1] AS environment, "
    "(array_agg(d.product_version ORDER BY d.day DESC))[1] AS product_version, "
    "min(d.day) AS first_report_on, max(d.day) AS last_report_on, "
    "sum(d.reports)::BIGINT AS reports, "
    "(array_agg(d.max_sequence ORDER BY d.day DESC))[1] AS last_sequence, "
    "max(d.day) FILTER (WHERE d.day <= ?) AS last_report_by_as_of, "
    "min(i.retired_on) AS retired_on, min(i.customer_id) AS customer_id"
)


def instances(
    con: Connection,
    *,
    customer_id: str | None = None,
    instance_id: str | None = None,
    customer_ids: list[str] | None = None,
    as_of: date,
) -> list[dict[str, Any]]:
    """Every instance of a customer (or one instance, or of several customers) with what its
    instance-days say, first reporting first; ``last_report_by_as_of`` is its latest report
    day up to ``as_of``."""
    params: list[Any]
    if instance_id is not None:
        where, params = "i.instance_id = ?::UUID", [instance_id]
    elif customer_id is not None:
        where, params = "i.customer_id = ?", [customer_id]
    else:
        where, params = "i.customer_id = ANY(?::VARCHAR[])", [customer_ids or []]
    cursor = con.execute(
        f"SELECT {_INSTANCE_COLUMNS} FROM instances i JOIN instance_day_totals d "  # noqa: S608
        f"ON d.instance_id = i.instance_id WHERE {where} GROUP BY i.instance_id "
        "ORDER BY first_report_on, instance_id",
        [as_of, *params],
    )
    return rows_as_dicts(cursor)


def set_retirement(con: Connection, *, instance_id: str, retired_on: date | None) -> None:
    """Record (or, with None, undo) an instance's retirement, in the caller's transaction."""
    con.execute(
        "UPDATE instances SET retired_on = ? WHERE instance_id = ?::UUID", [retired_on, instance_id]
    )


def customer_attestations(con: Connection, *, customer_id: str) -> list[dict[str, Any]]:
    """A customer's attestations, newest quarter first."""
    return rows_as_dicts(
        con.execute(
            "SELECT quarter, received_at, certified_on, officer_name, officer_title, reports, "
            "bundle_sha256 FROM attestations WHERE customer_id = ? ORDER BY quarter DESC",
            [customer_id],
        )
    )


# -- the customer's own view (SPEC §15 v3) ---------------------------------------------------

_LINK = (
    "SELECT link_id, customer_id, note, created_at, created_by, expires_at, revoked_at, "
    "last_viewed_at, views FROM customer_links"
)


def insert_link(con: Connection, *, link: dict[str, Any]) -> None:
    """Keep a new link (its token's hash only)."""
    con.execute(
        "INSERT INTO customer_links (link_id, customer_id, token_hash, note, created_at, "
        "created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            link["link_id"],
            link["customer_id"],
            link["token_hash"],
            link["note"],
            link["created_at"],
            link["created_by"],
            link["expires_at"],
        ],
    )


def links(con: Connection, *, customer_id: str) -> list[dict[str, Any]]:
    """A customer's links, newest first."""
    return rows_as_dicts(
        con.execute(_LINK + " WHERE customer_id = ? ORDER BY created_at DESC", [customer_id])
    )


def link(con: Connection, *, link_id: str) -> dict[str, Any] | None:
    """One link, by id."""
    rows = rows_as_dicts(con.execute(_LINK + " WHERE link_id = ?", [link_id]))
    return rows[0] if rows else None


def link_by_token(con: Connection, *, token_hash: str) -> dict[str, Any] | None:
    """The link a token opens, by the token's hash."""
    rows = rows_as_dicts(con.execute(_LINK + " WHERE token_hash = ?", [token_hash]))
    return rows[0] if rows else None


def revoke_link(con: Connection, *, link_id: str, at: datetime) -> None:
    """Revoke a link: its sessions open nothing from then on (each page checks the link),
    and they are kept until they expire only to say why, naming whom to ask."""
    con.execute("UPDATE customer_links SET revoked_at = ? WHERE link_id = ?", [at, link_id])


def insert_session(
    con: Connection,
    *,
    session_hash: str,
    link_id: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    """A session opened by a link; the expired ones go as a new one opens."""
    con.execute("DELETE FROM customer_sessions WHERE expires_at <= ?", [now])
    con.execute(
        "INSERT INTO customer_sessions VALUES (?, ?, ?)", [session_hash, link_id, expires_at]
    )


def session_link(con: Connection, *, session_hash: str, now: datetime) -> dict[str, Any] | None:
    """The link of a live session, or None."""
    rows = rows_as_dicts(
        con.execute(
            "SELECT l.link_id, l.customer_id, l.note, l.created_at, l.created_by, l.expires_at, "
            "l.revoked_at, l.last_viewed_at, l.views FROM customer_links l "
            "JOIN customer_sessions s USING (link_id) "
            "WHERE s.session_hash = ? AND s.expires_at > ?",
            [session_hash, now],
        )
    )
    return rows[0] if rows else None


def count_view(con: Connection, *, link_id: str, at: datetime) -> None:
    """One more view of a link."""
    con.execute(
        "UPDATE customer_links SET views = views + 1, last_viewed_at = ? WHERE link_id = ?",
        [at, link_id],
    )
