"""Mako templates of the notification actions: named sets shipped with a function, or inline in a rule.

Only the notification modules (``functions.email.mail``, ``functions.sms.sms``,
``functions.notify.notify``) and templated relay bodies import this one, so only those functions
pay for Mako; the reception function never loads it.

Trust boundary: template *source* comes from the function's package (named sets) or from a
rule's config (inline; rules are written by IAM-authenticated admins, and Mako runs Python).
Event data is untrusted: it is only ever a template *variable*, never source and never a path.
HTML templates escape every ``${...}`` by default (``| n`` opts out); the table helpers return
markup whose cells are already escaped. Escaping does not stop ``href="javascript:…"``, so in HTML
templates every ``${...}`` in an attribute that takes a URL (``href``, ``src``, ``action``…) also goes
through ``safe_url`` unless the template's own text before it already fixed the scheme (``:``, ``/``,
``?`` or ``#``): a value whose scheme is not http, https, mailto or tel becomes ``about:invalid``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from mako.exceptions import MakoException, TopLevelLookupException
from mako.lookup import TemplateLookup
from mako.template import Template
from markupsafe import Markup, escape

from correlator.configs import ActionConfig
from correlator.delivery import Delivery
from correlator.event import Event, Level
from correlator.policy_gate import digest_of

TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LEVEL_COLOURS: dict[Level, str] = {Level.INFO: "#1f6feb", Level.WARN: "#b7791f", Level.ERROR: "#c53030"}
# The labels of the event's fields, in the order notifications show them.
FIELD_LABELS: dict[str, str] = {
    "type": "Type",
    "level": "Level",
    "time": "Time",
    "object": "Object",
    "info": "Info",
    "summary": "Summary",
    "system_id": "System",
    "dataset": "Dataset",
    "subject": "Subject",
    "schema": "Schema",
    "request_key": "Request key",
    "id": "Event id",
    "external": "External",
    "hops": "Hops",
}
TEMPLATE_VARIABLES = (
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
)
_UNDEFINED_RE = re.compile(r"'([^']+)' is not defined")
_CELL_STYLE = "padding:4px 10px;border:1px solid #d0d7de;text-align:left;vertical-align:top"
_HEAD_STYLE = _CELL_STYLE + ";background:#f6f8fa;font-weight:600"


SAFE_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
UNSAFE_URL = "about:invalid#unsafe-url"
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "cite", "poster", "background", "data", "longdesc", "manifest", "ping"}
    | {"xlink:href", "srcset", "codebase", "usemap", "icon", "lowsrc", "dynsrc", "archive", "classid", "profile"}
)
# An attribute with a quoted value that may hold ${...} expressions (which may hold quotes themselves).
_ATTRIBUTE_RE = re.compile(
    r"""(?P<name>[A-Za-z][A-Za-z0-9:_-]*)(?P<eq>\s*=\s*)(?P<q>["'])(?P<value>(?:\$\{[^}]*\}|(?!(?P=q))[^$]|\$(?!\{))*)(?P=q)"""
)
_EXPRESSION_RE = re.compile(r"\$\{([^}]*)\}")
# What a browser ignores in a URL (tab and line breaks anywhere; control characters and spaces in front).
_URL_IGNORED_RE = re.compile(r"[\t\n\r]")
_SCHEME_RE = re.compile(r"([^/?#]*?):")


def safe_url(value: Any) -> Any:
    """``value`` unless it would give a URL a scheme other than http, https, mailto or tel (``javascript:``,
    ``data:``, ``vbscript:``…); then ``about:invalid#unsafe-url``. Used in URL attributes of HTML templates.
    """
    text = _URL_IGNORED_RE.sub("", str(value)).lstrip(
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "
    )
    scheme = _SCHEME_RE.match(text)
    if scheme is not None and scheme.group(1).lower() not in SAFE_URL_SCHEMES:
        return UNSAFE_URL
    return value


def guard_url_attributes(source: str) -> str:
    """Mako preprocessor of HTML templates: ``${x}`` in a URL attribute becomes ``${x | safe_url}``.

    Not when the template's own text before it in the attribute holds ``:``, ``/``, ``?`` or ``#``:
    the author has fixed the scheme (``href="https://shop.example/orders/${event.object}"``).
    """

    def attribute(match: re.Match[str]) -> str:
        if match["name"].lower() not in URL_ATTRIBUTES:
            return match[0]
        value = match["value"]
        pieces, position = [], 0
        for expression in _EXPRESSION_RE.finditer(value):
            literal = _EXPRESSION_RE.sub("", value[: expression.start()])
            pieces.append(value[position : expression.start()])
            body = expression[1]
            if any(char in literal for char in ":/?#"):
                pieces.append(expression[0])
            else:
                pieces.append("${" + body + (", safe_url}" if "|" in body else " | safe_url}"))
            position = expression.end()
        pieces.append(value[position:])
        return f"{match['name']}{match['eq']}{match['q']}{''.join(pieces)}{match['q']}"

    return _ATTRIBUTE_RE.sub(attribute, source)


class TemplateFormat(StrEnum):
    TEXT = "text"
    HTML = "html"


# Text keeps Mako's default (``str``); HTML escapes every expression.
_DEFAULT_FILTERS: dict[TemplateFormat, list[str]] = {TemplateFormat.TEXT: ["str"], TemplateFormat.HTML: ["h"]}
# HTML templates also guard URL attributes (see the module docstring).
_HTML_OPTIONS: dict[TemplateFormat, dict[str, Any]] = {
    TemplateFormat.HTML: {
        "preprocessor": guard_url_attributes,
        "imports": [f"from {__name__} import safe_url"],
    }
}


class TemplateError(Exception):
    """A template is missing, does not compile or fails to render: a permanent failure of the action.

    ``code`` is what the result event reports: ``TemplateNotFound`` or ``TemplateError``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Fields(dict[str, Any]):
    """A dict whose keys read as attributes too (``event.type`` or ``event["type"]``) in templates."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no field {name!r} (fields: {', '.join(self)})") from None


def one_line(text: str, limit: int = 998) -> str:
    """``text`` on one line: every line break, tab and control character becomes a space, runs collapse.

    Used for subjects, so nothing from an event can start a new mail header. ``limit`` (RFC 5322's
    998-character line) clips with an ellipsis.
    """
    cleaned = "".join(" " if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in text)
    line = " ".join(cleaned.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def cell_text(value: Any) -> str:
    """How a value reads in a table cell: strings as they are, ``None`` empty, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _rows(rows: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    items = rows.items() if isinstance(rows, Mapping) else rows
    return [(str(key), cell_text(value)) for key, value in items]


def text_table(rows: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """Two aligned columns, ``key  value``; continuation lines of multi-line values are indented."""
    pairs = _rows(rows)
    if not pairs:
        return ""
    width = max(len(key) for key, _ in pairs)
    lines = []
    for key, value in pairs:
        first, *rest = value.split("\n") if value else [""]
        lines.append(f"{key.ljust(width)}  {first}".rstrip())
        lines.extend(f"{'':{width}}  {line}".rstrip() for line in rest)
    return "\n".join(lines)


def html_table(
    rows: Mapping[str, Any] | Iterable[tuple[str, Any]],
    css_class: str = "datatable",
    header: tuple[str, str] | None = None,
) -> Markup:
    """A two-column HTML table (Correlator's data table); every key and value is escaped."""
    parts = [Markup('<table class="{}" style="border-collapse:collapse;font-size:14px">').format(css_class)]
    if header is not None:
        parts.append(Markup('<tr><th style="{0}">{1}</th><th style="{0}">{2}</th></tr>').format(_HEAD_STYLE, *header))
    for key, value in _rows(rows):
        cell = escape(value).replace("\n", Markup("<br>"))
        parts.append(
            Markup('<tr><th style="{}">{}</th><td style="{}">{}</td></tr>').format(_HEAD_STYLE, key, _CELL_STYLE, cell)
        )
    parts.append(Markup("</table>"))
    return Markup("").join(parts)


def to_json(value: Any) -> str:
    """``value`` as a JSON literal (a string quoted and escaped): for JSON bodies, ``${to_json(event.summary)}``."""
    return json.dumps(value, ensure_ascii=False, default=str)


def event_fields(event: Event) -> dict[str, Any]:
    """The event's set fields under their labels (``Type``, ``Level``…), in display order."""
    detail = event.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {label: detail[name] for name, label in FIELD_LABELS.items() if name in detail}


def template_variables(delivery: Delivery[ActionConfig]) -> dict[str, Any]:
    """What every notification template sees.

    ``event`` (every field, absent ones ``None``), ``payload`` (``{}`` when absent), ``rule`` (the
    rule JSON), ``fields`` (the set fields under display labels), ``level_colour``, and the helpers
    ``text_table``, ``html_table`` and ``cell_text``.
    """
    event = Fields(delivery.event.model_dump(mode="json", by_alias=True))
    return {
        "event": event,
        "payload": event.get("payload") or {},
        "rule": Fields(delivery.rule.to_json()),
        "fields": event_fields(delivery.event),
        "level_colour": LEVEL_COLOURS[delivery.event.level],
        "text_table": text_table,
        "html_table": html_table,
        "cell_text": cell_text,
        "to_json": to_json,
        "group": digest_of(delivery),
    }


class TemplateRenderer:
    """Renders named template sets under ``directory`` (``<name>/<file>``) and inline templates.

    Compiled templates are kept in memory (per warm Lambda container); nothing is written to disk.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lookups = {
            fmt: TemplateLookup(
                directories=[str(directory)],
                strict_undefined=True,
                default_filters=filters,
                input_encoding="utf-8",
                filesystem_checks=False,
                **_HTML_OPTIONS.get(fmt, {}),
            )
            for fmt, filters in _DEFAULT_FILTERS.items()
        }

    def has(self, name: str, filename: str) -> bool:
        """True when the named set ``name`` has ``filename``."""
        return (self.directory / _checked_name(name) / filename).is_file()

    def render_named(self, name: str, filename: str, fmt: TemplateFormat, variables: Mapping[str, Any]) -> str:
        """Render ``<directory>/<name>/<filename>``; ``TemplateError`` when it is missing or fails."""
        label = f"{_checked_name(name)}/{filename}"
        try:
            template = self._lookups[fmt].get_template(f"/{label}")
        except TopLevelLookupException:
            raise TemplateError("TemplateNotFound", f"no template {label!r}") from None
        except MakoException as error:
            raise TemplateError("TemplateError", f"{label}: {_describe(error)}") from None
        return _render(template, variables, label)

    def render_inline(self, source: str, fmt: TemplateFormat, variables: Mapping[str, Any], label: str) -> str:
        """Render an inline template of a rule's config; ``label`` names it in errors (``config.subject``)."""
        return render_inline(source, fmt, variables, label)


def render_inline(source: str, fmt: TemplateFormat, variables: Mapping[str, Any], label: str) -> str:
    """Render an inline template of a rule's config; ``label`` names it in errors (``config.body``)."""
    try:
        template = _compile_inline(source, fmt)
    except MakoException as error:
        raise TemplateError("TemplateError", f"{label}: {_describe(error)}") from None
    return _render(template, variables, label)


@lru_cache(maxsize=128)
def _compile_inline(source: str, fmt: TemplateFormat) -> Template:
    # No lookup: an inline template cannot include or inherit files.
    # S702: HTML templates escape by default (the "h" filter), text templates are not HTML.
    return Template(  # noqa: S702
        text=source, strict_undefined=True, default_filters=_DEFAULT_FILTERS[fmt], **_HTML_OPTIONS.get(fmt, {})
    )


def _render(template: Template, variables: Mapping[str, Any], label: str) -> str:
    try:
        return str(template.render_unicode(**variables))
    except Exception as error:  # a template is code: whatever it raises is a template error
        raise TemplateError("TemplateError", f"{label}: {_describe(error)}") from None


def _describe(error: Exception) -> str:
    if isinstance(error, NameError):
        match = _UNDEFINED_RE.search(str(error))
        name = match.group(1) if match else str(error)
        return f"undefined variable {name!r} (templates see: {', '.join(TEMPLATE_VARIABLES)})"
    return f"{type(error).__name__}: {error}"


def _checked_name(name: str) -> str:
    # Names come from validated rule config; checked again here so no path ever reaches the lookup.
    if not TEMPLATE_NAME_RE.fullmatch(name):
        raise TemplateError("TemplateNotFound", f"invalid template name {name[:80]!r}")
    return name
