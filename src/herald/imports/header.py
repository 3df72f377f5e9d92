"""The header of a contact file: required, optional and variable columns."""

from __future__ import annotations

from dataclasses import dataclass

from herald.imports.errors import ImportFileError

REQUIRED_COLUMNS = ("contact", "name", "context")
OPTIONAL_COLUMNS = ("id", "override_agent_name", "override_agent_voice_id")
_KNOWN = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
# Characters that, in a header parsed as one column, show the file uses another delimiter (space included).
_FOREIGN_DELIMITERS = "|:^~ "


@dataclass(frozen=True, slots=True)
class Header:
    """Positions of the known columns in a record, and the variable columns in order."""

    names: list[str]  # stripped header names, original case
    width: int
    contact: int
    name: int
    context: int
    external_id: int | None
    agent_name: int | None
    agent_voice: int | None
    variables: list[tuple[int, str]]


def parse_header(fields: list[str]) -> Header:
    """Check and index a header record; raise ImportFileError naming what is wrong."""
    names = [f.strip() for f in fields]
    # Spreadsheets often end the header with a delimiter; trailing unnamed cells are dropped.
    while names and not names[-1]:
        names.pop()
    if not names:
        raise ImportFileError("the header line is empty")
    lowered = [n.lower() for n in names]
    for index, name in enumerate(names):
        if not name:
            raise ImportFileError(f"column {index + 1} of the header has no name")
    seen: set[str] = set()
    for name, low in zip(names, lowered, strict=True):
        if low in seen:
            raise ImportFileError(f"column {name!r} appears twice in the header")
        seen.add(low)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        if len(names) == 1 and any(ch in names[0] for ch in _FOREIGN_DELIMITERS):
            raise ImportFileError(
                f"the header {names[0]!r} reads as a single column: use comma, semicolon or tab as the delimiter"
            )
        raise ImportFileError(f"missing required column(s): {', '.join(missing)} (header has: {', '.join(names)})")

    def pos(col: str) -> int | None:
        return lowered.index(col) if col in seen else None

    return Header(
        names=names,
        width=len(names),
        contact=lowered.index("contact"),
        name=lowered.index("name"),
        context=lowered.index("context"),
        external_id=pos("id"),
        agent_name=pos("override_agent_name"),
        agent_voice=pos("override_agent_voice_id"),
        variables=[(i, n) for i, (n, low) in enumerate(zip(names, lowered, strict=True)) if low not in _KNOWN],
    )


def record_values(header: Header, fields: list[str]) -> dict[str, str]:
    """The record as read, keyed by column; fields past the header are keyed ``#<position>``."""
    values = {name: (fields[i] if i < len(fields) else "") for i, name in enumerate(header.names)}
    for i in range(header.width, len(fields)):
        values[f"#{i + 1}"] = fields[i]
    return values
