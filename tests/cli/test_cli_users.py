"""`herald users create / list` on a real SQLite file; the user then signs in to the web console."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from herald.api.app import create_app
from herald.cli import app
from herald.store.queries import Store


def test_a_user_is_created_from_stdin_stored_hashed_and_signs_in(herald: CliRunner, tmp_path: Path) -> None:
    assert herald.invoke(app, ["business", "create", "Acme"]).exit_code == 0
    password = "s3cret password"
    made = herald.invoke(
        app,
        ["users", "create", "--business", "Acme", "--email", "Ops@Acme.test", "--password-stdin", "--json"],
        input=password + "\n",
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["email"] == "ops@acme.test"
    assert password.encode() not in (tmp_path / "cli.db").read_bytes()  # only the Argon2 hash is kept
    listed = json.loads(herald.invoke(app, ["users", "list", "--json"]).stdout)
    assert [(u["business"], u["email"]) for u in listed] == [("Acme", "ops@acme.test")]

    taken = herald.invoke(
        app, ["users", "create", "--business", "Acme", "--email", "ops@acme.test", "--password-stdin"], input="x" * 9
    )
    assert taken.exit_code == 1 and "already exists" in taken.stderr
    short = herald.invoke(
        app, ["users", "create", "--business", "Acme", "--email", "b@acme.test", "--password-stdin"], input="short"
    )
    assert short.exit_code == 1 and "at least 8" in short.stderr
    nobody = herald.invoke(
        app, ["users", "create", "--business", "Nope", "--email", "c@acme.test", "--password-stdin"], input="x" * 9
    )
    assert nobody.exit_code == 1 and "no business" in nobody.stderr
    assert herald.invoke(app, ["users", "create", "--business", "Acme", "--email", "d@acme.test"]).exit_code == 1

    store = Store.open(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        client = TestClient(create_app(store, rate_limit=None), follow_redirects=False)
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        signed = client.post("/login", data={"csrf_token": token, "email": "ops@acme.test", "password": password})
        assert signed.status_code == 303
        assert client.get("/").status_code == 200
    finally:
        store.close()
