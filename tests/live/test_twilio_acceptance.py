"""The live system on Twilio Voice: `herald serve`, several `herald worker`s and a fake Twilio as separate processes on
127.0.0.1, on SQLite and on PostgreSQL.

The fake takes calls like Twilio's Calls API and posts signed status callbacks to the StatusCallback URL Herald gave
(with Herald's call id in it) after random delays, some twice and some out of order. The checks are the HTTP provider's
acceptance checks (what the fake says happened is what Herald stored), the exports' billing audit, the account's
calls per second summed over workers (from the fake's own timestamps), and webhooks that must change nothing.
"""

from __future__ import annotations

import csv
import json
import math
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.providers.twilio import signature
from herald.store import schema as t
from herald.store.queries import Store

from .processes import (
    Processes,
    campaign_status,
    fake_server,
    fake_stats,
    free_port,
    kill_workers,
    load_campaign,
    log_of,
    processes,
    serve,
    stop,
    store,
    wait_for,
)
from .test_http_acceptance import check

__all__ = ["processes", "store"]

ACCOUNT = "AC" + "5eed" * 8
TOKEN = "acceptance-twilio-token-0123456789"

CAMPAIGN = """
name: Twilio acceptance
channel: phone_call
timezone: America/Mexico_City
retries: 1
retry_delay_minutes: 0
failed_retry_limit: 1
concurrency_limit: {limit}
agent: {{name: Test, tags: [promise], conversion: {{tag: promise}}}}
provider: twilio
provider_options:
  account_sid: "{account}"
  auth_token: "env:TWILIO_AUTH_TOKEN"
  from_numbers: ["+15005550001", "+15005550002"]
  url: "https://agent.example/twiml"
  record: true
  cps: {cps}
  api_base_url: "{api}"
  timeout_seconds: {timeout}
"""


@contextmanager
def fake_twilio(folder: Path, *extra: str) -> Iterator[str]:
    """The fake Twilio as a process; yields its base URL."""
    options = [
        "--account-sid", ACCOUNT, "--auth-token", TOKEN, "--seed", "3", "--min-delay", "0.05", "--max-delay", "0.6",
    ]  # fmt: skip
    with fake_server(folder / "twilio.log", "fake_twilio", *options, *extra) as url:
        yield url


@pytest.fixture
def twilio(tmp_path: Path) -> Iterator[str]:
    """A fake Twilio that answers 3% of creates with 429."""
    with fake_twilio(tmp_path, "--error-rate-429", "0.03") as url:
        yield url


def _count(store: Store, table: Any, *where: Any) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def most_in_a_window(times: list[float], width: float) -> int:
    """The largest number of start times inside any window of `width` seconds."""
    ordered, best, low = sorted(times), 0, 0
    for high, value in enumerate(ordered):
        while value - ordered[low] >= width:
            low += 1
        best = max(best, high - low + 1)
    return best


class Live:
    """A campaign run by `herald serve` and workers against the fake Twilio."""

    def __init__(self, processes: Processes, store: Store, twilio: str, folder: Path) -> None:
        self.processes, self.store, self.twilio, self.folder = processes, store, twilio, folder
        self.port = free_port()
        self.env = {"TWILIO_AUTH_TOKEN": TOKEN, "HERALD_PUBLIC_URL": f"http://127.0.0.1:{self.port}"}
        self.serve: subprocess.Popen[bytes] | None = None

    def load(self, contacts: int, limit: int, cps: float, timeout: float = 5) -> None:
        text = CAMPAIGN.format(limit=limit, account=ACCOUNT, cps=cps, api=self.twilio, timeout=timeout)
        lines = ["contact,name,context", *(f"+5255{index:08d},Person {index},ctx" for index in range(contacts))]
        load_campaign(self.processes, self.folder, text, lines, **self.env)
        self.serve, _ = serve(self.processes, self.port, **self.env)

    def run(self, workers: int) -> None:
        running = [self.processes.start("worker", "--poll", "0.2", **self.env) for _ in range(workers)]
        assert self.processes.run("campaign", "activate", "1", **self.env).returncode == 0
        wait_for(lambda: campaign_status(self.store) is CampaignStatus.FINISHED, "the campaign to finish", every=0.5)
        # Late callbacks (an out-of-order `ringing` after the end) must be applied before the workers stop.
        wait_for(
            lambda: (
                fake_stats(self.twilio)["pending_callbacks"] == 0
                and _count(self.store, t.events, t.events.c.applied_at.is_(None)) == 0
            ),
            "every callback posted and applied",
            every=0.2,
        )
        assert stop(running) == [0] * workers, [log_of(worker) for worker in running]
        assert "Traceback" not in "".join(log_of(worker) for worker in running)

    def webhook(self, params: dict[str, str], call_id: str, *, token: str = TOKEN) -> httpx.Response:
        url = f"http://127.0.0.1:{self.port}/webhooks/twilio?{urlencode({'call_id': call_id})}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(token, url, sorted(params.items())),
        }
        return httpx.post(url, content=urlencode(params), headers=headers, timeout=10)

    def stop(self) -> None:
        assert self.serve is not None
        assert stop([self.serve]) == [0], log_of(self.serve)


def check_exports(live: Live, contacts: int) -> None:
    """The call export agrees with the store, and its billing audit finds nothing to flag."""
    exported = live.processes.run("export", "1", "calls", "-o", str(live.folder / "calls.csv"), **live.env)
    assert exported.returncode == 0, exported.stderr
    with (live.folder / "calls.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == _count(live.store, t.calls) >= contacts
    for row in rows:
        has_recording = bool(row["recording_url"])
        assert has_recording == (row["status"] == "ended"), row
        assert not has_recording or row["recording_url"].endswith(f"/api/v1.0/call/{row['id']}/recording")
    audit = live.processes.run("analyze", str(live.folder / "calls.csv"), "--json", **live.env)
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    assert report["calls"] == len(rows) and report["billing_anomalies"]["count"] == 0


def check_durations(store: Store, twilio: str) -> None:
    """Each ended call lasted what Twilio's CallDuration said."""
    outcomes = fake_stats(twilio)["outcomes"]
    with store.read() as tx:
        ended = list(tx.connection.execute(select(t.calls).where(t.calls.c.status == "ended")))
    assert ended
    for row in ended:
        assert row.duration == outcomes[row.public_id]["duration"], row.public_id


def check_webhooks_change_nothing(live: Live) -> None:
    """Forged, malformed and unknown callbacks are refused (4xx) and leave the events and calls as they were."""
    with live.store.read() as tx:
        known = tx.connection.execute(select(t.calls.c.public_id, t.calls.c.provider_call_id)).first()
        calls_before = list(tx.connection.execute(select(t.calls).order_by(t.calls.c.id)))
    events_before = _count(live.store, t.events)
    assert known is not None
    params = {"CallSid": known.provider_call_id, "CallStatus": "busy", "Timestamp": "Mon, 05 Jan 2026 15:00:00 +0000",
              "AccountSid": ACCOUNT}  # fmt: skip
    assert live.webhook(params, known.public_id, token="forged-token-0123456789").status_code == 403
    assert live.webhook({**params, "CallSid": "CA" + "9" * 32, "CallStatus": "ringing"}, known.public_id,
                        token="x" * 30).status_code == 403  # fmt: skip
    assert live.webhook({**params, "CallStatus": "exploded"}, known.public_id).status_code == 422
    assert live.webhook({key: v for key, v in params.items() if key != "CallSid"}, known.public_id).status_code == 422
    assert live.webhook(params, "cll_doesnotexist0000000").status_code == 422
    # A signed duplicate of what happened already is accepted and changes nothing.
    assert _count(live.store, t.events) == events_before
    with live.store.read() as tx:
        assert list(tx.connection.execute(select(t.calls).order_by(t.calls.c.id))) == calls_before


def check_a_recording(live: Live) -> None:
    """A recorded call's recording comes through Herald's API, fetched from the fake with the account's credentials."""
    with live.store.read() as tx:
        ended = tx.connection.execute(select(t.calls.c.public_id).where(t.calls.c.status == "ended")).scalars().all()
    recordings = _count(live.store, t.events, t.events.c.kind == "recording")
    assert ended and recordings == len(ended)
    made = live.processes.run("keys", "create", "--business", "default", "--json", **live.env)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    response = httpx.get(
        f"http://127.0.0.1:{live.port}/api/v1.0/call/{ended[0]}/recording",
        headers={"Authorization": f"api-key {key}"},
        timeout=30,
    )
    assert response.status_code == 200 and response.content[:4] == b"RIFF"
    assert TOKEN not in response.text


# SQLite here; the killed-worker and calls-per-second runs below are on PostgreSQL (CI time: ~37 s a run).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("workers", [2])
def test_serve_and_workers_run_a_campaign_through_twilio(
    processes: Processes, store: Store, twilio: str, tmp_path: Path, workers: int, database_url: str
) -> None:
    live = Live(processes, store, twilio, tmp_path)
    contacts, limit = 300, 30
    live.load(contacts, limit, cps=25)
    live.run(workers)
    check_webhooks_change_nothing(live)
    check_a_recording(live)
    live.stop()
    check(store, twilio, contacts=contacts, limit=limit)
    check_durations(store, twilio)
    check_exports(live, contacts)
    stats = fake_stats(twilio)
    assert stats["unauthorized"] == 0 and stats["injected_429"] > 0
    # The fake Twilio's own clock: never more than the account's rate (25 a second, a burst of 1) plus a little
    # jitter of the HTTP requests in flight, over any second or two.
    for width in (1.0, 2.0):
        assert most_in_a_window(stats["start_times"], width) <= math.ceil(width * 25) + 1 + 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one database is enough here: CI time
def test_the_calls_per_second_hold_across_worker_processes(
    processes: Processes, store: Store, twilio: str, tmp_path: Path
) -> None:
    # Enough calls allowed in flight for every one to start at once, were it not for the account's 2 a second.
    live = Live(processes, store, twilio, tmp_path)
    live.load(contacts=24, limit=24, cps=2)
    live.run(3)
    live.stop()
    stats = fake_stats(twilio)
    times = stats["start_times"]
    assert len(times) == stats["placements"] >= 24
    for width in (1.0, 2.0, 5.0):
        # GCRA with a burst of 1: at most ceil(width * 2) starts in any window of `width` seconds; one more for jitter.
        assert most_in_a_window(times, width) <= math.ceil(width * 2) + 1, (width, sorted(times))
    check(store, twilio, contacts=24, limit=24)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one database is enough here: CI time
def test_starts_whose_answers_are_lost_are_never_placed_twice(
    processes: Processes, store: Store, tmp_path: Path
) -> None:
    # Every create times out at Herald (0.3 s) after the fake Twilio has placed the call (it answers after 1 s): each
    # call is known only by its callbacks, which carry Herald's id and bind the CallSid.
    with fake_twilio(tmp_path, "--response-delay", "1.0") as url:
        live = Live(processes, store, url, tmp_path)
        live.load(contacts=30, limit=10, cps=20, timeout=0.3)
        live.run(2)
        live.stop()
        check(store, url, contacts=30, limit=10)
        with store.read() as tx:
            ids = [row[0] for row in tx.connection.execute(select(t.calls.c.provider_call_id))]
        assert ids and all(pid.startswith("CA") for pid in ids)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one database is enough here: CI time
def test_workers_killed_at_random_moments_place_no_call_twice(
    processes: Processes, store: Store, twilio: str, tmp_path: Path
) -> None:
    # Twilio has no idempotency key: a worker killed between a create and its answer leaves a call that only its
    # callbacks (Herald's id in their URL) can bind. Every call the fake placed must be one of Herald's, once.
    live = Live(processes, store, twilio, tmp_path)
    live.load(contacts=150, limit=20, cps=25)
    running = [processes.start("worker", "--poll", "0.2", **live.env) for _ in range(2)]
    assert processes.run("campaign", "activate", "1", **live.env).returncode == 0
    rng = random.Random(11)
    kill_workers(
        processes,
        running,
        store,
        kills=4,
        rng=rng,
        done=lambda: _count(store, t.calls),
        most=30,
        what="calls to be placed",
        **live.env,
    )
    wait_for(lambda: campaign_status(store) is CampaignStatus.FINISHED, "the campaign to finish", every=0.5)
    wait_for(
        lambda: (
            fake_stats(twilio)["pending_callbacks"] == 0
            and _count(store, t.events, t.events.c.applied_at.is_(None)) == 0
        ),
        "every callback posted and applied",
        every=0.2,
    )
    assert stop(running) == [0, 0], [log_of(worker) for worker in running]
    live.stop()
    check(store, twilio, contacts=150, limit=20)
