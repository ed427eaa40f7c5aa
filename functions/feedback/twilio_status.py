"""Twilio's status callbacks: the signature check (``X-Twilio-Signature``) and the event they become.

Beside the feedback function's handler, so that only its artifact needs Twilio's library; the rest
of delivery feedback (origins, SES notifications) is ``correlator.feedback``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from correlator.event import Event
from correlator.feedback import FeedbackOrigin, emit_once, sms_feedback, twilio_feedback_key
from correlator.idempotency import OncePerKey
from correlator.internal import InternalEventEmitter


def twilio_signed_url(domain_name: str, request_path: str) -> str:
    """The URL Twilio signed: API Gateway's host and the request's full path (stage or base path included)."""
    return f"https://{domain_name}{request_path}"


def receive_twilio_status(
    *,
    url: str,
    body: str,
    signature: str | None,
    origin_token: str,
    auth_token: str,
    emitter: InternalEventEmitter,
    once: OncePerKey,
) -> tuple[int, Event | None]:
    """Check a Twilio status callback and emit its event: the HTTP status to answer, and the event.

    403 when ``X-Twilio-Signature`` does not verify (over ``url`` and the form fields, with the
    account's auth token), 404 for a path that names no delivery, 204 otherwise (interim statuses
    such as ``queued`` are accepted and emit nothing; so is a callback Twilio sends again). Only a
    verified callback records its key: a forged one cannot block the real one.
    """
    params = dict(parse_qsl(body, keep_blank_values=True))
    if not signature or not RequestValidator(auth_token).validate(url, params, signature):
        return 403, None
    origin = FeedbackOrigin.from_token(origin_token)
    if origin is None:
        return 404, None
    return 204, emit_once(once, twilio_feedback_key(params), lambda: sms_feedback(params, origin, emitter))
