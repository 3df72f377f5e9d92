"""Turning the raw bytes of a contact file into text, and finding its delimiter."""

from __future__ import annotations

import codecs

from herald.imports.errors import ImportFileError

DELIMITERS = (",", ";", "\t")

# C0 control characters that never appear in a text CSV (tab, LF, VT, FF, CR are fine).
_CONTROL = frozenset(chr(c) for c in range(32)) - {"\t", "\n", "\x0b", "\x0c", "\r"}
_SNIFF_CHARS = 8192


def decode(data: bytes) -> tuple[str, str]:
    """Decode a contact file; return ``(text, encoding)``.

    UTF-8 is tried first (a BOM is accepted and dropped). Bytes that are not valid UTF-8 are
    taken as Windows-1252, the usual "Latin-1" of spreadsheet exports, and as ISO-8859-1 when
    they use one of the five bytes cp1252 leaves undefined. Binary input raises ImportFileError.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError("the file is UTF-16 encoded; save it as CSV UTF-8")
    if data.startswith(b"PK\x03\x04"):
        raise ImportFileError("the file is a ZIP archive (an .xlsx workbook?); export it as CSV")
    if b"\x00" in data:
        raise ImportFileError("the file is binary (it contains NUL bytes), not a CSV text file")
    if data.startswith(codecs.BOM_UTF8):
        text, encoding = data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            try:
                text, encoding = data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError:
                text, encoding = data.decode("latin-1"), "latin-1"
    sample = text[:_SNIFF_CHARS]
    controls = sum(1 for ch in sample if ch in _CONTROL)
    # A stray control character can sit in a real export; a run of them means binary data.
    if controls > max(2, len(sample) // 100):
        raise ImportFileError("the file is binary (control characters), not a CSV text file")
    return text, encoding


def header_line(text: str) -> str:
    """The header record of ``text``: its first line, extended while a quoted field is open."""
    in_quotes = False
    for end, ch in enumerate(text):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            return text[:end]
    return text


def detect_delimiter(header: str) -> str:
    """The delimiter used by ``header``: the most frequent of comma, semicolon, tab outside quotes.

    Ties (including none at all) go to the comma, the documented default.
    """
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    for ch in header:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","
