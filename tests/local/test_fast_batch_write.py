"""local.fast_batch_write: BatchWriteItem of plain puts served without moto's dispatch answers and writes what
moto answers and writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from local import fast_batch_write, moto_compat
from tests.local.short_paths import answer

AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def put(item_id: str, **attributes: dict[str, Any]) -> dict[str, Any]:
    return {"PutRequest": {"Item": {"id": {"S": item_id}, "expiration": {"N": "1765267200"}, **attributes}}}


@pytest.fixture
def server() -> Iterator[Client]:
    """moto's server application (no socket) with the short path installed, and two tables (one with a range key)."""
    moto_compat.apply()
    fast_batch_write.install()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(
            TableName="ledger",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        dynamodb.create_table(
            TableName="ranged",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "at", "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        )
        yield Client(DomainDispatcherApplication(create_backend_app))


def table_items() -> dict[str, list[dict[str, Any]]]:
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
    return {name: sorted(dynamodb.scan(TableName=name)["Items"], key=repr) for name in ("ledger", "ranged")}


def empty_tables() -> None:
    dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
    for name, keys in (("ledger", ("id",)), ("ranged", ("id", "at"))):
        for item in dynamodb.scan(TableName=name)["Items"]:
            dynamodb.delete_item(TableName=name, Key={key: item[key] for key in keys})


def post(client: Client, body: bytes, *, slim: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The answer and the tables' items after it, with the short path on or off."""
    empty_tables()
    response = answer(
        client,
        body,
        target="DynamoDB_20120810.BatchWriteItem",
        content_type="application/x-amz-json-1.0",
        authorization=AUTHORIZATION,
        short_path=None if slim else (fast_batch_write, "batch_write_item"),
        monkeypatch=monkeypatch,
    )
    return (*response, table_items())


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param({"ledger": [put("a")]}, id="one"),
        pytest.param({"ledger": [put(f"m{n}", intent={"S": "i"}, object={"S": "k"}) for n in range(25)]}, id="25"),
        pytest.param({"ledger": [put("a")], "ranged": [put("a", at={"N": "1.5"})]}, id="two tables"),
    ],
)
def test_the_short_path_answers_and_writes_what_moto_does(
    server: Client, monkeypatch: pytest.MonkeyPatch, requests: dict[str, Any]
) -> None:
    # WHEN the same BatchWriteItem goes through moto's path, then the short path
    body = json.dumps({"RequestItems": requests}).encode()
    through_moto = post(server, body, slim=False, monkeypatch=monkeypatch)
    direct = post(server, body, slim=True, monkeypatch=monkeypatch)

    # THEN the answers are byte-equal (CRC32 header included) and the tables hold the same items: every put
    assert direct == through_moto
    assert direct[0] == "200 OK"
    assert sum(len(items) for items in direct[3].values()) == sum(len(puts) for puts in requests.values())


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="malformed JSON"),
        pytest.param(json.dumps({"RequestItems": {}}).encode(), id="no requests"),
        pytest.param(json.dumps({"RequestItems": {"nope": [put("a")]}}).encode(), id="unknown table"),
        pytest.param(json.dumps({"RequestItems": {"ledger": [put("")]}}).encode(), id="empty key"),
        pytest.param(json.dumps({"RequestItems": {"ledger": [put("a"), put("a")]}}).encode(), id="duplicates"),
        pytest.param(json.dumps({"RequestItems": {"ranged": [put("a")]}}).encode(), id="missing range key"),
        pytest.param(json.dumps({"RequestItems": {"ledger": [put("a", n={"N": "abc"})]}}).encode(), id="bad number"),
        pytest.param(json.dumps({"RequestItems": {"ledger": [put(str(n)) for n in range(26)]}}).encode(), id="26"),
        pytest.param(
            json.dumps({"RequestItems": {"ledger": [{"DeleteRequest": {"Key": {"id": {"S": "a"}}}}]}}).encode(),
            id="a delete",
        ),
        pytest.param(
            json.dumps({"RequestItems": {"ledger": [put("a", blob={"B": "AAEC"}, flag={"BOOL": True})]}}).encode(),
            id="other attribute types",
        ),
        pytest.param(
            json.dumps({"RequestItems": {"ledger": [put("a")]}, "ReturnConsumedCapacity": "TOTAL"}).encode(),
            id="consumed capacity asked",
        ),
    ],
)
def test_requests_the_short_path_does_not_take_get_moto_s_own_answer(
    server: Client, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    # WHEN the same request goes through moto's path, then with the short path installed
    through_moto = post(server, body, slim=False, monkeypatch=monkeypatch)
    direct = post(server, body, slim=True, monkeypatch=monkeypatch)

    # THEN both give moto's answer and leave the same items
    assert direct == through_moto
    # AND the short path itself, asked in the tables' region, leaves the call to moto's path and writes nothing
    empty_tables()
    assert fast_batch_write.batch_write_item({"HTTP_AUTHORIZATION": AUTHORIZATION}, body) is None
    assert table_items() == {"ledger": [], "ranged": []}


def test_the_short_path_answers_without_moto_s_dispatch(server: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN moto's dispatch made to fail
    from moto.dynamodb.responses import DynamoHandler

    def refused(self: Any) -> Any:
        raise AssertionError("moto's path was taken")

    monkeypatch.setattr(DynamoHandler, "batch_write_item", refused)

    # WHEN a plain batch of puts is written
    status, _, payload, items = post(
        server,
        json.dumps({"RequestItems": {"ledger": [put("a"), put("b")]}}).encode(),
        slim=True,
        monkeypatch=monkeypatch,
    )

    # THEN it is answered and written all the same
    assert (status, json.loads(payload)["UnprocessedItems"]) == ("200 OK", {})
    assert [item["id"]["S"] for item in items["ledger"]] == ["a", "b"]
