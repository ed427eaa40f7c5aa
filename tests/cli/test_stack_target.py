"""The CLI against a deployed stack: found by name (moto CloudFormation), admin calls SigV4-signed, /events
with the stack's API key, downloads fetched from the presigned URL with no credentials at all.
API Gateway and S3 are played by a loopback HTTP server that records every request."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from correlator_cli.main import app

ARCHIVE_LINES = b'2026-11-22T14:52:39Z,[INFO ],"Req_7","true",null,"key-abc","order.created","orders/7",null\n'
CURRENT_LINES = b'2026-11-22T15:00:00.100Z,[WARN ],"Req_7","false",null,"key-abc","email","x","sent"\n'


@dataclass
class FakeApi:
    """API Gateway (under /dev) and S3 (under /s3) on 127.0.0.1."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def answer(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        base = f"http://127.0.0.1:{self.port}"
        routes: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = {
            ("GET", "/dev/rules"): (200, {}, json.dumps({"rules": [{"name": "r", "action": "log"}]}).encode()),
            ("POST", "/dev/events"): (200, {}, json.dumps({"results": [{"id": "e1", "status": "accepted"}]}).encode()),
            ("GET", "/dev/logs"): (
                200,
                {},
                json.dumps(
                    {
                        "current": [{"name": "default.log", "size": len(CURRENT_LINES), "last_modified": "x"}],
                        "archive": [
                            {"name": "default.log.1764000000000", "size": len(ARCHIVE_LINES), "last_modified": "x"}
                        ],
                    }
                ).encode(),
            ),
            ("GET", "/dev/logs/archive/default.log.1764000000000"): (
                302,
                {"Location": f"{base}/s3/archive?X-Amz-Signature=presigned"},
                b"",
            ),
            ("GET", "/dev/logs/current/default.log"): (302, {"Location": f"{base}/s3/current?X-Amz-Signature=p"}, b""),
            ("GET", "/s3/archive"): (200, {"Content-Encoding": "gzip"}, gzip.compress(ARCHIVE_LINES)),
            ("GET", "/s3/current"): (200, {}, CURRENT_LINES),
        }
        return routes.get((method, path.split("?")[0]), (404, {}, b'{"code":"not_found","message":"no"}'))


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            api.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
            )
            status, headers, payload = api.answer(self.command, self.path)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(payload))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def deployed(aws: None, fake_api: FakeApi) -> str:
    key = boto3.client("apigateway").create_api_key(name="shop-key", value="the-stack-key-value-0123", enabled=True)
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "ApiUrl": {"Value": f"http://127.0.0.1:{fake_api.port}/dev"},
            "ApiKeyId": {"Value": key["id"]},
            "EventBusName": {"Value": "shop"},
        },
    }
    boto3.client("cloudformation").create_stack(StackName="shop", TemplateBody=json.dumps(template))
    return "shop"


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env={"CORRELATOR_PORT": "1"})  # no local stack there
    assert result.exit_code == code, f"{result.output}\n{result.exception!r}"
    return result.stdout


def headers_of(request: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in request["headers"].items()}


def test_admin_calls_are_signed_and_events_carry_the_stack_key(deployed: str, fake_api: FakeApi) -> None:
    assert json.loads(run("--stack", deployed, "rules", "list", "-o", "json")) == [{"name": "r", "action": "log"}]
    sent = json.loads(run("--stack", deployed, "send", "-t", "order.created", "-k", "Req_7", "-o", "json"))
    assert sent["results"][0]["status"] == "accepted"
    rules, events = fake_api.requests
    admin = headers_of(rules)
    assert admin["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/execute-api/aws4_request" in admin["authorization"]
    assert "x-api-key" not in admin
    submit = headers_of(events)
    assert submit["x-api-key"] == "the-stack-key-value-0123"
    assert submit["x-request-key"] == "Req_7"
    assert "authorization" not in submit
    assert json.loads(events["body"]) == {"events": [{"type": "order.created"}]}


def test_search_reads_archive_and_current_through_presigned_urls_without_credentials(
    deployed: str, fake_api: FakeApi
) -> None:
    found = [
        json.loads(line)
        for line in run("--stack", deployed, "logs", "search", "-k", "Req_7", "-o", "json").splitlines()
    ]
    assert [(line["time"], line["type"]) for line in found] == [
        ("2026-11-22T14:52:39Z", "order.created"),
        ("2026-11-22T15:00:00.100Z", "email"),
    ]
    downloads = [request for request in fake_api.requests if request["path"].startswith("/s3/")]
    assert len(downloads) == 2
    for request in downloads:
        sent = headers_of(request)
        assert "authorization" not in sent
        assert not any(name.startswith("x-amz-") for name in sent)
        assert "x-api-key" not in sent


def test_an_unknown_stack_is_an_error_not_a_traceback(aws: None) -> None:
    result = CliRunner().invoke(app, ["--stack", "nope", "rules", "list"], env={"CORRELATOR_PORT": "1"})
    assert result.exit_code == 2
    assert "nope" in result.stderr
