"""``python -m bench``: measure, then print every figure as a ratio to its baseline, with targets."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import (
    append_cost,
    cold_start,
    cost_model,
    handler_cost,
    import_cost,
    latency,
    local_load,
    results,
    search_cost,
)
from bench.environment import RECEPTION_APP, RECEPTION_MODULE, apply_lambda_env, load_module
from bench.stubs import InstantEventBridge

BATCH_RATIO_TARGET = 3.0  # per event, against a bare parse-and-put handler
SINGLE_RATIO_TARGET = 10.0
CALLS_TARGET = 10
COLD_START_TARGETS = {"ReceptionFunction": 1.3}  # the others are reported
APPEND_RATIO_TARGET = 1.5
APPEND_BYTES_SLACK = 1.1  # bytes through the writer within 10 % of the batch
SEARCH_RATIO_TARGET = 1.5  # logs search -k at most 1.5 x the time of zcat | grep -F
LATENCY_RATIO_TARGET = 1.2  # a 100-event request within 1.2x one PutEvents round trip + handler work


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    met: bool


def mark(met: bool) -> str:
    return "✓" if met else "✗"


def measure_handler(verdicts: list[Verdict]) -> dict[str, handler_cost.Timing]:
    apply_lambda_env()
    reception = load_module(RECEPTION_APP, RECEPTION_MODULE)
    client = InstantEventBridge()
    handler_cost.install_stub(reception, client)
    baseline = handler_cost.baseline_handler(client, os.environ["EVENT_BUS_NAME"])
    batch = handler_cost.proxy_event({"events": handler_cost.sample_events(handler_cost.BATCH_SIZE)})
    single = handler_cost.proxy_event(handler_cost.sample_events(1)[0])

    measured: dict[str, handler_cost.Timing] = {}
    print("1. Reception handler, warm, per event (EventBridge stubbed; process CPU time, wall clock after it;")
    print("   best of interleaved repeats, median in brackets)")
    for label, event, count, target in (
        (f"{handler_cost.BATCH_SIZE}-event batch", batch, handler_cost.BATCH_SIZE, BATCH_RATIO_TARGET),
        ("single event", single, 1, SINGLE_RATIO_TARGET),
    ):
        handler_cost.check_accepted(reception.lambda_handler, event, count)
        handler_cost.check_accepted(baseline, event, count)
        timings = handler_cost.compare_per_event({"ours": reception.lambda_handler, "base": baseline}, event, count)
        ours, base = timings["ours"], timings["base"]
        measured[label] = ours
        results.record("handler", label, {"reception": ours, "baseline": base})
        ratio = ours.cpu_best / base.cpu_best
        met = ratio <= target
        verdicts.append(Verdict(f"handler CPU ratio, {label}", met))
        print(
            f"   {label:<16} reception CPU {ours.cpu_best * 1e6:7.1f} µs ({ours.cpu_median * 1e6:.1f})"
            f"   baseline CPU {base.cpu_best * 1e6:6.1f} µs ({base.cpu_median * 1e6:.1f})"
            f"   ratio {ratio:6.2f}   target ≤ {target}  {mark(met)}"
        )
        print(
            f"   {'':<16} wall          {ours.best * 1e6:7.1f} µs ({ours.median * 1e6:.1f})"
            f"   wall         {base.best * 1e6:6.1f} µs ({base.median * 1e6:.1f})"
            f"   ratio {ours.best / base.best:6.2f}   ({ours.iterations} and {base.iterations} calls per repeat)"
        )

    calls, entries = handler_cost.put_events_calls(reception.lambda_handler, batch, client)
    met = calls == CALLS_TARGET
    verdicts.append(Verdict("PutEvents calls per 100-event batch", met))
    print()
    print(f"2. PutEvents calls for a {handler_cost.BATCH_SIZE}-event batch")
    print(
        f"   {calls} calls, {entries} entries, {entries / max(calls, 1):.1f} events per call"
        f"   (baseline {CALLS_TARGET} calls)   target = {CALLS_TARGET}  {mark(met)}"
    )
    return measured


def measure_latency(verdicts: list[Verdict], delay: float) -> tuple[latency.WriterLatency, latency.WriterLatency]:
    apply_lambda_env()
    reception = load_module(RECEPTION_APP, RECEPTION_MODULE)
    figure = latency.reception_latency(reception, delay)
    met = figure.ratio <= LATENCY_RATIO_TARGET
    verdicts.append(Verdict("100-event request / (one PutEvents round trip + handler work)", met))
    print()
    print(f"7. Latency model: every PutEvents and S3 call takes {delay * 1e3:.0f} ms (medians of interleaved runs)")
    print(
        f"   reception, {handler_cost.BATCH_SIZE} events in {figure.calls} calls:"
        f" {figure.concurrent * 1e3:6.1f} ms (CPU {figure.cpu * 1e3:.1f} ms)"
        f"   ideal {figure.ideal * 1e3:.1f} ms = round trip {delay * 1e3:.0f} + handler {figure.instant * 1e3:.1f}"
        f"   ratio {figure.ratio:5.2f}   target ≤ {LATENCY_RATIO_TARGET}  {mark(met)}"
    )
    print(f"   for reference, the calls one after another: {figure.sequential * 1e3:.1f} ms")
    writer = latency.writer_latency(delay)
    print(
        f"   log writer, {writer.lines:,}-record batch: {writer.delayed * 1e3:6.1f} ms (CPU {writer.cpu * 1e3:.1f} ms)"
        f"   instant S3 {writer.instant * 1e3:.1f} ms   {writer.requests} S3 requests,"
        f" one after another ({', '.join(writer.operations)}); measured extra wait {writer.waited * 1e3:.0f} ms"
    )
    staged = latency.writer_latency(delay, staged=True)
    print(
        f"   log writer, one staged object of {staged.lines:,} records (EventLogDelivery=Firehose):"
        f" {staged.delayed * 1e3:6.1f} ms (CPU {staged.cpu * 1e3:.1f} ms)   {staged.requests} S3 requests"
        f" ({', '.join(staged.operations)})"
    )
    results.record("latency", "reception", figure)
    results.record("latency", "log_writer", writer)
    results.record("latency", "log_writer_staged", staged)
    return writer, staged


def measure_cost(
    handler: dict[str, handler_cost.Timing],
    writer: latency.WriterLatency,
    staged: latency.WriterLatency,
    delay: float,
) -> None:
    single, batch = handler["single event"], handler[f"{handler_cost.BATCH_SIZE}-event batch"]
    measured = cost_model.Measured(
        reception_cpu_single=single.cpu_median,
        reception_cpu_per_event=batch.cpu_median,
        delay=delay,
        writer_cpu_per_batch=writer.cpu,
        writer_round_trips=writer.round_trips,
        writer_lines=writer.lines,
        writer_s3_operations=writer.operations,
        staged_cpu=staged.cpu,
        staged_round_trips=staged.round_trips,
        staged_records=staged.lines,
        staged_s3_operations=staged.operations,
        record_bytes=len(latency.sqs_log_batch(1)["Records"][0]["body"].encode()),
    )
    settings = cost_model.Settings.of()
    rows = cost_model.cost_table(measured, settings)
    results.record("cost", "measured", measured)
    results.record("cost", "settings", settings)
    results.record("cost", "usd_per_million_events", cost_model.as_records(rows))
    print()
    print(
        f"8. Cost per million events (us-east-1 list prices; measured CPU medians stretched to each function's"
        f" memory, {delay * 1e3:.0f} ms round trips;"
    )
    print(
        f"   reception {settings.memory_mb['ReceptionFunction']} MB, log writer"
        f" {settings.memory_mb['LogWriterFunction']} MB in batches of {settings.log_batch_size},"
        f" notification rule = an email for {cost_model.NOTIFIED_SHARE:.0%} of events)"
    )
    names = list(rows[0].parts)
    print(
        f"   {'events/req':>10} {'API':>5} {'notify':>6} {'log via':>8} {'billed':>7}"
        + "".join(f" {name:>12}" for name in names)
        + f" {'total':>8}"
    )
    for row in rows:
        print(
            f"   {row.events_per_request:>10} {row.front_door:>5} {'yes' if row.notification else 'no':>6}"
            f" {row.log_path:>8} {row.reception_billed_ms:5.0f}ms"
            + "".join(f" {row.parts[name]:12.3f}" for name in names)
            + f" {row.total:8.3f}"
        )
    print(
        f"   (log via Firehose = EventLogDelivery=Firehose, buffering {settings.log_buffer_seconds} s / "
        f"{settings.log_buffer_mb} MiB: {cost_model.events_per_staged_object(measured, settings):,.0f} records of"
        f" {measured.record_bytes:,} bytes per staged object at the {settings.events_per_second:,.0f} events/s"
        f" that fill the log queue's batches; both paths include the append ledger's DynamoDB writes)"
    )
    light = cost_model.firehose_at_low_rates(measured, settings)
    results.record("cost", "firehose_log_usd_per_million_at_events_per_second", light)
    print(
        "   the Firehose log path at lighter loads (fewer records per object): "
        + ", ".join(f"{rate:g} events/s ${usd:.2f}" for rate, usd in light.items())
        + f" per million logged events (the queue: ${rows[0].parts['event log']:.2f} at any load)"
    )
    sizing = cost_model.power_tuning(measured)
    results.record("cost", "power_tuning", sizing)
    print()
    print("9. Memory sizing (power tuning): billed ms and $ per million invocations of each typical invocation")
    print(
        f"   {'function':<20} {'invocation':<22}" + "".join(f" {size:>5} MB      " for size in cost_model.MEMORY_SIZES)
    )
    for index in range(0, len(sizing), len(cost_model.MEMORY_SIZES)):
        sizes = sizing[index : index + len(cost_model.MEMORY_SIZES)]
        invocation = sizes[0].invocation
        print(
            f"   {invocation.function:<20} {invocation.label:<22}"
            + "".join(f" {cell.billed_ms:5.0f} ms ${cell.usd_per_million:5.2f}" for cell in sizes)
        )


def measure_imports(verdicts: list[Verdict], runs: int) -> None:
    print()
    print(f"3. Cold start of every function, whole fresh process, {runs} pairs, against its floor: import boto3 +")
    print("   the clients the function creates, run back to back; CPU and wall time best of the runs, CPU median in")
    print("   brackets; ratio = median of the pairs' CPU ratios")
    print(f"   {'function':<22} {'CPU':>15} {'floor':>15} {'ratio':>6}   {'wall':>7} {'floor':>7}   clients")
    for function in cold_start.functions():
        figure = cold_start.measure(function, runs)
        results.record("cold_start", function.logical_id, figure)
        target = COLD_START_TARGETS.get(function.logical_id)
        verdict = ""
        if target is not None:
            met = figure.ratio <= target
            verdicts.append(Verdict(f"cold start ratio, {function.logical_id}", met))
            verdict = f"   target ≤ {target}  {mark(met)}"
        print(
            f"   {function.logical_id:<22} {figure.cpu * 1e3:4.0f} ms ({figure.cpu_median * 1e3:4.0f})"
            f" {figure.floor_cpu * 1e3:4.0f} ms ({figure.floor_cpu_median * 1e3:4.0f})"
            f" {figure.ratio:6.2f}   {figure.wall * 1e3:4.0f} ms {figure.floor_wall * 1e3:4.0f} ms"
            f"   {', '.join(figure.clients)}{verdict}"
        )
    loaded = import_cost.notification_modules_loaded()
    met = not loaded
    verdicts.append(Verdict("reception loads no Mako/Twilio", met))
    print(
        f"   notification-only modules loaded by the reception import: {', '.join(loaded) or 'none'}"
        f"   (Mako, Twilio)   target = none  {mark(met)}"
    )
    seconds, files = import_cost.compile_cost()
    print(
        f"   without .pyc files (layer built --no-compile, /opt read-only on Lambda): +{seconds * 1e3:.1f} ms"
        f" to compile {files} non-stdlib modules from source"
    )
    print("   top 10 by cumulative time in -X importtime (inflated by the instrumentation; depth = nesting):")
    print(f"   {'cumulative':>12} {'self':>9}  depth  module")
    for module in import_cost.top_imports(10):
        print(
            f"   {module.cumulative_seconds * 1e3:9.1f} ms {module.self_seconds * 1e3:6.1f} ms"
            f"  {module.depth:>5}  {module.name}"
        )


def measure_appends(verdicts: list[Verdict]) -> None:
    costs = append_cost.measure()
    batch = append_cost.batch_bytes()
    empty, copy_path, large = costs["empty"], costs["8 MB"], costs["40 MB"]
    print()
    print(
        f"4. Event-log append of a {append_cost.BATCH_LINES:,}-line batch ({batch:,} bytes), moto server in a child"
        f" process (best of {append_cost.REPEATS}, median in brackets)"
    )
    for label, cost in costs.items():
        through = cost.bytes_sent + cost.bytes_received
        met = through <= batch * APPEND_BYTES_SLACK
        verdicts.append(Verdict(f"append bytes, {label} log", met))
        print(
            f"   onto {label:<6} log  wall {cost.seconds * 1e3:7.1f} ms ({cost.median * 1e3:.1f})"
            f"   writer CPU {cost.cpu_seconds * 1e3:6.1f} ms"
            f"   bytes sent {cost.bytes_sent:,}  received {cost.bytes_received:,}   target ≈ batch  {mark(met)}"
        )
    ratio = large.seconds / empty.seconds
    met = ratio <= APPEND_RATIO_TARGET
    verdicts.append(Verdict("append wall-time ratio, 40 MB / empty", met))
    print(f"   wall-time ratio 40 MB / empty {ratio:6.2f}   target ≤ {APPEND_RATIO_TARGET}  {mark(met)}")
    print("   (wall time includes moto copying and hashing the 40 MB object in Python: S3's server-side work)")
    cpu_ratio = large.cpu_seconds / empty.cpu_seconds
    met = cpu_ratio <= APPEND_RATIO_TARGET
    verdicts.append(Verdict("append writer-CPU ratio, 40 MB / empty", met))
    print(f"   writer-CPU ratio 40 MB / empty {cpu_ratio:5.2f}   target ≤ {APPEND_RATIO_TARGET}  {mark(met)}")
    same_path = large.cpu_seconds / copy_path.cpu_seconds
    met = same_path <= APPEND_RATIO_TARGET
    verdicts.append(Verdict("append writer-CPU ratio, 40 MB / 8 MB (same requests)", met))
    print(
        f"   writer-CPU ratio 40 MB / 8 MB {same_path:5.2f}   target ≤ {APPEND_RATIO_TARGET}  {mark(met)}"
        "   (the copy path costs requests, not bytes)"
    )


def measure_search(verdicts: list[Verdict]) -> None:
    compressed, total, costs = search_cost.measure()
    baseline = costs["zcat | grep -F request key"]
    print()
    print(
        f"5. logs search over {search_cost.FILES} generated gzip archives, {total / 1e6:.0f} MB"
        f" ({compressed / 1e6:.0f} MB gzip), read from disk (best of {search_cost.REPEATS})"
    )
    for label, cost in costs.items():
        print(f"   {label:<30} {cost.seconds:6.2f} s   {total / 1e6 / cost.seconds:6.0f} MB/s   {cost.matches} lines")
    key = costs["logs search -k (request key)"]
    ratio = key.seconds / baseline.seconds
    met = ratio <= SEARCH_RATIO_TARGET and key.matches == baseline.matches
    verdicts.append(Verdict("logs search -k time / zcat | grep", met))
    print(
        f"   ratio logs search -k / zcat | grep {ratio:5.2f}   same lines found: {key.matches == baseline.matches}"
        f"   target ≤ {SEARCH_RATIO_TARGET}  {mark(met)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--runs", type=int, default=cold_start.RUNS, help="pairs of fresh processes per cold start")
    parser.add_argument(
        "--delay", type=float, default=latency.DEFAULT_DELAY, help="seconds per PutEvents/S3 call in the latency model"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    print(
        f"Correlator bench · Python {platform.python_version()} · {platform.machine()}"
        f" · {os.cpu_count()} CPUs · {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    print()
    verdicts: list[Verdict] = []
    handler = measure_handler(verdicts)
    measure_imports(verdicts, args.runs)
    measure_appends(verdicts)
    measure_search(verdicts)
    events = int(os.environ.get("BENCH_LOCAL_EVENTS", local_load.DEFAULT_EVENTS))
    if events > 0:  # BENCH_LOCAL_EVENTS=0 skips the local load (a few minutes)
        print()
        print(f"6. The local stack under load (python -m local, {events:,} events; BENCH_LOCAL_EVENTS)")
        verdicts += [Verdict(name, met) for name, met in local_load.report(local_load.measure(events))]
    writer, staged = measure_latency(verdicts, args.delay)
    measure_cost(handler, writer, staged, args.delay)
    missed = [verdict.name for verdict in verdicts if not verdict.met]
    print()
    print(
        f"{len(verdicts) - len(missed)}/{len(verdicts)} targets met"
        + (f" (missed: {', '.join(missed)})" if missed else "")
        + f" · {time.perf_counter() - started:.1f} s"
    )
    print(f"figures written to {results.write({verdict.name: verdict.met for verdict in verdicts})}")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
