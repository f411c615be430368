"""Step Functions (and S3) rules the local AWS must keep, refusals included, each on a small definition.

A local AWS more permissive than AWS proves nothing: each test fails if the local AWS stops
refusing what AWS refuses. The SageMaker endpoint rules are in test_local_runs.py; S3's copy limit is
here too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops_sfn.local import integrations, limits
from mlops_sfn.local.harness import LocalRuns
from mlops_sfn.local.limits import MAX_INPUT_BYTES
from mlops_sfn.local.sagemaker import JobResult
from tests.conftest import load_item

pytestmark = pytest.mark.functional

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-rules"
ROLE = "arn:aws:iam::123456789012:role/mlops-dev-states"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalRuns]:
    with LocalRuns() as runs:
        yield runs


# What these rules' small state machines call; every call is checked against their role, as on AWS.
RULES_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction", "sagemaker:*TransformJob", "events:PutTargets", "events:*Rule"],
            "Resource": "*",
        }
    ],
}


def state_machine(local: LocalRuns, definition: dict[str, Any]) -> str:
    """A new state machine of `definition` (run it inside `integrations.installed(local.local, arn)`)."""
    iam = boto3.client("iam", region_name=local.settings.region)
    name = ROLE.rsplit("/", 1)[-1]
    if name not in {role["RoleName"] for role in iam.list_roles()["Roles"]}:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    iam.put_role_policy(RoleName=name, PolicyName="rules", PolicyDocument=json.dumps(RULES_POLICY))
    return str(
        local.sfn.create_state_machine(
            name=f"rules-{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
    )


def ended(local: LocalRuns, execution: str) -> dict[str, Any]:
    """The execution's description once it is not RUNNING (or after 10 s)."""
    for _ in range(400):
        described: dict[str, Any] = local.sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.025)
    return described


def execute(
    local: LocalRuns, definition: dict[str, Any], answer: Any = None, function: Any = None
) -> tuple[dict[str, Any], list[str]]:
    """Run `definition` with a function that answers `answer` (or is `function`); the execution's
    description and the states entered."""
    local.local.functions = {FUNCTION: function or (lambda event, context: answer)}
    arn = state_machine(local, definition)
    with integrations.installed(local.local, arn):  # this state machine runs with the harness's wiring
        execution = local.sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        described = ended(local, execution)
    events = local.sfn.get_execution_history(executionArn=execution)["events"]
    return described, [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def invoke(then: dict[str, Any]) -> dict[str, Any]:
    """A Lambda task that catches everything it can."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": FUNCTION, "Payload": {}},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
        **then,
    }


CAUGHT = {"Caught": {"Type": "Pass", "End": True}}


def test_states_all_does_not_catch_a_task_result_above_256_kib(local: LocalRuns) -> None:
    """States.DataLimitExceeded is terminal: "States.ALL ... can't catch" it (Step Functions guide,
    Handling errors)."""
    definition = {"StartAt": "Big result", "States": {"Big result": invoke({"End": True}), **CAUGHT}}
    described, entered = execute(local, definition, answer="x" * (256 * 1024))
    assert (described["status"], described.get("error")) == ("FAILED", "States.DataLimitExceeded")
    assert "Caught" not in entered
    assert entered.count("Big result") == 1  # not retried either

    small, entered = execute(local, definition, answer="x" * 1024)
    assert small["status"] == "SUCCEEDED" and "Caught" not in entered


def test_states_all_does_not_catch_a_runtime_error(local: LocalRuns) -> None:
    """A path that selects nothing is a States.Runtime error, which no States.ALL catches."""
    definition = {
        "StartAt": "Bad path",
        "States": {"Bad path": invoke({"ResultSelector": {"v.$": "$.Payload.absent"}, "End": True}), **CAUGHT},
    }
    described, entered = execute(local, definition, answer={"present": 1})
    assert (described["status"], described.get("error")) == ("FAILED", "States.Runtime")
    assert "Caught" not in entered


def test_a_catch_that_names_an_error_still_catches_it(local: LocalRuns) -> None:
    """The rule above changes States.ALL only: a function's own errors are caught as before."""

    def fails(event: Any, context: Any) -> Any:
        raise RuntimeError("no")

    definition = {"StartAt": "Fails", "States": {"Fails": invoke({"End": True}), **CAUGHT}}
    described, entered = execute(local, definition, function=fails)
    assert described["status"] == "SUCCEEDED" and "Caught" in entered


def test_a_failing_parallel_branch_stops_its_sibling(local: LocalRuns) -> None:
    """ "If any branch fails ... Step Functions stops all other branches" (Parallel state, Step
    Functions guide): the framework's serving branches therefore never fail."""
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Fail now", "States": {"Fail now": {"Type": "Fail", "Error": "Broken"}}},
                    {
                        "StartAt": "Wait a little",
                        "States": {
                            "Wait a little": {"Type": "Wait", "Seconds": 1, "Next": "Sibling went on"},
                            "Sibling went on": {"Type": "Pass", "End": True},
                        },
                    },
                ],
                "End": True,
            }
        },
    }
    described, entered = execute(local, definition)
    assert (described["status"], described.get("error")) == ("FAILED", "Broken")
    assert "Sibling went on" not in entered


def test_an_execution_input_above_262144_bytes_is_refused(local: LocalRuns) -> None:
    arn = local.state_machine_arn
    padding = "é" * ((MAX_INPUT_BYTES - 20) // 2 + 10)  # two bytes each in UTF-8: over the limit in bytes
    with pytest.raises(ClientError) as refused:
        local.sfn.start_execution(stateMachineArn=arn, input=json.dumps({"p": padding}, ensure_ascii=False))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "262144" in refused.value.response["Error"]["Message"]


def test_copy_object_refuses_a_source_above_5_gb(local: LocalRuns, monkeypatch: pytest.MonkeyPatch) -> None:
    """ "to copy an object greater than 5 GB, you must use the multipart upload Upload Part - Copy
    (UploadPartCopy) API" (S3 API reference, CopyObject). The limit is lowered to keep the test small."""
    monkeypatch.setattr(limits, "MAX_COPY_SOURCE_BYTES", 1024 * 1024)
    bucket = local.settings.bucket
    local.s3.put_object(Bucket=bucket, Key="rules/at-limit", Body=b"m" * (1024 * 1024))
    local.s3.put_object(Bucket=bucket, Key="rules/above-limit", Body=b"m" * (1024 * 1024 + 1))
    local.s3.copy_object(Bucket=bucket, Key="rules/copied", CopySource={"Bucket": bucket, "Key": "rules/at-limit"})
    with pytest.raises(ClientError) as refused:
        local.s3.copy_object(
            Bucket=bucket, Key="rules/copied", CopySource={"Bucket": bucket, "Key": "rules/above-limit"}
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidRequest"
    assert error["Message"] == (
        "The specified copy source is larger than the maximum allowable size for a copy source: 1048576"
    )


def test_send_task_failure_refuses_an_error_or_cause_over_its_length(local: LocalRuns) -> None:
    """SendTaskFailure: error at most 256 characters, cause at most 32768 (Step Functions API
    reference); within them the call reaches the token (none here: InvalidToken)."""
    for error, cause, field in (("e" * 257, "c", "error"), ("e", "c" * 32769, "cause")):
        with pytest.raises(ClientError) as refused:
            local.sfn.send_task_failure(taskToken="no-such-token", error=error, cause=cause)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert f"Value at '{field}' failed to satisfy constraint" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        local.sfn.send_task_failure(taskToken="no-such-token", error="e" * 256, cause="c" * 32768)
    assert unknown.value.response["Error"]["Code"] == "InvalidToken"


def test_send_task_success_refuses_an_output_above_262144_bytes(local: LocalRuns) -> None:
    """SendTaskSuccess: output at most 262144 (Step Functions API reference); at the limit the call
    reaches the token (none here: InvalidToken)."""
    with pytest.raises(ClientError) as refused:
        local.sfn.send_task_success(taskToken="no-such-token", output=json.dumps("o" * (MAX_INPUT_BYTES - 1)))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Value at 'output' failed to satisfy constraint" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        local.sfn.send_task_success(taskToken="no-such-token", output=json.dumps("o" * (MAX_INPUT_BYTES - 2)))
    assert unknown.value.response["Error"]["Code"] == "InvalidToken"


def _reader(principal: Any, condition: dict[str, Any] | None = None) -> str:
    statement = {"Sid": "Read", "Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"}
    statement |= {"Resource": "arn:aws:s3:::rules-public/runs/*"} | ({"Condition": condition} if condition else {})
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_block_public_policy_refuses_a_public_bucket_policy(local: LocalRuns) -> None:
    """BlockPublicPolicy "causes Amazon S3 to reject calls to PUT Bucket policy if the specified bucket
    policy allows public access"; a policy is public unless it grants to fixed principals or is limited
    to fixed values of aws:SourceArn, aws:SourceAccount, ... (S3 API reference,
    PublicAccessBlockConfiguration). An organisation path is not such a limit."""
    s3 = local.s3
    s3.create_bucket(Bucket="rules-public")
    anyone = _reader("*")
    s3.put_bucket_policy(Bucket="rules-public", Policy=anyone)  # no Block Public Access: S3 takes it
    s3.put_public_access_block(
        Bucket="rules-public",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    by_org_path = _reader("*", {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": ["o-a1b2c3d4e5/r-ab12/*"]}})
    for policy in (anyone, _reader({"AWS": "*"}), by_org_path, _reader("*", {"StringLike": {"aws:SourceArn": "*"}})):
        with pytest.raises(ClientError) as refused:
            s3.put_bucket_policy(Bucket="rules-public", Policy=policy)
        error = refused.value.response["Error"]
        assert error["Code"] == "AccessDenied" and "allows public access (statements Read)" in error["Message"]
    # what the framework writes: accounts by name, or anyone limited to a fixed account or source
    for policy in (
        _reader({"AWS": ["arn:aws:iam::210987654321:root"]}),
        _reader("*", {"StringEquals": {"aws:SourceAccount": "210987654321"}}),
        _reader({"Service": "logging.s3.amazonaws.com"}),
    ):
        s3.put_bucket_policy(Bucket="rules-public", Policy=policy)
        assert json.loads(s3.get_bucket_policy(Bucket="rules-public")["Policy"]) == json.loads(policy)


def test_an_accounts_block_public_policy_refuses_a_public_bucket_policy(local: LocalRuns) -> None:
    """The account's setting applies to every bucket of the account, whatever the bucket's own."""
    s3control = boto3.client("s3control", region_name=local.settings.region)
    local.s3.create_bucket(Bucket="rules-public-account")
    s3control.put_public_access_block(
        AccountId="123456789012", PublicAccessBlockConfiguration={"BlockPublicPolicy": True}
    )
    try:
        with pytest.raises(ClientError) as refused:
            local.s3.put_bucket_policy(Bucket="rules-public-account", Policy=_reader("*"))
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        s3control.delete_public_access_block(AccountId="123456789012")
    local.s3.put_bucket_policy(Bucket="rules-public-account", Policy=_reader("*"))


def test_a_failing_parallel_branch_stops_the_job_its_sibling_is_running(local: LocalRuns) -> None:
    """When a branch fails, Step Functions stops the others, with a best-effort Stop* on a `.sync`
    job running in one (Step Functions guide, Parallel state and "Run a Job (.sync)"): the job ends
    Stopped, not Completed."""

    class Slow:  # the sibling's job is still running when the other branch fails
        def run(
            self, kind: str, request: dict[str, Any], s3: Any = None, logs: Any = None, account: str = ""
        ) -> JobResult:
            time.sleep(3.0)
            return JobResult()

    def fails_soon(event: Any, context: Any) -> Any:
        time.sleep(1.0)  # the job has started by then
        raise RuntimeError("the other branch failed")

    job, bucket = f"rules-transform-{time.monotonic_ns()}", local.settings.bucket
    transform = {
        "TransformJobName": job,
        "ModelName": "rules-model",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/in/"}}},
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/out/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    branches = [
        {
            "StartAt": "Fails soon",
            "States": {
                "Fails soon": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": FUNCTION, "Payload": {}},
                    "End": True,
                }
            },
        },
        {
            "StartAt": "Transform",
            "States": {
                "Transform": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sagemaker:createTransformJob.sync",
                    "Parameters": transform,
                    "End": True,
                }
            },
        },
    ]
    definition = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "Branches": branches, "End": True}}}
    sagemaker = local.local.sagemaker
    runner, sagemaker.runner = sagemaker.runner, Slow()
    try:
        described, _ = execute(local, definition, function=fails_soon)
    finally:
        sagemaker.runner = runner
    assert described["status"] == "FAILED"
    for _ in range(100):  # on AWS too the job is stopped after the execution has ended
        status = local.sagemaker.describe_transform_job(TransformJobName=job)["TransformJobStatus"]
        if status != "InProgress":
            break
        time.sleep(0.05)
    assert status == "Stopped"


def test_a_new_job_is_in_progress_until_it_ends(local: LocalRuns) -> None:
    """SageMaker reports a job InProgress from its creation until it ends (SageMaker API reference,
    DescribeTransformJob: TransformJobStatus); moto recorded every new job as Completed at once."""
    job, bucket = f"rules-progress-{time.monotonic_ns()}", local.settings.bucket  # the job writes its output there
    request = {
        "TransformJobName": job,
        "ModelName": "rules-model",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/in/"}}},
        "TransformOutput": {"S3OutputPath": f"s3://{bucket}/out/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    sagemaker = local.local.sagemaker
    sagemaker.call("createTransformJob", request, "us-east-1", "123456789012")
    assert local.sagemaker.describe_transform_job(TransformJobName=job)["TransformJobStatus"] == "InProgress"
    sagemaker.run_job("createTransformJob", request, "us-east-1", "123456789012")
    assert local.sagemaker.describe_transform_job(TransformJobName=job)["TransformJobStatus"] == "Completed"


# --- RedriveExecution (moto lacks it: mlops_sfn.local.redrive) ---------------------------------------


def redriven(local: LocalRuns, definition: dict[str, Any], function: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Run `definition` until it ends, redrive it, wait again: (first description, last one, history)."""
    local.local.functions = {FUNCTION: function}
    arn = state_machine(local, definition)
    with integrations.installed(local.local, arn):
        execution = local.sfn.start_execution(stateMachineArn=arn, input='{"n": 1}')["executionArn"]
        first = ended(local, execution)
        local.sfn.redrive_execution(executionArn=execution)
        last = ended(local, execution)
    return first, last, local.sfn.get_execution_history(executionArn=execution)["events"]


class FailsOnce:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any, context: Any) -> Any:
        self.events.append(event)
        if len(self.events) == 1:
            raise RuntimeError("the first call fails")
        return {"ok": True}


def uncaught_task() -> dict[str, Any]:
    return {
        "StartAt": "Before",
        "States": {
            "Before": {"Type": "Pass", "Result": "prepared", "ResultPath": "$.before", "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": FUNCTION, "Payload": {"before.$": "$.before"}},
                "End": True,
            },
        },
    }


def test_a_redrive_reruns_the_failed_task_with_its_input_and_not_the_steps_before_it(local: LocalRuns) -> None:
    """ "it continues the failed execution from the unsuccessful step and uses the same input ...
    doesn't rerun these [successful] steps" (Step Functions API reference, RedriveExecution)."""
    function = FailsOnce()
    first, last, events = redriven(local, uncaught_task(), function)

    assert first["status"] == "FAILED" and last["status"] == "SUCCEEDED"
    assert last["redriveCount"] == 1 and "redriveDate" in last
    assert function.events == [{"before": "prepared"}, {"before": "prepared"}]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == ["Before", "Call", "Call"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))  # one history, numbered on
    assert [e["type"] for e in events].count("ExecutionRedriven") == 1


def test_a_redrive_of_a_caught_failure_starts_again_at_the_fail_state(local: LocalRuns) -> None:
    """A caught error ends in the Fail state it leads to: that is the unsuccessful step, so the redrive
    fails again there (why `mlops-sfn redrive` refuses such runs and points to `rerun --from`)."""
    definition = uncaught_task()
    definition["States"]["Call"] |= {"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}]}
    definition["States"]["Failed"] = {"Type": "Fail", "Error": "Recorded", "Cause": "caught"}
    function = FailsOnce()
    first, last, events = redriven(local, definition, function)

    assert (first["status"], last["status"], last["error"]) == ("FAILED", "FAILED", "Recorded")
    assert len(function.events) == 1  # the task did not run again
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == ["Before", "Call", "Failed", "Failed"]


def test_a_running_or_succeeded_execution_is_not_redrivable(local: LocalRuns) -> None:
    """ExecutionNotRedrivable, with DescribeExecution's redriveStatusReason texts (API reference)."""
    described, _ = execute(local, {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    with pytest.raises(ClientError) as refused:
        local.sfn.redrive_execution(executionArn=described["executionArn"])
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert refused.value.response["Error"]["Message"] == "Execution is SUCCEEDED and cannot be redriven."

    waiting = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}
    arn = state_machine(local, waiting)
    with integrations.installed(local.local, arn):
        execution = local.sfn.start_execution(stateMachineArn=arn)["executionArn"]
        with pytest.raises(ClientError) as refused:
            local.sfn.redrive_execution(executionArn=execution)
        local.sfn.stop_execution(executionArn=execution)
    assert refused.value.response["Error"]["Message"] == "Execution is RUNNING and cannot be redriven."


def test_stop_execution_ends_a_run_waiting_for_a_task_token(local: LocalRuns) -> None:
    """StopExecution stops an execution whatever it is doing (Step Functions API reference,
    StopExecution): one waiting for a task token (an approval) ends ABORTED at once; moto kept it
    RUNNING until the token's timeout."""
    waiting = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": FUNCTION, "Payload": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 300,
                "End": True,
            }
        },
    }
    local.local.functions = {FUNCTION: lambda event, context: None}
    arn = state_machine(local, waiting)
    with integrations.installed(local.local, arn):
        execution = local.sfn.start_execution(stateMachineArn=arn)["executionArn"]
        time.sleep(0.5)
        local.sfn.stop_execution(executionArn=execution)
        ended(local, execution)
    assert local.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_a_package_in_a_group_takes_no_tags_of_its_own_as_sagemaker_refuses_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CreateModelPackage (API reference): "If you supply ModelPackageGroupName, your model package
    belongs to the model group you specify and uses the tags associated with the model group. In this
    case, you cannot supply a tag argument." moto records them; the local AWS refuses them."""
    from moto import mock_aws

    from mlops_sfn.local import sagemaker as local_sagemaker
    from mlops_sfn.local.motoport import SageMakerResponse

    for name, method in local_sagemaker.REGISTRY_API.items():  # to leave no group behind
        monkeypatch.setattr(SageMakerResponse, name, method, raising=False)
    uninstall = local_sagemaker.install_tags()
    try:
        with mock_aws():
            sagemaker = boto3.client("sagemaker", region_name="us-east-1")
            sagemaker.create_model_package_group(
                ModelPackageGroupName="tagged-group", Tags=[{"Key": "a", "Value": "b"}]
            )
            container = {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"}
            spec = {"Containers": [container], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": []}
            with pytest.raises(ClientError) as refused:
                sagemaker.create_model_package(
                    ModelPackageGroupName="tagged-group", InferenceSpecification=spec, Tags=[{"Key": "a", "Value": "c"}]
                )
            assert refused.value.response["Error"]["Code"] == "ValidationException"
            assert "cannot be supplied with ModelPackageGroupName" in refused.value.response["Error"]["Message"]
            arn = sagemaker.create_model_package(ModelPackageGroupName="tagged-group", InferenceSpecification=spec)[
                "ModelPackageArn"
            ]
            sagemaker.delete_model_package(ModelPackageName=arn)
            sagemaker.delete_model_package_group(ModelPackageGroupName="tagged-group")
    finally:
        uninstall()


def test_a_model_package_group_is_deleted_only_once_its_versions_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 answers the registry's deletes with HTTP 500; the local AWS serves them, and refuses a
    group that still holds packages with the one error AWS's API reference lists for it, ConflictException."""
    from moto import mock_aws

    from mlops_sfn.local import sagemaker as local_sagemaker
    from mlops_sfn.local.motoport import SageMakerResponse

    for name, method in local_sagemaker.REGISTRY_API.items():
        monkeypatch.setattr(SageMakerResponse, name, method, raising=False)
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model_package_group(ModelPackageGroupName="registry-rule")
        container = {"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"}
        spec = {"Containers": [container], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": []}
        arn = sagemaker.create_model_package(ModelPackageGroupName="registry-rule", InferenceSpecification=spec)[
            "ModelPackageArn"
        ]
        with pytest.raises(ClientError) as refused:
            sagemaker.delete_model_package_group(ModelPackageGroupName="registry-rule")
        assert refused.value.response["Error"]["Code"] == "ConflictException"
        sagemaker.delete_model_package(ModelPackageName=arn)
        sagemaker.delete_model_package_group(ModelPackageGroupName="registry-rule")
        assert sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
        with pytest.raises(ClientError):
            sagemaker.describe_model_package(ModelPackageName=arn)


def created_arns(sagemaker: Any) -> dict[str, str]:
    """One ARN of each kind a run made, by kind."""
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    packages = [
        package["ModelPackageArn"]
        for group in groups
        for package in sagemaker.list_model_packages(ModelPackageGroupName=group["ModelPackageGroupName"])[
            "ModelPackageSummaryList"
        ]
    ]
    definitions = sagemaker.list_data_quality_job_definitions()["JobDefinitionSummaries"]
    found = [
        *(job["TrainingJobArn"] for job in sagemaker.list_training_jobs()["TrainingJobSummaries"]),
        *(job["ProcessingJobArn"] for job in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]),
        *(job["TransformJobArn"] for job in sagemaker.list_transform_jobs()["TransformJobSummaries"]),
        *(model["ModelArn"] for model in sagemaker.list_models()["Models"]),
        *(config["EndpointConfigArn"] for config in sagemaker.list_endpoint_configs()["EndpointConfigs"]),
        *(endpoint["EndpointArn"] for endpoint in sagemaker.list_endpoints()["Endpoints"]),
        *(group["ModelPackageGroupArn"] for group in groups),
        *packages,
        *(s["MonitoringScheduleArn"] for s in sagemaker.list_monitoring_schedules()["MonitoringScheduleSummaries"]),
        *(d["MonitoringJobDefinitionArn"] for d in definitions),
    ]
    return {arn.split(":", 5)[5].split("/")[0]: arn for arn in found}


# What a run creates, by kind, and the stages that create it (tags.py: each carries its stage's tag).
STAGES_OF_KIND = {
    "training-job": {"training"},
    "processing-job": {"preprocessing", "evaluation", "monitoring"},
    "transform-job": {"batch_transform"},
    "model": {"create_model"},
    "endpoint-config": {"deploy"},
    "endpoint": {"deploy"},
    "model-package-group": {"register"},
    "monitoring-schedule": {"monitoring"},
    "data-quality-job-definition": {"monitoring"},
}


def test_every_kind_a_run_creates_carries_its_tags_and_answers_them_as_sagemaker_does() -> None:
    """Every resource a run creates carries the run's tags and the item's (issue: tags on everything a
    run creates); a package in a group carries none of its own (CreateModelPackage: it "uses the tags
    associated with the model group"). And moto 5.2 answered ListTags with HTTP 500 for a transform
    job created without tags, a model package and a monitoring schedule, and its AddTags repeated a
    key. SageMaker's API reference: ListTags "Returns the tags for the specified SageMaker resource";
    AddTags "Adds or overwrites"; DeleteTags removes the keys named; a resource that does not exist is
    refused."""
    with LocalRuns() as harness:
        report = harness.run(load_item() | {"tags": {"cost-center": "ml-1"}}, answer="approve")
        assert report.status == "SUCCEEDED", report.cause
        sagemaker = harness.sagemaker
        arns = created_arns(sagemaker)
        assert set(arns) == {*STAGES_OF_KIND, "model-package"}
        for kind, arn in arns.items():
            tags = {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
            if kind == "model-package":
                assert tags == {}, kind
                continue
            assert tags["mlops-sfn:pipeline"] == "demo-dev-domain-cal-house-price", kind
            assert tags["mlops-sfn:execution"] == report.execution_name, kind
            assert tags["mlops-sfn:stage"] in STAGES_OF_KIND[kind], kind
            assert tags["cost-center"] == "ml-1", kind
        cloudwatch = boto3.client("cloudwatch", region_name=harness.settings.region)
        alarms = cloudwatch.describe_alarms()["MetricAlarms"]
        assert alarms and all(
            {"Key": "mlops-sfn:execution", "Value": report.execution_name}
            in cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
            for alarm in alarms
        )
        for kind, arn in arns.items():
            before = sagemaker.list_tags(ResourceArn=arn)["Tags"]
            sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "a"}])
            both = [{"Key": "owner", "Value": "b"}, {"Key": "team", "Value": "x"}]
            sagemaker.add_tags(ResourceArn=arn, Tags=both)
            assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [*before, *both], kind
            sagemaker.delete_tags(ResourceArn=arn, TagKeys=["team"])
            assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [*before, both[0]], kind
        # a schedule keeps the tags it was created with
        schedule = sagemaker.describe_monitoring_schedule(
            MonitoringScheduleName=arns["monitoring-schedule"].rsplit("/", 1)[1]
        )
        sagemaker.create_monitoring_schedule(
            MonitoringScheduleName="tagged-schedule",
            MonitoringScheduleConfig=schedule["MonitoringScheduleConfig"],
            Tags=[{"Key": "owner", "Value": "ml"}],
        )
        tagged = arns["monitoring-schedule"].rsplit("/", 1)[0] + "/tagged-schedule"
        assert sagemaker.list_tags(ResourceArn=tagged)["Tags"] == [{"Key": "owner", "Value": "ml"}]
        for gone in (arns["transform-job"] + "-gone", arns["model-package"].rsplit("/", 1)[0] + "/99"):
            with pytest.raises(ClientError) as refused:
                sagemaker.list_tags(ResourceArn=gone)
            assert refused.value.response["Error"]["Code"] == "ValidationException"
