"""The local stack as a subprocess (``python -m local``) on free ports, and clients for it.

Everything here talks to 127.0.0.1 only: the runner's HTTP API and its embedded moto server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LocalStack:
    """A running ``python -m local`` and what a test needs to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    moto_port: int
    output: IO[bytes]
    state_dir: Path
    clients: dict[str, Any] = field(default_factory=dict)
    http_api_port: int | None = None  # the HTTP API front door, when the stack serves one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def logs(self) -> str:
        self.output.flush()
        self.output.seek(0)
        return self.output.read().decode("utf-8", "replace")

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.moto_endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self.clients[service]

    def request(
        self, method: str, path: str, body: bytes | str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())


def start_stack(extra_env: Mapping[str, str] | None = None) -> LocalStack:
    """Start ``python -m local`` on free ports and wait until its API answers."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "core"), str(REPO_ROOT)]),
            "CORRELATOR_PORT": str(free_port()),
            "CORRELATOR_MOTO_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            "CORRELATOR_STATE_DIR": tempfile.mkdtemp(prefix="correlator-test-state-"),  # fresh, not the checkout's
            **(extra_env or {}),
        }
    )
    output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop_stack
    process = subprocess.Popen(
        [sys.executable, "-m", "local"], cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    stack = LocalStack(
        process,
        int(env["CORRELATOR_PORT"]),
        int(env["CORRELATOR_MOTO_PORT"]),
        output,
        Path(env["CORRELATOR_STATE_DIR"]),
        http_api_port=int(env["CORRELATOR_HTTP_API_PORT"]) if "CORRELATOR_HTTP_API_PORT" in env else None,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"python -m local exited with {process.returncode}:\n{stack.logs()}")
        try:
            with socket.create_connection(("127.0.0.1", stack.port), timeout=0.5):
                pass
            if stack.request("GET", "/").status == 403:  # API Gateway's answer to an unknown route
                return stack
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"python -m local not ready after {START_TIMEOUT} s:\n{stack.logs()}")
        time.sleep(0.1)


def stop_stack(stack: LocalStack) -> None:
    """SIGINT, then require a clean exit (status 0) within STOP_TIMEOUT."""
    stack.process.send_signal(signal.SIGINT)
    try:
        status = stack.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait()
        pytest.fail(f"python -m local did not stop within {STOP_TIMEOUT} s after SIGINT:\n{stack.logs()}")
    logs = stack.logs()
    stack.output.close()
    assert status == 0, f"python -m local exited with {status} after SIGINT:\n{logs}"


# The port of the test receiver that relay rules may reach (RelayAllowedHosts locally needs host:port).
RELAY_RECEIVER_PORT = free_port()
# The template's HTTP API front door, served by the session stack too (its JWTs from the local issuer).
HTTP_API_ISSUER = "https://issuer.correlator.test"
HTTP_API_AUDIENCE = "correlator-tests"


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    """The stack of the project's template.yaml (relays may also reach 127.0.0.1:RELAY_RECEIVER_PORT), with the
    HTTP API option on (HttpApiJwtIssuer) at 127.0.0.1:<stack.http_api_port>."""
    running = start_stack(
        {
            "CORRELATOR_PARAM_RelayAllowedHosts": f"127.0.0.1:{RELAY_RECEIVER_PORT}",
            "CORRELATOR_PARAM_HttpApiJwtIssuer": HTTP_API_ISSUER,
            "CORRELATOR_PARAM_HttpApiJwtAudience": HTTP_API_AUDIENCE,
            "CORRELATOR_HTTP_API_PORT": str(free_port()),
        }
    )
    yield running
    stop_stack(running)


@pytest.fixture(scope="session")
def wiring_stack() -> Iterator[LocalStack]:
    """The stack of tests/local/fixtures/template.yaml: rules, an SQS mapping and routes -> an echo function."""
    running = start_stack({"CORRELATOR_TEMPLATE": str(FIXTURES / "template.yaml"), "CORRELATOR_PARAM_Greeting": "hi"})
    yield running
    stop_stack(running)


def wait_for(check: Callable[[], Any], timeout: float, message: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


ADMIN_KEY = {"x-api-key": "local-admin-key"}


@pytest.fixture
def rules(stack: LocalStack) -> Iterator[list[str]]:
    """Names of the rules a test creates through the API; deleted afterwards (the stack is shared)."""
    names: list[str] = []
    yield names
    for name in names:
        stack.request("DELETE", f"/rules/{name}", headers=ADMIN_KEY)


def create_rule(stack: LocalStack, rules: list[str], rule: dict[str, Any]) -> None:
    """Create ``rule`` through the rules API (201), remembering it for deletion."""
    response = stack.request("POST", "/rules", json.dumps(rule), {"content-type": "application/json", **ADMIN_KEY})
    assert response.status == 201, response.body
    rules.append(rule["name"])
