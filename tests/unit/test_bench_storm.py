"""``python -m bench.storm``'s accounting of the event log: exact counts pass, every miscount is named."""

from __future__ import annotations

from bench.storm import Accounting

GROUP = "system_id=storm-r1"


def line(key: str | None, external: bool, type_: str, object_: str | None = None, info: str | None = None) -> str:
    def quoted(value: str | None) -> str:
        return "null" if value is None else '"' + value.replace('"', '""') + '"'

    fields = [key, "true" if external else "false", None, None, type_, object_, info]
    return "2026-11-23T10:00:00Z,[INFO ]," + ",".join(map(quoted, fields))


def storm_log(events: int, delivered: int) -> list[str]:
    lines = []
    for number in range(events):
        key = f"storm_r1_{number:06d}"
        lines.append(line(key, True, "storm.error.r1", key))
        lines.append(line(key, False, "relay" if number < delivered else "policy.throttled", "storm-r1", "digest"))
    lines += [line("digest_key", False, "policy.flushed", GROUP, str(events - delivered))]
    lines += [line("digest_key", False, "relay", "http://127.0.0.1:1/storm", "200")]
    return lines


KEYS = frozenset(f"storm_r1_{number:06d}" for number in range(20))


def test_an_exact_storm_has_no_problems() -> None:
    accounting = Accounting.of(storm_log(20, 5), KEYS, GROUP)
    assert accounting.complete
    assert accounting.outcomes == {"relay": 5, "policy.throttled": 15}
    assert (accounting.flushed, accounting.digest_deliveries) == ([15], 1)
    assert accounting.problems(received=6, windows=1) == []


def test_every_miscount_is_named() -> None:
    log = storm_log(20, 5)
    log.remove(line("storm_r1_000019", False, "policy.throttled", "storm-r1", "digest"))  # one event undecided
    log.append(line("storm_r1_000003", False, "relay", "storm-r1", "200"))  # one delivered twice
    log.append(line("storm_r1_000004", True, "storm.error.r1", "storm_r1_000004"))  # one logged twice
    accounting = Accounting.of(log, KEYS, GROUP)

    assert not accounting.complete
    assert accounting.problems(received=7, windows=1) == [
        "1 events logged twice",
        "1 events without a decision",
        "1 events decided twice",
        "digests count 15, 14 were digested",
        "receiver got 7 POSTs, 4 + 1 sent",
    ]


def test_more_deliveries_than_the_windows_allow_is_a_problem() -> None:
    accounting = Accounting.of(storm_log(20, 6), KEYS, GROUP)
    assert "6 delivered now > 5 x 1 windows" in accounting.problems(received=7, windows=1)
    assert accounting.problems(received=7, windows=2) == []
