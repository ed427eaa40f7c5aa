"""The reception's compiled submission schemas: current, pydantic-free, and the models' rules exactly.

``correlator.submission_schema`` is generated from ``EventSubmission`` and ``EventBatch`` by
``tools.coreschema``; the reception validates and serialises the requests it accepts with it,
without importing pydantic. It must accept what the models accept, refuse what they refuse (with the
same errors, but for a value that is not an object), and give the same fields and the same JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaSerializer, SchemaValidator

from bench.environment import RECEPTION_APP, subprocess_env
from correlator import submission_schema
from correlator.event import EventSubmission
from correlator.reception import SubmissionFields, stamp_submissions
from correlator.reception_models import EventBatch
from tests.unit.test_reception_stamping import CALLERS, NOW, SUBMISSIONS
from tools import coreschema

EVENT = SchemaValidator(submission_schema.EVENT_SCHEMA)
BATCH = SchemaValidator(submission_schema.BATCH_SCHEMA)
EVENT_JSON = SchemaSerializer(submission_schema.EVENT_SCHEMA)

INVALID_EVENTS: list[Any] = [
    {},
    {"type": ""},
    {"type": "a b"},
    {"type": "x" * 129},
    {"type": 1},
    {"type": "a", "level": "LOUD"},
    {"type": "a", "level": 3},
    {"type": "a", "kind": "other"},
    {"type": "a", "kind": "dataset"},
    {"type": "a", "kind": "dataset", "dataset": "d"},
    {"type": "a", "kind": "dataset", "dataset": "d", "payload": {}},
    {"type": "a", "kind": "dataset", "dataset": "d", "payload": {"n": [1]}},
    {"type": "a", "kind": "dataset", "dataset": "bad id", "payload": {"n": 1}},
    {"type": "a", "dataset": "d"},
    {"type": "a", "time": "yesterday"},
    {"type": "a", "time": "2026-11-22T14:52:39"},
    {"type": "a", "time": "0001-01-01T00:00:00+01:00"},
    {"type": "a", "time": "2026-11-22T14:52:39Z" + " " * 60},
    {"type": "a", "info": "x" * 51_201},
    {"type": "a", "summary": "x" * 1_025},
    {"type": "a", "system_id": "x" * 257},
    {"type": "a", "schema": "x" * 1_025},
    {"type": "a", "schema_": "s"},
    {"type": "a", "payload": []},
    {"type": "a", "unknown": 1},
    {"type": "a", "id": "given"},
    [],
    "a",
    None,
]
VALID_EVENTS: list[Any] = [
    *SUBMISSIONS,
    {"type": "a", "level": "Notice", "kind": "Standard", "time": "2026-11-22t14:52:39.1234567z"},
    {"type": "a", "kind": "dataset", "dataset": "d", "payload": {"n": 1, "s": "x", "b": False, "z": None}},
    {"type": "a", "time": None, "object": None, "payload": None, "schema": None},
]
INVALID_BATCHES: list[Any] = [
    {"events": []},
    {"events": [{"type": "a"}] * 101},
    {"events": [{"type": "a"}, {"type": "a", "level": "LOUD"}]},
    {"events": {"type": "a"}},
    {"events": [{"type": "a"}], "extra": 1},
    {"events": ["a"]},
]


def _errors(error: ValidationError) -> list[tuple[Any, ...]]:
    # One difference: what is not an object is not "a valid dictionary or instance of EventSubmission" but
    # "a valid dictionary" (the reception's own path only says yes or no; the resolver writes the 422 body).
    return [
        ("dict_type", item["loc"], "Input should be a valid dictionary")
        if item["type"] == "model_type"
        else (item["type"], item["loc"], item["msg"])
        for item in error.errors()
    ]


def test_the_compiled_module_is_current() -> None:
    # GIVEN the models as declared now / WHEN compiled again / THEN the committed module is the same, to the byte
    path = coreschema.path_of("correlator.submission_schema")
    assert path.read_text(encoding="utf-8") == coreschema.render("correlator.submission_schema"), (
        "correlator/submission_schema.py is stale: run make core-schemas"
    )
    assert coreschema.schemas("correlator.submission_schema") == {
        "EVENT_SCHEMA": submission_schema.EVENT_SCHEMA,
        "BATCH_SCHEMA": submission_schema.BATCH_SCHEMA,
    }


@pytest.mark.parametrize("body", VALID_EVENTS)
def test_a_valid_event_gives_the_models_fields_and_json(body: dict[str, Any]) -> None:
    # WHEN
    fields = EVENT.validate_python(body)
    model = EventSubmission.model_validate(body)

    # THEN
    assert fields == model.__dict__
    assert list(fields) == list(model.__dict__)
    assert (
        EVENT_JSON.to_json(fields, exclude_none=True, by_alias=True)
        == model.model_dump_json(exclude_none=True).encode()
    )


@pytest.mark.parametrize("body", INVALID_EVENTS)
def test_an_invalid_event_is_refused_with_the_models_errors(body: Any) -> None:
    # WHEN
    with pytest.raises(ValidationError) as compiled:
        EVENT.validate_python(body)
    with pytest.raises(ValidationError) as declared:
        EventSubmission.model_validate(body)

    # THEN
    assert _errors(compiled.value) == _errors(declared.value)


def test_a_valid_batch_gives_the_models_events() -> None:
    # WHEN
    fields = BATCH.validate_python({"events": VALID_EVENTS})
    model = EventBatch.model_validate({"events": VALID_EVENTS})

    # THEN
    assert fields["events"] == [event.__dict__ for event in model.events]


@pytest.mark.parametrize("body", INVALID_BATCHES)
def test_an_invalid_batch_is_refused_with_the_models_errors(body: Any) -> None:
    # WHEN
    with pytest.raises(ValidationError) as compiled:
        BATCH.validate_python(body)
    with pytest.raises(ValidationError) as declared:
        TypeAdapter(EventBatch).validate_python(body)

    # THEN
    assert _errors(compiled.value) == _errors(declared.value)


@pytest.mark.parametrize("caller", CALLERS, ids=["api-key", "relayed"])
def test_stamping_the_compiled_fields_publishes_what_stamping_the_models_does(caller: Any) -> None:
    # GIVEN the same submissions, validated both ways
    compiled: list[SubmissionFields] = [EVENT.validate_python(body) for body in SUBMISSIONS]
    declared = [EventSubmission.model_validate(body) for body in SUBMISSIONS]

    # WHEN
    from_fields = stamp_submissions(compiled, caller, "bus", now=NOW)
    from_models = stamp_submissions(declared, caller, "bus", now=NOW)

    # THEN the same entries, ids aside
    for one, other in zip(from_fields, from_models, strict=True):
        assert one.entry["Detail"].replace(one.event_id, "") == other.entry["Detail"].replace(other.event_id, "")
        assert {**one.entry, "Detail": None} == {**other.entry, "Detail": None}
        assert one.size == other.size


def test_the_reception_function_imports_without_pydantic() -> None:
    # GIVEN / WHEN a fresh interpreter imports functions/reception/app.py as Lambda would
    probe = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('app', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['app'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] == 'pydantic')))\n"
    )
    loaded = subprocess.check_output(
        [sys.executable, "-c", probe, str(RECEPTION_APP)], env=subprocess_env(), text=True, timeout=120
    )

    # THEN pydantic (its import and the models' build) is left to the first refusal
    assert json.loads(loaded.splitlines()[-1]) == []
