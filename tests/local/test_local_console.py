"""The local stack's console lines: one per API request and per delivery, coloured only on a terminal."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from local.delivery import describe_delivery, describe_result
from local.lines import ConsoleFormatter, configure, event_count, tone

DELIVERY = {
    "rule": {"name": "orders-to-erp", "action": "relay"},
    "event": {"source": "correlator.external", "detail-type": "order.created", "detail": {"hops": 1}},
}


@pytest.mark.parametrize(
    ("event", "label"),
    [
        (DELIVERY, "rule orders-to-erp → relay · hops 1"),
        ({"rule": {"name": "r"}, "event": {}}, "rule r → Fn"),
        ({"source": "s", "detail-type": "t"}, "s/t → Fn"),
    ],
)
def test_a_delivery_is_told_by_its_rule_action_and_hops(event: Any, label: str) -> None:
    assert describe_delivery(event, "Fn") == label


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ({"results": [{"status": "sent", "info": "a@example.com", "object": None}]}, "sent a@example.com"),
        ({"results": [{"status": "200"}, {"status": "error", "info": "timeout"}]}, "200, error timeout"),
        (None, "ok"),
        ({"results": []}, "ok"),
    ],
)
def test_a_delivery_result_is_told_in_a_few_words(result: Any, words: str) -> None:
    assert describe_result(result) == words


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        (b'{"results":[{"id":"a"},{"id":"b"}]}', " · 2 events"),
        (b'{"results":[{"id":"a"}]}', " · 1 event"),
        (b'{"message":"Forbidden"}', ""),
        (b'{"results": not json', ""),
    ],
)
def test_an_api_line_counts_the_events_of_a_response(payload: bytes, count: str) -> None:
    assert event_count(payload) == count


def _record(level: int, message: str, status: int | None = None) -> logging.LogRecord:
    record = logging.LogRecord("local.api", level, __file__, 1, message, (), None)
    if status is not None:
        record.__dict__.update(tone(status))
    return record


def test_lines_are_plain_without_a_terminal_and_coloured_on_one() -> None:
    # GIVEN an API line (200), a failed delivery (500) and a warning
    ok, failed = _record(logging.INFO, "POST /events 200", 200), _record(logging.ERROR, "boom", 500)
    warning = _record(logging.WARNING, "careful")

    # WHEN they are formatted for a file, then for a terminal
    plain, colour = ConsoleFormatter(colour=False), ConsoleFormatter(colour=True)

    # THEN information lines carry only time and message; others say their level and logger; colour only on a tty
    assert plain.format(ok).split(" ", 1)[1] == "POST /events 200"
    assert plain.format(warning).split(" ", 1)[1] == "WARNING local.api: careful"
    assert "\033[" not in plain.format(failed)
    assert colour.format(ok).split(" ", 1)[1] == "\033[32mPOST /events 200\033[0m"
    assert colour.format(failed).split(" ", 1)[1] == "\033[31mERROR local.api: boom\033[0m"


def test_configure_colours_only_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a stream that is not a terminal
    stream = io.StringIO()
    monkeypatch.delenv("NO_COLOR", raising=False)
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        # WHEN logging is configured on it and a line is logged
        configure(verbose=False, stream=stream)
        logging.getLogger("local.api").info("GET / 403", extra=tone(403))

        # THEN the line has no colour
        assert stream.getvalue().endswith(" GET / 403\n")
    finally:
        logging.getLogger().handlers[:], level = saved
        logging.getLogger().setLevel(level)
