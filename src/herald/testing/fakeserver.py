"""What every fake provider server shares: a loopback HTTP server thread, sender threads that post webhooks
after random delays (some twice, some swapped with the next one) and retry until Herald answers 2xx, JSON answers,
and the `python -m` command line that prints `{"port": N}` and runs until SIGTERM or SIGINT.

A fake subclasses FakeServer, names its handler class (a JsonHandler whose `owner` is the fake), pushes its pending
webhooks (dataclasses ordered by `due`, a `time.monotonic()` time) on `_heap` under `_lock`, and says in `_post_batch`
how one of them goes out.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import random
import signal
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import httpx

#: How often the server loop looks for a shutdown request (the stdlib's 0.5 s makes every stop() slow).
POLL = 0.05
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0


def pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    """One key of `weights`, drawn with those weights."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def offsets(rng: random.Random, count: int, low: float, high: float) -> list[float]:
    """`count` growing times: each a random delay in [low, high] after the one before."""
    return list(itertools.accumulate(rng.uniform(low, high) for _ in range(count)))


def jitter(
    rng: random.Random, dues: Sequence[float], reorder_rate: float, duplicate_rate: float, low: float, high: float
) -> list[list[float]]:
    """When each item of a story goes out, as real providers do: some swap places with the next one, some go out
    twice (the copy a random delay later). One list of times per item, in the items' order."""
    due = list(dues)
    for index in range(len(due) - 1):
        if rng.random() < reorder_rate:
            due[index], due[index + 1] = due[index + 1], due[index]
    times: list[list[float]] = []
    for at in due:
        copies = 2 if rng.random() < duplicate_rate else 1
        times.append([at + (rng.uniform(low, high) if copy else 0.0) for copy in range(copies)])
    return times


def check_delays(min_delay: float, max_delay: float) -> None:
    """Refuse delays a fake cannot draw from."""
    if not 0 <= min_delay <= max_delay:
        raise ValueError("delays must satisfy 0 <= min_delay <= max_delay")


class _Listener(ThreadingHTTPServer):
    # Herald's adapters open up to 16 connections at once; the default backlog of 5 can overflow on a busy machine,
    # and a connection dropped from a full accept queue surfaces as a read error in the client under test.
    request_queue_size = 128


class Reply(Exception):
    """An HTTP answer raised from deep inside a handler."""

    def __init__(self, status: int, body: Any, content_type: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


class _Due(Protocol):
    due: float

    def __lt__(self, other: Any) -> bool: ...


P = TypeVar("P", bound=_Due)


class FakeServer(Generic[P]):
    """The lifecycle of a fake: `start()` it, point Herald at `.url`, `stop()` it after (or use it as a context).

    Subclasses set `handler` (their JsonHandler), `name` (thread names and messages) and `_stats`, and implement
    `_post_batch`; `_taking` and `_take_batch` are hooks for what happens when a pending webhook is handed to a sender.
    """

    handler: ClassVar[type[JsonHandler]]
    #: Short name: threads are `{name}-http` and `{name}-senders-N`.
    name: ClassVar[str] = "fake"
    #: Bound httpx's pool to one connection per sender (else httpx's default limits).
    pool_per_sender: ClassVar[bool] = False
    #: The key of `stats()` that counts webhooks not posted yet.
    pending_key: ClassVar[str] = "pending_events"

    def __init__(self, *, host: str, port: int, seed: int, senders: int, client: httpx.Client | None = None) -> None:
        self._host, self._port = host, port
        self.seed = seed
        self.senders = senders
        self.settings: dict[str, float] = {}
        self._stats: dict[str, Any] = {}
        self._lock = threading.Condition()
        self._errors = random.Random(seed)
        self._seq = itertools.count()
        self._heap: list[P] = []
        self._sending = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._own_client = client is None
        self._client: httpx.Client | None = client

    # --- lifecycle -------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._server is None:
            raise RuntimeError(f"the {self.name} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to point Herald's provider options at."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        """Listen and start posting webhooks; returns self."""
        handler = type("Handler", (self.handler,), {"owner": self})
        self._server = _Listener((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._start_senders()
        self._threads.insert(
            0,
            threading.Thread(target=self._server.serve_forever, args=(POLL,), name=f"{self.name}-http", daemon=True),
        )
        self._threads[0].start()
        return self

    def _start_senders(self) -> None:
        """Open the webhook client and start the sender threads (a fake with its own listener calls this alone)."""
        if self._client is None:
            if self.pool_per_sender:
                limits = httpx.Limits(max_connections=self.senders, max_keepalive_connections=self.senders)
                self._client = httpx.Client(timeout=5.0, limits=limits)
            else:
                self._client = httpx.Client(timeout=5.0)
        # Several senders, as a real provider has: one slow webhook answer does not hold up every other one.
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"{self.name}-senders-{index}", daemon=True)
            for index in range(self.senders)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop listening and posting (webhooks not yet posted are dropped) and close the port."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every webhook scheduled so far has been posted; False if that took longer than `timeout`."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._heap and not self._sending, timeout)

    def _snapshot(self) -> dict[str, Any]:
        """A deep copy of the stats with the count of webhooks not posted yet (call with `_lock` held)."""
        snapshot: dict[str, Any] = json.loads(json.dumps(self._stats))
        snapshot[self.pending_key] = len(self._heap) + self._sending
        return snapshot

    def control(self, changes: Mapping[str, Any]) -> dict[str, float]:
        """Change rates and delays while running (the `POST /control` body); returns the settings."""
        unknown = sorted(set(changes) - set(self.settings))
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0")
        with self._lock:
            self.settings.update({name: float(value) for name, value in changes.items()})
            if self.settings["min_delay"] > self.settings["max_delay"]:
                self.settings["max_delay"] = self.settings["min_delay"]
            return dict(self.settings)

    # --- requests in -----------------------------------------------------------------------------------------------

    def _inject(self, rate_limited: Reply, failed: Reply | None = None) -> None:
        """Raise an injected 429 (or `failed`, an injected 500) at the rates the settings say."""
        with self._lock:
            draw = self._errors.random()
            if draw < self.settings["error_rate_429"]:
                self._stats["injected_429"] += 1
                raise rate_limited
            if failed is not None and draw < self.settings["error_rate_429"] + self.settings["error_rate_500"]:
                self._stats["injected_500"] += 1
                raise failed

    def _push(self, times: Iterable[float], make: Any) -> None:
        """Queue `make(due, seq)` at each of `times` (lock held)."""
        for due in times:
            heapq.heappush(self._heap, make(due, next(self._seq)))

    # --- webhooks out ----------------------------------------------------------------------------------------------

    def _taking(self, pending: P) -> None:
        """Called with the lock held as `pending` is handed to a sender."""

    def _take_batch(self) -> list[P]:
        """Wait for a due webhook and take it (empty when stopping)."""
        with self._lock:
            while not self._stopping.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    pending = heapq.heappop(self._heap)
                    self._taking(pending)
                    self._sending += 1
                    return [pending]
                self._lock.wait(self._heap[0].due - now if self._heap else None)
            return []

    def _post_batch(self, batch: list[P]) -> None:
        """Post what was taken (implemented by each fake)."""
        raise NotImplementedError

    def _send_loop(self) -> None:
        while batch := self._take_batch():
            self._post_batch(batch)
            with self._lock:
                self._sending -= len(batch)
                self._lock.notify_all()

    def _count_attempt(self) -> None:
        """Called with the lock held after each post attempt."""
        self._stats["posts"] += 1

    def _post_once(self, url: str, content: bytes | str, headers: Mapping[str, str]) -> str:
        """Post one body once; "" when Herald took it (2xx), else what went wrong."""
        assert self._client is not None
        try:
            response = self._client.post(url, content=content, headers=dict(headers))
        except httpx.HTTPError as failure:
            return f"{type(failure).__name__}: {failure}"
        return "" if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"

    def _deliver(self, url: str, content: bytes | str, headers: Mapping[str, str]) -> bool:
        """Post one body until Herald takes it (2xx) or the fake stops; False if it stopped first."""
        assert self._client is not None
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set():
            error = self._post_once(url, content, headers)
            with self._lock:
                self._count_attempt()
                if not error:
                    return True
                self._stats["post_failures"] += 1
                self._stats["last_post_error"] = error
            # Herald may not be up yet, may be restarting, or may not know what it answers yet: post it again,
            # as providers retry a webhook that was not taken.
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
        return False


class JsonHandler(BaseHTTPRequestHandler):
    """A fake's request handler: quiet, keep-alive, answers JSON."""

    owner: Any
    # HTTP/1.1 keeps connections alive, as Herald's clients expect of a real provider.
    protocol_version = "HTTP/1.1"
    timeout = 30
    # Headers and body go out as two writes; without this, Nagle holds the body for the client's delayed ACK.
    disable_nagle_algorithm = True
    json_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks read /stats instead."""

    def _answer(self, status: int, body: Any, content_type: str | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type or self.json_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _headers(self) -> dict[str, str]:
        """The request headers, names in lower case (they are case-insensitive)."""
        return {key.lower(): value for key, value in self.headers.items()}

    def _raw(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


def parser(module: str, doc: str | None, *, error_500: bool = True) -> argparse.ArgumentParser:
    """The command line of `python -m herald.testing.<module>`, with the options every fake has."""
    parsed = argparse.ArgumentParser(prog=f"python -m herald.testing.{module}", description=(doc or "").split("\n")[0])
    parsed.add_argument("--port", type=int, default=0)
    parsed.add_argument("--host", default="127.0.0.1")
    parsed.add_argument("--seed", type=int, default=0)
    parsed.add_argument("--min-delay", type=float, default=0.0)
    parsed.add_argument("--max-delay", type=float, default=0.05)
    parsed.add_argument("--duplicate-rate", type=float, default=0.1)
    parsed.add_argument("--reorder-rate", type=float, default=0.1)
    parsed.add_argument("--error-rate-429", type=float, default=0.0)
    if error_500:
        parsed.add_argument("--error-rate-500", type=float, default=0.0)
    return parsed


def common(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a fake from the options `parser` added."""
    names = ["port", "host", "seed", "min_delay", "max_delay", "duplicate_rate", "reorder_rate", "error_rate_429"]
    if hasattr(args, "error_rate_500"):
        names.append("error_rate_500")
    return {name: getattr(args, name) for name in names}


def serve(fake: FakeServer[Any]) -> int:
    """Run `fake` until SIGTERM or SIGINT; prints `{"port": N}` on stdout once listening."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake.start()
    print(json.dumps({"port": fake.port}), flush=True)
    try:
        stop.wait()
    finally:
        fake.stop()
    return 0
