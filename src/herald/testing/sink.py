"""A webhook receiver for the HTTP provider on a loopback port: what `herald serve` does with `/webhooks/http`,
minus the database. Tests and benchmarks point a FakeAgent at it to see exactly what a backend sends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from herald.providers.base import ProviderEvent, WebhookError
from herald.providers.http import WEBHOOK_PATH, HttpInbound


class EventSink:
    """Verifies, parses and de-duplicates webhook bodies (answers 200 / 401 / 422 as the contract says).

    `fail_first` answers that many posts with 503 first, as a Herald that is not up yet would.
    """

    def __init__(self, secret: str, *, fail_first: int = 0, host: str = "127.0.0.1") -> None:
        self.options = {"webhook_secret": secret}
        self.fail_first = fail_first
        self.inbound = HttpInbound()
        #: Raw bodies that verified and parsed, in arrival order.
        self.bodies: list[bytes] = []
        #: Every parsed event, duplicates included.
        self.received: list[ProviderEvent] = []
        #: The first of each event key.
        self.events: dict[tuple[str, str, str], ProviderEvent] = {}
        self.answers: dict[int, int] = {}
        self._lock = threading.Condition()
        self._host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The callback URL to give a backend."""
        if self._server is None:
            raise RuntimeError("the sink is not started")
        return f"http://{self._host}:{self._server.server_address[1]}{WEBHOOK_PATH}"

    def start(self) -> EventSink:
        """Listen on a free port; returns self."""
        sink = self

        class Handler(_SinkHandler):
            owner = sink

        self._server = ThreadingHTTPServer((self._host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="event-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> EventSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[EventSink], bool], timeout: float = 30.0) -> bool:
        """Wait until `predicate(self)` holds (checked after each body); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout)

    def receive(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The answer to one webhook body."""
        with self._lock:
            status, answer = self._judge(body, headers)
            self.answers[status] = self.answers.get(status, 0) + 1
            self._lock.notify_all()
            return status, answer

    def _judge(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.fail_first > 0:
            self.fail_first -= 1
            return 503, {"error": {"code": "starting", "message": "not ready yet"}}
        if not self.inbound.verify(body, headers, self.url, self.options):
            return 401, {"error": {"code": "bad_signature", "message": "bad or missing X-Herald-Signature"}}
        try:
            events = self.inbound.parse(body, headers)
        except WebhookError as error:
            return error.status, {"error": {"code": "invalid_body", "message": error.message}}
        self.bodies.append(body)
        self.received.extend(events)
        fresh = 0
        for event in events:
            if event.key not in self.events:
                self.events[event.key] = event
                fresh += 1
        return 200, {"accepted": fresh, "duplicates": len(events) - fresh}


class _SinkHandler(BaseHTTPRequestHandler):
    owner: EventSink
    protocol_version = "HTTP/1.1"
    timeout = 30
    # Headers and body go out as two writes; without this, Nagle holds the body for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        """`POST /webhooks/http`."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, answer = self.owner.receive(body, {key: value for key, value in self.headers.items()})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
