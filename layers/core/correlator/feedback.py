"""Delivery feedback: what became of a sent email or SMS, back on the bus as internal events.

An email carries SES message tags naming where it came from (``correlator_event_id``,
``correlator_rule``, ``correlator_request_key``, ``correlator_hops``); SES publishes its delivery,
bounce, complaint, reject and delay notifications through the stack's configuration set to the
account's default bus (the only bus SES can target), and a rule there hands them to the feedback
function. An SMS carries the same origin in its Twilio status callback URL
(``/feedback/twilio/{origin}``), which Twilio signs (``X-Twilio-Signature``).

Either way the result is an internal event — ``email.delivered``, ``email.bounced``,
``email.complained``, ``email.rejected``, ``email.delayed``; ``sms.sent``, ``sms.delivered``,
``sms.undelivered``, ``sms.failed``, ``sms.read``, ``sms.canceled`` — whose ``object`` is the
provider's message id, ``info`` the outcome, ``system_id`` ``rule/<rule>``, ``request_key`` the
original request's, ``hops`` the action result's (the original event's + 1, so a rule reacting to
feedback is bounded by the hop guard like any other chain) and ``payload`` ``{"event_id", "rule",
...}``: rules can react to them ("SMS failed → email").

SES and Twilio may deliver one notification more than once (SNS/EventBridge at least once, Twilio
retries a callback it saw fail): ``emit_once`` makes each produce its event once, keyed by the
provider's message id and what the notification reports (``ses_feedback_key``,
``twilio_feedback_key``), on the stack's idempotency table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from correlator.event import Event, Level
from correlator.idempotency import OncePerKey
from correlator.internal import InternalEventEmitter
from correlator.text import mask_number

TAG_EVENT_ID = "correlator_event_id"
TAG_RULE = "correlator_rule"
TAG_REQUEST_KEY = "correlator_request_key"
TAG_HOPS = "correlator_hops"
TWILIO_CALLBACK_PATH = "/feedback/twilio"
# Event ids, rule names and request keys are all [A-Za-z0-9_-]: "." separates them in one path segment.
_TOKEN_PART = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ORIGIN_RE = re.compile(
    r"^(?P<rule>[A-Za-z0-9_-]{1,64})\.(?P<event_id>[A-Za-z0-9_-]{1,128})\.(?P<hops>[0-9]{1,3})"
    r"(?:\.(?P<request_key>[A-Za-z0-9_-]{1,128}))?$"
)

# SES eventType -> (internal event type, level)
SES_FEEDBACK: dict[str, tuple[str, Level]] = {
    "Delivery": ("email.delivered", Level.INFO),
    "Bounce": ("email.bounced", Level.ERROR),
    "Complaint": ("email.complained", Level.WARN),
    "Reject": ("email.rejected", Level.ERROR),
    "DeliveryDelay": ("email.delayed", Level.WARN),
}
# Twilio MessageStatus -> level; queued, accepted, scheduled and sending are steps, not outcomes.
TWILIO_FEEDBACK: dict[str, Level] = {
    "sent": Level.INFO,
    "delivered": Level.INFO,
    "read": Level.INFO,
    "undelivered": Level.ERROR,
    "failed": Level.ERROR,
    "canceled": Level.WARN,
}


@dataclass(frozen=True, slots=True)
class FeedbackOrigin:
    """Which delivery a message came from: the event, the rule, the request and the result's hops."""

    event_id: str
    rule: str
    hops: int
    request_key: str | None = None

    @classmethod
    def of(cls, event: Event, rule: str) -> FeedbackOrigin:
        """The origin of the action ``rule`` runs for ``event`` (hops: the result event's)."""
        return cls(event_id=event.id, rule=rule, hops=event.hops + 1, request_key=event.request_key or None)

    # -- SES message tags -------------------------------------------------------------------
    def email_tags(self) -> list[dict[str, str]]:
        """SES ``EmailTags`` (names and values are ``[A-Za-z0-9_-]``, as SES requires)."""
        tags = {TAG_EVENT_ID: self.event_id, TAG_RULE: self.rule, TAG_HOPS: str(self.hops)}
        if self.request_key:
            tags[TAG_REQUEST_KEY] = self.request_key
        return [{"Name": name, "Value": value} for name, value in tags.items()]

    @classmethod
    def from_email_tags(cls, tags: Mapping[str, Sequence[str]]) -> FeedbackOrigin | None:
        """The origin an SES notification's ``mail.tags`` carry; ``None`` for mail Correlator did not send."""

        def tag(name: str) -> str | None:
            values = tags.get(name) or []
            value = values[0] if values else None
            return value if isinstance(value, str) and _TOKEN_PART.fullmatch(value) else None

        event_id, rule, hops = tag(TAG_EVENT_ID), tag(TAG_RULE), tag(TAG_HOPS)
        if event_id is None or rule is None or hops is None or not hops.isdigit():
            return None
        return cls(event_id=event_id, rule=rule, hops=int(hops), request_key=tag(TAG_REQUEST_KEY))

    # -- Twilio status callback path --------------------------------------------------------
    def token(self) -> str:
        """One URL path segment: ``<rule>.<event id>.<hops>[.<request key>]``."""
        parts = [self.rule, self.event_id, str(self.hops)]
        if self.request_key:
            parts.append(self.request_key)
        return ".".join(parts)

    @classmethod
    def from_token(cls, token: str) -> FeedbackOrigin | None:
        match = _ORIGIN_RE.fullmatch(token)
        if match is None:
            return None
        return cls(
            event_id=match["event_id"], rule=match["rule"], hops=int(match["hops"]), request_key=match["request_key"]
        )


def twilio_callback_url(base_url: str, origin: FeedbackOrigin) -> str:
    """The status callback URL Twilio is given for a message of ``origin``."""
    return f"{base_url.rstrip('/')}{TWILIO_CALLBACK_PATH}/{origin.token()}"


def _emit(
    emitter: InternalEventEmitter,
    origin: FeedbackOrigin,
    type: str,
    *,
    object: str | None,
    info: str,
    level: Level,
    payload: dict[str, Any],
) -> Event:
    return emitter.emit(
        type,
        object=object,
        info=info,
        level=level,
        request_key=origin.request_key,
        hops=origin.hops,
        system_id=f"rule/{origin.rule}",
        payload={"event_id": origin.event_id, "rule": origin.rule, **payload},
    )


def ses_origin(detail: Mapping[str, Any]) -> FeedbackOrigin | None:
    """Where the mail of an SES notification (EventBridge ``detail``) came from; ``None`` when it is not ours."""
    mail = detail.get("mail") if isinstance(detail.get("mail"), Mapping) else None
    if str(detail.get("eventType")) not in SES_FEEDBACK or mail is None:
        return None
    return FeedbackOrigin.from_email_tags(mail.get("tags") or {})


def email_feedback(detail: Mapping[str, Any], emitter: InternalEventEmitter) -> Event | None:
    """Emit the internal event of one SES notification (EventBridge ``detail``); ``None`` when it is not ours."""
    origin = ses_origin(detail)
    if origin is None:
        return None
    mail = detail["mail"]
    type, level = SES_FEEDBACK[str(detail["eventType"])]
    info, recipients = _ses_outcome(str(detail["eventType"]), detail)
    payload: dict[str, Any] = {
        "recipients": recipients if recipients is not None else len(mail.get("destination") or [])
    }
    return _emit(
        emitter, origin, type, object=str(mail.get("messageId") or ""), info=info, level=level, payload=payload
    )


def _ses_outcome(event_type: str, detail: Mapping[str, Any]) -> tuple[str, int | None]:
    """``info`` (the bounce type, complaint type, reject reason…) and how many recipients it concerns.

    Addresses stay out of the event, as in the email action's own result.
    """
    if event_type == "Delivery":
        return "delivered", len((detail.get("delivery") or {}).get("recipients") or [])
    if event_type == "Bounce":
        bounce = detail.get("bounce") or {}
        kind = "/".join(str(part) for part in (bounce.get("bounceType"), bounce.get("bounceSubType")) if part)
        return kind or "bounced", len(bounce.get("bouncedRecipients") or [])
    if event_type == "Complaint":
        complaint = detail.get("complaint") or {}
        return str(complaint.get("complaintFeedbackType") or "complaint"), len(
            complaint.get("complainedRecipients") or []
        )
    if event_type == "Reject":
        return str((detail.get("reject") or {}).get("reason") or "rejected"), None
    delay = detail.get("deliveryDelay") or {}
    return str(delay.get("delayType") or "delayed"), len(delay.get("delayedRecipients") or [])


def sms_feedback(params: Mapping[str, str], origin: FeedbackOrigin, emitter: InternalEventEmitter) -> Event | None:
    """Emit the internal event of one Twilio status callback (its form fields); ``None`` for interim statuses."""
    status = params.get("MessageStatus", "")
    level = TWILIO_FEEDBACK.get(status)
    if level is None:
        return None
    payload: dict[str, Any] = {}
    if params.get("ErrorCode"):
        payload["error_code"] = params["ErrorCode"]
    if params.get("To"):
        payload["to"] = mask_number(params["To"])
    return _emit(
        emitter, origin, f"sms.{status}", object=params.get("MessageSid"), info=status, level=level, payload=payload
    )


# SES eventType -> the notification's own object (whose feedbackId or timestamp tells two notifications apart).
_SES_DETAIL_OBJECT = {
    "Delivery": "delivery",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
    "DeliveryDelay": "deliveryDelay",
}


def ses_feedback_key(detail: Mapping[str, Any]) -> dict[str, str]:
    """What identifies one SES notification: the message, the event type, and its feedback id or time."""

    def part(name: str) -> Mapping[str, Any]:
        value = detail.get(name)
        return value if isinstance(value, Mapping) else {}

    event_type = str(detail.get("eventType"))
    mail, own = part("mail"), part(_SES_DETAIL_OBJECT.get(event_type, ""))
    return {
        "ses": str(mail.get("messageId") or ""),
        "type": event_type,
        "at": str(own.get("feedbackId") or own.get("timestamp") or ""),
    }


def twilio_feedback_key(params: Mapping[str, str]) -> dict[str, str]:
    """What identifies one Twilio status callback: the message and the status it reports."""
    return {"twilio": params.get("MessageSid", ""), "status": params.get("MessageStatus", "")}


def emit_once(once: OncePerKey, key: Mapping[str, str], emit: Callable[[], Event | None]) -> Event | None:
    """``emit()`` the first time a notification with ``key`` arrives; ``None`` (nothing emitted) on a redelivery."""
    emitted: list[Event] = []

    def effect() -> dict[str, Any]:
        event = emit()
        if event is not None:
            emitted.append(event)
        return {"event_id": event.id if event is not None else None}

    once.run(key, effect)
    return emitted[0] if emitted else None
