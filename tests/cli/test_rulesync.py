"""Rules as code: loading rules.yaml and planning the changes that make the bus match it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from correlator_cli.rulesync import Change, RulesFileError, load_rules, pending, plan

RULES_YAML = """
rules:
  - name: warn-on-payments
    match: {type: payment., level: [warning]}
    action: log.warn
  - name: ops-mail
    match: {type: order.failed}
    action: email
    config: {to: [ops@example.com], subject: "failed", text: "x"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_are_loaded_as_the_api_stores_them(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, RULES_YAML))
    assert [rule["name"] for rule in rules] == ["warn-on-payments", "ops-mail"]
    assert rules[0]["match"]["level"] == ["WARN"]  # aliases and defaults normalised
    assert rules[0]["enabled"] is True


def test_a_plain_list_is_a_rules_file_too(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "- {name: a, action: log}\n"))[0]["name"] == "a"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [{name: a, action: teleport}]", "rules[0] (a).action"),
        ("rules: [{name: 'bad name', action: log}]", "rules[0] (bad name).name"),
        ("rules: [{name: a, action: log, colour: red}]", "rules[0] (a).colour"),
        ("rules: [{name: a, action: log}, {name: a, action: log.warn}]", "rules[1] (a): the name 'a' is used twice"),
        ("rules: [{name: a, action: email, config: {}}]", "rules[0] (a).config.to"),
        ("rules: [42]", "rules[0]: a rule is a mapping"),
    ],
)
def test_every_invalid_rule_is_named(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(RulesFileError) as raised:
        load_rules(write(tmp_path, text))
    assert any(line.startswith(problem) for line in raised.value.problems), raised.value.problems


@pytest.mark.parametrize("text", ["rules: {a: 1}", "rules: [", "42"])
def test_a_file_that_is_not_a_list_of_rules_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(RulesFileError):
        load_rules(write(tmp_path, text))


def test_the_plan_creates_updates_keeps_and_prunes(tmp_path: Path) -> None:
    desired = load_rules(write(tmp_path, RULES_YAML))
    current: list[dict[str, Any]] = [
        {"name": "warn-on-payments", "match": {"type": "payment.", "level": ["WARN"]}, "action": "log.warn"},
        {
            "name": "ops-mail",
            "match": {"type": "order.failed"},
            "action": "email",
            "config": {"to": ["old@example.com"], "text": "x"},
        },
        {"name": "log-everything", "action": "log", "read_only": True},
        {"name": "stray", "action": "log"},
    ]
    steps = {step.name: step.change for step in plan(desired, current, prune=False)}
    assert steps == {
        "warn-on-payments": Change.UNCHANGED,
        "ops-mail": Change.UPDATE,
        "log-everything": Change.READ_ONLY,
    }
    pruned = plan(desired, current, prune=True)
    assert {step.name: step.change for step in pending(pruned)} == {"ops-mail": Change.UPDATE, "stray": Change.DELETE}
    update = next(step for step in pruned if step.name == "ops-mail")
    assert "-  - old@example.com" in update.diff()
    assert "+  - ops@example.com" in update.diff()


def test_template_rules_are_never_changed_even_when_the_file_names_them(tmp_path: Path) -> None:
    desired = load_rules(write(tmp_path, "- {name: log-everything, action: log.error}\n"))
    steps = plan(desired, [{"name": "log-everything", "action": "log", "read_only": True}], prune=True)
    assert [(step.name, step.change) for step in steps] == [("log-everything", Change.READ_ONLY)]
    assert pending(steps) == []


def test_a_new_rule_is_created() -> None:
    steps = plan([{"name": "n", "action": "log"}], [], prune=True)
    assert [(step.name, step.change) for step in steps] == [("n", Change.CREATE)]
