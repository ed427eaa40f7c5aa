"""Personium's APIs on the local stack, over HTTP, as a Personium client calls them."""

from __future__ import annotations

import json
import re
import uuid
from xml.etree import ElementTree

import pytest
from webdav4.client import Client

from tests.local.conftest import LocalStack, wait_for

pytestmark = pytest.mark.slow

DEV_KEY = {"x-api-key": "local-dev-key"}
ADMIN_KEY = {"x-api-key": "local-admin-key"}
JSON = {"content-type": "application/json"}
BATCH_WAIT_SECONDS = 30


def current_log_lines(stack: LocalStack, needle: str, count: int = 1) -> list[str]:
    def lines() -> list[str]:
        response = stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY)
        found = [line for line in response.body.decode("utf-8").splitlines() if needle in line]
        return found if len(found) >= count else []

    found: list[str] = wait_for(lines, BATCH_WAIT_SECONDS, f"no log line with {needle}:\n{stack.logs()[-3000:]}")
    return found


# ---- /__event ----


def test_an_event_posted_to___event_reaches_the_log(stack: LocalStack) -> None:
    # GIVEN Personium's escaping case of EventTest, with a type Correlator accepts
    request_key = f"testRequestKey{uuid.uuid4().hex[:8]}"
    body = {"Type": "POST.test", "Object": 'Object""Data', "Info": 'resultData"'}

    # WHEN posted to /__event with Personium's request-key header and the API key of POST /events
    response = stack.request(
        "POST", "/__event", json.dumps(body), {**JSON, **DEV_KEY, "X-Personium-RequestKey": request_key}
    )

    # THEN 200 with an empty body and Personium's headers
    assert response.status == 200, response.body
    assert response.body == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["X-Personium-Version"] == "1.8.3"
    # AND the log-everything rule writes Personium's line for it
    [line] = current_log_lines(stack, f'"{request_key}"')
    assert line.endswith(
        f'"{request_key}","true",null,"local-dev-key-id","POST.test","Object""""Data","resultData"""'
    ), line


def test___event_needs_the_api_key(stack: LocalStack) -> None:
    response = stack.request("POST", "/__event", json.dumps({"Type": "a"}), JSON)
    assert response.status == 403


@pytest.mark.parametrize(
    ("method", "headers", "body", "status", "code"),
    [
        ("POST", {"X-Personium-RequestKey": "abc#123"}, "", 400, "PR400-EV-0002"),
        ("POST", {}, "{", 400, "PR400-CM-0004"),
        ("POST", {}, '{"Type": 1}', 400, "PR400-EV-0004"),
        ("GET", {}, None, 405, "PR405-MC-0001"),
        ("PUT", {}, None, 405, "PR405-MC-0001"),
        ("DELETE", {}, None, 405, "PR405-MC-0001"),
        ("PROPFIND", {}, None, 501, "PR501-MC-0001"),
        ("PROPPATCH", {}, None, 501, "PR501-MC-0001"),
    ],
)
def test___event_answers_personiums_errors(
    stack: LocalStack, method: str, headers: dict[str, str], body: str | None, status: int, code: str
) -> None:
    response = stack.request(method, "/__event", body, {**JSON, **DEV_KEY, **headers})
    assert response.status == status, response.body
    answer = response.json()
    assert answer["code"] == code
    assert answer["message"]["lang"] == "en"


# ---- /__log ----


def dav_client(stack: LocalStack) -> Client:
    """webdav4's client, as a Personium user would point it at the log (admin key in place of IAM)."""
    return Client(stack.url, headers=ADMIN_KEY, timeout=30)


def test_propfind_lists_the_log_collections_as_a_webdav_client_reads_them(stack: LocalStack) -> None:
    # GIVEN a line in the current log
    request_key = f"dav{uuid.uuid4().hex[:8]}"
    stack.request(
        "POST", "/__event", json.dumps({"Type": "dav.test"}), {**JSON, **DEV_KEY, "X-Personium-RequestKey": request_key}
    )
    current_log_lines(stack, f'"{request_key}"')
    client = dav_client(stack)

    # WHEN a WebDAV client lists /__log/current (PROPFIND, Depth: 1)
    [entry] = client.ls("/__log/current", detail=True)

    # THEN it sees default.log as a text/csv file with its size and dates
    assert isinstance(entry, dict)
    assert entry["name"] == "__log/current/default.log"
    assert entry["type"] == "file"
    assert entry["content_type"] == "text/csv"
    size = len(stack.request("GET", "/logs/current/default.log", headers=ADMIN_KEY).body)
    assert entry["content_length"] >= size > 0  # the log may have grown since
    assert entry["modified"] is not None
    assert entry["created"] is not None
    # AND the collections are collections (Depth given: Personium, like here, refuses a PROPFIND without it,
    # so webdav4's isdir/exists, which send none, get 400 from both)
    for collection in ("/__log/current", "/__log/archive"):
        [response] = client.propfind(collection, headers={"Depth": "0"}).responses.values()
        assert response.properties.resource_type == "directory"
    # AND the archive collection lists archives only
    assert all(item["name"].startswith("__log/archive/default.log.") for item in client.ls("/__log/archive"))
    # AND the file's own PROPFIND agrees
    assert client.info("/__log/current/default.log")["type"] == "file"


def test_propfind_answers_personiums_multistatus(stack: LocalStack) -> None:
    # WHEN PROPFIND Depth 0 with an allprop body
    body = '<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
    response = stack.request("PROPFIND", "/__log/archive", body, {**ADMIN_KEY, "Depth": "0"})

    # THEN 207 application/xml, one response: the collection with its href and properties
    assert response.status == 207, response.body
    assert response.headers["Content-Type"].startswith("application/xml")
    root = ElementTree.fromstring(response.body)
    [item] = root.findall("{DAV:}response")
    assert item.findtext("{DAV:}href") == f"{stack.url}/__log/archive"
    prop = item.find("{DAV:}propstat/{DAV:}prop")
    assert prop is not None
    assert prop.find("{DAV:}resourcetype/{DAV:}collection") is not None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", prop.findtext("{DAV:}creationdate") or "")
    assert (prop.findtext("{DAV:}getlastmodified") or "").endswith(" GMT")
    assert item.findtext("{DAV:}propstat/{DAV:}status") == "HTTP/1.1 200 OK"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "code"),
    [
        ("PROPFIND", "/__log/current", {}, None, 400, "PR400-DV-0003"),
        ("PROPFIND", "/__log/current", {"Depth": "2"}, None, 400, "PR400-DV-0003"),
        ("PROPFIND", "/__log/current", {"Depth": "infinity"}, None, 403, "PR403-DV-0001"),
        ("PROPFIND", "/__log/current", {"Depth": "1"}, "<propfind", 400, "PR400-DV-0001"),
        (
            "PROPFIND",
            "/__log/current",
            {"Depth": "1"},
            '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
            400,
            "PR400-DV-0002",
        ),
        ("PROPFIND", "/__log/archive/default.log.1", {"Depth": "0"}, None, 404, "PR404-DV-0001"),
        ("PROPFIND", "/__log/archive/default.log.1402910774659", {"Depth": "0"}, None, 404, "PR404-DV-0001"),
        ("GET", "/__log/archive/default.log.1402910774659", {}, None, 404, "PR404-DV-0001"),
        ("GET", "/__log/archive/other.log", {}, None, 404, "PR404-DV-0001"),
        ("DELETE", "/__log/archive/default.log.1402910774659", {}, None, 404, "PR404-DV-0001"),
        ("DELETE", "/__log/current/default.log", {}, None, 400, "PR400-EV-0005"),
        ("PUT", "/__log/current/default.log", {}, None, 405, "PR405-MC-0001"),
        ("GET", "/__log/current", {}, None, 405, "PR405-MC-0001"),
        ("POST", "/__log/current", {"X-HTTP-Method-Override": "PROPFIND"}, None, 400, "PR400-DV-0003"),
    ],
)
def test___log_answers_personiums_errors(
    stack: LocalStack, method: str, path: str, headers: dict[str, str], body: str | None, status: int, code: str
) -> None:
    response = stack.request(method, path, body, {**ADMIN_KEY, **headers})
    assert response.status == status, response.body
    assert response.json()["code"] == code


def test___log_is_iam_only(stack: LocalStack) -> None:
    # The API key of /events is not enough: the log routes stand behind IAM like /logs
    assert stack.request("PROPFIND", "/__log/current", None, {**DEV_KEY, "Depth": "1"}).status == 403
    assert stack.request("GET", "/__log/current/default.log", None, DEV_KEY).status == 403


def test_get_current_log_redirects_to_the_file(stack: LocalStack) -> None:
    # GIVEN a line in the log
    request_key = f"get{uuid.uuid4().hex[:8]}"
    stack.request(
        "POST", "/__event", json.dumps({"Type": "get.test"}), {**JSON, **DEV_KEY, "X-Personium-RequestKey": request_key}
    )
    current_log_lines(stack, f'"{request_key}"')

    # WHEN GET /__log/current/default.log is followed as an HTTP client does
    response = stack.request("GET", "/__log/current/default.log", headers=ADMIN_KEY)

    # THEN the body is the log (text/csv) with the line
    assert response.status == 200
    assert f'"{request_key}","true"'.encode() in response.body


# ---- /__ctl/Rule and /__rule ----


def test_a_personium_rule_and_its_correlator_twin_log_the_same_events(stack: LocalStack) -> None:
    # GIVEN a Personium rule through /__ctl/Rule (log.warn) and its Correlator twin through /rules (log.error)
    suffix = uuid.uuid4().hex[:8]
    personium = {
        "Name": f"p-{suffix}",
        "EventExternal": True,
        "EventType": f"twin{suffix}.",
        "EventInfo": "[2",
        "Action": "log.warn",
    }
    twin = {
        "name": f"c-{suffix}",
        "action": "log.error",
        "match": {"external": True, "type": f"twin{suffix}.", "info": "[2"},
    }
    created = stack.request("POST", "/__ctl/Rule", json.dumps(personium), {**JSON, **ADMIN_KEY})
    assert created.status == 201, created.body
    assert created.json()["d"]["results"]["__metadata"]["type"] == "CellCtl.Rule"
    assert stack.request("POST", "/rules", json.dumps(twin), {**JSON, **ADMIN_KEY}).status == 201
    try:
        # WHEN the same stream of events is posted to /__event
        stream = [
            (f"twin{suffix}.login", "[200] ok"),  # both match
            (f"twin{suffix}.login", "[403] denied"),  # info is not a prefix: neither
            (f"other{suffix}.login", "[200] ok"),  # type: neither
            (f"twin{suffix}.", "[2"),  # both
        ]
        for index, (event_type, info) in enumerate(stream):
            body = {"Type": event_type, "Info": info}
            headers = {**JSON, **DEV_KEY, "X-Personium-RequestKey": f"twin{suffix}_{index}"}
            assert stack.request("POST", "/__event", json.dumps(body), headers).status == 200

        # THEN every event's log-everything line is there, and each rule logged exactly the events 0 and 3
        lines = current_log_lines(stack, f'"twin{suffix}_', count=len(stream) + 4)
        warned = sorted(line.split(",")[2] for line in lines if "[WARN ]" in line)
        errored = sorted(line.split(",")[2] for line in lines if "[ERROR]" in line)
        assert warned == errored == [f'"twin{suffix}_0"', f'"twin{suffix}_3"'], lines
        # AND /__rule shows the Personium rule, GET by key reads it back
        cache = stack.request("GET", "/__rule", headers=ADMIN_KEY).json()
        assert personium["Name"] in [rule["Name"] for rule in cache["rules"]]
        got = stack.request("GET", f"/__ctl/Rule('{personium['Name']}')", headers=ADMIN_KEY)
        assert got.json()["d"]["results"]["EventInfo"] == "[2"
    finally:
        deleted = stack.request("DELETE", f"/__ctl/Rule(Name='{personium['Name']}',_Box.Name=null)", headers=ADMIN_KEY)
        stack.request("DELETE", f"/rules/{twin['name']}", headers=ADMIN_KEY)
    assert deleted.status == 204


def test_rule_routes_need_iam(stack: LocalStack) -> None:
    assert stack.request("GET", "/__ctl/Rule", headers=DEV_KEY).status == 403
    assert stack.request("GET", "/__rule", headers=DEV_KEY).status == 403


def test_rule_entity_lifecycle_over_http(stack: LocalStack) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    entity = {"Name": name, "EventExternal": True, "EventType": "life.", "Action": "log"}
    headers = {**JSON, **ADMIN_KEY}
    created = stack.request("POST", "/__ctl/Rule", json.dumps(entity), headers)
    assert created.status == 201, created.body
    assert created.headers["Location"].endswith(f"/__ctl/Rule(Name='{name}',_Box.Name=null)")
    try:
        # list with $filter, as Personium clients look a rule up
        listed = stack.request(
            "GET", f"/__ctl/Rule?$filter=Name%20eq%20'{name}'&$inlinecount=allpages", headers=ADMIN_KEY
        )
        assert listed.status == 200
        assert listed.json()["d"]["__count"] == "1"
        # PUT with If-Match, then MERGE
        put = stack.request(
            "PUT",
            f"/__ctl/Rule('{name}')",
            json.dumps({**entity, "EventInfo": "ok"}),
            {**headers, "If-Match": created.headers["ETag"]},
        )
        assert put.status == 204, put.body
        merged = stack.request("MERGE", f"/__ctl/Rule('{name}')", json.dumps({"Action": "log.warn"}), headers)
        assert merged.status == 204, merged.body
        result = stack.request("GET", f"/__ctl/Rule('{name}')", headers=ADMIN_KEY).json()["d"]["results"]
        assert (result["EventInfo"], result["Action"]) == ("ok", "log.warn")
        # Personium's errors
        assert stack.request("POST", "/__ctl/Rule", json.dumps(entity), headers).json()["code"] == "PR409-OD-0003"
        assert stack.request("GET", "/__ctl/Rule('no-such-rule')", headers=ADMIN_KEY).json()["code"] == "PR404-OD-0002"
        assert stack.request("DELETE", "/__ctl/Rule", headers=ADMIN_KEY).status == 405
    finally:
        assert stack.request("DELETE", f"/__ctl/Rule('{name}')", headers=ADMIN_KEY).status == 204
