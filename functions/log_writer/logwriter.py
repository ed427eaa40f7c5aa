"""The log action: log-queue deliveries appended to the event log (``correlator.eventlog``) in batches."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, cast

from correlator.action import BatchOutcome, Result, check_delivery
from correlator.configs import ActionConfig, LogConfig
from correlator.delivery import Delivery, delivery_parts
from correlator.event import Level
from correlator.eventlog import EventLog, LogLineFormat, format_log_line
from correlator.registry import ActionSpec, spec_of

if TYPE_CHECKING:
    from correlator.rules import Rule

logger = logging.getLogger(__name__)

WRITTEN = "written"
ROTATED = "rotated"
ROTATION_FAILED = "rotation_failed"
ALREADY_WRITTEN = "already_written"
LEVEL_ACTIONS: dict[str, Level | None] = {
    "log": None,
    "log.info": Level.INFO,
    "log.warn": Level.WARN,
    "log.error": Level.ERROR,
}


@dataclass(frozen=True, slots=True)
class LogRule:
    """What the log action reads of a rule: its name and action (a log rule has no config).

    Validating the whole rule model per line would make the writer import every action's rule
    machinery (its cold start); the rules API validated the rule when it was written.
    """

    name: str
    action: str
    typed_config: LogConfig = field(default_factory=LogConfig)


def parse_log_delivery(body: str | Mapping[str, Any]) -> Delivery[ActionConfig]:
    """A log queue message (or a staged record, already parsed) as a delivery; without a rule: the ``log`` action.

    ``ValueError`` (pydantic's included) when it is not a delivery, or its rule is not a log rule.
    """
    rule, event = delivery_parts(body)
    name, action = rule.get("name", "log"), rule.get("action", "log")
    if not isinstance(name, str) or action not in LEVEL_ACTIONS:
        raise ValueError(f"not a log rule: name {name!r}, action {action!r}")
    return Delivery(rule=cast("Rule", LogRule(name, action)), event=event)


def log_line(delivery: Delivery[ActionConfig], line_format: LogLineFormat = LogLineFormat.PERSONIUM) -> str:
    """The delivery's line: the rule's action picks the level (``log``: see ``format_log_line``)."""
    return format_log_line(delivery.event, LEVEL_ACTIONS[delivery.action], line_format)


def render_log_message(body: str, line_format: LogLineFormat = LogLineFormat.PERSONIUM) -> str:
    """The log line for one log-queue message; ``ValueError`` (pydantic's included) when it is not a log delivery."""
    delivery = parse_log_delivery(body)
    check_delivery(LogAction.spec, delivery)
    return log_line(delivery, line_format)


class LogAction:
    """The log action: a batch of deliveries appended to the event log in one request, then rotated if due.

    Lines are exactly once with a ledger (``correlator.ledger``), else at least once; no result event (the
    log action cannot feed a rule loop).
    """

    spec: ClassVar[ActionSpec] = spec_of("log")
    reports: ClassVar[bool] = False
    parse = staticmethod(parse_log_delivery)

    def __init__(self, log: EventLog, line_format: LogLineFormat = LogLineFormat.PERSONIUM) -> None:
        self.log = log
        self.line_format = line_format

    def perform_batch(
        self, deliveries: Sequence[tuple[str, Delivery[LogConfig]]], redelivered: Collection[str] = ()
    ) -> BatchOutcome:
        """Append every line in one request (a failure fails the batch: nothing was written), then rotate if due.

        A redelivered message whose line an earlier append wrote (its writer died before acknowledging)
        is not appended again; then the rotation that writer may have left half done is completed.
        """
        written = self.log.already_appended([message_id for message_id, _ in deliveries if message_id in redelivered])
        outcome = BatchOutcome(
            {
                message_id: Result(ALREADY_WRITTEN if message_id in written else WRITTEN, WRITTEN)
                for message_id, _ in deliveries
            }
        )
        pending = [(message_id, delivery) for message_id, delivery in deliveries if message_id not in written]
        outcome.counts.update(
            self.write(
                [log_line(delivery, self.line_format) for _, delivery in pending],
                [message_id for message_id, _ in pending],
                recovering=bool(written),
            )
        )
        return outcome

    def write(self, lines: Sequence[str], ledger_ids: Sequence[str], *, recovering: bool) -> dict[str, int]:
        """Append ``lines`` as one intent carrying ``ledger_ids``, then rotate if due; the rotation counts.

        ``recovering``: some of the work was already written by a writer that may have died before its
        rotation; with nothing new to append, the rotation is completed all the same.
        """
        settings = self.log.settings()
        if ledger_ids:
            state = self.log.append("".join(lines), ledger_ids)
            logger.info("appended", extra={"lines": len(lines), "size": state.size})
            if state.size < settings.rotation_bytes:
                return {}
        elif not recovering:
            return {}
        try:
            rotated, pruned = self.log.rotate_and_prune(settings)
        except Exception:
            if self.log.ledger is not None:
                # The lines are written and recorded: failing the batch gets it redelivered, which completes
                # the rotation without appending them again (a half-done one shows its lines twice meanwhile).
                logger.exception("rotation failed; the batch is redelivered to complete it")
                raise
            logger.exception("rotation failed; the next batch retries it")
            return {ROTATION_FAILED: 1}
        logger.info("rotated", extra={"archive": rotated, "pruned": pruned})
        return {ROTATED: 1 if rotated else 0}
