"""Webhook signatures: X-Herald-Signature = base64(HMAC-SHA256(base64-decoded secret, raw body))."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from herald.providers.http import HttpInbound, sign

SECRET = base64.b64encode(b"\x00\x01secret bytes, not text\xff").decode()
BODY = b'{"events": []}'
INBOUND = HttpInbound()
URL = "https://herald.example.com/webhooks/http"


def expected(secret: str, body: bytes) -> str:
    key = base64.b64decode(secret)
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def test_sign_is_the_documented_hmac() -> None:
    assert sign(SECRET, BODY) == expected(SECRET, BODY)
    assert sign(SECRET, BODY) != sign(SECRET, BODY + b" ")


def test_right_signature() -> None:
    assert INBOUND.verify(BODY, {"X-Herald-Signature": sign(SECRET, BODY)}, URL, {"webhook_secret": SECRET})


def test_header_name_in_any_case() -> None:
    assert INBOUND.verify(BODY, {"x-herald-signature": sign(SECRET, BODY)}, URL, {"webhook_secret": SECRET})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Herald-Signature": ""},
        {"X-Herald-Signature": sign(SECRET, BODY + b"\n")},
        {"X-Herald-Signature": sign(base64.b64encode(b"another secret").decode(), BODY)},
        {"X-Herald-Signature": "sha256=" + sign(SECRET, BODY)},
        {"X-Herald-Signature": "ñ" * 44},
        {"X-Other-Signature": sign(SECRET, BODY)},
    ],
    ids=["missing", "empty", "other body", "other secret", "prefixed", "not ascii", "other header"],
)
def test_wrong_or_missing_signature(headers: dict[str, str]) -> None:
    assert not INBOUND.verify(BODY, headers, URL, {"webhook_secret": SECRET})


@pytest.mark.parametrize("options", [{}, {"webhook_secret": None}, {"webhook_secret": "not base64!"}])
def test_no_usable_secret_verifies_nothing(options: dict[str, object]) -> None:
    assert not INBOUND.verify(BODY, {"X-Herald-Signature": sign(SECRET, BODY)}, URL, options)


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"webhook_secret": "env:HERALD_TEST_WEBHOOK_SECRET"}
    headers = {"X-Herald-Signature": sign(SECRET, BODY)}
    monkeypatch.delenv("HERALD_TEST_WEBHOOK_SECRET", raising=False)
    assert not INBOUND.verify(BODY, headers, URL, options)
    monkeypatch.setenv("HERALD_TEST_WEBHOOK_SECRET", SECRET)
    assert INBOUND.verify(BODY, headers, URL, options)


def test_sign_refuses_a_secret_that_is_not_base64() -> None:
    with pytest.raises(ValueError):
        sign("not base64!", BODY)
