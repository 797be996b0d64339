"""The versioned database schema. Append a migration; never edit one that has shipped."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from core import instance_days
from core.database import Connection, Engine, engine_of
from core.errors import SchemaTooNew

log = logging.getLogger("statreport.store")

#: When what was stored before schema version 12 counts as known.
_BEGINNING = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "customers, order forms, licence keys, instances, reports, audit log",
        """
        CREATE TABLE customers (
            customer_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            account_manager VARCHAR NOT NULL,
            air_gapped BOOLEAN NOT NULL,
            document JSON NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE order_forms (
            customer_id VARCHAR NOT NULL,
            order_id VARCHAR NOT NULL,
            start_on DATE NOT NULL,
            end_on DATE NOT NULL,
            users_per_pack INTEGER,
            PRIMARY KEY (customer_id, order_id)
        );
        -- One row per quantity of an order (addon_id '') or of an add-on.
        CREATE TABLE entitlements (
            customer_id VARCHAR NOT NULL,
            order_id VARCHAR NOT NULL,
            addon_id VARCHAR NOT NULL,
            effective_on DATE NOT NULL,
            item VARCHAR NOT NULL,
            quantity BIGINT NOT NULL
        );
        CREATE TABLE license_keys (
            key_id VARCHAR PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            key_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ
        );
        CREATE TABLE instances (
            instance_id UUID PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            first_seen_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE reports (
            report_id UUID PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            instance_id UUID NOT NULL,
            environment VARCHAR NOT NULL,
            generated_at TIMESTAMPTZ NOT NULL,
            usage_day DATE NOT NULL,
            product_version VARCHAR NOT NULL,
            sequence BIGINT,
            users INTEGER NOT NULL,
            tenants INTEGER,
            namespaces INTEGER,
            worker_groups INTEGER,
            roles INTEGER,
            service_accounts INTEGER,
            source VARCHAR NOT NULL,
            key_id VARCHAR NOT NULL,
            received_at TIMESTAMPTZ NOT NULL
        );
        CREATE SEQUENCE audit_ids START 1;
        CREATE TABLE audit_log (
            audit_id BIGINT PRIMARY KEY DEFAULT nextval('audit_ids'),
            changed_at TIMESTAMPTZ NOT NULL,
            actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            target VARCHAR NOT NULL,
            before JSON,
            after JSON
        );
        CREATE TABLE heartbeat (id INTEGER PRIMARY KEY, beat_at TIMESTAMPTZ NOT NULL);
        """,
    ),
    (
        2,
        "evaluations, episode history, attestations received",
        """
        CREATE TABLE evaluations (
            as_of DATE PRIMARY KEY,
            evaluated_at TIMESTAMPTZ NOT NULL,
            findings JSON NOT NULL
        );
        CREATE TABLE episodes (
            customer_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            started_on DATE NOT NULL,
            first_reported_as_of DATE NOT NULL,
            first_reported_at TIMESTAMPTZ NOT NULL,
            last_evaluated_as_of DATE NOT NULL,
            status VARCHAR NOT NULL,
            deadline DATE NOT NULL,
            peak_usage BIGINT NOT NULL,
            entitled BIGINT NOT NULL,
            material BOOLEAN NOT NULL,
            ended_on DATE,
            resolution VARCHAR,
            PRIMARY KEY (customer_id, metric, started_on)
        );
        CREATE TABLE attestations (
            customer_id VARCHAR NOT NULL,
            quarter VARCHAR NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            reports INTEGER NOT NULL,
            PRIMARY KEY (customer_id, quarter)
        );
        """,
    ),
    (
        3,
        "weekly report runs and deliveries",
        """
        CREATE TABLE weekly_runs (
            iso_week VARCHAR PRIMARY KEY,
            as_of DATE NOT NULL,
            ran_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE weekly_deliveries (
            iso_week VARCHAR NOT NULL,
            recipient VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            subject VARCHAR NOT NULL,
            findings INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            detail VARCHAR,
            attempted_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (iso_week, recipient)
        );
        """,
    ),
    (
        4,
        "attestations keep their certification and the bundle's digest",
        """
        ALTER TABLE attestations ADD COLUMN officer_name VARCHAR;
        ALTER TABLE attestations ADD COLUMN officer_title VARCHAR;
        ALTER TABLE attestations ADD COLUMN certified_on DATE;
        ALTER TABLE attestations ADD COLUMN bundle_sha256 VARCHAR;
        ALTER TABLE attestations ADD COLUMN key_id VARCHAR;
        """,
    ),
    (
        5,
        "weekly deliveries keep what they were built from and the message as sent",
        """
        ALTER TABLE weekly_deliveries ADD COLUMN built_from VARCHAR;
        ALTER TABLE weekly_deliveries ADD COLUMN message_sha256 VARCHAR;
        ALTER TABLE weekly_deliveries ADD COLUMN message BLOB;
        """,
    ),
    (
        6,
        "counting rules of order forms, air-gapped since a day, retired instances",
        """
        ALTER TABLE order_forms ADD COLUMN counting JSON;
        ALTER TABLE customers ADD COLUMN air_gapped_since DATE;
        ALTER TABLE instances ADD COLUMN retired_on DATE;
        """,
    ),
    (
        7,
        "evaluations are immutable runs with ids; the runs before are carried over",
        """
        CREATE TABLE evaluation_runs (
            evaluation_id VARCHAR PRIMARY KEY,
            as_of DATE NOT NULL,
            evaluated_at TIMESTAMPTZ NOT NULL,
            rules_version VARCHAR NOT NULL,
            customers_version BIGINT,
            findings JSON NOT NULL
        );
        INSERT INTO evaluation_runs
        SELECT 'ev_' || strftime(as_of, '%Y%m%d') || '_v1', as_of, evaluated_at, '1', NULL,
               findings
        FROM evaluations;
        DROP TABLE evaluations;
        """,
    ),
    (
        8,
        "instance-days: each instance's daily maxima, built from every stored report",
        f"{instance_days.CREATE_TABLE}{instance_days.CREATE_VIEW}"
        f"INSERT INTO instance_days {instance_days.rollup('reports', partial=False)};",
    ),
    (
        9,
        "named staff tokens; when tokens and keys were last used; the audit log records whom "
        "a change was made on behalf of",
        """
        CREATE TABLE staff_tokens (
            name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL,
            token_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            last_used_at TIMESTAMPTZ
        );
        ALTER TABLE audit_log ADD COLUMN on_behalf_of VARCHAR;
        ALTER TABLE license_keys ADD COLUMN last_used_at TIMESTAMPTZ;
        """,
    ),
    (
        10,
        "instance-days are read as they are, and merged only where partial rows wait to be folded",
        instance_days.CREATE_VIEW,
    ),
    (
        11,
        "the instance-days that received a report out of order, whose raw sequences the clone "
        "check reads; every instance-day stored before counts as one",
        instance_days.CREATE_OUT_OF_ORDER,
    ),
    (
        12,
        "what was known when (SPEC §11 v3): instance-days stamped when committed and the rows "
        "folds replaced kept; every version of a customer's order forms; runs record their "
        "instant. What was stored before counts as known from the start.",
        f"""
        {instance_days.CREATE_KNOWN}
        ALTER TABLE evaluation_runs ADD COLUMN known_at TIMESTAMPTZ;
        CREATE TABLE customer_versions AS
        SELECT customer_id, name, account_manager, air_gapped, air_gapped_since, document,
               {_BEGINNING} AS known_from, NULL::TIMESTAMPTZ AS known_until
        FROM customers;
        CREATE TABLE order_form_versions AS
        SELECT *, {_BEGINNING} AS known_from, NULL::TIMESTAMPTZ AS known_until FROM order_forms;
        CREATE TABLE entitlement_versions AS
        SELECT *, {_BEGINNING} AS known_from, NULL::TIMESTAMPTZ AS known_until
        FROM entitlements;
        """,  # noqa: S608 - constants only
    ),
    (
        13,
        "working notes on findings (issue 28): staff's dated notes, carried by finding_id",
        """
        CREATE SEQUENCE finding_note_ids START 1;
        CREATE TABLE finding_notes (
            note_id BIGINT PRIMARY KEY DEFAULT nextval('finding_note_ids'),
            finding_id VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            written_at TIMESTAMPTZ NOT NULL,
            author VARCHAR NOT NULL,
            text VARCHAR NOT NULL
        );
        CREATE INDEX finding_notes_by_finding ON finding_notes (finding_id);
        """,
    ),
    (
        14,
        "signed webhooks (SPEC §14 v3): endpoints, what each finding last announced, and the "
        "outbox of events and their deliveries",
        """
        CREATE TABLE webhook_endpoints (
            webhook_id VARCHAR PRIMARY KEY,
            url VARCHAR NOT NULL,
            events VARCHAR[] NOT NULL,
            description VARCHAR NOT NULL,
            enabled BOOLEAN NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            secret VARCHAR NOT NULL,
            previous_secret VARCHAR,
            previous_until TIMESTAMPTZ,
            failing_since TIMESTAMPTZ,
            disabled_reason VARCHAR
        );
        CREATE TABLE finding_announcements (
            finding_id VARCHAR PRIMARY KEY,
            state JSON NOT NULL,
            announced_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE webhook_events (
            event_id VARCHAR PRIMARY KEY,
            type VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            data JSON NOT NULL
        );
        CREATE TABLE webhook_deliveries (
            webhook_id VARCHAR NOT NULL,
            event_id VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            next_attempt_at TIMESTAMPTZ,
            last_attempt_at TIMESTAMPTZ,
            last_status_code INTEGER,
            last_error VARCHAR,
            delivered_at TIMESTAMPTZ,
            PRIMARY KEY (webhook_id, event_id)
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
        """,
    ),
    (
        15,
        "the customer's own view (SPEC §15 v3): revocable links, stored hashed, and the "
        "sessions they open, kept in the database",
        """
        CREATE TABLE customer_links (
            link_id VARCHAR PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            token_hash VARCHAR NOT NULL UNIQUE,
            note VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            created_by VARCHAR NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ,
            last_viewed_at TIMESTAMPTZ,
            views BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE customer_sessions (
            session_hash VARCHAR PRIMARY KEY,
            link_id VARCHAR NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL
        );
        """,
    ),
    (
        16,
        "console sessions kept in the database (SPEC §16 v3), so that any process serves them; "
        "a value to show once is sealed with the session's id, which only the browser holds",
        """
        CREATE TABLE console_sessions (
            session_hash VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            csrf VARCHAR NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            once JSON NOT NULL
        );
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]

#: PostgreSQL (SPEC §16 v3) starts at the schema DuckDB has at version 15, in one step; each
#: later migration is added to both lists, with the same number. ``tests/core/test_engines.py``
#: holds the two schemas to the same tables and columns, in the same order.
POSTGRES_MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        15,
        "the schema of version 15, on PostgreSQL; with the clock that stamps what became known "
        "when across processes, and the indexes DuckDB does without",
        f"""
        CREATE TABLE customers (
            customer_id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            account_manager VARCHAR NOT NULL,
            air_gapped BOOLEAN NOT NULL,
            document JSON NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            air_gapped_since DATE
        );
        CREATE TABLE order_forms (
            customer_id VARCHAR NOT NULL,
            order_id VARCHAR NOT NULL,
            start_on DATE NOT NULL,
            end_on DATE NOT NULL,
            users_per_pack INTEGER,
            counting JSON,
            PRIMARY KEY (customer_id, order_id)
        );
        CREATE TABLE entitlements (
            customer_id VARCHAR NOT NULL,
            order_id VARCHAR NOT NULL,
            addon_id VARCHAR NOT NULL,
            effective_on DATE NOT NULL,
            item VARCHAR NOT NULL,
            quantity BIGINT NOT NULL
        );
        CREATE INDEX entitlements_by_customer ON entitlements (customer_id);
        CREATE TABLE license_keys (
            key_id VARCHAR PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            key_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ,
            last_used_at TIMESTAMPTZ
        );
        CREATE TABLE instances (
            instance_id UUID PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            first_seen_at TIMESTAMPTZ NOT NULL,
            retired_on DATE
        );
        CREATE INDEX instances_by_customer ON instances (customer_id);
        CREATE TABLE reports (
            report_id UUID PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            instance_id UUID NOT NULL,
            environment VARCHAR NOT NULL,
            generated_at TIMESTAMPTZ NOT NULL,
            usage_day DATE NOT NULL,
            product_version VARCHAR NOT NULL,
            sequence BIGINT,
            users INTEGER NOT NULL,
            tenants INTEGER,
            namespaces INTEGER,
            worker_groups INTEGER,
            roles INTEGER,
            service_accounts INTEGER,
            source VARCHAR NOT NULL,
            key_id VARCHAR NOT NULL,
            received_at TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX reports_by_day ON reports (usage_day);
        CREATE INDEX reports_by_instance ON reports (instance_id, generated_at);
        CREATE SEQUENCE audit_ids START 1;
        CREATE TABLE audit_log (
            audit_id BIGINT PRIMARY KEY DEFAULT nextval('audit_ids'),
            changed_at TIMESTAMPTZ NOT NULL,
            actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            target VARCHAR NOT NULL,
            before JSON,
            after JSON,
            on_behalf_of VARCHAR
        );
        CREATE TABLE heartbeat (id INTEGER PRIMARY KEY, beat_at TIMESTAMPTZ NOT NULL);
        CREATE TABLE episodes (
            customer_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            started_on DATE NOT NULL,
            first_reported_as_of DATE NOT NULL,
            first_reported_at TIMESTAMPTZ NOT NULL,
            last_evaluated_as_of DATE NOT NULL,
            status VARCHAR NOT NULL,
            deadline DATE NOT NULL,
            peak_usage BIGINT NOT NULL,
            entitled BIGINT NOT NULL,
            material BOOLEAN NOT NULL,
            ended_on DATE,
            resolution VARCHAR,
            PRIMARY KEY (customer_id, metric, started_on)
        );
        CREATE TABLE attestations (
            customer_id VARCHAR NOT NULL,
            quarter VARCHAR NOT NULL,
            received_at TIMESTAMPTZ NOT NULL,
            reports INTEGER NOT NULL,
            officer_name VARCHAR,
            officer_title VARCHAR,
            certified_on DATE,
            bundle_sha256 VARCHAR,
            key_id VARCHAR,
            PRIMARY KEY (customer_id, quarter)
        );
        CREATE TABLE weekly_runs (
            iso_week VARCHAR PRIMARY KEY,
            as_of DATE NOT NULL,
            ran_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE weekly_deliveries (
            iso_week VARCHAR NOT NULL,
            recipient VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            subject VARCHAR NOT NULL,
            findings INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            detail VARCHAR,
            attempted_at TIMESTAMPTZ NOT NULL,
            built_from VARCHAR,
            message_sha256 VARCHAR,
            message BYTEA,
            PRIMARY KEY (iso_week, recipient)
        );
        CREATE TABLE evaluation_runs (
            evaluation_id VARCHAR PRIMARY KEY,
            as_of DATE NOT NULL,
            evaluated_at TIMESTAMPTZ NOT NULL,
            rules_version VARCHAR NOT NULL,
            customers_version BIGINT,
            findings JSON NOT NULL,
            known_at TIMESTAMPTZ
        );
        {instance_days.POSTGRES_TABLES}
        CREATE TABLE staff_tokens (
            name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL,
            token_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL,
            last_used_at TIMESTAMPTZ
        );
        CREATE TABLE customer_versions (
            customer_id VARCHAR, name VARCHAR, account_manager VARCHAR, air_gapped BOOLEAN,
            air_gapped_since DATE, document JSON, known_from TIMESTAMPTZ, known_until TIMESTAMPTZ
        );
        CREATE TABLE order_form_versions (
            customer_id VARCHAR, order_id VARCHAR, start_on DATE, end_on DATE,
            users_per_pack INTEGER, counting JSON, known_from TIMESTAMPTZ, known_until TIMESTAMPTZ
        );
        CREATE TABLE entitlement_versions (
            customer_id VARCHAR, order_id VARCHAR, addon_id VARCHAR, effective_on DATE,
            item VARCHAR, quantity BIGINT, known_from TIMESTAMPTZ, known_until TIMESTAMPTZ
        );
        CREATE SEQUENCE finding_note_ids START 1;
        CREATE TABLE finding_notes (
            note_id BIGINT PRIMARY KEY DEFAULT nextval('finding_note_ids'),
            finding_id VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            written_at TIMESTAMPTZ NOT NULL,
            author VARCHAR NOT NULL,
            text VARCHAR NOT NULL
        );
        CREATE INDEX finding_notes_by_finding ON finding_notes (finding_id);
        CREATE TABLE webhook_endpoints (
            webhook_id VARCHAR PRIMARY KEY,
            url VARCHAR NOT NULL,
            events VARCHAR[] NOT NULL,
            description VARCHAR NOT NULL,
            enabled BOOLEAN NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            secret VARCHAR NOT NULL,
            previous_secret VARCHAR,
            previous_until TIMESTAMPTZ,
            failing_since TIMESTAMPTZ,
            disabled_reason VARCHAR
        );
        CREATE TABLE finding_announcements (
            finding_id VARCHAR PRIMARY KEY,
            state JSON NOT NULL,
            announced_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE webhook_events (
            event_id VARCHAR PRIMARY KEY,
            type VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            data JSON NOT NULL
        );
        CREATE TABLE webhook_deliveries (
            webhook_id VARCHAR NOT NULL,
            event_id VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            next_attempt_at TIMESTAMPTZ,
            last_attempt_at TIMESTAMPTZ,
            last_status_code INTEGER,
            last_error VARCHAR,
            delivered_at TIMESTAMPTZ,
            PRIMARY KEY (webhook_id, event_id)
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
        CREATE TABLE customer_links (
            link_id VARCHAR PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            token_hash VARCHAR NOT NULL UNIQUE,
            note VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            created_by VARCHAR NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            revoked_at TIMESTAMPTZ,
            last_viewed_at TIMESTAMPTZ,
            views BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE customer_sessions (
            session_hash VARCHAR PRIMARY KEY,
            link_id VARCHAR NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL
        );
        -- Per instance, the latest generated_at and highest sequence stored by any process:
        -- what tells a report that arrived out of order (ingest.frontier) across processes.
        CREATE TABLE instance_frontiers (
            instance_id UUID PRIMARY KEY,
            latest_generated_at TIMESTAMPTZ NOT NULL,
            max_sequence BIGINT
        );
        -- The latest "as known at" instant any process handed out (core/postgres_store.py).
        CREATE TABLE store_clock (id INTEGER PRIMARY KEY, handed_out TIMESTAMPTZ NOT NULL);
        INSERT INTO store_clock VALUES (1, {_BEGINNING});
        """,  # noqa: S608 - constants only
    ),
    MIGRATIONS[15],
)


#: The PostgreSQL advisory lock that lets one process migrate while the others wait.
MIGRATION_LOCK = 7_361_820_001


def current_version(con: Connection) -> int:
    """The schema version of an open database; 0 when it is empty."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()
    if not exists or exists[0] == 0:
        return 0
    row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: Connection, *, path: str) -> int:
    """Bring the schema to ``LATEST_VERSION``; refuse a database newer than this code.

    On PostgreSQL, processes starting together take turns on an advisory lock: the first
    migrates, the others find the schema current (SPEC §16 v3)."""
    postgres = engine_of(con) is Engine.POSTGRESQL
    if postgres:
        con.execute("SELECT pg_advisory_lock(?)", [MIGRATION_LOCK]).fetchall()
    try:
        return _migrate(con, path=path, steps=POSTGRES_MIGRATIONS if postgres else MIGRATIONS)
    finally:
        if postgres:
            con.execute("SELECT pg_advisory_unlock(?)", [MIGRATION_LOCK]).fetchall()


def _migrate(con: Connection, *, path: str, steps: tuple[tuple[int, str, str], ...]) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    version = current_version(con)
    if version > LATEST_VERSION:
        raise SchemaTooNew(
            f"The database {path} has schema version {version}, but this statreport only knows "
            f"versions up to {LATEST_VERSION}. Upgrade statreport, or restore a backup made by "
            "this version."
        )
    for number, description, sql in steps:
        if number <= version:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [number, description, datetime.now(UTC)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("event=schema.migrated version=%d description=%r", number, description)
    return LATEST_VERSION
