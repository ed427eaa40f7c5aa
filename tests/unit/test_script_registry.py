"""The script registry: only well-named modules of the package that define run() are scripts."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.script import scripts as shipped_scripts
from functions.script.execution import ScriptRegistry, bounded_result, load_script_package, parse_function_arns

FILES = {
    "__init__.py": "",
    "good.py": "def run(event, args, context):\n    return {'ok': True}\n",
    "second_one.py": "def run(event, args, context):\n    return None\n",
    "_helper.py": "def run(event, args, context):\n    return {}\n",
    "CamelCase.py": "def run(event, args, context):\n    return {}\n",
    "no_run.py": "VALUE = 1\n",
    "not_callable.py": "run = 42\n",
    "broken.py": "raise RuntimeError('boom at import')\n",
    "sub/__init__.py": "def run(event, args, context):\n    return {}\n",
    "notes.txt": "not python",
}


@pytest.fixture
def package_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "my_scripts"
    for name, text in FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


@pytest.fixture
def package_name() -> Iterator[str]:
    name = f"registry_test_{uuid.uuid4().hex}"
    yield name
    for module in [module for module in sys.modules if module == name or module.startswith(name + ".")]:
        del sys.modules[module]


def test_only_well_named_modules_defining_run_are_registered(package_dir: Path, package_name: str):
    # WHEN the registry lists the package
    registry = ScriptRegistry(load_script_package(package_dir, package_name))

    # THEN only good and second_one are scripts; the broken one is known as broken
    assert registry.names == ["good", "second_one"]
    assert registry.get("good") is not None
    assert set(registry.broken) == {"broken"}
    assert "boom at import" in registry.broken["broken"]
    # AND modules that are not scripts were never imported
    assert f"{package_name}._helper" not in sys.modules
    assert f"{package_name}.CamelCase" not in sys.modules


@pytest.mark.parametrize(
    "name", ["_helper", "CamelCase", "no_run", "not_callable", "broken", "sub", "os", "../good", ""]
)
def test_names_outside_the_registry_resolve_to_nothing(package_dir: Path, package_name: str, name: str):
    # GIVEN the registry
    registry = ScriptRegistry(load_script_package(package_dir, package_name))

    # WHEN / THEN nothing is imported for a name it does not hold
    assert registry.get(name) is None


def test_the_package_is_loaded_once_and_reused(package_dir: Path, package_name: str):
    # GIVEN the package loaded once
    first = load_script_package(package_dir, package_name)

    # WHEN / THEN loading it again gives the same module
    assert load_script_package(package_dir, package_name) is first


def test_a_name_taken_by_another_module_is_refused(package_dir: Path):
    # WHEN the name is already another module's
    # THEN the package is not silently replaced
    with pytest.raises(ImportError, match="already imported"):
        load_script_package(package_dir, "json")


def test_the_shipped_scripts_are_registered():
    # WHEN the registry lists functions/script/scripts
    registry = ScriptRegistry(shipped_scripts)

    # THEN both example scripts are there, and nothing is broken
    assert registry.names == ["enrich", "summarise_dataset"]
    assert registry.broken == {}


def test_a_small_result_is_kept_whole():
    assert bounded_result({"n": 1, "when": Path("x")}) == {"result": {"n": 1, "when": "x"}, "truncated": False}


def test_a_large_result_becomes_a_bounded_preview():
    # GIVEN a result of more than 32 KB of JSON, with multi-byte characters
    result = {"blob": "é" * 40_000}

    # WHEN it is bounded
    bounded = bounded_result(result)

    # THEN it is flagged, its size given, and the preview fits in 32 KB
    assert bounded["truncated"] is True
    assert bounded["result"] is None
    assert bounded["result_bytes"] == len('{"blob":""}') + 80_000
    assert len(bounded["preview"].encode()) <= 32 * 1024
    assert bounded["preview"].startswith('{"blob":"ééé')


def test_a_result_json_cannot_hold_is_refused():
    with pytest.raises(ValueError):
        bounded_result({"x": float("nan")})


def test_the_allow_list_is_comma_separated_and_ignores_blanks():
    arn = "arn:aws:lambda:us-east-1:123456789012:function:a"
    assert parse_function_arns("") == frozenset()
    assert parse_function_arns(f" {arn} ,, {arn}:prod ") == {arn, f"{arn}:prod"}
