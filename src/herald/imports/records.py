"""The per-record work of an import: one CSV record becomes a row, a reject, or a blank.

This runs once per record, millions of times for a big file, so it is one closure over local
variables rather than methods and helpers; the checks run in the documented order
(malformed → missing contact → invalid number → suppressed → duplicate).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from herald.imports.errors import ImportFileError, Reason
from herald.imports.fastphone import FALLBACK
from herald.imports.header import Header, record_values
from herald.imports.model import ContactRow, Reject, new_row
from herald.imports.phones import PhoneNormalizer
from herald.imports.repairs import is_spreadsheet_float

if TYPE_CHECKING:
    from _csv import Reader


FLUSH_ROWS = 10_000


@dataclass
class Collected:
    """What the records of one file came to."""

    rows: list[ContactRow] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    blank: int = 0
    #: Lines of records with fewer fields than the header, read with the missing fields empty.
    padded: list[int] = field(default_factory=list)


def make_collector(
    header: Header,
    normalize: PhoneNormalizer,
    existing: Container[str],
    suppressed: Container[str],
    update: bool,
    flush: Callable[[list[ContactRow]], None] | None = None,
) -> tuple[Callable[[int, list[str]], None], Collected]:
    """A function taking each record (its start line and fields) in file order, and its results.

    With ``flush`` (skip mode only), accepted rows leave in chunks of ``FLUSH_ROWS`` as they are read instead of
    piling up in ``Collected.rows``; update mode keeps them to the end, since a later record may replace one.
    """
    out = Collected()
    rows, rejects = out.rows, out.rejects
    flush_rows = None if update else flush
    seen: dict[str, int] = {}  # E.164 → line of the record kept for it
    position: dict[str, int] = {}  # update mode: E.164 → index in rows
    # Update mode: raw fields of kept records, to report one that a later duplicate overwrites.
    kept_fields: dict[str, list[str]] = {}
    width, ci, ni, xi = header.width, header.contact, header.name, header.context
    ei, ani, avi, variables = header.external_id, header.agent_name, header.agent_voice, header.variables
    fast, check = normalize.fast, normalize.check

    def reject(line: int, reason: Reason, detail: str, fields: list[str]) -> None:
        rejects.append(Reject(line, reason, detail, record_values(header, fields)))

    def add(line: int, fields: list[str]) -> None:
        nonlocal rows
        n = len(fields)
        if n != width:
            if n < width:
                fields = fields + [""] * (width - n)
            elif any(f.strip() for f in fields[width:]):
                return reject(line, Reason.MALFORMED_ROW, f"{n} fields but the header has {width}", fields)
        raw = fields[ci]
        if not raw or raw.isspace():
            if "".join(fields).strip():
                return reject(line, Reason.MISSING_CONTACT, "the contact column is empty", fields)
            out.blank += 1  # empty lines and ",,," filler rows carry no contact
            return None
        if n < width:
            out.padded.append(line)  # reported, since a short record may be a row whose cells shifted
        e164 = fast(raw)
        # A dot can only mean a spreadsheet float when it is there at all: the test costs nothing on most rows.
        if e164 is FALLBACK or e164 is None or ("." in raw and is_spreadsheet_float(raw)):
            # The slow path: repairs (spreadsheet floats, Mexico's retired prefixes), extensions, and the reason.
            e164, why = check(raw)
            if e164 is None:
                detail = f"{raw.strip()!r} is not a valid phone number: {why}"
                return reject(line, Reason.INVALID_PHONE_NUMBER, detail, fields)
        if e164 in suppressed:
            return reject(line, Reason.SUPPRESSED, f"{e164} is on the opt-out list", fields)
        earlier = seen.get(e164)
        in_campaign = e164 in existing
        if not update and (earlier is not None or in_campaign):
            if earlier is not None:
                return reject(line, Reason.DUPLICATE, f"{e164} already appears on line {earlier}", fields)
            return reject(line, Reason.DUPLICATE, f"{e164} is already in the campaign", fields)
        row = new_row(
            line,
            e164,
            fields[ni].strip(),
            fields[xi].strip(),
            None if ei is None else fields[ei].strip() or None,
            None if ani is None else fields[ani].strip() or None,
            None if avi is None else fields[avi].strip() or None,
            {name: fields[i].strip() for i, name in variables},
            in_campaign,
        )
        seen[e164] = line
        if earlier is None:
            if update:
                position[e164] = len(rows)
            rows.append(row)
            if flush_rows is not None and len(rows) >= FLUSH_ROWS:
                flush_rows(rows)
                rows = out.rows = []
        else:
            index = position[e164]
            replaced, rows[index] = rows[index], row
            reject(replaced.line, Reason.DUPLICATE, f"{e164} overwritten by line {line}", kept_fields[e164])
        if update:
            kept_fields[e164] = fields
        return None

    return add, out


def scan(reader: Reader, add: Callable[[int, list[str]], None]) -> int:
    """Feed every remaining record of ``reader`` to ``add`` with the physical line it starts on; return their number.

    Broken quoting raises ImportFileError naming the line where the broken record starts.
    """
    start = reader.line_num + 1
    records = 0
    try:
        for fields in reader:
            add(start, fields)
            records += 1
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(f"line {start}: malformed CSV ({exc}); check the quoting") from exc
    return records
