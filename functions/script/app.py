"""Script action: runs a registered script (``scripts/``) or an allow-listed Lambda function, once per delivery."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from correlator import aws
from correlator.bootstrap import action_runner, load_settings
from correlator.csvfiles import DataFiles
from correlator.logs import function_logger
from correlator.publisher import EventPublisher
from correlator.tracing import PATCH_MODULES
from functions.script.execution import ScriptAction, ScriptRegistry, load_script_package, parse_function_arns


@dataclass(frozen=True, slots=True)
class Settings:
    """This function's environment (template.yaml), read once at import."""

    event_bus_name: str
    data_bucket_name: str | None = None
    script_function_arns: str = ""


settings = load_settings(Settings)
logger = function_logger()
tracer = Tracer(patch_modules=PATCH_MODULES)
metrics = Metrics()

# The registered scripts: the package beside this file, loaded from that fixed path. In Lambda this
# module is the top-level ``app`` (the package is ``scripts``); in the tests it is
# ``functions.script.app`` (the package is ``functions.script.scripts``, the same module objects the
# tests import).
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
registry = ScriptRegistry(load_script_package(SCRIPTS_DIR, f"{__package__}.scripts" if __package__ else "scripts"))


publisher = EventPublisher(aws.client("events"), settings.event_bus_name)
runner = action_runner(
    ScriptAction(
        registry,
        publisher=publisher,
        # An invocation is not idempotent: no botocore retries, and a read timeout beyond Lambda's longest run.
        lambda_client=aws.client("lambda", Config(read_timeout=900, retries={"total_max_attempts": 1})),
        allowed_functions=parse_function_arns(settings.script_function_arns),
        data=DataFiles(aws.client("s3"), settings.data_bucket_name) if settings.data_bucket_name else None,
    ),
    logger=logger,
    metrics=metrics,
    publisher=publisher,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return runner.handle(event, context)
