"""Rules: "when an event like this happens, do that" (Personium's Rule entity, on EventBridge).

A ``Rule`` names a ``match`` (Personium's matching: prefix on type/object/info, a leading "." on
type meaning suffix, exact subject/schema, plus level/kind/dataset), an optional raw EventBridge
``pattern`` on ``detail`` AND-ed in, an ``action`` and that action's ``config``, validated per
action (unknown keys are refused). Timer rules (``timer.oneshot`` / ``timer.periodic``) fire on
a schedule instead of matching client events.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails

from correlator.csvkeys import DEFAULT_CSV_KEY, validate_key_template
from correlator.event import DATASET_PATTERN, LEVEL_ALIASES, MAX_SUBJECT_CHARS, Kind, Level

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
]
# ``exec`` is Personium's name for ``script``; both run the script action.
ACTION_ALIASES: dict[str, str] = {"exec": "script"}

_EMAIL_RE = re.compile(
    r"^[^@\s<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_TEMPLATE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SCRIPT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"  # also what makes a module a registered script
_E164 = r"^\+[1-9][0-9]{6,14}$"
_LAMBDA_ARN = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$"
_BUS_ARN = r"^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}$"
_SECRET_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105 - a name pattern, not a secret


def canonical_action(action: str) -> str:
    """The action that actually runs (``exec`` runs ``script``)."""
    return ACTION_ALIASES.get(action, action)


def _email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value) or len(value) > 254:
        raise ValueError(f"not an email address: {value[:80]!r}")
    return value


EmailAddress = Annotated[str, StringConstraints(max_length=254)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_by_name=False, validate_by_alias=True, serialize_by_alias=True)


class LogConfig(_Config):
    """``log*`` actions take no configuration."""


class EmailConfig(_Config):
    to: list[EmailAddress] = Field(min_length=1)
    cc: list[EmailAddress] = Field(default_factory=list)
    bcc: list[EmailAddress] = Field(default_factory=list)
    from_: EmailAddress | None = Field(default=None, alias="from")
    reply_to: list[EmailAddress] = Field(default_factory=list)
    template: Annotated[str, StringConstraints(pattern=_TEMPLATE_NAME)] | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=65536)] | None = None
    html: Annotated[str, StringConstraints(min_length=1, max_length=65536)] | None = None

    @field_validator("to", "cc", "bcc", "reply_to")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return [_email(value) for value in values]

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return None if value is None else _email(value)

    @model_validator(mode="after")
    def _content(self) -> EmailConfig:
        if len(self.to) + len(self.cc) + len(self.bcc) > 50:
            raise ValueError("at most 50 recipients in to, cc and bcc together")
        inline = self.subject is not None or self.text is not None or self.html is not None
        if self.template is not None and inline:
            raise ValueError("give either template or inline subject/text/html, not both")
        if self.template is None and (self.subject is None or (self.text is None and self.html is None)):
            raise ValueError("give a template, or an inline subject with text and/or html")
        return self


class SmsConfig(_Config):
    to: list[Annotated[str, StringConstraints(pattern=_E164)]] = Field(min_length=1, max_length=10)
    template: Annotated[str, StringConstraints(pattern=_TEMPLATE_NAME)] | None = None
    body: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    max_segments: Annotated[int, Field(ge=1, le=10)] = 3

    @model_validator(mode="after")
    def _content(self) -> SmsConfig:
        if (self.template is None) == (self.body is None):
            raise ValueError("give exactly one of template or body")
        return self


class CsvConfig(_Config):
    key: Annotated[str, StringConstraints(min_length=1, max_length=512)] = DEFAULT_CSV_KEY
    columns: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] | None = Field(
        default=None, min_length=1, max_length=200
    )
    numeric: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(default_factory=list)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return validate_key_template(value)

    @field_validator("columns", "numeric")
    @classmethod
    def _distinct(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("names must be distinct")
        columns = info.data.get("columns")
        if info.field_name == "numeric" and values and columns is not None:
            unknown = [name for name in values if name not in columns]
            if unknown:
                raise ValueError(f"not in columns: {', '.join(unknown)}")
        return values


class ScriptConfig(_Config):
    script: Annotated[str, StringConstraints(pattern=SCRIPT_NAME_PATTERN)] | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    function: Annotated[str, StringConstraints(pattern=_LAMBDA_ARN)] | None = None

    @model_validator(mode="after")
    def _target(self) -> ScriptConfig:
        if (self.script is None) == (self.function is None):
            raise ValueError("give exactly one of script (a registered script) or function (a Lambda ARN)")
        return self


class RelayConfig(_Config):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    secret_name: Annotated[str, StringConstraints(pattern=_SECRET_NAME)] | None = None
    headers: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")],
        Annotated[str, StringConstraints(max_length=1024)],
    ] = Field(default_factory=dict, max_length=20)


class RelayEventConfig(_Config):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    api_key_secret: Annotated[str, StringConstraints(pattern=_SECRET_NAME)]


class RelayBusConfig(_Config):
    bus_arn: Annotated[str, StringConstraints(pattern=_BUS_ARN)]


ACTION_CONFIGS: dict[str, type[_Config]] = {
    "log": LogConfig,
    "log.info": LogConfig,
    "log.warn": LogConfig,
    "log.error": LogConfig,
    "email": EmailConfig,
    "sms": SmsConfig,
    "csv": CsvConfig,
    "script": ScriptConfig,
    "relay": RelayConfig,
    "relay.event": RelayEventConfig,
    "relay.bus": RelayBusConfig,
}


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


class Rule(BaseModel):
    """A rule as the API takes and returns it."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=RULE_NAME_PATTERN)]
    description: Annotated[str, StringConstraints(max_length=512)] = ""
    enabled: Annotated[bool, Field(strict=True)] = True
    match: RuleMatch = Field(default_factory=RuleMatch)
    pattern: dict[str, Any] | None = None
    action: Action
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _config_and_timer(self) -> Rule:
        model = ACTION_CONFIGS[canonical_action(self.action)]
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
        timer = self.match.timer
        if timer is not None:
            self._validate_timer(timer)
        return self

    def _validate_timer(self, timer: str) -> None:
        if self.match.external:
            _fail(("match", "external"), "timer rules match internal events: false or absent")
        # A timer's event carries only type, object, info and subject: anything else could never match.
        for field in ("level", "schema_", "kind", "dataset"):
            if getattr(self.match, field) is not None:
                _fail(("match", field.rstrip("_")), "not available on timer rules (timer events do not carry it)")
        value = self.match.object
        if value is None or not value.isascii() or not value.isdigit():
            _fail(
                ("match", "object"),
                "a timer rule needs epoch milliseconds (timer.oneshot) or a period in minutes (timer.periodic)",
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
