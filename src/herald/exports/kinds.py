"""The export kinds (a light module: the CLI imports it at start-up)."""

from __future__ import annotations

from enum import StrEnum


class ExportKind(StrEnum):
    """Which export."""

    CONTACTS = "contacts"
    CALLS = "calls"
    RESULTS = "results"
    RECORDINGS = "recordings"
    SENDOUT = "sendout"
