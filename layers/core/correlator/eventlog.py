"""The event log: Personium-format lines in S3, rotated by size, at most 12 gzip generations.

Layout in the log bucket::

    logs/current/default.log                 the file being appended to (text/csv)
    logs/archive/default.log.{epoch_ms}      rotated generations, gzip (Content-Encoding: gzip)
    config/log-settings.json                 rotation_size_mb, generations

Every current file carries its *generation* (the epoch ms at which it started) in its metadata,
and its archive is named after it. That makes rotation idempotent, hence crash-safe:

1. archive the first N bytes of the current file as ``default.log.{generation}``
   (``If-None-Match: *``; if that archive already exists, N is the size it recorded);
2. replace the current file by its bytes after N, as a new generation (``If-Match`` its ETag).

A crash between 1 and 2 leaves the lines in the current file and an archive of them; the next
rotation finds the archive, skips step 1 and drops exactly the archived prefix. Lines appended
meanwhile stay in the current file. There is only ever one current file.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from correlator.appender import ObjectState, S3Appender, is_conflict, is_missing
from correlator.event import Event, Level, format_time, new_request_key
from correlator.ledger import AppendLedger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

CURRENT_NAME = "default.log"
CURRENT_KEY = f"logs/current/{CURRENT_NAME}"
ARCHIVE_PREFIX = "logs/archive/"
SETTINGS_KEY = "config/log-settings.json"
CONTENT_TYPE = "text/csv"
GENERATION_META = "generation"
UNCOMPRESSED_SIZE_META = "uncompressed-size"
# Archive names are exactly "default.log." + an epoch in ms (13 digits until the year 2286).
# ASCII digits only: \d would also take other scripts' digits ("١٧٩٥…"), which int() reads as a number.
ARCHIVE_NAME_RE = re.compile(r"default\.log\.([0-9]{13})")
LOG_LINE_FORMAT_ENV = "LOG_LINE_FORMAT"


class LogLineFormat(StrEnum):
    """How log lines are written; ``personium`` (the default) is what Personium's ``LogAction`` writes.

    ``personium``: the time as Java's ``Instant.toString()`` (no fraction on a whole second), a fresh
    request key where the event has none, and ``log`` at INFO. ``correlator`` (the format before
    Personium compatibility): the time always with milliseconds, a missing request key as ``null``,
    and ``log`` at the event's own level.
    """

    PERSONIUM = "personium"
    CORRELATOR = "correlator"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LogLineFormat:
        """The format named by ``LOG_LINE_FORMAT`` (default ``personium``); ValueError for another name."""
        value = environ.get(LOG_LINE_FORMAT_ENV) or cls.PERSONIUM.value
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(f"{LOG_LINE_FORMAT_ENV} must be personium or correlator, not {value[:40]!r}") from None


class LogSettings(BaseModel):
    """Rotation settings, persisted in the log bucket and read by the writer on every batch."""

    model_config = ConfigDict(extra="forbid")

    rotation_size_mb: Annotated[int, Field(ge=1, le=1024, strict=True)] = 50
    generations: Annotated[int, Field(ge=1, le=12, strict=True)] = 12

    @property
    def rotation_bytes(self) -> int:
        return self.rotation_size_mb * 1024 * 1024


class LogSettingsReplacement(LogSettings):
    """The body of ``PUT /logs/settings``: both fields, always (a PUT replaces; nothing falls back to a default)."""

    rotation_size_mb: Annotated[int, Field(ge=1, le=1024, strict=True)]
    generations: Annotated[int, Field(ge=1, le=12, strict=True)]


class LogFile(BaseModel):
    """One log file as listed by ``GET /logs``; ``size`` is the uncompressed size in bytes."""

    name: str
    size: int
    last_modified: str


class LogListing(BaseModel):
    current: list[LogFile]
    archive: list[LogFile]


def _field(value: str | None) -> str:
    return "null" if value is None else '"' + value.replace('"', '""') + '"'


def format_instant(value: datetime) -> str:
    """The time as Java's ``Instant.toString()`` writes it: UTC, ``Z``, and a fraction only when not zero.

    ``2026-11-22T14:52:39Z``, ``2026-11-22T14:52:39.778Z``; the fraction is printed in groups of
    three digits (``.100Z`` not ``.1Z``; microseconds as six digits), the year with four digits.
    """
    value = value.astimezone(UTC)
    fraction = ""
    if value.microsecond % 1000:
        fraction = f".{value.microsecond:06d}"
    elif value.microsecond:
        fraction = f".{value.microsecond // 1000:03d}"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}{fraction}Z"
    )


def format_log_line(
    event: Event, level: Level | None = None, line_format: LogLineFormat = LogLineFormat.PERSONIUM
) -> str:
    """One event-log line, ``\\n``-terminated, byte-exact to Personium's ``LogAction`` by default.

    ``{time},[{LEVEL}],"{request_key}","{external}","{schema}","{subject}","{type}","{object}","{info}"``

    ``level`` is the level the rule's action forces (``None`` for ``log``: INFO as in Personium, or
    the event's own level in the ``correlator`` format).
    """
    personium = line_format is LogLineFormat.PERSONIUM
    request_key = event.request_key
    if request_key is None and personium:
        request_key = new_request_key()  # Personium's LogAction: never a bare null request key
    fields = (
        request_key,
        "true" if event.external else "false",
        event.schema_,
        event.subject,
        event.type,
        event.object,
        event.info,
    )
    time = format_instant(event.time) if personium else format_time(event.time)
    level = level or (Level.INFO if personium else event.level)
    return f"{time},[{level.value:<5}],{','.join(map(_field, fields))}\n"


def archive_key(name: str) -> str:
    """The S3 key of archive ``name``; ValueError unless ``name`` is a well-formed archive name."""
    if not ARCHIVE_NAME_RE.fullmatch(name):
        raise ValueError(f"not an archive name: {name[:80]!r}")
    return ARCHIVE_PREFIX + name


def _epoch_ms() -> int:
    return time.time_ns() // 1_000_000


class EventLog:
    """The event log in one bucket: append, rotate, prune, list, settings."""

    def __init__(
        self, appender: S3Appender, *, ledger: AppendLedger | None = None, clock: Callable[[], int] = _epoch_ms
    ) -> None:
        self.appender = appender
        self.ledger = ledger
        self.s3: S3Client = appender.s3
        self.bucket = appender.bucket
        self._clock = clock

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> LogSettings:
        """The persisted settings; the defaults when none were saved or the file is unreadable.

        A hand-edited, invalid settings file must not stop the log: it is reported (logged)
        and the defaults apply until ``PUT /logs/settings`` writes a valid one.
        """
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=SETTINGS_KEY)["Body"].read()
        except ClientError as error:
            if is_missing(error):
                return LogSettings()
            raise
        try:
            return LogSettings.model_validate_json(body)
        except ValueError:
            logger.error("invalid log settings in s3://%s/%s; using the defaults", self.bucket, SETTINGS_KEY)
            return LogSettings()

    def save_settings(self, settings: LogSettings) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=SETTINGS_KEY,
            Body=settings.model_dump_json().encode(),
            ContentType="application/json",
        )

    # -- writing --------------------------------------------------------------------------
    def append(self, lines: str, message_ids: Sequence[str] = ()) -> ObjectState:
        """Append ``lines`` to the current file (a new generation if there is none).

        With a ledger, the append is one intent carrying ``message_ids`` (see ``correlator.ledger``).
        """
        data, generation = lines.encode("utf-8"), {GENERATION_META: str(self._clock())}
        if self.ledger is None:
            return self.appender.append(CURRENT_KEY, data, content_type=CONTENT_TYPE, new_metadata=generation)
        return self.ledger.append(
            self.appender, CURRENT_KEY, data, message_ids, content_type=CONTENT_TYPE, new_metadata=generation
        )

    def already_appended(self, message_ids: Sequence[str]) -> set[str]:
        """The messages among ``message_ids`` (redeliveries) whose lines an earlier append wrote."""
        if self.ledger is None or not message_ids:
            return set()
        return self.ledger.committed(self.appender, message_ids)

    def rotate_and_prune(self, settings: LogSettings) -> tuple[str | None, list[str]]:
        """Rotate if the current file reached the rotation size, then keep ``generations`` archives."""
        rotated = self.rotate(settings)
        return rotated, self.prune(settings.generations) if rotated else []

    def rotate(self, settings: LogSettings) -> str | None:
        """Archive the current file if it is at least the rotation size; return the archive name."""
        for _ in range(10):
            state = self.appender.head(CURRENT_KEY)
            if state is None or state.size < settings.rotation_bytes:
                return None
            generation = state.metadata.get(GENERATION_META) or str(self._clock())
            name = f"{CURRENT_NAME}.{int(generation):013d}"
            archived = self._archive(name, state.size)
            next_generation = str(max(self._clock(), int(generation) + 1))
            try:
                self.appender.replace_with_suffix(
                    CURRENT_KEY, state, archived, CONTENT_TYPE, {GENERATION_META: next_generation}
                )
            except ClientError as error:
                if is_conflict(error):
                    continue  # appended to meanwhile, or rotated by another writer: look again
                raise
            return name
        return None

    def _archive(self, name: str, size: int) -> int:
        """Write the gzip archive of the first ``size`` bytes; return the size the archive holds."""
        key = ARCHIVE_PREFIX + name
        existing = self.appender.head(key)
        if existing is None:
            created = self.appender.create_from_chunks(
                key,
                _gzip(self.appender.iter_bytes(CURRENT_KEY, size)),
                content_type=CONTENT_TYPE,
                content_encoding="gzip",
                metadata={UNCOMPRESSED_SIZE_META: str(size)},
            )
            if created:
                return size
            existing = self.appender.head(key)
            if existing is None:
                raise RuntimeError(f"archive {key} vanished while rotating")
        return int(existing.metadata[UNCOMPRESSED_SIZE_META])

    def prune(self, generations: int) -> list[str]:
        """Delete the oldest archives beyond ``generations``; return the deleted names."""
        names = self.archive_names()
        doomed = names[: max(0, len(names) - generations)]
        for name in doomed:
            self.s3.delete_object(Bucket=self.bucket, Key=ARCHIVE_PREFIX + name)
        return doomed

    # -- reading --------------------------------------------------------------------------
    def archive_names(self) -> list[str]:
        """Archive names, oldest first (names that are not ours are ignored)."""
        names = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=ARCHIVE_PREFIX):
            for item in page.get("Contents", []):
                name = item["Key"][len(ARCHIVE_PREFIX) :]
                if ARCHIVE_NAME_RE.fullmatch(name):
                    names.append(name)
        return sorted(names, key=lambda n: int(n.rsplit(".", 1)[1]))

    def listing(self) -> LogListing:
        """The current file (if any) and the archives, oldest first, with uncompressed sizes."""
        current = self._describe(CURRENT_KEY, CURRENT_NAME)
        archive = [self._describe(ARCHIVE_PREFIX + name, name) for name in self.archive_names()]
        return LogListing(current=[current] if current else [], archive=[item for item in archive if item is not None])

    def _describe(self, key: str, name: str) -> LogFile | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        size = int(head.get("Metadata", {}).get(UNCOMPRESSED_SIZE_META, head["ContentLength"]))
        return LogFile(name=name, size=size, last_modified=format_time(head["LastModified"]))

    def exists(self, key: str) -> bool:
        return self._describe(key, "") is not None

    def presigned_get(self, key: str, expires_in: int = 300) -> str:
        """A short-lived presigned GET URL for ``key``."""
        return self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def delete_archive(self, name: str) -> bool:
        """Delete archive ``name``; False if there is no such archive (nothing is touched)."""
        key = archive_key(name)
        if not self.exists(key):
            return False
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        return True


def _gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()
