"""template.yaml: SAM-valid, builds python3.13/arm64 artifacts without Docker, holds the contract's resources.

cfn-lint runs in `make lint`, not here.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from correlator.compiler import TARGET_RETRY_POLICY
from local.template import load_yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
BUILD_TIMEOUT_S = 300


@cache
def _load(path: Path) -> dict[str, Any]:
    return load_yaml(path.read_text(encoding="utf-8"))


@pytest.fixture
def template() -> dict[str, Any]:
    return _load(TEMPLATE)


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )


@pytest.fixture(scope="module")
def sam_cli() -> Path:
    """The SAM CLI in its own virtualenv (``make test`` exports SAM_CLI); skipped when it is not there."""
    configured = os.environ.get("SAM_CLI")
    if not configured:
        pytest.skip("SAM_CLI is not set: run through `make test`, or export SAM_CLI=$PWD/.venv-sam/bin/sam")
    sam = Path(configured)
    if not sam.is_file():
        pytest.skip(f"SAM_CLI={configured} does not exist: `make test` installs it into .venv-sam")
    return sam


@pytest.fixture(scope="module")
def built(sam_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sam build`` into a temporary directory (its own cache too, so parallel builds never share one)."""
    work = tmp_path_factory.mktemp("sam")
    build_dir, cache_dir = work / "build", work / "cache"
    result = run(sam_cli, "build", "--template-file", TEMPLATE, "--build-dir", build_dir, "--cache-dir", cache_dir)
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    return build_dir


# ---- lint ----


# cfn-lint on template.yaml runs in `make lint` (before pytest in `make test`, so in CI), exiting non-zero on
# any finding, informational included: the same check as a test here would be, so it is not repeated.


def test_sam_validate_lint_passes(sam_cli: Path) -> None:
    # GIVEN / WHEN
    result = run(sam_cli, "validate", "--lint", "--template-file", TEMPLATE, "--region", "us-east-1")

    # THEN
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


# ---- build ----


@pytest.mark.parametrize(
    "artifact",
    [
        "CoreLayer/python/correlator/event.py",
        "CoreLayer/python/correlator/reception.py",
        "CoreLayer/python/pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so",
        "CoreLayer/python/aws_lambda_powertools/__init__.py",
        "ReceptionFunction/app.py",
        "template.yaml",
    ],
)
def test_sam_build_produces_the_artifacts(built: Path, artifact: str) -> None:
    assert (built / artifact).is_file(), sorted(str(path.relative_to(built)) for path in built.glob("*/*"))


def test_sam_build_ships_bytecode_for_the_runtime_only_and_no_host_binaries(built: Path) -> None:
    # GIVEN / WHEN
    python = built / "CoreLayer" / "python"
    bytecode = [path.name for path in python.rglob("*.pyc")]

    # THEN bytecode only for the Lambda runtime's Python 3.13 (/opt is read-only: none could be
    # written there at run time), none of the build machine's Python, and no x86_64 extensions
    assert bytecode, "the layer ships no .pyc: every cold start would compile the modules again"
    assert [name for name in bytecode if ".cpython-313." not in name] == []
    assert (python / "correlator" / "__pycache__" / "event.cpython-313.pyc").is_file()
    assert [path.name for path in python.rglob("*.so") if "x86_64" in path.name] == []


def test_every_artifact_ships_bytecode_for_cpython_313_of_every_module(built: Path) -> None:
    # GIVEN every built artifact: the layer and each function
    artifacts = [path for path in built.iterdir() if path.is_dir()]
    assert len(artifacts) >= 2

    # THEN each of their Python modules has its cpython-313 .pyc beside it, and there is no other bytecode
    for artifact in artifacts:
        sources = list(artifact.rglob("*.py"))
        assert sources, f"{artifact.name} ships no Python"
        missing = [
            str(source.relative_to(built))
            for source in sources
            if not (source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc").is_file()
        ]
        assert missing == [], f"{artifact.name}: no cpython-313 bytecode for {missing[:10]}"
        assert [path.name for path in artifact.rglob("*.pyc") if ".cpython-313." not in path.name] == []


def makefile_targets(template: dict[str, Any]) -> list[tuple[str, Path]]:
    """``(LogicalId, source directory)`` of every resource built by ``BuildMethod: makefile``."""
    return [
        (name, ROOT / (resource["Properties"].get("CodeUri") or resource["Properties"].get("ContentUri")))
        for name, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("BuildMethod") == "makefile"
    ]


@pytest.mark.parametrize("name_and_source", makefile_targets(_load(TEMPLATE)), ids=lambda pair: pair[0])
def test_a_build_without_python_3_13_fails_before_copying_anything(
    name_and_source: tuple[str, Path], tmp_path: Path
) -> None:
    # GIVEN the build of one artifact, run as sam does (from a copy of its source), with no python3.13
    name, source = name_and_source
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()

    # WHEN
    result = run(
        "make", "--makefile", source / "Makefile", f"build-{name}", f"ARTIFACTS_DIR={artifacts}", "PY313=", cwd=source
    )

    # THEN it fails (not a warning and a slower layer), says why, and ships nothing
    assert result.returncode != 0
    assert "python3.13 not found" in result.stderr
    assert list(artifacts.iterdir()) == []


def test_built_functions_run_python_3_13_on_arm64(built: Path) -> None:
    # GIVEN
    template = _load(built / "template.yaml")
    globals_ = template.get("Globals", {}).get("Function", {})

    # WHEN
    functions = resources_of(template, "AWS::Serverless::Function")

    # THEN
    assert functions
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties.get("Runtime", globals_.get("Runtime")) == "python3.13", name
        assert properties.get("Architectures", globals_.get("Architectures")) == ["arm64"], name
    layer = template["Resources"]["CoreLayer"]["Properties"]
    assert (layer["CompatibleRuntimes"], layer["CompatibleArchitectures"]) == (["python3.13"], ["arm64"])


# ---- the template's contract ----


def test_reception_may_only_put_external_events_on_the_bus(template: dict[str, Any]) -> None:
    # GIVEN
    reception = template["Resources"]["ReceptionFunction"]["Properties"]

    # WHEN
    statements = [statement for policy in reception["Policies"] for statement in as_list(policy["Statement"])]

    # THEN one statement (no SAM policy template, no extra role), narrowed to the bus and the source
    assert "Role" not in reception
    assert len(statements) == 1
    [statement] = statements
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["events:PutEvents"]
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": ["EventBus", "Arn"]}]
    assert statement["Condition"] == {"StringEquals": {"events:source": "correlator.external"}}


def test_template_rule_targets_retry_as_compiled_rules_do(template: dict[str, Any]) -> None:
    # GIVEN every target of the rules template.yaml declares
    targets = [
        target
        for rule in resources_of(template, "AWS::Events::Rule").values()
        for target in rule["Properties"].get("Targets", [])
    ]

    # WHEN / THEN the one retry policy of correlator.compiler (compiled rules and timer schedules)
    assert targets
    assert all(target["RetryPolicy"] == TARGET_RETRY_POLICY for target in targets)


def test_every_function_logs_to_its_own_group_with_retention(template: dict[str, Any]) -> None:
    # GIVEN
    functions = resources_of(template, "AWS::Serverless::Function")

    # WHEN / THEN
    assert functions
    for name, function in functions.items():
        log_group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert set(log_group_ref) == {"Ref"}, name
        log_group = template["Resources"][log_group_ref["Ref"]]
        assert log_group["Type"] == "AWS::Logs::LogGroup", name
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "RetentionInDays"}, name


def test_post_events_needs_an_api_key_and_the_rest_of_the_api_iam(template: dict[str, Any]) -> None:
    # GIVEN
    api = template["Resources"]["Api"]
    post_events = template["Resources"]["ReceptionFunction"]["Properties"]["Events"]["PostEvents"]

    # WHEN
    route = post_events["Properties"]

    # THEN
    assert api["Type"] == "AWS::Serverless::Api"
    assert api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert api["Properties"]["Auth"]["UsagePlan"]["CreateUsagePlan"] in ("PER_API", "SHARED")
    assert post_events["Type"] == "Api"
    assert (route["RestApiId"], route["Path"], route["Method"].lower()) == ({"Ref": "Api"}, "/events", "post")
    assert route["Auth"]["ApiKeyRequired"] is True


def test_the_http_api_front_door_is_optional_jwt_authenticated_and_serves_post_events_only(
    template: dict[str, Any],
) -> None:
    # GIVEN the HTTP API's resources
    resources = template["Resources"]
    http = {
        name: resource for name, resource in resources.items() if resource["Type"].startswith("AWS::ApiGatewayV2::")
    }

    # THEN all of them exist only when an issuer is given, and only POST /events is routed, behind the JWT
    assert template["Parameters"]["HttpApiJwtIssuer"]["Default"] == ""
    assert {resource.get("Condition") for resource in http.values()} == {"HttpApiEnabled"}
    routes = [resource for resource in http.values() if resource["Type"] == "AWS::ApiGatewayV2::Route"]
    assert [route["Properties"]["RouteKey"] for route in routes] == ["POST /events"]
    assert routes[0]["Properties"]["AuthorizationType"] == "JWT"
    [authorizer] = [resource for resource in http.values() if resource["Type"] == "AWS::ApiGatewayV2::Authorizer"]
    assert authorizer["Properties"]["AuthorizerType"] == "JWT"
    # the reception gets the REST payload shape (1.0) it already serves
    [integration] = [resource for resource in http.values() if resource["Type"] == "AWS::ApiGatewayV2::Integration"]
    assert integration["Properties"]["PayloadFormatVersion"] == "1.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["ReceptionFunction", "Arn"]}


def test_the_bus_is_archived(template: dict[str, Any]) -> None:
    # GIVEN
    buses = resources_of(template, "AWS::Events::EventBus")

    # WHEN
    archives = resources_of(template, "AWS::Events::Archive")

    # THEN
    assert list(buses) == ["EventBus"]
    assert [archive["Properties"]["SourceArn"] for archive in archives.values()] == [
        {"Fn::GetAtt": ["EventBus", "Arn"]}
    ]


@pytest.mark.parametrize("parameter", ["Environment", "LogLevel", "RetentionInDays", "MaxHops"])
def test_required_parameters_exist(template: dict[str, Any], parameter: str) -> None:
    assert parameter in template["Parameters"]


def test_max_hops_defaults_to_3(template: dict[str, Any]) -> None:
    assert str(template["Parameters"]["MaxHops"]["Default"]) == "3"


@pytest.mark.parametrize("output", ["ApiUrl", "EventBusName", "EventBusArn", "ApiKeyId"])
def test_outputs_exist(template: dict[str, Any], output: str) -> None:
    assert template["Outputs"][output]["Value"]


def test_every_makefile_built_resource_has_its_build_target(template: dict[str, Any]) -> None:
    # GIVEN resources built by `BuildMethod: makefile`
    built = {
        name: resource["Properties"].get("CodeUri") or resource["Properties"].get("ContentUri")
        for name, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("BuildMethod") == "makefile"
    }

    # WHEN / THEN each source directory's Makefile has a `build-<LogicalId>` target
    assert built
    for name, source in built.items():
        makefile = (ROOT / source / "Makefile").read_text(encoding="utf-8")
        assert f"build-{name}:" in makefile, f"{source}/Makefile lacks build-{name}"


# ---- hardening (checkov's findings that were fixed; the rest are suppressed in place, with a reason) ----


@pytest.mark.parametrize("bucket", ["LogBucket", "DataBucket"])
def test_the_log_and_data_buckets_keep_deleted_objects_recoverable(template: dict[str, Any], bucket: str) -> None:
    # GIVEN
    properties = template["Resources"][bucket]["Properties"]
    rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}

    # THEN versioned, with noncurrent versions expiring after the parameter's days, and delete markers cleaned up
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert rules["ExpireNoncurrentVersions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionDays"}
    }
    assert rules["RemoveExpiredDeleteMarkers"]["ExpiredObjectDeleteMarker"] is True
    assert str(template["Parameters"]["NoncurrentVersionDays"]["Default"]) == "7"
    # AND S3 server access logging is there when a bucket is given (the condition), off otherwise
    condition, enabled, disabled = properties["LoggingConfiguration"]["Fn::If"]
    assert condition == "HasAccessLogBucket"
    assert enabled["DestinationBucketName"] == {"Ref": "AccessLogBucketName"}
    assert disabled == {"Ref": "AWS::NoValue"}


def test_the_api_writes_access_logs_to_its_own_group(template: dict[str, Any]) -> None:
    # GIVEN
    setting = template["Resources"]["Api"]["Properties"]["AccessLogSetting"]
    group = template["Resources"]["ApiAccessLogGroup"]

    # THEN
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "$context.requestId" in setting["Format"]
    assert "$context.status" in setting["Format"]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "RetentionInDays"}


def test_every_checkov_suppression_carries_a_reason(template: dict[str, Any]) -> None:
    # GIVEN every in-place suppression
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]

    # THEN each names a check and says why (a sentence, not a placeholder)
    assert skips
    assert all(skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 40 for _, skip in skips), skips


def test_the_firehose_log_path_is_optional_least_privilege_and_dead_lettered(template: dict[str, Any]) -> None:
    # GIVEN
    resources = template["Resources"]
    parameter = template["Parameters"]["EventLogDelivery"]
    stream = resources["LogDeliveryStream"]
    [target] = resources["LogEverythingRule"]["Properties"]["Targets"]

    # THEN the queue stays the default; the stream exists only with Firehose chosen (and the log rule deployed)
    assert parameter["Default"] == "Queue"
    assert parameter["AllowedValues"] == ["Queue", "Firehose"]
    assert stream["Condition"] == "LogViaFirehose"
    assert target["Arn"] == {
        "Fn::If": ["LogViaFirehose", {"Fn::GetAtt": ["LogDeliveryStream", "Arn"]}, {"Fn::GetAtt": ["LogQueue", "Arn"]}]
    }
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["RuleTargetDeadLetterQueue", "Arn"]}}
    # the stream: Direct PUT into the staging prefix, the template's buffering, one record per line
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert stream["Properties"]["DeliveryStreamType"] == "DirectPut"
    assert destination["BucketARN"] == {"Fn::GetAtt": ["LogStagingBucket", "Arn"]}
    assert destination["Prefix"] == "staged/"
    assert destination["BufferingHints"] == {
        "IntervalInSeconds": {"Ref": "LogBufferSeconds"},
        "SizeInMBs": {"Ref": "LogBufferMB"},
    }
    assert destination["ProcessingConfiguration"]["Processors"] == [{"Type": "AppendDelimiterToRecord"}]
    # the rule's role may put records on this stream and do nothing else
    role = resources["LogRuleFirehoseRole"]["Properties"]
    assert target["RoleArn"]["Fn::If"][1] == {"Fn::GetAtt": ["LogRuleFirehoseRole", "Arn"]}
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    [statement] = [item for policy in role["Policies"] for item in policy["PolicyDocument"]["Statement"]]
    assert statement["Action"] == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert statement["Resource"] == {"Fn::GetAtt": ["LogDeliveryStream", "Arn"]}
    # Firehose's role writes to the staging bucket only
    firehose_role = resources["LogDeliveryStreamRole"]["Properties"]
    for item in (item for policy in firehose_role["Policies"] for item in policy["PolicyDocument"]["Statement"]):
        assert "LogStagingBucket" in str(item["Resource"]) or item["Action"] == "logs:PutLogEvents"
        assert not any(action.split(":")[1] == "*" for action in as_list(item["Action"]))
    # staged objects notify a queue with a dead-letter queue and an alarm; the writer polls it only with Firehose
    bucket = resources["LogStagingBucket"]["Properties"]
    [notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["LogStagingQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "staged/"}]
    # only this bucket may send to the queue: the policy names the bucket the template names
    [sender] = resources["LogStagingQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert sender["Principal"] == {"Service": "s3.amazonaws.com"}
    assert sender["Action"] == "sqs:SendMessage"
    name, names = bucket["BucketName"]["Fn::Sub"]
    source, sources = sender["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert (source, sources) == (f"arn:${{AWS::Partition}}:s3:::{name}", names)
    redrive = resources["LogStagingQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["LogStagingDeadLetterQueue", "Arn"]}
    alarm = resources["LogStagingDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["LogStagingDeadLetterQueue", "QueueName"]}
    writer = resources["LogWriterFunction"]["Properties"]
    source = writer["Events"]["LogStagingQueue"]["Properties"]
    assert source["Enabled"] == {"Fn::If": ["LogViaFirehose", True, False]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # the writer reads and deletes staged objects, nothing else of that bucket
    staged = [
        statement["Fn::If"][1]
        for policy in writer["Policies"]
        for statement in as_list(policy["Statement"])
        if "Fn::If" in statement
    ]
    assert {item["Sid"]: item["Action"] for item in staged} == {
        "ReadAndDeleteStagedLogRecords": ["s3:GetObject", "s3:DeleteObject"],
        "BadStagedRecordsToTheDeadLetterQueue": "sqs:SendMessage",
    }
