"""``python -m local.worker FD``: one Lambda execution environment of the local stack (see local.workers).

Reads the function's spec from the connection on file descriptor FD, imports the handler (the
init phase), answers ``ready``, then runs one invocation per message until the connection closes.
The process already has the function's environment variables; the handler's directory comes first
on ``sys.path``, as Lambda's task root does.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass(slots=True)
class LambdaContext:
    """What the Lambda runtime passes as ``context``."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def send(connection: Connection, message: Any) -> None:
    """Send ``message`` as JSON, as Lambda passes events and results (TypeError if it is not JSON)."""
    connection.send_bytes(json.dumps(message, separators=(",", ":")).encode())


def receive(connection: Connection) -> Any:
    return json.loads(connection.recv_bytes())


def _error(error: BaseException) -> dict[str, str]:
    traceback.print_exception(error, file=sys.stderr)
    sys.stderr.flush()
    return {"errorType": type(error).__name__, "errorMessage": str(error)}


def _load(spec: dict[str, Any]) -> Callable[[Any, Any], Any]:
    sys.path.insert(0, spec["code_dir"])
    module_spec = importlib.util.spec_from_file_location(f"_correlator_{spec['logical_id']}", spec["module_file"])
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {spec['module_file']}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    handler = getattr(module, spec["handler_name"], None)
    if not callable(handler):
        raise AttributeError(f"{spec['module_file']} has no function {spec['handler_name']}")
    return handler  # type: ignore[no-any-return]


def serve(connection: Connection) -> None:
    spec: dict[str, Any] = receive(connection)
    try:
        handler = _load(spec)
    except BaseException as error:  # reported to the parent like Lambda's init error
        send(connection, {"status": "error", **_error(error), "errorType": "Runtime.ImportModuleError"})
        return
    send(connection, {"status": "ready"})
    while True:
        try:
            request: dict[str, Any] = receive(connection)
        except EOFError:
            return
        context = LambdaContext(
            function_name=spec["name"],
            invoked_function_arn=spec["arn"],
            memory_limit_in_mb=spec["memory"],
            aws_request_id=request["request_id"],
            log_group_name=spec["variables"].get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=f"local/{spec['name']}",
            deadline=time.monotonic() + spec["timeout"],
        )
        try:
            reply: dict[str, Any] = {"result": handler(request["event"], context)}
        except Exception as error:  # an unhandled function error, as Lambda reports it
            reply = _error(error)
        sys.stdout.flush()
        try:
            send(connection, reply)
        except (TypeError, ValueError) as error:  # a result that is not JSON: Lambda's Runtime.MarshalError
            send(connection, {**_error(error), "errorType": "Runtime.MarshalError"})


def main() -> None:
    # Ctrl-C reaches the whole process group: the stack stops its workers itself, after draining them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
