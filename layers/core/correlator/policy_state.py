"""Delivery policy state in DynamoDB: decisions, counters, dedup keys and groups, and their flushes.

Every decision is made once per (rule, event): a *decision marker* item is written in the same
transaction as the state change it records (a counter increment, a dedup key, a group member),
with a condition that it does not exist yet. A redelivered event (Lambda's retries, EventBridge's
at-least-once delivery, a crash before the idempotency record) finds its marker and gets the same
decision back; no counter or group counts it twice. Concurrent invocations race only through
conditional writes, so a throttle of N never lets N + 1 through and a group never loses a member.

Groups are flushed through an SQS queue: the invocation that opens a group (or a generation of
it) sends a flush message delayed until the group is due (chained in 15-minute steps for longer
waits). The flusher moves the members to an *outbox* and advances the group's generation in one
conditional update, publishes the digest as a ``policy.flushed`` internal event, then clears the
outbox; a redelivered flush message finds the generation moved on and does nothing (or publishes
an outbox a crashed flusher left behind).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from correlator.policies import DeliveryPolicy, GroupPolicy, key_of

logger = logging.getLogger(__name__)

MARKER_TTL_SECONDS = 7 * 86_400  # as long as idempotency records: beyond every redelivery
MAX_SQS_DELAY_SECONDS = 900
MAX_TRANSACTION_ATTEMPTS = 8
SUMMARY_CHARS = 256
# The event fields a digest lists for each member (clipped): enough to read, small enough to fit.
MEMBER_FIELDS = ("id", "time", "type", "level", "object", "info", "summary", "system_id", "subject")

Outcome = Literal["deliver", "throttled", "deduplicated", "grouped", "muted", "held"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one delivery; ``replayed`` when it was decided by an earlier attempt."""

    outcome: Outcome
    reason: str = ""
    group: str | None = None
    due: float | None = None
    replayed: bool = False

    @property
    def deliver(self) -> bool:
        return self.outcome == "deliver"

    def to_item(self) -> dict[str, Any]:
        return {"outcome": {"S": self.outcome}, "reason": {"S": self.reason}, "group": {"S": self.group or ""}}


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """Where a held, grouped or digested delivery goes, and when the group is first due."""

    name: str  # "group", "throttle" or "held": which policy collects it
    labels: dict[str, str]
    pk: str
    wait: float
    interval: float
    repeat: float
    limit: int
    fixed_due: float | None = None  # a hold: due when the mute window ends, whatever the group timings


@dataclass
class Clock:
    now: Callable[[], float] = time.time
    sleep: Callable[[float], Any] = time.sleep


@dataclass
class PolicyState:
    """Decides deliveries and flushes groups; ``table`` has a string hash key ``id`` and TTL on ``expiration``."""

    dynamodb: Any
    table: str
    send_flush: Callable[[dict[str, Any], int], None]  # (message, delay seconds)
    clock: Clock = field(default_factory=Clock)

    # -- deciding ---------------------------------------------------------------------------
    def decide(
        self, rule: str, policy: DeliveryPolicy, detail: Mapping[str, Any], flush: Mapping[str, Any] | None = None
    ) -> Decision:
        """The decision for event ``detail`` of rule ``rule`` (made once; later calls get it back).

        ``flush``: what a flush message of a group this opens carries besides the group (the rule JSON
        and the action, for the flusher to hand the digest to).
        """
        context = dict(flush or {})
        event_id = str(detail["id"])
        marker = self._marker_key(rule, event_id)
        now = self.clock.now()
        moment = datetime.fromtimestamp(now, UTC)
        if policy.muted(moment):
            if policy.when_muted == "drop":
                return self._record(marker, Decision("muted", "mute"))
            until = policy.unmuted_at(moment)
            if until is None:
                return self._record(marker, Decision("muted", "mute: no end within a year"))
            spec = self._group_spec(rule, "held", policy.group, detail, fixed_due=until.timestamp())
            decision = Decision("held", "mute", spec.pk, until.timestamp())
            return self._into_group(marker, spec, detail, decision, context)
        checks: list[tuple[str, dict[str, Any]]] = []
        if policy.dedup is not None:
            key, _ = key_of(detail, policy.dedup.key)
            checks.append(("deduplicated", self._dedup_put(rule, key, event_id, now, int(policy.dedup.window))))
        if policy.throttle is not None:
            key, _ = key_of(detail, policy.throttle.key)
            window = int(policy.throttle.window)
            checks.append(("throttled", self._throttle_update(rule, key, now, window, policy.throttle.limit)))
        elif policy.group is not None:
            spec = self._group_spec(rule, "group", policy.group, detail)
            checks_only = [item for _, item in checks]
            decision = Decision("grouped", "group", spec.pk)
            return self._into_group(marker, spec, detail, decision, context, checks_only, checks)
        return self._deliver_or(marker, checks, rule, policy, detail, context)

    def preview(self, rule: str, policy: DeliveryPolicy, detail: Mapping[str, Any]) -> Decision:
        """What ``decide`` would decide for ``detail`` now, given the current state, changing nothing (a dry run).

        Reads only (consistent reads): the dedup key, the throttle window's counter, the group. A race
        with live deliveries can make the real decision differ; the preview is what the state says now.
        """
        now = self.clock.now()
        moment = datetime.fromtimestamp(now, UTC)
        if policy.muted(moment):
            until = policy.unmuted_at(moment) if policy.when_muted == "hold" else None
            if until is None:
                return Decision("muted", "mute" if policy.when_muted == "drop" else "mute: no end within a year")
            spec = self._group_spec(rule, "held", policy.group, detail, fixed_due=until.timestamp())
            return Decision("held", "mute", spec.pk, until.timestamp())
        if policy.dedup is not None:
            key, _ = key_of(detail, policy.dedup.key)
            item = self._read(self._dedup_key(rule, key))
            if item is not None and float(item.get("until_ts", {}).get("N", "0")) > now:
                return Decision("deduplicated", "drop")
        if policy.throttle is not None:
            key, _ = key_of(detail, policy.throttle.key)
            window = int(policy.throttle.window)
            item = self._read(self._throttle_key(rule, key, now, window))
            if item is None or int(item.get("sent", {}).get("N", "0")) < policy.throttle.limit:
                return Decision("deliver")
            if policy.throttle.excess == "drop":
                return Decision("throttled", "drop")
            spec = self._group_spec(rule, "throttle", policy.group, detail, window=window)
            return Decision("throttled", "digest", spec.pk, self._due_preview(spec, now))
        if policy.group is not None:
            spec = self._group_spec(rule, "group", policy.group, detail)
            return Decision("grouped", "group", spec.pk, self._due_preview(spec, now))
        return Decision("deliver")

    def _read(self, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item"
        )
        return item

    def _due_preview(self, spec: GroupSpec, now: float) -> float:
        """When the group ``spec`` would go out if the event joined it now (``_schedule`` without its writes)."""
        item = self._read({"id": {"S": spec.pk}}) or {}
        gen = int(item.get("gen", {}).get("N", "0"))
        if "scheduled_gen" in item and int(item["scheduled_gen"]["N"]) >= gen and "due_ts" in item:
            return max(now, float(item["due_ts"]["N"]))
        last_flush = float(item["last_flush"]["N"]) if "last_flush" in item else None
        if last_flush is not None and now - last_flush < spec.repeat:
            return max(now, last_flush + spec.interval)
        return now + spec.wait

    def _deliver_or(
        self,
        marker: dict[str, Any],
        checks: list[tuple[str, dict[str, Any]]],
        rule: str,
        policy: DeliveryPolicy,
        detail: Mapping[str, Any],
        context: dict[str, Any],
    ) -> Decision:
        failed, replay = self._transact(marker, Decision("deliver"), [item for _, item in checks])
        if replay is not None:
            return replay
        if failed is None:
            return Decision("deliver")
        outcome = checks[failed][0]
        if outcome == "throttled" and policy.throttle is not None and policy.throttle.excess == "digest":
            spec = self._group_spec(rule, "throttle", policy.group, detail, window=int(policy.throttle.window))
            return self._into_group(marker, spec, detail, Decision("throttled", "digest", spec.pk), context)
        return self._record(marker, Decision(outcome, "drop"))  # type: ignore[arg-type]

    def _record(self, marker: dict[str, Any], decision: Decision) -> Decision:
        _, replay = self._transact(marker, decision, [])
        return replay or decision

    def _into_group(
        self,
        marker: dict[str, Any],
        spec: GroupSpec,
        detail: Mapping[str, Any],
        decision: Decision,
        context: dict[str, Any],
        checks: list[dict[str, Any]] | None = None,
        named: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> Decision:
        """Add the event to its group (and open a flush when it starts a generation)."""
        now = self.clock.now()
        member = {key: _clip(detail.get(key)) for key in MEMBER_FIELDS if detail.get(key) is not None}
        for with_member in (True, False):  # members are listed up to the limit; beyond it only counted
            update = self._group_update(spec, member, now, with_member, int(detail.get("hops") or 0))
            failed, replay = self._transact(marker, decision, [*(checks or []), update])
            if replay is not None:
                return replay
            if failed is None:
                break
            if named is not None and failed < len(named):  # a dedup check in front of the group
                return self._record(marker, Decision(named[failed][0], "drop"))  # type: ignore[arg-type]
        due = self._schedule(spec, now, context)
        return Decision(decision.outcome, decision.reason, spec.pk, due)

    # -- DynamoDB items -------------------------------------------------------------------
    def _marker_key(self, rule: str, event_id: str) -> dict[str, Any]:
        return {"id": {"S": f"policy#decision#{rule}#{event_id}"}}

    def _dedup_key(self, rule: str, key: str) -> dict[str, Any]:
        return {"id": {"S": f"policy#dedup#{rule}#{key}"}}

    def _throttle_key(self, rule: str, key: str, now: float, window: int) -> dict[str, Any]:
        return {"id": {"S": f"policy#throttle#{rule}#{key}#{int(now // window) * window}"}}

    def _dedup_put(self, rule: str, key: str, event_id: str, now: float, window: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._dedup_key(rule, key),
                "UpdateExpression": "SET event_id = :id, until_ts = :until, expiration = :exp",
                "ConditionExpression": "attribute_not_exists(until_ts) OR until_ts <= :now",
                "ExpressionAttributeValues": {
                    ":id": {"S": event_id},
                    ":until": {"N": str(now + window)},
                    ":exp": {"N": str(int(now + window) + 60)},
                    ":now": {"N": str(now)},
                },
            }
        }

    def _throttle_update(self, rule: str, key: str, now: float, window: int, limit: int) -> dict[str, Any]:
        start = int(now // window) * window
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._throttle_key(rule, key, now, window),
                "UpdateExpression": "ADD sent :one SET expiration = :exp",
                "ConditionExpression": "attribute_not_exists(sent) OR sent < :limit",
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":exp": {"N": str(start + window + 60)},
                },
            }
        }

    def _group_spec(
        self,
        rule: str,
        name: str,
        group: GroupPolicy | None,
        detail: Mapping[str, Any],
        *,
        window: int | None = None,
        fixed_due: float | None = None,
    ) -> GroupSpec:
        fields = group.group_by if group is not None else []
        key, labels = key_of(detail, fields)
        if group is not None:
            timings = (float(group.group_wait), float(group.group_interval), float(group.repeat_interval))
            limit = group.limit
        else:  # a throttle digest without a group: one digest per throttle window
            span = float(window or 0)
            timings, limit = (span, span, span), 20
        return GroupSpec(name, labels, f"policy#group#{rule}#{name}#{key}", *timings, limit, fixed_due)

    def _group_update(
        self, spec: GroupSpec, member: dict[str, Any], now: float, with_member: bool, hops: int
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":hops": {"N": str(hops)},
            ":one": {"N": "1"},
            ":now": {"N": str(now)},
            ":labels": {"S": json.dumps(spec.labels, sort_keys=True)},
            ":zero": {"N": "0"},
        }
        sets = [
            "first_ts = if_not_exists(first_ts, :now)",
            "last_ts = :now",
            "labels = :labels",
            "gen = if_not_exists(gen, :zero)",
            "hops = if_not_exists(hops, :hops)",
        ]
        condition = None
        if with_member:
            values[":member"] = {"L": [{"S": json.dumps(member, sort_keys=True)}]}
            values[":empty"] = {"L": []}
            values[":limit"] = {"N": str(spec.limit)}
            sets.append("members = list_append(if_not_exists(members, :empty), :member)")
            condition = "attribute_not_exists(#count) OR #count < :limit"
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"id": {"S": spec.pk}},
            "UpdateExpression": f"ADD #count :one SET {', '.join(sets)}",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": values,
        }
        if condition:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _transact(
        self, marker: dict[str, Any], decision: Decision, updates: list[dict[str, Any]]
    ) -> tuple[int | None, Decision | None]:
        """Write the marker with ``updates``: (index of the failed update, None), (None, None) when all
        were written, or (None, the earlier decision) when the marker already existed."""
        put = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **marker,
                    **decision.to_item(),
                    "expiration": {"N": str(int(self.clock.now()) + MARKER_TTL_SECONDS)},
                },
                "ConditionExpression": "attribute_not_exists(id)",
            }
        }
        for attempt in range(1, MAX_TRANSACTION_ATTEMPTS + 1):
            try:
                self.dynamodb.transact_write_items(TransactItems=[put, *updates])
                return None, None
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return None, self._earlier(marker)
            failed = next(
                (index - 1 for index, code in enumerate(reasons) if index and code == "ConditionalCheckFailed"), None
            )
            if failed is not None:
                return failed, None
            # TransactionConflict (a concurrent writer on the same item) or throttling: try again.
            self.clock.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter
        raise RuntimeError("policy state: too many transaction conflicts")

    def _earlier(self, marker: dict[str, Any]) -> Decision:
        item = self.dynamodb.get_item(TableName=self.table, Key=marker, ConsistentRead=True).get("Item", {})
        return Decision(
            outcome=item.get("outcome", {}).get("S", "deliver"),
            reason=item.get("reason", {}).get("S", ""),
            group=item.get("group", {}).get("S") or None,
            replayed=True,
        )

    # -- flushing ------------------------------------------------------------------------
    def _schedule(self, spec: GroupSpec, now: float, context: dict[str, Any]) -> float:
        """Claim the flush of the group's current generation; send its message if this call claimed it."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"id": {"S": spec.pk}}, ConsistentRead=True)["Item"]
        gen = int(item["gen"]["N"])
        last_flush = float(item["last_flush"]["N"]) if "last_flush" in item else None
        if spec.fixed_due is not None:
            due = spec.fixed_due
        elif last_flush is not None and now - last_flush < spec.repeat:
            due = max(now, last_flush + spec.interval)
        else:
            due = now + spec.wait
        # Most deliveries join a generation whose flush is claimed already (the read shows it, and a claim only
        # ever moves forward): they need no conditional write that would fail.
        claimed = "scheduled_gen" in item and int(item["scheduled_gen"]["N"]) >= gen
        try:
            if not claimed:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key={"id": {"S": spec.pk}},
                    UpdateExpression="SET scheduled_gen = :gen, due_ts = :due",
                    ConditionExpression="attribute_not_exists(scheduled_gen) OR scheduled_gen < :gen",
                    ExpressionAttributeValues={":gen": {"N": str(gen)}, ":due": {"N": str(due)}},
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            claimed = True
        if claimed:
            scheduled_due = float(item.get("due_ts", {}).get("N", due))
            if now < scheduled_due + 300:
                return scheduled_due
            due = now  # the flush should have happened 5 minutes ago: its message was lost, send another
        message = {"pk": spec.pk, "gen": gen, "due": due, **context}
        self.send_flush(message, int(max(0, due - now)))
        return due

    def flush(self, message: Mapping[str, Any]) -> dict[str, Any] | None:
        """Handle one flush message: the digest to publish (``None`` when there is nothing, or not yet).

        The members move to the group's outbox and its generation advances in one conditional
        update (optimistic: a member added meanwhile makes it read and try again, so none is lost).
        Call ``flushed`` once the digest is published; a redelivered message finds the outbox of a
        flusher that crashed before that and returns it again.
        """
        now = self.clock.now()
        due = float(message["due"])
        if now < due - 1:
            self.send_flush(dict(message), int(min(MAX_SQS_DELAY_SECONDS, due - now)))
            return None
        key = {"id": {"S": str(message["pk"])}}
        gen = int(message["gen"])
        for _ in range(MAX_TRANSACTION_ATTEMPTS):
            item = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
            if item is None:
                return None
            if int(item["gen"]["N"]) != gen:
                outbox = item.get("outbox", {}).get("S")
                return json.loads(outbox) if outbox and int(item["gen"]["N"]) == gen + 1 else None
            digest = _digest(item, now)
            count = item.get("count", {}).get("N", "0")
            outbox_values = {":digest": {"S": json.dumps(digest)}} if digest is not None else {}
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=(
                        ("SET outbox = :digest, " if digest is not None else "SET ")
                        + "gen = :next, last_flush = :now, members = :empty, #count = :zero REMOVE first_ts"
                    ),
                    ConditionExpression="gen = :gen AND #count = :count",
                    ExpressionAttributeNames={"#count": "count"},
                    ExpressionAttributeValues={
                        ":gen": {"N": str(gen)},
                        ":next": {"N": str(gen + 1)},
                        ":now": {"N": str(now)},
                        ":empty": {"L": []},
                        ":zero": {"N": "0"},
                        ":count": {"N": count},
                        **outbox_values,
                    },
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue  # a member arrived (or another flusher won): read again
            return digest
        raise RuntimeError("policy state: the group kept changing while flushing")

    def flushed(self, pk: str) -> None:
        """The digest of group ``pk`` was published: clear its outbox."""
        self._clear_outbox({"id": {"S": pk}})

    def _clear_outbox(self, key: dict[str, Any]) -> None:
        self.dynamodb.update_item(TableName=self.table, Key=key, UpdateExpression="REMOVE outbox")


def _digest(old: Mapping[str, Any], now: float) -> dict[str, Any] | None:
    count = int(old.get("count", {}).get("N", "0"))
    if count == 0:
        return None
    members = [json.loads(item["S"]) for item in old.get("members", {}).get("L", [])]
    first = float(old.get("first_ts", {}).get("N", now))
    last = float(old.get("last_ts", {}).get("N", now))
    return {
        "pk": old["id"]["S"],
        "labels": json.loads(old.get("labels", {}).get("S", "{}")),
        "count": count,
        "first": _iso(first),
        "last": _iso(last),
        "events": members,
        "truncated": count > len(members),
        "hops": int(old.get("hops", {}).get("N", "0")),
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SUMMARY_CHARS:
        return value[: SUMMARY_CHARS - 1] + "…"
    return value


def sqs_flush_sender(sqs: Any, queue_url: str) -> Callable[[dict[str, Any], int], None]:
    """``send_flush`` through the policy flush queue (SQS delays: at most 15 minutes, chained beyond)."""

    def send(message: dict[str, Any], delay: int) -> None:
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(message),
            DelaySeconds=max(0, min(MAX_SQS_DELAY_SECONDS, delay)),
        )

    return send


def read_only_policy_state(dynamodb: Any, table: str | None) -> PolicyState | None:
    """A ``PolicyState`` for ``preview`` only (a dry run): it sends no flush; ``None`` without a table."""

    def refuse(message: dict[str, Any], delay: int) -> None:
        raise RuntimeError("a read-only policy state sends no flush")

    return PolicyState(dynamodb, table, refuse) if table else None
