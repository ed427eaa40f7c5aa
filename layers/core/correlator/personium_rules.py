"""Personium's ``CellCtl.Rule`` entity on Correlator rules, and its OData (v2, JSON verbose) answers.

A Personium rule becomes a Correlator rule of the same name with the same matching semantics:
``EventExternal`` → ``match.external`` (always given: Personium matches it exactly), ``EventType`` →
``match.type`` (prefix; a leading "." is a suffix), ``EventObject`` / ``EventInfo`` → prefix,
``EventSubject`` → exact. Correlator rules that Personium's shape cannot express (other actions,
other match fields, a raw pattern) are not listed as Personium rules.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from pydantic import ValidationError

from correlator.api import DEFAULT_MAX_BODY_BYTES
from correlator.errors import ConflictError, NotFoundError, PreconditionFailedError, ValidationFailedError
from correlator.personium import (
    PersoniumError,
    correlator_error_in_personium_shape,
    personium_error,
    personium_request_gate,
    personium_responses,
    public_base_url,
    register_personium_error_handlers,
)
from correlator.rules import RULE_NAME_PATTERN, Rule, RuleView
from correlator.rulestore import RuleStore

ENTITY_TYPE = "CellCtl.Rule"
ENTITY_SET = "Rule"
BOX_NAME = "_Box.Name"
PERSONIUM_FIELDS = (
    "Name",
    BOX_NAME,
    "EventExternal",
    "EventSubject",
    "EventType",
    "EventObject",
    "EventInfo",
    "Action",
    "TargetUrl",
)
# Personium's actions and the Correlator action each becomes (None: no equivalent here).
PERSONIUM_ACTIONS: dict[str, str | None] = {
    "log": "log",  # INFO in Personium's line format (the default); the event's level with LogLineFormat=correlator
    "log.info": "log.info",
    "log.warn": "log.warn",
    "log.error": "log.error",
    "exec": "script",
    "relay": "relay",
    "relay.event": None,  # Correlator's relay.event needs the receiving deployment's API key secret
    "relay.data": None,  # no OData collections to read the entity from
}
_MATCH_FIELDS = {"EventSubject": "subject", "EventType": "type", "EventObject": "object", "EventInfo": "info"}
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:")
# Rule('r'), Rule(Name='r'), Rule(Name='r',_Box.Name=null), Rule(Name='r',_Box.Name='b'); '' escapes a quote.
_QUOTED = r"'((?:[^']|'')*)'"
_KEY_RE = re.compile(
    rf"^{ENTITY_SET}\((?:{_QUOTED}|Name={_QUOTED}(?:,_Box\.Name=(?:null|{_QUOTED}))?"
    rf"|_Box\.Name=(?:null|{_QUOTED}),Name={_QUOTED})\)$"
)


def parse_key(segment: str) -> str:
    """The rule name in an entity key; a key with a non-null ``_Box.Name`` names no rule here (404)."""
    match = _KEY_RE.fullmatch(segment)
    if match is None:
        raise personium_error("PR400-OD-0004")
    single, name, box, box_first, name_after = match.groups()
    if box is not None or box_first is not None:
        raise personium_error("PR404-OD-0002")  # Correlator has no boxes: no box-bound rule exists
    return (single if single is not None else name if name is not None else name_after).replace("''", "'")


def _text(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise personium_error("PR400-OD-0006", field)
    return value or None


def rule_from_entity(body: Any, *, name: str | None = None) -> Rule:
    """The Correlator rule of a Personium ``Rule`` body (create: ``name`` None; update: the key's name)."""
    if not isinstance(body, dict):
        raise personium_error("PR400-OD-0006", "body")
    unknown = sorted(key for key in body if key not in PERSONIUM_FIELDS and not key.startswith("__"))
    if unknown:
        raise personium_error("PR400-OD-0006", unknown[0][:40])
    given_name = _text(body, "Name")
    if name is None:
        name = given_name or uuid.uuid4().hex
    elif given_name not in (None, name):
        raise personium_error("PR400-OD-0006", "Name")  # renaming through PUT is not supported
    if not re.fullmatch(RULE_NAME_PATTERN, name):
        raise personium_error("PR400-OD-0006", "Name")
    if body.get(BOX_NAME) is not None:
        raise personium_error("PR400-OD-0006", BOX_NAME)
    external = body.get("EventExternal", False)
    if not isinstance(external, bool):
        raise personium_error("PR400-OD-0006", "EventExternal")
    action = body.get("Action")
    if action is None:
        raise personium_error("PR400-OD-0009", "Action")
    if not isinstance(action, str) or action not in PERSONIUM_ACTIONS:
        raise personium_error("PR400-OD-0006", "Action")
    correlator_action = PERSONIUM_ACTIONS[action]
    if correlator_action is None:
        raise personium_error("PR400-OD-0042", f"Action {action}")
    match: dict[str, Any] = {"external": external}
    for field, key in _MATCH_FIELDS.items():
        value = _text(body, field)
        if value is not None:
            match[key] = value
    target = _text(body, "TargetUrl")
    config: dict[str, Any] = {}
    if correlator_action == "script":
        if target is None:
            raise personium_error("PR400-OD-0009", "TargetUrl")
        config = {"function": target} if _LAMBDA_ARN.match(target) else {"script": target}
    elif correlator_action == "relay":
        if target is None:
            raise personium_error("PR400-OD-0009", "TargetUrl")
        config = {"url": target}
    try:
        return Rule.model_validate(
            {
                "name": name,
                "description": f"Personium rule ({action})",
                "match": match,
                "action": correlator_action,
                "config": config,
            }
        )
    except ValidationError as error:
        raise _field_error(error) from None


def _field_error(error: ValidationError) -> PersoniumError:
    """PR400-OD-0006 naming the Personium field a Correlator validation error is about."""
    details = [{"field": ".".join(map(str, detail.get("loc", ())))} for detail in error.errors()]
    return personium_error("PR400-OD-0006", _personium_field(details))


_CORRELATOR_FIELDS = {
    "name": "Name",
    "action": "Action",
    "config": "TargetUrl",
    "match.external": "EventExternal",
    **{f"match.{key}": field for field, key in _MATCH_FIELDS.items()},
}


def _personium_field(details: list[dict[str, Any]]) -> str:
    """The Personium field of the first Correlator error detail that names one; else ``body``."""
    for detail in details:
        field = str(detail.get("field", ""))
        for prefix, personium in _CORRELATOR_FIELDS.items():
            if field == prefix or field.startswith(prefix + "."):
                return personium
    return "body"


def entity_of(rule: Rule) -> dict[str, Any] | None:
    """The Personium entity fields of ``rule``, or None when Personium's shape cannot express it."""
    match = rule.match
    expressible = (
        rule.enabled
        and rule.pattern is None
        and match.external is not None
        and match.schema_ is None
        and match.level is None
        and match.kind is None
        and match.dataset is None
    )
    if not expressible:
        return None
    action: str
    target: str | None
    if rule.action in ("log", "log.info", "log.warn", "log.error"):
        action, target = rule.action, None
    elif rule.action in ("script", "exec") and not rule.config.get("args"):
        action, target = "exec", rule.config.get("script") or rule.config.get("function")
    elif rule.action == "relay" and not rule.config.get("secret_name") and not rule.config.get("headers"):
        action, target = "relay", rule.config["url"]
    else:
        return None
    return {
        "Name": rule.name,
        BOX_NAME: None,
        "EventExternal": match.external,
        "EventSubject": match.subject,
        "EventType": match.type,
        "EventObject": match.object,
        "EventInfo": match.info,
        "Action": action,
        "TargetUrl": target,
    }


def entity_uri(base_url: str, name: str) -> str:
    return f"{base_url}/__ctl/{ENTITY_SET}(Name='{name}',_Box.Name=null)"


def odata_entity(entity: dict[str, Any], base_url: str, etag: str, now: datetime | None = None) -> dict[str, Any]:
    """One entity in OData v2 JSON verbose: the fields, ``__published``/``__updated``, ``__metadata``."""
    stamp = f"/Date({int((now or datetime.now(UTC)).timestamp() * 1000)})/"
    return {
        **entity,
        "__published": stamp,
        "__updated": stamp,
        "__metadata": {"uri": entity_uri(base_url, entity["Name"]), "etag": etag, "type": ENTITY_TYPE},
    }


def rule_cache_entry(entity: dict[str, Any]) -> dict[str, Any]:
    """One rule of ``GET /__rule`` (Personium's in-memory rule list; no HitCount is kept here)."""
    return {**entity, "Schema": None}


def filter_entities(entities: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """The OData query subset Personium clients use: ``$filter`` (``Field eq 'x'``, ``and``), ``$orderby``
    (one field, ``asc``/``desc``), ``$skip``, ``$top``, ``$select``; anything else → 400 PR400-OD-0042."""
    unsupported = sorted(key for key in query if key.startswith("$") and key not in _QUERY_OPTIONS)
    if unsupported:
        raise personium_error("PR400-OD-0042", unsupported[0][:40])
    result = [entity for entity in entities if _filter(query.get("$filter"))(entity)]
    if order := query.get("$orderby"):
        field, _, direction = order.strip().partition(" ")
        if field not in PERSONIUM_FIELDS or direction not in ("", "asc", "desc"):
            raise personium_error("PR400-OD-0029", "$orderby", order[:80])
        result.sort(key=lambda entity: (entity[field] is not None, str(entity[field])), reverse=direction == "desc")
    skip, top = _count(query, "$skip", 0), _count(query, "$top", 25)
    result = result[skip : skip + top]
    if select := query.get("$select"):
        fields = [field.strip() for field in select.split(",")]
        if fields != ["*"]:
            if any(field not in PERSONIUM_FIELDS for field in fields):
                raise personium_error("PR400-OD-0029", "$select", select[:80])
            result = [
                {key: value for key, value in entity.items() if key in fields or key == "Name"} for entity in result
            ]
    return result


_QUERY_OPTIONS = frozenset({"$filter", "$orderby", "$skip", "$top", "$select", "$inlinecount", "$format"})
_CONDITION = re.compile(rf"^\s*([A-Za-z_.]+)\s+eq\s+(?:{_QUOTED}|(true|false|null))\s*$")


def _filter(expression: str | None) -> Any:
    if not expression:
        return lambda entity: True
    conditions = []
    for part in re.split(r"\s+and\s+", expression.strip()):
        match = _CONDITION.fullmatch(part)
        if match is None or match.group(1) not in PERSONIUM_FIELDS:
            raise personium_error("PR400-OD-0029", "$filter", expression[:80])
        field, text, literal = match.groups()
        wanted: Any = (
            text.replace("''", "'") if text is not None else {"true": True, "false": False, "null": None}[literal]
        )
        conditions.append((field, wanted))
    return lambda entity: all(entity.get(field) == wanted for field, wanted in conditions)


def _count(query: dict[str, str], option: str, default: int) -> int:
    value = query.get(option)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or int(value) > 10_000:
        raise personium_error("PR400-OD-0029", option, value[:20])
    return int(value)


def rule_view_entities(rules: list[RuleView]) -> list[dict[str, Any]]:
    """Every rule Personium's shape can express, as entities, by name."""
    return [entity for rule in rules if (entity := entity_of(rule)) is not None]


# ---- the routes: /__ctl/Rule, /__ctl/Rule(...), /__rule ----

ODATA_HEADERS = {"DataServiceVersion": "2.0"}
PERSONIUM_RULE_RESOURCES = ("/__ctl/", "/__rule")
# The internal event of each call, as for the same operation on /rules.
RULE_EVENT_TYPES: dict[tuple[str, str], str] = {
    ("POST", "/__ctl/Rule"): "rule.create",
    ("GET", "/__ctl/Rule"): "rule.list",
    ("GET", "/__ctl/{entity}"): "rule.get",
    ("PUT", "/__ctl/{entity}"): "rule.update",
    ("MERGE", "/__ctl/{entity}"): "rule.update",
    ("DELETE", "/__ctl/{entity}"): "rule.delete",
    ("GET", "/__rule"): "rule.list",
}


def is_personium_rule_route(event: dict[str, Any]) -> bool:
    """True for a request to one of Personium's rule routes (``/__ctl/...``, ``/__rule``)."""
    return str(event.get("resource") or "").startswith(PERSONIUM_RULE_RESOURCES)


def personium_rules_resolver(store: RuleStore, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> APIGatewayRestResolver:
    """The resolver of Personium's rule routes over ``store`` (which vets every rule it writes)."""
    app = APIGatewayRestResolver()
    register_personium_error_handlers(app)
    gate = personium_request_gate(max_body_bytes)

    def entities() -> list[dict[str, Any]]:
        return rule_view_entities(store.list_all())

    def current(name: str) -> tuple[dict[str, Any], str]:
        """The Personium entity of rule ``name`` and the rule's ETag (the same as on ``/rules``)."""
        try:
            view, etag = store.get_with_etag(name)
        except NotFoundError:
            raise personium_error("PR404-OD-0002") from None
        entity = entity_of(view)
        if entity is None:
            raise personium_error("PR404-OD-0002")
        return entity, etag

    def if_match() -> str | None:
        return app.current_event.headers.get("If-Match")

    def entity_response(status: int, entity: dict[str, Any], etag: str, **headers: str) -> Response[dict[str, Any]]:
        body = {"d": {"results": odata_entity(entity, public_base_url(app.current_event), etag)}}
        return Response(
            status_code=status,
            content_type=content_types.APPLICATION_JSON,
            body=body,
            headers={**ODATA_HEADERS, "ETag": etag, **headers},
        )

    def write(rule: Rule | None, *, name: str, create: bool = False) -> tuple[dict[str, Any], str] | None:
        """Create, replace (``rule``) or delete (None) under the request's If-Match, in Personium's errors."""
        try:
            if rule is None:
                store.delete(name, if_match=if_match())
                return None
            stored, etag = store.create(rule) if create else store.replace(rule, if_match=if_match())
        except ValidationFailedError as error:
            raise personium_error("PR400-OD-0006", _personium_field(error.details)) from None
        except NotFoundError:
            raise personium_error("PR404-OD-0002") from None
        except PreconditionFailedError:
            raise personium_error("PR412-OD-0002") from None
        except ConflictError as error:
            if create:
                raise personium_error("PR409-OD-0003") from None
            raise correlator_error_in_personium_shape(409, error.code, error.message) from None
        entity = entity_of(stored)
        assert entity is not None  # built from a Personium entity
        return entity, etag

    @app.post(
        "/__ctl/Rule",
        middlewares=[gate],
        summary="Personium: create a rule (CellCtl.Rule)",
        responses=personium_responses(
            {201: "Created", 400: "PR400-OD-*, PR400-CM-0004", 409: "PR409-OD-0003", 413: "Too large", 415: "Not JSON"}
        ),
    )
    def create_rule() -> Response[dict[str, Any]]:
        rule = rule_from_entity(app.current_event.json_body)
        written = write(rule, name=rule.name, create=True)
        assert written is not None
        entity, etag = written
        uri = entity_uri(public_base_url(app.current_event), entity["Name"])
        return entity_response(201, entity, etag, Location=uri)

    @app.get(
        "/__ctl/Rule",
        summary="Personium: list rules (OData subset, see the compatibility page)",
        responses=personium_responses({200: "The rules", 400: "PR400-OD-0029 / PR400-OD-0042: a query option"}),
    )
    def list_rules() -> Response[dict[str, Any]]:
        query = app.current_event.query_string_parameters or {}
        listed = entities()
        selected = filter_entities(listed, query)
        base_url = public_base_url(app.current_event)
        # One read per listed rule for its ETag ($top bounds the page: 25 by default).
        etags = {entity["Name"]: store.get_with_etag(entity["Name"])[1] for entity in selected}
        results: dict[str, Any] = {
            "results": [odata_entity(entity, base_url, etags[entity["Name"]]) for entity in selected]
        }
        if query.get("$inlinecount") == "allpages":
            results["__count"] = str(len(filter_entities(listed, {"$filter": query.get("$filter", "")})))
        elif query.get("$inlinecount") not in (None, "none"):
            raise personium_error("PR400-OD-0029", "$inlinecount", query["$inlinecount"][:40])
        return Response(
            status_code=200, content_type=content_types.APPLICATION_JSON, body={"d": results}, headers=ODATA_HEADERS
        )

    @app.get(
        "/__ctl/<entity>",
        summary="Personium: get a rule: Rule('name') or Rule(Name='name',_Box.Name=null)",
        responses=personium_responses({200: "The rule", 400: "PR400-OD-0004: a bad key", 404: "PR404-OD-0002"}),
    )
    def get_rule(entity: str) -> Response[dict[str, Any]]:
        return entity_response(200, *current(parse_key(unquote(entity))))

    @app.put(
        "/__ctl/<entity>",
        middlewares=[gate],
        summary="Personium: replace a rule",
        responses=personium_responses(
            {
                204: "Replaced",
                400: "PR400-OD-*",
                404: "PR404-OD-0002",
                409: "A read-only rule",
                412: "PR412-OD-0002",
                413: "Too large",
                415: "Not JSON",
            }
        ),
    )
    def replace_rule(entity: str) -> Response[None]:
        name = parse_key(unquote(entity))
        current(name)
        written = write(rule_from_entity(app.current_event.json_body, name=name), name=name)
        assert written is not None
        return Response(status_code=204, headers={**ODATA_HEADERS, "ETag": written[1]})

    @app.route("/__ctl/<entity>", method="MERGE", middlewares=[gate], include_in_schema=False)
    def merge_rule(entity: str) -> Response[None]:
        name = parse_key(unquote(entity))
        existing, _ = current(name)
        body = app.current_event.json_body
        if not isinstance(body, dict):
            raise personium_error("PR400-OD-0006", "body")
        written = write(rule_from_entity({**existing, **body}, name=name), name=name)
        assert written is not None
        return Response(status_code=204, headers={**ODATA_HEADERS, "ETag": written[1]})

    @app.delete(
        "/__ctl/<entity>",
        summary="Personium: delete a rule",
        responses=personium_responses(
            {204: "Deleted", 400: "PR400-OD-0004", 404: "PR404-OD-0002", 409: "A read-only rule", 412: "PR412-OD-0002"}
        ),
    )
    def delete_rule(entity: str) -> Response[None]:
        name = parse_key(unquote(entity))
        current(name)
        write(None, name=name)
        return Response(status_code=204, headers=ODATA_HEADERS)

    @app.route("/__ctl/<entity>", method=["POST", "PATCH", "PROPFIND"], include_in_schema=False)
    def other_entity_method(entity: str) -> Response[None]:
        raise personium_error("PR405-MC-0001")

    @app.route("/__ctl/Rule", method=["PUT", "DELETE", "PATCH", "MERGE", "PROPFIND"], include_in_schema=False)
    def other_set_method() -> Response[None]:
        raise personium_error("PR405-MC-0001")

    @app.get(
        "/__rule",
        summary="Personium: the active rules (Personium's in-memory rule list)",
        responses=personium_responses({200: "The rules"}),
    )
    def rule_cache() -> Response[dict[str, Any]]:
        body = {"rules": [rule_cache_entry(entity) for entity in entities()], "boxes": [], "timers": []}
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)

    return app
