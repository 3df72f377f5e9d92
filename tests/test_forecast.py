"""Campaign forecasts (issue 15): the simulated runs on a copy, their figures, and the real database left alone."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from herald.cli import app
from herald.demo import DEMO_START, example_config, synthetic_contacts
from herald.domain.statuses import Channel
from herald.engine.campaigns import act, create_campaign, import_contacts
from herald.engine.clock import VirtualClock
from herald.engine.forecast import forecast_campaign, sample_size
from herald.engine.runner import Engine
from herald.forecast import RunFigures, reach, spread, summarise
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.queries import NotFound, Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def _campaign(store: Store, channel: Channel = Channel.PHONE_CALL, contacts: int = 30) -> int:
    campaign_id = create_campaign(store, example_config(channel), DEMO_START, IdFactory(3))
    import_contacts(store, campaign_id, synthetic_contacts(contacts, 3), DEMO_START)
    return campaign_id


def _fingerprint(store: Store) -> dict[str, Any]:
    """Every table's row count and a digest of its rows: any write to the database changes it."""
    found: dict[str, Any] = {}
    with store.read() as tx:
        for table in t.metadata.sorted_tables:
            rows = tx.connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            found[table.name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return found


def test_a_forecast_never_writes_to_the_real_database(store: Store) -> None:
    campaign_id = _campaign(store)
    act(store, campaign_id, "activate", DEMO_START)
    engine = Engine(store, Simulator(2), VirtualClock(DEMO_START), IdFactory(2))
    engine.run(until=DEMO_START + timedelta(hours=1))  # half-way: calls made, some in flight
    before = _fingerprint(store)
    assert before["calls"][0] > 0
    forecast_campaign(store, campaign_id, engine.clock.now(), runs=2, seed=1)
    assert _fingerprint(store) == before


def test_the_sqlite_file_is_byte_identical_after_a_forecast(tmp_path: Path) -> None:
    path = tmp_path / "real.db"
    real = Store.open(f"sqlite:///{path}")
    try:
        campaign_id = _campaign(real)
    finally:
        real.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    real = Store.open(f"sqlite:///{path}", migrate=False)
    try:
        forecast_campaign(real, campaign_id, DEMO_START, seed=4)
    finally:
        real.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_the_same_seed_gives_the_same_forecast(store: Store) -> None:
    campaign_id = _campaign(store)
    first = forecast_campaign(store, campaign_id, DEMO_START, runs=2, seed=5).as_json()
    again = forecast_campaign(store, campaign_id, DEMO_START, runs=2, seed=5).as_json()
    other = forecast_campaign(store, campaign_id, DEMO_START, runs=2, seed=6).as_json()
    assert first == again
    assert first != other  # (30 contacts, 2 runs: two seeds giving identical figures would be a broken seed)
    assert first["runs"] == 2 and first["finished_runs"] == 2
    phone = first["phone"]
    assert phone["calls"]["min"] >= 30  # every contact is called at least once
    assert phone["calls"]["min"] <= phone["calls"]["mean"] <= phone["calls"]["max"]
    assert first["whatsapp"] is None and first["days_to_finish"]["min"] > 0


def test_a_running_campaign_forecasts_what_remains(store: Store) -> None:
    campaign_id = _campaign(store, contacts=40)
    act(store, campaign_id, "activate", DEMO_START)
    engine = Engine(store, Simulator(2), VirtualClock(DEMO_START), IdFactory(2))
    fresh = forecast_campaign(store, campaign_id, DEMO_START, seed=1).as_json()
    engine.run(until=DEMO_START + timedelta(hours=3))
    with store.read() as tx:
        counts = tx.status_counts(campaign_id)
        awaiting = sum(1 for c in tx.all_contacts(campaign_id) if c.state.awaiting_attempt or c.inflight_id)
    later = forecast_campaign(store, campaign_id, engine.clock.now(), seed=1).as_json()
    assert later["status"] == "active" and later["remaining"] == awaiting < 40
    assert later["current"] == {"reach": reach(Channel.PHONE_CALL, counts), "conversions": counts.get("converted", 0)}
    assert later["reach"]["min"] >= later["current"]["reach"] > 0
    assert later["phone"]["calls"]["mean"] < fresh["phone"]["calls"]["mean"]  # the calls already made are not owed
    engine.run()
    done = forecast_campaign(store, campaign_id, engine.clock.now(), seed=1).as_json()
    assert done["status"] == "finished" and done["remaining"] == 0
    assert (done["phone"]["calls"]["max"], done["days_to_finish"]["max"]) == (0, 0)


def test_whatsapp_forecast_counts_messages(store: Store) -> None:
    campaign_id = _campaign(store, Channel.WHATSAPP, contacts=20)
    result = forecast_campaign(store, campaign_id, DEMO_START, seed=2).as_json()
    assert result["phone"] is None
    whatsapp = result["whatsapp"]
    assert whatsapp["messages"]["mean"] >= 20
    assert whatsapp["delivered"]["mean"] >= whatsapp["read"]["mean"] >= 0
    assert result["finished_runs"] == 1


def test_large_campaigns_are_sampled_and_scaled(store: Store) -> None:
    campaign_id = _campaign(store, contacts=40)
    result = forecast_campaign(store, campaign_id, DEMO_START, seed=2, max_contacts=10).as_json()
    # Concurrency 10 over 40 contacts: 2 calls at once for a sample of 8 (10 would need 2.5).
    assert (result["contacts"], result["simulated_contacts"], result["sampled"]) == (40, 8, True)
    assert result["phone"]["calls"]["mean"] % 5 == 0  # every simulated call stands for five
    assert result["phone"]["calls"]["mean"] >= 40


def test_another_business_and_bad_runs_are_refused(store: Store) -> None:
    campaign_id = _campaign(store)
    with store.read() as tx:
        owner = tx.campaign(campaign_id).business_id
    with pytest.raises(NotFound):
        forecast_campaign(store, campaign_id, DEMO_START, business_id=owner + 1)
    with pytest.raises(NotFound):
        forecast_campaign(store, campaign_id + 1, DEMO_START)
    with pytest.raises(ValueError):
        forecast_campaign(store, campaign_id, DEMO_START, runs=0)
    with store.read() as tx:
        assert tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one() == 0


# --- the command line -------------------------------------------------------------------------------------------------


def test_herald_forecast_json_is_deterministic_with_seed_and_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["init"], ["examples"], ["campaign", "create", "examples/collections.yaml"]):
        assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, ["contacts", "import", "1", "examples/contacts.csv"]).exit_code == 0
    args = ["forecast", "1", "--seed", "9", "--runs", "2", "--from", "2026-01-05T09:00-06:00"]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    assert first.stdout == runner.invoke(app, [*args, "--json"]).stdout
    data = json.loads(first.stdout)
    assert (data["runs"], data["seed"], data["contacts"], data["status"]) == (2, 9, 20, "ready")
    assert data["start"] == "2026-01-05T09:00:00-06:00"
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "reach" in text.stdout and "billed min" in text.stdout
    assert runner.invoke(app, ["forecast", "7"]).exit_code == 1
    naive = runner.invoke(app, ["forecast", "1", "--from", "2026-01-05T09:00"])
    assert naive.exit_code == 1 and "UTC offset" in naive.stderr
    assert runner.invoke(app, ["forecast", "1", "--runs", "0"]).exit_code == 2


# --- the pure summary ---------------------------------------------------------------------------------------------------

_runs = st.lists(
    st.builds(
        RunFigures,
        reach=st.integers(0, 1000),
        conversions=st.integers(0, 1000),
        attempts=st.integers(0, 5000),
        days=st.one_of(st.none(), st.floats(0, 365)),
        billed_seconds=st.fixed_dictionaries({"human": st.integers(0, 10**6), "machine": st.integers(0, 10**4)}),
    ),
    min_size=1,
    max_size=10,
)


@given(runs=_runs, scale=st.sampled_from([1.0, 2.0, 4.5]))
def test_summary_spreads_hold_their_runs(runs: list[RunFigures], scale: float) -> None:
    summary = summarise(runs, scale)
    assert summary.runs == len(runs)
    assert summary.finished_runs == sum(1 for run in runs if run.days is not None)
    assert (summary.days is None) == (summary.finished_runs == 0)
    for figure, values in (
        (summary.reach, [run.reach for run in runs]),
        (summary.attempts, [run.attempts for run in runs]),
        (summary.billed_minutes["human"], [run.billed_seconds["human"] / 60 for run in runs]),
    ):
        assert figure.min == pytest.approx(min(values) * scale, abs=0.01)
        assert figure.max == pytest.approx(max(values) * scale, abs=0.01)
        assert figure.min - 0.01 <= figure.mean <= figure.max + 0.01
    assert summary.billed_minutes["unknown"] == spread([0.0] * len(runs))


def test_reach_follows_the_spec_by_channel() -> None:
    counts = {"answered": 2, "converted": 3, "voicemail": 4, "delivered": 5, "read": 6, "accepted": 7}
    assert reach(Channel.PHONE_CALL, counts) == 5
    assert reach(Channel.WHATSAPP, counts) == 21
    with pytest.raises(ValueError):
        summarise([])


@given(total=st.integers(1, 10**6), cap=st.integers(1, 5000), limit=st.integers(1, 10_000))
def test_a_sample_is_at_most_the_cap_and_scales_the_limit_to_a_whole_number(total: int, cap: int, limit: int) -> None:
    size = sample_size(total, cap, limit)
    if total <= cap:
        assert size == total
        return
    assert 1 <= size <= cap
    share = cap * limit // total
    if share >= 1 and limit < total:
        # The limit's share of the sample is a whole number, up to the granularity of one contact.
        assert share - limit / total < limit * size / total <= share
        if limit / total < 0.5:
            assert round(limit * size / total) == share
