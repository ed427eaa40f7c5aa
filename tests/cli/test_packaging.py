"""`pip install .` gives the `correlator` command: the wheel is built offline from pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_wheel_holds_the_cli_and_the_core_package_and_nothing_else(tmp_path: Path) -> None:
    # GIVEN the project's sources (copied: building in place would leave build/ behind)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "correlator_cli", source / "correlator_cli")
    shutil.copytree(REPO / "layers" / "core" / "correlator", source / "layers" / "core" / "correlator")
    # WHEN pip builds it, offline
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("correlator-*.whl"))
    # THEN it installs the console script and the two packages only
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        requires = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "correlator = correlator_cli.main:main" in entry_points
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {
        "correlator",
        "correlator_cli",
    }
    assert "correlator_cli/main.py" in names
    assert "correlator/rules.py" in names
    for needed in ("typer", "boto3", "pydantic", "PyYAML"):
        assert f"Requires-Dist: {needed}" in requires
