"""The ASGI application of `herald serve`."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from herald import web
from herald.api import errors, links, openapi, ops, ratelimit, v1
from herald.api.idempotency import Idempotency
from herald.api.limits import BodyLimit
from herald.api.ratelimit import RateLimit
from herald.api.webhook_routing import handshake
from herald.api.webhooks import receive
from herald.providers.base import WebhookError
from herald.store import inbox
from herald.store.queries import Store

_ERROR_CODES = {
    401: "bad_signature",
    403: "bad_signature",
    404: "unknown_provider",
    422: "invalid_body",
    503: "retry_later",
}


def _version() -> str:
    from importlib.metadata import version

    return version("herald")


def create_app(store: Store, *, rate_limit: RateLimit | Literal["environment"] | None = "environment") -> FastAPI:
    """The HTTP application over `store`; requests per key are limited as HERALD_RATE_LIMIT says, unless given."""
    app = FastAPI(
        title="Herald",
        version=_version(),
        description="Herald's REST API: Altur's campaign endpoints under /api/v1.0, and Herald's own.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.rate_limit = ratelimit.from_environment() if rate_limit == "environment" else rate_limit
    errors.install(app)
    openapi.install(app)
    app.include_router(v1.router())
    app.include_router(links.router())
    # The last added runs first: the body cap applies before an idempotent request's body is read and kept.
    app.add_middleware(Idempotency, store=store, prefix=v1.PREFIX)
    app.add_middleware(BodyLimit)
    ops.install(app)
    web.install(app, store)  # the web console at `/`

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """The database answers; how many events wait in the inbox."""
        try:
            with store.read() as tx:
                tx.connection.execute(text("SELECT 1"))
                pending, _ = inbox.pending(tx, limit=0)
        except Exception as error:  # health must answer, whatever the database says
            return JSONResponse({"status": "error", "error": type(error).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "pending_events": pending})

    @app.post("/webhooks/{provider}")
    async def webhook(provider: str, request: Request) -> JSONResponse:
        """A provider's events: verified, parsed, stored in the inbox for the workers."""
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            result = await run_in_threadpool(
                receive, store, provider, body, headers, str(request.url), datetime.now(UTC)
            )
        except WebhookError as error:
            code = _ERROR_CODES.get(error.status, "error")
            return JSONResponse({"error": {"code": code, "message": error.message}}, status_code=error.status)
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})

    @app.get("/webhooks/{provider}")
    async def webhook_handshake(provider: str, request: Request) -> PlainTextResponse:
        """A provider's subscription handshake (Meta's `hub.challenge`): the challenge, or 403."""
        answer = await run_in_threadpool(handshake, store, provider, dict(request.query_params))
        if answer is None:
            return PlainTextResponse("forbidden", status_code=403)
        return PlainTextResponse(answer)

    # Providers' webhooks are most of the requests a live `herald serve` takes: their routes are matched first.
    # Matched last, each webhook was compared with every route of the API and the console before (~0.6 ms of CPU a
    # request). No other route takes their paths, so the order changes no answer.
    hooks = [route for route in app.router.routes if getattr(route, "path", None) == "/webhooks/{provider}"]
    app.router.routes[:] = hooks + [route for route in app.router.routes if route not in hooks]
    return app


def app_from_environment() -> FastAPI:
    """The application for `herald serve` processes: the database is HERALD_DATABASE_URL."""
    # As many connections as webhooks run at once (the thread pool's 40), so that none opens a connection per request.
    return create_app(Store.open(os.environ.get("HERALD_DATABASE_URL"), migrate=False, pool_size=40))
