"""A fake agent backend that speaks the HTTP provider contract (docs/providers/http.md), for tests and benchmarks.

It takes calls and messages like a real backend (bearer token, idempotency keys, injected 429/500s), decides each
outcome from a seeded RNG, and posts the events back in signed batches after random delays, some twice and some
out of order, as real providers do. What it saw is served at `GET /stats`, so a test can check Herald against it:
how many calls were really placed, how many were in flight at once, which outcome each call was given.

    python -m herald.testing.fake_agent --port 0 --callback-url http://127.0.0.1:8000/webhooks/http --secret B64

prints `{"port": N}` once listening and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import heapq
import http.client
import itertools
import json
import random
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Self
from urllib.parse import urlsplit

from herald.providers.base import resolve_secret
from herald.providers.http import SIGNATURE_HEADER, sign
from herald.providers.transport import KeepAlive
from herald.testing.fakeserver import (
    FakeServer,
    Reply,
    check_delays,
    common,
    jitter,
    offsets,
    parser,
    pick,
    serve,
)

#: Seconds a webhook post may take (as the other fakes' httpx client).
POST_TIMEOUT = 5.0
#: Events per webhook body.
BATCH_SIZE = 50
#: Call outcome weights: an answered call ends with `answered_by` human/machine/unknown; the others never answer.
CALL_OUTCOMES: Mapping[str, float] = {
    "human": 0.55,
    "machine": 0.2,
    "unknown": 0.05,
    "no-answer": 0.1,
    "busy": 0.05,
    "failed": 0.05,
}
#: Message outcome weights: the last receipt, a failure, or a read followed by a reply.
MESSAGE_OUTCOMES: Mapping[str, float] = {
    "sent": 0.05,
    "delivered": 0.2,
    "read": 0.4,
    "accepted": 0.15,
    "rejected": 0.1,
    "failed": 0.1,
}


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(order=True)
class _Pending:
    """An event waiting for its time to be posted."""

    due: float
    seq: int
    url: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    #: The call this event ends (its first terminal event to go out), so in-flight counts drop before Herald hears.
    ends: str | None = field(default=None, compare=False)
    outcome: dict[str, str] | None = field(default=None, compare=False)


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class _Connection(asyncio.Protocol):
    """One client connection of the agent: HTTP/1.1 requests with a Content-Length body, kept alive, answered in
    order on the event loop. A stdlib ThreadingHTTPServer (a thread per connection) cost ~0.35 ms of CPU per start on
    the benchmark machine; this, a fraction of it (benchmarks/README.md "Live dispatch")."""

    def __init__(self, agent: FakeAgent) -> None:
        self.agent = agent
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.agent._connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Answers go out as one write; no Nagle delay waiting for the client's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(parts) != 3 or "transfer-encoding" in headers:
                self._write(400, {"error": {"code": "bad_request", "message": "unsupported request"}}, False)
                return
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path, version = parts
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            status, answer = self.agent.answer(method, path, headers, body)
            self._write(status, answer, keep)

    def _write(self, status: int, answer: Any, keep: bool) -> None:
        assert self.transport is not None
        data = json.dumps(answer).encode()
        close = "" if keep else "Connection: close\r\n"
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{close}\r\n"
        )
        self.transport.write(head.encode("latin-1") + data)
        if not keep:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.agent._connections.discard(self)


class FakeAgent(FakeServer[_Pending]):
    """An agent backend on a loopback port. `start()` it, point an HttpOutbound at `.url`, `stop()` it after.

    `callback_url` overrides the `callback_url` of each request (None: post where each request says).
    `secret` (base64, or `env:NAME`) signs the webhooks; `token` (or `env:NAME`), when set, is the bearer token
    every start must carry. Delays are in seconds of wall time.
    """

    name = "fake-agent"
    pool_per_sender = True

    def __init__(
        self,
        callback_url: str | None,
        secret: str,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 0,
        min_delay: float = 0.0,
        max_delay: float = 0.05,
        duplicate_rate: float = 0.1,
        reorder_rate: float = 0.1,
        error_rate_429: float = 0.0,
        error_rate_500: float = 0.0,
        token: str | None = None,
        call_outcomes: Mapping[str, float] = CALL_OUTCOMES,
        message_outcomes: Mapping[str, float] = MESSAGE_OUTCOMES,
        convert_rate: float = 0.3,
        batch_size: int = BATCH_SIZE,
        senders: int = 4,
        linger: float = 0.02,
        keep_requests: bool = True,
    ) -> None:
        check_delays(min_delay, max_delay)
        super().__init__(host=host, port=port, seed=seed, senders=senders)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening: asyncio.Server | None = None
        self._loop_thread: threading.Thread | None = None
        #: Open client connections (touched on the event loop only).
        self._connections: set[_Connection] = set()
        #: The webhook clients, one per callback origin (`_post_once`).
        self._posters: dict[str, KeepAlive] = {}
        self.callback_url = callback_url
        self._secret = resolve_secret(secret)
        sign(self._secret, b"")  # fails now, not in the sender thread, when the secret is not base64
        self._token = resolve_secret(token) if token else None
        self.settings = {
            "min_delay": min_delay,
            "max_delay": max_delay,
            "duplicate_rate": duplicate_rate,
            "reorder_rate": reorder_rate,
            "error_rate_429": error_rate_429,
            "error_rate_500": error_rate_500,
            "convert_rate": convert_rate,
        }
        self.call_weights = dict(call_outcomes)
        self.message_weights = dict(message_outcomes)
        self.batch_size = batch_size
        #: How long a due event waits for others to share its body: fewer, fuller posts, as real backends batch.
        self.linger = linger
        self.keep_requests = keep_requests
        #: Every start request body received, in arrival order (for schema checks), when `keep_requests`.
        self.requests: list[dict[str, Any]] = []
        self._keys: dict[tuple[str, str], str] = {}
        self._in_flight: dict[str, tuple[str, str]] = {}
        self._by_campaign: Counter[str] = Counter()
        self._numbers: Counter[str] = Counter()
        self._stats = {
            "placements": 0,
            "messages": 0,
            "repeated_keys": 0,
            "max_in_flight": 0,
            "max_in_flight_by_campaign": {},
            "overlapping_numbers": [],
            "outcomes": {},
            "message_outcomes": {},
            "injected_429": 0,
            "injected_500": 0,
            "rejected": 0,
            "events_posted": 0,
            "posts": 0,
            "post_failures": 0,
            "last_post_error": "",
        }

    # --- lifecycle -------------------------------------------------------------------------------------------------

    # The listener is an asyncio server in a thread of its own; the senders are FakeServer's threads.

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._listening is None:
            raise RuntimeError(f"the {self.name} is not started")
        return int(self._listening.sockets[0].getsockname()[1])

    def start(self) -> Self:
        """Listen and start posting webhooks; returns self."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._listening = loop.run_until_complete(
            loop.create_server(lambda: _Connection(self), self._host, self._port, backlog=128)
        )
        self._loop_thread = threading.Thread(target=loop.run_forever, name=f"{self.name}-http", daemon=True)
        self._loop_thread.start()
        self._start_senders()
        return self

    def stop(self) -> None:
        """Stop listening and posting (webhooks not yet posted are dropped) and close the port."""
        loop, listening = self._loop, self._listening
        if loop is not None and listening is not None and self._loop_thread is not None:

            async def close() -> None:
                listening.close()
                for connection in list(self._connections):
                    if connection.transport is not None:
                        connection.transport.close()

            asyncio.run_coroutine_threadsafe(close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            self._loop_thread.join()
            loop.close()
        self._loop = self._listening = self._loop_thread = None
        super().stop()
        with self._lock:
            posters, self._posters = list(self._posters.values()), {}
        for poster in posters:
            poster.close()

    def answer(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        """The answer to one request, as (status, JSON body): `GET /stats`, `POST /calls`, `POST /messages`,
        `POST /control`. `headers` have lower-case names."""
        try:
            if method == "GET":
                if path == "/stats":
                    return 200, self.stats()
                raise _error(404, "not_found", path)
            if method != "POST":
                raise _error(405, "method_not_allowed", method)
            try:
                body = json.loads(raw)
            except ValueError:
                raise _error(400, "invalid_json", "body is not JSON") from None
            if path == "/calls":
                return 200, self._start("call", headers, body)
            if path == "/messages":
                return 200, self._start("message", headers, body)
            if path == "/control":
                if not isinstance(body, dict):
                    raise _error(400, "invalid_request", "body must be a JSON object")
                try:
                    return 200, self.control(body)
                except ValueError as problem:
                    raise _error(400, "invalid_request", str(problem)) from None
            raise _error(404, "not_found", path)
        except Reply as reply:
            if reply.status == 400:
                with self._lock:
                    self._stats["rejected"] += 1
            return reply.status, reply.body

    def stats(self) -> dict[str, Any]:
        """What the agent saw and sent (the `GET /stats` document).

        `placements` (distinct calls started), `messages` (distinct messages), `repeated_keys` (starts answered
        from an earlier Idempotency-Key), `max_in_flight` and `max_in_flight_by_campaign` (campaign id as text;
        a call is in flight from its start until its end is handed to a sender), `in_flight` now,
        `overlapping_numbers` (numbers that had two calls in flight at once), `outcomes` (call id -> `status`
        and `answered_by` of the end it posted), `message_outcomes` (message id -> `status`: sent, delivered, read,
        accepted, rejected or failed), `injected_429`/`injected_500`, `rejected` (400 answers), `events_posted`
        (duplicates included), `posts`, `post_failures`, `last_post_error`, `pending_events`, `settings`.
        """
        with self._lock:
            snapshot = self._snapshot()
            snapshot["in_flight"] = len(self._in_flight)
            snapshot["settings"] = dict(self.settings)
            return snapshot

    # --- starts ----------------------------------------------------------------------------------------------------

    def _authorize(self, headers: Mapping[str, str]) -> None:
        if self._token is not None and headers.get("authorization") != f"Bearer {self._token}":
            raise _error(401, "unauthorized", "missing or wrong bearer token")

    def _inject_errors(self) -> None:
        self._inject(
            _error(429, "rate_limited", "too many requests, slow down"),
            _error(500, "internal", "the fake agent failed on purpose"),
        )

    @staticmethod
    def _fields(body: Any, names: Sequence[str]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _error(400, "invalid_request", "body must be a JSON object")
        for name in names:
            if not isinstance(body.get(name), str) or not body[name]:
                raise _error(400, "invalid_request", f"{name} must be a non-empty string")
        if not isinstance(body.get("campaign_id"), int):
            raise _error(400, "invalid_request", "campaign_id must be an integer")
        if not str(body["to"]).startswith("+"):
            raise _error(400, "invalid_number", f"{body['to']} is not an E.164 number")
        return body

    def _start(self, kind: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        self._authorize(headers)
        key = headers.get("idempotency-key")
        if not key:
            raise _error(400, "missing_idempotency_key", "the Idempotency-Key header is required")
        self._inject_errors()
        names = (
            ("call_id", "to", "callback_url") if kind == "call" else ("message_id", "to", "template", "callback_url")
        )
        request = self._fields(body, names)
        with self._lock:
            if self.keep_requests:
                self.requests.append(request)
            known = self._keys.get((kind, key))
            if known is not None:
                self._stats["repeated_keys"] += 1
                return {"external_id": known}
            if kind == "call":
                external_id = f"fake-call-{len(self._keys) + 1:06d}"
                self._keys[(kind, key)] = external_id
                self._place_call(request, external_id)
            else:
                external_id = f"wamid.fake{len(self._keys) + 1:012d}"
                self._keys[(kind, key)] = external_id
                self._place_message(request, external_id)
        return {"external_id": external_id}

    def _schedule(
        self, rng: random.Random, url: str, events: list[dict[str, Any]], outcome: dict[str, str], ends: str | None
    ) -> None:
        """Queue a story of events: each after a random delay, some twice, some swapped with the next one."""
        low, high = self.settings["min_delay"], self.settings["max_delay"]
        start_wall, start_mono = datetime.now(UTC), time.monotonic()
        times = offsets(rng, len(events), low, high)
        for index, event in enumerate(events):
            event["occurred_at"] = _stamp(start_wall + timedelta(seconds=times[index]))
            if event["type"] == "ended":
                event["ended_at"] = event["occurred_at"]
                if event.get("answered_by"):
                    event["started_at"] = events[index - 1]["occurred_at"]
        copies = jitter(rng, times, self.settings["reorder_rate"], self.settings["duplicate_rate"], low, high)
        last = len(events) - 1
        head = self._heap[0].due if self._heap else None
        for index, (event, delays) in enumerate(zip(events, copies, strict=True)):
            terminal = index == last
            for delay in delays:
                pending = _Pending(
                    start_mono + delay,
                    next(self._seq),
                    url,
                    event,
                    ends if terminal else None,
                    outcome if terminal else None,
                )
                heapq.heappush(self._heap, pending)
        # The senders wait for the earliest event (`_take_batch`): they need waking only when it is one of these.
        # Woken on every start, the four of them cost more CPU than the start itself.
        if head is None or self._heap[0].due < head:
            self._lock.notify_all()

    def _place_call(self, request: dict[str, Any], external_id: str) -> None:
        call_id, campaign, number = request["call_id"], str(request["campaign_id"]), request["to"]
        self._stats["placements"] += 1
        self._in_flight[call_id] = (campaign, number)
        self._by_campaign[campaign] += 1
        if self._numbers[number]:
            overlapping = self._stats["overlapping_numbers"]
            if number not in overlapping:
                overlapping.append(number)
        self._numbers[number] += 1
        self._stats["max_in_flight"] = max(self._stats["max_in_flight"], len(self._in_flight))
        peaks = self._stats["max_in_flight_by_campaign"]
        peaks[campaign] = max(peaks.get(campaign, 0), self._by_campaign[campaign])

        # Seeded per call id, so a call's outcome does not depend on the order concurrent starts arrive in.
        rng = random.Random(f"{self.seed}:call:{call_id}")
        outcome = pick(rng, self.call_weights)
        base = {"call_id": call_id, "external_id": external_id}
        serial = itertools.count(1)

        def event(kind: str, **fields: Any) -> dict[str, Any]:
            return {"event_id": f"{external_id}.{next(serial)}", **base, "type": kind, **fields}

        events: list[dict[str, Any]]
        if outcome == "failed":
            events = [event("failed", error_code="carrier_error", error_msg="The carrier refused the call.")]
            status, answered_by = "failed", ""
        elif outcome == "busy":
            events = [event("busy")]
            status, answered_by = "busy", ""
        elif outcome == "no-answer":
            events = [event("ringing"), event("no-answer")]
            status, answered_by = "no-answer", ""
        else:
            status, answered_by = "ended", outcome
            ended: dict[str, Any] = {"answered_by": outcome}
            if outcome == "machine":
                ended.update(ended_by="agent", ended_reason="voicemail")
            else:
                by_user = rng.random() < 0.6
                converted = rng.random() < self.settings["convert_rate"]
                ended.update(
                    ended_by="user" if by_user else "agent",
                    ended_reason="user_hangup" if by_user else "agent_hangup",
                    recording_url=f"https://recordings.invalid/{external_id}.mp3",
                    tags=["interested"] if converted else [],
                    extracted={"email": f"{call_id}@example.com"} if converted else {},
                    converted=converted,
                )
            events = [event("ringing"), event("in-progress", answered_by=outcome), event("ended", **ended)]
        url = self.callback_url or request["callback_url"]
        self._schedule(rng, url, events, {"status": status, "answered_by": answered_by}, call_id)

    def _place_message(self, request: dict[str, Any], external_id: str) -> None:
        message_id = request["message_id"]
        self._stats["messages"] += 1
        rng = random.Random(f"{self.seed}:message:{message_id}")
        outcome = pick(rng, self.message_weights)
        base = {"message_id": message_id, "external_id": external_id}
        serial = itertools.count(1)

        def event(kind: str, **fields: Any) -> dict[str, Any]:
            return {"event_id": f"{external_id}.{next(serial)}", **base, "type": kind, **fields}

        events = [event("sent")]
        if outcome == "failed":
            events.append(event("failed", error_code="131026", error_msg="Message Undeliverable."))
        else:
            receipts = {"sent": 0, "delivered": 1}.get(outcome, 2)
            events.extend(event(kind) for kind in ("delivered", "read")[:receipts])
            if outcome in ("accepted", "rejected"):
                accepted = outcome == "accepted"
                button = {"id": "btn-yes", "name": "Yes"} if accepted else {"id": "btn-no", "name": "No"}
                events.append(event("reply", button=button, accepted=accepted, converted=accepted))
        url = self.callback_url or request["callback_url"]
        self._schedule(rng, url, events, {"status": outcome}, None)
        self._stats["message_outcomes"][message_id] = {"status": outcome}

    # --- events out ------------------------------------------------------------------------------------------------

    def _take_batch(self) -> list[_Pending]:
        """Wait for due events and take up to a batch of them bound for one URL (empty when stopping)."""
        with self._lock:
            while not self._stopping.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0].due + self.linger <= now:
                    url = self._heap[0].url
                    batch: list[_Pending] = []
                    while (
                        self._heap
                        and self._heap[0].due <= now
                        and self._heap[0].url == url
                        and len(batch) < self.batch_size
                    ):
                        batch.append(heapq.heappop(self._heap))
                    self._hand_over(batch)
                    self._sending += len(batch)
                    return batch
                self._lock.wait(self._heap[0].due + self.linger - now if self._heap else None)
            return []

    def _hand_over(self, batch: Sequence[_Pending]) -> None:
        """Mark the calls these events end as ended, before Herald can hear of it and start another."""
        for pending in batch:
            if pending.ends is not None and pending.ends in self._in_flight:
                campaign, number = self._in_flight.pop(pending.ends)
                self._by_campaign[campaign] -= 1
                self._numbers[number] -= 1
                assert pending.outcome is not None
                self._stats["outcomes"][pending.ends] = pending.outcome

    def _post_once(self, url: str, content: bytes | str, headers: Mapping[str, str]) -> str:
        """Post one body once over the standard library's keep-alive connections (one per sender thread), where no
        proxy applies (else httpx, as the other fakes): ~a third of httpx's CPU per post, and the agent stands in for
        a backend that would run on another machine, so its CPU is not Herald's."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            client = self._posters.get(origin)
            if client is None and KeepAlive.usable(origin):
                client = self._posters[origin] = KeepAlive(origin, POST_TIMEOUT)
        if client is None:
            return super()._post_once(url, content, headers)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        data = content.encode() if isinstance(content, str) else content
        try:
            reply = client.post(path, data, headers)
        except (OSError, http.client.HTTPException, UnicodeEncodeError) as failure:
            return f"{type(failure).__name__}: {failure}"
        return "" if 200 <= reply.status_code < 300 else f"HTTP {reply.status_code}: {reply.text[:200]}"

    def _post_batch(self, batch: list[_Pending]) -> None:
        """Post one signed body of events (retried until Herald takes it)."""
        body = json.dumps({"events": [pending.event for pending in batch]}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        if self._deliver(batch[0].url, body, headers):
            with self._lock:
                self._stats["events_posted"] += len(batch)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake agent until SIGTERM or SIGINT; prints `{"port": N}` on stdout once listening."""
    arguments = parser("fake_agent", __doc__)
    arguments.add_argument("--callback-url", help="where to post events (default: each request's callback_url)")
    arguments.add_argument("--secret", required=True, help="base64 webhook secret, or env:NAME")
    arguments.add_argument("--token", help="bearer token every start must carry, or env:NAME")
    arguments.add_argument("--senders", type=int, default=4, help="threads posting events")
    args = arguments.parse_args(argv)
    agent = FakeAgent(
        args.callback_url, args.secret, **common(args), token=args.token, senders=args.senders, keep_requests=False
    )
    return serve(agent)


if __name__ == "__main__":
    sys.exit(main())
