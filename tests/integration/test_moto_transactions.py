"""``local.moto_compat``: moto's TransactWriteItems backs up the items it writes, not whole tables, and a failed
transaction still writes nothing (as DynamoDB: all or none)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.table import Table

from local import moto_compat
from tests.integration.policy_pipeline import create_policy_table
from tests.probe import REGION

TABLE = "correlator-test-transactions"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        moto_compat.apply()
        create_policy_table(TABLE)
        client = boto3.client("dynamodb", region_name=REGION)
        for number in range(50):
            client.put_item(TableName=TABLE, Item={"id": {"S": f"other-{number}"}, "n": {"N": str(number)}})
        client.put_item(TableName=TABLE, Item={"id": {"S": "counter"}, "sent": {"N": "4"}})

        def refuse(self: Table, memo: dict[int, Any]) -> Table:
            raise AssertionError("the transaction copied the whole table")

        monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
        yield client


def marker(name: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {"id": {"S": name}, "outcome": {"S": "deliver"}},
            "ConditionExpression": "attribute_not_exists(id)",
        }
    }


def increment(limit: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": {"id": {"S": "counter"}},
            "UpdateExpression": "ADD sent :one",
            "ConditionExpression": "sent < :limit",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}},
        }
    }


def item(client: Any, name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(TableName=TABLE, Key={"id": {"S": name}}, ConsistentRead=True).get(
        "Item"
    )
    return found


def test_a_transaction_writes_every_item_without_copying_the_table(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[marker("decision-1"), increment(5)])

    assert item(dynamodb, "decision-1") == {"id": {"S": "decision-1"}, "outcome": {"S": "deliver"}}
    assert item(dynamodb, "counter") == {"id": {"S": "counter"}, "sent": {"N": "5"}}


def test_a_failed_transaction_writes_nothing_and_names_the_failed_item(dynamodb: Any) -> None:
    # GIVEN a counter at its limit; WHEN a transaction puts a new marker, then fails on the counter
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[marker("decision-2"), increment(4)])

    # THEN nothing of it is written: the marker is absent, the counter unchanged, the other items intact
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in raised.value.response["CancellationReasons"]] == [
        "None",
        "ConditionalCheckFailed",
    ]
    assert item(dynamodb, "decision-2") is None
    assert item(dynamodb, "counter") == {"id": {"S": "counter"}, "sent": {"N": "4"}}
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 51


def test_a_failed_transaction_restores_an_item_it_had_changed(dynamodb: Any) -> None:
    # GIVEN a transaction that updates the counter first, then fails on an existing marker
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "decision-3"}, "outcome": {"S": "throttled"}})
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[increment(10), marker("decision-3")])

    # THEN the counter's increment is rolled back and the marker keeps its first decision
    assert item(dynamodb, "counter") == {"id": {"S": "counter"}, "sent": {"N": "4"}}
    assert item(dynamodb, "decision-3") == {"id": {"S": "decision-3"}, "outcome": {"S": "throttled"}}
