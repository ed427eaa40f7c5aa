"""HTTP to a Correlator API: the events key on ``POST /events``, admin auth (SigV4 or the local admin key)
on everything else, and downloads that follow the API's 302 to S3 without carrying the signature along."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from correlator_cli.target import Target, TargetError

_TIMEOUT = urllib3.Timeout(connect=5.0, read=60.0)
_RETRIES = urllib3.Retry(total=3, backoff_factor=0.3, status_forcelist=(502, 503, 504), allowed_methods=["GET"])
CHUNK = 1 << 20


class ApiError(Exception):
    """A non-2xx answer, with the API's ``{"code", "message", "details"}`` when it sent one."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.code = str(self.data.get("code", "http_error"))
        message = self.data.get("message") or body[:200].decode("utf-8", "replace") or "no body"
        super().__init__(f"HTTP {status}: {message}")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    credentials: Credentials | ReadOnlyCredentials,
    region: str,
    service: str = "execute-api",
) -> dict[str, str]:
    """``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``), by botocore."""
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


class ApiClient:
    """Calls one target's API."""

    def __init__(self, target: Target, pool: urllib3.PoolManager | None = None) -> None:
        self.target = target
        self.pool = pool or urllib3.PoolManager(timeout=_TIMEOUT, retries=_RETRIES)

    def url(self, path: str) -> str:
        return self.target.api_url + quote(path, safe="/?=&:")

    def _headers(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], admin: bool
    ) -> dict[str, str]:
        prepared = {"accept": "application/json", **headers}
        if body is not None:
            prepared.setdefault("content-type", "application/json")
        if not admin:
            prepared["x-api-key"] = self.target.api_key
            return prepared
        if self.target.local is not None:
            prepared["x-api-key"] = self.target.local.admin_key
            return prepared
        credentials = self.target.session.get_credentials()
        if credentials is None:
            raise TargetError("no AWS credentials found (profile, SSO, environment or instance role)")
        return sign_request(method, url, prepared, body, credentials.get_frozen_credentials(), self.target.region)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        admin: bool = True,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> Reply:
        """One API call; ``ApiError`` unless the status is in ``ok``."""
        url = self.url(path)
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        response = self.pool.request(
            method, url, body=data, headers=self._headers(method, url, data, headers or {}, admin), redirect=False
        )
        reply = Reply(response.status, {k.lower(): v for k, v in response.headers.items()}, response.data)
        if reply.status not in ok:
            raise ApiError(reply.status, reply.body)
        return reply

    def open(self, path: str, *, start: int = 0, end: int | None = None) -> Download:
        """A log file's raw bytes (gzip archives stay gzip) from ``start``, streamed.

        The API answers 302 to a presigned S3 URL, fetched with no auth headers at all; a file
        that is not there yet (200, empty) or has nothing after ``start`` (416) gives no bytes.
        """
        url = self.presigned(path)
        if url is None:
            return Download(200, {}, iter([]))
        return self.fetch(url, start=start, end=end)

    def presigned(self, path: str) -> str | None:
        """The presigned S3 URL the API redirects a download to (valid 5 minutes); None: no current log yet."""
        reply = self.call("GET", path, ok=(200, 302))
        return reply.headers["location"] if reply.status == 302 else None

    def fetch(self, url: str, *, start: int = 0, end: int | None = None) -> Download:
        """GET a presigned URL (bytes ``start``..``end``), with no credentials of ours."""
        headers = {"accept-encoding": "identity"}
        if start or end is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end}"
        response = self.pool.request("GET", url, headers=headers, preload_content=False, redirect=False)
        found = {key.lower(): value for key, value in response.headers.items()}
        if response.status == 416:
            response.drain_conn()
            response.release_conn()
            return Download(416, found, iter([]))
        if response.status not in (200, 206):
            body = response.read()
            response.release_conn()
            raise ApiError(response.status, body)
        return Download(
            response.status, found, _stream(response, start if response.status == 200 else 0), response.release_conn
        )


def _stream(response: urllib3.BaseHTTPResponse, skip: int) -> Iterator[bytes]:
    try:
        for chunk in response.stream(CHUNK, decode_content=False):
            if skip:  # a server that ignored Range
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
            if chunk:
                yield chunk
    finally:
        response.release_conn()


@dataclass(frozen=True, slots=True)
class Download:
    status: int
    headers: Mapping[str, str]
    chunks: Iterator[bytes]
    release: Callable[[], None] = lambda: None

    def close(self) -> None:
        """Give the connection back without reading the rest."""
        self.release()

    @property
    def generation(self) -> str | None:
        """The current log's generation (S3 metadata), which names its archive once rotated."""
        return self.headers.get("x-amz-meta-generation")
