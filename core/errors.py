"""Domain errors. Services raise these; one handler turns them into problem+json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class StatreportError(Exception):
    """Base of every error a client of the API can be told about."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})

    def extra(self) -> dict[str, Any]:
        """Extension members added to the problem document."""
        return {}


class MalformedBody(StatreportError):
    """The body is not JSON, or its gzip stream is corrupt."""

    status = 400
    title = "Malformed request body"
    slug = "malformed-body"


class Unauthenticated(StatreportError):
    """No credential, or one that is unknown or revoked."""

    status = 401
    title = "Authentication required"
    slug = "unauthenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(StatreportError):
    """A known staff token whose role may not do this."""

    status = 403
    title = "Forbidden"
    slug = "forbidden"


class BodyTimeout(StatreportError):
    """The body did not arrive in time."""

    status = 408
    title = "Request timeout"
    slug = "body-timeout"


class NotFound(StatreportError):
    """The addressed customer, key or route does not exist."""

    status = 404
    title = "Not found"
    slug = "not-found"


class InstanceOwnedElsewhere(StatreportError):
    """An instance_id already reported under another customer's licence key."""

    status = 409
    title = "Instance belongs to another customer"
    slug = "instance-owned-elsewhere"


class ReportOwnedElsewhere(StatreportError):
    """A report_id already stored under another customer's licence key."""

    status = 409
    title = "Report id belongs to another customer"
    slug = "report-owned-elsewhere"


class Conflict(StatreportError):
    """A logical conflict with stored state."""

    status = 409
    title = "Conflict"
    slug = "conflict"


class PayloadTooLarge(StatreportError):
    """The body exceeds the size limit, compressed or after decompression."""

    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UnsupportedMediaType(StatreportError):
    """A content type other than JSON, or an encoding other than identity or gzip."""

    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class InvalidPayload(StatreportError):
    """The body is JSON but breaks the schema; ``errors`` says where."""

    status = 422
    title = "Invalid payload"
    slug = "invalid-payload"

    def __init__(self, detail: str, *, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(detail)
        self.errors = [dict(error) for error in errors]

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


class RateLimited(StatreportError):
    """The licence key sent more requests than its rate allows."""

    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class StoreUnavailable(StatreportError):
    """Storage failed or is overloaded; nothing was acknowledged."""

    status = 503
    title = "Storage unavailable"
    slug = "store-unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class SchemaTooNew(Exception):
    """The data directory was written by a newer statreport than this one."""
