"""The kept evaluation runs (SPEC §6 v2): read back exactly as they were answered, never
recomputed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import TypeAdapter

from analytics import repository
from analytics.schemas import (
    EpisodeHistory,
    Evaluation,
    EvaluationRun,
    Finding,
)
from core.errors import InvalidPayload, NotFound
from core.store import Store


async def newest_run(store: Store) -> Evaluation | None:
    """The newest run, whatever its ``as_of``; None before the first."""
    document = await store.read(repository.evaluation)
    return None if document is None else Evaluation.model_validate(document)


async def stored_findings(store: Store, *, as_of: date) -> Evaluation:
    """The newest run as of ``as_of``, as it was answered, without recomputing."""
    return Evaluation.model_validate(await _newest_run_document(store, as_of=as_of))


async def stored_finding(
    store: Store, *, finding_id: str, as_of: date | None = None, evaluation_id: str | None = None
) -> tuple[EvaluationRun, Finding]:
    """One finding of the run ``evaluation_id``, or of the newest run as of ``as_of``, and
    that run. Only the finding is validated: validating a whole run of 2,078 findings took
    120 ms."""
    if evaluation_id is not None:
        document = await _run_document(store, evaluation_id=evaluation_id)
        if as_of is not None and document["as_of"] != as_of.isoformat():
            raise InvalidPayload(
                f"Evaluation {evaluation_id} is as of {document['as_of']}, not {as_of}; give "
                "one of as_of and evaluation_id, or both of the same run.",
                errors=[{"loc": ["query", "as_of"], "msg": "not the as_of of evaluation_id"}],
            )
        where = f"evaluation {evaluation_id}"
        listing = f"GET /v1/evaluations/{evaluation_id}"
    elif as_of is not None:
        document = await _newest_run_document(store, as_of=as_of)
        where = f"the newest evaluation as of {as_of} ({document['evaluation_id']})"
        listing = f"GET /v1/findings?as_of={as_of}"
    else:
        raise InvalidPayload(
            "Say which run's finding: give evaluation_id (the run quoted) or as_of (the "
            "newest run of that day).",
            errors=[{"loc": ["query", "evaluation_id"], "msg": "give evaluation_id or as_of"}],
        )
    found = next((f for f in document["findings"] if f["finding_id"] == finding_id), None)
    if found is None:
        raise NotFound(f"Finding {finding_id} is not in {where}. List its findings with {listing}.")
    run = EvaluationRun.model_validate({**document, "findings": len(document["findings"])})
    return run, _FINDING.validate_python(found)


_FINDING: TypeAdapter[Finding] = TypeAdapter(Finding)


async def _newest_run_document(store: Store, *, as_of: date) -> dict[str, Any]:
    document = await store.read(lambda con: repository.evaluation(con, as_of=as_of))
    if document is None:
        raise NotFound(
            f"No evaluation as of {as_of} has been run. Run one with POST /v1/evaluations "
            f'{{"as_of": "{as_of}"}} (or statreport evaluate --as-of {as_of}).'
        )
    return document


async def evaluation_run(store: Store, *, evaluation_id: str) -> Evaluation:
    """One run by its id, as it was answered."""
    return Evaluation.model_validate(await _run_document(store, evaluation_id=evaluation_id))


async def _run_document(store: Store, *, evaluation_id: str) -> dict[str, Any]:
    document = await store.read(lambda con: repository.evaluation(con, evaluation_id=evaluation_id))
    if document is None:
        raise NotFound(
            f"No evaluation {evaluation_id!r}. List the runs with GET /v1/evaluations?as_of=."
        )
    return document


async def evaluation_runs(
    store: Store, *, as_of: date | None, limit: int = 100
) -> list[EvaluationRun]:
    """Runs, newest first, optionally of one day."""
    rows = await store.read(lambda con: repository.evaluation_runs(con, as_of=as_of, limit=limit))
    return [EvaluationRun.model_validate(row) for row in rows]


async def episode_history(store: Store, *, customer_id: str | None) -> list[EpisodeHistory]:
    """Every episode the evaluations have reported."""
    rows = await store.read(lambda con: repository.episode_history(con, customer_id=customer_id))
    return [EpisodeHistory.model_validate(row) for row in rows]


async def last_evaluated_at(store: Store) -> datetime | None:
    """When the latest evaluation succeeded (it is kept only then); None if never."""
    return await store.read(repository.last_evaluated_at)
