"""Admin routes of the compliance evaluation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime
from starlette.responses import Response

from analytics import evidence, notes, runs, service, statement
from analytics.schemas import (
    EpisodeHistory,
    Evaluation,
    EvaluationRequest,
    EvaluationRun,
    Evidence,
    FindingNote,
    NewNote,
)
from core.dependencies import ActorDep, ApiMetricsDep, SettingsDep, StaffOnly, StoreDep
from core.errors import NotFound
from core.identifiers import CustomerIdPath, CustomerIdQuery, ReportingDay, ReportingDayQuery
from core.openapi import problem

router = APIRouter(tags=["compliance"], dependencies=[StaffOnly])

FindingIdPath = Annotated[str, Path(pattern=r"^f_[0-9a-f]{16}$")]


@router.post("/v1/evaluations", summary="Evaluate compliance as of a day and keep the findings")
async def post_evaluation(
    request: EvaluationRequest, store: StoreDep, metrics: ApiMetricsDep
) -> Evaluation:
    """Without ``as_of``, evaluates as of yesterday (UTC), the last complete day."""
    return await service.evaluate_now(store, as_of=request.as_of, metrics=metrics)


@router.get(
    "/v1/findings",
    summary="The findings kept by an earlier evaluation",
    responses=problem(NotFound, "No evaluation as of that day has been run"),
)
async def get_findings(as_of: ReportingDayQuery, store: StoreDep) -> Evaluation:
    """Answers from storage; 404 when no evaluation as of that day was run."""
    return await runs.stored_findings(store, as_of=as_of)


@router.get("/v1/evaluations", summary="Evaluation runs, newest first")
async def get_evaluations(
    store: StoreDep,
    as_of: Annotated[ReportingDay | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EvaluationRun]:
    """Every run is kept: evaluating a day again makes another run, never overwrites one."""
    return await runs.evaluation_runs(store, as_of=as_of, limit=limit)


@router.get("/v1/evaluations/{evaluation_id}", summary="One evaluation run, as it was answered")
async def get_evaluation(
    evaluation_id: Annotated[str, Path(pattern=r"^ev_[0-9A-Za-z_]{1,60}$")], store: StoreDep
) -> Evaluation:
    """Its findings, ``rules_version`` and ``customers_version`` (the order forms it used)."""
    return await runs.evaluation_run(store, evaluation_id=evaluation_id)


@router.get("/v1/findings/{finding_id}/evidence", summary="Where a finding's numbers come from")
async def get_evidence(
    finding_id: FindingIdPath,
    store: StoreDep,
    evaluation_id: Annotated[
        str | None, Query(pattern=r"^ev_[0-9A-Za-z_]{1,60}$", description="The run quoted.")
    ] = None,
    as_of: Annotated[
        ReportingDay | None, Query(description="The newest run of this day, if no evaluation_id.")
    ] = None,
) -> Evidence:
    """For the run ``evaluation_id``, or the newest run of ``as_of`` (404 if the finding is
    not in it), as known when that run was made: the same bytes every time, whatever arrived
    or changed afterwards. An over-use finding's days, each instance's contribution, its
    reports and the counting rule; the instances, reports, orders or attestations behind the
    other kinds."""
    return await evidence.finding_evidence(
        store, finding_id=finding_id, as_of=as_of, evaluation_id=evaluation_id
    )


@router.post(
    "/v1/findings/{finding_id}/notes",
    status_code=201,
    summary="Add a working note to a finding",
    responses=problem(NotFound, "No run holds the finding"),
)
async def post_note(
    finding_id: FindingIdPath, note: NewNote, store: StoreDep, actor: ActorDep
) -> FindingNote:
    """A dated, signed note ("called Jane 12-03, PO expected"), kept by ``finding_id`` so it
    follows the finding from run to run; shown with it in the console and the next weekly
    email. Audited. It changes neither the finding nor its evidence."""
    return await notes.add_note(store, finding_id=finding_id, text=note.text, actor=actor)


@router.get("/v1/findings/{finding_id}/notes", summary="A finding's working notes")
async def get_notes(finding_id: FindingIdPath, store: StoreDep) -> list[FindingNote]:
    """Oldest first; an empty list for a finding nobody wrote about."""
    return (await notes.notes_of(store, [finding_id]))[finding_id]


@router.get("/v1/episodes", summary="Every over-use episode reported so far")
async def get_episodes(
    store: StoreDep,
    customer_id: CustomerIdQuery = None,
) -> list[EpisodeHistory]:
    """When each episode opened, when an evaluation first reported it, how it ended."""
    return await runs.episode_history(store, customer_id=customer_id)


@router.get(
    "/v1/customers/{customer_id}/usage", summary="Daily usage and entitlement of every metric"
)
async def get_usage(
    customer_id: CustomerIdPath,
    store: StoreDep,
    from_: Annotated[ReportingDay, Query(alias="from")],
    to: ReportingDayQuery,
) -> Response:
    """One entry per day; a null entitlement means no active order names the metric."""
    usage = await service.customer_usage(store, customer_id=customer_id, start=from_, end=to)
    return Response(usage.model_dump_json(by_alias=True), media_type="application/json")


@router.get(
    "/v1/customers/{customer_id}/statement",
    summary="A statement of usage against entitlement, to forward to the customer",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "text/csv": {}}}},
)
async def get_statement(
    customer_id: CustomerIdPath,
    store: StoreDep,
    settings: SettingsDep,
    from_: Annotated[ReportingDay, Query(alias="from")],
    to: ReportingDayQuery,
    format: Literal["html", "csv"] = "html",
    known_at: Annotated[
        AwareDatetime | None,
        Query(
            description="The instant whose knowledge it shows (default now; not after now); "
            "the HTML prints its address with it."
        ),
    ] = None,
) -> Response:
    """Self-contained HTML (inline SVG charts, nothing loaded from elsewhere, printable on A4),
    or its daily rows as CSV, whose SHA-256 the HTML states. At most 400 days, ending no
    later than the day of ``known_at``. The same ``from``, ``to`` and ``known_at`` give the
    same bytes every time, whatever arrived afterwards: ``Content-Location`` gives that
    address, ``known_at`` included."""
    made = await statement.customer_statement(
        store,
        customer_id=customer_id,
        start=from_,
        end=to,
        known_at=known_at,
        sender=statement.Sender.of(settings),
    )
    again = {"Content-Location": made.address}
    if format == "csv":
        return Response(made.csv, media_type="text/csv; charset=utf-8", headers=again)
    return Response(made.html, media_type="text/html; charset=utf-8", headers=again)
