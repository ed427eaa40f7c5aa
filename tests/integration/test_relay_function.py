"""functions/relay/app.py: the handler EventBridge invokes with a delivery, wired from its environment."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.action import RetryLater
from tests.conftest import fresh_import
from tests.integration.relay_fixtures import SELF_URL, TABLE, create_backing_resources, signature_of
from tests.probe import REGION, BusProbe, create_bus_probe
from tests.relay_doubles import RecordingServer, Reply, running
from tests.samples import load_event

RELAY_MODULE = "functions.relay.app"


class InvocationContext(LambdaContext):
    """A Lambda context with 30 s left (the relay function's timeout)."""

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return 30_000


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with running(RecordingServer()) as started:
        yield started


@pytest.fixture
def context(lambda_context: LambdaContext) -> LambdaContext:
    invocation = InvocationContext()
    invocation.__dict__.update(lambda_context.__dict__)
    invocation._function_name = "correlator-relay"
    return invocation


@pytest.fixture
def relay(bus_probe: BusProbe, server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``functions.relay.app`` imported inside moto with the environment of the snippet's RelayFunction."""
    create_backing_resources()
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "relay")
    monkeypatch.setenv("RELAY_ALLOWED_HOSTS", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("RELAY_SECRET_PREFIX", "correlator/relay/")
    monkeypatch.setenv("CORRELATOR_URL", SELF_URL)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", TABLE)
    return fresh_import(RELAY_MODULE)


def sample(name: str, **config: str) -> dict[str, object]:
    delivery = load_event(f"eventbridge/{name}")
    delivery["rule"]["config"].update(config)
    return delivery


def test_the_handler_relays_the_sample_delivery_once(
    relay: ModuleType, server: RecordingServer, context: LambdaContext, bus_probe: BusProbe
) -> None:
    # GIVEN the sample relay delivery, pointed at the local server
    delivery = sample("relay-delivery", url=server.url("/hooks/correlator"))

    # WHEN EventBridge invokes the function, and (at-least-once) again
    first = relay.lambda_handler(delivery, context)
    second = relay.lambda_handler(delivery, context)

    # THEN one signed POST, one result event
    [received] = server.requests
    assert received.header("X-Correlator-Signature") == signature_of(received.body)
    assert received.header("X-Via") == SELF_URL
    expected = {"status": "delivered", "info": "200", "object": server.url("/hooks/correlator")}
    assert first == {"results": [{**expected, "replayed": False}]}
    assert second == {"results": [{**expected, "replayed": True}]}
    [result] = [detail for detail in bus_probe.drain_details() if not detail["external"]]
    assert (result["type"], result["info"], result["hops"]) == ("relay", "200", 1)
    # AND the idempotency record is in the table the template declares
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    assert [item["status"]["S"] for item in items] == ["COMPLETED"]
    assert items[0]["id"]["S"].startswith("relay#")


def test_the_handler_raises_for_lambda_to_retry_when_the_target_keeps_failing(
    relay: ModuleType, server: RecordingServer, context: LambdaContext
) -> None:
    # GIVEN a target answering 503 (retry immediately)
    server.default = Reply(503, {"Retry-After": "0"})

    # WHEN / THEN
    with pytest.raises(RetryLater):
        relay.lambda_handler(sample("relay-delivery", url=server.url()), context)
    assert len(server.requests) == 3
    assert boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"] == []


def test_the_handler_relays_to_another_bus(relay: ModuleType, context: LambdaContext) -> None:
    # GIVEN
    audit = create_bus_probe("correlator-audit")
    arn = boto3.client("events", region_name=REGION).describe_event_bus(Name="correlator-audit")["Arn"]

    # WHEN
    result = relay.lambda_handler(sample("relay-bus-delivery", bus_arn=arn), context)

    # THEN
    assert result["results"][0]["info"] == "accepted"
    [delivered] = audit.drain()
    assert delivered["detail"]["hops"] == 2


def test_the_handler_refuses_what_is_not_a_delivery(relay: ModuleType, context: LambdaContext) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="delivery"):
        relay.lambda_handler({"detail": {}}, context)
