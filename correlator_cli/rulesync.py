"""Rules as code: a rules.yaml compared with the rules on the bus, and the changes that make them equal.

Both sides go through the core ``Rule`` model before they are compared, so defaults written or
left out (``enabled: true``, ``config: {}``, action aliases...) never show as changes.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from correlator.rules import Rule


class RulesFileError(Exception):
    """rules.yaml is not a list of valid rules; ``problems`` names each one."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class Change(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"
    READ_ONLY = "read-only"


@dataclass(frozen=True, slots=True)
class Step:
    change: Change
    name: str
    before: dict[str, Any] | None  # on the bus
    after: dict[str, Any] | None  # in the file

    def diff(self) -> str:
        """A unified diff of the rule, bus -> file."""
        old = _lines(self.before) if self.before is not None else []
        new = _lines(self.after) if self.after is not None and self.change is not Change.DELETE else []
        return "".join(difflib.unified_diff(old, new, f"bus/{self.name}", f"file/{self.name}"))

    def to_json(self) -> dict[str, Any]:
        return {"change": self.change.value, "name": self.name, "before": self.before, "after": self.after}


def _lines(rule: Mapping[str, Any]) -> list[str]:
    return [line + "\n" for line in yaml.safe_dump(dict(rule), sort_keys=True, allow_unicode=True).splitlines()]


def normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as the API would store and return it."""
    return Rule.model_validate({key: value for key, value in data.items() if key != "read_only"}).to_json()


def load_rules(path: Path) -> list[dict[str, Any]]:
    """The rules of a YAML (or JSON) file: a list of rules, or ``{"rules": [...]}``; each one validated."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RulesFileError(f"cannot read {path}: {error}", []) from None
    items = document.get("rules") if isinstance(document, dict) else document
    if items is None:
        items = []
    if not isinstance(items, list):
        raise RulesFileError(f"{path}: expected a list of rules, or a mapping with a 'rules' list", [])
    rules: list[dict[str, Any]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = f"rules[{index}]" + (f" ({item.get('name')})" if isinstance(item, dict) and item.get("name") else "")
        if not isinstance(item, dict):
            problems.append(f"{label}: a rule is a mapping")
            continue
        try:
            rule = normalized(item)
        except ValidationError as error:
            problems.extend(
                f"{label}.{'.'.join(map(str, detail['loc']))}: {detail['msg']}" for detail in error.errors()
            )
            continue
        if rule["name"] in seen:
            problems.append(f"{label}: the name {rule['name']!r} is used twice")
        seen.add(rule["name"])
        rules.append(rule)
    if problems:
        raise RulesFileError(f"{path}: {len(problems)} problem(s)", problems)
    return rules


def plan(desired: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]], *, prune: bool) -> list[Step]:
    """The steps from ``current`` (GET /rules) to ``desired``; deletions only with ``prune``."""
    live = {str(rule["name"]): dict(rule) for rule in current}
    steps: list[Step] = []
    wanted: set[str] = set()
    for rule in desired:
        name = str(rule["name"])
        wanted.add(name)
        existing = live.get(name)
        if existing is None:
            steps.append(Step(Change.CREATE, name, None, dict(rule)))
            continue
        before = _comparable(existing)
        if existing.get("read_only") is True:
            steps.append(Step(Change.READ_ONLY, name, before, dict(rule)))
        elif before == rule:
            steps.append(Step(Change.UNCHANGED, name, before, dict(rule)))
        else:
            steps.append(Step(Change.UPDATE, name, before, dict(rule)))
    for name, existing in sorted(live.items()):
        if name in wanted:
            continue
        if existing.get("read_only") is True:
            steps.append(Step(Change.READ_ONLY, name, _comparable(existing), None))
        elif prune:
            steps.append(Step(Change.DELETE, name, _comparable(existing), None))
    return steps


def _comparable(rule: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return normalized(rule)
    except ValidationError:  # stored by another version: shown as is, always replaced
        return {key: value for key, value in rule.items() if key != "read_only"}


def pending(steps: Iterable[Step]) -> list[Step]:
    """The steps that change something."""
    return [step for step in steps if step.change in (Change.CREATE, Change.UPDATE, Change.DELETE)]


def dumps(rule: Mapping[str, Any]) -> str:
    return json.dumps(rule, sort_keys=True)
