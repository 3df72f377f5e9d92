"""Which export a file is, told by its header alone (SPEC §7).

Detection reads only the header (first CSV record, or the Parquet schema), so it is instant on any file size.
The rows are read later by DuckDB in `metrics`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from herald.exports.columns import CALL_COLUMNS_2026_07
from herald.exports.columns import CONTACT_COLUMNS as CONTACT_COLUMNS
from herald.exports.columns import SENDOUT_COLUMNS as SENDOUT_COLUMNS
from herald.imports.decoding import decode, detect_delimiter, header_line
from herald.imports.errors import ImportFileError

PARQUET_MAGIC = b"PAR1"
_HEAD_BYTES = 1 << 16  # enough for any header row
_CHUNK = 1 << 20


class ExportFormat(StrEnum):
    """The export layouts Herald can analyse."""

    ALTUR_CONTACTS = "altur-contacts"
    ALTUR_RESULTS = "altur-results"
    ALTUR_CALLS = "altur-calls"
    CONNECTLY_SENDOUT = "connectly-sendout"


class ExportFileError(ValueError):
    """A file that cannot be analysed; the message names the reason (the caller adds the file name)."""


#: Call columns of both layouts (the 2026-07 layout adds ended_by, ended_reason); any subset in any order is read.
CALL_COLUMNS = CALL_COLUMNS_2026_07

# The columns a file must have to be analysed as each format. They are the columns the metrics read, plus the
# format's distinctive ones, so a hand-trimmed file still works while a file of another kind never matches.
_REQUIRED: dict[ExportFormat, tuple[str, ...]] = {
    ExportFormat.CONNECTLY_SENDOUT: ("customer_external_id", "sendout_id", "sent_at", "delivered_at", "read_at"),
    ExportFormat.ALTUR_CALLS: ("id", "number_to", "status", "answered_by", "duration", "billed_duration"),
    ExportFormat.ALTUR_CONTACTS: ("contact", "name", "status"),
}
_KNOWN: dict[ExportFormat, tuple[str, ...]] = {
    ExportFormat.CONNECTLY_SENDOUT: SENDOUT_COLUMNS,
    ExportFormat.ALTUR_CALLS: CALL_COLUMNS,
    ExportFormat.ALTUR_CONTACTS: CONTACT_COLUMNS,
}


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A detected export file: where it is, how it is stored, what it is, and its columns in file order."""

    path: Path
    storage: str  # "csv" or "parquet"
    format: ExportFormat
    columns: tuple[str, ...]
    #: CSV only: the delimiter (`,` `;` or tab, detected as `contacts import` does) and the text encoding.
    delimiter: str = ","
    encoding: str = "utf-8"
    #: What to call the file in tables and reports (default: its path), e.g. "campaign 3 contacts".
    label: str | None = None
    #: The agent's tags when the file comes from a known campaign: then extra columns are tags exactly when named here.
    known_tags: tuple[str, ...] | None = None

    @property
    def title(self) -> str:
        """The name shown for this file."""
        return self.label or str(self.path)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """Columns past the format's fixed ones: tags and extracted fields (Altur), unknown extras (Connectly)."""
        known = set(_KNOWN[ExportFormat.ALTUR_CONTACTS if self.format is ExportFormat.ALTUR_RESULTS else self.format])
        return tuple(c for c in self.columns if c not in known)

    def has(self, column: str) -> bool:
        """Whether the file has this column."""
        return column in self.columns


@dataclass(frozen=True, slots=True)
class Header:
    """What the header of a file says: storage kind, column names, and for a CSV its delimiter and encoding."""

    storage: str
    columns: tuple[str, ...]
    delimiter: str = ","
    encoding: str = "utf-8"


def read_header(path: Path) -> Header:
    """The storage kind (`csv` or `parquet`) and the column names of a file, without reading its rows."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(4)
    except IsADirectoryError as exc:
        raise ExportFileError("is a directory") from exc
    except OSError as exc:
        raise ExportFileError(exc.strerror or str(exc)) from exc
    if magic == PARQUET_MAGIC:
        return Header("parquet", _parquet_columns(path))
    return _csv_header(path)


def _parquet_columns(path: Path) -> tuple[str, ...]:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        raise ExportFileError(f"broken Parquet file ({exc})") from exc
    return tuple(str(name) for name in schema.names)


def _csv_header(path: Path) -> Header:
    """Columns, delimiter and encoding of a CSV, told the way `contacts import` tells them (`herald.imports`)."""
    try:
        with path.open("rb") as raw:
            head = raw.read(_HEAD_BYTES)
    except OSError as exc:
        raise ExportFileError(exc.strerror or str(exc)) from exc
    # Cut at the last line end, so a multi-byte character is never split; a UTF-8 sequence never holds \n.
    cut = head.rfind(b"\n")
    try:
        text, encoding = decode(head[: cut + 1] if cut >= 0 and len(head) == _HEAD_BYTES else head)
    except ImportFileError as exc:
        raise ExportFileError(str(exc)) from exc
    if encoding.startswith("utf-8") and not _is_utf8(path):
        encoding = "cp1252"  # the head was UTF-8 but a later byte is not: decoded as a spreadsheet's "Latin-1"
    line = header_line(text)
    delimiter = detect_delimiter(line)
    try:
        header = next(csv.reader(io.StringIO(line), delimiter=delimiter, strict=True), None)
    except csv.Error as exc:
        raise ExportFileError(f"broken CSV header ({exc})") from exc
    if not header or all(not name.strip() for name in header):
        raise ExportFileError("empty file (no header row)")
    names = tuple(name.strip() for name in header)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExportFileError(f"duplicate column names: {', '.join(duplicates)}")
    return Header("csv", names, delimiter, "utf-8" if encoding.startswith("utf-8") else encoding)


def _is_utf8(path: Path) -> bool:
    """Whether the whole file is UTF-8, read in chunks (memory stays flat on a large export)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(_CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def as_utf8(export: ExportFile, directory: Path) -> ExportFile:
    """A copy of a non-UTF-8 CSV export re-encoded as UTF-8 in `directory` (DuckDB reads UTF-8 only).

    The bytes are decoded exactly as `contacts import` decodes them (cp1252, or ISO-8859-1 when cp1252 leaves a
    byte undefined). The copy keeps the original's title.
    """
    if export.storage != "csv" or export.encoding == "utf-8":
        return export
    try:
        text, _encoding = decode(export.path.read_bytes())
    except ImportFileError as exc:
        raise ExportFileError(str(exc)) from exc
    copy = directory / export.path.name
    copy.write_text(text, encoding="utf-8", newline="")
    return replace(export, path=copy, encoding="utf-8", label=export.title)


def detect_format(columns: Sequence[str]) -> ExportFormat:
    """The export format whose required columns the header holds; an error naming the closest format otherwise."""
    present = set(columns)
    for fmt, required in _REQUIRED.items():
        if all(c in present for c in required):
            return fmt
    closest, missing = min(
        ((fmt, [c for c in required if c not in present]) for fmt, required in _REQUIRED.items()),
        key=lambda item: len(item[1]) / len(_REQUIRED[item[0]]),
    )
    if len(missing) == len(_REQUIRED[closest]):
        raise ExportFileError(
            "header matches no known export (not an Altur contact/results or call export, nor a Connectly sendout)"
        )
    raise ExportFileError(
        f"header matches no known export (closest: {closest.value}, missing columns: {', '.join(missing)})"
    )


def open_export(path: Path, as_results: bool = False) -> ExportFile:
    """Detect a file's format from its header; `as_results` labels a contact export as a results export."""
    header = read_header(path)
    fmt = detect_format(header.columns)
    if as_results:
        if fmt is not ExportFormat.ALTUR_CONTACTS:
            raise ExportFileError(f"--as results applies to contact/results exports, this is {fmt.value}")
        fmt = ExportFormat.ALTUR_RESULTS
    return ExportFile(
        path=path,
        storage=header.storage,
        format=fmt,
        columns=header.columns,
        delimiter=header.delimiter,
        encoding=header.encoding,
    )
