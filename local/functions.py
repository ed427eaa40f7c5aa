"""The template's functions: their names, triggers, environment and handlers.

Local function names are ``<stack>-<LogicalId>`` (or the template's ``FunctionName``), so ARNs are
``arn:aws:lambda:<region>:<account>:function:<stack>-<LogicalId>``; ``!Ref`` and ``!GetAtt .Arn`` of
a function resolve to those, which is how handlers learn other functions' ARNs (an environment
variable set from ``!GetAtt Fn.Arn`` in the template, exactly as in AWS).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from local.template import Template, TemplateError, as_text
from local.workers import DEFAULT_CONCURRENCY, QUEUED_WORK_NICE, InvocationError, WorkerPool, WorkerSpec

FUNCTION_TYPE = "AWS::Serverless::Function"
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY = 128
RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent", "Schedule")


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
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency


@dataclass(frozen=True, slots=True)
class RuleEvent:
    """An ``EventBridgeRule``/``CloudWatchEvent``/``Schedule`` event: a rule whose target is the function."""

    name: str
    properties: Mapping[str, Any]


@dataclass(slots=True)
class Triggers:
    api: list[ApiEvent] = field(default_factory=list)
    sqs: list[SqsEvent] = field(default_factory=list)
    rules: list[RuleEvent] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


class LocalFunction:
    """One ``AWS::Serverless::Function`` of the template, invoked in its own worker processes (local.workers)."""

    def __init__(self, template: Template, logical_id: str, default_concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.template = template
        self.logical_id = logical_id
        name = template.resolved_property(logical_id, "FunctionName")
        self.name = as_text(name) if name else f"{template.stack_name}-{logical_id}"[:64]
        self.arn = f"arn:aws:lambda:{template.region}:{template.account_id}:function:{self.name}"
        self.timeout = int(template.resolved_property(logical_id, "Timeout", DEFAULT_TIMEOUT))
        self.memory = int(template.resolved_property(logical_id, "MemorySize", DEFAULT_MEMORY))
        reserved = template.resolved_property(logical_id, "ReservedConcurrentExecutions")
        self.reserved = None if reserved is None else int(reserved)  # synchronous invocations past it: throttled
        self.concurrency = default_concurrency if self.reserved is None else self.reserved
        self.variables: dict[str, str] = {}
        self.triggers = Triggers()
        self.pool: WorkerPool | None = None

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
            # The runner points every SDK call at moto; the template's AWS_ENDPOINT_URL* (for sam local) never wins.
            **{name: as_text(value) for name, value in declared.items() if not name.startswith("AWS_ENDPOINT_URL")},
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
                        maximum_concurrency=_optional_int(
                            (properties.get("ScalingConfig") or {}).get("MaximumConcurrency")
                        ),
                    )
                )
            elif kind in RULE_EVENT_TYPES:
                triggers.rules.append(RuleEvent(name=name, properties={"Type": kind, **properties}))
            else:
                triggers.unsupported.append(f"{name} ({kind})")
        return triggers

    def start(self, log: IO[bytes] | None) -> None:
        """Make the function invocable: a pool of warm workers up to its concurrency."""
        spec = WorkerSpec(
            logical_id=self.logical_id,
            name=self.name,
            arn=self.arn,
            memory=self.memory,
            timeout=self.timeout,
            module_file=str(self.module_file),
            handler_name=self.handler_name,
            code_dir=str(self.code_dir),
            variables=self.variables,
            nice=0 if self.triggers.api else QUEUED_WORK_NICE,  # a client waits on the API's functions
        )
        self.pool = WorkerPool(spec, self.concurrency, log)

    def invoke(self, event: Any, *, synchronous: bool = True, waiting: Callable[[], None] | None = None) -> Any:
        """Run the handler with ``event`` in a worker; raise InvocationError as Lambda reports a failure.

        A synchronous invocation over the function's reserved concurrency raises ``Throttled``; an
        asynchronous one (rule targets, SQS batches) waits for a worker, calling ``waiting`` meanwhile.
        """
        if self.pool is None:
            raise InvocationError("ResourceNotReadyException", f"{self.logical_id} is not started")
        throttle = synchronous and self.reserved is not None
        return self.pool.invoke(event, str(uuid.uuid4()), throttle=throttle, waiting=waiting)

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()

    def describe(self) -> str:
        """``functions/reception/app.lambda_handler`` (relative to the template)."""
        try:
            location = self.module_file.relative_to(self.template.root)
        except ValueError:
            location = self.module_file
        return f"{location.with_suffix('')}.{self.handler_name}"
