"""A function's module scope, once: its settings from the environment, and an action function's runner.

**Settings.** Each handler declares what it reads from the environment as a frozen dataclass and
loads it once, at import, with ``load_settings`` (as the Powertools handler cookbook does with a
settings model); it reads ``os.environ`` nowhere else. A field ``sender_email: str`` is the
variable ``SENDER_EMAIL``; a field without a default is required; ``int``, ``float`` and ``bool``
fields are converted; an ``X | None`` field is ``None`` when the variable is absent or empty. A
missing or malformed variable is one ``SettingsError`` naming every problem, so a deployment
that forgot one fails at its first cold start with a message that says which.

**Runner.** ``action_runner`` builds a function-invoked action's runner on the stack's bus and
idempotency table. The handler keeps its own Powertools decorators (Logger, Tracer, Metrics, as the
handler cookbook does) and calls ``runner.handle``. (Queue actions build a ``QueueRunner``: they
have no idempotency table, and importing Powertools idempotency would only slow their cold start;
so does this module, which imports the runner's machinery only when ``action_runner`` is called.)
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar, Union, get_args, get_origin, get_type_hints

if TYPE_CHECKING:
    from correlator.action import Action, ActionLog, ActionRunner, Step
    from correlator.internal import MetricsRecorder
    from correlator.publisher import EventPublisher

SettingsT = TypeVar("SettingsT")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class SettingsError(RuntimeError):
    """The environment lacks a required variable, or one does not read as its type."""


def load_settings(model: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """``model`` (a dataclass) with each field read from the environment variable of its upper-case name."""
    if not is_dataclass(model):
        raise TypeError(f"{model.__name__} is not a dataclass")
    source = os.environ if environ is None else environ
    hints = get_type_hints(model)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in fields(model):
        name = spec.name.upper()
        raw = source.get(name)
        kind, optional = _unwrap_optional(hints[spec.name])
        if raw is None or (optional and raw == ""):
            if optional:
                values[spec.name] = None
            elif spec.default is MISSING and spec.default_factory is MISSING:
                problems.append(f"{name} is not set")
            continue
        try:
            values[spec.name] = _convert(raw, kind)
        except ValueError as error:
            problems.append(f"{name}={raw[:40]!r}: {error}")
    if problems:
        raise SettingsError(f"{model.__module__}.{model.__qualname__} from the environment: " + "; ".join(problems))
    return model(**values)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(hint, False)``."""
    if get_origin(hint) in (Union, types.UnionType):
        kinds = [kind for kind in get_args(hint) if kind is not type(None)]
        if len(kinds) == 1 and len(get_args(hint)) == 2:
            return kinds[0], True
    return hint, False


def _convert(raw: str, kind: Any) -> Any:
    if kind is str:
        return raw
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError("not a whole number") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("not a number") from None
    if kind is bool:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise ValueError("not true or false")
    raise TypeError(f"a settings field cannot be a {kind!r}")


def action_runner(
    action: Action[Any],
    *,
    logger: ActionLog,
    metrics: MetricsRecorder,
    publisher: EventPublisher | None = None,
    steps: Sequence[Step] = (),
) -> ActionRunner:
    """The runner of a function-invoked action; its idempotency records are prefixed with the action's name.

    Read from the environment template.yaml sets: ``EVENT_BUS_NAME`` (``bus_emitter``),
    ``IDEMPOTENCY_TABLE_NAME`` and the policy state's. Every such action takes the delivery-policy
    step (``correlator.policy_gate``): throttle, dedup, group and mute apply uniformly, with no code
    in the action.
    """
    from correlator.action import ActionRunner
    from correlator.idempotency import OncePerKey
    from correlator.internal import bus_emitter
    from correlator.policy_gate import policy_steps

    @dataclass(frozen=True)  # here, not at module scope: a class costs every importer's cold start
    class RunnerSettings:
        idempotency_table_name: str

    settings = load_settings(RunnerSettings)
    return ActionRunner(
        action,
        emitter=bus_emitter(metrics, publisher),
        metrics=metrics,
        log=logger,
        once=OncePerKey(settings.idempotency_table_name, key_prefix=action.spec.name),
        # The delivery policy decides first; the action's own steps (an intent record) run only to deliver.
        steps=[*policy_steps(os.environ), *steps],
    )
