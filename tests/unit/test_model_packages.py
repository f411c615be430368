"""Serving a registered model package: what the item plans, what validate refuses (naming the field),
and what the role may do with packages."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
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
