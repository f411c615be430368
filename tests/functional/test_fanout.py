"""Fan-out: one model per segment in one run, in AWS's Distributed Map, on the local AWS.

The segmented demo item runs its four stages once per latitude band; the Map reads the segments
from the run's folder, writes each segment's outcome there, and fails the run only beyond the
tolerated failures (States.ExceedToleratedFailureThreshold), as Step Functions does.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from mlops_sfn import cli
from mlops_sfn.core import fanout
from mlops_sfn.core.plan import MAX_PLANNED_INPUT_BYTES
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.local import distributed_map, quotas
from mlops_sfn.local.harness import DEFAULT_ACCOUNT_ID, LocalRuns, RunReport
from mlops_sfn.operate import rerun, runs
from tests.conftest import load_item

SEGMENTED = load_item("demo-dev-segmented-house-price")
BANDS = [segment["id"] for segment in SEGMENTED["fanout"]["segments"]]


def unserved(item: dict[str, Any]) -> dict[str, Any]:
    """The item without its multi-model endpoint: its segments' models are registered only."""
    item = copy.deepcopy(item)
    for stage in ("create_model", "deploy"):
        item["stages"][stage]["run"] = False
    return item


def with_fanout(**changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(SEGMENTED)
    for key in ("tolerated_failure_percentage", "tolerated_failure_count"):
        item["fanout"].pop(key, None)
    item["fanout"].update(changes)
    return item


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalRuns() as runs:
        yield runs


def packages(local: LocalRuns, segment: str) -> list[dict[str, Any]]:
    group = f"mlops-dev-seg-house-price-{segment}"
    return list(local.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"])


def test_the_segmented_demo_trains_evaluates_and_registers_every_segment(local: LocalRuns) -> None:
    before = {band: len(packages(local, band)) for band in BANDS}
    report = local.run(SEGMENTED)
    assert report.status == "SUCCEEDED", report.cause
    assert report.segments == {"total": 8, "succeeded": sorted(BANDS), "failed": [], "not_run": [], "reused": {}}
    # each band has its own model package group, one more package in it
    assert {band: len(packages(local, band)) - before[band] for band in BANDS} == dict.fromkeys(BANDS, 1)
    # each band's stages ran in its own child execution, with its own names and folder
    for stage in ("Preprocessing", "Training", "Evaluation", "Check quality gate", "Register model", "Done"):
        assert report.states.count(f"Segment: {stage}") == 8, stage
    blocks = [json.dumps(event) for event in report.child_history if "taskScheduledEventDetails" in event]
    trained = {name for name in training_jobs(local) if any(name in block for block in blocks)}
    assert len(trained) == 8  # one training job per segment, each its own name
    folder = f"runs/demo-dev-segmented-house-price/{report.execution_name}/segments/"
    listed = local.s3.list_objects_v2(Bucket=local.settings.bucket, Prefix=folder)["Contents"]
    written = {obj["Key"].removeprefix(folder).split("/")[0] for obj in listed}
    assert set(BANDS) <= written and {"items", "results"} <= written
    # the per-segment stages report as such; the run's own stages as usual
    assert report.stages["training"] == "per_segment" and report.stages["approval"] == "skipped"
    (success,) = [note for note in report.notifications if note["subject"] == "Pipeline run succeeded"]
    assert success["message"]["results"]["segments"]["ResultWriterDetails"]["Key"].endswith("/manifest.json")


def test_failures_within_the_tolerance_succeed_and_name_the_failed_segments(local: LocalRuns) -> None:
    report = local.run(SEGMENTED, fail_segments=["band3", "band5"])  # 2 of 8: 25 %, as tolerated
    assert report.status == "SUCCEEDED", report.cause
    assert report.segments is not None
    assert [f["segment"] for f in report.segments["failed"]] == ["band3", "band5"]
    assert {f["stage"] for f in report.segments["failed"]} == {"preprocessing"}
    assert all("--fail-segment" in f["cause"] for f in report.segments["failed"])
    assert len(report.segments["succeeded"]) == 6
    (note,) = report.notifications  # one for the run, not one per segment, naming the failed ones
    assert note["subject"] == "Pipeline run succeeded"
    summary = note["message"]["results"]["segments_summary"]
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (8, 6, 2)
    assert summary["failures"] == [
        {"segment": band, "stage": "preprocessing", "error": "States.TaskFailed"} for band in ("band3", "band5")
    ]
    assert summary["message"].startswith("segments: 8 in all, 6 succeeded, 2 failed: band3 (preprocessing:")


def test_failures_beyond_the_tolerance_fail_the_run_with_aws_error_and_one_notification(local: LocalRuns) -> None:
    report = local.run(SEGMENTED, fail_segments=["band1", "band2", "band3"])  # 3 of 8: 37.5 % > 25 %
    assert report.status == "FAILED"
    assert report.error == "segments.States.ExceedToleratedFailureThreshold"
    assert [note["subject"] for note in report.notifications] == ["Pipeline run failed"]
    failed = report.notifications[0]["message"]
    assert failed["failed_stage"] == "segments"
    assert failed["cause"].startswith(
        distributed_map.THRESHOLD_CAUSE + " segments: 8 in all, 5 succeeded, 3 failed: band1"
    )
    # the outcomes are written all the same: status names the failed segments
    assert report.segments is not None and [f["segment"] for f in report.segments["failed"]] == BANDS[:3]
    # a redrive would start again in the Failed state: the rerun of the failed segments is named instead
    earlier = runs.from_description(local.sfn.describe_execution(executionArn=arn_of(local, report)))
    why = rerun.why_not_redrive(earlier, report.history, local.definition)
    assert why is not None and why.endswith(f"mlops-sfn rerun {report.execution_name} --failed-segments")


@pytest.mark.parametrize(
    ("tolerance", "failing", "status"),
    [
        ({}, ["band8"], "FAILED"),  # AWS's default: no failure tolerated
        ({"tolerated_failure_count": 1}, ["band8"], "SUCCEEDED"),
        ({"tolerated_failure_count": 1}, ["band7", "band8"], "FAILED"),
        ({"tolerated_failure_percentage": 50}, BANDS[:4], "SUCCEEDED"),
        ({"tolerated_failure_percentage": 50, "tolerated_failure_count": 1}, BANDS[:2], "FAILED"),  # either bounds
    ],
)
def test_the_thresholds_bound_the_failed_segments_as_aws_counts_them(
    local: LocalRuns, tolerance: dict[str, Any], failing: list[str], status: str
) -> None:
    report = local.run(with_fanout(**tolerance), fail_segments=failing)
    assert report.status == status, (report.error, report.segments)


def test_a_map_runs_child_executions_are_listed_and_described_as_aws_does(local: LocalRuns) -> None:
    """ListMapRuns names the run's Map Run, ListExecutions(mapRunArn) its child executions, and
    DescribeExecution one child; the failed segment's outcome names its child execution."""
    report = local.run(SEGMENTED, fail_segments=["band4"])
    assert report.status == "SUCCEEDED" and report.segments is not None
    (map_run,) = local.sfn.list_map_runs(executionArn=arn_of(local, report))["mapRuns"]
    children = local.sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"]
    assert len(children) == 8 and {child["mapRunArn"] for child in children} == {map_run["mapRunArn"]}
    assert sorted(child["status"] for child in children) == ["FAILED"] + ["SUCCEEDED"] * 7
    (failed,) = local.sfn.list_executions(mapRunArn=map_run["mapRunArn"], statusFilter="FAILED")["executions"]
    (outcome,) = report.segments["failed"]
    assert outcome["execution"] == failed["executionArn"]
    described = local.sfn.describe_execution(executionArn=failed["executionArn"])
    assert (described["status"], described["error"]) == ("FAILED", "preprocessing.States.TaskFailed")
    assert json.loads(described["input"])["segment"] == "band4"
    assert described["mapRunArn"] == map_run["mapRunArn"]
    with pytest.raises(local.sfn.exceptions.ResourceNotFound):
        local.sfn.list_executions(mapRunArn=map_run["mapRunArn"].rsplit(":", 1)[0] + ":not-a-map-run")


def test_a_segments_quality_gate_fails_that_segment_only(local: LocalRuns) -> None:
    report = local.run(SEGMENTED, metric=0.9)  # every band's report misses the gate
    assert report.status == "FAILED" and report.error == "segments.States.ExceedToleratedFailureThreshold"
    assert report.segments is not None
    assert {(f["stage"], f["error"]) for f in report.segments["failed"]} == {("quality_gate", "QualityGateNotMet")}
    assert "Segment: Quality gate not met" in report.states


def test_an_uploaded_list_larger_than_a_state_may_hold_is_read_from_s3_never_carried_in_the_input(
    local: LocalRuns,
) -> None:
    """The upload lists the segments (segments_file): 45 rows with long values, more than Step Functions
    carries in a state; the run's input only says where the router wrote them."""
    item = with_fanout(max_concurrency=8)
    del item["fanout"]["segments"]
    item["fanout"]["segments_file"] = "segments.jsonl"
    rows = [{"id": f"s{n:02d}", "latitude_min": 32, "latitude_max": 42, "notes": "x" * 6000} for n in range(45)]
    uploaded = "".join(json.dumps(row) + "\n" for row in rows).encode()
    assert len(uploaded) > 262_144 > MAX_PLANNED_INPUT_BYTES
    local.s3.put_object(Bucket=local.settings.bucket, Key=item["trigger"]["prefix"] + "segments.jsonl", Body=uploaded)
    report = local.run(item)
    assert report.status == "SUCCEEDED", report.cause
    assert report.segments is not None and report.segments["succeeded"] == [row["id"] for row in rows]
    execution = local.sfn.describe_execution(executionArn=arn_of(local, report))
    assert len(execution["input"].encode()) < 8192  # the input names where the list is (and the served model)
    where = json.loads(execution["input"])["fanout"]["items"]
    listed = local.s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read()
    assert len(listed) > 262_144 and len(json.loads(listed)) == 45


def test_an_upload_without_its_segments_file_starts_no_run(local: LocalRuns) -> None:
    item = copy.deepcopy(SEGMENTED)
    del item["fanout"]["segments"]
    item["fanout"]["segments_file"] = "missing/segments.csv"
    with pytest.raises(InvalidItem) as raised:
        local.run(item)
    (problem,) = raised.value.problems
    assert problem.path == "fanout.segments_file" and "missing/segments.csv: not in the upload" in problem.message


def training_jobs(local: LocalRuns) -> set[str]:
    pages = local.sagemaker.get_paginator("list_training_jobs").paginate()
    return {job["TrainingJobName"] for page in pages for job in page["TrainingJobSummaries"]}


def arn_of(local: LocalRuns, report: RunReport) -> str:
    return local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{report.execution_name}"


# An SCP allows nothing it does not name (as FullAWSAccess does, this one allows all), then denies.
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def test_the_map_reads_the_segments_only_as_the_role_may(local: LocalRuns) -> None:
    """The item reader calls S3 as the state machine's role: refused, the Map fails with
    States.ItemReaderFailed, before any segment runs."""
    items = f"arn:aws:s3:::{local.settings.bucket}/runs/*/segments/items/*"
    scp = {"Statement": [ALLOW_ALL, {"Effect": "Deny", "Action": "s3:GetObject", "Resource": items}]}
    report = local.run(SEGMENTED, scp=scp)
    assert report.status == "FAILED" and report.error == "segments.States.ItemReaderFailed"
    assert not any(state.startswith("Segment: ") for state in report.states)
    assert report.cause is not None and "AccessDenied" in report.cause


def test_the_map_writes_the_outcomes_only_as_the_role_may(local: LocalRuns) -> None:
    results = f"arn:aws:s3:::{local.settings.bucket}/runs/*/segments/results/*"
    scp = {"Statement": [ALLOW_ALL, {"Effect": "Deny", "Action": "s3:PutObject", "Resource": results}]}
    report = local.run(SEGMENTED, scp=scp)
    assert report.status == "FAILED" and report.error == "segments.States.ResultWriterFailed"
    assert report.states.count("Segment: Done") == 8  # the segments ran; their outcome could not be written


def test_local_run_fails_named_segments_and_tries_a_scale(capsys: pytest.CaptureFixture[str]) -> None:
    item = "dynamodb_items/demo-dev-segmented-house-price.json"
    assert cli.main(["local", "run", item, "--fail-segment", "band2"]) == 0  # within the 25 %
    out = capsys.readouterr().out
    assert "segments: 8 in all, 7 succeeded, 1 failed: band2 (preprocessing: States.TaskFailed:" in out
    assert "stages: preprocessing per_segment, training per_segment" in out
    assert cli.main(["local", "run", item, "--segments", "12", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["segments"]["total"] == 12 and report["segments"]["failed"] == []
    # bad input: named, with what is allowed
    assert cli.main(["local", "run", item, "--fail-segment", "band9"]) == 2
    assert "--fail-segment band9: not a segment of this item (it has band1, band2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["local", "run", item, "--segments", "1001"])
    assert "give a whole number of segments from 1 to 1000" in capsys.readouterr().err
    assert cli.main(["local", "run", "dynamodb_items/demo-dev-train-and-batch-score.json", "--segments", "3"]) == 2
    assert "has no fanout block" in capsys.readouterr().err


def test_local_run_of_an_item_whose_uploads_list_the_segments_needs_made_up_ones(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    item = copy.deepcopy(SEGMENTED)
    del item["fanout"]["segments"]
    item["fanout"]["segments_file"] = "segments.csv"
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    assert cli.main(["local", "run", str(path)]) == 2
    assert "local run has no upload: give --segments N" in capsys.readouterr().err
    assert cli.main(["local", "run", str(path), "--segments", "3"]) == 0  # each field its placeholders read: "0"
    assert "segments: 3 in all, 3 succeeded, 0 failed" in capsys.readouterr().out
    assert cli.main(["plan", str(path)]) == 0
    assert "segments:   read from the upload's segments.csv when the run starts" in capsys.readouterr().out


def test_a_rerun_of_the_failed_segments_runs_exactly_those_in_the_earlier_runs_folder(local: LocalRuns) -> None:
    earlier_report = local.run(SEGMENTED, fail_segments=["band3", "band5"])
    assert earlier_report.status == "SUCCEEDED"  # within the tolerance
    earlier = runs.from_description(local.sfn.describe_execution(executionArn=arn_of(local, earlier_report)))
    jobs_before = training_jobs(local)

    planned = rerun.plan_rerun(
        earlier,
        earlier_report.history,
        local.definition,
        SEGMENTED,
        local.settings,
        "preprocessing",
        lambda name: False,
        segments=["band3", "band5"],
    )
    assert [segment["segment"] for segment in planned.segment_inputs] == ["band3", "band5"]
    assert planned.execution_input["run_folder"] == earlier.execution_input["run_folder"]
    # its own names (SageMaker refuses a job name twice) and its own list and outcomes
    earlier_names = json.dumps(earlier.execution_input)  # (the earlier segments' are made from the same folder)
    for segment in planned.segment_inputs:
        assert segment["stages"]["training"]["request"]["TrainingJobName"] not in jobs_before
    assert planned.execution_input["fanout"]["items"]["Key"].endswith(f"/segments/items/{planned.name}.json")
    assert planned.execution_input["fanout"]["results"] != earlier.execution_input["fanout"]["results"]
    assert planned.name not in earlier_names

    planned.execution_input["stages"]["deploy"]["wait_seconds"] = 0  # (AWS's 30 s between endpoint checks)
    report = local.run_input(planned.execution_input, segment_inputs=planned.segment_inputs)
    assert report.status == "SUCCEEDED", report.cause
    assert report.segments == {"total": 2, "succeeded": ["band3", "band5"], "failed": [], "not_run": [], "reused": {}}
    jobs_after = training_jobs(local)
    assert len(jobs_after - jobs_before) == 2  # the two segments trained, no other
    # the earlier run still reports its own outcome
    assert fanout.outcome(local.s3, earlier.execution_input)["failed"][0]["segment"] == "band3"
    # the endpoint now serves all eight: the earlier run's six and the two rerun, under one prefix
    prefix = earlier.execution_input["fanout"]["models"]
    bucket, _, key = prefix.removeprefix("s3://").partition("/")
    listed = local.s3.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    assert sorted(o["Key"].removeprefix(key) for o in listed) == [f"{band}.tar.gz" for band in BANDS]
    config = local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    model = local.sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    assert local.sagemaker.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"] == prefix

    # a segment the item no longer has is refused, naming it
    with pytest.raises(rerun.RerunRefused, match="segments no longer in the item: band9"):
        rerun.plan_rerun(
            earlier,
            earlier_report.history,
            local.definition,
            SEGMENTED,
            local.settings,
            "preprocessing",
            lambda name: False,
            segments=["band9"],
        )


def test_a_rerun_from_deploy_serves_the_published_models_without_running_the_segments(local: LocalRuns) -> None:
    earlier_report = local.run(SEGMENTED, endpoint="failed")
    assert earlier_report.status == "FAILED" and earlier_report.stages["deploy"] == "failed"
    earlier = runs.from_description(local.sfn.describe_execution(executionArn=arn_of(local, earlier_report)))
    planned = rerun.plan_rerun(
        earlier, earlier_report.history, local.definition, SEGMENTED, local.settings, "deploy", lambda name: False
    )
    assert "fanout" not in planned.execution_input and planned.segment_inputs == []
    planned.execution_input["stages"]["deploy"]["wait_seconds"] = 0  # (AWS's 30 s between endpoint checks)
    report = local.run_input(planned.execution_input)
    assert report.status == "SUCCEEDED", report.cause
    assert "Segments" not in report.states and report.stages["create_model"] == "reused"
    assert report.stages["deploy"] == "succeeded"


def test_rerun_failed_segments_from_the_command_line_says_which_and_refuses_what_it_cannot(
    local: LocalRuns, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_sfn.core import dynamodb_json

    table = "mlops-fanout-pipelines"  # the deployment's table holds the item, as Terraform's does
    local.dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "consumption_pipeline_name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "consumption_pipeline_name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    local.dynamodb.put_item(TableName=table, Item=dynamodb_json.to_typed(SEGMENTED))
    values = {
        "bucket_name": local.settings.bucket,
        "sagemaker_role_arn": local.settings.sagemaker_role_arn,
        "image_uri": local.settings.default_image_uri,
        "state_machine_arn": local.state_machine_arn,
        "table_name": table,
        "sagemaker_name_prefix": local.settings.sagemaker_name_prefix,
        "image_repository_arns": local.settings.image_repository_arns.split(","),
        "data_buckets": [],
        "kms_key_arn": None,
        "region": local.settings.region,
    }
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({name: {"value": value} for name, value in values.items()}))

    earlier = local.run(SEGMENTED, fail_segments=["band2", "band6"])
    assert earlier.status == "SUCCEEDED"
    # the rerun bounds its segments at once by SageMaker's quotas, as the router does
    quotas.applied(DEFAULT_ACCOUNT_ID, local.settings.region, "sagemaker", "ml.m5.large for training job usage", 1)
    try:
        code = cli.main(["rerun", earlier.execution_name, "--failed-segments", "--outputs", str(outputs)])
    finally:
        quotas.APPLIED.clear()
    out, err = capsys.readouterr()
    assert code == 0, out
    assert f"running again the segments that did not succeed in {earlier.execution_name}: band2, band6" in out
    assert "max_concurrency 4 lowered to 1: SageMaker's quota 'ml.m5.large for training job usage'" in err

    clean = local.run(SEGMENTED)
    assert cli.main(["rerun", clean.execution_name, "--failed-segments", "--outputs", str(outputs)]) == 1
    assert f"every segment of {clean.execution_name} succeeded" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --from or --failed-segments, one of the two
        cli.main(["rerun", clean.execution_name, "--outputs", str(outputs)])
    assert "one of the arguments --from --failed-segments is required" in capsys.readouterr().err


def test_each_segment_scores_its_data_with_its_own_model(local: LocalRuns) -> None:
    """batch_transform per segment: a transform job runs one model (CreateTransformJob takes one
    ModelName), so each segment's job uses the model that segment created, in its own folder."""
    item = unserved(SEGMENTED)  # batch_transform per segment needs create_model per segment
    demo = load_item()
    for stage in ("create_model", "batch_transform"):
        item["stages"][stage] = copy.deepcopy(demo["stages"][stage]) | {"run": True}
        item["fanout"]["stages"].append(stage)
    before = {job["TransformJobName"] for job in local.sagemaker.list_transform_jobs()["TransformJobSummaries"]}
    report = local.run(item)
    assert report.status == "SUCCEEDED", report.cause
    # the item tolerates 25 % of failed segments: one that failed would still let the run succeed
    assert report.segments is not None and report.segments["failed"] == [], report.segments
    assert report.stages["batch_transform"] == "per_segment" and report.states.count("Segment: Batch transform") == 8
    jobs = [
        local.sagemaker.describe_transform_job(TransformJobName=job["TransformJobName"])
        for job in local.sagemaker.list_transform_jobs()["TransformJobSummaries"]
        if job["TransformJobName"] not in before
    ]
    assert len(jobs) == 8 and len({job["ModelName"] for job in jobs}) == 8
    for job in jobs:
        model = local.sagemaker.describe_model(ModelName=job["ModelName"])["PrimaryContainer"]["ModelDataUrl"]
        band = model.split("/segments/")[1].split("/")[0]  # the segment whose training made the model
        assert f"/segments/{band}/batch-transform/" in job["TransformOutput"]["S3OutputPath"]
        assert f"/segments/{band}/" in job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]


# -- one multi-model endpoint serving every segment's model ---------------------------------------------

ENDPOINT = SEGMENTED["stages"]["deploy"]["endpoint_name"]
ROW = SEGMENTED["stages"]["deploy"]["smoke_test"]["body"]


def published(local: LocalRuns, report: RunReport) -> dict[str, bytes]:
    """The models the run published for its endpoint, by file name."""
    prefix = f"runs/{report.pipeline}/{report.execution_name}/{fanout.MODELS_FOLDER}/"
    listed = local.s3.list_objects_v2(Bucket=local.settings.bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"].removeprefix(prefix): local.s3.get_object(Bucket=local.settings.bucket, Key=o["Key"])["Body"].read()
        for o in listed
    }


def test_one_multi_model_endpoint_serves_the_model_each_segment_trained(local: LocalRuns) -> None:
    """deploy once after the segments: each segment publishes the model it trained under the run's
    prefix, then one model in MultiModel mode (ModelDataUrl: that prefix) is deployed; an invocation
    names its segment's model in TargetModel ("Invoke a Multi-Model Endpoint")."""
    report = local.run(SEGMENTED)
    assert report.status == "SUCCEEDED", report.cause
    order = [state for state in report.states if not state.startswith("Segment: ")]
    assert order.index("Segments") < order.index("Create model") < order.index("Create endpoint config")
    assert report.states.count("Segment: Publish model") == 8
    models = published(local, report)
    assert sorted(models) == [f"{band}.tar.gz" for band in BANDS]
    for band in BANDS:  # the very model the segment's training job wrote
        job = next(
            j
            for j in training_jobs(local)
            if local.sagemaker.describe_training_job(TrainingJobName=j)["ModelArtifacts"]["S3ModelArtifacts"].count(
                f"/{report.execution_name}/segments/{band}/"
            )
        )
        trained = local.sagemaker.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
        bucket, _, key = trained.removeprefix("s3://").partition("/")
        assert models[f"{band}.tar.gz"] == local.s3.get_object(Bucket=bucket, Key=key)["Body"].read(), band
    config = local.sagemaker.describe_endpoint_config(
        EndpointConfigName=local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    )
    container = local.sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])[
        "PrimaryContainer"
    ]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == report_input(local, report)["fanout"]["models"]
    assert container["ModelDataUrl"].endswith(f"/{report.execution_name}/{fanout.MODELS_FOLDER}/")
    (note,) = [n for n in report.notifications if n["subject"] == "Pipeline run succeeded"]
    assert note["message"]["results"]["serve"]["deploy"]["smoke_test"]["response"]["target_model"] == "band1.tar.gz"

    runtime = boto3.client("sagemaker-runtime", region_name=local.settings.region)
    answered = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="text/csv", Body=ROW, TargetModel="band4.tar.gz"
    )
    assert answered["Body"].read()
    with pytest.raises(runtime.exceptions.ClientError, match="multi-model endpoint: name the model to invoke"):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=ROW)
    with pytest.raises(runtime.exceptions.ClientError, match="Failed to download model data") as refused:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=ROW, TargetModel="band9.tar.gz")
    assert refused.value.response["Error"]["Code"] == "ValidationError"


def report_input(local: LocalRuns, report: RunReport) -> dict[str, Any]:
    return dict(json.loads(local.sfn.describe_execution(executionArn=arn_of(local, report))["input"]))


def test_a_failed_segment_is_not_served_and_a_test_of_its_model_fails_the_deploy(local: LocalRuns) -> None:
    report = local.run(SEGMENTED, fail_segments=["band2"])  # within the tolerance: the run serves the others
    assert report.status == "SUCCEEDED", report.cause
    assert "band2.tar.gz" not in published(local, report) and len(published(local, report)) == 7
    item = copy.deepcopy(SEGMENTED)
    item["stages"]["deploy"]["smoke_test"]["target_model"] = "band2.tar.gz"  # the item asks for the failed one
    failed = local.run(item, fail_segments=["band2"])
    assert failed.status == "FAILED" and failed.error == "deploy.ValidationError", (failed.error, failed.cause)
    assert "Failed to download model data" in str(failed.cause)
    assert "band2.tar.gz" in str(failed.cause)


def test_no_segment_model_to_serve_fails_the_run_and_leaves_the_endpoint_as_it_was(local: LocalRuns) -> None:
    """Every segment may fail within a tolerance of 100 %: the Map succeeds, but nothing was published,
    and deploying an endpoint of no model would replace what it serves."""
    before = local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    report = local.run(with_fanout(tolerated_failure_percentage=100), fail={"training"})
    assert report.status == "FAILED" and report.error == "segments.NoSegmentModel", (report.error, report.cause)
    assert "no segment succeeded" in str(report.cause) and "0 succeeded, 8 failed" in str(report.cause)
    assert "Create model" not in report.states
    assert local.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == before


def test_a_segment_whose_model_the_copy_may_not_write_fails_as_aws_would_refuse_it(local: LocalRuns) -> None:
    """The publishing Lambda copies as its role: S3's CopyObject needs s3:GetObject on the source and
    s3:PutObject on the target (S3 API reference, CopyObject, "Permissions")."""
    models = f"arn:aws:s3:::{local.settings.bucket}/runs/*/{fanout.MODELS_FOLDER}/*"
    scp = {"Statement": [ALLOW_ALL, {"Effect": "Deny", "Action": "s3:PutObject", "Resource": models}]}
    report = local.run(SEGMENTED, scp=scp)
    assert report.status == "FAILED" and report.error == "segments.States.ExceedToleratedFailureThreshold"
    assert report.segments is not None and {f["stage"] for f in report.segments["failed"]} == {"create_model"}
    assert all("AccessDenied" in f["cause"] and "s3:PutObject" in f["cause"] for f in report.segments["failed"])


# -- step caching per segment -------------------------------------------------------------------------


def cached(item: dict[str, Any], *stages: str) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for stage in stages:
        item["stages"][stage]["cache"] = {"enabled": True}
    return item


def upload(local: LocalRuns) -> None:
    """What the demo's stages read, so their keys cover its content (the simulated jobs need none)."""
    prefix = SEGMENTED["trigger"]["prefix"]
    for name in ("code/preprocessing.py", "code/sourcedir.tar.gz", "code/evaluation.py", "data/housing.csv"):
        local.s3.put_object(Bucket=local.settings.bucket, Key=prefix + name, Body=name.encode())


def processing_jobs(local: LocalRuns) -> set[str]:
    pages = local.sagemaker.get_paginator("list_processing_jobs").paginate()
    return {job["ProcessingJobName"] for page in pages for job in page["ProcessingJobSummaries"]}


def test_an_unchanged_segment_reuses_what_it_recorded_and_a_changed_one_runs(local: LocalRuns) -> None:
    upload(local)
    item = cached(SEGMENTED, "preprocessing", "training")
    first = local.run(item)
    assert first.status == "SUCCEEDED", first.cause
    recorded = local.dynamodb.scan(TableName=local.ledger)["Items"]
    folders = {entry["run_folder"]["S"] for entry in recorded if entry["execution"]["S"] == first.execution_name}
    assert len(folders) == 8 and all(f"/segments/{band}/" in " ".join(folders) for band in BANDS)
    assert first.states.count("Segment: Record training") == 8

    jobs, processing = training_jobs(local), processing_jobs(local)
    changed = copy.deepcopy(item)
    changed["fanout"]["segments"][1]["latitude_max"] = 35.0  # band2's rows change
    again = local.run(changed)
    assert again.status == "SUCCEEDED", again.cause
    assert again.segments is not None
    unchanged = [band for band in BANDS if band != "band2"]
    assert sorted(again.segments["reused"]) == unchanged
    assert again.segments["reused"]["band1"] == {
        "preprocessing": first.execution_name,
        "training": first.execution_name,
    }
    assert len(training_jobs(local) - jobs) == 1  # band2's only
    ran = processing_jobs(local) - processing
    assert len(ran) == 9  # band2's preprocessing, and every segment's evaluation (not cached)
    assert again.states.count("Segment: Training") == 1 and again.states.count("Segment: Evaluation") == 8
    assert "7 reused an earlier run's outputs" in fanout.segments_line(again.segments)


def test_a_segment_that_failed_is_never_reused_though_its_run_succeeded(local: LocalRuns) -> None:
    """A segment's record is written by its child execution once the stage succeeded; a later stage of
    that segment may fail and its run still succeed (within the tolerance): the record is proven
    against the Map's outcome files, as the router reads them, and not reused."""
    upload(local)
    item = cached(unserved(with_fanout(tolerated_failure_percentage=100)), "preprocessing")
    arguments = item["stages"]["preprocessing"]["request"]["AppSpecification"]["ContainerArguments"]
    arguments[arguments.index("--test-fraction") + 1] = "0.25"  # keys no earlier test recorded
    failed = local.run(item, fail={"training"})  # every segment's training fails, after its preprocessing
    assert failed.status == "SUCCEEDED" and failed.segments is not None
    assert len(failed.segments["failed"]) == 8
    assert failed.states.count("Segment: Record preprocessing") == 8

    again = local.run(item)
    assert again.status == "SUCCEEDED", again.cause
    assert again.segments is not None and again.segments["reused"] == {}
    assert again.states.count("Segment: Preprocessing") == 8
    where = json.loads(local.sfn.describe_execution(executionArn=arn_of(local, again))["input"])["fanout"]["items"]
    listed = json.loads(local.s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read())
    whys = {segment["segment"]: segment["cache"]["preprocessing"].get("why", "") for segment in listed}
    assert (
        whys["band1"] == f"the ledger's record is not reused: segment band1 did not succeed in {failed.execution_name}"
    )


# -- segments at once within SageMaker's quotas ----------------------------------------------------------


@pytest.fixture
def quota(local: LocalRuns) -> Any:
    """Applied SageMaker quotas of the local account (local/quotas.py), cleared afterwards."""
    where = (DEFAULT_ACCOUNT_ID, local.settings.region)

    def apply(name: str, value: float) -> None:
        quotas.applied(*where, "sagemaker", name, value)

    yield apply
    quotas.APPLIED.pop(where, None)


def test_segments_at_once_are_lowered_to_what_the_sagemaker_quotas_allow(local: LocalRuns, quota: Any) -> None:
    """Each segment's jobs hold one ml.m5.large at a time: a processing quota of 3 lets 3 segments run
    at once, whatever the item asks (4); a training quota of 40 bounds nothing."""
    quota("ml.m5.large for processing job usage", 3)
    quota("ml.m5.large for training job usage", 40)
    planned = local.plan(SEGMENTED)
    assert SEGMENTED["fanout"]["max_concurrency"] == 4
    assert planned.execution_input["fanout"]["max_concurrency"] == 3
    report = local.run(SEGMENTED)
    assert report.status == "SUCCEEDED", report.cause
    started = json.loads(local.sfn.describe_execution(executionArn=arn_of(local, report))["input"])
    assert started["fanout"]["max_concurrency"] == 3  # what the Map's MaxConcurrencyPath reads


def test_a_quota_that_lets_no_segment_run_starts_nothing(local: LocalRuns, quota: Any) -> None:
    quota("ml.m5.large for training job usage", 0)  # a new account's quota for many instance types
    with pytest.raises(InvalidItem) as raised:
        local.run(SEGMENTED)
    (problem,) = raised.value.problems
    assert problem.path == "fanout.stages"
    assert "quota 'ml.m5.large for training job usage' is 0 instances" in problem.message
    assert "Request an increase" in problem.message


def test_without_applied_quotas_the_items_bound_stands(local: LocalRuns) -> None:
    """ListServiceQuotas lists only applied values (AWS's API reference): none, nothing lowered."""
    assert fanout.read_quotas(boto3.client("service-quotas", region_name=local.settings.region)) == {}
    assert local.plan(SEGMENTED).execution_input["fanout"]["max_concurrency"] == 4
