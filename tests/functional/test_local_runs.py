"""Every path of the state machine, executed: the real definition in moto's interpreter, SageMaker local.

Each scenario runs once (cached) in a fresh local AWS; the tests read its reports and what it left
behind. The last test checks that the scenarios together enter every state of the definition.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from mlops_sfn import cli
from mlops_sfn.core import asl, fanout, smoke_test
from mlops_sfn.core import cache as step_cache
from mlops_sfn.core.plan import plan_execution, plan_run
from mlops_sfn.core.stages import CACHEABLE, CATALOG, SERVING, STAGE, STAGES
from mlops_sfn.core.triggers import Drift, Manual
from mlops_sfn.local import task_permissions
from mlops_sfn.local.harness import SETTINGS, THROTTLEABLE, LocalRuns, RunReport
from mlops_sfn.local.policy_evaluation import Request, decide
from mlops_sfn.local.sagemaker import FAILABLE
from mlops_sfn.operate import rerun, runs
from mlops_sfn.tools import policy, statemachine
from tests.conftest import DELETE, edited, load_item, serving_package

pytestmark = pytest.mark.functional

DEMO = load_item()  # every stage but tuning: training is its model source
EXISTING_MODEL = "mlops-dev-existing-house-price-model"  # a model the item names: inside the prefix
TEAM_ALARM = "mlops-dev-team-errors"  # an alarm of the user's, present in every scenario's account
GATE_MESSAGE = "quality gate not met: regression_metrics.rmse.value = 0.9 (required <= 0.75)"


def with_stages(item: dict[str, Any], running: set[str]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for stage in STAGES:
        item["stages"][stage]["run"] = stage in running
    return item


def tuned() -> dict[str, Any]:
    """Every stage but training: the model comes from tuning's best job."""
    return with_stages(DEMO, set(STAGES) - {"training"})


def alone(stage: str) -> dict[str, Any]:
    """Only `stage` (approval needs register, monitoring watches a deploy), with an existing model where
    the stage needs one."""
    item = with_stages(
        DEMO, {stage, "register"} if stage == "approval" else {stage, "deploy"} if stage == "monitoring" else {stage}
    )
    item["stages"]["monitoring"]["baseline"]["dataset"] = "s3://{bucket}/baselines/house-price/"
    if stage != "evaluation":
        del item["quality_gate"]
    if stage not in ("training", "tuning"):
        item["stages"]["create_model"]["model_data_url"] = "s3://{bucket}/models/existing/model.tar.gz"
    item["stages"]["batch_transform"]["request"]["ModelName"] = EXISTING_MODEL
    item["stages"]["deploy"]["model_name"] = EXISTING_MODEL
    return item


def quiet(item: dict[str, Any]) -> dict[str, Any]:
    """No notifications, no quality gate, no smoke test: the Choices' other ways."""
    item = copy.deepcopy(item)
    item["notifications"] = {"on": []}
    del item["quality_gate"]
    del item["stages"]["deploy"]["smoke_test"]
    return item


def cached(item: dict[str, Any]) -> dict[str, Any]:
    """Every stage the item runs that may be cached, cached (step caching)."""
    return edited(
        item,
        {f"stages.{stage}.cache": {"enabled": True} for stage in CACHEABLE if item["stages"].get(stage, {}).get("run")},
    )


def seed_inputs(local: LocalRuns, item: dict[str, Any]) -> None:
    """An object at every location the item's stages read (its segments' too), so that their content
    can be listed."""
    planned = plan_run(item, Manual(pipeline=item["consumption_pipeline_name"]), local.settings)
    read: set[str] = set()
    for execution_input in [planned.execution_input, *planned.segment_inputs]:
        step_cache.keys(execution_input, lambda location: read.add(location) or "")
    for location in read:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if bucket == local.settings.bucket:
            local.s3.put_object(Bucket=bucket, Key=key + ("part-1" if key.endswith("/") else ""), Body=b"x")


def first_task(stage: str) -> str:
    return TASKS[stage][0]


def segmented(source: str = "training") -> dict[str, Any]:
    """The segmented demo with every stage a segment may run, the model from `source`."""
    item = load_item("demo-dev-segmented-house-price")
    demo = load_item()
    per_segment = [
        stage.name
        for stage in CATALOG
        if stage.per_segment and stage.name != {"training": "tuning"}.get(source, "training")
    ]
    for stage in per_segment:
        item["stages"].setdefault(stage, copy.deepcopy(demo["stages"][stage]))
        item["stages"][stage]["run"] = True
    item["fanout"]["stages"] = per_segment
    for stage in set(item["stages"]) - set(per_segment):
        item["stages"][stage]["run"] = False
    return item


# What a segment's stages can be made to fail with: each stage and checkpoint a segment runs.
PER_SEGMENT_FAILABLE = [
    name for name in FAILABLE if name in {s.name for s in CATALOG if s.per_segment} | {"quality_gate"}
]


DRIFT = Drift(
    pipeline=DEMO["consumption_pipeline_name"],
    alarm="mlops-dev-drift-demo-dev-domain-cal-house-price",
    time="2024-06-03T14:00:42.135+0000",
    reason="Threshold Crossed: 1 datapoint [0.62] was greater than the threshold (0.3).",
)
DEFINITION = statemachine.build()
TASKS = asl.stage_tasks(DEFINITION)
ALL_STATES = set(asl.states(DEFINITION))


def throttle_path(api: str) -> str:
    """The runs that reach `api`; the APIs one path reaches are throttled together, each once."""
    if api == "sagemaker:createHyperParameterTuningJob":
        return "tuning"
    if api == "dynamodb:putItem":  # records only what an item caches
        return "cached stages"
    if api in (
        "sagemaker:updateEndpoint",
        "sagemaker:describeEndpoint",
        "sagemaker:updateMonitoringSchedule",
        "sagemaker:deleteDataQualityJobDefinition",
    ):
        return "an endpoint and its schedule exist"
    if api == "sagemaker:deleteEndpoint":
        return "a failed endpoint"
    if api.startswith("applicationautoscaling:"):  # the update of an async endpoint scaled from zero
        return "an autoscaled endpoint"
    if api in ("sagemaker:deleteMonitoringSchedule", "cloudwatch:deleteAlarms"):
        return "monitoring switched off"
    if api == "sagemaker:describeModelPackage":
        return "a registered package"
    if api == "sagemaker:putModelPackageGroupPolicy":
        return "groups shared"
    return "a first run"


THROTTLE_PATHS = {
    path: {api for api in THROTTLEABLE if throttle_path(api) == path} for path in map(throttle_path, THROTTLEABLE)
}


# The first package a fresh local AWS registers in the demo's group, served by a model of its own.
FROM_PACKAGE = serving_package(
    with_stages(DEMO, {"create_model"}),
    "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-cal-house-price/1",
)
# An endpoint's autoscaling with a scheduled action: every state that registers it is entered.
SCALED = {"max": 2, "schedule": [{"name": "nights", "schedule": "cron(0 20 * * ? *)", "max": 1}]}

# name -> the runs, in order, in one local AWS: (item, options of LocalRuns.run)
SCENARIOS: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {
    "all stages, model from training": [(DEMO, {"answer": "approve"})],
    "all stages, model from tuning": [(tuned(), {"answer": "approve"})],
    **{f"{stage} alone": [(alone(stage), {"answer": "approve"})] for stage in STAGES},
    **{
        f"{stage} fails": [(tuned() if stage == "tuning" else DEMO, {"answer": "approve", "fail": {stage}})]
        for stage in FAILABLE
    },
    "rollback alarm missing": [
        (edited(DEMO, {"stages.deploy.rollback_alarms": ["mlops-dev-gone"]}), {"answer": "approve"})
    ],
    "rollback alarm present": [(edited(DEMO, {"stages.deploy.rollback_alarms": [TEAM_ALARM]}), {"answer": "approve"})],
    **{
        f"existing endpoint {state}": [(DEMO, {"answer": "approve", "existing_endpoint": state})]
        for state in ("in_service", "failed", "updating")
    },
    "both serving stages fail": [(DEMO, {"answer": "approve", "fail": {"batch_transform", "deploy"}})],
    "gate not met": [(DEMO, {"answer": "approve", "metric": 0.9})],
    "evaluation report above 256 KiB": [(DEMO, {"answer": "approve", "report_bytes": 300 * 1024})],
    "approval rejected": [(DEMO, {"answer": "reject"})],
    "approval timed out": [(DEMO, {})],
    "endpoint created, then updated": [(DEMO, {"answer": "approve"}), (DEMO, {"answer": "approve"})],
    "endpoint fails": [(DEMO, {"answer": "approve", "endpoint": "failed"})],
    "endpoint never ready": [(DEMO, {"answer": "approve", "endpoint": "stuck"})],
    "endpoint cannot be described": [(DEMO, {"answer": "approve", "deny": ["sagemaker:DescribeEndpoint"]})],
    "failed endpoint replaced": [(DEMO, {"answer": "approve", "endpoint": "failed"}), (DEMO, {"answer": "approve"})],
    "endpoint busy": [(DEMO, {"answer": "approve", "endpoint": "stuck"})] * 2,
    "endpoint rolled back": [(DEMO, {"answer": "approve"}), (DEMO, {"answer": "approve", "endpoint": "rolled_back"})],
    "endpoint rollback failed": [
        (DEMO, {"answer": "approve"}),
        (DEMO, {"answer": "approve", "endpoint": "rollback_failed"}),
    ],
    "quiet success": [(quiet(DEMO), {"answer": "approve"})],
    "training refused once for a resource limit": [
        (DEMO, {"answer": "approve", "limited": {"sagemaker:createTrainingJob"}})
    ],
    # A rerun of the run before it (mlops-sfn rerun --from deploy): everything before deploy reused.
    "rerun from deploy after the endpoint failed": [
        (DEMO, {"answer": "approve", "endpoint": "failed"}),
        (DEMO, {"rerun_from": "deploy"}),
    ],
    "quiet failure": [(quiet(DEMO), {"fail": {"training"}})],
    # mlops-sfn rerun --from monitoring after the baseline job failed: every stage before it reused.
    "rerun from monitoring after the baseline failed": [
        (DEMO, {"answer": "approve", "fail": {"monitoring"}}),
        (DEMO, {"rerun_from": "monitoring"}),
    ],
    # Step caching: the first run records its cacheable stages, the second reuses them.
    "cached stages recorded, then reused": [(cached(DEMO), {"answer": "approve"})] * 2,
    "cached tuning recorded": [(cached(tuned()), {"answer": "approve"})],
    # Monitoring: a run the drift alarm started; monitoring switched off after a monitored run.
    "drift run": [(DEMO, {"answer": "approve", "trigger": DRIFT})],
    "monitoring switched off": [
        (DEMO, {"answer": "approve"}),
        (edited(DEMO, {"stages.monitoring.run": False}), {"answer": "approve"}),
    ],
    **{f"throttled once: {path}": [] for path in THROTTLE_PATHS},  # see throttled_runs()
    # Fan-out: every stage a segment may run, run per segment (its states are the Map's own).
    "segments": [(segmented(), {})],
    "segments, model from tuning": [(segmented("tuning"), {})],
    **{
        f"segments: {stage} fails": [(segmented("tuning" if stage == "tuning" else "training"), {"fail": {stage}})]
        for stage in PER_SEGMENT_FAILABLE
    },
    "segments: gate not met": [(segmented(), {"metric": 0.9})],
    # step caching per segment: each segment records its cacheable stages, the second run reuses them
    "segments: cached stages recorded, then reused": [(cached(segmented()), {})] * 2,
    "segments: cached tuning recorded": [(cached(segmented("tuning")), {})],
    # one multi-model endpoint serving every segment's model; none served when every segment failed
    "segments served by one endpoint": [(load_item("demo-dev-segmented-house-price"), {})],
    "segments: none to serve": [
        (
            edited(load_item("demo-dev-segmented-house-price"), {"fanout.tolerated_failure_percentage": 100}),
            {"fail": {"training"}},
        )
    ],
    # a spot training job that capacity never reached is trained once more on demand, in a segment too
    "spot capacity missed": [(edited(DEMO, {"stages.training.spot": True}), {"answer": "approve", "spot": "none"})],
    "segments: spot capacity missed": [(edited(segmented(), {"stages.training.spot": True}), {"spot": "none"})],
    # autoscaling registered after the create, removed before the update and registered again after it
    "autoscaled endpoint created, then updated": [(edited(alone("deploy"), {"stages.deploy.autoscaling": SCALED}), {})]
    * 2,
    # an asynchronous endpoint scaled to zero: the step policy and alarm that bring its first instance
    "async endpoint scaled from zero": [
        (edited(alone("deploy"), {"stages.deploy.mode": "async", "stages.deploy.autoscaling": {"max": 2}}), {})
    ],
    # the package the first run registered, served as registered once read Approved; rejected, not served
    "a registered package served": [(alone("approval"), {"answer": "approve"}), (FROM_PACKAGE, {})],
    "a rejected package not served": [(alone("approval"), {"answer": "reject"}), (FROM_PACKAGE, {})],
    # a deployment whose models another account serves: each group registered in is shared with it
    "package groups shared": [(DEMO, {"answer": "approve"})],
    "segments: package groups shared": [(segmented(), {})],
    # the summary function may not be invoked: the run goes on without it
    "segments: summary refused": [(edited(segmented(), {"quality_gate": DELETE}), {"deny": ["lambda:InvokeFunction"]})],
}


def throttled_runs(path: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Runs along `path`, the last one with the first call of each API the path reaches throttled."""
    item = tuned() if path == "tuning" else cached(DEMO) if path == "cached stages" else DEMO
    if path == "an autoscaled endpoint":  # the deploy alone: the rest of the run reaches none of its APIs
        scaled = {"stages.deploy.mode": "async", "stages.deploy.autoscaling": SCALED}
        item = edited(alone("deploy"), scaled)
    throttled = {"answer": "approve", "throttle": THROTTLE_PATHS[path]}
    if path in ("an endpoint and its schedule exist", "an autoscaled endpoint"):
        return [(item, {"answer": "approve"}), (item, throttled)]
    if path == "groups shared":  # a deployment whose models another account serves (SCENARIO_SETTINGS)
        return [(alone("register"), throttled)]
    if path == "a registered package":  # registered by a first run, then served
        return [(alone("approval"), {"answer": "approve"}), (FROM_PACKAGE, throttled)]
    if path == "a failed endpoint":
        return [(item, {"answer": "approve", "endpoint": "failed"}), (item, throttled)]
    if path == "monitoring switched off":
        return [(item, {"answer": "approve"}), (edited(item, {"stages.monitoring.run": False}), throttled)]
    return [(item, throttled)]


def throttled_api(failure: dict[str, Any]) -> str:
    """The API a Task's failure came from, as --throttle names it: "sagemaker:createTrainingJob"."""
    return f"{failure['resourceType'].removeprefix('aws-sdk:')}:{failure['resource'].split('.')[0]}"


def throttle_error(api: str) -> str:
    """The error name AWS reports for a throttled call through the integration the definition uses
    for `api` ("Using AWS SDK service integrations" and "Handling errors", Step Functions guide)."""
    service = api.split(":")[0]
    if service == "lambda":
        return "Lambda.TooManyRequestsException"
    if service == "dynamodb":  # the optimised integration: DynamoDB.<error> ("Call DynamoDB APIs with Step Functions")
        return "DynamoDB.ThrottlingException"
    resources = policy.task_resources(DEFINITION)
    if f"aws-sdk:{api}" in resources:
        name = asl.SDK_SERVICES[service]
        return f"{name}.{name}Exception"  # throttling is not in the API's model
    return "SageMaker.AmazonSageMakerException"  # the optimised integration's unmodelled errors


@dataclass
class Outcome:
    reports: list[RunReport]
    endpoints: dict[str, tuple[str, str]]  # name -> status, config
    package_statuses: list[str]
    transform_jobs: list[str]  # statuses
    alarms: dict[str, dict[str, Any]]  # name -> as DescribeAlarms shows it
    keys: set[str]

    @property
    def report(self) -> RunReport:
        return self.reports[-1]

    def notification(self, subject: str) -> dict[str, Any]:
        (found,) = [n["message"] for n in self.report.notifications if n["subject"] == subject]
        return found


# Scenarios of a deployment set up otherwise than the local default.
SHARING = replace(SETTINGS, model_consumer_accounts="444455556666")
SCENARIO_SETTINGS = {
    name: SHARING
    for name in ("package groups shared", "segments: package groups shared", "throttled once: groups shared")
}


@cache
def scenario(name: str) -> Outcome:
    with LocalRuns(SCENARIO_SETTINGS.get(name, SETTINGS)) as local:
        local.sagemaker.create_model(
            ModelName=EXISTING_MODEL,
            ExecutionRoleArn=local.settings.sagemaker_role_arn,
            PrimaryContainer={"Image": local.settings.default_image_uri},
        )
        cloudwatch = boto3.client("cloudwatch", region_name=local.settings.region)
        cloudwatch.put_metric_alarm(
            AlarmName=TEAM_ALARM,
            Namespace="AWS/SageMaker",
            MetricName="Invocation4XXErrors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        runs = SCENARIOS[name] or throttled_runs(name.removeprefix("throttled once: "))
        for item, _ in runs:
            seed_inputs(local, item)
        reports: list[RunReport] = []
        for item, options in runs:
            if "rerun_from" in options:
                reports.append(local.run_input(rerun_input(local, reports[-1], item, options["rerun_from"])))
            else:
                reports.append(local.run(item, **options))
        endpoints = {
            e["EndpointName"]: local.sagemaker.describe_endpoint(EndpointName=e["EndpointName"])
            for e in local.sagemaker.list_endpoints()["Endpoints"]
        }
        packages = [
            package
            for group in local.sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
            for package in local.sagemaker.list_model_packages(ModelPackageGroupName=group["ModelPackageGroupName"])[
                "ModelPackageSummaryList"
            ]
        ]
        transforms = local.sagemaker.list_transform_jobs()["TransformJobSummaries"]
        alarms = cloudwatch.describe_alarms()["MetricAlarms"]
        objects = local.s3.list_objects_v2(Bucket=local.settings.bucket).get("Contents", [])
    return Outcome(
        reports=reports,
        endpoints={name: (e["EndpointStatus"], e["EndpointConfigName"]) for name, e in endpoints.items()},
        package_statuses=[p["ModelApprovalStatus"] for p in packages],
        transform_jobs=[t["TransformJobStatus"] for t in transforms],
        alarms={alarm["AlarmName"]: alarm for alarm in alarms if alarm["AlarmName"] != TEAM_ALARM},
        keys={o["Key"] for o in objects},
    )


def rerun_input(local: LocalRuns, earlier: RunReport, item: dict[str, Any], stage: str) -> dict[str, Any]:
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{earlier.execution_name}"
    described = runs.from_description(local.sfn.describe_execution(executionArn=arn))
    planned = rerun.plan_rerun(
        described, earlier.history, local.definition, item, local.settings, stage, lambda _: False
    )
    return planned.execution_input


def tasks_entered(report: RunReport) -> set[str]:
    return {state for state in report.states if asl.states(DEFINITION)[state]["Type"] == "Task"}


@pytest.mark.parametrize("name", ["all stages, model from training", "all stages, model from tuning"])
def test_all_stages_run_in_order_and_the_success_summary_carries_every_result(name: str) -> None:
    outcome = scenario(name)
    report = outcome.report
    running = [stage for stage in STAGES if SCENARIOS[name][0][0]["stages"][stage]["run"]]

    assert report.status == "SUCCEEDED", report.cause
    positions = [report.states.index(first_task(stage)) for stage in running if stage != "deploy"]
    assert positions == sorted(positions)  # batch transform and deploy run in parallel, after create model
    summary = outcome.notification("Pipeline run succeeded")
    assert summary["execution_name"] == report.execution_name
    results = summary["results"]
    assert results["quality_gate"]["met"] is True
    assert results["approval"]["approved"] is True
    assert "-transform-" in results["serve"]["batch_transform"]["job_name"]
    assert results["serve"]["deploy"]["endpoint"]["status"] == "InService"
    if "training" in running:  # the trained model is in S3 where create model and register point
        assert results["training"]["model_data_url"].split("/", 3)[3] in outcome.keys
    (endpoint,) = outcome.endpoints.values()
    assert endpoint == ("InService", results["serve"]["deploy"]["endpoint"]["config"])
    assert outcome.package_statuses == ["Approved"]


def test_tuning_copies_the_best_jobs_model_to_where_the_model_is_created_from() -> None:
    outcome = scenario("all stages, model from tuning")
    tuning = outcome.notification("Pipeline run succeeded")["results"]["tuning"]
    run_folder = f"runs/{DEMO['consumption_pipeline_name']}/{outcome.report.execution_name}"
    assert f"{run_folder}/tuning/{tuning['best_training_job']}/output/model.tar.gz" in outcome.keys
    assert f"{run_folder}/tuning/best/model.tar.gz" in outcome.keys
    # The copy (the model-copy function) records where the model went and its size.
    assert tuning["model"]["model_data_url"].endswith(f"/{run_folder}/tuning/best/model.tar.gz")
    assert tuning["model"]["bytes"] > 0


def test_batch_transform_and_deploy_run_together_in_one_parallel_state() -> None:
    report = scenario("all stages, model from training").report
    serve = report.states.index("Serve")
    assert {"Batch transform", "Create endpoint config"} <= set(report.states[serve:])
    results = scenario("all stages, model from training").notification("Pipeline run succeeded")["results"]["serve"]
    assert results["batch_transform"]["job_name"] and results["deploy"]["endpoint"]["status"] == "InService"


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_alone_enters_only_its_own_tasks(stage: str) -> None:
    outcome = scenario(f"{stage} alone")
    with_it = {"approval": {"register"}, "evaluation": {"quality_gate"}}.get(stage, set())
    own = {task for s in {stage} | with_it for task in TASKS[s]}
    own |= {"Create model package group", "Find endpoint", "Notify success"}  # the stage's own helpers
    if stage == "deploy":  # a deploy without monitoring removes it (here: nothing to remove)
        own |= {"Find schedule to remove", "Remove drift alarm"}
    if stage == "monitoring":  # it watches what a deploy deployed
        own |= set(TASKS["deploy"])
    assert outcome.report.status == "SUCCEEDED", outcome.report.cause
    entered = tasks_entered(outcome.report)
    assert first_task(stage) in entered
    assert entered <= own, entered - own


@pytest.mark.parametrize("stage", FAILABLE)
def test_a_failing_stage_fails_the_run_notifies_and_runs_nothing_after_it(stage: str) -> None:
    outcome = scenario(f"{stage} fails")
    report = outcome.report

    assert report.status == "FAILED"
    assert report.error is not None and report.error.startswith(f"{stage}.")
    assert f"simulated failure of {stage}" in (report.cause or "")
    failure = outcome.notification("Pipeline run failed")
    assert failure["failed_stage"] == stage and failure["execution_name"] == report.execution_name
    assert f"simulated failure of {stage}" in failure["cause"]
    assert "Notify success" not in report.states
    order = [*STAGES[: STAGES.index("create_model") + 1], "batch_transform", "deploy", "monitoring"]
    if stage == "quality_gate":
        later = order[order.index("register") :]
    elif stage in SERVING:
        later = ["monitoring"]  # the other serving stage runs beside it: see the test below
    else:
        later = order[order.index(stage) + 1 :]
    assert not {first_task(s) for s in later} & set(report.states)
    if stage not in ("batch_transform", "monitoring"):  # (deploy fails at its first call, before any endpoint)
        assert outcome.endpoints == {}


def test_each_serving_stage_finishes_when_the_other_fails_and_the_run_then_fails_naming_it() -> None:
    """In a Parallel, a failing branch stops its sibling: a failed transform must not leave an endpoint
    update unverified, nor a failed deploy kill a running transform job."""
    transform_failed, deploy_failed = scenario("batch_transform fails"), scenario("deploy fails")
    endpoint = DEMO["stages"]["deploy"]["endpoint_name"]

    assert transform_failed.report.error == "batch_transform.States.TaskFailed"  # the job ended Failed
    assert {"Check endpoint", "Smoke test"} <= set(transform_failed.report.states)
    assert transform_failed.endpoints[endpoint][0] == "InService"

    assert deploy_failed.report.error == "deploy.SimulatedFailure"
    assert deploy_failed.transform_jobs == ["Completed"]

    for outcome in (transform_failed, deploy_failed):
        assert [n["subject"] for n in outcome.report.notifications].count("Pipeline run failed") == 1


def test_when_both_serving_stages_fail_the_run_names_both_and_notifies_once() -> None:
    outcome = scenario("both serving stages fail")
    assert (outcome.report.status, outcome.report.error) == ("FAILED", "batch_transform,deploy.StagesFailed")
    failure = outcome.notification("Pipeline run failed")
    assert failure["failed_stage"] == "batch_transform,deploy"
    assert (
        failure["cause"].startswith("batch_transform: States.TaskFailed: ")
        and " | deploy: SimulatedFailure: " in (failure["cause"])
    )


def test_a_deployed_endpoint_gets_its_alarms_and_a_blue_green_update_rolls_back_on_them() -> None:
    outcome = scenario("all stages, model from training")
    endpoint = DEMO["stages"]["deploy"]["endpoint_name"]
    endpoint_alarms = {name: alarm for name, alarm in outcome.alarms.items() if name.startswith(endpoint)}
    thresholds = {name: alarm["Threshold"] for name, alarm in endpoint_alarms.items()}
    assert thresholds == {f"{endpoint}-5xx-errors": 1, f"{endpoint}-model-latency": 500_000}  # the item's 500 ms
    for alarm in endpoint_alarms.values():
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": endpoint,
            "VariantName": "AllTraffic",
        }
    assert outcome.report.states.index("Put latency alarm") < outcome.report.states.index("Create endpoint")


def test_a_rollback_alarm_the_item_names_must_exist_before_the_endpoint_changes() -> None:
    missing, present = scenario("rollback alarm missing"), scenario("rollback alarm present")
    assert (missing.report.status, missing.report.error) == ("FAILED", "deploy.RollbackAlarmMissing")
    assert "only 2 of its rollback alarms" in missing.report.cause and "mlops-dev-gone" in missing.report.cause
    assert "Create endpoint" not in missing.report.states and missing.endpoints == {}
    assert missing.notification("Pipeline run failed")["failed_stage"] == "deploy"
    assert present.report.status == "SUCCEEDED", (present.report.error, present.report.cause)
    assert "Find rollback alarms" in present.report.states


@pytest.mark.parametrize(
    ("state", "entered", "status"),
    [
        ("in_service", "Update endpoint", "SUCCEEDED"),
        ("failed", "Delete failed endpoint", "SUCCEEDED"),
        ("updating", "Wait before finding endpoint", "FAILED"),
    ],
)
def test_a_run_deals_with_the_endpoint_an_earlier_deployment_left(state: str, entered: str, status: str) -> None:
    report = scenario(f"existing endpoint {state}").report
    assert entered in report.states and report.status == status, (report.error, report.cause)
    assert report.stages["deploy"] == ("succeeded" if status == "SUCCEEDED" else "failed")


@pytest.mark.parametrize(
    ("name", "outcomes"),
    [
        ("training fails", {"preprocessing": "succeeded", "training": "failed", "evaluation": "not_reached"}),
        ("gate not met", {"evaluation": "succeeded", "quality_gate": "failed", "register": "not_reached"}),
        ("both serving stages fail", {"create_model": "succeeded", "batch_transform": "failed", "deploy": "failed"}),
        ("batch_transform fails", {"batch_transform": "failed", "deploy": "succeeded"}),
        ("training alone", {"training": "succeeded", "preprocessing": "skipped", "deploy": "skipped"}),
    ],
)
def test_the_report_gives_each_stages_outcome(name: str, outcomes: dict[str, str]) -> None:
    stages = scenario(name).report.stages
    assert {stage: stages[stage] for stage in outcomes} == outcomes


def test_a_describe_endpoint_error_other_than_not_found_fails_the_deploy_with_its_cause() -> None:
    """DescribeEndpoint reports a missing endpoint as SageMaker.SageMakerException, like other errors: only
    "Could not find endpoint" creates one; anything else (here a denial) fails the deploy, notified."""
    report = scenario("endpoint cannot be described").report
    assert report.status == "FAILED" and report.error == "deploy.SageMaker.SageMakerException"
    assert "sagemaker:DescribeEndpoint" in str(report.cause) and "Create endpoint" not in report.states
    (failed,) = [note["message"] for note in report.notifications if note["subject"] == "Pipeline run failed"]
    assert failed["failed_stage"] == "deploy"


def test_a_gate_not_met_fails_naming_metric_value_and_threshold_before_anything_is_registered() -> None:
    outcome = scenario("gate not met")
    assert outcome.report.status == "FAILED"
    assert (outcome.report.error, outcome.report.cause) == ("quality_gate.QualityGateNotMet", GATE_MESSAGE)
    assert outcome.notification("Pipeline run failed")["cause"] == GATE_MESSAGE
    assert "Run register?" not in outcome.report.states and outcome.package_statuses == []


def test_an_evaluation_report_larger_than_a_state_may_hold_is_read_by_the_gate_not_the_state() -> None:
    """A state holds at most 256 KiB and States.DataLimitExceeded is not caught by States.ALL: a report
    in the state would end the run with no failure notification."""
    outcome = scenario("evaluation report above 256 KiB")
    assert outcome.report.status == "SUCCEEDED", (outcome.report.error, outcome.report.cause)
    assert outcome.notification("Pipeline run succeeded")["results"]["quality_gate"]["met"] is True


def test_an_endpoint_answer_larger_than_a_state_may_hold_is_summarised_not_kept() -> None:
    """An endpoint may answer 6 MB; the smoke test's result keeps a summary, so the run ends SUCCEEDED
    with its success notification (a whole answer over 256 KiB would end it with the terminal
    States.DataLimitExceeded after the endpoint switched)."""
    answer = "4.7812\n" * (300 * 1024 // 7)
    with LocalRuns() as local:
        seed_inputs(local, DEMO)
        # moto's documented way to set what its InvokeEndpoint answers (moto/sagemakerruntime/models.py)
        queued = requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={"results": [{"Body": answer, "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}]},
            timeout=10,
        )
        assert queued.status_code == 201
        report = local.run(DEMO, answer="approve")

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    (summary,) = [note["message"] for note in report.notifications if note["subject"] == "Pipeline run succeeded"]
    smoke = summary["results"]["serve"]["deploy"]["smoke_test"]["response"]
    assert smoke == {
        "content_type": "text/csv",
        "variant": "AllTraffic",
        "bytes": len(answer),
        "head": answer[: smoke_test.HEAD_BYTES],
        "truncated": True,
    }


def test_a_gate_met_passes_on_to_register() -> None:
    report = scenario("all stages, model from training").report
    assert report.states.index("Quality gate met?") < report.states.index("Register model")


def test_approval_answers_set_the_model_package_status() -> None:
    approved, rejected, timed_out = (
        scenario(name) for name in ("all stages, model from training", "approval rejected", "approval timed out")
    )
    assert approved.package_statuses == ["Approved"]
    assert approved.reports[0].notifications[0]["subject"] == "Model approval requested"

    assert (rejected.report.status, rejected.report.error) == ("FAILED", "approval.Rejected")
    assert rejected.report.cause == "answered by mlops-sfn local run"  # the rejecter's, as sent (SendTaskFailure)
    assert rejected.package_statuses == ["Rejected"] and "Create model" not in rejected.report.states

    assert (timed_out.report.status, timed_out.report.error) == ("FAILED", "approval.States.Timeout")
    assert timed_out.package_statuses == ["Rejected"] and timed_out.endpoints == {}  # not left pending


def test_the_approval_request_carries_the_token_and_what_the_approver_needs() -> None:
    request = scenario("approval timed out").notification("Model approval requested")
    assert request["task_token"] and request["model_package_arn"].startswith("arn:aws:sagemaker:")
    gate = request["results"]["quality_gate"]
    assert gate["met"] is True and gate["value"] == 0.75 and "regression_metrics.rmse.value" in gate["message"]
    assert "report" not in request["results"]["evaluation"]  # a summary: the report stays in S3


def test_an_endpoint_created_by_one_run_is_updated_by_the_next() -> None:
    outcome = scenario("endpoint created, then updated")
    first, second = outcome.reports
    assert "Create endpoint" in first.states and "Update endpoint" not in first.states
    assert "Update endpoint" in second.states and "Create endpoint" not in second.states
    assert second.status == "SUCCEEDED", second.cause
    configs = [
        r.notifications[-1]["message"]["results"]["serve"]["deploy"]["endpoint"]["config"] for r in (first, second)
    ]
    assert configs[0] != configs[1]
    assert outcome.endpoints[DEMO["stages"]["deploy"]["endpoint_name"]] == ("InService", configs[1])
    assert outcome.package_statuses == ["Approved", "Approved"]  # the group existed on the second run


def test_a_failed_endpoint_is_deleted_and_created_again_on_the_next_run() -> None:
    """SageMaker accepts only DeleteEndpoint on a Failed endpoint: updating it would fail every later run."""
    outcome = scenario("failed endpoint replaced")
    first, second = outcome.reports
    assert first.error == "deploy.EndpointFailed"
    assert second.status == "SUCCEEDED", second.cause
    entered = second.states
    assert entered.index("Delete failed endpoint") < entered.index("Create endpoint")
    assert "Update endpoint" not in entered
    config = second.notifications[-1]["message"]["results"]["serve"]["deploy"]["endpoint"]["config"]
    assert outcome.endpoints[DEMO["stages"]["deploy"]["endpoint_name"]] == ("InService", config)


def test_an_endpoint_still_in_progress_is_waited_for_then_the_run_fails_naming_its_state() -> None:
    report = scenario("endpoint busy").report
    assert report.error == "deploy.EndpointNotUpdatable"
    assert "is Creating: it can be neither updated nor replaced now" in report.cause
    assert "Update endpoint" not in report.states and "Create endpoint" not in report.states
    assert report.states.count("Wait before finding endpoint") == 4  # the input's max_checks, locally


@pytest.mark.parametrize(
    ("name", "error", "cause"),
    [
        ("endpoint fails", "deploy.EndpointFailed", "Endpoint mlops-dev-cal-house-price is Failed"),
        ("endpoint never ready", "deploy.EndpointWaitTimedOut", "was not InService after 4 checks"),
        ("endpoint rolled back", "deploy.EndpointRolledBack", "the update was rolled back"),
        # Final at once, not waited for until the checks run out.
        ("endpoint rollback failed", "deploy.EndpointFailed", "cal-house-price is UpdateRollbackFailed"),
    ],
)
def test_an_endpoint_that_does_not_end_in_service_on_the_new_config_fails_the_run(
    name: str, error: str, cause: str
) -> None:
    report = scenario(name).report
    assert (report.status, report.error) == ("FAILED", error)
    assert cause in (report.cause or "")
    assert scenario(name).notification("Pipeline run failed")["failed_stage"] == "deploy"


def test_a_job_refused_for_a_resource_limit_is_retried_and_the_run_succeeds() -> None:
    # SageMaker refuses a Create when an account quota is reached for the moment; the optimised
    # integration names it SageMaker.ResourceLimitExceededException, which the Retry must list.
    report = scenario("training refused once for a resource limit").report
    failed = [e["taskFailedEventDetails"] for e in report.history if e["type"] == "TaskFailed"]
    refused = [f["error"] for f in failed if "refused once" in f["cause"]]
    assert refused == ["SageMaker.ResourceLimitExceededException"], failed
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.stages["training"] == "succeeded"


@pytest.mark.parametrize("api", THROTTLEABLE)
def test_a_throttled_call_is_reported_as_aws_names_it_and_retried(api: str) -> None:
    report = scenario(f"throttled once: {throttle_path(api)}").report
    failed = [e["taskFailedEventDetails"] for e in report.history if e["type"] == "TaskFailed"]
    throttled = [f["error"] for f in failed if "--throttle" in f["cause"] and throttled_api(f) == api]
    assert throttled == [throttle_error(api)], failed
    assert report.status == "SUCCEEDED", (report.error, report.cause)


def test_the_local_sagemaker_refuses_endpoint_calls_as_sagemaker_does() -> None:
    """CreateEndpoint on an existing name, UpdateEndpoint on anything but InService (SageMaker API
    reference: a Failed endpoint accepts only DeleteEndpoint). moto itself would accept both."""
    from botocore.exceptions import ClientError

    with LocalRuns() as local:
        assert local.run(DEMO, answer="approve").status == "SUCCEEDED"
        sagemaker, settings = local.local.sagemaker, local.settings
        (endpoint,) = local.sagemaker.list_endpoints()["Endpoints"]
        name = endpoint["EndpointName"]
        config = local.sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        request = {"EndpointName": name, "EndpointConfigName": config}
        with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
            sagemaker.call("createEndpoint", request, settings.region, "123456789012")
        backend = sagemaker._backend("123456789012", settings.region)
        for status in ("Failed", "Creating", "Updating", "RollingBack"):
            backend.endpoints[name].endpoint_status = status
            with pytest.raises(ClientError, match=f"while it is {status}: only an InService endpoint"):
                sagemaker.call("updateEndpoint", request, settings.region, "123456789012")


def test_two_accounts_endpoints_of_one_name_roll_out_each_on_its_own() -> None:
    """Endpoint names are unique within an account and region (SageMaker API reference,
    CreateEndpoint): production may name its endpoint as development does, and each settles on its
    own configuration."""
    with LocalRuns() as local:
        sagemaker, region = local.local.sagemaker, local.settings.region
        configs = {}
        for account in ("123456789012", "210987654321"):
            client = sagemaker.client("sagemaker", region, account)
            role = f"arn:aws:iam::{account}:role/serving"
            client.create_model(ModelName=f"m-{account}", ExecutionRoleArn=role, PrimaryContainer={"Image": "i"})
            variant = {"VariantName": "AllTraffic", "ModelName": f"m-{account}", "InitialInstanceCount": 1}
            configs[account] = f"c-{account}"
            client.create_endpoint_config(
                EndpointConfigName=configs[account], ProductionVariants=[variant | {"InstanceType": "ml.m5.large"}]
            )
            sagemaker.call(
                "createEndpoint", {"EndpointName": "serving", "EndpointConfigName": configs[account]}, region, account
            )
        for account in configs:  # each account's endpoint settles on its own configuration
            sagemaker.advance_endpoint("serving", region, account)
            described = sagemaker.client("sagemaker", region, account).describe_endpoint(EndpointName="serving")
            assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", configs[account])


def test_the_local_sagemaker_refuses_a_second_create_of_a_name_as_sagemaker_does() -> None:
    """Each job, model and endpoint config a run made, created again under its name (a rerun or a
    redrive that did not rename it): refused in SageMaker's words; moto would record the duplicate."""
    from botocore.exceptions import ClientError

    from mlops_sfn.local.sagemaker import UNIQUE_NAMES

    with LocalRuns() as local:
        report = local.run(DEMO, answer="approve")
        assert report.status == "SUCCEEDED"
        sagemaker, region = local.local.sagemaker, local.settings.region
        created = {
            json.loads(event["taskScheduledEventDetails"]["parameters"]).get(UNIQUE_NAMES[action][0]): action
            for event in report.history
            if event["type"] == "TaskScheduled"
            and (action := event["taskScheduledEventDetails"]["resource"].split(".")[0]) in UNIQUE_NAMES
        }
        assert set(created.values()) == {
            "createProcessingJob",
            "createTrainingJob",
            "createTransformJob",
            "createModel",
            "createEndpointConfig",
        }
        refusals = {
            "createProcessingJob": "ResourceInUse.*Processing job names must be unique within an AWS account",
            "createTrainingJob": "ResourceInUse.*Training job names must be unique within an AWS account",
            "createTransformJob": "ResourceInUse.*Transform job names must be unique within an AWS account",
            "createModel": 'ValidationException.*Cannot create already existing model "arn:aws:sagemaker:',
            "createEndpointConfig": "ValidationException.*Cannot create already existing endpoint configuration",
        }
        for name, action in created.items():
            request = next(
                json.loads(event["taskScheduledEventDetails"]["parameters"])
                for event in report.history
                if event["type"] == "TaskScheduled"
                and json.loads(event["taskScheduledEventDetails"]["parameters"]).get(UNIQUE_NAMES[action][0]) == name
            )
            with pytest.raises(ClientError, match=refusals[action]):
                sagemaker.call(action, request, region, "123456789012")


def test_runs_without_notifications_gate_or_smoke_test_take_the_choices_other_way() -> None:
    success, failure = scenario("quiet success").report, scenario("quiet failure").report
    assert success.status == "SUCCEEDED" and success.notifications[0]["subject"] == "Model approval requested"
    assert len(success.notifications) == 1 and "Check quality gate" not in success.states
    assert "Smoke test" not in success.states
    assert failure.status == "FAILED" and failure.notifications == []


def test_a_disabled_stage_costs_one_transition() -> None:
    """Every stage off: one Choice per stage, then the success path."""
    report = scenario("training alone").report
    choices = [s for s in report.states if s.startswith("Run ") or s == "Serve model?"]
    assert len(choices) == len(STAGES) - 1  # batch transform and deploy share "Serve model?"
    # + Started by drift?, Training, Record training? (step caching, not asked for), Notify success?,
    # Notify success, Succeeded
    assert report.transitions == 1 + len(choices) + 2 + 3


def test_a_rerun_from_monitoring_reuses_the_deployed_endpoint_and_sets_monitoring_up() -> None:
    failed, rerun_report = scenario("rerun from monitoring after the baseline failed").reports
    assert failed.error == "monitoring.States.TaskFailed"
    assert rerun_report.status == "SUCCEEDED", rerun_report.cause
    assert {"Reused deploy", "Reused batch transform", "Baseline", "Create schedule"} <= set(rerun_report.states)
    assert not {"Create endpoint config", "Training"} & set(rerun_report.states)
    assert rerun_report.stages["deploy"] == "reused" and rerun_report.stages["monitoring"] == "succeeded"


def test_a_run_the_drift_alarm_started_says_why_first() -> None:
    report = scenario("drift run").report
    assert report.status == "SUCCEEDED", report.cause
    assert report.states[:3] == ["Started by drift?", "Notify drift", "Run preprocessing?"]
    (drift,) = [note["message"] for note in report.notifications if note["subject"] == "Model drift detected"]
    assert (drift["status"], drift["trigger"]["alarm"], drift["trigger"]["reason"]) == (
        "DRIFT",
        DRIFT.alarm,
        DRIFT.reason,
    )
    assert drift["retraining"]["training"] is True


def test_bad_options_are_refused_before_anything_starts() -> None:
    with LocalRuns() as local:
        with pytest.raises(ValueError, match="--fail tuning: not a stage this item runs"):
            local.run(DEMO, fail={"tuning"})
        with pytest.raises(ValueError, match="--fail nonsense: use one of"):
            local.run(DEMO, fail={"nonsense"})
        with pytest.raises(ValueError, match="answer 'maybe'"):
            local.run(DEMO, answer="maybe")
        assert local.sfn.list_executions(stateMachineArn=local.state_machine_arn)["executions"] == []


def test_approve_and_reject_find_the_waiting_token_from_the_execution(capsys: pytest.CaptureFixture[str]) -> None:
    with LocalRuns() as local:
        arns = []
        for verb in ("approve", "reject"):
            arn, execution_input = local.start(DEMO, answer=verb)  # nobody answers but the CLI below
            wait_for(lambda: "Ask for approval" in entered(local, arn))  # noqa: B023
            target = execution_input["execution_name"] if verb == "approve" else arn
            assert cli.main([verb, target, "--state-machine", local.state_machine_arn, "--region", "us-east-1"]) == 0
            said = {"approve": "approved", "reject": "rejected"}[verb]
            assert capsys.readouterr().out == f"{said}: execution {execution_input['execution_name']}\n"
            arns.append(arn)
        wait_for(lambda: all(status(local, arn) != "RUNNING" for arn in arns))
        assert [status(local, arn) for arn in arns] == ["SUCCEEDED", "FAILED"]
        assert cli.main(["approve", arns[0], "--region", "us-east-1"]) == 1  # nothing waits any more


def test_approve_reaches_the_deployment_of_an_outputs_file_as_the_waiting_hint_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hint a followed run prints (`mlops-sfn approve NAME --outputs FILE`) works as printed: the
    deployment's outputs name the state machine, so an execution name is enough; the comment is kept."""
    outputs = tmp_path / "outputs.json"
    with LocalRuns() as local:
        state_machine = {"value": local.state_machine_arn}
        outputs.write_text(json.dumps({"state_machine_arn": state_machine, "region": {"value": "us-east-1"}}))
        arn, execution_input = local.start(DEMO, answer="approve")  # nobody answers but the CLI below
        wait_for(lambda: "Ask for approval" in entered(local, arn))
        name = execution_input["execution_name"]
        assert cli.main(["approve", name, "--outputs", str(outputs), "--comment", "metrics checked"]) == 0
        assert capsys.readouterr().out == f"approved: execution {name} (metrics checked)\n"
        wait_for(lambda: status(local, arn) != "RUNNING")
        assert status(local, arn) == "SUCCEEDED"
        assert '"comment": "metrics checked"' in local.sfn.describe_execution(executionArn=arn)["output"]
    # A name alone, with no deployment to look it up in, is refused saying what to give.
    with pytest.MonkeyPatch.context() as patch:
        from mlops_sfn.local import deployment

        patch.setattr(deployment, "load", lambda *_: None)
        patch.delenv("MLOPS_STATE_MACHINE_ARN", raising=False)
        assert cli.main(["reject", name]) == 2
    assert f"{name} is an execution name: give the deployment it ran in (--outputs FILE" in capsys.readouterr().err


def entered(local: LocalRuns, arn: str) -> list[str]:
    events = local.sfn.get_execution_history(executionArn=arn)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def status(local: LocalRuns, arn: str) -> str:
    return str(local.sfn.describe_execution(executionArn=arn)["status"])


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_local_run_command_prints_the_report_and_exits_by_status(capsys: pytest.CaptureFixture[str]) -> None:
    item = "dynamodb_items/demo-dev-domain-cal-house-price.json"
    assert cli.main(["local", "run", item, "--approve", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "SUCCEEDED" and report["transitions"] == len(report["states"])
    assert set(report["stages"].values()) == {"succeeded", "skipped"} and report["stages"]["tuning"] == "skipped"
    assert cli.main(["local", "run", item, "--approve", "--existing-endpoint", "failed", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "Delete failed endpoint" in report["states"] and report["stages"]["deploy"] == "succeeded"
    assert cli.main(["local", "run", item, "--fail", "training"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "error: training.States.TaskFailed" in out
    assert "stages: preprocessing succeeded, training failed, tuning skipped, evaluation not_reached" in out
    assert "cause: AlgorithmError: simulated failure of training" in out


def test_each_segment_records_its_cacheable_stages_and_a_second_run_reuses_them_all() -> None:
    first, second = scenario("segments: cached stages recorded, then reused").reports
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    cacheable = set(CACHEABLE) & set(segmented()["fanout"]["stages"])
    assert cacheable == {"preprocessing", "training", "evaluation", "batch_transform"}
    for stage in cacheable:
        assert first.states.count(f"Segment: Record {STAGE[stage].title.lower()}") == 8, stage
    assert second.segments is not None and len(second.segments["reused"]) == 8
    assert all(
        reused == dict.fromkeys(cacheable, first.execution_name) for reused in second.segments["reused"].values()
    )
    assert not any(state in second.states for state in ("Segment: Preprocessing", "Segment: Training"))
    assert second.states.count("Segment: Register model") == 8  # not cacheable: each segment registers again


def test_every_state_is_entered_by_some_scenario() -> None:
    entered_states = {state for name in SCENARIOS for report in scenario(name).reports for state in report.states}
    assert ALL_STATES - entered_states == set()


# --- The role policy against the calls the scenarios made -------------------------------------------

# Permitted though no local call shows them: what AWS's .sync pollers read (reference.md section 1).
# (Tagging is seen: every Create a run makes carries the run's tags.)
NOT_SEEN_LOCALLY = {
    "sagemaker:ListTags",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    # what registering a scalable target needs of the endpoint's config: the local check of the registration
    # (task_permissions.scaling_calls) does not look the endpoint's config up
    "sagemaker:DescribeEndpointConfig",
}
# What a Distributed Map calls is no Task's call: its item reader and result writer are checked as the
# role where they call S3 (test_fanout.py), and AWS's documented statements for it are test_policy.py's.
MAP_CALLS = {action for statements in fanout.permissions().values() for s in statements for action in s["Actions"]}


def needed(details: dict[str, Any]) -> list[task_permissions.Call]:
    """What IAM checked for one scheduled task, as the local runtime checks it."""
    parameters = json.loads(details["parameters"])
    return task_permissions.needed(
        details["resourceType"], details["resource"], parameters, "us-east-1", "123456789012"
    )


def test_the_role_policy_allows_every_call_the_scenarios_made_and_nothing_beyond_them() -> None:
    from mlops_sfn.local import harness
    from mlops_sfn.tools import policy

    local = {
        "partition": "aws",
        "region": "us-east-1",
        "account_id": "123456789012",
        "sagemaker_role_arn": harness.SETTINGS.sagemaker_role_arn,
        "bucket": harness.SETTINGS.bucket,
        "sagemaker_name_prefix": harness.SETTINGS.sagemaker_name_prefix,
        "model_source_account": "123456789012",
        "model_source_prefix": harness.SETTINGS.sagemaker_name_prefix,
        "notification_topic_arn": f"arn:aws:sns:us-east-1:123456789012:{harness.PREFIX}-notifications",
        "approval_topic_arn": f"arn:aws:sns:us-east-1:123456789012:{harness.PREFIX}-approvals",
        "ledger_table_name": f"{harness.PREFIX}-run-ledger",
        "state_machine_name": f"{harness.PREFIX}-pipeline",
        **harness.FUNCTION_VARIABLES,
    }
    document = policy.render_policy(local)
    calls = [
        call
        for name in SCENARIOS
        for report in scenario(name).reports
        for event in report.history + report.child_history  # the segments' executions' calls too
        if "taskScheduledEventDetails" in event
        for call in needed(event["taskScheduledEventDetails"])
    ]
    role = "arn:aws:iam::123456789012:role/pipeline"
    refused = [
        call
        for call in calls
        if not decide(Request(role, call.action, call.resource, call.context), identity=[document]).allowed
    ]
    assert refused == []
    granted = {action for statement in document["Statement"] for action in statement["Action"]}
    assert granted - {call.action for call in calls} - MAP_CALLS == NOT_SEEN_LOCALLY


def test_two_local_runs_in_one_process_each_follow_their_own_wiring() -> None:
    """Each harness wires its own state machine: one failing training while the other runs clean,
    at the same time, does not leak from one run into the other."""
    from concurrent.futures import ThreadPoolExecutor

    item = quiet(with_stages(DEMO, {"preprocessing", "training", "evaluation"}))
    with LocalRuns() as first, LocalRuns() as second:
        assert first.state_machine_arn != second.state_machine_arn
        with ThreadPoolExecutor(2) as pool:
            failing = pool.submit(first.run, item, fail=["training"])
            clean = pool.submit(second.run, item)
            failed, succeeded = failing.result(), clean.result()

    assert failed.status == "FAILED" and failed.error is not None and failed.error.startswith("training.")
    assert succeeded.status == "SUCCEEDED", succeeded.cause
    assert succeeded.execution_name != failed.execution_name


def test_the_largest_item_the_bound_admits_fails_with_its_notification_and_every_state_under_256_kib() -> None:
    """The second trial's run: a valid item with large hyperparameters whose training fails. A failed job's
    cause repeats its request; the training stage holds it twice at most (caught into its results, where a
    spot job's fallback reads it, then its failure record), which the bound counts, so the largest item
    plan_execution admits fails within Step Functions' 256 KiB, notified, and reported as a training failure."""
    from mlops_sfn.core.plan import MAX_PLANNED_INPUT_BYTES, failure_state_bytes
    from mlops_sfn.core.problems import InvalidItem

    trigger = Manual(pipeline=load_item()["consumption_pipeline_name"], run_id="largest")

    def item(characters: int) -> dict[str, Any]:  # in values of SageMaker's longest (2,500 characters)
        full, rest = divmod(characters, 2500)
        values = {f"h{n:02}": "x" * 2500 for n in range(full)} | {"rest": "x" * rest}
        return edited(load_item(), {"stages.training.request.HyperParameters": values})

    def admitted(characters: int) -> bool:
        try:
            plan_execution(item(characters), trigger, local.settings)
        except InvalidItem:
            return False
        return True

    with LocalRuns() as local:
        low, high = 0, 100_000  # the most characters admitted: the bound's edge
        assert admitted(low) and not admitted(high)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if admitted(middle) else (low, middle)
        largest = item(low)
        planned = plan_execution(largest, trigger, local.settings)
        # at the edge: one more character adds 3 bytes (the request and two copies), or a new
        # hyperparameter's key and quotes when it starts one
        assert failure_state_bytes(planned) > MAX_PLANNED_INPUT_BYTES - 3 * len('"h00": "", ')
        report = local.run(largest, trigger=trigger, fail=["training"])

    assert report.status == "FAILED" and str(report.error).startswith("training."), (report.error, report.cause)
    assert report.stages["training"] == "failed"
    (failed,) = [note["message"] for note in report.notifications if note["subject"] == "Pipeline run failed"]
    assert failed["failed_stage"] == "training"
    states = [
        details.get("input") or details.get("output") or ""
        for event in report.history
        for details in (event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {},)
    ]
    largest_state = max(states, key=len)
    assert len(largest_state) <= failure_state_bytes(planned) <= 262_144
    # the request is in the input and in the two copies of the cause the training stage holds, no more
    assert largest_state.count("h00") == 1 + STAGE["training"].cause_copies == 3
