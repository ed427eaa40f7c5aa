"""The `correlator` command over the local stack, end to end: what it sends is found by search, rules.yaml
applies idempotently (and prunes), tail -f follows a rotation, replay and redrive move real events."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from correlator.appender import S3Appender
from correlator.eventlog import EventLog, LogSettings
from correlator_cli.http import ApiClient
from correlator_cli.main import app
from correlator_cli.tail import LogFollower
from correlator_cli.target import LocalSettings, local_target
from tests.local.conftest import REPO_ROOT, LocalStack, start_stack, stop_stack, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_stack() -> Iterator[LocalStack]:
    """A stack of its own: these tests rotate the log and replay the archive."""
    running = start_stack()
    yield running
    stop_stack(running)


@pytest.fixture
def run(cli_stack: LocalStack) -> Any:
    runner = CliRunner()
    env = {"CORRELATOR_PORT": str(cli_stack.port), "CORRELATOR_MOTO_PORT": str(cli_stack.moto_port)}

    def invoke(*args: str, input: str | None = None, code: int = 0) -> str:
        result = runner.invoke(app, ["--local", *args], env=env, input=input)
        assert result.exit_code == code, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
        return result.stdout

    return invoke


def search(run: Any, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run("logs", "search", *args, "-o", "json").splitlines() if line]


def test_send_then_search_finds_every_event_of_the_request_key(run: Any, tmp_path: Path) -> None:
    # GIVEN 150 events in an NDJSON file (two requests of at most 100) under one request key
    events = tmp_path / "events.ndjson"
    events.write_text(
        "".join(json.dumps({"type": "order.created", "object": f"orders/{n}"}) + "\n" for n in range(150))
    )
    sent = json.loads(run("send", "-f", str(events), "-k", "Req_cli_150", "-o", "json"))
    assert sent["request_key"] == "Req_cli_150"
    assert [r["status"] for r in sent["results"]] == ["accepted"] * 150
    # WHEN the log is searched by that request key THEN every event is found, once
    found = wait_for(
        lambda: (lines := search(run, "-k", "Req_cli_150")) and len(lines) >= 150 and lines, 30, "not all 150 logged"
    )
    assert sorted(line["object"] for line in found) == sorted(f"orders/{n}" for n in range(150))
    assert {line["request_key"] for line in found} == {"Req_cli_150"}
    # ... and the other criteria narrow it down
    assert [line["object"] for line in search(run, "-k", "Req_cli_150", "orders/149")] == ["orders/149"]
    assert search(run, "-k", "Req_cli_150", "--level", "ERROR") == []
    assert len(search(run, "-k", "Req_cli_150", "--type", "order.", "--since", "2000-01-01")) == 150


def test_send_reports_refused_events_and_fails(run: Any) -> None:
    out = run("send", '{"type": "ok.one"}', '{"type": "not valid"}', "-o", "json", code=1)
    results = json.loads(out)["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected"]
    assert "type" in results[1]["error"]
    key = json.loads(out)["request_key"]
    time.sleep(6)  # the writer's batch window: nothing of a refused request may appear
    assert search(run, "-k", key) == []


RULES = """
rules:
  - name: cli-warn-payments
    match: {type: payment., level: [WARN, ERROR]}
    action: log.warn
  - name: cli-ops-mail
    match: {type: order.failed}
    action: email
    config: {to: [ops@example.com], subject: "failed ${event['object']}", text: "x"}
"""


def test_apply_is_idempotent_and_prune_deletes_what_the_file_drops(run: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    # WHEN applied THEN both rules are created, the template rule is left alone
    applied = json.loads(run("rules", "apply", "-f", str(rules), "-o", "json"))
    assert sorted((a["name"], a["change"], a["result"]) for a in applied["applied"]) == [
        ("cli-ops-mail", "create", "ok"),
        ("cli-warn-payments", "create", "ok"),
    ]
    listed = {r["name"]: r for r in json.loads(run("rules", "list", "-o", "json"))}
    assert listed["cli-warn-payments"]["action"] == "log.warn"
    assert listed["log-everything"]["read_only"] is True
    # THEN diff shows nothing to do, and applying again changes nothing
    diff = json.loads(run("rules", "diff", "-f", str(rules), "-o", "json"))
    assert {(d["name"], d["change"]) for d in diff} == {
        ("cli-warn-payments", "unchanged"),
        ("cli-ops-mail", "unchanged"),
        ("log-everything", "read-only"),
    }
    assert json.loads(run("rules", "apply", "-f", str(rules), "-o", "json"))["applied"] == []
    # WHEN one rule changes and the other leaves the file THEN apply updates it; --prune deletes the other
    rules.write_text(RULES.split("  - name: cli-ops-mail")[0].replace("log.warn", "log.error"))
    plain = run("rules", "apply", "-f", str(rules))
    assert "update" in plain
    assert "cli-ops-mail" not in plain
    assert json.loads(run("rules", "get", "cli-warn-payments"))["action"] == "log.error"
    pruned = json.loads(run("rules", "apply", "-f", str(rules), "--prune", "-o", "json"))
    assert [(a["name"], a["change"]) for a in pruned["applied"]] == [("cli-ops-mail", "delete")]
    assert "cli-ops-mail" not in {r["name"] for r in json.loads(run("rules", "list", "-o", "json"))}
    # ... and the dry run of the rule says whether an event matches
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "payment.declined", "level": "WARN"}))
    assert json.loads(run("rules", "test", "cli-warn-payments", "-e", str(event), "-o", "json")) == {
        "matches": True,
        "policy": None,
    }
    event.write_text(json.dumps({"type": "order.created"}))
    run("rules", "test", "cli-warn-payments", "-e", str(event), code=1)
    run("rules", "delete", "cli-warn-payments")
    run("rules", "get", "cli-warn-payments", code=2)


def test_an_invalid_rules_file_changes_nothing(run: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: cli-good, action: log}\n  - {name: cli-bad, action: teleport}\n")
    run("rules", "apply", "-f", str(rules), code=2)
    assert "cli-good" not in {r["name"] for r in json.loads(run("rules", "list", "-o", "json"))}


def test_tail_follows_the_log_across_a_rotation(run: Any, cli_stack: LocalStack) -> None:
    # GIVEN a follower at the end of the current log
    follower = LogFollower(
        ApiClient(local_target(LocalSettings(port=cli_stack.port, moto_port=cli_stack.moto_port))), interval=0.2
    )
    follower.start(lines=0)
    s3 = cli_stack.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "logbucket" in b["Name"])
    log = EventLog(S3Appender(s3, bucket))
    filler = [
        f'2026-11-22T00:00:00.000Z,[INFO ],"Req_fill","true",null,"t","fill","{n:07d}","{"x" * 20}"\n'
        for n in range(12000)
    ]
    shown: list[bytes] = []

    def collect(until: bytes) -> bool:
        for data in follower.poll():
            shown.append(data)
        return until in b"".join(shown)

    # WHEN lines are appended, the file is rotated (1 MB), and more lines come after the rotation
    log.append("".join(filler[:6000]))
    wait_for(lambda: collect(b'"0005999"'), 20, "tail did not show the first lines")
    log.append("".join(filler[6000:11000]))  # > 1 MiB now
    assert log.rotate(LogSettings(rotation_size_mb=1)) is not None
    log.append("".join(filler[11000:]))
    # THEN every line shows up exactly once, in order, across the rotation
    wait_for(lambda: collect(b'"0011999"'), 20, "tail did not follow the rotation")
    lines = [line for line in b"".join(shown).decode().splitlines(keepends=True) if '"Req_fill"' in line]
    assert lines == filler
    assert follower.warnings == []


def test_replay_puts_archived_events_back_through_the_rules(run: Any) -> None:
    run("send", "-t", "order.replayed", "--object", "orders/r1", "-k", "Req_cli_replay")
    wait_for(lambda: search(run, "-k", "Req_cli_replay"), 30, "event not logged")
    since = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    result = json.loads(run("replay", "--since", since, "--pattern", "log-*", "-o", "json"))
    assert result["state"] == "COMPLETED"
    # The replayed event reached the log-everything rule again: a second line for the same request key.
    wait_for(lambda: len(search(run, "-k", "Req_cli_replay")) >= 2, 30, "replayed event not logged")


def test_redrive_moves_dead_letters_back_to_the_log_queue(run: Any, cli_stack: LocalStack) -> None:
    # GIVEN a log delivery that landed in the log queue's DLQ
    sqs = cli_stack.client("sqs")
    dlq = sqs.get_queue_url(QueueName="correlator-LogDeadLetterQueue")["QueueUrl"]
    body = json.loads(
        Path("events/sqs/log-delivery.json").read_text().split('"body": ')[1].split(',\n      "attributes"')[0]
    )
    body = body.replace("Req_1001", "Req_cli_redrive").replace("q4Jm0Xw2TSeWb7vK1nYc3A", "redriveEventId00000000")
    sqs.send_message(QueueUrl=dlq, MessageBody=body)
    listed = {q["name"]: q for q in json.loads(run("dlq", "ls", "-o", "json"))}
    assert listed["correlator-LogDeadLetterQueue"]["depth"] == 1
    assert listed["correlator-LogDeadLetterQueue"]["sample"]["request_key"] == "Req_cli_redrive"
    # WHEN redriven THEN the log writer gets it again and the line is in the log
    result = json.loads(run("dlq", "redrive", "LogDeadLetterQueue", "-o", "json"))
    assert (result["status"], result["moved"]) == ("COMPLETED", 1)
    wait_for(lambda: search(run, "-k", "Req_cli_redrive"), 30, "redriven delivery not logged")
    run("dlq", "redrive", "RuleTargetDeadLetterQueue", code=2)  # no SQS source: replay instead


def test_logs_commands_list_download_delete_and_configure(run: Any, cli_stack: LocalStack, tmp_path: Path) -> None:
    # GIVEN an archive (the rotation above, or one made here)
    listing = json.loads(run("logs", "ls", "-o", "json"))
    if not listing["archive"]:
        s3 = cli_stack.client("s3")
        bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "logbucket" in b["Name"])
        log = EventLog(S3Appender(s3, bucket))
        log.append(
            "".join(f'2026-11-22T00:00:00Z,[INFO ],"Req_arch","true",null,"t","x","{n}",null\n' for n in range(20000))
        )
        log.rotate(LogSettings(rotation_size_mb=1))
        listing = json.loads(run("logs", "ls", "-o", "json"))
    archive = listing["archive"][0]["name"]
    assert [item["name"] for item in listing["current"]] == ["default.log"]
    # WHEN downloaded THEN gunzipped by default, the gzip bytes with --raw
    text = run("logs", "get", archive)
    assert len(text.encode()) == listing["archive"][0]["size"]
    raw = tmp_path / "archive.gz"
    run("logs", "get", archive, "--raw", "--out", str(raw))
    assert gzip.decompress(raw.read_bytes()).decode() == text
    assert "default.log" in run("logs", "ls")  # the table
    # WHEN deleted THEN gone; the current log cannot be deleted (exit 1, nothing touched)
    assert json.loads(run("logs", "rm", archive, "-o", "json")) == [{"name": archive, "deleted": True}]
    assert archive not in {item["name"] for item in json.loads(run("logs", "ls", "-o", "json"))["archive"]}
    refused = json.loads(run("logs", "rm", "default.log", "-o", "json", code=1))
    assert refused[0]["deleted"] is False
    assert json.loads(run("logs", "ls", "-o", "json"))["current"]
    # Settings: shown, changed, and an out-of-range value refused without a change
    assert json.loads(run("logs", "settings", "-o", "json")) == {"rotation_size_mb": 50, "generations": 12}
    assert json.loads(run("logs", "settings", "--generations", "6", "-o", "json"))["generations"] == 6
    run("logs", "settings", "--rotation-size-mb", "0", code=2)
    assert json.loads(run("logs", "settings", "-o", "json")) == {"rotation_size_mb": 50, "generations": 6}
    run("logs", "settings", "--generations", "12")
    # tail -n prints the last lines of the current log (-o json: one object per line)
    run("send", "-t", "tail.me", "-k", "Req_cli_tail")
    wait_for(lambda: '"Req_cli_tail"' in run("logs", "tail", "-n", "50"), 30, "tail -n did not show the event")
    tailed = [json.loads(line) for line in run("logs", "tail", "-n", "50", "-o", "json").splitlines()]
    assert "Req_cli_tail" in {record["request_key"] for record in tailed}
    current = [json.loads(line) for line in run("logs", "get", "-o", "json").splitlines()]
    assert {"time", "level", "request_key", "type", "object", "info"} <= set(current[0])
    run("logs", "get", archive, "--raw", "-o", "json", code=2)


def test_the_tail_command_follows_until_interrupted(run: Any, cli_stack: LocalStack) -> None:
    # GIVEN `correlator logs tail -f` running as a process
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "core"), str(REPO_ROOT)]),
        "CORRELATOR_PORT": str(cli_stack.port),
        "CORRELATOR_MOTO_PORT": str(cli_stack.moto_port),
    }
    command = [sys.executable, "-m", "correlator_cli", "--local", "logs", "tail", "-f", "-n", "0", "--interval", "0.2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None

    def read() -> None:
        for line in iter(stdout.readline, b""):
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        # WHEN an event is sent THEN its line shows up in the tail
        # (once it follows: its first read of the log is itself logged, as a log.get line, and shown)
        lines.get(timeout=30)
        started = time.monotonic()
        run("send", "-t", "tail.followed", "-k", "Req_cli_follow")
        deadline = time.monotonic() + 30
        seen = b""
        while b'"Req_cli_follow"' not in seen:
            assert time.monotonic() < deadline, f"tail -f did not show the event: {seen[-500:]!r}"
            with contextlib.suppress(queue.Empty):
                seen += lines.get(timeout=0.5)
        # ... and polling every 0.2 s did not fill the log with its own reads (it polls S3, not the API:
        # through the API every poll would add a log.get line, 5 a second)
        assert seen.count(b'"log.get"') < max(5, time.monotonic() - started), seen
    finally:
        # ... and Ctrl-C stops it cleanly
        process.send_signal(signal.SIGINT)
        code = process.wait(15)
        errors = process.stderr.read().decode() if process.stderr else ""
        assert code == 0, errors
