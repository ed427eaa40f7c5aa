"""Functions run like Lambda execution environments on the running local stack (the wiring fixture).

The echo function (Timeout 1 s) reports each invocation, with its process id and start/finish
times, to the sink queue; ``?sleep=S`` makes an invocation last S seconds, ``?crash=1`` kills the
runtime mid-invocation.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest

from tests.local.conftest import LocalStack, Response, wait_for

pytestmark = pytest.mark.slow

STACK = "correlator"
DEV_KEY = {"x-api-key": "local-dev-key"}


def sink_reports(stack: LocalStack, marker: str) -> list[dict[str, Any]]:
    """The sink's reports of API invocations carrying ``marker`` in their path (others are left)."""
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{STACK}-SinkQueue")["QueueUrl"]
    found = []
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []):
        report = json.loads(message["Body"])
        if marker in json.dumps(report["event"].get("path", "")):
            found.append(report)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_two_slow_invocations_of_one_function_overlap(wiring_stack: LocalStack) -> None:
    # GIVEN two requests to a route whose invocation takes 0.6 s (the function's timeout is 1 s)
    marker = uuid.uuid4().hex
    responses: list[Response] = []

    def call(index: int) -> None:
        responses.append(wiring_stack.request("GET", f"/echo/{marker}-{index}?sleep=0.6"))

    # WHEN they are sent at the same time
    threads = [threading.Thread(target=call, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN both succeed, in two execution environments whose invocations overlapped in time
    assert [response.status for response in responses] == [201, 201]
    reports: list[dict[str, Any]] = []

    def both() -> bool:
        reports.extend(sink_reports(wiring_stack, marker))
        return len(reports) >= 2

    wait_for(both, 10, "no reports")
    first, second = sorted(reports, key=lambda report: report["started"])
    assert first["pid"] != second["pid"]
    assert second["started"] < first["finished"]


def test_a_crashing_handler_gets_a_502_and_the_stack_keeps_serving(wiring_stack: LocalStack) -> None:
    # GIVEN a request whose invocation kills the runtime
    # WHEN it is sent
    crashed = wiring_stack.request("GET", "/echo/crash?crash=1")

    # THEN API Gateway's 502 comes back, and the same route then works in a fresh environment
    assert (crashed.status, crashed.json()) == (502, {"message": "Internal server error"})
    after = wiring_stack.request("GET", "/echo/after-crash")
    assert after.status == 201
    assert wiring_stack.process.poll() is None


def test_a_handler_past_its_timeout_is_stopped_with_a_502(wiring_stack: LocalStack) -> None:
    # GIVEN a request whose invocation would take 5 s, with the function's timeout at 1 s
    marker = uuid.uuid4().hex

    # WHEN it is sent
    response = wiring_stack.request("GET", f"/echo/{marker}?sleep=5")

    # THEN the invocation is stopped (no report ever comes from it) and API Gateway answers 502
    assert (response.status, response.json()) == (502, {"message": "Internal server error"})
    assert wiring_stack.request("GET", "/echo/after-timeout").status == 201
    assert sink_reports(wiring_stack, marker) == []


def test_the_console_has_one_line_per_request_and_the_handlers_logs_go_to_a_file(stack: LocalStack) -> None:
    # GIVEN the stack of template.yaml, whose handlers log JSON with Powertools
    marker = uuid.uuid4().hex

    # WHEN an event is posted
    event = json.dumps({"type": "console.test", "object": marker})
    response = stack.request("POST", "/events", event, {"content-type": "application/json", **DEV_KEY})
    assert response.status == 200

    # AND one is refused (the reception logs a refusal at INFO; an accepted event only at DEBUG)
    refused = stack.request(
        "POST", "/events", json.dumps({"object": marker}), {"content-type": "application/json", **DEV_KEY}
    )
    assert refused.status >= 400

    # THEN the console has one readable line for it, and the handler's JSON log is in handlers.log instead
    lines = [line for line in stack.logs().splitlines() if "POST /events 200" in line]
    assert lines
    assert lines[-1].endswith("· 1 event  ReceptionFunction")
    assert '"level":' not in stack.logs()
    handlers_log = stack.state_dir / "handlers.log"
    wait_for(lambda: '"level":' in handlers_log.read_text(), 10, f"no handler log line in {handlers_log}")
