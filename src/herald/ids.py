"""Public identifiers: Altur-style call ids and UUIDs, random in production, seeded in simulations."""

from __future__ import annotations

import random
import secrets
import string
import uuid

_ALPHABET = string.ascii_letters + string.digits


class IdFactory:
    """Makes public ids; with a seed the sequence repeats exactly, so simulated exports are byte-identical."""

    def __init__(self, seed: int | None = None) -> None:
        self._random: random.Random | None = random.Random(seed) if seed is not None else None

    def _bits(self, count: int) -> int:
        if self._random is None:
            return secrets.randbits(count)
        return self._random.getrandbits(count)

    def call_id(self) -> str:
        """An Altur-style call id: `cll_` and 20 letters or digits."""
        value = self._bits(120)
        chars = []
        for _ in range(20):
            value, index = divmod(value, len(_ALPHABET))
            chars.append(_ALPHABET[index])
        return "cll_" + "".join(chars)

    def uuid(self) -> str:
        """A version-4 UUID string."""
        return str(uuid.UUID(int=self._bits(128), version=4))
