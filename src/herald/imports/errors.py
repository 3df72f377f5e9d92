"""Errors and reason codes of the contact import."""

from __future__ import annotations

from enum import StrEnum


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (empty, binary, bad header, broken quoting).

    Raised before any row is returned, so an import is never half-read.
    """


class Reason(StrEnum):
    """Why a row was rejected. Values are the codes written to the rejects CSV."""

    INVALID_PHONE_NUMBER = "INVALID_PHONE_NUMBER"
    MISSING_CONTACT = "MISSING_CONTACT"
    DUPLICATE = "DUPLICATE"
    SUPPRESSED = "SUPPRESSED"
    MALFORMED_ROW = "MALFORMED_ROW"
