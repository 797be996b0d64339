"""RFC 9457 problem+json responses, and the handlers that map every error to one."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from core.errors import InvalidPayload, StatreportError
from core.usage_metrics import REPORT_METRICS

log = logging.getLogger("statreport.api")

PROBLEM_BASE = "https://statreport.invalid/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """Build one problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


_UUID_HELP = "must be a UUID such as 5f0c6a3e-2b1d-4c1e-9a57-0d6b2f1c9e11"
_RANDOM_UUID_HELP = (
    "must be a UUID of version 4 (random) or 7 (time-ordered), such as "
    "5f0c6a3e-2b1d-4c1e-9a57-0d6b2f1c9e11; version 1 would carry the host's MAC address"
)
_TIMESTAMP_HELP = (
    "must be an RFC 3339 timestamp with an offset, on a real day and time, such as "
    "2026-11-20T03:17:00Z"
)
_FRIENDLY: dict[tuple[str, str], str] = {
    ("report_id", "string_pattern_mismatch"): _RANDOM_UUID_HELP,
    ("report_id", "string_type"): _UUID_HELP,
    ("instance_id", "string_pattern_mismatch"): _UUID_HELP,
    ("instance_id", "string_type"): _UUID_HELP,
    ("generated_at", "string_pattern_mismatch"): _TIMESTAMP_HELP,
    ("generated_at", "string_type"): _TIMESTAMP_HELP,
    ("generated_at", "datetime_type"): _TIMESTAMP_HELP,
    ("generated_at", "datetime_parsing"): _TIMESTAMP_HELP,
    ("generated_at", "datetime_from_date_parsing"): _TIMESTAMP_HELP,
    ("generated_at", "timezone_aware"): _TIMESTAMP_HELP,
    ("destination", "string_pattern_mismatch"): (
        "must be a plain file name of letters, digits, '.', '_' and '-', up to 255 of them: "
        "not a path, not '.' or '..'; it is written in the backup directory"
    ),
    ("product_version", "string_pattern_mismatch"): (
        "must be MAJOR.MINOR.PATCH with an optional -suffix, such as 1.1.3 or 1.2.0-rc.1"
    ),
}


def describe_validation_errors(
    errors: list[ErrorDetails], *, drop_prefix: int = 0
) -> list[dict[str, Any]]:
    """Turn pydantic errors into ``{"loc", "msg"}`` items a person can act on."""
    described: list[dict[str, Any]] = []
    for error in errors:
        loc = list(error["loc"])[drop_prefix:]
        field_name = next((part for part in reversed(loc) if isinstance(part, str)), "")
        friendly = _FRIENDLY.get((field_name, error["type"]))
        if friendly is not None:
            msg = friendly
        elif error["type"] == "extra_forbidden":
            name = loc[-1] if loc else "?"
            where = "metrics" if len(loc) >= 2 and loc[-2] == "metrics" else "field"
            if where == "metrics":
                msg = (
                    f"unknown metric {name!r}; a report may carry only {', '.join(REPORT_METRICS)}"
                )
            else:
                msg = f"unknown field {name!r}; this format accepts no other fields"
        else:
            msg = error["msg"]
        described.append({"loc": loc, "msg": msg})
    return described


def format_loc(loc: list[Any]) -> str:
    """Render a location like ``reports[3].metrics.users``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def summarize(errors: list[dict[str, Any]], *, limit: int = 5) -> str:
    """A one-line summary of the first few validation errors, for ``detail``."""
    parts = [f"{format_loc(e['loc'])}: {e['msg']}" for e in errors[:limit]]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def problem_for(exc: StatreportError) -> JSONResponse:
    """The problem document of a domain error."""
    if exc.status >= 500:
        log.warning("event=request.failed status=%s problem=%s", exc.status, exc.slug)
    return problem_response(
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        slug=exc.slug,
        headers=exc.headers,
        extra=exc.extra(),
    )


async def _statreport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StatreportError)
    return problem_for(exc)


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw: list[ErrorDetails] = list(exc.errors())
    if any(error["type"] == "json_invalid" for error in raw):
        return problem_response(
            status=400,
            title="Malformed request body",
            detail="The body is not valid JSON; send a JSON object.",
            slug="malformed-body",
        )
    errors = describe_validation_errors(raw)
    invalid = InvalidPayload("The request is invalid: " + summarize(errors), errors=errors)
    return await _statreport_error(request, invalid)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        detail = (
            f"No such endpoint: {request.method} {request.url.path}. See /docs, or docs/api.md."
        )
    elif exc.status_code == 405:
        allowed = _allowed_methods(request, (exc.headers or {}).get("Allow", ""))
        detail = (
            f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)}."
        )
        headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        return problem_response(
            status=405, title=str(exc.detail), detail=detail, slug="http-405", headers=headers
        )
    else:
        detail = str(exc.detail)
    return problem_response(
        status=exc.status_code,
        title=str(exc.detail),
        detail=detail,
        slug=f"http-{exc.status_code}",
        headers=exc.headers,
    )


def _allowed_methods(request: Request, fallback: str) -> list[str]:
    """Every method the API takes on this path, from its own document (Starlette names only
    the first route that matches the path); ``fallback`` (Starlette's) off the document."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods) or [m.strip() for m in fallback.split(",") if m.strip()]


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("event=request.crashed path=%s", request.url.path)
    return internal_error()


def internal_error() -> JSONResponse:
    """The answer to a failure no one foresaw: nothing was acknowledged."""
    return problem_response(
        status=500,
        title="Internal error",
        detail="The server hit an unexpected error; nothing was acknowledged. Retry later.",
        slug="internal-error",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through problem+json."""
    app.add_exception_handler(StatreportError, _statreport_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
