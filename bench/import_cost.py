"""Cold import of the reception module against ``import boto3``, each in a fresh interpreter.

The time is taken inside the subprocess around the import only, so interpreter startup is
excluded; ``-X importtime`` explains where the time goes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass

from bench.environment import RECEPTION_APP, RECEPTION_MODULE, subprocess_env

_LOAD_RECEPTION = f"""
import importlib.util, sys, time
start = time.perf_counter()
spec = importlib.util.spec_from_file_location({RECEPTION_MODULE!r}, sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
"""
RECEPTION_SCRIPT = _LOAD_RECEPTION + "print(elapsed)\n"
# Compiles, from source, every non-stdlib module the import loaded: what a cold start costs when
# the deployed packages carry no .pyc files (the layer is built with --no-compile and /opt is
# read-only on Lambda, so nothing can be cached there).
COMPILE_SCRIPT = (
    _LOAD_RECEPTION
    + """
import sysconfig
stdlib = sysconfig.get_paths()["stdlib"]
files = sorted({
    path for mod in list(sys.modules.values())
    if isinstance(path := getattr(mod, "__file__", None), str) and path.endswith(".py")
    and ("site-packages" in path or not path.startswith(stdlib))
})
sources = []
for path in files:
    with open(path, "rb") as handle:
        sources.append((path, handle.read()))
start = time.perf_counter()
for path, source in sources:
    compile(source, path, "exec", dont_inherit=True)
print(time.perf_counter() - start, len(files))
"""
)
# Notification-only dependencies: the reception function must never load them.
NOTIFICATION_ONLY = ("mako", "twilio", "functions.templating.templating", "functions.email.mail", "functions.sms.sms")
NOTIFICATION_SCRIPT = (
    _LOAD_RECEPTION
    + f"""
heavy = {NOTIFICATION_ONLY!r}
print(" ".join(sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))))
"""
)
_IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S.*)$")


@dataclass(frozen=True, slots=True)
class ImportedModule:
    name: str
    depth: int
    self_seconds: float
    cumulative_seconds: float


def _run(script: str, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *flags, "-c", script, *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"import subprocess failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    return completed


def top_imports(count: int = 10) -> list[ImportedModule]:
    """The ``count`` modules with the largest cumulative time in ``-X importtime`` for the reception module."""
    stderr = _run(RECEPTION_SCRIPT, str(RECEPTION_APP), flags=("-X", "importtime")).stderr
    modules: list[ImportedModule] = []
    for line in stderr.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            modules.append(ImportedModule(name, (len(indent) - 1) // 2, int(self_us) / 1e6, int(cumulative_us) / 1e6))
    return sorted(modules, key=lambda module: module.cumulative_seconds, reverse=True)[:count]


def compile_cost() -> tuple[float, int]:
    """Seconds to compile from source the non-stdlib modules the reception module imports, and their count."""
    seconds, files = _run(COMPILE_SCRIPT, str(RECEPTION_APP)).stdout.split()[-2:]
    return float(seconds), int(files)


def notification_modules_loaded() -> list[str]:
    """The notification-only modules (Mako, Twilio, their correlator modules) the reception import loads."""
    return _run(NOTIFICATION_SCRIPT, str(RECEPTION_APP)).stdout.split()
