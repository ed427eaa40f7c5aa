"""The ``correlator`` command: send events, manage rules as code, read and search the event log,
replay archived events and redrive dead letters, on the local stack or a deployed one."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from correlator_cli import operations, rulesync
from correlator_cli.http import ApiClient, ApiError
from correlator_cli.logsearch import LogRecord, Query, decompressed, search
from correlator_cli.output import Output, console, dry_run_text, errors, fail, print_json, print_table
from correlator_cli.tail import LogFollower
from correlator_cli.target import Target, TargetError, resolve_target

BATCH = 100
app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
rules_app = typer.Typer(
    help="Rules: list, get, delete, test, and apply a rules.yaml (rules as code).", no_args_is_help=True
)
logs_app = typer.Typer(help="The event log: list, download, delete, settings, tail -f, search.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues: depth and error context, redrive.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(logs_app, name="logs")
app.add_typer(dlq_app, name="dlq")

OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table for people, json for scripts")]


@dataclass
class Context:
    local: bool
    stack: str | None
    profile: str | None
    region: str | None
    config_env: str
    _client: ApiClient | None = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            try:
                target = resolve_target(
                    local=self.local,
                    stack=self.stack,
                    profile=self.profile,
                    region=self.region,
                    config_env=self.config_env,
                )
            except TargetError as error:
                fail(str(error))
                raise typer.Exit(2) from None
            self._client = ApiClient(target)
        return self._client

    @property
    def target(self) -> Target:
        return self.client.target


@app.callback()
def configure(
    ctx: typer.Context,
    local: Annotated[
        bool, typer.Option("--local", help="The local stack (make run); the default when it answers")
    ] = False,
    stack: Annotated[
        str | None,
        typer.Option("--stack", envvar="CORRELATOR_STACK", help="A deployed stack (default: samconfig.toml)"),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile (else the default credential chain)")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region")] = None,
    config_env: Annotated[str, typer.Option("--config-env", help="samconfig.toml environment")] = "default",
) -> None:
    ctx.obj = Context(local, stack, profile, region, config_env)


def _context(ctx: typer.Context) -> Context:
    context = ctx.find_root().obj
    assert isinstance(context, Context)
    return context


# -- send ------------------------------------------------------------------------------------
def _events_from_text(text: str, origin: str) -> list[dict[str, Any]]:
    text = text.strip()
    if not text:
        return []
    try:
        document = json.loads(text)
    except ValueError:
        try:  # NDJSON
            document = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as error:
            raise typer.BadParameter(f"{origin}: neither JSON nor NDJSON ({error})") from None
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        document = document["events"]
    events = document if isinstance(document, list) else [document]
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise typer.BadParameter(f"{origin}: event {index} is not a JSON object")
    return events


@app.command()
def send(
    ctx: typer.Context,
    events: Annotated[list[str] | None, typer.Argument(help="Events as JSON objects")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A JSON or NDJSON file of events; - for stdin")
    ] = None,
    event_type: Annotated[str | None, typer.Option("--type", "-t", help="Send one event of this type")] = None,
    obj: Annotated[str | None, typer.Option("--object", help="With --type: the event's object")] = None,
    info: Annotated[str | None, typer.Option("--info", help="With --type: the event's info")] = None,
    level: Annotated[str | None, typer.Option("--level", help="With --type: INFO, WARN or ERROR")] = None,
    request_key: Annotated[
        str | None, typer.Option("--request-key", "-k", help="Correlates every event (default: a new one)")
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Send events (arguments, --type, a file or stdin), 100 per request, under one request key."""
    batch: list[dict[str, Any]] = []
    for index, text in enumerate(events or []):
        batch.extend(_events_from_text(text, f"argument {index + 1}"))
    if event_type:
        single = {"type": event_type, "object": obj, "info": info, "level": level}
        batch.append({key: value for key, value in single.items() if value is not None})
    if file is not None:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        batch.extend(_events_from_text(text, str(file)))
    elif not batch and not sys.stdin.isatty():
        batch.extend(_events_from_text(sys.stdin.read(), "stdin"))
    if not batch:
        raise typer.BadParameter("no events: give JSON arguments, --type, --file or stdin")
    key = request_key or secrets.token_urlsafe(16)
    client = _context(ctx).client
    results: list[dict[str, Any]] = []
    failed = 0
    for start in range(0, len(batch), BATCH):
        chunk = batch[start : start + BATCH]
        try:
            reply = client.call(
                "POST", "/events", {"events": chunk}, headers={"x-request-key": key}, admin=False, ok=(200, 503)
            )
            entries = reply.json().get("results", [])
        except ApiError as error:  # refused as a whole (422, 413...): nothing of this batch was published
            entries = [{"status": "rejected", "error": error.code} for _ in chunk]
            for detail in error.data.get("details", []):
                if isinstance(detail.get("index"), int) and detail["index"] < len(entries):
                    entries[detail["index"]]["error"] = f"{detail.get('field')}: {detail.get('message')}"
            if not error.data.get("details"):
                entries = [{"status": "rejected", "error": str(error)} for _ in chunk]
        for offset, entry in enumerate(entries):
            entry["index"] = start + offset
            failed += entry.get("status") != "accepted"
        results.extend(entries)
    if output is Output.JSON:
        print_json({"request_key": key, "results": results})
    else:
        print_table(
            f"request key {key}",
            ["#", "id", "status", "error"],
            ([r["index"], r.get("id"), r.get("status"), r.get("error") or r.get("error_code")] for r in results),
        )
    if failed:
        raise typer.Exit(1)


# -- rules -----------------------------------------------------------------------------------
def _handle_api_error(error: ApiError) -> None:
    fail(
        str(error),
        (f"{d.get('field')}: {d.get('message')}" for d in error.data.get("details", []) if isinstance(d, dict)),
    )
    raise typer.Exit(2 if error.status in (400, 404, 409, 412, 422) else 1)


@rules_app.command("list")
def rules_list(ctx: typer.Context, output: OutputOption = Output.TABLE) -> None:
    """Every rule on the bus (template rules are read-only)."""
    rules = _context(ctx).client.call("GET", "/rules").json()["rules"]
    if output is Output.JSON:
        print_json(rules)
        return
    print_table(
        "rules",
        ["name", "action", "enabled", "read-only", "match", "description"],
        (
            [
                r["name"],
                r["action"],
                r.get("enabled", True),
                r.get("read_only", False),
                json.dumps(r.get("match", {})),
                r.get("description", ""),
            ]
            for r in rules
        ),
    )


@rules_app.command("get")
def rules_get(ctx: typer.Context, name: str, output: OutputOption = Output.JSON) -> None:
    """One rule, as JSON (with its ETag on stderr in table mode)."""
    try:
        reply = _context(ctx).client.call("GET", f"/rules/{name}")
    except ApiError as error:
        _handle_api_error(error)
        return
    print_json(reply.json())
    if output is Output.TABLE and reply.headers.get("etag"):
        errors.print(f"ETag {reply.headers['etag']}", highlight=False)


@rules_app.command("delete")
def rules_delete(
    ctx: typer.Context,
    name: str,
    if_match: Annotated[str | None, typer.Option("--if-match", help="Only if the rule still has this ETag")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Delete a rule (its target and schedule too)."""
    try:
        _context(ctx).client.call("DELETE", f"/rules/{name}", headers={"if-match": if_match} if if_match else None)
    except ApiError as error:
        _handle_api_error(error)
    if output is Output.JSON:
        print_json({"deleted": name})
    else:
        console.print(f"deleted {name}")


@rules_app.command("test")
def rules_test(
    ctx: typer.Context,
    name: str,
    event_file: Annotated[Path, typer.Option("--event", "-e", help="The event (JSON), - for stdin")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Dry run: does this event match the rule, and what would its delivery policy do now? (exit 0 if it matches)"""
    text = sys.stdin.read() if str(event_file) == "-" else event_file.read_text(encoding="utf-8")
    try:
        result = _context(ctx).client.call("POST", f"/rules/{name}/test", json.loads(text)).json()
    except ApiError as error:
        _handle_api_error(error)
        return
    if output is Output.JSON:
        print_json(result)
    else:
        console.print(dry_run_text(name, result), highlight=False)
    if not result["matches"]:
        raise typer.Exit(1)


def _plan(ctx: typer.Context, file: Path, prune: bool) -> list[rulesync.Step]:
    try:
        desired = rulesync.load_rules(file)
    except rulesync.RulesFileError as error:
        fail(str(error), error.problems)
        raise typer.Exit(2) from None
    current = _context(ctx).client.call("GET", "/rules").json()["rules"]
    return rulesync.plan(desired, current, prune=prune)


def _show_plan(steps: list[rulesync.Step]) -> None:
    colours = {"create": "green", "update": "yellow", "delete": "red", "unchanged": "dim", "read-only": "blue"}
    for step in steps:
        colour = colours[step.change.value]
        console.print(f"[{colour}]{step.change.value:>9}[/{colour}]  {step.name}", highlight=False)
        if step.change in (rulesync.Change.CREATE, rulesync.Change.UPDATE, rulesync.Change.DELETE):
            console.print(step.diff(), markup=False, highlight=False, end="")
    changes = rulesync.pending(steps)
    console.print(f"{len(changes)} change(s)" if changes else "no changes: the bus matches the file")


RulesFile = Annotated[Path, typer.Option("--file", "-f", help="rules.yaml: a list of rules, or {rules: [...]}")]
PruneOption = Annotated[bool, typer.Option("--prune", help="Also delete rules on the bus that the file does not name")]


@rules_app.command("diff")
def rules_diff(
    ctx: typer.Context, file: RulesFile, prune: PruneOption = False, output: OutputOption = Output.TABLE
) -> None:
    """What apply would change (exit 0 either way)."""
    steps = _plan(ctx, file, prune)
    if output is Output.JSON:
        print_json([step.to_json() for step in steps])
    else:
        _show_plan(steps)


@rules_app.command("apply")
def rules_apply(
    ctx: typer.Context,
    file: RulesFile,
    prune: PruneOption = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff only")] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """Make the bus's rules what the file says: create, update (and with --prune delete); idempotent."""
    steps = _plan(ctx, file, prune)
    if output is Output.TABLE:
        _show_plan(steps)
    done: list[dict[str, Any]] = []
    failed = 0
    client = _context(ctx).client
    for step in [] if dry_run else rulesync.pending(steps):
        try:
            _apply_step(client, step)
            done.append({**step.to_json(), "result": "ok"})
        except ApiError as error:
            failed += 1
            done.append(
                {**step.to_json(), "result": "failed", "error": str(error), "details": error.data.get("details", [])}
            )
            if output is Output.TABLE:
                fail(
                    f"{step.change.value} {step.name}: {error}", (json.dumps(d) for d in error.data.get("details", []))
                )
    if output is Output.JSON:
        print_json({"steps": [s.to_json() for s in steps], "applied": done, "dry_run": dry_run})
    elif not dry_run and done:
        console.print(f"applied {len(done) - failed} of {len(done)} change(s)")
    if failed:
        raise typer.Exit(1)


def _apply_step(client: ApiClient, step: rulesync.Step) -> None:
    """One change, guarded: create only if absent, update/delete only if unchanged since the plan was made."""
    if step.change is rulesync.Change.CREATE:
        client.call("POST", "/rules", step.after, headers={"if-none-match": "*"})
        return
    current = client.call("GET", f"/rules/{step.name}")
    if rulesync.normalized(current.json()) != step.before:
        raise ApiError(
            412,
            json.dumps(
                {"code": "precondition_failed", "message": "changed since the diff was made; run again"}
            ).encode(),
        )
    guard = {"if-match": current.headers["etag"]} if current.headers.get("etag") else {}
    if step.change is rulesync.Change.UPDATE:
        client.call("PUT", f"/rules/{step.name}", step.after, headers=guard)
    else:
        client.call("DELETE", f"/rules/{step.name}", headers=guard)


# -- logs ------------------------------------------------------------------------------------
@logs_app.command("ls")
def logs_ls(ctx: typer.Context, output: OutputOption = Output.TABLE) -> None:
    """The current log and the archives (uncompressed sizes), oldest first."""
    listing = _context(ctx).client.call("GET", "/logs").json()
    if output is Output.JSON:
        print_json(listing)
        return
    rows = [["current", f["name"], f["size"], f["last_modified"]] for f in listing["current"]]
    rows += [["archive", f["name"], f["size"], f["last_modified"]] for f in listing["archive"]]
    print_table("event log", ["kind", "name", "bytes", "last modified"], rows)


def _log_path(name: str) -> str:
    return "/logs/current/default.log" if name in ("default.log", "current") else f"/logs/archive/{name}"


@logs_app.command("get")
def logs_get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="default.log (or current), or an archive name")] = "default.log",
    dest: Annotated[Path | None, typer.Option("--out", help="Write to this file (default: stdout)")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Keep archives gzip-compressed")] = False,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="table: the lines as they are; json: one JSON object per line")
    ] = Output.TABLE,
) -> None:
    """Download a log file (archives are decompressed unless --raw)."""
    if raw and output is Output.JSON:
        raise typer.BadParameter("--raw keeps the gzip bytes: it cannot be combined with --output json")
    try:
        download = _context(ctx).client.open(_log_path(name))
    except ApiError as error:
        _handle_api_error(error)
        return
    chunks: Iterator[bytes] = download.chunks if raw else decompressed(download.chunks)
    if output is Output.JSON:
        chunks = (_render(record, output).encode() for record in search(chunks, Query()))
    if dest is None:  # stdout stays open
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    with dest.open("wb") as sink:
        for chunk in chunks:
            sink.write(chunk)


@logs_app.command("rm")
def logs_rm(ctx: typer.Context, names: list[str], output: OutputOption = Output.TABLE) -> None:
    """Delete archives (the current log cannot be deleted)."""
    failed = 0
    results = []
    for name in names:
        try:
            _context(ctx).client.call("DELETE", _log_path(name))
            results.append({"name": name, "deleted": True})
        except ApiError as error:
            failed += 1
            results.append({"name": name, "deleted": False, "error": str(error)})
    if output is Output.JSON:
        print_json(results)
    else:
        print_table(None, ["name", "deleted", "error"], ([r["name"], r["deleted"], r.get("error")] for r in results))
    if failed:
        raise typer.Exit(1)


@logs_app.command("settings")
def logs_settings(
    ctx: typer.Context,
    rotation_size_mb: Annotated[int | None, typer.Option("--rotation-size-mb", help="1-1024")] = None,
    generations: Annotated[int | None, typer.Option("--generations", help="1-12")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Show the rotation settings, or change them."""
    client = _context(ctx).client
    settings = client.call("GET", "/logs/settings").json()
    if rotation_size_mb is not None or generations is not None:
        wanted = {
            "rotation_size_mb": settings["rotation_size_mb"] if rotation_size_mb is None else rotation_size_mb,
            "generations": settings["generations"] if generations is None else generations,
        }
        try:
            settings = client.call("PUT", "/logs/settings", wanted).json()
        except ApiError as error:
            _handle_api_error(error)
    if output is Output.JSON:
        print_json(settings)
    else:
        print_table("log settings", ["setting", "value"], settings.items())


@logs_app.command("tail")
def logs_tail(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep following, across rotations")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show first")] = 10,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls")] = 1.0,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="table: the lines as they are; json: one JSON object per line")
    ] = Output.TABLE,
) -> None:
    """The end of the current log; with -f, everything appended after it (Ctrl-C stops)."""
    follower = LogFollower(_context(ctx).client, interval=interval)
    out = sys.stdout.buffer

    def show(data: bytes) -> None:
        if output is Output.JSON:
            data = b"".join(_render(record, output).encode() for record in search(iter([data]), Query()))
        out.write(data)
        out.flush()

    show(follower.start(lines))
    if not follow:
        return
    try:
        for data in follower.follow():
            show(data)
            for warning in follower.warnings:
                errors.print(f"[yellow]warning:[/yellow] {warning}")
            follower.warnings.clear()
    except KeyboardInterrupt:
        pass


def _utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # logsearch.instant_key's form


TimeOption = typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"])


@logs_app.command("search")
def logs_search(
    ctx: typer.Context,
    request_key: Annotated[str | None, typer.Option("--request-key", "-k", help="Exactly this request key")] = None,
    event_type: Annotated[str | None, typer.Option("--type", "-t", help="Type prefix, e.g. order.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="INFO, WARN or ERROR")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Exactly this subject")] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", help="From this time (UTC unless an offset is given)", formats=TimeOption.formats),
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--until", help="Before this time", formats=TimeOption.formats)
    ] = None,
    text: Annotated[str | None, typer.Argument(help="Free text anywhere in the line")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Find lines across the archives and the current log, streamed (archives gunzipped on the fly).

    Prints matching lines as they are found (--output json: one JSON object per line)."""
    query = Query(
        request_key=request_key,
        type_prefix=event_type,
        level=level.upper() if level else None,
        subject=subject,
        since=_utc(since),
        until=_utc(until),
        text=text,
    )
    client = _context(ctx).client
    listing = client.call("GET", "/logs").json()
    files = [f["name"] for f in listing["archive"]] + [f["name"] for f in listing["current"]]
    total = sum(f["size"] for f in listing["archive"] + listing["current"])
    found = 0
    out = sys.stdout
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    ) as progress:
        task = progress.add_task("searching", total=total or None)
        for name in files:
            progress.update(task, description=name)
            for record in search(
                client.open(_log_path(name)).chunks, query, on_bytes=lambda n: progress.advance(task, n)
            ):
                found += 1
                out.write(_render(record, output))
                out.flush()
    if output is Output.TABLE:
        errors.print(f"{found} line(s) in {len(files)} file(s)", highlight=False)


def _render(record: LogRecord, output: Output) -> str:
    if output is Output.JSON:
        return json.dumps(record.to_json(), ensure_ascii=False) + "\n"
    return record.raw.decode("utf-8", "replace")


# -- replay ----------------------------------------------------------------------------------
def _progress_bar(description: str) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}% {task.fields[state]}"),
        console=errors,
        disable=not errors.is_terminal,
    )


@app.command()
def replay(
    ctx: typer.Context,
    since: Annotated[
        datetime, typer.Option("--since", help="Replay events from this time", formats=TimeOption.formats)
    ],
    until: Annotated[
        datetime | None, typer.Option("--until", help="... until this time (default: now)", formats=TimeOption.formats)
    ] = None,
    pattern: Annotated[
        str | None,
        typer.Option("--pattern", help="Only to the rules whose names match (shell pattern, e.g. 'notify-*')"),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the replay until it ends")] = True,
    output: OutputOption = Output.TABLE,
) -> None:
    """Replay archived events of [--since, --until) onto the bus (an EventBridge archive replay)."""
    target = _context(ctx).target
    start = since if since.tzinfo else since.replace(tzinfo=UTC)
    end = (until if until.tzinfo else until.replace(tzinfo=UTC)) if until else datetime.now(UTC)
    name = f"correlator-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    try:
        started = operations.start_replay(target, start, end, pattern, name)
    except TargetError as error:
        fail(str(error))
        raise typer.Exit(2) from None
    result: dict[str, Any] = started
    if wait:
        with _progress_bar(name) as progress:
            task = progress.add_task(f"replay {name}", total=1.0, state="STARTING")
            result = {
                **started,
                **operations.wait_for_replay(target, name, lambda f, s: progress.update(task, completed=f, state=s)),
            }
    if output is Output.JSON:
        print_json(result)
    else:
        console.print(
            f"replay {name}: {result.get('state')}" + (f" ({result['reason']})" if result.get("reason") else "")
        )
    if result.get("state") in ("FAILED", "CANCELLED"):
        raise typer.Exit(1)


# -- dead letters ----------------------------------------------------------------------------
@dlq_app.command("ls")
def dlq_ls(ctx: typer.Context, output: OutputOption = Output.TABLE) -> None:
    """Every dead-letter queue of the stack with its depth and a sample message's error context."""
    queues = operations.dead_letter_queues(_context(ctx).target)
    if output is Output.JSON:
        print_json([queue.to_json() for queue in queues])
        return
    print_table(
        "dead-letter queues",
        ["name", "depth", "redrives to", "sample error"],
        (
            [
                q.name,
                q.depth,
                ", ".join(s.rsplit(":", 1)[-1] for s in q.sources) or "(EventBridge / Lambda: use replay)",
                json.dumps({k: v for k, v in (q.sample or {}).items() if k != "body"}) if q.sample else "",
            ]
            for q in queues
        ),
    )


@dlq_app.command("redrive")
def dlq_redrive(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The dead-letter queue's name")],
    output: OutputOption = Output.TABLE,
) -> None:
    """Move a dead-letter queue's messages back to their source queue (an SQS message move task)."""
    target = _context(ctx).target
    queues = {queue.name: queue for queue in operations.dead_letter_queues(target, sample=False)}
    queue = queues.get(name) or next((q for q in queues.values() if name in q.name), None)
    if queue is None:
        fail(f"no dead-letter queue named {name!r}; there are: {', '.join(queues) or 'none'}")
        raise typer.Exit(2)
    try:
        with _progress_bar(queue.name) as progress:
            task = progress.add_task(f"redrive {queue.name}", total=1.0, state="RUNNING")
            result = operations.redrive(target, queue, lambda f, s: progress.update(task, completed=f, state=s))
    except TargetError as error:
        fail(str(error))
        raise typer.Exit(2) from None
    if output is Output.JSON:
        print_json(result)
    else:
        console.print(f"{queue.name}: {result['status']}, {result['moved']} message(s) moved")
    if result["status"] != "COMPLETED":
        raise typer.Exit(1)


def main() -> None:
    """The console script."""
    try:
        app()
    except TargetError as error:
        fail(str(error))
        sys.exit(2)
    except ApiError as error:
        fail(str(error))
        sys.exit(1)
