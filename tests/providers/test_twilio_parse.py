"""Twilio status callbacks → Herald's call events (SPEC §4): statuses, AnsweredBy, durations, recordings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.providers.base import WebhookError
from herald.providers.twilio import ANSWERED_BY, CALL_STATUS_KINDS, TwilioInbound

URL = "https://herald.example/webhooks/twilio?call_id=cll_7"
SID = "CA" + "ab" * 16
AT = datetime(2026, 1, 5, 15, 0, 30, tzinfo=UTC)


def body(**fields: str) -> bytes:
    values = {"CallSid": SID, "AccountSid": "AC" + "0" * 32, "Timestamp": format_datetime(AT), **fields}
    return urlencode({key: value for key, value in values.items() if value is not None}).encode()


def parse(data: bytes, url: str = URL) -> list:  # type: ignore[type-arg]
    return TwilioInbound().parse(data, {"content-type": "application/x-www-form-urlencoded"}, url)


@pytest.mark.parametrize(
    ("status", "kind"),
    [("queued", "queued"), ("initiated", "queued"), ("ringing", "ringing"), ("in-progress", "in-progress"),
     ("completed", "ended"), ("busy", "busy"), ("no-answer", "no-answer"), ("failed", "failed"),
     ("canceled", "failed")],
)  # fmt: skip
def test_each_call_status_becomes_its_event(status: str, kind: str) -> None:
    (event,) = parse(body(CallStatus=status))
    assert (event.provider, event.external_id, event.kind, event.subject) == ("twilio", SID, kind, "call")
    assert event.attempt_id == "cll_7" and event.occurred_at == AT


@pytest.mark.parametrize(
    ("answered_by", "herald"),
    [("human", "human"), ("machine_start", "machine"), ("machine_end_beep", "machine"),
     ("machine_end_silence", "machine"), ("machine_end_other", "machine"), ("fax", "machine"),
     ("unknown", "unknown"), ("", "unknown")],
)  # fmt: skip
def test_a_completed_call_says_who_answered_how_long_and_where_the_recording_is(answered_by: str, herald: str) -> None:
    recording = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"
    (event,) = parse(body(CallStatus="completed", AnsweredBy=answered_by, CallDuration="42", RecordingUrl=recording))
    data = event.data
    assert data["answered_by"] == herald
    assert data["started_at"] == (AT - timedelta(seconds=42)).isoformat() and data["ended_at"] == AT.isoformat()
    assert (data["recording"], data["recording_url"]) == (True, recording)


def test_answered_by_arrives_with_the_answer_and_failures_carry_their_code() -> None:
    (answered,) = parse(body(CallStatus="in-progress", AnsweredBy="machine_end_beep"))
    assert answered.data == {"answered_by": "machine"}
    (failed,) = parse(body(CallStatus="failed", ErrorCode="32009", ErrorMessage="Carrier refused"))
    assert (failed.data["error_code"], failed.data["error_msg"]) == ("32009", "Carrier refused")
    (canceled,) = parse(body(CallStatus="canceled"))
    assert canceled.data["ended_reason"] == "canceled"


@pytest.mark.parametrize(
    ("data", "url", "problem"),
    [
        (body(CallStatus="ringing", CallSid=""), URL, "CallSid"),
        (body(CallStatus="answered"), URL, "CallStatus"),
        (body(CallStatus="ringing", Timestamp="yesterday"), URL, "Timestamp"),
        (body(CallStatus="ringing", Timestamp=""), URL, "Timestamp"),
        (body(CallStatus="in-progress", AnsweredBy="robot"), URL, "AnsweredBy"),
        (body(CallStatus="completed", CallDuration="-3"), URL, "CallDuration"),
        (body(CallStatus="completed", RecordingUrl="javascript:alert(1)"), URL, "RecordingUrl"),
        (body(CallStatus="ringing"), "https://herald.example/webhooks/twilio", "call_id"),
        (body(CallStatus="ringing"), URL + "&call_id=cll_8", "call_id"),
        (b"\xff\xfe", URL, "UTF-8"),
        (b'{"CallSid": "CA1"}', URL, "form"),
    ],
)
def test_malformed_callbacks_are_422_naming_the_problem(data: bytes, url: str, problem: str) -> None:
    with pytest.raises(WebhookError) as raised:
        parse(data, url)
    assert raised.value.status == 422 and problem in raised.value.message


@given(st.binary(max_size=300), st.text(max_size=80))
def test_any_body_and_url_parse_or_fail_with_a_webhook_error(data: bytes, url: str) -> None:
    try:
        parse(data, url)
    except WebhookError as error:
        assert error.status == 422


statuses = st.sampled_from(sorted(CALL_STATUS_KINDS))
answers = st.sampled_from(["", *sorted(ANSWERED_BY)])


@given(
    status=statuses,
    answered=answers,
    duration=st.integers(0, 86_400),
    at=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    extra=st.dictionaries(st.sampled_from(["Caller", "Direction", "SequenceNumber", "ApiVersion"]), st.text()),
)
def test_every_well_formed_callback_becomes_one_event_at_its_timestamp(
    status: str, answered: str, duration: int, at: datetime, extra: dict[str, str]
) -> None:
    stamp = at.replace(microsecond=0)
    data = body(CallStatus=status, AnsweredBy=answered, CallDuration=str(duration), Timestamp=format_datetime(stamp),
                **extra)  # fmt: skip
    (event,) = parse(data)
    assert event.kind == CALL_STATUS_KINDS[status] and event.occurred_at == stamp
    if event.kind == "ended":
        assert event.data["answered_by"] == (ANSWERED_BY[answered] if answered else "unknown")
        assert datetime.fromisoformat(event.data["started_at"]) == stamp - timedelta(seconds=duration)
    elif event.kind == "in-progress" and answered:
        assert event.data["answered_by"] in ("human", "machine", "unknown")


def test_a_recording_asked_for_is_linked_at_the_end_and_its_url_comes_in_its_own_callback() -> None:
    recorded_url = URL + "&record=1"
    (ended,) = parse(body(CallStatus="completed", AnsweredBy="human", CallDuration="12"), recorded_url)
    assert ended.data["recording"] is True and ended.data["recording_url"] == ""
    recording = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE" + "1" * 32
    fields = {"RecordingSid": "RE" + "1" * 32, "RecordingStatus": "completed", "RecordingUrl": recording,
              "RecordingStartTime": format_datetime(AT), "Timestamp": None}  # fmt: skip
    (event,) = parse(body(**fields), recorded_url)  # type: ignore[arg-type]
    assert (event.kind, event.external_id, event.attempt_id) == ("recording", SID, "cll_7")
    assert event.data["recording_url"] == recording and event.occurred_at == AT
    (absent,) = parse(body(**{**fields, "RecordingStatus": "absent", "RecordingUrl": ""}), recorded_url)  # type: ignore[arg-type]
    assert absent.kind == "recording-absent"
    for broken in ({"RecordingStatus": "done"}, {"RecordingUrl": ""}, {"RecordingSid": "RE-1"}):
        with pytest.raises(WebhookError):
            parse(body(**{**fields, **broken}), recorded_url)  # type: ignore[arg-type]
