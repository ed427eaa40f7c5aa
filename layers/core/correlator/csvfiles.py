"""The csv action: dataset events become rows of CSV files in the data bucket.

Files are RFC 4180: comma-separated, ``"``-quoted when needed (inner quotes doubled), every
record ended by CRLF, UTF-8 without a byte-order mark. The first record is the header, decided
by the row that creates the file (config ``columns``, else ``timestamp`` followed by that row's
payload keys); every later row follows the header the file already has, read back with a small
ranged GET: missing keys leave empty cells, keys without a column are dropped (and reported).

A cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``,
TAB or CR, once leading whitespace and zero-width characters are skipped and fullwidth forms
folded, U+FF1D being ``=``) is written with a leading ``'`` (OWASP's advice against CSV injection),
except a number in a column the rule declares ``numeric``; so is every part of a cell between
``;``, TAB or ``|`` that would, for a spreadsheet told to split on those. Header cells are
neutralised the same way. A part already starting with quotes before such a character gets one
more, so ``restore`` is exact.

One SQS batch is one append per file (``S3Appender``: conditional writes, server-side copy once
the file is 5 MiB or more), so the cost of a batch does not grow with the file and concurrent
writers never lose or double a row. Rows are exactly once under redelivery: with a ledger
(``correlator.ledger``), a message redelivered after its append landed is not appended again.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from correlator.action import BatchOutcome, Result
from correlator.appender import ObjectState, S3Appender, is_missing
from correlator.configs import CsvConfig
from correlator.csvkeys import InvalidKeyError, key_values, render_key
from correlator.delivery import Delivery, parse_delivery
from correlator.event import Kind, Level, format_time
from correlator.ledger import AppendLedger
from correlator.registry import ActionSpec, spec_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/csv; charset=utf-8; header=present"
LINE_TERMINATOR = "\r\n"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"
TIMESTAMP_COLUMN = "timestamp"
EVENT_ID_COLUMN = "event_id"
HEADER_PROBE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Fields a spreadsheet may split a cell into when told another separator than the comma.
_SEPARATOR_RE = re.compile(r"[^;\t|]+")
# Format (zero-width joiners, BOM, bidi marks), control and unassigned characters: invisible, skipped.
_INVISIBLE = frozenset({"Cf", "Cc", "Cn", "Zs", "Zl", "Zp"})

# Result ``info`` of each delivery: written, skipped (not a dataset event) or an error code.
WRITTEN = "written"
SKIPPED = "skipped"
INVALID_KEY = "invalid_key"
UNREADABLE_HEADER = "unreadable_header"
DROPPED = "dropped"  # a count: payload keys without a column


class CsvHeaderError(Exception):
    """The file exists but its first record cannot be read as a header: rows cannot follow it."""


# ---- cells and records ----------------------------------------------------------------------


def _inert_start(text: str) -> str:
    """``text`` as a spreadsheet sees its start: compatibility forms folded (fullwidth U+FF1D is ``=``),
    and leading whitespace, zero-width and other invisible characters skipped (they do not stop a formula).
    """
    index = 0
    while index < len(text) and (text[index].isspace() or unicodedata.category(text[index]) in _INVISIBLE):
        index += 1
    return unicodedata.normalize("NFKC", text[index : index + 8])


def _starts_like_a_formula(text: str) -> bool:
    # Quotes already in front count too, so that neutralise is reversible: "'=x" -> "''=x".
    return _inert_start(text.lstrip(NEUTRALISER)).startswith(FORMULA_PREFIXES)


def neutralise(text: str) -> str:
    """``text`` made inert for spreadsheets: a ``'`` before every field that would start a formula.

    A field is the whole cell, or any part of it between separators a spreadsheet may be told to
    split on (``;``, TAB, ``|``): ``a;=cmd()`` is written ``a;'=cmd()``.
    """
    return _SEPARATOR_RE.sub(lambda part: NEUTRALISER + part[0] if _starts_like_a_formula(part[0]) else part[0], text)


def restore(text: str) -> str:
    """The text ``neutralise`` was given (a cell read back from a file)."""
    return _SEPARATOR_RE.sub(
        lambda part: (
            part[0][1:] if part[0].startswith(NEUTRALISER) and _starts_like_a_formula(part[0][1:]) else part[0]
        ),
        text,
    )


def is_number(value: Any) -> bool:
    """A JSON number (not a bool, finite) or a string that is exactly a decimal number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    return isinstance(value, str) and _NUMBER_RE.fullmatch(value) is not None


def format_cell(value: Any, *, numeric: bool = False) -> str:
    """One cell's text: ``null`` is empty, booleans are ``true``/``false``, text is neutralised.

    A number in a ``numeric`` column is written as is (``-5``); anywhere else ``-5`` is ``'-5``.
    """
    if value is None:
        return ""
    if numeric and is_number(value):
        return value if isinstance(value, str) else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise(value if isinstance(value, str) else repr(value))


def format_records(records: Sequence[Sequence[str]]) -> bytes:
    """CSV records (RFC 4180 quoting, CRLF) as UTF-8 bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=LINE_TERMINATOR, quoting=csv.QUOTE_MINIMAL)
    writer.writerows(records)
    return buffer.getvalue().encode("utf-8")


def header_record(columns: Sequence[str]) -> bytes:
    """The header line of a file with these columns (names neutralised like any cell)."""
    return format_records([[neutralise(name) for name in columns]])


def find_record_end(data: bytes) -> int | None:
    """The offset just past the first record of ``data``, or None if no record ends in it.

    A record ends at the first LF outside quotes; with ``"`` doubled inside quoted cells, an LF
    is outside quotes exactly when an even number of ``"`` precede it.
    """
    start, quotes = 0, 0
    while (newline := data.find(b"\n", start)) != -1:
        quotes += data.count(b'"', start, newline)
        if quotes % 2 == 0:
            return newline + 1
        start = newline + 1
    return None


def parse_header(record: bytes) -> list[str]:
    """The cells of one header record (as written: neutralised)."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CsvHeaderError(f"the header is not UTF-8: {error}") from None
    cells = next(csv.reader(io.StringIO(text, newline="")), None)
    if not cells or cells == [""]:
        raise CsvHeaderError("the first line is empty")
    return cells


# ---- rows -----------------------------------------------------------------------------------


@dataclass(slots=True)
class CsvRow:
    """One dataset event on its way to a file; ``dropped`` is set when it is rendered."""

    message_id: str
    delivery: Delivery[CsvConfig]
    config: CsvConfig
    key: str
    dropped: list[str] = field(default_factory=list)

    @property
    def values(self) -> dict[str, Any]:
        """The row's values by name: ``timestamp`` and ``event_id`` of the event, then its payload."""
        event = self.delivery.event
        return {TIMESTAMP_COLUMN: format_time(event.time), EVENT_ID_COLUMN: event.id, **(event.payload or {})}

    def new_file_columns(self) -> list[str]:
        """The header this row gives a file it creates."""
        if self.config.columns is not None:
            return list(self.config.columns)
        payload = self.delivery.event.payload or {}
        return [TIMESTAMP_COLUMN, *(name for name in payload if name != TIMESTAMP_COLUMN)]

    def cells(self, header: Sequence[str]) -> list[str]:
        """The row under ``header`` (cells as written); records in ``dropped`` the keys it has no column for."""
        values = self.values
        by_cell: dict[str, str] = {}
        for name in values:
            by_cell.setdefault(neutralise(name), name)
        numeric = set(self.config.numeric)
        present = set(header)
        payload = self.delivery.event.payload or {}
        self.dropped = [name for name in payload if neutralise(name) not in present]
        cells = []
        for cell in header:
            column = by_cell.get(cell)
            cells.append("" if column is None else format_cell(values[column], numeric=column in numeric))
        return cells


def render_rows(rows: Sequence[CsvRow], header: Sequence[str]) -> bytes:
    """``rows`` as CSV records under ``header``."""
    return format_records([row.cells(header) for row in rows])


# ---- the action -----------------------------------------------------------------------------


class CsvAction:
    """The csv action: a batch of deliveries, one append per file, a result per delivery.

    Rows are exactly once with a ledger (``correlator.ledger``); result events are at least once.
    """

    spec: ClassVar[ActionSpec] = spec_of("csv")
    reports: ClassVar[bool] = True
    parse = staticmethod(parse_delivery)

    def __init__(self, appender: S3Appender, *, ledger: AppendLedger | None = None) -> None:
        self.appender = appender
        self.ledger = ledger

    def perform_batch(
        self, deliveries: Sequence[tuple[str, Delivery[CsvConfig]]], redelivered: Collection[str] = ()
    ) -> BatchOutcome:
        """Write the deliveries' rows, one append per file; a file that cannot be appended to fails its rows.

        With a ledger, a message in ``redelivered`` whose row an earlier append wrote is not written again.
        """
        outcome = BatchOutcome()
        files: dict[str, list[CsvRow]] = {}
        for message_id, delivery in deliveries:
            row = self._row(message_id, delivery, outcome)
            if row is not None:
                files.setdefault(row.key, []).append(row)
        self._skip_appended(files, redelivered, outcome)
        for key, rows in files.items():
            if rows:
                self._write_file(key, rows, outcome)
        outcome.counts[DROPPED] = sum(len((r.payload or {}).get("dropped", [])) for r in _results(outcome))
        logger.info("csv batch", extra={"files": len(files), "rows": sum(len(rows) for rows in files.values())})
        return outcome

    def _skip_appended(
        self, files: dict[str, list[CsvRow]], redelivered: Collection[str], outcome: BatchOutcome
    ) -> None:
        """Take out of ``files`` the redelivered rows an earlier append wrote; they are written."""
        candidates = [row.message_id for rows in files.values() for row in rows if row.message_id in redelivered]
        if self.ledger is None or not candidates:
            return
        appended = self.ledger.committed(self.appender, candidates)
        for key, rows in files.items():
            for row in rows:
                if row.message_id in appended:
                    outcome.results[row.message_id] = Result(WRITTEN, WRITTEN, key)
            files[key] = [row for row in rows if row.message_id not in appended]

    def _row(self, message_id: str, delivery: Delivery[CsvConfig], outcome: BatchOutcome) -> CsvRow | None:
        config, event = delivery.config, delivery.event
        if event.kind is not Kind.DATASET or not event.payload:
            outcome.results[message_id] = Result(SKIPPED, SKIPPED, None, Level.WARN, {"reason": "not a dataset event"})
            return None
        try:
            key = render_key(config.key, key_values(event, delivery.rule.name))
        except InvalidKeyError as error:
            outcome.results[message_id] = Result(
                INVALID_KEY, INVALID_KEY, config.key, Level.ERROR, {"error": str(error)}
            )
            return None
        return CsvRow(message_id, delivery, config, key)

    def _write_file(self, key: str, rows: list[CsvRow], outcome: BatchOutcome) -> None:
        try:
            self.append_rows(key, rows)
        except CsvHeaderError as error:
            logger.error("csv header unreadable", extra={"key": key, "reason": str(error)})
            for row in rows:
                outcome.results[row.message_id] = Result(
                    UNREADABLE_HEADER, UNREADABLE_HEADER, key, Level.ERROR, {"error": str(error)}
                )
            return
        except Exception as error:  # S3 errors, lost races: these rows are retried, the batch's others stand
            logger.exception("csv append failed", extra={"key": key, "rows": len(rows)})
            for row in rows:
                outcome.results[row.message_id] = error
            return
        for row in rows:
            payload = {"dropped": row.dropped} if row.dropped else None
            level = Level.WARN if row.dropped else Level.INFO
            outcome.results[row.message_id] = Result(WRITTEN, WRITTEN, key, level, payload)

    def append_rows(self, key: str, rows: Sequence[CsvRow]) -> ObjectState:
        """Append ``rows`` to ``key`` in one append, under the header the file has when it lands."""
        new_columns = rows[0].new_file_columns()

        def records_for(state: ObjectState | None) -> bytes:
            if state is None:
                return render_rows(rows, [neutralise(name) for name in new_columns])
            if state.size == 0:  # an empty file (not one of ours): give it a header too
                return header_record(new_columns) + render_rows(rows, [neutralise(name) for name in new_columns])
            return render_rows(rows, self.read_header(key, state))

        if self.ledger is None:
            return self.appender.append(key, records_for, content_type=CONTENT_TYPE, header=header_record(new_columns))
        return self.ledger.append(
            self.appender,
            key,
            records_for,
            [row.message_id for row in rows],
            content_type=CONTENT_TYPE,
            header=header_record(new_columns),
        )

    def read_header(self, key: str, state: ObjectState) -> list[str]:
        """The header cells of ``key`` as of ``state`` (a ranged GET of its first record)."""
        end = min(state.size, HEADER_PROBE_BYTES)
        while True:
            data = self.appender.read(key, state, 0, end)
            record_end = find_record_end(data)
            if record_end is not None:
                return parse_header(data[:record_end])
            if end >= state.size or end >= MAX_HEADER_BYTES:
                raise CsvHeaderError(f"no complete first line in the first {end} bytes")
            end = min(state.size, end * 4, MAX_HEADER_BYTES)


# ---- reading ----------------------------------------------------------------------------------


class DataFiles:
    """Read access to the CSV files of the data bucket (for scripts that summarise them)."""

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def records(self, key: str) -> Iterator[list[str]] | None:
        """The records of ``key`` as written (header first), streamed; None if there is no such file."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        lines = (line.decode("utf-8") for line in body.iter_lines(chunk_size=64 * 1024, keepends=True))
        return csv.reader(lines)


def _results(outcome: BatchOutcome) -> Iterable[Result]:
    return (result for result in outcome.results.values() if isinstance(result, Result))
