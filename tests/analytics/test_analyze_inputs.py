"""`herald analyze` reads files the way `contacts import` does, and tells empty columns from tags (issue 14)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

runner = CliRunner()


def _analyze(*args: str) -> dict[str, object] | list[dict[str, object]]:
    result = runner.invoke(app, ["analyze", *args, "--json"])
    assert result.exit_code == 0, result.output
    value: dict[str, object] | list[dict[str, object]] = json.loads(result.stdout)
    return value


def _without_file(result: object) -> dict[str, object]:
    assert isinstance(result, dict)
    return {k: v for k, v in result.items() if k != "file"}


def _resave(source: Path, target: Path, *, delimiter: str, encoding: str, bom: bool) -> None:
    """Write `source` as a spreadsheet would re-save it."""
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    target.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode(encoding))


@pytest.mark.parametrize(
    ("delimiter", "encoding", "bom"),
    [(";", "utf-8", True), (";", "cp1252", False), ("\t", "utf-8", False), (",", "cp1252", False)],
)
def test_resaved_exports_read_like_the_original(
    fixtures: Path, tmp_path: Path, delimiter: str, encoding: str, bom: bool
) -> None:
    for name in ("contacts_phone.csv", "calls_seed_layout.csv"):
        resaved = tmp_path / name
        _resave(fixtures / name, resaved, delimiter=delimiter, encoding=encoding, bom=bom)
        assert _without_file(_analyze(str(resaved))) == _without_file(_analyze(str(fixtures / name)))


def test_cp1252_text_is_decoded_as_import_decodes_it(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_bytes("contact;name;status;motivo\n+5255;García;answered;pagó €5\n".encode("cp1252"))
    result = _analyze(str(path))
    assert isinstance(result, dict) and result["fields"] == ["motivo"] and result["contacts"] == 1


def test_an_all_empty_column_is_empty_not_a_tag(tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "contact,name,status,promise,email,notes\n+5255,Ana,answered,True,a@x,\n+5256,Luis,failed,False,,\n",
        encoding="utf-8",
    )
    result = _analyze(str(path))
    assert isinstance(result, dict)
    assert (result["tags"], result["fields"], result["empty_columns"]) == ({"promise": 1}, ["email"], ["notes"])
    shown = runner.invoke(app, ["analyze", str(path)])
    assert "empty columns" in shown.stdout and "notes" in shown.stdout


def test_a_campaign_decides_tags_and_titles_by_export_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["demo", "--contacts", "20", "--out", str(tmp_path / "d")]).exit_code == 0
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'd' / 'herald.db'}")
    results = _analyze("1")
    assert isinstance(results, list)
    assert [r["file"] for r in results] == [
        "campaign 1 contacts",
        "campaign 1 calls",
        "campaign 1 results",
        "campaign 1 recordings",
    ]
    agent = json.loads(runner.invoke(app, ["campaign", "show", "1", "--json"]).stdout)["config"]["agent"]
    for result in (r for r in results if r["format"] in ("altur-contacts", "altur-results")):
        tags, fields = result["tags"], result["fields"]
        assert isinstance(tags, dict) and isinstance(fields, list)
        assert list(tags) == agent["tags"] and fields == [f["name"] for f in agent["fields"]]
        assert result["empty_columns"] == []
    shown = runner.invoke(app, ["analyze", "1"])
    assert "campaign 1 contacts · altur-contacts" in shown.stdout and "herald-campaign" not in shown.stdout
