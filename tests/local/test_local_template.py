"""Template reading for the local stack: short tags, parameters, conditions, intrinsic functions, Globals, order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.resources import placeholder_arn
from local.template import (
    NO_VALUE,
    Template,
    TemplateError,
    creation_order,
    load_yaml,
    merge_globals,
    references,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Hops: {Type: Number, Default: 3}
  Names: {Type: CommaDelimitedList, Default: "a, b ,c"}
Mappings:
  Sizes:
    dev: {memory: 128}
    prod: {memory: 1024}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Equals [!Ref Hops, 3]]
  Either: !Or [!Condition IsProd, !Equals ["3", !Ref Hops]]
Resources:
  Queue: {Type: AWS::SQS::Queue}
  ProdOnly: {Type: AWS::SQS::Queue, Condition: IsProd}
  DevOnly: {Type: AWS::SQS::Queue, Condition: IsDev}
"""


def template(environ: dict[str, str] | None = None, text: str = TEMPLATE) -> Template:
    loaded = Template(load_yaml(text), root=Path("."), environ=environ or {})
    loaded.attributes["Queue"] = {"Ref": "https://sqs/q", "Arn": "arn:aws:sqs:us-east-1:123456789012:q"}
    return loaded


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("!Ref X", {"Ref": "X"}),
        ("!Sub 'a-${X}'", {"Fn::Sub": "a-${X}"}),
        ("!Sub ['${A}', {A: !Ref X}]", {"Fn::Sub": ["${A}", {"A": {"Ref": "X"}}]}),
        ("!GetAtt Queue.Arn", {"Fn::GetAtt": ["Queue", "Arn"]}),
        ("!GetAtt Db.Endpoint.Address", {"Fn::GetAtt": ["Db", "Endpoint.Address"]}),
        ("!GetAtt [Queue, Arn]", {"Fn::GetAtt": ["Queue", "Arn"]}),
        ("!Join [',', [a, !Ref X]]", {"Fn::Join": [",", ["a", {"Ref": "X"}]]}),
        ("!Select [0, !Split [',', 'a,b']]", {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}),
        ("!If [C, a, !Ref AWS::NoValue]", {"Fn::If": ["C", "a", {"Ref": "AWS::NoValue"}]}),
        ("!Equals [a, b]", {"Fn::Equals": ["a", "b"]}),
        ("!Not [!Condition C]", {"Fn::Not": [{"Condition": "C"}]}),
        ("!And [!Condition A, !Condition B]", {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]}),
        ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
        ("!FindInMap [M, a, b]", {"Fn::FindInMap": ["M", "a", "b"]}),
        ("!Base64 abc", {"Fn::Base64": "abc"}),
        ("!Base64 {'Fn::Sub': x}", {"Fn::Base64": {"Fn::Sub": "x"}}),
        ("!ImportValue Shared", {"Fn::ImportValue": "Shared"}),
    ],
)
def test_short_tags_load_as_their_long_form(source: str, expected: dict[str, Any]) -> None:
    # GIVEN a property written with a short tag
    # WHEN the template text is loaded
    loaded = load_yaml(f"Value: {source}\n")

    # THEN it is the long (JSON) form of the intrinsic
    assert loaded["Value"] == expected


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"Ref": "Env"}, "dev"),
        ({"Ref": "Hops"}, 3),
        ({"Ref": "Names"}, ["a", "b", "c"]),
        ({"Ref": "AWS::StackName"}, "correlator"),
        ({"Ref": "AWS::AccountId"}, "123456789012"),
        ({"Ref": "AWS::Region"}, "us-east-1"),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "Queue"}, "https://sqs/q"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:us-east-1:123456789012:q"),
        ({"Fn::GetAtt": ["Queue", {"Fn::Join": ["", ["A", "rn"]]}]}, "arn:aws:sqs:us-east-1:123456789012:q"),
        ({"Fn::Sub": "${AWS::StackName}-${Env}-${Hops}"}, "correlator-dev-3"),
        (
            {"Fn::Sub": "${Queue.Arn}|${Queue}|${!Literal}"},
            "arn:aws:sqs:us-east-1:123456789012:q|https://sqs/q|${Literal}",
        ),
        ({"Fn::Sub": ["${Name}/${Env}", {"Name": {"Fn::Select": [1, {"Ref": "Names"}]}}]}, "b/dev"),
        ({"Fn::Join": ["-", [{"Ref": "Env"}, 7, True]]}, "dev-7-true"),
        ({"Fn::Join": [",", {"Ref": "Names"}]}, "a,b,c"),
        ({"Fn::Select": ["2", {"Fn::Split": ["/", "x/y/z"]}]}, "z"),
        ({"Fn::If": ["IsProd", "big", "small"]}, "small"),
        ({"Fn::If": ["IsDev", {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "memory"]}, 0]}, 128),
        ({"Fn::FindInMap": ["Sizes", "test", "memory", {"DefaultValue": 64}]}, 64),
        ({"Fn::Equals": [{"Ref": "Hops"}, "3"]}, True),
        ({"Fn::Base64": {"Fn::Sub": "${Env}!"}}, "ZGV2IQ=="),
        ({"Fn::GetAZs": ""}, ["us-east-1a", "us-east-1b", "us-east-1c"]),
    ],
)
def test_intrinsics_resolve(node: Any, expected: Any) -> None:
    # GIVEN the template's parameters, conditions, mappings and a created queue
    # WHEN an intrinsic is resolved
    # THEN it has CloudFormation's value
    assert template().resolve(node) == expected


def test_no_value_removes_properties_and_list_items() -> None:
    # GIVEN properties that use AWS::NoValue through Fn::If
    node = {
        "Keep": 1,
        "Drop": {"Fn::If": ["IsProd", 2, {"Ref": "AWS::NoValue"}]},
        "List": ["a", {"Fn::If": ["IsProd", "b", {"Ref": "AWS::NoValue"}]}],
    }

    # WHEN they are resolved
    resolved = template().resolve(node)

    # THEN the property and the list item are gone
    assert resolved == {"Keep": 1, "List": ["a"]}
    assert NO_VALUE not in resolved.values()


def test_conditions_decide_which_resources_exist() -> None:
    # GIVEN resources under IsProd / IsDev
    # WHEN the template is loaded with the default Env, then with Env=prod from the environment
    dev = template()
    prod = template({"CORRELATOR_PARAM_Env": "prod"})

    # THEN each has only the resources its conditions allow, and the conditions combine
    assert set(dev.resources) == {"Queue", "DevOnly"}
    assert set(prod.resources) == {"Queue", "ProdOnly"}
    assert dev.resolver.condition("Both") is True
    assert prod.resolver.condition("Both") is False
    assert prod.resolver.condition("Either") is True


def test_parameters_come_from_the_environment_typed() -> None:
    # GIVEN parameter overrides in the environment
    environ = {"CORRELATOR_PARAM_Hops": "5", "CORRELATOR_PARAM_Names": "x,y"}

    # WHEN the template is loaded
    loaded = template(environ)

    # THEN the overrides win, typed as the parameters declare
    assert loaded.parameters == {"Env": "dev", "Hops": 5, "Names": ["x", "y"]}


@pytest.mark.parametrize(
    ("environ", "node", "message"),
    [
        ({"CORRELATOR_PARAM_Env": "test"}, None, "not one of"),
        ({"CORRELATOR_PARAM_Hops": "many"}, None, "must be a number"),
        ({}, {"Ref": "Nope"}, "no such parameter"),
        ({}, {"Fn::GetAtt": ["Queue", "Nope"]}, "has no attribute Nope"),
        ({}, {"Fn::GetAtt": ["Ghost", "Arn"]}, "not a resource"),
        ({}, {"Fn::ImportValue": "shared-bus"}, "cannot be resolved locally"),
        ({}, {"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "not supported"),
        ({}, {"Fn::If": ["Unknown", 1, 2]}, "unknown condition"),
        ({}, {"Fn::Select": [5, ["a"]]}, "out of range"),
    ],
)
def test_what_cannot_be_resolved_is_a_clear_error(environ: dict[str, str], node: Any, message: str) -> None:
    # GIVEN a bad parameter value or an intrinsic that cannot be resolved locally
    # WHEN the template is loaded and the intrinsic resolved
    # THEN a TemplateError says why
    with pytest.raises(TemplateError, match=message):
        template(environ).resolve(node)


def test_globals_merge_like_sam() -> None:
    # GIVEN Globals.Function and a function's own properties
    global_properties = {
        "Timeout": 15,
        "Layers": [{"Ref": "Core"}],
        "Environment": {"Variables": {"A": "global", "B": {"Ref": "Env"}}},
        "Tracing": {"Ref": "TracingMode"},
    }
    properties = {"Timeout": 300, "Layers": ["extra"], "Environment": {"Variables": {"A": "own", "C": "c"}}}

    # WHEN they are merged
    merged = merge_globals(global_properties, properties)

    # THEN maps merge (the function wins), lists add up (globals first), scalars are overridden
    assert merged == {
        "Timeout": 300,
        "Layers": [{"Ref": "Core"}, "extra"],
        "Environment": {"Variables": {"A": "own", "B": {"Ref": "Env"}, "C": "c"}},
        "Tracing": {"Ref": "TracingMode"},
    }


def test_references_follow_ref_getatt_and_sub() -> None:
    # GIVEN properties referring to other names in every form
    node = {
        "A": {"Ref": "One"},
        "B": {"Fn::GetAtt": ["Two", "Arn"]},
        "C": {"Fn::Sub": "${Three.Arn}/${AWS::Region}/${!Skip}"},
        "D": {"Fn::Sub": ["${Var}-${Four}", {"Var": {"Ref": "Five"}}]},
        "E": [{"Fn::GetAtt": "Six.Name"}],
    }

    # WHEN its references are collected
    # THEN every referenced name is there, without Sub variables or escaped ${!...}
    assert references(node) == {"One", "Two", "Three", "AWS::Region", "Four", "Five", "Six"}


def test_creation_order_puts_dependencies_first() -> None:
    # GIVEN a rule on a bus targeting a queue with a dead-letter queue, and an explicit DependsOn
    resources: dict[str, Any] = {
        "Rule": {
            "Type": "AWS::Events::Rule",
            "Properties": {"EventBusName": {"Ref": "Bus"}, "Targets": [{"Arn": {"Fn::GetAtt": "Queue.Arn"}}]},
        },
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
        },
        "Dlq": {"Type": "AWS::SQS::Queue", "DependsOn": "Bus"},
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Ref": "AWS::StackName"}}},
    }

    # WHEN they are ordered
    order = creation_order(resources)

    # THEN each comes after what it refers to
    assert order.index("Bus") < order.index("Dlq") < order.index("Queue") < order.index("Rule")


def test_a_dependency_cycle_is_an_error() -> None:
    # GIVEN two resources referring to each other
    resources = {
        "A": {"Type": "T", "Properties": {"X": {"Ref": "B"}}},
        "B": {"Type": "T", "Properties": {"X": {"Ref": "A"}}},
    }

    # WHEN they are ordered
    # THEN the cycle is reported
    with pytest.raises(TemplateError, match="circular"):
        creation_order(resources)


def test_the_project_template_loads_and_resolves() -> None:
    # GIVEN the project's template.yaml
    loaded = Template.load(REPO_ROOT / "template.yaml", {})

    # WHEN its bus and its functions' properties are read
    (bus,) = loaded.of_type("AWS::Events::EventBus")
    functions = loaded.of_type("AWS::Serverless::Function")

    # THEN the bus is named after the stack, and every function has the Globals merged in
    assert loaded.resolved_property(bus, "Name") == "correlator"
    assert functions
    for function in functions:
        properties = loaded.properties(function)
        assert properties["Handler"]
        assert "EVENT_BUS_NAME" in properties["Environment"]["Variables"]
    assert creation_order(loaded.resources)


def _settings() -> Any:
    from local.settings import Settings

    return Settings.from_environ({"CORRELATOR_PORT": "3100", "CORRELATOR_MOTO_PORT": "5100"})


def test_relays_may_reach_the_stack_itself_and_the_ports_the_user_allows() -> None:
    # GIVEN / WHEN / THEN by default only the stack's own API; CORRELATOR_PARAM_RelayAllowedHosts adds to it
    from local.settings import relay_allowed_hosts

    assert relay_allowed_hosts({}, _settings()) == "127.0.0.1:3100"
    given = {"CORRELATOR_PARAM_RelayAllowedHosts": "127.0.0.1:9000,hooks.internal"}
    assert relay_allowed_hosts(given, _settings()) == "127.0.0.1:3100,127.0.0.1:9000,hooks.internal"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("127.0.0.1", "name the port"),
        ("localhost", "name the port"),
        ("[::1]", "name the port"),
        ("0.0.0.0", "name the port"),
        ("127.0.0.1:5100", "embedded AWS endpoint"),
        ("127.0.0.2:5100", "embedded AWS endpoint"),
        ("http://x", "not a host"),
    ],
)
def test_relays_to_this_machine_without_a_port_or_to_moto_are_refused_at_start(value: str, message: str) -> None:
    # GIVEN an allow-list entry that would let a rule reach any local port, or the embedded AWS endpoint
    from local.settings import SettingsError, relay_allowed_hosts

    # WHEN / THEN the stack refuses to start, saying why
    with pytest.raises(SettingsError, match=message):
        relay_allowed_hosts({"CORRELATOR_PARAM_RelayAllowedHosts": value}, _settings())


@pytest.mark.parametrize(
    ("kind", "name", "arn"),
    [
        ("AWS::IAM::Role", "stack-Role", "arn:aws:iam::123456789012:role/stack-Role"),
        ("AWS::IAM::ManagedPolicy", "p", "arn:aws:iam::123456789012:policy/p"),
        ("AWS::Logs::LogGroup", "/aws/lambda/f", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f"),
        ("AWS::SNS::Topic", "alerts", "arn:aws:sns:eu-west-1:123456789012:alerts"),
    ],
)
def test_skipped_resources_get_arns_of_their_real_shape(kind: str, name: str, arn: str) -> None:
    assert placeholder_arn(kind, name, "eu-west-1", "123456789012") == arn


CONSTRAINED = """
Parameters:
  MaxHops: {Type: Number, Default: 3, MinValue: 0, MaxValue: 16}
  Environment: {Type: String, Default: dev, AllowedPattern: "^[a-z][a-z0-9-]{0,15}$",
                ConstraintDescription: lower-case letters, digits and hyphens}
  Flag: {Type: String, Default: "true", AllowedValues: ["true", "false"]}
  Name: {Type: String, Default: abc, MinLength: 2, MaxLength: 4}
Resources:
  Queue: {Type: AWS::SQS::Queue}
"""


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CORRELATOR_PARAM_MaxHops": "99"},
            r"MaxHops='99' \(from CORRELATOR_PARAM_MaxHops\) is greater than its MaxValue 16",
        ),
        ({"CORRELATOR_PARAM_MaxHops": "-1"}, "is less than its MinValue 0"),
        ({"CORRELATOR_PARAM_Environment": "Prod!"}, "does not match its AllowedPattern .*: lower-case letters"),
        ({"CORRELATOR_PARAM_Flag": "yes"}, r"is not one of \['true', 'false'\]"),
        ({"CORRELATOR_PARAM_Name": "a"}, "shorter than its MinLength 2"),
        ({"CORRELATOR_PARAM_Name": "abcde"}, "longer than its MaxLength 4"),
        ({"CORRELATOR_PARAM_MaxHop": "5"}, "CORRELATOR_PARAM_MaxHop: the template has no such parameter .*MaxHops"),
    ],
)
def test_a_parameter_value_the_template_forbids_is_refused_at_load(environ: dict[str, str], message: str) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(TemplateError, match=message):
        template(environ, CONSTRAINED)


def test_values_within_the_constraints_are_taken() -> None:
    environ = {"CORRELATOR_PARAM_MaxHops": "16", "CORRELATOR_PARAM_Environment": "qa-2", "CORRELATOR_PARAM_Name": "ab"}
    assert template(environ, CONSTRAINED).parameters == {
        "MaxHops": 16,
        "Environment": "qa-2",
        "Flag": "true",
        "Name": "ab",
    }


def test_the_local_only_parameter_defaults_are_tolerated_by_any_template() -> None:
    from local.settings import template_environment

    assert template(template_environment({}), CONSTRAINED).parameters["MaxHops"] == 3
