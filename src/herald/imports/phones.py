"""Phone number normalisation to E.164, and time zone ↔ region helpers.

The reference behaviour is libphonenumber's (``phonenumbers.parse`` + ``is_valid_number`` +
``format_number(E164)``); ``herald.imports.fastphone`` reproduces it for the common shapes of
input and falls back to it for everything else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources

import phonenumbers
from phonenumbers import PhoneNumberFormat, timezone

from herald.imports.fastphone import FALLBACK, FastPath, Result
from herald.imports.repairs import check_number

_UNKNOWN_ZONE = "Etc/Unknown"


def check_region(region: str) -> str:
    """Return ``region`` upper-cased, or raise ValueError if libphonenumber does not know it."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r} (expected an ISO 3166 alpha-2 code such as 'MX')")
    return code


def reference_e164(raw: str, region: str) -> str | None:
    """E.164 form of ``raw`` read in ``region``, or None if invalid: the plain libphonenumber way."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, PhoneNumberFormat.E164))


class PhoneNormalizer:
    """Callable turning contact strings into E.164 (or None when invalid) for one default region.

    Gives exactly the answer of :func:`reference_e164`; most inputs take a precompiled fast path.
    """

    def __init__(self, region: str, *, fast: bool = True) -> None:
        self.region = check_region(region)
        #: First try: E.164, None (invalid) or FALLBACK; hot loops call it, then ``fallback``.
        self.fast: Callable[[str], Result] = FastPath(self.region) if fast else _always_fallback
        self.fallbacks = 0

    def __call__(self, raw: str) -> str | None:
        result = self.fast(raw)
        return self.fallback(raw) if result is FALLBACK else result

    def fallback(self, raw: str) -> str | None:
        """The libphonenumber answer, for input the fast path does not handle."""
        self.fallbacks += 1
        return reference_e164(raw, self.region)

    def check(self, raw: str) -> tuple[str | None, str]:
        """The import's answer for input the fast path does not accept: ``(e164, "")`` or ``(None, reason)``.

        Unlike ``__call__`` it repairs spreadsheet floats and Mexico's retired prefixes, rejects extensions
        instead of dropping them, and says why a number is invalid (``herald.imports.repairs``).
        """
        return check_number(raw, self.region, self)


def _always_fallback(raw: str) -> Result:
    return FALLBACK


@functools.cache
def _zone_table() -> dict[str, str]:
    """Canonical IANA zone → ISO 3166 country code, from tzdata's ``zone.tab``."""
    table: dict[str, str] = {}
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _coords, zone, *_ = line.split("\t")
            table[zone] = country
    return table


@functools.cache
def _zone_bytes(zone: str) -> bytes | None:
    parts = zone.split("/")
    if any(not p or p.startswith(".") for p in parts):
        return None
    try:
        return resources.files("tzdata").joinpath("zoneinfo", *parts).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


@functools.cache
def region_for_timezone(tz: str) -> str | None:
    """ISO 3166 alpha-2 region of an IANA time zone, e.g. ``America/Mexico_City`` → ``"MX"``.

    Uses tzdata's ``zone.tab``. A backward-compatible alias (``US/Eastern``, ``Asia/Calcutta``)
    is resolved to the canonical zone whose compiled data is byte-identical, since tzdata
    ships links as copies. Returns None for zones without a country (``UTC``, ``Etc/GMT+5``),
    unknown names, and countries libphonenumber has no metadata for.
    """
    table = _zone_table()
    country = table.get(tz)
    if country is None:
        data = _zone_bytes(tz)
        if data is None:
            return None
        matches = {c for zone, c in table.items() if _zone_bytes(zone) == data}
        country = matches.pop() if len(matches) == 1 else None
    if country is None or country not in phonenumbers.SUPPORTED_REGIONS:
        return None
    return country


def timezone_for_number(e164: str) -> str | None:
    """The IANA zone of a number when libphonenumber maps it to exactly one zone, else None."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    zones = timezone.time_zones_for_number(number)
    if len(zones) != 1 or zones[0] == _UNKNOWN_ZONE:
        return None
    return str(zones[0])
