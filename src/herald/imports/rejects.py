"""Writing rejected records to a CSV a person can fix and re-import."""

from __future__ import annotations

import csv
from pathlib import Path

from herald.exports.writer import guard_cell
from herald.imports.model import ImportResult


def write_rejects(path: Path, result: ImportResult, *, guard: bool = True) -> None:
    """Write ``result.rejects`` to ``path``: columns ``line,reason,detail`` then the file's columns.

    UTF-8 without BOM, CRLF line ends, every field quoted only when needed (RFC 4180). Fields a
    malformed record had beyond the header follow under their ``#<position>`` keys. The file is meant to be
    fixed in a spreadsheet, so ``guard`` (on by default) neutralises cells a spreadsheet would run as formulas,
    as the exports do; ``guard=False`` writes the values exactly as read.
    """
    extra: list[str] = []
    known = set(result.columns)
    for reject in result.rejects:
        for key in reject.values:
            if key not in known:
                known.add(key)
                extra.append(key)
    columns = [*result.columns, *extra]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([guard_cell(c) if guard else c for c in ["line", "reason", "detail", *columns]])
        for reject in result.rejects:
            cells = [str(reject.line), str(reject.reason), reject.detail, *(reject.values.get(c, "") for c in columns)]
            writer.writerow([guard_cell(c) for c in cells] if guard else cells)
