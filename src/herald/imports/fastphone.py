"""A fast E.164 normaliser that gives libphonenumber's answer without its per-call overhead.

``phonenumbers.parse`` + ``is_valid_number`` spends most of its time on work a contact column
rarely needs: RFC 3966 and extension scanning, alpha (vanity) conversion, per-character Unicode
digit normalisation, and up to eleven separately compiled number-type regexes. Contact columns
are nearly always ASCII digits with spaces, dashes, dots, parentheses and maybe a leading ``+``.

For exactly that input shape the result of libphonenumber depends only on (leading plus?, digit
string), and this module replays its decision steps on the digits: international prefix (IDD),
country code, default country code written without ``+``, national prefix and transform rule,
length checks, region choice for shared country codes, and the number-type patterns, merged
into one alternation per number length. Every pattern comes from phonenumbers' own metadata, so
nothing here goes stale when phonenumbers is upgraded, and the test suite compares this path
with libphonenumber on generated and golden inputs. Anything outside that shape (letters,
extensions, ``tel:`` URIs, non-ASCII digits, two digits or fewer, odd metadata) returns
``FALLBACK`` and the caller asks libphonenumber itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal, TypeAlias

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, REGION_CODE_FOR_NON_GEO_ENTITY, PhoneMetadata


class Fallback(Enum):
    """Type of the FALLBACK sentinel (an enum member, so type checkers narrow ``is FALLBACK``)."""

    FALLBACK = "fallback"


FALLBACK: Final = Fallback.FALLBACK
Result: TypeAlias = str | Literal[Fallback.FALLBACK] | None

# Leading separators, an optional plus, then digits and separators: every character in it is
# libphonenumber "punctuation" that cannot start an extension, a second number or a tel: URI.
_SHAPE = re.compile(r"[ ().\-/]*(\+?)[0-9 ().\-/]*")
_DROP = b" ().-/+"
_MAX_INPUT = 250  # libphonenumber's _MAX_INPUT_STRING_LENGTH
_MIN_NSN, _MAX_NSN = 2, 17  # its _MIN/_MAX_LENGTH_FOR_NSN
_CC_STRINGS = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)
# Number types in the order libphonenumber's _number_type_helper tries them (mobile last).
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


class _Unsupported(Exception):
    """Metadata this module does not replay faithfully; such regions always fall back."""


# _test_number_length outcomes that make parse keep the national prefix.
_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH, _TOO_LONG, _POSSIBLE = range(5)
_KEEP_PREFIX = frozenset({_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH})


def _desc_pattern(desc: Any) -> str | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return str(desc.national_number_pattern)


@dataclass(frozen=True, slots=True)
class _Region:
    """What the fast path needs from one region's metadata, compiled once."""

    country_code: int
    country_code_str: str
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    transform: str | None
    general: re.Pattern[str] | None
    lengths: tuple[int, ...]
    local_lengths: tuple[int, ...]
    leading_digits: re.Pattern[str] | None
    # valid_by_length[n]: one pattern fully matching the valid n-digit NSNs, or None.
    valid_by_length: tuple[re.Pattern[str] | None, ...]
    # Lengths for which parse keeps the national prefix (too short, local-only, invalid length).
    keep_prefix_lengths: frozenset[int]

    @classmethod
    def build(cls, md: Any) -> _Region:
        general = md.general_desc
        lengths = tuple(general.possible_length)
        if not lengths or lengths != tuple(sorted(lengths)):
            raise _Unsupported("general possible lengths missing or unsorted")
        npfp = md.national_prefix_for_parsing or None
        transform = md.national_prefix_transform_rule or None
        national_prefix = re.compile(npfp) if npfp else None
        if transform and national_prefix is not None and national_prefix.groups == 0:
            raise _Unsupported("transform rule without a capturing group")
        gen_pattern = _desc_pattern(general)
        descs = [getattr(md, name) for name in _TYPES]
        if not md.same_mobile_and_fixed_line_pattern:
            descs.append(md.mobile)
        valid: list[re.Pattern[str] | None] = []
        for n in range(_MAX_NSN + 1):
            if gen_pattern is None or n not in lengths:
                valid.append(None)
                continue
            parts = [
                f"(?:{p})"
                for d in descs
                if (p := _desc_pattern(d)) is not None and (not d.possible_length or n in d.possible_length)
            ]
            # One pattern per length: the general description (as a lookahead) and any type.
            valid.append(re.compile(f"(?=(?:{gen_pattern})\\Z)(?:{'|'.join(parts)})") if parts else None)
        region = cls(
            country_code=int(md.country_code),
            country_code_str=str(md.country_code),
            idd=re.compile(md.international_prefix) if md.international_prefix else None,
            national_prefix=national_prefix,
            transform=transform,
            general=re.compile(gen_pattern) if gen_pattern else None,
            lengths=lengths,
            local_lengths=tuple(general.possible_length_local_only),
            leading_digits=re.compile(md.leading_digits) if md.leading_digits else None,
            valid_by_length=tuple(valid),
            keep_prefix_lengths=frozenset(),
        )
        keep = frozenset(n for n in range(_MAX_INPUT + 1) if region.length_result("0" * n) in _KEEP_PREFIX)
        object.__setattr__(region, "keep_prefix_lengths", keep)
        return region

    def general_match(self, number: str) -> bool:
        """libphonenumber's _match_national_number(number, general_desc, False)."""
        return self.general is not None and self.general.fullmatch(number) is not None

    def length_result(self, number: str) -> int:
        """libphonenumber's _test_number_length(number, metadata) for an unknown type."""
        n = len(number)
        if n in self.local_lengths:
            return _LOCAL_ONLY
        if n == self.lengths[0]:
            return _POSSIBLE
        if n < self.lengths[0]:
            return _TOO_SHORT
        if n > self.lengths[-1]:
            return _TOO_LONG
        return _POSSIBLE if n in self.lengths[1:] else _INVALID_LENGTH

    def strip_national_prefix(self, number: str) -> str:
        """libphonenumber's _maybe_strip_national_prefix_carrier_code, number part only."""
        if not number or self.national_prefix is None:
            return number
        match = self.national_prefix.match(number)
        if match is None:
            return number
        viable = self.general_match(number)
        if self.transform is None or match.groups()[-1] is None:
            result = number[match.end() :]
        else:
            result = self.national_prefix.sub(self.transform, number, count=1)
        if viable and not self.general_match(result):
            return number
        return result

    def is_valid(self, nsn: str) -> bool:
        """libphonenumber's _number_type_helper(nsn, metadata) != UNKNOWN."""
        n = len(nsn)
        if n > _MAX_NSN:
            return False
        pattern = self.valid_by_length[n]
        return pattern is not None and pattern.fullmatch(nsn) is not None


_REGIONS: dict[str, _Region | None] = {}
_COUNTRIES: dict[int, tuple[_Region, list[_Region]] | None] = {}


def _region(code: str) -> _Region | None:
    """Compiled metadata of a region (cached); None when the fast path must not be used for it."""
    if code not in _REGIONS:
        md = PhoneMetadata.metadata_for_region(code, None)
        try:
            _REGIONS[code] = None if md is None else _Region.build(md)
        except _Unsupported:
            _REGIONS[code] = None
    return _REGIONS[code]


def _country(cc: int) -> tuple[_Region, list[_Region]] | None:
    """For a country calling code: the metadata parse uses, and the regions sharing the code.

    None when any of them is unsupported, so the whole code falls back.
    """
    if cc not in _COUNTRIES:
        regions = COUNTRY_CODE_TO_REGION_CODE[cc]
        entry: tuple[_Region, list[_Region]] | None = None
        if regions[0] == REGION_CODE_FOR_NON_GEO_ENTITY:
            md = PhoneMetadata.metadata_for_nongeo_region(cc, None)
            try:
                main = None if md is None else _Region.build(md)
            except _Unsupported:
                main = None
            if main is not None:
                entry = (main, [main])
        else:
            compiled = [_region(r) for r in regions]
            members = [r for r in compiled if r is not None]
            # Every member must be usable and share the code, as is_valid_number_for_region checks.
            if len(members) == len(regions) and all(r.country_code == cc for r in members):
                entry = (members[0], members)
        _COUNTRIES[cc] = entry
    return _COUNTRIES[cc]


def _first_country_code(prefix: str) -> tuple[int, int]:
    for size in range(1, min(len(prefix), 3) + 1):
        if prefix[:size] in _CC_STRINGS:
            return int(prefix[:size]), size
    return 0, 0


# Every 3-digit prefix → (country code, its length) as _extract_country_code would find it.
_CC_BY_PREFIX = {f"{p:03d}": _first_country_code(f"{p:03d}") for p in range(1000)}


def _split_country_code(digits: str) -> tuple[int, str]:
    """libphonenumber's _extract_country_code: (code, rest), or (0, digits) when none fits."""
    if digits.startswith("0"):
        return 0, digits
    cc, size = _CC_BY_PREFIX[digits[:3]] if len(digits) >= 3 else _first_country_code(digits)
    return (cc, digits[size:]) if cc else (0, digits)


class FastPath:
    """Callable for one default region: E.164 string, None (invalid), or FALLBACK (ask libphonenumber)."""

    def __init__(self, region: str) -> None:
        self.region = region
        home = _region(region)
        country = None if home is None else _country(home.country_code)
        # The home region and its calling code's members, or None: everything falls back.
        self._home = None if home is None or country is None else (home, country[1])

    def __call__(self, raw: str) -> Result:
        # Hot path (millions of calls per import): steps inlined, helpers only on rarer branches.
        if self._home is None or len(raw) > _MAX_INPUT:
            return FALLBACK
        if raw.isascii() and raw.isdigit():
            plus, digits = False, raw
        elif raw[1:].isdigit() and raw[:1] == "+" and raw.isascii():
            plus, digits = True, raw[1:]
        else:
            shape = _SHAPE.fullmatch(raw)
            if shape is None:
                return FALLBACK
            plus = shape.group(1) == "+"
            # ASCII by the shape check; bytes.translate deletes characters far faster than str's.
            digits = raw.encode("ascii").translate(None, _DROP).decode("ascii")
        if len(digits) < 3:
            return FALLBACK  # two-digit input has its own viability rule
        home, home_members = self._home
        if plus:
            cc, national = _split_country_code(digits)
            if cc == 0:
                # parse() retries an unknown code as if the '+' were absent, but needs a code then.
                found = self._without_plus(home, digits)
                if found is None or found[0] == 0:
                    return None
                cc, national = found
        else:
            found = self._without_plus(home, digits)
            if found is None:
                return None
            cc, national = found
        if cc == 0:
            # No code in the input: the national number is read with the home metadata.
            cc, national, meta, members = home.country_code, digits, home, home_members
        else:
            country = _COUNTRIES.get(cc) or _country(cc)
            if country is None:
                return FALLBACK
            meta, members = country
        if len(national) < _MIN_NSN:
            return None
        if meta.national_prefix is not None:
            stripped = meta.strip_national_prefix(national)
            if len(stripped) not in meta.keep_prefix_lengths:
                national = stripped
        n = len(national)
        if n > _MAX_NSN:
            return None
        if len(members) == 1:
            pattern = members[0].valid_by_length[n]
            valid = pattern is not None and pattern.fullmatch(national) is not None
        else:
            valid = _valid_shared(members, national)
        return f"+{cc}{national}" if valid else None

    @staticmethod
    def _without_plus(home: _Region, digits: str) -> tuple[int, str] | None:
        """_maybe_extract_country_code for input without '+': (code or 0, national), None = error."""
        idd = home.idd.match(digits) if home.idd is not None else None
        if idd is not None and digits[idd.end() : idd.end() + 1] != "0":
            rest = digits[idd.end() :]
            if len(rest) <= _MIN_NSN:
                return None  # TOO_SHORT_AFTER_IDD
            cc, national = _split_country_code(rest)
            return (cc, national) if cc else None  # unknown code after an IDD: INVALID_COUNTRY_CODE
        code = home.country_code_str
        if digits.startswith(code):
            national = home.strip_national_prefix(digits[len(code) :])
            if (not home.general_match(digits) and home.general_match(national)) or home.length_result(
                digits
            ) == _TOO_LONG:
                return home.country_code, national
        return 0, ""


def _valid_shared(members: list[_Region], nsn: str) -> bool:
    """is_valid_number for a code shared by regions: pick the region as libphonenumber does, check it."""
    for member in members:
        if member.leading_digits is not None:
            if member.leading_digits.match(nsn):
                return member.is_valid(nsn)
        elif member.is_valid(nsn):
            return True
    return False
