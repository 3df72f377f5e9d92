"""Operating `herald serve`: `/readyz`, `/metrics` (Prometheus) and the access log with request latency.

`/healthz` (in `app.py`) says the process is up; `/readyz` says it can serve: the database answers and its schema is
the newest this Herald knows (a process started before a migration, or beside a database migrated by a newer Herald,
is not ready). Neither needs an API key. `/metrics` is open unless HERALD_METRICS_TOKEN is set; then it wants
`Authorization: Bearer TOKEN` (the figures name campaigns and businesses, which not every network should see).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.api.errors import Unauthorized
from herald.doctor import schema_state
from herald.metrics import ProcessMetrics, process_metrics
from herald.store.queries import Store

access_log = logging.getLogger("herald.access")

#: Environment variable with the bearer token `/metrics` asks for (unset: no token).
TOKEN_VARIABLE = "HERALD_METRICS_TOKEN"
#: The route label of a request no route matched (its path is not used: scanners would make a series per path).
UNMATCHED = "(unmatched)"

router = APIRouter(include_in_schema=False)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and its schema is current; 503 naming the problem otherwise."""
    try:
        with _store(request).read() as tx:
            tx.connection.execute(text("SELECT 1"))
            problem = schema_state(tx.connection).problem()
    except Exception as error:  # readiness must answer, whatever the database says
        return JSONResponse(
            {
                "status": "not_ready",
                "check": "database",
                "problem": f"the database does not answer: {type(error).__name__}",
            },
            status_code=503,
        )
    if problem is not None:
        return JSONResponse({"status": "not_ready", "check": "migrations", "problem": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


def _check_token(request: Request) -> None:
    token = os.environ.get(TOKEN_VARIABLE)
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized(f"/metrics wants `Authorization: Bearer TOKEN` ({TOKEN_VARIABLE})")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """The Prometheus text exposition of the database's figures and this process's request latency."""
    _check_token(request)
    ops: ProcessMetrics = request.app.state.metrics
    return Response(generate_latest(ops.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (`/api/v1.0/campaigns/{campaign_id}`), or UNMATCHED.

    FastAPI leaves the route as declared in its router (`/campaigns/{campaign_id}`) in the scope, without the prefix
    of `include_router`; the prefix is the part of the path before the one the route's pattern matches.
    """
    route: Any = scope.get("route")
    path_format = getattr(route, "path_format", None)
    if not path_format:
        return UNMATCHED
    pattern = getattr(route, "path_regex", None)
    path = str(scope.get("path", ""))
    if pattern is not None:
        for index, char in enumerate(path):
            if char == "/" and pattern.fullmatch(path[index:]):
                return path[:index] + str(path_format)
    return str(path_format)


class AccessLog:
    """ASGI middleware: one access log line and one latency observation per HTTP request, by route template."""

    def __init__(self, app: ASGIApp, metrics: ProcessMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering, the server answers 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        template = route_template(scope)
        method = str(scope.get("method", ""))
        self.metrics.observe(method, template, status, seconds)
        caller = (scope.get("state") or {}).get("caller")
        fields: dict[str, Any] = {
            "method": method,
            "path": template,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
        }
        if caller is not None:
            fields["business"] = caller.business_public_id
        access_log.info("%s %s %s %.1f ms", method, template, status, fields["duration_ms"], extra=fields)


def install(app: FastAPI) -> None:
    """Add `/readyz`, `/metrics` and the access log to `app` (whose `state.store` is set)."""
    app.state.metrics = process_metrics(app.state.store)
    app.include_router(router)
    app.add_middleware(AccessLog, metrics=app.state.metrics)
