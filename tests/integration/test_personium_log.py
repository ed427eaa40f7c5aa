"""Personium's event-log API (/__log) on moto: PROPFIND multistatus, downloads, deletion, errors, audit events."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Any
from xml.etree import ElementTree

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from correlator.eventlog import ARCHIVE_PREFIX, CURRENT_KEY
from tests.conftest import BucketFor, fresh_import
from tests.probe import BusProbe
from tests.s3_doubles import all_objects
from tests.samples import HttpAnswer, load_event, with_headers

PERSONIUM_MODULE = "functions.personium.app"
LOG_BUCKET = "correlator-personium-log-test"
USER_ARN = "arn:aws:iam::123456789012:user/ops-admin"
OLD_ARCHIVE = "default.log.1795359159778"
NEW_ARCHIVE = "default.log.1795445559778"
LINE = b'2026-11-22T14:52:39.778Z,[INFO ],"Req_1001","true",null,null,"order.created",null,null\n'
BASE = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev"
DAV = "{DAV:}"


class HttpResponse(HttpAnswer):
    def xml(self) -> ElementTree.Element:
        return ElementTree.fromstring(self.body)


@pytest.fixture
def s3(bus_probe: BusProbe, s3_bucket: BucketFor) -> Any:
    return s3_bucket(LOG_BUCKET, env="LOG_BUCKET_NAME")


@pytest.fixture
def personium(s3: Any) -> ModuleType:
    return fresh_import(PERSONIUM_MODULE)


@pytest.fixture
def seeded(s3: Any) -> dict[str, str]:
    """A current log (generation 1795500000000) and two archives; returns the bucket's fingerprint."""
    s3.put_object(
        Bucket=LOG_BUCKET,
        Key=CURRENT_KEY,
        Body=LINE * 3,
        ContentType="text/csv",
        Metadata={"generation": "1795500000000"},
    )
    for name, lines in ((OLD_ARCHIVE, 1000), (NEW_ARCHIVE, 2000)):
        s3.put_object(
            Bucket=LOG_BUCKET,
            Key=ARCHIVE_PREFIX + name,
            Body=gzip.compress(LINE * lines),
            ContentType="text/csv",
            ContentEncoding="gzip",
            Metadata={"uncompressed-size": str(len(LINE) * lines)},
        )
    return all_objects(s3, LOG_BUCKET)


@pytest.fixture
def call(personium: ModuleType, lambda_context: LambdaContext) -> Any:
    """Call a /__log route as API Gateway does (IAM caller, execute-api host, stage dev)."""

    def invoke(method: str, path: str, body: str | None = None, **headers: str | None) -> HttpResponse:
        event = load_event("apigw/personium-post-event")
        resource = path
        parameters = None
        if path.startswith("/__log/archive/"):
            resource, parameters = "/__log/archive/{name}", {"name": path.rsplit("/", 1)[1]}
        event.update(resource=resource, path=path, httpMethod=method, body=body, pathParameters=parameters)
        event["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/dev{path}")
        event["requestContext"]["identity"].update(userArn=USER_ARN, apiKeyId=None, apiKey=None)
        with_headers(event, x_api_key=None, X_Personium_RequestKey=None, Content_Type=None, **headers)
        return HttpResponse.of(personium.lambda_handler(event, lambda_context))

    return invoke


def responses_of(answer: HttpResponse) -> dict[str, dict[str, str | None]]:
    """Each ``<response>`` of a multistatus by href: its property texts (resourcetype: "collection" or "")."""
    assert answer.status == 207, answer.body
    assert answer.headers["content-type"] == "application/xml"
    root = answer.xml()
    assert root.tag == f"{DAV}multistatus"
    result: dict[str, dict[str, str | None]] = {}
    for response in root.findall(f"{DAV}response"):
        [propstat] = response.findall(f"{DAV}propstat")
        assert propstat.findtext(f"{DAV}status") == "HTTP/1.1 200 OK"
        prop = propstat.find(f"{DAV}prop")
        assert prop is not None
        values: dict[str, str | None] = {child.tag.removeprefix(DAV): child.text for child in prop}
        resourcetype = prop.find(f"{DAV}resourcetype")
        assert resourcetype is not None
        values["resourcetype"] = "collection" if resourcetype.find(f"{DAV}collection") is not None else ""
        result[str(response.findtext(f"{DAV}href"))] = values
    return result


# ---- PROPFIND ----


def test_propfind_archive_depth_1_lists_the_collection_and_each_archive(call: Any, seeded: dict[str, str]) -> None:
    # WHEN a WebDAV client lists the archive collection
    answer = call("PROPFIND", "/__log/archive", Depth="1")

    # THEN the collection and both archives, with Personium's properties
    listed = responses_of(answer)
    assert list(listed) == [
        f"{BASE}/__log/archive",
        f"{BASE}/__log/archive/{OLD_ARCHIVE}",
        f"{BASE}/__log/archive/{NEW_ARCHIVE}",
    ]
    collection = listed[f"{BASE}/__log/archive"]
    assert set(collection) == {"creationdate", "getlastmodified", "resourcetype"}
    assert collection["resourcetype"] == "collection"
    old = listed[f"{BASE}/__log/archive/{OLD_ARCHIVE}"]
    assert set(old) == {"creationdate", "getlastmodified", "getcontentlength", "getcontenttype", "resourcetype"}
    assert old["getcontentlength"] == str(len(LINE) * 1000)  # uncompressed, as Personium
    assert old["getcontenttype"] == "text/csv"
    assert old["resourcetype"] == ""
    # the archive began at its generation (its name): 1795359159778 ms
    assert old["creationdate"] == "2026-11-22T14:52:39.778+0000"
    assert collection["creationdate"] == old["creationdate"]
    modified = parsedate_to_datetime(str(old["getlastmodified"]))
    assert abs((modified - datetime.now(UTC)).total_seconds()) < 60


def test_propfind_depth_0_is_the_collection_only(call: Any, seeded: dict[str, str]) -> None:
    assert list(responses_of(call("PROPFIND", "/__log/archive", Depth="0"))) == [f"{BASE}/__log/archive"]


def test_propfind_current_lists_default_log_only_when_it_exists(call: Any, s3: Any, seeded: dict[str, str]) -> None:
    listed = responses_of(call("PROPFIND", "/__log/current", Depth="1"))
    assert list(listed) == [f"{BASE}/__log/current", f"{BASE}/__log/current/default.log"]
    assert listed[f"{BASE}/__log/current/default.log"]["getcontentlength"] == str(len(LINE) * 3)
    assert listed[f"{BASE}/__log/current/default.log"]["creationdate"] == "2026-11-24T06:00:00.000+0000"

    # WHEN there is no current log
    s3.delete_object(Bucket=LOG_BUCKET, Key=CURRENT_KEY)

    # THEN the collection alone
    assert list(responses_of(call("PROPFIND", "/__log/current", Depth="1"))) == [f"{BASE}/__log/current"]


def test_propfind_on_one_file(call: Any, seeded: dict[str, str]) -> None:
    assert list(responses_of(call("PROPFIND", f"/__log/archive/{NEW_ARCHIVE}", Depth="0"))) == [
        f"{BASE}/__log/archive/{NEW_ARCHIVE}"
    ]
    assert list(responses_of(call("PROPFIND", "/__log/current/default.log", Depth="1"))) == [
        f"{BASE}/__log/current/default.log"
    ]


@pytest.mark.parametrize(
    "body",
    [
        "",
        '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
        '<propfind xmlns="DAV:"><allprop/></propfind>',
    ],
)
def test_an_empty_or_allprop_body_is_allprop(call: Any, seeded: dict[str, str], body: str) -> None:
    assert len(responses_of(call("PROPFIND", "/__log/archive", body, Depth="1"))) == 3


def test_post_with_method_override_is_a_propfind(call: Any, seeded: dict[str, str]) -> None:
    answer = call("POST", "/__log/archive", X_HTTP_Method_Override="PROPFIND", Depth="1")
    assert len(responses_of(answer)) == 3


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    '<propfind xmlns="DAV:"><allprop/>&lol2;</propfind>'
)


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code", "message"),
    [
        ("/__log/archive", {}, None, 400, "PR400-DV-0003", "Invalid depth header value:[null]."),
        ("/__log/archive", {"Depth": "2"}, None, 400, "PR400-DV-0003", "Invalid depth header value:[2]."),
        ("/__log/archive", {"Depth": "infinity"}, None, 403, "PR403-DV-0001", "Infinite depth is not supported."),
        ("/__log/archive", {"Depth": "1"}, "<propfind", 400, "PR400-DV-0001", "XML parse error."),
        ("/__log/archive", {"Depth": "1"}, BILLION_LAUGHS, 400, "PR400-DV-0001", "XML parse error."),
        ("/__log/archive", {"Depth": "1"}, "x" * 70_000, 400, "PR400-DV-0001", "XML parse error."),
        (
            "/__log/archive",
            {"Depth": "1"},
            '<D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/></D:prop></D:propfind>',
            400,
            "PR400-DV-0002",
            "XML content error.",
        ),
        ("/__log/archive", {"Depth": "1"}, "<allprop/>", 400, "PR400-DV-0002", "XML content error."),
        (
            "/__log/archive/default.log.1",
            {"Depth": "0"},
            None,
            404,
            "PR404-DV-0001",
            "Resource not found. [default.log.1].",
        ),
        (
            "/__log/archive/default.log.1402910774659",
            {"Depth": "0"},
            None,
            404,
            "PR404-DV-0001",
            "Resource not found. [default.log.1402910774659].",
        ),
    ],
)
def test_bad_propfinds_get_personiums_errors(
    call: Any,
    seeded: dict[str, str],
    path: str,
    headers: dict[str, str],
    body: str | None,
    status: int,
    code: str,
    message: str,
) -> None:
    answer = call("PROPFIND", path, body, **headers)
    assert answer.status == status, answer.body
    assert answer.json() == {"code": code, "message": {"lang": "en", "value": message}}


# ---- GET / DELETE ----


def test_get_current_redirects_to_a_presigned_url(call: Any, seeded: dict[str, str]) -> None:
    answer = call("GET", "/__log/current/default.log")
    assert answer.status == 302
    assert "logs/current/default.log" in answer.headers["location"]


def test_get_current_without_a_log_is_an_empty_200(call: Any, s3: Any) -> None:
    answer = call("GET", "/__log/current/default.log")
    assert (answer.status, answer.body, answer.headers["content-type"]) == (200, "", "text/csv")


def test_get_archive_redirects_and_a_missing_one_is_404(call: Any, seeded: dict[str, str]) -> None:
    assert call("GET", f"/__log/archive/{OLD_ARCHIVE}").status == 302
    missing = call("GET", "/__log/archive/default.log.1402910774659")
    assert missing.json()["code"] == "PR404-DV-0001"
    assert call("GET", "/__log/archive/..%2Fcurrent%2Fdefault.log").status == 404


def test_delete_archive_deletes_that_archive_only(
    call: Any, s3: Any, seeded: dict[str, str], bus_probe: BusProbe
) -> None:
    # WHEN the old archive is deleted
    answer = call("DELETE", f"/__log/archive/{OLD_ARCHIVE}")

    # THEN 204, and nothing else in the bucket changed
    assert answer.status == 204, answer.body
    remaining = all_objects(s3, LOG_BUCKET)
    assert remaining == {key: etag for key, etag in seeded.items() if key != ARCHIVE_PREFIX + OLD_ARCHIVE}
    # AND the call is audited like DELETE /logs/archive/{name}
    [event] = bus_probe.drain()
    assert (event["detail"]["type"], event["detail"]["info"]) == ("log.delete", "204")
    assert event["detail"]["object"] == f"/__log/archive/{OLD_ARCHIVE}"
    assert event["detail"]["subject"] == USER_ARN


@pytest.mark.parametrize("name", ["default.log.1402910774659", "default.log", "..%2Fcurrent%2Fdefault.log", "x" * 300])
def test_delete_of_a_missing_or_bad_name_is_404_and_touches_nothing(
    call: Any, s3: Any, seeded: dict[str, str], name: str
) -> None:
    answer = call("DELETE", f"/__log/archive/{name}")
    assert answer.status == 404
    assert answer.json()["code"] == "PR404-DV-0001"
    assert all_objects(s3, LOG_BUCKET) == seeded


def test_delete_current_is_pr400_ev_0005(call: Any, s3: Any, seeded: dict[str, str]) -> None:
    answer = call("DELETE", "/__log/current/default.log")
    assert answer.status == 400
    assert answer.json() == {
        "code": "PR400-EV-0005",
        "message": {"lang": "en", "value": "Cannot delete current eventLog file."},
    }
    assert all_objects(s3, LOG_BUCKET) == seeded


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/__log/archive"),
        ("DELETE", "/__log/current"),
        ("PUT", "/__log/current/default.log"),
        ("MKCOL", "/__log/archive/x"),
    ],
)
def test_other_methods_are_405(call: Any, seeded: dict[str, str], method: str, path: str) -> None:
    answer = call(method, path)
    assert answer.status == 405
    assert answer.json()["code"] == "PR405-MC-0001"
