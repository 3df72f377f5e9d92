"""Numbers as CRMs and spreadsheets write them: repaired when unambiguous, else rejected with a reason (issue 14)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.imports import PhoneNormalizer, read_contacts, reference_e164
from herald.imports.repairs import is_spreadsheet_float


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+52 1 55 1234 5678", "+525512345678"),
        ("+5215512345678", "+525512345678"),
        ("00 52 1 55 1234 5678", "+525512345678"),
        ("521 55 1234 5678", "+525512345678"),
        ("044 55 1234 5678", "+525512345678"),
        ("045 (55) 1234-5678", "+525512345678"),
        ("01 55 1234 5678", "+525512345678"),
        ("01 800 123 4567", "+528001234567"),
        ("5512345679.0", "+525512345679"),
        ("525512345679.00", "+525512345679"),
        ("5.512345679E9", "+525512345679"),
        ("5,512345679E+9", "+525512345679"),
        ("5215512345678.0", "+525512345678"),
        ("55 1234 5678", "+525512345678"),  # unchanged: what libphonenumber already reads
    ],
)
def test_repaired_in_mexico(raw: str, expected: str) -> None:
    assert PhoneNormalizer("MX").check(raw) == (expected, "")


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("55 1234 5678 ext. 12", "MX", "has an extension (12)"),
        ("5512345678 x12", "MX", "has an extension (12)"),
        ("5.51234568E9", "MX", "a spreadsheet rounded it"),
        ("5.5123456789E9", "MX", "with decimals"),
        ("5512345", "MX", "a local number without its area code for +52 (MX): 7 digits"),
        ("551234567.0", "MX", "too short"),  # libphonenumber alone would read ten digits and accept it
        ("551234567890123", "MX", "too long"),
        ("+999 1234 5678", "MX", "no such country code"),
        ("hello", "MX", "not a phone number"),
        ("044 12 3456 7890", "MX", "not a valid Mexican number even without its retired prefix"),
        ("044 55 1234 5678", "US", "too long for +1 (US)"),  # the retired prefixes are Mexican national prefixes only
        ("+1 555 0100 123", "MX", "+1"),
    ],
)
def test_rejected_with_a_reason(raw: str, region: str, reason: str) -> None:
    e164, why = PhoneNormalizer(region).check(raw)
    assert e164 is None and reason in why, why


digits = st.text(alphabet="0123456789", min_size=1, max_size=16)
separators = st.sampled_from(["", " ", "-", ".", "(", ")", "/"])


@st.composite
def numbers(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(digits, separators), min_size=1, max_size=4))
    return draw(st.sampled_from(["", "+", "00"])) + "".join(d + s for d, s in parts)


@given(raw=numbers(), region=st.sampled_from(["MX", "US", "ES", "CO", "GB", "AR"]))
@settings(max_examples=400, deadline=None)
def test_whatever_libphonenumber_accepts_keeps_its_answer(raw: str, region: str) -> None:
    expected = None if is_spreadsheet_float(raw) else reference_e164(raw, region)
    e164, why = PhoneNormalizer(region).check(raw)
    if expected is not None:
        assert (e164, why) == (expected, "")
    else:
        assert (e164 is None) == bool(why)  # rejected with a reason, or repaired into a valid number
        if e164 is not None:
            assert phonenumbers.is_valid_number(phonenumbers.parse(e164))


def test_the_import_reports_why(tmp_path: object) -> None:
    data = (
        b"contact,name,context\n+52 1 55 1234 5678,A,x\n5512345679.0,B,x\n55 1234 5670 ext. 9,C,x\n5512345,D,x\n"
        b"044 55 1234 5678,E,x\n"
    )
    result = read_contacts(data, default_region="MX")
    assert [row.contact for row in result.rows] == ["+525512345678", "+525512345679"]
    assert [(r.line, r.reason, r.detail) for r in result.rejects] == [
        (
            4,
            "INVALID_PHONE_NUMBER",
            "'55 1234 5670 ext. 9' is not a valid phone number: has an extension (9); Herald cannot dial extensions, "
            "give the direct number",
        ),
        (
            5,
            "INVALID_PHONE_NUMBER",
            "'5512345' is not a valid phone number: a local number without its area code for +52 (MX): 7 digits",
        ),
        (6, "DUPLICATE", "+525512345678 already appears on line 2"),
    ]
