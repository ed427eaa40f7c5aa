"""CSV key templates: checked at rule creation (config.key) and again with each event's values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from correlator.csvkeys import DEFAULT_CSV_KEY, InvalidKeyError, check_key, key_values, render_key
from correlator.event import Event
from correlator.rules import Rule

VALUES = {"dataset": "sales", "yyyy": "2026", "mm": "11", "dd": "22", "hh": "14", "rule": "r1", "type": "sale.new"}


def csv_rule(**config: object) -> Rule:
    return Rule.model_validate({"name": "to-csv", "action": "csv", "config": config})


def config_errors(**config: object) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as raised:
        csv_rule(**config)
    return [(error["loc"], error["msg"]) for error in raised.value.errors()]


@pytest.mark.parametrize(
    "template",
    [
        DEFAULT_CSV_KEY,
        "csv/{rule}/{yyyy}/{mm}/{dd}/{hh}.csv",
        "csv/dt={yyyy}-{mm}-{dd}/{dataset}.csv",
        "csv/{type}/{dataset}.csv",
        "csv/all.csv",
    ],
)
def test_templates_of_known_placeholders_under_csv_are_accepted(template: str):
    # WHEN a csv rule is created with the template
    rule = csv_rule(key=template)

    # THEN it is kept as given
    assert rule.config["key"] == template


def test_the_default_key_is_filled_in():
    assert csv_rule().config["key"] == "csv/{dataset}/{yyyy}-{mm}-{dd}.csv"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("../csv/{dataset}.csv", "must start with 'csv/'"),
        ("/csv/{dataset}.csv", "must start with 'csv/'"),
        ("logs/current/default.log", "must start with 'csv/'"),
        ("csv/../logs/{dataset}.csv", "'..' segments"),
        ("csv/{dataset}/./{dd}.csv", "'..' segments"),
        ("csv//{dataset}.csv", "empty"),
        ("csv/{dataset}/", "must be a file"),
        ("csv\\{dataset}.csv", "not '\\\\'"),
        ("csv/{dataset}\n.csv", "not '\\n'"),
        ("csv/{dataset} copy.csv", "not ' '"),
        ("csv/{dataset}%2e%2e.csv", "not '%'"),
        ("csv/{secret}.csv", "unknown placeholder {secret}"),
        ("csv/{dataset.__class__}.csv", "unknown placeholder"),
        ("csv/{dataset!r}.csv", "unknown placeholder"),
        ("csv/{dataset:>99}.csv", "unknown placeholder"),
        ("csv/{}.csv", "unknown placeholder {}"),
        ("csv/{dataset.csv", "not '{'"),
        ("csv/dataset}.csv", "not '}'"),
    ],
)
def test_unsafe_templates_are_refused_naming_config_key(template: str, reason: str):
    # WHEN a csv rule is created with the template
    errors = config_errors(key=template)

    # THEN the error names config.key and says why
    [(location, message)] = errors
    assert location == ("config", "key")
    assert reason in message


@pytest.mark.parametrize(
    ("config", "field", "reason"),
    [
        ({"columns": ["a", "b", "a"]}, "columns", "distinct"),
        ({"columns": ["a"], "numeric": ["a", "a"]}, "numeric", "distinct"),
        ({"columns": ["a", "b"], "numeric": ["amount"]}, "numeric", "not in columns: amount"),
        ({"columns": []}, "columns", "at least 1"),
        ({"delimiter": ";"}, "delimiter", "Extra inputs"),
    ],
)
def test_columns_and_numeric_are_checked(config: dict[str, object], field: str, reason: str):
    # WHEN / THEN
    [(location, message)] = config_errors(**config)
    assert location == ("config", field)
    assert reason in message


def test_numeric_may_name_any_column_when_the_header_comes_from_the_data():
    assert csv_rule(numeric=["amount"]).config["numeric"] == ["amount"]


def test_a_template_renders_with_the_values_of_an_event():
    # GIVEN a dataset event at 2026-11-22T04:05:06Z
    event = Event.model_validate(
        {
            "id": "e1",
            "time": "2026-11-22T04:05:06.000Z",
            "external": True,
            "type": "sale.new",
            "kind": "dataset",
            "dataset": "sales",
            "payload": {"a": 1},
        }
    )

    # WHEN its values fill a template
    key = render_key("csv/{rule}/{dataset}/{yyyy}/{mm}/{dd}/{hh}-{type}.csv", key_values(event, "r1"))

    # THEN every placeholder is replaced, zero-padded, from the event's UTC time
    assert key == "csv/r1/sales/2026/11/22/04-sale.new.csv"


def test_a_standard_event_has_no_dataset_value():
    # GIVEN a standard event
    event = Event.model_validate({"id": "e1", "time": datetime(2026, 1, 2, tzinfo=UTC), "external": True, "type": "x"})

    # WHEN / THEN
    with pytest.raises(InvalidKeyError, match=r"no value for \{dataset\}"):
        render_key(DEFAULT_CSV_KEY, key_values(event, "r1"))


@pytest.mark.parametrize("dataset", ["..", ".", "a/b", "a\\b", "", "x" * 129, "a b", "é"])
def test_unsafe_values_are_refused_when_rendering(dataset: str):
    # WHEN a value that could escape the prefix or break the key is substituted
    # THEN the key is refused (the writer skips the row permanently)
    with pytest.raises(InvalidKeyError):
        render_key(DEFAULT_CSV_KEY, {**VALUES, "dataset": dataset})


def test_values_with_dots_that_are_not_segments_are_fine():
    assert render_key(DEFAULT_CSV_KEY, {**VALUES, "dataset": "sales.eu..v2"}) == "csv/sales.eu..v2/2026-11-22.csv"


@pytest.mark.parametrize("key", ["csv/a\x7f.csv", "csv/" + "a" * 1021, "csv/a/../b.csv", "data/a.csv"])
def test_check_key_refuses_what_s3_or_tools_would_misread(key: str):
    with pytest.raises(InvalidKeyError):
        check_key(key)
