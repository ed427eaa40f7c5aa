"""Per-action rule configuration: what a rule's ``config`` may hold for each action.

Every model is closed (unknown keys are refused) and reads the JSON names (``from``). The
registry (``correlator.registry``) maps each rule action to its model; ``Rule`` validates its
``config`` with it once, and actions receive the validated model (``Delivery.config``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from correlator.csvkeys import DEFAULT_CSV_KEY, validate_key_template

_EMAIL_RE = re.compile(
    r"^[^@\s<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_TEMPLATE_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SCRIPT_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"  # also what makes a module a registered script
_E164 = r"^\+[1-9][0-9]{6,14}$"
_LAMBDA_ARN = r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?$"
_BUS_ARN = r"^arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]{1,256}$"
_SECRET_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"  # noqa: S105 - a name pattern, not a secret


def _email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value) or len(value) > 254:
        raise ValueError(f"not an email address: {value[:80]!r}")
    return value


EmailAddress = Annotated[str, StringConstraints(max_length=254)]


class ActionConfig(BaseModel):
    """The base of every action's config model.

    ``defer_build``: a model's validator is built when it is first used, so each function builds
    only its own action's model, not all of them at import (the rules API builds them all).
    """

    model_config = ConfigDict(
        extra="forbid", validate_by_name=False, validate_by_alias=True, serialize_by_alias=True, defer_build=True
    )


class LogConfig(ActionConfig):
    """``log*`` actions take no configuration."""


class EmailConfig(ActionConfig):
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


class SmsConfig(ActionConfig):
    to: list[Annotated[str, StringConstraints(pattern=_E164)]] = Field(min_length=1, max_length=10)
    template: Annotated[str, StringConstraints(pattern=_TEMPLATE_NAME)] | None = None
    body: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    max_segments: Annotated[int, Field(ge=1, le=10)] = 3

    @model_validator(mode="after")
    def _content(self) -> SmsConfig:
        if (self.template is None) == (self.body is None):
            raise ValueError("give exactly one of template or body")
        return self


class CsvConfig(ActionConfig):
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


class ScriptConfig(ActionConfig):
    script: Annotated[str, StringConstraints(pattern=SCRIPT_NAME_PATTERN)] | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    function: Annotated[str, StringConstraints(pattern=_LAMBDA_ARN)] | None = None

    @model_validator(mode="after")
    def _target(self) -> ScriptConfig:
        if (self.script is None) == (self.function is None):
            raise ValueError("give exactly one of script (a registered script) or function (a Lambda ARN)")
        return self


# A media type with optional parameters (``application/json``, ``text/plain; charset=utf-8``); no line breaks.
_MEDIA_CHAR = r"[A-Za-z0-9!#$&^_.+-]"
_MEDIA_TYPE = (
    rf"^[A-Za-z0-9]{_MEDIA_CHAR}{{0,63}}/[A-Za-z0-9]{_MEDIA_CHAR}{{0,63}}"
    rf"(?:\s*;\s*{_MEDIA_CHAR}{{1,64}}=(?:{_MEDIA_CHAR}{{1,64}}|\"[^\"\r\n]{{0,64}}\"))*$"
)


class RelayConfig(ActionConfig):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    secret_name: Annotated[str, StringConstraints(pattern=_SECRET_NAME)] | None = None
    # A Mako template rendered for the event (default: the event JSON); the signature covers the rendered bytes.
    body: Annotated[str, StringConstraints(min_length=1, max_length=65536)] | None = None
    content_type: Annotated[str, StringConstraints(max_length=256, pattern=_MEDIA_TYPE)] | None = None  # JSON
    headers: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")],
        Annotated[str, StringConstraints(max_length=1024)],
    ] = Field(default_factory=dict, max_length=20)


class RelayEventConfig(ActionConfig):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    api_key_secret: Annotated[str, StringConstraints(pattern=_SECRET_NAME)]


class RelayBusConfig(ActionConfig):
    bus_arn: Annotated[str, StringConstraints(pattern=_BUS_ARN)]


class NotifyConfig(ActionConfig):
    """Chat, paging and push services through Apprise: service *secret names* (their URLs carry tokens)."""

    services: list[Annotated[str, StringConstraints(pattern=_SECRET_NAME)]] = Field(min_length=1, max_length=5)
    title: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    body: Annotated[str, StringConstraints(min_length=1, max_length=65536)] | None = None
    format: Literal["text", "markdown"] = "text"

    @field_validator("services")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("services must be distinct")
        return values
