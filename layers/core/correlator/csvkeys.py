"""S3 keys of CSV files, from templates such as ``csv/{dataset}/{yyyy}-{mm}-{dd}.csv``.

A template is literal text and ``{placeholder}``s from a fixed set; nothing else is interpreted
(no format specs, no attribute access). It is checked twice: when a rule is created (the
template alone: a bad one is a 422 naming ``config.key``) and when a row is written (the key
with the event's values in it: ``dataset`` ``..`` would make a ``..`` segment). The key always
lies under ``csv/``, the only prefix the CSV writer may write to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC

from correlator.event import Event

CSV_PREFIX = "csv/"
DEFAULT_CSV_KEY = "csv/{dataset}/{yyyy}-{mm}-{dd}.csv"
MAX_KEY_BYTES = 1024
# dataset: the dataset id; yyyy/mm/dd/hh: the event's time (UTC); rule: the rule's name; type: the event's type.
KEY_PLACEHOLDERS = ("dataset", "yyyy", "mm", "dd", "hh", "rule", "type")

_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
# Literal text: S3's "safe" characters without the ones tools treat specially, plus "=" (dt=... partitions).
_LITERAL_RE = re.compile(r"[A-Za-z0-9._=/-]*")
# Substituted values: what dataset ids, event types, rule names and dates are made of.
_VALUE_RE = re.compile(r"[A-Za-z0-9._:+-]{1,128}")
_SAMPLE_VALUES = dict.fromkeys(KEY_PLACEHOLDERS, "x")


class InvalidKeyError(ValueError):
    """A key template, or the key made from it, is not an acceptable S3 key."""


def validate_key_template(template: str) -> str:
    """``template`` if it is a valid key template; ``InvalidKeyError`` saying why otherwise."""
    _parse(template)
    if not template.startswith(CSV_PREFIX):
        raise InvalidKeyError(f"the key must start with {CSV_PREFIX!r} (the CSV writer's prefix)")
    check_key(render_key(template, _SAMPLE_VALUES))
    return template


def render_key(template: str, values: Mapping[str, str]) -> str:
    """The key made of ``template`` and ``values``; ``InvalidKeyError`` if a value or the key is unsafe."""
    parts: list[str] = []
    for literal, name in _parse(template):
        parts.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None:
            raise InvalidKeyError(f"no value for {{{name}}}")
        if not _VALUE_RE.fullmatch(value) or value in (".", ".."):
            raise InvalidKeyError(f"{{{name}}} has a value that cannot be part of a key: {value[:80]!r}")
        parts.append(value)
    return check_key("".join(parts))


def check_key(key: str) -> str:
    """``key`` if it is a safe relative S3 key under ``csv/``; ``InvalidKeyError`` otherwise."""
    if not key.startswith(CSV_PREFIX) or key.endswith("/"):
        raise InvalidKeyError(f"the key must be a file under {CSV_PREFIX!r}")
    if "\\" in key or any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidKeyError("the key must not contain backslashes or control characters")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise InvalidKeyError("the key must not contain empty, '.' or '..' segments")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"the key must be at most {MAX_KEY_BYTES} bytes")
    return key


def key_values(event: Event, rule_name: str) -> dict[str, str]:
    """The placeholder values an event provides (``dataset`` only for dataset events)."""
    time = event.time.astimezone(UTC)
    values = {
        "yyyy": f"{time.year:04d}",
        "mm": f"{time.month:02d}",
        "dd": f"{time.day:02d}",
        "hh": f"{time.hour:02d}",
        "rule": rule_name,
        "type": event.type,
    }
    if event.dataset is not None:
        values["dataset"] = event.dataset
    return values


def _parse(template: str) -> list[tuple[str, str | None]]:
    """``template`` as (literal, placeholder name or None) pairs, validating both."""
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(template):
        pieces.append((_literal(template[position : match.start()]), _placeholder(match.group(1))))
        position = match.end()
    pieces.append((_literal(template[position:]), None))
    return pieces


def _literal(text: str) -> str:
    if not _LITERAL_RE.fullmatch(text):
        bad = sorted({char for char in text if not _LITERAL_RE.fullmatch(char)})
        raise InvalidKeyError(
            f"only letters, digits, '.', '_', '=', '-', '/' and {{placeholders}} are allowed, not {''.join(bad)!r}"
        )
    return text


def _placeholder(name: str) -> str:
    if name not in KEY_PLACEHOLDERS:
        raise InvalidKeyError(f"unknown placeholder {{{name[:40]}}}: use one of {', '.join(KEY_PLACEHOLDERS)}")
    return name
