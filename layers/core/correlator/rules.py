"""Rules: "when an event like this happens, do that" (Personium's Rule entity, on EventBridge).

A ``Rule`` names a ``match`` (Personium's matching: prefix on type/object/info, a leading "." on
type meaning suffix, exact subject/schema, plus level/kind/dataset), an optional raw EventBridge
``pattern`` on ``detail`` AND-ed in, an ``action`` and that action's ``config``, validated per
action (unknown keys are refused). Timer rules (``timer.oneshot`` / ``timer.periodic``) fire on
a schedule instead of matching client events: ``timer.periodic`` every N minutes or on a
``cron(...)`` expression, with an optional ``schedule`` (time zone, start and end dates).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails

from correlator.configs import ActionConfig
from correlator.event import DATASET_PATTERN, LEVEL_ALIASES, MAX_SUBJECT_CHARS, Kind, Level
from correlator.policies import DeliveryPolicy
from correlator.registry import canonical_action, config_model
from correlator.schedules import is_cron, validate_cron, validate_timezone

__all__ = ["Action", "Rule", "RuleMatch", "RuleView", "canonical_action"]

RULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MATCH_TYPE_PATTERN = r"^\.?[A-Za-z0-9._:+-]{1,128}$"
TIMER_ONESHOT = "timer.oneshot"
TIMER_PERIODIC = "timer.periodic"
TIMER_TYPES = (TIMER_ONESHOT, TIMER_PERIODIC)
MAX_ONESHOT_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, Personium's bound
MAX_PERIOD_MINUTES = 525_600  # one year

Action = Literal[
    "log",
    "log.info",
    "log.warn",
    "log.error",
    "email",
    "sms",
    "csv",
    "script",
    "exec",
    "relay",
    "relay.event",
    "relay.bus",
    "notify",
]
# Queue actions that only write Correlator's own files: nothing to throttle, group or mute.
UNPOLICED_ACTIONS = frozenset({"log", "log.info", "log.warn", "log.error", "csv"})


class RuleMatch(BaseModel):
    """What a rule matches; every given field must hold (absent = anything)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=False, validate_by_alias=True, serialize_by_alias=True)

    external: Annotated[bool, Field(strict=True)] | None = None
    type: Annotated[str, StringConstraints(pattern=MATCH_TYPE_PATTERN)] | None = None
    object: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    info: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_CHARS)] | None = None
    schema_: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = Field(
        default=None, alias="schema"
    )
    level: list[Level] | None = Field(default=None, min_length=1, max_length=3)
    kind: Kind | None = None
    dataset: Annotated[str, StringConstraints(pattern=DATASET_PATTERN)] | None = None

    @field_validator("type")
    @classmethod
    def _not_just_a_dot(cls, value: str | None) -> str | None:
        if value == ".":
            raise ValueError("a suffix match needs text after the leading '.'")
        return value

    @field_validator("level", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        # The same names and aliases an event's level accepts (warning, notice, ...).
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            levels = [LEVEL_ALIASES.get(item.lower(), item) for item in value]
            if len(set(levels)) != len(levels):
                raise ValueError("levels must be distinct")
            return levels
        return value

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def timer(self) -> str | None:
        return self.type if self.type in TIMER_TYPES else None

    # Left unannotated so that the JSON schema (OpenAPI) is still the fields'.
    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # Absent match fields are omitted, not written as null: {} matches everything.
        return {key: value for key, value in handler(self).items() if value is not None}


class TimerSchedule(BaseModel):
    """When a ``timer.periodic`` rule's schedule applies: its time zone (cron hours are local) and dates."""

    model_config = ConfigDict(extra="forbid")

    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return validate_timezone(value)

    @model_validator(mode="after")
    def _dates(self) -> TimerSchedule:
        if self.start_date is not None and self.end_date is not None and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        return self

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return {key: value for key, value in handler(self).items() if value is not None}


class Rule(BaseModel):
    """A rule as the API takes and returns it."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=RULE_NAME_PATTERN)]
    description: Annotated[str, StringConstraints(max_length=512)] = ""
    enabled: Annotated[bool, Field(strict=True)] = True
    match: RuleMatch = Field(default_factory=RuleMatch)
    pattern: dict[str, Any] | None = None
    action: Action
    # The JSON form (what EventBridge stores and the API shows); ``typed_config`` is the validated model.
    config: dict[str, Any] = Field(default_factory=dict)
    policy: DeliveryPolicy | None = None
    schedule: TimerSchedule | None = None
    _typed_config: ActionConfig | None = PrivateAttr(default=None)

    @property
    def typed_config(self) -> ActionConfig:
        """The validated config model of the rule's action (built once, by validation)."""
        assert self._typed_config is not None  # set by the validator of every Rule
        return self._typed_config

    @model_validator(mode="after")
    def _config_and_timer(self) -> Rule:
        model = config_model(self.action)
        try:
            config = model.model_validate(self.config)
        except ValidationError as error:
            # Re-raise under config.<field>, so the API's error details name the real field.
            raise ValidationError.from_exception_data(
                "Rule",
                [
                    InitErrorDetails(
                        type=detail["type"],
                        loc=("config", *detail["loc"]),
                        input=detail["input"],
                        ctx=detail.get("ctx", {}),
                    )
                    for detail in error.errors()
                ],
            ) from None
        self.config = config.model_dump(exclude_none=True, by_alias=True)
        self._typed_config = config
        timer = self.match.timer
        if timer is not None:
            self._validate_timer(timer)
        if self.schedule is not None and timer != TIMER_PERIODIC:
            _fail(("schedule",), "only timer.periodic rules take a schedule")
        if self.policy is not None and canonical_action(self.action) in UNPOLICED_ACTIONS:
            _fail(("policy",), "delivery policies apply to actions with an outside effect (not log or csv)")
        return self

    def _validate_timer(self, timer: str) -> None:
        if self.match.external:
            _fail(("match", "external"), "timer rules match internal events: false or absent")
        # A timer's event carries only type, object, info and subject: anything else could never match.
        for field in ("level", "schema_", "kind", "dataset"):
            if getattr(self.match, field) is not None:
                _fail(("match", field.rstrip("_")), "not available on timer rules (timer events do not carry it)")
        value = self.match.object
        if timer == TIMER_PERIODIC and value is not None and is_cron(value):
            try:
                validate_cron(value)
            except ValueError as error:
                _fail(("match", "object"), str(error))
            return
        if value is None or not value.isascii() or not value.isdigit():
            _fail(
                ("match", "object"),
                "a timer rule needs epoch milliseconds (timer.oneshot), or minutes or a cron(...) expression"
                " (timer.periodic)",
            )
        number = int(value)
        if timer == TIMER_ONESHOT and not 0 < number <= MAX_ONESHOT_EPOCH_MS:
            _fail(("match", "object"), f"timer.oneshot takes epoch milliseconds in 1..{MAX_ONESHOT_EPOCH_MS}")
        if timer == TIMER_PERIODIC and not 1 <= number <= MAX_PERIOD_MINUTES:
            _fail(("match", "object"), f"timer.periodic takes minutes in 1..{MAX_PERIOD_MINUTES}")

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        return {key: value for key, value in handler(self).items() if value is not None}

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON (what the API returns and what every action receives)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


def _fail(loc: tuple[str, ...], message: str) -> NoReturn:
    raise ValidationError.from_exception_data(
        "Rule", [InitErrorDetails(type="value_error", loc=loc, input=None, ctx={"error": ValueError(message)})]
    )


class RuleView(Rule):
    """A rule as listed: ``read_only`` for rules declared in template.yaml."""

    read_only: bool = False
