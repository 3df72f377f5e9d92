"""Lists of bare phone numbers (`herald suppressions add|import`): read from a file and normalised as imports do."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from herald.imports.decoding import detect_delimiter, header_line
from herald.imports.phones import PhoneNormalizer


def numbers_in(text: str) -> list[tuple[int, str]]:
    """(line, value) of every non-blank number of a decoded file: its `contact` column when the first row names one
    (a contact file), else the first column of every row (one number a line)."""
    records = list(csv.reader(io.StringIO(text), delimiter=detect_delimiter(header_line(text))))
    header = [cell.strip().lower() for cell in records[0]] if records else []
    column, first = (header.index("contact"), 2) if "contact" in header else (0, 1)
    return [
        (line, record[column])
        for line, record in enumerate(records[first - 1 :], start=first)
        if len(record) > column and record[column].strip()
    ]


@dataclass
class CheckedNumbers:
    """Numbers sorted into valid ones (E.164 -> first line it was on, in first-seen order) and invalid ones."""

    valid: dict[str, int] = field(default_factory=dict)
    invalid: list[dict[str, Any]] = field(default_factory=list)  # {"line", "value", "reason"}


def check_numbers(numbers: Iterable[tuple[int, str]], normalize: PhoneNormalizer) -> CheckedNumbers:
    """Normalise (line, value) pairs to E.164; every pair ends up in exactly one of `valid` (deduplicated) or
    `invalid` (with its line and the reason)."""
    checked = CheckedNumbers()
    for line, raw in numbers:
        e164, why = normalize.check(raw)
        if e164 is None:
            checked.invalid.append({"line": line, "value": raw, "reason": why})
        else:
            checked.valid.setdefault(e164, line)
    return checked
