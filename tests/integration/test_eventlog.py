"""The event log on moto: rotation into gzip archives, generations, crash safety, concurrency, settings."""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from correlator.appender import MIN_PART_BYTES, S3Appender
from correlator.eventlog import (
    ARCHIVE_PREFIX,
    CURRENT_KEY,
    SETTINGS_KEY,
    EventLog,
    LogSettings,
    archive_key,
)
from tests.conftest import BucketFor
from tests.s3_doubles import S3Spy

BUCKET = "correlator-eventlog-test"
MIB = 1024 * 1024
FIRST_MS = 1_795_359_159_778
ARCHIVE_KEY_RE = re.compile(r"logs/archive/default\.log\.\d{13}")


class Clock:
    """Epoch milliseconds that advance by one second at every reading."""

    def __init__(self) -> None:
        self.now = FIRST_MS

    def __call__(self) -> int:
        self.now += 1000
        return self.now


@pytest.fixture
def s3(s3_bucket: BucketFor) -> Any:
    return s3_bucket(BUCKET)


@pytest.fixture
def spy(s3: Any) -> S3Spy:
    return S3Spy(s3)


@pytest.fixture
def log(spy: S3Spy) -> EventLog:
    return EventLog(S3Appender(spy, BUCKET, sleep=lambda seconds: None), clock=Clock())  # type: ignore[arg-type]


class Lines:
    """Numbered, distinct log lines of a fixed size, and everything handed out so far."""

    def __init__(self, size: int = 100, tag: str = "") -> None:
        self.size = size
        self.tag = tag
        self.given: list[str] = []

    def take(self, count: int) -> str:
        start = len(self.given)
        prefix = f'2026-11-22T14:52:39.778Z,[INFO ],"{self.tag}'
        new = [f"{prefix}{number:08d}".ljust(self.size - 1, "x") + "\n" for number in range(start, start + count)]
        self.given.extend(new)
        return "".join(new)

    def take_bytes(self, size: int) -> str:
        return self.take(-(-size // self.size))


def body_of(s3: Any, key: str = CURRENT_KEY) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def archive_bytes(s3: Any, name: str) -> bytes:
    return gzip.decompress(body_of(s3, ARCHIVE_PREFIX + name))


def history(s3: Any, log: EventLog) -> bytes:
    """Every archive, oldest first, decompressed, then the current file: the whole log."""
    archived = b"".join(archive_bytes(s3, name) for name in log.archive_names())
    return archived + body_of(s3)


def generation_of(s3: Any) -> int:
    return int(s3.head_object(Bucket=BUCKET, Key=CURRENT_KEY)["Metadata"]["generation"])


def fill(log: EventLog, lines: Lines, size: int, per_append: int = 256 * 1024) -> None:
    """Append at least ``size`` bytes of lines, ``per_append`` bytes at a time."""
    written = 0
    while written < size:
        chunk = lines.take_bytes(min(per_append, size - written))
        log.append(chunk)
        written += len(chunk)


# ---- rotation ----


@pytest.mark.parametrize(("rotation_mb", "size"), [(1, 1_200_000), (5, 5 * MIB + 300_000)])
def test_a_full_current_file_is_archived_as_gzip(log, s3, rotation_mb: int, size: int):
    # GIVEN a current file over the rotation size
    lines = Lines()
    fill(log, lines, size, per_append=2 * MIB)
    generation = generation_of(s3)
    written = "".join(lines.given).encode()

    # WHEN rotating
    name = log.rotate(LogSettings(rotation_size_mb=rotation_mb))

    # THEN the archive is named after the file's generation, in 13 digits
    assert name == f"default.log.{generation:013d}"
    key = ARCHIVE_PREFIX + name
    assert ARCHIVE_KEY_RE.fullmatch(key)
    # AND it is gzip, text/csv, with its uncompressed size in its metadata
    head = s3.head_object(Bucket=BUCKET, Key=key)
    decompressed = archive_bytes(s3, name)
    assert (head["ContentEncoding"], head["ContentType"]) == ("gzip", "text/csv")
    assert int(head["Metadata"]["uncompressed-size"]) == len(decompressed) == len(written)
    assert head["ContentLength"] < len(written) // 4
    # AND it holds every line, in order; the current file starts again empty, as a new generation
    assert decompressed == written
    assert body_of(s3) == b""
    assert generation_of(s3) > generation


def test_lines_appended_after_a_rotation_follow_the_archive(log, s3):
    # GIVEN a rotated log
    lines = Lines()
    fill(log, lines, 1_200_000)
    log.rotate(LogSettings(rotation_size_mb=1))

    # WHEN more lines are appended
    log.append(lines.take(50))

    # THEN the archive then the current file are all the lines, in order, each once
    assert history(s3, log) == "".join(lines.given).encode()
    assert len(body_of(s3)) == 50 * 100


def test_a_file_under_the_rotation_size_is_left_alone(log, s3, spy):
    # GIVEN a current file just under 1 MiB
    lines = Lines(size=1024)
    log.append(lines.take(1023))
    before = s3.head_object(Bucket=BUCKET, Key=CURRENT_KEY)["ETag"]

    # WHEN rotating at 1 MiB
    name = log.rotate(LogSettings(rotation_size_mb=1))

    # THEN nothing is archived or rewritten
    assert name is None
    assert log.archive_names() == []
    assert s3.head_object(Bucket=BUCKET, Key=CURRENT_KEY)["ETag"] == before
    assert log.rotate(LogSettings()) is None


def test_rotating_a_log_that_does_not_exist_does_nothing(log, s3):
    # WHEN rotating before anything was logged
    rotated = log.rotate_and_prune(LogSettings(rotation_size_mb=1))

    # THEN nothing happens and nothing is created
    assert rotated == (None, [])
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_only_the_newest_generations_are_kept(log, s3):
    # GIVEN settings keeping 3 generations
    settings = LogSettings(rotation_size_mb=1, generations=3)
    lines = Lines(size=64 * 1024)
    names: list[str] = []
    pruned: list[list[str]] = []
    kept_from = 0

    # WHEN the log rotates 5 times
    for rotation in range(5):
        log.append(lines.take(17))  # 1.06 MiB
        if rotation == 2:
            kept_from = len(lines.given) - 17
        name, deleted = log.rotate_and_prune(settings)
        assert name is not None
        names.append(name)
        pruned.append(deleted)

    # THEN the 3 newest archives remain, the oldest having been deleted first, one per rotation
    assert log.archive_names() == names[2:]
    assert pruned == [[], [], [], names[:1], names[1:2]]
    archive_keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=ARCHIVE_PREFIX)["Contents"]]
    assert sorted(archive_keys) == [ARCHIVE_PREFIX + name for name in names[2:]]
    # AND what remains is exactly the lines of the last 3 generations
    assert history(s3, log) == "".join(lines.given[kept_from:]).encode()


def test_archives_are_ordered_by_their_epoch_not_by_name(log, s3):
    # GIVEN archives whose names sort differently as text and as numbers, and a stranger
    for name in ("default.log.9999999999999", "default.log.1000000000000", "default.log.2000000000000"):
        s3.put_object(Bucket=BUCKET, Key=ARCHIVE_PREFIX + name, Body=b"")
    s3.put_object(Bucket=BUCKET, Key=ARCHIVE_PREFIX + "notes.txt", Body=b"")

    # WHEN pruning to one generation
    deleted = log.prune(1)

    # THEN the two oldest went, and a key that is not an archive was ignored
    assert deleted == ["default.log.1000000000000", "default.log.2000000000000"]
    assert log.archive_names() == ["default.log.9999999999999"]
    assert body_of(s3, ARCHIVE_PREFIX + "notes.txt") == b""


# ---- crash safety ----


def crash_once_after_archiving(log: EventLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next ``replace_with_suffix`` dies (as a Lambda timeout would), after the archive was written."""
    original = log.appender.replace_with_suffix

    def crash(*args: Any, **kwargs: Any) -> str:
        monkeypatch.setattr(log.appender, "replace_with_suffix", original)
        raise TimeoutError("Task timed out")

    monkeypatch.setattr(log.appender, "replace_with_suffix", crash)


@pytest.mark.parametrize("appended_after_crash", [50 * 100, MIN_PART_BYTES + 100_000])
def test_a_rotation_interrupted_after_archiving_is_completed_without_duplicates(
    log, s3, spy, monkeypatch, appended_after_crash: int
):
    # GIVEN a rotation that dies after writing the archive, before truncating the current file
    settings = LogSettings(rotation_size_mb=1)
    lines = Lines()
    fill(log, lines, 1_200_000)
    archived = "".join(lines.given).encode()
    crash_once_after_archiving(log, monkeypatch)
    with pytest.raises(TimeoutError):
        log.rotate(settings)
    [name] = log.archive_names()
    archive_etag = s3.head_object(Bucket=BUCKET, Key=ARCHIVE_PREFIX + name)["ETag"]

    # THEN the current file still holds every line
    assert body_of(s3) == archived

    # WHEN lines are appended (enough, in one variant, for the truncation to be a multipart copy) and it rotates again
    fill(log, lines, appended_after_crash, per_append=8 * MIB)
    spy.requests.clear()
    again = log.rotate(settings)

    # THEN the existing archive is reused as is, and exactly its prefix is dropped from the current file
    assert again == name
    assert log.archive_names() == [name]
    assert s3.head_object(Bucket=BUCKET, Key=ARCHIVE_PREFIX + name)["ETag"] == archive_etag
    assert archive_bytes(s3, name) == archived
    assert body_of(s3) == "".join(lines.given).encode()[len(archived) :]
    # AND every line is in the log exactly once, in order
    assert history(s3, log) == "".join(lines.given).encode()
    copies = [request for operation, request in spy.requests if operation == "upload_part_copy"]
    if appended_after_crash >= MIN_PART_BYTES:
        total = len("".join(lines.given).encode())
        assert [copy["CopySourceRange"] for copy in copies] == [f"bytes={len(archived)}-{total - 1}"]
        assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    else:
        assert copies == []


def test_a_rotation_that_crashed_while_archiving_leaves_no_archive(log, s3, spy):
    # GIVEN S3 fails while the archive is being written
    lines = Lines()
    fill(log, lines, 1_200_000)
    before = body_of(s3)
    spy.before["put_object"] = lambda kwargs: (_ for _ in ()).throw(ConnectionError("reset by peer"))

    # WHEN rotating
    with pytest.raises(ConnectionError):
        log.rotate(LogSettings(rotation_size_mb=1))

    # THEN there is no archive and the current file is untouched
    del spy.before["put_object"]
    assert log.archive_names() == []
    assert body_of(s3) == before
    # AND the next rotation succeeds
    assert log.rotate(LogSettings(rotation_size_mb=1)) is not None
    assert history(s3, log) == "".join(lines.given).encode()


# ---- concurrency with rotation ----


def test_an_append_racing_the_truncation_is_kept(log, s3, spy):
    # GIVEN a full file, and another writer appending just before the truncation lands
    lines = Lines()
    fill(log, lines, 1_200_000)
    rival = EventLog(S3Appender(s3, BUCKET), clock=Clock())
    late = lines.take(1)
    spy.once("put_object", lambda kwargs: rival.append(late), when=lambda kwargs: kwargs["Key"] == CURRENT_KEY)

    # WHEN rotating
    name = log.rotate(LogSettings(rotation_size_mb=1))

    # THEN the truncation lost its If-Match, was retried, and the late line is the new current file
    assert name is not None
    assert body_of(s3) == late.encode()
    assert archive_bytes(s3, name) == "".join(lines.given[:-1]).encode()
    assert history(s3, log) == "".join(lines.given).encode()


def test_concurrent_appends_during_rotations_lose_nothing(s3, monkeypatch):
    # GIVEN S3 requests are atomic (as on AWS), 3 writers, and a rotator at 1 MiB
    settings = LogSettings(rotation_size_mb=1)
    rotator = EventLog(S3Appender(s3, BUCKET), clock=Clock())
    writers = [Lines(size=16 * 1024, tag=f"w{number}-") for number in range(3)]
    batches = [[lines.take(1) for _ in range(48)] for lines in writers]  # 2.25 MiB in all
    done = threading.Event()
    errors: list[BaseException] = []
    rotations: list[str] = []

    def write(batch: list[str]) -> None:
        log = EventLog(S3Appender(s3, BUCKET, max_attempts=200, base_delay=0.001, max_delay=0.01), clock=Clock())
        try:
            for line in batch:
                log.append(line)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    def rotate() -> None:
        try:
            while not done.is_set():
                if name := rotator.rotate(settings):
                    rotations.append(name)
                time.sleep(0.001)
        except BaseException as error:
            errors.append(error)

    # WHEN they all run at once
    threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
    rotating = threading.Thread(target=rotate)
    rotating.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    rotating.join(timeout=60)

    # THEN the log rotated, and archives + current hold every line exactly once, each writer's in order
    assert errors == []
    assert rotations
    assert rotator.archive_names() == sorted(set(rotations), key=lambda name: int(name.rsplit(".", 1)[1]))
    logged = history(s3, rotator).decode().splitlines(keepends=True)
    counts = Counter(logged)
    every = [line for lines in writers for line in lines.given]
    assert [line for line in every if counts[line] != 1] == []
    assert len(logged) == len(every)
    for lines in writers:
        assert [line for line in logged if line in set(lines.given)] == lines.given


# ---- settings ----


def test_settings_default_to_50_mb_and_12_generations(log, s3):
    # WHEN none were saved
    settings = log.settings()

    # THEN the defaults apply
    assert (settings.rotation_size_mb, settings.generations) == (50, 12)
    assert settings.rotation_bytes == 50 * MIB


def test_saved_settings_are_read_back(log, s3):
    # WHEN settings are saved
    log.save_settings(LogSettings(rotation_size_mb=1024, generations=1))

    # THEN they are persisted as JSON and read back as saved
    stored = s3.get_object(Bucket=BUCKET, Key=SETTINGS_KEY)
    assert stored["ContentType"] == "application/json"
    assert stored["Body"].read() == b'{"rotation_size_mb":1024,"generations":1}'
    assert log.settings() == LogSettings(rotation_size_mb=1024, generations=1)


@pytest.mark.parametrize("stored", [b"{not json", b'{"rotation_size_mb": 0, "generations": 12}', b"[]"])
def test_an_unreadable_settings_file_falls_back_to_the_defaults(log, s3, stored: bytes):
    # GIVEN a settings file edited by hand into something invalid
    s3.put_object(Bucket=BUCKET, Key=SETTINGS_KEY, Body=stored)

    # WHEN the writer reads the settings
    settings = log.settings()

    # THEN the log keeps working with the defaults instead of failing every batch
    assert settings == LogSettings()


@pytest.mark.parametrize(
    "values",
    [
        {"rotation_size_mb": 0},
        {"rotation_size_mb": 1025},
        {"rotation_size_mb": -1},
        {"generations": 0},
        {"generations": 13},
        {"rotation_size_mb": "50"},
        {"generations": "12"},
        {"rotation_size_mb": 1.5},
        {"rotation_size_mb": True},
        {"rotation_size_mb": None},
        {"retention_days": 30},
    ],
)
def test_invalid_settings_are_refused(values: dict[str, Any]):
    # WHEN / THEN settings out of range, of the wrong type or unknown are refused, from Python and from JSON
    with pytest.raises(ValidationError):
        LogSettings.model_validate(values)
    with pytest.raises(ValidationError):
        LogSettings.model_validate_json(json.dumps(values))


@pytest.mark.parametrize(("field", "value"), [("rotation_size_mb", 1), ("rotation_size_mb", 1024), ("generations", 1)])
def test_settings_at_the_bounds_are_accepted(field: str, value: int):
    # WHEN / THEN the bounds themselves are valid
    assert getattr(LogSettings.model_validate({field: value}), field) == value


# ---- listing ----


def test_the_listing_gives_uncompressed_sizes(log, s3):
    # GIVEN a rotated log and a few more lines
    lines = Lines()
    fill(log, lines, 1_200_000)
    archived = len("".join(lines.given).encode())
    name = log.rotate(LogSettings(rotation_size_mb=1))
    log.append(lines.take(3))

    # WHEN listing
    listing = log.listing()

    # THEN the current file and the archive are there with their uncompressed sizes
    assert [(item.name, item.size) for item in listing.current] == [("default.log", 300)]
    assert [(item.name, item.size) for item in listing.archive] == [(name, archived)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item.last_modified) for item in listing.archive)


@pytest.mark.parametrize(
    "name", ["default.log", "default.log.123", "default.log.12345678901234", "../default.log.1795359159778"]
)
def test_archive_key_refuses_malformed_names(name: str):
    # WHEN / THEN only default.log.{13 digits} names an archive
    with pytest.raises(ValueError):
        archive_key(name)
    assert archive_key("default.log.1795359159778") == "logs/archive/default.log.1795359159778"
