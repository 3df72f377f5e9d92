"""One streaming table writer for every export: RFC 4180 CSV (CRLF, UTF-8) or Parquet.

Rows arrive as an iterator and leave in fixed-size batches, so memory stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Literal

Format = Literal["csv", "parquet"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(_FORMULA_START)
_PHONE = re.compile(r"^\+\d{4,15}$")
_BATCH = 10_000


def guard_cell(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula; E.164 numbers keep their leading `+`."""
    if value.startswith(_FORMULA_START) and not _PHONE.match(value):
        return "'" + value
    return value


def write_table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    destination: Path | str,
    *,
    fmt: Format = "csv",
    guard: bool = True,
) -> int:
    """Write `rows` under `header` to `destination` ("-" = standard output, CSV only); returns the row count."""
    if fmt == "parquet":
        if str(destination) == "-":
            raise ValueError("Parquet cannot be written to standard output; give a file name")
        return _write_parquet(header, rows, Path(destination))
    context: AbstractContextManager[IO[str]] = (
        _stdout_text() if str(destination) == "-" else open(destination, "w", encoding="utf-8", newline="")  # noqa: SIM115
    )
    count = 0
    with context as target:
        for text, rows_in_piece in _csv_pieces(header, rows, guard):
            target.write(text)
            count += rows_in_piece
        target.flush()
    return count


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[str]], *, guard: bool = True) -> Iterator[str]:
    """The CSV text of a table in pieces: the header line alone first (a download starts at once), then batches."""
    for text, _rows in _csv_pieces(header, rows, guard):
        yield text


def _csv_pieces(header: Sequence[str], rows: Iterable[Sequence[str]], guard: bool) -> Iterator[tuple[str, int]]:
    # RFC 4180 with CRLF; every export goes through here, to a file, standard output or an HTTP response.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(header)
    yield take(), 0
    batch: list[Sequence[str]] = []
    for row in rows:
        # The first-character test inline keeps the guard cheap on millions of cells.
        batch.append([guard_cell(cell) if cell[:1] in _FORMULA_FIRST else cell for cell in row] if guard else row)
        if len(batch) >= _BATCH:
            writer.writerows(batch)
            yield take(), len(batch)
            batch.clear()
    if batch:
        writer.writerows(batch)
        yield take(), len(batch)


@contextmanager
def _stdout_text() -> Iterator[IO[str]]:
    # CRLF must reach the bytes untouched, and standard output is not ours to close: detach when done.
    sys.stdout.flush()
    wrapper = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
    try:
        yield wrapper
    finally:
        wrapper.flush()
        wrapper.detach()


def _write_parquet(header: Sequence[str], rows: Iterable[Sequence[str]], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Every column is the exact text the CSV would hold, so both files say the same thing to the byte.
    schema = pa.schema([(name, pa.string()) for name in header])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[Sequence[str]] = []

        def flush() -> None:
            columns = list(zip(*batch, strict=True)) if batch else [() for _ in header]
            writer.write_table(pa.table([pa.array(column, pa.string()) for column in columns], schema=schema))

        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                flush()
                count += len(batch)
                batch = []
        if batch or count == 0:
            flush()
            count += len(batch)
    return count
