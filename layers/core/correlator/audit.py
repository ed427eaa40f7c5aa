"""The internal event every admin API call emits: ``type`` per route, ``info`` = the HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from correlator.api import caller_from
from correlator.errors import BadRequestError
from correlator.event import Event
from correlator.internal import InternalEventEmitter

RouteKey = tuple[str, str]  # (HTTP method, API Gateway resource), e.g. ("GET", "/logs/archive/{name}")


def emit_api_event(
    emitter: InternalEventEmitter,
    request: Mapping[str, Any],
    response: Mapping[str, Any],
    event_types: Mapping[RouteKey, str],
) -> Event | None:
    """Emit the internal event of an API call once its response is known (success or failure).

    ``object`` is the request path, ``info`` the status code, ``subject`` the caller; the request
    key and hops are carried from the request headers when they are valid.
    """
    proxy = APIGatewayProxyEvent(dict(request))
    event_type = event_types.get((proxy.http_method, proxy.resource))
    if event_type is None:
        return None
    try:
        caller = caller_from(proxy)
        subject, request_key, hops = caller.subject, caller.request_key, caller.hops
    except BadRequestError:
        identity = proxy.request_context.identity
        subject, request_key, hops = identity.user_arn or identity.api_key_id, None, 0
    return emitter.emit(
        event_type,
        object=proxy.path,
        info=str(response.get("statusCode", "")),
        subject=subject,
        request_key=request_key,
        hops=hops,
    )


class Resolver(Protocol):
    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]: ...


def resolve_and_audit(
    app: Resolver,
    request: dict[str, Any],
    context: Any,
    emitter: InternalEventEmitter,
    event_types: Mapping[RouteKey, str],
) -> dict[str, Any]:
    """Resolve an API request and emit its internal event, also when the handler itself fails (500)."""
    try:
        response = app.resolve(request, context)
    except Exception:
        emit_api_event(emitter, request, {"statusCode": 500}, event_types)
        raise
    emit_api_event(emitter, request, response, event_types)
    return response
