"""local.collector: no automatic full collection while the stack serves; one when it is idle."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Iterator

import pytest

from local.collector import NEVER, Collector


def wait_for(condition: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def promote_garbage_cycle() -> None:
    """A cycle that becomes garbage after reaching the oldest generation (what only a full collection frees)."""
    node: list[object] = []
    node.append(node)
    gc.collect(1)  # node survives into the oldest generation; the count of full-collection work is now > 0
    del node


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)
    gc.unfreeze()


def test_start_freezes_what_exists_and_stops_automatic_full_collections(thresholds: tuple[int, int, int]) -> None:
    collector = Collector(lambda: 0, idle_seconds=3600)
    collector.start()
    try:
        assert gc.get_threshold() == (thresholds[0], thresholds[1], NEVER)
        assert gc.get_freeze_count() > 0
    finally:
        collector.stop()
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0


def test_an_idle_stack_gets_its_full_collection(thresholds: tuple[int, int, int]) -> None:
    collector = Collector(lambda: 7, idle_seconds=0.02)  # no request moves the count: idle
    collector.start()
    try:
        promote_garbage_cycle()
        assert wait_for(lambda: collector.collections >= 1)
        assert gc.get_count()[2] == 0  # the oldest generation was just collected
    finally:
        collector.stop()


def test_a_busy_stack_waits_until_the_longest_interval(thresholds: tuple[int, int, int]) -> None:
    served = itertools.count()
    busy = Collector(lambda: next(served), idle_seconds=0.02, max_seconds=3600)  # a request every check
    busy.start()
    try:
        promote_garbage_cycle()
        time.sleep(0.3)  # fifteen checks, none of them idle
        assert busy.collections == 0
    finally:
        busy.stop()
    served = itertools.count()
    bounded = Collector(lambda: next(served), idle_seconds=0.02, max_seconds=0.1)
    bounded.start()
    try:
        promote_garbage_cycle()
        assert wait_for(lambda: bounded.collections >= 1)  # busy throughout, collected all the same
    finally:
        bounded.stop()
