"""Relays on the local stack of template.yaml: to itself up to the hop limit, never to the embedded AWS endpoint."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.local.conftest import ADMIN_KEY, LocalStack, create_rule, wait_for

pytestmark = pytest.mark.slow

BUS = "correlator"
JSON = {"content-type": "application/json"}
DEV_KEY = {"x-api-key": "local-dev-key"}
MAX_HOPS = 3  # the template's MaxHops default


def bus_probe(stack: LocalStack, name: str, pattern: dict[str, Any]) -> tuple[Any, str]:
    """A queue behind a rule on the stack's bus: every event matching ``pattern``, as delivered."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "probe", "Arn": arn}])
    return sqs, url


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    received = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return received


def test_a_relay_event_rule_to_the_stack_itself_stops_at_the_hop_limit(stack: LocalStack, rules: list[str]) -> None:
    # GIVEN a relay.event rule that sends its events back to this stack's own /events (with the API key
    # from a secret), and a probe of every event of that type on the bus
    suffix = uuid.uuid4().hex[:8]
    event_type = f"relay.selfloop.{suffix}"  # already relay.-prefixed, so relaying keeps the type
    secret = f"correlator/relay/self-{suffix}"
    stack.client("secretsmanager").create_secret(Name=secret, SecretString="local-dev-key")
    config = {"url": f"{stack.url}/events", "api_key_secret": secret}
    rule = {"name": f"self-{suffix}", "action": "relay.event", "match": {"type": event_type}, "config": config}
    create_rule(stack, rules, rule)
    sqs, url = bus_probe(stack, f"selfloop-{suffix}", {"detail": {"type": [event_type]}})

    # WHEN one event of that type is posted
    response = stack.request(
        "POST", "/events", json.dumps({"type": event_type, "object": "loop/1"}), {**JSON, **DEV_KEY}
    )
    assert response.status == 200, response.body

    # THEN it comes back once per hop, up to the hop limit and no further, while the API keeps answering
    seen: list[dict[str, Any]] = []
    slowest = 0.0

    def reached_the_limit() -> bool:
        nonlocal slowest
        started = time.monotonic()
        assert stack.request("GET", "/rules", headers=ADMIN_KEY).status == 200
        slowest = max(slowest, time.monotonic() - started)
        seen.extend(drain(sqs, url))
        return any(event["detail"]["hops"] >= MAX_HOPS for event in seen)

    wait_for(reached_the_limit, 60, f"the loop did not reach hop {MAX_HOPS}:\n{stack.logs()[-3000:]}")
    time.sleep(3)  # time enough for a further hop, if there were one
    seen.extend(drain(sqs, url))
    assert sorted(event["detail"]["hops"] for event in seen) == list(range(MAX_HOPS + 1))
    assert slowest < 2.0, f"the API took {slowest:.1f} s to answer during the loop"


@pytest.mark.parametrize("target", ["moto", "other"])
def test_a_relay_to_the_embedded_aws_or_another_local_port_is_refused(
    stack: LocalStack, rules: list[str], target: str
) -> None:
    # GIVEN a relay rule to moto's reset endpoint, or to a local port nobody allowed
    suffix = uuid.uuid4().hex[:8]
    port = stack.moto_port if target == "moto" else 1
    rule = {
        "name": f"evil-{suffix}",
        "action": "relay",
        "match": {"type": "anything"},
        "config": {"url": f"http://127.0.0.1:{port}/moto-api/reset"},
    }

    # WHEN it is created through the rules API
    response = stack.request("POST", "/rules", json.dumps(rule), {**JSON, **ADMIN_KEY})

    # THEN it is refused, no rule exists, and the stack's resources are intact
    assert response.status in (400, 422), response.body
    assert stack.request("GET", f"/rules/evil-{suffix}", headers=ADMIN_KEY).status == 404
    assert stack.client("events").describe_event_bus(Name=BUS)["Name"] == BUS
