"""The API against its document: schemathesis runs docs/openapi.json against the running local stack.

Checks: no server error, and every response conforms to the document (status code documented,
content type, body schema, headers). Bounded (few examples per operation, coverage and fuzzing
phases) so the run stays well within CI's budget; the admin routes take the admin key, POST
/events the API key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local.conftest import REPO_ROOT, LocalStack, start_stack, stop_stack

pytestmark = pytest.mark.slow

OPENAPI = REPO_ROOT / "docs" / "openapi.json"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)
MAX_EXAMPLES = 5
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def contract_stack() -> Iterator[LocalStack]:
    """A stack of its own: the generated requests create, replace and delete rules and settings."""
    stack = start_stack()
    yield stack
    stop_stack(stack)


def schemathesis(stack: LocalStack, key: str, *selection: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(OPENAPI),
        "--url",
        stack.url,
        "--header",
        f"x-api-key: {key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--seed",
        "11",
        "--no-color",
        *selection,
    ]
    environment = {**os.environ, "SCHEMATHESIS_TELEMETRY": "false"}
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, env=environment, check=False)


@pytest.mark.parametrize(
    ("routes", "key", "selection"),
    [
        ("admin", "local-admin-key", ("--exclude-path", "/events")),
        ("events", "local-dev-key", ("--include-path", "/events")),
    ],
)
def test_every_response_conforms_to_the_openapi_document(
    contract_stack: LocalStack, routes: str, key: str, selection: tuple[str, ...]
) -> None:
    # GIVEN the running local stack and the committed OpenAPI document
    # WHEN schemathesis generates requests for every operation (valid and invalid ones)
    result = schemathesis(contract_stack, key, *selection)

    # THEN no server error and no response the document does not describe
    assert result.returncode == 0, f"{routes}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
