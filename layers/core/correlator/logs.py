"""Route the ``correlator`` package's log records through a function's Powertools ``Logger``.

Powertools filters, on the root handler, records of loggers whose name contains the function's
service name (``correlator.relay`` under service ``relay``), and Lambda's root logger shows only
warnings. Giving the package logger the function's handler makes core modules log as the
function does: JSON, at its level, with the invocation's keys.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

PACKAGE = "correlator"


def adopt_core_logs(logger: Logger) -> None:
    """Send every ``correlator.*`` record through ``logger``'s handler and level."""
    logging.getLogger(PACKAGE)  # registered before copying: children propagate to it
    copy_config_to_registered_loggers(source_logger=logger, include={PACKAGE})
