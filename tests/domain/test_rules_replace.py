"""rules.replace: the same result as dataclasses.replace for ContactState."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.domain import rules
from herald.domain.replacing import replacer
from herald.domain.rules import ContactState
from herald.domain.statuses import ContactStatus
from herald.store.records import ContactRecord

CHANGES: dict[str, Any] = {
    "status": ContactStatus.SENDING,
    "retries": 2,
    "failed_retries": 1,
    "final": True,
    "due_at": datetime(2026, 1, 5, 15, 0, tzinfo=UTC),
    "respond_by": None,
    "follow_up": True,
    "follow_up_attempts": 3,
    "calls": 4,
    "billed_seconds": 60,
    "tags": frozenset({"promise"}),
    "extracted": {"email": "a@example.com"},
    "opted_out": True,
}


def test_changes_every_field_like_dataclasses_replace() -> None:
    assert set(CHANGES) == {item.name for item in dataclasses.fields(ContactState)}
    start = ContactState(retries=1, tags=frozenset({"callback"}), respond_by=datetime(2026, 1, 6, tzinfo=UTC))
    for name, value in CHANGES.items():
        assert rules.replace(start, **{name: value}) == dataclasses.replace(start, **{name: value})
    assert rules.replace(start, **CHANGES) == dataclasses.replace(start, **CHANGES)
    assert rules.replace(start) == start


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(TypeError):
        rules.replace(ContactState(), retriez=1)  # type: ignore[call-arg]


def test_a_replacer_copies_any_frozen_slotted_record_like_dataclasses_replace() -> None:
    record = ContactRecord(1, 2, "+5255", "Ana", "ctx", None, {"a": "b"}, ContactState(), None, None, 0)
    copy = replacer(ContactRecord)
    changes: dict[str, Any] = {
        "state": rules.replace(ContactState(), calls=3),
        "inflight_id": 9,
        "attempts_in_cycle": 2,
    }
    assert copy(record, **changes) == dataclasses.replace(record, **changes)
    assert copy(record) == record and copy(record) is not record
    with pytest.raises(TypeError):
        copy(record, nope=1)


def test_a_replacer_refuses_a_class_whose_init_does_more() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError):
        replacer(Checked)
