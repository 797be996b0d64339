"""Offline attestations (SPEC §4): the signed quarterly bundle of an air-gapped installation."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.errors import InvalidPayload, MalformedBody
from core.identifiers import Day
from core.problems import describe_validation_errors, summarize
from core.quarters import quarter_bounds
from core.wording import counted
from ingest.schemas import StatisticsReport, time_window_errors, usage_day

MAX_BUNDLE_BYTES = 16 << 20
SIGNATURE_PREFIX = "hmac-sha256="
_SIGNATURE = re.compile(r"^hmac-sha256=[0-9a-f]{64}$")


class Certification(BaseModel):
    """The authorized officer's certification (licence Appendix 1 §9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    officer_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    officer_title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    certified_on: Day
    statement: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class AttestationBundle(BaseModel):
    """A quarter's Statistics Reports, certified and signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    kind: Literal["statreport.attestation"]
    quarter: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}Q[1-4]$")]
    reports: Annotated[list[StatisticsReport], Field(min_length=1, max_length=200_000)]
    certification: Certification
    signature: Annotated[str, StringConstraints(pattern=_SIGNATURE.pattern)]


def build_bundle(
    *, quarter: str, reports: list[dict[str, Any]], certification: dict[str, str], license_key: str
) -> dict[str, Any]:
    """The attestation bundle of ``quarter``'s reports, certified and signed (SPEC §4)."""
    bundle: dict[str, Any] = {
        "schema_version": 1,
        "kind": "statreport.attestation",
        "quarter": quarter,
        "reports": reports,
        "certification": certification,
    }
    bundle["signature"] = sign(bundle, license_key=license_key)
    return bundle


def canonical_message(bundle: dict[str, Any]) -> bytes:
    """The signed bytes: the bundle without ``signature``, as canonical JSON (RFC 8785)."""
    unsigned = {key: value for key, value in bundle.items() if key != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(bundle: dict[str, Any], *, license_key: str) -> str:
    """``hmac-sha256=<hex>`` of the bundle under the licence key."""
    digest = hmac.new(license_key.encode(), canonical_message(bundle), hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signature_matches(bundle: dict[str, Any], *, license_key: str) -> bool:
    """Compare the bundle's signature with the expected one in constant time."""
    given = bundle.get("signature")
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), sign(bundle, license_key=license_key).encode())


def verify_bundle(
    body: bytes,
    *,
    license_key: str,
    now: datetime | None = None,
    owed_months: Collection[tuple[int, int]] | None = None,
) -> AttestationBundle:
    """Parse, authenticate and check a bundle; ``InvalidPayload`` says precisely what is wrong.

    Checks, in order: JSON; the signature (HMAC-SHA256 under the licence key); the shape and
    every report against SPEC §2; the quarter is over and the certification dated after it
    and not in the future; each report's UTC day inside the quarter; a report in each month
    that owes one (``owed_months`` as ``(year, month)``; offline, every month of the quarter).
    """
    try:
        # pydantic's parser, as for /v1/reports: the same nesting limit, and a ValueError
        # (400) past it, where json.loads would raise RecursionError.
        raw = pydantic_core.from_json(body)
    except ValueError as exc:
        raise MalformedBody(f"The bundle is not valid JSON ({exc}).") from exc
    if not isinstance(raw, dict):
        raise InvalidPayload(
            "The bundle must be a JSON object as made by 'statreport attest export'.",
            errors=[{"loc": ["body"], "msg": "expected a JSON object"}],
        )
    if not signature_matches(raw, license_key=license_key):
        raise InvalidPayload(
            "The signature does not match: the bundle was changed after signing, or signed "
            "with another licence key. Export and sign it again with this installation's key.",
            errors=[{"loc": ["signature"], "msg": "does not match the bundle and licence key"}],
        )
    try:
        bundle = AttestationBundle.model_validate_json(body)
    except ValidationError as exc:
        errors = describe_validation_errors(exc.errors())
        raise InvalidPayload(
            "The bundle is signed but invalid, and nothing was stored: " + summarize(errors),
            errors=errors,
        ) from exc
    now = now or datetime.now(UTC)
    first, last = quarter_bounds(bundle.quarter)
    _check_dates(bundle, last=last, today=now.astimezone(UTC).date())
    errors = time_window_errors(bundle.reports, now=now, batch=True)
    for index, report in enumerate(bundle.reports):
        day = usage_day(report)
        if not first <= day <= last:
            errors.append(
                {
                    "loc": ["reports", index, "generated_at"],
                    "msg": f"{day} (UTC) is outside {bundle.quarter} ({first} to {last})",
                }
            )
    if errors:
        invalid = len({e["loc"][1] for e in errors})
        raise InvalidPayload(
            f"{counted(invalid, 'report')} of the bundle {'is' if invalid == 1 else 'are'} "
            "invalid, so nothing was stored: " + summarize(errors),
            errors=errors,
        )
    _check_coverage(bundle, first=first, owed_months=owed_months)
    return bundle


def _check_dates(bundle: AttestationBundle, *, last: date, today: date) -> None:
    """The quarter is over, and its certification dated from its last day to today."""
    if last >= today:
        raise InvalidPayload(
            f"{bundle.quarter} has not ended yet (its last day is {last}): an attestation "
            f"certifies a whole quarter; export and send it from {last + timedelta(days=1)}.",
            errors=[{"loc": ["quarter"], "msg": "the quarter has not ended yet"}],
        )
    certified_on = bundle.certification.certified_on
    if not last <= certified_on <= today:
        raise InvalidPayload(
            f"certified_on {certified_on} must lie from {last} (the last day of "
            f"{bundle.quarter}) to {today} (today): the officer certifies a quarter that is over.",
            errors=[
                {"loc": ["certification", "certified_on"], "msg": f"outside {last} to {today}"}
            ],
        )


def _check_coverage(
    bundle: AttestationBundle, *, first: date, owed_months: Collection[tuple[int, int]] | None
) -> None:
    """A report in every month of the quarter that owes one."""
    months = [(first.year, first.month + n) for n in range(3)]
    owed = [m for m in months if owed_months is None or m in owed_months]
    reported = {(day.year, day.month) for day in map(usage_day, bundle.reports)}
    missing = [
        date(year, month, 1).strftime("%B %Y")
        for year, month in owed
        if (year, month) not in reported
    ]
    if missing:
        raise InvalidPayload(
            f"The bundle has no report from {' or '.join(missing)}, so nothing was stored: an "
            f"attestation certifies the whole of {bundle.quarter}. Export it again from the "
            "installation's complete spool of the quarter.",
            errors=[{"loc": ["reports"], "msg": f"no report in {month}"} for month in missing],
        )


def owed_months(
    terms: Collection[tuple[date, date]], *, since: date | None
) -> set[tuple[int, int]]:
    """The ``(year, month)``s that owe an attestation's reports (SPEC §4 v2): an order is
    active on one of their days, and they end on or after ``since`` (air-gapped since)."""
    owed: set[tuple[int, int]] = set()
    for start, end in terms:
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            following = date(year + month // 12, month % 12 + 1, 1)
            if since is None or following - timedelta(days=1) >= since:
                owed.add((year, month))
            year, month = following.year, following.month
    return owed
