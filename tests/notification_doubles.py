"""Doubles for the notification actions: a fake Twilio HTTP client, the idempotency table, moto's SES outbox."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import boto3
from moto.backends import get_backend
from twilio.http import HttpClient
from twilio.http.response import Response

from tests.probe import REGION

ACCOUNT = "123456789012"
IDEMPOTENCY_TABLE = "correlator-idempotency-test"
SENDER = "noreply@correlator.example"
TWILIO_SECRET = "correlator/twilio-test"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
MESSAGING_SERVICE_SID = "MG" + "a" * 32
FROM_NUMBER = "+15005550006"
AUTH_TOKEN = "t0k3n-never-logged-5f2a9c"  # a fake token; the tests assert it is never logged


def create_idempotency_table(name: str = IDEMPOTENCY_TABLE) -> None:
    """The table template.yaml declares: ``id`` hash key, TTL on ``expiration``."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


def idempotency_records(name: str = IDEMPOTENCY_TABLE) -> list[dict[str, Any]]:
    """Powertools' records of the table (the intent records of ``correlator.intent`` left out)."""
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=name)["Items"]
    return [item for item in items if not item["id"]["S"].startswith("intent#")]


def verify_sender(address: str = SENDER) -> None:
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=address)


def ses_outbox() -> list[Any]:
    """What moto's SES (v1 and v2 share it) accepted: ``Message`` objects with source, subject, body, destinations."""
    return list(get_backend("ses")[ACCOUNT][REGION].sent_messages)


def twilio_secret(**overrides: Any) -> str:
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM_NUMBER, **overrides}
    return json.dumps({key: value for key, value in secret.items() if value is not None})


def created(sid: str, data: dict[str, Any]) -> Response:
    """Twilio's 201 for a created message."""
    body = {"sid": sid, "status": "queued", "to": data.get("To"), "from": data.get("From"), "body": data.get("Body")}
    return Response(201, json.dumps(body), headers={"Content-Type": "application/json"})


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "status": status,
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    }
    return Response(status, json.dumps(body), headers=headers or {})


@dataclass
class FakeTwilio(HttpClient):  # type: ignore[misc]  # twilio ships no type information
    """Answers Twilio API calls from a script of responses (then 201s); records every request.

    Messages it created (the 201s) are listed back, newest first, by ``GET .../Messages.json?To=``;
    ``crash_after_create`` makes the next create raise ``crash`` once the message exists (the function
    died after Twilio accepted it).
    """

    responses: list[Response] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    crash_after_create: BaseException | None = None

    def __post_init__(self) -> None:
        super().__init__(logging.getLogger("tests.fake_twilio"), is_async=False, timeout=None)

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        form = dict(data or {})
        self.requests.append({"method": method, "uri": uri, "data": form, "auth": auth})
        if method == "GET" and uri.endswith("/Messages.json"):
            to = (params or {}).get("To")
            listed = [message for message in reversed(self.messages) if to is None or message["to"] == to]
            return Response(200, json.dumps({"messages": listed, "next_page_uri": None, "page": 0, "page_size": 50}))
        if self.responses:
            return self.responses.pop(0)
        sid = f"SM{len(self.requests):032x}"
        self.messages.append(
            {
                "sid": sid,
                "to": form.get("To"),
                "body": form.get("Body"),
                "status": "queued",
                "date_created": format_datetime(datetime.now(UTC)),
            }
        )
        if self.crash_after_create is not None:
            crash, self.crash_after_create = self.crash_after_create, None
            raise crash
        return created(sid, form)

    @property
    def forms(self) -> list[dict[str, Any]]:
        return [request["data"] for request in self.requests if request["method"] == "POST"]
