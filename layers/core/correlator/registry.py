"""The registry of actions: which rule actions exist, which action runs each, and its config model.

Rule validation reads it (an unknown action or a bad config is refused here, once), the runner
checks every delivery against it, and a test checks it against ``ACTION_TARGETS`` in template.yaml.
Adding an action is one ``ActionSpec`` here (see docs/architecture.md, "Adding an action").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from correlator.configs import (
    ActionConfig,
    CsvConfig,
    EmailConfig,
    LogConfig,
    NotifyConfig,
    RelayBusConfig,
    RelayConfig,
    RelayEventConfig,
    ScriptConfig,
    SmsConfig,
)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: the rule actions it runs (each with its config model), its metrics and its aliases.

    ``name`` is the action's own name: its function or queue, its idempotency records' prefix.
    ``metrics``: the metric the runner counts for each result status (statuses that share a metric add up;
    ``invalid`` and ``failed`` are a queue runner's own: not a delivery, handed back to the queue).
    """

    name: str
    configs: Mapping[str, type[ActionConfig]]
    metrics: Mapping[str, str] = field(default_factory=dict)  # result status -> metric name
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> rule action it stands for

    @property
    def rule_actions(self) -> tuple[str, ...]:
        """The rule actions this action runs (aliases excluded): keys of ``ACTION_TARGETS``."""
        return tuple(self.configs)


_LOG: dict[str, type[ActionConfig]] = {
    "log": LogConfig,
    "log.info": LogConfig,
    "log.warn": LogConfig,
    "log.error": LogConfig,
}
_RELAY: dict[str, type[ActionConfig]] = {
    "relay": RelayConfig,
    "relay.event": RelayEventConfig,
    "relay.bus": RelayBusConfig,
}
_LOG_METRICS = {
    "written": "LogLinesWritten",
    "already_written": "LogLinesAlreadyWritten",
    "rotated": "LogRotations",
    "rotation_failed": "LogRotationFailed",
    "invalid": "LogRecordsInvalid",
}
_CSV_METRICS = {
    "written": "CsvRowsWritten",
    "skipped": "CsvRowsSkipped",
    "invalid_key": "CsvRowsRejected",
    "unreadable_header": "CsvRowsRejected",
    "dropped": "CsvCellsDropped",  # a count: payload keys without a column
    "invalid": "CsvRecordsFailed",
    "failed": "CsvRecordsFailed",
}
_RELAY_METRICS = {
    "delivered": "RelaysDelivered",
    "rejected": "RelaysRejected",
    "blocked": "RelaysBlocked",
    "failed": "RelaysRetried",  # retryable: Lambda tries it again
}

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("log", _LOG, _LOG_METRICS),
    ActionSpec("email", {"email": EmailConfig}, {"sent": "EmailsSent", "failed": "EmailsFailed"}),
    ActionSpec("sms", {"sms": SmsConfig}, {"sent": "SmsSent", "failed": "SmsFailed", "dry-run": "SmsDryRuns"}),
    ActionSpec("csv", {"csv": CsvConfig}, _CSV_METRICS),
    # ``exec`` is Personium's name for ``script``; both run the script action.
    ActionSpec(
        "script",
        {"script": ScriptConfig},
        {"ok": "ScriptRunsSucceeded", "rejected": "ScriptRunsRejected", "failed": "ScriptRunsFailed"},
        aliases={"exec": "script"},
    ),
    ActionSpec("relay", _RELAY, _RELAY_METRICS),
    ActionSpec(
        "notify",
        {"notify": NotifyConfig},
        {"sent": "NotificationsSent", "failed": "NotificationsFailed", "blocked": "NotificationsBlocked"},
    ),
)

ACTION_ALIASES: dict[str, str] = {alias: target for spec in ACTIONS for alias, target in spec.aliases.items()}
_SPECS: dict[str, ActionSpec] = {name: spec for spec in ACTIONS for name in (*spec.rule_actions, *spec.aliases)}


def canonical_action(action: str) -> str:
    """The rule action that actually runs (``exec`` runs ``script``)."""
    return ACTION_ALIASES.get(action, action)


def spec_of(action: str) -> ActionSpec:
    """The action that runs rule action ``action`` (an alias included); ``KeyError`` when there is none."""
    return _SPECS[action]


def config_model(action: str) -> type[ActionConfig]:
    """The config model of rule action ``action`` (an alias included); ``KeyError`` when unknown."""
    return spec_of(action).configs[canonical_action(action)]


def rule_actions() -> tuple[str, ...]:
    """Every rule action that has a target (aliases excluded)."""
    return tuple(name for spec in ACTIONS for name in spec.rule_actions)
