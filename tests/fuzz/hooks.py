"""Schemathesis hooks of the API fuzz test: what no JSON Schema can state, kept in the cases
that are meant to be valid (and only there: a case meant to break the schema is left alone).

- A report's ``generated_at`` must lie within 400 days before and 10 minutes after the
  server's clock, and a new instance's ``instance_id`` must be a version 4 or 7 UUID (an
  instance first seen under contract v1 keeps its id of any version): a valid report is sent
  now, from a random instance.
- An evaluation or a weekly report cannot be judged as of a day after today, or before 2000.
- A usage range or a statement spans at most 400 days, between 2000 and today; a statement's
  ``known_at`` is not after now, nor before its ``to``'s day (here: now).
- Evidence names its run by ``evaluation_id`` or by ``as_of``; both must name the same run
  (here: the id alone).
- An instance is retired on a day between its first report and today.
- JSON Schema calls ``1.0`` an integer; the contract refuses it (SPEC §2 v2), so a valid case
  writes integers without a fraction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

_EARLIEST = date(2000, 1, 1)


def _integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


def _within(text: Any, *, latest: date) -> Any:
    """A day of the case, moved between 2000-01-01 and ``latest``."""
    if not isinstance(text, str):
        return text
    day = date.fromisoformat(text)
    return min(max(day, _EARLIEST), latest).isoformat()


def _sent_now(report: Any) -> None:
    if not isinstance(report, dict):
        return
    report["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    instance = report.get("instance_id")
    if isinstance(instance, str) and len(instance) == 36:
        report["instance_id"] = f"{instance[:14]}4{instance[15:19]}8{instance[20:]}"


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case._meta
    if meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
        return case
    path, today = case.operation.path, datetime.now(UTC).date()
    if isinstance(case.body, dict | list):
        case.body = _integers(case.body)
    body, query = case.body, case.query
    if isinstance(body, dict):
        if path == "/v1/reports":
            for report in body.get("reports", [body]):
                _sent_now(report)
        if path in ("/v1/evaluations", "/v1/weekly-reports") and body.get("as_of") is not None:
            body["as_of"] = _within(body["as_of"], latest=today)
        if path == "/v1/instances/{instance_id}/retire" and body.get("retired_on") is not None:
            body["retired_on"] = today.isoformat()  # between its first report and today
    ranged = path.endswith(("/usage", "/statement")) and isinstance(query, dict)
    if ranged and isinstance(query.get("from"), str) and isinstance(query.get("to"), str):
        start = date.fromisoformat(_within(query["from"], latest=today))
        query["from"] = start.isoformat()
        query["to"] = min(start + timedelta(days=30), today).isoformat()
    if ranged and query.get("known_at") is not None:
        query["known_at"] = datetime.now(UTC).isoformat()
    if path == "/v1/findings/{finding_id}/evidence" and isinstance(query, dict):
        if query.get("evaluation_id") is not None:
            query.pop("as_of", None)
        elif query.get("as_of") is None:
            query["as_of"] = today.isoformat()
    return case
