"""Lambda execution environments for the local stack: warm worker processes, one invocation at a time each.

Each function gets a pool of worker processes (``python -m local.worker``). A worker imports the
function's handler once, with the function's own environment variables and code directory, then
serves invocations one at a time, as a Lambda execution environment does. The pool runs up to the
function's concurrency at once (``ReservedConcurrentExecutions``, else ``DEFAULT_CONCURRENCY``).
Past it, as Lambda does over reserved concurrency, a synchronous invocation of a function with
reserved concurrency is throttled at once (``Throttled``: ``TooManyRequestsException``), while the
asynchronous and SQS invocations, which Lambda's own queues and pollers retry, wait for a free
worker (their messages kept in flight meanwhile, see ``local.delivery``). A synchronous invocation
of a function without reserved concurrency waits too: on AWS it would get its own environment
from the account's pool, which the local default only bounds. A worker that outlives the function's ``Timeout`` is
killed (``Task timed out``), one that dies is replaced (``Runtime.ExitError``); either way the
invocation fails and the stack goes on, as on AWS.

Parent and worker talk over a socket pair with ``multiprocessing.connection`` messages; the
worker's stdout and stderr (the handler's JSON logs) go to ``log``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import IO, Any

from local.worker import receive, send

DEFAULT_CONCURRENCY = 4
# CPU priority (nice) of the workers of functions that only queues, rules and timers invoke. On AWS every
# execution environment has its own CPU; here all share two or so cores, and a client waiting on the API
# should not wait for the event log's batch being written: the functions behind the API keep priority 0.
QUEUED_WORK_NICE = 10
INIT_TIMEOUT = 30.0  # Lambda allows 10 s of init; this machine is shared, so be generous
WAIT_BEAT = 1.0  # seconds between the ``waiting`` calls of an invocation waiting for a free worker


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker needs to become one execution environment of a function."""

    logical_id: str
    name: str
    arn: str
    memory: int
    timeout: int
    module_file: str
    handler_name: str
    code_dir: str
    variables: Mapping[str, str]
    nice: int = 0  # added to the worker's CPU priority (see QUEUED_WORK_NICE)


class InvocationError(Exception):
    """An invocation failed the way Lambda reports it: ``error_type`` and a message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class Throttled(InvocationError):
    """Every execution environment the function may have is busy: Lambda's 429 TooManyRequestsException."""

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate Exceeded.")
        self.reason = "ReservedFunctionConcurrentInvocationLimitExceeded"


class Worker:
    """One warm worker process of a function."""

    def __init__(self, spec: WorkerSpec, log: IO[bytes] | None) -> None:
        self.spec = spec
        parent, child = socket.socketpair()
        self._connection = Connection(os.dup(parent.fileno()))
        parent.close()
        environ = {**os.environ, **spec.variables}
        try:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, a module of this package
                [sys.executable, "-m", "local.worker", str(child.fileno())],
                pass_fds=(child.fileno(),),
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            child.close()
        if spec.nice:
            with contextlib.suppress(OSError):  # a lower priority only; where the system refuses, the default
                os.setpriority(os.PRIO_PROCESS, self.process.pid, os.getpriority(os.PRIO_PROCESS, 0) + spec.nice)
        send(self._connection, asdict(spec) | {"variables": dict(spec.variables)})
        reply = self._receive(INIT_TIMEOUT, "Runtime.InitTimeout")
        if reply.get("status") != "ready":
            self.kill()
            raise InvocationError(str(reply.get("errorType", "Runtime.InitError")), str(reply.get("errorMessage")))

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _receive(self, timeout: float, timeout_type: str) -> dict[str, Any]:
        try:
            ready = self._connection.poll(timeout)
            if ready:
                reply: dict[str, Any] = receive(self._connection)
                return reply
        except (EOFError, OSError):
            pass
        else:
            self.kill()
            raise InvocationError(timeout_type, f"Task timed out after {timeout:.2f} seconds")
        self.kill()
        code = self.process.returncode
        raise InvocationError("Runtime.ExitError", f"RequestId: worker exited with status {code}")

    def invoke(self, event: Any, request_id: str) -> Any:
        """Run one invocation; raise InvocationError for a handler error, a timeout or a crash."""
        send(self._connection, {"event": event, "request_id": request_id})
        reply = self._receive(self.spec.timeout, "Sandbox.Timedout")
        if "errorType" in reply:
            raise InvocationError(str(reply["errorType"]), str(reply.get("errorMessage", "")))
        return reply.get("result")

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        self._connection.close()


class WorkerPool:
    """Up to ``concurrency`` warm workers of one function, started on demand and kept warm."""

    def __init__(self, spec: WorkerSpec, concurrency: int, log: IO[bytes] | None) -> None:
        self.spec = spec
        self.concurrency = max(1, concurrency)
        self.log = log
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._idle: list[Worker] = []
        self._busy = 0
        self._lock = threading.Lock()
        self._closed = False

    @property
    def busy(self) -> int:
        return self._busy

    def invoke(
        self,
        event: Any,
        request_id: str,
        *,
        throttle: bool = False,
        waiting: Callable[[], None] | None = None,
    ) -> Any:
        """Invoke in a free worker. All busy: raise Throttled when ``throttle``, else wait for one,
        calling ``waiting`` every ``WAIT_BEAT`` seconds meanwhile."""
        if throttle:
            if not self._slots.acquire(blocking=False):
                raise Throttled
        else:
            while not self._slots.acquire(timeout=WAIT_BEAT):
                if waiting is not None:
                    waiting()
        try:
            return self._invoke(event, request_id)
        finally:
            self._slots.release()

    def _invoke(self, event: Any, request_id: str) -> Any:
        with self._lock:
            if self._closed:
                raise InvocationError("Runtime.Stopping", "the local stack is stopping")
            worker = self._idle.pop() if self._idle else None
            self._busy += 1
        try:
            if worker is None or not worker.alive:
                worker = Worker(self.spec, self.log)
            result = worker.invoke(event, request_id)
        except InvocationError:
            if worker is not None and worker.alive:
                self._keep(worker)  # a handler error leaves the environment warm, as in Lambda
            raise
        finally:
            with self._lock:
                self._busy -= 1
        self._keep(worker)
        return result

    def _keep(self, worker: Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def wait_idle(self, deadline: float) -> bool:
        """Wait until no invocation runs (or ``deadline``); True when idle."""
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._busy

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
