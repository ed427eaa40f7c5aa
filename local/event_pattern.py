"""EventBridge event patterns, validated and matched as EventBridge does (aws/event-ruler semantics).

moto 5.2's own engine differs from AWS: it does not flatten arrays of objects or nested arrays,
counts ``[]``/``{}`` as present for ``exists``, lets ``true`` equal ``1``, and accepts invalid
patterns (an unknown operator, ``{"numeric": [">"]}``, a mixed-type ``anything-but``...) that
``PutRule`` refuses. ``local.moto_compat`` installs this module in its place, for delivery and for
``TestEventPattern`` alike.

The rules follow aws/event-ruler (the library behind EventBridge): ``JsonRuleCompiler`` for what
is valid, ``ByteMachine`` for what each operator matches, and ``rulesForJSONEvent`` for arrays —
an array's elements are all values of the field, arrays of objects and nested arrays are
"crushed out", and two fields never match from objects in different elements of the same array
("array consistency"). Numbers compare as numbers (``[300]`` matches ``300.0``) and only with
numbers: a boolean is never a number and a string is never a number.

A pattern whose wildcards are too non-deterministic is refused with "Rule is too complex", as
EventBridge refuses it after event-ruler's ``MachineComplexityEvaluator`` (``complexity``): the
most wildcard-pattern prefixes that one input value can match at once, per field, at most
``MAX_COMPLEXITY``. EventBridge does not publish its limit; see ``MAX_COMPLEXITY``. Patterns over
4096 characters are left to the caller.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

__all__ = ["EventPattern", "InvalidEventPattern", "compile_pattern"]

OR = "$or"
# Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP: field names refused inside an "$or" branch.
RESERVED_IN_OR = frozenset(
    {
        "exactly",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "wildcard",
        "numeric",
        "cidr",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6 = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")


class InvalidEventPattern(ValueError):
    """The pattern is refused, as PutRule/TestEventPattern refuse it (InvalidEventPatternException)."""


class _Object(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs, in order and with duplicates, as a streaming parser sees it."""


def _refuse(message: str) -> NoReturn:
    raise InvalidEventPattern(message)


# -- values of the pattern --------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _comparable(value: Any) -> float:
    """The number as a double, refused (like event-ruler's ComparableNumber) unless exactly representable."""
    as_float = float(value)
    if math.isnan(as_float) or math.isinf(as_float) or Decimal(repr(as_float)) != Decimal(value):
        _refuse(f"Cannot compare number : {value}")
    return as_float


def _wildcard_tokens(text: str) -> tuple[str | None, ...]:
    """event-ruler's WildcardParser: ``*`` (None) is any run of characters, ``\\*`` and ``\\\\`` are literals."""
    tokens: list[str | None] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "*":
            if text[index + 1 : index + 2] == "*":
                _refuse(f"Consecutive wildcard characters at pos {index}")
            tokens.append(None)
        elif char == "\\":
            following = text[index + 1 : index + 2]
            if following not in ("*", "\\"):
                _refuse(f"Invalid escape character at pos {index}")
            tokens.append(following)
            index += 1
        else:
            tokens.append(char)
        index += 1
    return tuple(tokens)


@dataclass(frozen=True)
class Wildcard:
    """A compiled ``wildcard`` value: its tokens (for the complexity check) and a regex (for matching)."""

    tokens: tuple[str | None, ...]
    regex: re.Pattern[str]

    def fullmatch(self, text: str) -> bool:
        return self.regex.fullmatch(text) is not None


def _wildcard(text: str) -> Wildcard:
    tokens = _wildcard_tokens(text)
    regex = "".join(".*" if token is None else re.escape(token) for token in tokens)
    return Wildcard(tokens, re.compile(regex, re.DOTALL))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not (_IPV4.fullmatch(text) or _IPV6.fullmatch(text)):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """event-ruler's CIDR.cidr: ``address/bits`` with bits below the address width."""
    address, slash, bits = text.partition("/")
    if not slash or "/" in bits:
        _refuse("Malformed CIDR, one '/' required")
    if not bits.lstrip("-").isdigit():
        _refuse("Malformed CIDR, mask bits must be an integer")
    if int(bits) < 0:
        _refuse("Malformed CIDR, mask bits must not be negative")
    ip = _ip(address)
    if ip is None:
        _refuse(f"Invalid IP address: {address}")
    if int(bits) >= ip.max_prefixlen:
        _refuse(f"IPv{ip.version} mask bits must be < {ip.max_prefixlen}")
    return ipaddress.ip_network(text, strict=False)


@dataclass(frozen=True)
class Matcher:
    """One entry of a field's list of values: an exact value or a match expression."""

    kind: str
    value: Any = None

    def matches(self, value: Any) -> bool:
        kind, expected = self.kind, self.value
        text = value if isinstance(value, str) else None
        if kind == "exists":
            return bool(expected)  # a value is there: {"exists": true} holds, {"exists": false} does not
        if kind == "exact":
            return _equal(expected, value)
        if kind == "ip":
            return text is not None and _ip(text) == expected
        if kind == "numeric":
            if not _is_number(value):
                return False
            low, low_open, high, high_open = expected
            number = float(value)
            above = low is None or (number > low if low_open else number >= low)
            below = high is None or (number < high if high_open else number <= high)
            return above and below
        if kind == "anything-but":
            numeric, excluded = expected
            if numeric:
                return not (_is_number(value) and float(value) in excluded)
            return not (text is not None and text in excluded)
        if kind.startswith("anything-but-"):
            return text is None or not any(_STRING_TESTS[kind[13:]](text, item) for item in expected)
        if text is None:
            return False  # every other operator matches strings only
        if kind == "cidr":
            ip = _ip(text)
            return ip is not None and ip.version == expected.version and ip in expected
        return _STRING_TESTS[kind](text, expected)


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or isinstance(expected, bool):
        return value is expected
    if isinstance(expected, str):
        return isinstance(value, str) and value == expected
    return _is_number(value) and (
        value == expected if isinstance(value, int) and isinstance(expected, int) else float(value) == float(expected)
    )


_STRING_TESTS: dict[str, Callable[[str, Any], bool]] = {
    "prefix": lambda text, prefix: text.startswith(prefix),
    "suffix": lambda text, suffix: text.endswith(suffix),
    "prefix-equals-ignore-case": lambda text, prefix: text.lower().startswith(prefix.lower()),
    "suffix-equals-ignore-case": lambda text, suffix: text.lower().endswith(suffix.lower()),
    "equals-ignore-case": lambda text, other: text.lower() == other.lower(),
    "wildcard": lambda text, wildcard: wildcard.fullmatch(text),
}


# -- compiling (event-ruler's JsonRuleCompiler) --------------------------------------------------

Rule = dict[str, list[Matcher]]


def _parse_object(rules: list[Rule], path: list[str], pairs: _Object, inside_or: bool) -> None:
    if not pairs:
        _refuse("Empty objects are not allowed")
    for name, value in pairs:
        if name == OR:
            _parse_or(rules, path, value)
            continue
        if inside_or and name in RESERVED_IN_OR:
            _refuse(f"{name} is Ruler reserved fieldName which cannot be used inside {OR}.")
        if isinstance(value, _Object):
            _parse_object(rules, [*path, name], value, inside_or)
        elif isinstance(value, list):
            _write(rules, ".".join([*path, name]), value)
        else:
            _refuse(f'"{name}" must be an object or an array')


def _parse_or(rules: list[Rule], path: list[str], branches: Any) -> None:
    current = [dict(rule) for rule in rules]
    rules.clear()
    if not isinstance(branches, list) or isinstance(branches, _Object):
        _refuse(f"It must be an Array followed with {OR}.")
    for branch in branches:
        if not isinstance(branch, _Object):
            _refuse(f"Only JSON object is allowed in array of {OR} relationship.")
        alternatives = [dict(rule) for rule in current] or [{}]
        _parse_object(alternatives, path, branch, True)
        rules.extend(alternatives)
    if len(branches) < 2:
        _refuse(f"There must have at least 2 Objects in {OR} relationship.")


def _write(rules: list[Rule], name: str, values: list[Any]) -> None:
    matchers = [_value(value) for value in values]
    if not matchers:
        _refuse("Empty arrays are not allowed")
    if not rules:
        rules.append({})
    for rule in rules:
        rule[name] = matchers  # a field given twice: the last one wins (withOverriding)


def _value(value: Any) -> Matcher:
    if isinstance(value, _Object):
        return _expression(value)
    if isinstance(value, str):
        ip = _ip(value)
        return Matcher("ip", ip) if ip is not None else Matcher("exact", value)
    if value is None or isinstance(value, bool):
        return Matcher("exact", value)
    if _is_number(value):
        return Matcher("exact", value if isinstance(value, int) else float(value))
    _refuse("Match value must be String, number, true, false, or null")


def _single(pairs: _Object) -> tuple[str, Any]:
    if not pairs:
        _refuse("Match expression name not found")
    if len(pairs) > 1:
        _refuse("Only one key allowed in match expression")
    return pairs[0]


def _string(value: Any, operator: str) -> str:
    if not isinstance(value, str):
        _refuse(f"{operator} match pattern must be a string")
    return str(value)


def _expression(pairs: _Object) -> Matcher:
    name, value = _single(pairs)
    if name in ("prefix", "suffix"):
        if isinstance(value, _Object):
            inner, text = _single(value)
            if inner != "equals-ignore-case":
                _refuse(f"Unsupported {name} pattern: {inner}")
            return Matcher(f"{name}-equals-ignore-case", _string(text, "equals-ignore-case"))
        return Matcher(name, _string(value, name))
    if name in ("exactly", "equals-ignore-case"):
        text = _string(value, "exact" if name == "exactly" else name)
        return Matcher("exact", text) if name == "exactly" else Matcher(name, text)
    if name == "wildcard":
        return Matcher("wildcard", _wildcard(_string(value, "wildcard")))
    if name == "numeric":
        return Matcher("numeric", _numeric(value))
    if name == "anything-but":
        return _anything_but(value)
    if name == "exists":
        if not isinstance(value, bool):
            _refuse("exists match pattern must be either true or false.")
        return Matcher("exists", value)
    if name == "cidr":
        return Matcher("cidr", _cidr(_string(value, "cidr")))
    _refuse(f"Unrecognized match type {name}")


def _numeric(terms: Any) -> tuple[float | None, bool, float | None, bool]:
    """``[op, n]`` or ``[">"|">=", low, "<"|"<=", high]``, as event-ruler's processNumericMatchExpression."""
    if not isinstance(terms, list) or isinstance(terms, _Object):
        _refuse("Value of numeric must be an array.")
    if not terms or not isinstance(terms[0], str):
        _refuse(f"Invalid member in numeric match: {terms[0] if terms else ']'}")
    operator = terms[0]
    if operator not in ("=", "<", "<=", ">", ">="):
        _refuse(f"Unrecognized numeric range operator: {operator}")
    if len(terms) < 2 or not _is_number(terms[1]):
        _refuse(f"Value of {operator} must be numeric")
    first = _comparable(terms[1])
    if operator in ("=", "<", "<=") and len(terms) > 2:
        _refuse("Too many elements in numeric expression")
    if operator == "=":
        return (first, False, first, False)
    if operator in ("<", "<="):
        return (None, False, first, operator == "<")
    if len(terms) == 2:
        return (first, operator == ">", None, False)
    if not isinstance(terms[2], str):
        _refuse(f"Bad value in numeric range: {terms[2]}")
    if terms[2] not in ("<", "<="):
        _refuse(f"Bad numeric range operator: {terms[2]}")
    if len(terms) < 4 or not _is_number(terms[3]):
        _refuse(f"Value of {terms[2]} must be numeric")
    if len(terms) > 4:
        _refuse("Too many terms in numeric range expression")
    second = _comparable(terms[3])
    if not first < second:
        _refuse("Bottom must be less than top")
    return (first, operator == ">", second, terms[2] == "<")


def _anything_but(value: Any) -> Matcher:
    if isinstance(value, _Object):
        operator, inner = _single(value)
        if operator not in ("equals-ignore-case", "prefix", "suffix", "wildcard"):
            _refuse(f"Unsupported anything-but pattern: {operator}")
        items = inner if isinstance(inner, list) and not isinstance(inner, _Object) else [inner]
        if not isinstance(inner, (str, list)) or isinstance(inner, _Object):
            _refuse("Value of anything-but must be an array or single string/number value.")
        texts = [_string(item, "wildcard" if operator == "wildcard" else f"anything-but/{operator}") for item in items]
        if operator in ("prefix", "suffix") and "" in texts:
            _refuse("Null prefix/suffix not allowed")
        kept: tuple[Any, ...] = tuple(_wildcard(text) for text in texts) if operator == "wildcard" else tuple(texts)
        return Matcher(f"anything-but-{operator}", kept)
    items = value if isinstance(value, list) and not isinstance(value, _Object) else [value]
    if (not isinstance(value, (str, list)) and not _is_number(value)) or isinstance(value, _Object):
        _refuse("Value of anything-but must be an array or single string/number value.")
    if any(not isinstance(item, str) and not _is_number(item) for item in items):
        _refuse("Inside anything but list, start|null|boolean is not supported.")
    numbers = [item for item in items if _is_number(item)]
    if not items or (numbers and len(numbers) != len(items)):
        _refuse("Inside anything but list, either all values are number or string, mixed type is not supported")
    if numbers:
        return Matcher("anything-but", (True, frozenset(_comparable(item) for item in numbers)))
    return Matcher("anything-but", (False, frozenset(items)))


def _reject_constant(name: str) -> NoReturn:
    _refuse(f"Invalid JSON: {name}")


def compile_pattern(text: str) -> list[Rule]:
    """The pattern's alternatives (``$or`` expanded), each a map of dotted field path -> values."""
    try:
        document = json.loads(text, object_pairs_hook=_Object, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, InvalidOperation) as error:
        if isinstance(error, InvalidEventPattern):
            raise
        raise InvalidEventPattern(f"Invalid JSON: {error}") from None
    if not isinstance(document, _Object):
        _refuse("Filter is not an object")
    rules: list[Rule] = []
    _parse_object(rules, [], document, False)
    if complexity(rules) > MAX_COMPLEXITY:
        _refuse("Rule is too complex")
    return rules


# -- wildcard complexity (event-ruler's MachineComplexityEvaluator) -----------------------------

# EventBridge refuses a rule whose complexity is over a limit it does not publish. event-ruler's
# README suggests 10 for a single rule's machine (its "strategy #2"); an observed refusal (8
# "*:stack/<name>/*" wildcards in one rule refused, 6 accepted) is consistent with it.
MAX_COMPLEXITY = 10
_SEARCH_BUDGET = 20_000  # value states explored per field before the pattern counts as too complex
_OTHER_BYTE = -1  # stands for every byte no wildcard pattern names


def complexity(rules: list[Rule]) -> int:
    """The most wildcard-pattern prefixes one input value can match at once, for the worst field.

    event-ruler builds one machine from the rule's alternatives that hold a wildcard and walks its
    byte states; this computes the quantity that walk measures (its tests state each expected
    figure as "<input> is matched by N wildcard prefixes") by exploring, byte by byte, which
    prefixes of each distinct ``wildcard`` value of a field match the input so far. A field's
    values from every alternative count together (an upper bound where event-ruler's machine
    would keep them under different earlier fields). Capped at ``MAX_COMPLEXITY + 1``.
    """
    by_field: dict[str, set[tuple[str | None, ...]]] = {}
    for rule in rules:
        for path, matchers in rule.items():
            for matcher in matchers:
                if matcher.kind == "wildcard":
                    by_field.setdefault(path, set()).add(matcher.value.tokens)
    return max((_field_complexity(list(patterns)) for patterns in by_field.values()), default=0)


def _field_complexity(patterns: list[tuple[str | None, ...]]) -> int:
    cap = MAX_COMPLEXITY + 1
    encoded = [_bytes_of(tokens) for tokens in patterns]
    alphabet = [*sorted({byte for tokens in encoded for byte in tokens if byte is not None}), _OTHER_BYTE]
    start = tuple(_closure(tokens, 1) for tokens in encoded)  # the empty input: only the empty prefix
    best, seen, frontier = 0, {start}, [start]
    while frontier:
        state = frontier.pop()
        for byte in alphabet:
            following = tuple(_step(tokens, active, byte) for tokens, active in zip(encoded, state, strict=True))
            best = max(best, sum((active >> 1).bit_count() for active in following))  # prefixes of length >= 1
            if best >= cap or len(seen) > _SEARCH_BUDGET:
                return cap
            if following not in seen:
                seen.add(following)
                frontier.append(following)
    return best


def _bytes_of(tokens: tuple[str | None, ...]) -> tuple[int | None, ...]:
    """A wildcard value as UTF-8 bytes (event-ruler's machines are byte machines); None is ``*``."""
    out: list[int | None] = []
    for token in tokens:
        out.extend([None] if token is None else token.encode("utf-8"))
    return tuple(out)


def _closure(tokens: tuple[int | None, ...], active: int) -> int:
    """Bit k set: the first k tokens match the input. A ``*`` also matches nothing, so it follows its prefix."""
    for index, token in enumerate(tokens):
        if token is None and active >> index & 1:
            active |= 1 << (index + 1)
    return active


def _step(tokens: tuple[int | None, ...], active: int, byte: int) -> int:
    following = 0
    for index, token in enumerate(tokens):
        if token is None:
            if active >> (index + 1) & 1:
                following |= 1 << (index + 1)  # the "*" takes this byte too
        elif token == byte and active >> index & 1:
            following |= 1 << (index + 1)
    return _closure(tokens, following)


# -- matching (rulesForJSONEvent) ---------------------------------------------------------------

Membership = tuple[tuple[int, int], ...]  # (array id, element index) for each array a value is in
Occurrences = list[tuple[Any, Membership]]
# A compiled alternative: (dotted path, its keys, exists:false allowed, values), in key order.
Field = tuple[str, tuple[str, ...], bool, tuple[Matcher, ...]]


def _collect(node: Any, keys: tuple[str, ...], at: int, membership: Membership, out: Occurrences) -> None:
    """The leaf values at ``keys`` below ``node``, arrays crushed out, with the arrays they sit in.

    An array is identified by its object (the event is not changed while it is matched). Keys
    with dots in the event match too, as event-ruler joins keys with dots.
    """
    if isinstance(node, list):
        array = id(node)
        for index, item in enumerate(node):
            _collect(item, keys, at, (*membership, (array, index)), out)
    elif at == len(keys):
        if not isinstance(node, dict):
            out.append((node, membership))
    elif isinstance(node, dict):
        child = node.get(keys[at], _MISSING)
        if child is not _MISSING:
            _collect(child, keys, at + 1, membership, out)
        for end in range(at + 2, len(keys) + 1):
            child = node.get(".".join(keys[at:end]), _MISSING)
            if child is not _MISSING:
                _collect(child, keys, end, membership, out)


_MISSING = object()


def _consistent(membership: Membership, chosen: dict[int, int]) -> bool:
    return all(chosen.get(array, index) == index for array, index in membership)


def _walk(
    fields: list[Field], position: int, chosen: dict[int, int], found: dict[str, Occurrences], event: Any
) -> bool:
    if position == len(fields):
        return True
    path, keys, absent_allowed, matchers = fields[position]
    occurrences = found.get(path)
    if occurrences is None:
        occurrences = found[path] = []
        _collect(event, keys, 0, (), occurrences)
    tried: set[Membership] = set()
    for value, membership in occurrences:
        if membership in tried or (membership and not _consistent(membership, chosen)):
            continue
        if any(matcher.matches(value) for matcher in matchers):
            tried.add(membership)
            if _walk(fields, position + 1, {**chosen, **dict(membership)} if membership else chosen, found, event):
                return True
    if absent_allowed and not any(_consistent(membership, chosen) for _, membership in occurrences):
        return _walk(fields, position + 1, chosen, found, event)
    return False


class EventPattern:
    """A validated pattern; ``None`` (a schedule-only rule) matches no event."""

    def __init__(self, text: str | None) -> None:
        self.text = text
        self.rules = compile_pattern(text) if text is not None else []
        self._fields: list[list[Field]] = [
            [
                (
                    path,
                    tuple(path.split(".")),
                    any(matcher.kind == "exists" and matcher.value is False for matcher in matchers),
                    tuple(matchers),
                )
                for path, matchers in sorted(rule.items())  # event-ruler walks a rule's fields in key order
            ]
            for rule in self.rules
        ]

    def may_match(self, source: str, detail_type: str) -> bool:
        """False when no event with this ``source`` and ``detail-type`` can match: every alternative of the
        pattern pins one of them to exact strings, prefixes or suffixes that exclude it (a cheap test
        before ``matches``)."""
        # answers kept per (source, detail-type): a bus sees few of them, each event asks every rule
        admitted: dict[tuple[str, str], bool] | None = self.__dict__.get("_admitted")
        if admitted is None:  # (the caches are not in states saved before they existed)
            admitted = self.__dict__["_admitted"] = {}
        answer = admitted.get((source, detail_type))
        if answer is not None:
            return answer
        pins: list[tuple[Pin | None, Pin | None]] | None = self.__dict__.get("_pins")
        if pins is None:
            pins = self.__dict__["_pins"] = [
                (_pinned(rule, "source"), _pinned(rule, "detail-type")) for rule in self.rules
            ]
        answer = any(_admits(sources, source) and _admits(kinds, detail_type) for sources, kinds in pins)
        if len(admitted) >= ADMITTED_KEPT:
            admitted.clear()
        admitted[(source, detail_type)] = answer
        return answer

    def matches(self, event: Mapping[str, Any]) -> bool:
        found: dict[str, Occurrences] | None = getattr(_shared, "found", None)
        if found is None:
            found = {}  # leaf values by path, looked up once per event
        return any(_walk(fields, 0, {}, found, event) for fields in self._fields)


Pin = tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]  # exact values, prefixes, suffixes
ADMITTED_KEPT = 256  # (source, detail-type) answers kept per pattern
_PINNING = ("exact", "prefix", "suffix")


def _pinned(rule: Rule, path: str) -> Pin | None:
    """The exact strings, prefixes and suffixes a rule's field must meet, or None when it may hold anything else."""
    matchers = rule.get(path)
    if not matchers or not all(m.kind in _PINNING and isinstance(m.value, str) for m in matchers):
        return None
    exact, prefixes, suffixes = ({m.value for m in matchers if m.kind == kind} for kind in _PINNING)
    return frozenset(exact), tuple(prefixes), tuple(suffixes)


def _admits(pin: Pin | None, value: str) -> bool:
    if pin is None:
        return True
    exact, prefixes, suffixes = pin
    return value in exact or value.startswith(prefixes) or value.endswith(suffixes)


_shared = threading.local()


@contextlib.contextmanager
def one_event() -> Iterator[None]:
    """Within this block every pattern is matched against the same event (copies of one dict, each
    rule of a bus getting its own): they share the event's leaf values, looked up once per path."""
    outer = getattr(_shared, "found", None)
    _shared.found = {}
    try:
        yield
    finally:
        _shared.found = outer
