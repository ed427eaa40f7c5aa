"""SSRF guard for outbound relays: which URLs the relay action may connect to, and at which address.

A URL passes when it is ``https`` (plain ``http`` only for allow-listed hosts), carries no
userinfo, uses a sensible port (443 or 8443; any port on allow-listed hosts), and every address
its host resolves to is a public unicast address. The caller then connects to the returned
``Target.address`` (the connection is pinned), so DNS cannot change between check and connect.

Refused addresses: unspecified, loopback, private (RFC 1918, fc00::/7), link-local
(169.254.0.0/16 with the metadata address, fe80::/10), shared address space (100.64.0.0/10),
multicast, reserved, documentation and benchmark ranges, site-local fec0::/10, and IPv6 forms that
embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo)
when the embedded address is refused (or always, for the deprecated and tunnelled forms).

Allow-listed hosts (``RELAY_ALLOWED_HOSTS``: ``host`` or ``host:port`` entries, comma-separated)
skip the address check, except that link-local addresses and the Lambda runtime API endpoint are
never allowed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

MAX_URL_CHARS = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
# Ports a non-allow-listed host may use: HTTPS and its common alternative.
SAFE_PORTS = frozenset({443, 8443})
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")

_EXTRA_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "240.0.0.0/4",  # reserved, incl. broadcast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_EXTRA_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fec0::/10",  # site-local (deprecated)
    )
)


class UrlRefused(ValueError):
    """The URL may not be relayed to; ``retryable`` when only name resolution failed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts that may be reached over plain http and at non-public addresses: ``host`` or ``host:port``."""

    entries: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        """Parse ``"127.0.0.1, hooks.internal:8080, [::1]:9000"``; ``ValueError`` for a malformed entry."""
        entries: set[tuple[str, int | None]] = set()
        for raw in (text or "").split(","):
            item = raw.strip()
            if not item:
                continue
            try:
                parts = urlsplit(f"//{item}")
                port = parts.port
                if not parts.hostname or "@" in parts.netloc or parts.path or parts.query or parts.fragment:
                    raise ValueError(item)
                host = canonical_host(parts.hostname)
                _check_host_syntax(host, bracketed=parts.netloc.startswith("["))
            except ValueError:
                raise ValueError(f"not a host or host:port: {item!r}") from None
            entries.add((host, port))
        return cls(frozenset(entries))

    def allows(self, host: str, port: int) -> bool:
        return (host, None) in self.entries or (host, port) in self.entries


@dataclass(frozen=True, slots=True)
class Target:
    """A validated URL and the address to connect to for it."""

    scheme: str
    host: str  # lower-case host name or canonical IP, without brackets
    port: int
    path: str  # path and query, at least "/"
    address: str  # the validated IP address the connection is pinned to
    allow_listed: bool

    @property
    def url(self) -> str:
        return urlunsplit((self.scheme, self.netloc, self.path.split("?", 1)[0], self._query, ""))

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def without_query(self) -> str:
        """The URL without query string: what may be logged (a query can carry a token)."""
        return urlunsplit((self.scheme, self.netloc, self.path.split("?", 1)[0], "", ""))

    @property
    def _query(self) -> str:
        return self.path.split("?", 1)[1] if "?" in self.path else ""


def canonical_host(host: str) -> str:
    """A host as compared and connected to: lower case, no trailing dot, IPs in canonical form."""
    host = host.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be connected to, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _embedded("IPv4-mapped", address.ipv4_mapped)
        if address.sixtofour is not None:
            return _embedded("6to4", address.sixtofour)
        if address in _NAT64:
            return _embedded("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _LOCAL_NAT64:
            return "a local-use NAT64 address"
        if address.teredo is not None:
            return "a Teredo address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (incl. the instance metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address in _IPV4_COMPATIBLE:
        return "an IPv4-compatible IPv6 address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    extra = _EXTRA_BLOCKED_V4 if isinstance(address, ipaddress.IPv4Address) else _EXTRA_BLOCKED_V6
    if any(address in network for network in extra) or not address.is_global:
        return "a non-public address"
    return None


def _embedded(form: str, address: ipaddress.IPv4Address) -> str | None:
    reason = refusal_reason(address)
    return None if reason is None else f"an {form} form of {reason}"


def is_always_refused(address: IPAddress, port: int, environ: Mapping[str, str] | None = None) -> bool:
    """Link-local addresses (metadata services) and the Lambda runtime API: refused even when allow-listed."""
    if address.is_link_local:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
        if address.is_link_local:
            return True
    runtime_api = (environ if environ is not None else os.environ).get("AWS_LAMBDA_RUNTIME_API")
    if runtime_api:
        parts = urlsplit(f"//{runtime_api}")
        try:
            runtime_port = parts.port
        except ValueError:
            runtime_port = None
        if parts.hostname and runtime_port == port:
            try:
                runtime_address = ipaddress.ip_address(parts.hostname)
            except ValueError:
                return address.is_loopback
            return address == runtime_address or (address.is_loopback and runtime_address.is_loopback)
    return False


def check_url(
    url: str,
    allowed: AllowList,
    *,
    resolve: Resolver | None = None,
    environ: Mapping[str, str] | None = None,
) -> Target:
    """Validate ``url`` and resolve its host; return the ``Target`` to connect to, or raise ``UrlRefused``."""
    scheme, host, port, path = _parse(url)
    allow_listed = allowed.allows(host, port)
    if scheme == "http" and not allow_listed:
        raise UrlRefused(f"plain http is only allowed for allow-listed hosts (RELAY_ALLOWED_HOSTS), not {host}")
    addresses = check_host(host, port, allowed, resolve=resolve, environ=environ)
    # Prefer IPv4: Lambda functions outside a dual-stack VPC have no IPv6 egress.
    pinned = min(addresses, key=lambda address: address.version)
    return Target(scheme, host, port, path, str(pinned), allow_listed)


def check_host(
    host: str,
    port: int,
    allowed: AllowList,
    *,
    resolve: Resolver | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[IPAddress]:
    """The addresses of ``host`` that may be connected to on ``port``; ``UrlRefused`` when any may not.

    Not allow-listed: only ports 443/8443 and public unicast addresses. Allow-listed: any port and
    address except link-local ones and the Lambda runtime API.
    """
    host = canonical_host(host)
    allow_listed = allowed.allows(host, port)
    if not allow_listed and port not in SAFE_PORTS:
        raise UrlRefused(f"port {port} is not allowed (443 or 8443 unless the host is allow-listed)")
    addresses = _resolve(host, port, resolve)
    for address in addresses:
        if is_always_refused(address, port, environ):
            raise UrlRefused(f"{host} resolves to {address}, which is never allowed")
        if not allow_listed:
            reason = refusal_reason(address)
            if reason is not None:
                raise UrlRefused(f"{host} resolves to {address}, {reason}")
    return addresses


@contextmanager
def guarded_resolution(allowed: AllowList, *, resolve: Resolver | None = None) -> Iterator[list[str]]:
    """Within the block, every host name or address this process connects to goes through ``check_host``.

    For libraries that open their own connections (Apprise's ``requests``): ``socket.getaddrinfo``
    answers only with addresses that passed, so the connection uses exactly the checked addresses
    (no second lookup to rebind), redirects included. A refused host fails like a failed lookup;
    the block's list collects why.
    """
    original = socket.getaddrinfo
    lookup = resolve or original
    refusals: list[str] = []

    def checked(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        number = int(port or 0)
        try:
            addresses = check_host(name, number, allowed, resolve=lambda *a, **k: lookup(*a, **k))
        except UrlRefused as refusal:
            refusals.append(str(refusal))
            raise socket.gaierror(socket.EAI_NONAME, f"refused by the SSRF guard: {refusal}") from None
        answers = []
        for address in addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sockaddr: tuple[Any, ...] = (str(address), number, 0, 0) if address.version == 6 else (str(address), number)
            answers.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return answers

    socket.getaddrinfo = checked
    try:
        yield refusals
    finally:
        socket.getaddrinfo = original


def _parse(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url:
        raise UrlRefused("the URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise UrlRefused(f"the URL is longer than {MAX_URL_CHARS} characters")
    if not url.isascii() or _FORBIDDEN_URL_CHARS.search(url):
        raise UrlRefused("the URL contains spaces, control characters, backslashes or non-ASCII characters")
    try:
        parts = urlsplit(url)
    except ValueError as error:  # e.g. a bracketed host that is not an IPv6 address
        raise UrlRefused(f"the URL does not parse: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(f"the scheme must be https (or http for allow-listed hosts), not {scheme or 'none'!r}")
    if "@" in parts.netloc:
        raise UrlRefused("URLs with userinfo (user:password@) are not allowed")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UrlRefused("the URL's port is not a number in 1..65535")
    host = canonical_host(parts.hostname)
    _check_host_syntax(host, bracketed=parts.netloc.startswith("["))
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port, path


def _check_host_syntax(host: str, *, bracketed: bool) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if bracketed:
            raise UrlRefused("the bracketed host is not an IPv6 address") from None
        labels = host.split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise UrlRefused(f"not a valid host name: {host[:80]!r}") from None
        return
    if isinstance(address, ipaddress.IPv6Address) and not bracketed:
        raise UrlRefused("IPv6 addresses must be written in brackets")


def _resolve(host: str, port: int, resolve: Resolver | None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    resolver = resolve or socket.getaddrinfo  # looked up on each call, so tests can replace it
    try:
        answers = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UrlRefused(f"{host} does not resolve ({error})", retryable=True) from None
    addresses = list(_addresses(answer[4][0] for answer in answers if answer and len(answer) > 4))
    if not addresses:
        raise UrlRefused(f"{host} does not resolve to any address", retryable=True)
    return addresses


def _addresses(values: Iterable[Any]) -> Iterable[IPAddress]:
    for value in values:
        # A scoped IPv6 address ("fe80::1%eth0") is link-local anyway; the scope is not part of the check.
        text = str(value).split("%", 1)[0]
        try:
            yield ipaddress.ip_address(text)
        except ValueError:
            raise UrlRefused(f"the resolver returned something that is not an address: {text[:64]!r}") from None
