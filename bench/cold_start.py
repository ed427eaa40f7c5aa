"""Cold start of every function against its floor: ``import boto3`` plus the clients the function creates.

Each figure is a whole fresh process (interpreter start included, as a Lambda cold start), timed
as the CPU time the process used (user + system), which a noisy neighbour moves far less than wall
time. The function and its floor run in pairs, back to back, their order alternating; the ratio is
the median of the pairs' ratios (a load that changes between pairs cancels out within each), with
the best and the median CPU time of each side beside it. Each process ends
with ``os._exit`` (a sandbox is frozen, never finalised). The environment is the function's own
from ``template.yaml`` (resource names made up; nothing is called) with ``LAMBDA_TASK_ROOT`` set, so
Powertools behaves as on Lambda (a ``Tracer`` loads the X-Ray SDK).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.environment import LAMBDA_ENV, REPO
from local.template import Template, as_text

RUNS = 7
FUNCTION_TYPE = "AWS::Serverless::Function"

_LOAD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
"""
# Which clients the module creates (boto3's go through botocore's Session.create_client too).
_DISCOVER = (
    """
import json, botocore.session
services = []
create_client = botocore.session.Session.create_client
def recording(self, service_name, *args, **kwargs):
    services.append(service_name)
    return create_client(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = recording
"""
    + _LOAD
    + """
print(json.dumps(services))
"""
)
_FLOOR = """
import sys, boto3
for service in sys.argv[1:]:
    boto3.client(service)
"""
# A Lambda sandbox is frozen, never torn down after its init: neither process pays the interpreter's finalisation.
_EXIT = """
import os
os._exit(0)
"""


class _MadeUp(dict[str, Any]):
    """Attributes of a resource that was never created: its name and an ARN made from its logical id."""

    def __init__(self, logical_id: str) -> None:
        super().__init__(Ref=f"bench-{logical_id.lower()}")
        self.logical_id = logical_id

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"arn:aws:bench:us-east-1:123456789012:{self.logical_id.lower()}/{key.lower()}"


class _EveryResource(dict[str, dict[str, Any]]):
    def get(self, key: str, default: Any = None) -> dict[str, Any]:
        return _MadeUp(key)

    def __contains__(self, key: object) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Function:
    logical_id: str
    module_file: Path
    environment: dict[str, str]


@dataclass(frozen=True, slots=True)
class ColdStart:
    """CPU and wall seconds (best of the runs, medians too), and the median of the pairs' CPU ratios."""

    function: str
    clients: list[str]
    cpu: float
    floor_cpu: float
    wall: float
    floor_wall: float
    cpu_median: float
    floor_cpu_median: float
    ratio: float  # the median of the pairs' CPU ratios


def functions(root: Path = REPO) -> list[Function]:
    """Every function of ``root``'s template, with its module and its environment as deployed."""
    template = Template.load(root / "template.yaml", {})
    template.attributes = _EveryResource()
    template.resolver.attributes = template.attributes
    found = []
    for logical_id in template.of_type(FUNCTION_TYPE):
        code_dir = root / as_text(template.resolved_property(logical_id, "CodeUri", "."))
        module, _, _ = as_text(template.resolved_property(logical_id, "Handler", "")).rpartition(".")
        declared = (template.resolved_property(logical_id, "Environment", {}) or {}).get("Variables") or {}
        environment = {
            **LAMBDA_ENV,
            "POWERTOOLS_SERVICE_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{logical_id}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            # the layer, the handler's directory, and the root for its ``functions.<package>`` modules
            "PYTHONPATH": os.pathsep.join([str(root / "layers" / "core"), str(code_dir), str(root)]),
            **{name: as_text(value) for name, value in declared.items()},
        }
        found.append(Function(logical_id, code_dir / f"{module.replace('.', '/')}.py", environment))
    return found


def _env(function: Function) -> dict[str, str]:
    env = {**os.environ, **function.environment}
    for name in ("POWERTOOLS_TRACE_DISABLED", "PYTHONDONTWRITEBYTECODE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(script: str, args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """CPU seconds (user + system) and wall seconds of a fresh interpreter running ``script``; its stdout."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if completed.returncode != 0:
        raise RuntimeError(f"cold start of {args[:1]} failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    return cpu, wall, completed.stdout


def measure(function: Function, runs: int = RUNS) -> ColdStart:
    """The function's cold start and its floor's, ``runs`` pairs in alternating order."""
    env = _env(function)
    clients: list[str] = json.loads(_timed(_DISCOVER, [str(function.module_file)], env)[2].strip().splitlines()[-1])
    load = (_LOAD + _EXIT, [str(function.module_file)])
    floor = (_FLOOR + _EXIT, clients)
    for script, args in (load, floor):  # warm the file cache and the .pyc files
        _timed(script, args, env)
    samples: dict[str, list[tuple[float, float]]] = {"load": [], "floor": []}
    for run in range(runs):
        order = (("load", load), ("floor", floor)) if run % 2 == 0 else (("floor", floor), ("load", load))
        for name, (script, args) in order:
            cpu, wall, _ = _timed(script, args, env)
            samples[name].append((cpu, wall))
    return ColdStart(
        function.logical_id,
        clients,
        cpu=min(cpu for cpu, _ in samples["load"]),
        floor_cpu=min(cpu for cpu, _ in samples["floor"]),
        wall=min(wall for _, wall in samples["load"]),
        floor_wall=min(wall for _, wall in samples["floor"]),
        cpu_median=statistics.median(cpu for cpu, _ in samples["load"]),
        floor_cpu_median=statistics.median(cpu for cpu, _ in samples["floor"]),
        ratio=statistics.median(
            load / floor for (load, _), (floor, _) in zip(samples["load"], samples["floor"], strict=True)
        ),
    )
