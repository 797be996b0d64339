"""The two endpoints the ingest benchmark compares statreport with.

- ``bare_app``: FastAPI reads the body and answers 202. Nothing is validated or stored: the
  ceiling of this stack on this machine.
- ``naive_app``: what a user writes first: validate with the model, then one DuckDB
  transaction per report, committed before answering.

Run with ``uvicorn --factory benchmarks.baselines:bare_app`` (or ``naive_app``); the naive one
reads its database path from ``BENCH_NAIVE_DB``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
from fastapi import FastAPI, Request
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from core.migrations import migrate
from core.usage_metrics import REPORT_METRICS
from ingest.schemas import StatisticsReport, usage_day

_REPORT = TypeAdapter(StatisticsReport)


def bare_app() -> FastAPI:
    """Reads the body, answers 202."""
    app = FastAPI()

    @app.post("/v1/reports", status_code=202)
    async def post_reports(request: Request) -> Response:
        await request.body()
        return Response(b'{"stored":1}', status_code=202, media_type="application/json")

    return app


def naive_app() -> FastAPI:
    """Validates with pydantic and commits each report in its own DuckDB transaction."""
    path = Path(os.environ.get("BENCH_NAIVE_DB", "naive.duckdb"))
    con = duckdb.connect(str(path))
    migrate(con, path=str(path))
    local = threading.local()
    app = FastAPI()

    def cursor() -> duckdb.DuckDBPyConnection:
        if not hasattr(local, "cursor"):
            local.cursor = con.cursor()
        cur: duckdb.DuckDBPyConnection = local.cursor
        return cur

    @app.post("/v1/reports", status_code=202)
    async def post_reports(request: Request) -> dict[str, int]:
        # The model's timestamps are strict, so it validates from JSON, not from dicts.
        report = _REPORT.validate_json(await request.body())
        await run_in_threadpool(insert, report)
        return {"stored": 1}

    def insert(report: StatisticsReport) -> None:
        metrics = [report["metrics"].get(m) for m in REPORT_METRICS]
        cursor().execute(
            "INSERT INTO reports VALUES (?, 'bench', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "'phone_home', 'key', now())",
            [
                report["report_id"],
                report["instance_id"],
                report["environment"],
                report["generated_at"],
                usage_day(report),
                report["product_version"],
                report.get("sequence"),
                *metrics,
            ],
        )

    return app
