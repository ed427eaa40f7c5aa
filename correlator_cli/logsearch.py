"""Search event-log files as they stream in: gzip decompressed on the fly, records found with a literal
scan of big blocks (C speed, like grep), only candidate records parsed.

A record is one Personium line: ``{time},[{LEVEL}],"{request_key}","{external}","{schema}","{subject}",
"{type}","{object}","{info}"``. Fields may hold newlines, so a record ends where the next one starts
(a newline followed by a timestamp and a level), not at every newline. Both line formats are read:
``personium`` writes the time as Java's ``Instant.toString()`` (``…:39Z``, ``…:39.778Z`` or
``…:39.778123Z``), ``correlator`` always with milliseconds; times are compared as instants.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

GZIP_MAGIC = b"\x1f\x8b"
_FIELD = rb'(?:"((?:[^"]|"")*)"|null)'
_ANY_FIELD = rb'(?:"(?:[^"]|"")*"|null)'
_TIME = rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?Z)"
RECORD = re.compile(_TIME + rb",\[(INFO |WARN |ERROR)\]," + rb",".join([_FIELD] * 7) + rb"\n", re.DOTALL)
# Where a record starts: the start of a block, or after a newline.
_START = re.compile(_TIME + rb",\[(?:INFO |WARN |ERROR)\],")


def instant_key(time: bytes) -> bytes:
    """A log time in one fixed form (microseconds always written), so that times compare as bytes."""
    return time[:19] + (time[19:-1] or b".").ljust(7, b"0") + b"Z"


FIELDS = ("time", "level", "request_key", "external", "schema", "subject", "type", "object", "info")


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One parsed line; ``None`` for a field written ``null``."""

    raw: bytes
    time: str
    level: str
    request_key: str | None
    external: bool
    schema: str | None
    subject: str | None
    type: str | None
    object: str | None
    info: str | None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.replace(b'""', b'"').decode("utf-8", "replace")


def parse_record(raw: bytes) -> LogRecord | None:
    """The record in ``raw`` (one whole line with its ``\\n``), or None if it is not one."""
    match = RECORD.fullmatch(raw)
    if match is None:
        return None
    time, level, request_key, external, schema, subject, kind, obj, info = match.groups()
    return LogRecord(
        raw=raw,
        time=time.decode(),
        level=level.decode().strip(),
        request_key=_text(request_key),
        external=external == b"true",
        schema=_text(schema),
        subject=_text(subject),
        type=_text(kind),
        object=_text(obj),
        info=_text(info),
    )


def _quoted(value: str) -> bytes:
    return value.replace('"', '""').encode()


@dataclass(frozen=True, slots=True)
class Query:
    """What to find; every given criterion must hold. Times compare as the log writes them (UTC, ms, Z)."""

    request_key: str | None = None
    type_prefix: str | None = None
    level: str | None = None
    subject: str | None = None
    since: str | None = None  # instant_key form: 2026-11-22T14:52:39.778000Z
    until: str | None = None
    text: str | None = None

    def matches(self, record: LogRecord) -> bool:
        if self.request_key is not None and record.request_key != self.request_key:
            return False
        if self.type_prefix is not None and not (record.type or "").startswith(self.type_prefix):
            return False
        if self.level is not None and record.level != self.level:
            return False
        if self.subject is not None and record.subject != self.subject:
            return False
        if not self.in_window(instant_key(record.time.encode())):
            return False
        return self.text is None or _quoted(self.text) in record.raw

    def in_window(self, key: bytes) -> bool:
        return (self.since is None or key >= self.since.encode()) and (self.until is None or key < self.until.encode())

    def head(self) -> re.Pattern[bytes] | None:
        """With two or more of level, request key, subject and type: one pattern for the line's head that
        holds them all (its literal start is searched at C speed), so only real matches get parsed."""
        given = [self.level, self.request_key, self.subject, self.type_prefix]
        if sum(value is not None for value in given) < 2:
            return None

        def exactly(value: str | None, *, prefix: bool = False) -> bytes:
            if value is None:
                return _ANY_FIELD
            return re.escape(b'"' + _quoted(value) + (b"" if prefix else b'"'))

        level = re.escape(f"{self.level:<5}".encode()) if self.level else rb"(?:INFO |WARN |ERROR)"
        return re.compile(
            rb",\["
            + level
            + rb"\],"
            + exactly(self.request_key)
            + rb',"(?:true|false)",'
            + _ANY_FIELD
            + rb","
            + exactly(self.subject)
            + rb","
            + exactly(self.type_prefix, prefix=True),
            re.DOTALL,
        )

    def literal(self) -> bytes | None:
        """The longest byte string every matching record contains: what the block scan looks for."""
        candidates = []
        if self.request_key is not None:
            candidates.append(b'],"' + _quoted(self.request_key) + b'","')
        if self.subject is not None:
            candidates.append(b',"' + _quoted(self.subject) + b'","')  # after the schema: "..." or null
        if self.type_prefix:
            candidates.append(b',"' + _quoted(self.type_prefix))
        if self.level is not None:
            candidates.append(b",[" + f"{self.level:<5}".encode() + b"],")
        if self.text:
            candidates.append(_quoted(self.text))
        if self.since is not None and self.until is not None:
            # Every time in [since, until) starts with what since and until have in common (to the second,
            # the part both line formats write alike).
            same = next(
                (i for i, (a, b) in enumerate(zip(self.since, self.until, strict=False)) if a != b), len(self.since)
            )
            common = self.since[: min(same, 19)]
            if len(common) >= len("2026-11-22T"):
                candidates.append(common.encode())
        return max(candidates, key=len) if candidates else None


def decompressed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as they are, or gunzipped on the fly if they start with gzip's magic (any number of members)."""
    iterator = iter(chunks)
    head = b""
    for chunk in iterator:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from iterator
        return
    decoder = zlib.decompressobj(wbits=31)
    for chunk in itertools.chain((head,), iterator):
        while chunk:
            data = decoder.decompress(chunk)
            if data:
                yield data
            # Concatenated gzip members: start again on what is left.
            chunk = decoder.unused_data if decoder.eof else b""
            if decoder.eof:
                decoder = zlib.decompressobj(wbits=31)
    tail = decoder.flush()
    if tail:
        yield tail


def _is_start(block: bytes, position: int) -> bool:
    return (position == 0 or block[position - 1] == 0x0A) and _START.match(block, position) is not None


def _last_start(block: bytes) -> int:
    """Where the last record of ``block`` starts (0 if only one starts there)."""
    newline = block.rfind(b"\n")
    while newline != -1 and not _is_start(block, newline + 1):
        newline = block.rfind(b"\n", 0, newline)
    return newline + 1


def _record_bounds(block: bytes, position: int) -> tuple[int, int]:
    """Start and end (after its ``\\n``) of the record of ``block`` (whole records) that holds ``position``."""
    start = block.rfind(b"\n", 0, position) + 1
    while start > 0 and not _is_start(block, start):
        start = block.rfind(b"\n", 0, start - 1) + 1
    end = block.find(b"\n", position)
    while end != -1 and end + 1 < len(block) and not _is_start(block, end + 1):
        end = block.find(b"\n", end + 1)
    return start, (len(block) if end == -1 else end + 1)


def search(
    chunks: Iterable[bytes], query: Query, *, on_bytes: Callable[[int], None] | None = None, block_size: int = 4 << 20
) -> Iterator[LogRecord]:
    """Every record of the (possibly gzip) byte stream ``chunks`` that ``query`` matches, in file order."""
    literal = query.literal()
    pieces: list[bytes] = []
    size = 0
    for data in decompressed(chunks):
        if on_bytes is not None:
            on_bytes(len(data))
        pieces.append(data)
        size += len(data)
        if size < block_size:
            continue
        buffer = b"".join(pieces)
        # The last record may go on in the next chunk (or hold a newline): keep it for the next block.
        last = _last_start(buffer)
        if last > 0:
            yield from _scan(buffer[:last], query, literal)
            buffer = buffer[last:]
        pieces, size = [buffer], len(buffer)
    buffer = b"".join(pieces)
    if buffer:
        yield from _scan(buffer if buffer.endswith(b"\n") else buffer + b"\n", query, literal)


def _scan(block: bytes, query: Query, literal: bytes | None) -> Iterator[LogRecord]:
    if literal is None:  # nothing literal to look for: every record, its time checked before parsing
        starts = [match for match in _START.finditer(block) if _is_start(block, match.start())]
        ends = [match.start() for match in starts[1:]] + [len(block)]
        for match, end in zip(starts, ends, strict=True):
            if query.in_window(instant_key(match.group(1))):
                yield from _check(block[match.start() : end], query)
        return
    head = query.head()
    if head is not None:
        found = head.search(block)
        while found is not None:
            start, end = _record_bounds(block, found.start())
            yield from _check(block[start:end], query)
            found = head.search(block, end)
        return
    position = block.find(literal)
    while position != -1:
        start, end = _record_bounds(block, position)
        yield from _check(block[start:end], query)
        position = block.find(literal, end)


def _check(raw: bytes, query: Query) -> Iterator[LogRecord]:
    record = parse_record(raw)
    if record is not None and query.matches(record):
        yield record
