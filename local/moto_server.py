"""moto's server for the local stack: moto's WSGI application on waitress, with keep-alive connections.

moto's own ``ThreadedMotoServer`` runs the application on werkzeug's development server, which
closes the connection after every response (werkzeug sends ``Connection: close`` on purpose) and
starts a thread per connection. Every AWS call of every function then paid a new TCP connection
and a new thread in this process, and the one thread accepting connections became a queue under
load: a 100-event POST's ten concurrent PutEvents waited for it, and for the GIL, ten times over.

waitress keeps connections alive (botocore's connection pool reuses them, as it does against AWS),
reads each request whole on one I/O thread and runs the application on a fixed pool of threads
(``THREADS``): what runs at once is bounded, and the rest waits in waitress's queue, not for the
GIL. A long poll (an SQS ``ReceiveMessage`` with ``WaitTimeSeconds`` from a client of the stack)
holds a thread while it waits; the stack's own pollers call moto in-process (``local.direct_sqs``)
and hold none.

S3 keeps user metadata keys as written (``x-amz-meta-my_key``, lower case on the way back), where
waitress would change them both ways: it drops every request header whose name has an underscore
(WSGI cannot tell ``X_Foo`` from ``X-Foo``) and capitalises every response header name. The
request side keeps those headers the way moto's ``MotoRequestHandler`` does for werkzeug (an
underscored header never stands in for a dashed one; their spellings go to moto under
``moto.preserved_header_names``); the response side writes ``x-amz-meta-*`` names as moto gives them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, get_header_lines
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

# Requests served at once. Each runs Python under the one GIL, so more threads only share it more
# finely (24 threads: POST p99 250-420 ms under `make bench`'s load; 8: 226-257 ms; 4: 235-247 ms),
# while a long poll (SQS ReceiveMessage with WaitTimeSeconds) holds one while it waits.
THREADS = 8
CONNECTION_LIMIT = 2000  # every worker of every function keeps a pool of up to 10 connections
LOOP_SECONDS = 0.2  # how soon the I/O loop notices a stop
META_PREFIX = "x-amz-meta-"  # S3 user metadata: its keys keep their spelling, both ways

# waitress says where it serves and warns whenever requests queue for a thread: the queue is the
# design here (the stack's console reports what matters).
logging.getLogger("waitress").setLevel(logging.ERROR)


class _MetadataParser(HTTPRequestParser):
    """waitress's parser, keeping the underscored ``x-amz-meta-*`` headers that it drops, and not
    waiting for the body of an empty request that expects ``100 Continue``."""

    preserved: dict[str, str]

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if not self.chunked and not self.content_length:
            # No body to continue with: waitress would answer "100 Continue" and then wait for one
            # (botocore sends ``Expect: 100-continue`` with every S3 PutObject, empty ones too).
            self.expect_continue = False
        self.preserved = {}
        fields = [line.partition(b":") for line in get_header_lines(header_plus.partition(b"\r\n")[2])]
        names = [(raw_name.decode("latin-1"), raw_value) for raw_name, colon, raw_value in fields if colon]
        dashed = {environ_key_for_header(name) for name, _ in names if "_" not in name}
        values: dict[str, list[str]] = {}
        for name, raw_value in names:
            key = environ_key_for_header(name)
            if not should_preserve_original_header_name(name) or key in dashed:
                continue  # and never let an underscored header stand in for a dashed one
            self.preserved.setdefault(key, name)
            values.setdefault(key, []).append(raw_value.strip(b" \t").decode("latin-1"))
        for key, key_values in values.items():
            self.headers[key.removeprefix("HTTP_")] = ",".join(key_values)  # type: ignore[index]


class _Verbatim(str):
    """A header name that waitress writes as given: it capitalises every part of every other name."""

    __slots__ = ()

    def split(self, sep: str | None = None, maxsplit: int = -1) -> list[str]:  # type: ignore[override]
        return [_Verbatim(part) for part in str.split(self, sep, maxsplit)]

    def capitalize(self) -> str:
        return self


class _Task(WSGITask):
    def build_response_header(self) -> bytes:
        self.response_headers = [
            (_Verbatim(name) if name.lower().startswith(META_PREFIX) else name, value)
            for name, value in self.response_headers
        ]
        return super().build_response_header()

    def get_environment(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environment()
        preserved = getattr(self.request, "preserved", None)
        if preserved:
            environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = dict(preserved)
        return environ


class _Channel(HTTPChannel):
    parser_class = _MetadataParser
    task_class = _Task


class _Server(TcpWSGIServer):
    channel_class = _Channel


class MotoServer:
    """moto's server application on ``host:port``, served by waitress until ``stop``."""

    def __init__(self, host: str, port: int, threads: int = THREADS) -> None:
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=threads,
            connection_limit=CONNECTION_LIMIT,
            asyncore_use_poll=True,  # no select() limit on file descriptors
            ident="moto",
        )
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(threads)
        self._map: dict[int, Any] = {}
        self._server = _Server(
            DomainDispatcherApplication(create_backend_app), map=self._map, dispatcher=dispatcher, adj=adjustments
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="moto-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=LOOP_SECONDS, use_poll=True, map=self._map, count=1)
        finally:
            wasyncore.close_all(self._map)  # in the loop's own thread: no socket closed under a poll

    def stop(self) -> None:
        """Stop serving: requests under way finish (up to a few seconds), then every connection closes."""
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
