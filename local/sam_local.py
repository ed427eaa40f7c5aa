"""``sam local`` against the embedded AWS of ``make run``, for users who have Docker.

``sam local invoke`` and ``sam local start-api`` run each function in a container; the AWS it
calls is whatever the function's environment says. ``local/sam-env.json`` (written by
``make sam-env``, i.e. ``python -m local.sam_local``) gives every function of the template the
values ``make run`` gives it: the local names of the bus, queues, buckets and tables, and
``AWS_ENDPOINT_URL`` = moto's endpoint as a container reaches the host
(``http://host.docker.internal:5000``). ``sam local`` only overrides variables the template
declares, which is why the template declares ``AWS_ENDPOINT_URL: ""`` in ``Globals`` (botocore
treats an empty value as unset, so on AWS it changes nothing).

The values come from provisioning the template into an in-process moto exactly as ``make run``
does, so they cannot drift from the runner's naming. ``events_for_functions`` tells which function
each file of ``events/`` is an input for (the tests check every file against it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local.template import DEFAULT_STACK_NAME, Template, as_text

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = REPO_ROOT / "local" / "sam-env.json"
DOCKER_HOST = "host.docker.internal"
MOTO_PORT = 5000
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
SERVICES = ("events", "sqs", "s3", "dynamodb", "ssm", "sesv2", "secretsmanager", "scheduler")
_AWS_URL = re.compile(r"https://[a-z0-9.-]+\.amazonaws\.com")


@contextmanager
def provisioned(template_path: Path, environ: Mapping[str, str]) -> Iterator[tuple[Template, dict[str, Any]]]:
    """The template provisioned into an in-process moto as ``make run`` provisions it; its functions prepared."""
    import boto3
    from moto import mock_aws

    from local import moto_compat
    from local.delivery import Delivery
    from local.functions import FUNCTION_TYPE, LocalFunction
    from local.resources import Provisioner
    from local.settings import template_environment

    moto_compat.apply()
    with mock_aws():
        template = Template.load(template_path, template_environment(environ), stack_name=DEFAULT_STACK_NAME)
        clients = {service: boto3.client(service, region_name=template.region) for service in SERVICES}
        functions = {logical_id: LocalFunction(template, logical_id) for logical_id in template.of_type(FUNCTION_TYPE)}
        delivery = Delivery(clients["sqs"], clients["events"], functions, template.stack_name)
        Provisioner(template, clients, delivery).provision(functions)
        yield template, functions


def declared_variables(template: Template, logical_id: str) -> dict[str, Any]:
    """The function's environment as the template declares it (Globals included), resolved."""
    environment = template.resolved_property(logical_id, "Environment", {}) or {}
    return dict(environment.get("Variables") or {})


def for_docker(value: str, endpoint: str) -> str:
    """A value as a container sees it: AWS and loopback URLs point at ``endpoint``."""
    value = _AWS_URL.sub(endpoint, value)
    return re.sub(r"http://(127\.0\.0\.1|localhost):\d+", endpoint, value)


def env_vars(
    template_path: Path = REPO_ROOT / "template.yaml", moto_port: int = MOTO_PORT
) -> dict[str, dict[str, str]]:
    """The ``--env-vars`` file: for each function, every variable it declares, with ``make run``'s values."""
    endpoint = f"http://{DOCKER_HOST}:{moto_port}"
    environ = {name: value for name, value in os.environ.items() if not name.startswith("CORRELATOR_PARAM_")}
    result: dict[str, dict[str, str]] = {}
    with provisioned(template_path, environ) as (template, functions):
        for logical_id in sorted(functions):
            variables = {name: as_text(value) for name, value in declared_variables(template, logical_id).items()}
            variables[ENDPOINT_VARIABLE] = endpoint
            result[logical_id] = {name: for_docker(value, endpoint) for name, value in sorted(variables.items())}
    return result


def render(values: Mapping[str, Any]) -> str:
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sam_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ENV_FILE, help=f"where to write (default {ENV_FILE})")
    parser.add_argument("--moto-port", type=int, default=MOTO_PORT, help="CORRELATOR_MOTO_PORT of make run")
    args = parser.parse_args(argv)
    args.output.write_text(render(env_vars(moto_port=args.moto_port)))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
