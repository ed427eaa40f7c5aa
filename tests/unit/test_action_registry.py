"""The registry of actions: what rule validation reads, checked against template.yaml's ACTION_TARGETS."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from correlator import registry
from correlator.rules import Action, Rule
from local.template import load_yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def action_targets() -> dict[str, str]:
    """``ACTION_TARGETS`` of the rules function: rule action -> the resource it targets (``${X.Arn}``)."""
    template: dict[str, Any] = load_yaml(TEMPLATE.read_text(encoding="utf-8"))
    text = template["Resources"]["RulesFunction"]["Properties"]["Environment"]["Variables"]["ACTION_TARGETS"]["Fn::Sub"]
    targets: dict[str, str] = json.loads(text)
    return {action: re.sub(r"^\$\{(\w+)\.Arn\}$", r"\1", target) for action, target in targets.items()}


def test_every_registered_rule_action_has_a_target_and_nothing_else_has_one() -> None:
    # GIVEN / WHEN / THEN
    assert sorted(action_targets()) == sorted(registry.rule_actions())


def test_the_rule_actions_of_one_action_share_its_target() -> None:
    # GIVEN the template's targets
    targets = action_targets()

    # WHEN / THEN one function or queue per registered action, a different one for each
    per_action = {spec.name: {targets[name] for name in spec.rule_actions} for spec in registry.ACTIONS}
    assert all(len(resources) == 1 for resources in per_action.values()), per_action
    resources = [next(iter(found)) for found in per_action.values()]
    assert len(set(resources)) == len(resources)


def test_the_rule_model_accepts_exactly_the_registered_actions_and_aliases() -> None:
    # GIVEN / WHEN / THEN the API's enum (OpenAPI) and the registry agree
    assert set(get_args(Action)) == {*registry.rule_actions(), *registry.ACTION_ALIASES}


@pytest.mark.parametrize("action", [*registry.rule_actions(), *registry.ACTION_ALIASES])
def test_a_rule_carries_the_config_model_the_registry_names(action: str) -> None:
    # GIVEN a valid config for the action (the model's own defaults where it has no required field)
    configs = {
        "email": {"to": ["ops@example.com"], "template": "ops-alert"},
        "sms": {"to": ["+15555550100"], "body": "x"},
        "script": {"script": "enrich"},
        "exec": {"script": "enrich"},
        "relay": {"url": "https://example.com/hook"},
        "relay.event": {"url": "https://example.com/events", "api_key_secret": "correlator/relay/k"},
        "relay.bus": {"bus_arn": "arn:aws:events:us-east-1:123456789012:event-bus/other"},
        "notify": {"services": ["correlator/notify/slack-ops"]},
    }

    # WHEN
    rule = Rule.model_validate({"name": "r", "action": action, "config": configs.get(action, {})})

    # THEN validation built the typed config once, from the registry's model
    assert type(rule.typed_config) is registry.config_model(action)
    assert rule.config == rule.typed_config.model_dump(exclude_none=True, by_alias=True)


def test_an_unknown_action_is_refused() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValidationError) as raised:
        Rule.model_validate({"name": "r", "action": "fax", "config": {}})
    assert raised.value.errors()[0]["loc"] == ("action",)
    with pytest.raises(KeyError):
        registry.spec_of("fax")


def _custom_metrics(node: Any) -> set[str]:
    """Every ``MetricName`` in the application's namespace under ``node`` (alarms, metric math)."""
    if isinstance(node, dict):
        found = {node["MetricName"]} if node.get("Namespace") == "Correlator" and "MetricName" in node else set()
        return found.union(*(_custom_metrics(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_custom_metrics(value) for value in node))
    return set()


def test_every_action_metric_an_alarm_watches_is_one_the_runner_counts() -> None:
    # GIVEN the metrics the template's alarms watch, and those the registry names for the actions
    template: dict[str, Any] = load_yaml(TEMPLATE.read_text(encoding="utf-8"))
    watched = _custom_metrics(template["Resources"])
    counted = {name for spec in registry.ACTIONS for name in spec.metrics.values()}

    # WHEN / THEN apart from the reception's, each is an action metric (a renamed one would never alarm)
    assert watched - counted == {"EventsFailed"}
