"""rules.replace: the same result as dataclasses.replace for ContactState."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from herald.domain import rules
from herald.domain.rules import ContactState
from herald.domain.statuses import ContactStatus

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
