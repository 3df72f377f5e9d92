"""Phone numbers as they come out of real CRMs and spreadsheets: unambiguous repairs, and reasons for the rest.

These run only for input that libphonenumber (and so the fast path) does not accept as it is, or that carries an
extension, so every number libphonenumber reads keeps exactly its answer. Each rule is in docs/decisions.md:

- A spreadsheet float: `5512345679.0` (a zero fraction) and `5.512345679E9` (scientific notation holding every
  digit) are the integer they write; scientific notation that rounded digits away is rejected, since the number
  cannot be recovered.
- Mexico's retired mobile `1` after the country code: `+52 1 55 1234 5678` (also `00 52 1 …` and `52 1 …`) is
  `+52 55 1234 5678` when the ten digits after the `1` are a valid Mexican number.
- Mexico's retired national prefixes, for national numbers read in region MX: `044` and `045` (mobile, local and
  long distance) and `01` (long distance) before ten digits are dropped when the ten digits are valid.
- An extension (`ext. 12`, `x12`, `#12`) is rejected with a reason: Herald dials numbers, not extensions, and
  calling the main line instead would drop it silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

_ZERO_FRACTION = re.compile(r"\s*(\+?\d{4,})\.0+\s*")
_SCIENTIFIC = re.compile(r"\s*(\d)(?:[.,](\d+))?[eE]\+?(\d{1,2})\s*")
_SEPARATORS = re.compile(r"[\s().\-/]")
_MX_NATIONAL_PREFIX = re.compile(r"(?:044|045|01)(\d{10})")
_MX_MOBILE_ONE = re.compile(r"(?:\+|00)?521(\d{10})")

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "no such country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


def check_number(raw: str, region: str, lookup: Callable[[str], str | None]) -> tuple[str | None, str]:
    """``(e164, "")`` for a number that is valid or repairable, else ``(None, reason)``.

    ``lookup`` is the plain normaliser (fast path, then libphonenumber) for ``region``.
    """
    if is_spreadsheet_float(raw):
        # Before libphonenumber, which reads `5512345679.0` as eleven digits and `E` as the keypad's 3.
        integer, why = _float_digits(raw)
        if integer is None:
            return None, why
        raw = integer
    try:
        parsed = phonenumbers.parse(raw, region)
    except NumberParseException as error:
        parsed = None
        parse_error = _PARSE_REASONS.get(error.error_type, "not a phone number")
    if parsed is not None and parsed.extension:
        return None, f"has an extension ({parsed.extension}); Herald cannot dial extensions, give the direct number"
    if parsed is not None and phonenumbers.is_valid_number(parsed):
        return str(phonenumbers.format_number(parsed, PhoneNumberFormat.E164)), ""
    repaired, why = _repair(raw.strip(), region, lookup)
    if repaired is not None or why:
        return repaired, why
    if parsed is None:
        return None, f"{parse_error} (region {region})"
    return None, _invalid_reason(parsed, region)


def is_spreadsheet_float(raw: str) -> bool:
    """Whether ``raw`` is written as a spreadsheet writes a number cell: ``5512345679.0`` or ``5.512345679E9``."""
    return _ZERO_FRACTION.fullmatch(raw) is not None or _SCIENTIFIC.fullmatch(raw) is not None


def _float_digits(text: str) -> tuple[str | None, str]:
    """The integer a spreadsheet float cell stands for, or (None, reason) when digits were lost."""
    if match := _ZERO_FRACTION.fullmatch(text):
        return match.group(1), ""
    match = _SCIENTIFIC.fullmatch(text)
    if match is None:
        return text, ""
    integer, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(3))
    if len(fraction) < exponent:
        return None, f"a spreadsheet rounded it to {text.strip()}; format the column as text and export again"
    if len(fraction) > exponent:
        return None, "a spreadsheet number with decimals; format the column as text and export again"
    return str(int(Decimal(f"{integer}.{fraction}e{exponent}"))), ""


def _repair(text: str, region: str, lookup: Callable[[str], str | None]) -> tuple[str | None, str]:
    """Mexico's retired prefixes: a repaired E.164 number, or (None, reason) when the rest is not valid either."""
    compact = _SEPARATORS.sub("", text)
    # Without `+` or `00` the digits are a national number, which is Mexican only when read in region MX.
    if (match := _MX_MOBILE_ONE.fullmatch(compact)) and (compact.startswith(("+", "00")) or region == "MX"):
        return _valid_mx(match.group(1), lookup)
    if region == "MX" and (match := _MX_NATIONAL_PREFIX.fullmatch(compact)):
        return _valid_mx(match.group(1), lookup)
    return None, ""


def _valid_mx(national: str, lookup: Callable[[str], str | None]) -> tuple[str | None, str]:
    e164 = lookup("+52" + national)
    if e164 is None:
        return None, f"not a valid Mexican number even without its retired prefix (+52 {national})"
    return e164, ""


def _invalid_reason(number: phonenumbers.PhoneNumber, region: str) -> str:
    possible = phonenumbers.is_possible_number_with_reason(number)
    code = number.country_code or 0
    where = phonenumbers.region_code_for_country_code(code)
    digits = len(phonenumbers.national_significant_number(number))
    country = f"+{code} ({where})" if where and where != "ZZ" else f"+{code}"
    if possible == ValidationResult.TOO_SHORT:
        return f"too short for {country}: {digits} digits"
    if possible == ValidationResult.TOO_LONG:
        return f"too long for {country}: {digits} digits"
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        return "no such country code"
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return f"a local number without its area code for {country}: {digits} digits"
    if possible == ValidationResult.INVALID_LENGTH:
        return f"wrong number of digits for {country}: {digits}"
    return f"not a number in use in {country} (region {region}): no such area or mobile prefix"
