"""The startup banner: what is running, the keys, and commands to try."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence

from local.api import Auth, Route
from local.delivery import Delivery, EventSourceMappingPoller
from local.functions import LocalFunction
from local.resources import Inventory
from local.settings import API_KEY_ID, Settings

SAMPLE_EVENT = {"type": "order.created", "object": "orders/1"}


def _curl(settings: Settings, route: Route, key: str | None) -> str:
    parts = ["curl", "-i"]
    if key:
        parts += ["-H", f"x-api-key: {key}"]
    if route.method in ("POST", "PUT", "PATCH"):
        parts += ["-H", "content-type: application/json", "-d", json.dumps(SAMPLE_EVENT, separators=(",", ":"))]
    elif route.method not in ("GET", "ANY"):
        parts += ["-X", route.method]
    return shlex.join([*parts, settings.api_url + route.path])


def _examples(settings: Settings, routes: list[Route], buses: list[str]) -> list[str]:
    keys = {Auth.NONE: None, Auth.API_KEY: settings.api_key, Auth.IAM: settings.admin_key}
    examples = []
    for wanted in (Auth.API_KEY, Auth.IAM, Auth.NONE):
        candidates = [route for route in routes if route.auth is wanted and "{" not in route.path]
        post = [route for route in candidates if route.method == "POST"]
        get = [route for route in candidates if route.method in ("GET", "ANY")]
        for route in ((post or get) if wanted is Auth.API_KEY else (get or post))[:1]:
            examples.append(_curl(settings, route, keys[wanted]))
    aws = f"aws --endpoint-url {settings.moto_endpoint}"
    for bus in buses[:1]:
        examples.append(f"{aws} events list-rules --event-bus-name {bus}")
    examples += [f"{aws} sqs list-queues", f"{aws} s3 ls", f"{aws} dynamodb list-tables"]
    return examples


def _triggers(function: LocalFunction, routes: list[Route], delivery: Delivery) -> str:
    triggers = [f"{route.method} {route.path}" for route in routes if route.function is function]
    for poller in delivery.pollers:
        if poller.function is function:
            kind = "batches from" if isinstance(poller, EventSourceMappingPoller) else "rule targets via"
            triggers.append(f"{kind} {poller.queue_name}")
    triggers += [f"(not wired locally: {item})" for item in function.triggers.unsupported]
    return ", ".join(triggers) or "nothing (invoked only if a rule targets it)"


def banner(
    settings: Settings,
    inventory: Inventory,
    routes: list[Route],
    functions: Mapping[str, LocalFunction],
    delivery: Delivery,
    restored: bool = False,
    http_api: Sequence[str] = (),
) -> str:
    width = max((len(route.path) for route in routes), default=10)
    name_width = max((len(name) for name in functions), default=10)
    lines = [
        f"Correlator local stack '{settings.stack_name}' from {settings.template}",
        f"  AWS (moto)  {settings.moto_endpoint}   (credentials: any, e.g. testing/testing; region {settings.region})",
        f"  API         {settings.api_url}   (routes at the root; in AWS they sit under the stage)",
        f"  State       {settings.state_dir}   ({'restored from the last run' if restored else 'fresh'};"
        " `make clean-state` or --fresh starts anew; handlers' logs in handlers.log)",
        "",
        "Routes",
        *[
            f"  {route.method:<7}{route.path:<{width}}  {route.auth.value:<8} -> {route.function.logical_id}"
            for route in routes
        ],
        "",
        "Functions",
        *[
            f"  {name:<{name_width}}  {function.describe()}  <- {_triggers(function, routes, delivery)}"
            for name, function in functions.items()
        ],
        "",
        "Queues polled",
        *(
            [f"  {poller.queue_name} -> {poller.function.logical_id}" for poller in delivery.pollers]
            or ["  (none yet: rules that target a function get a queue when they appear)"]
        ),
        "",
        "Resources in moto",
        *[f"  {physical}  ({kind} {logical})" for logical, kind, physical in inventory.created],
        *_section("Not created locally", (f"{lid} ({kind})" for lid, kind in inventory.not_supported)),
        *_section("Notes", inventory.notes),
        *_section("HTTP API (the template's second front door: HttpApiJwtIssuer)", http_api),
        "",
        "Keys",
        f"  x-api-key: {settings.api_key}    routes marked 'api key' (caller = API key id {API_KEY_ID})",
        f"  x-api-key: {settings.admin_key}  routes marked 'iam' (stands in for IAM as {settings.admin_arn})",
        "",
        "Try",
        *[f"  {example}" for example in _examples(settings, routes, delivery.buses)],
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def _section(title: str, items: Iterable[str]) -> list[str]:
    entries = [f"  {item}" for item in items]
    return ["", title, *entries] if entries else []
