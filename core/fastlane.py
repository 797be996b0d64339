"""The hottest route served in front of the framework.

``POST /v1/reports`` is most of the traffic. Under load the event loop was the bottleneck
(about 94 % busy, measured with py-spy on ``benchmarks/ingest.py``), and some 18 % of its
time went to the layers every request crosses before its endpoint: FastAPI's and Starlette's
middleware (errors, telemetry, body limit, exceptions, exit stack), ours (metrics) and the
router. This lane matches the one method and path first and calls the endpoint itself, doing
what those layers do for it: domain errors and crashes become the same problem documents, and
the request is counted and logged the same way. Every other request, and everything the lane
does not match (another method on the path, lifespan), goes to the app unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import StatreportError
from core.problems import internal_error, problem_for
from core.telemetry import ApiMetrics, record_request

log = logging.getLogger("statreport.server")

Endpoint = Callable[[Request], Awaitable[Response]]


class FastLane:
    """An ASGI app that serves ``method path`` with ``endpoint``, and the rest with ``app``."""

    def __init__(
        self, app: ASGIApp, *, method: str, path: str, endpoint: Endpoint, metrics: ApiMetrics
    ) -> None:
        self.app = app
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != self.method:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope["app"] = self.app  # the endpoint reads the app's state, as under the router
        try:
            response = await self.endpoint(Request(scope, receive))
        except ClientDisconnect:
            return  # the client left mid-body: nobody to answer, nothing acknowledged
        except StatreportError as exc:
            response = problem_for(exc)
        except Exception:
            log.exception("event=request.crashed path=%s", self.path)
            response = internal_error()
        try:
            await response(scope, receive, send)
        finally:
            record_request(self.metrics, self.path, self.method, response.status_code, started)
