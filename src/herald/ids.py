"""Public identifiers: Altur-style call ids and UUIDs, random in production, seeded in simulations."""

from __future__ import annotations

import random
import secrets
import string
import uuid

_ALPHABET = string.ascii_letters + string.digits
_PAIR_BASE = len(_ALPHABET) ** 2
#: Two base-62 digits, lowest first, for each value below 62².
_PAIRS = tuple(_ALPHABET[index % len(_ALPHABET)] + _ALPHABET[index // len(_ALPHABET)] for index in range(_PAIR_BASE))


class IdFactory:
    """Makes public ids; with a seed the sequence repeats exactly, so simulated exports are byte-identical."""

    def __init__(self, seed: int | None = None) -> None:
        self._random: random.Random | None = random.Random(seed) if seed is not None else None

    def _bits(self, count: int) -> int:
        if self._random is None:
            return secrets.randbits(count)
        return self._random.getrandbits(count)

    def call_id(self) -> str:
        """An Altur-style call id: `cll_` and 20 letters or digits (120 random bits in base 62, lowest digit first)."""
        value = self._bits(120)
        # Two digits per division (simulated runs make one id per call): the same digits as one at a time.
        pairs = []
        for _ in range(10):
            value, index = divmod(value, _PAIR_BASE)
            pairs.append(_PAIRS[index])
        return "cll_" + "".join(pairs)

    def uuid(self) -> str:
        """A version-4 UUID string."""
        return str(uuid.UUID(int=self._bits(128), version=4))
