"""Mako and Twilio are the notification functions' own: the reception function's cold start never loads them."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import pytest

from bench.environment import RECEPTION_APP, REPO, subprocess_env

HEAVY = (
    "mako",
    "twilio",
    "apprise",
    "functions.templating.templating",
    "functions.email.mail",
    "functions.sms.sms",
    "functions.notification.notification",
    "functions.notify.notify",
)
# Libraries every function imports; loaded once, before the fork, so each child only pays for its app.
# None of them may load a HEAVY module (the probe checks): a preloaded heavy module would show up in every child.
SHARED = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "pydantic",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
)
NOTIFICATION_ENV = {"IDEMPOTENCY_TABLE_NAME": "t", "SENDER_EMAIL": "noreply@example.com", "TWILIO_SECRET_NAME": "s"}
# the environment the template gives the other functions
OTHER_ENV = {
    **NOTIFICATION_ENV,
    "POLICY_TABLE_NAME": "p",
    "POLICY_FLUSH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/flush",
    "ACTION_TARGETS": "{}",
    "EVENT_BUS_ARN": "arn:aws:events:us-east-1:123456789012:event-bus/correlator",
}
APPS: dict[str, tuple[str, dict[str, str]]] = {
    "reception": (str(RECEPTION_APP), {}),
    **{name: (str(REPO / "functions" / name / "app.py"), NOTIFICATION_ENV) for name in ("email", "sms", "notify")},
    **{name: (str(REPO / "functions" / name / "app.py"), OTHER_ENV) for name in ("relay", "feedback", "policy")},
}
# One interpreter loads SHARED, then forks a child per app: the child imports the app as Lambda would (a
# fresh module, its own environment) and reports the HEAVY modules then in sys.modules. A child starts from
# the parent's modules only, never from another app's.
LOADED_AFTER = """
import importlib, importlib.util, json, os, sys, traceback
heavy = json.loads(sys.argv[1])
def loaded():
    return sorted(name for name in sys.modules if any(name == h or name.startswith(h + ".") for h in heavy))
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
results = {"(shared)": loaded()}
for label, (path, env) in json.loads(sys.argv[3]).items():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.environ.update(env)
            spec = importlib.util.spec_from_file_location("app_under_test", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            report = loaded()
        except BaseException:
            report = "import failed: " + traceback.format_exc()[-2000:]
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        body = pipe.read()
    os.waitpid(pid, 0)
    results[label] = json.loads(body) if body else "child died"
print(json.dumps(results))
"""


@cache
def loaded_heavy_modules() -> dict[str, list[str]]:
    """The HEAVY modules in ``sys.modules`` after each app of APPS is imported as Lambda would (fresh, forked)."""
    completed = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, json.dumps(HEAVY), json.dumps(SHARED), json.dumps(APPS)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded: dict[str, list[str]] = json.loads(completed.stdout.splitlines()[-1])
    assert loaded["(shared)"] == [], "a shared library loads a heavy module; the probe would see it everywhere"
    for label, modules in loaded.items():
        assert isinstance(modules, list), f"{label}: {modules}"
    return loaded


def test_importing_the_reception_function_loads_neither_mako_nor_twilio() -> None:
    # GIVEN / WHEN a fresh interpreter imports functions/reception/app.py
    loaded = loaded_heavy_modules()["reception"]

    # THEN
    assert loaded == []


@pytest.mark.parametrize(("function", "expected"), [("email", "mako"), ("sms", "twilio"), ("notify", "apprise")])
def test_the_notification_functions_do_load_their_own_dependencies(function: str, expected: str) -> None:
    # GIVEN the environment the template gives them (no AWS call happens at import)
    # WHEN
    loaded = loaded_heavy_modules()[function]

    # THEN the check above is meaningful: the same probe sees them when they are imported
    assert expected in loaded


@pytest.mark.parametrize("function", ["email", "sms", "relay", "feedback", "policy"])
def test_apprise_stays_in_the_notify_function(function: str) -> None:
    # GIVEN the environment the template gives the other functions
    # WHEN / THEN
    assert "apprise" not in loaded_heavy_modules()[function]
