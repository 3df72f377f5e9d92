"""The public result types of a contact import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One accepted contact. ``line`` is the physical line (1-based, header = 1) where its record starts."""

    line: int
    contact: str
    name: str
    context: str
    external_id: str | None
    override_agent_name: str | None
    override_agent_voice_id: str | None
    input_variables: dict[str, str]
    update: bool = False


def _row_constructor() -> Callable[
    [int, str, str, str, str | None, str | None, str | None, dict[str, str], bool], ContactRow
]:
    """A positional ContactRow constructor about twice as fast as the frozen dataclass ``__init__``.

    A frozen dataclass sets each field through ``object.__setattr__``; an import builds a
    million rows, so this sets the slots directly. Same object, same equality; a test checks it
    against ``ContactRow(...)`` and the field list below fails loudly if the class changes.
    """
    expected = (
        "line",
        "contact",
        "name",
        "context",
        "external_id",
        "override_agent_name",
        "override_agent_voice_id",
        "input_variables",
        "update",
    )
    if tuple(f.name for f in fields(ContactRow)) != expected:
        raise RuntimeError("ContactRow fields changed: update herald.imports.model._row_constructor")
    slots = ContactRow.__dict__
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = (slots[name].__set__ for name in expected)
    new = object.__new__

    def make(
        line: int,
        contact: str,
        name: str,
        context: str,
        external_id: str | None,
        override_agent_name: str | None,
        override_agent_voice_id: str | None,
        input_variables: dict[str, str],
        update: bool,
    ) -> ContactRow:
        row = new(ContactRow)
        s0(row, line)
        s1(row, contact)
        s2(row, name)
        s3(row, context)
        s4(row, external_id)
        s5(row, override_agent_name)
        s6(row, override_agent_voice_id)
        s7(row, input_variables)
        s8(row, update)
        return row

    return make


new_row = _row_constructor()


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected record: where it starts, a ``Reason`` code, a message, and the values as read."""

    line: int
    reason: str
    detail: str
    values: dict[str, str]


@dataclass
class ImportResult:
    """Everything read from one file. Every non-blank record is in exactly one of ``rows``/``rejects``.

    ``records`` counts the data records (after the header): each is a row (stored or in ``rows``), a reject, or one
    of ``blank_lines``. ``padded_lines`` are the records that had fewer fields than the header and were read with
    the missing fields empty.
    """

    rows: list[ContactRow]
    rejects: list[Reject]
    columns: list[str]
    encoding: str
    delimiter: str
    blank_lines: int = 0
    records: int = 0
    padded_lines: list[int] = field(default_factory=list)
