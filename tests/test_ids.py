"""Public ids: a seeded factory repeats its sequence, and call ids are the base-62 digits of 120 random bits."""

from __future__ import annotations

import random
import string

from hypothesis import given
from hypothesis import strategies as st

from herald.ids import IdFactory

ALPHABET = string.ascii_letters + string.digits


def _base62(value: int) -> str:
    # One digit at a time, lowest first: what a call id spells for `value` (bits beyond 20 digits are dropped).
    digits = []
    for _ in range(20):
        value, index = divmod(value, 62)
        digits.append(ALPHABET[index])
    return "cll_" + "".join(digits)


@given(seed=st.integers(0, 2**32), count=st.integers(1, 50))
def test_call_ids_spell_the_seeded_bits_in_base_62(seed: int, count: int) -> None:
    factory, bits = IdFactory(seed), random.Random(seed)
    assert [factory.call_id() for _ in range(count)] == [_base62(bits.getrandbits(120)) for _ in range(count)]


def test_extreme_values_spell_every_digit() -> None:
    class Fixed(IdFactory):
        def __init__(self, value: int) -> None:
            super().__init__(0)
            self.value = value

        def _bits(self, count: int) -> int:
            return self.value

    for value in (0, 1, 61, 62, 62**2 - 1, 62**2, 62**19, 2**120 - 1):
        assert Fixed(value).call_id() == _base62(value)
