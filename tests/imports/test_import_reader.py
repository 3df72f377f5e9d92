"""read_contacts: columns, rejects with line numbers, duplicates, encodings and delimiters."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.imports import ContactRow, ImportFileError, Reason, read_contacts

HEADER = "contact,name,context"


def test_accepted_row_carries_all_fields() -> None:
    text = (
        "Contact , NAME,context,id,override_agent_name,override_agent_voice_id,plan,due\n"
        '55 1234 5678, Juan Pérez ,"Amount: $1,500",123,Inés,female_voice,gold,2025-06-05\n'
    )
    result = read_contacts(text.encode(), default_region="MX")
    assert result.rows == [
        ContactRow(
            line=2,
            contact="+525512345678",
            name="Juan Pérez",
            context="Amount: $1,500",
            external_id="123",
            override_agent_name="Inés",
            override_agent_voice_id="female_voice",
            input_variables={"plan": "gold", "due": "2025-06-05"},
        )
    ]
    assert result.rejects == []
    assert result.columns == [
        "Contact",
        "NAME",
        "context",
        "id",
        "override_agent_name",
        "override_agent_voice_id",
        "plan",
        "due",
    ]
    assert (result.encoding, result.delimiter) == ("utf-8", ",")


def test_empty_optional_columns_are_none() -> None:
    result = read_contacts(b"contact,name,context,id\n+525512345678,Ana,,\n", default_region="MX")
    row = result.rows[0]
    assert (row.context, row.external_id, row.override_agent_name) == ("", None, None)


def test_mixed_formats_normalise_to_e164() -> None:
    numbers = ["55 1234 5678", "+52 55 1234 5679", "(55) 1234-5680", "+525512345681", "52 55 1234 5682"]
    text = HEADER + "\n" + "".join(f"{n},n,c\n" for n in numbers)
    result = read_contacts(text.encode(), default_region="MX")
    assert [r.contact for r in result.rows] == [
        "+525512345678",
        "+525512345679",
        "+525512345680",
        "+525512345681",
        "+525512345682",
    ]


def test_invalid_phone_number_is_rejected_with_line_and_values() -> None:
    result = read_contacts(f"{HEADER}\n+525512345678,a,b\n12,Bad,ctx\n".encode(), default_region="MX")
    assert len(result.rows) == 1
    (reject,) = result.rejects
    assert (reject.line, reject.reason) == (3, Reason.INVALID_PHONE_NUMBER)
    assert "'12'" in reject.detail
    assert reject.values == {"contact": "12", "name": "Bad", "context": "ctx"}


def test_missing_contact_is_rejected() -> None:
    result = read_contacts(f"{HEADER}\n  ,Ana,ctx\n".encode(), default_region="MX")
    assert [(r.line, r.reason) for r in result.rejects] == [(2, Reason.MISSING_CONTACT)]
    assert result.rejects[0].values == {"contact": "  ", "name": "Ana", "context": "ctx"}


def test_duplicate_in_file_is_rejected_and_names_first_line() -> None:
    result = read_contacts(f"{HEADER}\n5512345678,a,b\n+52 55 1234 5678,c,d\n".encode(), default_region="MX")
    assert [r.line for r in result.rows] == [2]
    (reject,) = result.rejects
    assert (reject.line, reject.reason) == (3, Reason.DUPLICATE)
    assert "line 2" in reject.detail


def test_duplicate_of_campaign_contact_is_rejected_when_skipping() -> None:
    result = read_contacts(f"{HEADER}\n5512345678,a,b\n".encode(), default_region="MX", existing={"+525512345678"})
    assert result.rows == []
    assert [(r.line, r.reason) for r in result.rejects] == [(2, Reason.DUPLICATE)]
    assert "already in the campaign" in result.rejects[0].detail


def test_suppressed_number_is_rejected() -> None:
    result = read_contacts(f"{HEADER}\n5512345678,a,b\n".encode(), default_region="MX", suppressed={"+525512345678"})
    assert [(r.line, r.reason) for r in result.rejects] == [(2, Reason.SUPPRESSED)]


def test_suppression_wins_over_duplicate() -> None:
    result = read_contacts(
        f"{HEADER}\n5512345678,a,b\n".encode(),
        default_region="MX",
        existing={"+525512345678"},
        suppressed={"+525512345678"},
    )
    assert [r.reason for r in result.rejects] == [Reason.SUPPRESSED]


def test_update_marks_campaign_contacts() -> None:
    result = read_contacts(
        f"{HEADER}\n5512345678,a,b\n5512345679,c,d\n".encode(),
        default_region="MX",
        existing={"+525512345678"},
        if_duplicate="update",
    )
    assert [(r.contact, r.update) for r in result.rows] == [("+525512345678", True), ("+525512345679", False)]
    assert result.rejects == []


def test_update_later_duplicate_in_file_overwrites_earlier() -> None:
    text = f"{HEADER}\n5512345678,first,x\n5512345679,other,y\n+525512345678,second,z\n5512345678,third,w\n"
    result = read_contacts(text.encode(), default_region="MX", if_duplicate="update")
    # The surviving record keeps the first one's place but the latest values and line.
    assert [(r.line, r.name) for r in result.rows] == [(5, "third"), (3, "other")]
    assert [(r.line, r.reason, r.detail) for r in result.rejects] == [
        (2, Reason.DUPLICATE, "+525512345678 overwritten by line 4"),
        (4, Reason.DUPLICATE, "+525512345678 overwritten by line 5"),
    ]
    assert result.rejects[0].values["name"] == "first"
    assert result.rejects[1].values["name"] == "second"


def test_bad_if_duplicate_value() -> None:
    with pytest.raises(ValueError, match="if_duplicate"):
        read_contacts(f"{HEADER}\n".encode(), default_region="MX", if_duplicate="merge")  # type: ignore[arg-type]


def test_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown phone region"):
        read_contacts(f"{HEADER}\n".encode(), default_region="XX")


def test_longer_row_is_malformed_reject_shorter_row_is_padded() -> None:
    text = f"{HEADER}\n5512345678,a,b,EXTRA\n5512345679,c\n5512345670,d,e,,\n"
    result = read_contacts(text.encode(), default_region="MX")
    assert [(r.line, r.name, r.context) for r in result.rows] == [(3, "c", ""), (4, "d", "e")]
    (reject,) = result.rejects
    assert (reject.line, reject.reason) == (2, Reason.MALFORMED_ROW)
    assert reject.values == {"contact": "5512345678", "name": "a", "context": "b", "#4": "EXTRA"}


def test_blank_lines_and_filler_rows_are_counted_not_rejected() -> None:
    text = f"{HEADER}\n\n5512345678,a,b\n,,\n  , ,\n"
    result = read_contacts(text.encode(), default_region="MX")
    assert [r.line for r in result.rows] == [3]
    assert result.rejects == []
    assert result.blank_lines == 3


def test_quoted_newline_keeps_line_numbers_of_record_starts() -> None:
    text = f'{HEADER}\n5512345678,"Ana\nMaría","line one\r\nline two"\r\n12,bad,x\n5512345679,b,c\n'
    result = read_contacts(text.encode(), default_region="MX")
    assert [(r.line, r.name) for r in result.rows] == [(2, "Ana\nMaría"), (6, "b")]
    assert result.rows[0].context == "line one\r\nline two"
    assert [r.line for r in result.rejects] == [5]


def test_header_only_file_gives_no_rows() -> None:
    result = read_contacts(f"{HEADER}\r\n".encode(), default_region="MX")
    assert (result.rows, result.rejects) == ([], [])


def test_path_source(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(f"{HEADER}\n5512345678,a,b\n".encode())
    assert read_contacts(path, default_region="MX").rows[0].contact == "+525512345678"


def test_progress_reports_bytes_up_to_total() -> None:
    data = (HEADER + "\n" + "".join(f"55123{i:05d},n,c\n" for i in range(20000))).encode()
    calls: list[int] = []
    read_contacts(data, default_region="MX", progress=calls.append)
    assert calls[-1] == len(data)
    assert len(calls) > 2
    assert calls == sorted(calls)


# --- encodings and delimiters ---------------------------------------------------------------


def test_utf8_bom_is_accepted() -> None:
    data = b"\xef\xbb\xbf" + "contact,name,context\n5512345678,José,ñ\n".encode()
    result = read_contacts(data, default_region="MX")
    assert result.encoding == "utf-8-sig"
    assert result.columns[0] == "contact"
    assert result.rows[0].name == "José"


def test_latin1_is_detected_and_converted() -> None:
    data = "contact;name;context\n5512345678;José Müller;Año “2025”\n".encode("cp1252")
    result = read_contacts(data, default_region="MX")
    assert result.encoding == "cp1252"
    assert (result.rows[0].name, result.rows[0].context) == ("José Müller", "Año “2025”")


def test_latin1_bytes_undefined_in_cp1252_fall_back_to_iso_8859_1() -> None:
    data = b"contact,name,context\n5512345678,Jos\xe9\x81,x\n"
    result = read_contacts(data, default_region="MX")
    assert result.encoding == "latin-1"
    assert result.rows[0].name == "José\x81"


def test_semicolon_delimiter() -> None:
    result = read_contacts(b'contact;name;context\n5512345678;Ana;"a;b, c"\n', default_region="MX")
    assert result.delimiter == ";"
    assert result.rows[0].context == "a;b, c"


def test_tab_delimiter() -> None:
    result = read_contacts(b"contact\tname\tcontext\n55 1234 5678\tAna\tx, y\n", default_region="MX")
    assert result.delimiter == "\t"
    assert (result.rows[0].contact, result.rows[0].context) == ("+525512345678", "x, y")


def test_quoted_commas_in_header_do_not_fool_detection() -> None:
    result = read_contacts(b'contact;name;context;"a,b,c"\n5512345678;Ana;x;1\n', default_region="MX")
    assert result.delimiter == ";"
    assert result.rows[0].input_variables == {"a,b,c": "1"}


# --- file errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b" \r\n\n", "empty"),
        (b"contact,name,context\n\x00\x01\x02", "binary"),
        (bytes(range(1, 32)) * 10, "binary"),
        (b"PK\x03\x04rest-of-zip", "ZIP"),
        ("contact,name,context\n".encode("utf-16"), "UTF-16"),
        (b"contact,name\n5512345678,a\n", "missing required column.*context"),
        (b"phone,nombre\n", "contact, name, context"),
        (b"contact|name|context\n5512345678|a|b\n", "single column"),
        (b"contact name context\n5512345678 a b\n", "single column"),
        (b"contact,,name,context\n", "column 2 .*no name"),
        (b"contact,name,context,Name\n", "'Name' appears twice"),
        (b'contact,name,context\n5512345678,"Ana,x\n5512345679,b,c\n', "line 2: malformed CSV"),
        (b'contact,name,context\n5512345678,"Ana"x,c\n', "line 2: malformed CSV"),
    ],
)
def test_file_errors(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        read_contacts(data, default_region="MX")


def test_trailing_empty_header_cells_are_dropped() -> None:
    result = read_contacts(b"contact,name,context,,\n5512345678,a,b,,\n", default_region="MX")
    assert result.columns == ["contact", "name", "context"]
    assert len(result.rows) == 1


def test_garbage_collector_state_is_restored() -> None:
    import gc

    assert gc.isenabled()
    read_contacts(f"{HEADER}\n5512345678,a,b\n".encode(), default_region="MX")
    assert gc.isenabled()
    with pytest.raises(ImportFileError):
        read_contacts(f'{HEADER}\n5512345678,"a\n'.encode(), default_region="MX")
    assert gc.isenabled()
    gc.disable()
    try:
        read_contacts(f"{HEADER}\n5512345678,a,b\n".encode(), default_region="MX")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_broken_quoting_in_header_names_line_1() -> None:
    with pytest.raises(ImportFileError, match="line 1"):
        read_contacts(b'contact,"name"x,context\n', default_region="MX")


def test_fast_row_constructor_builds_the_same_frozen_row() -> None:
    import dataclasses

    from herald.imports.model import new_row

    args = (7, "+525512345678", "Ana", "ctx", "x1", "Inés", "voice", {"plan": "gold"}, True)
    row = new_row(*args)
    assert row == ContactRow(*args)
    assert type(row) is ContactRow
    assert dataclasses.astuple(row) == args
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.name = "other"  # type: ignore[misc]
