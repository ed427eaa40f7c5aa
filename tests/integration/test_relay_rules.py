"""The rules API refuses relay rules that could never be sent: SSRF-guarded URLs, foreign secrets, reserved headers."""

from __future__ import annotations

import json
import socket
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from local import moto_compat
from tests.conftest import fresh_import
from tests.integration.rules_fixtures import (
    BUS_ARN,
    SCHEDULE_GROUP,
    SCHEDULER_ROLE_ARN,
    create_queue,
    create_rule_targets,
)
from tests.notification_doubles import IDEMPOTENCY_TABLE, create_idempotency_table
from tests.probe import BUS_NAME, REGION, BusProbe
from tests.samples import load_event

RULES_MODULE = "functions.rules.app"
PUBLIC_ADDRESS = "93.184.215.14"
DNS = {"hooks.example.com": PUBLIC_ADDRESS, "other.example.com": PUBLIC_ADDRESS, "intranet.example.com": "10.1.2.3"}


@pytest.fixture
def rules(
    bus_probe: BusProbe, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> tuple[ModuleType, LambdaContext]:
    """``functions.rules.app`` with the environment template.yaml gives it, relay actions deployed."""
    moto_compat.apply()
    targets = create_rule_targets()
    relay_queue = create_queue("correlator-test-relay")  # stands in for the relay function
    boto3.client("scheduler", region_name=REGION).create_schedule_group(Name=SCHEDULE_GROUP)
    action_targets = {**targets.action_targets, **dict.fromkeys(("relay", "relay.event", "relay.bus"), relay_queue.arn)}
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "rules",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "EVENT_BUS_ARN": BUS_ARN,
        "ACTION_TARGETS": json.dumps(action_targets),
        "RULE_TARGET_DLQ_ARN": targets.dead_letters.arn,
        "SCHEDULE_GROUP_NAME": SCHEDULE_GROUP,
        "SCHEDULER_ROLE_ARN": SCHEDULER_ROLE_ARN,
        "RELAY_ALLOWED_HOSTS": "127.0.0.1:3000",
        "RULE_LEASE_TABLE_NAME": IDEMPOTENCY_TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RELAY_SECRET_PREFIX", raising=False)
    create_idempotency_table()
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in DNS:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (DNS[host], port))]
        if host.endswith(".example.com"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    module = fresh_import(RULES_MODULE)
    return module, lambda_context


def call(rules: tuple[ModuleType, LambdaContext], sample: str, body: dict[str, Any]) -> tuple[int, Any]:
    module, context = rules
    request = load_event(f"apigw/{sample}")
    request["body"] = json.dumps(body)
    if "{name}" in request["resource"]:
        path = request["resource"].replace("{name}", body["name"])
        request.update(path=path, pathParameters={"name": body["name"]})
    response = module.lambda_handler(request, context)
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def relay_rule(action: str = "relay", **config: Any) -> dict[str, Any]:
    return {"name": "forward-orders", "match": {"type": "order."}, "action": action, "config": config}


def rule_names() -> list[str]:
    return sorted(
        rule["Name"] for rule in boto3.client("events", region_name=REGION).list_rules(EventBusName=BUS_NAME)["Rules"]
    )


@pytest.mark.parametrize(
    ("action", "url"),
    [
        ("relay", "https://10.0.0.1/hook"),
        ("relay", "https://169.254.169.254/latest/meta-data/"),
        ("relay", "https://127.0.0.1/hook"),
        ("relay", "https://[::1]/hook"),
        ("relay", "https://intranet.example.com/hook"),
        ("relay", "http://hooks.example.com/hook"),
        ("relay", "https://user:password@hooks.example.com/hook"),
        ("relay", "https://hooks.example.com:6379/hook"),
        ("relay", "https://nowhere.example.com/hook"),
        ("relay", "http://127.0.0.1:3001/hook"),
        ("relay.event", "https://[fd00::1]/prod/events"),
    ],
)
def test_a_relay_rule_with_a_refused_url_is_a_422_naming_config_url(
    rules: tuple[ModuleType, LambdaContext], action: str, url: str
) -> None:
    # GIVEN
    config: dict[str, Any] = {"url": url}
    if action == "relay.event":
        config["api_key_secret"] = "correlator/relay/hq-api-key"

    # WHEN
    status, body = call(rules, "rules-create", relay_rule(action, **config))

    # THEN
    assert status == 422, body
    assert body["code"] == "validation_error"
    assert [(detail["field"], detail["type"]) for detail in body["details"]] == [("config.url", "url_refused")]
    assert rule_names() == ["probe"]


def test_secret_names_outside_the_relay_prefix_and_reserved_headers_are_refused(
    rules: tuple[ModuleType, LambdaContext],
) -> None:
    # GIVEN
    rule = relay_rule(
        url="https://hooks.example.com/hook",
        secret_name="prod/database-password",
        headers={"Authorization": "Bearer x", "X-Rule-Chain": "0", "X-Team": "orders"},
    )

    # WHEN
    status, body = call(rules, "rules-create", rule)

    # THEN
    assert status == 422, body
    assert [(detail["field"], detail["type"]) for detail in body["details"]] == [
        ("config.secret_name", "secret_prefix"),
        ("config.headers.Authorization", "reserved_header"),
        ("config.headers.X-Rule-Chain", "reserved_header"),
    ]
    assert rule_names() == ["probe"]


@pytest.mark.parametrize(
    ("action", "config"),
    [
        (
            "relay",
            {
                "url": "https://hooks.example.com/hook",
                "secret_name": "correlator/relay/erp",
                "headers": {"X-Team": "o"},
            },
        ),
        ("relay", {"url": "http://127.0.0.1:3000/hook"}),
        ("relay.event", {"url": "https://other.example.com/prod/events", "api_key_secret": "correlator/relay/hq"}),
        ("relay.bus", {"bus_arn": "arn:aws:events:eu-west-1:210987654321:event-bus/audit"}),
    ],
)
def test_relay_rules_that_pass_the_guard_are_created(
    rules: tuple[ModuleType, LambdaContext], action: str, config: dict[str, Any]
) -> None:
    # GIVEN / WHEN
    status, body = call(rules, "rules-create", relay_rule(action, **config))

    # THEN
    assert status == 201, body
    assert body["config"].items() >= config.items()
    assert rule_names() == ["forward-orders", "probe"]


def test_replacing_a_relay_rule_with_a_private_url_is_refused(rules: tuple[ModuleType, LambdaContext]) -> None:
    # GIVEN
    status, _ = call(rules, "rules-create", relay_rule(url="https://hooks.example.com/hook"))
    assert status == 201

    # WHEN
    status, body = call(rules, "rules-update", relay_rule(url="https://169.254.169.254/latest/"))

    # THEN
    assert status == 422, body
    assert body["details"][0]["field"] == "config.url"
    status, stored = call(rules, "rules-get", relay_rule())
    assert stored["config"]["url"] == "https://hooks.example.com/hook"
