"""Timers down to seconds (issue 17): `retry_delay_minutes` and `response_timeout_hours` keep their fractions from
the campaign file to the retry policy, integers stay integers, and every accepted value is a usable delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.campaign import MAX_TIMER_DAYS, ConfigError, parse_campaign
from herald.domain.rules import RetryPolicy

PHONE = {"name": "Cobranza", "channel": "phone_call"}
WHATSAPP = {"name": "Recordatorio", "channel": "whatsapp", "template": "t"}
#: The latest instant a campaign's timers are measured from in these checks.
LATE = datetime(2999, 12, 31, tzinfo=UTC)

minutes = st.floats(min_value=0, max_value=MAX_TIMER_DAYS * 24 * 60, allow_nan=False, allow_infinity=False)
hours = st.floats(min_value=0, max_value=MAX_TIMER_DAYS * 24, exclude_min=True, allow_nan=False)


def _close(delay: timedelta, seconds: float) -> bool:
    # timedelta keeps whole microseconds: that is the only rounding allowed.
    return abs(delay.total_seconds() - seconds) <= 1e-6 + seconds * 1e-15


@given(minutes)
def test_any_retry_delay_keeps_its_fraction(value: float) -> None:
    config = parse_campaign({**PHONE, "retry_delay_minutes": value})
    delay = RetryPolicy.of(config).retry_delay
    assert _close(delay, value * 60)
    assert LATE + delay > LATE - timedelta(microseconds=1)  # never overflows a date


@given(hours)
def test_any_response_timeout_keeps_its_fraction(value: float) -> None:
    config = parse_campaign({**WHATSAPP, "response_timeout_hours": value})
    timeout = RetryPolicy.of(config).response_timeout
    assert _close(timeout, value * 3600)
    assert LATE + timeout >= LATE


@given(st.integers(min_value=0, max_value=MAX_TIMER_DAYS * 24 * 60))
def test_an_integer_retry_delay_stays_an_integer(value: int) -> None:
    config = parse_campaign({**PHONE, "retry_delay_minutes": value})
    dumped = config.model_dump(mode="json")["retry_delay_minutes"]
    assert type(dumped) is int and dumped == value
    assert yaml.safe_dump({"retry_delay_minutes": dumped}) == f"retry_delay_minutes: {value}\n"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("retry_delay_minutes: 0.05", 3.0),
        ("retry_delay_minutes: '0.5'", 30.0),
        ("response_timeout_hours: 0.003", 10.8),
        ("response_timeout_hours: 0.0005", 1.8),
    ],
)
def test_seconds_from_a_campaign_file(text: str, seconds: float) -> None:
    key, _, _ = text.partition(":")
    base = WHATSAPP if key == "response_timeout_hours" else PHONE
    config = parse_campaign({**base, **yaml.safe_load(text)})
    policy = RetryPolicy.of(config)
    delay = policy.response_timeout if key == "response_timeout_hours" else policy.retry_delay
    assert delay == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({**PHONE, "retry_delay_minutes": float("inf")}, "retry_delay_minutes"),
        ({**PHONE, "retry_delay_minutes": float("nan")}, "retry_delay_minutes"),
        ({**PHONE, "retry_delay_minutes": -0.5}, "retry_delay_minutes"),
        ({**PHONE, "retry_delay_minutes": 1e300}, "less than or equal to 527040"),
        ({**WHATSAPP, "response_timeout_hours": float("inf")}, "response_timeout_hours: Input should be a finite"),
        ({**WHATSAPP, "response_timeout_hours": 0}, "response_timeout_hours: Input should be greater than 0"),
        ({**WHATSAPP, "response_timeout_hours": 10_000}, "less than or equal to 8784"),
    ],
)
def test_unusable_timers_are_refused_by_name(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_campaign(data)
    assert expected in str(caught.value)
