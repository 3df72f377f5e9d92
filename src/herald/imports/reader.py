"""Reading a contact CSV into rows ready to store, and rejects that say why."""

from __future__ import annotations

import contextlib
import csv
import gc
import re
from collections.abc import Callable, Container, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from herald.imports.decoding import decode, detect_delimiter, header_line
from herald.imports.errors import ImportFileError
from herald.imports.header import Header, parse_header
from herald.imports.model import ContactRow, ImportResult
from herald.imports.phones import PhoneNormalizer
from herald.imports.records import make_collector, scan

if TYPE_CHECKING:
    from _csv import Reader

_PROGRESS_EVERY = 1 << 16  # characters between two progress calls


# A physical line with its ending (\r\n, \r or \n), or the last line without one: what io.StringIO(newline="")
# yields, without the copy of the whole text StringIO makes (4 bytes a character: 335 MB for a 1M-row file).
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+")


def _lines(text: str, scale: float, progress: Callable[[int], None] | None) -> Iterator[str]:
    """Physical lines of ``text`` (universal newlines, kept), reporting progress in source bytes."""
    lines = map(re.Match.group, _LINE.finditer(text))
    if progress is None:
        return lines
    return _counted(lines, scale, progress)


def _counted(lines: Iterator[str], scale: float, progress: Callable[[int], None]) -> Iterator[str]:
    consumed = 0
    next_report = _PROGRESS_EVERY
    for line in lines:
        yield line
        consumed += len(line)
        if consumed >= next_report:
            next_report = consumed + _PROGRESS_EVERY
            progress(int(consumed * scale))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of acyclic rows.

    Every 700 new containers trigger a collection, and the older generations get re-scanned
    as the row list grows; nothing built here forms a cycle, so the pauses are pure cost.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _header(reader: Reader) -> Header:
    try:
        return parse_header(next(reader))
    except csv.Error as exc:
        raise ImportFileError(f"line 1: malformed CSV header ({exc}); check the quoting") from exc


def read_contacts(
    source: Path | bytes,
    *,
    default_region: str,
    existing: Container[str] = frozenset(),
    suppressed: Container[str] = frozenset(),
    if_duplicate: Literal["skip", "update"] = "skip",
    progress: Callable[[int], None] | None = None,
    sink: Callable[[list[ContactRow]], None] | None = None,
) -> ImportResult:
    """Read a contact CSV (path or bytes) and return accepted rows and rejects, in file order.

    ``default_region`` (ISO 3166 alpha-2) reads numbers written without a country code.
    ``existing`` holds the E.164 numbers already in the campaign, ``suppressed`` the business's
    opt-outs. With ``if_duplicate="skip"`` a repeated number is rejected (``DUPLICATE``); with
    ``"update"`` a number already in the campaign comes back as a row with ``update=True``, and
    when a number repeats inside the file the later record replaces the earlier one (which is
    reported as a ``DUPLICATE`` reject, "overwritten by line N"). ``progress`` is called with the
    number of source bytes read so far (the last call passes the total).

    With ``sink``, accepted rows are handed to it in file order and the result's ``rows`` is empty: in skip mode in
    chunks as they are read (memory stays flat in the file's rows), in update mode all at once when the file is read. A sink
    that writes to a database should do so in one transaction, because the file may still turn out broken.

    Raises ImportFileError when the file itself is unusable: before returning anything without a sink, possibly after
    some chunks went to the sink with one.
    """
    if if_duplicate not in ("skip", "update"):
        raise ValueError(f"if_duplicate must be 'skip' or 'update', not {if_duplicate!r}")
    normalize = PhoneNormalizer(default_region)
    data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    text, encoding = decode(data)
    size = len(data)
    del data  # the text is all that is read from here on; a large file's bytes need not stay in memory
    if not text or text.isspace():  # not text.strip(): no copy of a large file
        raise ImportFileError("the file is empty")
    delimiter = detect_delimiter(header_line(text))
    scale = size / len(text)
    reader = csv.reader(_lines(text, scale, progress), delimiter=delimiter, strict=True)
    header = _header(reader)
    add, collected = make_collector(header, normalize, existing, suppressed, if_duplicate == "update", sink)
    with _gc_paused():
        records = scan(reader, add)
    if sink is not None:
        if collected.rows:  # the last partial chunk, or (update mode) every row
            sink(collected.rows)
        collected.rows = []
    if progress is not None:
        progress(size)
    # Overwritten records (update mode) are reported when their replacement is read.
    collected.rejects.sort(key=lambda r: r.line)
    return ImportResult(
        collected.rows,
        collected.rejects,
        header.names,
        encoding,
        delimiter,
        collected.blank,
        records=records,
        padded_lines=collected.padded,
    )
