"""The Twilio secret: account SID, auth token and sender, read through Powertools parameters.

Shared by the SMS action (to send) and the feedback function (to check ``X-Twilio-Signature``),
so neither needs the other's dependencies.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from correlator.secrets import SecretReader, SecretUnavailable


class SmsConfigurationError(Exception):
    """The Twilio secret is missing or malformed; the message names fields, never values."""


class TwilioCredentials(BaseModel):
    """The JSON of the Twilio secret. ``hide_input_in_errors``: a validation error never shows the token."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, validate_by_alias=True, validate_by_name=True)

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from", min_length=1, max_length=32)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")

    @model_validator(mode="after")
    def _sender(self) -> TwilioCredentials:
        if self.from_ is None and self.messaging_service_sid is None:
            raise ValueError("give 'from' (a number or sender id) or 'messaging_service_sid'")
        return self

    def sender(self) -> dict[str, str]:
        """Who sends: the messaging service when there is one, else the ``from`` number."""
        if self.messaging_service_sid is not None:
            return {"messaging_service_sid": self.messaging_service_sid}
        assert self.from_ is not None  # the validator requires one of the two
        return {"from_": self.from_}


def parse_credentials(value: Any, secret_name: str) -> TwilioCredentials:
    """Validate the secret's JSON; ``SmsConfigurationError`` naming the bad fields only."""
    try:
        return TwilioCredentials.model_validate(value)
    except ValidationError as error:
        # Locations and messages only: with hide_input_in_errors no message carries the input.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc']) or 'secret'}: {detail['msg']}" for detail in error.errors()
        )
        raise SmsConfigurationError(f"the Twilio secret {secret_name!r} is invalid: {problems}") from None


def read_credentials(secrets: SecretReader, secret_name: str) -> TwilioCredentials:
    """The secret's credentials (``secrets`` caches them); ``SmsConfigurationError`` when it cannot be used."""
    try:
        value = secrets.json(secret_name)
    except SecretUnavailable as problem:
        raise SmsConfigurationError(f"the Twilio {problem}") from None
    except GetParameterError as error:
        raise SmsConfigurationError(f"the Twilio secret {secret_name!r} cannot be read: {error}") from None
    return parse_credentials(value, secret_name)
