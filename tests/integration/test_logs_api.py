"""The event-log admin API on moto: list, presigned downloads, archive deletion, settings, audit events."""

from __future__ import annotations

import gzip
import json
import re
import sys
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from correlator.eventlog import ARCHIVE_PREFIX, CURRENT_KEY, SETTINGS_KEY
from tests.conftest import BucketFor, fresh_import
from tests.probe import BUS_NAME, REGION, BusProbe
from tests.s3_doubles import all_objects
from tests.samples import HOSTILE_BODIES, HostileBody, HttpAnswer, load_event, with_headers, with_raw_body

LOGS_MODULE = "functions.logs.app"
LOG_BUCKET = "correlator-logs-api-test"
USER_ARN = "arn:aws:iam::123456789012:user/ops-admin"
ERROR_KEYS = {"code", "message", "details"}
OLD_ARCHIVE = "default.log.1795359159778"
NEW_ARCHIVE = "default.log.1795445559778"
CURRENT_BYTES = b'2026-11-22T14:52:39.778Z,[INFO ],"Req_1001","true",null,null,"order.created",null,null\n' * 3
HOSTILE_NAMES = [
    "../current/default.log",
    "%2e%2e%2fcurrent%2fdefault.log",
    "..%2Fcurrent%2Fdefault.log",
    "default.log",
    "/etc/passwd",
    "default.log.123",
    "default.log.12345678901234",
    "default.log.1795359159778/../../x",
    f"{OLD_ARCHIVE}\x00",
    "default.log.\x001795359159778",
    " default.log.1795359159778",
    "default.log.1795359159778.gz",
    "DEFAULT.LOG.1795359159778",
    "default.log.１７９５３５９１５９７７８",  # noqa: RUF001 - full-width digits match \d in Python
    "default.log.١٧٩٥٣٥٩١٥٩٧٧٨",  # Arabic-Indic digits: \d took them, and int() read them (GET 302, DELETE 204)
    "default.log.১৭৯৫৩৫৯১৫৯৭৭৮",  # Bengali digits
    f"{OLD_ARCHIVE}\n",  # a trailing %0A was dropped by the route's $: the real archive was deleted
    f"{OLD_ARCHIVE}/",
    "d" * 300,
]


@pytest.fixture
def s3(bus_probe: BusProbe, s3_bucket: BucketFor) -> Any:
    """The log bucket (the bus probe receives the audit events), and the function's environment."""
    return s3_bucket(LOG_BUCKET, env="LOG_BUCKET_NAME", service="logs")


@pytest.fixture
def logs(s3: Any) -> ModuleType:
    """``functions.logs.app`` imported afresh inside moto (it builds its clients at import)."""
    return fresh_import(LOGS_MODULE)


@pytest.fixture
def call(logs: ModuleType, lambda_context: LambdaContext) -> Any:
    def invoke(request: dict[str, Any]) -> HttpAnswer:
        return HttpAnswer.of(logs.lambda_handler(request, lambda_context))

    return invoke


@pytest.fixture
def seeded(s3: Any) -> dict[str, str]:
    """A current log and two archives; returns the bucket's fingerprint (every key with its ETag)."""
    s3.put_object(
        Bucket=LOG_BUCKET, Key=CURRENT_KEY, Body=CURRENT_BYTES, ContentType="text/csv", Metadata={"generation": "1"}
    )
    for name, lines in ((OLD_ARCHIVE, 1000), (NEW_ARCHIVE, 2000)):
        s3.put_object(
            Bucket=LOG_BUCKET,
            Key=ARCHIVE_PREFIX + name,
            Body=gzip.compress(CURRENT_BYTES[: len(CURRENT_BYTES) // 3] * lines),
            ContentType="text/csv",
            ContentEncoding="gzip",
            Metadata={"uncompressed-size": str(len(CURRENT_BYTES) // 3 * lines)},
        )
    return all_objects(s3, LOG_BUCKET)


def request(sample: str, *, name: str | None = None, body: Any = None) -> dict[str, Any]:
    """An API Gateway request from ``events/apigw/logs-{sample}.json``, for another archive name or body."""
    event = load_event(f"apigw/logs-{sample}")
    if name is not None:
        event["path"] = f"/logs/archive/{name}"
        event["requestContext"]["path"] = f"/dev/logs/archive/{name}"
        event["pathParameters"] = {"name": name}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def assert_error(response: HttpAnswer, status: int) -> dict[str, Any]:
    assert response.status == status, response.body
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["code"], str)
    assert body["message"]
    assert isinstance(body["details"], list)
    return body


def assert_audited(bus_probe: BusProbe, event_type: str, path: str, status: int) -> dict[str, Any]:
    """Exactly one internal event reached the bus, describing this call."""
    delivered = bus_probe.drain()
    assert len(delivered) == 1, delivered
    [envelope] = delivered
    detail: dict[str, Any] = envelope["detail"]
    assert (envelope["source"], envelope["detail-type"]) == ("correlator.internal", event_type)
    assert detail["type"] == event_type
    assert detail["object"] == path
    assert detail["info"] == str(status)
    assert detail["subject"] == USER_ARN
    assert detail["external"] is False
    return detail


def assert_presigned(location: str, key: str) -> None:
    url = urlsplit(location)
    query = parse_qs(url.query)
    assert url.scheme == "https"
    assert LOG_BUCKET in url.netloc + url.path
    assert unquote(url.path).endswith("/" + key)
    assert query.get("X-Amz-Expires") == ["300"] or "Expires" in query
    assert "X-Amz-Signature" in query or "Signature" in query


# ---- listing ----


def test_get_logs_lists_the_current_log_and_the_archives(call, seeded, bus_probe):
    # WHEN listing
    response = call(request("list"))

    # THEN the current file and the archives (oldest first) come with uncompressed sizes and dates
    assert response.status == 200, response.body
    listing = response.json()
    assert set(listing) == {"current", "archive"}
    assert [(item["name"], item["size"]) for item in listing["current"]] == [("default.log", len(CURRENT_BYTES))]
    assert [(item["name"], item["size"]) for item in listing["archive"]] == [
        (OLD_ARCHIVE, len(CURRENT_BYTES) // 3 * 1000),
        (NEW_ARCHIVE, len(CURRENT_BYTES) // 3 * 2000),
    ]
    for item in listing["current"] + listing["archive"]:
        assert set(item) == {"name", "size", "last_modified"}
        assert item["last_modified"].endswith("Z")
    # AND the call is audited
    assert_audited(bus_probe, "log.list", "/logs", 200)


def test_get_logs_of_an_empty_bucket(call, s3, bus_probe):
    # WHEN listing before anything was logged
    response = call(request("list"))

    # THEN both lists are empty
    assert (response.status, response.json()) == (200, {"current": [], "archive": []})
    assert_audited(bus_probe, "log.list", "/logs", 200)


# ---- downloads ----


def test_get_the_current_log_redirects_to_a_presigned_url(call, seeded, s3, bus_probe):
    # WHEN downloading the current log
    response = call(request("get-current"))

    # THEN it is a redirect to a short-lived presigned URL of that key, not the bytes
    assert response.status == 302, response.body
    assert_presigned(response.headers["location"], CURRENT_KEY)
    assert response.headers["cache-control"] == "no-store"
    assert response.body == ""
    assert all_objects(s3, LOG_BUCKET) == seeded
    assert_audited(bus_probe, "log.get", "/logs/current/default.log", 302)


def test_get_a_missing_current_log_is_an_empty_csv(call, s3, bus_probe):
    # WHEN downloading the current log before anything was logged
    response = call(request("get-current"))

    # THEN it is 200 with an empty text/csv body, and nothing was created
    assert (response.status, response.body) == (200, "")
    assert response.headers["content-type"] == "text/csv"
    assert all_objects(s3, LOG_BUCKET) == {}
    assert_audited(bus_probe, "log.get", "/logs/current/default.log", 200)


def test_get_an_archive_redirects_to_a_presigned_url(call, seeded, bus_probe):
    # WHEN downloading an archive
    response = call(request("get-archive", name=NEW_ARCHIVE))

    # THEN it is a redirect to that archive's presigned URL
    assert response.status == 302, response.body
    assert_presigned(response.headers["location"], ARCHIVE_PREFIX + NEW_ARCHIVE)
    assert_audited(bus_probe, "log.get", f"/logs/archive/{NEW_ARCHIVE}", 302)


def test_get_an_unknown_archive_is_404(call, seeded, bus_probe):
    # WHEN downloading a well-formed name that is not there
    response = call(request("get-archive", name="default.log.1795359159779"))

    # THEN 404 with the error body
    assert assert_error(response, 404)["code"] == "not_found"
    assert_audited(bus_probe, "log.get", "/logs/archive/default.log.1795359159779", 404)


# ---- deletion ----


def test_delete_an_archive(call, seeded, s3, bus_probe):
    # WHEN deleting the oldest archive
    response = call(request("delete-archive", name=OLD_ARCHIVE))

    # THEN 204, that object is gone and nothing else changed
    assert (response.status, response.body) == (204, "")
    expected = {key: etag for key, etag in seeded.items() if key != ARCHIVE_PREFIX + OLD_ARCHIVE}
    assert all_objects(s3, LOG_BUCKET) == expected
    assert_audited(bus_probe, "log.delete", f"/logs/archive/{OLD_ARCHIVE}", 204)

    # WHEN deleting it again
    again = call(request("delete-archive", name=OLD_ARCHIVE))

    # THEN it is 404 and nothing is touched
    assert_error(again, 404)
    assert all_objects(s3, LOG_BUCKET) == expected
    assert_audited(bus_probe, "log.delete", f"/logs/archive/{OLD_ARCHIVE}", 404)


def test_the_current_log_cannot_be_deleted(call, seeded, s3, bus_probe):
    # WHEN deleting the current log
    response = call(request("delete-current"))

    # THEN 400 and it is still there, unchanged
    assert assert_error(response, 400)["code"] == "bad_request"
    assert all_objects(s3, LOG_BUCKET) == seeded
    assert_audited(bus_probe, "log.delete", "/logs/current/default.log", 400)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize(("sample", "event_type"), [("get-archive", "log.get"), ("delete-archive", "log.delete")])
def test_a_malformed_or_hostile_name_is_404_and_touches_nothing(
    call, seeded, s3, bus_probe, name: str, sample: str, event_type: str
):
    # GIVEN a bucket with a current log and two archives
    # WHEN a malformed or hostile archive name is asked for
    response = call(request(sample, name=name))

    # THEN 404 with the error body, no redirect, and every object in the bucket is exactly as it was
    assert assert_error(response, 404)["code"] == "not_found"
    assert "location" not in response.headers
    assert all_objects(s3, LOG_BUCKET) == seeded
    assert_audited(bus_probe, event_type, f"/logs/archive/{name}", 404)


# ---- settings ----


def test_get_settings_defaults(call, s3, bus_probe):
    # WHEN reading settings that were never saved
    response = call(request("get-settings"))

    # THEN the defaults
    assert (response.status, response.json()) == (200, {"rotation_size_mb": 50, "generations": 12})
    assert_audited(bus_probe, "log.settings.get", "/logs/settings", 200)


def test_requests_without_a_body_skip_the_body_check(call, s3, bus_probe):
    # GIVEN a GET that declares a non-JSON content type (a browser or curl default)
    sample = with_headers(request("get-settings"), Content_Type="text/plain")

    # WHEN / THEN it is answered: only POST/PUT/PATCH bodies must be JSON objects
    assert call(sample).status == 200


def test_a_non_json_settings_body_is_refused_with_415(call, s3, bus_probe):
    # GIVEN / WHEN
    response = call(with_headers(request("put-settings"), Content_Type="text/plain"))

    # THEN
    assert (response.status, response.json()["code"]) == (415, "unsupported_media_type")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=LOG_BUCKET, Key=SETTINGS_KEY)


def test_put_settings_persists_them(call, s3, bus_probe):
    # WHEN saving the sample's settings
    response = call(request("put-settings"))

    # THEN they are answered back and persisted, and read back by GET
    assert (response.status, response.json()) == (200, {"rotation_size_mb": 20, "generations": 6})
    stored = json.loads(s3.get_object(Bucket=LOG_BUCKET, Key=SETTINGS_KEY)["Body"].read())
    assert stored == {"rotation_size_mb": 20, "generations": 6}
    assert_audited(bus_probe, "log.settings.update", "/logs/settings", 200)
    assert call(request("get-settings")).json() == {"rotation_size_mb": 20, "generations": 6}


def test_fewer_generations_prune_the_oldest_archives_at_once(call, s3, seeded):
    # GIVEN two archives (seeded)
    # WHEN generations is lowered to 1
    response = call(request("put-settings", body={"rotation_size_mb": 50, "generations": 1}))

    # THEN only the newest archive is left, without waiting for a rotation; the current log is untouched
    assert response.status == 200
    after = all_objects(s3, LOG_BUCKET)
    assert sorted(key for key in after if key.startswith(ARCHIVE_PREFIX)) == [ARCHIVE_PREFIX + NEW_ARCHIVE]
    assert after[CURRENT_KEY] == seeded[CURRENT_KEY]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"rotation_size_mb": 30}, 422),  # PUT replaces both: before, generations silently went back to 12
        ({"generations": 3}, 422),
        ({"rotation_size_mb": 0, "generations": 6}, 422),
        ({"rotation_size_mb": 1025, "generations": 6}, 422),
        ({"rotation_size_mb": 20, "generations": 13}, 422),
        ({"rotation_size_mb": 20, "generations": 0}, 422),
        ({"rotation_size_mb": "50", "generations": 6}, 422),
        ({"rotation_size_mb": 20, "generations": 6, "retention_days": 30}, 422),
        ("{rotation_size_mb: 20", 400),
        ("", 400),
        ([{"rotation_size_mb": 20}], 400),
    ],
    ids=[
        "size-only",
        "generations-only",
        "size-0",
        "size-1025",
        "generations-13",
        "generations-0",
        "size-string",
        "unknown-key",
        "not-json",
        "empty",
        "array",
    ],
)
def test_invalid_settings_are_refused_and_not_persisted(call, s3, bus_probe, body: Any, status: int):
    # GIVEN settings saved before
    call(request("put-settings"))
    bus_probe.drain()
    before = all_objects(s3, LOG_BUCKET)

    # WHEN saving invalid settings
    response = call(request("put-settings", body=body))

    # THEN they are refused with the error body, and the saved settings are unchanged
    error = assert_error(response, status)
    if status == 422:
        assert error["code"] == "validation_error"
        assert error["details"]
    assert all_objects(s3, LOG_BUCKET) == before
    assert call(request("get-settings")).json() == {"rotation_size_mb": 20, "generations": 6}
    delivered = bus_probe.drain()
    assert [(event["detail"]["type"], event["detail"]["info"]) for event in delivered] == [
        ("log.settings.update", str(status)),
        ("log.settings.get", "200"),
    ]


def test_invalid_settings_never_saved_stay_unsaved(call, s3, bus_probe):
    # WHEN the first settings ever sent are invalid
    response = call(request("put-settings", body={"rotation_size_mb": 0}))

    # THEN nothing is written
    assert_error(response, 422)
    assert all_objects(s3, LOG_BUCKET) == {}
    assert_audited(bus_probe, "log.settings.update", "/logs/settings", 422)


# ---- audit events ----


def test_the_audit_event_carries_the_callers_request_key(call, seeded, bus_probe):
    # WHEN a call carries a request key
    call(with_headers(request("list"), X_Request_Key="Ops_42"))

    # THEN its internal event carries it, with no hops
    detail = assert_audited(bus_probe, "log.list", "/logs", 200)
    assert (detail["request_key"], detail["hops"]) == ("Ops_42", 0)


def test_a_call_with_an_invalid_header_is_still_audited_with_its_caller(call, seeded, bus_probe):
    # WHEN a call carries an invalid request key
    response = call(with_headers(request("list"), X_Request_Key="not valid!"))

    # THEN the call itself is answered and its event still names the caller
    assert response.status == 200
    detail = assert_audited(bus_probe, "log.list", "/logs", 200)
    assert detail["request_key"] != "not valid!"


@pytest.mark.parametrize(
    ("make_request", "status"),
    [
        (lambda: request("list"), 200),
        (lambda: request("get-current"), 302),
        (lambda: request("get-archive", name="default.log.123"), 404),
        (lambda: request("delete-archive", name=OLD_ARCHIVE), 204),
        (lambda: request("delete-current"), 400),
        (lambda: request("put-settings"), 200),
        (lambda: request("put-settings", body={"generations": 13}), 422),
    ],
    ids=["list", "get-current", "get-archive-404", "delete-archive", "delete-current", "put-settings", "put-422"],
)
def test_calls_succeed_when_the_bus_is_unreachable(call, seeded, s3, capsys, make_request: Any, status: int):
    # GIVEN the event bus is gone
    boto3.client("events", region_name=REGION).delete_event_bus(Name=BUS_NAME)

    # WHEN calling the API
    response = call(make_request())

    # THEN the call gets its normal answer, and the lost internal event is counted
    assert response.status == status, response.body
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [blob.get("InternalEventsFailed") for blob in emitted] == [[1.0]]


@pytest.mark.parametrize("hostile", HOSTILE_BODIES, ids=lambda hostile: hostile.id)
def test_the_request_body_gate_guards_the_settings(call, s3, bus_probe, hostile: HostileBody):
    # WHEN the settings body is one that crashed a handler or changed on the way
    response = call(with_raw_body(request("put-settings"), hostile))

    # THEN it is refused as documented, and nothing is saved
    assert (response.status, response.json()["code"]) == (hostile.status, hostile.code)
    assert all_objects(s3, LOG_BUCKET) == {}
    assert_audited(bus_probe, "log.settings.update", "/logs/settings", hostile.status)


@pytest.mark.parametrize("suffix", ["/", "\n", "%0A", "\t", " "])
@pytest.mark.parametrize("sample", ["get-archive", "delete-archive"])
def test_a_path_that_only_loosely_matches_the_archive_is_404(call, seeded, s3, sample: str, suffix: str):
    # GIVEN the path as API Gateway passes it on (decoded), with the name right but something after it
    event = request(sample, name=OLD_ARCHIVE)
    event["path"] += suffix
    event["requestContext"]["path"] += suffix

    # WHEN / THEN it does not act on the real archive
    assert assert_error(call(event), 404)["code"] == "not_found"
    assert all_objects(s3, LOG_BUCKET) == seeded


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.one_of(
        st.text(min_size=1, max_size=40),
        st.from_regex(r"default\.log\.[0-9]{13}", fullmatch=True).map(lambda valid: valid + "\n"),
        st.builds(
            lambda digits, tail: "default.log." + digits + tail,
            st.text(st.characters(categories=["Nd"]), min_size=13, max_size=13),
            st.sampled_from(["", "/", "\n", "\x00", " ", "/.."]),
        ),
    ),
    method=st.sampled_from(["get-archive", "delete-archive"]),
)
def test_no_name_outside_the_grammar_reaches_s3(call, seeded, s3, name: str, method: str):
    # GIVEN every key the function asks S3 for is recorded
    keys: list[str] = []
    record = lambda params, **_: keys.append(params.get("Key", ""))  # noqa: E731
    event_log = sys.modules["functions.logs.app"].event_log
    event_log.s3.meta.events.register("provide-client-params.s3.*", record)
    event = request(method, name=name)
    try:
        # WHEN any generated name is asked for
        response = call(event)
    finally:
        event_log.s3.meta.events.unregister("provide-client-params.s3.*", record)

    # THEN S3 only ever sees a key of the archive grammar (ASCII digits, nothing after them)
    grammar = re.compile(r"logs/archive/default\.log\.[0-9]{13}")
    assert all(grammar.fullmatch(key) for key in keys), keys
    if not re.fullmatch(r"default\.log\.[0-9]{13}", name):
        assert response.status == 404
    assert all_objects(s3, LOG_BUCKET) == seeded or re.fullmatch(r"default\.log\.[0-9]{13}", name)
