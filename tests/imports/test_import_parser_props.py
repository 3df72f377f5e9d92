"""Property tests: whatever a spreadsheet writes, the reader gets the same table back."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.imports import read_contacts
from herald.imports.reader import _lines

# Non-ASCII letters all encode to cp1252 bytes >= 0xC0, so a cp1252 file that uses any of them is
# never valid UTF-8 and must be detected as Latin-1.
ALPHABET = "aZ09 ,;\t\"'\n\r-éñüÑ"
cell = st.text(alphabet=ALPHABET, max_size=12)
var_name = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"contact", "name", "context", "id", "override_agent_name", "override_agent_voice_id"}
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    variables = draw(st.lists(var_name, max_size=4, unique=True))
    header = ["contact", "name", "context", *variables]
    order = draw(st.permutations(range(len(header))))
    header = [header[i] for i in order]
    n_rows = draw(st.integers(0, 8))
    rows = []
    for k in range(n_rows):
        values = {"contact": f"55 1234 {k:04d}"}
        for col in header:
            if col != "contact":
                values[col] = draw(cell)
        rows.append([values[c] for c in header])
    return header, rows


def render(header: list[str], rows: list[list[str]], delimiter: str) -> tuple[str, list[int]]:
    """CSV text and the physical line each data record starts on."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    starts = []
    for row in rows:
        so_far = buffer.getvalue()
        starts.append(len(io.StringIO(so_far, newline="").readlines()) + 1)
        writer.writerow(row)
    return buffer.getvalue(), starts


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([",", ";", "\t"]), st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
def test_round_trip(table: tuple[list[str], list[list[str]]], delimiter: str, encoding: str) -> None:
    header, rows = table
    text, starts = render(header, rows, delimiter)
    result = read_contacts(text.encode(encoding), default_region="MX")
    assert result.delimiter == delimiter
    assert result.columns == header
    non_ascii = any(ord(ch) > 127 for ch in text)
    if encoding == "cp1252":
        assert result.encoding == ("cp1252" if non_ascii else "utf-8")
    else:
        assert result.encoding == encoding
    # Rows whose every cell is blank are filler and skipped; all others come back, in order.
    kept = [(line, row) for line, row in zip(starts, rows, strict=True) if any(v.strip() for v in row)]
    assert result.rejects == []
    assert result.blank_lines == len(rows) - len(kept)
    assert [r.line for r in result.rows] == [line for line, _ in kept]
    for got, (_, row) in zip(result.rows, kept, strict=True):
        values = dict(zip(header, row, strict=True))
        assert got.contact == "+52551234" + values["contact"][-4:]
        assert got.name == values["name"].strip()
        assert got.context == values["context"].strip()
        assert got.input_variables == {c: values[c].strip() for c in header if c not in ("contact", "name", "context")}


@given(st.text(alphabet='ab,"\r\n\t é', max_size=60))
def test_physical_lines_split_like_universal_newlines(text: str) -> None:
    # The reader splits lines itself (no StringIO copy of a large file); it must cut exactly where StringIO does.
    assert list(_lines(text, 1.0, None)) == list(io.StringIO(text, newline=""))
