"""IAM in local runs: every call a Task makes is checked against the state machine role's policy (the
one Terraform deploys, derived from the definition) and the run's guardrails, and refused as AWS
refuses it. Each integration type has a denied call here; the scenarios of test_local_runs all run
under the same evaluation, so a policy that lacks a call fails them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn import cli
from mlops_sfn.local.harness import LocalRuns, RunReport
from tests.conftest import ROOT, load_item
from tests.functional.test_local_runs import quiet, with_stages

pytestmark = pytest.mark.functional

DEMO = load_item()


@pytest.fixture(scope="module")
def local() -> Iterator[LocalRuns]:
    with LocalRuns() as runs:
        yield runs


def running(stages: set[str]) -> dict[str, Any]:
    """The demo item running only `stages` (the quality gate only with evaluation)."""
    item = with_stages(DEMO, stages)
    if "evaluation" not in stages:
        del item["quality_gate"]
    return item


def refused(report: RunReport, action: str) -> str:
    """The cause of the run's first task failure that is IAM's refusal of `action`."""
    causes = [e["taskFailedEventDetails"]["cause"] for e in report.history if e["type"] == "TaskFailed"]
    denied = [cause for cause in causes if f"not authorized to perform: {action} " in cause]
    assert denied, causes
    return denied[0]


@pytest.mark.parametrize(
    ("action", "stages", "failed_stage", "error"),
    [
        # the optimised .sync integration
        (
            "sagemaker:CreateTrainingJob",
            {"preprocessing", "training"},
            "training",
            "SageMaker.AmazonSageMakerException",
        ),
        # an aws-sdk: task
        (
            "sagemaker:CreateModelPackage",
            {"preprocessing", "training", "register"},
            "register",
            "SageMaker.SageMakerException",
        ),
        # the Lambda invoke (the quality gate)
        (
            "lambda:InvokeFunction",
            {"preprocessing", "training", "evaluation"},
            "quality_gate",
            None,  # the name Step Functions gives a Lambda AccessDenied is not documented: only the cause is checked
        ),
        # the SNS publish waiting for a task token
        ("sns:Publish", {"preprocessing", "training", "register", "approval"}, "approval", None),
    ],
)
def test_a_denied_call_fails_its_stage_naming_the_action(
    local: LocalRuns, action: str, stages: set[str], failed_stage: str, error: str | None
) -> None:
    report = local.run(running(stages), answer="approve", deny=[action])
    assert report.status == "FAILED" and report.error is not None and report.error.startswith(f"{failed_stage}.")
    if error:
        assert report.error == f"{failed_stage}.{error}"
    cause = refused(report, action)
    assert cause.startswith(f"User: {local.role_arn} is not authorized to perform: {action} on resource: ")
    assert "explicitly denied by the guardrail policy's statement Denied" in cause


def test_the_demo_run_is_allowed_every_call_it_makes(local: LocalRuns) -> None:
    report = local.run(DEMO, answer="approve")
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert not [e for e in report.history if "not authorized" in str(e.get("taskFailedEventDetails", {}))]


def test_tags_on_registration_need_add_tags_and_the_role_has_it(local: LocalRuns) -> None:
    # CreateModelPackage with Tags needs sagemaker:AddTags (a dependent action); the policy grants it.
    item = running({"preprocessing", "training", "register"})
    item["stages"]["register"].setdefault("request", {})["Tags"] = [{"Key": "cost-center", "Value": "ml-42"}]
    assert local.run(item, answer="approve").status == "SUCCEEDED"
    denied = local.run(item, answer="approve", deny=["sagemaker:AddTags"])
    assert denied.status == "FAILED" and denied.error is not None and denied.error.startswith("register.")
    refused(denied, "sagemaker:AddTags")


def test_a_guardrail_must_allow_and_its_deny_wins_over_the_roles_allow(local: LocalRuns) -> None:
    item = quiet(with_stages(DEMO, {"preprocessing", "training"}))
    everything: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    assert local.run(item, scp=everything).status == "SUCCEEDED"
    no_training = copy.deepcopy(everything)
    no_training["Statement"].append({"Effect": "Deny", "Action": "sagemaker:CreateTraining*", "Resource": "*"})
    report = local.run(item, scp=no_training)
    assert report.status == "FAILED" and "explicitly denied by the guardrail" in refused(
        report, "sagemaker:CreateTrainingJob"
    )
    only_s3: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    report = local.run(item, scp=only_s3)
    assert "no guardrail (service control policy) statement allows it" in refused(
        report, "sagemaker:CreateProcessingJob"
    )


def test_the_cli_takes_guardrails_and_refuses_what_is_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = str(ROOT / "dynamodb_items" / f"{DEMO['consumption_pipeline_name']}.json")
    assert cli.main(["local", "run", item, "--approve", "--deny", "sagemaker:CreateEndpointConfig"]) == 1
    out = capsys.readouterr().out
    assert "error: deploy." in out and "not authorized to perform: sagemaker:CreateEndpointConfig" in out
    (tmp_path / "broken.json").write_text('{"Statement": ')
    (tmp_path / "not-a-policy.json").write_text('{"Version": "2012-10-17"}')
    for arguments, words in [
        (["--deny", "CreateEndpoint"], "--deny CreateEndpoint: name an IAM action as service:Action"),
        (["--scp", str(tmp_path / "missing.json")], "cannot read it (No such file or directory)"),
        (["--scp", str(tmp_path)], "cannot read it (Is a directory)"),
        (["--scp", str(tmp_path / "broken.json")], "not JSON"),
        (["--scp", str(tmp_path / "not-a-policy.json")], 'not a policy document: it needs a "Statement" list'),
    ]:
        assert cli.main(["local", "run", item, *arguments]) == 2
        assert words in capsys.readouterr().err
