"""The SMS action on moto with a fake Twilio: the exact form, segments, retries, permanent errors, dry run."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext
from twilio.base.exceptions import TwilioRestException

from correlator.action import ActionRunner, RetryLater
from correlator.idempotency import OncePerKey
from correlator.intent import IntentRecords
from correlator.internal import InternalEventEmitter
from correlator.publisher import EventPublisher
from correlator.twilio_credentials import SmsConfigurationError
from functions.sms.sms import SmsAction, TwilioSender
from functions.templating.templating import TemplateRenderer
from tests.conftest import fresh_import
from tests.notification_doubles import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    IDEMPOTENCY_TABLE,
    MESSAGING_SERVICE_SID,
    TWILIO_SECRET,
    FakeTwilio,
    create_idempotency_table,
    created,
    idempotency_records,
    twilio_error,
    twilio_secret,
)
from tests.probe import BUS_NAME, REGION, BusProbe
from tests.samples import load_event

SMS_MODULE = "functions.sms.app"
TEMPLATES = Path(__file__).resolve().parents[2] / "functions" / "sms" / "templates"
DELIVERY = "eventbridge/sms-delivery"
FIRST, SECOND = "+447700900123", "+15005550006"
MESSAGES_URI = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
EXPECTED_BODY = "[ERROR] Payment for order 1001 failed (orders/1001)\ncard_declined"


@dataclass
class SmsStack:
    """The SMS action wired as the function wires it, with a fake Twilio and a recorded sleep."""

    twilio: FakeTwilio
    runner: ActionRunner
    bus_probe: BusProbe
    sleeps: list[float] = field(default_factory=list)

    def handle(self, delivery: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], bool]]:
        """The result per recipient (one for a dry run or a template error) and whether each was a replay."""
        response = self.runner.handle(delivery or load_event(DELIVERY), LambdaContext())
        return [({k: v for k, v in r.items() if k != "replayed"}, r["replayed"]) for r in response["results"]]

    def results(self) -> list[dict[str, Any]]:
        return [detail for detail in self.bus_probe.drain_details() if detail["type"] == "sms"]


def put_secret(value: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=TWILIO_SECRET, SecretString=value)


def build_stack(
    bus_probe: BusProbe, twilio: FakeTwilio, *, intents: bool = True, feedback_url: str | None = None
) -> SmsStack:
    sleeps: list[float] = []
    sender = TwilioSender(
        TWILIO_SECRET,
        secrets=SecretsProvider(boto3_client=boto3.client("secretsmanager", region_name=REGION)),
        http_client=twilio,
        sleep=sleeps.append,
    )
    action = SmsAction(renderer=TemplateRenderer(TEMPLATES), sender=sender, feedback_url=feedback_url)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    runner = ActionRunner(
        action,
        steps=[IntentRecords(IDEMPOTENCY_TABLE, action="sms", reconcile=action.reconcile, client=dynamodb)]
        if intents
        else [],
        emitter=InternalEventEmitter(EventPublisher(boto3.client("events", region_name=REGION), BUS_NAME)),
        metrics=Metrics(),
        log=Logger(service="sms"),
        once=OncePerKey(IDEMPOTENCY_TABLE, key_prefix="sms", client=boto3.client("dynamodb", region_name=REGION)),
    )
    return SmsStack(twilio, runner, bus_probe, sleeps)


@pytest.fixture
def stack(bus_probe: BusProbe) -> SmsStack:
    create_idempotency_table()
    put_secret(twilio_secret())
    return build_stack(bus_probe, FakeTwilio())


def with_config(**config: Any) -> dict[str, Any]:
    message = load_event(DELIVERY)
    message["rule"]["config"] = {"to": [FIRST], **config}
    return message


# ---- the request Twilio receives ----


def test_with_a_feedback_url_each_message_asks_twilio_for_signed_status_callbacks(bus_probe: BusProbe) -> None:
    # GIVEN the action configured with the stack's public URL
    create_idempotency_table()
    put_secret(twilio_secret())
    stack = build_stack(bus_probe, FakeTwilio(), feedback_url="https://events.example.com/prod")

    # WHEN
    stack.handle(with_config(template="default"))

    # THEN the callback URL names the rule, the event, the result's hops and the request key
    event = load_event(DELIVERY)["event"]["detail"]
    [form] = stack.twilio.forms
    assert form["StatusCallback"] == (
        f"https://events.example.com/prod/feedback/twilio/page-on-call.{event['id']}.1.{event['request_key']}"
    )


def test_each_recipient_gets_the_exact_form_and_a_result_event(stack: SmsStack) -> None:
    # GIVEN the sample delivery: two numbers, the default template
    # WHEN
    outcomes = stack.handle()

    # THEN one POST per number to the account's Messages resource, with the account's credentials
    assert [request["method"] for request in stack.twilio.requests] == ["POST", "POST"]
    assert {request["uri"] for request in stack.twilio.requests} == {MESSAGES_URI}
    assert {request["auth"] for request in stack.twilio.requests} == {(ACCOUNT_SID, AUTH_TOKEN)}
    assert stack.twilio.forms == [
        {"To": FIRST, "From": FROM_NUMBER, "Body": EXPECTED_BODY},
        {"To": SECOND, "From": FROM_NUMBER, "Body": EXPECTED_BODY},
    ]
    # AND a result event per recipient: object the message SID, the number masked in the payload
    sids = [f"SM{1:032x}", f"SM{2:032x}"]
    assert [result for result, _ in outcomes] == [{"status": "sent", "info": "sent", "object": sid} for sid in sids]
    results = stack.results()
    assert [(r["object"], r["info"], r["level"], r["hops"]) for r in results] == [
        (sid, "sent", "INFO", 1) for sid in sids
    ]
    assert [r["payload"]["to"] for r in results] == ["+44*******123", "+15******006"]
    assert results[0]["payload"] | {"to": "-"} == {"to": "-", "encoding": "GSM-7", "segments": 1, "truncated": False}
    assert all(r["system_id"] == "rule/page-on-call" and r["request_key"] == "Req_2002" for r in results)


def test_a_messaging_service_sends_instead_of_a_from_number(bus_probe: BusProbe) -> None:
    # GIVEN credentials naming a messaging service
    create_idempotency_table()
    put_secret(twilio_secret(**{"from": None, "messaging_service_sid": MESSAGING_SERVICE_SID}))
    stack = build_stack(bus_probe, FakeTwilio())

    # WHEN
    stack.handle(with_config(body="hello"))

    # THEN
    assert stack.twilio.forms == [{"To": FIRST, "MessagingServiceSid": MESSAGING_SERVICE_SID, "Body": "hello"}]


def test_a_long_gsm_body_is_cut_to_max_segments_with_three_dots(stack: SmsStack) -> None:
    # GIVEN a body of 500 GSM-7 characters with extension characters, at most 2 segments
    delivery = with_config(body="${'{x} ' * 125}", max_segments=2)

    # WHEN
    stack.handle(delivery)

    # THEN 2 x 153 septets: 76 "{x} " units (6 septets each: { and } count twice) make 456... cut earlier
    [form] = stack.twilio.forms
    body = form["Body"]
    assert body.endswith("...")
    assert body.startswith("{x} {x}")
    septets = sum(2 if char in "{}" else 1 for char in body)
    assert 300 <= septets <= 306
    [result] = stack.results()
    assert result["payload"]["encoding"] == "GSM-7"
    assert (result["payload"]["segments"], result["payload"]["truncated"]) == (2, True)


def test_a_long_ucs2_body_is_cut_to_max_segments_with_an_ellipsis(stack: SmsStack) -> None:
    # GIVEN a body of 300 CJK characters (UCS-2), at most 3 segments (3 x 67 units)
    delivery = with_config(body="${'日' * 300}", max_segments=3)

    # WHEN
    stack.handle(delivery)

    # THEN
    [form] = stack.twilio.forms
    assert form["Body"] == "日" * 200 + "…"
    [result] = stack.results()
    assert result["payload"] == {"to": "+44*******123", "encoding": "UCS-2", "segments": 3, "truncated": True}


# ---- retries and failures ----


def test_429_then_201_sends_one_message_after_retry_after(stack: SmsStack) -> None:
    # GIVEN Twilio throttling the first request
    stack.twilio.responses = [twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "2"})]

    # WHEN
    outcomes = stack.handle(with_config(body="hi"))

    # THEN retried once, after the time Twilio asked for; one message, one result
    assert len(stack.twilio.requests) == 2
    assert stack.sleeps == [2.0]
    assert [result["status"] for result, _ in outcomes] == ["sent"]
    assert [r["info"] for r in stack.results()] == ["sent"]


def test_5xx_is_retried_with_backoff(stack: SmsStack) -> None:
    # GIVEN two server errors, then success
    stack.twilio.responses = [twilio_error(503, 20503, "unavailable"), twilio_error(500, 20500, "oops")]

    # WHEN
    stack.handle(with_config(body="hi"))

    # THEN
    assert len(stack.twilio.requests) == 3
    assert len(stack.sleeps) == 2
    assert 0.25 <= stack.sleeps[0] <= 0.5
    assert 0.5 <= stack.sleeps[1] <= 1.0


def test_persistent_throttling_raises_and_the_retry_sends_once(stack: SmsStack) -> None:
    # GIVEN Twilio answering 429 to every attempt of the first invocation
    stack.twilio.responses = [twilio_error(429, 20429, "Too Many Requests")] * 3

    # WHEN
    with pytest.raises(RetryLater) as raised:
        stack.handle(with_config(body="hi"))

    # THEN raised (Lambda retries the invocation), nothing reported or remembered
    assert isinstance(raised.value.__cause__, TwilioRestException)
    assert raised.value.__cause__.status == 429
    assert len(stack.twilio.requests) == 3
    assert stack.results() == []
    assert idempotency_records() == []
    # AND Lambda's retry sends it once
    stack.handle(with_config(body="hi"))
    assert len(stack.twilio.forms) == 4  # one more POST (and the look-up of what Twilio has: nothing)
    assert [r["info"] for r in stack.results()] == ["sent"]


def test_a_retry_after_beyond_the_limit_is_left_to_lambda(stack: SmsStack) -> None:
    # GIVEN Twilio asking to wait a minute
    stack.twilio.responses = [twilio_error(429, 20429, "slow down", {"Retry-After": "60"})]

    # WHEN / THEN no sleep in the function: raised at once
    with pytest.raises(RetryLater):
        stack.handle(with_config(body="hi"))
    assert stack.sleeps == []
    assert len(stack.twilio.requests) == 1


def test_an_invalid_number_is_a_permanent_failure_with_twilios_code(stack: SmsStack) -> None:
    # GIVEN Twilio refusing the first number (21211: invalid 'To')
    stack.twilio.responses = [twilio_error(400, 21211, "The 'To' number +447700900123 is not a valid phone number.")]

    # WHEN the delivery arrives, and again
    outcomes = stack.handle()
    again = stack.handle()

    # THEN no exception; the first number fails with 21211, the second is sent; a redelivery sends nothing
    assert [(result["status"], result["info"]) for result, _ in outcomes] == [("failed", "21211"), ("sent", "sent")]
    assert [replayed for _, replayed in again] == [True, True]
    assert len(stack.twilio.requests) == 2
    failure, success = stack.results()
    assert (failure["info"], failure["level"], failure["object"]) == ("21211", "ERROR", "+44*******123")
    assert "not a valid phone number" in failure["payload"]["error"]
    assert success["info"] == "sent"


def test_a_redelivery_after_a_partial_failure_sends_only_to_the_rest(stack: SmsStack) -> None:
    # GIVEN the first number sent, the second failing transiently (500 on every attempt)
    first_sent = created("SM" + "f" * 32, {"To": FIRST, "From": FROM_NUMBER, "Body": EXPECTED_BODY})
    stack.twilio.responses = [first_sent, *[twilio_error(500, 20500, "oops")] * 3]
    with pytest.raises(RetryLater):
        stack.handle()

    # WHEN Lambda retries the invocation
    stack.handle()

    # THEN the first number is not texted twice
    assert [form["To"] for form in stack.twilio.forms] == [FIRST, SECOND, SECOND, SECOND, SECOND]
    assert [r["info"] for r in stack.results()] == ["sent", "sent"]


def test_the_same_delivery_twice_texts_each_number_once(stack: SmsStack) -> None:
    # GIVEN / WHEN
    stack.handle()
    again = stack.handle()

    # THEN
    assert len(stack.twilio.requests) == 2
    assert [replayed for _, replayed in again] == [True, True]
    assert len(stack.results()) == 2
    assert sorted(record["id"]["S"][:4] for record in idempotency_records()) == ["sms#", "sms#"]


def test_a_template_error_is_reported_once_for_the_delivery(stack: SmsStack) -> None:
    # GIVEN
    delivery = with_config(body="${payload['missing']}")

    # WHEN
    outcomes = stack.handle(delivery)

    # THEN
    assert [result for result, _ in outcomes] == [
        {"status": "failed", "info": "TemplateError", "object": "1 recipients"}
    ]
    assert stack.twilio.requests == []
    [result] = stack.results()
    assert "KeyError" in result["payload"]["error"]


# ---- credentials ----


def test_the_auth_token_never_reaches_the_logs(
    stack: SmsStack, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN everything logged at every level
    caplog.set_level(logging.DEBUG)
    stack.twilio.responses = [twilio_error(400, 21211, "bad number")]

    # WHEN
    stack.handle()

    # THEN neither the token nor a full phone number is in the logs
    output = caplog.text + "".join(str(record.__dict__) for record in caplog.records) + capsys.readouterr().out
    assert AUTH_TOKEN not in output
    assert FIRST not in output
    assert SECOND not in output
    assert "+44*******123" in output


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({"account_sid": ACCOUNT_SID, "from": FROM_NUMBER}, "auth_token"),
        ({"account_sid": "nope", "auth_token": AUTH_TOKEN, "from": FROM_NUMBER}, "account_sid"),
        ({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}, "from"),
        ({"account_sid": ACCOUNT_SID, "auth_token": 12345, "from": FROM_NUMBER}, "auth_token"),
    ],
)
def test_a_malformed_secret_raises_naming_fields_never_values(
    bus_probe: BusProbe, secret: dict[str, Any], message: str
) -> None:
    # GIVEN
    create_idempotency_table()
    put_secret(json.dumps(secret))
    stack = build_stack(bus_probe, FakeTwilio())

    # WHEN / THEN raised (the failure destination keeps the delivery until the secret is fixed)
    with pytest.raises(SmsConfigurationError, match=message) as raised:
        stack.handle()
    assert AUTH_TOKEN not in str(raised.value)
    assert "12345" not in str(raised.value)
    assert stack.twilio.requests == []


def test_a_missing_secret_raises(bus_probe: BusProbe) -> None:
    # GIVEN no secret in Secrets Manager
    create_idempotency_table()
    stack = build_stack(bus_probe, FakeTwilio())

    # WHEN / THEN
    with pytest.raises(SmsConfigurationError, match="cannot be read"):
        stack.handle()


# ---- the function ----


@pytest.fixture
def sms_app(bus_probe: BusProbe, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``functions.sms.app`` imported afresh inside moto, without a Twilio secret (dry run)."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "sms")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    monkeypatch.setenv("TWILIO_SECRET_NAME", "")
    create_idempotency_table()
    return fresh_import(SMS_MODULE)


def log_lines(app: ModuleType, caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The function's log records as its Powertools Logger writes them (JSON, with the invocation's keys)."""
    formatter = app.logger.registered_formatter
    return [
        json.loads(formatter.format(record)) for record in caplog.records if record.name in ("sms", "functions.sms.sms")
    ]


def test_without_a_secret_the_function_runs_dry(
    sms_app: ModuleType,
    lambda_context: LambdaContext,
    bus_probe: BusProbe,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN TWILIO_SECRET_NAME empty
    caplog.set_level(logging.INFO)

    # WHEN
    response = sms_app.lambda_handler(load_event(DELIVERY), lambda_context)

    # THEN nothing sent, one "dry-run" result
    assert response == {
        "results": [{"status": "dry-run", "info": "dry-run", "object": "2 recipients", "replayed": False}]
    }
    [result] = [detail for detail in bus_probe.drain_details() if detail["type"] == "sms"]
    assert (result["info"], result["object"], result["hops"]) == ("dry-run", "2 recipients", 1)
    # AND the message is in the function's log, with masked numbers and its segments, under the delivery's keys
    lines = log_lines(sms_app, caplog)
    [line] = [line for line in lines if line["message"].startswith("sms dry run")]
    assert line["recipients"] == ["+44*******123", "+15******006"]
    assert (line["segments"], line["encoding"], line["body"]) == (1, "GSM-7", EXPECTED_BODY)
    assert (line["rule"], line["event_id"], line["service"]) == ("page-on-call", "Xb4nQ9wE2rT6yU1iO3pA5s", "sms")
    assert FIRST not in json.dumps(lines)
    assert '"SmsDryRuns"' in capsys.readouterr().out  # the metric


def test_the_function_sends_through_its_action(
    sms_app: ModuleType,
    lambda_context: LambdaContext,
    bus_probe: BusProbe,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the function's action with a Twilio secret and a fake Twilio
    put_secret(twilio_secret())
    stack = build_stack(bus_probe, FakeTwilio())
    monkeypatch.setattr(sms_app, "runner", stack.runner)

    # WHEN the same delivery arrives twice
    first = sms_app.lambda_handler(load_event(DELIVERY), lambda_context)
    second = sms_app.lambda_handler(load_event(DELIVERY), lambda_context)

    # THEN
    assert [result["info"] for result in first["results"]] == ["sent", "sent"]
    assert [result["replayed"] for result in second["results"]] == [True, True]
    assert len(stack.twilio.requests) == 2
    output = capsys.readouterr().out
    assert '"SmsSent"' in output
    assert '"DuplicateDeliveries"' in output


# ---- exactly once around a crash after Twilio accepted ----


class Crash(BaseException):
    pass


def expire_in_progress_records() -> None:
    """What the passing of the invocation's time does to Powertools' in-progress records (intents stay)."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for item in idempotency_records():
        dynamodb.delete_item(TableName=IDEMPOTENCY_TABLE, Key={"id": item["id"]})


@pytest.mark.parametrize(("intents", "sent_to_first"), [(True, 1), (False, 2)], ids=["intent-records", "without"])
def test_a_crash_after_twilio_accepted_does_not_send_again(
    bus_probe: BusProbe, intents: bool, sent_to_first: int
) -> None:
    # GIVEN the function dies right after Twilio created the first recipient's message
    create_idempotency_table()
    put_secret(twilio_secret())
    twilio = FakeTwilio(crash_after_create=Crash("after Twilio accepted"))
    stack = build_stack(bus_probe, twilio, intents=intents)
    with pytest.raises(Crash):
        stack.handle()
    expire_in_progress_records()

    # WHEN the invocation is retried
    outcomes = stack.handle()

    # THEN with intent records the message Twilio has is found, not sent again (without them: sent twice)
    sent = [message["to"] for message in twilio.messages]
    assert (sent.count(FIRST), sent.count(SECOND)) == (sent_to_first, 1)
    assert [outcome["status"] for outcome, _ in outcomes] == ["sent", "sent"]
    if intents:
        assert outcomes[0][0]["object"] == twilio.messages[0]["sid"]
