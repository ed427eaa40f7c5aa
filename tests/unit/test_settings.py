"""Each handler's settings: its environment read once, typed, with a clear error for a missing or bad variable."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from correlator.bootstrap import SettingsError, load_settings
from tests.conftest import fresh_import


@dataclass(frozen=True, slots=True)
class Example:
    bucket_name: str
    max_hops: int = 3
    ratio: float = 0.5
    enabled: bool = False
    configuration_set: str | None = None
    prefix: str = "correlator/"


def test_each_field_is_the_upper_case_variable_converted_to_its_type() -> None:
    # GIVEN an environment naming every field
    environ = {
        "BUCKET_NAME": "logs",
        "MAX_HOPS": "5",
        "RATIO": "0.25",
        "ENABLED": "true",
        "CONFIGURATION_SET": "ops",
        "PREFIX": "x/",
    }

    # WHEN / THEN
    assert load_settings(Example, environ) == Example("logs", 5, 0.25, True, "ops", "x/")


def test_absent_optional_variables_take_their_defaults_and_an_empty_optional_one_is_none() -> None:
    # GIVEN only the required variable, and an optional one set empty (as template.yaml's !If does)
    environ = {"BUCKET_NAME": "logs", "CONFIGURATION_SET": ""}

    # WHEN / THEN
    assert load_settings(Example, environ) == Example("logs")


def test_a_missing_required_variable_is_named() -> None:
    # GIVEN an environment without BUCKET_NAME
    # WHEN / THEN the error names the settings and the variable
    with pytest.raises(
        SettingsError, match=r"tests.unit.test_settings.Example from the environment: BUCKET_NAME is not set"
    ):
        load_settings(Example, {"MAX_HOPS": "3"})


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("MAX_HOPS", "three", "not a whole number"),
        ("MAX_HOPS", "", "not a whole number"),
        ("RATIO", "half", "not a number"),
        ("ENABLED", "maybe", "not true or false"),
    ],
)
def test_a_variable_that_does_not_read_as_its_type_is_refused(name: str, value: str, problem: str) -> None:
    # GIVEN a malformed variable
    environ = {"BUCKET_NAME": "logs", name: value}

    # WHEN / THEN the error names it, its value and what is wrong
    with pytest.raises(SettingsError, match=rf"{name}='{value}': {problem}"):
        load_settings(Example, environ)


def test_every_problem_is_reported_at_once() -> None:
    # GIVEN a missing and a malformed variable
    # WHEN / THEN one error lists both
    with pytest.raises(SettingsError, match=r"BUCKET_NAME is not set; MAX_HOPS='x': not a whole number"):
        load_settings(Example, {"MAX_HOPS": "x"})


def test_a_settings_model_must_be_a_dataclass() -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(TypeError):
        load_settings(dict, {})


def test_a_handler_without_its_required_variable_fails_at_import_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the log writer's environment without LOG_BUCKET_NAME
    monkeypatch.delenv("LOG_BUCKET_NAME", raising=False)

    # WHEN it is imported (a cold start) / THEN it fails before building anything, saying which variable
    with pytest.raises(
        SettingsError, match=r"functions.log_writer.app.Settings from the environment: LOG_BUCKET_NAME is not set"
    ):
        fresh_import("functions.log_writer.app")
