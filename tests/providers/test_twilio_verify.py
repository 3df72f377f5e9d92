"""`X-Twilio-Signature`: every callback the fake Twilio sends validates with the official RequestValidator, and
Herald's verify agrees with it, for HMAC-SHA1 (auth token) and HMAC-SHA256 (a Webhooks Rule's shared key)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from herald.providers.twilio import TwilioInbound, TwilioOutbound, signature
from herald.testing.fake_twilio import FakeTwilio

from .twilio_support import ACCOUNT, NOW, TOKEN, options, request

SHARED_KEY = "webhooks-shared-key-secret-0123456789"


class Receiver:
    """Herald's webhook endpoint reduced to recording what arrives: full URL, headers, raw body."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                host = self.headers["Host"]
                receiver.received.append((f"http://{host}{self.path}", dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    monkeypatch.setenv("HERALD_PUBLIC_URL", running.url)
    yield running
    running.server.shutdown()
    running.server.server_close()


def callbacks_of_a_few_calls(receiver: Receiver, **fake_options: Any) -> list[tuple[str, dict[str, str], bytes]]:
    with FakeTwilio(ACCOUNT, TOKEN, seed=5, duplicate_rate=0.3, reorder_rate=0.3, **fake_options) as fake:
        with TwilioOutbound(options(fake.url, record=True)) as outbound:
            results = outbound.start_calls([request(f"cll_{index:04d}") for index in range(12)], NOW)
        assert all(result.ok for result in results)
        assert fake.drain()
        assert len(receiver.received) == fake.stats()["callbacks_posted"] >= 12 * 2
    return receiver.received


def test_the_official_validator_and_herald_accept_every_sha1_callback(receiver: Receiver) -> None:
    inbound, validator = TwilioInbound(), RequestValidator(TOKEN)
    for url, headers, body in callbacks_of_a_few_calls(receiver):
        params = dict(parse_qsl(body.decode()))
        assert validator.validate(url, params, headers["X-Twilio-Signature"]), url
        assert inbound.verify(body, headers, url, {"auth_token": TOKEN})
        assert not inbound.verify(body, headers, url, {"auth_token": TOKEN + "x"})
        (event,) = inbound.parse(body, headers, url)
        assert event.attempt_id.startswith("cll_") and event.external_id == params["CallSid"]


def test_the_official_validator_and_herald_accept_every_sha256_callback(receiver: Receiver) -> None:
    inbound, validator = TwilioInbound(), RequestValidator(SHARED_KEY)
    for url, headers, body in callbacks_of_a_few_calls(receiver, shared_key=SHARED_KEY):
        params = dict(parse_qsl(body.decode()))
        assert "algorithm=HMAC_SHA256" in headers["X-Twilio-Webhooks-Signature-Settings"]
        assert validator.validate(url, params, headers["X-Twilio-Signature"], algorithm="HMAC_SHA256")
        assert inbound.verify(body, headers, url, {"auth_token": TOKEN, "webhook_shared_key": SHARED_KEY})
        # The auth token does not sign these, and a campaign without the shared key cannot verify them.
        assert not inbound.verify(body, headers, url, {"auth_token": TOKEN})


def test_tampering_with_the_url_the_body_or_the_header_fails() -> None:
    inbound = TwilioInbound()
    url = "https://herald.example/webhooks/twilio?call_id=cll_1"
    params = [
        ("CallSid", "CA" + "1" * 32),
        ("CallStatus", "completed"),
        ("Timestamp", "Mon, 05 Jan 2026 15:00:00 +0000"),
    ]
    body = urlencode(params).encode()
    good = {"X-Twilio-Signature": signature(TOKEN, url, params)}
    assert inbound.verify(body, good, url, {"auth_token": TOKEN})
    assert not inbound.verify(body, {}, url, {"auth_token": TOKEN})
    assert not inbound.verify(body, good, url.replace("cll_1", "cll_2"), {"auth_token": TOKEN})
    assert not inbound.verify(body.replace(b"completed", b"busy"), good, url, {"auth_token": TOKEN})
    unknown = {**good, "X-Twilio-Webhooks-Signature-Settings": "key=k,algorithm=HMAC_MD5"}
    assert not inbound.verify(body, unknown, url, {"auth_token": TOKEN, "webhook_shared_key": TOKEN})
    # Received on an address that is neither the signed one nor HERALD_PUBLIC_URL: refused.
    elsewhere = url.replace("https://herald.example", "http://10.0.0.5:8000")
    assert not inbound.verify(body, good, elsewhere, {"auth_token": TOKEN})


def test_behind_a_proxy_the_public_url_is_what_twilio_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://herald.example")
    inbound = TwilioInbound()
    params = [("CallSid", "CA" + "1" * 32), ("CallStatus", "ringing")]
    signed = signature(TOKEN, "https://herald.example/webhooks/twilio?call_id=cll_1", params)
    received = "http://10.0.0.5:8000/webhooks/twilio?call_id=cll_1"
    assert inbound.verify(urlencode(params).encode(), {"x-twilio-signature": signed}, received, {"auth_token": TOKEN})
    # Published under a path prefix: Twilio signed the prefixed address.
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://example.org/herald/")
    signed = signature(TOKEN, "https://example.org/herald/webhooks/twilio?call_id=cll_1", params)
    assert inbound.verify(urlencode(params).encode(), {"x-twilio-signature": signed}, received, {"auth_token": TOKEN})


def test_a_missing_token_variable_is_named_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_NOT_SET", raising=False)
    with pytest.raises(KeyError, match="TW_NOT_SET"):
        TwilioInbound().verify(b"a=b", {"X-Twilio-Signature": "x"}, "http://h/", {"auth_token": "env:TW_NOT_SET"})


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)


@given(
    params=st.lists(st.tuples(names, st.text(max_size=20)), max_size=8, unique_by=lambda pair: pair[0]),
    query=st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=12),
    sha256=st.booleans(),
)
def test_herald_signs_exactly_like_the_official_validator(
    params: list[tuple[str, str]], query: str, sha256: bool
) -> None:
    url = f"https://herald.example/webhooks/twilio?call_id={query}"
    algorithm = "HMAC_SHA256" if sha256 else "HMAC_SHA1"
    ours = signature(TOKEN, url, params, algorithm)
    assert ours == RequestValidator(TOKEN).compute_signature(url, dict(params), algorithm)
    headers = {"X-Twilio-Signature": ours}
    secrets = {"auth_token": TOKEN}
    if sha256:
        headers["X-Twilio-Webhooks-Signature-Settings"] = "key=k1,algorithm=HMAC_SHA256"
        secrets["webhook_shared_key"] = TOKEN
    assert TwilioInbound().verify(urlencode(params).encode(), headers, url, secrets)
