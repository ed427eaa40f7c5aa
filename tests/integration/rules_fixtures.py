"""Shared pieces of the rule tests on moto: the queues rules deliver to, and reading them back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from correlator.compiler import Deployment
from local.template import load_yaml
from tests.probe import BUS_NAME, REGION

ACCOUNT = "123456789012"
BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS_NAME}"
SCHEDULE_GROUP = "correlator-test-timers"
SCHEDULER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/correlator-test-timer-scheduler"
LOG_ACTIONS = ("log", "log.info", "log.warn", "log.error")


@dataclass
class Queue:
    """An SQS queue in moto, readable as JSON bodies."""

    url: str
    arn: str
    sqs: Any

    def drain(self) -> list[dict[str, Any]]:
        """Every message body (parsed) delivered so far, oldest first; removes them from the queue."""
        received: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


def create_queue(name: str) -> Queue:
    """A fresh SQS queue (moto)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url=url, arn=arn, sqs=sqs)


@dataclass
class RuleTargets:
    """Where compiled rules point in the tests: every log action to one queue, failures to a DLQ."""

    log_queue: Queue
    dead_letters: Queue

    @property
    def action_targets(self) -> dict[str, str]:
        return dict.fromkeys(LOG_ACTIONS, self.log_queue.arn)

    def deployment(self, max_hops: int = 3) -> Deployment:
        return Deployment(
            bus_name=BUS_NAME,
            max_hops=max_hops,
            targets=self.action_targets,
            dead_letter_arn=self.dead_letters.arn,
        )


def create_rule_targets() -> RuleTargets:
    """The log queue and the rule-target DLQ (the bus itself comes from the ``bus_probe`` fixture)."""
    return RuleTargets(log_queue=create_queue("correlator-test-log"), dead_letters=create_queue("correlator-test-dlq"))


# ---- template.yaml's rule, declared on the bus the way CloudFormation would ----

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def template_resource(logical_id: str) -> dict[str, Any]:
    """The ``Properties`` of one resource of template.yaml."""
    loaded = load_yaml(TEMPLATE.read_text(encoding="utf-8"))
    properties: dict[str, Any] = loaded["Resources"][logical_id]["Properties"]
    return properties


def declare_template_rule(events: Any, targets: RuleTargets, logical_id: str = "LogEverythingRule") -> str:
    """Put a rule of template.yaml on the test bus as CloudFormation would (its queue: the log queue)."""
    properties = template_resource(logical_id)
    name: str = properties["Name"]
    events.put_rule(
        Name=name,
        EventBusName=BUS_NAME,
        EventPattern=json.dumps(properties["EventPattern"]),
        State=properties["State"],
        Description=properties["Description"],
    )
    declared = []
    for target in properties["Targets"]:
        # As deployed with the default EventLogDelivery=Queue: the log queue and no RoleArn (Fn::If gives AWS::NoValue).
        target = {key: value for key, value in target.items() if key != "RoleArn"}
        declared.append(
            {
                **target,
                "Arn": targets.log_queue.arn,
                "DeadLetterConfig": {"Arn": targets.dead_letters.arn},
            }
        )
    events.put_targets(Rule=name, EventBusName=BUS_NAME, Targets=declared)
    return name
