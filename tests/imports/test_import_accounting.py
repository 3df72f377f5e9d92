"""Nothing unaccounted: every data record of a contact file is a row, a reject or a blank (issue 14)."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from herald.imports import read_contacts

cells = st.sampled_from(["", " ", "5512345678", "+52 55 1234 5679", "nope", "Ana", "=1+2", "x"])
records = st.lists(st.lists(cells, min_size=0, max_size=6), max_size=30)


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["contact", "name", "context", "plan"])
    for row in rows:
        if row:
            writer.writerow(row)
        else:
            buffer.write("\n")
    return buffer.getvalue().encode("utf-8")


@given(rows=records, update=st.booleans())
@settings(deadline=None)
def test_rows_rejects_and_blanks_add_up_to_the_records(rows: list[list[str]], update: bool) -> None:
    result = read_contacts(_csv(rows), default_region="MX", if_duplicate="update" if update else "skip")
    assert len(result.rows) + len(result.rejects) + result.blank_lines == result.records == len(rows)


def test_short_records_are_reported_as_padded() -> None:
    data = b"contact,name,context,plan\n5512345678,Ana,late,gold\n5512345679,Luis\n5512345670\n"
    result = read_contacts(data, default_region="MX")
    assert result.padded_lines == [3, 4]
    assert [row.name for row in result.rows] == ["Ana", "Luis", ""]
    assert result.rows[1].input_variables == {"plan": ""}
