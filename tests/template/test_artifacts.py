"""Each function's artifact holds exactly what it imports (checked over the import graph, without a build).

An artifact is the core layer (``layers/core``: the ``correlator`` package and its requirements) plus
the function's own: ``app.py``, the packages its Makefile ships (``$(call ship,<package>)``, see
``functions/package.mk``) and its ``requirements.txt``. The build itself is checked by
``test_template.py`` (``sam build``).
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest

from local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"
FIRST_PARTY = ("correlator", "functions")
# What the layer's requirements provide (import names), and their own dependencies the code uses.
LAYER_IMPORTS = frozenset({"aws_lambda_powertools", "pydantic", "pydantic_core", "boto3", "botocore", "urllib3"})
# Distribution name (requirements.txt) -> the import names it installs (its own dependencies included).
IMPORT_NAMES = {"mako": {"mako", "markupsafe"}, "twilio": {"twilio"}}
# Loaded by path at run time (the registered scripts), shipped by the script function's Makefile.
DYNAMIC = ("functions.script.scripts",)


def functions() -> dict[str, str]:
    """Logical id -> function directory name, for every function of template.yaml."""
    template = load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))
    return {
        name: Path(resource["Properties"]["CodeUri"]).name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def module_file(module: str) -> Path | None:
    base = LAYER if module.split(".")[0] == "correlator" else ROOT
    path = base.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_imports(tree: ast.Module, package: str) -> set[str]:
    """Modules imported when the module runs (the body of ``if TYPE_CHECKING:`` excluded)."""
    found: set[str] = set()
    nodes: list[ast.AST] = [tree]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            nodes.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        nodes.extend(ast.iter_child_nodes(node))
    return found


@cache
def imports_of(path: Path, module: str) -> frozenset[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return frozenset(_runtime_imports(ast.parse(path.read_text(encoding="utf-8")), package))


def closure(app: Path) -> tuple[set[str], set[str]]:
    """First-party modules ``app`` imports (transitively) and the third-party top-level names they import."""
    modules: set[str] = set()
    third_party: set[str] = set()
    todo = [(app, "app")]
    while todo:
        path, name = todo.pop()
        for imported in imports_of(path, name):
            top = imported.split(".")[0]
            if top not in FIRST_PARTY:
                if top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
                continue
            target = module_file(imported)
            if target is None or imported in modules or imported.startswith(DYNAMIC):
                continue
            modules.add(imported)
            todo.append((target, imported))
    return modules, third_party


def shipped_packages(directory: str) -> list[str]:
    makefile = (ROOT / "functions" / directory / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"\$\(call ship,(\w+)\)", makefile)


def requirements(directory: str) -> set[str]:
    path = ROOT / "functions" / directory / "requirements.txt"
    if not path.is_file():
        return set()
    names = (re.split(r"[<>=\[ ;]", line.strip(), maxsplit=1)[0].lower() for line in path.read_text().splitlines())
    return {module for name in names if name and not name.startswith("#") for module in IMPORT_NAMES.get(name, {name})}


FUNCTIONS = functions()


@pytest.mark.parametrize("directory", sorted(FUNCTIONS.values()))
def test_a_function_ships_exactly_the_modules_of_its_own_it_imports(directory: str) -> None:
    # GIVEN what the handler imports, and what its Makefile ships beside it
    modules, _ = closure(ROOT / "functions" / directory / "app.py")
    imported = {m for m in modules if m.startswith("functions.") and module_file(m).name not in ("__init__.py",)}  # type: ignore[union-attr]
    shipped = {
        f"functions.{package}.{path.stem}"
        for package in shipped_packages(directory)
        for path in (ROOT / "functions" / package).glob("*.py")
        if path.name not in ("app.py", "__init__.py")
    }

    # WHEN / THEN nothing it imports is missing, nothing it ships is unused
    assert imported == shipped


@pytest.mark.parametrize("directory", sorted(FUNCTIONS.values()))
def test_a_function_imports_only_what_its_artifact_installs(directory: str) -> None:
    # GIVEN the third-party packages its modules import (the layer's modules included)
    _, third_party = closure(ROOT / "functions" / directory / "app.py")

    # WHEN / THEN each comes from the layer or from the function's own requirements.txt
    assert third_party <= LAYER_IMPORTS | requirements(directory)


def test_the_layer_imports_only_its_requirements_and_holds_nothing_unused() -> None:
    # GIVEN every module of the layer, and every module some function imports
    layer = {
        "correlator." + path.relative_to(LAYER / "correlator").with_suffix("").as_posix().replace("/", ".")
        for path in (LAYER / "correlator").rglob("*.py")
        if path.name != "__init__.py"
    }
    used: set[str] = set()
    for directory in FUNCTIONS.values():
        used |= closure(ROOT / "functions" / directory / "app.py")[0]
        for script in (ROOT / "functions" / directory).glob("scripts/*.py"):  # the registered scripts
            used |= closure(script)[0]

    # THEN no layer module imports Mako, Twilio or anything the layer does not install
    for module in sorted(layer):
        third_party = {
            name.split(".")[0]
            for name in imports_of(module_file(module) or Path(), module)
            if name.split(".")[0] not in (*FIRST_PARTY, "__future__", *sys.stdlib_module_names)
        }
        assert third_party <= LAYER_IMPORTS, (module, third_party)
    # AND every layer module serves some function
    assert layer - used == set()
