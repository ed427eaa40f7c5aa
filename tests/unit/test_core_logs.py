"""Core modules log through the function's Powertools logger, even under a service name that Powertools
would otherwise filter out (``correlator.relay_policy`` under service ``relay``)."""

from __future__ import annotations

import io
import json
import logging
import uuid

from aws_lambda_powertools import Logger

from correlator.logs import adopt_core_logs


def test_core_records_come_out_as_the_functions_json_with_its_keys() -> None:
    # GIVEN a function's logger whose service name is part of a core module's logger name
    service = f"relay{uuid.uuid4().hex[:8]}"  # fresh: Powertools loggers are process-wide per service
    stream = io.StringIO()
    logger = Logger(service=service, logger_handler=logging.StreamHandler(stream), level="INFO")
    logger.append_keys(rule="notify-ops")
    adopt_core_logs(logger)

    # WHEN a core module logs
    logging.getLogger(f"correlator.{service}").info("relay finished", extra={"status": 200})

    # THEN the record is written once, as the function's JSON, with its keys
    [line] = [line for line in stream.getvalue().splitlines() if "relay finished" in line]
    record = json.loads(line)
    assert (record["service"], record["rule"], record["status"], record["level"]) == (
        service,
        "notify-ops",
        200,
        "INFO",
    )
