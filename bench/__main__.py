"""``python -m bench``: measure, then print every figure as a ratio to its baseline, with targets."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import append_cost, handler_cost, import_cost, local_load, search_cost
from bench.environment import RECEPTION_APP, RECEPTION_MODULE, apply_lambda_env, load_module
from bench.stubs import InstantEventBridge

RATIO_TARGET = 2.0
CALLS_TARGET = 10
IMPORT_RATIO_TARGET = 1.5
APPEND_RATIO_TARGET = 1.5
APPEND_BYTES_SLACK = 1.1  # bytes through the writer within 10 % of the batch
SEARCH_RATIO_TARGET = 1.5  # logs search -k at most 1.5 x the time of zcat | grep -F


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    met: bool


def mark(met: bool) -> str:
    return "✓" if met else "✗"


def measure_handler(verdicts: list[Verdict]) -> None:
    apply_lambda_env()
    reception = load_module(RECEPTION_APP, RECEPTION_MODULE)
    client = InstantEventBridge()
    handler_cost.install_stub(reception, client)
    baseline = handler_cost.baseline_handler(client, os.environ["EVENT_BUS_NAME"])
    batch = handler_cost.proxy_event({"events": handler_cost.sample_events(handler_cost.BATCH_SIZE)})
    single = handler_cost.proxy_event(handler_cost.sample_events(1)[0])

    print("1. Reception handler, warm, per event (EventBridge stubbed; best of repeats, median in brackets)")
    for label, event, count in (
        (f"{handler_cost.BATCH_SIZE}-event batch", batch, handler_cost.BATCH_SIZE),
        ("single event", single, 1),
    ):
        handler_cost.check_accepted(reception.lambda_handler, event, count)
        handler_cost.check_accepted(baseline, event, count)
        ours = handler_cost.time_per_event(reception.lambda_handler, event, count)
        base = handler_cost.time_per_event(baseline, event, count)
        ratio = ours.best / base.best
        met = ratio <= RATIO_TARGET
        verdicts.append(Verdict(f"handler ratio, {label}", met))
        print(
            f"   {label:<16} reception {ours.best * 1e6:9.1f} µs ({ours.median * 1e6:.1f})"
            f"   baseline {base.best * 1e6:7.1f} µs ({base.median * 1e6:.1f})"
            f"   ratio {ratio:6.2f}   target ≤ {RATIO_TARGET}  {mark(met)}"
        )
        print(f"   {'':<16} {ours.iterations} and {base.iterations} calls per repeat, {ours.repeats} repeats")

    calls, entries = handler_cost.put_events_calls(reception.lambda_handler, batch, client)
    met = calls == CALLS_TARGET
    verdicts.append(Verdict("PutEvents calls per 100-event batch", met))
    print()
    print(f"2. PutEvents calls for a {handler_cost.BATCH_SIZE}-event batch")
    print(
        f"   {calls} calls, {entries} entries, {entries / max(calls, 1):.1f} events per call"
        f"   (baseline {CALLS_TARGET} calls)   target = {CALLS_TARGET}  {mark(met)}"
    )


def measure_imports(verdicts: list[Verdict], runs: int) -> None:
    timings = import_cost.time_imports(runs)
    reception, boto3, boto3_client = timings["reception"], timings["boto3"], timings["boto3_client"]
    ratio = reception.best / boto3.best
    met = ratio <= IMPORT_RATIO_TARGET
    verdicts.append(Verdict("cold import ratio", met))
    print()
    print(f"3. Cold import, fresh interpreter, startup excluded (best of {runs}, median in brackets)")
    print(
        f"   functions/reception/app.py {reception.best * 1e3:7.1f} ms ({reception.median * 1e3:.1f})"
        f"   import boto3 {boto3.best * 1e3:6.1f} ms ({boto3.median * 1e3:.1f})"
        f"   ratio {ratio:5.2f}   target ≤ {IMPORT_RATIO_TARGET}  {mark(met)}"
    )
    print(
        f"   for reference: import boto3 + boto3.client('events') {boto3_client.best * 1e3:.1f} ms"
        f" ({boto3_client.median * 1e3:.1f})"
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
    parser.add_argument("--runs", type=int, default=import_cost.RUNS, help="fresh interpreters per cold import")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    print(
        f"Correlator bench · Python {platform.python_version()} · {platform.machine()}"
        f" · {os.cpu_count()} CPUs · {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    print()
    verdicts: list[Verdict] = []
    measure_handler(verdicts)
    measure_imports(verdicts, args.runs)
    measure_appends(verdicts)
    measure_search(verdicts)
    events = int(os.environ.get("BENCH_LOCAL_EVENTS", local_load.DEFAULT_EVENTS))
    if events > 0:  # BENCH_LOCAL_EVENTS=0 skips the local load (a few minutes)
        print()
        print(f"6. The local stack under load (python -m local, {events:,} events; BENCH_LOCAL_EVENTS)")
        verdicts += [Verdict(name, met) for name, met in local_load.report(local_load.measure(events))]
    missed = [verdict.name for verdict in verdicts if not verdict.met]
    print()
    print(
        f"{len(verdicts) - len(missed)}/{len(verdicts)} targets met"
        + (f" (missed: {', '.join(missed)})" if missed else "")
        + f" · {time.perf_counter() - started:.1f} s"
    )
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
