"""The OpenAPI document, exact about errors and security: every error answer is the one
``Problem`` schema as ``application/problem+json``, and each route lists the statuses it can
answer, derived from the error classes the server raises (SPEC §2, issue 17)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from core.errors import (
    BodyTimeout,
    Forbidden,
    InvalidPayload,
    MalformedBody,
    NotFound,
    StatreportError,
    StoreUnavailable,
    Unauthenticated,
)
from core.problems import PROBLEM_MEDIA_TYPE

_PROBLEM_REF = "#/components/schemas/Problem"


class ProblemError(BaseModel):
    """One bad field of a 422: where it is, and what is wrong with it."""

    loc: list[str | int] = Field(description="The path to the field: ['body', 'orders', 0].")
    msg: str = Field(description="What is wrong, in words a person can act on.")


class Problem(BaseModel):
    """Every error answer (RFC 9457 problem details); ``detail`` says what to fix."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError] | None = Field(
        default=None, description="For 422: each field that was refused."
    )


def problem(
    error: type[StatreportError], description: str | None = None
) -> dict[int | str, dict[str, Any]]:
    """A ``responses`` entry for one error class of the server."""
    return {
        error.status: {
            "description": description or error.title,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}},
        }
    }


def problems(*errors: type[StatreportError]) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries for several error classes."""
    merged: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        merged.update(problem(error))
    return merged


#: What every route behind a staff token can answer besides its own errors.
_STAFF = problems(Unauthenticated, Forbidden, StoreUnavailable)
#: What a route that reads a JSON body can answer besides.
_BODY = problems(MalformedBody, BodyTimeout, InvalidPayload)
#: What a route with a path or query parameter can answer besides.
_PARAMETERS = problems(InvalidPayload)
#: What any route can answer: storage failing, on a read as on a write.
_ANY = problems(StoreUnavailable)


def _derived(operation: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The errors a route answers by what it takes: its token, parameters, path and body."""
    derived: dict[int | str, dict[str, Any]] = dict(_ANY)
    if {"staffToken"} & {name for scheme in operation.get("security", []) for name in scheme}:
        derived.update(_STAFF)
    parameters = operation.get("parameters", [])
    if parameters:
        derived.update(_PARAMETERS)
    if any(p.get("in") == "path" for p in parameters):
        derived.update(problem(NotFound))
    if "requestBody" in operation:
        derived.update(_BODY)
    return derived


def _own_body(response: dict[str, Any]) -> bool:
    """True when a route declared a model of its own for an error status (the health checks'
    503 is their status document, not a problem); FastAPI's validation error is not one."""
    refs = [
        media.get("schema", {}).get("$ref", "") for media in response.get("content", {}).values()
    ]
    return any(ref and not ref.endswith("/HTTPValidationError") for ref in refs)


def finish(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap the schema builder: add the ``Problem`` schema, list on every route the errors it
    answers by what it takes (a route's own ``responses`` add the rest: 409, 413...), make
    every error answer a problem document, and drop FastAPI's own validation-error schemas,
    which the server never sends."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if cache:
            return cache
        document = build()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["Problem"] = problem_schema
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status, response in _derived(operation).items():
                    responses.setdefault(str(status), response)
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400 and not _own_body(response):
                        response["content"] = {
                            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}
                        }
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        cache.update(document)
        return cache

    return openapi
