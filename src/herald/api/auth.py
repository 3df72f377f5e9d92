"""Who is calling: `Authorization: api-key KEY` resolved to a business, once per request.

Every route of the REST API depends on `caller`; every query a route makes is scoped to `Caller.business_id`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from herald.api.errors import ApiError, Unauthorized
from herald.api.ratelimit import RateLimit, take
from herald.store.queries import Store
from herald.store.tenancy import key_owner

_SCHEME = "api-key"


@dataclass(frozen=True, slots=True)
class Caller:
    """The business (and key) a request speaks for."""

    business_id: int
    business_public_id: str
    key_id: int


def store_of(request: Request) -> Store:
    """The store of the application serving `request`."""
    store: Store = request.app.state.store
    return store


def api_key_of(header: str | None) -> str | None:
    """The key of an `Authorization: api-key KEY` header (the scheme in any case); None when there is none."""
    scheme, _, key = (header or "").strip().partition(" ")
    if scheme.lower() != _SCHEME or not key.strip():
        return None
    return key.strip()


def _key(header: str | None) -> str:
    key = api_key_of(header)
    if key is None:
        problem = "missing" if not header else "malformed"
        raise Unauthorized(f"{problem} Authorization header; send `Authorization: api-key YOUR_KEY`")
    return key


#: Declares the scheme in Herald's /openapi.json, as the reference declares `apiKeyAuth`; `caller` reads the header.
api_key_header = APIKeyHeader(
    name="Authorization",
    scheme_name="apiKeyAuth",
    description="`api-key YOUR_KEY` (create one with `herald keys create --business NAME`).",
    auto_error=False,
)


def caller(request: Request, authorization: Annotated[str | None, Security(api_key_header)] = None) -> Caller:
    """The business of the request's API key; Unauthorized (401) for a missing, malformed, unknown or revoked key."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    key = _key(authorization)
    limit: RateLimit | None = request.app.state.rate_limit
    store = store_of(request)
    with store.read() as tx:
        owner = key_owner(tx, key)
    if owner is None:
        raise Unauthorized("invalid or revoked API key")
    if limit is not None:
        with store.tx() as tx:
            wait = take(tx, owner.key_id, time.time(), limit)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"more than {limit.rate:g} requests a second with this key; retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
    found = Caller(owner.business_id, owner.business_public_id, owner.key_id)
    request.state.caller = found
    return found


CallerDep = Annotated[Caller, Depends(caller)]
StoreDep = Annotated[Store, Depends(store_of)]
