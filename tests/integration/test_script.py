"""The script function on moto: registered scripts, allow-listed Lambda functions, result events, retries."""

from __future__ import annotations

import io
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.response import StreamingBody
from botocore.stub import Stubber

from correlator.action import RetryLater
from correlator.rules import Rule
from functions.script.execution import ScriptRegistry, load_script_package
from local import moto_compat
from tests.conftest import fresh_import
from tests.notification_doubles import create_idempotency_table
from tests.probe import REGION, BusProbe
from tests.samples import load_event

SCRIPT_MODULE = "functions.script.app"
TABLE = "correlator-idempotency-test"
DATA_BUCKET = "correlator-data-test"
ALLOWED_ARN = "arn:aws:lambda:us-east-1:123456789012:function:erp-bridge"
OTHER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:anything-else"

TEST_SCRIPTS = {
    "__init__.py": "",
    "explode.py": "def run(event, args, context):\n    raise RuntimeError('kaput')\n",
    "picky.py": (
        "from functions.script.execution import ScriptInputError\n\n"
        "def run(event, args, context):\n    raise ScriptInputError('args.size must be a number')\n"
    ),
    "big.py": "def run(event, args, context):\n    return {'blob': 'x' * 40000}\n",
    "clock.py": "def run(event, args, context):\n    return {'remaining': context.remaining_seconds(), 'args': args}\n",
    "late.py": "def run(event, args, context):\n    context.check_deadline(needed=3600)\n",
    "listy.py": "def run(event, args, context):\n    return ['not', 'a', 'dict']\n",
    "quiet.py": "def run(event, args, context):\n    return None\n",
}


@pytest.fixture
def stack(aws: None, bus_probe: BusProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idempotency table and data bucket, and the function's environment."""
    moto_compat.apply()
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "script")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", TABLE)
    monkeypatch.setenv("DATA_BUCKET_NAME", DATA_BUCKET)
    monkeypatch.setenv("SCRIPT_FUNCTION_ARNS", f"{ALLOWED_ARN}, ")
    create_idempotency_table(TABLE)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=DATA_BUCKET)


@pytest.fixture
def app(stack: None) -> ModuleType:
    """``functions.script.app`` imported afresh inside moto (it builds its clients at import)."""
    return fresh_import(SCRIPT_MODULE)


@pytest.fixture
def context(lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch) -> LambdaContext:
    """A Lambda context with a minute left."""
    monkeypatch.setattr(lambda_context, "get_remaining_time_in_millis", lambda: 60_000)
    return lambda_context


@pytest.fixture
def test_scripts(app: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptRegistry]:
    """The runner's registry replaced by one over a package of test scripts."""
    directory = tmp_path / "test_scripts"
    directory.mkdir()
    for name, text in TEST_SCRIPTS.items():
        (directory / name).write_text(text)
    name = f"script_tests_{uuid.uuid4().hex}"
    registry = ScriptRegistry(load_script_package(directory, name))
    monkeypatch.setattr(app.runner.action, "registry", registry)
    yield registry
    for module in [module for module in sys.modules if module.startswith(name)]:
        del sys.modules[module]


def delivery(
    config: dict[str, Any] | None = None, *, action: str = "script", sample: str = "script-delivery"
) -> dict[str, Any]:
    """The sample delivery (enrich on a sales row), with another config and action."""
    message = load_event(f"eventbridge/{sample}")
    if config is not None:
        message["rule"]["config"] = config
    message["rule"]["action"] = action
    return message


def invoke(app: ModuleType, message: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The runner's one result for the delivery, without ``replayed``."""
    [result] = app.lambda_handler(message, context)["results"]
    return {key: value for key, value in result.items() if key != "replayed"}


def by_type(probe: BusProbe) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for detail in probe.drain_details():
        found.setdefault(detail["type"], []).append(detail)
    return found


# ---- registered scripts ----


def test_a_registered_script_runs_and_its_result_event_follows_the_event(app, context, bus_probe):
    # WHEN the sample delivery (the enrich script on a sales row) is handled
    outcome = invoke(app, delivery(), context)

    # THEN the script's event and the script result event are on the bus
    events = by_type(bus_probe)
    [enriched] = events["sale.enriched"]
    [result] = events["script"]
    # AND the result follows the triggering event: hops + 1, its request key and subject carried
    assert (result["object"], result["info"], result["level"]) == ("enrich", "ok", "INFO")
    assert (result["hops"], result["request_key"], result["subject"]) == (1, "Req_2001", "k7ab2cd9ef")
    assert (result["external"], result["system_id"]) == (False, "rule/enrich-sales")
    assert result["payload"] == {
        "result": {
            "event_id": enriched["id"],
            "type": "sale.enriched",
            "added": ["channel", "manager", "submitted_by"],
            "matched": True,
        },
        "truncated": False,
    }
    # AND the enriched event is the same dataset row with the new fields, one hop further
    assert enriched["payload"] == {
        "order_id": 1001,
        "region": "EU",
        "amount": -12.5,
        "note": 'refund, "damaged"',
        "channel": "web",
        "manager": "Ana",
        "submitted_by": "k7ab2cd9ef",
    }
    assert (enriched["kind"], enriched["dataset"], enriched["time"]) == ("dataset", "sales", "2026-11-22T14:52:39.778Z")
    assert (enriched["hops"], enriched["request_key"], enriched["external"]) == (1, "Req_2001", False)
    assert outcome == {"status": "ok", "info": "ok", "object": "enrich"}


def test_exec_is_an_alias_of_script(app, context, bus_probe):
    # WHEN the rule's action is Personium's "exec"
    invoke(app, delivery(action="exec"), context)

    # THEN the script runs and the result event is a "script" event
    events = by_type(bus_probe)
    assert [result["info"] for result in events["script"]] == ["ok"]
    assert "exec" not in events


def test_an_unknown_script_is_reported_and_not_retried(app, context, bus_probe):
    # WHEN a rule names a script that is not registered (a module that exists elsewhere)
    outcome = invoke(app, delivery({"script": "subprocess"}), context)

    # THEN the handler returns (no retry), and the result event says which scripts exist
    [result] = by_type(bus_probe)["script"]
    assert (result["object"], result["info"], result["level"]) == ("subprocess", "unknown_script", "ERROR")
    assert result["payload"]["registered"] == ["enrich", "summarise_dataset"]
    assert outcome["status"] == "rejected"
    assert "subprocess" not in {name.rsplit(".", 1)[-1] for name in sys.modules if name.startswith("functions.")}


def test_a_failing_script_is_reported_then_raised_for_a_retry(app, context, bus_probe, test_scripts):
    # WHEN a script raises
    with pytest.raises(RetryLater):
        invoke(app, delivery({"script": "explode"}), context)

    # THEN the error was reported first
    [result] = by_type(bus_probe)["script"]
    assert (result["info"], result["level"], result["hops"]) == ("script_error", "ERROR", 1)
    assert result["payload"]["error"] == "RuntimeError: kaput"

    # AND Lambda's retry runs it again (nothing was stored as done), reporting again
    with pytest.raises(RetryLater):
        invoke(app, delivery({"script": "explode"}), context)
    assert [r["info"] for r in by_type(bus_probe)["script"]] == ["script_error"]


@pytest.mark.parametrize(
    ("script", "info", "error"),
    [
        ("picky", "invalid_input", "ScriptInputError: args.size must be a number"),
        ("listy", "invalid_result", "run() returned list, not a dict"),
    ],
)
def test_permanent_script_errors_are_reported_and_not_retried(
    app, context, bus_probe, test_scripts, script: str, info: str, error: str
):
    # WHEN the script rejects its input, or returns something that is not a dict
    outcome = invoke(app, delivery({"script": script}), context)

    # THEN the error is reported and the handler returns
    [result] = by_type(bus_probe)["script"]
    assert (result["info"], result["payload"]["error"]) == (info, error)
    assert outcome["status"] == "rejected"


def test_a_script_returning_nothing_is_ok(app, context, bus_probe, test_scripts):
    invoke(app, delivery({"script": "quiet"}), context)
    [result] = by_type(bus_probe)["script"]
    assert (result["info"], result["payload"]) == ("ok", {"result": None, "truncated": False})


def test_a_large_result_is_truncated_with_a_flag(app, context, bus_probe, test_scripts):
    # WHEN a script returns more than 32 KB of JSON
    invoke(app, delivery({"script": "big"}), context)

    # THEN the result event carries a bounded preview, flagged, with the full size
    [result] = by_type(bus_probe)["script"]
    payload = result["payload"]
    assert (payload["truncated"], payload["result"], payload["result_bytes"]) == (True, None, 40_011)
    assert len(payload["preview"].encode()) == 32 * 1024
    assert payload["preview"].startswith('{"blob":"xxxx')


def test_the_script_gets_its_args_and_a_deadline_before_the_lambda_timeout(app, context, bus_probe, test_scripts):
    # WHEN a script reports the time it has (the invocation has 60 s left)
    invoke(app, delivery({"script": "clock", "args": {"limit": 3}}), context)

    # THEN its deadline keeps 2 s back to report the result
    [result] = by_type(bus_probe)["script"]
    assert 57.0 < result["payload"]["result"]["remaining"] <= 58.0
    assert result["payload"]["result"]["args"] == {"limit": 3}


def test_a_script_past_its_deadline_is_reported_and_retried(app, context, bus_probe, test_scripts):
    with pytest.raises(RetryLater):
        invoke(app, delivery({"script": "late"}), context)
    [result] = by_type(bus_probe)["script"]
    assert result["info"] == "deadline_exceeded"


def test_a_script_is_not_started_without_enough_time(app, lambda_context, bus_probe, monkeypatch):
    # GIVEN an invocation with 2.5 s left (less than the 2 s reserve + 1 s minimum run)
    monkeypatch.setattr(lambda_context, "get_remaining_time_in_millis", lambda: 2_500)

    # WHEN the enrich delivery is handled
    with pytest.raises(RetryLater):
        invoke(app, delivery(), lambda_context)

    # THEN the script did not run (no enriched event), and the result says why
    events = by_type(bus_probe)
    assert "sale.enriched" not in events
    [result] = events["script"]
    assert (result["info"], result["payload"]["error"]) == ("insufficient_time", "0.5 s left to run")


def test_a_redelivered_event_is_not_run_twice(app, context, bus_probe):
    # GIVEN the delivery was handled once
    first = invoke(app, delivery(), context)
    bus_probe.drain()

    # WHEN EventBridge delivers it again
    second = invoke(app, delivery(), context)

    # THEN the stored outcome is returned and nothing is emitted again
    assert second == first
    assert bus_probe.drain() == []


def test_a_delivery_that_does_not_parse_raises(app, context):
    # WHEN the function is invoked with something that is not a delivery
    # THEN it raises (Lambda retries, then the on-failure destination keeps it)
    with pytest.raises(ValueError):
        invoke(app, {"rule": {"name": "x", "action": "script"}, "event": {"detail": {}}}, context)


# ---- Lambda functions ----


def streaming(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


@pytest.fixture
def lambda_stub(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The runner's Lambda client, stubbed (moto's invoke does not run code without Docker)."""
    client = boto3.client("lambda", region_name=REGION)
    monkeypatch.setattr(app.runner.action, "lambda_client", client)
    with Stubber(client) as stubber:
        yield stubber


def test_an_allowed_function_is_invoked_with_the_rule_and_the_event(app, context, bus_probe, lambda_stub):
    # GIVEN a rule naming an allow-listed function, which answers with a JSON object
    message = delivery(sample="script-function-delivery")
    expected_payload = json.dumps(
        {"rule": Rule.model_validate(message["rule"]).to_json(), "event": message["event"]}, separators=(",", ":")
    ).encode()
    lambda_stub.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": streaming(b'{"accepted": 3}'), "ExecutedVersion": "$LATEST"},
        {"FunctionName": ALLOWED_ARN, "InvocationType": "RequestResponse", "Payload": expected_payload},
    )

    # WHEN the delivery is handled
    invoke(app, message, context)

    # THEN the function was invoked synchronously with {"rule", "event"} and its answer is the result
    lambda_stub.assert_no_pending_responses()
    [result] = by_type(bus_probe)["script"]
    assert (result["object"], result["info"], result["hops"]) == (ALLOWED_ARN, "ok", 1)
    assert result["payload"] == {"result": {"accepted": 3}, "truncated": False}


def test_a_function_that_fails_is_reported_then_retried(app, context, bus_probe, lambda_stub):
    # GIVEN the allow-listed function raises
    lambda_stub.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": streaming(b'{"errorMessage": "database down", "errorType": "RuntimeError"}'),
        },
    )

    # WHEN the delivery is handled
    with pytest.raises(RetryLater):
        invoke(app, delivery(sample="script-function-delivery"), context)

    # THEN its error was reported before the retry
    [result] = by_type(bus_probe)["script"]
    assert (result["info"], result["payload"]["error"]) == ("function_error", "RuntimeError: database down")


def test_a_function_that_cannot_be_found_is_not_retried(app, context, bus_probe, lambda_stub):
    lambda_stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found", 404)
    outcome = invoke(app, delivery(sample="script-function-delivery"), context)
    [result] = by_type(bus_probe)["script"]
    assert (result["info"], result["payload"]["code"], outcome["status"]) == (
        "invoke_failed",
        "ResourceNotFoundException",
        "rejected",
    )


def test_a_function_not_in_the_allow_list_is_never_invoked(app, context, bus_probe, lambda_stub):
    # GIVEN a rule naming a function that is not in ScriptFunctionArns (the stub expects no call)
    message = delivery({"function": OTHER_ARN}, sample="script-function-delivery")

    # WHEN it is handled
    outcome = invoke(app, message, context)

    # THEN it is refused without a call, reported, and not retried
    lambda_stub.assert_no_pending_responses()
    [result] = by_type(bus_probe)["script"]
    assert (result["object"], result["info"], result["level"]) == (OTHER_ARN, "function_not_allowed", "ERROR")
    assert outcome["status"] == "rejected"


def test_with_an_empty_allow_list_no_function_may_be_invoked(app, context, bus_probe, lambda_stub, monkeypatch):
    # GIVEN the stack's default: no ScriptFunctionArns
    monkeypatch.setattr(app.runner.action, "allowed_functions", frozenset())

    # WHEN a rule names a function
    invoke(app, delivery(sample="script-function-delivery"), context)

    # THEN it is refused
    [result] = by_type(bus_probe)["script"]
    assert result["info"] == "function_not_allowed"
