"""Shared fixtures: a sealed fake AWS environment, moto, a probe on the test bus, the reception handler."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Protocol

import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from local import moto_compat
from tests.probe import BUS_NAME, REGION, BusProbe, create_bus_probe
from tests.s3_doubles import s3_client
from tests.samples import load_event

# moto behaves like AWS where moto 5.2 does not (see local/moto_compat.py), in every test.
moto_compat.apply()

# moto gives every mock a new default boto3 session, and each session a new botocore data loader that parses the
# service models' JSON again (~0.1 s per test). The models are read-only data: one loader (per data path) serves
# every session of the test process.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)

__all__ = ["load_event"]

RECEPTION_MODULE = "functions.reception.app"


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint/profile overrides, so no test can reach a real AWS endpoint.

    A conftest further down (e.g. tests/local, which talks to a local moto server) can override
    this fixture by defining one with the same name.
    """
    for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "reception")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Correlator")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("EVENT_BUS_NAME", BUS_NAME)
    monkeypatch.setenv("MAX_HOPS", "3")


@pytest.fixture(autouse=True)
def reset_metrics() -> Iterator[None]:
    """Powertools keeps metrics in class-level state shared by every ``Metrics()``: start each test empty."""
    metrics = Metrics()
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
    metrics.clear_default_dimensions()


@pytest.fixture
def aws() -> Iterator[None]:
    """Every AWS call inside the test goes to moto."""
    with mock_aws():
        yield


@pytest.fixture
def bus_probe(aws: None) -> BusProbe:
    """The bus ``correlator-test`` with a rule routing every external and internal event to a queue."""
    return create_bus_probe()


class BucketFor(Protocol):
    def __call__(self, bucket: str, *, env: str | None = None, service: str | None = None) -> Any: ...


@pytest.fixture
def s3_bucket(aws: None, monkeypatch: pytest.MonkeyPatch) -> BucketFor:
    """Creates a bucket in moto and names it to the function in ``env`` (``LOG_BUCKET_NAME``...); returns
    the S3 client. ``service``: the function's ``POWERTOOLS_SERVICE_NAME``. Call it before importing the function."""

    def create(bucket: str, *, env: str | None = None, service: str | None = None) -> Any:
        if env:
            monkeypatch.setenv(env, bucket)
        if service:
            monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
        client = s3_client()
        client.create_bucket(Bucket=bucket)
        return client

    return create


def handler_caller(module: ModuleType, context: LambdaContext) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Calls ``module.lambda_handler`` with ``context``: what the function answers for an event."""

    def call(event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = module.lambda_handler(event, context)
        return response

    return call


@pytest.fixture
def reception(aws: None) -> ModuleType:
    """``functions.reception.app`` imported afresh inside moto (it builds its boto3 client at import)."""
    return fresh_import(RECEPTION_MODULE)


def fresh_import(name: str) -> ModuleType:
    """Import a function module anew, so that the clients it builds at import point at the running moto."""
    module = sys.modules.get(name)
    return importlib.import_module(name) if module is None else importlib.reload(module)


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context with the attributes Powertools reads."""
    context = LambdaContext()
    context._function_name = "correlator-reception"
    context._function_version = "$LATEST"
    context._memory_limit_in_mb = 256
    context._invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:correlator-reception"
    context._aws_request_id = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    context._log_group_name = "/aws/lambda/correlator-reception"
    context._log_stream_name = "2026/11/22/[$LATEST]0123456789abcdef"
    return context
