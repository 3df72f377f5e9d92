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

import heapq
import json
import random
import re
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from herald.providers.base import resolve_secret
from herald.providers.whatsapp_cloud import SIGNATURE_HEADER, sign
from herald.testing.fakeserver import (
    FakeServer,
    JsonHandler,
    Reply,
    check_delays,
    common,
    jitter,
    offsets,
    parser,
    serve,
)

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


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    body: dict[str, Any] = field(compare=False)


def graph_error(status: int, code: int, message: str, details: str = "") -> Reply:
    """A Graph API error answer."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AFakeTrace"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Reply(status, {"error": error})


class FakeWhatsApp(FakeServer[_Pending]):
    """A Cloud API on a loopback port. `start()` it, point `api_base_url` at `.url`, `stop()` it after.

    `app_secret` (or `env:NAME`) signs the webhooks; `token` (or `env:NAME`), when set, is the bearer token every
    send must carry. `shape` is `current`, `older` or `mixed` (each webhook picks one). Templates named in
    `unknown_templates` are refused with 132001. Delays are in seconds of wall time. `client` posts the webhooks
    (e.g. a Starlette TestClient of Herald's app, with `senders=1`); by default a client of its own.
    """

    name = "fake-wa"

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
        check_delays(min_delay, max_delay)
        if shape not in ("current", "older", "mixed"):
            raise ValueError("shape must be current, older or mixed")
        super().__init__(host=host, port=port, seed=seed, senders=senders, client=client)
        self.callback_url = callback_url
        self._secret = resolve_secret(app_secret)
        self._token = resolve_secret(token) if token else None
        self.phone_number_id = phone_number_id
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
        #: Every send request body received (accepted or not), in arrival order.
        self.requests: list[dict[str, Any]] = []
        #: Every webhook body posted (duplicates included), as sent, with its signature.
        self.posted: list[tuple[bytes, str]] = []
        self._stats = {
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

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every webhook scheduled so far was taken by Herald; False if that took longer than `timeout`."""
        return super().drain(timeout)

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
            return self._snapshot()

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
        self._inject(graph_error(400, 130429, "(#130429) Rate limit hit", "Cloud API message throughput reached"))
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
        def bad(details: str) -> Reply:
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
        times = offsets(rng, len(bodies), low, high)
        for body, offset in zip(bodies, times, strict=True):
            value = body["entry"][0]["changes"][0]["value"]
            for item in value.get("statuses", []) + value.get("messages", []):
                item["timestamp"] = str(int(start_wall + offset))
        copies = jitter(rng, times, self.settings["reorder_rate"], self.settings["duplicate_rate"], low, high)
        for body, delays in zip(bodies, copies, strict=True):
            for delay in delays:
                heapq.heappush(self._heap, _Pending(start_mono + delay, next(self._seq), body))
        self._lock.notify_all()

    # --- webhooks out ----------------------------------------------------------------------------------------------

    def _post_batch(self, batch: list[_Pending]) -> None:
        (pending,) = batch
        if self.post_signed(json.dumps(pending.body, separators=(",", ":")).encode()):
            with self._lock:
                self._stats["events_posted"] += 1

    def post_signed(self, body: bytes) -> bool:
        """Post one webhook body, signed, until Herald takes it (2xx) or the fake stops; False if it stopped first."""
        assert self._client is not None
        signature = sign(self._secret, body)
        with self._lock:
            self.posted.append((body, signature))
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
        # Meta retries a webhook Herald did not take (down, or the message it answers not recorded yet).
        return self._deliver(self.callback_url, body, headers)


class _Handler(JsonHandler):
    owner: FakeWhatsApp

    def do_GET(self) -> None:
        """`GET /stats`."""
        if self.path == "/stats":
            self._answer(200, self.owner.stats())
        else:
            self._answer(404, graph_error(404, 100, f"Unknown path {self.path}").body)

    def do_POST(self) -> None:
        """`POST /{version}/{phone_number_id}/messages`."""
        headers = self._headers()
        raw = self._raw()
        try:
            try:
                body = json.loads(raw)
            except ValueError:
                raise graph_error(400, 100, "Invalid JSON") from None
            self._answer(200, self.owner._send(self.path, headers, body))
        except Reply as reply:
            self._answer(reply.status, reply.body)


FakeWhatsApp.handler = _Handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake Cloud API until SIGTERM or SIGINT; prints `{"port": N}` on stdout once listening."""
    arguments = parser("fake_whatsapp", __doc__, error_500=False)
    arguments.add_argument("--callback-url", required=True, help="Herald's /webhooks/whatsapp_cloud URL")
    arguments.add_argument("--app-secret", required=True, help="the app secret that signs webhooks, or env:NAME")
    arguments.add_argument("--token", help="bearer token every send must carry, or env:NAME")
    arguments.add_argument("--phone-number-id", default=PHONE_NUMBER_ID)
    arguments.add_argument("--shape", default="mixed", choices=("current", "older", "mixed"))
    arguments.add_argument("--unknown-template", action="append", default=[])
    args = arguments.parse_args(argv)
    fake = FakeWhatsApp(
        args.callback_url,
        args.app_secret,
        token=args.token,
        phone_number_id=args.phone_number_id,
        **common(args),
        shape=args.shape,
        unknown_templates=args.unknown_template,
    )
    return serve(fake)


if __name__ == "__main__":
    sys.exit(main())
