"""The template's functions, run in this process: their names, triggers, environment and handlers.

Local function names are ``<stack>-<LogicalId>`` (or the template's ``FunctionName``), so ARNs are
``arn:aws:lambda:<region>:<account>:function:<stack>-<LogicalId>``; ``!Ref`` and ``!GetAtt .Arn`` of
a function resolve to those, which is how handlers learn other functions' ARNs (an environment
variable set from ``!GetAtt Fn.Arn`` in the template, exactly as in AWS).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local.template import Template, TemplateError, as_text

FUNCTION_TYPE = "AWS::Serverless::Function"
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")


@dataclass(frozen=True, slots=True)
class ApiEvent:
    """An ``Api`` event: a REST route served by the function."""

    name: str
    path: str
    method: str
    api: str | None  # logical id of the AWS::Serverless::Api; None for SAM's implicit API
    auth: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SqsEvent:
    """An ``SQS`` event: an event source mapping polling ``queue_arn``."""

    name: str
    queue_arn: str
    batch_size: int
    batching_window: float
    report_failures: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """An ``EventBridgeRule``/``CloudWatchEvent`` event: a rule whose target is the function."""

    name: str
    properties: Mapping[str, Any]


@dataclass(slots=True)
class Triggers:
    api: list[ApiEvent] = field(default_factory=list)
    sqs: list[SqsEvent] = field(default_factory=list)
    rules: list[RuleEvent] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LambdaContext:
    """What the Lambda runtime passes as ``context``."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in ``os.environ``, restoring the previous values on exit."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def code_path(directory: Path) -> Iterator[None]:
    """Make modules beside the handler importable by their top-level name, as in Lambda's task root."""
    entry = str(directory)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


class LocalFunction:
    """One ``AWS::Serverless::Function`` of the template, invoked in-process.

    Invocations of every function share ``lock``: a function's environment variables are set in
    the process-wide ``os.environ`` while its module is imported and while it runs.
    """

    def __init__(self, template: Template, logical_id: str, lock: threading.Lock) -> None:
        self.template = template
        self.logical_id = logical_id
        self.lock = lock
        name = template.resolved_property(logical_id, "FunctionName")
        self.name = as_text(name) if name else f"{template.stack_name}-{logical_id}"[:64]
        self.arn = f"arn:aws:lambda:{template.region}:{template.account_id}:function:{self.name}"
        self.timeout = int(template.resolved_property(logical_id, "Timeout", DEFAULT_TIMEOUT))
        self.memory = int(template.resolved_property(logical_id, "MemorySize", DEFAULT_MEMORY))
        self.variables: dict[str, str] = {}
        self.triggers = Triggers()
        self._handler: Callable[[Any, Any], Any] | None = None

    @property
    def attributes(self) -> dict[str, Any]:
        """What ``!Ref`` / ``!GetAtt`` of the function resolve to."""
        return {"Ref": self.name, "Arn": self.arn}

    def prepare(self) -> None:
        """Resolve the handler location, environment and triggers (once the stack's resources exist)."""
        code_uri = self.template.resolved_property(self.logical_id, "CodeUri", ".")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{self.logical_id}: CodeUri must be a local directory, got {code_uri!r}")
        self.code_dir = (self.template.root / code_uri).resolve()
        handler = as_text(self.template.resolved_property(self.logical_id, "Handler", ""))
        module, _, self.handler_name = handler.rpartition(".")
        if not module or not self.handler_name:
            raise TemplateError(f"{self.logical_id}: Handler must be <module>.<function>, got {handler!r}")
        self.module_file = self.code_dir / (module.replace(".", "/") + ".py")
        if not self.module_file.is_file():
            raise TemplateError(f"{self.logical_id}: handler module {self.module_file} not found")
        self.variables = self._environment()
        self.triggers = self._triggers()

    def _environment(self) -> dict[str, str]:
        declared = (self.template.resolved_property(self.logical_id, "Environment", {}) or {}).get("Variables") or {}
        logging_config = self.template.resolved_property(self.logical_id, "LoggingConfig", {}) or {}
        log_group = logging_config.get("LogGroup") or f"/aws/lambda/{self.name}"
        return {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": as_text(log_group),
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": f"{self.module_file.stem}.{self.handler_name}",
            **{name: as_text(value) for name, value in declared.items()},
        }

    def _triggers(self) -> Triggers:
        triggers = Triggers()
        raw_events = self.template.properties(self.logical_id).get("Events") or {}
        for name, event in raw_events.items():
            kind = str(event.get("Type"))
            raw = event.get("Properties") or {}
            properties = self.template.resolve(raw)
            if kind == "Api":
                rest_api = raw.get("RestApiId")
                api = rest_api.get("Ref") if isinstance(rest_api, dict) else None
                if rest_api is not None and api is None:
                    api = next(
                        (key for key, attrs in self.template.attributes.items() if attrs["Ref"] == rest_api), None
                    )
                triggers.api.append(
                    ApiEvent(
                        name=name,
                        path=str(properties["Path"]),
                        method=str(properties["Method"]).upper(),
                        api=api,
                        auth=properties.get("Auth") or {},
                    )
                )
            elif kind == "SQS":
                window = float(properties.get("MaximumBatchingWindowInSeconds", 0))
                triggers.sqs.append(
                    SqsEvent(
                        name=name,
                        queue_arn=as_text(properties["Queue"]),
                        batch_size=int(properties.get("BatchSize", 10)),
                        batching_window=window,
                        report_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
                        enabled=bool(properties.get("Enabled", True)),
                    )
                )
            elif kind in RULE_EVENT_TYPES:
                triggers.rules.append(RuleEvent(name=name, properties={"Type": kind, **properties}))
            else:
                triggers.unsupported.append(f"{name} ({kind})")
        return triggers

    def invoke(self, event: Any) -> Any:
        """Run the handler with ``event`` (importing it first if needed); return what it returns."""
        with self.lock, environment(self.variables), code_path(self.code_dir):
            handler = self._handler or self._load()
            # As in Lambda, the timeout counts from the invocation, not from the module's import.
            context = LambdaContext(
                function_name=self.name,
                invoked_function_arn=self.arn,
                memory_limit_in_mb=self.memory,
                aws_request_id=str(uuid.uuid4()),
                log_group_name=self.variables.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
                log_stream_name=f"local/{self.name}",
                deadline=time.monotonic() + self.timeout,
            )
            return handler(event, context)

    def _load(self) -> Callable[[Any, Any], Any]:
        module_name = f"_correlator_local_{self.logical_id}_{self.module_file.stem}"
        spec = importlib.util.spec_from_file_location(module_name, self.module_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {self.module_file}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        handler = getattr(module, self.handler_name, None)
        if not callable(handler):
            raise AttributeError(f"{self.module_file} has no function {self.handler_name}")
        self._handler = handler
        return self._handler

    def describe(self) -> str:
        """``functions/reception/app.lambda_handler`` (relative to the template)."""
        try:
            location = self.module_file.relative_to(self.template.root)
        except ValueError:
            location = self.module_file
        return f"{location.with_suffix('')}.{self.handler_name}"
