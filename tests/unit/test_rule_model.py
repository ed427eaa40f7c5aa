"""The rule model: every field, every per-action config, timer rules; errors name the offending field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from correlator.event import Kind, Level
from correlator.rules import (
    MAX_ONESHOT_EPOCH_MS,
    MAX_PERIOD_MINUTES,
    Rule,
    RuleMatch,
    RuleView,
    canonical_action,
)

Loc = tuple[str | int, ...]
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:cleanup-orders"
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/other-correlator"
VALID_CONFIGS: dict[str, dict[str, Any]] = {
    "log": {},
    "log.info": {},
    "log.warn": {},
    "log.error": {},
    "email": {"to": ["ops@example.com"], "template": "ops-alert"},
    "sms": {"to": ["+15555550100"], "body": "${event.type} failed"},
    "csv": {},
    "script": {"script": "cleanup_orders"},
    "exec": {"function": LAMBDA_ARN},
    "relay": {"url": "https://hooks.example.com/correlator"},
    "relay.event": {"url": "https://other.example.com/events", "api_key_secret": "correlator/other-api-key"},
    "relay.bus": {"bus_arn": BUS_ARN},
}


def rule(**fields: Any) -> dict[str, Any]:
    """A valid rule's JSON with ``fields`` replaced."""
    return {"name": "notify-ops", "action": "log", **fields}


def with_match(**match: Any) -> dict[str, Any]:
    return rule(match=match)


def with_config(action: str, **config: Any) -> dict[str, Any]:
    return rule(action=action, config=config)


def error_locs(data: dict[str, Any]) -> set[Loc]:
    """The ``loc`` of every validation error of ``data`` (fails if it validates)."""
    with pytest.raises(ValidationError) as caught:
        Rule.model_validate(data)
    return {tuple(error["loc"]) for error in caught.value.errors()}


def assert_refused(data: dict[str, Any], loc: Loc) -> None:
    assert error_locs(data) == {loc}


# ---- the whole rule ----


def test_a_minimal_rule_gets_its_defaults() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate({"name": "r", "action": "log"})

    # THEN
    assert parsed.to_json() == {
        "name": "r",
        "description": "",
        "enabled": True,
        "match": {},
        "action": "log",
        "config": {},
    }


def test_a_rule_with_every_match_field_keeps_them_all() -> None:
    # GIVEN
    data: dict[str, Any] = {
        "name": "orders-errors",
        "description": "Errors of the orders system",
        "enabled": False,
        "match": {
            "external": True,
            "type": "order.",
            "object": "orders/",
            "info": "payment",
            "subject": "k7ab2cd9ef",
            "schema": "https://orders.example.com/",
            "level": ["error", "Warn"],
            "kind": "dataset",
            "dataset": "sales",
        },
        "pattern": {"payload": {"currency": ["EUR"]}},
        "action": "log.error",
        "config": {},
    }

    # WHEN
    parsed = Rule.model_validate(data)

    # THEN levels are upper-cased, everything else is kept as given
    assert parsed.match.level == [Level.ERROR, Level.WARN]
    assert parsed.match.kind is Kind.DATASET
    assert parsed.to_json() == {**data, "match": {**data["match"], "level": ["ERROR", "WARN"]}}


def test_a_rule_validates_its_own_json_to_the_same_rule() -> None:
    # GIVEN
    parsed = Rule.model_validate(with_config("email", to=["ops@example.com"], template="ops-alert"))

    # WHEN
    again = Rule.model_validate(parsed.to_json())

    # THEN
    assert again == parsed
    assert again.to_json() == parsed.to_json()


def test_unknown_rule_keys_are_refused_and_read_only_is_not_settable() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(rule(priority=1), ("priority",))
    assert_refused(rule(read_only=True), ("read_only",))


def test_the_listed_view_adds_read_only() -> None:
    # GIVEN / WHEN
    view = RuleView.model_validate(rule(read_only=True))

    # THEN
    assert view.read_only is True
    assert view.to_json()["read_only"] is True
    assert RuleView.model_validate(rule()).read_only is False


# ---- name, description, enabled ----


@pytest.mark.parametrize("name", ["a", "Z", "0", "notify-ops_on-error", "a" * 64, "9" + "-" * 63])
def test_valid_names(name: str) -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(rule(name=name)).name == name


@pytest.mark.parametrize("name", ["", "a" * 65, "-a", "_a", "a.b", "a b", "a/b", "r\u00e9gle", "a\n"])
def test_invalid_names_are_refused(name: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(rule(name=name), ("name",))


def test_a_rule_without_a_name_is_refused() -> None:
    # GIVEN / WHEN / THEN
    assert_refused({"action": "log"}, ("name",))


def test_description_is_limited_to_512_characters() -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(rule(description="d" * 512)).description == "d" * 512
    assert_refused(rule(description="d" * 513), ("description",))
    assert_refused(rule(description=5), ("description",))


@pytest.mark.parametrize("enabled", [True, False])
def test_enabled_takes_a_bool(enabled: bool) -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(rule(enabled=enabled)).enabled is enabled


@pytest.mark.parametrize("enabled", ["maybe", "true", "yes", 1, 2, None, [], {}])
def test_enabled_refuses_non_bools(enabled: Any) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(rule(enabled=enabled), ("enabled",))


# ---- match ----


@pytest.mark.parametrize(
    "type_",
    ["order.", "order.created", "a", "x:y+z-1_2", "a" * 128, ".created", "." + "a" * 128, "..", "timer.other"],
)
def test_valid_match_types(type_: str) -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(with_match(type=type_)).match.type == type_


@pytest.mark.parametrize(
    "type_", ["", ".", "a" * 129, "." + "a" * 129, "order created", "order/created", "order,created", "ordér"]
)
def test_invalid_match_types_are_refused(type_: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type=type_), ("match", "type"))


@pytest.mark.parametrize(("field", "limit"), [("object", 1024), ("info", 1024), ("subject", 2048), ("schema", 1024)])
def test_text_match_fields_take_1_to_limit_characters(field: str, limit: int) -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_match(**{field: "x" * limit}))

    # THEN
    assert parsed.to_json()["match"] == {field: "x" * limit}
    assert_refused(with_match(**{field: ""}), ("match", field))
    assert_refused(with_match(**{field: "x" * (limit + 1)}), ("match", field))
    assert_refused(with_match(**{field: 1}), ("match", field))


def test_levels_are_case_insensitive_and_upper_cased() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_match(level=["info", "WARN", "Error"]))

    # THEN
    assert parsed.to_json()["match"]["level"] == ["INFO", "WARN", "ERROR"]


def test_levels_take_the_aliases_events_take() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_match(level=["warning", "notice"]))

    # THEN they match what events with those levels are stored as
    assert parsed.to_json()["match"]["level"] == ["WARN", "INFO"]
    assert_refused(with_match(level=["warning", "WARN"]), ("match", "level"))


@pytest.mark.parametrize(
    ("level", "loc"),
    [
        ([], ("match", "level")),
        (["ERROR", "ERROR"], ("match", "level")),
        (["error", "ERROR"], ("match", "level")),
        (["DEBUG"], ("match", "level", 0)),
        (["INFO", "FATAL"], ("match", "level", 1)),
        ("ERROR", ("match", "level")),
        ([3], ("match", "level", 0)),
    ],
)
def test_invalid_levels_are_refused(level: Any, loc: Loc) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(level=level), loc)


def test_kind_is_standard_or_dataset() -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(with_match(kind="standard")).match.kind is Kind.STANDARD
    assert Rule.model_validate(with_match(kind="dataset")).match.kind is Kind.DATASET
    assert Rule.model_validate(with_match(kind="Dataset")).match.kind is Kind.DATASET  # as events take it
    assert_refused(with_match(kind="batch"), ("match", "kind"))


@pytest.mark.parametrize("dataset", ["sales", "sales.eu-2026_q4", "d" * 128])
def test_valid_datasets(dataset: str) -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(with_match(dataset=dataset)).match.dataset == dataset


@pytest.mark.parametrize("dataset", ["", "d" * 129, "sales/2026", "sales eu", "sales:eu"])
def test_invalid_datasets_are_refused(dataset: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(dataset=dataset), ("match", "dataset"))


@pytest.mark.parametrize("external", [True, False])
def test_external_takes_a_bool(external: bool) -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(with_match(external=external)).match.external is external


def test_external_refuses_non_bools() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(external="sometimes"), ("match", "external"))
    assert_refused(with_match(external="true"), ("match", "external"))
    assert_refused(with_match(external=1), ("match", "external"))


def test_unknown_match_keys_are_refused() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(hops=0), ("match", "hops"))
    assert_refused(with_match(system_id="orders"), ("match", "system_id"))


def test_keys_are_the_json_names_only() -> None:
    # GIVEN / WHEN / THEN the Python attribute names are not accepted as keys
    assert_refused(with_match(schema_="https://orders.example.com/"), ("match", "schema_"))
    assert_refused(
        with_config("email", to=["ops@example.com"], template="t", from_="c@example.com"), ("config", "from_")
    )


def test_match_must_be_an_object() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(rule(match=["order."]), ("match",))


def test_pattern_must_be_an_object() -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(rule(pattern={"payload": {"x": [1]}})).pattern == {"payload": {"x": [1]}}
    assert_refused(rule(pattern=[{"payload": 1}]), ("pattern",))


# ---- action ----


@pytest.mark.parametrize("action", sorted(VALID_CONFIGS))
def test_every_action_is_accepted_with_a_valid_config(action: str) -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(rule(action=action, config=VALID_CONFIGS[action]))

    # THEN
    assert parsed.action == action
    assert parsed.to_json()["action"] == action


@pytest.mark.parametrize("action", ["shell", "LOG", "log.debug", "", "relay.http", None])
def test_unknown_actions_are_refused(action: Any) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(rule(action=action), ("action",))


def test_a_rule_without_an_action_is_refused() -> None:
    # GIVEN / WHEN / THEN
    assert_refused({"name": "r"}, ("action",))


def test_exec_is_kept_as_given_and_runs_the_script_action() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_config("exec", script="cleanup_orders", args={"days": 30}))

    # THEN
    assert parsed.action == "exec"
    assert parsed.to_json()["action"] == "exec"
    assert parsed.to_json()["config"] == {"script": "cleanup_orders", "args": {"days": 30}}
    assert canonical_action(parsed.action) == "script"
    assert canonical_action("script") == "script"
    assert canonical_action("log.warn") == "log.warn"


def test_exec_config_is_validated_as_script_config() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("exec", script="../x"), ("config", "script"))
    assert_refused(with_config("exec"), ("config",))


# ---- config: log ----


@pytest.mark.parametrize("action", ["log", "log.info", "log.warn", "log.error"])
def test_log_actions_take_no_config(action: str) -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(with_config(action)).config == {}
    assert_refused(with_config(action, level="ERROR"), ("config", "level"))


def test_config_must_be_an_object() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(rule(config=["x"]), ("config",))


# ---- config: email ----


def test_email_config_keeps_addresses_and_fills_defaults() -> None:
    # GIVEN
    data = with_config(
        "email",
        to=["ops@example.com"],
        cc=["lead@example.com"],
        **{"from": "correlator@example.com"},
        subject="${event.type}",
        text="${event.info}",
        html="<p>${event.info}</p>",
    )

    # WHEN
    parsed = Rule.model_validate(data)

    # THEN
    assert parsed.config == {
        "to": ["ops@example.com"],
        "cc": ["lead@example.com"],
        "bcc": [],
        "from": "correlator@example.com",
        "reply_to": [],
        "subject": "${event.type}",
        "text": "${event.info}",
        "html": "<p>${event.info}</p>",
    }


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
@pytest.mark.parametrize("address", ["ops", "ops@", "@example.com", "ops@example", "o ps@example.com", "<a@b.example>"])
def test_email_refuses_bad_addresses(field: str, address: str) -> None:
    # GIVEN
    config = {"to": ["ops@example.com"], "template": "ops-alert", field: [address]}

    # WHEN / THEN
    assert_refused(with_config("email", **config), ("config", field))


def test_email_refuses_a_bad_sender() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(
        with_config("email", to=["ops@example.com"], template="ops-alert", **{"from": "not-an-address"}),
        ("config", "from"),
    )


def test_email_needs_at_least_one_to() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("email", to=[], template="ops-alert"), ("config", "to"))
    assert_refused(with_config("email", cc=["ops@example.com"], template="ops-alert"), ("config", "to"))


def test_email_takes_at_most_50_recipients_in_all() -> None:
    # GIVEN
    to = [f"to{i}@example.com" for i in range(20)]
    cc = [f"cc{i}@example.com" for i in range(20)]
    bcc = [f"bcc{i}@example.com" for i in range(10)]

    # WHEN / THEN
    assert len(Rule.model_validate(with_config("email", to=to, cc=cc, bcc=bcc, template="t")).config["bcc"]) == 10
    assert_refused(with_config("email", to=to, cc=cc, bcc=[*bcc, "one@example.com"], template="t"), ("config",))


@pytest.mark.parametrize(
    "content",
    [
        {"template": "ops-alert", "subject": "s", "text": "t"},
        {"template": "ops-alert", "html": "<p>h</p>"},
        {},
        {"subject": "s"},
        {"text": "t", "html": "<p>h</p>"},
    ],
)
def test_email_needs_a_template_or_inline_content_not_both(content: dict[str, str]) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("email", to=["ops@example.com"], **content), ("config",))


@pytest.mark.parametrize("template", ["../ops", "Ops", "ops.mako", ""])
def test_email_refuses_bad_template_names(template: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("email", to=["ops@example.com"], template=template), ("config", "template"))


def test_email_refuses_unknown_keys() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("email", to=["ops@example.com"], template="t", priority="high"), ("config", "priority"))


# ---- config: sms ----


def test_sms_config_defaults_max_segments() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_config("sms", to=["+447700900123"], template="ops-alert"))

    # THEN
    assert parsed.config == {"to": ["+447700900123"], "template": "ops-alert", "max_segments": 3}


@pytest.mark.parametrize(
    "number", ["5555550100", "+0555550100", "+1 555 0100", "+12345", "+1234567890123456", "tel:+1"]
)
def test_sms_refuses_numbers_that_are_not_e164(number: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("sms", to=[number], body="b"), ("config", "to", 0))


def test_sms_takes_1_to_10_numbers() -> None:
    # GIVEN
    numbers = [f"+1555555{i:04d}" for i in range(11)]

    # WHEN / THEN
    assert Rule.model_validate(with_config("sms", to=numbers[:10], body="b")).config["to"] == numbers[:10]
    assert_refused(with_config("sms", to=numbers, body="b"), ("config", "to"))
    assert_refused(with_config("sms", to=[], body="b"), ("config", "to"))


@pytest.mark.parametrize("content", [{"template": "ops-alert", "body": "b"}, {}])
def test_sms_needs_exactly_one_of_template_or_body(content: dict[str, str]) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("sms", to=["+15555550100"], **content), ("config",))


@pytest.mark.parametrize(("segments", "valid"), [(0, False), (1, True), (10, True), (11, False)])
def test_sms_max_segments_is_1_to_10(segments: int, valid: bool) -> None:
    # GIVEN
    data = with_config("sms", to=["+15555550100"], body="b", max_segments=segments)

    # WHEN / THEN
    if valid:
        assert Rule.model_validate(data).config["max_segments"] == segments
    else:
        assert_refused(data, ("config", "max_segments"))


# ---- config: csv ----


def test_csv_config_defaults() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_config("csv"))

    # THEN
    assert parsed.config == {"key": "csv/{dataset}/{yyyy}-{mm}-{dd}.csv", "numeric": []}


def test_csv_config_keeps_key_and_columns() -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_config("csv", key="csv/exports/{dataset}.csv", columns=["timestamp", "total"]))

    # THEN
    assert parsed.config == {"key": "csv/exports/{dataset}.csv", "columns": ["timestamp", "total"], "numeric": []}


@pytest.mark.parametrize(
    ("config", "loc"),
    [
        ({"key": ""}, ("config", "key")),
        ({"key": "k" * 513}, ("config", "key")),
        ({"columns": []}, ("config", "columns")),
        ({"columns": [""]}, ("config", "columns", 0)),
        ({"columns": [f"c{i}" for i in range(201)]}, ("config", "columns")),
        ({"numeric": [""]}, ("config", "numeric", 0)),
        ({"delimiter": ";"}, ("config", "delimiter")),
    ],
)
def test_csv_refuses_bad_config(config: dict[str, Any], loc: Loc) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("csv", **config), loc)


# ---- config: script ----


def test_script_config_takes_a_registered_script_or_a_lambda() -> None:
    # GIVEN / WHEN
    script = Rule.model_validate(with_config("script", script="cleanup_orders", args={"days": 30}))
    function = Rule.model_validate(with_config("script", function=LAMBDA_ARN + ":prod"))

    # THEN
    assert script.config == {"script": "cleanup_orders", "args": {"days": 30}}
    assert function.config == {"function": LAMBDA_ARN + ":prod", "args": {}}


@pytest.mark.parametrize("config", [{"script": "cleanup_orders", "function": LAMBDA_ARN}, {}, {"args": {"a": 1}}])
def test_script_needs_exactly_one_of_script_or_function(config: dict[str, Any]) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("script", **config), ("config",))


@pytest.mark.parametrize("name", ["../x", "os.system", "Cleanup", "1cleanup", "clean-up", "", "a" * 65])
def test_script_refuses_bad_script_names(name: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("script", script=name), ("config", "script"))


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:lambda:us-east-1:123:function:cleanup",
        "arn:aws:lambda:us-east-1:123456789012:function:",
        "arn:aws:s3:::cleanup",
        "arn:aws:lambda:us-east-1:123456789012:layer:cleanup",
        "cleanup-orders",
    ],
)
def test_script_refuses_bad_lambda_arns(arn: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("script", function=arn), ("config", "function"))


# ---- config: relay ----


def test_relay_config_keeps_url_secret_and_headers() -> None:
    # GIVEN
    config = {"url": "https://hooks.example.com/x", "secret_name": "correlator/hook", "headers": {"X-Team": "ops"}}

    # WHEN / THEN
    assert Rule.model_validate(with_config("relay", **config)).config == config


def test_relay_config_keeps_a_body_template_and_its_content_type() -> None:
    # GIVEN
    config = {
        "url": "https://hooks.example.com/x",
        "body": '{"text": ${to_json(event.type)}}',
        "content_type": "application/json; charset=utf-8",
    }

    # WHEN / THEN
    assert Rule.model_validate(with_config("relay", **config)).config == {**config, "headers": {}}


@pytest.mark.parametrize(
    "content_type", ["json", "text/plain\r\nX-Injected: 1", "text/plain; charset", "a/b c", "", "x" * 300]
)
def test_relay_refuses_content_types_that_are_not_media_types(content_type: str) -> None:
    # GIVEN / WHEN / THEN
    config = with_config("relay", url="https://hooks.example.com/x", content_type=content_type)
    assert_refused(config, ("config", "content_type"))


def test_relay_refuses_an_empty_or_oversized_body_template() -> None:
    url = "https://hooks.example.com/x"
    assert_refused(with_config("relay", url=url, body=""), ("config", "body"))
    assert_refused(with_config("relay", url=url, body="x" * 65537), ("config", "body"))


def test_relay_needs_a_url() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("relay"), ("config", "url"))
    assert_refused(with_config("relay", url="https:/"), ("config", "url"))


def test_relay_refuses_bad_secret_names_and_header_names() -> None:
    # GIVEN
    url = "https://hooks.example.com/x"

    # WHEN / THEN
    assert_refused(with_config("relay", url=url, secret_name="a secret"), ("config", "secret_name"))
    assert error_locs(with_config("relay", url=url, headers={"Bad Name": "v"})) == {
        ("config", "headers", "Bad Name", "[key]")
    }


def test_relay_event_needs_an_api_key_secret() -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("relay.event", url="https://other.example.com/events"), ("config", "api_key_secret"))
    assert_refused(with_config("relay.event", api_key_secret="correlator/key"), ("config", "url"))


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:events:us-east-1:123456789012:rule/other",
        "arn:aws:events:us-east-1:1234:event-bus/other",
        "arn:aws:sqs:us-east-1:123456789012:other",
        "other-correlator",
    ],
)
def test_relay_bus_refuses_bad_bus_arns(arn: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_config("relay.bus", bus_arn=arn), ("config", "bus_arn"))


def test_relay_bus_needs_a_bus_arn() -> None:
    # GIVEN / WHEN / THEN
    assert Rule.model_validate(with_config("relay.bus", bus_arn=BUS_ARN)).config == {"bus_arn": BUS_ARN}
    assert_refused(with_config("relay.bus"), ("config", "bus_arn"))


# ---- timer rules ----


@pytest.mark.parametrize("epoch_ms", ["1", "1795359159778", str(MAX_ONESHOT_EPOCH_MS)])
def test_oneshot_timers_take_epoch_milliseconds(epoch_ms: str) -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_match(type="timer.oneshot", object=epoch_ms))

    # THEN
    assert parsed.match.timer == "timer.oneshot"
    assert parsed.match.object == epoch_ms


@pytest.mark.parametrize("epoch_ms", ["0", str(MAX_ONESHOT_EPOCH_MS + 1), "-1", "1.5", "1e3", "soon", "\uff11\uff12"])
def test_oneshot_timers_refuse_other_objects(epoch_ms: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type="timer.oneshot", object=epoch_ms), ("match", "object"))


@pytest.mark.parametrize("minutes", ["1", "60", str(MAX_PERIOD_MINUTES)])
def test_periodic_timers_take_minutes(minutes: str) -> None:
    # GIVEN / WHEN
    parsed = Rule.model_validate(with_match(type="timer.periodic", object=minutes))

    # THEN
    assert parsed.match.timer == "timer.periodic"
    assert parsed.match.object == minutes


@pytest.mark.parametrize("minutes", ["0", str(MAX_PERIOD_MINUTES + 1), "5m", " 5"])
def test_periodic_timers_refuse_other_objects(minutes: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type="timer.periodic", object=minutes), ("match", "object"))


@pytest.mark.parametrize(
    "cron",
    [
        "cron(0 9 ? * MON-FRI *)",
        "cron(0/15 * * * ? *)",
        "cron(0 18 L * ? *)",
        "cron(0 8 ? * 2#1 *)",
        "cron(0 10 15W * ? 2027)",
        "cron(30 7 1,15 JAN-MAR ? *)",
        "cron(0 0 L-3 * ? *)",
        "cron(0 17 ? * 6L *)",
    ],
)
def test_periodic_timers_take_cron_expressions_and_a_schedule(cron: str) -> None:
    # GIVEN / WHEN
    schedule = {
        "timezone": "Europe/Berlin",
        "start_date": "2027-01-01T00:00:00Z",
        "end_date": "2027-12-31T00:00:00+01:00",
    }
    parsed = Rule.model_validate(with_match(type="timer.periodic", object=cron) | {"schedule": schedule})

    # THEN
    assert parsed.match.object == cron
    assert parsed.to_json()["schedule"] == {
        "timezone": "Europe/Berlin",
        "start_date": "2027-01-01T00:00:00Z",
        "end_date": "2027-12-31T00:00:00+01:00",
    }


@pytest.mark.parametrize(
    "cron",
    [
        "cron(0 9 * * MON *)",  # day-of-month and day-of-week both given
        "cron(0 9 ? * ? *)",  # neither
        "cron(60 9 ? * * *)",
        "cron(0 24 ? * * *)",
        "cron(0 9 32 * ? *)",
        "cron(0 9 ? 13 * *)",
        "cron(0 9 ? * 8 *)",
        "cron(0 9 ? * FOO *)",
        "cron(0 9 ? * * 1969)",
        "cron(0 9 ? * *)",  # five fields
        "cron(5/0 * * * ? *)",
        "cron(0 9 ?,1 * * *)",
        "cron(0 9 ? * 2#6 *)",
        "cron(0 9 L * ?)",
        "cron 0 9 ? * * *",
        "cron(0 9 ? * * *) ",
    ],
)
def test_periodic_timers_refuse_invalid_cron_expressions(cron: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type="timer.periodic", object=cron), ("match", "object"))


@pytest.mark.parametrize(
    ("schedule", "loc"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, ("schedule", "timezone")),
        ({"timezone": "../../etc/passwd"}, ("schedule", "timezone")),
        ({"timezone": ""}, ("schedule", "timezone")),
        ({"start_date": "2027-01-01T00:00:00"}, ("schedule", "start_date")),  # no offset
        ({"start_date": "2027-02-01T00:00:00Z", "end_date": "2027-01-01T00:00:00Z"}, ("schedule",)),
        ({"every": "day"}, ("schedule", "every")),
    ],
)
def test_timer_schedules_refuse_bad_zones_dates_and_keys(schedule: dict[str, Any], loc: tuple[str, ...]) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type="timer.periodic", object="cron(0 9 ? * * *)") | {"schedule": schedule}, loc)


@pytest.mark.parametrize("match", [{"type": "timer.oneshot", "object": "1795359159778"}, {"type": "order."}])
def test_only_periodic_timers_take_a_schedule(match: dict[str, Any]) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(**match) | {"schedule": {"timezone": "UTC"}}, ("schedule",))


@pytest.mark.parametrize("timer", ["timer.oneshot", "timer.periodic"])
def test_timers_need_an_object(timer: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type=timer), ("match", "object"))


@pytest.mark.parametrize("timer", ["timer.oneshot", "timer.periodic"])
def test_timers_match_internal_events_only(timer: str) -> None:
    # GIVEN / WHEN / THEN
    assert_refused(with_match(type=timer, object="5", external=True), ("match", "external"))
    assert Rule.model_validate(with_match(type=timer, object="5", external=False)).match.external is False


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("level", ["ERROR"], "level"),
        ("schema", "s", "schema"),
        ("kind", "dataset", "kind"),
        ("dataset", "d", "dataset"),
    ],
)
@pytest.mark.parametrize("timer", ["timer.oneshot", "timer.periodic"])
def test_timers_refuse_match_fields_their_events_never_carry(timer: str, field: str, value: Any, loc: str) -> None:
    # GIVEN / WHEN / THEN a rule that could never fire is refused, naming the field
    assert_refused(with_match(type=timer, object="5", **{field: value}), ("match", loc))


def test_types_that_are_not_timers_have_no_timer() -> None:
    # GIVEN / WHEN / THEN
    assert RuleMatch.model_validate({"type": "timer."}).timer is None
    assert RuleMatch.model_validate({"type": "timer.periodic.x"}).timer is None
    assert RuleMatch.model_validate({}).timer is None
    assert Rule.model_validate(with_match(type="timer.other", object="soon")).match.timer is None
