"""Notification templates: named sets and inline Mako, HTML escaping, tables, strict undefined, subjects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from correlator.delivery import Delivery, parse_delivery
from functions.email.mail import compose_email
from functions.sms.sms import compose_sms
from functions.templating.templating import (
    TemplateError,
    TemplateFormat,
    TemplateRenderer,
    html_table,
    one_line,
    template_variables,
    text_table,
)
from tests.samples import load_event

ROOT = Path(__file__).resolve().parents[2]
EMAIL_TEMPLATES = ROOT / "functions" / "email" / "templates"
SMS_TEMPLATES = ROOT / "functions" / "sms" / "templates"
SENDER = "noreply@correlator.example"


def delivery_with(sample: str = "eventbridge/email-delivery", *, config: Any = None, **detail: Any) -> Delivery[Any]:
    """A sample delivery with another rule config and/or other event fields."""
    message = load_event(sample)
    if config is not None:
        message["rule"]["config"] = config
    message["event"]["detail"].update(detail)
    return parse_delivery(message)


def inline(**content: str) -> dict[str, Any]:
    return {"to": ["ops@example.com"], **content}


@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer(EMAIL_TEMPLATES)


# ---- the default and dataset template sets ----


def test_default_template_renders_summary_fields_and_payload_in_both_parts(renderer: TemplateRenderer) -> None:
    # GIVEN the sample delivery: an ERROR event with a payload, rule template "default"
    delivery = delivery_with()

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN
    assert message.subject == "[ERROR] Payment for order 1001 failed"
    assert message.text is not None
    assert message.html is not None
    assert message.text.startswith("ERROR: Payment for order 1001 failed\n")
    assert "Object       orders/1001" in message.text
    assert 'gateway   {"name": "acme", "code": "05"}' in message.text
    assert "#c53030" in message.html  # the ERROR colour on the summary banner
    assert ">order_id</th>" in message.html
    assert ">1001</td>" in message.html
    assert 'Correlator rule "notify-ops-on-error"' in message.text


def test_dataset_template_shows_the_row_with_timestamp_first(renderer: TemplateRenderer) -> None:
    # GIVEN a dataset event whose row holds markup
    delivery = delivery_with("eventbridge/email-dataset-delivery")

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN the row is a table (text: one line per column, HTML: columns across), the markup escaped
    assert message.subject == "[INFO] sales: Daily sales"
    assert message.text is not None
    assert message.html is not None
    lines = message.text.splitlines()
    assert lines.index("timestamp  2026-11-22T15:59:59Z") < lines.index("store      Lyon <Part-Dieu>")
    assert "Lyon &lt;Part-Dieu&gt;" in message.html
    assert "<Part-Dieu>" not in message.html
    assert message.html.index(">timestamp</th>") < message.html.index(">store</th>")


def test_an_unknown_template_set_is_template_not_found(renderer: TemplateRenderer) -> None:
    # GIVEN
    delivery = delivery_with(config={"to": ["ops@example.com"], "template": "nope"})

    # WHEN
    with pytest.raises(TemplateError) as raised:
        compose_email(delivery, renderer, SENDER)

    # THEN
    assert raised.value.code == "TemplateNotFound"


@pytest.mark.parametrize("name", ["../default", "default/../../x", "/etc", "Default", ""])
def test_template_names_are_never_paths(renderer: TemplateRenderer, name: str) -> None:
    # GIVEN / WHEN / THEN a name that is not [a-z0-9][a-z0-9_-]* never reaches the lookup
    with pytest.raises(TemplateError) as raised:
        renderer.render_named(name, "subject.mako", TemplateFormat.TEXT, {})
    assert raised.value.code == "TemplateNotFound"


# ---- inline templates ----


def test_inline_text_templates_see_event_payload_and_rule(renderer: TemplateRenderer) -> None:
    # GIVEN
    config = inline(
        subject="${event.type} on ${event['object']}",
        text="Order ${payload['order_id']} by rule ${rule.name}: ${event.info}",
    )

    # WHEN
    message = compose_email(delivery_with(config=config), renderer, SENDER)

    # THEN
    assert message.subject == "payment.failed on orders/1001"
    assert message.text == "Order 1001 by rule notify-ops-on-error: card_declined"
    assert message.html is None


def test_html_templates_escape_event_data_so_a_script_arrives_as_text(renderer: TemplateRenderer) -> None:
    # GIVEN an event whose payload and summary hold markup
    script = "<script>alert('x')</script>"
    delivery = delivery_with(
        config=inline(subject="s", html="<p>${event.summary}</p>${html_table(payload)}<i>${payload['note']}</i>"),
        summary=f"Hi {script}",
        payload={"note": script, script: "key too"},
    )

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN every piece of event data is escaped; the template's own markup is not
    assert message.html is not None
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in message.html
    assert message.html.startswith("<p>Hi &lt;script&gt;")
    assert "<i>&lt;script&gt;" in message.html


def test_the_default_html_template_escapes_payload_markup(renderer: TemplateRenderer) -> None:
    # GIVEN
    delivery = delivery_with(payload={"comment": "<script>steal()</script>"}, summary="<b>bold</b>")

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN
    assert message.html is not None
    assert "<script>" not in message.html
    assert "<b>bold" not in message.html
    assert "&lt;script&gt;steal()&lt;/script&gt;" in message.html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",  # was written href="javascript:…": escaping does not check schemes
        "JavaScript:alert(1)",
        " \tjava\nscript:alert(1)",  # browsers drop tabs and line breaks, and leading spaces
        "\x01javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
    ],
)
def test_event_data_in_a_url_attribute_cannot_be_a_script_url(renderer: TemplateRenderer, url: str) -> None:
    # GIVEN an HTML template that links to a URL taken from the event, in every URL attribute style
    html = (
        "<a href=\"${payload['url']}\">a</a><img src='${event.object}'>"
        "<form action=\"${payload['url'] | h}\"></form><a href=\"${payload['first']}${payload['rest']}\">b</a>"
    )
    delivery = delivery_with(
        config=inline(subject="s", html=html),
        object=url,
        payload={"url": url, "first": "javascript", "rest": ":alert(1)"},
    )

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN no attribute carries the script URL; each is the inert about:invalid
    assert message.html is not None
    assert "script:" not in message.html.lower().replace("\t", "").replace("\n", "")
    assert "data:" not in message.html
    assert message.html.count("about:invalid#unsafe-url") == 4


@pytest.mark.parametrize(
    ("url", "rendered"),
    [
        ("https://shop.example/orders/1?a=1&b=2", "https://shop.example/orders/1?a=1&amp;b=2"),
        ("mailto:ops@example.com", "mailto:ops@example.com"),
        ("/orders/1", "/orders/1"),
        ("orders/14:52", "orders/14:52"),
    ],
)
def test_safe_urls_in_attributes_are_kept(renderer: TemplateRenderer, url: str, rendered: str) -> None:
    delivery = delivery_with(
        config=inline(subject="s", html="<a href=\"${payload['url']}\">x</a>"), payload={"url": url}
    )
    assert compose_email(delivery, renderer, SENDER).html == f'<a href="{rendered}">x</a>'


def test_a_url_attribute_whose_scheme_the_template_fixed_is_only_escaped(renderer: TemplateRenderer) -> None:
    # GIVEN the template's own text decides the scheme; event data is a path or query part
    html = '<a href="https://shop.example/orders/${event.object}?t=${event.time}">x</a><p title="${event.object}"></p>'
    delivery = delivery_with(config=inline(subject="s", html=html), object="javascript:x")

    # WHEN / THEN it is escaped as any value, not replaced
    message = compose_email(delivery, renderer, SENDER)
    assert message.html is not None
    assert message.html.startswith('<a href="https://shop.example/orders/javascript:x?t=')
    assert '<p title="javascript:x">' in message.html


def test_html_escaping_can_be_turned_off_explicitly_with_the_n_filter(renderer: TemplateRenderer) -> None:
    # GIVEN a template author who opts out for one expression
    delivery = delivery_with(config=inline(subject="s", html="${'<hr>' | n}${'<hr>'}"))

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN
    assert message.html == "<hr>&lt;hr&gt;"


def test_an_undefined_variable_is_a_clear_template_error(renderer: TemplateRenderer) -> None:
    # GIVEN a template naming a variable templates do not see
    delivery = delivery_with(config=inline(subject="${evnt.type}", text="x"))

    # WHEN
    with pytest.raises(TemplateError) as raised:
        compose_email(delivery, renderer, SENDER)

    # THEN strict_undefined: an error naming the variable and the field, not an empty string
    assert raised.value.code == "TemplateError"
    assert "config.subject" in raised.value.message
    assert "undefined variable 'evnt'" in raised.value.message
    assert "event, payload, rule" in raised.value.message


def test_a_missing_event_field_names_the_field(renderer: TemplateRenderer) -> None:
    # GIVEN
    delivery = delivery_with(config=inline(subject="s", text="${event.colour}"))

    # WHEN
    with pytest.raises(TemplateError) as raised:
        compose_email(delivery, renderer, SENDER)

    # THEN
    assert "config.text" in raised.value.message
    assert "no field 'colour'" in raised.value.message


def test_a_template_syntax_error_is_a_template_error(renderer: TemplateRenderer) -> None:
    # GIVEN
    delivery = delivery_with(config=inline(subject="s", text="% if event.hops:\nunterminated"))

    # WHEN
    with pytest.raises(TemplateError) as raised:
        compose_email(delivery, renderer, SENDER)

    # THEN
    assert raised.value.code == "TemplateError"
    assert "config.text" in raised.value.message


def test_an_empty_body_is_a_template_error(renderer: TemplateRenderer) -> None:
    with pytest.raises(TemplateError, match="empty body"):
        compose_email(delivery_with(config=inline(subject="s", text="${''}  \n")), renderer, SENDER)


# ---- subject: one line ----


@pytest.mark.parametrize(
    "summary",
    [
        "Hi\r\nBcc: victim@example.com",
        "Hi\nBcc: victim@example.com",
        "Hi\rBcc: victim@example.com",
        "Hi\u2028Bcc: victim@example.com",
        "Hi\x85Bcc: victim@example.com",
        "Hi\x0bBcc:\x00 victim@example.com",
    ],
)
def test_line_breaks_in_event_data_never_reach_the_subject(renderer: TemplateRenderer, summary: str) -> None:
    # GIVEN an event trying to inject a header through the subject
    delivery = delivery_with(summary=summary)

    # WHEN
    message = compose_email(delivery, renderer, SENDER)

    # THEN one line, the would-be header is plain subject text
    assert message.subject == "[ERROR] Hi Bcc: victim@example.com"
    assert not any(char in message.subject for char in "\r\n\x0b\x00\x85\u2028")


def test_one_line_collapses_whitespace_and_clips() -> None:
    assert one_line("  a \t b\n\n c  ") == "a b c"
    assert one_line("x" * 2000, limit=10) == "x" * 9 + "…"


def test_an_empty_rendered_subject_falls_back_to_level_and_type(renderer: TemplateRenderer) -> None:
    message = compose_email(delivery_with(config=inline(subject="${''}", text="t")), renderer, SENDER)
    assert message.subject == "[ERROR] payment.failed"


# ---- message addressing ----


def test_recipients_sender_and_reply_to_come_from_the_config(renderer: TemplateRenderer) -> None:
    # GIVEN the sample (to, cc, reply_to; no from) and one with its own sender
    sample = delivery_with()
    own_sender = delivery_with(config=inline(subject="s", text="t", **{"from": "alerts@example.com"}))

    # WHEN
    message = compose_email(sample, renderer, SENDER)
    other = compose_email(own_sender, renderer, SENDER)

    # THEN
    assert message.sender == SENDER
    assert message.to == ("ops@example.com", "payments@example.com")
    assert message.cc == ("audit@example.com",)
    assert message.reply_to == ("payments-team@example.com",)
    assert message.recipient_count == 3
    assert other.sender == "alerts@example.com"


# ---- table helpers ----


def test_text_table_aligns_keys_and_indents_multiline_values() -> None:
    # GIVEN / WHEN
    table = text_table({"a": 1, "long_key": "x\ny", "n": None, "obj": {"k": [1, 2]}})

    # THEN
    assert table.splitlines() == ["a         1", "long_key  x", "          y", "n", 'obj       {"k": [1, 2]}']


def test_html_table_escapes_keys_values_and_class() -> None:
    # GIVEN / WHEN
    table = html_table({"<k>": "<v>\nline2"}, css_class='x" onload="y', header=("<K>", "V"))

    # THEN
    assert "<k>" not in table
    assert "&lt;k&gt;" in table
    assert "&lt;v&gt;<br>line2" in table
    assert 'class="x&#34; onload=&#34;y"' in table
    assert "&lt;K&gt;</th>" in table


def test_templates_see_the_documented_variables() -> None:
    # GIVEN / WHEN
    variables = template_variables(delivery_with())

    # THEN
    assert set(variables) == {
        "event",
        "payload",
        "rule",
        "fields",
        "level_colour",
        "text_table",
        "html_table",
        "cell_text",
        "to_json",
        "group",
    }
    assert variables["group"] is None  # a digest's group (delivery policies), None for a plain delivery
    assert variables["to_json"]('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert variables["event"].schema == "https://payments.example.com/"
    assert variables["event"].dataset is None  # absent fields are None, not undefined
    assert variables["rule"].config["template"] == "default"
    assert list(variables["fields"])[:3] == ["Type", "Level", "Time"]


# ---- SMS bodies ----


def test_the_default_sms_template_is_one_short_gsm_message() -> None:
    # GIVEN
    delivery: Delivery[Any] = parse_delivery(load_event("eventbridge/sms-delivery"))

    # WHEN
    body = compose_sms(delivery, TemplateRenderer(SMS_TEMPLATES))

    # THEN
    assert body.text == "[ERROR] Payment for order 1001 failed (orders/1001)\ncard_declined"
    assert (body.encoding, body.segments, body.truncated) == ("GSM-7", 1, False)


def test_an_inline_sms_body_is_fitted_to_max_segments() -> None:
    # GIVEN a body rendering to ~400 GSM characters, at most 2 segments (306 septets)
    message = load_event("eventbridge/sms-delivery")
    message["rule"]["config"] = {"to": ["+447700900123"], "body": "${'x' * 400}", "max_segments": 2}

    # WHEN
    delivery: Delivery[Any] = parse_delivery(message)
    body = compose_sms(delivery, TemplateRenderer(SMS_TEMPLATES))

    # THEN
    assert body.text == "x" * 303 + "..."
    assert (body.segments, body.truncated) == (2, True)


def test_the_dataset_sms_template_lists_the_row() -> None:
    # GIVEN
    message = load_event("eventbridge/email-dataset-delivery")
    message["rule"]["action"] = "sms"
    message["rule"]["config"] = {"to": ["+447700900123"], "template": "dataset"}

    # WHEN
    delivery: Delivery[Any] = parse_delivery(message)
    body = compose_sms(delivery, TemplateRenderer(SMS_TEMPLATES))

    # THEN
    assert body.text.splitlines() == [
        "[INFO] sales: Daily sales",
        "timestamp=2026-11-22T15:59:59Z",
        "store=Lyon <Part-Dieu>",
        "units=42",
        "revenue=1234.5",
    ]
