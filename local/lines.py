"""The console of the local stack: one readable line per API request and per delivery, coloured on a terminal.

``23:03:56.382 POST /events 200 12 ms · 100 events  ReceptionFunction`` and
``23:03:57.020 rule relay-orders → relay · hops 1: 200 34 ms``; warnings and errors say their level
and where they come from. Colour (green for success, yellow for a client error, red for a failure)
only when standard error is a terminal and ``NO_COLOR`` is not set.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_COLOURS = {"ok": "\033[32m", "warn": "\033[33m", "fail": "\033[31m"}
_LEVEL_COLOURS = {logging.WARNING: "\033[33m", logging.ERROR: "\033[31m", logging.CRITICAL: "\033[31m"}
_RESET = "\033[0m"


def tone(status: int) -> dict[str, str]:
    """``extra`` for a log call: how its line is coloured, from an HTTP-like status."""
    return {"tone": "ok" if status < 400 else "warn" if status < 500 else "fail"}


def event_count(payload: bytes) -> str:
    """`` · N events`` when a response lists ``results`` (POST /events), else nothing."""
    if not payload.startswith(b'{"results"'):
        return ""
    try:
        results = json.loads(payload).get("results")
    except ValueError:
        return ""
    return f" · {len(results)} event{'s' if len(results) != 1 else ''}" if isinstance(results, list) else ""


class ConsoleFormatter(logging.Formatter):
    """Time and message for information; level and logger too for the rest; colour on a terminal."""

    def __init__(self, colour: bool) -> None:
        super().__init__(datefmt="%H:%M:%S")
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        stamp = f"{self.formatTime(record, self.datefmt)}.{int(record.msecs):03d}"
        message = record.getMessage()
        if record.levelno != logging.INFO:
            message = f"{record.levelname} {record.name}: {message}"
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if self.colour:
            colour = _COLOURS.get(str(getattr(record, "tone", ""))) or _LEVEL_COLOURS.get(record.levelno)
            if colour:
                message = f"{colour}{message}{_RESET}"
        return f"{stamp} {message}"


def configure(verbose: bool, stream: Any = None) -> None:
    """The runner's logging: one line per event worth seeing; debug lines with ``verbose``."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    colour = bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
    handler.setFormatter(ConsoleFormatter(colour))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
