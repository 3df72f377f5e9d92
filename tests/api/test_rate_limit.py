"""The per-key rate limit: the algorithm on a real database with a virtual clock, and its 429 answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.api.app import create_app
from herald.api.ratelimit import RateLimit, from_environment, take
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import Store
from herald.store.tenancy import create_key, ensure_business

from .conftest import BASE, Api


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("rate") / "rate.db"
    opened = Store.open(f"sqlite:///{path}")
    yield opened
    opened.close()


def _new_key(store: Store) -> int:
    with store.tx() as tx:
        business, _ = ensure_business(tx, "rate", RealClock().now(), IdFactory())
        listed, _key = create_key(tx, business.id, RealClock().now())
    return listed.id


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.sampled_from([0.5, 1.0, 12.0, 100.0]),
    burst=st.sampled_from([1.0, 2.0, 12.0]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=40),
)
def test_no_window_lets_more_through_than_burst_plus_rate_times_its_length(
    store: Store, rate: float, burst: float, gaps: list[float]
) -> None:
    limit = RateLimit(rate, burst)
    key_id = _new_key(store)
    now = 1_000_000.0
    allowed: list[float] = []
    for gap in gaps:
        now += gap
        with store.tx() as tx:
            wait = take(tx, key_id, now, limit)
        if wait is None:
            allowed.append(now)
        else:
            assert wait > 0
            # Told to wait: asking again that much later is allowed.
            with store.tx() as tx:
                assert take(tx, key_id, now + wait + 1e-6, limit) is None
            now += wait + 1e-6
            allowed.append(now)
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            window = allowed[j] - start
            assert j - i + 1 <= burst + rate * window + 1e-6


def test_requests_spaced_by_the_interval_are_never_refused(store: Store) -> None:
    limit = RateLimit(12, 1)
    key_id = _new_key(store)
    for n in range(50):
        with store.tx() as tx:
            assert take(tx, key_id, 5_000.0 + n / 12, limit) is None


def test_the_429_names_the_wait_and_other_keys_go_on(api: Api) -> None:
    limited = TestClient(create_app(api.store, rate_limit=RateLimit(0.001, 3)))
    for _ in range(3):
        assert limited.get(f"{BASE}/agents", headers=api.acme.headers).status_code == 200
    refused = limited.get(f"{BASE}/agents", headers=api.acme.headers)
    assert refused.status_code == 429
    assert refused.json()["error"] == "RATE_LIMITED" and refused.json()["success"] is False
    assert 990 <= int(refused.headers["retry-after"]) <= 1000
    assert limited.get(f"{BASE}/agents", headers=api.globex.headers).status_code == 200
    assert limited.get(f"{BASE}/agents").status_code == 401  # no key: refused before any counting


def test_the_environment_sets_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERALD_RATE_LIMIT", raising=False)
    monkeypatch.delenv("HERALD_RATE_BURST", raising=False)
    assert from_environment() == RateLimit(12, 12)
    monkeypatch.setenv("HERALD_RATE_LIMIT", "off")
    assert from_environment() is None
    monkeypatch.setenv("HERALD_RATE_LIMIT", "0.5")
    assert from_environment() == RateLimit(0.5, 1)
    monkeypatch.setenv("HERALD_RATE_BURST", "0")
    with pytest.raises(ValueError, match="HERALD_RATE_BURST"):
        from_environment()
    monkeypatch.setenv("HERALD_RATE_LIMIT", "fast")
    with pytest.raises(ValueError, match="not numbers"):
        from_environment()
