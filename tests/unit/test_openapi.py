"""docs/openapi.json: generated from the API resolvers and the template, and kept current."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from correlator.errors import PublishFailedError, ValidationFailedError
from docs import openapi

POST_EVENTS_STATUSES = {"200", "400", "413", "415", "422", "503"}


@pytest.fixture
def document() -> dict[str, Any]:
    return openapi.generate()


def test_committed_document_is_current(document):
    # GIVEN the committed document
    committed = openapi.OUTPUT.read_text(encoding="utf-8") if openapi.OUTPUT.exists() else ""

    # WHEN it is regenerated in memory from the code
    generated = openapi.render(document)

    # THEN nothing changed
    if committed != generated:
        pytest.fail("docs/openapi.json is stale: run make openapi", pytrace=False)


def test_post_events_is_documented_with_every_status(document):
    # WHEN the document describes POST /events
    operation = document["paths"]["/events"]["post"]
    responses = operation["responses"]

    # THEN every status the handler answers is there, each with its body
    assert set(responses) >= POST_EVENTS_STATUSES
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReceptionResponse"
    }
    for status in ("400", "413", "415", "422"):
        assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert responses["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PublishFailedBody"
    }
    # AND it is authenticated by an API key, not IAM
    assert operation["security"] == [{"api_key": []}]


def test_document_is_openapi_3_1_with_the_package_version(document):
    from correlator import __version__

    assert document["openapi"] == "3.1.0"
    assert document["info"] == {**document["info"], "title": "Correlator API", "version": __version__}
    assert set(document["components"]["securitySchemes"]) == {"api_key", "sigv4"}


def test_every_reference_resolves(document):
    # GIVEN every component schema
    schemas = document["components"]["schemas"]

    # THEN every $ref in the paths and schemas names one of them, and none is unused
    referenced = set(openapi._references(document["paths"])) | set(openapi._references(schemas))
    assert referenced == set(schemas)


def test_error_body_models_match_the_error_vocabulary():
    # GIVEN the bodies the API answers with
    error = ValidationFailedError("bad", [{"index": 0, "field": "type", "message": "m", "type": "missing"}])
    publish_failed = PublishFailedError("failed", [], [{"id": "a", "status": "failed", "error_code": "X"}])

    # THEN the documented models have exactly their keys and accept them
    assert set(openapi.ErrorBody.model_fields) == set(error.to_body())
    assert set(openapi.PublishFailedBody.model_fields) == set(publish_failed.to_body())
    openapi.ErrorBody.model_validate(error.to_body())
    openapi.PublishFailedBody.model_validate(publish_failed.to_body())


def test_route_auth_follows_the_template_defaults_and_overrides():
    # GIVEN an API whose default is IAM, and one route that asks for an API key instead
    template = {
        "Resources": {
            "Api": {"Type": "AWS::Serverless::Api", "Properties": {"Auth": {"DefaultAuthorizer": "AWS_IAM"}}},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "functions/x/",
                    "Events": {
                        "Admin": {
                            "Type": "Api",
                            "Properties": {"RestApiId": {"Ref": "Api"}, "Path": "/a", "Method": "get"},
                        },
                        "Public": {
                            "Type": "Api",
                            "Properties": {
                                "RestApiId": {"Ref": "Api"},
                                "Path": "/b",
                                "Method": "POST",
                                "Auth": {"Authorizer": "NONE", "ApiKeyRequired": True},
                            },
                        },
                        "Queue": {"Type": "SQS", "Properties": {}},
                    },
                },
            },
        }
    }

    # WHEN the routes' authentication is read
    routes = openapi.route_auth(template)

    # THEN the default applies to one route and the override to the other
    assert routes == {
        ("get", "/a"): openapi.RouteAuth(code_uri="functions/x", schemes=("sigv4",)),
        ("post", "/b"): openapi.RouteAuth(code_uri="functions/x", schemes=("api_key",)),
    }


def test_generation_refuses_a_route_the_template_does_not_wire(tmp_path):
    # GIVEN a template without the reception function's Api event
    template = openapi.load_template()
    del template["Resources"]["ReceptionFunction"]["Properties"]["Events"]
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template), encoding="utf-8")

    # WHEN the document is generated THEN the unwired route is named
    with pytest.raises(ValueError, match=r"POST /events .* has no Api event in template.yaml"):
        openapi.generate(template_path=path)


def test_generating_leaves_the_environment_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an environment without the variables the function modules read at import
    import os

    for name in openapi.IMPORT_ENV:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)

    # WHEN the document is generated (it imports every function module)
    openapi.generate()

    # THEN no variable it set for the imports is left behind (later imports in the same process would see them)
    assert dict(os.environ) == before
