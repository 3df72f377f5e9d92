"""The campaign file parser (SPEC §2): defaults, ranges, channel-only fields, windows, and one error naming every problem."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.campaign import CampaignConfig, ConfigError, parse_campaign
from herald.domain.scheduling import WEEKDAYS, next_open

PHONE = {"name": "Cobranza", "channel": "phone_call"}
WHATSAPP = {"name": "Recordatorio", "channel": "whatsapp"}


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_campaign(data)
    return str(caught.value)


def test_defaults_follow_the_spec() -> None:
    config = parse_campaign(PHONE)
    assert (config.timezone, config.retries, config.retry_delay_minutes) == ("America/Mexico_City", 1, 60)
    assert (config.failed_retry_limit, config.concurrency_limit) == (1, 10)
    assert config.scheduling is None and not config.cycles.enabled and not config.local_time
    whatsapp = parse_campaign(WHATSAPP)
    assert whatsapp.daily_message_limit == 250 and whatsapp.response_timeout == 24.0


def test_channel_only_fields_are_refused_on_the_other_channel() -> None:
    assert "template cannot be set on a phone_call campaign" in _problems({**PHONE, "template": "t"})
    assert "first_message cannot be set on a whatsapp campaign" in _problems({**WHATSAPP, "first_message": "Hola"})
    assert parse_campaign({**WHATSAPP, "template": "t", "message_limit": 10_000}).daily_message_limit == 10_000


def test_every_problem_is_named_in_one_error() -> None:
    message = _problems({**PHONE, "retries": 6, "concurrency_limit": 0, "timezone": "Mars/Olympus", "colour": "red"})
    for where in ("retries", "concurrency_limit", "timezone", "colour"):
        assert where in message
    assert "unknown IANA time zone 'Mars/Olympus'" in message


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ({"startTime": "24:00"}, "startTime cannot be 24:00"),
        ({"startTime": "19:00", "stopTime": "09:00"}, "stopTime 09:00 must be after startTime 19:00"),
        ({"startTime": "10:00", "stopTime": "10:00"}, "must be after"),
        ({"startTime": "9", "stopTime": "10:00"}, "time must be HH:MM"),
        ({"startTime": "09:60"}, "time out of range"),
    ],
)
def test_bad_windows_are_refused(day: dict[str, Any], expected: str) -> None:
    assert expected in _problems({**PHONE, "scheduling": {"mon": day}})


def test_a_schedule_that_never_opens_is_refused() -> None:
    assert "never open" in _problems({**PHONE, "scheduling": {"mon": {"active": False}}})
    assert "never open" in _problems({**PHONE, "cycles": {"enabled": True, "mode": "scheduled", "schedule": {}}})
    # An inactive day may keep any hours: only open days must make sense.
    config = parse_campaign(
        {**PHONE, "scheduling": {"mon": {"startTime": "19:00", "stopTime": "09:00", "active": False}, "tue": {}}}
    )
    assert config.scheduling is not None and not config.scheduling.windows()["mon"].active


def test_follow_up_hours_are_checked_when_the_file_is_read() -> None:
    assert "time out of range: '25:00'" in _problems({**PHONE, "agent": {"follow_ups": {"startTime": "25:00"}}})
    assert "must be after" in _problems({**PHONE, "agent": {"follow_ups": {"startTime": "20:00", "stopTime": "08:00"}}})
    assert "at least one day" in _problems({**PHONE, "agent": {"follow_ups": {"days": []}}})
    disabled = parse_campaign({**PHONE, "agent": {"follow_ups": {"enabled": False, "days": []}}})
    assert not disabled.agent.follow_ups.enabled


def test_agent_references_must_exist() -> None:
    assert "conversion tag 'paid'" in _problems(
        {**PHONE, "agent": {"tags": ["promise"], "conversion": {"tag": "paid"}}}
    )
    assert "agent tags must be unique" in _problems({**PHONE, "agent": {"tags": ["a", "a"]}})
    assert "needs options" in _problems({**PHONE, "agent": {"fields": [{"name": "plan", "type": "enum"}]}})
    message = _problems({**PHONE, "cycles": {"enabled": True, "filter_tags": ["vip"]}})
    assert "filter_tags names tags the agent does not have: vip" in message


RANGES = {
    "retries": (0, 5),
    "failed_retry_limit": (0, 10),
    "concurrency_limit": (1, 100_000),
}


@given(field=st.sampled_from(sorted(RANGES)), value=st.integers(-3, 100_005))
def test_numeric_ranges(field: str, value: int) -> None:
    low, high = RANGES[field]
    data = {**PHONE, field: value}
    if low <= value <= high:
        assert getattr(parse_campaign(data), field) == value
    else:
        assert field in _problems(data)


@given(limit=st.integers(-2, 10_002), iterations=st.integers(0, 14), cooldown=st.integers(-2, 1_442))
def test_whatsapp_limit_and_cycle_ranges(limit: int, iterations: int, cooldown: int) -> None:
    data = {
        **WHATSAPP,
        "message_limit": limit,
        "cycles": {"enabled": True, "max_iterations": iterations, "cooldown_minutes": cooldown},
    }
    valid = 1 <= limit <= 10_000 and 2 <= iterations <= 12 and 0 <= cooldown <= 1440
    if valid:
        config = parse_campaign(data)
        assert (config.daily_message_limit, config.cycles.max_iterations) == (limit, iterations)
    else:
        _problems(data)


HHMM = st.one_of(
    st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 25), st.integers(0, 61)),
    st.text(alphabet="0123456789: ", max_size=6),
)
DAY = st.fixed_dictionaries({}, optional={"startTime": HHMM, "stopTime": HHMM, "active": st.booleans()})
SCHEDULE = st.dictionaries(st.sampled_from(WEEKDAYS), DAY, max_size=7)


@given(schedule=SCHEDULE, at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)))
def test_any_accepted_schedule_opens_inside_one_of_its_windows(schedule: dict[str, Any], at: datetime) -> None:
    try:
        config = parse_campaign({**PHONE, "scheduling": schedule, "local_time": True})
    except ConfigError:
        return  # refused with a message; the property is about what is accepted
    assert config.scheduling is not None
    windows = config.scheduling.windows()
    instant = at.replace(tzinfo=UTC)
    opening = next_open(windows, config.zone, instant)
    # An accepted schedule always opens within a week, at a local time inside that day's active window.
    assert opening is not None and opening >= instant
    local = opening.astimezone(config.zone)
    window = windows[WEEKDAYS[local.weekday()]]
    assert window.active and window.start <= local.time()
    assert window.stop is None or local.time() < window.stop


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from([*CampaignConfig.model_fields, "scheduling", "cycles", "agent", "unknown"])


@given(extra=st.dictionaries(KEYS, JSONISH, max_size=4), channel=st.sampled_from(["phone_call", "whatsapp", "fax"]))
def test_any_input_gives_a_config_or_a_config_error(extra: dict[str, Any], channel: str) -> None:
    # Whatever a campaign file holds, the only failure is ConfigError, which the CLI (and later the API) reports.
    try:
        config = parse_campaign({"name": "x", "channel": channel, **extra})
    except ConfigError as error:
        assert str(error).startswith("invalid campaign: ")
        return
    assert parse_campaign(config.model_dump(mode="json")) == config
