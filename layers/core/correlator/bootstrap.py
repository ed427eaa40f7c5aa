"""A function-invoked action's module scope, once: its runner on the stack's bus and idempotency table.

(Queue actions build a ``QueueRunner`` with ``bus_emitter``: they have no idempotency table, and
importing Powertools idempotency would only slow their cold start.)

The handler keeps its own Powertools decorators (Logger, Tracer, Metrics, as the handler cookbook
does) and calls ``runner.handle``; everything the runner needs from the deployment is read here,
from the environment template.yaml sets: ``EVENT_BUS_NAME`` and ``IDEMPOTENCY_TABLE_NAME``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from correlator.action import Action, ActionLog, ActionRunner, Step
from correlator.idempotency import OncePerKey
from correlator.internal import MetricsRecorder, bus_emitter
from correlator.policy_gate import policy_steps
from correlator.publisher import EventPublisher


def action_runner(
    action: Action[Any],
    *,
    logger: ActionLog,
    metrics: MetricsRecorder,
    publisher: EventPublisher | None = None,
    steps: Sequence[Step] = (),
) -> ActionRunner:
    """The runner of a function-invoked action; its idempotency records are prefixed with the action's name.

    Every such action takes the delivery-policy step (``correlator.policy_gate``): throttle, dedup,
    group and mute apply uniformly, with no code in the action.
    """
    return ActionRunner(
        action,
        emitter=bus_emitter(metrics, publisher),
        metrics=metrics,
        log=logger,
        once=OncePerKey(os.environ["IDEMPOTENCY_TABLE_NAME"], key_prefix=action.spec.name),
        # The delivery policy decides first; the action's own steps (an intent record) run only to deliver.
        steps=[*policy_steps(os.environ), *steps],
    )
