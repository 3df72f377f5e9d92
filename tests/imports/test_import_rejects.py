"""write_rejects: the rejects CSV round-trips through a CSV reader."""

from __future__ import annotations

import csv
from pathlib import Path

from herald.imports import read_contacts, write_rejects


def test_rejects_csv_has_line_reason_detail_and_original_columns(tmp_path: Path) -> None:
    data = 'contact,name,context,plan\n12,"Ana ""A""",x,gold\n5512345678,"Bo\nB",y,\n5512345678,C,z,,MORE\n,D,w,\n'
    result = read_contacts(data.encode(), default_region="MX")
    out = tmp_path / "rejects.csv"
    write_rejects(out, result)
    raw = out.read_bytes()
    assert raw.startswith(b"line,reason,detail,contact,name,context,plan,#5\r\n")
    assert not raw.startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason", "detail", "contact", "name", "context", "plan", "#5"]
    body = [(r[0], r[1], *r[3:]) for r in rows[1:]]
    assert body == [
        ("2", "INVALID_PHONE_NUMBER", "12", 'Ana "A"', "x", "gold", ""),
        ("5", "MALFORMED_ROW", "5512345678", "C", "z", "", "MORE"),
        ("6", "MISSING_CONTACT", "", "D", "w", "", ""),
    ]


def test_no_rejects_writes_header_only(tmp_path: Path) -> None:
    result = read_contacts(b"contact,name,context\n5512345678,a,b\n", default_region="MX")
    out = tmp_path / "r.csv"
    write_rejects(out, result)
    assert out.read_bytes() == b"line,reason,detail,contact,name,context\r\n"
