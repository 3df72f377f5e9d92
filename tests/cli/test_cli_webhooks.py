"""`herald webhooks add|list|remove|deliveries` on a real SQLite file."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

SECRET = base64.b64encode(b"a shared secret for the cli test").decode()


def _run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + str(result.exception)
    return result.stdout if code == 0 else result.stderr


def test_add_list_remove(herald: CliRunner) -> None:
    made = json.loads(
        _run(herald, "webhooks", "add", "https://crm.example/hook", "--secret", SECRET,
             "--events", "on_call_end,campaign.status_changed", "--status", "finished", "--json")
    )  # fmt: skip
    assert made["id"].startswith("whk_") and made["business"] == "default"
    assert made["events"] == ["on_call_end", "campaign.status_changed"] and made["filters"] == {"status": ["finished"]}
    every = json.loads(_run(herald, "webhooks", "add", "http://127.0.0.1:9000/x", "--secret", SECRET, "--json"))
    assert every["events"] == ["on_call_end", "campaign.status_changed", "campaign.cycle_completed"]
    listed = json.loads(_run(herald, "webhooks", "list", "--json"))
    assert [row["id"] for row in listed] == [made["id"], every["id"]]
    assert SECRET not in _run(herald, "webhooks", "list") and SECRET not in json.dumps(listed)
    _run(herald, "webhooks", "remove", made["id"])
    assert [row["id"] for row in json.loads(_run(herald, "webhooks", "list", "--json"))] == [every["id"]]
    assert "no webhook" in _run(herald, "webhooks", "remove", made["id"], code=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://x.test/", "--secret", SECRET], "http:// or https://"),
        (["https://x.test/", "--secret", "not base64 at all"], "base64"),
        (["https://x.test/", "--secret", SECRET, "--events", "on_call_start"], "unknown event"),
        (["https://x.test/", "--secret", SECRET, "--status", "done"], "unknown status"),
        (["https://x.test/", "--secret", SECRET, "--business", "nobody"], "no business"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(herald: CliRunner, args: list[str], message: str) -> None:
    assert message in _run(herald, "webhooks", "add", *args, code=1)
    assert json.loads(_run(herald, "webhooks", "list", "--json")) == []


def test_deliveries_with_their_attempts(herald: CliRunner, tmp_path: Path) -> None:
    from herald.engine.clock import RealClock
    from herald.outbox.delivery import Response, deliver_due
    from herald.store.queries import Store

    from ..outbox.conftest import add_hook

    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: Cobranza\nchannel: phone_call\n")
    contacts = tmp_path / "c.csv"
    contacts.write_text("contact,name,context\n+525512345678,Ana,\n")
    store = Store.open(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        add_hook(store, "https://crm.example/hook", events=("campaign.status_changed",))
        _run(herald, "campaign", "create", str(campaign))
        _run(herald, "contacts", "import", "1", str(contacts))
        deliver_due(store, 1, RealClock(), lambda url, body, headers: Response(503, "busy"))
    finally:
        store.close()
    rows = json.loads(_run(herald, "webhooks", "deliveries", "--json"))
    assert len(rows) == 1 and rows[0]["event_type"] == "campaign.status_changed" and rows[0]["status"] == "pending"
    assert [(a["status_code"], a["error"]) for a in rows[0]["tries"]] == [(503, "busy")]
    assert json.loads(_run(herald, "webhooks", "deliveries", "--status", "delivered", "--json")) == []
    table = _run(herald, "webhooks", "deliveries")
    assert "pending" in table and "503" in table
