"""Provider start rates shared through the database (GCRA): reservations never exceed the rate, whoever asks."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from herald.providers.base import Throughput
from herald.store.queries import Store
from herald.store.throttle import reserve

from ..conftest import migrated_sqlite

T0 = 1_800_000_000.0


def most_in_a_window(times: list[float], width: float) -> int:
    """The largest number of times inside any closed window of `width` seconds."""
    ordered = sorted(times)
    best, low = 0, 0
    for high, value in enumerate(ordered):
        while value - ordered[low] > width + 1e-6:
            low += 1
        best = max(best, high - low + 1)
    return best


def test_a_burst_goes_at_once_and_the_rest_at_the_rate(store: Store) -> None:
    limit = Throughput("twilio:AC1", per_second=2, burst=3)
    with store.tx() as tx:
        first = reserve(tx, limit, 10, T0, horizon=1.0)
    # Three at once (the burst), then one every half second up to the horizon.
    assert first.go == [T0, T0, T0, T0 + 0.5, T0 + 1.0]
    with store.tx() as tx:
        second = reserve(tx, limit, 10, T0, horizon=1.0)
    assert second.go == [] and second.retry_at == first.retry_at == T0 + 0.5
    with store.tx() as tx:
        other = reserve(tx, Throughput("twilio:AC2", 1), 2, T0, horizon=0.0)
    assert other.go == [T0]  # another key has its own budget


@given(
    per_second=st.sampled_from([0.5, 1.0, 3.0, 80.0]),
    burst=st.integers(1, 4),
    horizon=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    asks=st.lists(st.tuples(st.floats(0, 3), st.integers(1, 20)), min_size=1, max_size=25),
)
def test_reservations_from_any_number_of_workers_keep_the_rate(
    tmp_path_factory: object, per_second: float, burst: int, horizon: float, asks: list[tuple[float, int]]
) -> None:
    folder = tmp_path_factory.mktemp("throttle")  # type: ignore[attr-defined]
    store = Store.open(migrated_sqlite(folder / "h.db"))
    try:
        limit = Throughput("whatsapp_cloud:123", per_second, burst)
        now, go = T0, []
        for step, count in asks:
            now += step
            with store.tx() as tx:
                got = reserve(tx, limit, count, now, horizon)
            assert len(got.go) <= count
            assert all(now <= at <= now + horizon + 1e-6 for at in got.go)
            assert got.go == sorted(got.go)
            assert got.retry_at >= now
            go.extend(got.go)
        for width in (0.0, 1.0, 2.5):
            assert most_in_a_window(go, width) <= math.floor(width * per_second + 1e-6) + burst
    finally:
        store.close()
