"""Behaviour that AWS has and moto 5.2 lacks, patched into moto for the tests and the local stack.

Only documented AWS behaviour goes here, so code that is correct on AWS is also tested as such:

* ``CompleteMultipartUpload`` honours ``If-Match`` (S3 conditional writes, Nov 2024): the upload
  commits only if the object still has that ETag, else 412 PreconditionFailed. moto 5.2 checks
  only ``If-None-Match`` there. The S3 appender relies on this to append to objects >= 5 MiB.
* Every S3 object request is atomic. moto checks a conditional write's ETag and stores the
  object in separate Python steps, so two threads of its server could both pass the check;
  real S3 lets only one of them win.
* A DISABLED EventBridge rule does not deliver (moto 5.2 delivers anyway).
* Lambda rule targets: moto cannot invoke Lambda (PutEvents raises). ``route_lambda_targets``
  lets the local stack say which queue stands in for each function; a matching event goes to
  that queue at delivery time, while the rule keeps its real Lambda target, as on AWS. An
  asynchronous ``Invoke`` (``InvocationType=Event``, how the policy flusher hands a digest to an
  action function) of a routed function goes to the same queue.
* Firehose rule targets: moto raises NotImplementedError. A matching event goes, after the
  target's InputTransformer, to moto's ``PutRecordBatch`` of that stream as one record (with a
  newline when the stream appends a delimiter, which moto's S3 destination does not). moto writes
  one S3 object per call (no buffering) and S3's notifications of it fire in the server. A record
  Firehose refuses is logged, where EventBridge would retry it and then dead-letter it.
* Event patterns are validated and matched as EventBridge does (``local.event_pattern``, after
  aws/event-ruler) instead of by moto's engine, which does not flatten arrays of objects, counts
  ``[]``/``{}`` as present, lets ``true`` equal ``1`` and accepts invalid patterns. ``PutRule``
  refuses an invalid pattern with InvalidEventPatternException and creates nothing; a rule with
  only a ScheduleExpression matches no event (moto 5.2 sends it every event).
* ``TestEventPattern`` answers ``{"Result": bool}``; moto 5.2 has an empty stub. The same engine
  as delivery decides, so dry runs agree with delivery.
* Every DynamoDB item write is atomic: moto evaluates a ``ConditionExpression`` and stores the
  item in separate Python steps, so two threads could both pass the condition; DynamoDB lets
  only one conditional write win (and a ``TransactWriteItems`` copies tables while other threads
  write them). The rules API's write leases and the delivery policies' counters and groups rely
  on this.
* A target's constant ``Input`` is what it receives (moto 5.2 sends the whole event).
* A rule target receives the event with its ``account`` field: moto 5.2's default input template
  (no InputTransformer) leaves it out.
* An archive replay sends only the events of [EventStartTime, EventEndTime), only to the rules
  in ``Destination.FilterArns`` when given, through each target's InputTransformer, as AWS
  does. moto 5.2 replays every archived event to every rule, untransformed.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from local import moto_throughput

_applied = False
_lambda_router: Callable[[str], str | None] | None = None


def route_lambda_targets(router: Callable[[str], str | None] | None) -> None:
    """Deliver to ``router(function_arn)`` (a queue ARN) what rules send to that Lambda function."""
    global _lambda_router
    _lambda_router = router


def apply() -> None:
    """Patch moto in this process (idempotent)."""
    global _applied
    if _applied:
        return
    from moto.s3.exceptions import MissingKey, PreconditionFailed
    from moto.s3.responses import S3Response

    _serialize_s3_object_requests(S3Response)
    original = S3Response._key_response_post

    @functools.wraps(original)
    def key_response_post(
        self: Any, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str
    ) -> Any:
        if_match = self.headers.get("If-Match")
        if query.get("uploadId") and if_match:
            existing = self.backend.get_object(bucket_name, key_name)
            committed = existing is not None and existing.multipart and existing.multipart.id == query["uploadId"][0]
            if existing is None:
                raise MissingKey(key=key_name)
            if not committed and if_match.replace('"', "") != existing.etag.replace('"', ""):
                raise PreconditionFailed("If-Match")
        return original(self, request, body, bucket_name, query, key_name)

    S3Response._key_response_post = key_response_post  # type: ignore[method-assign]
    moto_throughput.apply()  # standard queues cost O(1) per message (see local.moto_throughput)
    _patch_event_patterns()
    _patch_test_event_pattern()
    _patch_rule_delivery()
    _patch_replay()
    _transactions_back_up_items_not_tables()
    _serialize_dynamodb_item_writes()
    _patch_async_invoke()
    _patch_event_account()
    _applied = True


def _delivered_target(target: dict[str, Any], router: Callable[[str], str | None] | None) -> dict[str, Any]:
    """What moto delivers to: a function's local queue; a constant ``Input`` as a template without paths."""
    delivered = dict(target)
    if router is not None and ":lambda:" in target["Arn"]:
        delivered["Arn"] = router(target["Arn"]) or target["Arn"]
    if "Input" in target:  # moto 5.2 ignores Input and sends the whole event
        delivered["InputTransformer"] = {"InputTemplate": target["Input"]}
    return delivered


def _patch_rule_delivery() -> None:
    from moto.events.models import Rule

    original = Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.state == "DISABLED":
            return None
        router = _lambda_router
        streams = [target for target in self.targets if ":firehose:" in target["Arn"]]
        routes = router is not None and any(":lambda:" in target["Arn"] for target in self.targets)
        constant = any("Input" in target for target in self.targets)
        if not routes and not constant and not streams:
            return original(self, original_event, transform_input)
        if streams and self.event_pattern.matches_event(original_event):
            for target in streams:
                _put_firehose_record(_delivered_target(target, None), original_event, transform_input)
        routed = copy.copy(self)  # the rule itself keeps its targets
        routed.targets = [_delivered_target(target, router) for target in self.targets if target not in streams]
        return original(routed, original_event, transform_input) if routed.targets else None

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


class _EveryEvent:
    """The pattern a scheduled rule's own events are sent with: they are the rule's, not matched."""

    @staticmethod
    def matches_event(event: Any) -> bool:
        return True


def send_scheduled(rule: Any, event: dict[str, Any]) -> None:
    """Deliver a scheduled rule's event to its targets (InputTransformer, DISABLED and function routing apply)."""
    scheduled = copy.copy(rule)
    scheduled.event_pattern = _EveryEvent()
    scheduled.send_to_targets(event)


def _patch_event_account() -> None:
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>", ', '"source": "<source>", "account": "<account>", '
        )


def _put_firehose_record(target: Any, event: Any, transform_input: bool) -> None:
    """One rule delivery to a Firehose stream, as EventBridge makes it: the transformed event, one record."""
    import json
    import logging

    from moto.events.utils import EventTemplateParser
    from moto.firehose.models import firehose_backends

    transformer = target.get("InputTransformer") or {}
    body = (
        EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate") or "",
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        if transform_input
        else event
    )
    _, _, _, region, account, resource = target["Arn"].split(":", 5)
    name = resource.split("/", 1)[-1]
    backend = firehose_backends[account][region]
    stream = backend.delivery_streams.get(name)
    processors = [
        processor.get("Type")
        for destination in (stream.destinations if stream else [])
        for config in destination.values()
        if isinstance(config, dict)
        for processor in ((config.get("ProcessingConfiguration") or {}).get("Processors") or [])
    ]
    delimiter = b"\n" if "AppendDelimiterToRecord" in processors else b""
    try:
        backend.put_record_batch(name, [{"Data": json.dumps(body).encode() + delimiter}])
    except Exception:  # EventBridge would retry, then dead-letter: locally the failure is logged
        logging.getLogger("local.delivery").exception("could not put a record on Firehose stream %s", name)


def _patch_async_invoke() -> None:
    from urllib.parse import unquote

    from moto.awslambda.responses import LambdaResponse
    from moto.sqs.models import sqs_backends

    original = LambdaResponse.invoke

    @functools.wraps(original)
    def invoke(self: Any) -> Any:
        router = _lambda_router
        if router is None or self.headers.get("X-Amz-Invocation-Type") != "Event":
            return original(self)
        name = unquote(self.path.rsplit("/", 2)[-2])
        arn = (
            name if name.startswith("arn:") else f"arn:aws:lambda:{self.region}:{self.current_account}:function:{name}"
        )
        queue_arn = router(arn)
        if queue_arn is None:
            return original(self)
        _, _, _, region, account, queue_name = queue_arn.split(":", 5)
        body = self.body.decode("utf-8") if isinstance(self.body, bytes) else str(self.body)
        sqs_backends[account][region].send_message(queue_name, body)
        return 202, {"status": "202"}, ""

    LambdaResponse.invoke = invoke  # type: ignore[method-assign]


def _serialize_s3_object_requests(response_class: Any) -> None:
    import threading

    lock = threading.RLock()
    original = response_class._key_response

    @functools.wraps(original)
    def atomic(self: Any, request: Any, full_url: str) -> Any:
        with lock:
            return original(self, request, full_url)

    response_class._key_response = atomic


def _serialize_dynamodb_item_writes() -> None:
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def atomic(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return write

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))


def _transactions_back_up_items_not_tables() -> None:
    """moto's TransactWriteItems deep-copies every table it writes to, to roll back if the transaction fails:
    each transaction costs a copy of every item of the table, so n decisions on a table of one marker per
    decision cost O(n²) (a 10,000-event policy storm: ~10^9 attribute copies). DynamoDB touches only the items
    named. Here the transaction backs up those items (a copy of each, or "absent") and a failed one restores
    them; the tables themselves are no longer copied. Runs under ``_serialize_dynamodb_item_writes``' lock."""
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    class TablesUncopied:  # the ``copy`` module as moto's transaction sees it: a table "copy" is the table
        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[Any, DynamoType, DynamoType | None, Any]] = []
        for item in transact_items:
            op = next(iter(item.values())) if len(item) == 1 else {}
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item")
            if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                continue  # moto rejects it before writing anything
            hash_value = DynamoType(key[table.hash_key_attr])
            range_raw = key.get(table.range_key_attr) if table.range_key_attr else None
            range_value = DynamoType(range_raw) if range_raw is not None else None
            try:
                current = table.get_item(hash_value, range_value)
            except MockValidationException:  # a key without its range key: moto refuses the transaction itself
                continue
            backups.append((table, hash_value, range_value, copy.deepcopy(current)))
        models.copy = TablesUncopied  # type: ignore[attr-defined,assignment]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, saved in reversed(backups):
                items = table.items[hash_value] if range_value is not None else table.items
                slot = range_value if range_value is not None else hash_value
                if saved is None:
                    items.pop(slot, None)
                else:
                    items[slot] = saved
            raise
        finally:
            models.copy = copy  # type: ignore[attr-defined]

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


class RulerEventPattern:
    """What moto's rules keep as their pattern: validated and matched by ``local.event_pattern``.

    A module-level class (not a subclass made inside ``apply``) so that moto's state pickles.
    """

    def __init__(self, raw_pattern: str | None) -> None:
        from local.event_pattern import EventPattern

        self._raw_pattern = raw_pattern
        self.compiled = EventPattern(raw_pattern or None)

    def matches_event(self, event: Any) -> bool:
        return self.compiled.matches(event)

    def dump(self) -> str | None:
        return self._raw_pattern

    def get_pattern(self) -> dict[str, Any]:
        import json

        loaded: dict[str, Any] = json.loads(self._raw_pattern) if self._raw_pattern else {}
        return loaded


def _patch_event_patterns() -> None:
    from moto.events import models
    from moto.events.exceptions import InvalidEventPatternException

    from local.event_pattern import InvalidEventPattern

    def load(cls: Any, raw_pattern: str | None) -> RulerEventPattern:
        try:
            return RulerEventPattern(raw_pattern)
        except InvalidEventPattern as error:
            raise InvalidEventPatternException(reason=str(error)) from None

    models.EventPattern.load = classmethod(load)  # type: ignore[method-assign,assignment]


def _patch_test_event_pattern() -> None:
    import json

    from moto.core.exceptions import JsonRESTError
    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler

    def test_event_pattern(self: Any) -> str:
        pattern = EventPattern.load(self._get_param("EventPattern"))  # InvalidEventPatternException
        try:
            event = json.loads(self._get_param("Event"))
        except (ValueError, TypeError) as error:
            raise JsonRESTError("InvalidEventPatternException", str(error)) from error
        return json.dumps({"Result": bool(pattern.matches_event(event))})

    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[method-assign,assignment]


def _patch_replay() -> None:
    from datetime import UTC, datetime

    from moto.core.utils import unix_time
    from moto.events.models import Replay, ReplayState, events_backends
    from moto.moto_api._internal import mock_random

    def moment(value: Any) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    def replay_events(self: Any, archive: Any) -> None:
        backend = events_backends[self.account_id][self.region]
        bus = backend.describe_event_bus(self.destination["Arn"].split("/")[-1])
        start, end = moment(self.event_start_time), moment(self.event_end_time)
        only = set(self.destination.get("FilterArns") or [])
        for event in archive.events:
            if not start <= moment(event["time"]) < end:
                continue
            replayed = dict(event, **{"id": str(mock_random.uuid4()), "replay-name": self.name})
            for rule in list(bus.rules.values()):
                if not only or rule.arn in only:
                    rule.send_to_targets(replayed)  # type: ignore[arg-type]
        self.state = ReplayState.COMPLETED
        self.end_time = unix_time()

    Replay.replay_events = replay_events  # type: ignore[method-assign]
