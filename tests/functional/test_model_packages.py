"""Serving a registered model package (stages.create_model.model_package) on the local AWS: the model
is created from the package as registered, and only a package read Approved when the run reaches it
is served; a rejected, pending or unreadable one fails the run before anything is created."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest

from mlops_sfn.core.stages import STAGES, register
from mlops_sfn.local import task_permissions
from mlops_sfn.local.harness import LocalRuns
from tests.conftest import DELETE, edited, load_item, serving_package

pytestmark = pytest.mark.functional

ENDPOINT = "mlops-dev-from-package"


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalRuns() as runs:
        yield runs


@pytest.fixture(scope="module")
def package(local: LocalRuns) -> str:
    """The demo's model, trained and registered, then approved: what a development run leaves behind."""
    report = local.run(edited(load_item(), {"stages.monitoring.run": False}), answer="approve")
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    arn: str = report.results["register"]["model_package_arn"]
    assert local.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    return arn


def served(package: str, endpoint: str = ENDPOINT) -> dict[str, Any]:
    item = serving_package(load_item(), package)
    return edited(item, {"stages.deploy.endpoint_name": endpoint, "stages.monitoring.run": False})


def test_an_approved_package_is_served_as_registered(local: LocalRuns, package: str) -> None:
    report = local.run(served(package))
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.states.index("Check model package") < report.states.index("Create model")
    model = local.sagemaker.describe_model(ModelName=report.results["create_model"]["model_arn"].split("/")[-1])
    assert model["Containers"] == [{"ModelPackageName": package}]  # the package itself, not a copy of its data
    config = local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    variant = local.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
    assert variant["ModelName"] == model["ModelName"]
    assert report.results["deploy"]["smoke_test"]["response"]["bytes"] > 0  # the package's model answered


@pytest.mark.parametrize("status", ["Rejected", "PendingManualApproval"])
def test_a_package_not_approved_when_the_run_reads_it_is_never_served(
    local: LocalRuns, package: str, status: str
) -> None:
    endpoint = f"{ENDPOINT}-{status.lower()}"
    local.sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus=status)
    try:
        report = local.run(served(package, endpoint))
    finally:
        local.sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    assert (report.status, report.error) == ("FAILED", "create_model.ModelPackageNotApproved"), report.cause
    assert f"model package {package} is {status}, not Approved" in report.cause
    assert "Create model" not in report.states and "Create endpoint" not in report.states
    assert not local.sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"]


def test_a_role_that_may_not_read_the_package_serves_nothing(local: LocalRuns, package: str) -> None:
    report = local.run(served(package, f"{ENDPOINT}-unread"), deny=["sagemaker:DescribeModelPackage"])
    assert report.status == "FAILED" and report.stages["create_model"] == "failed"
    assert "sagemaker:DescribeModelPackage" in report.cause and "Create model" not in report.states


CONSUMER = "444455556666"  # the account that serves this deployment's models
# Register alone, of a model trained elsewhere: the stage that shares its group.
REGISTER_ONLY = edited(
    load_item(),
    {
        **{f"stages.{stage}.run": stage == "register" for stage in STAGES},
        "quality_gate": DELETE,
        "stages.create_model.model_data_url": "s3://{bucket}/models/existing/model.tar.gz",
    },
)


def test_a_deployment_with_consumer_accounts_shares_each_group_a_run_registers_in(local: LocalRuns) -> None:
    """model_consumer_accounts: the run puts the group's resource policy after creating the group, and
    the local IAM decides a consumer's request on the group's packages with it (both sides must allow:
    "Cross-account policy evaluation logic"); another account's is refused, and so is one the
    consumer's own policy does not allow."""
    sharing = LocalRuns(replace(local.settings, model_consumer_accounts=CONSUMER))
    with sharing:
        report = sharing.run(REGISTER_ONLY)
        assert report.status == "SUCCEEDED", (report.error, report.cause)
        assert report.states.index("Register model") < report.states.index("Share model package group")
        package = report.results["register"]["model_package_arn"]
        group = package.split("/")[1]
        policy = json.loads(
            sharing.sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"]
        )
        assert {s["Sid"]: s["Principal"] for s in policy["Statement"]} == {
            "ConsumersReadGroup": {"AWS": [f"arn:aws:iam::{CONSUMER}:root"]},
            "ConsumersReadPackages": {"AWS": [f"arn:aws:iam::{CONSUMER}:root"]},
        }
        read = [task_permissions.Call("sagemaker:DescribeModelPackage", package, {})]
        allows = [
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}]}
        ]
        serving = f"arn:aws:iam::{CONSUMER}:role/mlops-prod-pipeline"
        assert task_permissions.refusal(serving, read, allows, []) is None
        assert "no identity-based policy allows" in str(task_permissions.refusal(serving, read, [], []))
        other = "arn:aws:iam::777788889999:role/mlops-other-pipeline"
        assert "no resource-based policy of account" in str(task_permissions.refusal(other, read, allows, []))


def test_a_role_that_may_not_share_the_group_fails_the_register_stage_naming_the_action(local: LocalRuns) -> None:
    with LocalRuns(replace(local.settings, model_consumer_accounts=CONSUMER)) as sharing:
        denied = "sagemaker:PutModelPackageGroupPolicy"
        report = sharing.run(REGISTER_ONLY, deny=[denied])
    assert report.status == "FAILED" and report.stages["register"] == "failed"
    assert denied in report.cause and "is not authorized to perform" in report.cause


# --- Serving the model source's package in a consumer account (root variable model_source) ---------
# The source (development, SOURCE) trains and registers; this deployment (the local AWS's default
# account, production) serves the package as registered. The source grants, as its Terraform does:
# the group's resource policy (the register stage's), its bucket's policy on runs/* (modules/bucket)
# and its key's policy, through S3 (modules/key-policy); the consumer's roles allow their side
# (modules/state-machine's SourcePackages, modules/sagemaker-role's ReadModelSource and ModelSourceKey).
SOURCE = "111122223333"
SOURCE_PREFIX = "mlops-dev-"
SOURCE_BUCKET = f"mlops-dev-{SOURCE}-us-east-1"
SERVING = "123456789012"  # the local AWS's default account, where LocalRuns deploys
SERVING_ROLE = f"arn:aws:iam::{SERVING}:role/mlops-prod-sagemaker"
SOURCE_MODEL = "runs/cal-house-price/exec-7/training/job-7/output/model.tar.gz"


def source_session() -> Any:
    """The source account's side of the local AWS: moto answers credentials STS gave for a role of an
    account as that account."""
    import boto3

    credentials = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{SOURCE}:role/mlops-dev-admin", RoleSessionName="source-admin"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def bucket_policy() -> str:
    """modules/bucket's statement for model_consumer_accounts (its TLS-only Deny is left out: the
    in-process local S3 has no TLS to tell, server.py explains)."""
    statement = {
        "Sid": "ModelConsumersReadRunOutputs",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{SERVING}:root"]},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{SOURCE_BUCKET}/runs/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def key_policy(consumers: list[str]) -> str:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountRolesByTheirPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{SOURCE}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if consumers:
        statements.append(
            {
                "Sid": "ModelConsumersReadThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{account}:root" for account in consumers]},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass
class Source:
    session: Any
    package: str
    key: str

    def client(self, service: str) -> Any:
        return self.session.client(service)


@pytest.fixture(scope="module")
def source(local: LocalRuns, package: str) -> Source:
    """The development account after a run registered the demo's model and it was approved: its model
    data in its bucket, encrypted with its key, the group shared with the serving account."""
    session = source_session()
    kms, s3, sagemaker = (session.client(service) for service in ("kms", "s3", "sagemaker"))
    key = kms.create_key(Description="development's key", Policy=key_policy([SERVING]))["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=SOURCE_BUCKET)
    s3.put_bucket_policy(Bucket=SOURCE_BUCKET, Policy=bucket_policy())
    trained = local.sagemaker.describe_model_package(ModelPackageName=package)["InferenceSpecification"]
    bucket, _, data = trained["Containers"][0]["ModelDataUrl"].removeprefix("s3://").partition("/")
    model = local.s3.get_object(Bucket=bucket, Key=data)["Body"].read()
    s3.put_object(Bucket=SOURCE_BUCKET, Key=SOURCE_MODEL, Body=model, ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    group = f"{SOURCE_PREFIX}cal-house-price"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    containers = [{**c, "ModelDataUrl": f"s3://{SOURCE_BUCKET}/{SOURCE_MODEL}"} for c in trained["Containers"]]
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={**trained, "Containers": containers},
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    settings = replace(local.settings, sagemaker_role_arn=f"arn:aws:iam::{SOURCE}:role/mlops-dev-sagemaker")
    policy = register.group_policy(group, [SERVING], settings)  # what the source's register stage puts
    sagemaker.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=json.dumps(policy))
    return Source(session, arn, key)


def serving_role_policy(bucket: str) -> dict[str, Any]:
    """The serving deployment's SageMaker role: its own bucket and logs, and what modules/sagemaker-role
    adds for a model_source (ReadModelSource, ModelSourceKey)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnBucket",
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            },
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:*", "cloudwatch:PutMetricData"], "Resource": "*"},
            {
                "Sid": "ReadModelSource",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{SOURCE_BUCKET}/runs/*",
            },
            {
                "Sid": "ModelSourceKey",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": f"arn:aws:kms:us-east-1:{SOURCE}:key/*",
                "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
            },
        ],
    }


@pytest.fixture(scope="module")
def serving(local: LocalRuns) -> Any:
    """Production: a deployment of the serving account whose model_source is development."""
    settings = replace(
        local.settings,
        sagemaker_role_arn=SERVING_ROLE,
        model_source_account=SOURCE,
        model_source_prefix=SOURCE_PREFIX,
    )
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    trust = {"Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole", "Effect": "Allow"}
    iam.create_role(RoleName="mlops-prod-sagemaker", AssumeRolePolicyDocument=json.dumps({"Statement": [trust]}))
    iam.put_role_policy(
        RoleName="mlops-prod-sagemaker",
        PolicyName="jobs",
        PolicyDocument=json.dumps(serving_role_policy(settings.bucket)),
    )
    with LocalRuns(settings) as runs:
        yield runs


def test_a_package_of_the_model_source_is_served_in_the_consuming_account(serving: LocalRuns, source: Source) -> None:
    report = serving.run(served(source.package, f"{ENDPOINT}-shared"))
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    model = serving.sagemaker.describe_model(ModelName=report.results["create_model"]["model_arn"].split("/")[-1])
    assert model["Containers"] == [{"ModelPackageName": source.package}]  # development's package, as registered
    assert model["ModelArn"].split(":")[4] == SERVING
    assert report.results["deploy"]["smoke_test"]["response"]["bytes"] > 0  # its model answered here


def test_a_package_the_source_has_since_rejected_is_never_served(serving: LocalRuns, source: Source) -> None:
    endpoint = f"{ENDPOINT}-revoked"
    source.client("sagemaker").update_model_package(ModelPackageArn=source.package, ModelApprovalStatus="Rejected")
    try:
        report = serving.run(served(source.package, endpoint))
    finally:
        source.client("sagemaker").update_model_package(ModelPackageArn=source.package, ModelApprovalStatus="Approved")
    assert (report.status, report.error) == ("FAILED", "create_model.ModelPackageNotApproved"), report.cause
    assert not serving.sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"]


def test_without_the_groups_policy_the_package_cannot_be_read_and_nothing_is_served(
    serving: LocalRuns, source: Source
) -> None:
    sagemaker = source.client("sagemaker")
    group = source.package.split("/")[1]
    shared = sagemaker.get_model_package_group_policy(ModelPackageGroupName=group)["ResourcePolicy"]
    sagemaker.delete_model_package_group_policy(ModelPackageGroupName=group)
    try:
        report = serving.run(served(source.package, f"{ENDPOINT}-unshared"))
    finally:
        sagemaker.put_model_package_group_policy(ModelPackageGroupName=group, ResourcePolicy=shared)
    assert report.status == "FAILED" and report.stages["create_model"] == "failed", report.cause
    assert "sagemaker:DescribeModelPackage" in report.cause and source.package in report.cause
    assert f"no resource-based policy of account {SOURCE} allows it" in report.cause
    assert "Create model" not in report.states


@pytest.mark.parametrize("grant", ["bucket policy", "key policy"])
def test_without_the_sources_grant_on_its_model_data_no_model_is_created(
    serving: LocalRuns, source: Source, grant: str
) -> None:
    """SageMaker reads the package's model data as the serving model's role when the model is created:
    across accounts, the source's bucket policy and its key's policy must allow it too."""
    s3, kms = source.client("s3"), source.client("kms")
    if grant == "bucket policy":
        s3.delete_bucket_policy(Bucket=SOURCE_BUCKET)
    else:
        kms.put_key_policy(KeyId=source.key, PolicyName="default", Policy=key_policy([]))
    try:
        report = serving.run(served(source.package, f"{ENDPOINT}-{grant.split()[0]}"))
    finally:
        s3.put_bucket_policy(Bucket=SOURCE_BUCKET, Policy=bucket_policy())
        kms.put_key_policy(KeyId=source.key, PolicyName="default", Policy=key_policy([SERVING]))
    assert report.status == "FAILED" and report.stages["create_model"] == "failed", report.cause
    assert f"Could not access model data at s3://{SOURCE_BUCKET}/{SOURCE_MODEL}" in report.cause
    assert SERVING_ROLE in report.cause and "Create endpoint" not in report.states


def test_an_organisations_guardrail_on_decrypting_keeps_the_sources_model_unread(
    serving: LocalRuns, source: Source
) -> None:
    """A service control policy denying kms:Decrypt applies to the read of the source's encrypted model
    as to any other call of the serving account (its bucket and key grants notwithstanding)."""
    report = serving.run(served(source.package, f"{ENDPOINT}-guarded"), deny=["kms:Decrypt"])
    assert report.status == "FAILED" and report.stages["create_model"] == "failed", report.cause
    assert f"Could not access model data at s3://{SOURCE_BUCKET}/{SOURCE_MODEL}" in report.cause
