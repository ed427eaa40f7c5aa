"""Append to an S3 object safely: conditional writes, and server-side copy once the object is large.

S3 has no append. ``S3Appender.append`` emulates it:

* the object does not exist: ``PutObject`` with ``If-None-Match: *`` (with an optional header);
* it is below 5 MiB: read it and write it back with the new bytes, ``If-Match`` its ETag;
* it is 5 MiB or more: a multipart upload whose first part is ``UploadPartCopy`` of the object
  itself and whose last part is the new bytes, completed ``If-Match`` its ETag; so the bytes
  moved through the function are the new ones, not the file.

A concurrent writer makes the condition fail (412, or 409 while another conditional write is in
flight); the append then starts over from a fresh ``HeadObject``, with jittered backoff. Nothing
is ever half-written: every path commits in one request or not at all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from correlator.retry import backoff

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIN_PART_BYTES = 5 * 1024 * 1024
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


class AppendConflictError(Exception):
    """The object kept changing under us: ``max_attempts`` appends all lost the race."""


@dataclass(frozen=True, slots=True)
class ObjectState:
    """What ``HeadObject`` says about an object: enough to write it conditionally."""

    etag: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)


def is_conflict(error: ClientError) -> bool:
    """True for the errors a lost conditional-write race produces (412 / 409)."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in CONFLICT_CODES or status in (409, 412)


def is_missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


class S3Appender:
    """Appends bytes to objects of one bucket; see the module docstring for the protocol."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        *,
        copy_threshold: int = MIN_PART_BYTES,
        max_attempts: int = 10,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if copy_threshold < MIN_PART_BYTES:
            raise ValueError("copy_threshold must be at least 5 MiB (S3's minimum part size)")
        self.s3 = s3
        self.bucket = bucket
        self._copy_threshold = copy_threshold
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    def head(self, key: str) -> ObjectState | None:
        """The object's ETag, size and metadata, or None when it does not exist."""
        try:
            response = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if is_missing(error):
                return None
            raise
        return ObjectState(response["ETag"], response["ContentLength"], dict(response.get("Metadata", {})))

    def append(
        self,
        key: str,
        data: bytes | Callable[[ObjectState | None], bytes],
        *,
        content_type: str,
        header: bytes = b"",
        new_metadata: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectState:
        """Append ``data`` to ``key``; ``header`` and ``new_metadata`` apply only when creating it,
        ``metadata`` is set by every append (over what the object has), in the same write as the bytes.

        ``data`` may be a function of the object's state (None: it does not exist yet), called on
        every attempt, for bytes that depend on what is already there (e.g. a CSV file's header);
        a conflict raised while it reads the object (412, 404) starts the attempt over.
        Returns the object's state after the append. Raises ``AppendConflictError`` after
        ``max_attempts`` lost races, and lets any other S3 error through.
        """
        for attempt in self._attempts():
            state = self.head(key)
            try:
                chunk = data(state) if callable(data) else data
                if state is None:
                    body = header + chunk
                    created = {**(new_metadata or {}), **(metadata or {})}
                    etag = self._put(key, body, content_type, created, if_none_match=True)
                    return ObjectState(etag, len(body), created)
                updated = {**state.metadata, **(metadata or {})}
                if state.size < self._copy_threshold:
                    current = self.read(key, state)
                    etag = self._put(key, current + chunk, content_type, updated, if_match=state.etag)
                else:
                    etag = self._copy_and_extend(key, state, chunk, content_type, updated)
                return ObjectState(etag, state.size + len(chunk), updated)
            except ClientError as error:
                if not (is_conflict(error) or (state is not None and is_missing(error))):
                    raise
                self._wait(attempt)
        raise AppendConflictError(f"s3://{self.bucket}/{key}: {self._max_attempts} appends lost the race")

    def replace_with_suffix(
        self, key: str, state: ObjectState, offset: int, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        """Rewrite ``key`` as its bytes from ``offset`` on, if it is still ``state``; return the ETag.

        Used to drop a prefix that has been archived. The object keeps its metadata, with
        ``metadata`` over it. Raises ``ClientError`` (412) when the object changed since ``state``
        was read.
        """
        metadata = {**state.metadata, **metadata}
        remainder = state.size - offset
        if remainder < self._copy_threshold:
            body = self.read(key, state, start=offset) if remainder > 0 else b""
            return self._put(key, body, content_type, dict(metadata), if_match=state.etag)
        upload = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=dict(metadata)
        )
        try:
            part = self.s3.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=1,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceRange=f"bytes={offset}-{state.size - 1}",
                CopySourceIfMatch=state.etag,
            )
            return self._complete(key, upload["UploadId"], [part["CopyPartResult"]["ETag"]], if_match=state.etag)
        except BaseException:
            self._abort(key, upload["UploadId"])
            raise

    def read(self, key: str, state: ObjectState, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of ``key`` as of ``state`` (412 if it changed)."""
        end = state.size if end is None else end
        if end <= start:
            return b""
        response = self.s3.get_object(Bucket=self.bucket, Key=key, IfMatch=state.etag, Range=f"bytes={start}-{end - 1}")
        return response["Body"].read()

    def iter_bytes(self, key: str, end: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream bytes ``[0, end)`` of ``key`` (an append-only prefix: no condition needed)."""
        if end <= 0:
            return
        response = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{end - 1}")
        yield from response["Body"].iter_chunks(chunk_size)

    def create_from_chunks(
        self,
        key: str,
        chunks: Iterator[bytes],
        *,
        content_type: str,
        metadata: Mapping[str, str],
        content_encoding: str | None = None,
        part_bytes: int = 2 * MIN_PART_BYTES,
    ) -> bool:
        """Write ``chunks`` as a new object, only if ``key`` does not exist; False if it already does.

        Memory stays bounded by ``part_bytes``: large streams go up as a multipart upload.
        """
        extra: dict[str, Any] = {"ContentType": content_type, "Metadata": dict(metadata)}
        if content_encoding:
            extra["ContentEncoding"] = content_encoding
        buffer = bytearray()
        upload_id: str | None = None
        etags: list[str] = []
        try:
            for chunk in chunks:
                buffer += chunk
                if len(buffer) >= part_bytes:
                    if upload_id is None:
                        upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)["UploadId"]
                    etags.append(self._upload_part(key, upload_id, len(etags) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), IfNoneMatch="*", **extra)
                return True
            etags.append(self._upload_part(key, upload_id, len(etags) + 1, bytes(buffer)))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, start=1)]},
                IfNoneMatch="*",
            )
            return True
        except ClientError as error:
            if upload_id is not None:
                self._abort(key, upload_id)
            if is_conflict(error):
                return False
            raise
        except BaseException:
            if upload_id is not None:
                self._abort(key, upload_id)
            raise

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        return self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)[
            "ETag"
        ]

    def _copy_and_extend(
        self, key: str, state: ObjectState, data: bytes, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        upload = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=dict(metadata)
        )
        try:
            copied = self.s3.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=1,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=state.etag,
            )
            etags = [copied["CopyPartResult"]["ETag"], self._upload_part(key, upload["UploadId"], 2, data)]
            return self._complete(key, upload["UploadId"], etags, if_match=state.etag)
        except BaseException:
            self._abort(key, upload["UploadId"])
            raise

    def _put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        condition: dict[str, Any] = {"IfMatch": if_match} if if_match else {}
        if if_none_match:
            condition["IfNoneMatch"] = "*"
        response = self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata, **condition
        )
        return response["ETag"]

    def _complete(self, key: str, upload_id: str, etags: list[str], *, if_match: str) -> str:
        response = self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, start=1)]},
            IfMatch=if_match,
        )
        return response["ETag"]

    def _abort(self, key: str, upload_id: str) -> None:
        # Best effort: the bucket's lifecycle rule aborts incomplete uploads after a day anyway.
        with contextlib.suppress(ClientError):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _attempts(self) -> range:
        return range(1, self._max_attempts + 1)

    def _wait(self, attempt: int) -> None:
        if attempt < self._max_attempts:
            self._sleep(backoff(attempt, self._base_delay, self._max_delay))
