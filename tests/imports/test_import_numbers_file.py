"""`herald suppressions import`: reading a file of numbers and the accounting of what was read (properties)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from herald.imports.numbers import check_numbers, numbers_in
from herald.imports.phones import PhoneNormalizer, reference_e164

# Numbers as people write them (national, with the country code, spaced, dashed) and things that are not numbers.
_national = st.integers(min_value=5500000000, max_value=5599999999).map(str)
_values = st.one_of(
    _national,
    _national.map(lambda n: f"+52 {n[:2]} {n[2:6]} {n[6:]}"),
    _national.map(lambda n: f"{n[:2]}-{n[2:6]}-{n[6:]}"),
    st.sampled_from(["nope", "123", "+1 555", "55 1234 567x", "0"]),
)
_cells = st.one_of(_values, st.just(""))  # a blank cell is skipped, not reported


@given(cells=st.lists(_cells, max_size=40), header=st.booleans(), delimiter=st.sampled_from([",", ";", "\t"]))
def test_every_non_blank_cell_is_read_once_with_its_line(cells: list[str], header: bool, delimiter: str) -> None:
    if header:
        text = f"name{delimiter}contact\n" + "".join(f"P{i}{delimiter}{cell}\n" for i, cell in enumerate(cells))
        first = 2
    else:
        text = "".join(f"{cell}\n" for cell in cells)
        first = 1
    expected = [(line, cell) for line, cell in enumerate(cells, start=first) if cell.strip()]
    assert numbers_in(text) == expected


@given(values=st.lists(_values, max_size=40))
def test_each_value_is_valid_or_invalid_once_and_valid_ones_are_deduplicated(values: list[str]) -> None:
    pairs = list(enumerate(values, start=1))
    checked = check_numbers(pairs, PhoneNormalizer("MX"))
    invalid_lines = [item["line"] for item in checked.invalid]
    assert len(invalid_lines) == len(set(invalid_lines))
    first_line: dict[str, int] = {}
    for line, raw in pairs:
        e164 = reference_e164(raw, "MX")
        if e164 is None:
            assert {"line": line, "value": raw} in [{k: i[k] for k in ("line", "value")} for i in checked.invalid]
            assert next(i["reason"] for i in checked.invalid if i["line"] == line)
        else:
            assert line not in invalid_lines
            first_line.setdefault(e164, line)
    assert checked.valid == first_line  # same numbers, first line of each, first-seen order
    assert list(checked.valid) == list(first_line)
    assert len(invalid_lines) + sum(1 for _, raw in pairs if reference_e164(raw, "MX")) == len(pairs)
