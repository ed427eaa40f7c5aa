"""The local stack's state survives a restart (clean stop or SIGKILL), and the same ports can be used at once."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local.conftest import ADMIN_KEY, LocalStack, start_stack, stop_stack, wait_for

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}
DEV_KEY = {"x-api-key": "local-dev-key"}
LOG_WAIT_SECONDS = 60  # the log writer batches for LogBatchWindowSeconds (5 s) first


@pytest.fixture
def state_dir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="correlator-durability-") as directory:
        yield directory


def log_text(stack: LocalStack) -> str:
    response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
    return response.body.decode("utf-8") if response.status == 200 else ""


def wait_for_a_save_begun_after(stack: LocalStack, saved: Path, moment: float) -> None:
    """Saves run one after another, and only after requests: the second save finished after ``moment``
    began after the first one ended, so after ``moment``."""
    finished = moment
    for _ in range(2):

        def saved_since(after: float = finished) -> float:
            stack.request("GET", "/rules", headers=ADMIN_KEY)  # a request to moto, so that a save comes
            return saved.stat().st_mtime if saved.exists() and saved.stat().st_mtime > after else 0.0

        finished = wait_for(saved_since, 30, "the state was not saved")


def restart(stack: LocalStack, state_dir: str, *, kill: bool = False) -> LocalStack:
    """Stop ``stack`` (SIGINT, or SIGKILL) and start it again at once on the same ports and state."""
    if kill:
        stack.process.kill()
        stack.process.wait()
        stack.output.close()
    else:
        stop_stack(stack)
    ports = {"CORRELATOR_PORT": str(stack.port), "CORRELATOR_MOTO_PORT": str(stack.moto_port)}
    return start_stack({"CORRELATOR_STATE_DIR": state_dir, **ports})


def test_a_restart_keeps_rules_and_the_event_log(state_dir: str) -> None:
    # GIVEN a stack with a rule created through the API and an event in the log
    stack = start_stack({"CORRELATOR_STATE_DIR": state_dir})
    suffix = uuid.uuid4().hex[:8]
    rule = {"name": f"kept-{suffix}", "action": "csv", "match": {"kind": "dataset", "dataset": f"kept-{suffix}"}}
    try:
        assert stack.request("POST", "/rules", json.dumps(rule), {**JSON, **ADMIN_KEY}).status == 201
        event = json.dumps({"type": "durable.test", "object": f"kept/{suffix}"})
        assert stack.request("POST", "/events", event, {**JSON, **DEV_KEY}).status == 200
        wait_for(lambda: f"kept/{suffix}" in log_text(stack), LOG_WAIT_SECONDS, "the event never reached the log")

        # WHEN it is stopped with Ctrl-C and started again right away on the same ports
        stack = restart(stack, state_dir)

        # THEN the rule and the logged event are still there, and the banner says the state was restored
        assert stack.request("GET", f"/rules/kept-{suffix}", headers=ADMIN_KEY).status == 200
        assert f"kept/{suffix}" in log_text(stack)
        assert "restored from the last run" in stack.logs()
    finally:
        stop_stack(stack)


def test_an_event_accepted_just_before_a_clean_stop_is_logged_after_the_restart(state_dir: str) -> None:
    # GIVEN a stack that has just accepted an event (the log writer batches for 5 s, so it is still queued)
    stack = start_stack({"CORRELATOR_STATE_DIR": state_dir})
    suffix = uuid.uuid4().hex[:8]
    try:
        event = json.dumps({"type": "durable.test", "object": f"queued/{suffix}"})
        assert stack.request("POST", "/events", event, {**JSON, **DEV_KEY}).status == 200

        # WHEN it is stopped at once and started again
        stack = restart(stack, state_dir)

        # THEN the event reaches the log exactly once
        wait_for(lambda: f"queued/{suffix}" in log_text(stack), LOG_WAIT_SECONDS, "the queued event was lost")
        assert log_text(stack).count(f"queued/{suffix}") == 1
    finally:
        stop_stack(stack)


def test_after_a_sigkill_what_was_saved_comes_back(state_dir: str) -> None:
    # GIVEN a stack that saves every second, with a rule created more than a save ago
    stack = start_stack({"CORRELATOR_STATE_DIR": state_dir, "CORRELATOR_SAVE_SECONDS": "1"})
    suffix = uuid.uuid4().hex[:8]
    rule = {"name": f"killed-{suffix}", "action": "csv", "match": {"kind": "dataset", "dataset": f"k-{suffix}"}}
    try:
        assert stack.request("POST", "/rules", json.dumps(rule), {**JSON, **ADMIN_KEY}).status == 201
        wait_for_a_save_begun_after(stack, Path(state_dir) / "moto.pickle", time.time())

        # WHEN it is killed with SIGKILL and started again
        stack = restart(stack, state_dir, kill=True)

        # THEN the rule is there
        assert stack.request("GET", f"/rules/killed-{suffix}", headers=ADMIN_KEY).status == 200
    finally:
        stop_stack(stack)


def test_fresh_ignores_the_saved_state(state_dir: str) -> None:
    # GIVEN a saved state with a rule
    stack = start_stack({"CORRELATOR_STATE_DIR": state_dir})
    suffix = uuid.uuid4().hex[:8]
    rule = {"name": f"gone-{suffix}", "action": "csv", "match": {"kind": "dataset", "dataset": f"g-{suffix}"}}
    assert stack.request("POST", "/rules", json.dumps(rule), {**JSON, **ADMIN_KEY}).status == 201
    stop_stack(stack)

    # WHEN the stack starts with CORRELATOR_FRESH=1 (what --fresh and make clean-state do)
    stack = start_stack({"CORRELATOR_STATE_DIR": state_dir, "CORRELATOR_FRESH": "1"})
    try:
        # THEN the rule is gone
        assert stack.request("GET", f"/rules/gone-{suffix}", headers=ADMIN_KEY).status == 404
    finally:
        stop_stack(stack)
