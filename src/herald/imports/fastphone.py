"""Placeholder fast path (filled in next): always defers to libphonenumber."""

from __future__ import annotations

from typing import Final

FALLBACK: Final = object()


class FastPath:
    def __init__(self, region: str) -> None:
        self.region = region

    def __call__(self, raw: str) -> object:
        return FALLBACK
