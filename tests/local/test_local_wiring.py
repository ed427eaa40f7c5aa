"""The runner's wiring, on tests/local/fixtures/template.yaml: rules, an SQS mapping and routes -> one echo function.

The echo function reports every invocation (event, context, environment) to the template's sink
queue, so each test sees exactly what the handler received.
"""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.local.conftest import LocalStack, wait_for

pytestmark = pytest.mark.slow

STACK = "correlator"
BUS = f"{STACK}-wiring"
FUNCTION_NAME = f"{STACK}-EchoFunction"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"
FUNCTION_QUEUE = f"{STACK}-local-EchoFunction"


@dataclass
class Sink:
    """The reports of the echo function, collected as they arrive."""

    stack: LocalStack
    reports: list[dict[str, Any]] = field(default_factory=list)

    def collect(self) -> None:
        sqs = self.stack.client("sqs")
        url = sqs.get_queue_url(QueueName=f"{STACK}-SinkQueue")["QueueUrl"]
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self.reports.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def wait(self, match: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 8) -> list[dict[str, Any]]:
        def found() -> list[dict[str, Any]]:
            self.collect()
            matching = [report for report in self.reports if match(report)]
            return matching if len(matching) >= count else []

        return list(wait_for(found, timeout, f"expected {count} matching reports, got:\n{self.reports}"))


@pytest.fixture(scope="module")
def sink(wiring_stack: LocalStack) -> Sink:
    return Sink(wiring_stack)


def put_event(stack: LocalStack, source: str, detail: dict[str, Any]) -> None:
    response = stack.client("events").put_events(
        Entries=[{"Source": source, "DetailType": "wiring.test", "Detail": json.dumps(detail), "EventBusName": BUS}]
    )
    assert response["FailedEntryCount"] == 0, response


def marked(marker: str) -> Callable[[dict[str, Any]], bool]:
    return lambda report: marker in json.dumps(report["event"])


def queue_messages(stack: LocalStack, name: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []))


def test_a_template_rule_with_an_input_transformer_invokes_its_function(wiring_stack: LocalStack, sink: Sink) -> None:
    # GIVEN a template rule whose target is the function, with an InputTransformer
    marker = uuid.uuid4().hex

    # WHEN a matching event is put on the bus
    put_event(wiring_stack, "wiring.transformed", {"marker": marker})

    # THEN the function receives the transformer's output, under its own environment and context
    (report,) = sink.wait(marked(marker))
    assert report["event"]["via"] == "transformer"
    assert report["event"]["event"]["detail"] == {"marker": marker}
    assert (report["function"], report["arn"], report["memory"]) == (FUNCTION_NAME, FUNCTION_ARN, 128)
    assert report["greeting"] == "hi"  # CORRELATOR_PARAM_Greeting overrides the Default
    assert report["service"] == "echo"
    assert 0 < report["remaining_ms"] <= 1000


def test_an_eventbridge_rule_event_of_a_function_delivers_the_whole_event(wiring_stack: LocalStack, sink: Sink) -> None:
    # GIVEN the function's EventBridgeRule event (pattern: source wiring.direct)
    marker = uuid.uuid4().hex

    # WHEN a matching event is put on the bus
    put_event(wiring_stack, "wiring.direct", {"marker": marker})

    # THEN the function receives the EventBridge event itself
    (report,) = sink.wait(marked(marker))
    assert report["event"]["source"] == "wiring.direct"
    assert report["event"]["detail"] == {"marker": marker}


def test_a_sam_schedule_event_is_a_scheduled_rule_on_the_default_bus_targeting_the_function(
    wiring_stack: LocalStack,
) -> None:
    # GIVEN the function's Schedule event (SAM: an AWS::Events::Rule with a ScheduleExpression)
    events = wiring_stack.client("events")

    # WHEN the stack has provisioned it
    rule = events.describe_rule(Name="wiring-nightly")
    (target,) = events.list_targets_by_rule(Rule="wiring-nightly")["Targets"]

    # THEN it is a scheduled rule calling the function with the event's Input (local.scheduler fires it)
    assert (rule["ScheduleExpression"], rule["State"]) == ("cron(0 3 * * ? *)", "ENABLED")
    assert (target["Arn"], json.loads(target["Input"])) == (FUNCTION_ARN, {"via": "schedule"})
    assert "Nightly (Schedule)" not in wiring_stack.logs()


def test_a_rule_created_at_run_time_with_a_function_arn_delivers_from_its_first_event(
    wiring_stack: LocalStack, sink: Sink
) -> None:
    # GIVEN a rule created at run time (as the rules API does) with the function's ARN as its target
    events = wiring_stack.client("events")
    events.put_rule(Name="runtime-rule", EventBusName=BUS, EventPattern=json.dumps({"source": ["wiring.runtime"]}))
    events.put_targets(
        Rule="runtime-rule",
        EventBusName=BUS,
        Targets=[
            {
                "Id": "fn",
                "Arn": FUNCTION_ARN,
                "InputTransformer": {"InputTemplate": '{"wrapped": <aws.events.event.json>}'},
            }
        ],
    )

    # WHEN a matching event is put right away (no waiting for any background sync)
    marker = uuid.uuid4().hex
    put_event(wiring_stack, "wiring.runtime", {"marker": marker})

    # THEN the function gets it through the InputTransformer, and the rule still names the function, as on AWS
    (report,) = sink.wait(marked(marker))
    assert report["event"]["wrapped"]["detail"] == {"marker": marker}
    (target,) = events.list_targets_by_rule(Rule="runtime-rule", EventBusName=BUS)["Targets"]
    assert (target["Id"], target["Arn"]) == ("fn", FUNCTION_ARN)


def test_a_disabled_rule_does_not_deliver(wiring_stack: LocalStack, sink: Sink) -> None:
    # GIVEN a disabled rule targeting the function, and an enabled one as a witness
    events = wiring_stack.client("events")
    for name, state in (("disabled-rule", "DISABLED"), ("witness-rule", "ENABLED")):
        events.put_rule(
            Name=name,
            EventBusName=BUS,
            State=state,
            EventPattern=json.dumps({"source": ["wiring.state"], "detail": {"rule": [name]}}),
        )
        events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "fn", "Arn": FUNCTION_ARN}])

    # WHEN an event for each is put, the disabled rule's first
    silent, heard = uuid.uuid4().hex, uuid.uuid4().hex
    put_event(wiring_stack, "wiring.state", {"marker": silent, "rule": "disabled-rule"})
    put_event(wiring_stack, "wiring.state", {"marker": heard, "rule": "witness-rule"})

    # THEN only the enabled rule delivers (once the witness arrived, the other had its chance)
    sink.wait(marked(heard))
    sink.collect()
    assert [report for report in sink.reports if marked(silent)(report)] == []


def test_a_failing_asynchronous_invocation_is_retried_then_dead_lettered(wiring_stack: LocalStack, sink: Sink) -> None:
    # GIVEN an event that makes the function raise
    marker = uuid.uuid4().hex

    # WHEN it is delivered to the function
    put_event(wiring_stack, "wiring.direct", {"marker": marker, "raise": True})

    # THEN the function is tried three times (timeout 1 s between), then the event lands in the local DLQ
    assert len(sink.wait(marked(marker), count=3, timeout=10)) == 3
    dead = wait_for(
        lambda: [m for m in queue_messages(wiring_stack, f"{FUNCTION_QUEUE}-dlq") if marker in m["Body"]],
        5,
        "the failing event did not reach the function queue's DLQ",
    )
    assert json.loads(dead[0]["Body"])["detail"]["marker"] == marker


def test_an_sqs_mapping_delivers_batches_and_keeps_reported_failures(wiring_stack: LocalStack, sink: Sink) -> None:
    # GIVEN the work queue (SQS event of the function, ReportBatchItemFailures) and three messages, one failing
    sqs = wiring_stack.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{STACK}-WorkQueue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    marker = uuid.uuid4().hex
    attribute = {"origin": {"DataType": "String", "StringValue": "test"}}

    # WHEN they are sent
    for number in range(3):
        body = json.dumps({"marker": marker, "number": number, "fail": number == 1})
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attribute)

    # THEN the function gets them as Lambda SQS records
    def records() -> list[dict[str, Any]]:
        sink.collect()
        found = [r for report in sink.reports if "Records" in report["event"] for r in report["event"]["Records"]]
        return [r for r in found if marker in r["body"]]

    first = wait_for(
        lambda: len({json.loads(r["body"])["number"] for r in records()}) == 3 and records(), 8, "no records"
    )
    record = first[0]
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", arn, "us-east-1")
    assert record["messageAttributes"]["origin"]["stringValue"] == "test"
    assert {"messageId", "receiptHandle", "md5OfBody", "attributes"} <= record.keys()
    assert "ApproximateReceiveCount" in record["attributes"]
    # AND only the reported failure is redelivered, until the queue's redrive moves it to its DLQ
    dead = wait_for(
        lambda: [m for m in queue_messages(wiring_stack, f"{STACK}-WorkDeadLetterQueue") if marker in m["Body"]],
        20,
        "the failing record did not reach the work queue's DLQ",
    )
    assert [json.loads(m["Body"])["number"] for m in dead] == [1]
    numbers = [json.loads(r["body"])["number"] for r in records()]
    assert numbers.count(0) == numbers.count(2) == 1
    assert numbers.count(1) == 2


def test_a_route_gets_an_api_gateway_proxy_event(wiring_stack: LocalStack) -> None:
    # GIVEN a route with a path parameter on an Api with a stage and stage variables
    connection = http.client.HTTPConnection("127.0.0.1", wiring_stack.port, timeout=10)

    # WHEN it is called with a repeated query parameter and a repeated header
    connection.putrequest("GET", "/echo/bob%20smith?a=1&a=2&b=")
    connection.putheader("X-Twice", "one")
    connection.putheader("X-Twice", "two")
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()

    # THEN the handler's status, headers and body come back, and it saw a REST proxy event
    assert response.status == 201
    assert response.getheader("Content-Type") == "application/json"
    assert response.msg.get_all("X-Multi") == ["a", "b"]
    event = json.loads(body)
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/echo/{name}", "/echo/bob smith", "GET")
    assert event["pathParameters"] == {"name": "bob smith"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["X-Twice"] == "two"
    assert event["multiValueHeaders"]["X-Twice"] == ["one", "two"]
    assert event["stageVariables"] == {"flavour": "local"}
    assert event["body"] is None
    context = event["requestContext"]
    assert (context["stage"], context["path"], context["resourcePath"]) == (
        "test",
        "/test/echo/bob smith",
        "/echo/{name}",
    )
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["apiKey"] is None


def test_a_binary_body_is_passed_base64_encoded_to_a_greedy_route(wiring_stack: LocalStack) -> None:
    # GIVEN a {proxy+} route and a binary media type declared on the Api
    payload = bytes(range(256))

    # WHEN a binary body is posted under it
    response = wiring_stack.request("POST", "/files/a/b/c.bin", payload, {"content-type": "application/octet-stream"})

    # THEN the handler gets the greedy parameter and the body base64-encoded
    assert response.status == 201
    event = response.json()
    assert event["pathParameters"] == {"proxy": "a/b/c.bin"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
