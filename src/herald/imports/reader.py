"""Reading a contact CSV into rows ready to store, and rejects that say why."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from herald.imports.decoding import decode, detect_delimiter, header_line
from herald.imports.errors import ImportFileError, Reason
from herald.imports.phones import PhoneNormalizer

REQUIRED_COLUMNS = ("contact", "name", "context")
OPTIONAL_COLUMNS = ("id", "override_agent_name", "override_agent_voice_id")
_KNOWN = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
# Characters that, in a header parsed as one column, show the file uses another delimiter.
_FOREIGN_DELIMITERS = "|:^~"
_PROGRESS_EVERY = 1 << 16  # characters between two progress calls


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


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected record: where it starts, a ``Reason`` code, a message, and the values as read."""

    line: int
    reason: str
    detail: str
    values: dict[str, str]


@dataclass
class ImportResult:
    """Everything read from one file. Every non-blank record is in exactly one of ``rows``/``rejects``."""

    rows: list[ContactRow]
    rejects: list[Reject]
    columns: list[str]
    encoding: str
    delimiter: str
    blank_lines: int = 0


@dataclass(frozen=True, slots=True)
class _Header:
    names: list[str]  # stripped header names, original case
    width: int
    contact: int
    name: int
    context: int
    external_id: int | None
    agent_name: int | None
    agent_voice: int | None
    variables: list[tuple[int, str]]


def _parse_header(fields: list[str]) -> _Header:
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

    return _Header(
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


def _values(header: _Header, fields: list[str]) -> dict[str, str]:
    """The record as read, keyed by column; fields past the header are keyed ``#<position>``."""
    values = {name: (fields[i] if i < len(fields) else "") for i, name in enumerate(header.names)}
    for i in range(header.width, len(fields)):
        values[f"#{i + 1}"] = fields[i]
    return values


def _optional(fields: list[str], index: int | None) -> str | None:
    if index is None or index >= len(fields):
        return None
    return fields[index].strip() or None


def _records(
    text: str, delimiter: str, total_bytes: int, progress: Callable[[int], None] | None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(start_line, fields)`` for each CSV record, header included."""
    lines = io.StringIO(text, newline="")
    scale = total_bytes / max(len(text), 1)
    consumed = 0
    next_report = _PROGRESS_EVERY

    def counted() -> Iterator[str]:
        nonlocal consumed
        for line in lines:
            consumed += len(line)
            yield line

    reader = csv.reader(counted(), delimiter=delimiter, strict=True)
    start = 1
    try:
        for fields in reader:
            yield start, fields
            start = reader.line_num + 1
            if progress is not None and consumed >= next_report:
                next_report = consumed + _PROGRESS_EVERY
                progress(int(consumed * scale))
    except csv.Error as exc:
        raise ImportFileError(f"line {start}: malformed CSV ({exc}); check the quoting") from exc
    if progress is not None:
        progress(total_bytes)


def read_contacts(
    source: Path | bytes,
    *,
    default_region: str,
    existing: Container[str] = frozenset(),
    suppressed: Container[str] = frozenset(),
    if_duplicate: Literal["skip", "update"] = "skip",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Read a contact CSV (path or bytes) and return accepted rows and rejects, in file order.

    ``default_region`` (ISO 3166 alpha-2) reads numbers written without a country code.
    ``existing`` holds the E.164 numbers already in the campaign, ``suppressed`` the business's
    opt-outs. With ``if_duplicate="skip"`` a repeated number is rejected (``DUPLICATE``); with
    ``"update"`` a number already in the campaign comes back as a row with ``update=True``, and
    when a number repeats inside the file the later record replaces the earlier one (which is
    reported as a ``DUPLICATE`` reject, "overwritten by line N"). ``progress`` is called with the
    number of source bytes read so far (the last call passes the total).

    Raises ImportFileError, before returning anything, when the file itself is unusable.
    """
    if if_duplicate not in ("skip", "update"):
        raise ValueError(f"if_duplicate must be 'skip' or 'update', not {if_duplicate!r}")
    normalize = PhoneNormalizer(default_region)
    data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    text, encoding = decode(data)
    if not text.strip():
        raise ImportFileError("the file is empty")
    delimiter = detect_delimiter(header_line(text))
    records = _records(text, delimiter, len(data), progress)
    header = _parse_header(next(records)[1])

    update = if_duplicate == "update"
    rows: list[ContactRow] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}  # E.164 → index in rows
    # In update mode a kept record may be overwritten later; keep its fields for the reject.
    kept_fields: dict[int, list[str]] = {}
    blank = 0
    for line, fields in records:
        if not any(f.strip() for f in fields):
            blank += 1  # empty lines and ",,," filler rows carry no contact
            continue
        if len(fields) > header.width and any(f.strip() for f in fields[header.width :]):
            rejects.append(
                Reject(
                    line,
                    Reason.MALFORMED_ROW,
                    f"{len(fields)} fields but the header has {header.width}",
                    _values(header, fields),
                )
            )
            continue
        raw = fields[header.contact] if header.contact < len(fields) else ""
        if not raw.strip():
            rejects.append(Reject(line, Reason.MISSING_CONTACT, "the contact column is empty", _values(header, fields)))
            continue
        e164 = normalize(raw)
        if e164 is None:
            rejects.append(
                Reject(
                    line,
                    Reason.INVALID_PHONE_NUMBER,
                    f"{raw.strip()!r} is not a valid phone number (default region {normalize.region})",
                    _values(header, fields),
                )
            )
            continue
        if e164 in suppressed:
            rejects.append(Reject(line, Reason.SUPPRESSED, f"{e164} is on the opt-out list", _values(header, fields)))
            continue
        earlier = seen.get(e164)
        in_campaign = e164 in existing
        if not update and (earlier is not None or in_campaign):
            detail = (
                f"{e164} already appears on line {rows[earlier].line}"
                if earlier is not None
                else f"{e164} is already in the campaign"
            )
            rejects.append(Reject(line, Reason.DUPLICATE, detail, _values(header, fields)))
            continue
        n = len(fields)
        row = ContactRow(
            line=line,
            contact=e164,
            name=fields[header.name].strip() if header.name < n else "",
            context=fields[header.context].strip() if header.context < n else "",
            external_id=_optional(fields, header.external_id),
            override_agent_name=_optional(fields, header.agent_name),
            override_agent_voice_id=_optional(fields, header.agent_voice),
            input_variables={name: (fields[i].strip() if i < n else "") for i, name in header.variables},
            update=in_campaign,
        )
        if earlier is None:
            earlier = seen[e164] = len(rows)
            rows.append(row)
        else:
            replaced = rows[earlier]
            rows[earlier] = row
            detail = f"{e164} overwritten by line {line}"
            rejects.append(Reject(replaced.line, Reason.DUPLICATE, detail, _values(header, kept_fields[earlier])))
        if update:
            kept_fields[earlier] = fields
    rejects.sort(key=lambda r: r.line)
    return ImportResult(rows, rejects, header.names, encoding, delimiter, blank_lines=blank)
