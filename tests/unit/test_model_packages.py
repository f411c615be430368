"""Serving a registered model package: what the item plans, what validate refuses (naming the field),
and what the role may do with packages."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import STAGE
from mlops_sfn.tools import policy
from tests.conftest import DELETE, PACKAGE, edited, load_item, serving_package

SERVED = serving_package(load_item())


def refused(item: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidItem) as raised:
        plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    return {problem.path: problem.message for problem in raised.value.problems}


def test_the_model_is_created_from_the_package_as_registered_and_nothing_is_trained() -> None:
    planned = plan_execution(SERVED, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    block = planned["stages"]["create_model"]
    assert block["request"]["Containers"] == [{"ModelPackageName": PACKAGE}]  # no image, no model data of ours
    assert "PrimaryContainer" not in block["request"]
    assert (block["model_source"], block["package"]) == ("model_package", PACKAGE)
    assert f"from package {PACKAGE} (if Approved when the run reads it)" in STAGE["create_model"].preview(block)
    assert [stage for stage, running in planned["run"].items() if running] == [
        "create_model",
        "batch_transform",
        "deploy",
        "monitoring",
    ]


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        (
            {"stages.create_model.model_data_url": "s3://{bucket}/models/model.tar.gz"},
            "stages.create_model",
            "one source only",
        ),
        ({"stages.training.run": True}, "stages.create_model", "one source only"),
        ({"stages.register.run": True}, "stages.register", "registered already"),
        (
            {"stages.create_model.request": {"PrimaryContainer": {"Image": "x"}}},
            "stages.create_model.request.PrimaryContainer",
            "brings its own containers",
        ),
        (
            {"stages.create_model.model_package": PACKAGE.removesuffix("/1")},
            "stages.create_model.model_package",
            "model-package/<group>/<version>",
        ),
        (
            {"stages.create_model.model_package": PACKAGE.replace("123456789012", "444455556666")},
            "stages.create_model.model_package",
            "is in account 444455556666",
        ),
        (
            {"stages.create_model.model_package": PACKAGE.replace("mlops-dev-served", "team-b-served")},
            "stages.create_model.model_package",
            "outside this deployment",
        ),
        (
            {"stages.batch_transform.request.Environment": {"MODEL": "{model_data_url}"}},
            "stages.batch_transform.request.Environment.MODEL",
            "known before the run",
        ),
    ],
)
def test_what_a_served_package_cannot_be_combined_with_is_refused_naming_the_field(
    changes: dict[str, Any], path: str, words: str
) -> None:
    problems = refused(edited(SERVED, changes))
    assert path in problems and words in problems[path], problems


def test_a_switched_off_stage_may_name_the_model_data_it_would_read() -> None:
    # the demo's evaluation reads {model_data_url}; switched off, it plans nothing and refuses nothing
    assert "{model_data_url}" in str(load_item()["stages"]["evaluation"])
    plan_execution(SERVED, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    running = edited(SERVED, {"stages.evaluation.run": True, "stages.create_model.model_package": DELETE})
    assert "needs a model" in str(refused(running))


def test_the_role_reads_and_approves_only_the_deployments_packages_in_one_statement() -> None:
    statements = {statement["Sid"]: statement for statement in policy.build()["Statement"]}
    packages = statements["ModelPackages"]
    assert sorted(packages["Action"]) == ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"]
    assert packages["Resource"] == [
        "arn:${partition}:sagemaker:${region}:${account_id}:model-package/${sagemaker_name_prefix}*"
    ]


def test_a_deployment_with_consumer_accounts_plans_each_groups_resource_policy_for_them() -> None:
    sharing = replace(EXAMPLE_SETTINGS, model_consumer_accounts="444455556666, 777788889999")
    block = plan_execution(load_item(), SAMPLE_TRIGGER, sharing)["stages"]["register"]
    group = block["request"]["ModelPackageGroupName"]
    request = block["group_policy_request"]
    assert request["ModelPackageGroupName"] == group
    shared = json.loads(request["ResourcePolicy"])
    readers = {"AWS": ["arn:aws:iam::444455556666:root", "arn:aws:iam::777788889999:root"]}
    assert shared["Statement"] == [
        {
            "Sid": "ConsumersReadGroup",
            "Effect": "Allow",
            "Principal": readers,
            "Action": ["sagemaker:DescribeModelPackageGroup"],
            "Resource": f"arn:aws:sagemaker:us-east-1:123456789012:model-package-group/{group}",
        },
        {
            "Sid": "ConsumersReadPackages",
            "Effect": "Allow",
            "Principal": readers,
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            "Resource": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/*",
        },
    ]
    # without consumers nothing is shared; the role may put a policy on the deployment's groups only
    assert (
        "group_policy_request"
        not in plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["register"]
    )
    statements = {statement["Sid"]: statement for statement in policy.build()["Statement"]}
    assert "sagemaker:PutModelPackageGroupPolicy" in statements["CreateModelPackageGroup"]["Action"]
    assert statements["CreateModelPackageGroup"]["Resource"] == [
        "arn:${partition}:sagemaker:${region}:${account_id}:model-package-group/${sagemaker_name_prefix}*"
    ]


# A deployment as the router's environment and as the root's outputs describe it, without the
# settings the tests below add.
ENVIRON = {var: "x" for var in ("ARTIFACT_BUCKET", "SAGEMAKER_ROLE_ARN", "DEFAULT_IMAGE_URI")} | {
    "SAGEMAKER_NAME_PREFIX": "p-",
    "IMAGE_REPOSITORY_ARNS": "r",
    "AWS_REGION": "us-east-1",
}
OUTPUTS: dict[str, Any] = {
    "bucket_name": "b",
    "sagemaker_role_arn": "arn:aws:iam::123456789012:role/r",
    "image_uri": "i",
    "sagemaker_name_prefix": "p-",
    "image_repository_arns": ["r"],
    "region": "us-east-1",
}


def test_consumer_accounts_reach_planning_from_the_routers_environment_and_the_roots_outputs() -> None:
    from mlops_sfn.core.settings import Settings

    environ = ENVIRON | {"MODEL_CONSUMER_ACCOUNTS": "444455556666,777788889999"}
    assert Settings.from_environment(environ).consumer_accounts() == ["444455556666", "777788889999"]
    accounts = {"type": ["list", "string"], "value": ["444455556666"], "sensitive": False}
    assert Settings.from_outputs(OUTPUTS | {"model_consumer_accounts": accounts}).consumer_accounts() == [
        "444455556666"
    ]


SOURCE = "444455556666"  # the development account whose packages production serves
CONSUMING = replace(EXAMPLE_SETTINGS, model_source_account=SOURCE, model_source_prefix="team-dev-")


def shared(group: str, account: str = SOURCE) -> str:
    return f"arn:aws:sagemaker:{EXAMPLE_SETTINGS.region}:{account}:model-package/{group}/4"


def test_a_deployment_with_a_model_source_serves_that_sources_packages_of_its_groups() -> None:
    """model_source: the source's packages of groups with its prefix are planned, as registered."""
    item = edited(SERVED, {"stages.create_model.model_package": shared("team-dev-price")})
    block = plan_execution(item, SAMPLE_TRIGGER, CONSUMING)["stages"]["create_model"]
    assert block["request"]["Containers"] == [{"ModelPackageName": shared("team-dev-price")}]
    assert plan_execution(SERVED, SAMPLE_TRIGGER, CONSUMING)  # its own packages still


@pytest.mark.parametrize(
    ("package", "words"),
    [
        (shared("team-dev-price"), "set the root variable model_source"),  # no source: another account's
        (shared("payments-fraud"), "'payments-fraud' is outside the groups of model source 444455556666"),
        (shared("team-dev-price", "777788889999"), "or of its model source, account 444455556666"),
        (shared("team-dev-price").replace("us-east-1", "eu-west-1"), "is in account 444455556666, eu-west-1"),
    ],
)
def test_a_package_neither_the_deployments_nor_its_sources_groups_is_refused(package: str, words: str) -> None:
    settings = EXAMPLE_SETTINGS if "root variable" in words else CONSUMING
    with pytest.raises(InvalidItem) as raised:
        plan_execution(edited(SERVED, {"stages.create_model.model_package": package}), SAMPLE_TRIGGER, settings)
    (problem,) = raised.value.problems
    assert problem.path == "stages.create_model.model_package" and words in problem.message, problem.message


def test_the_model_source_reaches_planning_from_the_routers_environment_and_the_roots_outputs() -> None:
    from mlops_sfn.core.settings import Settings

    found = Settings.from_environment(ENVIRON | {"MODEL_SOURCE_ACCOUNT": SOURCE, "MODEL_SOURCE_PREFIX": "team-dev-"})
    assert (found.model_source_account, found.model_source_prefix) == (SOURCE, "team-dev-")
    source = {
        "model_source_account": {"type": "string", "value": SOURCE, "sensitive": False},
        "model_source_prefix": {"type": "string", "value": "team-dev-", "sensitive": False},
    }
    found = Settings.from_outputs(OUTPUTS | source)
    assert (found.model_source_account, found.model_source_prefix) == (SOURCE, "team-dev-")


def test_a_registered_package_names_the_evaluation_report_it_was_judged_by() -> None:
    planned = plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]
    report = planned["evaluation"]["report"]
    statistics = {"ContentType": "application/json", "S3Uri": f"s3://{report['Bucket']}/{report['Key']}"}
    assert planned["register"]["request"]["ModelMetrics"] == {"ModelQuality": {"Statistics": statistics}}
    unevaluated = edited(load_item(), {"stages.evaluation.run": False, "quality_gate": DELETE})
    planned = plan_execution(unevaluated, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]
    assert "ModelMetrics" not in planned["register"]["request"]
