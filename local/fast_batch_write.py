"""DynamoDB ``BatchWriteItem`` of plain put requests served by moto's backend without moto's dispatch.

The event log writer records every batch it appends (``correlator.ledger``: one item per message,
25 a call). Through moto's path each call parses its body against botocore's model, builds a
Flask request and ``BaseResponse`` and serialises the answer: ~3.5 ms of the stack's CPU per call,
~140 µs per logged event, more than half of it around the backend's own work, in the process
that answers PutEvents.

``install()`` answers, in front of moto's WSGI application, the case the writers make: a JSON
``DynamoDB_20120810.BatchWriteItem`` (uncompressed) whose ``RequestItems`` holds 1-25 put requests
into existing tables, each item's attributes strings (``S``) or numbers (``N``, parseable), every
key attribute of the table present. It runs moto's own checks first (empty key values, duplicate
items), then the same backend method moto's handler calls (``DynamoDBBackend.put_item``, item by
item, each giving way to PutEvents: ``local.priority``), and answers the bytes moto answers (body,
status, headers with the CRC32 botocore checks). Anything else (deletes, other attribute types,
``ReturnConsumedCapacity``, a missing table, more than 25 requests, what moto's checks refuse)
goes, unchanged, through moto's path, which gives its own answer and errors. Should a put fail
half-way, moto's path runs the call again: puts of the same items overwrite them with themselves.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal, InvalidOperation
from typing import Any

from local.fast_put_events import (
    Answer,
    account_of,
    count_request,
    plain_request,
    region_and_access_key,
    serve_directly,
)

TARGET = "DynamoDB_20120810.BatchWriteItem"
MAX_REQUESTS = 25  # DynamoDB's limit (moto does not hold calls to it: past it, moto's path)
EMPTY_KEY = (  # moto's message for an empty key value in a batch (moto.dynamodb.responses.batch_write_item)
    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty"
    " string value. Key: {}"
)
_installed = False


def install() -> None:
    """Serve plain BatchWriteItem calls to moto's server directly (idempotent; install before
    ``local.fast_put_events`` so that its give-way applies)."""
    global _installed
    if _installed:
        return
    serve_directly(TARGET, lambda environ, body: batch_write_item(environ, body))  # looked up at each call
    _installed = True


def batch_write_item(environ: dict[str, Any], body: bytes) -> Answer | None:
    """moto's answer to this BatchWriteItem call, or None when moto's own path must answer it."""
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.utilities import dynamo_json_dump
    from moto.dynamodb.responses import validate_put_has_empty_keys
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    if not plain_request(environ):
        return None
    try:
        request = json.loads(body)
    except ValueError:
        return None
    tables = request.get("RequestItems") if isinstance(request, dict) and request.keys() == {"RequestItems"} else None
    if not isinstance(tables, dict) or not tables:
        return None
    region, access_key = region_and_access_key(environ)
    account = account_of(environ, access_key)
    backend = dynamodb_backends[account][region]
    puts = _plain_puts(backend, tables)
    if puts is None:
        return None
    try:
        for table_name, item in puts:  # moto's checks, before anything is written
            validate_put_has_empty_keys(item, backend.tables[table_name], custom_error_msg=EMPTY_KEY)
    except MockValidationException:  # refused: moto's path answers with the error
        return None
    dumped = [dynamo_json_dump(item) for _, item in puts]
    if len(set(dumped)) != len(dumped):
        return None  # "Provided list of item keys contains duplicates", from moto's path
    count_request(account, access_key, "dynamodb", region)
    try:
        for table_name, item in puts:
            backend.put_item(table_name, item)
    except Exception:  # e.g. ItemSizeTooLarge, a key of the wrong type: whatever moto's path answers
        return None  # moto's path does it again and answers the error
    payload = json.dumps(
        {
            "UnprocessedItems": {},
            "ItemCollectionMetrics": {},
            "ConsumedCapacity": [
                {"TableName": name, "CapacityUnits": 1.0, "Table": {"CapacityUnits": 1.0}} for name in tables
            ],
        }
    ).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("server", "amazon.com"),
        ("x-amzn-requestid", gen_amzn_requestid_long()),
        ("x-amz-crc32", str(zlib.crc32(payload))),
        ("Content-Length", str(len(payload))),
        ("Access-Control-Allow-Origin", "*"),
    ]
    return "200 OK", headers, payload


def _plain_puts(backend: Any, tables: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
    """Every (table, item) of the call when each request is a put of plain attributes into an existing table
    with all its key attributes; None otherwise."""
    puts: list[tuple[str, dict[str, Any]]] = []
    for table_name, requests in tables.items():
        table = backend.tables.get(table_name) if isinstance(table_name, str) else None
        if table is None or not isinstance(requests, list) or not requests:
            return None
        for request in requests:
            item = _put_item(request)
            if item is None or not all(key in item for key in table.table_key_attrs):
                return None
            puts.append((table_name, item))
    return puts if len(puts) <= MAX_REQUESTS else None


def _put_item(request: Any) -> dict[str, Any] | None:
    """The item of ``{"PutRequest": {"Item": {...}}}`` when every attribute is ``{"S": str}`` or a parseable
    ``{"N": str}``."""
    if not isinstance(request, dict) or request.keys() != {"PutRequest"}:
        return None
    put = request["PutRequest"]
    item = put.get("Item") if isinstance(put, dict) and put.keys() == {"Item"} else None
    if not isinstance(item, dict) or not item:
        return None
    for value in item.values():
        if not isinstance(value, dict) or len(value) != 1:
            return None
        kind, text = next(iter(value.items()))
        if not isinstance(text, str) or kind not in ("S", "N"):
            return None
        if kind == "N" and not _number(text):
            return None
    return item


def _number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False
