"""``logs tail -f``: the current log as it grows, across rotations, with no line lost or repeated.

Every download through the API is audited (a ``log.get`` line in the log itself), so the follower
keeps the presigned URL of the current file for a few minutes and polls S3 with it directly: a
quiet log is not filled with the tail's own reads.

The current file carries its *generation* in its S3 metadata and is archived under
``default.log.{generation}``. While the generation stays the same, only the bytes after what was
read are fetched (a ranged GET). When it changes, the rest of the old file is read from its archive
(gunzipped, from the same offset), then any whole archives rotated in between, then the new file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from correlator_cli.http import ApiClient, ApiError, Download
from correlator_cli.logsearch import decompressed

CURRENT = "/logs/current/default.log"
_TAIL_WINDOW = 256 * 1024
URL_REUSE_SECONDS = 240.0  # the API's presigned URLs are valid for 300 s


@dataclass
class _Position:
    generation: str | None = None
    offset: int = 0


def _last_lines(data: bytes, count: int) -> bytes:
    if count <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])


def _read_all(download: Download) -> bytes:
    if download.status not in (200, 206):
        return b""
    return b"".join(download.chunks)


class LogFollower:
    """Yields the bytes appended to the event log, in order, as complete lines."""

    def __init__(
        self,
        client: ApiClient,
        *,
        interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        archive_wait: int = 30,
    ) -> None:
        self.client = client
        self.clock = clock
        self._url: str | None = None
        self._url_at = 0.0
        self.interval = interval
        self.sleep = sleep
        self.archive_wait = archive_wait  # polls to wait for a rotated file's archive before giving up on it
        self.position = _Position()
        self.warnings: list[str] = []

    def _current(self, start: int, end: int | None = None) -> Download:
        for _ in range(2):
            if self._url is None or self.clock() - self._url_at > URL_REUSE_SECONDS:
                self._url, self._url_at = self.client.presigned(CURRENT), self.clock()
            if self._url is None:  # no current log yet
                return Download(200, {}, iter([]))
            try:
                return self.client.fetch(self._url, start=start, end=end)
            except ApiError as error:
                if error.status not in (403, 404):
                    raise
                self._url = None  # expired (or the file is gone): ask the API again
        return Download(200, {}, iter([]))

    def start(self, lines: int) -> bytes:
        """The last ``lines`` lines of the current file; following starts after them."""
        probe = self._current(0, 0)
        probe.close()
        total = probe.headers.get("content-range", "").rpartition("/")[2]
        base = max(0, int(total) - _TAIL_WINDOW) if total.isdigit() else 0
        download = self._current(base)
        data = _read_all(download)
        self.position = _Position(download.generation, base + len(data))
        return _last_lines(data[data.find(b"\n") + 1 :] if base else data, lines)

    def poll(self) -> Iterator[bytes]:
        """Everything appended since the last poll."""
        download: Download | None = self._current(self.position.offset)
        assert download is not None
        generation = download.generation
        if download.status == 416:  # nothing after our offset: the same file, or a new, shorter one
            download = None
            probe = self._current(0, 0)
            probe.close()
            generation = probe.generation
        if self.position.generation is None:
            self.position.generation = generation
        elif generation is not None and generation != self.position.generation:
            if download is not None:
                download.close()
            yield from self._rotated(generation)
            download = self._current(self.position.offset)
            if download.generation != generation:  # rotated again meanwhile, or nothing new: next poll
                download.close()
                return
        if download is None:
            return
        data = _read_all(download)
        if data:
            self.position.offset += len(data)
            yield data

    def _rotated(self, new_generation: str) -> Iterator[bytes]:
        old, offset = self.position.generation, self.position.offset
        listing = self.client.call("GET", "/logs").json()
        between = sorted(
            item["name"]
            for item in listing.get("archive", [])
            if str(old) < item["name"].rsplit(".", 1)[-1] < new_generation
        )
        archive = self._archive(f"default.log.{old}")
        skip = 0
        if archive is None:
            self.warnings.append(f"the archive of generation {old} is gone (pruned?): its last lines were not shown")
        else:
            yield archive[offset:]
            # Lines appended after the archived prefix moved to the new file: those already shown are skipped.
            skip = max(0, offset - len(archive)) if not between else 0
        for name in between:
            data = self._archive(name)
            if data:
                yield data
        self.position = _Position(new_generation, skip)

    def _archive(self, name: str) -> bytes | None:
        for attempt in range(self.archive_wait):
            try:
                return b"".join(decompressed(self.client.open(f"/logs/archive/{name}").chunks))
            except ApiError as error:
                if error.status != 404:
                    raise
            if attempt + 1 < self.archive_wait:
                self.sleep(self.interval)
        return None

    def follow(self, stop: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
        """Poll forever (or until ``stop()``), yielding complete lines."""
        partial = b""
        while not stop():
            for data in self.poll():
                data = partial + data
                cut = data.rfind(b"\n") + 1
                partial = data[cut:]
                if cut:
                    yield data[:cut]
            self.sleep(self.interval)
