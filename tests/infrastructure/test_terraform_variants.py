"""The root applied a second way: prod (schedules on), an existing bucket, a customer-managed KMS key,
and items owned by Terraform. Checks what those inputs change in the deployed resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tftest

from mlops_sfn.core import contract, dynamodb_json
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.settings import Settings
from mlops_sfn.core.triggers import parse_event
from mlops_sfn.local import stack
from mlops_sfn.local.events import transform
from tests.conftest import DEMO, ITEMS, edited, load_event, load_item, serving_package
from tests.infrastructure.applied import apply, key_policy
from tests.infrastructure.test_terraform_apply import CONSUMER, EXTRA_SCHEDULE, role_statements

pytestmark = pytest.mark.terraform

# Development, whose approved packages this deployment (prod) serves: its output as_model_source.
MODEL_SOURCE = {
    "account_id": "111122223333",
    "sagemaker_name_prefix": "mlops-dev-",
    "bucket": "mlops-dev-111122223333-us-east-1",
    "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}
EXISTING_BUCKET = "team-owned-ml-bucket"
DATA_BUCKET = "team-datasets"  # read by runs, declared in data_buckets


@dataclass
class Variant:
    tf: tftest.TerraformTest
    server: stack.MotoServer
    outputs: dict[str, Any]
    key_arn: str

    def client(self, service: str) -> Any:
        return self.server.client(service)


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Variant]:
    folder = tmp_path_factory.mktemp("variant")
    with stack.MotoServer(folder / "moto.log") as server:
        # The key exists before the deployment, with the policy modules/key-policy gives (the root's
        # kms_key_policy output): CloudWatch Logs refuses a log group whose key it may not use.
        policy = key_policy(folder / "key-policy", server, [CONSUMER])
        key_arn = server.client("kms").create_key(Description="the team's key", Policy=policy)["KeyMetadata"]["Arn"]
        server.client("s3").create_bucket(Bucket=EXISTING_BUCKET)
        root = stack.stage(
            folder / "root",
            {
                "environment": "prod",
                "bucket_name": EXISTING_BUCKET,
                "kms_key_arn": key_arn,
                "items_ownership": "terraform",
                "schedules": EXTRA_SCHEDULE,
                "data_buckets": [DATA_BUCKET],
                "required_tags": ["cost-center"],
                "model_consumer_accounts": [CONSUMER],
                "model_source": MODEL_SOURCE,
            },
        )
        tf = apply(root, server)
        try:
            yield Variant(tf, server, dict(tf.output().items()), key_arn)
        finally:
            tf.destroy()


def test_an_existing_bucket_is_used_and_not_managed(variant: Variant) -> None:
    assert variant.outputs["bucket_name"] == EXISTING_BUCKET
    state = variant.tf.execute_command("state", "list").out.split()
    assert not [address for address in state if address.startswith("module.bucket[")]
    keys = [o["Key"] for o in variant.client("s3").list_objects_v2(Bucket=EXISTING_BUCKET).get("Contents", [])]
    assert f"input/{DEMO}/code/train.py" in keys  # the artifacts went to the given bucket


def test_the_customer_managed_key_encrypts_the_table_topics_queue_and_logs(variant: Variant) -> None:
    key = variant.key_arn
    table = variant.client("dynamodb").describe_table(TableName=variant.outputs["table_name"])["Table"]
    assert table["SSEDescription"]["KMSMasterKeyArn"] == key
    sns = variant.client("sns")
    for topic in ("notification_topic_arn", "approval_topic_arn"):
        attributes = sns.get_topic_attributes(TopicArn=variant.outputs[topic])["Attributes"]
        assert attributes["KmsMasterKeyId"] == key, topic
    queue = variant.client("sqs").get_queue_attributes(
        QueueUrl=variant.outputs["dead_letter_queue_url"], AttributeNames=["KmsMasterKeyId"]
    )
    assert queue["Attributes"]["KmsMasterKeyId"] == key
    groups = variant.client("logs").describe_log_groups()["logGroups"]
    assert groups and all(group.get("kmsKeyId") == key for group in groups), groups


def test_the_key_policy_output_is_the_one_the_key_was_made_with(variant: Variant) -> None:
    kms = variant.client("kms")
    held = json.loads(kms.get_key_policy(KeyId=variant.key_arn, PolicyName="default")["Policy"])
    assert json.loads(variant.outputs["kms_key_policy"]) == held
    services = {s["Principal"].get("Service") for s in held["Statement"]} - {None}
    assert services == {"logs.us-east-1.amazonaws.com", "cloudwatch.amazonaws.com", "events.amazonaws.com"}
    # the consumer accounts decrypt the run outputs they serve, through S3 only
    (consumers,) = [s for s in held["Statement"] if s["Sid"] == "ModelConsumersReadThroughS3"]
    assert consumers["Principal"] == {"AWS": [f"arn:aws:iam::{CONSUMER}:root"]} and consumers["Action"] == "kms:Decrypt"
    assert consumers["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


def test_with_that_policy_the_services_may_use_the_key_and_without_it_they_may_not(variant: Variant) -> None:
    """What the key's policy must allow, checked by the local AWS's evaluation of the deployed topic and
    queue: CloudWatch alarms publishing, EventBridge sending undeliverable events, and, with the key's
    default policy instead, neither (and no log group could be created)."""
    from mlops_sfn.local.policy_evaluation import Request, decide

    topic = variant.outputs["notification_topic_arn"]
    queue = variant.client("sqs").get_queue_attributes(
        QueueUrl=variant.outputs["dead_letter_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/mlops-prod-router"
    kms = variant.client("kms")
    policy = json.loads(kms.get_key_policy(KeyId=variant.key_arn, PolicyName="default")["Policy"])
    default = {"Statement": [s for s in policy["Statement"] if "AWS" in s["Principal"]]}
    uses = [
        ("cloudwatch.amazonaws.com", "kms:GenerateDataKey", {"kms:EncryptionContext:aws:sns:topicArn": topic}),
        ("events.amazonaws.com", "kms:GenerateDataKey", {"kms:EncryptionContext:aws:sqs:arn": queue}),
        ("logs.us-east-1.amazonaws.com", "kms:Encrypt", {"kms:EncryptionContext:aws:logs:arn": group}),
    ]
    for service, action, context in uses:
        request = Request(service, action, variant.key_arn, context)
        assert decide(request, resource=[policy], key_policy=True).allowed, service
        assert not decide(request, resource=[default], key_policy=True).allowed, service


def test_each_role_that_reads_encrypted_data_may_use_that_key_and_no_other(variant: Variant) -> None:
    iam = variant.client("iam")
    allowed = {}
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement.get("Sid") == "ModelSourceKey":  # the model source's key (its own test)
                    continue
                if any(action.startswith("kms:") for action in actions):
                    allowed[role["RoleName"]] = statement["Resource"]
    assert set(allowed) == {
        "mlops-prod-router",
        "mlops-prod-pipeline",
        "mlops-prod-sagemaker",
        "mlops-prod-quality-gate",
        "mlops-prod-model-copy",
        "mlops-prod-segments",  # a fanned-out run's result files
        "mlops-prod-smoke-test",  # an async endpoint's test request and answer
    }
    assert set(allowed.values()) == {variant.key_arn}


def test_a_model_source_lets_the_deployment_read_its_shared_packages_and_their_data(variant: Variant) -> None:
    """model_source (prod serving development's packages): the state machine role may read the source's
    packages of its groups, the SageMaker role its run outputs, decrypted through S3; the router and
    validate --outputs plan such a package; and the deployment describes itself as a source."""
    source = MODEL_SOURCE["account_id"]
    statements = {
        statement.get("Sid"): statement
        for where, statement in role_statements(variant.client("iam"))
        if where.startswith(("mlops-prod-pipeline/", "mlops-prod-sagemaker/"))
    }
    packages = statements["SourcePackages"]
    assert packages["Action"] == ["sagemaker:DescribeModelPackage"]
    assert packages["Resource"] == [f"arn:aws:sagemaker:us-east-1:{source}:model-package/mlops-dev-*"]
    read = statements["ReadModelSource"]
    assert (read["Action"], read["Resource"]) == ("s3:GetObject", f"arn:aws:s3:::{MODEL_SOURCE['bucket']}/runs/*")
    key = statements["ModelSourceKey"]
    assert (key["Action"], key["Resource"]) == ("kms:Decrypt", MODEL_SOURCE["kms_key_arn"])
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    router = variant.client("lambda").get_function_configuration(FunctionName="mlops-prod-router")
    environment = router["Environment"]["Variables"]
    assert environment[contract.ROUTER_ENVIRONMENT["model_source_account"]] == source
    assert environment[contract.ROUTER_ENVIRONMENT["model_source_prefix"]] == "mlops-dev-"
    settings = Settings.from_outputs(variant.outputs)
    shared = f"arn:aws:sagemaker:us-east-1:{source}:model-package/mlops-dev-cal-house-price/3"
    changes = {"stages.deploy.endpoint_name": "mlops-prod-house-price", "tags": {"cost-center": "ml-42"}}
    item = edited(serving_package(load_item(), shared), changes)
    planned = plan_execution(item, SAMPLE_TRIGGER, settings)["stages"]["create_model"]
    assert planned["request"]["Containers"] == [{"ModelPackageName": shared}]
    assert variant.outputs["as_model_source"] == {
        "account_id": "123456789012",
        "sagemaker_name_prefix": "mlops-prod-",
        "bucket": EXISTING_BUCKET,
        "kms_key_arn": variant.key_arn,
    }


def test_the_model_sources_approvals_are_taken_on_the_default_bus_and_routed(variant: Variant) -> None:
    """model_source: the source account may put events on this account's default bus (a statement added
    to its policy, never the policy replaced), and the package-approval rule sends its approvals of its
    groups, as well as this deployment's own, to the router."""
    from tests.infrastructure.test_terraform_apply import rule_matches

    events = variant.client("events")
    source = MODEL_SOURCE["account_id"]
    policy = json.loads(events.describe_event_bus(Name="default")["Policy"])
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "mlops-prod-model-source"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{source}:root"}
    assert statement["Action"] == "events:PutEvents"
    rule = events.describe_rule(Name="mlops-prod-package-approved")
    shared = load_event("sagemaker_model_package_approved")
    package = f"arn:aws:sagemaker:us-east-1:{source}:model-package/mlops-dev-cal-house-price/3"
    shared |= {"account": source, "resources": [package]}
    shared["detail"] |= {"ModelPackageArn": package, "ModelPackageGroupName": "mlops-dev-cal-house-price"}
    own = json.loads(json.dumps(shared)) | {"account": "123456789012"}
    own["detail"]["ModelPackageGroupName"] = "mlops-prod-cal-house-price"
    stranger = json.loads(json.dumps(shared)) | {"account": "777788889999"}
    assert rule_matches(rule, shared) and rule_matches(rule, own) and not rule_matches(rule, stranger)
    (target,) = events.list_targets_by_rule(Rule="mlops-prod-package-approved")["Targets"]
    assert target["Arn"] == variant.outputs["router_function_arn"]


def test_prod_switches_come_from_the_environment_map(variant: Variant) -> None:
    backups = variant.client("dynamodb").describe_continuous_backups(TableName=variant.outputs["table_name"])
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    rule = variant.client("events").describe_rule(Name=f"mlops-prod-{DEMO}-schedule")
    assert rule["State"] == "ENABLED"  # dev deploys no schedule rule
    groups = variant.client("logs").describe_log_groups()["logGroups"]
    assert {group["retentionInDays"] for group in groups} == {365}


@pytest.mark.parametrize(
    ("pipeline", "expression"),
    [(DEMO, load_item()["trigger"]["schedule"]), *EXTRA_SCHEDULE.items()],
    ids=["from-the-item-file", "from-the-schedules-variable"],
)
def test_each_schedule_rule_sends_an_event_the_router_reads_as_that_pipelines_schedule(
    variant: Variant, pipeline: str, expression: str
) -> None:
    events = variant.client("events")
    name = f"mlops-prod-{pipeline}-schedule"
    rule = events.describe_rule(Name=name)
    assert rule["ScheduleExpression"] == expression
    assert rule["State"] == "ENABLED"
    (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
    assert target["Arn"] == variant.outputs["router_function_arn"]
    transformer = target["InputTransformer"]
    tick = {**load_event("scheduled"), "resources": [rule["Arn"]]}
    (trigger,) = parse_event(transform(transformer["InputTemplate"], transformer["InputPathsMap"], tick))
    assert (trigger.source, trigger.pipeline, trigger.time, trigger.rule) == (
        "schedule",
        pipeline,
        tick["time"],
        rule["Arn"],
    )


def test_terraform_owned_items_are_put_back_by_the_next_apply(variant: Variant) -> None:
    dynamodb, table = variant.client("dynamodb"), variant.outputs["table_name"]
    key = {"consumption_pipeline_name": {"S": DEMO}}
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET description = :d",
        ExpressionAttributeValues={":d": {"S": "edited in the console"}},
    )
    drift = variant.tf.execute_command("plan", "-detailed-exitcode", "-input=false", "-no-color")
    assert drift.retcode == 2 and f'module.pipeline_config.aws_dynamodb_table_item.owned["{DEMO}"]' in drift.out
    variant.tf.apply()
    restored = dynamodb_json.from_typed(dynamodb.get_item(TableName=table, Key=key)["Item"])
    assert restored == load_item()
    assert len(dynamodb.scan(TableName=table)["Items"]) == len(list(Path(ITEMS).glob("*.json")))
    clean = variant.tf.execute_command("plan", "-detailed-exitcode", "-input=false", "-no-color")
    assert clean.retcode == 0, clean.out
    assert json.loads(variant.tf.execute_command("output", "-json", "pipelines").out) == sorted(
        path.stem for path in Path(ITEMS).glob("*.json")
    )


def test_a_declared_data_bucket_is_readable_by_jobs_and_known_to_the_router(variant: Variant) -> None:
    """data_buckets: the SageMaker role lists and reads it, writes nothing there; the router and
    `validate --outputs` learn it (and the key items may name)."""
    iam = variant.client("iam")
    document = iam.get_role_policy(RoleName="mlops-prod-sagemaker", PolicyName="jobs")["PolicyDocument"]
    statements = {statement["Sid"]: statement for statement in document["Statement"]}
    assert statements["ReadDataBuckets"]["Action"] == ["s3:GetObject"]
    assert statements["ReadDataBuckets"]["Resource"] == [f"arn:aws:s3:::{DATA_BUCKET}/*"]
    assert statements["ListDataBuckets"]["Resource"] == [f"arn:aws:s3:::{DATA_BUCKET}"]
    writes = [s for s in document["Statement"] if s["Effect"] == "Allow" and "s3:PutObject" in s["Action"]]
    assert all(DATA_BUCKET not in json.dumps(statement["Resource"]) for statement in writes)
    role = variant.client("lambda").get_function_configuration(FunctionName="mlops-prod-router")["Role"]
    policies = iam.list_role_policies(RoleName=role.rsplit("/", 1)[-1])["PolicyNames"]
    routing = [iam.get_role_policy(RoleName=role.rsplit("/", 1)[-1], PolicyName=name) for name in policies]
    listed = next(s for p in routing for s in p["PolicyDocument"]["Statement"] if s.get("Sid") == "ListInputs")
    assert f"arn:aws:s3:::{DATA_BUCKET}" in listed["Resource"]  # step caching lists what cached stages read
    router = variant.client("lambda").get_function_configuration(FunctionName="mlops-prod-router")
    environment = router["Environment"]["Variables"]
    assert environment[contract.ROUTER_ENVIRONMENT["data_buckets"]] == DATA_BUCKET
    assert environment[contract.ROUTER_ENVIRONMENT["kms_key_arn"]] == variant.key_arn
    settings = Settings.from_outputs(variant.outputs)  # what validate --outputs reads
    assert settings.data_bucket_names() == [DATA_BUCKET] and settings.kms_key_arn == variant.key_arn
    # required_tags: the router and validate --outputs refuse an item without them
    assert environment[contract.ROUTER_ENVIRONMENT["required_tags"]] == "cost-center"
    assert settings.required_tag_keys() == ["cost-center"]
    # model_consumer_accounts: the router plans each group's policy for them, and so does validate --outputs
    assert environment[contract.ROUTER_ENVIRONMENT["model_consumer_accounts"]] == CONSUMER
    assert settings.consumer_accounts() == [CONSUMER]
