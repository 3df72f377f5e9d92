"""The delivery state machine and the signature, as pure functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.outbox import payloads
from herald.outbox.schedule import BACKOFF, MAX_ATTEMPTS, after_attempt, succeeded
from herald.outbox.signing import SecretError, secret_key, sign
from herald.outbox.store import EndpointError, check_endpoint

from ..conftest import START


def test_the_backoff_is_one_two_four_eight_minutes() -> None:
    assert tuple(timedelta(minutes=m) for m in (1, 2, 4, 8)) == BACKOFF and MAX_ATTEMPTS == 5


@given(st.lists(st.booleans(), min_size=1, max_size=MAX_ATTEMPTS))
def test_outcomes_decide_status_attempts_and_next_attempt(outcomes: list[bool]) -> None:
    now, attempts, status, next_at = START, 0, "pending", None
    for ok in outcomes:
        if status != "pending":
            break
        after = after_attempt(attempts, ok, now)
        assert after.attempts == attempts + 1
        attempts, status, next_at = after.attempts, after.status, after.next_attempt_at
        if status == "pending":
            assert next_at == now + BACKOFF[attempts - 1]
            now = next_at
    first_ok = outcomes.index(True) if True in outcomes else None
    if first_ok is not None:
        assert (status, attempts, next_at) == ("delivered", first_ok + 1, None)
    elif len(outcomes) == MAX_ATTEMPTS:
        assert (status, attempts, next_at) == ("failed", MAX_ATTEMPTS, None)
    else:
        assert status == "pending" and attempts == len(outcomes)
        assert next_at == START + sum(BACKOFF[:attempts], timedelta(0))


def test_no_sixth_attempt() -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        after_attempt(MAX_ATTEMPTS, True, START)


@given(st.one_of(st.none(), st.integers(100, 599)))
def test_only_2xx_is_a_receipt(code: int | None) -> None:
    assert succeeded(code) == (code is not None and 200 <= code <= 299)


@given(st.binary(min_size=1, max_size=64), st.text(max_size=200))
def test_the_signature_is_hmac_sha256_of_the_body_under_the_decoded_secret(key: bytes, text: str) -> None:
    secret = base64.b64encode(key).decode()
    body = payloads.encode({"name": text}).encode()
    assert body.isascii()  # escaped: the bytes are the same whichever way a receiver serialises the parsed body
    assert json.dumps(json.loads(body), separators=(",", ":")).encode() == body
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    assert sign(secret, body) == expected


@pytest.mark.parametrize("secret", ["not base64!", "abc", "", "===="])
def test_a_secret_that_is_not_base64_is_refused(secret: str) -> None:
    with pytest.raises(SecretError):
        secret_key(secret)


@pytest.mark.parametrize(
    ("url", "events", "statuses", "message"),
    [
        ("ftp://example.test/", ("on_call_end",), (), "http:// or https://"),
        ("https:///nohost", ("on_call_end",), (), "http:// or https://"),
        ("https://example.test/", (), (), "at least one event"),
        ("https://example.test/", ("on_call_start",), (), "unknown event"),
        ("https://example.test/", ("campaign.status_changed",), ("done",), "unknown status"),
        ("https://example.test/", ("on_call_end",), ("finished",), "status filter"),
    ],
)
def test_endpoints_are_checked(url: str, events: tuple[str, ...], statuses: tuple[str, ...], message: str) -> None:
    with pytest.raises(EndpointError, match=message):
        check_endpoint(url, base64.b64encode(b"k").decode(), events, statuses)


def test_envelopes_are_in_the_campaign_zone() -> None:
    ref = payloads.CampaignRef(1, "X", "America/Mexico_City", "p")
    body = payloads.cycle_completed("evt_x", ref, "cooldown", 2, START + timedelta(hours=1), START)
    assert body["occurred_at"] == "2026-01-05T09:00:00.000000-06:00"
    assert body["data"]["next_cycle_at"] == "2026-01-05T10:00:00.000000-06:00"
    assert (
        payloads.wanted(("campaign.status_changed",), {"status": ["finished"]}, "campaign.status_changed", "active")
        is False
    )
