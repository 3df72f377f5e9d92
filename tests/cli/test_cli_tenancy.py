"""`herald business`, `keys`, `agents`, `integrations` on a real SQLite file; keys work against the API."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from herald.api.app import create_app
from herald.cli import app
from herald.store.queries import Store


def _run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output + str(result.exception)
    return result.stdout if code == 0 else result.stderr


def test_a_key_is_printed_once_stored_hashed_and_works_until_revoked(herald: CliRunner, tmp_path: Path) -> None:
    made = json.loads(_run(herald, "keys", "create", "--business", "Acme Cobranza", "--json"))
    assert set(made) == {"business", "business_id", "key"} and made["business"] == "Acme Cobranza"
    key = made["key"]
    listed = json.loads(_run(herald, "keys", "list", "--json"))
    assert len(listed) == 1 and key not in json.dumps(listed) and key.startswith(listed[0]["prefix"])
    assert key.encode() not in (tmp_path / "cli.db").read_bytes()  # only its hash is kept

    store = Store.open(f"sqlite:///{tmp_path / 'cli.db'}")
    with TestClient(create_app(store)) as client:
        headers = {"Authorization": f"api-key {key}"}
        assert client.get("/api/v1.0/agents", headers=headers).status_code == 200
        _run(herald, "keys", "revoke", listed[0]["prefix"])
        assert client.get("/api/v1.0/agents", headers=headers).status_code == 401
    store.close()
    assert json.loads(_run(herald, "keys", "list", "--json"))[0]["revoked_at"] is not None
    assert "no live key" in _run(herald, "keys", "revoke", listed[0]["prefix"], code=1)


def test_businesses_agents_and_integrations(herald: CliRunner, tmp_path: Path) -> None:
    created = json.loads(_run(herald, "business", "create", "globex", "--json"))
    assert "already exists" in _run(herald, "business", "create", "globex", code=1)
    assert [b["name"] for b in json.loads(_run(herald, "business", "list", "--json"))] == ["globex"]
    (tmp_path / "agent.yaml").write_text("name: Cobranza\ntags: [promesa]\nconversion: {tag: promesa}\n")
    agent = json.loads(_run(herald, "agents", "create", "agent.yaml", "--business", "globex", "--json"))
    assert agent["integrations"] == []
    (tmp_path / "bad.yaml").write_text("name: X\nconversion: {tag: nope}\n")
    assert "nope" in _run(herald, "agents", "create", "bad.yaml", "--business", "globex", code=1)
    assert "no business" in _run(herald, "agents", "create", "agent.yaml", "--business", "nobody", code=1)

    (tmp_path / "options.yaml").write_text("time_scale: 0.5\n")
    integration = ["integrations", "create", "--agent", agent["public_id"], "--provider", "simulator"]
    added = json.loads(_run(herald, *integration, "--options", "options.yaml", "--channel", "whatsapp", "--json"))
    assert added["public_id"].startswith("iwa_")
    (tmp_path / "wrong.yaml").write_text("no_such_option: 1\n")
    assert "no_such_option" in _run(herald, *integration, "--options", "wrong.yaml", code=1)
    assert "no agent" in _run(herald, "integrations", "create", "--agent", "x", "--provider", "simulator", code=1)
    refused = ["integrations", "create", "--agent", agent["public_id"], "--provider", "twilio", "--channel", "whatsapp"]
    assert "provider 'twilio' works on phone_call campaigns only, not whatsapp" in _run(herald, *refused, code=1)
    listed = json.loads(_run(herald, "agents", "list", "--business", "globex", "--json"))["agents"]
    assert [a["public_id"] for a in listed][1] == agent["public_id"]
    assert listed[1]["integrations"] == [
        {"public_id": added["public_id"], "integration_type": "whatsapp", "provider": "simulator"}
    ]
    assert created["agent_id"] == listed[0]["public_id"]
