"""CSV cells: formula neutralisation, numeric columns, RFC 4180 records, and finding the header's end."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from correlator.csvfiles import (
    CsvHeaderError,
    find_record_end,
    format_cell,
    format_records,
    header_record,
    neutralise,
    parse_header,
    restore,
)


@pytest.mark.parametrize(
    ("value", "numeric", "cell"),
    [
        ("=1+1", False, "'=1+1"),
        ("+33 1 23 45 67 89", False, "'+33 1 23 45 67 89"),
        ("-cmd|' /C calc'!A0", False, "'-cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", False, "'@SUM(A1:A9)"),
        ("\t=1", False, "\t'=1"),  # TAB separates fields: the field after it is neutralised
        ("\r=1", False, "'\r=1"),
        ("a=1", False, "a=1"),
        ("'quoted", False, "'quoted"),
        ("'=1+1", False, "''=1+1"),  # so that reading it back gives "'=1+1", not "=1+1"
        ("", False, ""),
        (None, False, ""),
        (True, False, "true"),
        (False, True, "false"),
        (42, False, "42"),
        (-5, False, "'-5"),  # a number, but not in a numeric column
        (-5, True, "-5"),
        (-12.5, True, "-12.5"),
        (1e-7, True, "1e-07"),
        ("-5", True, "-5"),  # a string that is exactly a number
        ("+1.5e3", True, "+1.5e3"),
        ("-1+2", True, "'-1+2"),  # not a number: neutralised even in a numeric column
        ('=HYPERLINK("x")', True, '\'=HYPERLINK("x")'),
        (True, True, "true"),  # booleans are not numbers
        (float("nan"), True, "nan"),
        (float("-inf"), True, "'-inf"),
    ],
)
def test_cells_are_neutralised_unless_numeric_numbers(value: Any, numeric: bool, cell: str):
    assert format_cell(value, numeric=numeric) == cell


@pytest.mark.parametrize("text", ["=x", "+x", "-x", "@x", "\tx", "\rx", "'=x", "''-x", "x", "", "'", "'x", "''"])
def test_restore_undoes_neutralise(text: str):
    assert restore(neutralise(text)) == text


# Cells a spreadsheet still evaluated after the first-character guard (each passed it before).
@pytest.mark.parametrize(
    ("text", "cell"),
    [
        (" =1+1", "' =1+1"),  # leading space
        ("\u00a0=1+1", "'\u00a0=1+1"),  # no-break space
        ("\u3000=1+1", "'\u3000=1+1"),  # ideographic space
        ("\n=1+1", "'\n=1+1"),
        ("\u200b=1+1", "'\u200b=1+1"),  # zero-width space
        ("\ufeff@SUM(A1)", "'\ufeff@SUM(A1)"),  # byte-order mark
        ("\u2060\u200d-2+3", "'\u2060\u200d-2+3"),  # word joiner, zero-width joiner
        ("＝1+1", "'＝1+1"),  # noqa: RUF001 - fullwidth equals sign
        ("＋1", "'＋1"),  # noqa: RUF001 - fullwidth plus sign
        ("﹫x", "'﹫x"),  # small commercial at
        ("a;=1+1", "a;'=1+1"),  # a spreadsheet told to split on ; evaluates the second field
        ("a; =cmd()", "a;' =cmd()"),
        ("x\t@y", "x\t'@y"),
        ("a|+1", "a|'+1"),
        ("=1;=2", "'=1;'=2"),
    ],
)
def test_what_a_spreadsheet_evaluates_is_neutralised(text: str, cell: str):
    assert format_cell(text) == cell
    assert restore(cell) == text


@given(st.text(alphabet=st.sampled_from(list("=+-@'; \t|a1\u200b\u00a0＝＋\r\n")), max_size=12))  # noqa: RUF001
def test_neutralise_is_exact_and_leaves_no_field_starting_a_formula(text: str):
    cell = neutralise(text)
    assert restore(cell) == text
    for part in re.split(r"[;\t|]", cell):
        start = unicodedata.normalize("NFKC", part.lstrip(" \u00a0\u200b\r\n"))
        assert not start.startswith(("=", "+", "-", "@")), (text, cell)


def test_records_are_rfc_4180_with_crlf():
    # GIVEN cells with a comma, quotes, a line break and non-ASCII text
    records = [["a,b", 'say "hi"', "two\nlines", "ünïcødé", ""]]

    # WHEN formatted
    data = format_records(records)

    # THEN quoting follows RFC 4180 (quotes doubled), records end in CRLF, and csv reads it back
    assert data == '"a,b","say ""hi""","two\nlines",ünïcødé,\r\n'.encode()
    assert list(csv.reader(io.StringIO(data.decode(), newline=""))) == records


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"a,b\r\n1,2\r\n", 5),
        (b'"x\r\ny",b\r\n1,2\r\n', 10),
        (b'"say ""hi""",b\r\nrest', 16),
        (b'"open\n', None),
        (b"no line end", None),
        (b"", None),
    ],
)
def test_the_first_record_ends_at_the_first_line_feed_outside_quotes(data: bytes, end: int | None):
    assert find_record_end(data) == end


def test_a_header_round_trips_through_its_record():
    # GIVEN column names that need quoting and neutralising
    names = ["timestamp", "a,b", "=x", "line\nbreak"]

    # WHEN the header record is written and read back
    record = header_record(names)
    cells = parse_header(record[: find_record_end(record)])

    # THEN the cells are the neutralised names, and restore gives the names back
    assert cells == ["timestamp", "a,b", "'=x", "line\nbreak"]
    assert [restore(cell) for cell in cells] == names


@pytest.mark.parametrize("record", [b"\r\n", b"\xff\xfe,a\r\n"])
def test_an_unreadable_header_is_refused(record: bytes):
    with pytest.raises(CsvHeaderError):
        parse_header(record)
