"""What every benchmark shares: the repository paths, the Lambda-like environment, module loading."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
CORE_LAYER = REPO / "layers" / "core"
RECEPTION_APP = REPO / "functions" / "reception" / "app.py"
RECEPTION_MODULE = "bench_reception_app"

# What the template and the Lambda runtime give the reception function; the credentials are fake
# because nothing here calls AWS (the EventBridge client is replaced before any call).
LAMBDA_ENV = {
    "EVENT_BUS_NAME": "correlator-bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_SERVICE_NAME": "reception",
    "POWERTOOLS_METRICS_NAMESPACE": "Correlator",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def apply_lambda_env() -> None:
    """Fill in the Lambda-like environment in this process (values already set win)."""
    for name, value in LAMBDA_ENV.items():
        os.environ.setdefault(name, value)
    # Tracing would be off in the import subprocesses and must be comparable here.
    os.environ.pop("POWERTOOLS_TRACE_DISABLED", None)


def subprocess_env() -> dict[str, str]:
    """The environment of the cold-import subprocesses: this one plus the Lambda variables."""
    env = {**os.environ, **LAMBDA_ENV}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = [str(CORE_LAYER), str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def load_module(path: Path, name: str) -> ModuleType:
    """Import the file at ``path`` as module ``name``, the way the Lambda runtime loads ``app.py``."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
