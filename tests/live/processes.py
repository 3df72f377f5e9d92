"""Real OS processes for the acceptance tests: `herald` commands started, watched and always stopped."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.domain.statuses import CampaignStatus
from herald.store.queries import Store

#: A guard against a hang, not a speed check: a test that waits this long has failed for another reason.
HANG_GUARD_SECONDS = 600.0


class Processes:
    """Starts `python -m herald …` processes with their output in files; stops every one it started."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.database_url = database_url
        self.started: list[subprocess.Popen[bytes]] = []
        self._count = 0

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "HERALD_DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1", **extra}

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        self._count += 1
        log = (self.folder / f"process-{self._count}-{args[0]}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "herald", *args], stdout=log, stderr=subprocess.STDOUT, env=self.env(**env)
        )
        process.log_path = Path(log.name)  # type: ignore[attr-defined]
        self.started.append(process)
        return process

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A command run to its end (bounded by the hang guard)."""
        return subprocess.run(
            [sys.executable, "-m", "herald", *args],
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()


def log_of(process: subprocess.Popen[bytes]) -> str:
    path: Path = process.log_path  # type: ignore[attr-defined]
    return path.read_text(errors="replace")


@pytest.fixture
def processes(tmp_path: Path, database_url: str) -> Iterator[Processes]:
    """Processes on `database_url`, all stopped at the end of the test."""
    started = Processes(tmp_path, database_url)
    try:
        yield started
    finally:
        started.stop_all()


def wait_for(condition: Callable[[], Any], what: str, every: float = 0.2) -> Any:
    """Poll `condition` until it is truthy (bounded by the hang guard): synchronisation on a state, not a sleep."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")


def stop(processes: Sequence[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> list[int]:
    """Signal each process and return their exit codes."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    return [process.wait(timeout=HANG_GUARD_SECONDS) for process in processes]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(port: int) -> bool:
    """Whether a `herald serve` on this port answers its health check."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def serve(processes: Processes, port: int | None = None, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """A `herald serve` on `port` (default: a free one), answering; returns the process and its base URL."""
    port = free_port() if port is None else port
    process = processes.start("serve", "--port", str(port), **env)
    wait_for(lambda: healthy(port) or process.poll() is not None, "herald serve to answer")
    assert process.poll() is None, log_of(process)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """Herald's store on `database_url`, for the checks."""
    opened = Store.open(database_url)
    yield opened
    opened.close()


def campaign_status(store: Store) -> CampaignStatus:
    """The status of campaign 1 now."""
    with store.read() as tx:
        return tx.campaign(1).status


@contextmanager
def fake_server(log: Path, module: str, *options: str) -> Iterator[str]:
    """`python -m herald.testing.<module>` as a process (stderr in `log`), stopped at the end; yields its base URL."""
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", f"herald.testing.{module}", "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    try:
        assert process.stdout is not None
        port = json.loads(process.stdout.readline())["port"]
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=HANG_GUARD_SECONDS)


def fake_stats(url: str) -> dict[str, Any]:
    """A fake's `GET /stats` document."""
    return dict(httpx.get(f"{url}/stats", timeout=10).json())


def load_campaign(processes: Processes, folder: Path, campaign: str, contacts: Sequence[str], **env: str) -> None:
    """Write `campaign` (YAML) and the contacts CSV lines into `folder`, then create the campaign and import them."""
    (folder / "campaign.yaml").write_text(campaign)
    (folder / "contacts.csv").write_text("\n".join(contacts) + "\n")
    for args in (
        ("campaign", "create", str(folder / "campaign.yaml")),
        ("contacts", "import", "1", str(folder / "contacts.csv")),
    ):
        result = processes.run(*args, **env)
        assert result.returncode == 0, result.stderr


def kill_workers(
    processes: Processes,
    running: list[subprocess.Popen[bytes]],
    store: Store,
    *,
    kills: int,
    rng: random.Random,
    done: Callable[[], int],
    most: int,
    what: str,
    **env: str,
) -> None:
    """Kill `kills` of the `running` workers (SIGKILL) at random moments, each replaced by a new one in `running`:
    each kill waits until `done()` grew by 5 to `most` more, or the campaign finished."""
    for _ in range(kills):
        target = done() + rng.randint(5, most)
        wait_for(
            lambda target=target: done() >= target or campaign_status(store) is CampaignStatus.FINISHED,
            what,
            every=0.05,
        )
        victim = running.pop(rng.randrange(len(running)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        running.append(processes.start("worker", "--poll", "0.2", **env))
