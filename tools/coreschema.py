"""Compile pydantic models into pydantic-core schemas held as Python data, for paths that must not import pydantic.

A model's core schema (what pydantic builds from its declaration) is turned into the same schema with
plain dicts for the models (``typed-dict``: the same fields, aliases, constraints, defaults and validator
functions; extra fields refused the same way), and written as a Python module. pydantic-core validates
and serialises with it as it does with the model, without importing pydantic or building the model
(about a third of the reception's cold start). The rules stay written once, in the models and the
functions they name (which must be importable module-level functions, e.g. ``correlator.eventfields``'s).

``python -m tools.coreschema`` (``make core-schemas``) rewrites every module of ``COMPILED``;
``--check`` only says whether one is stale (a test does the same).
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Any

LAYER = Path(__file__).resolve().parent.parent / "layers" / "core"
# module → (docstring, {name: "module:Model"}): what each compiled module holds.
COMPILED: dict[str, tuple[str, dict[str, str]]] = {
    "correlator.submission_schema": (
        "The core schemas of what ``POST /events`` accepts, for the reception's pydantic-free path.",
        {
            "EVENT_SCHEMA": "correlator.event:EventSubmission",
            "BATCH_SCHEMA": "correlator.reception_models:EventBatch",
        },
    ),
}
_MODEL_FIELD_KEYS = {"type", "schema", "validation_alias", "serialization_alias", "serialization_exclude", "metadata"}
_CONFIG_KEYS = ("validate_by_alias", "validate_by_name", "serialize_by_alias")


def _model(name: str) -> Any:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def compiled(node: Any) -> Any:
    """``node`` (a core schema or a part of one) with every model a ``typed-dict``, without metadata or refs."""
    if isinstance(node, list):
        return [compiled(item) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "model":
        return _typed_dict(node)
    if kind in ("definitions", "definition-ref", "model-fields", "dataclass", "dataclass-args", "is-instance"):
        raise ValueError(f"cannot compile a {kind!r} schema")
    if "cls" in node and kind != "enum":
        raise ValueError(f"cannot compile a {kind!r} schema bound to a class")
    return {key: compiled(value) for key, value in node.items() if key not in ("metadata", "ref")}


def _typed_dict(model: dict[str, Any]) -> dict[str, Any]:
    fields_schema = model["schema"]
    plain = fields_schema["type"] == "model-fields" and not fields_schema.get("computed_fields")
    if not plain or "extras_schema" in fields_schema:
        raise ValueError(f"cannot compile {model['cls'].__name__}: only plain fields are supported")
    config = model.get("config", {})
    fields = {}
    for name, field in fields_schema["fields"].items():
        if set(field) - _MODEL_FIELD_KEYS:
            raise ValueError(f"cannot compile field {name!r}: {sorted(set(field) - _MODEL_FIELD_KEYS)}")
        compiled_field = {
            key: compiled(value) for key, value in field.items() if key not in ("metadata", "type", "schema")
        }
        compiled_field |= {
            "type": "typed-dict-field",
            "schema": compiled(field["schema"]),
            "required": field["schema"]["type"] != "default",
        }
        fields[name] = compiled_field
    typed_dict: dict[str, Any] = {
        "type": "typed-dict",
        "fields": fields,
        "extra_behavior": config.get("extra_fields_behavior", "ignore"),
    }
    if any(key in config for key in _CONFIG_KEYS):
        typed_dict["config"] = {key: config[key] for key in _CONFIG_KEYS if key in config}
    return typed_dict


def schemas(module: str) -> dict[str, Any]:
    """The compiled schemas ``module`` should hold, by name."""
    return {name: compiled(_model(model).__pydantic_core_schema__) for name, model in COMPILED[module][1].items()}


def _source(value: Any, imports: dict[str, set[str]], named: dict[str, Any], indent: str = "") -> str:
    inner = indent + "    "
    if isinstance(value, dict):
        for name, schema in named.items():  # a schema written before (e.g. the events of a batch): by its name
            if value == schema:
                return name
        items = "".join(
            f"{inner}{json.dumps(key)}: {_source(item, imports, named, inner)},\n" for key, item in value.items()
        )
        return f"{{\n{items}{indent}}}" if items else "{}"
    if isinstance(value, list):
        items = "".join(f"{inner}{_source(item, imports, named, inner)},\n" for item in value)
        return f"[\n{items}{indent}]" if items else "[]"
    if isinstance(value, enum.Enum):
        return f"{_reference(type(value), imports)}.{value.name}"
    if (isinstance(value, type) and issubclass(value, enum.Enum)) or isinstance(value, FunctionType):
        return _reference(value, imports)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise ValueError(f"cannot write {value!r} in a compiled schema")


def _reference(value: type | Callable[..., Any], imports: dict[str, set[str]]) -> str:
    name = value.__qualname__
    if "." in name or getattr(importlib.import_module(value.__module__), name, None) is not value:
        raise ValueError(f"{value!r} is not a module-level name: a compiled schema can only import it")
    imports.setdefault(value.__module__, set()).add(name)
    return name


def render(module: str) -> str:
    """The source of ``module``."""
    doc, _ = COMPILED[module]
    imports: dict[str, set[str]] = {}
    named: dict[str, Any] = {}
    body = ""
    for name, schema in schemas(module).items():
        body += f"\n{name}: dict[str, Any] = {_source(schema, imports, named)}\n"
        named[name] = schema
    import_lines = ""
    for source, names in sorted(imports.items()):
        listed = "".join(f"    {name},\n" for name in sorted(names))
        import_lines += f"from {source} import (\n{listed})\n"
    generated = "Generated by ``make core-schemas`` (``tools.coreschema``) from the models; do not edit."
    return f'"""{doc}\n\n{generated}\n"""\n\nfrom typing import Any\n\n{import_lines}{body}'


def path_of(module: str) -> Path:
    """The file of ``module``, a module of the core layer."""
    return LAYER.joinpath(*module.split(".")).with_suffix(".py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether a compiled module is stale")
    args = parser.parse_args(argv)
    stale = []
    for module in COMPILED:
        path, source = path_of(module), render(module)
        if path.exists() and path.read_text(encoding="utf-8") == source:
            continue
        stale.append(str(path))
        if not args.check:
            path.write_text(source, encoding="utf-8")
    if stale:
        print(("stale: " if args.check else "written: ") + ", ".join(stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
