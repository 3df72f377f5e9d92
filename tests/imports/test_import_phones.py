"""Time zone ↔ region helpers and the reference normaliser."""

from __future__ import annotations

import pytest

from herald.imports import reference_e164, region_for_timezone, timezone_for_number


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("America/Mexico_City", "MX"),
        ("Europe/Madrid", "ES"),
        ("America/Bogota", "CO"),
        ("America/New_York", "US"),
        ("US/Eastern", "US"),  # backward alias
        ("Asia/Calcutta", "IN"),  # backward alias of Asia/Kolkata
        ("UTC", None),
        ("Etc/GMT+5", None),
        ("Mars/Olympus_Mons", None),
        ("../../etc/passwd", None),
        ("", None),
    ],
)
def test_region_for_timezone(zone: str, region: str | None) -> None:
    assert region_for_timezone(zone) == region


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+525512345678", "America/Mexico_City"),
        ("+34911234567", "Europe/Madrid"),
        ("+14155550123", "America/Los_Angeles"),
        ("+18005550123", None),  # toll free: many zones
        ("+79123456789", None),  # Russian mobile: many zones
        ("not a number", None),
    ],
)
def test_timezone_for_number(number: str, zone: str | None) -> None:
    assert timezone_for_number(number) == zone


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("55 1234 5678", "MX", "+525512345678"),
        ("(55) 1234-5678", "MX", "+525512345678"),
        ("+52 55 1234 5678", "MX", "+525512345678"),
        ("52 55 1234 5678", "MX", "+525512345678"),
        ("00 52 55 1234 5678", "MX", "+525512345678"),
        ("91 123 45 67", "ES", "+34911234567"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("1-201-555-0123", "US", "+12015550123"),
        ("011 52 55 1234 5678", "US", "+525512345678"),
        ("12", "MX", None),
        ("+52 55 1234", "MX", None),
        ("hello", "MX", None),
    ],
)
def test_reference_e164(raw: str, region: str, e164: str | None) -> None:
    assert reference_e164(raw, region) == e164
