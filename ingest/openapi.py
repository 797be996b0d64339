"""The OpenAPI entries of the two routes that read their bodies themselves (``POST
/v1/reports`` and ``POST /v1/attestations``): their request bodies from the wire models, and
the answers they give. FastAPI cannot see a body it does not parse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from ingest.attestation import AttestationBundle
from ingest.schemas import ReportBatch, StatisticsReport

_REF = "#/components/schemas/{model}"


def _error(status: str, text: str) -> dict[str, Any]:
    return {
        status: {
            "description": text,
            "content": {"application/problem+json": {"schema": {"type": "object"}}},
        }
    }


#: What a licence-key route answers besides its 202, and why.
_FAILURES = (
    ("400", "Malformed JSON or gzip"),
    ("401", "Missing, unknown or revoked licence key"),
    ("408", "The body did not arrive in time"),
    ("409", "An instance_id of another customer"),
    ("413", "Over 1 MiB, compressed or not"),
    ("415", "Not JSON, or an encoding other than gzip"),
    ("422", "Schema violation; nothing was stored"),
    ("429", "Over the key's rate; see Retry-After"),
    ("503", "Storage failing or overloaded; nothing was acknowledged"),
)


def _answers() -> dict[str, Any]:
    """The answers of ``POST /v1/reports``: 202 once committed, or a problem."""
    responses: dict[str, Any] = {
        "202": {
            "description": "Every report is committed: stored now, or a duplicate.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    for status, text in _FAILURES:
        responses.update(_error(status, text))
    return responses


def add_reports_path(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Wrap FastAPI's schema builder so that the document also describes the phone-home route."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if cache:
            return cache
        document = build()
        body = TypeAdapter(StatisticsReport | ReportBatch).json_schema(ref_template=_REF)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(body.pop("$defs", {}))
        responses = _answers()
        document.setdefault("paths", {})["/v1/reports"] = {
            "post": {
                "tags": ["reports"],
                "summary": "Send one Statistics Report or a batch of up to 1000",
                "operationId": "post_reports",
                "security": [{"licenseKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": responses,
            }
        }
        document["components"].setdefault("securitySchemes", {})["licenseKey"] = {
            "type": "http",
            "scheme": "bearer",
        }
        # The attestation route reads its body itself (up to 16 MiB, with a deadline), so
        # FastAPI cannot see its schema either.
        bundle = AttestationBundle.model_json_schema(ref_template=_REF)
        schemas.update(bundle.pop("$defs", {}))
        schemas["AttestationBundle"] = bundle
        attestation = document["paths"]["/v1/attestations"]["post"]
        attestation["security"] = [{"licenseKey": []}]
        attestation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="AttestationBundle")}}
            },
        }
        attestation["responses"] = {
            **responses,
            "413": _error("413", "Over 16 MiB")["413"],
            "422": _error("422", "Bad signature, shape, report or quarter; nothing was stored")[
                "422"
            ],
        }
        cache.update(document)
        return cache

    return openapi
