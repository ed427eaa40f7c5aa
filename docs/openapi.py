"""Generate ``docs/openapi.json`` from the API functions' Powertools resolvers.

Run with ``make openapi`` (``python -m docs.openapi``); ``--check`` only reports whether the
committed file is stale. Each function in ``API_FUNCTIONS`` is imported and its resolver's
OpenAPI 3.1 document is merged into one. What the resolvers cannot know comes from elsewhere:
the authentication of each route from ``template.yaml`` (the template is what API Gateway
enforces), the error body from ``correlator.errors``, and the server URLs from the stack's
stage names and the local stack's port.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema, models_json_schema

import correlator
from correlator.errors import PublishFailedError
from correlator.personium import PersoniumErrorBody, PersoniumMessage
from local.template import load_yaml

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "openapi.json"
TEMPLATE = REPO / "template.yaml"
TITLE = "Correlator API"
OPENAPI_VERSION = "3.1.0"
LOCAL_SERVER = "http://127.0.0.1:3000"

# The functions that serve API routes, one directory each (``<dir>/app.py`` defines ``app``, and
# ``personium_app`` where the function also serves Personium's routes).
API_FUNCTIONS: tuple[str, ...] = (
    "functions/reception",
    "functions/logs",
    "functions/rules",
    "functions/personium",
    "functions/feedback",
)

# What importing a function module needs; nothing is called, so the credentials are fake.
IMPORT_ENV = {
    "EVENT_BUS_NAME": "correlator",
    "EVENT_BUS_ARN": "arn:aws:events:us-east-1:123456789012:event-bus/correlator",
    "LOG_BUCKET_NAME": "correlator-logs",
    "ACTION_TARGETS": '{"log": "arn:aws:sqs:us-east-1:123456789012:log"}',
    "RULE_TARGET_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:rule-target-dlq",
    "SCHEDULE_GROUP_NAME": "correlator",
    "RULE_LEASE_TABLE_NAME": "correlator-idempotency",
    "IDEMPOTENCY_TABLE_NAME": "correlator-idempotency",
    "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/correlator-timers",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

API_KEY_SCHEME = "api_key"
SIGV4_SCHEME = "sigv4"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    API_KEY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "An API key of the stack's usage plan (throttle and daily quota); the event submitters' route.",
    },
    SIGV4_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "x-amazon-apigateway-authtype": "awsSigv4",
        "description": "AWS Signature Version 4 of an IAM principal allowed to execute-api:Invoke the route.",
    },
}
# Powertools documents error responses with the route's own return model, or its own 422 model,
# unless told otherwise; neither is what the API answers (correlator.api maps every error).


class ErrorBody(BaseModel):
    """Every error the API itself answers: ``CorrelatorError.to_body()``."""

    code: str = Field(description="Stable machine-readable error code, e.g. validation_error.")
    message: str = Field(description="What went wrong, for humans.")
    details: list[dict[str, Any]] = Field(
        description="One object per problem: field (and index for events) and message; 422 adds the error type."
    )


def _drop_default(schema: dict[str, Any]) -> None:
    """The field is absent rather than null when it has no value: document no default."""
    schema.pop("default", None)


class PublishResult(BaseModel):
    id: str = Field(description="The event id assigned by the server.")
    status: Literal["accepted", "failed"]
    error_code: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The EventBridge error code; present only when failed.",
        json_schema_extra=_drop_default,
    )


class PublishFailedBody(ErrorBody):
    """503 ``publish_failed``: ``PublishFailedError.to_body()``; resend the events whose status is failed."""

    results: list[PublishResult] = Field(description="Every event of the request, in submission order.")


class GatewayErrorBody(BaseModel):
    """An answer of API Gateway itself (authentication, throttling), before any function runs."""

    message: str


# The error vocabulary's bodies by status; every other status answers an ``ErrorBody``.
ERROR_BODIES: dict[int, type[ErrorBody]] = {PublishFailedError.status: PublishFailedBody}
# Personium's routes (docs/personium-compatibility.md) answer every error in Personium's shape.
PERSONIUM_PATHS = ("/__event", "/__log/", "/__ctl/", "/__rule")
# What the request-body gate (correlator.api.check_json_request) answers on every route with a body.
BODY_GATE_RESPONSES: dict[str, str] = {
    "400": "The body is not UTF-8 JSON (NaN and Infinity are not JSON), or not an object",
    "413": "The body is over its size limit",
    "415": "The Content-Type is not application/json (charset utf-8)",
    "422": "The body is nested deeper than 32 levels, holds a number out of range, or violates the schema",
}


class StaleDocumentError(Exception):
    """The committed ``docs/openapi.json`` differs from what the code generates."""


@dataclass(frozen=True, slots=True)
class RouteAuth:
    """How API Gateway authenticates one route, as ``template.yaml`` declares it."""

    code_uri: str
    schemes: tuple[str, ...]


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """``template.yaml`` as a dict (intrinsic functions left unresolved)."""
    return load_yaml(path.read_text(encoding="utf-8"))


def route_auth(template: Mapping[str, Any]) -> dict[tuple[str, str], RouteAuth]:
    """The authentication of every ``Api`` event in the template, by ``(method, path)``."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    routes: dict[tuple[str, str], RouteAuth] = {}
    for function in resources.values():
        if function.get("Type") != "AWS::Serverless::Function":
            continue
        properties = function.get("Properties", {})
        for source in properties.get("Events", {}).values():
            if source.get("Type") != "Api":
                continue
            event = source.get("Properties", {})
            api_ref = event.get("RestApiId", {}).get("Ref")
            api_auth = resources.get(api_ref, {}).get("Properties", {}).get("Auth", {}) if api_ref else {}
            auth = event.get("Auth", {})
            authorizer = auth.get("Authorizer", api_auth.get("DefaultAuthorizer", "NONE"))
            api_key = auth.get("ApiKeyRequired", api_auth.get("ApiKeyRequired", False))
            if authorizer not in ("NONE", "AWS_IAM"):
                raise ValueError(f"authorizer {authorizer!r} has no security scheme in docs/openapi.py yet")
            schemes = ((SIGV4_SCHEME,) if authorizer == "AWS_IAM" else ()) + ((API_KEY_SCHEME,) if api_key else ())
            key = (str(event["Method"]).lower(), str(event["Path"]))
            routes[key] = RouteAuth(code_uri=str(properties.get("CodeUri", "")).rstrip("/"), schemes=schemes)
    return routes


RESOLVER_NAMES = ("app", "personium_app")


def load_resolvers(function_dir: str) -> list[ApiGatewayResolver]:
    """Import ``<function_dir>/app.py`` and return its resolvers: ``app``, and ``personium_app`` if any.

    The environment the module reads at import (``IMPORT_ENV``, where unset) is set for the import only."""
    missing = {name: value for name, value in IMPORT_ENV.items() if name not in os.environ}
    os.environ.update(missing)
    try:
        module = importlib.import_module(".".join((*Path(function_dir).parts, "app")))
    finally:
        for name in missing:
            os.environ.pop(name, None)
    if not isinstance(getattr(module, "app", None), ApiGatewayResolver):
        raise TypeError(f"{function_dir}/app.py has no Powertools resolver named app")
    return [
        getattr(module, name) for name in RESOLVER_NAMES if isinstance(getattr(module, name, None), ApiGatewayResolver)
    ]


def _operations(paths: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method, operation in item.items():
            yield path, method, operation


def _document_errors(operation: dict[str, Any], method: str, personium: bool = False) -> None:
    """Give every error response the body the API really answers with (see ``ERROR_BODIES``; Personium's
    routes answer ``PersoniumErrorBody``), document the request-body gate's answers on routes that take a
    body, and no body for redirects."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "requestBody" in operation or method in ("post", "put", "patch"):
        for code, description in BODY_GATE_RESPONSES.items():
            responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        if int(code) == 204 or 300 <= int(code) < 400:
            response.pop("content", None)  # no body
        elif int(code) >= 400:
            body: type[BaseModel] = PersoniumErrorBody if personium else ERROR_BODIES.get(int(code), ErrorBody)
            response["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}


def _document_gateway(operation: dict[str, Any], schemes: Sequence[str]) -> None:
    """Add what API Gateway answers before the function runs: 403 (authentication) and 429 (throttling)."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{GatewayErrorBody.__name__}"}}}
    if schemes:
        responses.setdefault(
            "403",
            {
                "description": "Missing or invalid API key (API Gateway)"
                if API_KEY_SCHEME in schemes
                else "Missing or invalid SigV4 signature, or the IAM principal is not allowed (API Gateway)",
                "content": body,
            },
        )
    responses.setdefault(
        "429",
        {
            "description": "Throttled or over the daily quota of the API key (API Gateway)"
            if API_KEY_SCHEME in schemes
            else "Throttled (API Gateway)",
            "content": body,
        },
    )


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith("#/components/schemas/"):
                yield item.rsplit("/", 1)[-1]
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _used_schemas(paths: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """The component schemas the paths reference, directly or through other schemas."""
    used: set[str] = set()
    pending = list(_references(paths))
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending.extend(_references(schemas[name]))
    return {name: schemas[name] for name in sorted(used)}


def _merge_schemas(into: dict[str, Any], schemas: Mapping[str, Any], origin: str) -> None:
    for name, schema in schemas.items():
        if name in into and into[name] != schema:
            raise ValueError(f"component schema {name!r} of {origin} differs from another function's")
        into[name] = schema


def _servers(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    stage = template.get("Parameters", {}).get("Environment", {})
    return [
        {
            "url": "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}",
            "description": "A deployed stack (its ApiUrl output)",
            "variables": {
                "api_id": {"default": "api-id", "description": "The REST API id"},
                "region": {"default": "us-east-1"},
                "stage": {"default": str(stage["Default"]), "enum": [str(value) for value in stage["AllowedValues"]]},
            },
        },
        {"url": LOCAL_SERVER, "description": "The local stack (make run)"},
    ]


def generate(function_dirs: Sequence[str] = API_FUNCTIONS, template_path: Path = TEMPLATE) -> dict[str, Any]:
    """The merged OpenAPI 3.1 document of every function in ``function_dirs``."""
    template = load_template(template_path)
    auth = route_auth(template)
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for function_dir, resolver in ((d, r) for d in function_dirs for r in load_resolvers(d)):
        schema = resolver.get_openapi_json_schema(
            title=TITLE, version=correlator.__version__, openapi_version=OPENAPI_VERSION
        )
        document = json.loads(schema)
        for path, method, operation in _operations(document.get("paths", {})):
            route = auth.get((method, path))
            if route is None:
                raise ValueError(f"{method.upper()} {path} ({function_dir}) has no Api event in template.yaml")
            if route.code_uri != function_dir.rstrip("/"):
                raise ValueError(f"{method.upper()} {path} is served by {route.code_uri} in template.yaml")
            if method in paths.get(path, {}):
                raise ValueError(f"{method.upper()} {path} is defined by two functions")
            operation.setdefault("tags", [Path(function_dir).name])
            operation["security"] = [{scheme: [] for scheme in route.schemes}] if route.schemes else []
            _document_errors(operation, method, personium=path.startswith(PERSONIUM_PATHS))
            _document_gateway(operation, route.schemes)
            paths.setdefault(path, {})[method] = operation
        _merge_schemas(schemas, document.get("components", {}).get("schemas", {}), function_dir)

    _, definitions = models_json_schema(
        [
            (model, "serialization")
            for model in (ErrorBody, PublishFailedBody, GatewayErrorBody, PersoniumErrorBody, PersoniumMessage)
        ],
        ref_template="#/components/schemas/{model}",
    )
    _merge_schemas(schemas, definitions.get("$defs", {}), __name__)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": TITLE,
            "version": correlator.__version__,
            "description": "Submit events to Correlator (POST /events, API key) and administer its event log "
            "and rules (IAM). Errors answered by the API are JSON {code, message, details}.",
        },
        "servers": _servers(template),
        "paths": paths,
        "components": {"schemas": _used_schemas(paths, schemas), "securitySchemes": SECURITY_SCHEMES},
    }


def render(document: Mapping[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def check(output: Path = OUTPUT) -> None:
    """Raise ``StaleDocumentError`` when ``output`` is not what the code generates."""
    committed = output.read_text(encoding="utf-8") if output.exists() else ""
    if committed != render(generate()):
        raise StaleDocumentError(f"{output.relative_to(REPO)} is stale: run make openapi")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.openapi", description="Generate docs/openapi.json.")
    parser.add_argument("--check", action="store_true", help="fail when the committed document is stale")
    args = parser.parse_args(argv)
    if args.check:
        try:
            check()
        except StaleDocumentError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(render(generate()), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
