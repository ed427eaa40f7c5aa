"""Mako and Twilio are the notification functions' own: the reception function's cold start never loads them."""

from __future__ import annotations

import json
import subprocess
import sys

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
LOADED_AFTER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted(name for name in sys.modules if any(name == h or name.startswith(h + ".") for h in heavy))))
"""


def loaded_heavy_modules(app: str, **env: str) -> list[str]:
    """The HEAVY modules in ``sys.modules`` after a fresh interpreter imports ``app`` as Lambda would."""
    completed = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, app, json.dumps(HEAVY)],
        env={**subprocess_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded: list[str] = json.loads(completed.stdout.splitlines()[-1])
    return loaded


def test_importing_the_reception_function_loads_neither_mako_nor_twilio() -> None:
    # GIVEN / WHEN a fresh interpreter imports functions/reception/app.py
    loaded = loaded_heavy_modules(str(RECEPTION_APP))

    # THEN
    assert loaded == []


@pytest.mark.parametrize(("function", "expected"), [("email", "mako"), ("sms", "twilio"), ("notify", "apprise")])
def test_the_notification_functions_do_load_their_own_dependencies(function: str, expected: str) -> None:
    # GIVEN the environment the template gives them (no AWS call happens at import)
    env = {"IDEMPOTENCY_TABLE_NAME": "t", "SENDER_EMAIL": "noreply@example.com", "TWILIO_SECRET_NAME": "s"}

    # WHEN
    loaded = loaded_heavy_modules(str(REPO / "functions" / function / "app.py"), **env)

    # THEN the check above is meaningful: the same probe sees them when they are imported
    assert expected in loaded


@pytest.mark.parametrize("function", ["email", "sms", "relay", "feedback", "policy"])
def test_apprise_stays_in_the_notify_function(function: str) -> None:
    # GIVEN the environment the template gives the other functions
    env = {
        "IDEMPOTENCY_TABLE_NAME": "t",
        "SENDER_EMAIL": "noreply@example.com",
        "TWILIO_SECRET_NAME": "s",
        "POLICY_TABLE_NAME": "p",
        "POLICY_FLUSH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/flush",
        "ACTION_TARGETS": "{}",
        "EVENT_BUS_ARN": "arn:aws:events:us-east-1:123456789012:event-bus/correlator",
    }

    # WHEN / THEN
    assert "apprise" not in loaded_heavy_modules(str(REPO / "functions" / function / "app.py"), **env)
