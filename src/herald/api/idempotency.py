"""`Idempotency-Key` on POSTs: a replay within 24 hours returns the first answer and changes nothing.

The key is reserved in the database before the request runs (a row whose status is still NULL), so two requests with
the same key at once, even in two `herald serve` processes, never both act: the second is told the first is still
running (409 IDEMPOTENCY_KEY_IN_USE, Retry-After). The same key with a different method, path or body is a 409
IDEMPOTENCY_KEY_REUSED. An answer of 5xx (or a crash) is not kept, so the client may try again with the same key.
Keys are per business: the same key from two businesses is two keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.api.auth import api_key_of
from herald.api.errors import ApiError
from herald.store import schema as t
from herald.store.base import dialect_insert
from herald.store.queries import Store, Tx
from herald.store.tenancy import key_owner

HEADER = b"idempotency-key"
#: How long a first answer is replayed.
WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
#: A reservation this old without an answer belongs to a process that died mid-request.
ABANDONED = timedelta(minutes=5)
_k = t.idempotency_keys.c


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers") or []}


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def reserve(tx: Tx, business_id: int, key: str, fingerprint: str, now: datetime) -> str | dict[str, Any]:
    """Claim `key` for a request: "run" (it is ours now), "reused", "in_use", or the stored answer to replay."""
    tx.connection.execute(delete(t.idempotency_keys).where(_k.created_at < now - WINDOW))
    claimed = tx.connection.execute(
        dialect_insert(tx.connection, t.idempotency_keys)
        .values(business_id=business_id, key=key, request_hash=fingerprint, created_at=now)
        .on_conflict_do_nothing(index_elements=["business_id", "key"])
        .returning(_k.key)
    ).first()
    if claimed is not None:
        return "run"
    where = (_k.business_id == business_id, _k.key == key)
    row = tx.connection.execute(select(_k.request_hash, _k.status_code, _k.response, _k.created_at).where(*where)).one()
    if row.request_hash != fingerprint:
        return "reused"
    if row.status_code is None:
        if row.created_at >= now - ABANDONED:
            return "in_use"
        # The process answering it died: the request did not finish, so this one may run in its place.
        tx.connection.execute(update(t.idempotency_keys).where(*where).values(created_at=now))
        return "run"
    stored: dict[str, Any] = json.loads(row.response)
    return {"status": row.status_code, **stored}


def settle(tx: Tx, business_id: int, key: str, status: int | None, content_type: str, body: bytes) -> None:
    """Keep the answer to replay (status < 500), or free the key for another try."""
    where = (_k.business_id == business_id, _k.key == key)
    if status is None or status >= 500:
        tx.connection.execute(delete(t.idempotency_keys).where(*where))
        return
    response = json.dumps({"content_type": content_type, "body": body.decode("utf-8", "replace")})
    tx.connection.execute(update(t.idempotency_keys).where(*where).values(status_code=status, response=response))


class Idempotency:
    """ASGI middleware for POSTs under `prefix` that carry an Idempotency-Key and a valid API key."""

    def __init__(self, app: ASGIApp, store: Store, prefix: str, clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.store = store
        self.prefix = prefix
        self.clock = clock or (lambda: datetime.now(UTC))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            error = ApiError(
                400,
                "INVALID_REQUEST",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                field="Idempotency-Key",
            )
            await error.response_for(scope["method"], scope["path"])(scope, receive, send)
            return
        business_id = await self._business(headers.get(b"authorization", b""))
        if business_id is None:  # no valid API key: the route answers 401 as usual
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if not complete:  # the client left, or the body was over the limit (the outer middleware answers 413)
            await self.app(scope, _replay(body, complete=False), send)
            return
        await self._once(scope, send, business_id, key, body)

    async def _business(self, authorization: bytes) -> int | None:
        key = api_key_of(authorization.decode("latin-1"))
        if key is None:
            return None

        def lookup() -> int | None:
            with self.store.read() as tx:
                owner = key_owner(tx, key)
            return None if owner is None else owner.business_id

        return await run_in_threadpool(lookup)

    async def _once(self, scope: Scope, send: Send, business_id: int, key: str, body: bytes) -> None:
        fingerprint = _fingerprint(scope, body)

        def claim() -> str | dict[str, Any]:
            with self.store.tx() as tx:
                return reserve(tx, business_id, key, fingerprint, self.clock())

        decision = await run_in_threadpool(claim)
        if decision == "reused":
            error = ApiError(
                409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request in the last 24 h"
            )
            await error.response()(scope, _replay(b""), send)
            return
        if decision == "in_use":
            error = ApiError(
                409,
                "IDEMPOTENCY_KEY_IN_USE",
                "a request with this Idempotency-Key is still being answered; retry shortly",
                headers={"Retry-After": "1"},
            )
            await error.response()(scope, _replay(b""), send)
            return
        if isinstance(decision, dict):
            await _send_stored(send, decision)
            return
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        status: int | None = None
        try:
            await self.app(scope, _replay(body), capture)
            start = next((m for m in messages if m["type"] == "http.response.start"), None)
            status = None if start is None else int(start["status"])
        finally:
            content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            content_type = ""
            for message in messages:
                if message["type"] == "http.response.start":
                    content_type = _headers({"headers": message.get("headers")}).get(b"content-type", b"").decode()

            def store_answer() -> None:
                with self.store.tx() as tx:
                    settle(tx, business_id, key, status, content_type, content)

            await run_in_threadpool(store_answer)
        for message in messages:
            await send(message)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, *, complete: bool = True) -> Receive:
    """A `receive` that hands the app the body already read (or, if it was not complete, the client's leaving)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}] if complete else []

    async def receive() -> Message:
        return pending.pop() if pending else {"type": "http.disconnect"}

    return receive


async def _send_stored(send: Send, stored: dict[str, Any]) -> None:
    body = str(stored["body"]).encode("utf-8")
    headers = [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    if stored.get("content_type"):
        headers.append((b"content-type", str(stored["content_type"]).encode()))
    await send({"type": "http.response.start", "status": int(stored["status"]), "headers": headers})
    await send({"type": "http.response.body", "body": body})
