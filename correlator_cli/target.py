"""Which Correlator the command talks to: the local stack, or a deployed CloudFormation stack.

The local stack (``make run``) is reached on 127.0.0.1 with the same variables ``make run`` reads;
a deployed stack is found by its name: API URL and API key from its outputs, queues and the
archive from its resources, admin calls signed with SigV4 from the standard credential chain.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


class TargetError(Exception):
    """The target cannot be found or reached (no stack, no local stack, missing output)."""


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """The local stack's ports, keys and stack name, from the variables ``make run`` reads."""

    port: int = 3000
    moto_port: int = 5000
    api_key: str = "local-dev-key"
    admin_key: str = "local-admin-key"
    stack_name: str = "correlator"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalSettings:
        return cls(
            port=int(environ.get("CORRELATOR_PORT") or 3000),
            moto_port=int(environ.get("CORRELATOR_MOTO_PORT") or 5000),
            api_key=environ.get("CORRELATOR_API_KEY") or "local-dev-key",
            admin_key=environ.get("CORRELATOR_ADMIN_KEY") or "local-admin-key",
            stack_name=environ.get("CORRELATOR_STACK_NAME") or "correlator",
        )

    def is_running(self) -> bool:
        """Something answers on the local API port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.3):
                return True
        except OSError:
            return False


@dataclass
class Target:
    """One Correlator: where its API is, how admin calls authenticate, and AWS clients for the rest."""

    name: str
    api_url: str
    session: Any  # boto3.Session
    local: LocalSettings | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    endpoint_url: str | None = None  # the local stack's embedded AWS
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.local is not None

    @property
    def region(self) -> str:
        return str(self.session.region_name or LOCAL_REGION)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` in the target's account and region (moto's server locally)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=_RETRIES)
        return self._clients[service]

    @property
    def bus_name(self) -> str:
        return self.outputs.get("EventBusName") or (self.local.stack_name if self.local else self.name)

    @cached_property
    def bus_arn(self) -> str:
        return self.outputs.get("EventBusArn") or str(
            self.client("events").describe_event_bus(Name=self.bus_name)["Arn"]
        )

    @cached_property
    def api_key(self) -> str:
        """The key for ``POST /events``: the local key, or the stack's API key (``ApiKeyId`` output)."""
        if self.local:
            return self.local.api_key
        key_id = self.outputs.get("ApiKeyId")
        if not key_id:
            raise TargetError(f"stack {self.name} has no ApiKeyId output")
        return str(self.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])

    @cached_property
    def queue_urls(self) -> dict[str, str]:
        """The stack's SQS queues: name -> URL."""
        if self.local:
            prefix = f"{self.local.stack_name}-"
            response = self.client("sqs").list_queues(QueueNamePrefix=prefix)
            # The runner's own delivery queues (<stack>-local-*) stand in for Lambda: not the template's.
            urls = [
                url for url in response.get("QueueUrls", []) if not url.rsplit("/", 1)[-1].startswith(prefix + "local-")
            ]
        else:
            urls = [
                resource["PhysicalResourceId"]
                for resource in self.stack_resources()
                if resource["ResourceType"] == "AWS::SQS::Queue" and resource.get("PhysicalResourceId")
            ]
        return {url.rsplit("/", 1)[-1]: url for url in sorted(urls)}

    def stack_resources(self) -> list[dict[str, Any]]:
        paginator = self.client("cloudformation").get_paginator("list_stack_resources")
        return [item for page in paginator.paginate(StackName=self.name) for item in page["StackResourceSummaries"]]


def local_target(settings: LocalSettings) -> Target:
    session = boto3.Session(region_name=LOCAL_REGION, **LOCAL_ACCOUNT_CREDENTIALS)
    return Target(
        name=settings.stack_name,
        api_url=f"http://127.0.0.1:{settings.port}",
        session=session,
        local=settings,
        endpoint_url=f"http://127.0.0.1:{settings.moto_port}",
    )


def stack_target(stack_name: str, session: Any) -> Target:
    """The deployed stack ``stack_name``, from its CloudFormation outputs."""
    cloudformation = session.client("cloudformation", config=_RETRIES)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise TargetError(f"stack {stack_name!r}: {error}") from None
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise TargetError(f"stack {stack_name!r} has no ApiUrl output: is it a Correlator stack?")
    target = Target(name=stack_name, api_url=outputs["ApiUrl"].rstrip("/"), session=session, outputs=outputs)
    target._clients["cloudformation"] = cloudformation
    return target


def samconfig_stack_name(start: Path, config_env: str = "default") -> str | None:
    """``stack_name`` of ``config_env`` in the nearest samconfig.toml at or above ``start``."""
    for directory in (start, *start.parents):
        path = directory / "samconfig.toml"
        if path.is_file():
            config = tomllib.loads(path.read_text(encoding="utf-8"))
            section = config.get(config_env, {})
            for command in ("global", "deploy"):
                name = section.get(command, {}).get("parameters", {}).get("stack_name")
                if name:
                    return str(name)
            return None
    return None


def resolve_target(
    *,
    local: bool,
    stack: str | None,
    profile: str | None,
    region: str | None,
    config_env: str,
    environ: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Target:
    """``--local``, ``--stack NAME``, or: the local stack if it answers, else samconfig.toml's stack."""
    settings = LocalSettings.from_env(environ)
    if local and stack:
        raise TargetError("give --local or --stack, not both")
    if local or (stack is None and settings.is_running()):
        return local_target(settings)
    name = stack or samconfig_stack_name(cwd or Path.cwd(), config_env)
    if not name:
        raise TargetError(
            f"no local stack on 127.0.0.1:{settings.port} and no stack name: give --stack NAME or run make run"
        )
    return stack_target(name, boto3.Session(profile_name=profile, region_name=region))
