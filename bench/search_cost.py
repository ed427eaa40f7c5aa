"""``correlator logs search`` against ``zcat | grep`` on the same generated gzip archives, same run.

The archives are made like the log writer makes them (Personium lines, gzip); both sides read
the same files from disk, so the figure is the search engine's (decompression + scan), not the
network's. Speeds are uncompressed MB per second.
"""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from correlator_cli.logsearch import Query, search

FILES = 6
FILE_MB = 20
REPEATS = 3
CHUNK = 1 << 20
KEY = "Req_bench_needle"
TYPES = ("order.created", "order.paid", "payment.declined", "rule.create", "email", "log.get", "sms")


@dataclass(frozen=True, slots=True)
class SearchCost:
    seconds: float
    matches: int


def _lines(random_: random.Random, size: int) -> Iterator[bytes]:
    written = 0
    number = 0
    while written < size:
        number += 1
        key = KEY if number % 5000 == 0 else f"Req_{random_.getrandbits(64):016x}"
        level = random_.choice(("INFO ", "INFO ", "INFO ", "WARN ", "ERROR"))
        time = f"2026-11-22T14:{number // 60000 % 60:02d}:{number // 1000 % 60:02d}.{number % 1000:03d}Z"
        line = (
            f'{time},[{level}],"{key}",'
            f'"true","https://app.example/","key-{number % 97}","{random_.choice(TYPES)}",'
            f'"orders/{number}","{"ok" if number % 3 else "card expired"}"\n'
        ).encode()
        written += len(line)
        yield line


def generate(directory: Path) -> tuple[list[Path], int]:
    """``FILES`` gzip archives of ``FILE_MB`` MB of lines each; their paths and total uncompressed size."""
    random_ = random.Random(14)
    paths, total = [], 0
    for index in range(FILES):
        data = b"".join(_lines(random_, FILE_MB * 1024 * 1024))
        total += len(data)
        path = directory / f"default.log.{1764000000000 + index}"
        path.write_bytes(gzip.compress(data, compresslevel=6))
        paths.append(path)
    return paths, total


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


def ours(paths: list[Path], query: Query) -> int:
    return sum(1 for path in paths for _ in search(_chunks(path), query))


def zcat_grep(paths: list[Path], literal: str) -> int:
    zcat, grep = shutil.which("zcat"), shutil.which("grep")
    if zcat is None or grep is None:
        raise RuntimeError("zcat and grep are needed for the baseline")
    pipeline = subprocess.run(
        f"{zcat} {' '.join(str(path) for path in paths)} | {grep} -F -c -- '{literal}'",
        shell=True,
        check=False,
        capture_output=True,
        text=True,
    )
    return int(pipeline.stdout.strip() or 0)


def best(run: Callable[[], int]) -> SearchCost:
    timings, matches = [], 0
    for _ in range(REPEATS):
        started = time.perf_counter()
        matches = run()
        timings.append(time.perf_counter() - started)
    return SearchCost(min(timings), matches)


def measure() -> tuple[int, int, dict[str, SearchCost]]:
    """Compressed and uncompressed bytes, and the best time of each search."""
    with tempfile.TemporaryDirectory(prefix="correlator-search-bench-") as folder:
        paths, total = generate(Path(folder))
        compressed = sum(path.stat().st_size for path in paths)
        key_literal = f'],"{KEY}","'
        costs = {
            "zcat | grep -F request key": best(lambda: zcat_grep(paths, key_literal)),
            "logs search -k (request key)": best(lambda: ours(paths, Query(request_key=KEY))),
            "logs search --type --level": best(lambda: ours(paths, Query(type_prefix="payment.", level="ERROR"))),
            "logs search --since --until": best(
                lambda: ours(paths, Query(since="2026-11-22T14:00:10.000000Z", until="2026-11-22T14:00:11.000000Z"))
            ),
        }
        return compressed, total, costs
