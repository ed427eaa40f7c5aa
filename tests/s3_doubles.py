"""Test doubles around a (moto) S3 client: count what is downloaded, inject a rival writer or a failure."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from tests.probe import REGION

Hook = Callable[[dict[str, Any]], None]


class S3Spy:
    """Delegates every call to ``client``; counts calls and the bytes ``get_object`` sent back.

    ``before[operation]`` runs with the call's keyword arguments just before the real call (it
    may raise to simulate a failure); ``once`` registers a hook that runs for the first match only.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.downloaded = 0
        self.before: dict[str, Hook] = {}
        self._lock = threading.Lock()

    def once(self, operation: str, hook: Hook, when: Callable[[dict[str, Any]], bool] = lambda kwargs: True) -> None:
        """Run ``hook`` before the first ``operation`` call whose arguments satisfy ``when``."""
        fired = False

        def run_once(kwargs: dict[str, Any]) -> None:
            nonlocal fired
            if not fired and when(kwargs):
                fired = True
                hook(kwargs)

        self.before[operation] = run_once

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name.startswith("_") or not callable(attribute) or name in ("get_paginator", "generate_presigned_url"):
            return attribute

        def call(**kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                self.requests.append((name, kwargs))
            hook = self.before.get(name)
            if hook is not None:
                hook(kwargs)
            response = attribute(**kwargs)
            if name == "get_object":
                with self._lock:
                    self.downloaded += response["ContentLength"]
            return response

        return call


def client_error(code: str, status: int, operation: str) -> ClientError:
    """The ``ClientError`` botocore raises for an S3 error response."""
    response: Any = {
        "Error": {"Code": code, "Message": f"simulated {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


def fail_with(code: str, status: int, operation: str) -> Hook:
    """A hook that makes the call fail as S3 would with ``code``."""

    def fail(kwargs: dict[str, Any]) -> None:
        raise client_error(code, status, operation)

    return fail


def s3_client() -> Any:
    return boto3.client("s3", region_name=REGION)


def all_objects(s3: Any, bucket: str) -> dict[str, str]:
    """Every key in ``bucket`` with its ETag: a fingerprint to compare before and after a call."""
    objects: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = item["ETag"]
    return objects
