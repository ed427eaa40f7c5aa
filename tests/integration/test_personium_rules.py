"""Personium's rule API (/__ctl/Rule, /__rule) on moto, and Personium rules matching as Personium's do."""

# ruff: noqa: F811 - the tests take the rules API fixture (api) of test_rules_api

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import quote

import pytest
from moto.events.models import EventPattern

from correlator.event import Event, EventSubmission, stamp_event
from correlator.personium_rules import PERSONIUM_FIELDS
from tests.integration.rules_fixtures import declare_template_rule
from tests.integration.test_rule_matching import on_the_bus
from tests.integration.test_rules_api import SAMPLE_RULE, HttpResponse, RulesApi, api  # noqa: F401 - the fixture
from tests.samples import load_event, with_headers

BASE = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
ENTITY = {
    "Name": "log-auth-errors",
    "EventExternal": True,
    "EventType": "authSchema",
    "EventObject": "https://cell1.unit1.example/box1/",
    "EventInfo": "[XXXX",
    "Action": "log.warn",
}


def call(
    api: RulesApi, method: str, path: str, body: Any = None, query: dict[str, str] | None = None, **headers: str
) -> HttpResponse:
    """A request to a Personium rule route, as API Gateway sends it (IAM caller)."""
    event = load_event("apigw/rules-list")
    resource = path if path in ("/__ctl/Rule", "/__rule") else "/__ctl/{entity}"
    event.update(
        resource=resource,
        path=path,
        httpMethod=method,
        body=None if body is None else body if isinstance(body, str) else json.dumps(body),
        pathParameters={"entity": path.rsplit("/", 1)[1]} if resource == "/__ctl/{entity}" else None,
        queryStringParameters=query,
        multiValueQueryStringParameters={key: [value] for key, value in query.items()} if query else None,
    )
    event["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/dev{path}")
    if body is not None:
        headers.setdefault("Content_Type", "application/json")
    return api.call(with_headers(event, **headers))


def key(name: str) -> str:
    return f"/__ctl/Rule(Name='{name}',_Box.Name=null)"


def entity(**fields: Any) -> dict[str, Any]:
    return {**ENTITY, **fields}


def fields_of(result: dict[str, Any]) -> dict[str, Any]:
    return {name: result[name] for name in PERSONIUM_FIELDS}


def assert_personium_error(response: HttpResponse, status: int, code: str) -> None:
    assert response.status == status, response.body
    assert response.body["code"] == code
    assert set(response.body["message"]) == {"lang", "value"}


# ---- create, get, list, update, delete ----


def test_create_answers_odata_and_stores_a_correlator_rule(api: RulesApi) -> None:
    # WHEN a Personium client creates a rule
    response = call(api, "POST", "/__ctl/Rule", ENTITY)

    # THEN 201 with OData's verbose JSON: the entity, its metadata, Location and ETag
    assert response.status == 201, response.body
    result = response.body["d"]["results"]
    assert fields_of(result) == {
        **ENTITY,
        "_Box.Name": None,
        "EventSubject": None,
        "TargetUrl": None,
    }
    metadata = result["__metadata"]
    assert metadata["uri"] == f"{BASE}{key('log-auth-errors')}"
    assert metadata["type"] == "CellCtl.Rule"
    assert metadata["etag"] == response.headers["ETag"]
    assert response.headers["Location"] == metadata["uri"]
    assert result["__published"].startswith("/Date(")
    # AND the rule is a Correlator rule with Personium's matching, on EventBridge
    pattern = json.loads(api.describe("log-auth-errors")["EventPattern"])
    assert pattern == {
        "source": ["correlator.external"],
        "detail-type": [{"prefix": "authSchema"}],
        "detail": {
            "object": [{"prefix": "https://cell1.unit1.example/box1/"}],
            "info": [{"prefix": "[XXXX"}],
            "hops": [{"numeric": ["<", 3]}],
        },
    }
    # AND the call is audited as rule.create
    [audit] = api.audit()
    assert (audit.type, audit.object, audit.info) == ("rule.create", "/__ctl/Rule", "201")
    assert api.get("log-auth-errors").body["action"] == "log.warn"


def test_a_rule_without_a_name_gets_one_and_external_defaults_to_false(api: RulesApi) -> None:
    response = call(api, "POST", "/__ctl/Rule", {"Action": "log"})
    assert response.status == 201, response.body
    result = response.body["d"]["results"]
    assert len(result["Name"]) == 32
    assert result["EventExternal"] is False
    assert json.loads(api.describe(result["Name"])["EventPattern"])["source"] == ["correlator.internal"]


@pytest.mark.parametrize(
    "segment",
    [
        "Rule('log-auth-errors')",
        "Rule(Name='log-auth-errors')",
        "Rule(Name='log-auth-errors',_Box.Name=null)",
        "Rule(_Box.Name=null,Name='log-auth-errors')",
    ],
)
def test_every_key_form_gets_the_rule(api: RulesApi, segment: str) -> None:
    call(api, "POST", "/__ctl/Rule", ENTITY)
    response = call(api, "GET", f"/__ctl/{quote(segment, safe='')}")
    assert response.status == 200, response.body
    assert response.body["d"]["results"]["Name"] == "log-auth-errors"
    assert response.headers["ETag"] == response.body["d"]["results"]["__metadata"]["etag"]


def test_list_shows_personium_shaped_rules_with_the_odata_subset(api: RulesApi) -> None:
    # GIVEN two Personium rules and a Correlator rule Personium's shape cannot express (level match)
    call(api, "POST", "/__ctl/Rule", ENTITY)
    call(api, "POST", "/__ctl/Rule", entity(Name="b-relay", Action="log.error"))
    assert api.create(SAMPLE_RULE).status == 201

    # WHEN listed
    listed = call(api, "GET", "/__ctl/Rule")

    # THEN only the Personium-shaped rules, by name
    assert [item["Name"] for item in listed.body["d"]["results"]] == ["b-relay", "log-auth-errors"]
    # AND $filter / $orderby / $top / $skip / $inlinecount / $select work
    filtered = call(api, "GET", "/__ctl/Rule", query={"$filter": "Name eq 'b-relay'", "$inlinecount": "allpages"})
    assert [item["Name"] for item in filtered.body["d"]["results"]] == ["b-relay"]
    assert filtered.body["d"]["__count"] == "1"
    ordered = call(api, "GET", "/__ctl/Rule", query={"$orderby": "Name desc", "$top": "1", "$skip": "0"})
    assert [item["Name"] for item in ordered.body["d"]["results"]] == ["log-auth-errors"]
    selected = call(api, "GET", "/__ctl/Rule", query={"$select": "Action", "$filter": "Action eq 'log.error'"})
    assert [set(item) - {"__metadata", "__published", "__updated"} for item in selected.body["d"]["results"]] == [
        {"Name", "Action"}
    ]
    # AND /__rule lists the same rules in Personium's rule-cache shape
    cache = call(api, "GET", "/__rule")
    assert cache.status == 200
    assert [rule["Name"] for rule in cache.body["rules"]] == ["b-relay", "log-auth-errors"]
    assert cache.body["rules"][0]["Action"] == "log.error"
    assert (cache.body["boxes"], cache.body["timers"]) == ([], [])


def test_put_replaces_and_merge_updates_part(api: RulesApi) -> None:
    created = call(api, "POST", "/__ctl/Rule", ENTITY)

    # WHEN replaced (If-Match: the ETag) and then merged
    replaced = call(
        api,
        "PUT",
        key("log-auth-errors"),
        entity(EventType=".failed", EventInfo=None),
        If_Match=created.headers["ETag"],
    )
    merged = call(api, "MERGE", key("log-auth-errors"), {"Action": "log.error"})

    # THEN 204 each, and the rule is both
    assert (replaced.status, merged.status) == (204, 204), (replaced.body, merged.body)
    result = call(api, "GET", key("log-auth-errors")).body["d"]["results"]
    assert (result["EventType"], result["EventInfo"], result["Action"]) == (".failed", None, "log.error")
    assert json.loads(api.describe("log-auth-errors")["EventPattern"])["detail-type"] == [{"suffix": ".failed"}]
    # AND a stale ETag is refused
    assert_personium_error(
        call(api, "PUT", key("log-auth-errors"), ENTITY, If_Match=created.headers["ETag"]), 412, "PR412-OD-0002"
    )


def test_delete_removes_the_rule(api: RulesApi) -> None:
    call(api, "POST", "/__ctl/Rule", ENTITY)
    assert call(api, "DELETE", key("log-auth-errors")).status == 204
    assert "log-auth-errors" not in api.rule_names()
    assert_personium_error(call(api, "GET", key("log-auth-errors")), 404, "PR404-OD-0002")
    assert_personium_error(call(api, "DELETE", key("log-auth-errors")), 404, "PR404-OD-0002")


def test_actions_without_a_deployed_target_are_refused_by_field(api: RulesApi) -> None:
    # This test stack deploys the log actions only: exec (a script) is refused, naming Action
    response = call(api, "POST", "/__ctl/Rule", entity(Name="run", Action="exec", TargetUrl="enrich"))
    assert_personium_error(response, 400, "PR400-OD-0006")
    assert response.body["message"]["value"] == "request body format error. field [Action]"


# ---- refused ----


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"Name": "r"}, 400, "PR400-OD-0009"),  # Action is required
        (entity(Action="callback"), 400, "PR400-OD-0006"),
        (entity(Action="relay.data", TargetUrl="https://x.example/"), 400, "PR400-OD-0042"),
        (entity(Action="relay.event", TargetUrl="https://cell2.example/"), 400, "PR400-OD-0042"),
        (entity(Action="relay"), 400, "PR400-OD-0009"),  # TargetUrl is required
        (entity(Action="exec"), 400, "PR400-OD-0009"),
        (entity(Action="relay", TargetUrl="http://169.254.169.254/latest"), 400, "PR400-OD-0006"),
        (entity(Name="a:b"), 400, "PR400-OD-0006"),  # Personium allows ':'; Correlator names do not
        (entity(Name="x" * 65), 400, "PR400-OD-0006"),
        (entity(**{"_Box.Name": "box1"}), 400, "PR400-OD-0006"),
        (entity(EventExternal="yes"), 400, "PR400-OD-0006"),
        (entity(EventType="a b"), 400, "PR400-OD-0006"),
        (entity(EventInfo="x" * 1025), 400, "PR400-OD-0006"),
        (entity(EventObject=1), 400, "PR400-OD-0006"),
        (entity(Colour="red"), 400, "PR400-OD-0006"),
        ("[]", 400, "PR400-CM-0004"),
        ("{", 400, "PR400-CM-0004"),
    ],
)
def test_bad_rules_are_refused_and_nothing_is_stored(api: RulesApi, body: Any, status: int, code: str) -> None:
    before = api.rule_names()
    assert_personium_error(call(api, "POST", "/__ctl/Rule", body), status, code)
    assert api.rule_names() == before


def test_a_second_rule_of_the_same_name_is_409(api: RulesApi) -> None:
    call(api, "POST", "/__ctl/Rule", ENTITY)
    assert_personium_error(call(api, "POST", "/__ctl/Rule", ENTITY), 409, "PR409-OD-0003")


@pytest.mark.parametrize(
    ("method", "path", "query", "status", "code"),
    [
        ("GET", "/__ctl/Rule(x)", None, 400, "PR400-OD-0004"),
        ("GET", "/__ctl/Role('r')", None, 400, "PR400-OD-0004"),
        ("GET", "/__ctl/Rule(Name='log-auth-errors',_Box.Name='box1')", None, 404, "PR404-OD-0002"),
        ("GET", "/__ctl/Rule", {"$expand": "_Box"}, 400, "PR400-OD-0042"),
        ("GET", "/__ctl/Rule", {"$filter": "startswith(Name,'a')"}, 400, "PR400-OD-0029"),
        ("GET", "/__ctl/Rule", {"$top": "-1"}, 400, "PR400-OD-0029"),
        ("GET", "/__ctl/Rule", {"$inlinecount": "some"}, 400, "PR400-OD-0029"),
        ("DELETE", "/__ctl/Rule", None, 405, "PR405-MC-0001"),
        ("POST", "/__ctl/Rule('log-auth-errors')", None, 405, "PR405-MC-0001"),
    ],
)
def test_bad_requests_get_personiums_errors(
    api: RulesApi, method: str, path: str, query: dict[str, str] | None, status: int, code: str
) -> None:
    call(api, "POST", "/__ctl/Rule", ENTITY)
    assert_personium_error(call(api, method, path, query=query), status, code)


def test_rules_personiums_shape_cannot_express_are_not_personium_rules(api: RulesApi) -> None:
    # GIVEN the template's log-everything rule (it matches external and internal events alike)
    name = declare_template_rule(api.events, api.targets)

    # THEN Personium's API neither lists nor touches it
    assert name not in [item["Name"] for item in call(api, "GET", "/__ctl/Rule").body["d"]["results"]]
    assert_personium_error(call(api, "GET", f"/__ctl/Rule('{name}')"), 404, "PR404-OD-0002")
    assert_personium_error(call(api, "DELETE", f"/__ctl/Rule('{name}')"), 404, "PR404-OD-0002")
    assert name in api.rule_names()


# ---- a Personium rule and its Correlator twin match the same events ----


def personium_matches(rule: dict[str, Any], event: Event) -> bool:
    """Personium's RuleManager.isMatched (box-less rules), the reference the compiled rule must follow."""
    if rule.get("EventExternal", False) != event.external:
        return False
    event_type = rule.get("EventType")
    if event_type is not None:
        if event_type.startswith("."):
            if not event.type.endswith(event_type):
                return False
        elif not event.type.startswith(event_type):
            return False
    if rule.get("EventSubject") is not None and rule["EventSubject"] != event.subject:
        return False
    for field, value in (("EventObject", event.object), ("EventInfo", event.info)):
        if rule.get(field) is not None and (value is None or not value.startswith(rule[field])):
            return False
    return True


TWIN_RULES: list[dict[str, Any]] = [
    {"Name": "t1", "EventExternal": True, "EventType": "auth", "Action": "log"},
    {"Name": "t2", "EventExternal": True, "EventType": ".failed", "Action": "log"},
    {"Name": "t3", "EventExternal": False, "EventType": "cellctl.Rule.", "Action": "log"},
    {
        "Name": "t4",
        "EventExternal": True,
        "EventObject": "https://cell1.example/box1/",
        "EventInfo": "[2",
        "Action": "log",
    },
    {"Name": "t5", "EventExternal": True, "EventSubject": "k7ab2cd9ef", "Action": "log"},
    {"Name": "t6", "Action": "log"},  # EventExternal false by default: internal events only
]
STREAM: list[dict[str, Any]] = [
    {"external": external, "subject": subject, **fields}
    for external, subject, fields in itertools.product(
        (True, False),
        ("k7ab2cd9ef", "another-key", None),
        (
            {"type": "authSchema", "object": "https://cell1.example/box1/svc", "info": "[200] ok"},
            {"type": "auth", "info": "[2"},
            {"type": "login.failed", "object": "https://cell1.example/box2/"},
            {"type": "failed"},
            {"type": "cellctl.Rule.create", "object": "https://cell1.example/box1/", "info": "201"},
            {"type": "cellctl.Role.create", "info": "[2xx"},
            {"type": "order.failed.v2", "object": "https://cell1.example/box1", "info": "[3"},
        ),
    )
]


def stamped(external: Any, subject: Any, **fields: Any) -> Event:
    return stamp_event(EventSubmission.model_validate(fields), external=external, subject=subject, request_key="k")


def test_a_personium_rule_matches_what_personium_would_on_the_same_stream(api: RulesApi) -> None:
    # GIVEN each Personium rule created through /__ctl/Rule, and its Correlator twin through /rules
    events = [stamped(**item) for item in STREAM]
    for rule in TWIN_RULES:
        assert call(api, "POST", "/__ctl/Rule", rule).status == 201
        twin = call(api, "GET", f"/__ctl/Rule('{rule['Name']}')").body["d"]["results"]
        match = {"external": twin["EventExternal"]} | {
            key: twin[field]
            for field, key in (
                ("EventType", "type"),
                ("EventObject", "object"),
                ("EventInfo", "info"),
                ("EventSubject", "subject"),
            )
            if twin[field] is not None
        }
        assert api.create({"name": f"{rule['Name']}-twin", "action": "log", "match": match}).status == 201

    # WHEN the same stream of events is judged by each rule's EventBridge pattern (moto's engine)
    for rule in TWIN_RULES:
        engines = [
            EventPattern.load(api.describe(name)["EventPattern"]) for name in (rule["Name"], f"{rule['Name']}-twin")
        ]
        for event in events:
            judged = [bool(engine.matches_event(on_the_bus(event))) for engine in engines]  # type: ignore[arg-type]

            # THEN the Personium rule, its twin and Personium's own matching agree on every event
            assert judged == [personium_matches(rule, event)] * 2, (rule, event.to_detail())
