"""Route the log records of the ``correlator`` package and of the functions' own modules through a
function's Powertools ``Logger``.

Powertools filters, on the root handler, records of loggers whose name contains the function's
service name (``functions.relay.relay`` under service ``relay``), and Lambda's root logger shows only
warnings. Giving those packages' loggers the function's handler makes every module log as the
function does: JSON, at its level, with the invocation's keys.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

PACKAGES = frozenset({"correlator", "functions"})


def adopt_core_logs(logger: Logger) -> None:
    """Send every ``correlator.*`` and ``functions.*`` record through ``logger``'s handler and level."""
    for package in PACKAGES:
        logging.getLogger(package)  # registered before copying: children propagate to it
    copy_config_to_registered_loggers(source_logger=logger, include=set(PACKAGES))


def function_logger() -> Logger:
    """A handler's Powertools ``Logger`` (service from ``POWERTOOLS_SERVICE_NAME``), adopting the modules' logs."""
    logger = Logger()
    adopt_core_logs(logger)
    return logger
