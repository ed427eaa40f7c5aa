"""The relay actions against real HTTP servers on 127.0.0.1, with moto for the bus, secrets and idempotency."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.action import ActionRunner, RetryLater
from correlator.compiler import Deployment, compile_rule
from correlator.configs import ActionConfig
from correlator.delivery import Delivery, parse_delivery
from correlator.event import new_event_id
from correlator.idempotency import OncePerKey
from correlator.internal import InternalEventEmitter
from correlator.publisher import EventPublisher
from correlator.relay_policy import RelaySettings
from correlator.rules import Rule
from correlator.secrets import SecretReader
from correlator.ssrf import AllowList
from functions.relay.relay import PinnedHttpClient, RelayAction, RelaySender
from tests.integration.relay_fixtures import (
    API_KEY,
    API_KEY_SECRET_NAME,
    SELF_URL,
    TABLE,
    create_backing_resources,
    delivery_of,
    signature_of,
)
from tests.integration.rules_fixtures import create_queue
from tests.probe import BUS_NAME, REGION, BusProbe, create_bus_probe
from tests.relay_doubles import Received, RecordingServer, Reply, create_test_ca, running
from tests.samples import load_event, post_events, with_headers

BUDGET_S = 30.0


@dataclass
class Clock:
    """The invocation's remaining time, spent by the relay's (recorded, not real) sleeps."""

    budget: float = BUDGET_S
    slept: list[float] = field(default_factory=list)

    def remaining(self) -> float:
        return self.budget - sum(self.slept)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def get_remaining_time_in_millis(self) -> int:
        """What Powertools idempotency reads from the Lambda context."""
        return int(self.remaining() * 1000)


@dataclass
class RelayStack:
    """The relay core wired as the relay function wires it, against moto and local servers."""

    runner: ActionRunner
    clock: Clock
    probe: BusProbe

    def deliver(self, delivery: Delivery[ActionConfig]) -> dict[str, Any]:
        """The runner's one result (``status`` = the outcome), without ``replayed``."""
        message = {"rule": delivery.rule.to_json(), "event": {"detail": delivery.event.to_detail()}}
        [result] = self.runner.handle(message, self.clock)["results"]
        return {key: value for key, value in result.items() if key != "replayed"}

    def results(self) -> list[dict[str, Any]]:
        """Result events emitted so far (internal events on the bus), oldest first."""
        return [detail for detail in self.probe.drain_details() if not detail["external"]]


def build_stack(
    probe: BusProbe, allowed: str, *, resolve: Any = None, ca_certs: str | None = None, self_url: str | None = SELF_URL
) -> RelayStack:
    settings = RelaySettings(allowed_hosts=AllowList.parse(allowed), self_url=self_url)
    clock = Clock()
    relay = RelayAction(
        settings,
        secrets=SecretReader(
            SecretsProvider(boto3_client=boto3.client("secretsmanager", region_name=REGION)),
            prefix=settings.secret_prefix,
        ),
        events_client_for=lambda region: boto3.client("events", region_name=region),
        sender=RelaySender(
            settings.allowed_hosts, client=PinnedHttpClient(ca_certs=ca_certs), resolve=resolve, sleep=clock.sleep
        ),
    )
    runner = ActionRunner(
        relay,
        emitter=InternalEventEmitter(EventPublisher(boto3.client("events", region_name=REGION), BUS_NAME)),
        metrics=Metrics(),
        log=Logger(service="relay"),
        once=OncePerKey(TABLE, key_prefix="relay", client=boto3.client("dynamodb", region_name=REGION)),
    )
    return RelayStack(runner, clock, probe)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with running(RecordingServer()) as started:
        yield started


@pytest.fixture
def other_server() -> Iterator[RecordingServer]:
    """A second server, not allow-listed unless a test says so."""
    with running(RecordingServer()) as started:
        yield started


@pytest.fixture
def stack(bus_probe: BusProbe, server: RecordingServer) -> RelayStack:
    """The relay with only the test server (its port) allow-listed."""
    create_backing_resources()
    return build_stack(bus_probe, f"127.0.0.1:{server.port}")


# ---- relay: what is sent ----


def test_relay_posts_the_event_with_chain_headers_and_a_verifiable_signature(
    stack: RelayStack, server: RecordingServer
) -> None:
    # GIVEN the sample relay rule, pointed at the local server
    message = load_event("eventbridge/relay-delivery")
    delivery = delivery_of("relay-delivery", url=server.url("/hooks/correlator?team=orders"))

    # WHEN
    result = stack.deliver(delivery)

    # THEN the server received the event JSON, once
    [received] = server.requests
    assert (received.method, received.path) == ("POST", "/hooks/correlator?team=orders")
    assert json.loads(received.body) == message["event"]["detail"]
    # AND the chain headers, the config header and the Host of the URL
    assert received.header("Content-Type") == "application/json"
    assert received.header("Host") == f"127.0.0.1:{server.port}"
    assert received.header("X-Request-Key") == "Req_1001"
    assert received.header("X-Event-Id") == "q4Jm0Xw2TSeWb7vK1nYc3A"
    assert received.header("X-Rule-Chain") == "1"
    assert received.header("X-Via") == SELF_URL
    assert received.header("X-Team") == "orders"
    assert received.header("Content-Length") == str(len(received.body))
    # AND a signature the receiver can verify over the exact bytes
    assert received.header("X-Correlator-Signature") == signature_of(received.body)
    assert "authorization" not in received.header_names
    # AND the result event: the status, hops + 1, the URL without its query
    assert result == {"status": "delivered", "info": "200", "object": server.url("/hooks/correlator")}
    [emitted] = stack.results()
    assert (emitted["type"], emitted["info"], emitted["object"]) == ("relay", "200", server.url("/hooks/correlator"))
    assert (emitted["level"], emitted["hops"], emitted["request_key"]) == ("INFO", 1, "Req_1001")
    assert emitted["system_id"] == "rule/forward-orders-to-erp"


def test_relay_without_a_secret_sends_no_signature_and_forwards_the_via_path(
    bus_probe: BusProbe, server: RecordingServer
) -> None:
    # GIVEN a stack that does not know its own URL and an event that already travelled
    create_backing_resources()
    stack = build_stack(bus_probe, f"127.0.0.1:{server.port}", self_url=None)
    message = load_event("eventbridge/relay-delivery")
    message["rule"]["config"] = {"url": server.url()}
    message["event"]["detail"]["via"] = ["https://a.example.com/", "https://b.example.com/x"]
    message["event"]["detail"]["hops"] = 2

    # WHEN
    stack.deliver(parse_delivery(message))

    # THEN
    [received] = server.requests
    assert "x-correlator-signature" not in received.header_names
    assert received.header("X-Via") == "https://a.example.com/,https://b.example.com/x"
    assert received.header("X-Rule-Chain") == "3"


def test_config_headers_never_replace_what_the_relay_sends(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN a rule (stored before these names were refused) whose headers try to override the relay's
    headers = {
        "X-Rule-Chain": "0",
        "Host": "metadata.internal",
        "Authorization": "Bearer leaked",
        "Content-Type": "text/plain",
        "X-Correlator-Signature": "sha256=forged",
        "X-Custom": "kept",
    }
    delivery = delivery_of("relay-delivery", url=server.url(), headers=headers)

    # WHEN
    stack.deliver(delivery)

    # THEN
    [received] = server.requests
    assert received.header("X-Rule-Chain") == "1"
    assert received.header("Host") == f"127.0.0.1:{server.port}"
    assert received.header("Content-Type") == "application/json"
    assert received.header("X-Correlator-Signature") == signature_of(received.body)
    assert "authorization" not in received.header_names
    assert received.header("X-Custom") == "kept"


def test_a_body_template_is_rendered_sent_with_its_content_type_and_signed(
    stack: RelayStack, server: RecordingServer
) -> None:
    # GIVEN a Slack-style body template (event data JSON-escaped by to_json)
    body = '{"text": ${to_json("[" + event.level + "] " + event.summary)}, "object": ${to_json(event.object)}}'
    delivery = delivery_of(
        "relay-delivery", url=server.url(), body=body, content_type="application/json; charset=utf-8"
    )

    # WHEN
    result = stack.deliver(delivery)

    # THEN the receiver got the rendered body, its content type and a signature over those bytes
    [received] = server.requests
    assert json.loads(received.body) == {"text": "[INFO] Order 1001 created", "object": "orders/1001"}
    assert received.header("Content-Type") == "application/json; charset=utf-8"
    assert received.header("X-Correlator-Signature") == signature_of(received.body)
    assert received.header("X-Event-Id") == "q4Jm0Xw2TSeWb7vK1nYc3A"
    assert result["info"] == "200"


def test_a_form_body_template_escapes_event_data_with_url_quoting(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN a form-encoded body whose event data carries "&" and "=" (Mako's u filter quotes them)
    message = load_event("eventbridge/relay-delivery")
    message["rule"]["config"].update(
        url=server.url(),
        body="text=${event.summary | u}&level=${event.level}",
        content_type="application/x-www-form-urlencoded",
    )
    message["event"]["detail"]["summary"] = "a&b=c d"

    # WHEN
    stack.deliver(parse_delivery(message))

    # THEN
    [received] = server.requests
    assert received.body == b"text=a%26b%3Dc+d&level=INFO"
    assert received.header("Content-Type") == "application/x-www-form-urlencoded"
    assert received.header("X-Correlator-Signature") == signature_of(received.body)


@pytest.mark.parametrize(
    ("body", "code"),
    [("${event.no_such_field}", "TemplateError"), ("${", "TemplateError"), ("${'x' * 300000}", "body_too_large")],
)
def test_a_failing_body_template_sends_nothing_and_reports_why(
    stack: RelayStack, server: RecordingServer, body: str, code: str
) -> None:
    # GIVEN / WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url(), body=body))

    # THEN nothing was sent; a permanent failure (no retry) whose result event says why
    assert server.requests == []
    assert (result["info"], result["status"]) == (code, "blocked")
    [emitted] = stack.results()
    assert (emitted["info"], emitted["level"]) == (code, "ERROR")


def test_a_secret_outside_the_relay_prefix_is_never_read(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN a secret name outside correlator/relay/ (IAM would refuse it too)
    delivery = delivery_of("relay-delivery", url=server.url(), secret_name="prod/database-password")

    # WHEN
    result = stack.deliver(delivery)

    # THEN nothing is sent and the result says why
    assert server.requests == []
    assert result["info"] == "secret_not_allowed"
    [emitted] = stack.results()
    assert (emitted["info"], emitted["level"]) == ("secret_not_allowed", "ERROR")


def test_a_missing_secret_is_a_permanent_failure(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN / WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url(), secret_name="correlator/relay/missing"))

    # THEN
    assert server.requests == []
    assert (result["info"], result["status"]) == ("secret_unavailable", "blocked")


# ---- relay: the SSRF guard at send time ----


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",  # loopback; only 127.0.0.1:<server port> is allow-listed
        "http://127.0.0.1:{other}/hook",  # allow-listing is per port
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]:8443/hook",
        "https://private.hooks.example/hook",  # resolves to 10.20.30.40 (see the fake resolver)
        "https://rebind.hooks.example:8443/hook",  # resolves to 127.0.0.1
        "http://hooks.example.com/hook",  # plain http to a host that is not allow-listed
        "https://user:secret@127.0.0.1:{port}/hook",
        "https://hooks.example.com:22/hook",
    ],
)
def test_ssrf_attempts_are_refused_without_sending(
    stack: RelayStack,
    server: RecordingServer,
    other_server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
) -> None:
    # GIVEN a resolver that maps the test names to non-public addresses
    real_getaddrinfo = socket.getaddrinfo
    answers = {"private.hooks.example": "10.20.30.40", "rebind.hooks.example": "127.0.0.1"}

    def fake_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    target = url.format(port=server.port, other=other_server.port)

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=target, event_id=new_event_id()))

    # THEN nothing reached either server, and the result event says "blocked"
    assert server.requests == []
    assert other_server.requests == []
    assert (result["info"], result["status"]) == ("blocked", "blocked")
    [emitted] = stack.results()
    assert (emitted["type"], emitted["info"], emitted["level"]) == ("relay", "blocked", "ERROR")
    assert emitted["payload"]["reason"]
    assert "secret" not in emitted["object"]


def test_a_redirect_to_the_metadata_address_is_refused(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN the allowed server redirects to the instance metadata service
    server.reply(Reply(307, {"Location": "http://169.254.169.254/latest/meta-data/"}))

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url()))

    # THEN only the first request was made
    assert len(server.requests) == 1
    assert result["info"] == "blocked"
    [emitted] = stack.results()
    assert emitted["payload"]["redirects"] == 1
    assert "169.254.169.254" in emitted["payload"]["reason"]


def test_a_redirect_to_a_port_that_is_not_allow_listed_is_refused(
    stack: RelayStack, server: RecordingServer, other_server: RecordingServer
) -> None:
    # GIVEN the allowed server redirects to another port of 127.0.0.1
    server.reply(Reply(302, {"Location": other_server.url("/steal")}))

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url()))

    # THEN
    assert len(server.requests) == 1
    assert other_server.requests == []
    assert result["info"] == "blocked"


def test_a_redirect_within_the_allowed_origin_is_followed_with_the_same_body(
    stack: RelayStack, server: RecordingServer
) -> None:
    # GIVEN a relative redirect
    server.reply(Reply(308, {"Location": "/moved/here"}))

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url("/old")))

    # THEN
    first, second = server.requests
    assert (first.path, second.path) == ("/old", "/moved/here")
    assert second.method == "POST"
    assert second.body == first.body
    assert second.header("X-Team") == "orders"
    assert second.header("X-Correlator-Signature") == signature_of(second.body)
    assert result["info"] == "200"
    assert stack.results()[0]["payload"]["redirects"] == 1


def test_a_redirect_to_another_allowed_origin_does_not_carry_config_headers(
    bus_probe: BusProbe, server: RecordingServer, other_server: RecordingServer
) -> None:
    # GIVEN both servers allow-listed, the first redirecting to the second
    create_backing_resources()
    stack = build_stack(bus_probe, f"127.0.0.1:{server.port}, 127.0.0.1:{other_server.port}")
    server.reply(Reply(307, {"Location": other_server.url("/elsewhere")}))

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url()))

    # THEN the second origin gets the event and its signature, not the rule's own headers
    [received] = other_server.requests
    assert "x-team" not in received.header_names
    assert received.header("X-Correlator-Signature") == signature_of(received.body)
    assert received.header("X-Rule-Chain") == "1"
    assert result["info"] == "200"


def test_redirect_loops_end(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN a server that always redirects to itself
    server.default = Reply(302, {"Location": server.url("/again")})

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url()))

    # THEN the first request and 3 redirects, then a permanent failure
    assert len(server.requests) == 4
    assert (result["info"], result["status"]) == ("too_many_redirects", "rejected")


# ---- relay: statuses, retries, time ----


def test_429_then_200_is_retried_after_retry_after_and_reported_once(
    stack: RelayStack, server: RecordingServer
) -> None:
    # GIVEN
    server.reply(Reply(429, {"Retry-After": "2"}))

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url()))

    # THEN two POSTs, 2 s apart, one successful result event
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body
    assert stack.clock.slept == [2.0]
    assert result["info"] == "200"
    [emitted] = stack.results()
    assert (emitted["info"], emitted["level"], emitted["payload"]) == ("200", "INFO", {"attempts": 2})


def test_404_is_a_permanent_result_without_retry(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN
    server.default = Reply(404)

    # WHEN
    result = stack.deliver(delivery_of("relay-delivery", url=server.url()))

    # THEN
    assert len(server.requests) == 1
    assert stack.clock.slept == []
    assert (result["info"], result["status"]) == ("404", "rejected")
    [emitted] = stack.results()
    assert (emitted["type"], emitted["info"], emitted["level"], emitted["hops"]) == ("relay", "404", "ERROR", 1)


def test_503_until_the_end_raises_for_lambda_to_retry(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN
    server.default = Reply(503)

    # WHEN / THEN
    with pytest.raises(RetryLater, match="503"):
        stack.deliver(delivery_of("relay-delivery", url=server.url()))
    assert len(server.requests) == 3
    assert len(stack.clock.slept) == 2
    assert all(0 < delay <= 8 for delay in stack.clock.slept)
    [emitted] = stack.results()
    assert (emitted["info"], emitted["level"], emitted["payload"]) == ("503", "ERROR", {"attempts": 3})


def test_retries_stop_when_the_invocation_has_no_time_for_another_attempt(
    stack: RelayStack, server: RecordingServer
) -> None:
    # GIVEN 12 s left and a server asking for 5 s of patience
    stack.clock.budget = 12.0
    server.default = Reply(503, {"Retry-After": "5"})

    # WHEN / THEN
    with pytest.raises(RetryLater):
        stack.deliver(delivery_of("relay-delivery", url=server.url()))
    assert len(server.requests) == 1
    assert stack.clock.slept == []


def test_a_refused_connection_is_retryable(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN an allow-listed port where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    stack = build_stack(stack.probe, f"127.0.0.1:{closed_port}")

    # WHEN / THEN
    with pytest.raises(RetryLater, match="connection_error"):
        stack.deliver(delivery_of("relay-delivery", url=f"http://127.0.0.1:{closed_port}/"))


# ---- relay: idempotency ----


def test_the_same_delivery_twice_posts_once(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN
    delivery = delivery_of("relay-delivery", url=server.url())

    # WHEN EventBridge or Lambda delivers it again
    first = stack.deliver(delivery)
    second = stack.deliver(delivery)

    # THEN one POST and one result event; the replay returns the recorded result
    assert len(server.requests) == 1
    assert second == first
    assert len(stack.results()) == 1


def test_a_failed_delivery_is_sent_again_by_the_retry(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN a first invocation that ran out of attempts
    server.reply(Reply(503), Reply(503), Reply(503))
    delivery = delivery_of("relay-delivery", url=server.url())
    with pytest.raises(RetryLater):
        stack.deliver(delivery)

    # WHEN Lambda retries the same delivery
    result = stack.deliver(delivery)

    # THEN it is sent again and succeeds; a further replay sends nothing
    assert result["info"] == "200"
    assert len(server.requests) == 4
    stack.deliver(delivery)
    assert len(server.requests) == 4


def test_another_rule_for_the_same_event_is_its_own_delivery(stack: RelayStack, server: RecordingServer) -> None:
    # GIVEN two rules relaying the same event
    message = load_event("eventbridge/relay-delivery")
    message["rule"]["config"]["url"] = server.url()
    first = parse_delivery(message)
    message["rule"]["name"] = "forward-orders-to-crm"
    second = parse_delivery(message)

    # WHEN
    stack.deliver(first)
    stack.deliver(second)

    # THEN
    assert len(server.requests) == 2


# ---- relay over HTTPS: the connection is pinned, TLS checks the URL's host name ----


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(
    bus_probe: BusProbe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an HTTPS server for "hooks.relay.test" (allow-listed: it resolves to 127.0.0.1)
    ca = create_test_ca(tmp_path)
    calls: list[str] = []

    def resolve(host: str, port: int, **kwargs: Any) -> Any:
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    create_backing_resources()
    with running(RecordingServer(tls=ca.server_context("hooks.relay.test", tmp_path))) as tls_server:
        stack = build_stack(bus_probe, "hooks.relay.test", resolve=resolve, ca_certs=str(ca.cert_path))

        # WHEN
        result = stack.deliver(delivery_of("relay-delivery", url=tls_server.url("/in", host="hooks.relay.test")))

    # THEN the name was resolved once, TLS was verified for it (SNI) and Host names it
    assert result["info"] == "200"
    assert calls == ["hooks.relay.test"]
    [received] = tls_server.requests
    assert received.server_name == "hooks.relay.test"
    assert received.header("Host") == f"hooks.relay.test:{tls_server.port}"


def test_https_to_a_server_with_another_host_name_fails_tls(bus_probe: BusProbe, tmp_path: Path) -> None:
    # GIVEN a server whose certificate names another host
    ca = create_test_ca(tmp_path)

    def resolve(host: str, port: int, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    create_backing_resources()
    with running(RecordingServer(tls=ca.server_context("someone-else.test", tmp_path))) as tls_server:
        stack = build_stack(bus_probe, "hooks.relay.test", resolve=resolve, ca_certs=str(ca.cert_path))

        # WHEN
        result = stack.deliver(delivery_of("relay-delivery", url=tls_server.url("/in", host="hooks.relay.test")))

    # THEN
    assert tls_server.requests == []
    assert (result["info"], result["status"]) == ("tls_error", "rejected")


# ---- relay.event: to another Correlator (here: this one, behind the test server) ----


def correlator_behind(server: RecordingServer, reception: ModuleType, context: LambdaContext) -> None:
    """Serve ``POST /events`` from the reception handler, as API Gateway would (API key checked)."""

    def respond(request: Received) -> Reply:
        if request.path != "/dev/events":
            return Reply(404)
        if request.header("x-api-key") != API_KEY:
            return Reply(403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}')
        event = post_events(
            request.body.decode(),
            X_Request_Key=request.header("X-Request-Key"),
            X_Rule_Chain=request.header("X-Rule-Chain"),
            X_Via=request.header("X-Via"),
            Content_Type=request.header("Content-Type"),
            x_api_key=request.header("x-api-key"),
        )
        event["requestContext"]["identity"]["apiKeyId"] = "relay-peer"
        response = reception.lambda_handler(with_headers(event), context)
        return Reply(response["statusCode"], {"Content-Type": "application/json"}, response["body"].encode())

    server.responder = respond


def test_relay_event_submits_the_client_fields_as_an_external_event_there(
    stack: RelayStack, server: RecordingServer, reception: ModuleType, lambda_context: LambdaContext
) -> None:
    # GIVEN another Correlator at the test server
    correlator_behind(server, reception, lambda_context)
    message = load_event("eventbridge/relay-event-delivery")
    original = message["event"]["detail"]

    # WHEN
    result = stack.deliver(delivery_of("relay-event-delivery", url=server.url("/dev/events")))

    # THEN the body holds the client fields only, the type prefixed relay.ext.
    [received] = server.requests
    body = json.loads(received.body)
    client_fields = {"type", "level", "kind", "time", "object", "info", "summary", "system_id", "payload", "schema"}
    assert set(body) == client_fields
    assert body["type"] == "relay.ext.order.created"
    assert {key: body[key] for key in client_fields - {"type"}} == {
        key: original[key] for key in client_fields - {"type"}
    }
    # AND the API key, request key, hops + 1 and the via path with this deployment appended
    assert received.header("x-api-key") == API_KEY
    assert received.header("X-Request-Key") == "Req_1001"
    assert received.header("X-Rule-Chain") == "1"
    assert received.header("X-Via") == f"https://correlator.eu.example.com/prod,{SELF_URL}"
    # AND the other side accepted it as an external event with those chain fields
    assert result["info"] == "200"
    details = stack.probe.drain_details()
    [relayed] = [detail for detail in details if detail["external"]]
    assert (relayed["type"], relayed["hops"], relayed["request_key"]) == ("relay.ext.order.created", 1, "Req_1001")
    assert relayed["via"] == ["https://correlator.eu.example.com/prod", SELF_URL]
    assert relayed["subject"] == "relay-peer"
    assert relayed["id"] != original["id"]
    [emitted] = [detail for detail in details if not detail["external"]]
    assert (emitted["type"], emitted["info"], emitted["hops"]) == ("relay.event", "200", 1)


@pytest.mark.parametrize(
    ("external", "type_", "relayed_type"),
    [(False, "rule.create", "relay.rule.create"), (True, "relay.ext.order.created", "relay.ext.order.created")],
)
def test_relay_event_prefixes_internal_events_with_relay_and_never_twice(
    stack: RelayStack, server: RecordingServer, external: bool, type_: str, relayed_type: str
) -> None:
    # GIVEN
    message = load_event("eventbridge/relay-event-delivery")
    message["rule"]["config"]["url"] = server.url("/dev/events")
    message["event"]["detail"].update(external=external, type=type_)

    # WHEN
    stack.deliver(parse_delivery(message))

    # THEN
    [received] = server.requests
    assert json.loads(received.body)["type"] == relayed_type


def test_relay_event_with_a_wrong_api_key_is_a_permanent_403(
    stack: RelayStack, server: RecordingServer, reception: ModuleType, lambda_context: LambdaContext
) -> None:
    # GIVEN the key in Secrets Manager is not the other side's
    correlator_behind(server, reception, lambda_context)
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=API_KEY_SECRET_NAME, SecretString="not-the-key"
    )

    # WHEN
    result = stack.deliver(delivery_of("relay-event-delivery", url=server.url("/dev/events")))

    # THEN
    assert (result["info"], result["status"]) == ("403", "rejected")


def test_relay_event_to_this_stack_stops_at_max_hops(
    stack: RelayStack,
    server: RecordingServer,
    bus_probe: BusProbe,
    reception: ModuleType,
    lambda_context: LambdaContext,
) -> None:
    # GIVEN this Correlator behind the test server, and a rule relaying every external "*.ping" to it;
    # an SQS queue stands in for the relay function (moto cannot invoke Lambda targets)
    correlator_behind(server, reception, lambda_context)
    relay_queue, dead_letters = create_queue("correlator-test-relay"), create_queue("correlator-test-relay-dlq")
    rule = Rule.model_validate(
        {
            "name": "ping-myself",
            "match": {"external": True, "type": ".ping"},
            "action": "relay.event",
            "config": {"url": server.url("/dev/events"), "api_key_secret": API_KEY_SECRET_NAME},
        }
    )
    deployment = Deployment(BUS_NAME, 3, {"relay.event": relay_queue.arn}, dead_letters.arn)
    compiled = compile_rule(rule, deployment)
    events = boto3.client("events", region_name=REGION)
    events.put_rule(**compiled.put_rule)
    events.put_targets(**compiled.put_targets)
    first = reception.lambda_handler(post_events({"type": "order.ping"}, X_Request_Key="ping-1"), lambda_context)
    assert first["statusCode"] == 200

    # WHEN every delivery is run through the relay until none is left (bounded)
    rounds = 0
    while (bodies := relay_queue.drain()) and rounds < 10:
        rounds += 1
        for body in bodies:
            stack.deliver(parse_delivery(body))

    # THEN the event went round three times (hops 0, 1, 2 matched) and stopped at MaxHops = 3
    assert rounds == 3
    assert [request.header("X-Rule-Chain") for request in server.requests] == ["1", "2", "3"]
    assert [request.header("X-Via") for request in server.requests] == [
        SELF_URL,
        f"{SELF_URL},{SELF_URL}",
        f"{SELF_URL},{SELF_URL},{SELF_URL}",
    ]
    details = bus_probe.drain_details()
    external = [(d["type"], d["hops"]) for d in details if d["external"]]
    assert external == [
        ("order.ping", 0),
        ("relay.ext.order.ping", 1),
        ("relay.ext.order.ping", 2),
        ("relay.ext.order.ping", 3),
    ]
    results = [(d["type"], d["info"], d["hops"]) for d in details if not d["external"]]
    assert results == [("relay.event", "200", 1), ("relay.event", "200", 2), ("relay.event", "200", 3)]
    assert all(d["request_key"] == "ping-1" for d in details)
    assert dead_letters.drain() == []


# ---- relay.bus ----


def test_relay_bus_puts_the_same_event_on_the_other_bus_with_hops_plus_one(stack: RelayStack) -> None:
    # GIVEN a second bus (another Correlator's) with a probe on it
    audit = create_bus_probe("correlator-audit")
    audit_arn = boto3.client("events", region_name=REGION).describe_event_bus(Name="correlator-audit")["Arn"]
    message = load_event("eventbridge/relay-bus-delivery")
    original = message["event"]

    # WHEN
    result = stack.deliver(delivery_of("relay-bus-delivery", bus_arn=audit_arn))

    # THEN the other bus has the event: same source, detail type and detail, but hops + 1 (and the via path)
    [delivered] = audit.drain()
    assert (delivered["source"], delivered["detail-type"]) == (original["source"], original["detail-type"])
    assert delivered["detail"] == {**original["detail"], "hops": 2, "via": [SELF_URL]}
    # AND the result event says "accepted"
    assert result == {"status": "delivered", "info": "accepted", "object": audit_arn}
    [emitted] = stack.results()
    assert (emitted["type"], emitted["object"], emitted["info"], emitted["hops"]) == (
        "relay.bus",
        audit_arn,
        "accepted",
        2,
    )


def test_relay_bus_is_idempotent(stack: RelayStack) -> None:
    # GIVEN
    audit = create_bus_probe("correlator-audit")
    audit_arn = boto3.client("events", region_name=REGION).describe_event_bus(Name="correlator-audit")["Arn"]
    delivery = delivery_of("relay-bus-delivery", bus_arn=audit_arn)

    # WHEN
    stack.deliver(delivery)
    stack.deliver(delivery)

    # THEN
    assert len(audit.drain()) == 1
