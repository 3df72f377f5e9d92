"""A fake WhatsApp Cloud API for tests: the messages endpoint on 127.0.0.1, and signed webhooks back.

It answers `POST /{version}/{phone_number_id}/messages` like Graph does (bearer token, `messages[0].id` a `wamid`,
Graph error objects for refused sends), decides each message's story from a seeded RNG and posts it to Herald one
change per webhook, as Meta does: statuses `sent`, `delivered`, `read` or `failed` (with error codes), quick-reply
button answers to the template (`context.id` = its wamid), and `STOP` typed without any context. Webhooks are
signed with `X-Hub-Signature-256`, come after random delays, some twice and some out of order, in the older shape
or the current one (`contacts[].user_id`), and are posted again until Herald answers 2xx. What it saw is served at
`GET /stats`.

    python -m herald.testing.fake_whatsapp --port 0 --callback-url http://127.0.0.1:8000/webhooks/whatsapp_cloud \
        --app-secret SECRET --token TOKEN

prints `{"port": N}` once listening and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import random
import re
import signal
import sys
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from herald.providers.base import resolve_secret
from herald.providers.whatsapp_cloud import SIGNATURE_HEADER, sign

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"
#: A message's story: its last status, a failure, or a read followed by an answer.
OUTCOMES: Mapping[str, float] = {
    "sent": 0.05,
    "delivered": 0.1,
    "read": 0.2,
    "accepted": 0.15,
    "rejected": 0.1,
    "opt_out_button": 0.05,
    "opt_out_text": 0.05,
    "chatter": 0.1,
    "failed": 0.2,
}
#: Asynchronous failures (code, title) a `failed` status carries.
FAILURES = (
    (131026, "Message undeliverable"),
    (131049, "This message was not delivered to maintain healthy ecosystem engagement."),
)
BUTTONS = {"accepted": "Sí", "rejected": "No", "opt_out_button": "Detener promociones"}
_PATH = re.compile(r"/(v[0-9]+\.[0-9]+)/([0-9]+)/messages")
_POLL = 0.05
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    body: dict[str, Any] = field(compare=False)


class _Reply(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def graph_error(status: int, code: int, message: str, details: str = "") -> _Reply:
    """A Graph API error answer."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AFakeTrace"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return _Reply(status, {"error": error})


class FakeWhatsApp:
    """A Cloud API on a loopback port. `start()` it, point `api_base_url` at `.url`, `stop()` it after.

    `app_secret` (or `env:NAME`) signs the webhooks; `token` (or `env:NAME`), when set, is the bearer token every
    send must carry. `shape` is `current`, `older` or `mixed` (each webhook picks one). Templates named in
    `unknown_templates` are refused with 132001. Delays are in seconds of wall time. `client` posts the webhooks
    (e.g. a Starlette TestClient of Herald's app, with `senders=1`); by default a client of its own.
    """

    def __init__(
        self,
        callback_url: str,
        app_secret: str,
        *,
        token: str | None = None,
        phone_number_id: str = PHONE_NUMBER_ID,
        port: int = 0,
        host: str = "127.0.0.1",
        seed: int = 0,
        min_delay: float = 0.0,
        max_delay: float = 0.05,
        duplicate_rate: float = 0.1,
        reorder_rate: float = 0.1,
        error_rate_429: float = 0.0,
        outcomes: Mapping[str, float] = OUTCOMES,
        shape: str = "mixed",
        unknown_templates: Sequence[str] = (),
        senders: int = 4,
        client: httpx.Client | None = None,
    ) -> None:
        if not 0 <= min_delay <= max_delay:
            raise ValueError("delays must satisfy 0 <= min_delay <= max_delay")
        if shape not in ("current", "older", "mixed"):
            raise ValueError("shape must be current, older or mixed")
        self.callback_url = callback_url
        self._secret = resolve_secret(app_secret)
        self._token = resolve_secret(token) if token else None
        self.phone_number_id = phone_number_id
        self._host, self._port = host, port
        self.seed = seed
        self.settings = {
            "min_delay": min_delay,
            "max_delay": max_delay,
            "duplicate_rate": duplicate_rate,
            "reorder_rate": reorder_rate,
            "error_rate_429": error_rate_429,
        }
        self.outcomes = dict(outcomes)
        self.shape = shape
        self.unknown_templates = frozenset(unknown_templates)
        self.senders = senders
        #: Every send request body received (accepted or not), in arrival order.
        self.requests: list[dict[str, Any]] = []
        #: Every webhook body posted (duplicates included), as sent, with its signature.
        self.posted: list[tuple[bytes, str]] = []
        self._lock = threading.Condition()
        self._errors = random.Random(seed)
        self._seq = itertools.count()
        self._heap: list[_Pending] = []
        self._sending = 0
        self._stats: dict[str, Any] = {
            "messages": 0,
            "requests": 0,
            "unauthorized": 0,
            "rejected": 0,
            "injected_429": 0,
            "outcomes": {},
            "templates": {},
            "posts": 0,
            "post_failures": 0,
            "events_posted": 0,
            "last_post_error": "",
        }
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
            raise RuntimeError("the fake is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to put in `provider_options.api_base_url`."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> FakeWhatsApp:
        """Listen and start posting webhooks; returns self."""
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        if self._client is None:
            self._client = httpx.Client(timeout=5.0)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(_POLL,), name="fake-wa-http", daemon=True),
            *(
                threading.Thread(target=self._send_loop, name=f"fake-wa-hooks-{i}", daemon=True)
                for i in range(self.senders)
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and posting (webhooks not yet posted are dropped)."""
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

    def __enter__(self) -> FakeWhatsApp:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every webhook scheduled so far was taken by Herald; False if that took longer than `timeout`."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._heap and not self._sending, timeout)

    def stats(self) -> dict[str, Any]:
        """What the fake saw and sent (the `GET /stats` document).

        `messages` (sends accepted), `requests` (sends received), `unauthorized`, `rejected` (Graph errors other
        than injected rate limits), `injected_429`, `outcomes` (Herald's message id, from
        `biz_opaque_callback_data` -> `status` (a key of OUTCOMES), `wamid`, `to`, `statuses` (the status webhooks
        of its story, in order) and `error_code` when failed),
        `templates` (message id -> template name), `posts`, `post_failures`, `events_posted`, `last_post_error`,
        `pending_events`.
        """
        with self._lock:
            snapshot = json.loads(json.dumps(self._stats))
            snapshot["pending_events"] = len(self._heap) + self._sending
            return dict(snapshot)

    # --- sends -----------------------------------------------------------------------------------------------------

    def _send(self, path: str, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        with self._lock:
            self._stats["requests"] += 1
            self.requests.append(body if isinstance(body, dict) else {"raw": body})
        if self._token is not None and headers.get("authorization") != f"Bearer {self._token}":
            with self._lock:
                self._stats["unauthorized"] += 1
            raise graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        match = _PATH.fullmatch(path)
        if match is None or match.group(2) != self.phone_number_id:
            raise graph_error(400, 100, f"Unsupported post request. Object with ID '{path}' does not exist")
        with self._lock:
            if self._errors.random() < self.settings["error_rate_429"]:
                self._stats["injected_429"] += 1
                raise graph_error(400, 130429, "(#130429) Rate limit hit", "Cloud API message throughput reached")
        request = self._check(body)
        template = request["template"]["name"]
        if template in self.unknown_templates:
            with self._lock:
                self._stats["rejected"] += 1
            raise graph_error(
                404, 132001, "(#132001) Template name does not exist in the translation", f"template {template}"
            )
        with self._lock:
            self._stats["messages"] += 1
            wamid = f"wamid.FAKE{self._stats['messages']:010d}{self.seed:04d}"
            self._story(request, wamid)
        digits = request["to"].lstrip("+")
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": request["to"], "wa_id": digits}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        }

    def _check(self, body: Any) -> dict[str, Any]:
        def bad(details: str) -> _Reply:
            with self._lock:
                self._stats["rejected"] += 1
            return graph_error(400, 131008, "(#131008) Required parameter is missing", details)

        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise bad("messaging_product must be whatsapp")
        if body.get("type") != "template" or not isinstance(body.get("template"), dict):
            raise bad("type must be template, with a template object")
        to = body.get("to")
        if not isinstance(to, str) or not re.fullmatch(r"\+?[0-9]{6,15}", to):
            raise bad("to must be a phone number")
        template = body["template"]
        language = template.get("language")
        if not isinstance(template.get("name"), str) or not isinstance(language, dict) or not language.get("code"):
            raise bad("template.name and template.language.code are required")
        for component in template.get("components", []):
            for parameter in component.get("parameters", []):
                if parameter.get("type") == "text" and not str(parameter.get("text", "")).strip():
                    raise bad("text parameters must not be empty")
        return body

    def _story(self, request: dict[str, Any], wamid: str) -> None:
        """Schedule a message's webhooks (lock held)."""
        tracker = str(request.get("biz_opaque_callback_data", ""))
        rng = random.Random(f"{self.seed}:{tracker or wamid}")
        outcome = rng.choices(list(self.outcomes), weights=list(self.outcomes.values()))[0]
        digits = request["to"].lstrip("+")
        user = {"wa_id": digits, "user_id": f"MX.{zlib.crc32(digits.encode()):018d}", "name": f"User {digits[-4:]}"}
        recorded: dict[str, Any] = {"status": outcome, "wamid": wamid, "to": request["to"]}
        bodies: list[dict[str, Any]] = []
        if outcome == "failed":
            code, title = FAILURES[rng.randrange(len(FAILURES))]
            recorded["error_code"] = str(code)
            if rng.random() < 0.5:
                bodies.append(self._status(rng, wamid, tracker, "sent", user))
            bodies.append(self._status(rng, wamid, tracker, "failed", user, (code, title)))
        else:
            last = {"sent": 1, "delivered": 2}.get(outcome, 3)
            for kind in ("sent", "delivered", "read")[:last]:
                bodies.append(self._status(rng, wamid, tracker, kind, user))
            if outcome in BUTTONS:
                text = BUTTONS[outcome]
                bodies.append(
                    self._inbound(rng, user, {"type": "button", "button": {"payload": text, "text": text}}, wamid)
                )
            elif outcome == "opt_out_text":
                bodies.append(self._inbound(rng, user, {"type": "text", "text": {"body": "STOP"}}, None))
            elif outcome == "chatter":
                bodies.append(self._inbound(rng, user, {"type": "text", "text": {"body": "Gracias"}}, wamid))
        recorded["statuses"] = [
            body["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
            for body in bodies
            if "statuses" in body["entry"][0]["changes"][0]["value"]
        ]
        self._stats["outcomes"][tracker or wamid] = recorded
        self._stats["templates"][tracker or wamid] = request["template"]["name"]
        self._schedule(rng, bodies)

    def _shape(self, rng: random.Random) -> str:
        return self.shape if self.shape != "mixed" else rng.choice(("current", "older"))

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": self.phone_number_id},
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
        }

    def _contacts(self, user: Mapping[str, str], current: bool) -> list[dict[str, Any]]:
        contact: dict[str, Any] = {"profile": {"name": user["name"]}, "wa_id": user["wa_id"]}
        if current:
            contact["user_id"] = user["user_id"]
        return [contact]

    def _status(
        self,
        rng: random.Random,
        wamid: str,
        tracker: str,
        kind: str,
        user: Mapping[str, str],
        error: tuple[int, str] | None = None,
    ) -> dict[str, Any]:
        current = self._shape(rng) == "current"
        status: dict[str, Any] = {"id": wamid, "status": kind, "timestamp": "", "recipient_id": user["wa_id"]}
        if tracker:
            status["biz_opaque_callback_data"] = tracker
        if current:
            status["recipient_user_id"] = user["user_id"]
        if kind in ("sent", "delivered"):
            status["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}
        if error is not None:
            code, title = error
            status["errors"] = [{"code": code, "title": title, "message": title, "error_data": {"details": title}}]
        value: dict[str, Any] = {"statuses": [status]}
        if current:
            value["contacts"] = self._contacts(user, current)
        return self._envelope(value)

    def _inbound(
        self, rng: random.Random, user: Mapping[str, str], content: dict[str, Any], answers: str | None
    ) -> dict[str, Any]:
        current = self._shape(rng) == "current"
        message: dict[str, Any] = {
            "from": user["wa_id"],
            "id": f"wamid.IN{rng.getrandbits(64):020d}",
            "timestamp": "",
            **content,
        }
        if answers is not None:
            message["context"] = {"from": DISPLAY_NUMBER, "id": answers}
        return self._envelope({"contacts": self._contacts(user, current), "messages": [message]})

    def _schedule(self, rng: random.Random, bodies: list[dict[str, Any]]) -> None:
        """Queue a story: each webhook after a random delay, some twice, some swapped with the next (lock held)."""
        low, high = self.settings["min_delay"], self.settings["max_delay"]
        start_wall, start_mono = time.time(), time.monotonic()
        offsets = list(itertools.accumulate(rng.uniform(low, high) for _ in bodies))
        for body, offset in zip(bodies, offsets, strict=True):
            value = body["entry"][0]["changes"][0]["value"]
            for item in value.get("statuses", []) + value.get("messages", []):
                item["timestamp"] = str(int(start_wall + offset))
        due = list(offsets)
        for index in range(len(due) - 1):
            if rng.random() < self.settings["reorder_rate"]:
                due[index], due[index + 1] = due[index + 1], due[index]
        for index, body in enumerate(bodies):
            copies = 2 if rng.random() < self.settings["duplicate_rate"] else 1
            for copy in range(copies):
                delay = due[index] + (rng.uniform(low, high) if copy else 0.0)
                heapq.heappush(self._heap, _Pending(start_mono + delay, next(self._seq), body))
        self._lock.notify_all()

    # --- webhooks out ----------------------------------------------------------------------------------------------

    def _take(self) -> _Pending | None:
        with self._lock:
            while not self._stopping.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._sending += 1
                    return heapq.heappop(self._heap)
                self._lock.wait(self._heap[0].due - now if self._heap else None)
            return None

    def _send_loop(self) -> None:
        while True:
            pending = self._take()
            if pending is None:
                return
            body = json.dumps(pending.body, separators=(",", ":")).encode()
            posted = self.post_signed(body)
            with self._lock:
                if posted:
                    self._stats["events_posted"] += 1
                self._sending -= 1
                self._lock.notify_all()

    def post_signed(self, body: bytes) -> bool:
        """Post one webhook body, signed, until Herald takes it (2xx) or the fake stops; False if it stopped first."""
        assert self._client is not None
        signature = sign(self._secret, body)
        with self._lock:
            self.posted.append((body, signature))
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        backoff = _BACKOFF_FIRST
        while not self._stopping.is_set():
            try:
                response = self._client.post(self.callback_url, content=body, headers=headers)
                error = "" if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
            with self._lock:
                self._stats["posts"] += 1
                if not error:
                    return True
                self._stats["post_failures"] += 1
                self._stats["last_post_error"] = error
            # Meta retries a webhook Herald did not take (down, or the message it answers not recorded yet).
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)
        return False


class _Handler(BaseHTTPRequestHandler):
    owner: FakeWhatsApp
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read /stats instead."""

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """`GET /stats`."""
        if self.path == "/stats":
            self._answer(200, self.owner.stats())
        else:
            self._answer(404, graph_error(404, 100, f"Unknown path {self.path}").body)

    def do_POST(self) -> None:
        """`POST /{version}/{phone_number_id}/messages`."""
        headers = {key.lower(): value for key, value in self.headers.items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw)
            except ValueError:
                raise graph_error(400, 100, "Invalid JSON") from None
            self._answer(200, self.owner._send(self.path, headers, body))
        except _Reply as reply:
            self._answer(reply.status, reply.body)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake Cloud API until SIGTERM or SIGINT; prints `{"port": N}` on stdout once listening."""
    parser = argparse.ArgumentParser(prog="python -m herald.testing.fake_whatsapp", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--callback-url", required=True, help="Herald's /webhooks/whatsapp_cloud URL")
    parser.add_argument("--app-secret", required=True, help="the app secret that signs webhooks, or env:NAME")
    parser.add_argument("--token", help="bearer token every send must carry, or env:NAME")
    parser.add_argument("--phone-number-id", default=PHONE_NUMBER_ID)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-delay", type=float, default=0.0)
    parser.add_argument("--max-delay", type=float, default=0.05)
    parser.add_argument("--duplicate-rate", type=float, default=0.1)
    parser.add_argument("--reorder-rate", type=float, default=0.1)
    parser.add_argument("--error-rate-429", type=float, default=0.0)
    parser.add_argument("--shape", default="mixed", choices=("current", "older", "mixed"))
    parser.add_argument("--unknown-template", action="append", default=[])
    args = parser.parse_args(argv)
    fake = FakeWhatsApp(
        args.callback_url,
        args.app_secret,
        token=args.token,
        phone_number_id=args.phone_number_id,
        port=args.port,
        host=args.host,
        seed=args.seed,
        min_delay=args.min_delay,
        max_delay=args.max_delay,
        duplicate_rate=args.duplicate_rate,
        reorder_rate=args.reorder_rate,
        error_rate_429=args.error_rate_429,
        shape=args.shape,
        unknown_templates=args.unknown_template,
    )
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


if __name__ == "__main__":
    sys.exit(main())
