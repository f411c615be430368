"""The whole framework on one machine: `mlops-sfn local up` (real Terraform into a local AWS), then
uploads as a user makes them, routed by the real router, run by the real state machine and scripts.

One deployment serves the file; the tests run in order, each upload a new one.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_sfn import cli
from mlops_sfn.core import dynamodb_json, fanout, names
from mlops_sfn.core.stages import STAGES
from mlops_sfn.local import deployment
from mlops_sfn.local import monitor as local_monitor
from mlops_sfn.local.demo import ARTIFACTS, PIPELINE, Demo, DemoResult, report
from mlops_sfn.operate import approval
from mlops_sfn.operate.replay import replay
from mlops_sfn.tools import package
from tests.conftest import ITEMS, edited
from tests.infrastructure.crowd import crowd

pytestmark = pytest.mark.terraform


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[deployment.Deployment]:
    home = tmp_path_factory.mktemp("local") / ".mlops-local"
    running = deployment.up(home, say=lambda _: None)
    try:
        yield running
    finally:
        deployment.down(home, say=lambda _: None)
    assert not home.exists()


@pytest.fixture(scope="module")
def demo(stack: deployment.Deployment) -> Demo:
    return Demo(stack, say=lambda _: None)


@pytest.fixture(scope="module")
def first(demo: Demo) -> DemoResult:
    return demo.run()


def objects(demo: Demo, run_folder: str) -> dict[str, bytes]:
    bucket, _, prefix = run_folder.removeprefix("s3://").partition("/")
    found = {}
    for page in demo.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"][len(prefix) :]] = demo.s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return found


def router_log(stack: deployment.Deployment) -> list[dict[str, Any]]:
    name = stack.outputs["router_function_arn"].rsplit(":", 1)[1]
    text = (stack.runtime / "logs" / "lambda" / f"{name}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def copy_artifacts(into: Path) -> Path:
    """The demo's files in another folder, to change them; returns the pipeline's folder."""
    shutil.copytree(ARTIFACTS / PIPELINE, into / PIPELINE)
    return into / PIPELINE


def rebuild_source_archive(folder: Path) -> None:
    code = folder / "code"
    (code / "sourcedir.tar.gz").write_bytes(package.build_tar({p.name: p.read_bytes() for p in code.glob("*.py")}))


def test_an_upload_runs_every_switched_on_stage(first: DemoResult, demo: Demo) -> None:
    assert first.new_run and first.status == "SUCCEEDED", report(first, demo)
    expected = {stage: "skipped" if stage == "tuning" else "succeeded" for stage in STAGES}
    assert {stage: run.status for stage, run in first.stages.items()} == expected


def test_the_jobs_ran_the_scripts_and_left_their_outputs_where_sagemaker_would(first: DemoResult, demo: Demo) -> None:
    found = objects(demo, first.execution_input["run_folder"])
    assert len(found["preprocessing/train/train.csv"].splitlines()) == 4800
    assert len(found["preprocessing/test/test.csv"].splitlines()) == 1200
    features = found["preprocessing/test/features/features.csv"].decode().splitlines()
    (model_key,) = [key for key in found if key.startswith("training/") and key.endswith("/output/model.tar.gz")]
    with tarfile.open(fileobj=io.BytesIO(found[model_key]), mode="r:gz") as archive:
        assert archive.getnames() == ["model.joblib"]
    report_ = json.loads(found["evaluation/evaluation.json"])
    rmse = report_["regression_metrics"]["rmse"]["value"]
    gate = first.output["results"]["quality_gate"]
    assert gate["met"] and gate["value"] == rmse and 0.2 < rmse < 0.75
    predictions = found["batch-transform/features.csv.out"].decode().splitlines()
    assert len(predictions) == len(features) == 1200
    assert all(0.0 < float(value) < 6.0 for value in predictions)


def test_the_segmented_demo_trains_evaluates_and_registers_one_model_per_band_with_the_scripts(demo: Demo) -> None:
    """The fanned-out demo on the local stack: the router writes the segments' list, the Distributed
    Map runs each band's scripts in its own child execution, each band registers its own model."""
    pipeline = "demo-dev-segmented-house-price"
    result = demo.run(pipeline=pipeline)
    assert result.status == "SUCCEEDED", report(result, demo)
    assert result.stages["training"].status == "per segment"
    folder, sagemaker = result.execution_input["run_folder"], demo.deployment.client("sagemaker")
    bands = {
        segment["id"]: segment for segment in json.loads((ITEMS / f"{pipeline}.json").read_text())["fanout"]["segments"]
    }
    for band, segment in bands.items():
        found = objects(demo, f"{folder}segments/{band}/")
        rows = [line.split(",") for line in found["preprocessing/train/train.csv"].decode().splitlines()]
        assert rows and all(segment["latitude_min"] <= float(row[7]) < segment["latitude_max"] for row in rows), band
        rmse = json.loads(found["evaluation/evaluation.json"])["regression_metrics"]["rmse"]["value"]
        assert 0.2 < rmse < 0.75, band  # the gate passed on the band's own model
        group = f"mlops-dev-seg-house-price-{band}"
        assert sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"], band
    outcome = fanout.outcome(demo.s3, result.execution_input)
    assert outcome is not None and outcome["succeeded"] == sorted(bands) and outcome["failed"] == []
    (note,) = [n["message"] for n in result.notifications if n["subject"] == "Pipeline run succeeded"]
    assert note["results"]["segments_summary"]["succeeded"] == 8

    # one multi-model endpoint serves every band's model: each invocation names its band's in TargetModel
    smoke = note["results"]["serve"]["deploy"]["smoke_test"]["response"]
    assert smoke["target_model"] == "band1.tar.gz" and 0.0 < float(smoke["head"]) < 6.0
    runtime, endpoint = demo.deployment.client("sagemaker-runtime"), "mlops-dev-seg-house-price"
    row = "8.3252,41.0,6.984127,1.02381,322.0,2.555556,37.88,-122.23"
    answers = {
        band: float(
            runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="text/csv", Body=row, TargetModel=f"{band}.tar.gz"
            )["Body"].read()
        )
        for band in bands
    }
    assert all(0.0 < answer < 6.0 for answer in answers.values())
    assert len(set(answers.values())) > 1  # eight models, each trained on its own band's rows
    with pytest.raises(runtime.exceptions.ClientError, match="multi-model endpoint: name the model to invoke"):
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row)
    with pytest.raises(runtime.exceptions.ClientError, match="Failed to download model data") as refused:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=row, TargetModel="band9.tar.gz")
    assert refused.value.response["Error"]["Code"] == "ValidationError"


def test_the_environment_local_up_prints_reaches_the_local_aws_as_printed(
    stack: deployment.Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deployment, "up", lambda **_: stack)
    assert cli.main(["local", "up"]) == 0
    (export,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("export ")]
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # nothing but the printed variables
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for assignment in export.removeprefix("export ").split():
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    tables = boto3.session.Session().client("dynamodb").list_tables()["TableNames"]
    assert stack.outputs["table_name"] in tables


def test_the_router_ran_as_the_lambda_on_every_upload_event(first: DemoResult, stack: deployment.Deployment) -> None:
    decisions = {
        entry["trigger"]["object"].rsplit("/", 1)[1]: entry["outcome"]
        for entry in router_log(stack)
        # uploads only: the demo's approval reaches the router too, and is skipped (no item serves its group)
        if (entry.get("trigger") or {}).get("source") == "s3"
        and (entry.get("execution_name") == first.execution_name or entry["outcome"] == "skipped")
    }
    assert decisions["manifest.json"] == "started"
    assert decisions["houses.csv"] == decisions["train.py"] == "skipped"  # part of the upload


def test_the_approval_was_answered_and_the_endpoint_serves_the_trained_model(
    first: DemoResult, stack: deployment.Deployment
) -> None:
    results = first.output["results"]
    assert results["approval"] == {"approved": True, "comment": "approved by mlops-sfn local demo"}
    smoke = first.execution_input["stages"]["deploy"]["smoke_test"]
    answered = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=first.execution_input["stages"]["deploy"]["endpoint_name"],
        ContentType=smoke["content_type"],
        Body=smoke["body"],
    )
    prediction = answered["Body"].read().decode()
    summary = results["serve"]["deploy"]["smoke_test"]["response"]  # the smoke-test function's, from the model
    assert summary["head"] == prediction and summary["bytes"] == len(prediction) and not summary["truncated"]
    assert 0.0 < float(prediction) < 6.0
    assert [note["subject"] for note in first.notifications] == ["Pipeline run succeeded"]
    assert first.graph is not None and "classDef succeeded" in first.graph.read_text()


def test_the_demo_says_why_it_cannot_run_an_item_without_scripts_and_data(demo: Demo) -> None:
    from mlops_sfn.local.demo import DemoError

    with pytest.raises(DemoError, match=r"nothing to upload for demo-dev-deploy-existing-model: .* does not exist"):
        demo.run(pipeline="demo-dev-deploy-existing-model")


def test_uploading_the_same_files_again_starts_nothing_new(
    first: DemoResult, demo: Demo, stack: deployment.Deployment
) -> None:
    executions = demo.sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
    again = demo.run()
    assert (again.new_run, again.execution_name, again.status) == (False, first.execution_name, "SUCCEEDED")
    after = demo.sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
    assert len(after) == len(executions)
    assert router_log(stack)[-1]["outcome"] == "duplicate"


@pytest.fixture
def outputs(stack: deployment.Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator's shell on this deployment: its outputs saved as `terraform output -json` saves
    them, and the local AWS selected as any AWS SDK selects an endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    monkeypatch.setenv("AWS_CA_BUNDLE", stack.cert)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({name: {"value": value} for name, value in stack.outputs.items()}))
    return path


def approve_when_asked(stack: deployment.Deployment, timeout: float = 180) -> threading.Thread:
    """An approver who answers the first approval request of a running execution."""
    sfn = stack.client("stepfunctions")

    def answer() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"], statusFilter="RUNNING")
            for execution in listed["executions"]:
                try:
                    approval.answer(sfn, execution["executionArn"], approved=True, comment="approved by the test")
                    return
                except approval.ApprovalError:
                    continue
            time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return thread


def test_run_wait_runs_status_operate_the_deployment_through_its_router(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approver = approve_when_asked(stack)
    assert cli.main(["run", PIPELINE, "--wait", "--outputs", str(outputs)]) == 0, capsys.readouterr()
    approver.join(5)
    followed = capsys.readouterr().out
    assert "waiting for approval: mlops-sfn approve" in followed
    assert "training" in followed and "Create endpoint config" in followed
    assert "SUCCEEDED" in followed
    name = followed.splitlines()[0].split()[1]

    assert cli.main(["runs", PIPELINE, "--json", "--outputs", str(outputs)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [run["name"] for run in listed][:2] == [name, first.execution_name]
    assert (listed[0]["trigger"], listed[0]["status"], listed[1]["trigger"]) == ("manual", "SUCCEEDED", "s3")

    assert cli.main(["status", name, "--json", "--outputs", str(outputs)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {stage: entry["outcome"] for stage, entry in shown["stages"].items()} == {
        stage: "skipped" if stage == "tuning" else "succeeded" for stage in STAGES
    }


def test_a_repeated_demo_reports_the_earlier_run_as_earlier_and_where_its_endpoint_is_now(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a later run moved the endpoint to its own config, `make demo` again with the same files
    starts nothing: it says the run is an earlier one, replays none of its task lines, and does not
    claim the endpoint still serves that run's config."""
    assert cli.main(["run", PIPELINE, "--set", "approval.run=false", "--wait", "--outputs", str(outputs)]) == 0
    capsys.readouterr()
    said: list[str] = []
    repeated = Demo(stack, say=said.append)
    again = repeated.run()
    assert not again.new_run and again.execution_name == first.execution_name
    assert not [line for line in said if line.startswith("  training ")]  # no task line replayed
    lines = report(again, repeated)
    assert f"execution {first.execution_name}: SUCCEEDED (an earlier run of the same files, which took" in lines[0]
    (deploy,) = [line for line in lines if line.startswith("  deploy ")]
    assert "; a later run moved it to " in deploy


def test_drifted_traffic_fires_the_drift_alarm_whose_run_retrains_once(
    first: DemoResult, demo: Demo, stack: deployment.Deployment
) -> None:
    """`mlops-sfn local demo --drift`: capture, the monitoring execution, the alarm through EventBridge
    to the router (the deployed rule and Lambda), and the run it starts, to its end. (Before the tests
    that upload other artifacts: the drift run retrains on the latest upload.)"""
    drift = demo.drift()
    assert drift.execution["status"] == "CompletedWithViolations"
    drifted = {
        v["feature_name"] for v in drift.execution["violations"] if v["constraint_check_type"] == "baseline_drift_check"
    }
    assert {"_c1", "_c2"} <= drifted  # median income and house age, as the demo's traffic drifts them
    assert drift.alarm["StateValue"] == "ALARM"
    assert drift.run is not None and drift.run.status == "SUCCEEDED", drift.run and drift.run.cause
    assert drift.run.execution_input["trigger"]["source"] == "monitoring"
    assert [note["subject"] for note in drift.run.notifications] == ["Model drift detected", "Pipeline run succeeded"]
    # What the endpoint captured is in SageMaker's format, under <destination>/<endpoint>/<variant>/.
    bucket = stack.outputs["bucket_name"]
    prefix = f"monitoring/{PIPELINE}/capture/mlops-dev-cal-house-price/AllTraffic/"
    listed = demo.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    record = json.loads(demo.s3.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read().splitlines()[0])
    assert set(record) == {"captureData", "eventMetadata", "eventVersion"}
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
    # The alarm stays in ALARM while the drift lasts: a second drifting hour starts no second run.
    executions = demo.sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
    again = demo.drift()
    assert again.alarm["StateValue"] == "ALARM" and again.run is None
    after = demo.sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
    assert len(after) == len(executions)


def test_a_role_that_may_not_write_the_analyzers_namespace_publishes_no_metric_and_says_why(
    first: DemoResult, demo: Demo, stack: deployment.Deployment
) -> None:
    """The analyzer publishes as the job definition's role: with the SageMaker role's policy as it was
    before the fix (PutMetricData only in /aws/sagemaker/*), no metric reaches the alarm on AWS, and
    the local analyzer says why instead of publishing. (After the drift test: it needs the capture.)"""
    iam = stack.client("iam")
    role = stack.outputs["sagemaker_role_arn"].rsplit("/", 1)[-1]
    deployed = iam.get_role_policy(RoleName=role, PolicyName="jobs")["PolicyDocument"]
    before_the_fix = json.loads(json.dumps(deployed))
    (metrics,) = [statement for statement in before_the_fix["Statement"] if statement.get("Sid") == "JobMetrics"]
    metrics["Condition"] = {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    schedules = stack.client("sagemaker").list_monitoring_schedules()["MonitoringScheduleSummaries"]
    iam.put_role_policy(RoleName=role, PolicyName="jobs", PolicyDocument=json.dumps(before_the_fix))
    try:
        execution = local_monitor.run_schedule(stack.client, schedules[0]["MonitoringScheduleName"])
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="jobs", PolicyDocument=json.dumps(deployed))
    assert execution["drift"] and not execution["published"]
    assert "not authorized to perform: cloudwatch:PutMetricData on resource: *" in execution["unpublished"]
    assert local_monitor.run_schedule(stack.client, schedules[0]["MonitoringScheduleName"])["published"]


def test_with_caching_switched_on_a_second_manual_run_reuses_preprocessing_and_training(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    later = ("register", "approval", "create_model", "batch_transform", "deploy")
    switches = [f"{stage}.run=false" for stage in later]  # the cached stages and the gated evaluation
    switches += [f'{stage}.cache={{"enabled": true}}' for stage in ("preprocessing", "training")]
    command = ["run", PIPELINE, *[part for switch in switches for part in ("--set", switch)], "--wait"]
    names = []
    for _ in range(2):
        assert cli.main([*command, "--outputs", str(outputs)]) == 0, capsys.readouterr()
        names.append(capsys.readouterr().out.splitlines()[0].split()[1])
    ledger = stack.client("dynamodb").scan(TableName=stack.outputs["run_ledger_table_name"])["Items"]
    stages = [entry for entry in ledger if "stage" in entry]  # (drift#<pipeline>: the drift cool-down's)
    assert {(entry["stage"]["S"], entry["execution"]["S"]) for entry in stages} >= {
        ("preprocessing", names[0]),
        ("training", names[0]),
    }
    assert cli.main(["status", names[1], "--json", "--outputs", str(outputs)]) == 0
    shown = json.loads(capsys.readouterr().out)["stages"]
    assert {stage: shown[stage].get("reused_from") for stage in ("preprocessing", "training")} == {
        "preprocessing": names[0],
        "training": names[0],
    }
    assert shown["evaluation"]["outcome"] == "succeeded"
    assert {stage: shown[stage]["outcome"] for stage in later} == dict.fromkeys(later, "skipped")


def test_items_diff_and_push_against_the_deployed_table(
    stack: deployment.Deployment, outputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "items"
    shutil.copytree(ITEMS, items, ignore=shutil.ignore_patterns("typed"))
    assert cli.main(["items", "diff", str(items), "--outputs", str(outputs)]) == 0, capsys.readouterr()
    assert f"= {PIPELINE}" in capsys.readouterr().out

    demo_file = items / f"{PIPELINE}.json"
    broken = edited(
        json.loads(demo_file.read_text()), {"stages.training.request.ResourceConfig.InstanceType": "ml.m5.x"}
    )
    demo_file.write_text(json.dumps(broken))
    table = stack.client("dynamodb").scan(TableName=stack.outputs["table_name"])["Items"]

    assert cli.main(["items", "push", str(items), "--outputs", str(outputs)]) == 1
    assert "nothing written" in capsys.readouterr().err
    assert stack.client("dynamodb").scan(TableName=stack.outputs["table_name"])["Items"] == table


def test_rerun_from_evaluation_retries_a_failed_evaluation_without_retraining(
    demo: Demo, stack: deployment.Deployment, outputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_artifacts(tmp_path)
    script = folder / "code" / "evaluation.py"
    fixed = script.read_bytes()
    script.write_text(fixed.decode() + '\nraise SystemExit("the test set has no target column")\n')
    failed = demo.run(artifacts=tmp_path)
    assert (failed.status, failed.stages["evaluation"].status) == ("FAILED", "failed")

    # The fix: the script in place, where the failed run read it (an upload without its manifest starts nothing).
    prefix = failed.execution_input["trigger"]["key"].rsplit("/", 1)[0]
    demo.s3.put_object(Bucket=stack.outputs["bucket_name"], Key=f"{prefix}/code/evaluation.py", Body=fixed)
    sagemaker = stack.client("sagemaker")
    trained = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    approver = approve_when_asked(stack)
    command = ["rerun", failed.execution_name, "--from", "evaluation", "--wait", "--json", "--outputs", str(outputs)]
    # the folder no longer holds what its manifest lists: said, and read only when accepted
    assert cli.main(command) == 1
    refused = capsys.readouterr().err
    assert "code/evaluation.py (ETag differs)" in refused and "--accept-changed-upload" in refused

    assert cli.main([*command, "--accept-changed-upload"]) == 0, capsys.readouterr()
    approver.join(5)
    shown = json.loads(capsys.readouterr().out)
    outcomes = {stage: entry["outcome"] for stage, entry in shown["stages"].items()}
    assert (outcomes["preprocessing"], outcomes["training"], outcomes["evaluation"]) == (
        "reused",
        "reused",
        "succeeded",
    )
    assert outcomes["deploy"] == "succeeded"
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == trained  # no training job was created


def test_redrive_of_a_run_stopped_while_it_waited_for_approval_asks_again_and_finishes(
    stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", PIPELINE, "--json", "--outputs", str(outputs)]) == 0
    started = json.loads(capsys.readouterr().out.splitlines()[-1])
    sfn = stack.client("stepfunctions")

    def entered() -> list[str]:
        events = sfn.get_execution_history(executionArn=started["arn"], maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]

    for _ in range(600):
        if "Ask for approval" in entered():
            break
        time.sleep(0.1)
    sfn.stop_execution(executionArn=started["arn"], error="Operator", cause="the approvers are away")
    for _ in range(100):
        if sfn.describe_execution(executionArn=started["arn"])["status"] == "ABORTED":
            break
        time.sleep(0.1)
    # the stage the run was stopped in reads as stopped, not as succeeded
    assert cli.main(["status", started["name"], "--json", "--outputs", str(outputs)]) == 1
    stopped = json.loads(capsys.readouterr().out)["stages"]
    assert (stopped["register"]["outcome"], stopped["approval"]["outcome"]) == ("succeeded", "stopped")
    assert stopped["deploy"]["outcome"] == "not reached"
    approver = approve_when_asked(stack)

    assert cli.main(["redrive", started["name"], "--wait", "--json", "--outputs", str(outputs)]) == 0
    approver.join(5)
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "SUCCEEDED" and shown["stages"]["deploy"]["outcome"] == "succeeded"
    assert sfn.describe_execution(executionArn=started["arn"])["redriveCount"] == 1
    assert entered().count("Training") == 1 and entered().count("Ask for approval") == 2


def test_an_upload_into_a_folder_whose_name_s3_encodes_runs_on_that_folder(
    first: DemoResult, demo: Demo, stack: deployment.Deployment
) -> None:
    # The local EventBridge writes the key URL-encoded, as S3 does ("dt%3D2024-05-31/batch+1%2B%C3%A9%25/...").
    folder = "dt=2024-05-31/batch 1+é%/"
    result = demo.run(into=folder)
    assert result.new_run and result.status == "SUCCEEDED", report(result, demo)
    data = result.execution_input["stages"]["preprocessing"]["request"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    prefix = demo.item(PIPELINE)["trigger"]["prefix"]
    assert data == f"s3://{stack.outputs['bucket_name']}/{prefix}{folder}data/"
    assert result.execution_input["trigger"]["key"] == f"{prefix}{folder}manifest.json"


def test_an_item_edited_in_the_table_changes_the_next_run_without_redeploying(
    first: DemoResult, demo: Demo, stack: deployment.Deployment, tmp_path: Path
) -> None:
    table, key = stack.outputs["table_name"], {"consumption_pipeline_name": {"S": PIPELINE}}
    dynamodb = stack.client("dynamodb")
    item = dynamodb_json.from_typed(dynamodb.get_item(TableName=table, Key=key)["Item"])
    for stage in ("approval", "batch_transform", "deploy"):
        item["stages"][stage]["run"] = False
    dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(item))  # an operator's edit
    folder = copy_artifacts(tmp_path)
    with (folder / "data" / "houses.csv").open("a") as data:
        data.write("3.0,20,5.0,1.1,1000,3.0,34.0,-118.3,2.1\n")  # new data: a new upload

    edited = demo.run(artifacts=tmp_path)

    assert edited.new_run and edited.status == "SUCCEEDED"
    assert {stage for stage, run in edited.stages.items() if run.status == "skipped"} == {
        "tuning",
        "approval",
        "batch_transform",
        "deploy",
        "monitoring",  # (it follows a deploy)
    }
    assert edited.execution_input["run"]["deploy"] is False


def test_an_async_endpoint_scaled_from_zero_serves_an_uploaded_model_through_s3(
    first: DemoResult, demo: Demo, stack: deployment.Deployment, tmp_path: Path
) -> None:
    """The deploy-only item switched, in the table, to asynchronous serving scaled from zero: an upload of
    a model trained elsewhere creates the model and the endpoint, registers its autoscaling as the state
    machine's role (Terraform's policy, decided by the local IAM), and the smoke-test function asks the
    endpoint through S3 as its own role; the answer is the model's."""
    pipeline, bucket = "demo-dev-deploy-existing-model", stack.outputs["bucket_name"]
    s3 = stack.client("s3")
    trained = first.execution_input["stages"]["create_model"]["request"]["PrimaryContainer"]["ModelDataUrl"]
    model = s3.get_object(Bucket=bucket, Key=trained.removeprefix(f"s3://{bucket}/"))["Body"].read()
    packed = io.BytesIO()  # the trained model with its serving script, as a team uploads a model
    with tarfile.open(fileobj=io.BytesIO(model)) as source, tarfile.open(fileobj=packed, mode="w:gz") as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        target.add(ARTIFACTS / PIPELINE / "code" / "inference.py", arcname="inference.py")
    (tmp_path / pipeline).mkdir()
    (tmp_path / pipeline / "model.tar.gz").write_bytes(packed.getvalue())
    table, key = stack.outputs["table_name"], {"consumption_pipeline_name": {"S": pipeline}}
    dynamodb = stack.client("dynamodb")
    item = dynamodb_json.from_typed(dynamodb.get_item(TableName=table, Key=key)["Item"])
    item["stages"]["deploy"] |= {"mode": "async", "autoscaling": {"max": 2}}
    dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(item))

    served = demo.run(pipeline=pipeline, artifacts=tmp_path)

    assert served.new_run and served.status == "SUCCEEDED", (served.error, served.cause)
    smoke = served.output["results"]["serve"]["deploy"]["smoke_test"]["response"]
    assert smoke["output"].startswith(f"s3://{bucket}/inference/{pipeline}/output/")  # where SageMaker wrote it
    assert 0.0 < float(smoke["head"]) < 6.0  # the model's prediction for the test's house
    endpoint = item["stages"]["deploy"]["endpoint_name"]
    (target,) = stack.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{endpoint}/variant/AllTraffic"]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    alarm = f"{endpoint}-backlog-without-capacity"
    (found,) = stack.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert found["AlarmActions"] and "scale-out-from-zero" in found["AlarmActions"][0]


def test_a_serverless_endpoint_serves_the_same_uploaded_model_and_is_invoked_like_any(
    demo: Demo, stack: deployment.Deployment, tmp_path: Path
) -> None:
    """The deploy-only item (after the async test above put its model under the prefix) switched to
    serverless under a new endpoint name: an instance-based endpoint cannot become serverless."""
    pipeline = "demo-dev-deploy-existing-model"
    table, key = stack.outputs["table_name"], {"consumption_pipeline_name": {"S": pipeline}}
    dynamodb = stack.client("dynamodb")
    item = dynamodb_json.from_typed(dynamodb.get_item(TableName=table, Key=key)["Item"])
    deploy = item["stages"]["deploy"]
    for field in ("instance_type", "instance_count", "autoscaling"):
        deploy.pop(field, None)
    deploy |= {"mode": "serverless", "endpoint_name": "mlops-dev-serverless-model", "serverless": {"memory_mb": 1024}}
    dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(item))
    bucket, prefix = stack.outputs["bucket_name"], item["trigger"]["prefix"]
    model = stack.client("s3").get_object(Bucket=bucket, Key=f"{prefix}model.tar.gz")["Body"].read()
    (tmp_path / pipeline).mkdir()
    (tmp_path / pipeline / "model.tar.gz").write_bytes(model)

    served = demo.run(pipeline=pipeline, artifacts=tmp_path, into="serverless/")

    assert served.new_run and served.status == "SUCCEEDED", (served.error, served.cause)
    config = served.execution_input["stages"]["deploy"]["endpoint_config_request"]["EndpointConfigName"]
    (variant,) = stack.client("sagemaker").describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 5}
    smoke = served.output["results"]["serve"]["deploy"]["smoke_test"]["response"]
    assert 0.0 < float(smoke["head"]) < 6.0  # InvokeEndpoint, answered by the model


def test_promote_serves_the_approved_package_the_demo_registered_and_refuses_it_once_rejected(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipeline that serves a registered package (put in the table, as a team adds one): promote
    --dry-run shows the package and the run and starts nothing; promote serves it through the router,
    the model created from the package as the state machine's role; a package rejected since is
    refused before anything starts, and a run that reads it rejected serves nothing."""
    package = first.output["results"]["register"]["model_package_arn"]
    pipeline, endpoint = "demo-dev-serve-package", "mlops-dev-promoted"
    served = json.loads((ITEMS / "demo-dev-deploy-existing-model.json").read_text())
    served |= {"consumption_pipeline_name": pipeline, "description": "Serves an approved package."}
    del served["trigger"]
    served["stages"]["create_model"] = {"run": True, "model_package": package}
    served["stages"]["deploy"]["endpoint_name"] = endpoint
    dynamodb, table = stack.client("dynamodb"), stack.outputs["table_name"]
    dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(served))
    sfn, machine = stack.client("stepfunctions"), stack.outputs["state_machine_arn"]
    before = len(sfn.list_executions(stateMachineArn=machine)["executions"])
    promote = ["promote", package, "--pipeline", pipeline, "--to", str(outputs)]

    # a pipeline the table does not hold: the hint names the command that lists them, as it works here
    assert cli.main(["promote", package, "--pipeline", "no-such-pipeline", "--to", str(outputs), "--dry-run"]) == 1
    hint = capsys.readouterr().err
    assert f"mlops-sfn items pull --into FOLDER --outputs {outputs}" in hint

    assert cli.main([*promote, "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert f"package:    {package}" in shown and "approval:   Approved" in shown
    assert "metrics:    regression_metrics.rmse.value = " in shown  # from the report the package names
    assert "create_model" in shown and f"endpoint {endpoint} (all_at_once" in shown
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == before  # nothing started

    assert cli.main([*promote, "--wait"]) == 0, capsys.readouterr()
    assert "SUCCEEDED" in capsys.readouterr().out
    sagemaker = stack.client("sagemaker")
    config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    model = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    assert sagemaker.describe_model(ModelName=model)["Containers"] == [{"ModelPackageName": package}]

    sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Rejected")
    try:
        assert cli.main(promote) == 1
        assert f"{package} is Rejected, not Approved" in capsys.readouterr().err
        # the item itself still names it: a run started otherwise reads it rejected and serves nothing
        assert cli.main(["run", pipeline, "--wait", "--outputs", str(outputs)]) == 1
        assert "create_model.ModelPackageNotApproved" in capsys.readouterr().out
    finally:
        sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == config


def test_an_approval_in_the_registry_starts_the_pipeline_serving_its_group(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local SageMaker sends a package's state changes to the default bus, as SageMaker does; the
    deployed package-approval rule hands an approval to the router, which starts the item whose
    trigger.model_package_group is the package's group, serving that package. A package registered
    pending approval starts nothing."""
    registered = first.output["results"]["register"]["model_package_arn"]
    group = registered.split("/")[1]
    pipeline, endpoint = "demo-dev-serve-approved", "mlops-dev-approved"
    served = json.loads((ITEMS / "demo-dev-deploy-existing-model.json").read_text())
    served |= {
        "consumption_pipeline_name": pipeline,
        "description": "Serves each approved package of the demo's group.",
        "trigger": {"model_package_group": group},
    }
    served["stages"]["create_model"] = {"run": True, "model_package": registered}
    served["stages"]["deploy"]["endpoint_name"] = endpoint
    dynamodb, table = stack.client("dynamodb"), stack.outputs["table_name"]
    dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(served))
    sagemaker, sfn = stack.client("sagemaker"), stack.client("stepfunctions")
    machine = stack.outputs["state_machine_arn"]

    def serving_runs() -> list[tuple[str, dict[str, Any]]]:
        found = []
        for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
            planned = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
            if planned.get("pipeline") == pipeline:
                found.append((execution["executionArn"], planned))
        return found

    try:
        spec = sagemaker.describe_model_package(ModelPackageName=registered)["InferenceSpecification"]
        pending = sagemaker.create_model_package(
            ModelPackageGroupName=group, InferenceSpecification=spec, ModelApprovalStatus="PendingManualApproval"
        )["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=pending, ModelApprovalStatus="Approved")
        deadline = time.monotonic() + 60
        while not serving_runs() and time.monotonic() < deadline:
            time.sleep(0.5)
        ((arn, planned),) = serving_runs()  # the approval's run only: the pending package's event started none
        assert planned["trigger"]["source"] == "model_package" and planned["trigger"]["package"] == pending
        assert planned["stages"]["create_model"]["package"] == pending
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline + 120:
            time.sleep(0.5)
        assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
        config = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        model = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
        assert sagemaker.describe_model(ModelName=model)["Containers"] == [{"ModelPackageName": pending}]
        # runs names what started it, its columns kept; status names the package the model came from
        capsys.readouterr()
        assert cli.main(["runs", pipeline, "--outputs", str(outputs)]) == 0
        header, line = capsys.readouterr().out.splitlines()
        name = arn.rsplit(":", 1)[1]
        assert " model_package " in line and line.index(name) == header.index("execution")
        assert cli.main(["status", name, "--outputs", str(outputs)]) == 0
        assert f"from package {pending}" in capsys.readouterr().out
    finally:  # later approvals of the group start nothing
        dynamodb.delete_item(TableName=table, Key={"consumption_pipeline_name": {"S": pipeline}})


# Before the failing script's test below: it leaves a broken train.py under the item's prefix.


def test_logs_of_a_failed_training_job_show_the_scripts_own_error_line_and_status_ends_with_them(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The job's output reaches the local CloudWatch Logs where SageMaker writes it, as the job's role;
    `logs` reads it there, and `status` of the failed run ends with its last lines."""
    bad = ["--set", "training.request.HyperParameters.n_estimators=many", "--set", "approval.run=false"]
    assert cli.main(["run", PIPELINE, *bad, "--wait", "--outputs", str(outputs)]) == 1
    followed = capsys.readouterr().out
    name = followed.splitlines()[0].split()[1]
    assert "last lines of demo-dev-domain-cal-house-price-train-" in followed
    assert "train.py: error: argument --n_estimators: invalid int value: 'many'" in followed
    assert f"more: mlops-sfn logs {name} --stage training --outputs {outputs}" in followed

    assert cli.main(["logs", name, "--stage", "training", "--outputs", str(outputs)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("== training: demo-dev-domain-cal-house-price-train-")
    assert shown[0].endswith("(/aws/sagemaker/TrainingJobs)")
    assert shown[-1] == "train.py: error: argument --n_estimators: invalid int value: 'many'"

    assert cli.main(["logs", name, "--stage", "evaluation", "--outputs", str(outputs)]) == 0
    assert f"{name} ran no SageMaker job in evaluation" in capsys.readouterr().err
    assert cli.main(["logs", name, "--stage", "tuning", "--outputs", str(outputs)]) == 2
    assert "--stage tuning: the stage did not run in" in capsys.readouterr().err

    # every stage's jobs of the first run, in the order they ran
    assert cli.main(["logs", first.execution_name, "--outputs", str(outputs)]) == 0
    headers = [line.split(":")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("== ")]
    assert headers == ["== preprocessing", "== training", "== evaluation", "== batch_transform"]


def test_a_rerun_keeps_the_earlier_runs_overrides_and_takes_its_own_set(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run failed on a bad --set value: its rerun keeps the run's overrides (approval off), says so
    by path only, and a --set of its own fixes the value; rerunning it again names new jobs."""
    bad = ["--set", "training.request.HyperParameters.n_estimators=lots", "--set", "approval.run=false"]
    assert cli.main(["run", PIPELINE, *bad, "--wait", "--outputs", str(outputs)]) == 1
    failed = capsys.readouterr().out.splitlines()[0].split()[1]

    fix = ["--set", 'training.request.HyperParameters.n_estimators="20"']  # SageMaker takes strings
    assert cli.main(["rerun", failed, "--from", "training", *fix, "--wait", "--outputs", str(outputs)]) == 0
    shown = capsys.readouterr().out
    assert f"keeping {failed}'s overrides: stages.training.request.HyperParameters.n_estimators," in shown
    assert "stages.approval.run" in shown and "lots" not in shown  # paths, never values
    assert "with this rerun's: stages.training.request.HyperParameters.n_estimators" in shown
    assert "SUCCEEDED" in shown and "waiting for approval" not in shown  # approval.run=false was kept
    rerun = shown.splitlines()[0].split()[1].rstrip(",")  # "started NAME, reusing ..."

    # the same rerun again: a run of its own, jobs of their own (SageMaker refuses a name twice)
    assert cli.main(["rerun", failed, "--from", "training", *fix, "--wait", "--outputs", str(outputs)]) == 0
    again = capsys.readouterr().out.splitlines()[0].split()[1].rstrip(",")
    assert again != rerun
    sfn = stack.client("stepfunctions")
    machine = stack.outputs["state_machine_arn"]
    jobs = [
        json.loads(sfn.describe_execution(executionArn=names.execution_arn(machine, name))["input"])["stages"][
            "training"
        ]["request"]["TrainingJobName"]
        for name in (failed, rerun, again)
    ]
    assert len(set(jobs)) == 3

    assert cli.main(["runs", PIPELINE, "--outputs", str(outputs)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["started", "status", "took", "trigger", "execution", "outcome"]
    marked = {next(word for word in line.split() if word.startswith(PIPELINE)): line for line in listed[1:]}
    assert f"(rerun of {failed})" in marked[rerun] and f"(rerun of {failed})" in marked[again]
    assert "(rerun of" not in marked[failed]


def test_a_job_whose_role_may_not_write_its_log_runs_on_and_leaves_none(
    first: DemoResult, stack: deployment.Deployment, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SageMaker writes a job's log as the job's role: without logs:PutLogEvents on /aws/sagemaker/*
    the job still runs, and no line reaches CloudWatch Logs."""
    iam = stack.client("iam")
    role = stack.outputs["sagemaker_role_arn"].rsplit("/", 1)[-1]
    deployed = iam.get_role_policy(RoleName=role, PolicyName="jobs")["PolicyDocument"]
    without = json.loads(json.dumps(deployed))
    for statement in without["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [action for action in actions if action != "logs:PutLogEvents"] or ["s3:GetObject"]
    iam.put_role_policy(RoleName=role, PolicyName="jobs", PolicyDocument=json.dumps(without))
    try:
        bad = ["--set", "training.request.HyperParameters.n_estimators=none", "--set", "approval.run=false"]
        assert cli.main(["run", PIPELINE, *bad, "--wait", "--outputs", str(outputs)]) == 1
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="jobs", PolicyDocument=json.dumps(deployed))
    followed = capsys.readouterr().out
    name = followed.splitlines()[0].split()[1]
    assert "training         failed" in followed  # the job ran (its script refused the value)
    assert " left no log lines in /aws/sagemaker/TrainingJobs" in followed
    assert cli.main(["logs", name, "--stage", "training", "--outputs", str(outputs)]) == 0
    assert "no log lines yet for demo-dev-domain-cal-house-price-train-" in capsys.readouterr().err


def test_smoke_proves_the_deployment_with_a_copy_of_the_demo_and_removes_what_it_made(
    stack: deployment.Deployment, outputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mlops-sfn smoke` as a team runs it on AWS: its own item, upload, endpoint and package group;
    every check passes; afterwards nothing of it is left but the job records SageMaker keeps."""
    sagemaker, table = stack.client("sagemaker"), stack.outputs["table_name"]
    endpoints_before = {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
    assert cli.main(["smoke", "--outputs", str(outputs)]) == 0, capsys.readouterr()
    shown = capsys.readouterr().out
    for check in ("run succeeded", "model package approved", "endpoint in service", "success notification"):
        assert f"ok   {check}" in shown
    assert shown.rstrip().endswith("smoke: passed") and "left:" not in shown
    pipeline = re.search(r"smoke run (smoke-[0-9a-f]{8})", shown).group(1)  # type: ignore[union-attr]
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"consumption_pipeline_name": {"S": pipeline}})
    for prefix in (f"input/{pipeline}/", f"runs/{pipeline}/"):
        assert s3.list_objects_v2(Bucket=stack.outputs["bucket_name"], Prefix=prefix)["KeyCount"] == 0
    assert {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]} == endpoints_before
    assert not [m for m in sagemaker.list_models()["Models"] if m["ModelName"].startswith(pipeline)]
    groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert not [g for g in groups if pipeline in g["ModelPackageGroupName"]]


def test_a_smoke_run_that_fails_says_which_stage_and_still_removes_what_it_made(
    stack: deployment.Deployment, outputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_artifacts(tmp_path)
    with (folder / "code" / "evaluation.py").open("a") as script:
        script.write('\nraise SystemExit("the test set has no target column")\n')
    assert cli.main(["smoke", "--outputs", str(outputs), "--artifacts", str(folder)]) == 1
    shown = capsys.readouterr().out
    assert "failed stage: evaluation" in shown and "FAIL run succeeded: FAILED" in shown
    assert shown.rstrip().endswith("smoke: FAILED") and "left:" not in shown
    pipeline = re.search(r"smoke run (smoke-[0-9a-f]{8})", shown).group(1)  # type: ignore[union-attr]
    table = stack.outputs["table_name"]
    found = stack.client("dynamodb").get_item(TableName=table, Key={"consumption_pipeline_name": {"S": pipeline}})
    assert "Item" not in found


def test_a_failing_script_fails_the_run_and_its_error_reaches_the_failure_notification(
    demo: Demo, tmp_path: Path, outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_artifacts(tmp_path)
    with (folder / "code" / "train.py").open("a") as script:
        script.write('\nraise ValueError("the training data has no target column")\n')
    rebuild_source_archive(folder)

    failed = demo.run(artifacts=tmp_path)

    assert failed.status == "FAILED"
    assert failed.stages["training"].status == "failed"
    assert failed.stages["evaluation"].status == "not reached"
    (note,) = failed.notifications
    assert note["subject"] == "Pipeline run failed"
    assert note["message"]["failed_stage"] == "training"
    reason = json.loads(note["message"]["cause"])["FailureReason"]
    assert 'ErrorMessage "ValueError: the training data has no target column"' in reason

    # Step Functions' redrive would only fail again in the Failed state: the command says what works.
    assert cli.main(["redrive", failed.execution_name, "--outputs", str(outputs)]) == 1
    assert f"mlops-sfn rerun {failed.execution_name} --from training" in capsys.readouterr().err


def test_a_rejected_upload_lands_in_the_dead_letter_queue_and_replays_once_fixed(
    demo: Demo, stack: deployment.Deployment
) -> None:
    bucket, key = stack.outputs["bucket_name"], "input/no-such-pipeline/data.csv"
    demo.s3.put_object(Bucket=bucket, Key=key, Body=b"a,b\n")
    queue = stack.outputs["dead_letter_queue_url"]
    messages: list[dict[str, Any]] = []
    for _ in range(60):
        messages = demo.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            break
    (message,) = messages
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["detail"]["object"]["key"] == key
    assert record["responsePayload"]["errorType"] == "RejectedEvent"

    demo.sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)

    # Replayed before the fix: still rejected, and kept.
    functions, router = stack.client("lambda"), stack.outputs["router_function_arn"]
    before = replay(demo.sqs, functions, queue, router, say=lambda _: None)
    assert (before.handled, before.still_failing) == (0, 1)

    # The fix: an item for that prefix (a copy of the demo's that starts on data.csv), then replay.
    dynamodb, table = stack.client("dynamodb"), stack.outputs["table_name"]
    item = dynamodb_json.from_typed(
        dynamodb.get_item(TableName=table, Key={"consumption_pipeline_name": {"S": PIPELINE}})["Item"]
    )
    item["consumption_pipeline_name"] = "no-such-pipeline"
    item["trigger"] = {"prefix": "input/no-such-pipeline/", "complete_on": {"suffix": "data.csv"}}
    item["stages"] = {"preprocessing": {**item["stages"]["preprocessing"], "run": False}}
    item.pop("quality_gate", None)
    dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(item))
    after = replay(demo.sqs, functions, queue, router, say=lambda _: None)
    assert (after.handled, after.still_failing) == (1, 0)
    assert demo.sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    started = demo.sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
    assert any(execution["name"].startswith("no-such-pipeline-") for execution in started)


def test_fifty_concurrent_uploads_to_two_hundred_pipelines_all_start_with_no_dead_letter(
    stack: deployment.Deployment,
) -> None:
    # The local Lambda runs concurrent invocations in containers of their own, as Lambda does.
    result = crowd(stack, pipelines=200, uploads=50)
    assert (result.started, result.dead_letters) == (50, 0)
    assert result.router_containers > 1
