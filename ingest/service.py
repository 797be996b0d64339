"""Accepting Statistics Reports: parse, validate atomically, store durably."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pydantic_core
from pydantic import ValidationError

from core.auth import LicenseHolder
from core.database import Connection
from core.errors import InvalidPayload, MalformedBody
from core.identifiers import UUID_PATTERN
from core.problems import describe_validation_errors, summarize
from core.store import Store
from core.wording import refused
from ingest import repository
from ingest.attestation import owed_months, verify_bundle
from ingest.schemas import (
    REPORT_BATCH,
    SINGLE_REPORT,
    TIMESTAMP_PATTERN,
    IngestResult,
    StatisticsReport,
    time_window_errors,
)
from ingest.writer import VERSION_HELP, random_uuid

log = logging.getLogger("statreport.attestation")


def parse_reports(body: bytes) -> tuple[list[StatisticsReport], bool]:
    """One report or ``{"reports": [...]}``, and whether it was a batch; every bad report is
    named by index."""
    if body.lstrip()[:1] != b"{":
        try:
            pydantic_core.from_json(body)
        except ValueError as exc:
            raise _malformed(exc) from exc
        raise InvalidPayload(
            'The body must be a JSON object: one report, or {"reports": [...]}.',
            errors=[{"loc": ["body"], "msg": "expected a JSON object"}],
        )
    # A report has no free text, so the bytes "reports" can only be the batch's key. Telling
    # the two shapes apart here lets pydantic validate straight from the JSON bytes.
    batch = b'"reports"' in body
    try:
        if batch:
            reports = REPORT_BATCH.validate_json(body)["reports"]
        else:
            reports = [SINGLE_REPORT.validate_json(body)]
    except ValidationError as exc:
        raw = exc.errors()
        if any(error["type"] == "json_invalid" for error in raw):
            raise _malformed(raw[0]["msg"]) from exc
        errors = describe_validation_errors(raw)
        if batch:
            errors = _with_window_errors(errors, body=body)
        raise _invalid(errors, body=body, batch=batch) from exc
    errors = time_window_errors(reports, now=datetime.now(UTC), batch=batch)
    if errors:
        raise _invalid(errors, body=body, batch=batch)
    return reports, batch


async def with_new_instance_errors(
    store: Store, refusal: InvalidPayload, *, body: bytes
) -> InvalidPayload:
    """A batch refused for its schema, also naming its reports that would be refused next for
    a new instance's id that is not a version 4 or 7 UUID (SPEC §2 v2): every bad report is
    named at once, whatever its fault. Runs on the error path only, and reads which of those
    instances are known (an instance first seen before version 2 keeps its id)."""
    if b'"reports"' not in body:
        return refusal
    items = pydantic_core.from_json(body).get("reports")
    if not isinstance(items, list):
        return refusal
    named = {
        e["loc"][1] for e in refusal.errors if len(e["loc"]) > 2 and e["loc"][2] == "instance_id"
    }
    candidates = {
        index: item["instance_id"].lower()
        for index, item in enumerate(items)
        if index not in named
        and isinstance(item, dict)
        and isinstance(item.get("instance_id"), str)
        and _UUID.fullmatch(item["instance_id"])
        and not random_uuid(item["instance_id"].lower())
    }
    if not candidates:
        return refusal
    known = await store.read(
        lambda con: repository.known_instances(con, instance_ids=sorted(set(candidates.values())))
    )
    added = [
        {"loc": ["reports", index, "instance_id"], "msg": VERSION_HELP}
        for index, instance_id in candidates.items()
        if instance_id not in known
    ]
    if not added:
        return refusal
    errors = sorted(refusal.errors + added, key=lambda e: e["loc"][1] if len(e["loc"]) > 1 else -1)
    return _invalid(errors, body=body, batch=True)


_UUID = re.compile(UUID_PATTERN)


def _with_window_errors(errors: list[dict[str, Any]], *, body: bytes) -> list[dict[str, Any]]:
    """A batch's schema errors plus the time-window errors of its other reports: every bad
    report is named, whatever its fault (SPEC §2 v2). Runs on the error path only."""
    items = pydantic_core.from_json(body).get("reports")
    if not isinstance(items, list):
        return errors
    named = {e["loc"][1] for e in errors if len(e["loc"]) > 2 and e["loc"][2] == "generated_at"}
    candidates = [
        (index, item)
        for index, item in enumerate(items)
        if index not in named
        and isinstance(item, dict)
        and isinstance(item.get("generated_at"), str)
        and _TIMESTAMP.fullmatch(item["generated_at"])
    ]
    window = time_window_errors(
        [cast(StatisticsReport, item) for _, item in candidates], now=datetime.now(UTC), batch=True
    )
    for error in window:
        error["loc"][1] = candidates[error["loc"][1]][0]
    return sorted(errors + window, key=lambda e: e["loc"][1] if len(e["loc"]) > 1 else -1)


_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def _malformed(reason: object) -> MalformedBody:
    return MalformedBody(
        f'The body is not valid JSON ({reason}); send one report or {{"reports": [...]}}.'
    )


def _invalid(errors: list[dict[str, Any]], *, body: bytes, batch: bool) -> InvalidPayload:
    bad = {e["loc"][1] for e in errors if len(e["loc"]) > 1 and e["loc"][0] == "reports"}
    if not batch:
        prefix = f"{refused(1, 1, batch=False)}: "
    elif bad and all(isinstance(index, int) for index in bad):
        # Only on this error path is the body parsed a second time, to count the batch.
        total = len(pydantic_core.from_json(body)["reports"])
        prefix = (
            f"{refused(len(bad), total, batch=True)} (a batch is atomic); fix or drop them and "
            "resend: "
        )
    else:
        prefix = "The batch is invalid and nothing was stored: "
    return InvalidPayload(prefix + summarize(errors), errors=errors)


async def ingest_reports(
    store: Store,
    *,
    holder: LicenseHolder,
    reports: Sequence[StatisticsReport],
    source: str = "phone_home",
    batch: bool = True,
    record: Callable[[Connection, datetime], None] | None = None,
) -> IngestResult:
    """Store reports for the key's customer, with ``record`` in the same transaction when
    given; answer only after they are committed."""
    staged = repository.stage_reports(
        reports,
        customer_id=holder.customer_id,
        key_id=holder.key_id,
        source=source,
        batch=batch,
        record=record,
    )
    stored_flags: list[bool] = await store.submit(staged, size=len(reports))
    return IngestResult(report_ids=[r["report_id"] for r in reports], stored_flags=stored_flags)


async def ingest_attestation(
    store: Store, *, holder: LicenseHolder, body: bytes, license_key: str
) -> IngestResult:
    """Verify a signed quarterly bundle, then store its reports as attested and its record in
    one transaction: after any failure, neither is there (SPEC §4 v2)."""
    since, terms = await store.read(
        lambda con: repository.attestation_terms(con, customer_id=holder.customer_id)
    )
    bundle = await asyncio.to_thread(
        verify_bundle, body, license_key=license_key, owed_months=owed_months(terms, since=since)
    )
    digest = hashlib.sha256(body).hexdigest()
    certification = bundle.certification
    result = await ingest_reports(
        store,
        holder=holder,
        reports=bundle.reports,
        source="attestation",
        record=lambda con, received_at: repository.record_attestation(
            con,
            customer_id=holder.customer_id,
            quarter=bundle.quarter,
            received_at=received_at,
            reports=len(bundle.reports),
            officer_name=certification.officer_name,
            officer_title=certification.officer_title,
            certified_on=certification.certified_on,
            bundle_sha256=digest,
            key_id=holder.key_id,
        ),
    )
    log.info(
        "event=attestation.received customer=%s quarter=%s reports=%d stored=%d",
        holder.customer_id,
        bundle.quarter,
        len(bundle.reports),
        result.stored,
    )
    return result
