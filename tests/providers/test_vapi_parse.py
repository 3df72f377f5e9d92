"""Vapi server messages → Herald's call events: golden examples, every way a message can be wrong, and properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.engine.events import CALL_KINDS
from herald.providers.base import WebhookError
from herald.providers.vapi import CALL_ID_KEY, VapiInbound, ended_by, outcome, outcome_kind, reason_words

INBOUND = VapiInbound()
HERALD_ID = "cll_01JH2K3M4N5P6Q7R8S9T"
VAPI_ID = "7c4f1e0a-3b2d-4c5e-8f6a-9b0c1d2e3f40"
T0 = 1767625200000.0  # 2026-01-05T15:00:00Z in epoch milliseconds
#: endedReason values from Vapi's API reference that Herald maps specially, and a few it keeps as they are.
REASONS = [
    "customer-busy",
    "customer-did-not-answer",
    "voicemail",
    "customer-ended-call",
    "assistant-ended-call",
    "assistant-said-end-call-phrase",
    "assistant-forwarded-call",
    "silence-timed-out",
    "exceeded-max-duration",
    "manually-canceled",
    "twilio-failed-to-connect-call",
    "sip-outbound-unallocated-number",
    "call.start.error-get-assistant",
    "call.in-progress.error-providerfault-outbound-sip-480-temporarily-unavailable",
    "pipeline-error-openai-llm-failed",
    "call.in-progress.error-vapifault-worker-died",
]


def call(**fields: Any) -> dict[str, Any]:
    return {
        "id": VAPI_ID,
        "orgId": "org-1",
        "createdAt": "2026-01-05T14:59:59.000Z",
        "updatedAt": "2026-01-05T15:00:00.000Z",
        "type": "outboundPhoneCall",
        "assistantOverrides": {"metadata": {CALL_ID_KEY: HERALD_ID}, "variableValues": {CALL_ID_KEY: HERALD_ID}},
        **fields,
    }


def body(message: dict[str, Any]) -> bytes:
    return json.dumps({"message": message}).encode()


def status(state: str, **fields: Any) -> bytes:
    return body({"type": "status-update", "status": state, "timestamp": T0, "call": call(), **fields})


def report(reason: str, **fields: Any) -> bytes:
    message: dict[str, Any] = {
        "type": "end-of-call-report",
        "endedReason": reason,
        "timestamp": T0 + 65_000,
        "startedAt": "2026-01-05T15:00:02.000Z",
        "endedAt": "2026-01-05T15:01:03.500Z",
        "artifact": {"recordingUrl": "https://storage.vapi.ai/rec.wav", "transcript": "AI: Hi"},
        "analysis": {
            "structuredData": {"promise": True, "email": "a@b.c", "amount": 120.0},
            "successEvaluation": "true",
        },
        "call": call(),
        **fields,
    }
    return body(message)


@pytest.mark.parametrize("state", ["queued", "ringing", "in-progress", "forwarding"])
def test_status_updates_move_the_call(state: str) -> None:
    (event,) = INBOUND.parse(status(state), {})
    assert (event.provider, event.external_id, event.kind, event.attempt_id) == ("vapi", VAPI_ID, state, HERALD_ID)
    assert event.occurred_at == datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    assert event.data == {} and event.subject == "call"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("customer-busy", "busy"), ("customer-did-not-answer", "no-answer"), ("twilio-failed-to-connect-call", "failed")],
)
def test_an_ended_status_ends_a_call_that_never_connected(reason: str, kind: str) -> None:
    (event,) = INBOUND.parse(status("ended", endedReason=reason), {})
    assert event.kind == kind and event.data["ended_reason"] == reason
    if kind == "failed":
        assert event.data["error_code"] == reason


@pytest.mark.parametrize("reason", ["customer-ended-call", "voicemail", "silence-timed-out", ""])
def test_an_ended_status_of_a_connected_call_waits_for_the_report(reason: str) -> None:
    assert INBOUND.parse(status("ended", endedReason=reason) if reason else status("ended"), {}) == []


@pytest.mark.parametrize("state", ["scheduled", "not-found", "deletion-failed", "something-new"])
def test_other_statuses_are_ignored(state: str) -> None:
    assert INBOUND.parse(status(state), {}) == []


def test_a_human_call_report() -> None:
    (event,) = INBOUND.parse(report("customer-ended-call"), {})
    assert event.kind == "ended" and event.external_id == VAPI_ID and event.attempt_id == HERALD_ID
    assert event.occurred_at == datetime(2026, 1, 5, 15, 1, 3, 500000, tzinfo=UTC)
    assert event.data == {
        "answered_by": "human",
        "started_at": "2026-01-05T15:00:02+00:00",
        "ended_at": "2026-01-05T15:01:03.500000+00:00",
        "ended_by": "user",
        "ended_reason": "user_hangup",
        "recording": True,
        "recording_url": "https://storage.vapi.ai/rec.wav",
        "tags": ["promise"],
        "extracted": {"email": "a@b.c", "amount": "120"},
        "converted": True,
        "follow_up_at": None,
    }


def test_voicemail_is_a_machine() -> None:
    (event,) = INBOUND.parse(report("voicemail", analysis={}), {})
    assert (event.kind, event.data["answered_by"], event.data["ended_by"]) == ("ended", "machine", "agent")
    assert event.data["ended_reason"] == "voicemail" and event.data["converted"] is False


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("customer-busy", "busy"), ("customer-did-not-answer", "no-answer"), ("vonage-rejected", "failed")],
)
def test_a_report_of_a_call_that_never_connected(reason: str, kind: str) -> None:
    (event,) = INBOUND.parse(report(reason, startedAt=None, artifact={}, analysis={}), {})
    assert event.kind == kind and event.data["ended_reason"] == reason
    # Same key as the `ended` status-update that may have said it first: the inbox keeps one.
    assert event.key == INBOUND.parse(status("ended", endedReason=reason), {})[0].key


def test_an_error_before_connecting_fails_and_after_connecting_ends() -> None:
    (before,) = INBOUND.parse(report("pipeline-error-openai-llm-failed", startedAt=None), {})
    (after,) = INBOUND.parse(report("pipeline-error-openai-llm-failed"), {})
    assert before.kind == "failed"
    assert after.kind == "ended" and after.data["ended_by"] == "system"
    assert after.data["ended_reason"] == "pipeline-error-openai-llm-failed"


def test_times_fall_back_to_the_call_and_the_timestamp() -> None:
    (event,) = INBOUND.parse(
        report("assistant-ended-call", startedAt=None, endedAt=None, call=call(startedAt="2026-01-05T15:00:10Z")), {}
    )
    assert event.data["started_at"] == "2026-01-05T15:00:10+00:00"
    assert event.occurred_at == datetime(2026, 1, 5, 15, 1, 5, tzinfo=UTC)
    # Connected, but no start time anywhere: 0 s rather than "never answered".
    (bare,) = INBOUND.parse(report("customer-ended-call", startedAt=None), {})
    assert bare.data["started_at"] == bare.data["ended_at"] and bare.data["answered_by"] == "human"


def test_the_herald_id_may_come_from_variable_values_or_the_artifact() -> None:
    only_variables = call(assistantOverrides={"variableValues": {CALL_ID_KEY: HERALD_ID}})
    assert INBOUND.parse(status("ringing", call=only_variables), {})[0].attempt_id == HERALD_ID
    bare = call(assistantOverrides=None)
    (event,) = INBOUND.parse(report("voicemail", call=bare, artifact={"variableValues": {CALL_ID_KEY: HERALD_ID}}), {})
    assert event.attempt_id == HERALD_ID


@pytest.mark.parametrize("kind", ["transcript", "hang", "tool-calls", "conversation-update", "speech-update"])
def test_other_message_types_are_acknowledged_and_ignored(kind: str) -> None:
    assert INBOUND.parse(body({"type": kind, "timestamp": T0}), {}) == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"not json", "not JSON"),
        (b'{"message": NaN}', "not JSON"),
        (b"[]", "must be an object"),
        (b"{}", "message: must be an object"),
        (b'{"message": {"status": "ringing"}}', "message.type"),
        (body({"type": "status-update", "status": "ringing", "timestamp": T0}), "message.call"),
        (status("ringing", call=call(id=None)), "message.call.id"),
        (status("ringing", call=call(assistantOverrides={})), "not a call Herald placed"),
        (status("ringing", status=None), "message.status"),
        (status("ringing", timestamp="yesterday"), "message.timestamp"),
        (status("ringing", timestamp=None, call=call(updatedAt=None)), "message.timestamp"),
        (status("ringing", timestamp=True), "message.timestamp"),
        (report("voicemail", endedReason=None), "message.endedReason"),
        (report("voicemail", endedAt="2026-01-05T15:01:03"), "message.endedAt"),
        (report("voicemail", analysis=[]), "message.analysis"),
        (report("voicemail", artifact={"recordingUrl": 3}), "message.artifact.recordingUrl"),
        (report("voicemail", endedAt=None, timestamp=None, call=call(endedAt=None)), "message.endedAt"),
    ],
)
def test_malformed_messages_are_422_naming_the_field(raw: bytes, problem: str) -> None:
    with pytest.raises(WebhookError) as caught:
        INBOUND.parse(raw, {})
    assert caught.value.status == 422 and problem in caught.value.message


def test_outcome_rules() -> None:
    assert outcome({}) == {"tags": [], "extracted": {}, "converted": False, "follow_up_at": None}
    data = {"tags": ["a", 3, ""], "b": True, "c": False, "d": None, "e": "", "f": {"x": [1]}, "converted": False}
    assert outcome({"structuredData": data, "successEvaluation": "true"}) == {
        "tags": ["a", "b"],
        "extracted": {"f": '{"x":[1]}'},
        "converted": False,  # the agent's own flag wins over the evaluation
        "follow_up_at": None,
    }
    follow = {"follow_up_at": "2026-01-06T10:00:00-06:00"}
    assert outcome({"structuredData": follow})["follow_up_at"] == "2026-01-06T16:00:00+00:00"
    for bad in ("tomorrow", "2026-01-06T10:00:00", 3, None):
        assert outcome({"structuredData": {"follow_up_at": bad}})["follow_up_at"] is None
    assert outcome({"successEvaluation": True})["converted"] is True
    assert outcome({"successEvaluation": " TRUE "})["converted"] is True
    assert outcome({"successEvaluation": "8"})["converted"] is False


def test_reason_vocabulary() -> None:
    assert [
        ended_by(r) for r in ("customer-ended-call", "assistant-forwarded-call", "voicemail", "silence-timed-out")
    ] == [
        "user",
        "agent",
        "agent",
        "system",
    ]
    assert reason_words("assistant-said-end-call-phrase") == "agent_hangup"
    assert reason_words("exceeded-max-duration") == "exceeded-max-duration"
    long = "call.in-progress.error-vapifault-anthropic-bedrock-400-bad-request-validation-failed"
    assert reason_words(long) == long[:64]


# --- properties ----------------------------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_reasons = st.sampled_from(REASONS) | st.text(min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    reason=_reasons,
    started=st.none() | st.integers(0, 10**6),
    length=st.integers(0, 10**6),
    data=st.dictionaries(st.text(max_size=8), _json, max_size=5),
    evaluation=st.none() | st.sampled_from(["true", "false", "8", True]),
)
def test_every_report_is_one_terminal_event_with_a_consistent_outcome(
    reason: str, started: int | None, length: int, data: dict[str, Any], evaluation: Any
) -> None:
    ended_ms = T0 + (started or 0) + length
    fields: dict[str, Any] = {
        "startedAt": None if started is None else datetime.fromtimestamp((T0 + started) / 1000, UTC).isoformat(),
        "endedAt": None,
        "timestamp": ended_ms,
        "analysis": {"structuredData": data, "successEvaluation": evaluation},
    }
    (event,) = INBOUND.parse(report(reason, **fields), {})
    assert event.kind in {"ended", "busy", "no-answer", "failed"} <= CALL_KINDS
    assert event.kind == outcome_kind(reason, connected=started is not None)
    assert event.attempt_id == HERALD_ID and event.external_id == VAPI_ID
    if event.kind == "ended":
        assert event.data["answered_by"] == ("machine" if reason == "voicemail" else "human")
        assert event.data["ended_by"] in {"user", "agent", "system"}
        started_at = datetime.fromisoformat(event.data["started_at"])
        assert started_at <= event.occurred_at
        assert all(isinstance(value, str) for value in event.data["extracted"].values())
        assert set(event.data["tags"]).isdisjoint(event.data["extracted"])
    else:
        assert "answered_by" not in event.data and event.data["ended_reason"] == reason[:64]
    assert len(event.data["ended_reason"]) <= 64


@settings(max_examples=300, deadline=None)
@given(message=st.dictionaries(st.sampled_from(["type", "status", "call", "timestamp", "endedReason", "artifact",
                                                "analysis", "startedAt", "endedAt"]), _json, max_size=9))  # fmt: skip
def test_any_message_parses_or_is_a_422(message: dict[str, Any]) -> None:
    try:
        events = INBOUND.parse(body(message), {})
    except WebhookError as error:
        assert error.status == 422
        return
    assert all(event.kind in CALL_KINDS and event.attempt_id for event in events)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200))
def test_any_bytes_parse_or_are_a_422(raw: bytes) -> None:
    try:
        INBOUND.parse(raw, {})
    except WebhookError as error:
        assert error.status == 422
