"""What ``sam local`` needs, checked statically: local/sam-env.json and the sample events of ``events/``.

No Docker here: these tests check that the env-vars file gives every function every variable it
declares (with ``make run``'s values and moto's endpoint), and that every file of ``events/`` is a
well-formed input for the function docs/local-vs-aws.md names for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from correlator.delivery import parse_delivery
from correlator.event import Event
from local.api import Auth, Router, routes_of
from local.sam_local import ENV_FILE, REPO_ROOT, declared_variables, env_vars, provisioned, render
from local.template import Template

EVENTS = REPO_ROOT / "events"
DOCS = REPO_ROOT / "docs" / "local-vs-aws.md"
BUS_EVENT = "(the bus)"


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, str]]:
    return env_vars()


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Template, dict[str, Any]]]:
    with provisioned(REPO_ROOT / "template.yaml", {}) as provisioned_stack:
        yield provisioned_stack


def test_the_committed_env_vars_file_is_current(generated: dict[str, dict[str, str]]) -> None:
    assert ENV_FILE.read_text() == render(generated), "local/sam-env.json is stale: run `make sam-env`"


def test_the_env_vars_file_covers_every_function_and_variable(stack: tuple[Template, dict[str, Any]]) -> None:
    # GIVEN the template's functions / WHEN the committed file is read
    template, functions = stack
    committed = json.loads(ENV_FILE.read_text())

    # THEN every function is there with every variable it declares, pointed at make run's moto from a container
    assert set(committed) == set(functions)
    for logical_id in functions:
        declared = declared_variables(template, logical_id)
        assert set(committed[logical_id]) == set(declared), logical_id
        assert committed[logical_id]["AWS_ENDPOINT_URL"] == "http://host.docker.internal:5000"
        for name, value in committed[logical_id].items():
            assert "amazonaws.com" not in value, (logical_id, name, value)
            assert "127.0.0.1:" not in value, (logical_id, name, value)
            assert "localhost:" not in value, (logical_id, name, value)


def documented_events() -> dict[str, str]:
    """``events/<file>`` -> the function docs/local-vs-aws.md says it is an input for."""
    documented: dict[str, str] = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("events/"):
            documented[cells[0]] = cells[1]
    return documented


def function_for(path: Path, event: Any, template: Template, functions: dict[str, Any]) -> str:
    """The function ``event`` is a valid input for, checking it on the way (AssertionError/ValueError if not)."""
    if "httpMethod" in event:  # an API Gateway REST proxy event
        found = Router(routes_of(template, functions.values())).find(event["httpMethod"], event["path"])
        assert found is not None, f"{path}: no route for {event['httpMethod']} {event['path']}"
        route, parameters = found
        assert route.path == event["resource"], path
        assert (event.get("pathParameters") or {}) == parameters, path
        identity = event["requestContext"]["identity"]
        if route.auth is Auth.API_KEY:
            # the HTTP API front door (HttpApiJwtIssuer) serves the same route with a verified JWT instead
            jwt_subject = ((event["requestContext"].get("authorizer") or {}).get("claims") or {}).get("sub")
            assert identity.get("apiKeyId") or jwt_subject, (
                f"{path}: the route takes an API key (or the HTTP API's JWT)"
            )
        if route.auth is Auth.IAM:
            assert identity.get("userArn"), f"{path}: the route is IAM-authenticated"
        if event.get("body") and not event.get("isBase64Encoded"):
            json.loads(event["body"])
        return str(route.function.logical_id)
    action_targets = json.loads(declared_variables(template, "RulesFunction")["ACTION_TARGETS"])
    if "Records" in event:  # an SQS batch for an event source mapping
        queue_names = {record["eventSourceARN"].rsplit(":", 1)[-1] for record in event["Records"]}
        assert all(record["eventSource"] == "aws:sqs" for record in event["Records"]), path
        owners = {
            logical_id
            for logical_id, function in functions.items()
            for mapping in function.triggers.sqs
            for queue in queue_names
            if queue.startswith(mapping.queue_arn.rsplit(":", 1)[-1])
        }
        assert len(owners) == 1, f"{path}: queue {queue_names} feeds {owners}"
        [owner] = owners
        for record in event["Records"]:
            delivery = parse_delivery(record["body"])
            queue_arn = action_targets[delivery.action]
            assert any(mapping.queue_arn == queue_arn for mapping in functions[owner].triggers.sqs), path
        return owner
    if "rule" in event:  # a delivery, as a rule's InputTransformer hands it to an action function
        delivery = parse_delivery(event)
        target = action_targets[delivery.action]
        [owner] = [logical_id for logical_id, function in functions.items() if function.arn == target]
        return owner
    Event.model_validate(event["detail"])  # an event on the bus, as rules and TestEventPattern see it
    assert event["source"] in ("correlator.external", "correlator.internal"), path
    return BUS_EVENT


def event_files() -> list[Path]:
    return sorted(EVENTS.rglob("*.json"))


@pytest.mark.parametrize("path", event_files(), ids=lambda path: str(path.relative_to(EVENTS)))
def test_every_sample_event_is_a_valid_input_for_its_documented_function(
    stack: tuple[Template, dict[str, Any]], path: Path
) -> None:
    # GIVEN a sample event and the function the docs name for it
    template, functions = stack
    documented = documented_events().get(str(path.relative_to(REPO_ROOT)))

    # WHEN it is checked as the input of the function it is for
    owner = function_for(path, json.loads(path.read_text()), template, functions)

    # THEN that is the function the docs give in the sam local invoke table
    assert documented == owner, f"docs/local-vs-aws.md gives {documented!r} for {path.name}, the event is for {owner}"


def test_the_docs_list_no_event_file_that_does_not_exist() -> None:
    assert set(documented_events()) == {str(path.relative_to(REPO_ROOT)) for path in event_files()}
