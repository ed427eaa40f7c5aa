"""Request keys: generated Personium-style, validated when a client sends one, read from either header."""

from __future__ import annotations

import re

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from hypothesis import given
from hypothesis import strategies as st

from correlator.api import caller_from
from correlator.errors import BadRequestError
from correlator.event import is_valid_request_key, new_request_key
from tests.samples import load_event, with_headers

GENERATED_KEY = re.compile(r"^[A-Za-z0-9_-]{4}_[A-Za-z0-9_-]{18}$")
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def test_generated_keys_have_the_personium_shape_and_are_unique() -> None:
    # GIVEN / WHEN
    keys = [new_request_key() for _ in range(1000)]

    # THEN
    assert all(GENERATED_KEY.fullmatch(key) for key in keys), [key for key in keys if not GENERATED_KEY.fullmatch(key)]
    assert len(set(keys)) == len(keys)
    assert all(is_valid_request_key(key) for key in keys)


@pytest.mark.parametrize("value", ["", "a", "Req_1001", "-_-", "k" * 127, "k" * 128])
def test_valid_request_keys(value: str) -> None:
    assert is_valid_request_key(value)


@pytest.mark.parametrize(
    "value",
    ["k" * 129, "k" * 1000, "req key", "req.key", "req/key", "req+key", "req=", "clé", "req\n", "\nreq", "req\x00"],
)
def test_invalid_request_keys(value: str) -> None:
    assert not is_valid_request_key(value)


@given(st.text(alphabet=KEY_CHARS, max_size=128))
def test_every_key_of_the_allowed_chars_up_to_128_is_valid(value: str) -> None:
    assert is_valid_request_key(value)


@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=140) | st.text(alphabet=KEY_CHARS + " .\n/", max_size=140)
)
def test_a_key_is_valid_exactly_when_it_has_128_allowed_chars_at_most(value: str) -> None:
    assert is_valid_request_key(value) == (len(value) <= 128 and all(char in KEY_CHARS for char in value))


# ---- from the request headers ----


def caller_of(**headers: str | None) -> tuple[str, str | None]:
    """The request key and subject that ``caller_from`` reads from a sample request with these headers."""
    caller = caller_from(APIGatewayProxyEvent(with_headers(load_event("apigw/post-event-single"), **headers)))
    return caller.request_key, caller.subject


def test_the_request_key_comes_from_x_request_key() -> None:
    assert caller_of(X_Request_Key="Req_1001") == ("Req_1001", "k7ab2cd9ef")


def test_header_names_are_case_insensitive() -> None:
    assert caller_of(x_request_key="Req_1001")[0] == "Req_1001"


def test_the_personium_header_is_accepted() -> None:
    assert caller_of(X_Personium_RequestKey="P_42")[0] == "P_42"


def test_x_request_key_wins_over_the_personium_header() -> None:
    assert caller_of(X_Request_Key="mine", X_Personium_RequestKey="theirs")[0] == "mine"


def test_a_key_is_generated_without_either_header() -> None:
    # GIVEN / WHEN
    first, second = caller_of()[0], caller_of()[0]

    # THEN
    assert GENERATED_KEY.fullmatch(first)
    assert first != second


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Request-Key", "k" * 129), ("X-Request-Key", "bad key"), ("X-Personium-RequestKey", "bad/key")],
)
def test_an_invalid_header_key_is_a_bad_request_naming_the_header(header: str, value: str) -> None:
    # GIVEN
    event = APIGatewayProxyEvent(
        with_headers(load_event("apigw/post-event-single"), **{header.replace("-", "_"): value})
    )

    # WHEN
    with pytest.raises(BadRequestError) as raised:
        caller_from(event)

    # THEN
    assert raised.value.status == 400
    assert raised.value.to_body() == {
        "code": "bad_request",
        "message": f"{header} must match [A-Za-z0-9_-]{{0,128}}",
        "details": [{"field": header, "message": "invalid request key"}],
    }
