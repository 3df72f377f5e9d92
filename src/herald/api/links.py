"""`GET /l/{token}`: the redirect of a tracked link (SPEC §7.5). No API key: the recipient's browser follows it.

Each GET records one click (the message's `link_click` event, applied by a worker) and answers 302 to the target
stored with the token. A token that is malformed or was never issued is 404: the target only ever comes from the
store, so the endpoint cannot be made to redirect anywhere else. HEAD (link previews, checkers) answers the same
redirect without counting a click.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from herald.api.auth import StoreDep
from herald.store import links
from herald.store.queries import Store

log = logging.getLogger("herald.links")

#: Asked of every answer: a browser or proxy that cached the redirect would hide the next click; the token must not
#: reach the target site in a Referer header.
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _not_found() -> JSONResponse:
    return JSONResponse({"error": {"code": "not_found", "message": "no such link"}}, status_code=404, headers=_HEADERS)


def _follow(store: Store, token: str, count: bool) -> str | None:
    now = datetime.now(UTC)
    with store.tx() as tx:
        if count:
            click = links.record_click(tx, token, now)
            if click is not None and not click.recorded:
                log.warning("click on message %s not counted: its provider id is not recorded yet", click.message_id)
            return click.url if click is not None else None
        return links.target(tx, token)


def router() -> APIRouter:
    """The redirect route, outside the REST prefix and the OpenAPI document."""
    api = APIRouter(include_in_schema=False)
    # `:path` takes every request under /l/, so that none gets Starlette's trailing-slash redirect: the only
    # redirect this prefix answers is to a stored target.

    @api.get("/l/{token:path}")
    async def follow(token: str, store: StoreDep) -> Response:
        """Record a click and redirect to the link's target."""
        url = await run_in_threadpool(_follow, store, token, True)
        return _not_found() if url is None else RedirectResponse(url, status_code=302, headers=_HEADERS)

    @api.head("/l/{token:path}")
    async def peek(token: str, store: StoreDep) -> Response:
        """The same redirect, without counting a click."""
        url = await run_in_threadpool(_follow, store, token, False)
        return _not_found() if url is None else RedirectResponse(url, status_code=302, headers=_HEADERS)

    # `/l` itself (what a client makes of `/l/.`) would get Starlette's redirect to `/l/`: it is no link either.
    @api.api_route("/l", methods=["GET", "HEAD"])
    async def bare() -> Response:
        """No token: not found."""
        return _not_found()

    return api
