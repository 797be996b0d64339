"""Reading a request body within hard limits, gzip included."""

from __future__ import annotations

import asyncio
import zlib

from starlette.requests import Request

from core.errors import BodyTimeout, MalformedBody, PayloadTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 1 << 20


def _check_headers(request: Request, *, limit: int) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        shown = media_type or "none"
        raise UnsupportedMediaType(
            f"Content-Type is {shown!r}; send 'Content-Type: application/json'."
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send the body uncompressed or "
            "with 'Content-Encoding: gzip'."
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit, "The body"))
    return encoding == "gzip"


def _too_large(limit: int, what: str) -> str:
    return (
        f"{what} is over the {limit // 1024} KiB limit, so it was not read. Split the reports "
        "into smaller batches."
    )


def gunzip_bounded(compressed: bytes, *, limit: int = MAX_BODY_BYTES) -> bytes:
    """Decompress gzip, refusing as soon as the output would pass ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        output = inflater.decompress(compressed, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(
            f"The gzip body is corrupt ({exc}); compress the JSON with gzip, or send it "
            "uncompressed without Content-Encoding."
        ) from exc
    if len(output) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(_too_large(limit, "The decompressed body"))
    if not inflater.eof:
        raise MalformedBody("The gzip body is truncated; send the whole compressed stream.")
    if inflater.unused_data:
        raise MalformedBody("There are bytes after the end of the gzip stream; send one stream.")
    return output


async def read_json_body(
    request: Request, *, limit: int = MAX_BODY_BYTES, within_seconds: float = 30.0
) -> bytes:
    """The request's JSON bytes: checked media type, at most ``limit`` bytes either side of
    gzip, arrived within ``within_seconds`` (a stalled upload must not hold a connection)."""
    gzipped = _check_headers(request, limit=limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(_too_large(limit, "The body"))
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyTimeout(
            f"The body did not arrive within {within_seconds:g} s ({size} bytes came); send it "
            "whole, and split large backlogs into batches."
        ) from exc
    body = b"".join(chunks)
    if gzipped:
        body = gunzip_bounded(body, limit=limit)
    if not body:
        raise MalformedBody('The body is empty; send one report or {"reports": [...]} as JSON.')
    return body
