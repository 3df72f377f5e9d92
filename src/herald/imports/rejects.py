"""Writing rejected records to a CSV a person can fix and re-import."""

from __future__ import annotations

import csv
from pathlib import Path

from herald.imports.model import ImportResult


def write_rejects(path: Path, result: ImportResult) -> None:
    """Write ``result.rejects`` to ``path``: columns ``line,reason,detail`` then the file's columns.

    UTF-8 without BOM, CRLF line ends, every field quoted only when needed (RFC 4180). Fields a
    malformed record had beyond the header follow under their ``#<position>`` keys.
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
        writer.writerow(["line", "reason", "detail", *columns])
        for reject in result.rejects:
            writer.writerow(
                [reject.line, str(reject.reason), reject.detail, *(reject.values.get(c, "") for c in columns)]
            )
