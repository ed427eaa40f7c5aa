"""Delivery feedback on moto: SES notifications and signed Twilio callbacks become internal events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from twilio.request_validator import RequestValidator

from correlator.event import Event
from correlator.feedback import FeedbackOrigin, twilio_callback_url
from tests.conftest import fresh_import
from tests.notification_doubles import (
    AUTH_TOKEN,
    IDEMPOTENCY_TABLE,
    TWILIO_SECRET,
    create_idempotency_table,
    twilio_secret,
)
from tests.probe import REGION, BusProbe
from tests.samples import load_event

FEEDBACK_MODULE = "functions.feedback.app"
# SES's own events and Twilio's callback are not Correlator deliveries: they live with the tests, not in events/.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feedback"


def load_fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


SIGNED_URL = (
    "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod/feedback/twilio/"
    "notify-ops-by-sms.q4Jm0Xw2TSeWb7vK1nYc3A.1.Req_1001"
)


@pytest.fixture
def feedback(bus_probe: BusProbe, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "feedback")
    monkeypatch.setenv("TWILIO_SECRET_NAME", TWILIO_SECRET)
    create_idempotency_table()
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=TWILIO_SECRET, SecretString=twilio_secret())
    return fresh_import(FEEDBACK_MODULE)


def signed(event: dict[str, Any], *, token: str = AUTH_TOKEN, url: str = SIGNED_URL) -> dict[str, Any]:
    """``event`` with the X-Twilio-Signature Twilio computes for its URL and form fields."""
    params = dict(parse_qsl(event["body"], keep_blank_values=True))
    signature = RequestValidator(token).compute_signature(url, params)
    event["headers"]["X-Twilio-Signature"] = signature
    event["multiValueHeaders"]["X-Twilio-Signature"] = [signature]
    return event


def internal_events(bus_probe: BusProbe) -> list[dict[str, Any]]:
    return [detail for detail in bus_probe.drain_details() if not detail["external"]]


# ---- origins ----


def test_an_origin_travels_in_ses_tags_and_in_the_callback_path() -> None:
    # GIVEN an event two hops into a chain
    event = Event.model_validate(load_event("eventbridge/sms-delivery")["event"]["detail"]).model_copy(
        update={"hops": 2}
    )
    origin = FeedbackOrigin.of(event, "notify-ops-by-sms")

    # WHEN / THEN the result's hops (3) and the request key survive both encodings
    tags = {tag["Name"]: [tag["Value"]] for tag in origin.email_tags()}
    assert FeedbackOrigin.from_email_tags(tags) == origin == FeedbackOrigin.from_token(origin.token())
    assert origin.hops == 3
    assert twilio_callback_url("https://events.example.com/prod/", origin).startswith(
        "https://events.example.com/prod/feedback/twilio/notify-ops-by-sms."
    )


@pytest.mark.parametrize("token", ["", "rule", "rule.id", "rule.id.x", "a/b.id.1", "rule.id.1.key.extra", "r.i.1234"])
def test_a_token_that_names_no_delivery_is_refused(token: str) -> None:
    assert FeedbackOrigin.from_token(token) is None


# ---- SES ----


@pytest.mark.parametrize(
    ("sample", "type", "info", "level", "recipients"),
    [
        ("ses-delivery", "email.delivered", "delivered", "INFO", 2),
        ("ses-bounce", "email.bounced", "Permanent/General", "ERROR", 1),
        ("ses-complaint", "email.complained", "abuse", "WARN", 1),
        ("ses-reject", "email.rejected", "Bad content", "ERROR", 2),
        ("ses-delivery-delay", "email.delayed", "MailboxFull", "WARN", 1),
    ],
)
def test_ses_notifications_become_internal_events_naming_the_original_event_and_rule(
    feedback: ModuleType,
    bus_probe: BusProbe,
    lambda_context: LambdaContext,
    sample: str,
    type: str,
    info: str,
    level: str,
    recipients: int,
) -> None:
    # GIVEN SES's notification for a mail the email action tagged
    notification = load_fixture(sample)

    # WHEN the default bus's rule invokes the function
    result = feedback.lambda_handler(notification, lambda_context)

    # THEN one internal event on the Correlator bus
    assert result == {"emitted": type}
    [emitted] = internal_events(bus_probe)
    assert (emitted["type"], emitted["info"], emitted["level"]) == (type, info, level)
    assert emitted["object"] == notification["detail"]["mail"]["messageId"]
    assert emitted["payload"] == {
        "event_id": "q4Jm0Xw2TSeWb7vK1nYc3A",
        "rule": "notify-ops-on-error",
        "recipients": recipients,
    }
    assert (emitted["system_id"], emitted["request_key"], emitted["hops"]) == (
        "rule/notify-ops-on-error",
        "Req_1001",
        1,
    )
    assert "oncall@example.com" not in json.dumps(emitted)  # addresses stay out of the event log


def test_a_redelivered_ses_notification_produces_its_event_once(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext
) -> None:
    # GIVEN a bounce, delivered twice (once as another EventBridge event), and the same mail's delivery
    bounce = load_fixture("ses-bounce")
    again = {**copy.deepcopy(bounce), "id": "another-eventbridge-id"}
    delivery = load_fixture("ses-delivery")

    # WHEN each reaches the function
    results = [feedback.lambda_handler(event, lambda_context) for event in (bounce, again, delivery)]

    # THEN one email.bounced (the repeat emits nothing), and the other notification still counts
    assert results == [{"emitted": "email.bounced"}, {"emitted": None}, {"emitted": "email.delivered"}]
    assert [event["type"] for event in internal_events(bus_probe)] == ["email.bounced", "email.delivered"]


@pytest.mark.parametrize(
    "change",
    [
        lambda detail: detail["mail"]["tags"].pop("correlator_event_id"),
        lambda detail: detail["mail"]["tags"].update(correlator_rule=["bad rule name"]),
        lambda detail: detail["mail"]["tags"].update(correlator_hops=["-1"]),
        lambda detail: detail.update(eventType="Open"),
        lambda detail: detail.pop("mail"),
    ],
    ids=["untagged", "bad-rule-tag", "bad-hops-tag", "open-event", "no-mail"],
)
def test_ses_notifications_for_other_mail_emit_nothing(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext, change: Any
) -> None:
    # GIVEN
    notification = load_fixture("ses-bounce")
    change(notification["detail"])

    # WHEN
    result = feedback.lambda_handler(notification, lambda_context)

    # THEN
    assert result == {"emitted": None}
    assert internal_events(bus_probe) == []


# ---- Twilio ----


def test_a_signed_twilio_callback_becomes_an_sms_event(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext
) -> None:
    # GIVEN Twilio's callback for an undelivered message, signed with the account's auth token
    request = signed(load_fixture("feedback-twilio"))

    # WHEN
    response = feedback.lambda_handler(request, lambda_context)

    # THEN 204 and sms.undelivered naming the message, the original event and rule, the number masked
    assert response["statusCode"] == 204
    [emitted] = internal_events(bus_probe)
    assert (emitted["type"], emitted["info"], emitted["level"]) == ("sms.undelivered", "undelivered", "ERROR")
    assert emitted["object"] == "SM0123456789abcdef0123456789abcdef"
    assert emitted["payload"] == {
        "event_id": "q4Jm0Xw2TSeWb7vK1nYc3A",
        "rule": "notify-ops-by-sms",
        "error_code": "30003",
        "to": "+44*******123",
    }
    assert (emitted["system_id"], emitted["request_key"], emitted["hops"]) == ("rule/notify-ops-by-sms", "Req_1001", 1)


def test_a_repeated_twilio_callback_produces_its_event_once(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext
) -> None:
    # GIVEN a forged callback for the message first (refused: it must not claim the callback's key)
    forged = feedback.lambda_handler(signed(load_fixture("feedback-twilio"), token="0" * 32), lambda_context)

    # WHEN Twilio sends the same signed callback twice, then the message's next status
    first = feedback.lambda_handler(signed(load_fixture("feedback-twilio")), lambda_context)
    repeat = feedback.lambda_handler(signed(load_fixture("feedback-twilio")), lambda_context)
    failed = load_fixture("feedback-twilio")
    failed["body"] = failed["body"].replace("undelivered", "failed")
    later = feedback.lambda_handler(signed(failed), lambda_context)

    # THEN all but the forgery answer 204, and there is one event per status
    assert [response["statusCode"] for response in (forged, first, repeat, later)] == [403, 204, 204, 204]
    assert [event["type"] for event in internal_events(bus_probe)] == ["sms.undelivered", "sms.failed"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda event: signed(event, token="0" * 32),  # another account's token
        lambda event: signed(event, url=SIGNED_URL.replace("notify-ops-by-sms", "other-rule")),
        lambda event: {**signed(event), "body": event["body"].replace("undelivered", "delivered")},
        lambda event: event,  # the sample's placeholder signature
        lambda event: {
            **event,
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "multiValueHeaders": {},
        },
    ],
    ids=["wrong-token", "other-url", "changed-body", "bad-signature", "no-signature"],
)
def test_an_unsigned_or_tampered_callback_is_refused_and_emits_nothing(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext, tamper: Any
) -> None:
    # GIVEN / WHEN
    response = feedback.lambda_handler(tamper(load_fixture("feedback-twilio")), lambda_context)

    # THEN
    assert response["statusCode"] == 403
    assert json.loads(response["body"])["code"] == "forbidden"
    assert internal_events(bus_probe) == []


def test_interim_statuses_are_accepted_without_an_event(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext
) -> None:
    # GIVEN a signed "queued" callback
    request = load_fixture("feedback-twilio")
    request["body"] = request["body"].replace("undelivered", "queued")

    # WHEN / THEN
    assert feedback.lambda_handler(signed(request), lambda_context)["statusCode"] == 204
    assert internal_events(bus_probe) == []


def test_without_a_twilio_account_the_route_does_not_exist(
    bus_probe: BusProbe, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no Twilio secret configured
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "feedback")
    monkeypatch.setenv("TWILIO_SECRET_NAME", "")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    module = fresh_import(FEEDBACK_MODULE)

    # WHEN / THEN
    assert module.lambda_handler(signed(load_fixture("feedback-twilio")), lambda_context)["statusCode"] == 404
    assert internal_events(bus_probe) == []


def test_a_path_that_matches_no_route_gets_the_api_error_body(
    feedback: ModuleType, bus_probe: BusProbe, lambda_context: LambdaContext
) -> None:
    # GIVEN a callback whose origin holds a "/" (no route matches it)
    request = load_fixture("feedback-twilio")
    request["path"] = request["path"] + "/extra"

    # WHEN
    response = feedback.lambda_handler(request, lambda_context)

    # THEN the API's JSON error body (as documented), not Powertools' own, and nothing emitted
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == "not_found"
    assert internal_events(bus_probe) == []
