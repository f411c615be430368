"""Monitoring: the deployed endpoint's data-quality monitoring, set up after each deploy.

A baseline job (Model Monitor's analyzer) profiles the data the model learned from; a data-quality
job definition, the endpoint's monitoring schedule and its drift alarm follow. An item that deploys
without monitoring has the schedule and the alarm removed. The helpers (analyzer images, the alarm,
data capture) are core/monitoring.py's; the drift alarm's events start runs through the router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import iam, monitoring, names
from ..asl import SDK, Builder, retry_for
from ..problems import Problem
from ..stage import (
    DEFAULT_INSTANCE_TYPE,
    RUN_FOLDER,
    Block,
    Item,
    JobStage,
    Statements,
    Where,
    fill,
    job_limit,
    processing_request,
    runs,
)
from .shared import endpoint_name, training_data

if TYPE_CHECKING:
    from ..settings import Settings


def _defaults(item: Item) -> dict[str, Any]:
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


def _plan(stage: Monitoring, item: Item, execution: str, settings: Settings) -> Block:
    """The baseline job, the job definition, the schedule and the drift alarm of the deployed endpoint;
    or, when the item deploys without monitoring, what to remove."""
    pipeline, prefix = item["consumption_pipeline_name"], settings.sagemaker_name_prefix
    endpoint = endpoint_name(item, prefix)
    schedule = names.stable_name(pipeline, prefix)
    alarm_name = monitoring.drift_alarm_name(pipeline, prefix)
    if not runs(item, "monitoring"):
        return {"remove": True, "schedule_name": schedule, "alarm_name": alarm_name}
    block = item["stages"]["monitoring"]
    # The analyzer of the region, and the data the model learned from, unless the item names them.
    known = {"analyzer_image": monitoring.analyzer_image(settings.region), "baseline_dataset": training_data(item)}
    result = {"request": fill(stage.request(item, execution), {k: v for k, v in known.items() if v})}
    baseline = result["request"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")
    job_definition = monitoring.job_definition_name(pipeline, execution, stage.tag or "")
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


# Its request is the baseline job's; it also creates the data-quality job definition and the
# endpoint's monitoring schedule and drift alarm.
class Monitoring(JobStage):
    name = "monitoring"
    operation = "CreateProcessingJob"
    name_field = "ProcessingJobName"
    tag = "monitor"  # the baseline job and the data-quality job definition: <pipeline>-monitor-<hash>
    resource = "processing-job"
    described_as = "baseline job"
    # Monitoring follows each deploy: set up for the new model, or, in an item without it, the endpoint's
    # schedule and drift alarm taken down (switching it off stops it at the next deploy). A run that
    # does not deploy leaves it as it is.
    watches = True
    follows = "deploy"
    rule = "StepFunctionsGetEventsForSageMakerProcessingJobsRule"

    def defaults(self, item: Item, execution: str) -> dict[str, Any]:
        return _defaults(item)

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        return _plan(self, item, execution, settings)

    def limit(self, block: Block) -> int:
        return job_limit(block["request"]) if "request" in block else 0

    def requests(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        if "request" not in block:
            return []  # the run only removes it
        return [
            ("CreateProcessingJob", block["request"]),
            ("CreateDataQualityJobDefinition", block["job_definition_request"]),
            ("CreateMonitoringSchedule", block["schedule_request"]),
        ]

    def tagged(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        return self.requests(block) + ([("PutMetricAlarm", block["alarm"])] if "alarm" in block else [])

    def rules(self, item: Item) -> list[Problem]:
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

    def check(self, block: Block, settings: Settings) -> list[Problem]:
        request = block.get("request")
        if request and "{analyzer_image}" in request["AppSpecification"]["ImageUri"]:
            return [
                Problem(
                    "stages.monitoring.image",
                    f"no prebuilt Model Monitor analyzer is known in {settings.region}: set the analyzer image's"
                    " URI (SageMaker's Docker registry paths list it per region)",
                )
            ]
        return []

    def states(self, b: Builder, then: str | None) -> str:
        """The endpoint's data-quality monitoring, created or updated after each deploy (SageMaker API
        reference: CreateDataQualityJobDefinition, Create/Update/Describe/DeleteMonitoringSchedule), or
        removed when the item deploys without it."""
        assert then is not None, "monitoring runs after the serving stages, never inside a branch"
        entry = b.when("Monitoring on?", f"{WATCH}.remove", "Find schedule to remove", "Baseline")
        _setup_states(b, self, then)
        _remove_states(b, then)
        return entry

    def permissions(self) -> Statements:
        # The per-run job definitions (<pipeline>-monitor-<hash>), the endpoint's schedule (named in the
        # prefix, as the endpoint is) and its drift alarm (<prefix>drift-<pipeline>, in iam.ALARMS).
        job_definition = iam.statement(
            "MonitoringJobDefinitions",
            ["sagemaker:CreateDataQualityJobDefinition", "sagemaker:DeleteDataQualityJobDefinition", *iam.TAGGING],
            iam.named(self, "data-quality-job-definition"),
        )
        schedule = iam.statement(
            "MonitoringSchedule",
            [
                *(f"sagemaker:{verb}MonitoringSchedule" for verb in ("Describe", "Create", "Update", "Delete")),
                *iam.TAGGING,
            ],
            [f"{iam.SAGEMAKER}:monitoring-schedule/{iam.SCOPED}"],
        )
        alarms = iam.statement(
            "EndpointAlarms", ["cloudwatch:PutMetricAlarm", *iam.TAG_ALARMS, "cloudwatch:DeleteAlarms"], iam.ALARMS
        )
        return {
            **super().permissions(),
            "aws-sdk:sagemaker:createDataQualityJobDefinition": (job_definition, iam.PASS_ROLE),
            "aws-sdk:sagemaker:deleteDataQualityJobDefinition": (job_definition,),
            **{
                f"aws-sdk:sagemaker:{verb}MonitoringSchedule": (schedule,)
                for verb in ("describe", "create", "update", "delete")
            },
            "aws-sdk:cloudwatch:putMetricAlarm": (alarms,),
            "aws-sdk:cloudwatch:deleteAlarms": (alarms,),
        }

    def preview(self, block: Block) -> str:
        if block.get("remove"):
            schedule, alarm = block["schedule_name"], block["alarm_name"]
            return f"no monitoring: removes schedule {schedule} and alarm {alarm} if present"
        expression = block["schedule_request"]["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
        return (
            f"{super().preview(block)}, then schedule "
            f"{block['schedule_name']} ({expression}), drift alarm {block['alarm']['AlarmName']}"
        )

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        if result.get("removed"):
            return "no monitoring: schedule and drift alarm removed"
        schedule, alarm = result.get("schedule", ""), result.get("alarm", "")
        return f"schedule {schedule} on {result.get('job_definition', '')}, alarm {alarm}"


WATCH = "$.stages.monitoring"
RESULTS = "$.results.monitoring"


def _setup_states(b: Builder, stage: Monitoring, then: str) -> None:
    """The baseline job, then a job definition of its own (one cannot be changed) that the schedule,
    created or updated, points at; the one it replaces is deleted; then the drift alarm."""
    b.job(stage, stage.selector(), "Create job definition", name="Baseline")
    b.call(
        "Create job definition",
        "monitoring",
        f"{SDK}sagemaker:createDataQualityJobDefinition",
        input_path=f"{WATCH}.job_definition_request",
        selector={"arn.$": "$.JobDefinitionArn"},
        result=f"{RESULTS}.job_definition",
        then="Find schedule",
    )
    _find_schedule(b, "Find schedule", "Create schedule", "Update schedule")
    b.call(
        "Create schedule",
        "monitoring",
        f"{SDK}sagemaker:createMonitoringSchedule",
        input_path=f"{WATCH}.schedule_request",
        result=None,
        then="Put drift alarm",
    )
    b.call(  # UpdateMonitoringSchedule takes no Tags: a schedule keeps those it was created with
        "Update schedule",
        "monitoring",
        f"{SDK}sagemaker:updateMonitoringSchedule",
        parameters={
            "MonitoringScheduleName.$": f"{WATCH}.schedule_request.MonitoringScheduleName",
            "MonitoringScheduleConfig.$": f"{WATCH}.schedule_request.MonitoringScheduleConfig",
        },
        result=None,
        then="Delete replaced job definition",
    )
    b.add(
        "Delete replaced job definition",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:deleteDataQualityJobDefinition",
            "Parameters": {"JobDefinitionName.$": f"{RESULTS}.existing.job_definition"},
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}sagemaker:deleteDataQualityJobDefinition"),
            # Tidying only: a definition left behind costs nothing and must not fail the run.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Put drift alarm"}],
            "Next": "Put drift alarm",
        },
    )
    b.call(
        "Put drift alarm",
        "monitoring",
        f"{SDK}cloudwatch:putMetricAlarm",
        input_path=f"{WATCH}.alarm",
        result=None,
        then="Monitored",
    )
    b.add(
        "Monitored",
        {
            "Type": "Pass",
            "Parameters": {
                "schedule.$": f"{WATCH}.schedule_name",
                "job_definition.$": f"{WATCH}.job_definition_request.JobDefinitionName",
                "alarm.$": f"{WATCH}.alarm.AlarmName",
                "baseline_job.$": f"{RESULTS}.job_name",
            },
            "ResultPath": RESULTS,
            "Next": then,
        },
    )


def _find_schedule(b: Builder, name: str, missing: str, found: str) -> None:
    # DescribeMonitoringSchedule models ResourceNotFound: Step Functions names it
    # SageMaker.ResourceNotFoundException, so "no schedule yet" is told from every other error.
    b.add(
        name,
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:describeMonitoringSchedule",
            "Parameters": {"MonitoringScheduleName.$": f"{WATCH}.schedule_name"},
            "ResultSelector": {
                "status.$": "$.MonitoringScheduleStatus",
                "job_definition.$": "$.MonitoringScheduleConfig.MonitoringJobDefinitionName",
            },
            "ResultPath": f"{RESULTS}.existing",
            "Retry": retry_for(f"{SDK}sagemaker:describeMonitoringSchedule"),
            "Catch": [
                {"ErrorEquals": ["SageMaker.ResourceNotFoundException"], "ResultPath": None, "Next": missing},
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("monitoring")},
            ],
            "Next": found,
        },
    )


def _remove_states(b: Builder, then: str) -> None:
    """An item that deploys without monitoring: the endpoint's schedule and drift alarm removed."""
    _find_schedule(b, "Find schedule to remove", "Remove drift alarm", "Delete schedule")
    b.call(
        "Delete schedule",
        "monitoring",
        f"{SDK}sagemaker:deleteMonitoringSchedule",
        parameters={"MonitoringScheduleName.$": f"{WATCH}.schedule_name"},
        result=None,
        then="Remove drift alarm",
    )
    b.add(
        "Remove drift alarm",
        {
            "Type": "Task",
            "Resource": f"{SDK}cloudwatch:deleteAlarms",
            "Parameters": {"AlarmNames.$": f"States.Array({WATCH}.alarm_name)"},
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
    b.add("Monitoring removed", {"Type": "Pass", "Result": {"removed": True}, "ResultPath": RESULTS, "Next": then})


STAGE = Monitoring()
