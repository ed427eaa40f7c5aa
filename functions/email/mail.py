"""Email notifications: a rule's Mako templates rendered for the event, sent once with SES v2.

A rule's config (``correlator.rules.EmailConfig``) names a template set shipped with the email
function (``templates/<name>/subject.mako``, ``body.txt.mako``, optional ``body.html.mako``) or
gives inline ``subject`` / ``text`` / ``html`` Mako. The mail goes out as one SES v2 ``Simple``
message: multipart/alternative text + HTML when both exist, a one-line subject.

Failures: a template error or an SES error that retrying cannot fix (rejected message,
unverified sender, suspended account, access denied...) is *permanent*: reported in the result
event (``info`` = the error code) and stored as done, so no retry sends it. Throttling, 5xx and
connection errors are *transient*: they raise, so Lambda retries the invocation (then its
on-failure destination keeps it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from correlator.action import Call, Effect, Result, RetryLater
from correlator.configs import EmailConfig
from correlator.delivery import Delivery
from correlator.feedback import FeedbackOrigin
from correlator.registry import ActionSpec, spec_of
from functions.notification.notification import STATUS_SENT, failed
from functions.templating.templating import (
    TemplateError,
    TemplateFormat,
    TemplateRenderer,
    one_line,
    template_variables,
)

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sesv2.type_defs import SendEmailRequestTypeDef


SUBJECT_FILE = "subject.mako"
TEXT_FILE = "body.txt.mako"
HTML_FILE = "body.html.mako"
CHARSET = "UTF-8"
logger = logging.getLogger(__name__)

# SES v2 error codes that the same request would hit again: report them, never retry.
PERMANENT_SES_ERRORS = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "AccountSuspendedException",
        "SendingPausedException",
        "BadRequestException",
        "AccessDeniedException",
        "InvalidParameterValue",
        "ValidationException",
    }
)
# Worth another attempt later (botocore already retried them within the call).
TRANSIENT_SES_ERRORS = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "Throttling",
        "ThrottlingException",
        "InternalFailure",
        "InternalServiceError",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One rendered email, ready for SES."""

    sender: str
    to: tuple[str, ...]
    subject: str
    text: str | None
    html: str | None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()

    @property
    def recipient_count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)


def compose_email(delivery: Delivery[EmailConfig], renderer: TemplateRenderer, default_sender: str) -> EmailMessage:
    """Render the rule's templates for the delivery's event; ``TemplateError`` when they fail."""
    config = delivery.config
    variables = template_variables(delivery)
    if config.template is not None:
        subject, text, html = _render_named(renderer, config.template, variables)
    else:
        subject, text, html = _render_inline(renderer, config, variables)
    text = text if text and text.strip() else None
    html = html if html and html.strip() else None
    if text is None and html is None:
        raise TemplateError("TemplateError", "the templates rendered an empty body")
    event = delivery.event
    return EmailMessage(
        sender=config.from_ or default_sender,
        to=tuple(config.to),
        cc=tuple(config.cc),
        bcc=tuple(config.bcc),
        reply_to=tuple(config.reply_to),
        subject=one_line(subject) or f"[{event.level}] {event.type}",
        text=text,
        html=html,
    )


def _render_named(
    renderer: TemplateRenderer, name: str, variables: Mapping[str, Any]
) -> tuple[str, str | None, str | None]:
    if not renderer.has(name, SUBJECT_FILE):
        raise TemplateError("TemplateNotFound", f"no template set {name!r} (it needs {SUBJECT_FILE})")
    subject = renderer.render_named(name, SUBJECT_FILE, TemplateFormat.TEXT, variables)
    text = renderer.render_named(name, TEXT_FILE, TemplateFormat.TEXT, variables)
    html = None
    if renderer.has(name, HTML_FILE):
        html = renderer.render_named(name, HTML_FILE, TemplateFormat.HTML, variables)
    return subject, text, html


def _render_inline(
    renderer: TemplateRenderer, config: EmailConfig, variables: Mapping[str, Any]
) -> tuple[str, str | None, str | None]:
    assert config.subject is not None  # EmailConfig: inline content always has a subject
    subject = renderer.render_inline(config.subject, TemplateFormat.TEXT, variables, "config.subject")
    text = html = None
    if config.text is not None:
        text = renderer.render_inline(config.text, TemplateFormat.TEXT, variables, "config.text")
    if config.html is not None:
        html = renderer.render_inline(config.html, TemplateFormat.HTML, variables, "config.html")
    return subject, text, html


def send_email_request(message: EmailMessage) -> SendEmailRequestTypeDef:
    """The SES v2 ``SendEmail`` arguments: a ``Simple`` message with a text and/or an HTML part."""
    body: dict[str, Any] = {}
    if message.text is not None:
        body["Text"] = {"Data": message.text, "Charset": CHARSET}
    if message.html is not None:
        body["Html"] = {"Data": message.html, "Charset": CHARSET}
    destination: dict[str, list[str]] = {"ToAddresses": list(message.to)}
    if message.cc:
        destination["CcAddresses"] = list(message.cc)
    if message.bcc:
        destination["BccAddresses"] = list(message.bcc)
    request: dict[str, Any] = {
        "FromEmailAddress": message.sender,
        "Destination": destination,
        "Content": {"Simple": {"Subject": {"Data": message.subject, "Charset": CHARSET}, "Body": body}},
    }
    if message.reply_to:
        request["ReplyToAddresses"] = list(message.reply_to)
    return request  # type: ignore[return-value]  # built field by field above


def permanent_error_code(error: ClientError) -> str | None:
    """The error code when ``error`` is permanent (report it), ``None`` when it is worth retrying."""
    code = str(error.response.get("Error", {}).get("Code") or "ClientError")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in TRANSIENT_SES_ERRORS or status == 429 or status >= 500:
        return None
    if code in PERMANENT_SES_ERRORS or 400 <= status < 500:
        return code
    return None


class EmailAction:
    """The email action: compose and send one email per delivery (the runner does it once and reports it)."""

    spec: ClassVar[ActionSpec] = spec_of("email")

    def __init__(
        self,
        *,
        ses: SESV2Client,
        renderer: TemplateRenderer,
        default_sender: str,
        configuration_set: str | None = None,
    ) -> None:
        self._ses = ses
        self._configuration_set = configuration_set
        self._renderer = renderer
        self._default_sender = default_sender

    def plan(self, delivery: Delivery[EmailConfig], call: Call) -> list[Effect]:
        return [Effect(partial(self.send, delivery))]

    def send(self, delivery: Delivery[EmailConfig]) -> Result:
        """Compose and send the delivery's email; a permanent failure is a result, a transient one ``RetryLater``."""
        config = delivery.config
        recipients = f"{len(config.to) + len(config.cc) + len(config.bcc)} recipients"
        try:
            message = compose_email(delivery, self._renderer, self._default_sender)
        except TemplateError as error:
            logger.error("email template failed", extra={"code": error.code, "error": error.message})
            return failed(error.code, recipients, error.message)
        try:
            request = send_email_request(message)
            # Tags name the delivery, so SES's delivery/bounce/complaint notifications find their way back.
            request["EmailTags"] = FeedbackOrigin.of(delivery.event, delivery.rule.name).email_tags()  # type: ignore[typeddict-item]
            if self._configuration_set:
                request["ConfigurationSetName"] = self._configuration_set
            response = self._ses.send_email(**request)
        except ClientError as error:
            code = permanent_error_code(error)
            if code is None:
                raise RetryLater(f"SES: {error}") from error
            detail = str(error.response.get("Error", {}).get("Message") or error)
            logger.error("email rejected", extra={"code": code, "error": detail, "recipients": message.recipient_count})
            return failed(code, recipients, detail)
        message_id = response["MessageId"]
        logger.info(
            "email sent",
            extra={"message_id": message_id, "recipients": message.recipient_count, "html": message.html is not None},
        )
        return Result(STATUS_SENT, STATUS_SENT, message_id, payload={"recipients": message.recipient_count})
