"""local.moto_server: moto's application on waitress keeps connections alive, keeps S3's underscored
metadata keys as moto's own handler does, answers an empty PUT that expects 100-continue, and stops
cleanly (the port is free again at once)."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local.moto_server import MotoServer
from tests.local.conftest import free_port


@pytest.fixture
def server() -> Iterator[tuple[MotoServer, int]]:
    port = free_port()
    moto = MotoServer("127.0.0.1", port, threads=4)
    moto.start()
    try:
        yield moto, port
    finally:
        moto.stop()


def s3_client(port: int) -> object:
    return boto3.client(
        "s3",
        config=Config(read_timeout=10, retries={"max_attempts": 1}),  # a request left unanswered fails fast
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's dummy credentials
    )


def test_requests_share_one_connection(server: tuple[MotoServer, int]) -> None:
    _, port = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        answers = []
        for _ in range(3):
            connection.request("GET", "/", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=a/b/us-east-1/s3/x"})
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Connection")))
            socket_after = connection.sock
            assert socket_after is not None  # not closed by the server's answer: reused for the next request
        assert answers == [(200, None)] * 3
    finally:
        connection.close()


def metadata_round_trip(port: int, metadata: dict[str, str]) -> tuple[object, object]:
    s3 = s3_client(port)
    bucket = f"meta-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata=metadata)  # type: ignore[attr-defined]
    head = s3.head_object(Bucket=bucket, Key="k")  # type: ignore[attr-defined]
    got = s3.get_object(Bucket=bucket, Key="k")  # type: ignore[attr-defined]
    return head["Metadata"], got["Metadata"]


@pytest.fixture(scope="module")
def werkzeug_port() -> Iterator[int]:
    """moto's own server (werkzeug), the reference for what S3 metadata comes back."""
    port = free_port()
    reference = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    reference.start()
    try:
        yield port
    finally:
        reference.stop()


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"my_key": "one", "other-key": "two"}, {"my_key": "one", "other-key": "two"}),  # underscores kept
        ({"Mixed_Case": "x", "UPPER": "y"}, {"mixed_case": "x", "upper": "y"}),  # lower case back, not capitalised
        ({"a-b": "dashed", "a_b": "underscored"}, {"a-b": "dashed"}),  # an underscored name never replaces a dashed one
    ],
)
def test_s3_metadata_keys_come_back_as_from_motos_own_server(
    server: tuple[MotoServer, int], werkzeug_port: int, metadata: dict[str, str], expected: dict[str, str]
) -> None:
    _, port = server
    assert metadata_round_trip(port, metadata) == (expected, expected)
    assert metadata_round_trip(werkzeug_port, metadata) == (expected, expected)


def test_an_empty_put_that_expects_100_continue_is_answered(server: tuple[MotoServer, int]) -> None:
    # botocore sends "Expect: 100-continue" with every PutObject; with no body there is nothing to continue
    _, port = server
    s3 = s3_client(port)
    bucket = f"empty-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"abc")  # type: ignore[attr-defined]
    s3.put_object(Bucket=bucket, Key="k", Body=b"", IfMatch=first["ETag"])  # type: ignore[attr-defined]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b""  # type: ignore[attr-defined]


def test_stop_closes_the_port_and_frees_it_at_once() -> None:
    port = free_port()
    first = MotoServer("127.0.0.1", port, threads=2)
    first.start()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/moto-api/")
    connection.getresponse().read()  # a kept-alive connection is open when the server stops
    first.stop()
    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises(ConnectionRefusedError):
        probe.connect()
    second = MotoServer("127.0.0.1", port, threads=2)  # SO_REUSEADDR: no wait for TIME_WAIT
    second.start()
    try:
        again = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        again.request("GET", "/moto-api/")
        assert again.getresponse().status == 200
    finally:
        second.stop()
