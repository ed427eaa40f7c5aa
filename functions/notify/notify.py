"""The ``notify`` action: chat, paging and push services through Apprise (Slack, Teams, Discord, …).

A rule names *services*: Secrets Manager secrets (under ``NOTIFY_SECRET_PREFIX``), each holding
one or more Apprise URLs (``slack://…``, ``msteams://…``, ``pagerduty://…``, ``jsons://host/path``;
whitespace- or comma-separated). URLs carry tokens, so they never appear in a rule, a log line or
a result event (only Apprise's privacy form of them, tokens masked). Title and body are Mako
templates (defaults render the event, or a digest's group); the event data is only ever a
template variable.

Secrets are read by ``correlator.secrets.SecretReader`` (Powertools parameters, cached, only under
the prefix; a missing one is a permanent ``secret_unavailable``).

SSRF: every connection Apprise opens goes through ``correlator.ssrf.guarded_resolution``: a
fixed SaaS host (hooks.slack.com, api.telegram.org, …) passes when it resolves to public
addresses only; a user-chosen host (a self-hosted Mattermost, a ``json://`` webhook) must be
public and on 443/8443, or allow-listed (``RELAY_ALLOWED_HOSTS``); link-local and metadata
addresses never pass. The check happens at name resolution, so the connection uses the checked
addresses, redirects included.

One result event per (delivery, service): ``type`` ``notify``, ``object`` the secret name and the
service (``correlator/notify/oncall: Slack``), ``info`` ``sent``, ``failed`` or ``blocked``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import apprise

from correlator.action import Call, Effect, Result
from correlator.configs import NotifyConfig
from correlator.delivery import Delivery
from correlator.event import Level
from correlator.registry import ActionSpec, spec_of
from correlator.secrets import SecretUnavailable
from correlator.ssrf import AllowList, Resolver, guarded_resolution
from functions.templating.templating import TemplateError, TemplateFormat, render_inline, template_variables

logger = logging.getLogger(__name__)

DEFAULT_TITLE = (
    "% if group:\n[${event.level}] ${group['count']} events${' (' + ', '.join(group['labels'].values()) + ')'"
    " if group['labels'] else ''}\n% else:\n[${event.level}] ${event.summary or event.type}\n% endif"
)
DEFAULT_BODY = """\
% if group:
${group['count']} events from ${group['first']} to ${group['last']}:
% for member in group['events']:
- ${member.get('time', '')} [${member.get('level', '')}] ${member.get('type', '')} ${member.get('object') or ''} \
${member.get('summary') or member.get('info') or ''}
% endfor
% if group['truncated']:
… and ${group['count'] - len(group['events'])} more
% endif
% else:
${event.summary or event.type}
% if event.object:
Object: ${event.object}
% endif
% if event.info:
Info: ${event.info}
% endif
% if event.description:

${event.description}
% endif

Type: ${event.type} · Level: ${event.level} · Time: ${event.time} · Event: ${event.id}
% endif
"""
FORMATS = {"text": apprise.NotifyFormat.TEXT, "markdown": apprise.NotifyFormat.MARKDOWN}
_URL_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """What one service did: the result event's ``object``, ``info`` and level."""

    service: str
    info: str  # sent | failed | blocked | TemplateError | secret_not_allowed | secret_unavailable
    detail: str = ""

    @property
    def level(self) -> Level:
        return Level.INFO if self.info == "sent" else Level.ERROR


def service_urls(secret_value: str) -> list[str]:
    """The Apprise URLs in a service secret: a JSON list, or URLs separated by whitespace or commas."""
    text = secret_value.strip()
    if text.startswith("["):
        values = json.loads(text)
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise ValueError("a JSON service secret must be a list of URLs")
        return [value.strip() for value in values if value.strip()]
    return [url for url in _URL_SPLIT.split(text) if url]


def render_message(delivery: Delivery[NotifyConfig]) -> tuple[str, str]:
    """The title and body for ``delivery``: the rule's Mako templates or the defaults (``group`` for digests)."""
    config, variables = delivery.config, template_variables(delivery)
    title = render_inline(config.title or DEFAULT_TITLE, TemplateFormat.TEXT, variables, "config.title")
    body = render_inline(config.body or DEFAULT_BODY, TemplateFormat.TEXT, variables, "config.body")
    return " ".join(title.split())[:250], body.strip()


class Notifier:
    """Sends a delivery's notification to each of its rule's services, guarded, and reports per service."""

    def __init__(
        self,
        *,
        secrets: Callable[[str], str],
        allowed: AllowList,
        resolve: Resolver | None = None,
    ) -> None:
        self._secrets = secrets
        self._allowed = allowed
        self._resolve = resolve

    def notify_service(self, delivery: Delivery[NotifyConfig], service: str) -> ServiceResult:
        """Send to one service (a secret name); never raises for a permanent failure."""
        try:
            title, body = render_message(delivery)
        except TemplateError as error:
            return ServiceResult(service, error.code, error.message[:512])
        try:
            urls = service_urls(self._secrets(service))
        except SecretUnavailable as problem:
            return ServiceResult(service, problem.code, str(problem))
        except ValueError as error:
            return ServiceResult(service, "secret_unavailable", str(error))
        client = apprise.Apprise()
        for url in urls:
            if not client.add(url):
                return ServiceResult(service, "secret_unavailable", "the secret holds a URL Apprise does not know")
        names = ", ".join(sorted({str(plugin.service_name) for plugin in client}))
        label = f"{service}: {names}"
        with guarded_resolution(self._allowed, resolve=self._resolve) as refusals:
            sent = client.notify(body=body, title=title, body_format=FORMATS[delivery.config.format])
        if refusals:
            return ServiceResult(label, "blocked", "; ".join(refusals)[:512])
        return ServiceResult(label, "sent" if sent else "failed")


class NotifyAction:
    """The notify action: one effect per service (the runner sends each once, through its steps, and reports it)."""

    spec: ClassVar[ActionSpec] = spec_of("notify")

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def plan(self, delivery: Delivery[NotifyConfig], call: Call) -> list[Effect]:
        return [Effect(partial(self._send, delivery, service), part=service) for service in delivery.config.services]

    def _send(self, delivery: Delivery[NotifyConfig], service: str) -> Result:
        outcome = self._notifier.notify_service(delivery, service)
        status = outcome.info if outcome.info in ("sent", "failed", "blocked") else "failed"
        payload = {"service": outcome.service, **({"reason": outcome.detail} if outcome.detail else {})}
        log = logger.info if outcome.info == "sent" else logger.warning
        log("notify finished", extra={"service": outcome.service, "info": outcome.info})
        return Result(status, outcome.info, outcome.service, outcome.level, payload)
