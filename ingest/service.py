"""Accepting Statistics Reports: parse, validate atomically, store durably."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from ingest.auth import LicenseHolder
from ingest.errors import InvalidPayload, MalformedBody
from ingest.problems import describe_validation_errors, summarize
from ingest.schemas import IngestResult, ReportBatch, ReportOutcome, StatisticsReport
from ingest.store import Store

_report = TypeAdapter(StatisticsReport)


def parse_reports(body: bytes) -> list[StatisticsReport]:
    """One report or ``{"reports": [...]}``; every bad report is named by index."""
    try:
        document = pydantic_core.from_json(body)
    except ValueError as exc:
        raise MalformedBody(
            f'The body is not valid JSON ({exc}); send one report or {{"reports": [...]}}.'
        ) from exc
    if not isinstance(document, dict):
        raise InvalidPayload(
            'The body must be a JSON object: one report, or {"reports": [...]}.',
            errors=[{"loc": ["body"], "msg": "expected a JSON object"}],
        )
    if "reports" not in document:
        try:
            return [_report.validate_python(document)]
        except ValidationError as exc:
            errors = describe_validation_errors(exc.errors())
            raise InvalidPayload(
                "The report is invalid and was not stored: " + summarize(errors), errors=errors
            ) from exc
    return _parse_batch(document)


def _parse_batch(document: dict[str, Any]) -> list[StatisticsReport]:
    try:
        batch = ReportBatch.model_validate(document)
    except ValidationError as exc:
        batch_errors = describe_validation_errors(exc.errors())
        raise InvalidPayload(
            "The batch is invalid and nothing was stored: " + summarize(batch_errors),
            errors=batch_errors,
        ) from exc
    reports: list[StatisticsReport] = []
    errors: list[dict[str, Any]] = []
    bad = 0
    for index, item in enumerate(batch.reports):
        try:
            reports.append(_report.validate_python(item))
        except ValidationError as exc:
            bad += 1
            for error in describe_validation_errors(exc.errors()):
                errors.append({"loc": ["reports", index, *error["loc"]], "msg": error["msg"]})
    if errors:
        raise InvalidPayload(
            f"{bad} of {len(batch.reports)} reports are invalid, so none was stored (a batch is "
            "atomic); fix or drop them and resend: " + summarize(errors),
            errors=errors,
        )
    return reports


async def ingest_reports(
    store: Store,
    *,
    holder: LicenseHolder,
    reports: Sequence[StatisticsReport],
    source: str = "phone_home",
) -> IngestResult:
    """Store reports for the key's customer; answer only after they are committed."""
    stored_flags = await store.ingest(
        customer_id=holder.customer_id, key_id=holder.key_id, reports=reports, source=source
    )
    results = [
        ReportOutcome(report_id=report.report_id, status="stored" if stored else "duplicate")
        for report, stored in zip(reports, stored_flags, strict=True)
    ]
    stored_count = sum(stored_flags)
    return IngestResult(
        stored=stored_count, duplicates=len(results) - stored_count, results=results
    )
