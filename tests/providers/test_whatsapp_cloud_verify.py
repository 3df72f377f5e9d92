"""Webhook signatures (X-Hub-Signature-256 = sha256=hex HMAC-SHA256(app secret, raw body)) and the handshake."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from herald.providers.whatsapp_cloud import WhatsAppCloudInbound, sign

SECRET = "0123456789abcdef0123456789abcdef"
BODY = b'{"object":"whatsapp_business_account","entry":[]}'
INBOUND = WhatsAppCloudInbound()
OPTIONS = {"app_secret": SECRET}


def test_sign_is_the_documented_hmac() -> None:
    assert sign(SECRET, BODY) == "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("name", ["X-Hub-Signature-256", "x-hub-signature-256"])
def test_right_signature_in_any_header_case(name: str) -> None:
    assert INBOUND.verify(BODY, {name: sign(SECRET, BODY)}, "", OPTIONS)
    assert INBOUND.verify(BODY, {name: sign(SECRET, BODY).upper().replace("SHA256=", "sha256=")}, "", OPTIONS)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": sign(SECRET, BODY + b" ")},
        {"X-Hub-Signature-256": sign("another secret", BODY)},
        {"X-Hub-Signature-256": sign(SECRET, BODY)[7:]},
        {"X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()},
        {"X-Hub-Signature-256": "ñ" * 71},
    ],
    ids=["missing", "empty", "other body", "other secret", "no prefix", "sha1 header", "not ascii"],
)
def test_wrong_or_missing_signature(headers: dict[str, str]) -> None:
    assert not INBOUND.verify(BODY, headers, "", OPTIONS)


def test_no_secret_verifies_nothing_and_a_missing_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not INBOUND.verify(BODY, {"X-Hub-Signature-256": sign("", BODY)}, "", {"app_secret": ""})
    monkeypatch.setenv("WA_TEST_SECRET", SECRET)
    assert INBOUND.verify(BODY, {"X-Hub-Signature-256": sign(SECRET, BODY)}, "", {"app_secret": "env:WA_TEST_SECRET"})
    monkeypatch.delenv("WA_TEST_SECRET")
    with pytest.raises(KeyError, match="WA_TEST_SECRET"):
        INBOUND.verify(BODY, {"X-Hub-Signature-256": sign(SECRET, BODY)}, "", {"app_secret": "env:WA_TEST_SECRET"})


def test_handshake_answers_the_challenge_only_for_a_known_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok-1", "hub.challenge": "1158201444"}
    assert INBOUND.challenge(params, ["other", "tok-1"]) == "1158201444"
    assert INBOUND.challenge(params, ["other", ""]) is None
    assert INBOUND.challenge({**params, "hub.mode": "unsubscribe"}, ["tok-1"]) is None
    assert INBOUND.challenge({**params, "hub.verify_token": ""}, [""]) is None


def test_verify_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert INBOUND.verify_token_of({"verify_token": "env:WA_TEST_VERIFY"}) == ""
    monkeypatch.setenv("WA_TEST_VERIFY", "tok-2")
    assert INBOUND.verify_token_of({"verify_token": "env:WA_TEST_VERIFY"}) == "tok-2"
    assert INBOUND.verify_token_of({}) == ""
