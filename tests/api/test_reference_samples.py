"""The reference's own Python samples, run as written against a real `herald serve` on 127.0.0.1.

The samples are read from the reference pages at test time (never copied into the project); only the base URL, the
key and the example ids are replaced by this server's. Each must run without an exception (they call
`raise_for_status()`) and give the documented answer.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import Store
from herald.store.tenancy import agents, create_key, ensure_business

PAGES = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "altur" / "pages"
HANG_GUARD_SECONDS = 600.0
_PYTHON = re.compile(r"```python[^\n]*\n(.*?)```", re.DOTALL)


def samples(page: str) -> list[str]:
    """The Python code samples of a reference page, in page order."""
    path = PAGES / f"api-reference_campaigns_{page}.mdx"
    if not path.exists():
        pytest.skip(f"REFERENCE PAGES ABSENT: {path} not found; the reference samples were not run")
    return _PYTHON.findall(path.read_text(encoding="utf-8"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`herald serve` on a free port of 127.0.0.1, stopped at the end; yields its base URL."""
    Store.open(database_url).close()  # migrated before the server starts
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    # The samples run back to back: no rate limit (it has tests of its own).
    env = {**os.environ, "HERALD_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", "HERALD_RATE_LIMIT": "off"}
    process = subprocess.Popen(
        [sys.executable, "-m", "herald", "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)  # polling for the server to answer, not standing in for synchronisation
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=HANG_GUARD_SECONDS)


class Ids:
    """The ids the samples' placeholders become."""

    def __init__(self, base: str, database_url: str) -> None:
        store = Store.open(database_url)
        now = RealClock().now()
        with store.tx() as tx:
            business, _ = ensure_business(tx, "samples", now, IdFactory())
            _, self.key = create_key(tx, business.id, now)
            agent = agents(tx, business.id)[0]
        store.close()
        self.base = f"{base}/api/v1.0"
        self.agent = agent.public_id
        self.integrations = {i.integration_type: i.public_id for i in agent.integrations}
        self.headers = {"Authorization": f"api-key {self.key}"}
        created = httpx.post(
            f"{self.base}/campaigns",
            headers=self.headers,
            json={
                "name": "Samples",
                "agent_id": self.agent,
                "integration_id": self.integrations["phone_call"],
                "integration_type": "phone_call",
                "cycles": {"enabled": True, "mode": "cooldown", "max_iterations": 2},
            },
        )
        assert created.status_code == 201, created.text
        self.campaign = int(created.json()["campaign"]["id"])
        added = httpx.post(
            f"{self.base}/campaigns/{self.campaign}/contacts",
            headers=self.headers,
            json={"contacts": [{"contact": "+525500000001"}, {"contact": "+525500000002"}]},
        )
        self.contacts = [int(item["id"]) for item in added.json()["results"]]

    def substitute(self, code: str, contact: int) -> str:
        code = code.replace("https://api.altur.io/api/v1.0", self.base).replace("YOUR_API_SECRET_KEY", self.key)
        code = code.replace("6cy951e6-9877-4d7c-88d7-56b4948d3cce", self.agent)
        code = code.replace("iph_8YqL3mZxR1tV0nKfH9bA", self.integrations["phone_call"])
        code = code.replace("iwa_8YqL3mZxR1tV0nKfH9bA", self.integrations["whatsapp"])
        code = code.replace("/campaigns/1234/contacts/42", f"/campaigns/{self.campaign}/contacts/{contact}")
        return code.replace("/campaigns/1234", f"/campaigns/{self.campaign}")


def run(page: str, ids: Ids, contact: int | None = None) -> list[dict[str, Any]]:
    """Run every Python sample of a page in one namespace (later samples reuse the earlier imports); the names each
    sample left behind."""
    namespace: dict[str, Any] = {"__name__": f"sample_{page}"}
    seen = []
    found = samples(page)
    assert found, f"no Python sample on the {page} page"
    for code in found:
        exec(compile(ids.substitute(code, contact or ids.contacts[0]), f"<{page} sample>", "exec"), namespace)
        seen.append(dict(namespace))
    return seen


def test_the_reference_samples_run_against_herald_serve(server: str, database_url: str) -> None:
    ids = Ids(server, database_url)

    created = run("create", ids)
    assert created[0]["response"].status_code == 201 and isinstance(created[0]["campaign"]["id"], int)
    assert created[1]["response"].status_code == 201
    assert created[1]["response"].json()["campaign"]["integration"]["type"] == "whatsapp"

    batch = run("create-contacts", ids)[0]
    assert batch["response"].status_code == 201
    assert set(batch["body"]["summary"]) == {"created", "updated", "skipped_duplicate", "failed"}
    assert all({"index", "status", "id", "contact", "error"} <= set(item) for item in batch["body"]["results"])

    detail = run("retrieve-detail", ids)[0]
    assert detail["campaign"]["id"] == ids.campaign and "contactsConvertedRate" in detail["analytics"]

    contact = run("retrieve-contact", ids)[0]
    assert contact["contact"]["id"] == ids.contacts[0] and contact["contact"]["contact"] == "+525500000001"

    updated = run("update", ids)
    assert updated[0]["response"].json()["campaign"]["name"] == "Q2 Reactivation - wave 2"
    after = httpx.get(f"{ids.base}/campaigns/{ids.campaign}", headers=ids.headers).json()["campaign"]
    assert after["retries"] == 2 and after["cycles"]["cooldown_minutes"] == 60

    activated = run("lifecycle", ids)[0]
    assert activated["campaign"]["status"] == "active"

    deleted = run("delete-contact", ids, contact=ids.contacts[1])[0]
    assert deleted["response"].status_code == 204
    gone = httpx.get(f"{ids.base}/campaigns/{ids.campaign}/contacts/{ids.contacts[1]}", headers=ids.headers)
    assert gone.status_code == 404

    # The documented failures of the same samples: a second activate is a 409 naming the status.
    again = httpx.post(f"{ids.base}/campaigns/{ids.campaign}/activate", headers=ids.headers)
    assert again.status_code == 409 and again.json()["current_status"] == "active"
