"""The SSRF guard: which URLs a relay may reach, and the address its connection is pinned to."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from correlator.ssrf import AllowList, UrlRefused, check_url, refusal_reason

NOBODY = AllowList()
LOCAL = AllowList.parse("127.0.0.1:8080, hooks.internal, [::1]:9000")


def resolving(*addresses: str) -> Any:
    """A ``getaddrinfo`` stand-in answering ``addresses`` for any host, and counting its calls."""

    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        resolve.calls.append(host)  # type: ignore[attr-defined]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [(family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    resolve.calls = []  # type: ignore[attr-defined]
    return resolve


def failing_resolver(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://127.8.9.10/",
        "https://10.0.0.1/",
        "https://172.16.0.1/",
        "https://192.168.1.10/",
        "https://169.254.169.254/latest/meta-data/",
        "https://169.254.170.2/v2/credentials",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://224.0.0.251/",
        "https://240.0.0.1/",
        "https://255.255.255.255/",
        "https://198.18.0.1/",
        "https://192.0.2.1/",
        "https://192.0.0.8/",
        "https://[::1]/",
        "https://[::]/",
        "https://[fc00::1]/",
        "https://[fd12:3456::1]/",
        "https://[fe80::1]/",
        "https://[fec0::1]/",
        "https://[ff02::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[::127.0.0.1]/",
        "https://[::8.8.8.8]/",
        "https://[64:ff9b::a00:1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[64:ff9b:1::1]/",
        "https://[2002:a9fe:a9fe::1]/",
        "https://[2002:7f00:1::1]/",
        "https://[2001::1]/",
        "https://[2001:db8::1]/",
        "https://[100::1]/",
    ],
)
def test_non_public_addresses_are_refused(url: str) -> None:
    # GIVEN an address literal that is not a public unicast address (or an IPv6 form embedding one)

    # WHEN / THEN
    with pytest.raises(UrlRefused, match="resolves to"):
        check_url(url, NOBODY)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.0.0.1", "127.1", "0177.0.0.1"])
def test_alternative_spellings_of_loopback_are_refused_after_resolution(host: str) -> None:
    # GIVEN numeric host spellings that the system resolver turns into 127.0.0.1 (no network involved)

    # WHEN / THEN the resolved address is what is checked
    with pytest.raises(UrlRefused, match="loopback"):
        check_url(f"https://{host}/", NOBODY)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://93.184.215.14/hook", "93.184.215.14"),
        ("https://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
        ("https://[::ffff:93.184.215.14]/", "::ffff:5db8:d70e"),
        ("https://[64:ff9b::5db8:d70e]/", "64:ff9b::5db8:d70e"),
        ("https://93.184.215.14:8443/x?y=1", "93.184.215.14"),
    ],
)
def test_public_addresses_pass(url: str, address: str) -> None:
    # GIVEN / WHEN
    target = check_url(url, NOBODY)

    # THEN
    assert target.address == address
    assert not target.allow_listed


def test_a_host_name_is_resolved_and_the_connection_pinned_to_a_checked_address() -> None:
    # GIVEN a name with an IPv6 and an IPv4 public address
    resolve = resolving("2606:4700:4700::1111", "93.184.215.14")

    # WHEN
    target = check_url("https://Hooks.Example.com./in?token=s3cret#frag", NOBODY, resolve=resolve)

    # THEN it is resolved once, IPv4 preferred; the URL keeps its host name for TLS and Host
    assert resolve.calls == ["hooks.example.com"]
    assert target.address == "93.184.215.14"
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        443,
        "/in?token=s3cret",
    )
    assert target.netloc == "hooks.example.com"
    assert target.url == "https://hooks.example.com/in?token=s3cret"
    assert target.without_query == "https://hooks.example.com/in"


@pytest.mark.parametrize(
    "answers",
    [("10.0.0.7",), ("93.184.215.14", "192.168.0.2"), ("169.254.169.254",), ("::1",), ("fd00::1",)],
)
def test_a_host_name_resolving_to_any_private_address_is_refused(answers: tuple[str, ...]) -> None:
    # GIVEN a name whose answers include a non-public address (e.g. DNS rebinding)
    resolve = resolving(*answers)

    # WHEN / THEN
    with pytest.raises(UrlRefused, match=r"hooks\.example\.com resolves to"):
        check_url("https://hooks.example.com/", NOBODY, resolve=resolve)


def test_a_name_that_does_not_resolve_is_refused_as_retryable() -> None:
    # GIVEN / WHEN
    with pytest.raises(UrlRefused, match="does not resolve") as refused:
        check_url("https://nowhere.example.com/", NOBODY, resolve=failing_resolver)

    # THEN DNS may recover: the send-time caller retries
    assert refused.value.retryable


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/", "plain http"),
        ("http://hooks.example.com/", "plain http"),
        ("https://user:password@hooks.example.com/", "userinfo"),
        ("https://user@hooks.example.com/", "userinfo"),
        ("https://hooks.example.com\\@127.0.0.1/", "backslash"),
        ("https://@127.0.0.1/", "userinfo"),
        ("ftp://hooks.example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme"),
        ("//hooks.example.com/", "scheme"),
        ("hooks.example.com/x", "scheme"),
        ("https:///path", "no host"),
        ("https://hooks.example.com:22/", "port 22"),
        ("https://hooks.example.com:80/", "port 80"),
        ("https://hooks.example.com:99999/", "port"),
        ("https://hooks.example.com:0/", "port"),
        ("https://hooks example.com/", "spaces"),
        ("https://hooks.example.com/\r\nX-Injected: 1", "control"),
        ("https://hooks.exämple.com/", "non-ASCII"),
        ("https://%31%32%37.0.0.1/", "not a valid host name"),
        ("https://hooks_example.com/", "not a valid host name"),
        ("https://-hooks.example.com/", "not a valid host name"),
        ("https://[hooks.example.com]/", "IPv6"),
        ("", "empty"),
        ("https://hooks.example.com/" + "a" * 2048, "longer than"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused_before_any_lookup(url: str, message: str) -> None:
    # GIVEN a resolver that would answer with a public address
    resolve = resolving("93.184.215.14")

    # WHEN / THEN
    with pytest.raises(UrlRefused, match=message):
        check_url(url, NOBODY, resolve=resolve)
    assert resolve.calls == []


def test_allow_listed_hosts_may_use_http_any_port_and_private_addresses() -> None:
    # GIVEN the allow-list "127.0.0.1:8080, hooks.internal, [::1]:9000"

    # WHEN
    loopback = check_url("http://127.0.0.1:8080/events", LOCAL)
    internal = check_url("http://hooks.internal:1234/x", LOCAL, resolve=resolving("10.1.2.3"))
    ipv6 = check_url("http://[::1]:9000/", LOCAL)

    # THEN
    assert (loopback.address, loopback.allow_listed, loopback.netloc) == ("127.0.0.1", True, "127.0.0.1:8080")
    assert (internal.address, internal.allow_listed) == ("10.1.2.3", True)
    assert (ipv6.address, ipv6.netloc) == ("::1", "[::1]:9000")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8081/", "https://127.0.0.1/", "http://localhost:8080/", "http://[::1]:9001/"],
)
def test_an_allow_list_entry_with_a_port_allows_that_port_only(url: str) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(UrlRefused):
        check_url(url, LOCAL, resolve=resolving("127.0.0.1"))


def test_link_local_addresses_are_refused_even_for_allow_listed_hosts() -> None:
    # GIVEN an allow-listed name that resolves to the metadata address
    resolve = resolving("169.254.169.254")

    # WHEN / THEN
    with pytest.raises(UrlRefused, match="never allowed"):
        check_url("http://hooks.internal/latest/meta-data/", LOCAL, resolve=resolve)
    with pytest.raises(UrlRefused, match="never allowed"):
        check_url("http://hooks.internal/", LOCAL, resolve=resolving("::ffff:169.254.169.254"))


def test_the_lambda_runtime_api_is_refused_even_when_loopback_is_allow_listed() -> None:
    # GIVEN loopback allow-listed (as on the local stack) inside a Lambda sandbox
    allowed = AllowList.parse("127.0.0.1, localhost")
    environ = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}

    # WHEN / THEN
    with pytest.raises(UrlRefused, match="never allowed"):
        check_url("http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", allowed, environ=environ)
    with pytest.raises(UrlRefused, match="never allowed"):
        check_url("http://localhost:9001/", allowed, environ=environ, resolve=resolving("127.0.0.1"))
    assert check_url("http://127.0.0.1:9002/", allowed, environ=environ).address == "127.0.0.1"


@pytest.mark.parametrize("entry", ["http://127.0.0.1", "hooks.internal/path", "a b", "host:port", "user@host"])
def test_malformed_allow_list_entries_are_refused(entry: str) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="not a host"):
        AllowList.parse(f"127.0.0.1, {entry}")


def test_an_empty_allow_list_allows_nothing() -> None:
    # GIVEN / WHEN / THEN
    assert AllowList.parse("") == AllowList.parse(None) == AllowList.parse(" , ") == NOBODY


@given(st.ip_addresses(v=4))
def test_ipv6_forms_embedding_an_ipv4_address_are_judged_like_it(address: ipaddress.IPv4Address) -> None:
    # GIVEN any IPv4 address and its IPv4-mapped, NAT64 and 6to4 forms
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80) | 1)

    # WHEN
    verdicts = {form: refusal_reason(form) is None for form in (address, mapped, nat64, sixtofour)}

    # THEN each form is allowed exactly when the IPv4 address is
    assert set(verdicts.values()) == {verdicts[address]}


@given(st.ip_addresses(v=4))
def test_every_allowed_ipv4_address_is_global_unicast(address: ipaddress.IPv4Address) -> None:
    # GIVEN / WHEN / THEN
    if refusal_reason(address) is None:
        assert address.is_global
        assert not address.is_multicast
        assert not address.is_private
        assert not address.is_reserved
        assert address not in ipaddress.IPv4Network("100.64.0.0/10")
