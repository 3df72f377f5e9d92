"""A fake Vapi on 127.0.0.1 for tests and demos: `POST /call`, `GET /call/{id}`, `GET /call`, and server messages back.

It takes calls like Vapi's API (bearer private key, Call objects, NestJS-style error bodies, injected 429/500s),
decides each call's outcome from a seeded RNG, and posts the call's server messages (`status-update`s and one
`end-of-call-report`) to the call's `assistantOverrides.server.url` with the headers that server asks for, one
message per request, after random delays, some twice and some out of order. What it saw is served at `GET /stats`.

    python -m herald.testing.fake_vapi --port 0 --token KEY

prints `{"port": N}` once listening and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import heapq
import json
import random
import re
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from herald.providers.base import resolve_secret
from herald.providers.vapi import CALL_ID_KEY, sign
from herald.testing.fakeserver import (
    POLL,
    FakeServer,
    JsonHandler,
    Reply,
    check_delays,
    common,
    jitter,
    parser,
    pick,
    serve,
)

#: Call outcome weights: `human`/`machine` calls connect; the others never do.
CALL_OUTCOMES: Mapping[str, float] = {
    "human": 0.6,
    "machine": 0.2,
    "no-answer": 0.1,
    "busy": 0.05,
    "failed": 0.05,
}
#: Herald's view of each outcome: the call's final (status, answered_by).
EXPECTED = {
    "human": ("ended", "human"),
    "machine": ("ended", "machine"),
    "no-answer": ("no-answer", ""),
    "busy": ("busy", ""),
    "failed": ("failed", ""),
}
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_ORG = "00000000-0000-4000-8000-00000000f00d"


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _millis(at: datetime) -> float:
    return float(int(at.timestamp() * 1000))


@dataclass(order=True)
class _Pending:
    """A server message waiting for its time to be posted."""

    due: float
    seq: int
    call_id: str = field(compare=False)
    message: dict[str, Any] = field(compare=False)
    #: Herald learns the call ended from this message: in-flight counts drop when it is handed to a sender.
    ends: bool = field(default=False, compare=False)


def _error(status: int, error: str, message: str | list[str]) -> Reply:
    # The shape of Vapi's (NestJS) error answers.
    return Reply(status, {"message": message, "error": error, "statusCode": status})


class FakeVapi(FakeServer[_Pending]):
    """Vapi's call API on a loopback port. `start()` it, point `provider_options.api_base_url` at `.url`, `stop()` it.

    `token` (or `env:NAME`), when set, is the bearer key every request must carry. `callback_url` overrides each
    call's server URL. `credentials` maps a `credentialId` to (`bearer` | `hmac`, secret) for calls whose server
    names one. `answer_delay` holds every `POST /call` answer that long after the call is created (a lost answer).
    """

    name = "fake-vapi"
    pool_per_sender = True
    pending_key = "pending_messages"

    def __init__(
        self,
        *,
        token: str | None = None,
        callback_url: str | None = None,
        credentials: Mapping[str, tuple[str, str]] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 0,
        min_delay: float = 0.0,
        max_delay: float = 0.05,
        duplicate_rate: float = 0.1,
        reorder_rate: float = 0.1,
        noise_rate: float = 0.1,
        error_rate_429: float = 0.0,
        error_rate_500: float = 0.0,
        answer_delay: float = 0.0,
        call_outcomes: Mapping[str, float] = CALL_OUTCOMES,
        convert_rate: float = 0.3,
        senders: int = 4,
        keep_requests: bool = True,
    ) -> None:
        check_delays(min_delay, max_delay)
        super().__init__(host=host, port=port, seed=seed, senders=senders)
        self._token = resolve_secret(token) if token else None
        self.callback_url = callback_url
        self.credentials = dict(credentials or {})
        self.settings = {
            "min_delay": min_delay,
            "max_delay": max_delay,
            "duplicate_rate": duplicate_rate,
            "reorder_rate": reorder_rate,
            "noise_rate": noise_rate,
            "error_rate_429": error_rate_429,
            "error_rate_500": error_rate_500,
            "answer_delay": answer_delay,
            "convert_rate": convert_rate,
        }
        self.call_weights = dict(call_outcomes)
        self.keep_requests = keep_requests
        #: Every `POST /call` body received, in arrival order, when `keep_requests`.
        self.requests: list[dict[str, Any]] = []
        #: Every server message posted (duplicates included), in posting order, when `keep_requests`.
        self.sent: list[dict[str, Any]] = []
        self._calls: dict[str, dict[str, Any]] = {}
        self._servers: dict[str, dict[str, Any]] = {}
        self._in_flight: dict[str, tuple[str, str]] = {}
        self._by_campaign: Counter[str] = Counter()
        self._numbers: Counter[str] = Counter()
        self._stats = {
            "placements": 0,
            "max_in_flight": 0,
            "max_in_flight_by_campaign": {},
            "overlapping_numbers": [],
            "outcomes": {},
            "injected_429": 0,
            "injected_500": 0,
            "rejected": 0,
            "lookups": 0,
            "messages_posted": 0,
            "posts": 0,
            "post_failures": 0,
            "last_post_error": "",
        }

    def stats(self) -> dict[str, Any]:
        """What the fake saw and sent (the `GET /stats` document).

        `placements` (calls created), `outcomes` (Herald's call id -> the `status` and `answered_by` Herald should
        record, and `converted`: the report says `interested` and a true success evaluation), `max_in_flight`, `max_in_flight_by_campaign`, `in_flight`, `overlapping_numbers` (numbers with two
        calls at once), `injected_429`/`injected_500`, `rejected` (4xx answers), `lookups` (`GET /call` lists),
        `messages_posted` (duplicates included), `posts`, `post_failures`, `last_post_error`, `pending_messages`.
        """
        with self._lock:
            snapshot = self._snapshot()
            snapshot["in_flight"] = len(self._in_flight)
            snapshot["settings"] = dict(self.settings)
            return snapshot

    def call(self, call_id: str) -> dict[str, Any] | None:
        """The Call object as `GET /call/{id}` answers it, or None."""
        with self._lock:
            found = self._calls.get(call_id)
            return json.loads(json.dumps(found)) if found is not None else None

    # --- the API ---------------------------------------------------------------------------------------------------

    def _authorize(self, headers: Mapping[str, str]) -> None:
        if self._token is not None and headers.get("authorization") != f"Bearer {self._token}":
            raise _error(
                401,
                "Unauthorized",
                "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa.",
            )

    def _inject_errors(self) -> None:
        self._inject(
            _error(429, "Too Many Requests", "Too many requests, please try again later."),
            _error(500, "Internal Server Error", "The fake Vapi failed on purpose."),
        )

    @staticmethod
    def _check(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _error(400, "Bad Request", ["body must be an object"])
        problems = [
            f"{name} must be a string"
            for name in ("assistantId", "phoneNumberId")
            if not isinstance(body.get(name), str)
        ]
        customer = body.get("customer")
        number = customer.get("number") if isinstance(customer, dict) else None
        if not isinstance(number, str) or not _E164.fullmatch(number):
            problems.append("customer.number must be a valid phone number in the E.164 format.")
        overrides = body.get("assistantOverrides")
        server = overrides.get("server") if isinstance(overrides, dict) else None
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            problems.append("assistantOverrides.server.url must be a URL (the fake needs one to post messages to)")
        if problems:
            raise _error(400, "Bad Request", problems)
        return body

    def create_call(self, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        """`POST /call`: the created Call object (HTTPError-like `_Reply` for refusals)."""
        self._authorize(headers)
        self._inject_errors()
        request = self._check(body)
        now = datetime.now(UTC)
        with self._lock:
            if self.keep_requests:
                self.requests.append(request)
            # Seeded ids: a run with the same seed and order of calls creates the same ids.
            call_id = str(
                uuid.UUID(int=random.Random(f"{self.seed}:id:{len(self._calls)}").getrandbits(128), version=4)
            )
            overrides = request["assistantOverrides"]
            call: dict[str, Any] = {
                "id": call_id,
                "orgId": _ORG,
                "createdAt": _stamp(now),
                "updatedAt": _stamp(now),
                "type": "outboundPhoneCall",
                "status": "queued",
                "phoneCallProvider": "twilio",
                "phoneCallTransport": "pstn",
                "assistantId": request["assistantId"],
                "phoneNumberId": request["phoneNumberId"],
                "assistantOverrides": overrides,
                "customer": request["customer"],
            }
            if isinstance(request.get("name"), str):
                call["name"] = request["name"]
            self._calls[call_id] = call
            self._servers[call_id] = overrides["server"]
            self._place(call, now)
            answer: dict[str, Any] = json.loads(json.dumps(call))
        return answer

    def list_calls(self, headers: Mapping[str, str], query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """`GET /call` with `phoneNumberId`, `assistantId`, `createdAtGe` and `limit` filters, newest first."""
        self._authorize(headers)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        since = one("createdAtGe")
        limit = int(float(one("limit") or 100))
        with self._lock:
            self._stats["lookups"] += 1
            calls = [
                call
                for call in self._calls.values()
                if (one("phoneNumberId") in (None, call["phoneNumberId"]))
                and (one("assistantId") in (None, call["assistantId"]))
                and (since is None or datetime.fromisoformat(call["createdAt"]) >= datetime.fromisoformat(since))
            ]
            calls.sort(key=lambda call: call["createdAt"], reverse=True)
            listed: list[dict[str, Any]] = json.loads(json.dumps(calls[:limit]))
            return listed

    # --- the call's story ------------------------------------------------------------------------------------------

    def _place(self, call: dict[str, Any], now: datetime) -> None:
        """Count the call in flight and schedule its server messages (under the lock)."""
        overrides = call["assistantOverrides"]
        herald_id = str((overrides.get("metadata") or {}).get(CALL_ID_KEY) or call["id"])
        campaign = str((overrides.get("metadata") or {}).get("campaignId", ""))
        number = call["customer"]["number"]
        self._stats["placements"] += 1
        self._in_flight[call["id"]] = (campaign, number)
        self._by_campaign[campaign] += 1
        if self._numbers[number] and number not in self._stats["overlapping_numbers"]:
            self._stats["overlapping_numbers"].append(number)
        self._numbers[number] += 1
        self._stats["max_in_flight"] = max(self._stats["max_in_flight"], len(self._in_flight))
        peaks = self._stats["max_in_flight_by_campaign"]
        peaks[campaign] = max(peaks.get(campaign, 0), self._by_campaign[campaign])

        # Seeded per Herald id, so an outcome does not depend on the order concurrent starts arrive in.
        rng = random.Random(f"{self.seed}:call:{herald_id}")
        outcome = pick(rng, self.call_weights)
        status, answered_by = EXPECTED[outcome]
        self._stats["outcomes"][herald_id] = {"status": status, "answered_by": answered_by}
        low, high = self.settings["min_delay"], self.settings["max_delay"]
        steps = {"human": 4, "machine": 4, "no-answer": 3, "busy": 2, "failed": 2}[outcome]
        times = [now]
        for _ in range(steps):
            times.append(times[-1] + timedelta(seconds=rng.uniform(low, high)))
        story = self._story(call, outcome, rng, times[1:])
        structured = story[-1][0]["analysis"].get("structuredData") or {}
        self._stats["outcomes"][herald_id]["converted"] = bool(structured.get("interested"))
        if rng.random() < self.settings["noise_rate"]:
            # A message type Herald did not ask for: Herald must acknowledge and ignore it.
            story.insert(1, ({"type": "hang", "timestamp": story[0][0]["timestamp"]}, False))
        # Each message is due at its own timestamp; some swap places with the next one, some go out twice.
        start = time.monotonic() - now.timestamp()
        dues = [start + message["timestamp"] / 1000 for message, _ in story]
        copies = jitter(rng, dues, self.settings["reorder_rate"], self.settings["duplicate_rate"], low, high)
        for (message, ends), sends in zip(story, copies, strict=True):
            for due in sends:
                heapq.heappush(self._heap, _Pending(due, next(self._seq), call["id"], message, ends))
        self._lock.notify_all()

    def _story(
        self, call: dict[str, Any], outcome: str, rng: random.Random, times: list[datetime]
    ) -> list[tuple[dict[str, Any], bool]]:
        """The server messages of one call as (message, ends it for Herald)."""

        def status(state: str, at: datetime, reason: str = "") -> tuple[dict[str, Any], bool]:
            message: dict[str, Any] = {"type": "status-update", "status": state, "timestamp": _millis(at)}
            if reason:
                message["endedReason"] = reason
            # An `ended` status of a call that never connected is its end for Herald.
            return message, bool(reason) and outcome not in ("human", "machine")

        if outcome in ("busy", "failed", "no-answer"):
            reason = {"busy": "customer-busy", "failed": "twilio-failed-to-connect-call"}.get(
                outcome, "customer-did-not-answer"
            )
            ended = times[-1]
            early = [status("queued", times[0])] + ([status("ringing", times[1])] if outcome == "no-answer" else [])
            return [*early, status("ended", ended, reason), (self._report(call, reason, None, ended, ended, rng), True)]
        if outcome == "machine":
            reason = "voicemail"
        else:
            reason = "customer-ended-call" if rng.random() < 0.6 else "assistant-ended-call"
        started, ended, reported = times[1], times[2], times[3]
        return [
            status("ringing", times[0]),
            status("in-progress", started),
            status("ended", ended, reason),
            (self._report(call, reason, started, ended, reported, rng), True),
        ]

    def _report(
        self,
        call: dict[str, Any],
        reason: str,
        started: datetime | None,
        ended: datetime,
        reported: datetime,
        rng: random.Random,
    ) -> dict[str, Any]:
        connected = started is not None
        report: dict[str, Any] = {
            "type": "end-of-call-report",
            "endedReason": reason,
            "timestamp": _millis(reported),
            "endedAt": _stamp(ended),
            "artifact": {},
            "analysis": {},
        }
        if started is not None:
            report["startedAt"] = _stamp(started)
            report["durationSeconds"] = round((ended - started).total_seconds(), 3)
        if connected:
            report["artifact"] = {
                "recordingUrl": f"https://storage.vapi.invalid/{call['id']}-mono.wav",
                "transcript": "AI: Hello.\nUser: Hi.\n",
            }
            if reason != "voicemail":
                converted = rng.random() < self.settings["convert_rate"]
                data: dict[str, Any] = {"interested": converted}
                if converted:
                    data["email"] = f"{call['id'][:8]}@example.com"
                report["analysis"] = {
                    "summary": "The customer answered.",
                    "structuredData": data,
                    "successEvaluation": "true" if converted else "false",
                }
        return report

    # --- messages out ----------------------------------------------------------------------------------------------

    def _taking(self, pending: _Pending) -> None:
        """The call as it is now goes out in the message (and leaves flight if the message ends it)."""
        if pending.ends and pending.call_id in self._in_flight:
            # Out of flight before Herald can hear of it and start another call to the number.
            campaign, number = self._in_flight.pop(pending.call_id)
            self._by_campaign[campaign] -= 1
            self._numbers[number] -= 1
        call = self._calls[pending.call_id]
        message = dict(pending.message)
        if message["type"] == "status-update":
            call["status"] = message["status"]
        if message.get("endedReason"):
            call["endedReason"] = message["endedReason"]
        call["updatedAt"] = _stamp(datetime.now(UTC))
        message["call"] = json.loads(json.dumps(call))
        message["customer"] = call["customer"]
        pending.message = message

    def _headers(self, call_id: str, body: bytes) -> dict[str, str]:
        """The headers Vapi sends to a call's server: its `headers`, or its credential's."""
        server = self._servers[call_id]
        headers = {"Content-Type": "application/json"}
        headers.update({str(key): str(value) for key, value in (server.get("headers") or {}).items()})
        credential = self.credentials.get(str(server.get("credentialId") or ""))
        if credential is not None:
            kind, secret = credential
            if kind == "bearer":
                headers["Authorization"] = f"Bearer {secret}"
            else:
                headers["X-Vapi-Signature"] = sign(secret, body)
        return headers

    def _post_batch(self, batch: list[_Pending]) -> None:
        """Post one message until Herald takes it (2xx) or the fake stops (Vapi's backoffPlan)."""
        (pending,) = batch
        body = json.dumps({"message": pending.message}, separators=(",", ":")).encode()
        url = self.callback_url or str(self._servers[pending.call_id]["url"])
        if self._deliver(url, body, self._headers(pending.call_id, body)):
            with self._lock:
                self._stats["messages_posted"] += 1
                if self.keep_requests:
                    self.sent.append(pending.message)


class MessageSink:
    """Herald's `/webhooks/vapi` minus the database, for tests: keeps each message's headers and body, answers 200."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        #: (headers in lower case, raw body) of every message received, in arrival order.
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink._lock:
                    sink.received.append(({key.lower(): value for key, value in self.headers.items()}, raw))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True)

    @property
    def url(self) -> str:
        """The webhook URL to give the fake (`callback_url`) or Herald's outbound (`server_url`)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks/vapi"

    def __enter__(self) -> MessageSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(JsonHandler):
    owner: FakeVapi
    json_type = "application/json; charset=utf-8"

    def _reply(self, reply: Reply) -> None:
        if 400 <= reply.status < 500:
            with self.owner._lock:
                self.owner._stats["rejected"] += 1
        self._answer(reply.status, reply.body)

    def do_GET(self) -> None:
        """`GET /call/{id}`, `GET /call`, `GET /stats`."""
        parts = urlsplit(self.path)
        try:
            if parts.path == "/stats":
                self._answer(200, self.owner.stats())
            elif parts.path == "/call":
                self._answer(200, self.owner.list_calls(self._headers(), parse_qs(parts.query)))
            elif parts.path.startswith("/call/"):
                self.owner._authorize(self._headers())
                call = self.owner.call(parts.path.removeprefix("/call/"))
                if call is None:
                    raise _error(404, "Not Found", "Call not found")
                self._answer(200, call)
            else:
                raise _error(404, "Not Found", f"Cannot GET {parts.path}")
        except Reply as reply:
            self._reply(reply)

    def do_POST(self) -> None:
        """`POST /call`, `POST /control`."""
        raw = self._raw()
        try:
            try:
                body = json.loads(raw)
            except ValueError:
                raise _error(400, "Bad Request", "Unexpected token in JSON") from None
            if self.path == "/call":
                answer = self.owner.create_call(self._headers(), body)
                delay = self.owner.settings["answer_delay"]
                if delay:
                    # The call exists and its messages go out; only the answer is late (or never read).
                    self.owner._stopping.wait(delay)
                self._answer(201, answer)
            elif self.path == "/control":
                if not isinstance(body, dict):
                    raise _error(400, "Bad Request", "body must be an object")
                try:
                    self._answer(200, self.owner.control(body))
                except ValueError as problem:
                    raise _error(400, "Bad Request", str(problem)) from None
            else:
                raise _error(404, "Not Found", f"Cannot POST {self.path}")
        except Reply as reply:
            self._reply(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timed-out start)


FakeVapi.handler = _Handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake Vapi until SIGTERM or SIGINT; prints `{"port": N}` on stdout once listening."""
    arguments = parser("fake_vapi", __doc__)
    arguments.add_argument("--token", help="the private API key every request must carry, or env:NAME")
    arguments.add_argument("--callback-url", help="where to post server messages (default: each call's server URL)")
    arguments.add_argument("--noise-rate", type=float, default=0.1)
    arguments.add_argument("--senders", type=int, default=4, help="threads posting server messages")
    args = arguments.parse_args(argv)
    fake = FakeVapi(
        token=args.token,
        callback_url=args.callback_url,
        **common(args),
        noise_rate=args.noise_rate,
        senders=args.senders,
        keep_requests=False,
    )
    return serve(fake)


if __name__ == "__main__":
    sys.exit(main())
