"""The local stack's settings (ports, keys, template) and the process environment it runs in."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from correlator.ssrf import AllowList
from local.template import DEFAULT_ACCOUNT_ID, DEFAULT_STACK_NAME
from local.workers import DEFAULT_CONCURRENCY

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / ".local-state"  # git-ignored
DEFAULT_SAVE_SECONDS = 5  # how much a SIGKILL may lose
# What API Gateway would put in the request context for the local keys.
API_KEY_ID = "local-dev-key-id"
ADMIN_USER = "local-admin"

# Template parameters whose local value differs from the deployed default (CORRELATOR_PARAM_<Name> wins).
# RelayAllowedHosts is set by relay_allowed_hosts (the stack's own API, plus what the user allows).
LOCAL_PARAMETERS: dict[str, str] = {}
RELAY_HOSTS_VARIABLE = "CORRELATOR_PARAM_RelayAllowedHosts"

# Variables that could point boto3 at a real account or endpoint; the local stack drops them.
_REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class SettingsError(Exception):
    """A setting is invalid (bad port, busy port, missing template)."""


@dataclass(frozen=True, slots=True)
class Settings:
    port: int
    moto_port: int
    api_key: str
    admin_key: str
    template: Path
    stack_name: str
    region: str
    account_id: str = DEFAULT_ACCOUNT_ID
    host: str = HOST
    state_dir: Path = DEFAULT_STATE_DIR
    concurrency: int = DEFAULT_CONCURRENCY
    save_seconds: int = DEFAULT_SAVE_SECONDS
    http_api_port: int = 3001  # the template's HTTP API front door, when it has one (HttpApiJwtIssuer)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        template = Path(environ.get("CORRELATOR_TEMPLATE") or REPO_ROOT / "template.yaml")
        if not template.is_file():
            raise SettingsError(f"template not found: {template} (set CORRELATOR_TEMPLATE)")
        settings = cls(
            port=_port(environ, "CORRELATOR_PORT", 3000),
            moto_port=_port(environ, "CORRELATOR_MOTO_PORT", 5000),
            api_key=environ.get("CORRELATOR_API_KEY") or "local-dev-key",
            admin_key=environ.get("CORRELATOR_ADMIN_KEY") or "local-admin-key",
            template=template.resolve(),
            stack_name=environ.get("CORRELATOR_STACK_NAME") or DEFAULT_STACK_NAME,
            region=environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            state_dir=Path(environ.get("CORRELATOR_STATE_DIR") or DEFAULT_STATE_DIR).resolve(),
            concurrency=_positive(environ, "CORRELATOR_CONCURRENCY", DEFAULT_CONCURRENCY),
            save_seconds=_positive(environ, "CORRELATOR_SAVE_SECONDS", DEFAULT_SAVE_SECONDS),
            http_api_port=_port(environ, "CORRELATOR_HTTP_API_PORT", 3001),
        )
        if settings.port == settings.moto_port:
            raise SettingsError("CORRELATOR_PORT and CORRELATOR_MOTO_PORT must differ")
        if settings.api_key == settings.admin_key:
            raise SettingsError("CORRELATOR_API_KEY and CORRELATOR_ADMIN_KEY must differ")
        return settings

    @property
    def moto_endpoint(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def http_api_url(self) -> str:
        return f"http://{self.host}:{self.http_api_port}"

    @property
    def admin_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:user/{ADMIN_USER}"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


def _positive(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def check_free(host: str, port: int, name: str) -> None:
    """Fail clearly when ``port`` is taken (moto's server would otherwise hang on start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves bind: a port whose old connections sit in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise SettingsError(f"{host}:{port} is not available ({error.strerror}); set {name}") from None


def apply_process_environment(settings: Settings, environ: MutableMapping[str, str] = os.environ) -> None:
    """Point every AWS SDK call of this process (runner and handlers) at the embedded moto server."""
    for name in _REAL_AWS_VARIABLES:
        environ.pop(name, None)
    for name in [name for name in environ if name.startswith("AWS_ENDPOINT_URL_")]:
        del environ[name]
    environ.update(
        {
            "AWS_ENDPOINT_URL": settings.moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": settings.region,
            "AWS_REGION": settings.region,
            # No shared config/credentials files, no instance metadata: nothing reaches a real account.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )


def template_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the local parameter values (``LOCAL_PARAMETERS``) it does not set itself."""
    defaults = {f"CORRELATOR_PARAM_{name}": value for name, value in LOCAL_PARAMETERS.items()}
    return {**defaults, **environ}


def _is_this_machine(host: str) -> bool:
    """Whether ``host`` names this machine (loopback or unspecified); names are resolved, so use it at start only."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return any(address.is_loopback or address.is_unspecified for address in addresses)


def relay_allowed_hosts(environ: Mapping[str, str], settings: Settings) -> str:
    """The local ``RelayAllowedHosts``: this stack's own API (so relay.event to itself works, up to the hop
    limit) plus ``CORRELATOR_PARAM_RelayAllowedHosts``, where an entry on this machine must name its port and
    never the embedded AWS endpoint (a relay there could reset every resource)."""
    given = (environ.get(RELAY_HOSTS_VARIABLE) or "").strip()
    try:
        allowed = AllowList.parse(given)
    except ValueError as error:
        raise SettingsError(f"{RELAY_HOSTS_VARIABLE}: {error}") from None
    for host, port in sorted(allowed.entries, key=str):
        if not _is_this_machine(host):
            continue
        if port is None:
            raise SettingsError(
                f"{RELAY_HOSTS_VARIABLE}: {host} is this machine: name the port relays may reach ({host}:PORT),"
                f" so that they cannot reach the embedded AWS endpoint or other local services"
            )
        if port == settings.moto_port:
            raise SettingsError(f"{RELAY_HOSTS_VARIABLE}: {host}:{port} is the embedded AWS endpoint (moto)")
    return ",".join(part for part in (f"{settings.host}:{settings.port}", given) if part)
