"""The findings of the newest run, and the evidence behind one (SPEC §11, §12)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, Response

from analytics import evidence as evidence_service
from analytics import notes, runs
from analytics import service as analytics
from analytics.compliance import GROUP_RANK
from analytics.schemas import Evaluation, NewNote
from console.overview import evidence_charts
from console.web import (
    PAGE_ROWS,
    ConsoleRoute,
    FormDep,
    SessionDep,
    actor,
    page,
    pager,
    parse_day,
    see_other,
)
from core.days import latest_finished_day
from core.dependencies import ApiMetricsDep, StoreDep
from core.errors import NotFound
from scheduler.messages import SECTIONS

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)

FindingId = Annotated[str, Path(pattern=r"^f_[0-9a-f]{16}$")]
_RUN_ID = re.compile(r"ev_[0-9A-Za-z_]{1,60}")
#: The kinds of finding, in the order the findings are listed.
KINDS = tuple(dict.fromkeys(kind for kind, _ in sorted(GROUP_RANK, key=GROUP_RANK.__getitem__)))


@router.get("/")
async def findings(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    manager: Annotated[str | None, Query(max_length=254)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    start: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """The findings of the newest run (or of the newest run as of a day), grouped and ordered
    as the weekly email groups them, filtered by account manager and kind."""
    day = parse_day(as_of, field="as_of")
    run: Evaluation | None
    if day is None:
        run = await runs.newest_run(store)
    else:
        try:
            run = await runs.stored_findings(store, as_of=day)
        except NotFound:
            run = None
    chosen = [
        f
        for f in (run.findings if run else [])
        if (not manager or f.account_manager == manager) and (not kind or f.kind == kind)
    ]
    names = await analytics.customer_names(store)
    shown = chosen[start : start + PAGE_ROWS]  # in the SPEC's order, so sections stay whole
    noted = await notes.notes_of(store, [f.finding_id for f in shown])
    sections = [
        {
            "title": spec.title,
            "hint": spec.hint,
            "columns": spec.columns,
            "rows": [(f, spec.cells(f)) for f in shown if spec.matches(f)],
            "total": sum(spec.matches(f) for f in chosen),
        }
        for spec in SECTIONS
    ]
    return page(
        request,
        "findings.html.j2",
        session=session,
        run=run,
        as_of=as_of or "",
        sections=[s for s in sections if s["rows"]],
        managers=sorted(await analytics.accounts_per_manager(store)),
        manager=manager or "",
        kinds=KINDS,
        kind=kind or "",
        names=names,
        notes=noted,
        matching=len(chosen),
        pages=pager(request, start, len(chosen)),
        default_as_of=latest_finished_day(),
    )


@router.post("/evaluations")
async def run_evaluation(
    request: Request, form: FormDep, store: StoreDep, metrics: ApiMetricsDep
) -> Response:
    """Run an evaluation now, as ``POST /v1/evaluations`` does, and show its findings."""
    as_of = parse_day(form.get("as_of"), field="as_of")
    result = await analytics.evaluate_now(store, as_of=as_of, metrics=metrics)
    return see_other(f"/ui/?as_of={result.as_of}")


@router.get("/findings/{finding_id}")
async def finding_evidence(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    finding_id: FindingId,
    as_of: Annotated[str | None, Query(max_length=10)] = None,
    evaluation_id: Annotated[str | None, Query(pattern=r"^ev_[0-9A-Za-z_]{1,60}$")] = None,
) -> HTMLResponse:
    """A finding's evidence, as ``GET /v1/findings/{id}/evidence`` answers it, as known at
    its run: the run ``evaluation_id``, or the newest run as of ``as_of``, by default the
    newest run, as the findings page shows it."""
    day = parse_day(as_of, field="as_of")
    if day is None and evaluation_id is None:
        newest = await runs.newest_run(store)
        if newest is None:
            raise NotFound("No evaluation has been run yet, so there is no finding to show.")
        evaluation_id = newest.evaluation_id
    found = await evidence_service.finding_evidence(
        store, finding_id=finding_id, as_of=day, evaluation_id=evaluation_id
    )
    names = await analytics.customer_names(store)
    return page(
        request,
        "evidence.html.j2",
        session=session,
        evidence=found,
        **evidence_charts(found),
        name=names.get(found.customer_id, found.customer_id),
        notes=(await notes.notes_of(store, [finding_id]))[finding_id],
    )


@router.post("/findings/{finding_id}/notes")
async def add_note(
    form: FormDep, session: SessionDep, store: StoreDep, finding_id: FindingId
) -> Response:
    """Add a working note, as ``POST /v1/findings/{id}/notes`` does, and back to the evidence
    of the run it was written beside."""
    note = NewNote.model_validate({"text": form.get("text", "")})
    await notes.add_note(store, finding_id=finding_id, text=note.text, actor=actor(session))
    evaluation_id = form.get("evaluation_id", "")
    pinned = f"?evaluation_id={evaluation_id}" if _RUN_ID.fullmatch(evaluation_id) else ""
    return see_other(f"/ui/findings/{finding_id}{pinned}#notes")
