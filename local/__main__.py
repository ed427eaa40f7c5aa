"""``python -m local``: the whole Correlator stack on this machine, moto as the embedded AWS.

Environment: CORRELATOR_PORT (3000), CORRELATOR_MOTO_PORT (5000), CORRELATOR_API_KEY
(local-dev-key), CORRELATOR_ADMIN_KEY (local-admin-key), CORRELATOR_TEMPLATE (template.yaml),
CORRELATOR_STACK_NAME (correlator), CORRELATOR_PARAM_<Name> (template parameters).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import IO, Any

import boto3
from botocore.config import Config

from local import fast_batch_write, fast_put_events, lines, moto_compat, priority, state
from local.api import ApiHttpServer, Gateway, Router, routes_of
from local.async_events import AsyncEvents
from local.collector import Collector
from local.console import banner
from local.delivery import Delivery
from local.direct_sqs import DirectSqs
from local.functions import FUNCTION_TYPE, LocalFunction
from local.http_api import HttpApiGateway, http_api_banner, http_routes_of
from local.jwt_issuer import LocalIssuer
from local.moto_server import MotoServer
from local.resources import Provisioner
from local.scheduler import LocalScheduler, delete_moto_schedule, moto_scheduled_rules, moto_schedules
from local.settings import (
    RELAY_HOSTS_VARIABLE,
    Settings,
    SettingsError,
    apply_process_environment,
    check_free,
    relay_allowed_hosts,
    template_environment,
)
from local.template import Template
from local.throttle import Limiter

log = logging.getLogger("local")
MAX_CONNECTIONS = 100
SWITCH_INTERVAL_SECONDS = 0.0005
SERVICES = ("events", "sqs", "s3", "dynamodb", "ssm", "sesv2", "secretsmanager", "scheduler", "firehose")


class Clients(Mapping[str, Any]):
    """boto3 clients of the embedded AWS, created on first use (boto3 clients are thread-safe)."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getitem__(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                config = Config(
                    retries={"mode": "standard", "max_attempts": 3},
                    connect_timeout=3,
                    read_timeout=30,
                    max_pool_connections=MAX_CONNECTIONS,  # every poller thread at once: no "pool is full"
                )
                self._clients[service] = boto3.client(service, config=config)
            return self._clients[service]

    def __iter__(self) -> Iterator[str]:
        return iter(SERVICES)

    def __len__(self) -> int:
        return len(SERVICES)


class Stack:
    """The running pieces: moto's server, the resources, the pollers and the HTTP API."""

    def __init__(self, settings: Settings, handler_log: IO[bytes] | None = None, *, fresh: bool = False) -> None:
        self.settings = settings
        self.handler_log = handler_log  # where the handlers' output goes (None: this process's stdout/stderr)
        self.fresh = fresh  # ignore (and replace) the saved state
        self.restored = False

    def start(self) -> str:
        """Start everything; return the banner."""
        settings = self.settings
        moto_compat.apply()  # AWS behaviour moto lacks (shared with the tests)
        fast_batch_write.install()  # the log writer's ledger writes, likewise (inside PutEvents' give-way)
        fast_put_events.install()  # PutEvents without moto's Flask dispatch (inside the gate: installed first)
        priority.install()  # DynamoDB calls give way to PutEvents item by item (local.priority)
        state.install_gate()
        self.moto = MotoServer(settings.host, settings.moto_port)
        self.moto.start()
        environ = template_environment({**os.environ, RELAY_HOSTS_VARIABLE: relay_allowed_hosts(os.environ, settings)})
        template = Template.load(
            settings.template,
            environ,
            stack_name=settings.stack_name,
            region=settings.region,
            account_id=settings.account_id,
        )
        clients = Clients()
        self.functions = functions = {
            logical_id: LocalFunction(template, logical_id, settings.concurrency)
            for logical_id in template.of_type(FUNCTION_TYPE)
        }
        sqs = DirectSqs(clients["sqs"], settings.account_id, settings.region)  # the pollers call moto in-process
        self.delivery = Delivery(sqs, clients["events"], functions, settings.stack_name)
        inventory = Provisioner(template, clients, self.delivery).provision(functions)
        limiter = Limiter()  # usage-plan quota counts: kept with the state
        store = state.StateStore(
            settings.state_dir,
            state.fingerprint(settings.template, environ, settings.stack_name),
            settings.save_seconds,
            extras={"usage-plans": limiter},
        )
        self.restored = not self.fresh and store.restore()
        for function in functions.values():
            function.start(self.handler_log)
        for logical_id, kind in inventory.skipped:
            log.debug("not needed locally: %s (%s)", logical_id, kind)
        for logical_id, kind in inventory.not_supported:
            log.warning("not created locally (no local support): %s (%s)", logical_id, kind)
        for function in functions.values():
            for trigger in function.triggers.unsupported:
                log.warning("%s: event %s is not wired locally", function.logical_id, trigger)
        routes = routes_of(template, functions.values())
        self.server = ApiHttpServer(Gateway(Router(routes), settings, limiter), settings)
        http_routes = http_routes_of(template, functions.values())
        http_api_lines: list[str] = []
        if http_routes:  # the template's HTTP API (HttpApiJwtIssuer set): on its own port, as on its own host
            if settings.http_api_port in (settings.port, settings.moto_port):
                raise SettingsError(
                    "CORRELATOR_HTTP_API_PORT must differ from CORRELATOR_PORT and CORRELATOR_MOTO_PORT"
                )
            check_free(settings.host, settings.http_api_port, "CORRELATOR_HTTP_API_PORT")
            issuer = LocalIssuer(settings.state_dir, next(route.issuer or "" for route in http_routes))
            gateway = HttpApiGateway(http_routes, settings, issuer, limiter)
            self.http_server = ApiHttpServer(gateway, settings, port=settings.http_api_port)
            http_api_lines = http_api_banner(settings, http_routes, issuer)
        self.delivery.start()
        self.events = AsyncEvents()  # PutEvents answers once accepted; rules and targets run after (as on AWS)
        self.events.start()  # after the function queues exist: what a restored state had queued goes there
        self.scheduler = LocalScheduler(
            moto_schedules(settings.account_id, settings.region),
            delete_moto_schedule(settings.account_id, settings.region),
            clients["events"],
            clients["sqs"],
            self.delivery.route,
            rules=moto_scheduled_rules(settings.account_id, settings.region),
        )
        self.scheduler.start()
        self.server.start()
        if getattr(self, "http_server", None) is not None:
            self.http_server.start()
        self.state = store
        store.start()
        self.collector = Collector(lambda: state.GATE.served)  # full collections when idle (local.collector)
        self.collector.start()
        return banner(settings, inventory, routes, functions, self.delivery, self.restored, http_api_lines)

    def stop(self) -> None:
        # New requests stop, accepted events and deliveries under way finish, then the state is saved
        # while moto still runs (events accepted after the event deliverer stopped are saved queued).
        steps = ("http_server", "server", "scheduler", "events", "delivery", "functions", "state", "collector", "moto")
        for step in steps:
            part = getattr(self, step, None)
            if part is None:
                continue
            try:
                for piece in part.values() if isinstance(part, dict) else [part]:
                    piece.stop()
            except Exception:
                log.exception("stopping %s failed", step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging of the runner, handlers' logs on the console"
    )
    parser.add_argument("--fresh", action="store_true", help="start from the template alone, not the saved state")
    args = parser.parse_args(argv)
    lines.configure(args.verbose)
    # API and moto requests share this process's GIL with the event deliverer and the pollers: a request
    # thread back from I/O gets the interpreter within 0.5 ms instead of CPython's default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)

    try:
        settings = Settings.from_environ(os.environ)
        check_free(settings.host, settings.moto_port, "CORRELATOR_MOTO_PORT")
        check_free(settings.host, settings.port, "CORRELATOR_PORT")
        relay_allowed_hosts(os.environ, settings)  # refused at once, before anything starts
    except SettingsError as error:
        log.error("%s", error)
        return 2
    apply_process_environment(settings)

    stopping = threading.Event()

    def on_signal(number: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            log.warning("second %s: exiting without cleanup", signal.Signals(number).name)
            os._exit(130)
        log.info("%s: stopping", signal.Signals(number).name)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    handler_log = None if args.verbose else (settings.state_dir / "handlers.log").open("ab")
    stack = Stack(settings, handler_log, fresh=args.fresh or os.environ.get("CORRELATOR_FRESH") == "1")
    try:
        text = stack.start()
    except Exception as error:
        log.error("the local stack could not start: %s", error, exc_info=args.verbose)
        stack.stop()
        return 1
    print(text, flush=True)
    log.info("ready: API on %s, moto on %s", settings.api_url, settings.moto_endpoint)
    while not stopping.wait(0.5):
        pass
    stack.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
