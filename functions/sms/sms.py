"""SMS notifications: a rule's Mako body rendered for the event, fitted to its segments, sent with Twilio.

Segments: a body that only uses the GSM 03.38 alphabet travels as GSM-7 (160 septets in one
segment, 153 per segment of a longer message; each character of the extension table takes two
septets); anything else as UCS-2 (70 / 67 UTF-16 code units; a character outside the BMP takes
two). Like Twilio's segment calculator, text is counted in grapheme clusters (Unicode extended
grapheme clusters, except that CR LF counts as two characters): a flag, a letter with combining
accents or an emoji sequence never straddles two segments, and a cut never splits one. A body
longer than the rule's ``max_segments`` is cut and ends with an ellipsis (``...`` in GSM-7, ``…``
in UCS-2).

Twilio: credentials come from a Secrets Manager secret (JSON: ``account_sid``, ``auth_token``,
and ``from`` or ``messaging_service_sid``), read through Powertools parameters and cached; no
secret configured means a *dry run* (the message is logged, the result says ``dry-run``). 429
and 5xx answers are retried with backoff (``Retry-After`` honoured) and then raise, so Lambda
retries the invocation; any other 4xx is permanent: reported with Twilio's error code (e.g.
``21211``, an invalid 'To' number), never retried. Each recipient is sent at most once per
(rule, event). Phone numbers appear in logs and result events only masked (``+44******123``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar

import regex
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from correlator.action import Call, Effect, Result, RetryLater
from correlator.configs import SmsConfig
from correlator.delivery import Delivery
from correlator.feedback import FeedbackOrigin, twilio_callback_url
from correlator.registry import ActionSpec, spec_of
from correlator.retry import backoff, parse_retry_after
from correlator.secrets import SECRET_MAX_AGE_SECONDS, SecretReader
from correlator.text import mask_number
from correlator.twilio_credentials import TwilioCredentials, read_credentials
from functions.notification.notification import STATUS_DRY_RUN, STATUS_SENT, failed
from functions.templating.templating import TemplateError, TemplateFormat, TemplateRenderer, template_variables

logger = logging.getLogger(__name__)
# The Twilio library logs every request at INFO; its warnings are enough.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
# botocore dumps response bodies at DEBUG, and GetSecretValue's body is the Twilio credentials.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)

BODY_FILE = "body.mako"
TWILIO_TIMEOUT_SECONDS = 10.0
# Messages to a recipient looked at (newest first) when reconciling an attempt that died after sending.
RECONCILE_LOOKBACK = 20

GSM7 = "GSM-7"
UCS2 = "UCS-2"
# GSM 03.38 basic character set (ESC excluded: it only introduces the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: ESC + one septet, two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_ELLIPSIS = "..."
UCS2_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class SegmentLimits:
    single: int  # units in a one-segment message
    multi: int  # units per segment of a concatenated message (the rest is the UDH)


SEGMENT_LIMITS = {GSM7: SegmentLimits(160, 153), UCS2: SegmentLimits(70, 67)}


@dataclass(frozen=True, slots=True)
class SmsBody:
    """A body fitted to its segments."""

    text: str
    encoding: str
    segments: int
    truncated: bool


# An extended grapheme cluster (UAX #29), the unit a reader sees as one character.
GRAPHEME_CLUSTER = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """``text`` split into grapheme clusters, CR LF as two (as Twilio's segment calculator splits it)."""
    clusters: list[str] = []
    for cluster in GRAPHEME_CLUSTER.findall(text):
        if cluster == "\r\n":
            clusters.extend(cluster)
        else:
            clusters.append(cluster)
    return clusters


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 basic or extension table."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def encoding_of(text: str) -> str:
    """``GSM-7`` or ``UCS-2``: how an SMS with this text is encoded."""
    return GSM7 if is_gsm7(text) else UCS2


def unit_costs(clusters: Sequence[str], encoding: str) -> list[int]:
    """Per grapheme cluster: septets (GSM-7) or UTF-16 code units (UCS-2) it takes."""
    if encoding == GSM7:
        return [sum(2 if char in GSM7_EXTENSION else 1 for char in cluster) for cluster in clusters]
    return [sum(2 if ord(char) > 0xFFFF else 1 for char in cluster) for cluster in clusters]


def _segments_of(costs: Sequence[int], limits: SegmentLimits) -> int:
    if sum(costs) <= limits.single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used and used + cost > limits.multi:  # a cluster never straddles two segments
            segments += 1
            used = 0
        used += cost
        while used > limits.multi:  # a cluster longer than a segment (dozens of accents) fills several
            segments += 1
            used -= limits.multi
    return segments


def count_segments(text: str) -> int:
    """How many segments ``text`` takes (an empty text still takes one)."""
    encoding = encoding_of(text)
    return _segments_of(unit_costs(graphemes(text), encoding), SEGMENT_LIMITS[encoding])


def fit_segments(text: str, max_segments: int) -> SmsBody:
    """``text`` as is when it fits ``max_segments``, else its longest prefix that fits with an ellipsis.

    The cut falls between grapheme clusters, so it never leaves half a flag or a dangling accent.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    segments = count_segments(text)
    if segments <= max_segments:
        return SmsBody(text, encoding_of(text), segments, truncated=False)
    clusters = graphemes(text)

    def candidate(length: int) -> str:
        prefix = "".join(clusters[:length]).rstrip()
        return prefix + (GSM7_ELLIPSIS if is_gsm7(prefix) else UCS2_ELLIPSIS)

    # The segment count of candidate(n) never decreases with n: binary search the longest that fits.
    low, high = 0, len(clusters) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if count_segments(candidate(middle)) <= max_segments:
            low = middle
        else:
            high = middle - 1
    fitted = candidate(low)
    return SmsBody(fitted, encoding_of(fitted), count_segments(fitted), truncated=True)


def compose_sms(delivery: Delivery[SmsConfig], renderer: TemplateRenderer) -> SmsBody:
    """Render the rule's body template for the delivery's event and fit it to ``max_segments``."""
    config = delivery.config
    variables = template_variables(delivery)
    if config.template is not None:
        text = renderer.render_named(config.template, BODY_FILE, TemplateFormat.TEXT, variables)
    else:
        assert config.body is not None  # SmsConfig: exactly one of template and body
        text = renderer.render_inline(config.body, TemplateFormat.TEXT, variables, "config.body")
    text = text.strip()
    if not text:
        raise TemplateError("TemplateError", "the template rendered an empty body")
    return fit_segments(text, config.max_segments)


# ---- Twilio ----


class RetryingHttpClient(HttpClient):  # type: ignore[misc]  # twilio ships no type information
    """Wraps Twilio's HTTP client: retries 429 and 5xx with backoff, honouring ``Retry-After``.

    A ``Retry-After`` longer than ``max_delay`` ends the retries at once (the answer goes back to
    the caller, which raises): waiting that long belongs to Lambda's retry, not to this invocation.
    """

    def __init__(
        self,
        inner: HttpClient,
        *,
        max_attempts: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 5.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        super().__init__(logger, is_async=False, timeout=inner.timeout)
        self.inner = inner
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        for attempt in range(1, self.max_attempts + 1):
            response: Response = self.inner.request(
                method,
                uri,
                params=params,
                data=data,
                headers=headers,
                auth=auth,
                timeout=timeout,
                allow_redirects=allow_redirects,
            )
            status = int(response.status_code)
            if not is_retryable_status(status) or attempt == self.max_attempts:
                return response
            delay = self._delay(attempt, response.headers)
            if delay is None:
                return response
            logger.warning("twilio answered %s; retrying in %.2f s (attempt %d)", status, delay, attempt)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    def _delay(self, attempt: int, headers: Any) -> float | None:
        retry_after = retry_after_seconds(headers)
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        return backoff(attempt, self.base_delay, self.max_delay, full_jitter=False)


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) in seconds; ``None`` when absent or unreadable."""
    if not headers:
        return None
    return parse_retry_after(next((str(v) for k, v in dict(headers).items() if str(k).lower() == "retry-after"), None))


# What Twilio's client raises for an error answer: the legacy form, or RFC 9457 problem details.
TWILIO_API_ERRORS = (TwilioRestException, TwilioServiceException)


def twilio_error_code(error: TwilioRestException | TwilioServiceException) -> str | None:
    """Twilio's error code (``"21211"``) when the error is permanent; ``None`` when it is worth retrying."""
    status = int(error.status)
    if is_retryable_status(status):
        return None
    return str(error.code) if error.code is not None else f"HTTP{status}"


def twilio_error_message(error: TwilioRestException | TwilioServiceException) -> str:
    if isinstance(error, TwilioRestException):
        return str(error.msg or "")
    return str(error.detail or error.title or "")


class TwilioSender:
    """Sends one SMS through Twilio with the credentials of a secret (read through Powertools, cached).

    ``http_client`` is Twilio's transport (default: ``TwilioHttpClient`` with a 10 s timeout); tests
    pass a fake ``twilio.http.HttpClient``. Either way it is wrapped in ``RetryingHttpClient``.
    """

    def __init__(
        self,
        secret_name: str,
        *,
        secrets: SecretsProvider,
        http_client: HttpClient | None = None,
        max_age: int = SECRET_MAX_AGE_SECONDS,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.secret_name = secret_name
        self._secrets = SecretReader(secrets, max_age=max_age)
        inner = http_client or TwilioHttpClient(timeout=TWILIO_TIMEOUT_SECONDS)
        self._http_client = RetryingHttpClient(inner, sleep=sleep)
        self._client: tuple[str, Client] | None = None

    def credentials(self) -> TwilioCredentials:
        """The secret's credentials (cached for ``max_age`` seconds); raises when it cannot be read."""
        return read_credentials(self._secrets, self.secret_name)

    def send(self, to: str, body: str, credentials: TwilioCredentials, status_callback: str | None = None) -> str:
        """Send ``body`` to ``to``; the message SID. One of ``TWILIO_API_ERRORS`` when Twilio refuses it.

        ``status_callback``: where Twilio posts the message's status changes (delivery feedback).
        """
        extra = {"status_callback": status_callback} if status_callback else {}
        message = self._client_for(credentials).messages.create(to=to, body=body, **credentials.sender(), **extra)
        return str(message.sid)

    def find_sent(self, to: str, body: str, since: datetime, credentials: TwilioCredentials) -> str | None:
        """The SID of a message to ``to`` with ``body`` created since ``since`` (a minute of clock skew allowed)."""
        earliest = since - timedelta(minutes=1)
        for message in self._client_for(credentials).messages.list(to=to, limit=RECONCILE_LOOKBACK):
            if message.body == body and message.date_created is not None and message.date_created >= earliest:
                return str(message.sid)
        return None

    def _client_for(self, credentials: TwilioCredentials) -> Client:
        # One client per credentials (a rotated secret gets a new one); the token stays out of the key's repr.
        token = credentials.auth_token.get_secret_value()
        fingerprint = hashlib.sha256(f"{credentials.account_sid}:{token}".encode()).hexdigest()
        if self._client is None or self._client[0] != fingerprint:
            self._client = (fingerprint, Client(credentials.account_sid, token, http_client=self._http_client))
        return self._client[1]


class SmsAction:
    """The SMS action: compose once, then one effect per recipient (the runner sends each once and reports it).

    ``sender`` ``None`` (no secret configured) is the dry run: nothing is sent, the message is
    logged and one result event says ``dry-run``.
    """

    spec: ClassVar[ActionSpec] = spec_of("sms")

    def __init__(
        self, *, renderer: TemplateRenderer, sender: TwilioSender | None, feedback_url: str | None = None
    ) -> None:
        self._feedback_url = feedback_url
        self._renderer = renderer
        self._sender = sender

    def plan(self, delivery: Delivery[SmsConfig], call: Call) -> list[Effect]:
        """One effect per recipient; a single one, without outside effect, for a dry run or a template error."""
        numbers: Sequence[str] = delivery.config.to
        recipients = f"{len(numbers)} recipients"
        try:
            body = compose_sms(delivery, self._renderer)
        except TemplateError as error:
            logger.error("sms template failed", extra={"code": error.code, "error": error.message})
            return [Effect(partial(failed, error.code, recipients, error.message), outside=False)]
        shape = {"encoding": body.encoding, "segments": body.segments, "truncated": body.truncated}
        if self._sender is None:
            logger.info(
                "sms dry run: no Twilio secret configured, nothing sent",
                extra={"recipients": [mask_number(n) for n in numbers], "body": body.text, **shape},
            )
            dry_run = Result(STATUS_DRY_RUN, STATUS_DRY_RUN, recipients, payload={"recipients": len(numbers), **shape})
            return [Effect(lambda: dry_run, outside=False)]
        credentials = self._sender.credentials()
        # Twilio reports each message's status there (delivery feedback: sms.delivered, sms.failed, ...).
        origin = FeedbackOrigin.of(delivery.event, delivery.rule.name)
        callback = twilio_callback_url(self._feedback_url, origin) if self._feedback_url else None
        return [
            Effect(partial(self._send_one, self._sender, number, body, credentials, shape, callback), part=number)
            for number in numbers
        ]

    def reconcile(self, delivery: Delivery[SmsConfig], effect: Effect, since: datetime) -> Result | None:
        """After an attempt that died between Twilio and the idempotency record: the message Twilio has, if any."""
        if self._sender is None:
            return None
        body = compose_sms(delivery, self._renderer)
        sid = self._sender.find_sent(effect.part, body.text, since, self._sender.credentials())
        if sid is None:
            return None
        masked = mask_number(effect.part)
        shape = {"encoding": body.encoding, "segments": body.segments, "truncated": body.truncated}
        return Result(STATUS_SENT, STATUS_SENT, sid, payload={"to": masked, "reconciled": True, **shape})

    def _send_one(
        self,
        sender: TwilioSender,
        number: str,
        body: SmsBody,
        credentials: TwilioCredentials,
        shape: Mapping[str, Any],
        callback: str | None,
    ) -> Result:
        masked = mask_number(number)
        try:
            sid = sender.send(number, body.text, credentials, callback)
        except TWILIO_API_ERRORS as error:
            code = twilio_error_code(error)
            if code is None:  # 429/5xx after the client's retries: Lambda retries the invocation
                raise RetryLater(f"Twilio answered {error.status}") from error
            logger.error("sms rejected", extra={"code": code, "to": masked, "status": error.status})
            return failed(code, masked, twilio_error_message(error), to=masked)
        logger.info("sms sent", extra={"sid": sid, "to": masked, **shape})
        return Result(STATUS_SENT, STATUS_SENT, sid, payload={"to": masked, **shape})
