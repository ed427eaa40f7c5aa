"""The script action: run a registered script, or invoke an allow-listed Lambda function, and report it.

*Registered scripts* are the modules of one package (``functions/script/scripts`` in the script
function) whose names match ``SCRIPT_NAME_PATTERN`` and that define
``run(event, args, context) -> dict | None``. ``ScriptRegistry`` lists the package once, at
import (``pkgutil``), and imports exactly those modules; a rule's ``script`` is only ever looked
up in that registry, so nothing in a rule or an event chooses what gets imported.

A rule may instead name a Lambda ``function``, invoked synchronously with ``{"rule", "event"}``
if, and only if, its ARN is in the stack's allow-list (``ScriptFunctionArns``).

Every run ends in one ``script`` result event: ``object`` = the script name or the function ARN,
``info`` = ``ok`` or an error code, ``payload`` = the result (at most ``MAX_RESULT_BYTES`` of
JSON, else a preview with ``truncated``) or the error. Errors that a retry cannot fix (unknown
script, function not allowed, bad arguments, a result that is not a JSON object) are reported
and not retried; anything else is reported and then raised, so Lambda retries the invocation
(and finally sends it to the on-failure destination).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import logging
import pkgutil
import re
import sys
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from correlator.action import Call, Effect, Result
from correlator.configs import SCRIPT_NAME_PATTERN, ScriptConfig
from correlator.csvfiles import DataFiles
from correlator.delivery import Delivery
from correlator.event import Event, EventSubmission, Level, follow_up, stamp_event
from correlator.publisher import EventPublisher
from correlator.registry import ActionSpec, spec_of
from correlator.text import clip

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = logging.getLogger(__name__)

SCRIPT_NAME_RE = re.compile(SCRIPT_NAME_PATTERN)
MAX_RESULT_BYTES = 32 * 1024
RESERVE_SECONDS = 2.0  # kept back after a script's deadline, to report its result
MIN_RUN_SECONDS = 1.0  # a script does not start with less time than this

# Result statuses (``ok`` is also the ``info`` of a run that succeeded).
REJECTED = "rejected"
FAILED = "failed"

# Result ``info`` codes.
OK = "ok"
UNKNOWN_SCRIPT = "unknown_script"  # permanent
SCRIPT_UNAVAILABLE = "script_unavailable"  # permanent: the module failed to import
FUNCTION_NOT_ALLOWED = "function_not_allowed"  # permanent
INVALID_INPUT = "invalid_input"  # permanent: the script raised ScriptInputError
INVALID_RESULT = "invalid_result"  # permanent: not a JSON object
SCRIPT_ERROR = "script_error"  # retried
DEADLINE_EXCEEDED = "deadline_exceeded"  # retried
INSUFFICIENT_TIME = "insufficient_time"  # retried: not started
FUNCTION_ERROR = "function_error"  # retried: the function raised
INVOKE_FAILED = "invoke_failed"  # retried unless the error is permanent (not found, denied)
PERMANENT_INVOKE_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "InvalidParameterValueException",
        "InvalidRequestContentException",
        "RequestTooLargeException",
    }
)


class ScriptInputError(Exception):
    """Raised by a script when its arguments or its input are wrong: reported, never retried."""


class DeadlineExceededError(Exception):
    """Raised by ``ScriptContext.check_deadline`` when the script's time is up."""


class RemainingTime(Protocol):
    """The part of the Lambda context the runner reads."""

    def get_remaining_time_in_millis(self) -> int: ...


# ---- registry --------------------------------------------------------------------------------


class Script(Protocol):
    def __call__(
        self, event: dict[str, Any], args: dict[str, Any], context: ScriptContext
    ) -> Mapping[str, Any] | None: ...


def load_script_package(directory: Path, name: str) -> ModuleType:
    """The package in ``directory`` (a fixed path beside the handler), imported as ``name``.

    Loading it from its path works the same whether the handler is the top-level ``app`` of
    Lambda's task root or ``functions.script.app`` in the tests; an already imported package of
    that name is reused only if it is this directory.
    """
    init = (directory / "__init__.py").resolve()
    existing = sys.modules.get(name)
    if existing is not None:
        if existing.__file__ is None or Path(existing.__file__).resolve() != init:
            raise ImportError(f"{name} is already imported from {existing.__file__}, not {init}")
        return existing
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the script package {init}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[name]
        raise
    return package


class ScriptRegistry:
    """The registered scripts of a package, listed and imported once."""

    def __init__(self, package: ModuleType) -> None:
        self._scripts: dict[str, Script] = {}
        self.broken: dict[str, str] = {}  # name -> why it could not be imported
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg or not SCRIPT_NAME_RE.fullmatch(info.name):
                continue  # helpers (_common.py) and subpackages are not scripts
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}")
            except Exception as error:  # one broken script must not take the others down
                logger.exception("script not importable", extra={"script": info.name})
                self.broken[info.name] = _describe(error)
                continue
            run = getattr(module, "run", None)
            if callable(run):
                self._scripts[info.name] = run
            else:
                logger.warning("module without run() is not a script", extra={"script": info.name})

    @property
    def names(self) -> list[str]:
        return sorted(self._scripts)

    def get(self, name: str) -> Script | None:
        """The script registered as ``name``, or None."""
        return self._scripts.get(name)


# ---- what a script sees ----------------------------------------------------------------------


@dataclass
class ScriptContext:
    """The third argument of ``run``: the deadline, the data bucket, and a way to emit events."""

    rule_name: str
    script: str
    trigger: Event
    deadline: float  # on the time.monotonic() clock
    publisher: EventPublisher
    data: DataFiles | None = None
    lambda_context: Any = None
    emitted: list[str] = field(default_factory=list)  # ids of the events this run emitted

    def remaining_seconds(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    def check_deadline(self, needed: float = 0.0) -> None:
        """Raise ``DeadlineExceededError`` unless ``needed`` seconds remain."""
        if self.remaining_seconds() < needed:
            raise DeadlineExceededError(f"{self.script}: deadline reached")

    def emit(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Publish a new internal event that follows the trigger; return it (its ``detail``).

        ``fields`` are those of a submission (``type``, ``payload``, ``kind``, ...). The request
        key, subject and via of the trigger are carried and ``hops`` is the trigger's + 1, so the
        stack's MaxHops bounds chains of scripts. Invalid fields raise ``ScriptInputError``; an
        event the bus refused raises ``RuntimeError`` (the run is retried).
        """
        try:
            submission = EventSubmission.model_validate(dict(fields))
        except ValidationError as error:
            raise ScriptInputError(f"not a valid event: {error}") from None
        event = stamp_event(submission, external=False, **follow_up(self.trigger))
        outcome = self.publisher.publish([event])[0]
        if not outcome.accepted:
            raise RuntimeError(f"event not published: {outcome.error_code}: {outcome.error_message}")
        self.emitted.append(event.id)
        return event.to_detail()


# ---- outcome ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    """What one run did: the result event's ``object`` (target), ``info`` and ``payload``."""

    target: str
    info: str
    payload: dict[str, Any] | None = None
    retry: bool = False

    def to_result(self) -> Result:
        """The run as the runner reports it: ``ok``, ``rejected`` (permanent) or ``failed`` (retried)."""
        if self.info == OK:
            return Result(OK, OK, self.target, Level.INFO, self.payload)
        status = FAILED if self.retry else REJECTED
        return Result(status, self.info, self.target, Level.ERROR, self.payload, retry=self.retry)


def bounded_result(result: Mapping[str, Any] | None, max_bytes: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """The result payload: ``{"result": ..., "truncated": false}``, or a preview when too large.

    Values JSON cannot hold (datetimes, decimals) are written as strings. A result serialized
    to more than ``max_bytes`` becomes ``{"truncated": true, "result_bytes": n, "preview": s}``
    where ``s`` is the first ``max_bytes`` of its JSON text. ``ValueError`` for NaN, cycles.
    """
    text = json.dumps(result, default=str, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return {"result": json.loads(text), "truncated": False}
    preview = encoded[:max_bytes].decode("utf-8", errors="ignore")
    return {"result": None, "truncated": True, "result_bytes": len(encoded), "preview": preview}


def _describe(error: BaseException) -> str:
    return clip(f"{type(error).__name__}: {error}")


def _error(error: BaseException | str, **extra: Any) -> dict[str, Any]:
    message = error if isinstance(error, str) else _describe(error)
    return {"error": message, **extra}


def parse_function_arns(value: str) -> frozenset[str]:
    """The allow-list of Lambda ARNs from ``SCRIPT_FUNCTION_ARNS`` (comma-separated; blanks ignored)."""
    return frozenset(arn.strip() for arn in value.split(",") if arn.strip())


# ---- runner ----------------------------------------------------------------------------------


class ScriptAction:
    """The script action: one run per delivery (the runner does it once and reports it); see the module docstring."""

    spec: ClassVar[ActionSpec] = spec_of("script")

    def __init__(
        self,
        registry: ScriptRegistry,
        *,
        publisher: EventPublisher,
        lambda_client: LambdaClient | None,
        allowed_functions: Collection[str] = (),
        data: DataFiles | None = None,
        reserve_seconds: float = RESERVE_SECONDS,
        min_run_seconds: float = MIN_RUN_SECONDS,
        max_result_bytes: int = MAX_RESULT_BYTES,
    ) -> None:
        self.registry = registry
        self.publisher = publisher
        self.lambda_client = lambda_client
        self.allowed_functions = frozenset(allowed_functions)
        self.data = data
        self.reserve_seconds = reserve_seconds
        self.min_run_seconds = min_run_seconds
        self.max_result_bytes = max_result_bytes

    def plan(self, delivery: Delivery[ScriptConfig], call: Call) -> list[Effect]:
        return [Effect(lambda: self.run(delivery, call.payload, call.context).to_result())]

    def run(
        self, delivery: Delivery[ScriptConfig], message: Mapping[str, Any], context: RemainingTime
    ) -> ScriptOutcome:
        """Run ``delivery``'s script or function and return what happened (never raises for the script's errors)."""
        config = delivery.config
        if config.script is not None:
            target = config.script
            script = self.registry.get(target)
            if script is None:
                if target in self.registry.broken:
                    return ScriptOutcome(target, SCRIPT_UNAVAILABLE, _error(self.registry.broken[target]))
                return ScriptOutcome(
                    target,
                    UNKNOWN_SCRIPT,
                    _error(f"no registered script {target!r}", registered=self.registry.names),
                )
        else:
            assert config.function is not None  # ScriptConfig: exactly one of script and function
            target = config.function
            script = None
            if target not in self.allowed_functions:
                return ScriptOutcome(target, FUNCTION_NOT_ALLOWED, _error("the function is not in ScriptFunctionArns"))

        budget = context.get_remaining_time_in_millis() / 1000 - self.reserve_seconds
        if budget < self.min_run_seconds:
            return ScriptOutcome(target, INSUFFICIENT_TIME, _error(f"{budget:.1f} s left to run"), retry=True)
        deadline = time.monotonic() + budget
        if script is not None:
            return self._run_script(target, script, config.args, delivery, deadline, context)
        return self._invoke(target, delivery, message)

    def _run_script(
        self,
        name: str,
        script: Script,
        args: dict[str, Any],
        delivery: Delivery[ScriptConfig],
        deadline: float,
        lambda_context: RemainingTime,
    ) -> ScriptOutcome:
        context = ScriptContext(
            rule_name=delivery.rule.name,
            script=name,
            trigger=delivery.event,
            deadline=deadline,
            publisher=self.publisher,
            data=self.data,
            lambda_context=lambda_context,
        )
        try:
            result = script(delivery.event.to_detail(), copy.deepcopy(args), context)
        except ScriptInputError as error:
            return ScriptOutcome(name, INVALID_INPUT, _error(error, emitted=context.emitted))
        except Exception as error:  # reported, then retried by Lambda
            logger.exception("script failed", extra={"script": name, "rule": delivery.rule.name})
            code = DEADLINE_EXCEEDED if isinstance(error, DeadlineExceededError) else SCRIPT_ERROR
            return ScriptOutcome(name, code, _error(error, emitted=context.emitted), retry=True)
        return self._result(name, result)

    def _invoke(self, arn: str, delivery: Delivery[ScriptConfig], message: Mapping[str, Any]) -> ScriptOutcome:
        if self.lambda_client is None:
            return ScriptOutcome(arn, INVOKE_FAILED, _error("no Lambda client configured"))
        request = {"rule": delivery.rule.to_json(), "event": message.get("event")}
        try:
            response = self.lambda_client.invoke(
                FunctionName=arn,
                InvocationType="RequestResponse",
                Payload=json.dumps(request, separators=(",", ":")).encode("utf-8"),
            )
            body = response["Payload"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            return ScriptOutcome(
                arn, INVOKE_FAILED, _error(error, code=code), retry=code not in PERMANENT_INVOKE_ERRORS
            )
        except BotoCoreError as error:  # timeouts, connection errors
            return ScriptOutcome(arn, INVOKE_FAILED, _error(error), retry=True)
        try:
            returned = json.loads(body) if body.strip() else None
        except ValueError:
            returned = body.decode("utf-8", errors="replace")
        if response.get("FunctionError"):
            detail = returned if isinstance(returned, dict) else {}
            message_text = f"{detail.get('errorType', response['FunctionError'])}: {detail.get('errorMessage', '')}"
            return ScriptOutcome(arn, FUNCTION_ERROR, _error(message_text), retry=True)
        if returned is not None and not isinstance(returned, dict):
            returned = {"value": returned}
        return self._result(arn, returned)

    def _result(self, target: str, result: object) -> ScriptOutcome:
        if result is not None and not isinstance(result, Mapping):
            return ScriptOutcome(target, INVALID_RESULT, _error(f"run() returned {type(result).__name__}, not a dict"))
        try:
            payload = bounded_result(result, self.max_result_bytes)
        except (TypeError, ValueError) as error:
            return ScriptOutcome(target, INVALID_RESULT, _error(error))
        return ScriptOutcome(target, OK, payload)
