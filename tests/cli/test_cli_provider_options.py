"""A campaign's provider and its options are checked when the file is read (create, validate, edit), by the
provider's own model, so a bad campaign never reaches `herald run` or a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

BASE = "name: Options\nchannel: phone_call\n"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    made = CliRunner()
    assert made.invoke(app, ["init"]).exit_code == 0
    return made


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("provider: carrier_pigeon\n", "unknown provider 'carrier_pigeon'; known providers: http, simulator"),
        ("provider: whatsapp_cloud\n", "provider 'whatsapp_cloud' works on whatsapp campaigns only, not phone_call"),
        ("provider_options: {phone: {human: -1}}\n", "phone.human: Input should be greater than or equal to 0"),
        (
            "provider_options: {phone: {human: 0, machine: 0, unknown: 0, no_answer: 0, busy: 0, failed: 0}}\n",
            "the call outcome weights (human … failed) add up to zero",
        ),
        ("provider_options: {whatsapp: {error_codes: {'131026': 0}}}\n", "add up to more than zero"),
        ("provider_options: {conversation: {tag_rate: 1.5}}\n", "conversation.tag_rate: Input should be less than"),
        ("provider_options: {speling: 1}\n", "speling: Extra inputs are not permitted"),
        (
            "provider: http\nprovider_options: {base_url: 'ftp://agent', auth_token: t}\n",
            "webhook_secret: Field required",
        ),
    ],
)
def test_bad_provider_options_are_refused_when_the_file_is_read(
    runner: CliRunner, tmp_path: Path, extra: str, message: str
) -> None:
    (tmp_path / "c.yaml").write_text(BASE + extra)
    for command in (["campaign", "validate", "c.yaml"], ["campaign", "create", "c.yaml"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    listed = runner.invoke(app, ["campaign", "list", "--json"])
    assert listed.exit_code == 0 and listed.stdout.strip() == "[]"


def test_a_good_http_campaign_with_credentials_from_the_environment_is_accepted(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "c.yaml").write_text(
        BASE + "provider: http\nprovider_options: {base_url: 'https://agent.example', auth_token: 'env:T', "
        "webhook_secret: 'env:S'}\n"
    )
    result = runner.invoke(app, ["campaign", "create", "c.yaml"])
    assert result.exit_code == 0, result.output
