"""The README's "Using it" section, run line by line in an empty folder (issue 14): the steps must work as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"


def using_it_commands() -> list[list[str]]:
    """The `herald …` lines of the first code block under "## Using it", comments removed."""
    section = README.read_text(encoding="utf-8").split("## Using it", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Using it section has no code block"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "herald":
            commands.append(words[1:])
    return commands


def test_the_section_has_the_main_steps() -> None:
    firsts = [" ".join(c[:2]) for c in using_it_commands()]
    for step in ("examples", "init", "campaign create", "contacts import", "run --until-finished", "export 1"):
        assert any(f.startswith(step) for f in firsts), step


def test_using_it_works_in_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERALD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for command in using_it_commands():
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output, result.exception)
    for produced in ("herald.db", "rejects.csv", "contacts.csv", "calls.csv", "calls.parquet", "report.html"):
        assert (tmp_path / produced).is_file(), produced
