"""What every request with a body passes before a byte of the body is read: its sender known,
and its size within the route's limit (issue 32).

FastAPI reads and parses a route's body before the route's dependencies run, so a staff
route's token was checked only after the whole body sat in memory: three unauthenticated
150 MiB PUTs grew the server by 1.6 GiB. This gate runs first. A staff route (``/v1/...``)
answers 401 to a missing or unknown token, with the keyring's own words, and 413 to a
``Content-Length`` over ``ADMIN_BODY_LIMIT_BYTES``; a body sent without a length is counted
as it arrives and cut off at the limit. The routes that authenticate and read their bodies
themselves pass untouched: the licence-key routes (bounded in ``ingest/body.py``, after the
key) and the console's forms (bounded in ``console/web.py``, after the session). The routes'
own checks (roles, schemas) stay where they are: the gate only refuses early what they would
refuse late.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.auth import Keyring, bearer_token
from core.errors import PayloadTooLarge, StatreportError
from core.problems import problem_for

#: The largest body of a staff route: a customer document of 1,000 orders is about 170 KB.
ADMIN_BODY_LIMIT_BYTES = 4 << 20
#: Routes that take a licence key, not a staff token, and authenticate before reading.
LICENCE_KEY_ROUTES = frozenset({"/v1/reports", "/v1/attestations"})
_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def _mebibytes(limit: int) -> str:
    return f"{limit / (1 << 20):g} MiB"


class BodyGate:
    """Authentication and the body limit, applied before the body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in _WITHOUT_BODY
            or not scope["path"].startswith("/v1/")  # the console bounds its forms itself
            or scope["path"] in LICENCE_KEY_ROUTES  # bounded by ingest/body.py, after the key
        ):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        limit = ADMIN_BODY_LIMIT_BYTES
        try:
            keyring: Keyring = scope["app"].state.keyring
            keyring.staff(bearer_token(headers.get("authorization")))
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise PayloadTooLarge(
                    f"The body of {scope['method']} {path} is {int(length):,} bytes; this route "
                    f"takes at most {_mebibytes(limit)}."
                )
        except StatreportError as exc:
            await problem_for(exc)(scope, receive, send)
            return
        await self.app(
            scope, _bounded(receive, limit=limit, what=f"{scope['method']} {path}"), send
        )


def _bounded(receive: Receive, *, limit: int, what: str) -> Receive:
    """``receive``, refusing a body that grows past ``limit`` as it arrives (one sent without a
    ``Content-Length``, or with a false one)."""
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                # FastAPI passes an HTTPException raised while reading a body on as it is;
                # the problem handlers answer it as problem+json.
                raise HTTPException(
                    413, f"The body of {what} is larger than {_mebibytes(limit)}, its limit."
                )
        return message

    return bounded
