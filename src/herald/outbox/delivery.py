"""Sending deliveries: claim due ones (a short transaction), POST each outside any transaction, record the attempt.

`deliver_due` does one pass synchronously (tests drive it on a virtual clock); `Deliverer` runs passes in a thread
of its own with a bounded pool of senders, so a slow or dead receiver holds at most `max_in_flight` sender threads
for 5 s each and never the engine's rounds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy.exc import DBAPIError

from herald.engine.clock import Clock
from herald.outbox.schedule import Transition, after_attempt, succeeded
from herald.outbox.signing import SIGNATURE_HEADER, sign
from herald.outbox.store import Attempt, Claimed, claim, next_due, record
from herald.store.queries import Store

log = logging.getLogger("herald.webhooks")

#: Altur waits 5 s for an answer; so does Herald.
TIMEOUT_SECONDS = 5.0
USER_AGENT = "Herald-Webhooks/1.0"


@dataclass(frozen=True, slots=True)
class Response:
    """What a POST came to: the status code, or None and why there was none."""

    status_code: int | None
    error: str = ""


#: Sends one request: (url, body, headers) -> Response. Never raises for a receiver's failure.
Send = Callable[[str, bytes, dict[str, str]], Response]


class HttpSender:
    """POSTs with httpx: 5 s timeout (None: wait for ever), no redirects followed (a 3xx is not a receipt)."""

    def __init__(self, timeout: float | None = TIMEOUT_SECONDS) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """POST `body`; a timeout or connection error is a Response without a status code."""
        try:
            answer = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as error:
            return Response(None, f"timeout: {type(error).__name__}")
        except httpx.HTTPError as error:
            return Response(None, f"{type(error).__name__}: {error}")
        if succeeded(answer.status_code):
            return Response(answer.status_code)
        return Response(answer.status_code, answer.text[:500])

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()


def headers_for(claimed: Claimed) -> dict[str, str]:
    """The headers of an attempt: JSON, Altur's signature, and who sends it."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(claimed.secret, claimed.body.encode("utf-8")),
        "User-Agent": USER_AGENT,
    }


def attempt(claimed: Claimed, send: Send, clock: Clock) -> tuple[Attempt, Transition]:
    """Make one attempt (outside any transaction): what happened, and what the delivery becomes."""
    attempted_at = clock.now()
    started = time.perf_counter()
    try:
        response = send(claimed.url, claimed.body.encode("utf-8"), headers_for(claimed))
    except Exception as error:  # a sender bug must not lose the delivery: it counts as a failed attempt
        log.exception("webhook sender raised")
        response = Response(None, f"{type(error).__name__}: {error}")
    duration_ms = int((time.perf_counter() - started) * 1000)
    after = after_attempt(claimed.attempts, succeeded(response.status_code), clock.now())
    return Attempt(attempted_at, response.status_code, response.error, duration_ms), after


def _claim(store: Store, worker_id: int, clock: Clock, limit: int) -> list[Claimed]:
    now = clock.now()
    # A read first: most passes find nothing due, and a read takes no write lock.
    with store.read() as tx:
        due = next_due(tx)
    if due is None or due > now:
        return []
    with store.tx() as tx:
        return claim(tx, worker_id, now, limit)


def _finish(store: Store, worker_id: int, claimed: Claimed, send: Send, clock: Clock) -> Transition:
    done, after = attempt(claimed, send, clock)
    with store.tx() as tx:
        if not record(tx, worker_id, claimed, done, after):
            log.warning("delivery %s: claim lost while sending (lease ran out); outcome not applied", claimed.id)
    return after


def deliver_due(store: Store, worker_id: int, clock: Clock, send: Send, limit: int = 100) -> list[Transition]:
    """One synchronous pass: claim up to `limit` due deliveries and attempt each in turn; returns what they became."""
    return [_finish(store, worker_id, claimed, send, clock) for claimed in _claim(store, worker_id, clock, limit)]


class Deliverer:
    """The delivery loop of a worker: a thread that claims as many due deliveries as it has free senders."""

    def __init__(
        self,
        store: Store,
        worker_id: int,
        clock: Clock,
        *,
        send: Send | None = None,
        max_in_flight: int = 8,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.clock = clock
        self._sender: HttpSender | None = None
        if send is None:
            send = self._sender = HttpSender()
        self._send: Send = send
        self.max_in_flight = max_in_flight
        self.poll_seconds = poll_seconds
        self.attempted = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: set[Future[Transition]] = set()
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="herald-webhook")
        self._thread = threading.Thread(target=self._loop, name="herald-webhooks", daemon=True)

    def start(self) -> Deliverer:
        """Start the loop; returns self."""
        self._thread.start()
        return self

    def in_flight(self) -> int:
        """Deliveries being sent right now."""
        with self._lock:
            return len(self._in_flight)

    def _done(self, future: Future[Transition]) -> None:
        error = future.exception()
        if error is not None:  # recording failed: the lease runs out and the delivery is attempted again
            log.warning("recording a webhook attempt failed: %s", error)
        with self._lock:
            self._in_flight.discard(future)
            self.attempted += 1
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            free = self.max_in_flight - self.in_flight()
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    claimed = _claim(self.store, self.worker_id, self.clock, free)
                except DBAPIError as error:  # a lock or a lost connection: try again at the next pass
                    log.warning("claiming webhook deliveries failed: %s", error)
            for item in claimed:
                future = self._pool.submit(_finish, self.store, self.worker_id, item, self._send, self.clock)
                with self._lock:
                    self._in_flight.add(future)
                future.add_done_callback(self._done)
            if len(claimed) < free or free <= 0:
                # Nothing more due (or no free sender): wait for a sender to finish or the next poll.
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def stop(self) -> None:
        """Stop claiming, let the attempts in flight finish (each within its timeout), release the HTTP client."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)
        if self._sender is not None:
            self._sender.close()


def start_for_worker(store: Store, worker_id: int, clock: Clock) -> Deliverer:
    """The delivery loop a `herald worker` (or `herald run` live) runs beside its rounds."""
    return Deliverer(store, worker_id, clock).start()
