"""A probe on the test bus: an SQS queue behind a rule matching every Correlator event (moto)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

BUS_NAME = "correlator-test"
REGION = "us-east-1"
EVERY_CORRELATOR_EVENT = {"source": ["correlator.external", "correlator.internal"]}


@dataclass
class BusProbe:
    """Reads back what EventBridge delivered to the probe's queue."""

    bus_name: str
    queue_url: str
    sqs: Any

    def drain(self) -> list[dict[str, Any]]:
        """Every EventBridge event delivered so far (parsed), oldest first; removes them from the queue."""
        received: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def drain_details(self) -> list[dict[str, Any]]:
        """The ``detail`` (the stamped Correlator event) of every delivered event."""
        return [event["detail"] for event in self.drain()]


def create_bus_probe(bus_name: str = BUS_NAME) -> BusProbe:
    """Create the bus, a queue and a rule routing every external and internal event to the queue."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=bus_name)
    queue_url = sqs.create_queue(QueueName=f"{bus_name}-probe")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="probe", EventBusName=bus_name, EventPattern=json.dumps(EVERY_CORRELATOR_EVENT))
    events.put_targets(Rule="probe", EventBusName=bus_name, Targets=[{"Id": "probe-queue", "Arn": queue_arn}])
    return BusProbe(bus_name=bus_name, queue_url=queue_url, sqs=sqs)
