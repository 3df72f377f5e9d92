"""A fake Twilio Voice account on 127.0.0.1, for tests: the Calls API, signed status callbacks, recordings.

`POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (form-encoded, Basic auth) answers 201 with a Call resource shaped
like Twilio's, or Twilio's error document (`code`, `message`, `more_info`, `status`) for a bad request, wrong
credentials, or an injected 429/500. Each call then lives a story decided by a seeded RNG from Herald's id (the
`call_id` of its StatusCallback URL): status callbacks (`queued`, `ringing`, `in-progress`, then `completed`, `busy`,
`no-answer`, `failed` or `canceled`) are posted form-encoded to the StatusCallback URL, signed with
`X-Twilio-Signature`, after random delays, some twice and some out of order. An answered call that was asked to
record has a recording at `GET /2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}`, behind Basic auth.

`GET /stats` says what it saw: start times (its own wall clock), placements, outcomes, in-flight peaks, every
callback it posted (for a signature oracle).

    python -m herald.testing.fake_twilio --port 0 --account-sid AC… --auth-token TOKEN

prints `{"port": N}` once listening and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import base64
import heapq
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from herald.providers.twilio import SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER, signature
from herald.testing.fakeserver import (
    FakeServer,
    JsonHandler,
    Reply,
    check_delays,
    common,
    jitter,
    offsets,
    parser,
    pick,
    serve,
)

#: Outcome weights: an answered call ends `completed` with its AnsweredBy; the others are never answered.
OUTCOMES: Mapping[str, float] = {
    "human": 0.5,
    "machine_end_beep": 0.1,
    "machine_start": 0.05,
    "fax": 0.02,
    "unknown": 0.05,
    "no-answer": 0.12,
    "busy": 0.06,
    "failed": 0.05,
    "canceled": 0.05,
}
#: A recording served for every recorded call: a short silent WAV (8 kHz, 8-bit mono).
RECORDING = (
    b"RIFF" + (36 + 800).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + bytes([1, 0, 1, 0]) + (8000).to_bytes(4, "little") + (8000).to_bytes(4, "little") + bytes([1, 0, 8, 0])
    + b"data" + (800).to_bytes(4, "little") + b"\x80" * 800
)  # fmt: skip
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _rfc2822(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC), usegmt=False)


@dataclass(order=True)
class _Pending:
    """A callback waiting for its time to be posted."""

    due: float
    seq: int
    url: str = field(compare=False)
    params: list[tuple[str, str]] = field(compare=False)
    ends: str | None = field(default=None, compare=False)


def _error(status: int, code: int, message: str) -> Reply:
    return Reply(
        status,
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )


class FakeTwilio(FakeServer[_Pending]):
    """One Twilio account on a loopback port. `start()` it, point `api_base_url` at `.url`, `stop()` it after.

    `shared_key`, when set, signs callbacks with HMAC-SHA256 under that key and names it in
    `X-Twilio-Webhooks-Signature-Settings` (a Webhooks Rule), instead of HMAC-SHA1 under the auth token.
    `callback_url`, when set, replaces the scheme and host of every StatusCallback (Herald behind another address).
    """

    name = "fake-twilio"
    pending_key = "pending_callbacks"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
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
        response_delay: float = 0.0,
        outcomes: Mapping[str, float] = OUTCOMES,
        shared_key: str | None = None,
        senders: int = 4,
        keep_posts: bool = True,
    ) -> None:
        check_delays(min_delay, max_delay)
        super().__init__(host=host, port=port, seed=seed, senders=senders)
        self.account_sid, self._token = account_sid, auth_token
        self.settings = {
            "min_delay": min_delay,
            "max_delay": max_delay,
            "duplicate_rate": duplicate_rate,
            "reorder_rate": reorder_rate,
            "error_rate_429": error_rate_429,
            "error_rate_500": error_rate_500,
            # Seconds a create waits before it answers (the call exists already): a client's timeout loses the answer.
            "response_delay": response_delay,
        }
        self.weights = dict(outcomes)
        self.shared_key = shared_key
        self.keep_posts = keep_posts
        self._calls: dict[str, dict[str, Any]] = {}
        self._recordings: set[str] = set()
        self._in_flight: dict[str, str] = {}
        self._numbers: Counter[str] = Counter()
        self._stats = {
            "placements": 0,
            "start_times": [],
            "requests": [],
            "max_in_flight": 0,
            "overlapping_numbers": [],
            "outcomes": {},
            "injected_429": 0,
            "injected_500": 0,
            "rejected": 0,
            "unauthorized": 0,
            "callbacks_posted": 0,
            "posts": [],
            "post_failures": 0,
            "last_post_error": "",
            "recordings_served": 0,
        }

    def stats(self) -> dict[str, Any]:
        """What it saw and sent (the `GET /stats` document): `placements`, `start_times` (seconds since the epoch
        at each accepted create, its own clock), `requests` (each create's form as pairs), `outcomes` (Herald's call
        id → `status` and `answered_by` in SPEC terms), `max_in_flight`, `overlapping_numbers`, `posts` (each
        callback posted: url, params, headers), `pending_callbacks`, injected errors and rejections."""
        with self._lock:
            snapshot = self._snapshot()
            snapshot["in_flight"] = len(self._in_flight)
            return snapshot

    # --- the Calls API ---------------------------------------------------------------------------------------------

    def _authorize(self, header: str | None) -> None:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self._token}".encode()).decode()
        if header != expected:
            with self._lock:
                self._stats["unauthorized"] += 1
            raise _error(401, 20003, "Authenticate")

    def _inject_errors(self) -> None:
        self._inject(_error(429, 20429, "Too Many Requests"), _error(500, 20500, "Internal Server Error"))

    def create_call(self, account: str, header: str | None, form: list[tuple[str, str]]) -> dict[str, Any]:
        """`POST Calls.json`: the Call resource of a new call, or a Reply with Twilio's error document."""
        if account != self.account_sid:
            raise _error(404, 20404, f"The requested resource /2010-04-01/Accounts/{account}/Calls.json was not found")
        self._authorize(header)
        self._inject_errors()
        fields = dict(form)
        to, sender = fields.get("To", ""), fields.get("From", "")
        if not to:
            raise _error(400, 21201, "No 'To' number is specified")
        if not _E164.fullmatch(to):
            raise _error(400, 21211, f"Invalid 'To' Phone Number: {to[:30]}")
        if not _E164.fullmatch(sender):
            raise _error(400, 21212, f"Invalid 'From' Phone Number: {sender[:30]}")
        if sum(1 for name in ("Url", "Twiml", "ApplicationSid") if fields.get(name)) != 1:
            raise _error(400, 21205, "Exactly one of Url, Twiml or ApplicationSid is required")
        callback = fields.get("StatusCallback", "")
        call_id = dict(parse_qsl(urlsplit(callback).query)).get("call_id", "")
        now = datetime.now(UTC)
        with self._lock:
            self._stats["placements"] += 1
            self._stats["start_times"].append(time.time())
            self._stats["requests"].append(form)
            sid = f"CA{len(self._calls) + 1:032x}"
            self._calls[sid] = {"to": to}
            resource = self._resource(sid, to, sender, now)
            key = call_id or sid
            self._in_flight[key] = to
            if self._numbers[to] and to not in self._stats["overlapping_numbers"]:
                self._stats["overlapping_numbers"].append(to)
            self._numbers[to] += 1
            self._stats["max_in_flight"] = max(self._stats["max_in_flight"], len(self._in_flight))
            if callback:
                self._story(sid, key, callback, fields, now)
        return resource

    def _resource(self, sid: str, to: str, sender: str, now: datetime) -> dict[str, Any]:
        base = f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}"
        stamp = _rfc2822(now)
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": None, "api_version": "2010-04-01",
            "caller_name": None, "date_created": stamp, "date_updated": stamp, "direction": "outbound-api",
            "duration": None, "end_time": None, "forwarded_from": None, "from": sender, "from_formatted": sender,
            "group_sid": None, "parent_call_sid": None, "phone_number_sid": "PN" + "0" * 32, "price": None,
            "price_unit": "USD", "queue_time": "0", "sid": sid, "start_time": None, "status": "queued",
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json", "recordings": f"{base}/Recordings.json",
                "payments": f"{base}/Payments.json", "events": f"{base}/Events.json",
                "siprec": f"{base}/Siprec.json", "streams": f"{base}/Streams.json",
                "user_defined_message_subscriptions": f"{base}/UserDefinedMessageSubscriptions.json",
                "user_defined_messages": f"{base}/UserDefinedMessages.json",
                "transcriptions": f"{base}/Transcriptions.json",
            },
            "to": to, "to_formatted": to, "trunk_sid": None, "uri": f"{base}.json",
        }  # fmt: skip

    def _story(self, sid: str, key: str, callback: str, fields: Mapping[str, str], now: datetime) -> None:
        """Queue a call's callbacks: each after a random delay, some twice, some swapped with the next one."""
        rng = random.Random(f"{self.seed}:call:{key}")
        outcome = pick(rng, self.weights)
        amd = bool(fields.get("MachineDetection"))
        answered = outcome not in ("no-answer", "busy", "failed", "canceled")
        steps: list[tuple[str, dict[str, str]]] = [("queued", {})]
        if outcome == "busy":
            steps.append(("busy", {}))
        elif outcome == "failed":
            steps.append(("failed", {"ErrorCode": "32009", "ErrorMessage": "Carrier refused the call"}))
        elif outcome in ("no-answer", "canceled"):
            steps += [("ringing", {}), (outcome, {})]
        else:
            by = {"AnsweredBy": outcome} if amd else {}
            steps += [("ringing", {}), ("in-progress", by), ("completed", dict(by))]
        low, high = self.settings["min_delay"], self.settings["max_delay"]
        times = offsets(rng, len(steps), low, high)
        # Twilio's Timestamp has whole seconds; CallDuration is what they say of the answered part.
        stamps = [(now + timedelta(seconds=offset)).replace(microsecond=0) for offset in times]
        talk = int((stamps[-1] - stamps[-2]).total_seconds()) if answered else 0
        common = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": sid, "Direction": "outbound-api",
            "From": fields.get("From", ""), "Caller": fields.get("From", ""), "To": fields.get("To", ""),
            "Called": fields.get("To", ""), "CallbackSource": "call-progress-events",
        }  # fmt: skip
        stories: list[list[tuple[str, str]]] = []
        for index, ((status, extra), at) in enumerate(zip(steps, stamps, strict=True)):
            params = {**common, "CallStatus": status, "Timestamp": _rfc2822(at), "SequenceNumber": str(index), **extra}
            if status == "completed":
                params["CallDuration"] = params["Duration"] = str(talk)
                if fields.get("Record") == "true" and not fields.get("RecordingStatusCallback"):
                    params.update(self._recording_params(talk))
            elif status in ("busy", "no-answer", "failed", "canceled"):
                params["CallDuration"] = params["Duration"] = "0"
            stories.append(sorted(params.items()))
        urls = [callback] * len(stories)
        if answered and fields.get("Record") == "true" and fields.get("RecordingStatusCallback"):
            # The recording is announced in its own callback, after the call's end.
            recorded = {**common, **self._recording_params(talk), "RecordingStatus": "completed",
                        "RecordingStartTime": _rfc2822(stamps[-2]), "RecordingSource": "OutboundAPI"}  # fmt: skip
            for name in ("Direction", "From", "Caller", "To", "Called", "CallbackSource"):
                recorded.pop(name, None)
            stories.append(sorted(recorded.items()))
            urls.append(fields["RecordingStatusCallback"])
            times.append(times[-1] + rng.uniform(low, high))
        copies = jitter(rng, times, self.settings["reorder_rate"], self.settings["duplicate_rate"], low, high)
        start = time.monotonic()
        last = len(steps) - 1  # the call's end (a recording callback may follow it)
        for index, (story, delays) in enumerate(zip(stories, copies, strict=True)):
            for delay in delays:
                pending = _Pending(start + delay, next(self._seq), urls[index], story, key if index == last else None)
                heapq.heappush(self._heap, pending)
        self._stats["outcomes"][key] = {
            "status": {"completed": "ended", "canceled": "failed"}.get(steps[-1][0], steps[-1][0]),
            "answered_by": _answered_by(outcome, amd) if answered else "",
            "duration": talk,
        }
        self._lock.notify_all()

    def _recording_params(self, talk: int) -> dict[str, str]:
        recording = f"RE{len(self._recordings) + 1:032x}"
        self._recordings.add(recording)
        return {
            "RecordingSid": recording,
            "RecordingUrl": f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording}",
            "RecordingDuration": str(talk),
        }

    def recording(self, account: str, header: str | None, recording: str) -> bytes:
        """`GET …/Recordings/{sid}` (with or without `.wav`): the audio, behind Basic auth."""
        self._authorize(header)
        sid = recording.removesuffix(".wav")
        if account != self.account_sid or sid not in self._recordings:
            raise _error(404, 20404, "The requested resource was not found")
        with self._lock:
            self._stats["recordings_served"] += 1
        return RECORDING

    # --- callbacks out ---------------------------------------------------------------------------------------------

    def _taking(self, pending: _Pending) -> None:
        if pending.ends is not None and pending.ends in self._in_flight:
            # Ended before Herald can hear of it and start another call to the number.
            self._numbers[self._in_flight.pop(pending.ends)] -= 1

    def headers_for(self, url: str, params: Sequence[tuple[str, str]]) -> dict[str, str]:
        """The signature headers Twilio sends with a callback."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.shared_key is None:
            headers[SIGNATURE_HEADER] = signature(self._token, url, params)
        else:
            headers[SIGNATURE_HEADER] = signature(self.shared_key, url, params, "HMAC_SHA256")
            headers[SIGNATURE_SETTINGS_HEADER] = "key=webhooks_sharedkey_fake,algorithm=HMAC_SHA256"
        return headers

    def _count_attempt(self) -> None:
        """Twilio's `posts` lists the callbacks taken, not the attempts."""

    def _post_batch(self, batch: list[_Pending]) -> None:
        """Post one callback until Herald takes it (2xx) or the fake stops."""
        (pending,) = batch
        headers = self.headers_for(pending.url, pending.params)
        if self._deliver(pending.url, urlencode(pending.params), headers):
            with self._lock:
                self._stats["callbacks_posted"] += 1
                if self.keep_posts:
                    self._stats["posts"].append({"url": pending.url, "params": pending.params, "headers": headers})


def _answered_by(outcome: str, amd: bool) -> str:
    """What Herald must record for an answered call (SPEC terms)."""
    if not amd:
        return "unknown"
    return {"human": "human", "unknown": "unknown"}.get(outcome, "machine")


class _Handler(JsonHandler):
    owner: FakeTwilio

    def _route(self) -> list[str]:
        return urlsplit(self.path).path.strip("/").split("/")

    def do_GET(self) -> None:
        """`GET /stats`, `GET /2010-04-01/Accounts/{sid}/Recordings/{RecordingSid}`."""
        parts = self._route()
        try:
            if parts == ["stats"]:
                self._answer(200, self.owner.stats())
            elif len(parts) == 5 and parts[:2] == ["2010-04-01", "Accounts"] and parts[3] == "Recordings":
                audio = self.owner.recording(parts[2], self.headers.get("Authorization"), parts[4])
                self._answer(200, audio, "audio/x-wav")
            else:
                raise _error(404, 20404, "The requested resource was not found")
        except Reply as reply:
            self._answer(reply.status, reply.body, reply.content_type)

    def do_POST(self) -> None:
        """`POST /2010-04-01/Accounts/{sid}/Calls.json`."""
        raw = self._raw()
        parts = self._route()
        try:
            if len(parts) != 4 or parts[:2] != ["2010-04-01", "Accounts"] or parts[3] != "Calls.json":
                raise _error(404, 20404, "The requested resource was not found")
            try:
                form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
            except (UnicodeDecodeError, ValueError):
                raise _error(400, 20001, "Bad request body") from None
            resource = self.owner.create_call(parts[2], self.headers.get("Authorization"), form)
            if self.owner.settings["response_delay"]:
                time.sleep(self.owner.settings["response_delay"])
            self._answer(201, resource)
        except Reply as reply:
            if 400 <= reply.status < 500 and reply.status not in (401, 429):
                with self.owner._lock:
                    self.owner._stats["rejected"] += 1
            self._answer(reply.status, reply.body, reply.content_type)


FakeTwilio.handler = _Handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run a fake Twilio until SIGTERM or SIGINT; prints `{"port": N}` on stdout once listening."""
    arguments = parser("fake_twilio", __doc__)
    arguments.add_argument("--account-sid", required=True)
    arguments.add_argument("--auth-token", required=True)
    arguments.add_argument("--shared-key", help="sign callbacks with HMAC-SHA256 under this key")
    arguments.add_argument("--response-delay", type=float, default=0.0, help="seconds before a create answers")
    arguments.add_argument("--keep-posts", action="store_true", help="list every callback in /stats")
    args = arguments.parse_args(argv)
    fake = FakeTwilio(
        args.account_sid,
        args.auth_token,
        **common(args),
        response_delay=args.response_delay,
        shared_key=args.shared_key,
        keep_posts=args.keep_posts,
    )
    return serve(fake)


if __name__ == "__main__":
    sys.exit(main())
