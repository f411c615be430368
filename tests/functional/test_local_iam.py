"""IAM in local runs: every call a Task makes is checked against the state machine role's policy (the
one Terraform deploys, derived from the definition) and the run's guardrails, and refused as AWS
refuses it. Each integration type has a denied call here; the scenarios of test_local_runs all run
under the same evaluation, so a policy that lacks a call fails them."""

from __future__ import annotations

import copy
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_sfn import cli
from mlops_sfn.local import deployment, task_permissions
from mlops_sfn.local.harness import LocalRuns, RunReport
from mlops_sfn.local.server import GUARDRAILS
from mlops_sfn.local.stack import MotoServer
from tests.conftest import ROOT, load_item
from tests.functional.test_local_runs import EXISTING_MODEL, alone, quiet, seed_inputs, with_stages

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


@pytest.mark.parametrize(
    ("action", "stage", "verb"),
    [("s3:GetObject", "preprocessing", "download"), ("s3:PutObject", "preprocessing", "upload")],
)
def test_a_job_whose_role_may_not_move_its_data_fails_as_sagemaker_reports_it(
    local: LocalRuns, action: str, stage: str, verb: str
) -> None:
    """SageMaker reads a job's inputs and writes its outputs as the job's role (the SageMaker role, which
    `local run` does not deploy: the guardrails decide alone), so a guardrail denying the read or the
    write fails the job itself, with SageMaker's ClientError, after the state machine's calls were allowed."""
    item = running({"preprocessing", "training"})
    seed_inputs(local, item)
    report = local.run(item, deny=[action])
    assert report.status == "FAILED" and report.error == f"{stage}.States.TaskFailed", report.error
    (failure,) = [e["taskFailedEventDetails"]["cause"] for e in report.history if e["type"] == "TaskFailed"]
    reason = json.loads(failure)["FailureReason"]
    assert reason.startswith(f"ClientError: Data {verb} failed:Unable to {verb} object s3://{local.settings.bucket}/")
    assert f"is not authorized to perform: {action} on resource: arn:aws:s3:::{local.settings.bucket}/" in reason
    assert "explicitly denied by the guardrail policy's statement Denied" in reason


def test_create_model_refuses_model_data_it_cannot_find_or_its_role_cannot_read(local: LocalRuns) -> None:
    """SageMaker reads each container's ModelDataUrl as the model's role when CreateModel is called, and
    refuses the model with a ValidationException: "Could not find model data at ..." for a missing object,
    "Could not access model data at ..." when the role may not read it (the messages users of the SageMaker
    SDK and of Step Functions report from CreateModel); Step Functions names it SageMaker.AmazonSageMakerException."""
    item = alone("create_model")
    bucket = local.settings.bucket
    item["stages"]["create_model"]["model_data_url"] = "s3://{bucket}/models/missing/model.tar.gz"
    report = local.run(item)
    assert report.status == "FAILED" and report.error == "create_model.SageMaker.AmazonSageMakerException"
    assert f"Could not find model data at s3://{bucket}/models/missing/model.tar.gz." in (report.cause or "")
    item["stages"]["create_model"]["model_data_url"] = "s3://{bucket}/models/unreadable/model.tar.gz"
    local.s3.put_object(Bucket=bucket, Key="models/unreadable/model.tar.gz", Body=b"model")
    report = local.run(item, deny=["s3:GetObject"])
    assert report.status == "FAILED" and report.error == "create_model.SageMaker.AmazonSageMakerException"
    cause = report.cause or ""
    assert f"Could not access model data at s3://{bucket}/models/unreadable/model.tar.gz." in cause
    assert f'Please ensure that the role "{local.settings.sagemaker_role_arn}" exists' in cause


def test_a_functions_own_call_in_a_local_run_is_decided_by_the_guardrails(local: LocalRuns) -> None:
    """`local run` runs the functions in this process and deploys no function roles: their own calls are
    decided by the run's guardrails, as the smoke test's InvokeEndpoint here, made as the role Terraform
    would give the function; the deploy stage fails with the function's error."""
    if not local.sagemaker.list_models(NameContains=EXISTING_MODEL)["Models"]:
        local.sagemaker.create_model(
            ModelName=EXISTING_MODEL,
            ExecutionRoleArn=local.settings.sagemaker_role_arn,
            PrimaryContainer={"Image": local.settings.default_image_uri},
        )
    report = local.run(alone("deploy"), deny=["sagemaker:InvokeEndpoint"])
    assert report.status == "FAILED" and report.error is not None and report.error.startswith("deploy."), report.error
    cause = report.cause or ""
    assert "is not authorized to perform: sagemaker:InvokeEndpoint on resource: arn:aws:sagemaker:" in cause, cause
    assert "-smoke-test is not authorized" in cause and "explicitly denied by the guardrail policy" in cause


def test_a_deployed_sagemaker_role_decides_what_its_jobs_may_read_and_write() -> None:
    """Where the SageMaker role exists (Terraform made it, on the local stack), its own policies decide."""
    item = running({"preprocessing", "training"})
    with LocalRuns() as local:
        seed_inputs(local, item)
        role, iam = local.settings.sagemaker_role_arn.rsplit("/", 1)[1], boto3.client("iam")
        trust = {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        iam.create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
        )
        read_only = {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{local.settings.bucket}", f"arn:aws:s3:::{local.settings.bucket}/*"],
        }
        document = json.dumps({"Version": "2012-10-17", "Statement": [read_only]})
        iam.put_role_policy(RoleName=role, PolicyName="jobs", PolicyDocument=document)
        try:
            report = local.run(item)
        finally:  # moto's IAM is one per process: the other tests' runs have no SageMaker role
            iam.delete_role_policy(RoleName=role, PolicyName="jobs")
            iam.delete_role(RoleName=role)
    assert report.status == "FAILED" and report.error == "preprocessing.States.TaskFailed"
    reason = json.loads(report.cause or "{}")["FailureReason"]
    assert reason.startswith("ClientError: Data upload failed:") and "no identity-based" in reason, reason
    assert f"User: {local.settings.sagemaker_role_arn} is not authorized to perform: s3:PutObject" in reason


def test_the_demo_run_is_allowed_every_call_it_makes(local: LocalRuns) -> None:
    report = local.run(DEMO, answer="approve")
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert not [e for e in report.history if "not authorized" in str(e.get("taskFailedEventDetails", {}))]


def test_every_create_carries_the_runs_tags_which_need_add_tags_and_the_role_has_it(local: LocalRuns) -> None:
    # A Create call with Tags needs sagemaker:AddTags (a dependent action); the policy grants it.
    item = running({"preprocessing", "training", "register"}) | {"tags": {"cost-center": "ml-42"}}
    assert local.run(item, answer="approve").status == "SUCCEEDED"
    denied = local.run(item, answer="approve", deny=["sagemaker:AddTags"])
    assert denied.status == "FAILED" and denied.error is not None and denied.error.startswith("preprocessing.")
    refused(denied, "sagemaker:AddTags")


def test_an_alarm_created_with_tags_needs_cloudwatch_tag_resource(local: LocalRuns) -> None:
    # PutMetricAlarm with Tags: "you must have the cloudwatch:TagResource permission" (CloudWatch API
    # reference); the deploy's alarms carry the run's tags, so without it the deploy is refused.
    item = quiet(with_stages(load_item(), {"training", "create_model", "deploy"}))
    assert local.run(item).status == "SUCCEEDED"
    denied = local.run(item, deny=["cloudwatch:TagResource"])
    assert denied.status == "FAILED" and denied.error is not None and denied.error.startswith("deploy.")
    refused(denied, "cloudwatch:TagResource")


def test_an_organisations_tag_policy_is_decided_on_the_tags_each_create_carries(local: LocalRuns) -> None:
    """A service control policy that refuses training jobs without a cost-center tag, as AWS's
    examples write it (aws:RequestTag/<key> in a Null condition: "Controlling access during AWS
    requests", IAM User Guide): the item's tags decide, since every Create carries them."""
    item = quiet(with_stages(DEMO, {"preprocessing", "training"}))
    scp: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": "*",
                "Condition": {"Null": {"aws:RequestTag/cost-center": "true"}},
            },
        ],
    }
    report = local.run(item, scp=scp)
    assert report.status == "FAILED" and "explicitly denied by the guardrail" in refused(
        report, "sagemaker:CreateTrainingJob"
    )
    assert local.run(item | {"tags": {"cost-center": "ml-42"}}, scp=scp).status == "SUCCEEDED"


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
        (["--scp", str(tmp_path / "missing.json")], f"{tmp_path / 'missing.json'}: no such file"),
        (["--scp", str(tmp_path)], f"{tmp_path}: a folder, not a file: name the file"),
        (["--scp", str(tmp_path / "broken.json")], "not JSON"),
        (["--scp", str(tmp_path / "not-a-policy.json")], 'not a policy document: it needs a "Statement" list'),
    ]:
        try:
            code = cli.main(["local", "run", item, *arguments])
        except SystemExit as refused:  # a path that is not a file: argparse's usage error, as for every file
            code = refused.code
        assert code == 2
        assert words in capsys.readouterr().err


# --- The local stack: `mlops-sfn local up --deny/--scp` --------------------------------------------


def test_the_local_stacks_guardrails_refuse_the_calls_of_its_runs(tmp_path: Path) -> None:
    """The server reads the guardrails `local up` wrote before starting it, and decides every Task's call
    with them: here a role that may publish, under a guardrail that denies it."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / GUARDRAILS).write_text(json.dumps(task_permissions.guardrail(["sns:Publish"])))
    with MotoServer(tmp_path / "server.log", home=runtime) as server:
        topic = server.client("sns").create_topic(Name="notes")["TopicArn"]
        iam = server.client("iam")
        role = iam.create_role(
            RoleName="pipeline",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "states.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        allow = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}],
        }
        iam.put_role_policy(RoleName="pipeline", PolicyName="publish", PolicyDocument=json.dumps(allow))
        definition = {
            "StartAt": "Publish",
            "States": {
                "Publish": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn": topic, "Message": "hello"},
                    "End": True,
                }
            },
        }
        sfn = server.client("stepfunctions")
        machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
        for _ in range(100):
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
    assert described["status"] == "FAILED"
    assert "not authorized to perform: sns:Publish" in described["cause"]
    assert "explicitly denied by the guardrail policy's statement Denied" in described["cause"]


def test_local_up_keeps_a_running_stacks_guardrails_and_refuses_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    held = task_permissions.guardrail(["sagemaker:CreateEndpoint"])
    running = deployment.Deployment(str(tmp_path), "https://127.0.0.1:1", "cert", 1, {}, [dict(p) for p in held])
    monkeypatch.setattr(deployment, "load", lambda home: running)
    said: list[str] = []
    assert deployment.up(tmp_path, say=said.append) is running  # `local demo`, `local up` without options
    assert deployment.up(tmp_path, say=said.append, guardrails=held) is running
    assert said[0].endswith("with the guardrails it started with (mlops-sfn local down to remove it)")
    with pytest.raises(deployment.DeploymentError, match=r"already up with other guardrails.*mlops-sfn local down"):
        deployment.up(tmp_path, say=said.append, guardrails=task_permissions.guardrail(["sns:Publish"]))
    # the command refuses what is not a guardrail before anything starts
    assert cli.main(["local", "up", "--deny", "CreateEndpoint"]) == 2
    assert "--deny CreateEndpoint: name an IAM action as service:Action" in capsys.readouterr().err


READER = """
import boto3, botocore.exceptions

def handler(event, context):
    s3 = boto3.client("s3")
    try:
        return {"body": s3.get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read().decode()}
    except botocore.exceptions.ClientError as error:
        return {"error": error.response["Error"]["Code"], "message": error.response["Error"].get("Message", "")}
"""


def test_a_functions_code_calls_aws_as_its_execution_role(tmp_path: Path) -> None:
    """Lambda gives a function its execution role's credentials: on the local stack each function's
    calls are decided as that role (a read it grants, one it does not), and a missing key is 403 to a
    role that may not list the bucket, as S3 answers it."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    with MotoServer(tmp_path / "server.log", home=runtime) as server:
        s3, iam, lam = server.client("s3"), server.client("iam"), server.client("lambda")
        s3.create_bucket(Bucket="reports")
        for key in ("reports/ok.json", "private/secret.json"):
            s3.put_object(Bucket="reports", Key=key, Body=b"{}")
        trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        role = iam.create_role(
            RoleName="reader", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
        )["Role"]["Arn"]
        read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/reports/*"}
        iam.put_role_policy(
            RoleName="reader",
            PolicyName="read",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [read]}),
        )
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as package:
            package.writestr("app.py", READER)
        lam.create_function(
            FunctionName="reader",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
            Timeout=30,
        )

        def invoke(key: str) -> dict[str, Any]:
            answer = lam.invoke(FunctionName="reader", Payload=json.dumps({"bucket": "reports", "key": key}))
            result: dict[str, Any] = json.loads(answer["Payload"].read())
            return result

        allowed, refused, missing = invoke("reports/ok.json"), invoke("private/secret.json"), invoke("reports/no.json")
        assert s3.get_object(Bucket="reports", Key="private/secret.json")["Body"].read() == b"{}"  # others: as before
    assert allowed == {"body": "{}"}
    assert refused["error"] == "AccessDenied"
    assert refused["message"] == (
        f"User: {role} is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::reports/private/"
        "secret.json because no identity-based or resource-based policy allows the s3:GetObject action"
    )
    assert missing == {"error": "AccessDenied", "message": "Access Denied"}


JOB_SCRIPT = """
import boto3, botocore.exceptions, sys

s3 = boto3.client("s3")
print(s3.get_object(Bucket="reports", Key="reports/ok.json")["Body"].read().decode())
try:
    s3.get_object(Bucket="reports", Key="private/secret.json")
except botocore.exceptions.ClientError as error:
    sys.exit(f"{error.response['Error']['Code']}: {error.response['Error']['Message']}")
"""


def test_a_jobs_code_calls_aws_as_the_jobs_role(tmp_path: Path) -> None:
    """SageMaker gives a job's containers its role's credentials ("How SageMaker AI uses execution
    roles"): on the local stack a script's own calls are decided as the job's RoleArn, so a read its
    role grants works and one it does not fails the job with S3's AccessDenied."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    with MotoServer(tmp_path / "server.log", home=runtime) as server:
        s3, iam, sfn = server.client("s3"), server.client("iam"), server.client("stepfunctions")
        s3.create_bucket(Bucket="reports")
        for key in ("reports/ok.json", "private/secret.json"):
            s3.put_object(Bucket="reports", Key=key, Body=b'{"seen": true}')
        s3.put_object(Bucket="reports", Key="code/job.py", Body=JOB_SCRIPT.encode())
        roles = {}
        for name, service, statements in (
            ("pipeline", "states", [{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
            (
                "job",
                "sagemaker",
                [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": ["arn:aws:s3:::reports/reports/*", "arn:aws:s3:::reports/code/*"],
                    },
                    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::reports"},
                ],
            ),
        ):
            trust = {
                "Effect": "Allow",
                "Principal": {"Service": f"{service}.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
            roles[name] = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
            )["Role"]["Arn"]
            document = json.dumps({"Version": "2012-10-17", "Statement": statements})
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document)
        job = {
            "ProcessingJobName": "reads-as-its-role",
            "RoleArn": roles["job"],
            "AppSpecification": {
                "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"],
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": "s3://reports/code/job.py",
                        "LocalPath": "/opt/ml/processing/input/code",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        }
        definition = {
            "StartAt": "Job",
            "States": {
                "Job": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
                    "Parameters": job,
                    "End": True,
                }
            },
        }
        machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=roles["pipeline"])
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
        for _ in range(600):
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.1)
    assert described["status"] == "FAILED", described
    reason = json.loads(described["cause"])["FailureReason"]
    assert reason.startswith('AlgorithmError: ExitCode 1, ErrorMessage "AccessDenied: User: ' + roles["job"]), reason
    assert "not authorized to perform: s3:GetObject on resource: arn:aws:s3:::reports/private/secret.json" in reason
    log = (runtime / "jobs" / "reads-as-its-role" / "log.txt").read_text()
    assert '{"seen": true}' in log  # what the role may read, it read
