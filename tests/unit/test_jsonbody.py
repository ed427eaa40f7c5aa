"""The request-body gate's shortcuts: ``parse_json_object`` skips walking the parsed tree only where the
text proves the walk would find nothing, so every body gets the outcome of the full check.

The full check is the gate as first built: ``json.loads`` with the number hooks, then ``_check_tree``
over every node (depth and every string). Each body below must give the same value, or the same error
class, status and body.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from correlator import jsonbody
from correlator.errors import BadRequestError, CorrelatorError
from tests.samples import HOSTILE_BODIES


def _full_check(text: str) -> dict[str, Any]:
    """The reference: parse with the hooks, then walk every node of the tree."""
    try:
        value = json.loads(
            text,
            parse_int=jsonbody._parse_int,
            parse_float=jsonbody._parse_float,
            parse_constant=jsonbody._refuse_constant,
        )
    except jsonbody._NumberOutOfRange as error:
        raise jsonbody._limit_error(str(error), "number_out_of_range") from None
    except jsonbody._NotJsonNumber as error:
        raise BadRequestError(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise jsonbody._limit_error(f"JSON nested deeper than {jsonbody.MAX_DEPTH} levels", "too_deep") from None
    except ValueError:
        raise BadRequestError("request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequestError("request body must be a JSON object")
    jsonbody._check_tree(value)
    return value


def _outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", parse(text)
    except CorrelatorError as error:
        return type(error).__name__, (error.status, error.to_body())


def _nested(levels: int, opener: str = "[", inner: str = "1") -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return '{"payload":' + opener * levels + inner + closer * levels + "}"


def _text(body: bytes) -> str | None:
    """``body`` as text the way a caller could hand it to the parser (lone surrogates kept), if it is any."""
    try:
        return body.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def _wide(count: int, item: str) -> str:
    return '{"events":[' + ",".join([item] * count) + "]}"


BODIES = [
    *(text for hostile in HOSTILE_BODIES if (text := _text(hostile.body)) is not None),
    # depth around the limit (the root object is level 1), with and without a count that proves it
    *(_nested(levels) for levels in (30, 31, 32)),
    *(_nested(levels, '{"a":') for levels in (30, 31, 32)),
    *(_nested(levels, inner='"\\ud800"') for levels in (31, 32)),
    _wide(40, '{"type":"a","payload":{"x":[1,{"y":[]}]}}'),
    _wide(40, '{"type":"a","payload":' + "[" * 30 + "]" * 30 + "}"),
    _wide(40, '{"type":"a","payload":' + "[" * 31 + "]" * 31 + "}"),
    '{"text":"' + "[" * 40 + '"}',  # brackets in a string: shallow
    '{"a":' + "[" * 31 + '"' + "{" * 40 + '"' + "]" * 31 + "}",
    # strings: lone and paired surrogates, escaped or raw, and look-alikes
    '{"a":"\\ud83d\\ude00"}',
    '{"a":"\\uD83D\\uDE00"}',
    '{"a":"\\uDE00"}',
    '{"a":"\\udbff x"}',
    '{"a":"\\\\ud800"}',
    '{"\\ud800":1}',
    '{"a":["\\u00e9", "\\u20ac", {"b":"\\udc00"}]}',
    '{"a":"\ud800"}',
    '{"a":"é€😀"}',
    '{"é":"\ud800"}',
    # numbers at the limits
    '{"n":999999999999999999}',
    '{"n":-999999999999999999}',
    '{"n":9223372036854775807}',
    '{"n":-9223372036854775808}',
    '{"n":9223372036854775808}',
    '{"n":-9223372036854775809}',
    '{"n":0000000000000000001}',
    '{"n":1.7976931348623157e308}',
    '{"n":-1e999}',
    '{"n":1' + "0" * 400 + ".5}",
    '{"n":"NaN","m":"1e999"}',
    # not JSON, or not an object
    "\ufeff{}",
    '{"a":1} x',
    "  [1]  ",
    '"text"',
    "{",
    '{"a":tru}',
]


@pytest.mark.parametrize("text", BODIES)
def test_every_body_gets_the_outcome_of_the_full_check(text: str) -> None:
    # GIVEN a body, hostile or fine
    # WHEN the gate parses it, and the full check parses it
    # THEN both give the same value, or refuse it with the same error, status and body
    assert _outcome(jsonbody.parse_json_object, text) == _outcome(_full_check, text)


def test_the_bodies_reach_every_branch_of_the_gate() -> None:
    # GIVEN the bodies above
    outcomes = [_outcome(jsonbody.parse_json_object, text) for text in BODIES]
    refusals = [body for kind, body in outcomes if kind != "value"]
    # THEN some are accepted, and some refused for depth, numbers and lone surrogates
    assert 0 < len(refusals) < len(outcomes)
    types = {detail.get("type") for _, body in refusals for detail in body["details"]}
    assert {"too_deep", "number_out_of_range"} <= types
    assert any("lone surrogate" in body["message"] for _, body in refusals)
