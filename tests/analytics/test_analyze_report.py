"""The HTML report: valid HTML, no external URLs, every section present, size independent of the row count."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from herald.cli import app

VOID = {"meta", "br", "img", "link", "input", "hr", "area", "base", "col", "embed", "source", "track", "wbr"}


class Checker(HTMLParser):
    """Checks that tags nest and close, and collects ids, sections and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.url_attrs: list[str] = []
        self._file: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if values.get("data-format"):
            self._file = str(values["data-format"])
            self.sections.setdefault(self._file, [])
        if values.get("data-section") and self._file:
            self.sections[self._file].append(str(values["data-section"]))
        self.url_attrs += [str(v) for k, v in attrs if k in ("src", "href", "action", "data") and v]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()


def render(tmp_path: Path, *files: Path) -> str:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["analyze", *map(str, files), "--report", str(target)])
    assert result.exit_code == 0, result.stderr
    return target.read_text(encoding="utf-8")


def test_report_is_valid_self_contained_html_with_every_section(fixtures: Path, tmp_path: Path) -> None:
    html = render(
        tmp_path,
        fixtures / "contacts_phone.csv",
        fixtures / "calls_2026_07.csv",
        fixtures / "sendout.csv",
    )
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert html.startswith("<!DOCTYPE html>")
    assert checker.errors == []
    assert checker.stack == []
    assert len(checker.ids) == len(set(checker.ids))
    assert checker.sections == {
        "altur-contacts": ["status", "reach", "tags", "activity"],
        "altur-calls": ["status", "cost", "anomalies", "activity"],
        "connectly-sendout": ["funnel", "errors", "clicks", "activity"],
    }
    # Nothing is fetched: no external src/href, no <link> or @import, plotly.js inlined (its bundle is ~4.8 MB).
    assert [u for u in checker.url_attrs if re.match(r"(https?:)?//", u)] == []
    assert "<link" not in html
    assert "@import" not in html
    assert "<script src" not in html
    assert len(html) > 3_000_000
    # a chart in every section but the anomalies table: 4 contacts + 3 calls + 4 sendout
    charts = [i for i in checker.ids if i.endswith("-chart")]
    assert len(charts) == 11
    assert all(f'Plotly.newPlot("{c}"' in html for c in charts)
    # the anomalies table lists the anomalous calls
    for call_id in ("cll_c", "cll_f", "cll_i", "cll_k"):
        assert f"<td>{call_id}</td>" in html


def _call_rows(n: int) -> str:
    header = (
        "campaign_name,campaign_date,id,number_to,contact_name,type,status,answered_by,created_at,started_at,"
        "ended_at,duration,billed_duration,recording_url\r\n"
    )
    rows = "".join(
        f"C,2026-01-05,cll_{i:06d},+52155,Ana,outbound,ended,human,2026-01-{1 + i % 28:02d} 10:00:00,"
        f",,{i % 60:02d}:{i % 60:02d},{i % 60:02d}:{(i + (i % 7 == 0)) % 60:02d},\r\n"
        for i in range(n)
    )
    return header + rows


def test_report_size_does_not_grow_with_rows(tmp_path: Path) -> None:
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_text(_call_rows(2_000), encoding="utf-8")
    big.write_text(_call_rows(40_000), encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small_html = render(tmp_path / "a", small)
    big_html = render(tmp_path / "b", big)
    # 20x the rows: the page differs only by the digits of its numbers (anomaly table is capped at 200 rows)
    assert abs(len(big_html) - len(small_html)) < 5_000
    assert "showing the first 200 of" in big_html


def test_report_to_an_unwritable_place_is_one_clear_error(fixtures: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "r.html"
    result = CliRunner().invoke(app, ["analyze", str(fixtures / "sendout.csv"), "--report", str(target)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"herald analyze: {target}: cannot write the report")
