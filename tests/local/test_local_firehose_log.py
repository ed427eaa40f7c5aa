"""The local stack with ``EventLogDelivery=Firehose``: posted events reach the event log through Firehose and S3.

One stack start for the module: the log-everything rule puts each event on moto's Firehose stream
(``local.moto_compat``), moto writes it to the staging bucket, S3 notifies the staging queue, and the
log writer appends the staged records and deletes the objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.local.conftest import LocalStack, start_stack, stop_stack, wait_for

pytestmark = pytest.mark.slow

HEADERS = {"x-api-key": "local-dev-key", "content-type": "application/json", "x-request-key": "fh1"}


@pytest.fixture(scope="module")
def firehose_stack() -> Iterator[LocalStack]:
    running = start_stack({"CORRELATOR_PARAM_EventLogDelivery": "Firehose"})
    yield running
    stop_stack(running)


def test_posted_events_become_log_lines_through_firehose(firehose_stack: LocalStack) -> None:
    # GIVEN a stack whose log rule targets the Firehose stream
    stack = firehose_stack
    s3 = stack.client("s3")
    buckets = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    [staging] = [name for name in buckets if name.startswith("log-staging-")]
    [log_bucket] = [name for name in buckets if "logbucket" in name]

    # WHEN events are posted
    events = [{"type": "order.created", "object": f"orders/{index}"} for index in range(3)]
    response = stack.request("POST", "/events", json.dumps({"events": events}), HEADERS)
    assert response.status == 200, response.body

    # THEN each is one line in the event log, and the staged objects are gone
    def logged() -> list[str] | None:
        try:
            body = s3.get_object(Bucket=log_bucket, Key="logs/current/default.log")["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            return None
        lines = [line for line in body.splitlines() if '"fh1"' in line]
        return lines if len(lines) == 3 else None

    lines = wait_for(logged, 30, f"3 log lines via Firehose:\n{stack.logs()[-3000:]}")
    assert sorted(line.split(",")[7] for line in lines) == ['"orders/0"', '"orders/1"', '"orders/2"']
    wait_for(
        lambda: not s3.list_objects_v2(Bucket=staging, Prefix="staged/").get("KeyCount"),
        10,
        "staged objects deleted after their append",
    )
