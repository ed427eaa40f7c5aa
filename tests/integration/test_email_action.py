"""The email function on moto: SES v2 outbox, multipart request, idempotency on DynamoDB, failure handling."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.stub import Stubber

from correlator.action import RetryLater
from tests.conftest import fresh_import
from tests.notification_doubles import (
    IDEMPOTENCY_TABLE,
    SENDER,
    create_idempotency_table,
    idempotency_records,
    ses_outbox,
    verify_sender,
)
from tests.probe import BusProbe
from tests.samples import load_event

EMAIL_MODULE = "functions.email.app"
DELIVERY = "eventbridge/email-delivery"


@pytest.fixture
def email_app(bus_probe: BusProbe, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return email_app_fixture(bus_probe, monkeypatch)


def email_app_fixture(bus_probe: BusProbe, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``functions.email.app`` imported afresh inside moto, with its idempotency table and the test bus."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "email")
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    create_idempotency_table()
    return fresh_import(EMAIL_MODULE)


@pytest.fixture
def invoke(email_app: ModuleType, lambda_context: LambdaContext) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def call(event: dict[str, Any]) -> dict[str, Any]:
        # One email per delivery: the runner's single result.
        [result] = email_app.lambda_handler(event, lambda_context)["results"]
        return dict(result)

    return call


@pytest.fixture
def send_requests(email_app: ModuleType) -> list[dict[str, Any]]:
    """The parameters of every SES SendEmail call the function makes (moto still answers them)."""
    captured: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.append(params)

    email_app.ses.meta.events.register("provide-client-params.sesv2.SendEmail", capture)
    return captured


def result_events(bus_probe: BusProbe) -> list[dict[str, Any]]:
    return [detail for detail in bus_probe.drain_details() if detail["type"] == "email"]


def test_a_delivery_sends_one_multipart_email_and_reports_it(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    send_requests: list[dict[str, Any]],
    bus_probe: BusProbe,
) -> None:
    # GIVEN a verified sender and the sample delivery (template "default": text and HTML)
    verify_sender()

    # WHEN
    response = invoke(load_event(DELIVERY))

    # THEN one email in the outbox, from the stack's sender to the rule's recipients
    [sent] = ses_outbox()
    assert sent.source == SENDER
    assert sent.destinations["ToAddresses"] == ["ops@example.com", "payments@example.com"]
    assert sent.destinations["CcAddresses"] == ["audit@example.com"]
    assert sent.subject == "[ERROR] Payment for order 1001 failed"
    assert "Payment for order 1001 failed" in sent.body
    assert "<table" in sent.body  # moto keeps only the HTML part of a multipart message
    # AND the request carried both parts (multipart/alternative), UTF-8, and the reply-to
    [request] = send_requests
    body = request["Content"]["Simple"]["Body"]
    assert body["Text"]["Data"].startswith("ERROR: Payment for order 1001 failed")
    assert "<html" in body["Html"]["Data"]
    assert "##" not in body["Html"]["Data"]  # Mako comments stay out
    assert body["Text"]["Charset"] == body["Html"]["Charset"] == "UTF-8"
    assert request["ReplyToAddresses"] == ["payments-team@example.com"]
    # AND the result event: type email, object the SES message id, info "sent", one hop further
    [result] = result_events(bus_probe)
    assert (result["object"], result["info"], result["level"]) == (sent.id, "sent", "INFO")
    assert (result["external"], result["hops"], result["request_key"]) == (False, 1, "Req_2002")
    assert result["system_id"] == "rule/notify-ops-on-error"
    assert result["payload"] == {"recipients": 3}
    assert response == {"status": "sent", "info": "sent", "object": sent.id, "replayed": False}


def test_every_email_is_tagged_with_its_delivery_and_sent_through_the_configuration_set(
    bus_probe: BusProbe, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function configured with the stack's configuration set
    monkeypatch.setenv("SES_CONFIGURATION_SET", "correlator-email")
    email_app = email_app_fixture(bus_probe, monkeypatch)
    captured: list[dict[str, Any]] = []
    email_app.ses.meta.events.register(
        "provide-client-params.sesv2.SendEmail", lambda params, **_: captured.append(params)
    )
    verify_sender()

    # WHEN
    email_app.lambda_handler(load_event(DELIVERY), lambda_context)

    # THEN SES's notifications will carry the original event id, rule, request key and hops
    [request] = captured
    assert request["ConfigurationSetName"] == "correlator-email"
    event = load_event(DELIVERY)["event"]["detail"]
    assert {tag["Name"]: tag["Value"] for tag in request["EmailTags"]} == {
        "correlator_event_id": event["id"],
        "correlator_rule": "notify-ops-on-error",
        "correlator_request_key": "Req_2002",
        "correlator_hops": "1",
    }


def test_the_same_delivery_processed_twice_sends_one_email(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    send_requests: list[dict[str, Any]],
    bus_probe: BusProbe,
) -> None:
    # GIVEN a delivery already handled once
    verify_sender()
    first = invoke(load_event(DELIVERY))

    # WHEN EventBridge (or Lambda's retry) delivers it again
    second = invoke(load_event(DELIVERY))

    # THEN nothing more is sent or reported; the stored result is returned
    assert len(ses_outbox()) == 1
    assert len(send_requests) == 1
    assert len(result_events(bus_probe)) == 1
    assert second == {**first, "replayed": True}
    [record] = idempotency_records()
    assert record["status"]["S"] == "COMPLETED"
    assert record["id"]["S"].startswith("email#")


def test_another_rule_or_event_is_another_email(invoke: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    # GIVEN
    verify_sender()
    other_rule = load_event(DELIVERY)
    other_rule["rule"]["name"] = "another-rule"
    other_event = load_event(DELIVERY)
    other_event["event"]["detail"]["id"] = "Another0Event0Id0000001"

    # WHEN
    for delivery in (load_event(DELIVERY), other_rule, other_event):
        invoke(delivery)

    # THEN
    assert len(ses_outbox()) == 3


def test_an_unverified_sender_is_reported_and_never_retried(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    send_requests: list[dict[str, Any]],
    bus_probe: BusProbe,
) -> None:
    # GIVEN no verified identity: SES rejects the message
    # WHEN the delivery arrives, and again
    first = invoke(load_event(DELIVERY))
    second = invoke(load_event(DELIVERY))

    # THEN a failure result (no exception, so Lambda does not retry), SES asked once, nothing sent
    assert first == {"status": "failed", "info": "MessageRejected", "object": "3 recipients", "replayed": False}
    assert second["replayed"] is True
    assert len(send_requests) == 1
    assert ses_outbox() == []
    [result] = result_events(bus_probe)
    assert (result["info"], result["level"], result["object"]) == ("MessageRejected", "ERROR", "3 recipients")
    assert "not verified" in result["payload"]["error"]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("MessageRejected", 400),
        ("MailFromDomainNotVerifiedException", 400),
        ("AccountSuspendedException", 400),
        ("SendingPausedException", 400),
        ("NotFoundException", 404),
        ("AccessDeniedException", 403),
    ],
)
def test_permanent_ses_errors_become_failure_results(
    email_app: ModuleType,
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    bus_probe: BusProbe,
    code: str,
    status: int,
) -> None:
    # GIVEN SES answering with a permanent error
    with Stubber(email_app.ses) as ses:
        ses.add_client_error("send_email", service_error_code=code, service_message="no", http_status_code=status)

        # WHEN
        response = invoke(load_event(DELIVERY))

    # THEN reported with the error code, not raised
    assert (response["status"], response["info"]) == ("failed", code)
    [result] = result_events(bus_probe)
    assert (result["info"], result["level"]) == (code, "ERROR")


@pytest.mark.parametrize(
    ("code", "status"),
    [("TooManyRequestsException", 429), ("LimitExceededException", 400), ("InternalFailure", 500), ("X", 503)],
)
def test_transient_ses_errors_raise_and_the_retry_sends_once(
    email_app: ModuleType,
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    bus_probe: BusProbe,
    code: str,
    status: int,
) -> None:
    # GIVEN SES throttling or failing the first attempt
    verify_sender()
    with Stubber(email_app.ses) as ses:
        ses.add_client_error("send_email", service_error_code=code, http_status_code=status)

        # WHEN the first invocation runs
        with pytest.raises(RetryLater):
            invoke(load_event(DELIVERY))

    # THEN nothing is reported or remembered: Lambda's retry sends it, exactly once
    assert result_events(bus_probe) == []
    assert idempotency_records() == []
    retry = invoke(load_event(DELIVERY))
    assert (retry["status"], retry["replayed"]) == ("sent", False)
    assert len(ses_outbox()) == 1
    assert [result["info"] for result in result_events(bus_probe)] == ["sent"]


def test_a_template_error_is_reported_without_calling_ses(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    send_requests: list[dict[str, Any]],
    bus_probe: BusProbe,
) -> None:
    # GIVEN an inline template using a variable templates do not have
    verify_sender()
    delivery = load_event(DELIVERY)
    delivery["rule"]["config"] = {"to": ["ops@example.com"], "subject": "${nope}", "text": "x"}

    # WHEN
    response = invoke(delivery)

    # THEN
    assert (response["status"], response["info"], response["object"]) == ("failed", "TemplateError", "1 recipients")
    assert send_requests == []
    [result] = result_events(bus_probe)
    assert result["info"] == "TemplateError"
    assert "undefined variable 'nope'" in result["payload"]["error"]


def test_an_unknown_template_set_is_reported(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], bus_probe: BusProbe
) -> None:
    # GIVEN
    delivery = load_event(DELIVERY)
    delivery["rule"]["config"] = {"to": ["ops@example.com"], "template": "weekly-digest"}

    # WHEN
    response = invoke(delivery)

    # THEN
    assert response["info"] == "TemplateNotFound"
    assert [result["info"] for result in result_events(bus_probe)] == ["TemplateNotFound"]


def test_a_payload_script_arrives_escaped_in_the_sent_html(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], send_requests: list[dict[str, Any]]
) -> None:
    # GIVEN an event whose payload holds a script
    verify_sender()
    delivery = load_event(DELIVERY)
    delivery["event"]["detail"]["payload"] = {"comment": "<script>alert(1)</script>"}

    # WHEN
    invoke(delivery)

    # THEN
    html = send_requests[0]["Content"]["Simple"]["Body"]["Html"]["Data"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in ses_outbox()[0].body


def test_a_malformed_delivery_raises_for_the_failure_destination(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # GIVEN / WHEN / THEN not a delivery: raised, so Lambda retries and then keeps it in the failure queue
    with pytest.raises(ValueError, match="a delivery is"):
        invoke({"detail": {}})
