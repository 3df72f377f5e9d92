"""The HTTP provider's webhook parser: golden examples, every way a body can be wrong, and properties.

The examples and generated bodies are also checked against docs/providers/http/events.schema.json, so the
documented schema and the parser cannot disagree on what a valid body is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.providers.base import WebhookError
from herald.providers.http import CALL_KINDS, MESSAGE_KINDS, RECIPIENT_KINDS, HttpInbound

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/providers/http/events.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
INBOUND = HttpInbound()
CALL = "cll_01JH2K3M4N5P6Q7R8S9T0V1W2X"


def body(*events: Any) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def call_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{kind}",
        "call_id": CALL,
        "external_id": "c-991",
        "type": kind,
        "occurred_at": "2026-01-05T09:00:03-06:00",
        **fields,
    }


def message_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{kind}",
        "message_id": "81234",
        "external_id": "wamid.ABC",
        "type": kind,
        "occurred_at": "2026-01-05T15:10:00Z",
        **fields,
    }


AT = datetime(2026, 1, 5, 15, 0, 3, tzinfo=UTC)

# --- golden examples ---------------------------------------------------------------------------------------------

ENDED = call_event(
    "ended",
    answered_by="human",
    started_at="2026-01-05T09:00:10-06:00",
    ended_at="2026-01-05T09:02:41.5-06:00",
    ended_by="user",
    ended_reason="user_hangup",
    recording_url="https://agent.example.com/rec/c-991.mp3",
    tags=["promise"],
    extracted={"email": "ana@example.com", "amount": "1250"},
    converted=True,
    follow_up_at="2026-01-06T17:00:00Z",
    unknown_field={"ignored": True},
)


def test_call_story() -> None:
    events = INBOUND.parse(
        body(call_event("ringing"), call_event("in-progress", answered_by="machine"), ENDED),
        {"Content-Type": "application/json"},
    )
    assert [event.kind for event in events] == ["ringing", "in-progress", "ended"]
    for event in events:
        assert (event.provider, event.external_id, event.subject, event.attempt_id, event.ref) == (
            "http",
            "c-991",
            "call",
            CALL,
            "",
        )
    assert events[0].occurred_at == AT and events[0].occurred_at.tzinfo is UTC
    assert events[0].data == {}
    assert events[1].data == {"answered_by": "machine"}
    ended = events[2]
    assert ended.occurred_at == datetime(2026, 1, 5, 15, 2, 41, 500000, tzinfo=UTC)  # ended_at wins
    assert ended.data == {
        "answered_by": "human",
        "started_at": "2026-01-05T15:00:10+00:00",
        "ended_at": "2026-01-05T15:02:41.500000+00:00",
        "ended_by": "user",
        "ended_reason": "user_hangup",
        "recording": True,
        "recording_url": "https://agent.example.com/rec/c-991.mp3",
        "tags": ["promise"],
        "extracted": {"email": "ana@example.com", "amount": "1250"},
        "converted": True,
        "follow_up_at": "2026-01-06T17:00:00+00:00",
    }


def test_unanswered_ended_and_other_call_ends() -> None:
    events = INBOUND.parse(
        body(
            call_event("ended", answered_by=None, recording_url=None, tags=None),
            call_event("busy"),
            call_event("no-answer"),
            call_event("failed", error_code="carrier_error", error_msg="Carrier refused"),
        ),
        {},
    )
    ended, busy, no_answer, failed = events
    assert ended.occurred_at == AT
    assert ended.data["answered_by"] == "" and ended.data["recording"] is False and ended.data["tags"] == []
    assert ended.data["started_at"] is None and ended.data["follow_up_at"] is None
    assert busy.data == {} and no_answer.data == {}
    assert failed.data == {
        "error_code": "carrier_error",
        "error_msg": "Carrier refused",
        "ended_reason": "carrier_error",
    }


def test_message_story() -> None:
    events = INBOUND.parse(
        body(
            message_event("sent"),
            message_event("delivered"),
            message_event("read", occurred_at="2026-01-05T16:00:00+01:00"),
            message_event("failed", error_code="131026", error_msg="Message Undeliverable."),
        ),
        {},
    )
    assert [(event.external_id, event.kind, event.ref, event.subject, event.attempt_id) for event in events] == [
        ("wamid.ABC", "sent", "", "message", "81234"),
        ("wamid.ABC", "delivered", "", "message", "81234"),
        ("wamid.ABC", "read", "", "message", "81234"),
        ("wamid.ABC", "failed", "", "message", "81234"),
    ]
    assert events[2].occurred_at == datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    assert events[3].data == {"error_code": "131026", "error_msg": "Message Undeliverable."}


def test_recipient_actions_are_keyed_per_event() -> None:
    events = INBOUND.parse(
        body(
            message_event(
                "reply",
                event_id="in-1",
                button={"id": "btn-yes", "name": "Yes"},
                accepted=True,
                tags=["promise"],
                extracted={"date": "2026-01-09"},
                converted=True,
            ),
            message_event("reply", event_id="in-2", text="No gracias", accepted=False),
            message_event("link_click", event_id="in-3", link={"id": "lnk-1", "name": "Ver oferta"}),
            message_event("opt_out", event_id="in-4", button={"id": "btn-stop", "name": "Stop"}),
            message_event("opt_out", event_id="in-5", text="STOP"),
        ),
        {},
    )
    assert [(event.external_id, event.ref, event.kind) for event in events] == [
        ("in-1", "wamid.ABC", "reply"),
        ("in-2", "wamid.ABC", "reply"),
        ("in-3", "wamid.ABC", "link_click"),
        ("in-4", "wamid.ABC", "opt_out"),
        ("in-5", "wamid.ABC", "opt_out"),
    ]
    assert len({event.key for event in events}) == 5
    assert events[0].data == {
        "id": "btn-yes",
        "name": "Yes",
        "text": "",
        "accepted": True,
        "tags": ["promise"],
        "extracted": {"date": "2026-01-09"},
        "converted": True,
    }
    assert events[1].data == {"text": "No gracias", "accepted": False, "tags": [], "extracted": {}, "converted": False}
    assert events[2].data == {"id": "lnk-1", "name": "Ver oferta"}
    assert events[3].data == {"id": "btn-stop", "name": "Stop"}
    assert events[4].data == {}


def test_empty_batch() -> None:
    assert INBOUND.parse(b'{"events": []}', {}) == []


GOLDEN = [
    body(call_event("ringing"), call_event("in-progress", answered_by="machine"), call_event("forwarding"), ENDED),
    body(call_event("failed", error_code="x"), call_event("busy"), call_event("no-answer")),
    body(
        message_event("sent"),
        message_event("reply", button={"id": "b"}, accepted=True),
        message_event("reply", text="hola", accepted=False),
        message_event("link_click", link={"id": "l", "name": "n"}),
        message_event("opt_out"),
    ),
]


@pytest.mark.parametrize("raw", GOLDEN)
def test_golden_examples_fit_the_schema(raw: bytes) -> None:
    assert INBOUND.parse(raw, {})
    VALIDATOR.validate(json.loads(raw))


# --- malformed bodies --------------------------------------------------------------------------------------------

OK = call_event("ringing")

BAD: list[tuple[bytes, str]] = [
    (b"not json", "body is not JSON"),
    (b"\xff\xfe", "body is not JSON"),
    (b'{"events": [NaN]}', "body is not JSON"),
    (b"[" * 100_000, "body is not JSON"),
    (b"[]", "body must be an object"),
    (b'{"events": {}}', "body must be an object"),
    (b"{}", "body must be an object"),
    (body(OK, "ringing"), "events[1]: must be an object"),
    (body(OK, {**OK, "type": "answered"}), "events[1].type: unknown call event type"),
    (body(OK, message_event("ringing")), "events[1].type: unknown message event type"),
    (body(OK, {k: v for k, v in OK.items() if k != "call_id"}), "events[1].call_id: an event names exactly one"),
    (body(OK, {**OK, "message_id": "1"}), "events[1].call_id: an event names exactly one"),
    (body(OK, {**OK, "call_id": None}), "events[1].call_id: is required"),
    (body(OK, {**OK, "call_id": 12}), "events[1].call_id: must be a string"),
    (body(OK, {k: v for k, v in OK.items() if k != "external_id"}), "events[1].external_id: is required"),
    (body(OK, {**OK, "external_id": ""}), "events[1].external_id: must not be empty"),
    (body(OK, {k: v for k, v in OK.items() if k != "event_id"}), "events[1].event_id: is required"),
    (body(OK, {k: v for k, v in OK.items() if k != "type"}), "events[1].type: is required"),
    (body(OK, {k: v for k, v in OK.items() if k != "occurred_at"}), "events[1].occurred_at: is required"),
    (body(OK, {**OK, "occurred_at": "2026-01-05T15:00:00"}), "events[1].occurred_at: must be an ISO 8601"),
    (body(OK, {**OK, "occurred_at": "2026-01-05"}), "events[1].occurred_at: must be an ISO 8601"),
    (body(OK, {**OK, "occurred_at": 1767625200}), "events[1].occurred_at: must be an ISO 8601"),
    (body(OK, {**OK, "occurred_at": "2026-02-30T15:00:00Z"}), "events[1].occurred_at: is not a valid timestamp"),
    (body(OK, {**OK, "occurred_at": "0001-01-01T00:00:00+01:00"}), "events[1].occurred_at: is not a valid"),
    (body(OK, call_event("ended", answered_by="robot")), "events[1].answered_by: must be one of"),
    (body(OK, call_event("in-progress", answered_by=True)), "events[1].answered_by: must be a string"),
    (body(OK, call_event("ended", ended_by="caller")), "events[1].ended_by: must be one of"),
    (body(OK, call_event("ended", tags="promise")), "events[1].tags: must be a list of strings"),
    (body(OK, call_event("ended", tags=[1])), "events[1].tags: must be a list of strings"),
    (body(OK, call_event("ended", extracted={"amount": 1250})), "events[1].extracted: must be an object of strings"),
    (body(OK, call_event("ended", converted="yes")), "events[1].converted: must be true or false"),
    (body(OK, call_event("ended", started_at="yesterday")), "events[1].started_at: must be an ISO 8601"),
    (body(OK, call_event("ringing", tags={})), "events[1].tags: must be a list of strings"),
    (body(OK, message_event("reply", button={"id": "b"})), "events[1].accepted: is required"),
    (body(OK, message_event("reply", accepted=True)), "events[1].button: a reply needs a button or a text"),
    (body(OK, message_event("reply", button={"name": "x"}, accepted=True)), "events[1].button.id: must be a non"),
    (body(OK, message_event("reply", button="yes", accepted=True)), "events[1].button: must be an object"),
    (body(OK, message_event("link_click")), "events[1].link: is required"),
    (body(OK, message_event("link_click", link={"id": "l", "name": 3})), "events[1].link.name: must be a string"),
    (body(OK, message_event("failed", error_code=131026)), "events[1].error_code: must be a string"),
]


@pytest.mark.parametrize(("raw", "problem"), BAD, ids=[problem for _, problem in BAD])
def test_malformed_bodies_are_422_naming_the_problem(raw: bytes, problem: str) -> None:
    with pytest.raises(WebhookError) as caught:
        INBOUND.parse(raw, {})
    assert caught.value.status == 422
    assert problem in caught.value.message


# --- properties --------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(st.one_of(json_values, st.fixed_dictionaries({"events": st.lists(json_values, max_size=4)})))
@settings(max_examples=300, deadline=None)
def test_any_json_is_events_or_a_422(value: Any) -> None:
    raw = json.dumps(value).encode()
    try:
        events = INBOUND.parse(raw, {})
    except WebhookError as error:
        assert error.status == 422
    else:
        assert len(events) == len(value["events"])
        VALIDATOR.validate(value)


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_bytes_are_events_or_a_422(raw: bytes) -> None:
    try:
        INBOUND.parse(raw, {})
    except WebhookError as error:
        assert error.status == 422


OFFSETS = [UTC, timezone(timedelta(hours=-6)), timezone(timedelta(hours=5, minutes=30))]
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from(OFFSETS)
)
ids = st.text(min_size=1, max_size=12)
texts = st.text(max_size=12)


def stamp(at: datetime) -> str:
    text = at.isoformat()
    return text.replace("+00:00", "Z") if text.endswith("+00:00") and at.microsecond % 2 else text


named = st.fixed_dictionaries({"id": ids}, optional={"name": texts})
outcome = {
    "tags": st.none() | st.lists(texts, max_size=3),
    "extracted": st.none() | st.dictionaries(texts, texts, max_size=3),
    "converted": st.none() | st.booleans(),
}
CALL_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "ringing": {},
    "forwarding": {},
    "busy": {},
    "no-answer": {},
    "in-progress": {"answered_by": st.sampled_from(["human", "machine", "unknown", "", None])},
    "failed": {"error_code": st.none() | texts, "error_msg": st.none() | texts, "ended_reason": st.none() | texts},
    "ended": {
        "answered_by": st.sampled_from(["human", "machine", "unknown", "", None]),
        "started_at": st.none() | instants.map(stamp),
        "ended_at": st.none() | instants.map(stamp),
        "ended_by": st.sampled_from(["agent", "user", "system", "", None]),
        "ended_reason": st.none() | texts,
        "recording_url": st.none() | texts,
        "follow_up_at": st.none() | instants.map(stamp),
        **outcome,
    },
}
MESSAGE_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "sent": {},
    "delivered": {},
    "read": {},
    "failed": {"error_code": st.none() | texts, "error_msg": st.none() | texts},
    "link_click": {},
    "opt_out": {"button": st.none() | named},
    "reply": {"accepted": st.booleans(), **outcome},  # accepted is required: drawn always, below
}


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    is_call = draw(st.booleans())
    kind = draw(st.sampled_from(sorted(CALL_KINDS if is_call else MESSAGE_KINDS)))
    event: dict[str, Any] = {
        "event_id": draw(ids),
        "call_id" if is_call else "message_id": draw(ids),
        "external_id": draw(ids),
        "type": kind,
        "occurred_at": stamp(draw(instants)),
    }
    fields = (CALL_FIELDS if is_call else MESSAGE_FIELDS)[kind]
    event.update(draw(st.fixed_dictionaries({}, optional=fields)))
    if kind == "reply":
        event["accepted"] = draw(st.booleans())
    if kind == "reply":
        # A reply is a button, a text, or both.
        event.update(draw(st.sampled_from([{"button": draw(named)}, {"text": draw(texts)}])))
        if draw(st.booleans()):
            event.update(button=draw(named), text=draw(texts))
    if kind == "link_click":
        event["link"] = draw(named)
    return event


def utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


@given(st.lists(valid_events(), max_size=5))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_events_round_trip(raws: list[dict[str, Any]]) -> None:
    document = {"events": raws}
    VALIDATOR.validate(document)
    events = INBOUND.parse(json.dumps(document).encode(), {})
    assert len(events) == len(raws)
    for raw, event in zip(raws, events, strict=True):
        assert event.provider == "http" and event.kind == raw["type"]
        assert event.occurred_at.tzinfo is UTC
        assert event.occurred_at == utc(raw.get("ended_at") or raw["occurred_at"])
        if "call_id" in raw:
            assert (event.subject, event.attempt_id, event.external_id, event.ref) == (
                "call",
                raw["call_id"],
                raw["external_id"],
                "",
            )
        elif raw["type"] in RECIPIENT_KINDS:
            assert (event.subject, event.attempt_id, event.external_id, event.ref) == (
                "message",
                raw["message_id"],
                raw["event_id"],
                raw["external_id"],
            )
        else:
            assert (event.subject, event.attempt_id, event.external_id, event.ref) == (
                "message",
                raw["message_id"],
                raw["external_id"],
                "",
            )
        data = event.data
        if raw["type"] == "ended" and "call_id" in raw:
            assert data["answered_by"] == (raw.get("answered_by") or "")
            assert data["recording"] is bool(raw.get("recording_url"))
            assert data["tags"] == (raw.get("tags") or [])
            assert data["extracted"] == (raw.get("extracted") or {})
            assert data["converted"] is bool(raw.get("converted"))
            assert utc(data["started_at"]) == utc(raw.get("started_at"))
            assert utc(data["follow_up_at"]) == utc(raw.get("follow_up_at"))
        if raw["type"] == "failed":
            assert data["error_code"] == (raw.get("error_code") or "")
            assert data["error_msg"] == (raw.get("error_msg") or "")
        if raw["type"] == "reply":
            assert data["accepted"] is raw["accepted"]
            if raw.get("button"):
                assert (data["id"], data["name"]) == (raw["button"]["id"], raw["button"].get("name", ""))
        if raw["type"] == "link_click":
            assert data["id"] == raw["link"]["id"]


FIELDS = [
    "event_id",
    "call_id",
    "message_id",
    "external_id",
    "type",
    "occurred_at",
    "answered_by",
    "started_at",
    "ended_at",
    "follow_up_at",
    "ended_by",
    "ended_reason",
    "recording_url",
    "error_code",
    "error_msg",
    "text",
    "tags",
    "extracted",
    "converted",
    "accepted",
    "button",
    "link",
]


@given(
    valid_events(),
    st.sampled_from(FIELDS),
    st.one_of(st.just("<absent>"), json_values, st.sampled_from(["human", "", "2026-01-05T15:00:00Z", "reply"])),
)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parser_and_schema_agree_on_one_changed_field(event: dict[str, Any], name: str, value: Any) -> None:
    """Change one field of a valid event to anything: the parser takes it exactly when the documented schema does."""
    changed = dict(event)
    if value == "<absent>":
        changed.pop(name, None)
    else:
        changed[name] = value
    document = {"events": [changed]}
    schema_ok = VALIDATOR.is_valid(document)
    hypothesis.event(f"valid: {schema_ok}")
    try:
        INBOUND.parse(json.dumps(document).encode(), {})
    except WebhookError as error:
        assert not schema_ok, f"schema accepts what the parser refuses: {error.message}"
    else:
        assert schema_ok, f"parser accepts what the schema refuses: {list(VALIDATOR.iter_errors(document))[:1]}"
