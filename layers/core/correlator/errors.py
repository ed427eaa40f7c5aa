"""The one error vocabulary of Correlator, mapped to HTTP once (``correlator.api``)."""

from __future__ import annotations

from typing import Any, ClassVar


class CorrelatorError(Exception):
    """Base error: carries a stable machine-readable ``code``, an HTTP status and details."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] = details or []

    def to_body(self) -> dict[str, Any]:
        """The JSON error body of the HTTP API: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequestError(CorrelatorError):
    """Malformed request: bad JSON, a body that is not an object, an invalid header."""

    status = 400
    code = "bad_request"


class ForbiddenError(CorrelatorError):
    """Authenticated by something other than API Gateway (a webhook signature) and it did not verify."""

    status = 403
    code = "forbidden"


class NotFoundError(CorrelatorError):
    status = 404
    code = "not_found"


class ConflictError(CorrelatorError):
    status = 409
    code = "conflict"


class PreconditionFailedError(CorrelatorError):
    """An ``If-Match`` / ``If-None-Match`` precondition does not hold: the resource changed (or exists)."""

    status = 412
    code = "precondition_failed"


class PayloadTooLargeError(CorrelatorError):
    """The body, or one event in it, is over its size limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(CorrelatorError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailedError(CorrelatorError):
    """The body is JSON but violates the schema; ``details`` name each offending field."""

    status = 422
    code = "validation_error"


class PublishFailedError(CorrelatorError):
    """Some events could not be published after retries; ``results`` gives each entry's status."""

    status = 503
    code = "publish_failed"

    def __init__(
        self,
        message: str,
        details: list[dict[str, Any]] | None = None,
        results: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.results: list[dict[str, Any]] = results or []

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "results": self.results}
