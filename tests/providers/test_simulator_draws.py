"""The simulator's weighted draw: one `random()` per pick, the name whose share of the total the draw falls in."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.providers.simulator import _pick, _weighted


def _reference(rng: random.Random, weights: dict[str, float]) -> str:
    # The draw as the simulator has always made it (same seed, same outcome): subtract each weight in turn.
    total = sum(weights.values())
    pick = rng.random() * total
    for name, weight in weights.items():
        pick -= weight
        if pick < 0:
            return name
    return next(reversed(weights))


weights_strategy = st.dictionaries(
    st.sampled_from(["human", "machine", "unknown", "no-answer", "busy", "failed"]),
    st.floats(0, 5, allow_nan=False),
    min_size=1,
).filter(lambda weights: sum(weights.values()) > 0)


@given(weights=weights_strategy, seed=st.integers(0, 2**32), draws=st.integers(1, 40))
def test_picks_follow_the_reference_draw(weights: dict[str, float], seed: int, draws: int) -> None:
    ours, theirs, weighted = random.Random(seed), random.Random(seed), random.Random(seed)
    pairs = tuple(weights.items())
    total = sum(weights.values())
    for _ in range(draws):
        expected = _reference(theirs, weights)
        assert _pick(ours, total, pairs) == expected
        assert _weighted(weighted, weights) == expected


def test_weights_adding_up_to_zero_are_refused() -> None:
    with pytest.raises(ValueError):
        _weighted(random.Random(0), {"human": 0.0})
