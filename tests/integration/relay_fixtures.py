"""Shared pieces of the relay tests on moto: the idempotency table and relay secrets, sample deliveries, signatures."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import boto3

from correlator.configs import ActionConfig
from correlator.delivery import Delivery, parse_delivery
from tests.notification_doubles import create_idempotency_table
from tests.probe import REGION
from tests.samples import load_event

SELF_URL = "https://correlator.test.example/dev"
TABLE = "correlator-test-idempotency"
SIGNING_SECRET_NAME = "correlator/relay/erp-webhook"
SIGNING_SECRET = "whsec-9f2c1d7e4b"
API_KEY_SECRET_NAME = "correlator/relay/hq-api-key"
API_KEY = "Hq7Qm2Lk9PzR4tV8wB1nC6dF3gH5jK0sA2eU9iO7"


def create_backing_resources() -> None:
    """The idempotency table (as template.yaml declares it) and the relay secrets, in moto."""
    create_idempotency_table(TABLE)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=SIGNING_SECRET_NAME, SecretString=SIGNING_SECRET)
    secrets.create_secret(Name=API_KEY_SECRET_NAME, SecretString=API_KEY)


def delivery_of(sample: str, *, event_id: str | None = None, **config: Any) -> Delivery[ActionConfig]:
    """A sample delivery from ``events/eventbridge/`` with config fields replaced (None removes one)."""
    message = load_event(f"eventbridge/{sample}")
    for key, value in config.items():
        if value is None:
            message["rule"]["config"].pop(key, None)
        else:
            message["rule"]["config"][key] = value
    if event_id is not None:
        message["event"]["detail"]["id"] = event_id
    return parse_delivery(message)


def signature_of(body: bytes, secret: str = SIGNING_SECRET) -> str:
    """How a receiver verifies ``X-Correlator-Signature`` (see docs/actions-relay.md)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
