"""The figures of one bench run, written to ``bench/results.json`` so that runs can be compared."""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).resolve().parent / "results.json"
_figures: dict[str, dict[str, Any]] = {}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
        properties = {
            name: getattr(value, name) for name, member in vars(type(value)).items() if isinstance(member, property)
        }
        return {**fields, **properties}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def record(section: str, name: str, value: Any) -> None:
    """Keep ``value`` (a number, a dataclass, a dict or list of them) as ``section.name`` of this run."""
    _figures.setdefault(section, {})[name] = _plain(value)


def write(verdicts: dict[str, bool], path: Path = RESULTS_FILE) -> Path:
    """Write this run's figures and verdicts as JSON."""
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average": list(_load_average()),
        "verdicts": verdicts,
        "figures": _figures,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _load_average() -> tuple[float, ...]:
    try:
        import os

        return os.getloadavg()
    except OSError:
        return ()
