"""Personium shapes mapped onto Correlator's: rule entities, entity keys, OData queries, request URLs, methods."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from correlator.personium import PersoniumError, override_method, personium_error, public_base_url
from correlator.personium_log import check_depth, check_propfind_body, creation_date
from correlator.personium_rules import entity_of, filter_entities, parse_key, rule_from_entity
from correlator.rules import Rule
from tests.samples import load_event


@pytest.mark.parametrize(
    ("entity", "action", "config"),
    [
        ({"Action": "exec", "TargetUrl": "enrich"}, "script", {"script": "enrich", "args": {}}),
        (
            {"Action": "exec", "TargetUrl": "arn:aws:lambda:us-east-1:123456789012:function:enrich"},
            "script",
            {"function": "arn:aws:lambda:us-east-1:123456789012:function:enrich", "args": {}},
        ),
        (
            {"Action": "relay", "TargetUrl": "https://hooks.example.com/x"},
            "relay",
            {"url": "https://hooks.example.com/x", "headers": {}},
        ),
        ({"Action": "log"}, "log", {}),
        ({"Action": "log.error", "TargetUrl": "ignored"}, "log.error", {}),
    ],
)
def test_actions_map_and_read_back(entity: dict[str, Any], action: str, config: dict[str, Any]) -> None:
    # WHEN a Personium entity becomes a Correlator rule
    rule = rule_from_entity({"Name": "r1", "EventExternal": True, "EventType": ".failed", **entity})

    # THEN the action and config are Correlator's, the match Personium's
    assert (rule.action, rule.config) == (action, config)
    assert rule.to_json()["match"] == {"external": True, "type": ".failed"}
    # AND it reads back as the same entity (TargetUrl kept only where it means something)
    back = entity_of(rule)
    assert back is not None
    assert back["Action"] == entity["Action"]
    assert back["TargetUrl"] == (entity.get("TargetUrl") if action != "log.error" else None)


@pytest.mark.parametrize(
    "rule",
    [
        {
            "name": "r",
            "action": "email",
            "match": {"external": True},
            "config": {"to": ["ops@example.com"], "template": "alert"},
        },
        {"name": "r", "action": "log", "match": {}},
        {"name": "r", "action": "log", "match": {"external": True, "level": ["ERROR"]}},
        {"name": "r", "action": "log", "match": {"external": True}, "enabled": False},
        {"name": "r", "action": "log", "match": {"external": True}, "pattern": {"payload": {"x": [1]}}},
        {"name": "r", "action": "script", "match": {"external": True}, "config": {"script": "s", "args": {"a": 1}}},
        {
            "name": "r",
            "action": "relay",
            "match": {"external": True},
            "config": {"url": "https://x.example/", "headers": {"A": "b"}},
        },
    ],
)
def test_rules_personium_cannot_express_have_no_entity(rule: dict[str, Any]) -> None:
    assert entity_of(Rule.model_validate(rule)) is None


@pytest.mark.parametrize(
    ("segment", "name"),
    [
        ("Rule('r1')", "r1"),
        ("Rule(Name='r1')", "r1"),
        ("Rule(Name='r1',_Box.Name=null)", "r1"),
        ("Rule(_Box.Name=null,Name='r1')", "r1"),
        ("Rule('it''s')", "it's"),
    ],
)
def test_entity_keys(segment: str, name: str) -> None:
    assert parse_key(segment) == name


@pytest.mark.parametrize(
    ("segment", "code"),
    [
        ("Rule(r1)", "PR400-OD-0004"),
        ("Rule('r1'", "PR400-OD-0004"),
        ("Role('r1')", "PR400-OD-0004"),
        ("Rule(Name='r1',_Box.Name='b')", "PR404-OD-0002"),
        ("Rule(_Box.Name='b',Name='r1')", "PR404-OD-0002"),
    ],
)
def test_bad_entity_keys(segment: str, code: str) -> None:
    with pytest.raises(PersoniumError) as raised:
        parse_key(segment)
    assert raised.value.personium_code == code


ENTITIES = [
    {"Name": name, "Action": action, "EventExternal": external, "EventType": None}
    for name, action, external in (("b", "log", True), ("a", "log.warn", False), ("c", "log", False))
]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({}, ["b", "a", "c"]),
        ({"$filter": "Action eq 'log'"}, ["b", "c"]),
        ({"$filter": "Action eq 'log' and EventExternal eq false"}, ["c"]),
        ({"$filter": "EventType eq null", "$orderby": "Name"}, ["a", "b", "c"]),
        ({"$orderby": "Name desc", "$top": "2"}, ["c", "b"]),
        ({"$orderby": "Name asc", "$skip": "1"}, ["b", "c"]),
        ({"$top": "0"}, []),
    ],
)
def test_the_odata_subset(query: dict[str, str], names: list[str]) -> None:
    assert [entity["Name"] for entity in filter_entities(ENTITIES, query)] == names


@pytest.mark.parametrize(
    "query",
    [
        {"$expand": "_Box"},
        {"q": "x"} | {"$search": "x"},
        {"$filter": "substringof('a',Name)"},
        {"$filter": "Colour eq 'red'"},
        {"$orderby": "Name sideways"},
        {"$top": "x"},
        {"$skip": "99999999"},
        {"$select": "Colour"},
    ],
)
def test_the_rest_of_odata_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(PersoniumError) as raised:
        filter_entities(ENTITIES, query)
    assert raised.value.status == 400


def test_the_error_body_is_personiums() -> None:
    error = personium_error("PR400-EV-0004", "Type")
    assert (error.status, error.to_body()) == (
        400,
        {"code": "PR400-EV-0004", "message": {"lang": "en", "value": "[Type] field format error."}},
    )
    assert personium_error("PR501-MC-0001").status == 501


def test_public_base_url_is_what_the_client_called() -> None:
    # GIVEN a request through API Gateway's own host (stage dev), and the same served at the root
    event = load_event("apigw/personium-post-event")
    assert public_base_url(APIGatewayProxyEvent(event)) == "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
    event["headers"] = {"Host": "127.0.0.1:3000"}
    event["requestContext"]["path"] = "/dev/__event"
    assert public_base_url(APIGatewayProxyEvent(event)) == "http://127.0.0.1:3000"


@pytest.mark.parametrize(
    ("method", "headers", "result"),
    [
        ("POST", {"X-HTTP-Method-Override": "propfind"}, "PROPFIND"),
        ("POST", {"x-override": "MERGE"}, "MERGE"),
        ("POST", {"X-HTTP-Method-Override": "PROP FIND"}, "POST"),
        ("GET", {"X-HTTP-Method-Override": "DELETE"}, "GET"),
        ("POST", {}, "POST"),
    ],
)
def test_method_override_applies_to_post_only(method: str, headers: dict[str, str], result: str) -> None:
    assert override_method({"httpMethod": method, "headers": headers})["httpMethod"] == result


def test_depth_and_propfind_bodies() -> None:
    assert check_depth("0") == "0"
    assert check_depth("1") == "1"
    for depth, code in ((None, "PR400-DV-0003"), ("infinity", "PR403-DV-0001"), ("01", "PR400-DV-0003")):
        with pytest.raises(PersoniumError) as raised:
            check_depth(depth)
        assert raised.value.personium_code == code
    check_propfind_body(b"  ")
    check_propfind_body(b'<a:propfind xmlns:a="DAV:"><a:allprop/></a:propfind>')
    for body, code in (
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><propfind xmlns="DAV:">&e;</propfind>',
            "PR400-DV-0001",
        ),
        (b'<propfind xmlns="DAV:"><propname/></propfind>', "PR400-DV-0002"),
        (b'<propfind xmlns="urn:other"><allprop/></propfind>', "PR400-DV-0002"),
    ):
        with pytest.raises(PersoniumError) as raised:
            check_propfind_body(body)
        assert raised.value.personium_code == code


def test_creation_date_is_wink_s_format() -> None:
    from datetime import UTC, datetime

    assert creation_date(datetime(2017, 2, 3, 1, 27, 31, 93_000, tzinfo=UTC)) == "2017-02-03T01:27:31.093+0000"
