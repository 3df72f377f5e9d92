"""A local webhook receiver (a real HTTP server on 127.0.0.1, on a free port) and the reference's own signature check.

The receiver records every request and answers from a script (a status code per request, then the last one again);
`hang` makes it hold requests open until the test ends.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Union

import pytest

#: Never a deadline of the behaviour under test: only a bound on waiting so that a broken test fails, not hangs.
HANG_GUARD_SECONDS = 120.0
SECRET = base64.b64encode(b"herald-test-shared-secret-0123456789").decode()
OVERVIEW = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "altur" / "pages"
OVERVIEW_PAGE = OVERVIEW / "api-reference_webhooks_overview.mdx"


@dataclass
class Received:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the local server got, and how it answers."""

    url: str
    answers: list[int] = field(default_factory=lambda: [200])
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    open_requests: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, condition: Callable[[Receiver], bool], what: str) -> None:
        """Block until `condition(self)` holds (it is checked at every request)."""
        with self.changed:
            if not self.changed.wait_for(lambda: condition(self), timeout=HANG_GUARD_SECONDS):
                raise AssertionError(f"gave up waiting for {what}")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.changed:
                index = len(receiver.requests)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                receiver.open_requests += 1
                receiver.changed.notify_all()
            try:
                if receiver.hang:
                    receiver.release.wait()
                code = receiver.answers[min(index, len(receiver.answers) - 1)]
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the sender gave up (timeout) and closed the connection
                pass
            finally:
                with receiver.changed:
                    receiver.open_requests -= 1
                    receiver.changed.notify_all()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1, stopped (and any held request released) when the test ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver("")))
    host, port = server.server_address[:2]
    made = Receiver(f"http://{host!s}:{port}/hook")
    server.RequestHandlerClass = _handler(made)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made
    finally:
        made.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


SignatureCheck = Callable[[str, str | dict[str, Any], str], bool]


@pytest.fixture(scope="session")
def is_valid_signature() -> SignatureCheck:
    """Altur's own Python `is_valid_signature`, taken from the overview page at test time and run as written."""
    if not OVERVIEW_PAGE.exists():
        pytest.skip(f"SKIPPED LOUDLY: the Altur reference page is missing: {OVERVIEW_PAGE}")
    page = OVERVIEW_PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", page, flags=re.S)
    source = next((block for block in blocks if "def is_valid_signature" in block), None)
    assert source is not None, "the overview page no longer has a Python is_valid_signature"
    # The page's snippet uses typing.Union without importing it; everything else it imports itself.
    namespace: dict[str, Any] = {"Union": Union}
    exec(compile(source, str(OVERVIEW_PAGE), "exec"), namespace)
    check: SignatureCheck = namespace["is_valid_signature"]
    return check


def add_hook(
    store: Any,
    url: str,
    events: tuple[str, ...] = ("on_call_end", "campaign.status_changed", "campaign.cycle_completed"),
    statuses: tuple[str, ...] = (),
    secret: str = SECRET,
) -> Any:
    """An endpoint of the default business (created if needed), as `herald webhooks add` makes one."""
    from herald.engine.campaigns import default_business_id
    from herald.outbox.store import add_endpoint

    from ..conftest import START

    with store.tx() as tx:
        return add_endpoint(tx, default_business_id(tx, START), url, secret, events, statuses, START)


def delivery_rows(store: Any) -> list[Any]:
    """Every delivery row, in the order they were written."""
    from sqlalchemy import select

    from herald.store import schema as t

    with store.read() as tx:
        return list(tx.connection.execute(select(t.webhook_deliveries).order_by(t.webhook_deliveries.c.id)))


def attempt_rows(store: Any) -> list[Any]:
    """Every attempt row, in order."""
    from sqlalchemy import select

    from herald.store import schema as t

    with store.read() as tx:
        return list(tx.connection.execute(select(t.webhook_attempts).order_by(t.webhook_attempts.c.id)))
