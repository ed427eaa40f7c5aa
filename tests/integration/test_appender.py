"""S3Appender on moto: conditional creation, read-and-rewrite, multipart copy, races and concurrency."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from correlator.appender import MIN_PART_BYTES, AppendConflictError, S3Appender
from tests.conftest import BucketFor
from tests.s3_doubles import S3Spy, fail_with

BUCKET = "correlator-appender-test"
KEY = "logs/current/default.log"
CSV = "text/csv"
META = {"generation": "1795359159778"}


@pytest.fixture
def s3(s3_bucket: BucketFor) -> Any:
    return s3_bucket(BUCKET)


@pytest.fixture
def spy(s3: Any) -> S3Spy:
    return S3Spy(s3)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def appender(spy: S3Spy, sleeps: list[float]) -> S3Appender:
    """An appender whose S3 calls are spied on and whose backoff sleeps are recorded, not slept."""
    return S3Appender(spy, BUCKET, sleep=sleeps.append)  # type: ignore[arg-type]


def body_of(s3: Any, key: str = KEY) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return data


def put(s3: Any, body: bytes, key: str = KEY, metadata: dict[str, str] | None = None) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=CSV, Metadata=metadata or META)


def big_body(size: int = MIN_PART_BYTES) -> bytes:
    """``size`` bytes of lines, the last one complete."""
    line = b"2026-11-22T14:52:39.778Z,[INFO ],filler\n"
    body = line * (size // len(line) + 1)
    return body[: size - 1] + b"\n"


def rival_appends(s3: Any, data: bytes) -> Any:
    """A hook: another writer (its own appender, on the real client) appends ``data``."""
    rival = S3Appender(s3, BUCKET, sleep=lambda seconds: None)
    return lambda kwargs: rival.append(KEY, data, content_type=CSV)


def conditional(kwargs: dict[str, Any]) -> bool:
    return "IfMatch" in kwargs or "IfNoneMatch" in kwargs


def no_multipart_uploads_left(s3: Any) -> bool:
    return not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


# ---- creating ----


def test_the_first_append_creates_the_object_with_header_and_metadata(appender, spy, s3):
    # WHEN appending to a key that does not exist
    state = appender.append(KEY, b"line 1\n", content_type=CSV, header=b"# header\n", new_metadata=META)

    # THEN the object is the header then the data, with the content type and metadata given
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert body_of(s3) == b"# header\nline 1\n"
    assert head["ContentType"] == CSV
    assert head["Metadata"] == META
    assert (state.etag, state.size, state.metadata) == (head["ETag"], 16, META)
    # AND it was created only-if-absent
    [(_, request)] = [call for call in spy.requests if call[0] == "put_object"]
    assert request["IfNoneMatch"] == "*"
    assert "IfMatch" not in request


def test_header_and_new_metadata_apply_only_when_creating(appender, s3):
    # GIVEN an object created with a header and metadata
    appender.append(KEY, b"line 1\n", content_type=CSV, header=b"# header\n", new_metadata=META)

    # WHEN appending again with another header and metadata
    appender.append(KEY, b"line 2\n", content_type=CSV, header=b"# other\n", new_metadata={"generation": "2"})

    # THEN neither is applied a second time
    assert body_of(s3) == b"# header\nline 1\nline 2\n"
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"] == META


def test_a_rival_creating_the_object_first_is_appended_to(appender, spy, s3, sleeps):
    # GIVEN another writer creates the object between our HeadObject and our PutObject
    spy.once("put_object", lambda kwargs: put(s3, b"rival 1\n"), when=lambda kwargs: "IfNoneMatch" in kwargs)

    # WHEN appending
    appender.append(KEY, b"ours 1\n", content_type=CSV, header=b"# header\n", new_metadata={"generation": "9"})

    # THEN our create lost (If-None-Match), the append was retried, and both writes are there
    assert body_of(s3) == b"rival 1\nours 1\n"
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"] == META
    assert spy.calls["put_object"] == 2
    assert len(sleeps) == 1


# ---- small objects: read and rewrite ----


def test_a_small_append_rewrites_the_object_keeping_type_and_metadata(appender, spy, s3):
    # GIVEN a small object with a content type and metadata
    put(s3, b"line 1\n")
    before = s3.head_object(Bucket=BUCKET, Key=KEY)

    # WHEN appending
    state = appender.append(KEY, b"line 2\n", content_type=CSV)

    # THEN the object is the old bytes then the new, type and metadata kept
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert body_of(s3) == b"line 1\nline 2\n"
    assert (head["ContentType"], head["Metadata"]) == (CSV, META)
    assert (state.etag, state.size) == (head["ETag"], 14)
    # AND the write was conditional on the ETag it read
    [(_, request)] = [call for call in spy.requests if call[0] == "put_object"]
    assert request["IfMatch"] == before["ETag"]
    assert spy.calls["upload_part_copy"] == 0


def test_an_object_just_under_5_mib_is_read_and_rewritten(appender, spy, s3):
    # GIVEN an object one byte under the copy threshold
    original = big_body(MIN_PART_BYTES - 1)
    put(s3, original)

    # WHEN appending
    appender.append(KEY, b"tail\n", content_type=CSV)

    # THEN it was downloaded whole and rewritten
    assert body_of(s3) == original + b"tail\n"
    assert spy.downloaded == MIN_PART_BYTES - 1
    assert spy.calls["create_multipart_upload"] == 0


# ---- large objects: server-side copy ----


@pytest.mark.parametrize("size", [MIN_PART_BYTES, MIN_PART_BYTES + 123_457])
def test_an_object_of_5_mib_or_more_is_extended_by_multipart_copy(appender, spy, s3, size: int):
    # GIVEN an object at or over the threshold
    original = big_body(size)
    put(s3, original)
    before = s3.head_object(Bucket=BUCKET, Key=KEY)

    # WHEN appending
    state = appender.append(KEY, "ligne 2 ✓\n".encode(), content_type=CSV)

    # THEN the object is byte-exact the old bytes then the new ones, type and metadata kept
    head = s3.head_object(Bucket=BUCKET, Key=KEY)
    assert body_of(s3) == original + "ligne 2 ✓\n".encode()
    assert (head["ContentType"], head["Metadata"]) == (CSV, META)
    assert (state.etag, state.size) == (head["ETag"], size + 12)
    # AND nothing of the object went through the function: only the new bytes were uploaded
    assert spy.calls["get_object"] == 0
    assert spy.downloaded == 0
    assert spy.calls["put_object"] == 0
    [(_, copy)] = [call for call in spy.requests if call[0] == "upload_part_copy"]
    assert copy["CopySourceIfMatch"] == before["ETag"]
    [(_, part)] = [call for call in spy.requests if call[0] == "upload_part"]
    assert part["Body"] == "ligne 2 ✓\n".encode()
    [(_, complete)] = [call for call in spy.requests if call[0] == "complete_multipart_upload"]
    assert complete["IfMatch"] == before["ETag"]


def test_a_rival_completing_first_makes_the_copy_retry(appender, spy, s3, sleeps):
    # GIVEN a large object, and a rival appending just before our CompleteMultipartUpload
    original = big_body()
    put(s3, original)
    spy.once("complete_multipart_upload", rival_appends(s3, b"rival\n"))

    # WHEN appending
    appender.append(KEY, b"ours\n", content_type=CSV)

    # THEN our first completion lost (If-Match), the append was retried, and both lines landed once
    assert body_of(s3) == original + b"rival\n" + b"ours\n"
    assert spy.calls["complete_multipart_upload"] == 2
    assert len(sleeps) == 1
    # AND the losing upload was aborted
    assert spy.calls["abort_multipart_upload"] == 1
    assert no_multipart_uploads_left(s3)


# ---- races ----


def test_a_rival_write_between_head_and_put_is_retried_and_both_land(appender, spy, s3, sleeps):
    # GIVEN an object, and a rival appending once just before our conditional PutObject
    put(s3, b"line 1\n")
    spy.once("put_object", rival_appends(s3, b"rival\n"), when=conditional)

    # WHEN appending
    state = appender.append(KEY, b"ours\n", content_type=CSV)

    # THEN the first put lost (412), the append started over, and both writes are there once
    assert body_of(s3) == b"line 1\nrival\nours\n"
    assert spy.calls["head_object"] == 2
    assert spy.calls["put_object"] == 2
    assert len(sleeps) == 1
    assert state.size == len(b"line 1\nrival\nours\n")


def test_a_rival_write_between_head_and_get_is_retried(appender, spy, s3, sleeps):
    # GIVEN a rival appending just before we read the object (the read is If-Match)
    put(s3, b"line 1\n")
    spy.once("get_object", rival_appends(s3, b"rival\n"))

    # WHEN appending
    appender.append(KEY, b"ours\n", content_type=CSV)

    # THEN the stale read was refused and the append retried
    assert body_of(s3) == b"line 1\nrival\nours\n"
    assert spy.calls["get_object"] == 2
    assert len(sleeps) == 1


def test_an_object_deleted_under_us_is_recreated(appender, spy, s3):
    # GIVEN the object is deleted between our HeadObject and our read
    put(s3, b"line 1\n")
    spy.once("get_object", lambda kwargs: s3.delete_object(Bucket=BUCKET, Key=KEY))

    # WHEN appending
    appender.append(KEY, b"ours\n", content_type=CSV, header=b"# header\n", new_metadata={"generation": "2"})

    # THEN the append started over and created the object afresh
    assert body_of(s3) == b"# header\nours\n"


def test_losing_every_race_raises_append_conflict_error(spy, s3, sleeps):
    # GIVEN a rival that appends before every one of our writes
    put(s3, b"line 1\n")
    rival = rival_appends(s3, b"rival\n")
    spy.before["put_object"] = rival
    appender = S3Appender(spy, BUCKET, max_attempts=3, sleep=sleeps.append)

    # WHEN appending
    with pytest.raises(AppendConflictError):
        appender.append(KEY, b"ours\n", content_type=CSV)

    # THEN it tried max_attempts times, backing off between attempts, and wrote nothing of ours
    assert spy.calls["put_object"] == 3
    assert len(sleeps) == 2
    assert all(0 <= seconds <= 2.0 for seconds in sleeps)
    assert body_of(s3) == b"line 1\n" + b"rival\n" * 3


def test_other_errors_are_not_retried(spy, s3, sleeps):
    # GIVEN S3 refuses the write for another reason than a race
    put(s3, b"line 1\n")
    spy.before["put_object"] = fail_with("AccessDenied", 403, "PutObject")
    appender = S3Appender(spy, BUCKET, sleep=sleeps.append)

    # WHEN appending
    with pytest.raises(ClientError) as raised:
        appender.append(KEY, b"ours\n", content_type=CSV)

    # THEN the error goes through at once and the object is untouched
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert spy.calls["put_object"] == 1
    assert sleeps == []
    assert body_of(s3) == b"line 1\n"


def test_a_failed_multipart_completion_leaves_the_object_as_it_was(spy, s3):
    # GIVEN a large object, and S3 failing the completion of our upload
    original = big_body()
    put(s3, original)
    spy.before["complete_multipart_upload"] = fail_with("InternalError", 500, "CompleteMultipartUpload")
    appender = S3Appender(spy, BUCKET, sleep=lambda seconds: None)

    # WHEN appending
    with pytest.raises(ClientError):
        appender.append(KEY, b"ours\n", content_type=CSV)

    # THEN nothing was half-written and the upload was aborted
    assert body_of(s3) == original
    assert no_multipart_uploads_left(s3)


def test_the_copy_threshold_cannot_be_under_the_minimum_part_size(s3):
    # WHEN / THEN a threshold S3 could not honour is refused
    with pytest.raises(ValueError, match="5 MiB"):
        S3Appender(s3, BUCKET, copy_threshold=MIN_PART_BYTES - 1)


# ---- concurrency ----


def append_concurrently(s3: Any, writers: int, appends: int) -> list[bytes]:
    """``writers`` threads each append ``appends`` distinct lines to KEY; return every line, in order per writer."""
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        appender = S3Appender(s3, BUCKET, max_attempts=200, base_delay=0.001, max_delay=0.02)
        barrier.wait()
        try:
            for number in range(appends):
                appender.append(
                    KEY, f"writer {writer} line {number:03d}\n".encode(), content_type=CSV, new_metadata=META
                )
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return [f"writer {w} line {n:03d}\n".encode() for w in range(writers) for n in range(appends)]


def assert_each_line_once_in_writer_order(lines: list[bytes], expected: list[bytes]) -> None:
    counts = Counter(lines)
    assert [line for line in expected if counts[line] != 1] == []  # none lost, none doubled
    assert set(counts) == set(expected)  # nothing else
    for writer in {line.split(b" line ")[0] for line in expected}:
        own = [line for line in lines if line.startswith(writer + b" ")]
        assert own == sorted(own)  # each writer's lines in the order it appended them


@pytest.fixture
def atomic_s3(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return s3


def test_concurrent_small_appends_lose_and_double_nothing(atomic_s3):
    # GIVEN no object yet, and 4 writers of 25 lines each
    # WHEN they all append to the same key at once
    expected = append_concurrently(atomic_s3, writers=4, appends=25)

    # THEN every line is there exactly once
    lines = body_of(atomic_s3).splitlines(keepends=True)
    assert len(lines) == 100
    assert_each_line_once_in_writer_order(lines, expected)


def test_concurrent_appends_to_a_large_object_lose_and_double_nothing(atomic_s3):
    # GIVEN an object of 5 MiB (every append takes the multipart-copy path)
    original = big_body()
    put(atomic_s3, original)

    # WHEN 4 writers append 10 lines each at once
    expected = append_concurrently(atomic_s3, writers=4, appends=10)

    # THEN the original bytes are intact and every new line is there exactly once
    body = body_of(atomic_s3)
    assert body[: len(original)] == original
    assert_each_line_once_in_writer_order(body[len(original) :].splitlines(keepends=True), expected)
    assert no_multipart_uploads_left(atomic_s3)


# ---- helpers used by rotation ----


def test_create_from_chunks_creates_only_if_absent(appender, spy, s3):
    # WHEN creating an object from chunks, twice
    created = appender.create_from_chunks(
        "logs/archive/a", iter([b"ab", b"cd"]), content_type=CSV, metadata={"x": "1"}, content_encoding="gzip"
    )
    again = appender.create_from_chunks("logs/archive/a", iter([b"zz"]), content_type=CSV, metadata={"x": "2"})

    # THEN the first call created it with its headers, the second changed nothing
    head = s3.head_object(Bucket=BUCKET, Key="logs/archive/a")
    assert (created, again) == (True, False)
    assert body_of(s3, "logs/archive/a") == b"abcd"
    assert (head["ContentType"], head["ContentEncoding"], head["Metadata"]) == (CSV, "gzip", {"x": "1"})


def test_create_from_chunks_streams_large_objects_as_multipart(appender, spy, s3):
    # GIVEN 11 MiB of incompressible chunks and 5 MiB parts
    data = random.Random(7).randbytes(11 * 1024 * 1024)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 1024 * 1024):
            yield data[start : start + 1024 * 1024]

    # WHEN creating it, then trying again
    created = appender.create_from_chunks(
        "logs/archive/big", chunks(), content_type=CSV, metadata={}, part_bytes=MIN_PART_BYTES
    )
    again = appender.create_from_chunks("logs/archive/big", chunks(), content_type=CSV, metadata={})

    # THEN it was uploaded in parts, byte-exact, and the second attempt lost to If-None-Match
    assert (created, again) == (True, False)
    assert body_of(s3, "logs/archive/big") == data
    assert spy.calls["upload_part"] == 3 + 2  # 5 + 5 + 1 MiB, then 10 + 1 MiB
    assert no_multipart_uploads_left(s3)


def test_replace_with_suffix_keeps_the_bytes_after_the_offset(appender, s3):
    # GIVEN a small object
    put(s3, b"archived 1\narchived 2\nkept 3\n")
    state = appender.head(KEY)

    # WHEN replacing it by its bytes after the archived prefix
    appender.replace_with_suffix(KEY, state, 22, CSV, {"generation": "2"})

    # THEN only the suffix remains, with the new metadata
    assert body_of(s3) == b"kept 3\n"
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"] == {"generation": "2"}


def test_replace_with_suffix_of_a_large_remainder_copies_server_side(appender, spy, s3):
    # GIVEN an object whose remainder after the offset is at least 5 MiB
    suffix = big_body(MIN_PART_BYTES + 10)
    put(s3, b"archived\n" + suffix)
    state = appender.head(KEY)

    # WHEN replacing it by its suffix
    appender.replace_with_suffix(KEY, state, 9, CSV, {"generation": "2"})

    # THEN the suffix was copied by range, without downloading it
    assert body_of(s3) == suffix
    assert s3.head_object(Bucket=BUCKET, Key=KEY)["Metadata"] == {"generation": "2"}
    assert spy.calls["get_object"] == 0
    [(_, copy)] = [call for call in spy.requests if call[0] == "upload_part_copy"]
    assert copy["CopySourceRange"] == f"bytes=9-{state.size - 1}"


@pytest.mark.parametrize("size", [100, MIN_PART_BYTES + 100])
def test_replace_with_suffix_refuses_an_object_that_changed(appender, s3, size: int):
    # GIVEN the state of an object, then an append by someone else
    put(s3, big_body(size))
    state = appender.head(KEY)
    S3Appender(s3, BUCKET).append(KEY, b"late\n", content_type=CSV)

    # WHEN replacing it from the stale state
    with pytest.raises(ClientError) as raised:
        appender.replace_with_suffix(KEY, state, 50, CSV, {"generation": "2"})

    # THEN it is a precondition failure and the late line is still there
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert body_of(s3).endswith(b"late\n")
    assert len(body_of(s3)) == size + 5
    assert no_multipart_uploads_left(s3)
