"""Calls to moto's server application (no socket) with a short path (local.fast_*) on or off, for comparison."""

from __future__ import annotations

from typing import Any

import pytest
from moto.moto_api._internal import mock_random
from werkzeug.test import Client


def answer(
    client: Client,
    body: bytes,
    *,
    target: str,
    content_type: str,
    authorization: str,
    short_path: tuple[Any, str] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Any, ...]:
    """The answer (status, headers, body) to a JSON-protocol ``target`` call; ``short_path`` (module, function
    name) is turned off when given. Random ids are seeded alike; moto's crash on a malformed request, a 500
    from its server, is the exception this application raises: ("500", its type)."""
    with monkeypatch.context() as patch:
        if short_path is not None:
            patch.setattr(*short_path, lambda environ, body: None)
        mock_random.seed(7)
        try:
            response = client.post(
                "/",
                data=body,
                headers={"X-Amz-Target": target, "Content-Type": content_type, "Authorization": authorization},
            )
        except Exception as error:  # moto's server answers 500
            return ("500", type(error).__name__)
    return response.status, list(response.headers.items()), response.get_data()
