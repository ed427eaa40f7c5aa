"""``python -m local`` refuses, at start, template parameters the template forbids or does not declare."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.local.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "CORRELATOR_PARAM_MaxHops",
            "99",
            "parameter MaxHops='99' (from CORRELATOR_PARAM_MaxHops) is greater than its MaxValue 16",
        ),
        (
            "CORRELATOR_PARAM_LogAllEvents",
            "yes",
            "parameter LogAllEvents='yes' (from CORRELATOR_PARAM_LogAllEvents) is not one of",
        ),
        ("CORRELATOR_PARAM_MaxHop", "5", "CORRELATOR_PARAM_MaxHop: the template has no such parameter"),
    ],
)
def test_the_stack_does_not_start_with_a_forbidden_parameter(variable: str, value: str, message: str) -> None:
    # GIVEN a parameter value the template forbids (or a name it does not declare)
    env = {name: text for name, text in os.environ.items() if not name.startswith(("AWS_", "CORRELATOR_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "core"), str(REPO_ROOT)]),
            "CORRELATOR_PORT": str(free_port()),
            "CORRELATOR_MOTO_PORT": str(free_port()),
            variable: value,
        }
    )

    # WHEN the stack starts
    done = subprocess.run(
        [sys.executable, "-m", "local"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN it stops at once with a clear error and a non-zero status
    assert done.returncode == 1
    assert message in done.stderr
    assert "ready:" not in done.stderr
