"""The fast E.164 path must give libphonenumber's answer for every input it does not hand back."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from herald.imports import PhoneNormalizer, reference_e164
from herald.imports.fastphone import FALLBACK, FastPath

# Regions with national prefixes, transform rules (AR, BR), leading zeros (IT), shared country
# codes (+1, +7, +44 with GG/IM/JE), long IDDs (AU 0011, US 011) and the benchmark's MX.
REGIONS = ["MX", "US", "CA", "AG", "ES", "AR", "BR", "GB", "JE", "IT", "DE", "IN", "RU", "KZ", "FR", "CO", "AU", "CN"]
TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP]
SEPARATORS = ["", "", " ", "-", ".", "/", "(", ")"]
PREFIXES = [
    "",
    "",
    "",
    "",
    "",
    "",
    "+",
    "00",
    "011",
    "0011",
    "0",
    "1",
    "01",
    "044",
    "045",
    "15",
    "9",
    "(",
    " +",
    "+0",
    "0 0",
]


def check(raw: str, region: str) -> None:
    fast = FastPath(region)(raw)
    if fast is not FALLBACK:
        assert fast == reference_e164(raw, region), (raw, region)


@st.composite
def punctuated(draw: st.DrawFn, digits: str) -> str:
    """``digits`` with random separators between them, a random prefix and a random tail."""
    out = [draw(st.sampled_from(PREFIXES))]
    for d in digits:
        out.append(d)
        out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


@st.composite
def near_real(draw: st.DrawFn) -> tuple[str, str]:
    """(input, default region): an example number of some region/type in some format, maybe with
    one digit edited, read in its own region half of the time."""
    region = draw(st.sampled_from(REGIONS))
    home = draw(st.one_of(st.just(region), st.sampled_from(REGIONS)))
    kind = draw(st.sampled_from(TYPES))
    number = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    assert number is not None
    text = phonenumbers.format_number(
        number,
        draw(st.sampled_from([PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL])),
    )
    digits = "".join(ch for ch in text if ch.isdigit())
    edit = draw(st.sampled_from(["keep", "keep", "keep", "keep", "drop", "add", "swap"]))
    pos = draw(st.integers(0, max(len(digits) - 1, 0)))
    new = draw(st.sampled_from("0123456789"))
    if edit == "drop":
        digits = digits[:pos] + digits[pos + 1 :]
    elif edit == "add":
        digits = digits[:pos] + new + digits[pos:]
    elif edit == "swap":
        digits = digits[:pos] + new + digits[pos + 1 :]
    if text.startswith("+") and draw(st.booleans()):
        return "+" + draw(punctuated(digits)).lstrip("+0"), home
    return draw(punctuated(digits)), home


@settings(max_examples=3000)
@given(near_real())
@example(("+52 55 1234 5678", "MX"))
@example(("011 15 2345-6789", "AR"))
@example(("+0 52 55 1234 5678", "MX"))
def test_fast_path_agrees_on_realistic_numbers(case: tuple[str, str]) -> None:
    check(*case)


@settings(max_examples=3000)
@given(st.text(alphabet="0123456789", min_size=0, max_size=19).flatmap(punctuated), st.sampled_from(REGIONS))
def test_fast_path_agrees_on_random_digits(raw: str, region: str) -> None:
    check(raw, region)


@settings(max_examples=1000)
@given(st.text(alphabet="0123456789 +()-./x#;,tel:\u0663\u00a0A", max_size=20), st.sampled_from(REGIONS))
def test_fast_path_agrees_or_falls_back_on_any_text(raw: str, region: str) -> None:
    check(raw, region)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("55 1234 5678", "MX", "+525512345678"),
        ("(55) 1234-5678", "MX", "+525512345678"),
        ("+52 55 1234 5678", "MX", "+525512345678"),
        ("+525512345678", "MX", "+525512345678"),
        ("52 55 1234 5678", "MX", "+525512345678"),  # country code without '+'
        ("00 52 55 1234 5678", "MX", "+525512345678"),  # IDD
        ("+52 1 55 1234 5678", "MX", None),  # the retired mobile '1' makes it too long
        ("55 1234 567", "MX", None),
        ("011 15 2345-6789", "AR", "+5491123456789"),  # transform rule: 0 11 15 → 9 11
        ("+54 9 11 2345 6789", "AR", "+5491123456789"),
        ("06 1234 5678", "IT", "+390612345678"),  # leading zero kept
        ("020 7946 0018", "GB", "+442079460018"),
        ("1 (201) 555-0123", "US", "+12015550123"),
        ("(201) 555-0123", "CA", "+12015550123"),  # +1 shared: region picked by the number
        ("+7 701 123 4567", "RU", "+77011234567"),  # +7 shared with KZ
        ("+800 1234 5678", "MX", "+80012345678"),  # non-geographic code
        ("+999 5512345678", "MX", None),  # unknown code, not retried into a valid number
        ("+0 5512345678", "MX", None),
        ("91 123 45 67", "ES", "+34911234567"),
        ("00 0 52 55 1234 5678", "MX", None),
    ],
)
def test_golden_numbers(raw: str, region: str, e164: str | None) -> None:
    fast = FastPath(region)(raw)
    assert fast is not FALLBACK
    assert fast == e164
    assert reference_e164(raw, region) == e164


@pytest.mark.parametrize("raw", ["1800 FLOWERS", "55 1234 5678 ext. 12", "tel:+525512345678", "٥٥١٢٣٤٥٦٧٨", "12", "x"])
def test_unusual_shapes_fall_back(raw: str) -> None:
    assert FastPath("MX")(raw) is FALLBACK


def test_normalizer_counts_fallbacks_and_matches_reference() -> None:
    normalize = PhoneNormalizer("mx")
    assert normalize.region == "MX"
    assert normalize("55 1234 5678 ext. 9") == reference_e164("55 1234 5678 ext. 9", "MX") == "+525512345678"
    assert normalize.fallbacks == 1
