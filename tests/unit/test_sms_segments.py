"""SMS segment math: GSM-7 vs UCS-2, 160/153 and 70/67, extension characters, grapheme clusters, truncation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlator.text import mask_number
from functions.sms.sms import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    count_segments,
    encoding_of,
    fit_segments,
    graphemes,
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


# Twilio's segment calculator (github.com/TwilioDevEd/message-segment-calculator, tests/index.test.js):
# every published vector with its encoding and segment count.
DIGITS = "1234567890" * 31
TWILIO_VECTORS = [
    ("GSM-7 in one segment", DIGITS[:160], GSM7, 1),
    ("GSM-7 in two segments", DIGITS[:161], GSM7, 2),
    ("GSM-7 in three segments", DIGITS[:307], GSM7, 3),
    ("UCS-2 in one segment", "😜" + DIGITS[1:69], UCS2, 1),
    ("UCS-2 in two segments", "😜" + DIGITS[1:70], UCS2, 2),
    ("UCS-2 in three segments", "😜" + DIGITS[1:134], UCS2, 3),
    ("flag at the one-segment boundary", "🇮🇹" + DIGITS[1:67], UCS2, 1),
    ("flag at the two-segment boundary", "🇮🇹" + DIGITS[1:68], UCS2, 2),
    ("ZWJ sequence at the one-segment boundary", "🏳️\u200d🌈" + DIGITS[1:65], UCS2, 1),
    ("ZWJ sequence at the two-segment boundary", "🏳️\u200d🌈" + DIGITS[1:66], UCS2, 2),
    ("UCS-2 with GSM extension characters, one segment", "😀" + "]" * 68, UCS2, 1),
    ("UCS-2 with GSM extension characters, two segments", "😀" + "]" * 69, UCS2, 2),
    ("triple accent, one segment", "e\u0301\u0301\u0301" + "a" * 66, UCS2, 1),
    ("triple accent, two segments", "e\u0301\u0301\u0301" + "a" * 67, UCS2, 2),
    *[(f"escape {char} in one segment", char + DIGITS[:158], GSM7, 1) for char in "|^€{}[]~\\"],
    *[(f"escape {char} in two segments", char + DIGITS[:159], GSM7, 2) for char in "|^€{}[]~\\"],
    *[(f"70 x {char}", char * 70, UCS2, 1) for char in "ÁÚúçíÍóÓ"],
    *[(f"71 x {char}", char * 71, UCS2, 2) for char in "ÁÚúçíÍóÓ"],
]


@pytest.mark.parametrize(
    ("text", "encoding", "segments"), [v[1:] for v in TWILIO_VECTORS], ids=[v[0] for v in TWILIO_VECTORS]
)
def test_twilio_segment_calculator_vectors(text: str, encoding: str, segments: int) -> None:
    assert (encoding_of(text), count_segments(text)) == (encoding, segments)


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        ("\rabcde\r\n123", 11),  # Twilio counts CR LF as two characters
        ("\nabcde\n\n123\n", 12),
        ("e\u0301\u0301\u0301", 1),
        ("🇮🇹🇫🇷", 2),
        ("❤️", 1),  # emoji + variation selector 16
        ("👍🏽", 1),  # emoji + skin tone modifier
    ],
)
def test_text_is_counted_in_grapheme_clusters(text: str, clusters: int) -> None:
    assert len(graphemes(text)) == clusters


@pytest.mark.parametrize(
    "cluster",
    ["🇮🇹", "e\u0301", "❤️", "🏳️\u200d🌈", "👍🏽"],
    ids=["flag", "combining accent", "variation selector", "ZWJ sequence", "skin tone"],
)
def test_a_cluster_at_a_segment_boundary_moves_whole_to_the_next_segment(cluster: str) -> None:
    # GIVEN 66 units of text, then a cluster of 2+ units that a per-code-point split would cut at unit 67
    text = "日" * 66 + cluster + "日" * 10

    # WHEN / THEN the cluster opens segment 2 instead of straddling it
    assert count_segments(text) == 2
    assert count_segments("日" * 66 + cluster + "日" * (67 - len(cluster.encode("utf-16-le")) // 2)) == 2
    assert count_segments("日" * 66 + cluster + "日" * (68 - len(cluster.encode("utf-16-le")) // 2)) == 3


@pytest.mark.parametrize(
    "cluster",
    ["🇮🇹", "e\u0301", "❤️", "🏳️\u200d🌈", "👍🏽"],
    ids=["flag", "combining accent", "variation selector", "ZWJ sequence", "skin tone"],
)
def test_truncation_never_splits_a_cluster(cluster: str) -> None:
    # GIVEN clusters only, far more than one segment
    text = cluster * 80

    # WHEN
    body = fit_segments(text, 1)

    # THEN whole clusters and the ellipsis, within one segment
    stem = body.text.removesuffix("…")
    assert body.truncated
    assert body.segments == 1
    assert stem
    assert stem == cluster * (len(stem) // len(cluster))
    assert graphemes(stem) == [cluster] * (len(stem) // len(cluster))


def test_a_flag_is_not_split_between_its_two_regional_indicators() -> None:
    # GIVEN 65 units: a per-code-point count would put the first half of the flag in segment 1 (67 units)
    text = "日" * 65 + "🇮🇹" + "日" * 65

    # WHEN / THEN the flag moves whole: 65 | 4 + 63 | 2 is three segments, not two
    assert count_segments(text) == 3
    assert fit_segments(text, 2).text == "日" * 65 + "🇮🇹" + "日" * 62 + "…"


def test_a_cluster_longer_than_a_segment_fills_several() -> None:
    # GIVEN one letter with 140 combining accents (141 UTF-16 units): more than two segments of 67
    assert count_segments("e" + "\u0301" * 140) == 3


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
