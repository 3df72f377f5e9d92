"""Schemathesis against a running `herald serve`: no 5xx and no response outside the schema, for Herald's own
/openapi.json (every check) and for the reference's campaign operations (Altur's openapi.json, base URL overridden).

Schemathesis runs as its command-line tool, as a user would run it, against a real server on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from herald.demo import simulate_campaign
from herald.domain.statuses import Channel
from herald.store.queries import Store

from .processes import HANG_GUARD_SECONDS, Processes, serve, stop

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "altur" / "openapi.json"


def _schemathesis() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (make install puts it in .venv)")
    return found


@dataclass(frozen=True)
class Served:
    """A running `herald serve` with seeded data: its base URL, an API key and ids that exist."""

    base: str
    key: str
    ids: dict[str, str]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    processes = Processes(tmp_path, url)
    store = Store.open(url)
    campaign_id, *_ = simulate_campaign(store, Channel.PHONE_CALL, 20, seed=5)
    store.close()
    made = processes.run("keys", "create", "--business", "default", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    server, base = serve(processes, HERALD_RATE_LIMIT="off")
    ids = {"campaign_id": str(campaign_id), "id": str(campaign_id)}
    yield Served(base, key, ids)
    stop([server])
    processes.stop_all()


def _config(ids: dict[str, str]) -> str:
    # Ids that exist, so operations by id reach their handlers; and a 400 counts as accepting schema-valid data,
    # because some rules cannot be written in a schema (an agent's conversion tag must be one of its tags).
    parameters = "".join(f'"path.{name}" = {value}\n' for name, value in ids.items())
    return (
        f"[parameters]\n{parameters}\n"
        "[checks.positive_data_acceptance]\n"
        'expected-statuses = ["2xx", "400", "401", "404", "409", "429"]\n'
    )


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_schemathesis(), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )


def test_heralds_own_openapi_passes_every_check(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(served.ids))
    result = _run(
        "--config-file", str(config), "run", f"{served.base}/openapi.json",
        "--phases", "examples,fuzzing", "--checks", "all",
        "-H", f"Authorization: api-key {served.key}",
        "--max-examples", "30", "--seed", "1", "--workers", "1",
        "--exclude-path-regex", "^/webhooks/",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
