"""`herald doctor` against real databases (SQLite file, PostgreSQL) and a real `herald serve` on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from herald.cli import app
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store import claims
from herald.store.db import connect
from herald.store.migrate import upgrade
from herald.store.queries import Store
from herald.store.tenancy import agents, create_integration, ensure_business


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(database_url: str, tmp_path: object) -> Iterator[str]:
    """A migrated database and `herald serve` on it; yields the server's base URL."""
    Store.open(database_url).close()
    port = free_port()
    env = {**os.environ, "HERALD_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "herald", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # a hang guard, not a speed check
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "herald serve did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


def doctor(database_url: str, public_url: str | None, **env: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Run `herald doctor --json` (and its text form); return the exit code, checks by name and the text output."""
    environ = {"HERALD_DATABASE_URL": database_url, "HERALD_PUBLIC_URL": public_url, **env}
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--json", "--timeout", "5"], env=environ)
    body = json.loads(result.stdout)
    text = runner.invoke(app, ["doctor", "--timeout", "5"], env=environ)
    assert text.exit_code == result.exit_code
    assert body["ok"] is (result.exit_code == 0)
    return result.exit_code, {check["name"]: check for check in body["checks"]}, text.stdout


def with_credential_and_worker(database_url: str) -> str:
    """An integration whose token is `env:DOCTOR_TOKEN`, and a worker that just beat; returns the integration id."""
    store = Store.open(database_url)
    now = RealClock().now()
    with store.tx() as tx:
        business, _ = ensure_business(tx, "acme", now, IdFactory())
        agent = agents(tx, business.id)[0]
        integration = create_integration(
            tx, agent.id, "phone_call", "http",
            {"base_url": "http://127.0.0.1:9", "auth_token": "env:DOCTOR_TOKEN", "webhook_secret": "env:DOCTOR_SECRET"},
            now, IdFactory(),
        )  # fmt: skip
        claims.register(tx, "worker", now)
    store.close()
    return integration.public_id


def test_a_healthy_installation_passes_every_check(database_url: str, served: str) -> None:
    integration = with_credential_and_worker(database_url)
    code, checks, text = doctor(database_url, served, DOCTOR_TOKEN="value-1", DOCTOR_SECRET="dmFsdWUtMg==")
    assert code == 0, checks
    assert {name: check["status"] for name, check in checks.items()} == {
        "database URL": "ok", "public URL": "ok", "database": "ok", "migrations": "ok",
        "provider credentials": "ok", "workers": "ok", "public URL reachable": "ok",
    }  # fmt: skip
    assert "DOCTOR_TOKEN" in checks["provider credentials"]["detail"]
    assert "value-1" not in text and len(text.strip().splitlines()) == 7
    assert integration


def test_missing_credentials_and_an_unreachable_public_url_fail(database_url: str) -> None:
    integration = with_credential_and_worker(database_url)
    unused = f"http://127.0.0.1:{free_port()}"
    code, checks, text = doctor(database_url, unused, DOCTOR_SECRET="dmFsdWUtMg==")
    assert code == 1
    credentials = checks["provider credentials"]
    assert credentials["status"] == "fail" and "DOCTOR_TOKEN" in credentials["detail"]
    assert integration in credentials["detail"] and "DOCTOR_SECRET" not in credentials["detail"]
    reachable = checks["public URL reachable"]
    assert reachable["status"] == "fail" and "cannot connect" in reachable["detail"] and unused in reachable["detail"]
    assert "FAIL public URL reachable" in text


@pytest.mark.empty_database  # upgraded to 0002 only
def test_a_schema_behind_names_the_command_and_init_fixes_it(database_url: str) -> None:
    engine = connect(database_url)
    upgrade(engine, "0002")
    engine.dispose()
    code, checks, _ = doctor(database_url, "http://127.0.0.1:9")
    assert code == 1
    assert checks["migrations"]["status"] == "fail" and "herald init" in checks["migrations"]["detail"]
    assert checks["workers"]["status"] == "skip"
    assert CliRunner().invoke(app, ["init"], env={"HERALD_DATABASE_URL": database_url}).exit_code == 0
    _, checks, _ = doctor(database_url, "http://127.0.0.1:9")
    assert checks["migrations"]["status"] == "ok"


def test_an_active_campaign_without_workers_fails(database_url: str) -> None:
    from herald.domain.campaign import parse_campaign
    from herald.engine.campaigns import act, add_contacts, create_campaign
    from herald.store.queries import NewContact

    store = Store.open(database_url)
    now = datetime.now(UTC)
    campaign_id = create_campaign(store, parse_campaign({"name": "C", "channel": "phone_call"}), now, IdFactory())
    add_contacts(store, campaign_id, [NewContact(contact="+525500000001", name="A", context="")], now)
    act(store, campaign_id, "activate", now)
    store.close()
    _, checks, _ = doctor(database_url, "http://127.0.0.1:9")
    assert checks["workers"]["status"] == "fail" and "herald worker" in checks["workers"]["detail"]


def test_configuration_problems(tmp_path: object) -> None:
    missing = f"sqlite:///{tmp_path}/nothing-here.db"
    code, checks, _ = doctor(missing, "ftp://example.com")
    assert code == 1
    assert checks["public URL"]["status"] == "fail" and "http(s)" in checks["public URL"]["detail"]
    assert checks["database"]["status"] == "fail" and "herald init" in checks["database"]["detail"]
    assert {checks[name]["status"] for name in ("migrations", "provider credentials", "workers")} == {"skip"}
    code, checks, _ = doctor("not a url", None)
    assert checks["database URL"]["status"] == "fail" and checks["public URL"]["status"] == "warn"
