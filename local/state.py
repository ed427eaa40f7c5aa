"""What survives a restart of the local stack: moto's state, saved in the state directory.

moto 5.2 keeps everything in memory and has no persistence of its own (its recorder replays
requests, which would deliver every event again). The stack therefore pickles moto's backends
(EventBridge buses, rules and archives; SQS queues and their messages; S3 buckets and objects;
DynamoDB tables and items, so idempotency records too; SES, Secrets Manager, Scheduler) to
``<state dir>/moto.pickle``: on a clean stop, after the deliveries under way have finished, and
every ``interval`` seconds while requests come in (or ten times as long as a save takes, if more:
requests wait during a save), so a SIGKILL loses at most that much.

A save is consistent: moto's requests are held at a gate while it runs (a long poll waiting for
messages does not hold the gate). The snapshot is written to a temporary file and renamed. An
autosave forks: requests wait only while the process is copied (milliseconds, not the time to
pickle a state that grows with the event log and the archive); the copy writes the file.

On start the snapshot replaces the backends that provisioning made, when it was made from the
same template, stack name and parameters (its ``fingerprint``); otherwise it is moved aside and the
stack starts fresh, saying so. Messages that were in flight come back visible (their consumer is
gone), so a delivery cut short by a SIGKILL runs again (at least once, as SQS promises).
SSM parameters are not kept (moto's SSM backend cannot be pickled); the template's are re-created.
The runner's own state that must outlive a restart (the usage plans' quota counts) is saved in the
same snapshot (``extras``: objects with ``snapshot()`` and ``restore(saved)``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import pickle
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol

log = logging.getLogger("local.state")

SERVICES = ("events", "sqs", "s3", "dynamodb", "ses", "sesv2", "secretsmanager", "scheduler")
FILE_NAME = "moto.pickle"
FORMAT = 1
COPY_TIMEOUT = 120.0  # a forked copy writing the state (an autosave) longer than this is given up


class Extra(Protocol):
    """Runner state kept in the snapshot next to moto's."""

    def snapshot(self) -> Any: ...

    def restore(self, saved: Any) -> None: ...


class Gate:
    """Many moto requests at once, or one save alone (a waiting save holds new requests back)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._saving = False
        self._inside = threading.local()
        self.requests = 0  # requests since the last save
        self.served = 0  # requests since the start

    def enter(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._saving)
            self._active += 1
            self.requests += 1
            self.served += 1
        self._inside.value = True

    def leave(self) -> None:
        """Leave the gate (nothing to do when this thread is not inside: moto used in-process, in tests)."""
        if not getattr(self._inside, "value", False):
            return
        self._inside.value = False
        with self._condition:
            self._active -= 1
            self._condition.notify_all()

    @property
    def inside(self) -> bool:
        return bool(getattr(self._inside, "value", False))

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._saving)
            self._saving = True
            self._condition.wait_for(lambda: self._active == 0)
            self.requests = 0
        try:
            yield
        finally:
            with self._condition:
                self._saving = False
                self._condition.notify_all()


GATE = Gate()
_installed = False


def install_gate() -> None:
    """Hold every request of moto's server at GATE (idempotent)."""
    global _installed
    if _installed:
        return
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    @functools.wraps(original)
    def call(self: Any, environ: Any, start_response: Any) -> Any:
        with GATE.request():
            return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]
    _installed = True


_LOCKS: dict[type, Any] = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


class _Pickler(pickle.Pickler):
    """Locks and conditions are saved as new, unlocked ones."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _LOCKS:
            return _LOCKS[kind], ()
        if kind in (threading.Condition, threading.Event):
            return kind, ()
        return NotImplemented


def fingerprint(template: Path, environ: Mapping[str, str], stack_name: str) -> str:
    """What the saved state was made from: the template, the stack name and the CORRELATOR_PARAM_* values."""
    digest = hashlib.sha256(template.read_bytes())
    digest.update(stack_name.encode())
    for name in sorted(name for name in environ if name.startswith("CORRELATOR_PARAM_")):
        digest.update(f"\0{name}={environ[name]}".encode())
    return digest.hexdigest()


def _backends() -> dict[str, Any]:
    from moto.backends import get_backend

    return {service: get_backend(service) for service in SERVICES}  # type: ignore[call-overload]


class StateStore:
    """Saves moto's backends to ``directory`` and restores them from there."""

    def __init__(
        self, directory: Path, fingerprint: str, interval: float, extras: Mapping[str, Extra] | None = None
    ) -> None:
        self.path = directory / FILE_NAME
        self.extras = dict(extras or {})
        self.fingerprint = fingerprint
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    def restore(self) -> bool:
        """Replace moto's backends by the saved ones; False when there is nothing (usable) to restore."""
        if not self.path.is_file():
            return False
        try:
            with self.path.open("rb") as file:
                saved = pickle.load(file)  # noqa: S301 - our own file, written by save()
        except Exception as error:  # a damaged file: keep it for inspection, start fresh
            self._set_aside(f"it could not be read ({error})")
            return False
        if saved.get("format") != FORMAT or saved.get("fingerprint") != self.fingerprint:
            self._set_aside("the template, stack name or parameters changed since it was saved")
            return False
        backends = _backends()
        for service, accounts in saved["backends"].items():
            for account, regions in accounts.items():
                for region, backend in regions.items():
                    backends[service][account][region] = backend
        _requeue_in_flight(saved["backends"].get("sqs", {}))
        for name, extra in self.extras.items():
            if name in saved.get("extras", {}):
                extra.restore(saved["extras"][name])
        log.info("state restored from %s (saved %s)", self.path, time.strftime("%H:%M:%S", time.localtime(saved["at"])))
        return True

    def _set_aside(self, reason: str) -> None:
        aside = self.path.with_name(f"{FILE_NAME}.{time.strftime('%Y%m%d-%H%M%S')}.old")
        self.path.rename(aside)
        log.warning("starting fresh: the saved state was moved to %s because %s", aside, reason)

    def save(self, *, background: bool = False) -> None:
        """Write a consistent snapshot of moto's state (requests wait while it is taken).

        ``background``: the snapshot is a forked copy of this process, taken while requests wait
        (milliseconds); the copy pickles and writes it while this process goes on serving.
        """
        with self._save_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            backends = _backends()
            if background and hasattr(os, "fork"):
                with GATE.alone(), warnings.catch_warnings():
                    extras = {name: extra.snapshot() for name, extra in self.extras.items()}
                    warnings.simplefilter("ignore", DeprecationWarning)  # only this thread runs in the copy
                    child = os.fork()
                    if child == 0:
                        self._write_in_copy(backends, extras)
                self._wait_for_copy(child)
                return
            with GATE.alone():
                buffer = io.BytesIO()
                self._dump(buffer, backends, {name: extra.snapshot() for name, extra in self.extras.items()})
            self._write(buffer.getbuffer())

    @staticmethod
    def _wait_for_copy(child: int) -> None:
        deadline = time.monotonic() + COPY_TIMEOUT
        while True:
            done, status = os.waitpid(child, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    raise RuntimeError(f"the forked copy could not write the state (exit status {status})")
                return
            if time.monotonic() > deadline:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                raise RuntimeError(f"the forked copy did not write the state within {COPY_TIMEOUT:.0f} s")
            time.sleep(0.02)

    def _dump(self, file: Any, backends: Mapping[str, Any], extras: Mapping[str, Any]) -> None:
        data = {
            service: {account: dict(regions) for account, regions in backend.items()}
            for service, backend in backends.items()
        }
        _Pickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump(
            {"format": FORMAT, "fingerprint": self.fingerprint, "at": time.time(), "backends": data, "extras": extras}
        )

    def _write(self, data: Any) -> None:
        temporary = self.path.with_name(f"{FILE_NAME}.tmp")
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.path)

    def _write_in_copy(self, backends: Mapping[str, Any], extras: Mapping[str, Any]) -> NoReturn:
        """In the forked copy: pickle, write, exit (no logging, no other thread: they are not in the copy)."""
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack handles Ctrl-C; this copy just finishes
            buffer = io.BytesIO()
            self._dump(buffer, backends, extras)
            self._write(buffer.getbuffer())
            code = 0
        except BaseException as error:
            os.write(2, f"local.state: saving failed: {error!r}\n".encode())
        finally:
            os._exit(code)

    def start(self) -> None:
        """Save every ``interval`` seconds while requests come in."""
        self._thread = threading.Thread(target=self._autosave, name="state-autosave", daemon=True)
        self._thread.start()

    def _autosave(self) -> None:
        # A save costs a core while the copy pickles: never more than a tenth of the time, however large the state.
        pause = self.interval
        while not self._stop.wait(pause):
            if not GATE.requests:
                continue
            started = time.monotonic()
            try:
                self.save(background=True)
            except Exception:
                log.exception("saving the state failed; trying again in %.0f s", self.interval)
            pause = max(self.interval, 10 * (time.monotonic() - started))

    def stop(self) -> None:
        """Stop saving periodically, then save once more (call once deliveries are drained)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.save()
        log.info("state saved to %s", self.path)


def _requeue_in_flight(accounts: Mapping[str, Mapping[str, Any]]) -> None:
    """Make every message that was being processed visible again: its consumer did not survive."""
    from local.moto_throughput import MessageStore

    for regions in accounts.values():
        for backend in regions.values():
            for queue in backend.queues.values():
                for message in list(queue._messages):
                    message.visible_at = 0.0
                queue.pending_messages.clear()
                if isinstance(queue._messages, MessageStore):
                    queue._messages = MessageStore(list(queue._messages))
