"""A cap on request bodies, enforced while they stream in (a lying or missing Content-Length changes nothing)."""

from __future__ import annotations

import json
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Bytes a request body may have (HERALD_MAX_BODY_BYTES): 1,000 contacts with long contexts fit well inside.
DEFAULT_MAX_BODY = 5 * 1024 * 1024


def max_body_bytes() -> int:
    """The configured cap."""
    return int(os.environ.get("HERALD_MAX_BODY_BYTES", DEFAULT_MAX_BODY))


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is answered 413 with the API's error envelope."""

    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = max_body_bytes() if limit is None else limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        too_large = False
        refused = False

        async def counted() -> Message:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # The app's body parser turns any exception into its own 400, so the app is told the client
                    # left, and whatever it answers is replaced by the 413 below.
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def answer(message: Message) -> None:
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not too_large:
                raise
        if too_large and not refused:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"success": False, "error": "PAYLOAD_TOO_LARGE", "message": f"the body is over {self.limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
