"""Durations (`MM:SS`) and billing rules (SPEC §5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.billing import BillingPolicy, billed_seconds, billing_anomaly
from herald.domain.durations import DurationError, call_seconds, format_mmss, parse_duration


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "00:00"), (5, "00:05"), (65, "01:05"), (3599, "59:59"), (3600, "60:00"), (7507, "125:07")]
)
def test_format_mmss_pads_minutes_and_lets_them_pass_59(seconds: int, text: str) -> None:
    assert format_mmss(seconds) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("125:07", 7507), ("1:02:03", 3723), ("42", 42), ("41.2", 42), ("", 0), (" 01:00 ", 60), ("0:00:05", 5)],
)
def test_parse_duration_reads_every_documented_form(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1:60", "abc", "1:2:3:4", "-5", "1:75:00", "12:5x"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_mmss_round_trips(seconds: int) -> None:
    assert parse_duration(format_mmss(seconds)) == seconds


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=999_999))
def test_call_seconds_rounds_up(seconds: int, micros: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(seconds=seconds, microseconds=micros)
    assert call_seconds(start, end) == seconds + (1 if micros else 0)
    assert call_seconds(None, end) == 0


def test_billing_per_answered_by() -> None:
    assert billed_seconds(120, "human") == 120
    assert billed_seconds(120, "machine") == 5
    assert billed_seconds(3, "machine") == 3
    assert billed_seconds(120, "unknown") == 120
    assert billed_seconds(120, "unknown", BillingPolicy(unknown_as="machine")) == 5
    assert billed_seconds(120, None) == 0
    assert billed_seconds(120, "machine", BillingPolicy(machine_cap_seconds=30)) == 30
    with pytest.raises(ValueError):
        billed_seconds(1, "robot")


@given(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["human", "machine", "unknown", None]),
    st.sampled_from(["human", "machine"]),
)
def test_billed_seconds_never_flagged_as_anomaly(duration: int, answered_by: str | None, unknown_as: str) -> None:
    policy = BillingPolicy(unknown_as=unknown_as)  # type: ignore[arg-type]
    assert not billing_anomaly(duration, billed_seconds(duration, answered_by, policy), answered_by)


def test_anomalies() -> None:
    assert billing_anomaly(295, 300, "human")
    assert billing_anomaly(60, 60, "machine")
    assert billing_anomaly(60, 30, "unknown")
    assert billing_anomaly(0, 10, None)
    assert not billing_anomaly(60, 5, "unknown")
