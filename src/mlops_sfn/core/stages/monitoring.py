"""Monitoring: the deployed endpoint's data-quality monitoring, set up after each deploy.

A baseline job (Model Monitor's analyzer) profiles the data the model learned from; a data-quality
job definition, the endpoint's monitoring schedule and its drift alarm follow. An item that deploys
without monitoring has the schedule and the alarm removed. The helpers (analyzer images, the alarm,
data capture) are core/monitoring.py's; the drift alarm's events start runs through the router.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import asl, iam, monitoring, names
from ..asl import SDK, Builder, retry_for
from ..problems import Problem
from ..stage import DEFAULT_INSTANCE_TYPE, RUN_FOLDER, Item, Stage, fill, job_limit, merge, processing_request, runs
from . import deploy, training, tuning

if TYPE_CHECKING:
    from ..plan import Settings

# Its request is the baseline job's; it also creates the data-quality job definition and the
# endpoint's monitoring schedule and drift alarm.
facts = Stage(
    "monitoring",
    operation="CreateProcessingJob",
    name_field="ProcessingJobName",
    tag="monitor",  # the baseline job and the data-quality job definition: <pipeline>-monitor-<hash>
    resource="processing-job",
    described_as="baseline job",
    watches=True,
    # Monitoring follows each deploy: set up for the new model, or, in an item without it, the endpoint's
    # schedule and drift alarm taken down (switching it off stops it at the next deploy). A run that
    # does not deploy leaves it as it is.
    follows="deploy",
)


def _within(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., None where a step is missing or not an object."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def training_data(item: Item) -> str | None:
    """Where the item's training data is (the "train" channel, else the first): the default baseline
    a deployed model's traffic is compared with. The running stage's, else the training or tuning
    block's (a rerun that reuses training trained on it too)."""
    blocks = item.get("stages", {})
    ordered = sorted((training.STAGE, tuning.STAGE), key=lambda stage: not runs(item, stage.name))
    for stage in (stage for stage in ordered if stage.name in blocks):
        request = merge(stage.framework_request(item, "check"), blocks[stage.name].get("request", {}))
        definition = request if stage.name == "training" else request.get("TrainingJobDefinition", {})
        # the rules run on requests the API check may have refused (a channel that is not an object)
        listed = definition.get("InputDataConfig") if isinstance(definition, dict) else None
        channels = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
        chosen = next((c for c in channels if c.get("ChannelName") == "train"), channels[0] if channels else {})
        uri = _within(chosen, "DataSource", "S3DataSource", "S3Uri")
        if isinstance(uri, str) and uri:
            return uri
    return None


def _defaults(item: Item, execution: str) -> dict[str, Any]:
    """The analyzer's baseline job: the dataset in, statistics.json and constraints.json out."""
    block = item.get("stages", {}).get("monitoring", {})
    request = processing_request()
    request["ProcessingResources"]["ClusterConfig"]["InstanceType"] = block.get("instance_type", DEFAULT_INSTANCE_TYPE)
    request["AppSpecification"] = {"ImageUri": block.get("image", "{analyzer_image}")}
    request["Environment"] = monitoring.baseline_environment(block.get("baseline", {}).get("header", True))
    request["ProcessingInputs"] = [
        {
            "InputName": "baseline_dataset_input",
            "S3Input": {
                "S3Uri": block.get("baseline", {}).get("dataset", "{baseline_dataset}"),
                "LocalPath": monitoring.BASELINE_INPUT,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }
    ]
    request["ProcessingOutputConfig"] = {
        "Outputs": [
            {
                "OutputName": "monitoring_output",
                "S3Output": {
                    "S3Uri": f"{RUN_FOLDER}/monitoring/baseline",
                    "LocalPath": monitoring.ANALYZER_OUTPUT,
                    "S3UploadMode": "EndOfJob",
                },
            }
        ]
    }
    return request


def _plan(item: Item, execution: str, settings: Settings) -> dict[str, Any]:
    """The baseline job, the job definition, the schedule and the drift alarm of the deployed endpoint;
    or, when the item deploys without monitoring, what to remove."""
    pipeline, prefix = item["consumption_pipeline_name"], settings.sagemaker_name_prefix
    endpoint = deploy.planned(item, execution, prefix)["endpoint_name"]
    schedule = names.stable_name(pipeline, prefix)
    alarm_name = monitoring.drift_alarm_name(pipeline, prefix)
    if not runs(item, "monitoring"):
        return {"remove": True, "schedule_name": schedule, "alarm_name": alarm_name}
    block = item["stages"]["monitoring"]
    # The analyzer of the region, and the data the model learned from, unless the item names them.
    known = {"analyzer_image": monitoring.analyzer_image(settings.region), "baseline_dataset": training_data(item)}
    result = {"request": fill(STAGE.request(item, execution), {k: v for k, v in known.items() if v})}
    baseline = result["request"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    job_definition = monitoring.job_definition_name(pipeline, execution, facts.tag or "")
    resources = result["request"]["ProcessingResources"]["ClusterConfig"]
    result["schedule_name"] = schedule
    result["job_definition_request"] = {
        "JobDefinitionName": job_definition,
        "DataQualityBaselineConfig": {
            "ConstraintsResource": {"S3Uri": f"{baseline}/constraints.json"},
            "StatisticsResource": {"S3Uri": f"{baseline}/statistics.json"},
        },
        "DataQualityAppSpecification": {
            "ImageUri": result["request"]["AppSpecification"]["ImageUri"],
            "Environment": monitoring.analyzer_environment(),
        },
        "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint, "LocalPath": monitoring.ENDPOINT_INPUT}},
        "DataQualityJobOutputConfig": {
            "MonitoringOutputs": [
                {
                    "S3Output": {
                        "S3Uri": monitoring.reports_folder(settings.bucket, pipeline),
                        "LocalPath": monitoring.ANALYZER_OUTPUT,
                        "S3UploadMode": "EndOfJob",
                    }
                }
            ]
        },
        "JobResources": {"ClusterConfig": {**resources}},
        "RoleArn": result["request"]["RoleArn"],
        # An hourly execution must end within the hour (Model Monitor: MaxRuntimeInSeconds <= 3600).
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    result["schedule_request"] = {
        "MonitoringScheduleName": schedule,
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": monitoring.schedule_expression(block.get("schedule", "hourly"))},
            "MonitoringJobDefinitionName": job_definition,
            "MonitoringType": "DataQuality",
        },
    }
    result["alarm"] = monitoring.drift_alarm(pipeline, prefix, endpoint, schedule, block)
    return result


def _states(b: Builder, then: str | None) -> str:
    """The endpoint's data-quality monitoring, created or updated after each deploy (SageMaker API
    reference: CreateDataQualityJobDefinition, Create/Update/Describe/DeleteMonitoringSchedule), or
    removed when the item deploys without it. A job definition cannot be changed, so each run creates
    its own and points the schedule at it; the one it replaces is deleted."""
    assert then is not None, "monitoring runs after the serving stages, never inside a branch"
    watch = "$.stages.monitoring"
    results = "$.results.monitoring"
    entry = b.add(
        "Monitoring on?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": f"{watch}.remove", "IsPresent": True, "Next": "Find schedule to remove"}],
            "Default": "Baseline",
        },
    )
    b.task(
        "Baseline",
        "monitoring",
        asl.sagemaker_job(facts, asl.job_name(facts), "Create job definition"),
    )
    b.task(
        "Create job definition",
        "monitoring",
        {
            "Resource": f"{SDK}sagemaker:createDataQualityJobDefinition",
            "InputPath": f"{watch}.job_definition_request",
            "ResultSelector": {"arn.$": "$.JobDefinitionArn"},
            "ResultPath": f"{results}.job_definition",
            "Next": "Find schedule",
        },
    )

    def find(name: str, missing: str, found: str) -> None:
        # DescribeMonitoringSchedule models ResourceNotFound: Step Functions names it
        # SageMaker.ResourceNotFoundException, so "no schedule yet" is told from every other error.
        b.add(
            name,
            {
                "Type": "Task",
                "Resource": f"{SDK}sagemaker:describeMonitoringSchedule",
                "Parameters": {"MonitoringScheduleName.$": f"{watch}.schedule_name"},
                "ResultSelector": {
                    "status.$": "$.MonitoringScheduleStatus",
                    "job_definition.$": "$.MonitoringScheduleConfig.MonitoringJobDefinitionName",
                },
                "ResultPath": f"{results}.existing",
                "Retry": retry_for(f"{SDK}sagemaker:describeMonitoringSchedule"),
                "Catch": [
                    {"ErrorEquals": ["SageMaker.ResourceNotFoundException"], "ResultPath": None, "Next": missing},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("monitoring")},
                ],
                "Next": found,
            },
        )

    find("Find schedule", "Create schedule", "Update schedule")
    for verb, next_state in (("create", "Put drift alarm"), ("update", "Delete replaced job definition")):
        b.task(
            f"{verb.capitalize()} schedule",
            "monitoring",
            {
                "Resource": f"{SDK}sagemaker:{verb}MonitoringSchedule",
                "InputPath": f"{watch}.schedule_request",
                "ResultPath": None,
                "Next": next_state,
            },
        )
    b.add(
        "Delete replaced job definition",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:deleteDataQualityJobDefinition",
            "Parameters": {"JobDefinitionName.$": f"{results}.existing.job_definition"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}sagemaker:deleteDataQualityJobDefinition"),
            # Tidying only: a definition left behind costs nothing and must not fail the run.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Put drift alarm"}],
            "Next": "Put drift alarm",
        },
    )
    b.task(
        "Put drift alarm",
        "monitoring",
        {
            "Resource": f"{SDK}cloudwatch:putMetricAlarm",
            "InputPath": f"{watch}.alarm",
            "ResultPath": None,
            "Next": "Monitored",
        },
    )
    b.add(
        "Monitored",
        {
            "Type": "Pass",
            "Parameters": {
                "schedule.$": f"{watch}.schedule_name",
                "job_definition.$": f"{watch}.job_definition_request.JobDefinitionName",
                "alarm.$": f"{watch}.alarm.AlarmName",
                "baseline_job.$": f"{results}.job_name",
            },
            "ResultPath": results,
            "Next": then,
        },
    )

    find("Find schedule to remove", "Remove drift alarm", "Delete schedule")
    b.task(
        "Delete schedule",
        "monitoring",
        {
            "Resource": f"{SDK}sagemaker:deleteMonitoringSchedule",
            "Parameters": {"MonitoringScheduleName.$": f"{watch}.schedule_name"},
            "ResultPath": None,
            "Next": "Remove drift alarm",
        },
    )
    b.add(
        "Remove drift alarm",
        {
            "Type": "Task",
            "Resource": f"{SDK}cloudwatch:deleteAlarms",
            "Parameters": {"AlarmNames.$": f"States.Array({watch}.alarm_name)"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}cloudwatch:deleteAlarms"),
            "Catch": [
                # DeleteAlarms models ResourceNotFound: an alarm that is not there is already removed.
                {
                    "ErrorEquals": ["CloudWatch.ResourceNotFoundException"],
                    "ResultPath": None,
                    "Next": "Monitoring removed",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("monitoring")},
            ],
            "Next": "Monitoring removed",
        },
    )
    b.add(
        "Monitoring removed",
        {"Type": "Pass", "Result": {"removed": True}, "ResultPath": results, "Next": then},
    )
    return entry


def _rules(item: Item) -> list[Problem]:
    if not runs(item, "monitoring"):
        return []
    problems = []
    if "deploy" not in item["stages"]:
        problems.append(
            Problem(
                "stages.monitoring",
                "needs the deploy stage: it watches the endpoint that stage deploys (and runs after each deploy)",
            )
        )
    if not item["stages"]["monitoring"].get("baseline", {}).get("dataset") and not training_data(item):
        problems.append(
            Problem(
                "stages.monitoring.baseline.dataset",
                "is required when the run trains on no S3 channel: the s3:// URI of the CSV data the model"
                " learned from, which the endpoint's traffic is compared with",
            )
        )
    return problems


def _check(block: dict[str, Any], settings: Settings) -> list[Problem]:
    request = block.get("request")
    if request and "{analyzer_image}" in request["AppSpecification"]["ImageUri"]:
        return [
            Problem(
                "stages.monitoring.image",
                f"no prebuilt Model Monitor analyzer is known in {settings.region}: set the analyzer image's URI "
                "(SageMaker's Docker registry paths list it per region)",
            )
        ]
    return []


def _preview(block: dict[str, Any]) -> str:
    if block.get("remove"):
        schedule, alarm = block["schedule_name"], block["alarm_name"]
        return f"no monitoring: removes schedule {schedule} and alarm {alarm} if present"
    expression = block["schedule_request"]["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
    return (
        f"{facts.described_as} {block['request'][facts.name_field or '']}, then schedule "
        f"{block['schedule_name']} ({expression}), drift alarm {block['alarm']['AlarmName']}"
    )


def _outputs(result: dict[str, Any], block: dict[str, Any], where: Any) -> str:
    if result.get("removed"):
        return "no monitoring: schedule and drift alarm removed"
    schedule, alarm = result.get("schedule", ""), result.get("alarm", "")
    return f"schedule {schedule} on {result.get('job_definition', '')}, alarm {alarm}"


def _requests(block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if "request" not in block:
        return []  # the run only removes it
    return [
        ("CreateProcessingJob", block["request"]),
        ("CreateDataQualityJobDefinition", block["job_definition_request"]),
        ("CreateMonitoringSchedule", block["schedule_request"]),
    ]


# The per-run job definitions (<pipeline>-monitor-<hash>), the endpoint's schedule (named in the
# prefix, as the endpoint is) and its drift alarm (<prefix>drift-<pipeline>, in iam.ALARMS).
_JOB_DEFINITION = iam.statement(
    "MonitoringJobDefinitions",
    ["sagemaker:CreateDataQualityJobDefinition", "sagemaker:DeleteDataQualityJobDefinition", *iam.TAGGING],
    iam.named(facts, "data-quality-job-definition"),
)
_SCHEDULE = iam.statement(
    "MonitoringSchedule",
    [*(f"sagemaker:{verb}MonitoringSchedule" for verb in ("Describe", "Create", "Update", "Delete")), *iam.TAGGING],
    [f"{iam.SAGEMAKER}:monitoring-schedule/{iam.SCOPED}"],
)
_ALARMS = iam.statement("EndpointAlarms", ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"], iam.ALARMS)

STAGE = replace(
    facts,
    defaults=_defaults,
    plan=_plan,
    limit=lambda block: job_limit(block["request"]) if "request" in block else 0,
    states=_states,
    permissions={
        **iam.sync_job(facts, "StepFunctionsGetEventsForSageMakerProcessingJobsRule"),
        "aws-sdk:sagemaker:createDataQualityJobDefinition": (_JOB_DEFINITION, iam.PASS_ROLE),
        "aws-sdk:sagemaker:deleteDataQualityJobDefinition": (_JOB_DEFINITION,),
        **{
            f"aws-sdk:sagemaker:{verb}MonitoringSchedule": (_SCHEDULE,)
            for verb in ("describe", "create", "update", "delete")
        },
        "aws-sdk:cloudwatch:putMetricAlarm": (_ALARMS,),
        "aws-sdk:cloudwatch:deleteAlarms": (_ALARMS,),
    },
    preview=_preview,
    outputs=_outputs,
    requests=_requests,
    rules=_rules,
    check=_check,
)
