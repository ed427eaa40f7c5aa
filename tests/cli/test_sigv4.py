"""Admin calls to a deployed stack are SigV4-signed by botocore: checked at a fixed clock against botocore's
own signer and against SigV4 computed by hand from AWS's specification (no network)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from correlator_cli.http import ApiClient
from correlator_cli.target import Target

NOW = dt.datetime(2026, 11, 22, 14, 52, 39, tzinfo=dt.UTC)
API = "https://abc123.execute-api.eu-west-1.amazonaws.com/dev"
KEY, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-from-sso"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b'{"rules": []}'


@dataclass
class RecordingPool:
    """Stands in for urllib3: records each request, answers 200."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def request(self, method: str, url: str, body: bytes | None = None, headers: Any = None, **_: Any) -> Answer:
        self.requests.append({"method": method, "url": url, "body": body, "headers": dict(headers or {})})
        return Answer()


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))


def stack_client(token: str | None = TOKEN) -> tuple[ApiClient, RecordingPool]:
    session = boto3.Session(
        aws_access_key_id=KEY, aws_secret_access_key=SECRET, aws_session_token=token, region_name="eu-west-1"
    )
    pool = RecordingPool()
    return ApiClient(Target(name="correlator", api_url=API, session=session), pool=pool), pool  # type: ignore[arg-type]


def by_hand(method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    """The Authorization header per AWS's SigV4 specification, independently of botocore."""
    parts = urlsplit(url)
    # Every header is signed but the signature itself (and the few botocore never signs, none sent here).
    values = {name.lower(): value.strip() for name, value in headers.items() if name.lower() != "authorization"}
    values["host"] = parts.netloc
    signed = sorted(values)
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    canonical = "\n".join(
        [
            method,
            parts.path,
            query,
            "".join(f"{name}:{values[name]}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    stamp = NOW.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{NOW:%Y%m%d}/eu-west-1/execute-api/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + SECRET).encode()
    for part in (f"{NOW:%Y%m%d}", "eu-west-1", "execute-api", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={';'.join(signed)}, Signature={signature}"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/rules", None),
        ("PUT", "/rules/notify-ops", {"name": "notify-ops", "action": "log"}),
        ("DELETE", "/logs/archive/default.log.1764000000000", None),
    ],
)
def test_admin_calls_carry_botocores_signature(fixed_clock: None, method: str, path: str, body: Any) -> None:
    # GIVEN a deployed stack and temporary credentials (a session token, as SSO and assumed roles give)
    client, pool = stack_client()
    # WHEN an admin call is made
    client.call(method, path, body)
    # THEN it went out signed, exactly as botocore's SigV4Auth signs the same request at the same instant
    sent = pool.requests[0]
    data = sent["body"] or b""
    assert sent["url"] == API + path
    assert data == (json.dumps(body).encode() if body is not None else b"")
    expected = AWSRequest(
        method=method,
        url=sent["url"],
        data=data,
        headers={
            k: v
            for k, v in sent["headers"].items()
            if k.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")
        },
    )
    SigV4Auth(ReadOnlyCredentials(KEY, SECRET, TOKEN), "execute-api", "eu-west-1").add_auth(expected)
    assert sent["headers"]["Authorization"] == expected.headers["Authorization"]
    assert sent["headers"]["X-Amz-Date"] == "20261122T145239Z"
    assert sent["headers"]["X-Amz-Security-Token"] == TOKEN
    # ... and as the specification computes it by hand
    assert sent["headers"]["Authorization"] == by_hand(method, sent["url"], sent["headers"], data)
    assert "x-api-key" not in {name.lower() for name in sent["headers"]}


def test_long_term_keys_sign_without_a_token(fixed_clock: None) -> None:
    client, pool = stack_client(token=None)
    client.call("GET", "/logs")
    headers = pool.requests[0]["headers"]
    assert "X-Amz-Security-Token" not in headers
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/20261122/eu-west-1/execute-api/")


def test_events_use_the_api_key_and_no_signature(fixed_clock: None) -> None:
    client, pool = stack_client()
    client.target.__dict__["api_key"] = "the-stack-key"  # what ApiKeyId's value would be
    client.call("POST", "/events", {"type": "a"}, admin=False)
    headers = pool.requests[0]["headers"]
    assert headers["x-api-key"] == "the-stack-key"
    assert "Authorization" not in headers
