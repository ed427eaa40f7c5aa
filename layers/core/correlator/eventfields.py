"""The Correlator event's fields and rules, without pydantic: limits, patterns, levels, kinds, times, ids.

``correlator.event`` declares the models from these (and re-exports them), and the reception's
compiled validator (``correlator.submission_schema``, generated from the same models) calls the
same rule functions, so a rule is written once, here, whichever path validates a submission.
"""

from __future__ import annotations

import binascii
import os
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic_core.core_schema import ValidationInfo

MAX_TEXT_CHARS = 51_200
MAX_SUMMARY_CHARS = 1_024
MAX_SCHEMA_CHARS = 1_024
MAX_SYSTEM_ID_CHARS = 256
MAX_SUBJECT_CHARS = 2_048
MAX_VIA_HOPS = 32
MAX_URL_CHARS = 2_048
MAX_TIME_CHARS = 64
MAX_EVENTS_PER_REQUEST = 100  # in one batch submission

TYPE_PATTERN = r"^[A-Za-z0-9._:+-]{1,128}$"
DATASET_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REQUEST_KEY_PATTERN = r"^[A-Za-z0-9_-]{0,128}$"
_REQUEST_KEY_RE = re.compile(REQUEST_KEY_PATTERN)
# RFC 3339 date-time (not every ISO 8601 form fromisoformat takes): fraction kept to microseconds.
_RFC3339_RE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6})[0-9]*)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class Level(StrEnum):
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


LEVEL_ALIASES: dict[str, Level] = {
    "info": Level.INFO,
    "informational": Level.INFO,
    "notice": Level.INFO,
    "warn": Level.WARN,
    "warning": Level.WARN,
    "error": Level.ERROR,
}


class Kind(StrEnum):
    STANDARD = "standard"
    DATASET = "dataset"


_DATASET_SCALARS = (str, int, float, bool, type(None))


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``: ``2026-11-22T14:52:39.778Z`` (always a four-digit year)."""
    # Not strftime("%Y"): glibc writes year 199 as "199", which nothing parses back; isoformat writes "0199"
    # and truncates the fraction to milliseconds. In UTC it ends "+00:00".
    if value.tzinfo is not UTC:  # parse_time's times are already
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_time(value: Any) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset; return it in UTC, truncated to ms.

    Only times that ``format_time`` writes back and this function reads back identically are
    accepted: at most ``MAX_TIME_CHARS`` characters, and years 0001-9999 once converted to UTC.
    """
    if isinstance(value, str) and len(value) > MAX_TIME_CHARS:
        raise ValueError(f"must be at most {MAX_TIME_CHARS} characters")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and (match := _RFC3339_RE.fullmatch(value)):
        base, fraction, offset = match.groups()
        # milliseconds kept, as below: the text says so already
        millis = "." + fraction[:3].ljust(6, "0") if fraction else ""
        utc = offset in "Zz"
        iso = f"{base.upper().replace(' ', 'T')}{millis}{'+00:00' if utc else offset}"
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            raise ValueError("must be an RFC 3339 timestamp, e.g. 2026-11-22T14:52:39.778Z") from None
        if utc:  # in UTC (the singleton fromisoformat gives) and truncated: nothing left to do
            return parsed
    else:
        raise ValueError("must be an RFC 3339 timestamp with a UTC offset or Z, e.g. 2026-11-22T14:52:39.778Z")
    if parsed.tzinfo is None:
        raise ValueError("must carry a UTC offset or Z")
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between years 0001 and 9999 once converted to UTC") from None
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def new_event_id() -> str:
    """A URL-safe unique event id (22 characters: 128 random bits, base64url)."""
    return secrets.token_urlsafe(16)


_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 to base64url


def new_event_ids(count: int) -> list[str]:
    """``count`` ids like ``new_event_id``'s, from one read of the system's randomness."""
    random = os.urandom(16 * count)  # what secrets.token_bytes reads, without its two wrappers
    return [
        binascii.b2a_base64(random[start : start + 16], newline=False)[:22].translate(_URLSAFE).decode("ascii")
        for start in range(0, 16 * count, 16)
    ]


def new_request_key() -> str:
    """A default request key, Personium style: ``{4}_{18}`` of a base64url UUID."""
    raw = new_event_id()
    return f"{raw[:4]}_{raw[4:]}"


def is_valid_request_key(value: str) -> bool:
    """True when ``value`` is a valid request key (``[A-Za-z0-9_-]{0,128}``)."""
    return _REQUEST_KEY_RE.fullmatch(value) is not None


def is_batch(body: Mapping[str, Any]) -> bool:
    """Whether a submission's JSON object is a batch (``{"events": [...]}``) rather than one event."""
    return "events" in body


# The field rules of ``EventSubmission`` (pydantic calls them; their errors become the 422 details).


def level_of(value: Any) -> Level:
    """``level``, before its type: a level or one of its aliases, in any case."""
    level = LEVEL_ALIASES.get(value.lower()) if isinstance(value, str) else None
    if level is None:
        raise ValueError("must be INFO, WARN or ERROR (aliases: informational, notice, warning)")
    return level


def kind_of(value: Any) -> Kind:
    """``kind``, before its type: standard or dataset, in any case."""
    if isinstance(value, str) and value.lower() in ("standard", "dataset"):
        return Kind(value.lower())
    raise ValueError("must be standard or dataset")


def time_or_none(value: Any) -> datetime | None:
    """``time``, before its type: ``parse_time``'s, or None."""
    return None if value is None else parse_time(value)


def format_time_or_none(value: datetime | None) -> str | None:
    """How ``time`` is serialised: ``format_time``'s form."""
    return None if value is None else format_time(value)


def dataset_iff_kind_dataset(value: str | None, info: ValidationInfo) -> str | None:
    """``dataset``, after its type: required for a dataset event, refused for any other."""
    kind = info.data.get("kind")
    if kind is Kind.DATASET and value is None:
        raise ValueError("required when kind is dataset")
    if kind is Kind.STANDARD and value is not None:
        raise ValueError("only allowed when kind is dataset")
    return value


def dataset_row(value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
    """``payload``, after its type: a dataset event's is its row, a non-empty object of flat values."""
    if info.data.get("kind") is Kind.DATASET:
        if not value:
            raise ValueError("a dataset event needs a non-empty payload (its row)")
        nested = sorted(key for key, item in value.items() if not isinstance(item, _DATASET_SCALARS))
        if nested:
            raise ValueError(f"dataset row values must be flat scalars, not objects or lists: {', '.join(nested)}")
    return value
