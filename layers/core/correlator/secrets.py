"""Secrets from Secrets Manager, read once per ``max_age`` through Powertools parameters.

A secret that cannot be used (missing, access denied, not decryptable, empty, not JSON when JSON
is wanted) raises ``SecretUnavailable``: retrying would not help. Throttling and network errors
propagate as they are, so the invocation is retried.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.exceptions import ClientError

SECRET_MAX_AGE_SECONDS = 300
PERMANENT_SECRET_ERRORS = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure", "InvalidRequestException"}
)


class SecretUnavailable(Exception):
    """A configured secret cannot be used; ``code`` says why (``secret_unavailable``, ``secret_not_allowed``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SecretReader:
    """Reads secrets by name (cached ``max_age`` seconds); ``prefix``: the only names it may read."""

    def __init__(self, provider: SecretsProvider, *, prefix: str = "", max_age: int = SECRET_MAX_AGE_SECONDS) -> None:
        self._provider = provider
        self._prefix = prefix
        self._max_age = max_age

    def text(self, name: str) -> str:
        """The secret's string value."""
        value = self._get(name, None)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str) or not value:
            raise SecretUnavailable("secret_unavailable", f"secret {name} is empty or not a string")
        return value

    def json(self, name: str) -> Any:
        """The secret's value parsed as JSON."""
        return self._get(name, "json")

    def __call__(self, name: str) -> str:
        return self.text(name)

    def _get(self, name: str, transform: Literal["json"] | None) -> Any:
        if not name.startswith(self._prefix):
            raise SecretUnavailable("secret_not_allowed", f"secrets must be named {self._prefix}...")
        try:
            return self._provider.get(name, max_age=self._max_age, transform=transform)
        except TransformParameterError:
            raise SecretUnavailable("secret_unavailable", f"secret {name} is not JSON") from None
        except GetParameterError as error:
            cause = error.__context__
            code = cause.response.get("Error", {}).get("Code", "") if isinstance(cause, ClientError) else ""
            if code in PERMANENT_SECRET_ERRORS:
                raise SecretUnavailable("secret_unavailable", f"secret {name} cannot be read: {code}") from None
            raise  # throttling, network: worth a retry
