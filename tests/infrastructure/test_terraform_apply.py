"""The root module applied for real: Terraform (offline toolchain) into a local AWS (moto server), driven by tftest.

One apply serves every test in this file; they read what was deployed with boto3. The last test
plans again (no changes) and destroys.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tftest

from mlops_sfn.core import contract, dynamodb_json, fanout
from mlops_sfn.core.router import Config
from mlops_sfn.core.settings import Settings
from mlops_sfn.core.triggers import parse_event
from mlops_sfn.local import stack, task_permissions
from mlops_sfn.local.policy_evaluation import Request, decide
from mlops_sfn.tools import package, policy, statemachine
from tests.conftest import DEMO, ITEMS, load_event, load_item
from tests.infrastructure.applied import apply

pytestmark = pytest.mark.terraform

CONSUMER = "444455556666"  # the account that serves what this deployment registers

EXTRA_SCHEDULE = {"demo-dev-train-and-batch-score": "rate(1 day)"}  # deploys nothing in dev: see the variant
ARTIFACTS = {"demo/code/train.py": "print('train')\n", "demo/data/train.csv": "x,y\n1,2\n"}
# Statements that need Resource "*" because the actions have no resource-level permissions.
STAR_RESOURCES = {"EcrLogin", "JobMetrics", "LogDeliveryAndTracing", "ReadSageMakerQuotas"}


@dataclass
class Deployment:
    tf: tftest.TerraformTest
    server: stack.MotoServer
    outputs: dict[str, Any]
    artifacts: Path

    def client(self, service: str) -> Any:
        return self.server.client(service)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("stack")
    artifacts = folder / "artifacts"
    for key, text in ARTIFACTS.items():
        (artifacts / key).parent.mkdir(parents=True, exist_ok=True)
        (artifacts / key).write_text(text)
    root = stack.stage(
        folder / "root",
        {
            "artifacts_folder": str(artifacts),
            "schedules": EXTRA_SCHEDULE,
            "notification_emails": ["ml-team@example.com"],
            "tags": {"team": "ml-platform"},
            "model_consumer_accounts": [CONSUMER],  # production serves what development registers
        },
    )
    with stack.MotoServer(folder / "moto.log") as server:
        tf = apply(root, server)
        outputs = {name: value for name, value in tf.output().items()}
        try:
            yield Deployment(tf, server, outputs, artifacts)
        finally:
            tf.destroy()


def test_outputs_name_what_users_and_the_cli_need(deployed: Deployment) -> None:
    outputs = deployed.outputs
    assert outputs["bucket_name"] == "mlops-dev-123456789012-us-east-1"
    assert outputs["state_machine_arn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-dev-pipeline"
    assert outputs["router_function_arn"].endswith(":function:mlops-dev-router")
    assert outputs["sagemaker_role_arn"] == "arn:aws:iam::123456789012:role/mlops-dev-sagemaker"
    assert outputs["image_uri"] == stack.VARIABLES["default_image_uri"]
    assert outputs["table_name"] == "mlops-dev-pipelines"
    assert outputs["notification_topic_arn"].endswith(":mlops-dev-notifications")
    assert outputs["approval_topic_arn"].endswith(":mlops-dev-approvals")
    assert outputs["dead_letter_queue_url"].endswith("/mlops-dev-router-dead-letters")
    assert outputs["pipelines"] == sorted(path.stem for path in ITEMS.glob("*.json"))
    assert (outputs["sagemaker_name_prefix"], outputs["region"]) == ("mlops-dev-", "us-east-1")
    assert outputs["image_repository_arns"][0].endswith(":repository/*")  # the default image's registry


def test_the_items_validate_against_the_deployments_own_outputs(deployed: Deployment, tmp_path: Path) -> None:
    """`mlops-sfn validate --outputs` with what `terraform output -json` of this apply prints."""
    from mlops_sfn import cli

    saved = tmp_path / "outputs.json"
    saved.write_text(str(deployed.tf.execute_command("output", "-json").out))
    assert cli.main(["validate", "--outputs", str(saved), str(ITEMS)]) == 0


def test_the_table_holds_every_item_as_its_file_says(deployed: Deployment) -> None:
    dynamodb = deployed.client("dynamodb")
    table = dynamodb.describe_table(TableName=deployed.outputs["table_name"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "consumption_pipeline_name", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    items = {
        item["consumption_pipeline_name"]["S"]: dynamodb_json.from_typed(item)
        for item in dynamodb.scan(TableName=deployed.outputs["table_name"])["Items"]
    }
    assert items == {path.stem: load_item(path.stem) for path in ITEMS.glob("*.json")}


def test_the_bucket_is_versioned_encrypted_private_and_tls_only(deployed: Deployment) -> None:
    s3, bucket = deployed.client("s3"), deployed.outputs["bucket_name"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    statement, _consumers = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_consumer_accounts_may_read_run_outputs_and_pull_images_and_nothing_else(deployed: Deployment) -> None:
    """model_consumer_accounts: what a consumer's model needs of this account besides the group's policy
    (which the register stage puts): the bucket's run outputs and, with a policy set on them, the
    image repositories. Decided as IAM decides across accounts: the bucket's policy and the consumer's
    own must both allow."""
    from mlops_sfn.local.policy_evaluation import Request, decide

    bucket = deployed.outputs["bucket_name"]
    policy = json.loads(deployed.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    consumer_role = f"arn:aws:iam::{CONSUMER}:role/mlops-prod-sagemaker"
    everything = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}

    def reads(role: str, key: str) -> bool:
        request = Request(role, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", {"aws:SecureTransport": "true"})
        return decide(request, identity=[everything], resource=[policy], owner="123456789012").allowed

    assert reads(consumer_role, f"runs/{DEMO}/run-1/training/job/output/model.tar.gz")
    assert not reads(consumer_role, f"input/{DEMO}/data/train.csv")  # uploads and datasets stay private
    assert not reads("arn:aws:iam::777788889999:role/other", f"runs/{DEMO}/run-1/training/job/output/model.tar.gz")
    images = json.loads(deployed.outputs["image_repository_policy"])
    (pulling,) = images["Statement"]
    assert pulling["Principal"] == {"AWS": [f"arn:aws:iam::{CONSUMER}:root"]}
    assert sorted(pulling["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert deployed.outputs["as_model_source"] == {
        "account_id": "123456789012",
        "sagemaker_name_prefix": "mlops-dev-",
        "bucket": bucket,
        "kms_key_arn": None,
    }


def test_artifacts_are_uploaded_under_the_input_prefix(deployed: Deployment) -> None:
    s3, bucket = deployed.client("s3"), deployed.outputs["bucket_name"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="input/")["Contents"]
    assert sorted(entry["Key"] for entry in listed) == sorted(f"input/{key}" for key in ARTIFACTS)
    body = s3.get_object(Bucket=bucket, Key="input/demo/code/train.py")
    assert body["Body"].read().decode() == ARTIFACTS["demo/code/train.py"]
    assert body["ContentType"] == "text/x-python"


def test_the_upload_rule_matches_object_created_under_the_input_prefix_and_targets_the_router(
    deployed: Deployment,
) -> None:
    events = deployed.client("events")
    rule = events.describe_rule(Name="mlops-dev-uploads")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [deployed.outputs["bucket_name"]]}, "object": {"key": [{"prefix": "input/"}]}},
    }
    (target,) = events.list_targets_by_rule(Rule="mlops-dev-uploads")["Targets"]
    assert target["Arn"] == deployed.outputs["router_function_arn"]
    assert target["DeadLetterConfig"]["Arn"].endswith(":mlops-dev-router-dead-letters")
    event = load_event("s3_object_created")  # an upload as S3 sends it reaches the router unchanged
    assert parse_event(event)[0].source == "s3"


def test_dev_deploys_no_schedule_rule(deployed: Deployment) -> None:
    """Schedules are off in dev, and a switched-off schedule is no rule at all (modules/triggers)."""
    rules = [rule["Name"] for rule in deployed.client("events").list_rules()["Rules"]]
    assert sorted(rules) == [
        "mlops-dev-drift",
        "mlops-dev-package-approved",
        "mlops-dev-share-approvals",  # model_consumer_accounts
        "mlops-dev-uploads",
    ]


def rule_matches(rule: dict[str, Any], event: dict[str, Any]) -> bool:
    """Whether a deployed rule's pattern matches an event (moto's TestEventPattern answers nothing: its matcher)."""
    from mlops_sfn.local.motoport import EventPattern

    return bool(EventPattern.load(rule["EventPattern"]).matches_event(event))


def test_an_approval_of_the_deployments_packages_goes_to_the_router_and_to_each_consumers_bus(
    deployed: Deployment,
) -> None:
    """The approval SageMaker sends ("Events that Amazon SageMaker sends to Amazon EventBridge", model
    package state change) reaches the router, which starts the item serving its group; with
    model_consumer_accounts, the same approval goes to each consumer's default bus, sent with a role
    that may put events there and nowhere else ("Permissions for event buses in Amazon EventBridge")."""
    from mlops_sfn.local.policy_evaluation import Request, decide

    events, iam = deployed.client("events"), deployed.client("iam")
    approved = load_event("sagemaker_model_package_approved")
    rejected = json.loads(json.dumps(approved))
    rejected["detail"]["ModelApprovalStatus"] = "Rejected"
    unrelated = json.loads(json.dumps(approved))
    unrelated["detail"]["ModelPackageGroupName"] = "payments-fraud"
    for name in ("mlops-dev-package-approved", "mlops-dev-share-approvals"):
        rule = events.describe_rule(Name=name)
        assert rule_matches(rule, approved), name
        assert not rule_matches(rule, rejected) and not rule_matches(rule, unrelated), name
    (routed,) = events.list_targets_by_rule(Rule="mlops-dev-package-approved")["Targets"]
    assert routed["Arn"] == deployed.outputs["router_function_arn"]
    assert routed["DeadLetterConfig"]["Arn"].endswith(":mlops-dev-router-dead-letters")
    assert parse_event(approved)[0].source == "model_package"
    (shared,) = events.list_targets_by_rule(Rule="mlops-dev-share-approvals")["Targets"]
    consumer_bus = f"arn:aws:events:us-east-1:{CONSUMER}:event-bus/default"
    assert shared["Arn"] == consumer_bus and shared["RoleArn"].endswith(":role/mlops-dev-share-approvals")
    assert shared["DeadLetterConfig"]["Arn"].endswith(":mlops-dev-router-dead-letters")  # a refusal is kept
    policy = iam.get_role_policy(RoleName="mlops-dev-share-approvals", PolicyName="put-on-consumer-buses")
    role = shared["RoleArn"]

    def may_put(bus: str, bus_policy: dict[str, Any] | None) -> bool:  # another account's bus: both must allow
        request = Request(role, "events:PutEvents", bus, {})
        return decide(request, identity=[policy["PolicyDocument"]], resource=[bus_policy] if bus_policy else []).allowed

    # the statement the consumer's modules/approval-events adds to its bus's policy (PutPermission)
    receiving = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "mlops-prod-model-source",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "events:PutEvents",
                "Resource": consumer_bus,
            }
        ],
    }
    assert may_put(consumer_bus, receiving)
    assert not may_put(consumer_bus, None)  # without the consumer's bus policy: refused
    other_bus = "arn:aws:events:us-east-1:777788889999:event-bus/default"
    assert not may_put(other_bus, receiving | {"Statement": [receiving["Statement"][0] | {"Resource": other_bus}]})
    trust = iam.get_role(RoleName="mlops-dev-share-approvals")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}


def test_the_drift_rule_sends_the_drift_alarms_changes_to_alarm_to_the_router(deployed: Deployment) -> None:
    """The event AWS documents for an alarm state change matches the deployed pattern only for a drift
    alarm of this deployment going to ALARM ("Alarm events and EventBridge")."""
    events = deployed.client("events")
    rule = events.describe_rule(Name="mlops-dev-drift")
    (target,) = events.list_targets_by_rule(Rule="mlops-dev-drift")["Targets"]
    assert target["Arn"] == deployed.outputs["router_function_arn"]
    assert target["DeadLetterConfig"]["Arn"].endswith(":mlops-dev-router-dead-letters")
    event = load_event("cloudwatch_alarm_state_change")

    def matches(changed: dict[str, Any]) -> bool:  # moto's TestEventPattern answers nothing: its matcher
        from mlops_sfn.local.motoport import EventPattern

        return bool(EventPattern.load(rule["EventPattern"]).matches_event(changed))

    assert matches(event) and parse_event(event)[0].source == "monitoring"
    back_to_ok = json.loads(json.dumps(event))
    back_to_ok["detail"]["state"]["value"] = "OK"
    another = json.loads(json.dumps(event))
    another["detail"]["alarmName"] = "mlops-dev-cal-house-price-5xx-errors"
    assert not matches(back_to_ok) and not matches(another)


def test_every_function_runs_on_the_deployments_runtime(deployed: Deployment) -> None:
    """Provider 3.39 cannot create python3.12 functions: the stand-in runtime is replaced after the apply."""
    lambdas = deployed.client("lambda")
    for name in ("mlops-dev-router", "mlops-dev-quality-gate", "mlops-dev-model-copy", "mlops-dev-smoke-test"):
        assert lambdas.get_function_configuration(FunctionName=name)["Runtime"] == "python3.12", name


def test_the_router_is_deployed_with_the_environment_it_reads(deployed: Deployment) -> None:
    function = deployed.client("lambda").get_function_configuration(FunctionName="mlops-dev-router")
    assert function["Handler"] == "router.handler.handler"
    assert function["CodeSha256"] == package.code_sha256(package.PACKAGE.read_bytes())
    variables = function["Environment"]["Variables"]
    assert variables == contract.router_environment(
        {
            "table_name": deployed.outputs["table_name"],
            "state_machine_arn": deployed.outputs["state_machine_arn"],
            "bucket": deployed.outputs["bucket_name"],
            "sagemaker_role_arn": deployed.outputs["sagemaker_role_arn"],
            "default_image_uri": stack.VARIABLES["default_image_uri"],
            "sagemaker_name_prefix": "mlops-dev-",  # <name_prefix>-<environment>-
            "image_repository_arns": "arn:aws:ecr:us-east-1:123456789012:repository/*",  # the default image's
            "data_buckets": "",  # none declared
            "kms_key_arn": "",  # AWS-managed encryption
            # the root's tags with its own, for what each run creates (Terraform's jsonencode sorts keys)
            "deployment_tags": '{"mlops-sfn:environment":"dev","team":"ml-platform"}',
            "required_tags": "",  # none required
            "model_consumer_accounts": CONSUMER,
            "model_source_account": "",  # it serves its own packages only
            "model_source_prefix": "",
            "report_batch_item_failures": "false",  # the framework wires no SQS source
            "ledger_table_name": deployed.outputs["run_ledger_table_name"],
        }
    )
    config = Config.from_environment({**variables, "AWS_REGION": stack.REGION})  # what the router checks at start
    assert config.state_machine_arn == deployed.outputs["state_machine_arn"]
    assert config.settings.tags() == {"mlops-sfn:environment": "dev", "team": "ml-platform"}
    assert Settings.from_outputs(deployed.outputs).tags() == config.settings.tags()  # validate --outputs reads them
    invoke = deployed.client("lambda").get_function_event_invoke_config(FunctionName="mlops-dev-router")
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith(":mlops-dev-router-dead-letters")


def definition_variables(deployed: Deployment) -> dict[str, str]:
    return {
        "notification_topic_arn": deployed.outputs["notification_topic_arn"],
        "approval_topic_arn": deployed.outputs["approval_topic_arn"],
        "quality_gate_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-quality-gate",
        "model_copy_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-model-copy",
        "smoke_test_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-smoke-test",
        "segments_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-segments",
        "ledger_table_name": "mlops-dev-run-ledger",
    }


def test_the_state_machine_definition_is_the_rendered_template(deployed: Deployment) -> None:
    machine = deployed.client("stepfunctions").describe_state_machine(
        stateMachineArn=deployed.outputs["state_machine_arn"]
    )
    assert json.loads(machine["definition"]) == statemachine.render(definition_variables(deployed))
    assert machine["roleArn"] == "arn:aws:iam::123456789012:role/mlops-dev-pipeline"


def test_the_state_machine_role_policy_is_the_rendered_policy_template(deployed: Deployment) -> None:
    iam = deployed.client("iam")
    document = iam.get_role_policy(RoleName="mlops-dev-pipeline", PolicyName="pipeline")["PolicyDocument"]
    expected = policy.render_policy(
        {
            **definition_variables(deployed),
            "partition": "aws",
            "region": stack.REGION,
            "account_id": "123456789012",
            "sagemaker_role_arn": deployed.outputs["sagemaker_role_arn"],
            "bucket": deployed.outputs["bucket_name"],
            "sagemaker_name_prefix": "mlops-dev-",
            "model_source_account": "123456789012",  # no model source: its own
            "model_source_prefix": "mlops-dev-",
            "state_machine_name": "mlops-dev-pipeline",
        }
    )
    assert document == expected


def role_statements(iam: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for role in iam.list_roles()["Roles"]:
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            for statement in document["Statement"]:
                yield f"{role['RoleName']}/{name}", statement


def test_no_role_allows_every_action_and_only_unscopable_actions_get_every_resource(deployed: Deployment) -> None:
    statements = list(role_statements(deployed.client("iam")))
    # pipeline, logs-and-tracing, router, quality gate, model copy, smoke test, segments, SageMaker jobs,
    # and sending approvals to the consumers' buses (model_consumer_accounts)
    assert len({where for where, _ in statements}) == 9
    for where, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions and not any(action.endswith(":*") for action in actions), where
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources and statement["Effect"] == "Allow":  # (a Deny on every resource only narrows)
            assert statement.get("Sid") in STAR_RESOURCES, f"{where}: {statement}"


def test_jobs_cannot_write_uploads_and_pull_only_from_the_default_images_registry(deployed: Deployment) -> None:
    statements = [s for where, s in role_statements(deployed.client("iam")) if where == "mlops-dev-sagemaker/jobs"]

    def allowed(action: str, resource: str) -> bool:
        def matches(statement: dict[str, Any]) -> bool:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            return action in actions and any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources)

        granted = any(matches(s) for s in statements if s["Effect"] == "Allow")
        return granted and not any(matches(s) for s in statements if s["Effect"] == "Deny")

    bucket = f"arn:aws:s3:::{deployed.outputs['bucket_name']}"
    assert allowed("s3:GetObject", f"{bucket}/input/{DEMO}/code/train.py")  # jobs read uploads
    assert allowed("s3:PutObject", f"{bucket}/runs/{DEMO}/run-1/training/model.tar.gz")
    assert not allowed("s3:PutObject", f"{bucket}/input/{DEMO}/manifest.json")  # a marker would start a run
    # The local default image is 123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:...
    assert allowed("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:123456789012:repository/sagemaker-scikit-learn")
    assert not allowed("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:999999999999:repository/sagemaker-scikit-learn")
    assert not allowed("ecr:BatchGetImage", "arn:aws:ecr:eu-west-1:123456789012:repository/sagemaker-scikit-learn")


def test_the_router_may_read_uploads_list_inputs_read_the_ledger_and_look_up_its_own_runs(
    deployed: Deployment,
) -> None:
    router = {
        statement["Sid"]: statement
        for where, statement in role_statements(deployed.client("iam"))
        if where.startswith("mlops-dev-router/")
    }
    bucket = f"arn:aws:s3:::{deployed.outputs['bucket_name']}"
    assert router["CheckUploads"]["Action"] == "s3:GetObject"
    assert router["CheckUploads"]["Resource"] == f"{bucket}/input/*"
    # listed, never read: an upload's folder, and what a cached stage reads (step caching)
    listed = router["ListInputs"]["Resource"]
    assert router["ListInputs"]["Action"] == "s3:ListBucket" and listed in (bucket, [bucket])
    s3_actions = [s["Action"] for s in router.values() if str(s["Action"]).startswith("s3:")]
    assert sorted(s3_actions) == ["s3:GetObject", "s3:GetObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    # a fanned-out run's segments, where its Map reads them, and nothing else
    assert router["WriteSegments"]["Action"] == "s3:PutObject"
    assert router["WriteSegments"]["Resource"] == f"{bucket}/runs/*/{fanout.SEGMENTS_FOLDER}/*"
    # SageMaker's quotas, which bound a fanned-out run's segments at once: ListServiceQuotas has no
    # resource type, so "*" (Service Authorization Reference), and no other servicequotas action
    assert router["ReadSageMakerQuotas"]["Action"] == "servicequotas:ListServiceQuotas"
    assert router["ReadSageMakerQuotas"]["Resource"] == "*"
    # which segments of a run succeeded (a segment's ledger record is proven against them)
    assert router["ReadSegmentOutcomes"]["Action"] == "s3:GetObject"
    assert router["ReadSegmentOutcomes"]["Resource"] == f"{bucket}/runs/*/{fanout.RESULTS_FOLDER}/*"
    assert router["ReadDriftReports"]["Resource"] == f"{bucket}/monitoring/*/reports/*"  # a drift run's violations
    ledger = deployed.client("dynamodb").describe_table(TableName=deployed.outputs["run_ledger_table_name"])["Table"]
    assert router["ReadLedger"]["Action"] == "dynamodb:GetItem"
    assert router["ReadLedger"]["Resource"] == ledger["TableArn"]
    # the drift cool-down: its own records only
    assert router["RecordDriftRuns"]["Action"] == "dynamodb:PutItem"
    assert router["RecordDriftRuns"]["Resource"] == ledger["TableArn"]
    assert router["RecordDriftRuns"]["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["drift#*"]}}
    executions = deployed.outputs["state_machine_arn"].replace(":stateMachine:", ":execution:")
    assert router["FindRuns"] == {
        "Sid": "FindRuns",
        "Effect": "Allow",
        "Action": "states:DescribeExecution",
        "Resource": f"{executions}:*",
    }


def test_the_smoke_test_may_invoke_the_deployments_endpoints_and_nothing_else(deployed: Deployment) -> None:
    """Decided by the local IAM evaluator against the function's role as Terraform created it."""
    iam = deployed.client("iam")
    role = iam.get_role(RoleName="mlops-dev-smoke-test")["Role"]["Arn"]
    policies = task_permissions.role_policies_via_api(iam, role)
    assert policies is not None

    def allowed(action: str, resource: str) -> bool:
        return decide(Request(role, action, resource, {}), identity=policies).allowed

    endpoints = "arn:aws:sagemaker:us-east-1:123456789012:endpoint"
    assert allowed("sagemaker:InvokeEndpoint", f"{endpoints}/mlops-dev-cal-house-price")
    assert not allowed("sagemaker:InvokeEndpoint", f"{endpoints}/payments-fraud")  # another team's
    assert allowed("sagemaker:InvokeEndpointAsync", f"{endpoints}/mlops-dev-cal-house-price")  # asked via S3
    assert not allowed("sagemaker:InvokeEndpointAsync", f"{endpoints}/payments-fraud")
    assert not allowed("sagemaker:UpdateEndpoint", f"{endpoints}/mlops-dev-cal-house-price")
    # an async endpoint's test: its request written in its pipeline's folder, the answer read back
    folder = f"arn:aws:s3:::{deployed.outputs['bucket_name']}/inference/{DEMO}"
    assert allowed("s3:PutObject", f"{folder}/smoke-tests/{DEMO}-run-1.in")
    assert allowed("s3:GetObject", f"{folder}/output/0f1e.out")
    assert allowed("s3:GetObject", f"{folder}/failures/0f1e-error.out")
    assert not allowed("s3:PutObject", f"{folder}/output/0f1e.out")  # answers are the endpoint's to write
    assert not allowed("s3:GetObject", f"{folder}/smoke-tests/{DEMO}-run-1.in")
    bucket = f"arn:aws:s3:::{deployed.outputs['bucket_name']}"
    assert not allowed("s3:PutObject", f"{bucket}/input/{DEMO}/data.csv")  # never an upload that starts a run


def role_allows(iam: Any, role_name: str, action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """The local IAM evaluator's decision for a role as Terraform created it."""
    role = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    policies = task_permissions.role_policies_via_api(iam, role)
    assert policies is not None
    return decide(Request(role, action, resource, context or {}), identity=policies).allowed


def test_the_segments_function_reads_only_results_and_the_router_writes_only_segment_lists(
    deployed: Deployment,
) -> None:
    """A fanned-out run's two new callers, decided by the local IAM evaluator against their roles as
    Terraform created them: each may do its one thing in the bucket and is denied the rest (the
    router also reads the outcomes, to prove a segment's ledger record, and no other run file)."""
    bucket = f"arn:aws:s3:::{deployed.outputs['bucket_name']}"
    run = f"{bucket}/runs/{DEMO}/run-1"
    allowed = functools.partial(role_allows, deployed.client("iam"))

    results = f"runs/{DEMO}/run-1/segments/results/run-1/"
    assert allowed("mlops-dev-segments", "s3:ListBucket", bucket, {"s3:prefix": results})
    assert allowed("mlops-dev-segments", "s3:GetObject", f"{bucket}/{results}0f1e/FAILED_0.json")
    assert not allowed("mlops-dev-segments", "s3:ListBucket", bucket, {"s3:prefix": f"input/{DEMO}/"})
    assert not allowed("mlops-dev-segments", "s3:GetObject", f"{run}/training/model.tar.gz")
    assert not allowed("mlops-dev-segments", "s3:PutObject", f"{bucket}/{results}manifest.json")
    assert allowed("mlops-dev-router", "s3:PutObject", f"{run}/segments/items/run-1.json")
    assert not allowed("mlops-dev-router", "s3:PutObject", f"{run}/segments/results/run-1/manifest.json")
    assert not allowed("mlops-dev-router", "s3:PutObject", f"{bucket}/input/{DEMO}/manifest.json")
    assert allowed("mlops-dev-router", "s3:GetObject", f"{bucket}/{results}0f1e/SUCCEEDED_0.json")
    assert not allowed("mlops-dev-router", "s3:GetObject", f"{run}/segments/band1/training/model.tar.gz")
    assert not allowed("mlops-dev-router", "s3:GetObject", f"{run}/segments/items/run-1.json")
    assert allowed("mlops-dev-router", "servicequotas:ListServiceQuotas", "*")
    quota = "arn:aws:servicequotas:us-east-1:123456789012:sagemaker/L-1194F27D"
    assert not allowed("mlops-dev-router", "servicequotas:RequestServiceQuotaIncrease", quota)


def test_serving_a_fanned_out_runs_models_lets_each_function_do_its_one_thing(deployed: Deployment) -> None:
    """The model-copy function publishes each segment's model where the run's multi-model endpoint
    loads it, and the smoke test lists that prefix to find the first; nothing more in the bucket."""
    bucket = f"arn:aws:s3:::{deployed.outputs['bucket_name']}"
    run = f"{bucket}/runs/{DEMO}/run-1"
    allowed = functools.partial(role_allows, deployed.client("iam"))

    assert allowed("mlops-dev-model-copy", "s3:PutObject", f"{run}/segments/models/band1.tar.gz")
    # an on-demand training job's model, copied to where the spot job's was planned (stages/training.py)
    assert allowed("mlops-dev-model-copy", "s3:PutObject", f"{run}/training/{DEMO}-train-0a1b/output/model.tar.gz")
    assert not allowed("mlops-dev-model-copy", "s3:PutObject", f"{run}/training/checkpoints/epoch-1.pt")
    assert not allowed("mlops-dev-model-copy", "s3:PutObject", f"{run}/preprocessing/train/part-0.csv")
    assert not allowed("mlops-dev-model-copy", "s3:PutObject", f"{run}/segments/band1/training/model.tar.gz")
    assert not allowed("mlops-dev-model-copy", "s3:PutObject", f"{bucket}/input/{DEMO}/models/band1.tar.gz")
    models = f"runs/{DEMO}/run-1/segments/models/"
    assert allowed("mlops-dev-smoke-test", "s3:ListBucket", bucket, {"s3:prefix": models})
    assert not allowed("mlops-dev-smoke-test", "s3:ListBucket", bucket, {"s3:prefix": f"runs/{DEMO}/run-1/"})
    assert not allowed("mlops-dev-smoke-test", "s3:GetObject", f"{run}/segments/models/band1.tar.gz")


def test_topics_queue_and_alarms_exist_and_alarms_publish_to_the_notification_topic(deployed: Deployment) -> None:
    sns = deployed.client("sns")
    approvals = sns.get_topic_attributes(TopicArn=deployed.outputs["approval_topic_arn"])["Attributes"]
    assert approvals["KmsMasterKeyId"] == "alias/aws/sns"
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=deployed.outputs["notification_topic_arn"])[
        "Subscriptions"
    ]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ml-team@example.com")
    alarms = deployed.client("cloudwatch").describe_alarms(AlarmNamePrefix="mlops-dev-")["MetricAlarms"]
    assert sorted(alarm["AlarmName"] for alarm in alarms) == [
        "mlops-dev-pipeline-ExecutionsFailed",
        "mlops-dev-pipeline-ExecutionsTimedOut",
        "mlops-dev-router-dead-letters",
        "mlops-dev-router-errors",
    ]
    assert {action for alarm in alarms for action in alarm["AlarmActions"]} == {
        deployed.outputs["notification_topic_arn"]
    }
    sqs = deployed.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=deployed.outputs["dead_letter_queue_url"], AttributeNames=["All"])
    (statement,) = json.loads(attributes["Attributes"]["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    rules = sorted(arn.rsplit("/", 1)[1] for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"])
    # dev has no schedules; the approvals shared with the consumers that their buses refuse land here too
    assert rules == ["mlops-dev-drift", "mlops-dev-package-approved", "mlops-dev-share-approvals", "mlops-dev-uploads"]


def test_with_bucket_events_on_an_upload_under_the_input_prefix_is_matched_by_the_upload_rule(
    deployed: Deployment,
) -> None:
    """The local fill for modules/bucket-events, then S3 -> EventBridge -> the deployed upload rule.

    moto 5.2 never invokes a Lambda target, and its schedule rules match every event and stop the
    delivery, so for this test every target is taken off, a queue observes the upload rule, and the
    targets are put back exactly as Terraform made them.
    """
    s3, events, sqs = deployed.client("s3"), deployed.client("events"), deployed.client("sqs")
    bucket, rule = deployed.outputs["bucket_name"], "mlops-dev-uploads"
    stack.enable_bucket_events(s3, bucket)
    queue = sqs.create_queue(QueueName="observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    targets = {
        name["Name"]: events.list_targets_by_rule(Rule=name["Name"])["Targets"] for name in events.list_rules()["Rules"]
    }
    for name, taken in targets.items():
        events.remove_targets(Rule=name, Ids=[target["Id"] for target in taken])
    events.put_targets(Rule=rule, Targets=[{"Id": "observer", "Arn": queue_arn}])
    try:
        s3.put_object(Bucket=bucket, Key="elsewhere/ignored.csv", Body=b"x")
        s3.put_object(Bucket=bucket, Key="input/demo/manifest.json", Body=b"{}")
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        assert [json.loads(message["Body"])["detail"]["object"]["key"] for message in messages] == [
            "input/demo/manifest.json"
        ]
    finally:
        events.remove_targets(Rule=rule, Ids=["observer"])
        for name, taken in targets.items():
            events.put_targets(Rule=name, Targets=taken)
        sqs.delete_queue(QueueUrl=queue)
        for key in ("elsewhere/ignored.csv", "input/demo/manifest.json"):
            versions = s3.list_object_versions(Bucket=bucket, Prefix=key)
            for version in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])


def test_a_console_edit_of_a_seeded_item_survives_the_next_plan(deployed: Deployment) -> None:
    dynamodb, table = deployed.client("dynamodb"), deployed.outputs["table_name"]
    dynamodb.update_item(
        TableName=table,
        Key={"consumption_pipeline_name": {"S": DEMO}},
        UpdateExpression="SET description = :d",
        ExpressionAttributeValues={":d": {"S": "edited in the console"}},
    )
    plan = deployed.tf.plan(output=True)
    changes = {address: change["change"]["actions"] for address, change in plan.resource_changes.items()}
    assert all(actions == ["no-op"] for actions in changes.values()), changes


def test_the_run_ledger_is_keyed_by_cache_key_encrypted_and_expires_records(deployed: Deployment) -> None:
    dynamodb = deployed.client("dynamodb")
    name = deployed.outputs["run_ledger_table_name"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "cache_key", "KeyType": "HASH"}]
    assert table["SSEDescription"]["Status"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")

    def recovery(table: str) -> str:
        found = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        return str(found["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"])

    assert recovery(name) == recovery(deployed.outputs["table_name"])  # the environment's setting (dev: off)


def test_a_second_plan_reports_no_changes_and_destroy_removes_everything(deployed: Deployment) -> None:
    result = deployed.tf.execute_command("plan", "-detailed-exitcode", "-input=false", "-no-color")
    assert result.retcode == 0, result.out  # 2 would mean changes
    deployed.tf.destroy()
    state = deployed.tf.execute_command("state", "list")
    assert state.out.strip() == ""
    assert deployed.client("dynamodb").list_tables()["TableNames"] == []
    assert deployed.client("stepfunctions").list_state_machines()["stateMachines"] == []
