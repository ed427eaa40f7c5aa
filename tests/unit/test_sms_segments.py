"""SMS segment math: GSM-7 vs UCS-2, 160/153 and 70/67, extension characters, truncation with an ellipsis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.sms.sms import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    count_segments,
    encoding_of,
    fit_segments,
    mask_number,
    retry_after_seconds,
)

GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=1200)
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)),
        st.sampled_from("…é€日本語😀🚀ÿ"),
        st.characters(codec="utf-8"),  # no lone surrogates
    ),
    max_size=800,
)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello @ £5 & ¥ — no", UCS2),  # the em dash is not GSM-7
        ("Hello @ £5 & ¥ - yes", GSM7),
        ("curly {braces} [and] ~ | \\ ^ €", GSM7),
        ("ç lower-case c cedilla", UCS2),  # only Ç is in the basic table
        ("emoji 😀", UCS2),
        ("ESC \x1b is not text", UCS2),
        ("", GSM7),
    ],
)
def test_encoding_detection(text: str, encoding: str) -> None:
    assert encoding_of(text) == encoding


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets: extension characters take two
        ("€" * 81, 2),
        ("a" * 158 + "€", 1),  # 160 septets
        ("a" * 159 + "€", 2),  # 161 septets
        ("é" * 70, 1),  # é is GSM-7 (basic table)
        ("日" * 70, 1),
        ("日" * 71, 2),
        ("日" * 134, 2),
        ("日" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 36, 2),
        ("", 1),
    ],
)
def test_segment_counts(text: str, segments: int) -> None:
    assert count_segments(text) == segments


def test_an_extension_character_never_straddles_two_gsm_segments() -> None:
    # GIVEN 152 septets, then a two-septet character that cannot take septets 153-154
    # WHEN / THEN it opens segment 2: 152 | 2 + 100, and 152 | 2 + 151 | 1
    assert count_segments("a" * 152 + "€" + "a" * 100) == 2
    assert count_segments("a" * 152 + "€" + "a" * 152) == 3


def test_a_surrogate_pair_never_straddles_two_ucs2_segments() -> None:
    # 66 units, an emoji (2 units) moves to segment 2: 66 | 2+65 = 67 | 0
    assert count_segments("日" * 66 + "😀" + "日" * 65) == 2
    assert count_segments("日" * 66 + "😀" + "日" * 66) == 3


def test_gsm_truncation_uses_three_dots_and_fills_the_segments() -> None:
    # GIVEN / WHEN
    body = fit_segments("word " * 100, 2)

    # THEN 303 characters and "..." fill the 2 x 153 septets
    assert (body.encoding, body.segments, body.truncated) == (GSM7, 2, True)
    assert body.text == ("word " * 100)[:303] + "..."


def test_truncation_drops_trailing_whitespace_before_the_ellipsis() -> None:
    # GIVEN a cut that would fall just after a space
    text = "a" * 156 + " " + "b" * 200

    # WHEN
    body = fit_segments(text, 1)

    # THEN
    assert body.text == "a" * 156 + "..."


def test_ucs2_truncation_uses_one_ellipsis_character() -> None:
    # GIVEN 200 CJK characters, at most 1 segment
    body = fit_segments("日" * 200, 1)

    # THEN 69 + "…" = 70 units
    assert body.text == "日" * 69 + "…"
    assert (body.encoding, body.segments, body.truncated) == (UCS2, 1, True)


def test_a_text_that_fits_is_unchanged() -> None:
    body = fit_segments("a" * 306, 2)
    assert (body.text, body.segments, body.truncated) == ("a" * 306, 2, False)


@settings(max_examples=150, deadline=None)
@given(text=ANY_TEXT, max_segments=st.integers(min_value=1, max_value=4))
def test_fitted_bodies_always_fit_and_are_a_prefix_plus_ellipsis(text: str, max_segments: int) -> None:
    # WHEN
    body = fit_segments(text, max_segments)

    # THEN
    assert count_segments(body.text) == body.segments <= max_segments
    assert body.encoding == encoding_of(body.text)
    if not body.truncated:
        assert body.text == text
    else:
        stem = body.text.removesuffix("...") if body.encoding == GSM7 else body.text.removesuffix("…")
        assert len(stem) < len(body.text)
        assert text.startswith(stem)


@settings(max_examples=150, deadline=None)
@given(text=GSM_TEXT)
def test_gsm_segments_match_the_septet_arithmetic_without_extension_characters(text: str) -> None:
    # GIVEN text of basic characters only (one septet each)
    basic = "".join(char for char in text if char not in GSM7_EXTENSION)

    # WHEN / THEN
    expected = 1 if len(basic) <= 160 else -(-len(basic) // 153)
    assert count_segments(basic) == expected


@pytest.mark.parametrize(
    ("number", "masked"),
    [("+447700900123", "+44*******123"), ("+15005550006", "+15******006"), ("+1234567", "+12**567")],
)
def test_phone_numbers_are_masked(number: str, masked: str) -> None:
    assert mask_number(number) == masked


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({}, None),
        (None, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after_is_read_case_insensitively(headers: dict[str, str] | None, seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds
