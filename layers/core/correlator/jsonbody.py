"""The one parser of JSON request bodies: well-formed UTF-8 JSON within documented limits, or refused.

Every API route with a body goes through ``parse_json_object`` before any model code runs, so no
input reaches pydantic (or a handler) that could crash it or change silently on the way:

* the bytes must be strict UTF-8 (no raw bytes, CESU-8 surrogates or UTF-16), and no string may
  hold a lone surrogate (``"\\ud800"``), which could not be written back as UTF-8;
* RFC 8259 JSON only: ``NaN``, ``Infinity`` and ``-Infinity`` are refused, not turned into ``null``;
* nesting at most ``MAX_DEPTH`` levels; integers within 64 bits (``MAX_INTEGER_DIGITS`` digits
  are checked before any conversion); decimals finite as IEEE doubles (``1e999`` is refused);
* the top level must be an object.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from correlator.errors import BadRequestError, ValidationFailedError

MAX_DEPTH = 32
MAX_INTEGER = 2**63 - 1
MIN_INTEGER = -(2**63)
MAX_INTEGER_DIGITS = 19


class _NumberOutOfRange(ValueError):
    pass


class _NotJsonNumber(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text) < MAX_INTEGER_DIGITS:  # at most 18 digits: within 64 bits without a look
        return int(text)
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _NumberOutOfRange(f"integer {text[:24]}... has more than {MAX_INTEGER_DIGITS} digits")
    value = int(text)
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        raise _NumberOutOfRange(f"integer {text} is outside the 64-bit range")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRange(f"number {text[:24]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise _NotJsonNumber(f"{name} is not a JSON number")


# Built once (json.loads with hooks builds a decoder per call); refuses what json.loads would (a BOM included).
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # \uD800-\uDFFF, either case
_CONTAINERS = (dict, list)


def decode_utf8(data: bytes) -> str:
    """``data`` as text; ``BadRequestError`` unless it is strict UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("request body is not valid UTF-8", [{"field": "body", "message": "not UTF-8"}]) from None


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a request body; ``BadRequestError`` (400) or ``ValidationFailedError`` (422) when refused.

    Numbers and constants are checked as they are parsed. Depth and strings are checked on the parsed
    tree only where the text leaves them in doubt: it cannot nest deeper than it has ``{`` and ``[``,
    and a string can only hold a lone surrogate the text holds or spells as a ``\\uD800``-``\\uDFFF``
    escape.
    """
    try:
        value = _DECODER.decode(text)
    except _NumberOutOfRange as error:
        raise _limit_error(str(error), "number_out_of_range") from None
    except _NotJsonNumber as error:
        raise BadRequestError(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise _limit_error(f"JSON nested deeper than {MAX_DEPTH} levels", "too_deep") from None
    except ValueError:  # json.JSONDecodeError included
        raise BadRequestError("request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequestError("request body must be a JSON object")
    if _may_hold_surrogates(text):
        _check_tree(value)
    elif text.count("{") + text.count("[") > MAX_DEPTH:
        _check_depth(value)
    return value


def _may_hold_surrogates(text: str) -> bool:
    """False when no string parsed from ``text`` can hold a lone surrogate (an escaped pair may be whole)."""
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        return True
    if text.isascii():  # no surrogate is ASCII
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_depth(root: dict[str, Any]) -> None:
    """Depth of a parsed body, a level at a time (no recursion on hostile input; strings not visited)."""
    level: list[Any] = [root]
    for depth in range(2, MAX_DEPTH + 2):
        level = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) in _CONTAINERS
        ]
        if not level:
            return
        if depth > MAX_DEPTH:
            raise _limit_error(f"JSON nested deeper than {MAX_DEPTH} levels", "too_deep")


def _check_tree(root: dict[str, Any]) -> None:
    """Depth and strings of a parsed body, iteratively (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise _limit_error(f"JSON nested deeper than {MAX_DEPTH} levels", "too_deep")
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise _limit_error(f"JSON nested deeper than {MAX_DEPTH} levels", "too_deep")
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(value: str) -> None:
    if value.isascii():  # no surrogate is ASCII: the common case without an encode
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequestError(
            "request body holds a lone surrogate (\\ud800-\\udfff) that is not a character",
            [{"field": "body", "message": "not UTF-8"}],
        ) from None


def _limit_error(message: str, kind: str) -> ValidationFailedError:
    return ValidationFailedError(message, [{"field": "body", "message": message, "type": kind}])
