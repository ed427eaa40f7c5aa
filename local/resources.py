"""Template resources -> moto: create what the system needs, in dependency order, and record attributes.

Physical names follow ``<stack>-<LogicalId>`` where the template gives none (CloudFormation would
add a random suffix; locally names are predictable so ``aws --endpoint-url`` can find them).
Resource types that need nothing locally are skipped; ``!Ref``/``!GetAtt .Arn`` of a skipped
resource resolve to placeholders so that the functions' environments still resolve.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.delivery import Delivery
from local.functions import FUNCTION_TYPE, LocalFunction, RuleEvent
from local.template import Template, TemplateError, as_text, creation_order

log = logging.getLogger("local.resources")

# moto 5.2 stores lifecycle rules but never runs them: a versioned bucket keeps every noncurrent version, and the
# event log rewrites its current file on every append, so memory and the saved state would grow with the square of
# the log. The local stack leaves buckets unversioned (docs/local-vs-aws.md).
_UNVERSIONED = "versioning not applied locally (moto never expires noncurrent versions)"

Attributes = dict[str, Any]

# Types with no local counterpart: permissions, logging, metrics, API Gateway (served by local.api).
_NOTHING_NEEDED = (
    "AWS::IAM::",
    "AWS::Logs::",
    "AWS::CloudWatch::",
    "AWS::SNS::",
    "AWS::ApiGateway::",
    "AWS::ApiGatewayV2::",
    "AWS::Lambda::",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::KMS::",
    "AWS::XRay::",
    "AWS::CloudFormation::",
)
_SQS_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)


@dataclass(slots=True)
class Inventory:
    """What the local stack is made of, for the console."""

    created: list[tuple[str, str, str]] = field(default_factory=list)  # logical id, type, physical id
    skipped: list[tuple[str, str]] = field(default_factory=list)
    not_supported: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return as_text(value)


def _tags(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    tags = properties.get("Tags") or []
    if isinstance(tags, dict):  # SAM resources take a map
        return [{"Key": str(key), "Value": _text(value)} for key, value in tags.items()]
    return [{"Key": str(tag["Key"]), "Value": _text(tag["Value"])} for tag in tags]


# ARN shapes of skipped types whose ARN is more than ``<service>:<region>:<account>:<name>``.
_ARN_SHAPES = {
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::IAM::User": "arn:aws:iam::{account}:user/{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
    "AWS::IAM::InstanceProfile": "arn:aws:iam::{account}:instance-profile/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/{name}",
}


def placeholder_arn(kind: str, name: str, region: str, account_id: str) -> str:
    """The ARN a resource of ``kind`` called ``name`` would have (IAM is global: no region)."""
    if kind not in _ARN_SHAPES:
        name = name.lstrip("/")
    shape = _ARN_SHAPES.get(kind, "arn:aws:{service}:{region}:{account}:{name}")
    return shape.format(service=kind.split("::")[1].lower(), region=region, account=account_id, name=name)


class Provisioner:
    """Creates the template's resources in moto and wires the functions' triggers."""

    def __init__(self, template: Template, clients: Mapping[str, Any], delivery: Delivery) -> None:
        self.template = template
        self.clients = clients
        self.delivery = delivery
        self.inventory = Inventory()
        self.creators: dict[str, Callable[[str, dict[str, Any]], Attributes]] = {
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Archive": self._archive,
            "AWS::Events::Rule": self._rule,
            "AWS::SQS::Queue": self._queue,
            "AWS::S3::Bucket": self._bucket,
            "AWS::DynamoDB::Table": self._table,
            "AWS::Serverless::SimpleTable": self._simple_table,
            "AWS::SSM::Parameter": self._parameter,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            "AWS::KinesisFirehose::DeliveryStream": self._delivery_stream,
        }

    def default_name(self, logical_id: str, limit: int = 64) -> str:
        return f"{self.template.stack_name}-{logical_id}"[:limit]

    # -- the whole stack ---------------------------------------------------------------------
    def provision(self, functions: Mapping[str, LocalFunction]) -> Inventory:
        template = self.template
        for logical_id, function in functions.items():
            template.attributes[logical_id] = function.attributes
        creatable = {}
        for logical_id, resource in template.resources.items():
            kind = str(resource["Type"])
            if kind in self.creators:
                creatable[logical_id] = resource
            elif kind != FUNCTION_TYPE:
                template.attributes[logical_id] = self._placeholder(logical_id, kind)
                known = kind.startswith(_NOTHING_NEEDED)
                (self.inventory.skipped if known else self.inventory.not_supported).append((logical_id, kind))
        for logical_id in creation_order(creatable):
            kind = template.type_of(logical_id)
            try:
                properties = template.resolve(template.properties(logical_id))
                attributes = self.creators[kind](logical_id, properties)
            except TemplateError as error:
                raise TemplateError(f"{logical_id} ({kind}): {error}") from None
            template.attributes[logical_id] = attributes
            self.inventory.created.append((logical_id, kind, str(attributes["Ref"])))
            log.debug("created %s %s: %s", kind, logical_id, attributes["Ref"])
        for function in functions.values():
            function.prepare()
            for rule in function.triggers.rules:
                self._function_rule(function, rule)
            for mapping in function.triggers.sqs:
                if mapping.enabled:
                    self.delivery.add_event_source(function, mapping)
        return self.inventory

    def _placeholder(self, logical_id: str, kind: str) -> Attributes:
        if kind == "AWS::Serverless::Api":
            api_id = hashlib.sha256(logical_id.encode()).hexdigest()[:10]
            return {"Ref": api_id, "RootResourceId": f"{api_id}root"}
        name = self.default_name(logical_id)
        for key, raw in (self.template.resources[logical_id].get("Properties") or {}).items():
            if key.endswith("Name"):
                try:
                    value = self.template.resolve(raw)
                except TemplateError:
                    continue
                if isinstance(value, str) and value:
                    name = value
                    break
        return {
            "Ref": name,
            "Arn": placeholder_arn(kind, name, self.template.region, self.template.account_id),
            "Name": name,
        }

    # -- EventBridge -----------------------------------------------------------------------------
    def _event_bus(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        events = self.clients["events"]
        name = str(properties.get("Name") or self.default_name(logical_id))
        if name != "default":
            kwargs: dict[str, Any] = {"Name": name}
            if properties.get("Description"):
                kwargs["Description"] = properties["Description"]
            if properties.get("Tags"):
                kwargs["Tags"] = _tags(properties)
            events.create_event_bus(**kwargs)
        arn = events.describe_event_bus(Name=name)["Arn"]
        self._add_bus(name)
        return {"Ref": name, "Name": name, "Arn": arn}

    def _add_bus(self, bus: str) -> None:
        name = bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus
        if name not in self.delivery.buses:
            self.delivery.buses.append(name)

    def _archive(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        name = str(properties.get("ArchiveName") or self.default_name(logical_id, 48))
        kwargs: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": properties["SourceArn"]}
        if properties.get("Description"):
            kwargs["Description"] = properties["Description"]
        if properties.get("EventPattern"):
            kwargs["EventPattern"] = _text(properties["EventPattern"])
        if properties.get("RetentionDays") is not None:
            kwargs["RetentionDays"] = int(properties["RetentionDays"])
        arn = self.clients["events"].create_archive(**kwargs)["ArchiveArn"]
        return {"Ref": name, "ArchiveName": name, "Arn": arn}

    def _rule(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        name = str(properties.get("Name") or self.default_name(logical_id))
        return self._put_rule(name, properties, properties.get("Targets") or [])

    def _put_rule(self, name: str, properties: Mapping[str, Any], targets: list[dict[str, Any]]) -> Attributes:
        events = self.clients["events"]
        bus = str(properties.get("EventBusName") or "default")
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus}
        for key in ("EventPattern", "ScheduleExpression", "State", "Description", "RoleArn"):
            if properties.get(key):
                kwargs[key] = _text(properties[key])
        arn = events.put_rule(**kwargs)["RuleArn"]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self._add_bus(bus)
        bus_name = bus.rsplit("/", 1)[-1]
        return {"Ref": name if bus_name == "default" else f"{bus_name}|{name}", "Arn": arn}

    def _function_rule(self, function: LocalFunction, event: RuleEvent) -> None:
        properties = dict(event.properties)
        properties.setdefault("EventPattern", properties.get("Pattern"))
        if event.properties["Type"] == "Schedule":  # SAM's Schedule event: a scheduled rule on the default bus
            properties.update(ScheduleExpression=properties.get("Schedule"), RuleName=properties.get("Name"))
        if event.properties["Type"] == "CloudWatchEvent":
            properties["EventBusName"] = properties.get("EventBusName") or "default"
        if properties.get("Enabled") is False:
            properties["State"] = "DISABLED"
        target_id = (properties.get("Target") or {}).get("Id") or f"{function.logical_id}{event.name}LambdaTarget"
        target: dict[str, Any] = {"Id": str(target_id)[:64], "Arn": function.arn}
        for key in ("Input", "InputPath", "InputTransformer", "RetryPolicy"):
            if properties.get(key):
                target[key] = properties[key]
        dead_letter = properties.get("DeadLetterConfig") or {}
        if dead_letter.get("Arn"):
            target["DeadLetterConfig"] = {"Arn": dead_letter["Arn"]}
        elif dead_letter.get("Type") == "SQS":
            queue_id = dead_letter.get("QueueLogicalId") or f"{function.logical_id}{event.name}Queue"
            queue = self._queue(queue_id, {})
            self.template.attributes.setdefault(queue_id, queue)
            target["DeadLetterConfig"] = {"Arn": queue["Arn"]}
        name = str(properties.get("RuleName") or self.default_name(f"{function.logical_id}-{event.name}"))
        self._put_rule(name, properties, [target])
        self.inventory.created.append((f"{function.logical_id}.{event.name}", "AWS::Events::Rule", name))

    # -- SQS -------------------------------------------------------------------------------------
    def _queue(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        sqs = self.clients["sqs"]
        fifo = bool(properties.get("FifoQueue"))
        name = str(properties.get("QueueName") or self.default_name(logical_id, 75 if fifo else 80))
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {key: _text(properties[key]) for key in _SQS_ATTRIBUTES if key in properties}
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if properties.get("Tags"):
            kwargs["tags"] = {tag["Key"]: tag["Value"] for tag in _tags(properties)}
        url = sqs.create_queue(**kwargs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": name}

    # -- S3 --------------------------------------------------------------------------------------
    def _bucket(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        s3 = self.clients["s3"]
        default = re.sub(r"[^a-z0-9.-]", "-", self.default_name(logical_id, 63).lower())
        name = str(properties.get("BucketName") or default)
        if self.template.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.template.region})
        optional: dict[str, Callable[[Any], Any]] = {
            "LifecycleConfiguration": lambda value: s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in value["Rules"]]}
            ),
            "PublicAccessBlockConfiguration": lambda value: s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=value
            ),
            "BucketEncryption": lambda value: s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [_encryption_rule(rule) for rule in value["ServerSideEncryptionConfiguration"]]
                },
            ),
            "OwnershipControls": lambda value: s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=value),
            "Tags": lambda value: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(properties)}),
            "NotificationConfiguration": lambda value: s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration=_notification_configuration(value)
            ),
        }
        for key, value in properties.items():
            if key == "VersioningConfiguration":
                log.debug("bucket %s: %s", name, _UNVERSIONED)
            elif key in optional:
                try:
                    optional[key](value)
                except Exception as error:  # moto gaps must not stop the stack
                    log.warning("bucket %s: %s not applied locally: %s", name, key, error)
            elif key != "BucketName":
                log.debug("bucket %s: %s ignored locally", name, key)
        return {
            "Ref": name,
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.template.region}.amazonaws.com",
        }

    # -- Firehose ----------------------------------------------------------------------------------
    def _delivery_stream(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        """A Direct PUT stream to S3 (moto writes one object per PutRecord(Batch): no buffering locally)."""
        name = str(properties.get("DeliveryStreamName") or self.default_name(logical_id))
        kwargs: dict[str, Any] = {
            "DeliveryStreamName": name,
            "DeliveryStreamType": properties.get("DeliveryStreamType", "DirectPut"),
        }
        for key in ("ExtendedS3DestinationConfiguration", "S3DestinationConfiguration"):
            if key in properties:
                kwargs[key] = _int_leaves(properties[key])
        arn = self.clients["firehose"].create_delivery_stream(**kwargs)["DeliveryStreamARN"]
        return {"Ref": name, "Arn": arn}

    # -- DynamoDB ----------------------------------------------------------------------------------
    def _table(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        name = str(properties.get("TableName") or self.default_name(logical_id, 255))
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = properties.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TableClass", "DeletionProtectionEnabled"):
            if key in properties:
                kwargs[key] = properties[key]
        stream = properties.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        sse = properties.get("SSESpecification")
        if sse:
            kwargs["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled")),
                **{key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse},
            }
        if properties.get("Tags"):
            kwargs["Tags"] = _tags(properties)
        return self._create_table(kwargs, properties.get("TimeToLiveSpecification"))

    def _simple_table(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        key = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        kwargs: dict[str, Any] = {
            "TableName": str(properties.get("TableName") or self.default_name(logical_id, 255)),
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": str(key["Type"])[0].upper()}],
        }
        if properties.get("ProvisionedThroughput"):
            kwargs["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
        else:
            kwargs["BillingMode"] = "PAY_PER_REQUEST"
        if properties.get("Tags"):
            kwargs["Tags"] = _tags(properties)
        return self._create_table(kwargs, None)

    def _create_table(self, kwargs: dict[str, Any], ttl: Mapping[str, Any] | None) -> Attributes:
        dynamodb = self.clients["dynamodb"]
        table = dynamodb.create_table(**kwargs)["TableDescription"]
        name = kwargs["TableName"]
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
        attributes: Attributes = {"Ref": name, "Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return attributes

    # -- the rest --------------------------------------------------------------------------------
    def _parameter(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        name = str(properties.get("Name") or self.default_name(logical_id, 2048))
        kwargs: dict[str, Any] = {"Name": name, "Value": _text(properties["Value"]), "Type": properties["Type"]}
        for key in ("Description", "AllowedPattern", "Tier", "DataType"):
            if properties.get(key):
                kwargs[key] = properties[key]
        if properties.get("Tags"):
            kwargs["Tags"] = _tags(properties)
        self.clients["ssm"].put_parameter(**kwargs)
        return {"Ref": name, "Type": kwargs["Type"], "Value": kwargs["Value"]}

    def _email_identity(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        identity = str(properties["EmailIdentity"])
        self.clients["sesv2"].create_email_identity(EmailIdentity=identity)
        return {"Ref": identity}

    def _secret(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        name = str(properties.get("Name") or self.default_name(logical_id, 512))
        kwargs: dict[str, Any] = {"Name": name}
        if properties.get("Description"):
            kwargs["Description"] = properties["Description"]
        if properties.get("SecretString") is not None:
            kwargs["SecretString"] = _text(properties["SecretString"])
        else:
            # A generated value would look like real credentials; locally the secret stays empty.
            self.inventory.notes.append(f"secret {name}: created without a value (set one with put-secret-value)")
        arn = self.clients["secretsmanager"].create_secret(**kwargs)["ARN"]
        return {"Ref": arn, "Id": arn, "Name": name}

    def _schedule_group(self, logical_id: str, properties: dict[str, Any]) -> Attributes:
        name = str(properties.get("Name") or self.default_name(logical_id))
        arn = self.clients["scheduler"].create_schedule_group(Name=name)["ScheduleGroupArn"]
        return {"Ref": name, "Arn": arn}


def _int_leaves(node: Any) -> Any:
    """Template numbers (strings after ``!Ref`` of a Number parameter) as the API's integers; ``Enabled`` as bools."""
    if isinstance(node, dict):
        return {key: _int_leaves(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_int_leaves(value) for value in node]
    if isinstance(node, str) and node.isdigit():
        return int(node)
    if isinstance(node, str) and node in ("true", "false"):
        return node == "true"
    return node


def _notification_configuration(value: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation ``NotificationConfiguration`` as the S3 API takes it (queues and topics; Lambda is not run)."""
    converted: dict[str, Any] = {}
    destinations = {"QueueConfigurations": ("Queue", "QueueArn"), "TopicConfigurations": ("Topic", "TopicArn")}
    for section, target in destinations.items():
        items = []
        for item in value.get(section) or []:
            entry: dict[str, Any] = {target[1]: item[target[0]], "Events": [item["Event"]]}
            rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules")
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            items.append(entry)
        if items:
            converted[section] = items
    return converted


def _encryption_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation ``ServerSideEncryptionRule`` as the S3 API takes it."""
    converted = {key: value for key, value in rule.items() if key != "ServerSideEncryptionByDefault"}
    if "ServerSideEncryptionByDefault" in rule:
        converted["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
    return converted


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation ``LifecycleConfiguration.Rules`` item as the S3 API takes it."""
    converted: dict[str, Any] = {"Status": rule["Status"]}
    if rule.get("Id"):
        converted["ID"] = rule["Id"]
    tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in rule.get("TagFilters") or []]
    prefix = rule.get("Prefix", "")
    converted["Filter"] = {"And": {"Prefix": prefix, "Tags": tags}} if tags else {"Prefix": prefix}
    expiration = {
        api: rule[cfn]
        for cfn, api in (
            ("ExpirationInDays", "Days"),
            ("ExpirationDate", "Date"),
            ("ExpiredObjectDeleteMarker", "ExpiredObjectDeleteMarker"),
        )
        if cfn in rule
    }
    if expiration:
        converted["Expiration"] = expiration
    if rule.get("AbortIncompleteMultipartUpload"):
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]}
    elif rule.get("NoncurrentVersionExpiration"):
        converted["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    transitions = [
        {
            "StorageClass": item["StorageClass"],
            **({"Days": item["TransitionInDays"]} if "TransitionInDays" in item else {"Date": item["TransitionDate"]}),
        }
        for item in rule.get("Transitions") or []
    ]
    if transitions:
        converted["Transitions"] = transitions
    return converted
