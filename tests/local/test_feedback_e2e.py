"""Delivery feedback on the local stack: SES notifications on moto's default bus and signed Twilio callbacks
on POST /feedback/twilio/{origin} become events, and the recipe "email fallback when an SMS fails" mails.

A stack of its own: the Twilio secret must be configured for the feedback function (the shared stack's SMS
action is a dry run without one). No SMS is sent here: the test plays Twilio and SES.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from tests.local.conftest import REPO_ROOT, LocalStack, create_rule, start_stack, stop_stack, wait_for
from tests.notification_doubles import AUTH_TOKEN, twilio_secret

pytestmark = pytest.mark.slow

ADMIN_KEY = {"x-api-key": "local-admin-key"}
TWILIO_SECRET = "correlator/twilio-e2e"
STAGE = "dev"
FORM = {"content-type": "application/x-www-form-urlencoded"}
WAIT_SECONDS = 40


@pytest.fixture(scope="module")
def feedback_stack() -> Iterator[LocalStack]:
    running = start_stack({"CORRELATOR_PARAM_TwilioSecretName": TWILIO_SECRET})
    running.client("secretsmanager").create_secret(Name=TWILIO_SECRET, SecretString=twilio_secret())
    yield running
    stop_stack(running)


@pytest.fixture
def stack_rules(feedback_stack: LocalStack) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        feedback_stack.request("DELETE", f"/rules/{name}", headers=ADMIN_KEY)


def log_lines(stack: LocalStack, needle: str, count: int = 1) -> list[str]:
    def lines() -> list[str]:
        response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
        found = [line for line in response.body.decode("utf-8").splitlines() if needle in line]
        return found if len(found) >= count else []

    found: list[str] = wait_for(lines, WAIT_SECONDS, f"no log line with {needle}:\n{stack.logs()[-3000:]}")
    return found


def outbox(stack: LocalStack) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"{stack.moto_endpoint}/moto-api/data.json", timeout=10) as response:
        data = json.loads(response.read())
    messages: list[dict[str, Any]] = (data.get("ses") or {}).get("Message") or []
    return messages


def post_twilio_callback(stack: LocalStack, origin: str, form: dict[str, str], token: str = AUTH_TOKEN) -> int:
    path = f"/feedback/twilio/{origin}"
    signed_url = f"https://127.0.0.1:{stack.port}/{STAGE}{path}"  # what the local gateway reports
    signature = RequestValidator(token).compute_signature(signed_url, form)
    body = urllib.parse.urlencode(form)
    return stack.request("POST", path, body, {**FORM, "X-Twilio-Signature": signature}).status


def test_email_fallback_when_an_sms_fails(feedback_stack: LocalStack, stack_rules: list[str]) -> None:
    # GIVEN the recipe's two rules (docs/delivery-feedback.md), created through the rules API
    suffix = uuid.uuid4().hex[:8]
    page, fallback = f"page-{suffix}", f"fallback-{suffix}"
    create_rule(
        feedback_stack,
        stack_rules,
        {
            "name": page,
            "match": {"type": f"never.{suffix}"},
            "action": "sms",
            "config": {"to": ["+447700900123"], "body": "x"},
        },
    )
    create_rule(
        feedback_stack,
        stack_rules,
        {
            "name": fallback,
            "match": {"external": False, "type": "sms.", "level": ["ERROR"]},
            "pattern": {"payload": {"rule": [page]}},
            "action": "email",
            "config": {
                "to": ["oncall@example.com"],
                "subject": "SMS to on-call failed: ${event.info} ${payload.get('error_code', '')}",
                "text": "Twilio could not deliver the page for event ${payload['event_id']} (message ${event.object}).",
            },
        },
    )
    before = len(outbox(feedback_stack))

    # WHEN Twilio reports the page's message undelivered (a signed callback), and a forged one arrives
    origin = f"{page}.evt{suffix}.1.Req_{suffix}"
    form = {
        "MessageSid": f"SM{suffix}{'0' * 24}",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": "+447700900123",
    }
    assert post_twilio_callback(feedback_stack, origin, form) == 204
    assert post_twilio_callback(feedback_stack, origin, form, token="0" * 32) == 403

    # THEN sms.undelivered is in the event log, and the fallback rule mailed on-call exactly once
    [line] = log_lines(feedback_stack, '"sms.undelivered"')
    assert f'"Req_{suffix}"' in line
    mails = wait_for(lambda: outbox(feedback_stack)[before:], WAIT_SECONDS, "no fallback email")
    [mail] = mails
    assert mail["subject"] == "SMS to on-call failed: undelivered 30003"
    assert f"evt{suffix}" in mail["body"]


def test_an_ses_bounce_on_the_default_bus_becomes_email_bounced(feedback_stack: LocalStack) -> None:
    # GIVEN SES's bounce notification for a mail the email action tagged
    suffix = uuid.uuid4().hex[:8]
    sample = json.loads((REPO_ROOT / "tests" / "fixtures" / "feedback" / "ses-bounce.json").read_text())
    sample["detail"]["mail"]["tags"]["correlator_request_key"] = [f"Req_{suffix}"]

    # WHEN SES puts it on the account's default bus
    feedback_stack.client("events").put_events(
        Entries=[
            {
                "Source": "aws.ses",
                "DetailType": sample["detail-type"],
                "Detail": json.dumps(sample["detail"]),
                "EventBusName": "default",
            }
        ]
    )

    # THEN email.bounced, with the original request key, is in the Correlator event log
    [line] = log_lines(feedback_stack, f'"Req_{suffix}"')
    assert '"email.bounced"' in line
    assert '"Permanent/General"' in line


def test_the_ses_sample_files_are_what_the_rule_matches() -> None:
    # The template's pattern and the samples agree (a typo in a detail type would silently drop feedback).
    from local.template import load_yaml

    template = load_yaml((REPO_ROOT / "template.yaml").read_text(encoding="utf-8"))
    pattern = template["Resources"]["FeedbackFunction"]["Properties"]["Events"]["SesNotifications"]["Properties"][
        "Pattern"
    ]
    samples = sorted(Path(REPO_ROOT / "tests" / "fixtures" / "feedback").glob("ses-*.json"))
    assert {json.loads(path.read_text())["detail-type"] for path in samples} == set(pattern["detail-type"])
