"""Relay policy: the deployment's relay settings, the headers a rule may not set, and the check
the rules API runs on relay rules at creation (the relay function checks everything again at send
time). Kept apart from the relay function's ``functions.relay.relay`` so the rules function does
not import the HTTP client, idempotency and parameters utilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from correlator.configs import RelayConfig, RelayEventConfig
from correlator.errors import ValidationFailedError
from correlator.rules import Rule
from correlator.ssrf import AllowList, Resolver, UrlRefused, check_url

DEFAULT_SECRET_PREFIX = "correlator/relay/"  # noqa: S105 - a name prefix, not a secret
USER_AGENT = "Correlator-Relay/1"
SIGNATURE_HEADER = "X-Correlator-Signature"
EVENT_ID_HEADER = "X-Event-Id"
REQUEST_KEY_HEADER = "X-Request-Key"
RULE_CHAIN_HEADER = "X-Rule-Chain"
VIA_HEADER = "X-Via"
API_KEY_HEADER = "x-api-key"
# Headers a rule's config.headers may not set: the ones the relay itself sends, hop-by-hop and
# framing headers, and credentials (which belong in Secrets Manager, not in the rule's plain text).
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "Host",
        "Content-Length",
        "Content-Type",
        "Content-Encoding",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Upgrade",
        "Expect",
        "Authorization",
        "Proxy-Authorization",
        "Proxy-Connection",
        "Cookie",
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        API_KEY_HEADER,
        SIGNATURE_HEADER,
        EVENT_ID_HEADER,
        REQUEST_KEY_HEADER,
        RULE_CHAIN_HEADER,
        VIA_HEADER,
        "X-Personium-RequestKey",
        "X-Personium-EventId",
        "X-Personium-RuleChain",
        "X-Personium-Via",
        "X-Amz-Date",
        "X-Amz-Security-Token",
    )
)


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Deployment settings of the relay actions (environment set by template.yaml)."""

    allowed_hosts: AllowList = field(default_factory=AllowList)
    secret_prefix: str = DEFAULT_SECRET_PREFIX
    self_url: str | None = None  # this deployment's public URL, appended to X-Via

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RelaySettings:
        """``RELAY_ALLOWED_HOSTS``, ``RELAY_SECRET_PREFIX`` and ``CORRELATOR_URL``; ``ValueError`` if malformed."""
        self_url = (environ.get("CORRELATOR_URL") or "").strip() or None
        if self_url is not None:
            parts = urlsplit(self_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or "," in self_url:
                raise ValueError(f"CORRELATOR_URL must be an http(s) URL, not {self_url[:100]!r}")
        return cls(
            allowed_hosts=AllowList.parse(environ.get("RELAY_ALLOWED_HOSTS")),
            secret_prefix=environ.get("RELAY_SECRET_PREFIX") or DEFAULT_SECRET_PREFIX,
            self_url=self_url,
        )


def check_relay_rule(rule: Rule, settings: RelaySettings, *, resolve: Resolver | None = None) -> None:
    """Refuse (``ValidationFailedError``, 422) a relay rule that could never be sent.

    Checks the URL against the SSRF guard (resolving its host now; it is checked again at send
    time), secret names against the deployment's prefix, and config headers against the reserved
    names. Rules of other actions pass untouched.
    """
    config = rule.typed_config
    if not isinstance(config, RelayConfig | RelayEventConfig):
        return
    details: list[dict[str, Any]] = []
    try:
        check_url(config.url, settings.allowed_hosts, resolve=resolve)
    except UrlRefused as refusal:
        details.append({"field": "config.url", "message": str(refusal), "type": "url_refused"})
    secrets = (
        {"secret_name": config.secret_name}
        if isinstance(config, RelayConfig)
        else {"api_key_secret": config.api_key_secret}
    )
    for name, value in secrets.items():
        if isinstance(value, str) and not value.startswith(settings.secret_prefix):
            details.append(
                {
                    "field": f"config.{name}",
                    "message": f"relay secrets must be named {settings.secret_prefix}...",
                    "type": "secret_prefix",
                }
            )
    for header in config.headers if isinstance(config, RelayConfig) else {}:
        if str(header).lower() in RESERVED_HEADERS:
            details.append(
                {
                    "field": f"config.headers.{header}",
                    "message": "reserved header: set by the relay itself, or a credential",
                    "type": "reserved_header",
                }
            )
    if details:
        noun = "error" if len(details) == 1 else "errors"
        raise ValidationFailedError(f"request body failed validation ({len(details)} {noun})", details)
