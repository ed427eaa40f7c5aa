"""The relay actions: ``relay`` (POST the event to a URL), ``relay.event`` (submit it to another
Correlator's ``POST /events``) and ``relay.bus`` (PutEvents to another bus).

HTTP relays go through the SSRF guard (``correlator.ssrf``) at rule creation and again before
every request, including each redirect hop; the connection is pinned to the validated address.
Every relay emits a result event (``info`` = the HTTP status, ``accepted`` or an error code).
Retryable failures (429, 5xx, timeouts, connection errors, throttled PutEvents) are retried within
the invocation while the Lambda's remaining time allows, then ``RelayRetryLater`` is raised so
Lambda's asynchronous retries (and finally the on-failure queue) take over. See docs/actions-relay.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import urllib3
from botocore.httpsession import where as default_ca_bundle
from pydantic import ValidationError
from urllib3.exceptions import HTTPError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from correlator.action import Call, Effect, Result
from correlator.configs import RelayBusConfig, RelayConfig, RelayEventConfig
from correlator.delivery import Delivery
from correlator.event import Event, EventSubmission, Level
from correlator.publisher import RETRYABLE_ERROR_CODES, EventPublisher
from correlator.registry import ActionSpec, spec_of
from correlator.relay_policy import (
    API_KEY_HEADER,
    EVENT_ID_HEADER,
    REQUEST_KEY_HEADER,
    RESERVED_HEADERS,
    RULE_CHAIN_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    VIA_HEADER,
    RelaySettings,
)
from correlator.retry import backoff, parse_retry_after
from correlator.secrets import SecretUnavailable
from correlator.ssrf import AllowList, Resolver, Target, UrlRefused, check_url

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
TOTAL_TIMEOUT_S = 10.0
SAFETY_MARGIN_S = 1.0  # left for emitting the result event and saving the idempotency record
MAX_REDIRECTS = 3
MAX_ATTEMPTS = 3
BASE_BACKOFF_S = 1.0
MAX_BACKOFF_S = 8.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
JSON_TYPE = "application/json"
MAX_BODY_BYTES = 262_144  # a rendered body template: 256 KiB, as much as an event
_RETRYABLE_BUS_ERRORS = RETRYABLE_ERROR_CODES | {
    "ServiceUnavailable",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
}

Outcome = Literal["delivered", "rejected", "blocked", "failed"]
Remaining = Callable[[], float]  # seconds left in this invocation


# ---- what is sent -------------------------------------------------------------------------------


def relayed_type(event: Event) -> str:
    """The type a ``relay.event`` gives the event, as Personium does: ``relay.ext.`` / ``relay.`` + type."""
    if event.type.startswith("relay."):
        return event.type
    return ("relay.ext." if event.external else "relay.") + event.type


_CLIENT_FIELDS = frozenset(EventSubmission.model_fields)


def relay_event_body(event: Event) -> dict[str, Any]:
    """The body of a ``relay.event``: the event's client fields, type prefixed; ``ValueError`` if invalid there."""
    body = event.model_dump(mode="json", include=set(_CLIENT_FIELDS), exclude_none=True, by_alias=True)
    body["type"] = relayed_type(event)
    try:
        EventSubmission.model_validate(body)
    except ValidationError as error:
        fields = ", ".join(".".join(str(part) for part in detail["loc"]) for detail in error.errors())
        raise ValueError(f"the relayed event would be refused: {fields}") from None
    return body


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class RelayBodyRefused(Exception):
    """The rule's body template failed or rendered too much: a permanent failure, nothing is sent."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def relay_body(delivery: Delivery[Any], config: RelayConfig | RelayEventConfig) -> bytes:
    """The exact bytes a relay sends (and signs): the rule's ``body`` template rendered, or the event JSON.

    ``relay.event`` always sends the relayed event's fields (``ValueError`` when they would be refused).
    """
    if not isinstance(config, RelayConfig):
        return encode_body(relay_event_body(delivery.event))
    if config.body is None:
        return encode_body(delivery.event.to_detail())
    # Mako only for templated bodies: a relay without one never imports it.
    from functions.templating.templating import TemplateError, TemplateFormat, render_inline, template_variables

    try:
        text = render_inline(config.body, TemplateFormat.TEXT, template_variables(delivery), "config.body")
    except TemplateError as error:
        raise RelayBodyRefused(error.code, error.message[:512]) from None
    body = text.encode("utf-8")
    if len(body) > MAX_BODY_BYTES:
        raise RelayBodyRefused("body_too_large", f"the rendered body is {len(body)} bytes (at most {MAX_BODY_BYTES})")
    return body


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``: the ``X-Correlator-Signature`` value."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def via_after(event: Event, settings: RelaySettings) -> list[str]:
    """The relay path the relayed event carries: the event's own plus this deployment, when known."""
    via = list(event.via or [])
    if settings.self_url is not None:
        via.append(settings.self_url)
    return via


def chain_headers(event: Event, settings: RelaySettings) -> dict[str, str]:
    """``X-Request-Key``, ``X-Event-Id``, ``X-Rule-Chain`` (hops + 1) and ``X-Via``."""
    headers = {EVENT_ID_HEADER: event.id, RULE_CHAIN_HEADER: str(event.hops + 1)}
    if event.request_key is not None:
        headers[REQUEST_KEY_HEADER] = event.request_key
    via = via_after(event, settings)
    if via:
        headers[VIA_HEADER] = ",".join(via)
    return headers


def loggable_url(url: str) -> str:
    """``url`` without userinfo, query and fragment (they can carry credentials): the result's ``object``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0][:256]
    host = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


# ---- HTTP with a pinned connection --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    location: str | None = None
    retry_after: str | None = None


class HttpFailure(Exception):
    """No HTTP response: ``code`` names why (``timeout``, ``connection_error``, ``tls_error``)."""

    def __init__(self, code: str, *, retryable: bool) -> None:
        super().__init__(code)
        self.code = code
        self.retryable = retryable


class PinnedHttpClient:
    """POSTs to a ``Target``'s validated address, with TLS verified for the URL's host name.

    The TCP connection goes to ``target.address`` (never resolved again); SNI and certificate
    checks use ``target.host`` and the ``Host`` header carries it. No redirects, no retries here.
    """

    def __init__(self, *, ca_certs: str | None = None) -> None:
        self._ca_certs = ca_certs or default_ca_bundle()

    def post(self, target: Target, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        urllib3_timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_S, timeout), total=timeout)
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                target.address,
                target.port,
                timeout=urllib3_timeout,
                retries=False,
                maxsize=1,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=urllib3_timeout, retries=False)
        sent = {**headers, "Host": target.netloc, "Content-Length": str(len(body))}
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=sent,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
            )
            try:
                return HttpResponse(
                    response.status, response.headers.get("Location"), response.headers.get("Retry-After")
                )
            finally:
                response.close()  # the body is not needed; never read an unbounded amount
        except SSLError:
            raise HttpFailure("tls_error", retryable=False) from None
        except NewConnectionError:  # a subclass of ConnectTimeoutError in urllib3 2.x: test it first
            raise HttpFailure("connection_error", retryable=True) from None
        except Urllib3TimeoutError:
            raise HttpFailure("timeout", retryable=True) from None
        except HTTPError:
            raise HttpFailure("connection_error", retryable=True) from None
        finally:
            pool.close()


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """A POST to send: ``headers`` go to every hop, ``origin_headers`` only to the original origin."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    origin_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HttpOutcome:
    """How an HTTP relay ended: a ``status`` or an ``error`` code; ``retryable`` for 429/5xx and the like."""

    status: int | None
    error: str | None = None
    retryable: bool = False
    attempts: int = 1
    redirects: int = 0
    retry_after: float | None = None
    reason: str | None = None

    @property
    def info(self) -> str:
        return str(self.status) if self.status is not None else str(self.error)

    @property
    def outcome(self) -> Outcome:
        if self.status is not None and 200 <= self.status < 300:
            return "delivered"
        if self.retryable:
            return "failed"
        return "blocked" if self.error == "blocked" else "rejected"


class RelaySender:
    """Sends an ``OutboundRequest``: SSRF check per hop, manual redirects, retries within the time left."""

    def __init__(
        self,
        allowed: AllowList,
        *,
        client: PinnedHttpClient | None = None,
        resolve: Resolver | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._allowed = allowed
        self._client = client or PinnedHttpClient()
        self._resolve = resolve
        self._sleep = sleep
        self._max_attempts = max_attempts

    def send(self, request: OutboundRequest, remaining: Remaining) -> HttpOutcome:
        """Send ``request``; retry 429/5xx/network errors while attempts and the invocation's time allow."""
        attempts = 0
        while True:
            attempts += 1
            outcome = replace(self._send_once(request, remaining), attempts=attempts)
            if not outcome.retryable or attempts >= self._max_attempts:
                return outcome
            delay = (
                outcome.retry_after
                if outcome.retry_after is not None
                else backoff(attempts, BASE_BACKOFF_S, MAX_BACKOFF_S, full_jitter=False)
            )
            if remaining() - delay < TOTAL_TIMEOUT_S + SAFETY_MARGIN_S:
                return outcome  # no time for another full attempt: Lambda's retry comes later
            logger.info("relay retry", extra={"attempt": attempts, "info": outcome.info, "delay_s": round(delay, 2)})
            self._sleep(delay)

    def _send_once(self, request: OutboundRequest, remaining: Remaining) -> HttpOutcome:
        url = request.url
        origin: tuple[str, str, int] | None = None
        for redirects in range(MAX_REDIRECTS + 1):
            try:
                target = check_url(url, self._allowed, resolve=self._resolve)
            except UrlRefused as refusal:
                if refusal.retryable:
                    return HttpOutcome(None, "dns_error", retryable=True, redirects=redirects, reason=str(refusal))
                return HttpOutcome(None, "blocked", redirects=redirects, reason=str(refusal))
            origin = origin or target.origin
            headers = dict(request.headers)
            if target.origin == origin:
                headers.update(request.origin_headers)
            timeout = min(TOTAL_TIMEOUT_S, remaining() - SAFETY_MARGIN_S)
            if timeout < 1.0:
                return HttpOutcome(None, "no_time_left", retryable=True, redirects=redirects)
            try:
                response = self._client.post(target, request.body, headers, timeout)
            except HttpFailure as failure:
                return HttpOutcome(None, failure.code, retryable=failure.retryable, redirects=redirects)
            if response.status in REDIRECT_STATUSES and response.location:
                url = urljoin(target.url, response.location.strip())
                continue
            status = response.status
            return HttpOutcome(
                status,
                retryable=status == 429 or status >= 500,
                redirects=redirects,
                retry_after=parse_retry_after(response.retry_after),
            )
        return HttpOutcome(None, "too_many_redirects", redirects=MAX_REDIRECTS)


# ---- the actions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelayResult:
    """What a relay did: the result event's ``object``/``info``, and how it ended."""

    object: str
    info: str
    outcome: Outcome
    retryable: bool = False
    payload: dict[str, Any] = field(default_factory=dict)

    def to_result(self) -> Result:
        level = Level.INFO if self.outcome == "delivered" else Level.ERROR
        return Result(self.outcome, self.info, self.object, level, self.payload or None, retry=self.retryable)


RelayConfigs = RelayConfig | RelayEventConfig | RelayBusConfig


class RelayAction:
    """The relay actions: one effect per delivery, retried later (``Result.retry``) while a retry may succeed."""

    spec: ClassVar[ActionSpec] = spec_of("relay")

    def __init__(
        self,
        settings: RelaySettings,
        *,
        secrets: Callable[[str], str],
        events_client_for: Callable[[str], EventBridgeClient],
        sender: RelaySender | None = None,
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._events_client_for = events_client_for
        self._sender = sender or RelaySender(settings.allowed_hosts)

    def plan(self, delivery: Delivery[RelayConfigs], call: Call) -> list[Effect]:
        return [Effect(partial(self.relay, delivery, call.remaining_seconds))]

    def relay(self, delivery: Delivery[RelayConfigs], remaining: Remaining) -> Result:
        """Relay ``delivery``; a retryable failure is a ``Result`` with ``retry`` (reported, then retried)."""
        config = delivery.config
        if isinstance(config, RelayBusConfig):
            result = self._to_bus(delivery, config)
        else:
            result = self._over_http(delivery, config, remaining)
        log = logger.info if result.outcome == "delivered" else logger.warning
        log("relay finished", extra={"object": result.object, "info": result.info, "outcome": result.outcome})
        return result.to_result()

    def _over_http(
        self, delivery: Delivery[RelayConfigs], config: RelayConfig | RelayEventConfig, remaining: Remaining
    ) -> RelayResult:
        event = delivery.event
        target = loggable_url(config.url)
        try:
            body = relay_body(delivery, config)
        except ValueError as error:
            return RelayResult(target, "invalid_event", "blocked", payload={"reason": str(error)})
        except RelayBodyRefused as refused:
            return RelayResult(target, refused.code, "blocked", payload={"reason": refused.reason})
        content_type = config.content_type if isinstance(config, RelayConfig) and config.content_type else JSON_TYPE
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT, **chain_headers(event, self._settings)}
        origin_headers: dict[str, str] = {}
        try:
            if isinstance(config, RelayConfig):
                for name, value in config.headers.items():
                    if name.lower() not in RESERVED_HEADERS:  # rules created before a name became reserved
                        origin_headers[name] = value
                if config.secret_name:
                    headers[SIGNATURE_HEADER] = sign(self._secrets(config.secret_name), body)
            else:
                origin_headers[API_KEY_HEADER] = self._secrets(config.api_key_secret)
        except SecretUnavailable as problem:
            return RelayResult(target, problem.code, "blocked", payload={"reason": str(problem)})
        sent = self._sender.send(OutboundRequest(config.url, body, headers, origin_headers), remaining)
        payload: dict[str, Any] = {"attempts": sent.attempts}
        if sent.redirects:
            payload["redirects"] = sent.redirects
        if sent.reason:
            payload["reason"] = sent.reason
        return RelayResult(target, sent.info, sent.outcome, sent.retryable, payload)

    def _to_bus(self, delivery: Delivery[RelayConfigs], config: RelayBusConfig) -> RelayResult:
        event, bus_arn = delivery.event, config.bus_arn
        relayed = event.model_copy(update={"hops": event.hops + 1, "via": via_after(event, self._settings) or None})
        region = bus_arn.split(":")[3]
        outcome = EventPublisher(self._events_client_for(region), bus_arn).publish([relayed])[0]
        if outcome.accepted:
            return RelayResult(bus_arn, "accepted", "delivered")
        code = outcome.error_code or "failed"
        retryable = code in _RETRYABLE_BUS_ERRORS
        payload = {"reason": (outcome.error_message or "")[:512]}
        return RelayResult(bus_arn, code, "failed" if retryable else "rejected", retryable, payload)
