"""A corpus of invalid items: each names the exact field reported and what the message says."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_sfn.core.plan import check_with_sample
from tests.conftest import DELETE, edited, load_item

TRAINING = "stages.training.request"
SEG = "segmented-house-price"

# (case, base item, changes, field reported, words in the message)
CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # the item's own fields
    (
        "name with a space",
        "demo",
        {"consumption_pipeline_name": "my pipeline"},
        "consumption_pipeline_name",
        "letters, digits",
    ),
    ("name too long", "demo", {"consumption_pipeline_name": "p" * 65}, "consumption_pipeline_name", "1-64"),
    (
        "missing name",
        "demo",
        {"consumption_pipeline_name": DELETE},
        "consumption_pipeline_name",
        "is required",
    ),
    ("schema version 2", "demo", {"schema_version": 2}, "schema_version", "allowed: 1"),
    ("Y/N flag", "demo", {"stages.training.run": "Y"}, "stages.training.run", "boolean (true or false)"),
    ("run missing", "demo", {"stages.training.run": DELETE}, "stages.training.run", "is required"),
    ("typo in a stage", "demo", {"stages.transform": {"run": True}}, "stages.transform", "allowed: approval"),
    ("unknown top-level field", "demo", {"owner": "me"}, "owner", "unknown field"),
    (
        "two completion markers",
        "demo",
        {"trigger.complete_on": {"suffix": "x", "manifest": "m.json"}},
        "trigger.complete_on",
        "exactly one of suffix or manifest",
    ),
    ("bad schedule", "demo", {"trigger.schedule": "daily"}, "trigger.schedule", "rate(N minutes"),
    # S3 URL-encodes other characters in its events, and the EventBridge rule filters on the encoded key.
    ("prefix S3 encodes", "demo", {"trigger.prefix": "input/dt=2024/"}, "trigger.prefix", "does not URL-encode"),
    ("prefix with a space", "demo", {"trigger.prefix": "input/my data/"}, "trigger.prefix", "does not URL-encode"),
    ("prefix with a leading slash", "demo", {"trigger.prefix": "/input/x/"}, "trigger.prefix", "without a leading"),
    (
        "marker S3 encodes",
        "demo",
        {"trigger.complete_on": {"manifest": "manifest (1).json"}},
        "trigger.complete_on.manifest",
        "does not URL-encode",
    ),
    (
        "suffix S3 encodes",
        "demo",
        {"trigger.complete_on": {"suffix": "_SUCCESS+"}},
        "trigger.complete_on.suffix",
        "does not URL-encode",
    ),
    ("gate comparison", "demo", {"quality_gate.comparison": "<"}, "quality_gate.comparison", "less_than"),
    (
        "approval timeout",
        "demo",
        {"stages.approval.timeout_hours": 0},
        "stages.approval.timeout_hours",
        "1 to 8760",
    ),
    (
        "alarm given as ARN",
        "demo",
        {"stages.deploy.rollback_alarms": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:x"]},
        "stages.deploy.rollback_alarms[0]",
        "not an ARN",
    ),
    (
        "endpoint name with underscore",
        "demo",
        {"stages.deploy.endpoint_name": "my_endpoint"},
        "stages.deploy.endpoint_name",
        "SageMaker name",
    ),
    # SageMaker requests, checked against botocore's model
    (
        "unknown request field",
        "demo",
        {f"{TRAINING}.HyperParameter": {}},
        f"{TRAINING}.HyperParameter",
        "did you mean 'HyperParameters'?",
    ),
    (
        "number where SageMaker wants a string",
        "demo",
        {f"{TRAINING}.HyperParameters.max_depth": 12},
        f"{TRAINING}.HyperParameters.max_depth",
        'write "12"',
    ),
    (
        "wrong type",
        "demo",
        {f"{TRAINING}.ResourceConfig": {"InstanceCount": "2"}},
        f"{TRAINING}.ResourceConfig.InstanceCount",
        "expected integer",
    ),
    (
        "unknown instance type",
        "demo",
        {f"{TRAINING}.ResourceConfig": {"InstanceType": "ml.m5.huge"}},
        f"{TRAINING}.ResourceConfig.InstanceType",
        "allowed: ml.",
    ),
    (
        "out of range",
        "demo",
        {"stages.preprocessing.request.ProcessingResources": {"ClusterConfig": {"VolumeSizeInGB": 20000}}},
        "stages.preprocessing.request.ProcessingResources.ClusterConfig.VolumeSizeInGB",
        "allowed: 1 to 16384",
    ),
    (
        "missing required member",
        "demo",
        {"stages.preprocessing.request.ProcessingInputs[0].S3Input.S3Uri": DELETE},
        "stages.preprocessing.request.ProcessingInputs[0].S3Input.S3Uri",
        "is required",
    ),
    (
        "required request member with no default",
        "train-and-batch-score",
        {"stages.batch_transform.request.TransformInput": DELETE},
        "stages.batch_transform.request.TransformInput",
        "is required",
    ),
    (
        "pattern",
        "demo",
        {f"{TRAINING}.InputDataConfig[0].DataSource.S3DataSource.S3Uri": "http//nope"},
        f"{TRAINING}.InputDataConfig[0].DataSource.S3DataSource.S3Uri",
        "pattern",
    ),
    (
        "too many tags",
        "demo",
        {f"{TRAINING}.Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]},
        f"{TRAINING}.Tags",
        "at most 50",
    ),
    (
        "job name set by the item",
        "demo",
        {f"{TRAINING}.TrainingJobName": "fixed-name"},
        f"{TRAINING}.TrainingJobName",
        "set by the framework",
    ),
    (
        "approval status set by the item",
        "demo",
        {"stages.register.request.ModelApprovalStatus": "Approved"},
        "stages.register.request.ModelApprovalStatus",
        "approval stage",
    ),
    (
        "secret in environment",
        "demo",
        {f"{TRAINING}.Environment": {"DB_PASSWORD": "hunter2"}},
        f"{TRAINING}.Environment.DB_PASSWORD",
        "Secrets Manager",
    ),
    (
        "deploy instance type",
        "demo",
        {"stages.deploy.instance_type": "ml.m5.huge"},
        "stages.deploy.instance_type",
        "allowed: ml.",
    ),
    # placeholders
    (
        "unknown placeholder",
        "demo",
        {f"{TRAINING}.HyperParameters.sagemaker_program": "{script}"},
        f"{TRAINING}.HyperParameters.sagemaker_program",
        "unknown placeholder {script}; allowed: {bucket}",
    ),
    (
        "name invalid once filled",
        "demo",
        {
            "stages.register.request.ModelPackageDescription": DELETE,
            f"{TRAINING}.OutputDataConfig": {"S3OutputPath": "{pipeline}"},
        },
        f"{TRAINING}.OutputDataConfig.S3OutputPath",
        "after placeholders are filled",
    ),
    # rules across fields
    (
        "create_model without a model source",
        "deploy-existing-model",
        {"stages.create_model.model_data_url": DELETE},
        "stages.create_model.model_data_url",
        "neither training nor tuning runs",
    ),
    (
        "model from two sources",
        "demo",
        {"stages.tuning.run": True},
        "stages.create_model",
        "training and tuning",
    ),
    (
        "model from training and a URL",
        "demo",
        {"stages.create_model.model_data_url": "s3://b/model.tar.gz"},
        "stages.create_model",
        "training and model_data_url",
    ),
    (
        "deploy without a model",
        "deploy-existing-model",
        {"stages.create_model.run": False},
        "stages.deploy",
        "needs a model",
    ),
    (
        "batch transform without a model",
        "train-and-batch-score",
        {"stages.create_model.run": False},
        "stages.batch_transform",
        "needs a model",
    ),
    (
        "deploy names a model and creates one",
        "demo",
        {"stages.deploy.model_name": "other-model"},
        "stages.deploy.model_name",
        "create_model also runs",
    ),
    (
        "approval without register",
        "demo",
        {"stages.register.run": False},
        "stages.approval",
        "needs the register stage",
    ),
    (
        "gate without evaluation",
        "demo",
        {"stages.evaluation.run": False},
        "quality_gate",
        "needs the evaluation stage",
    ),
    (
        "alarms without blue/green",
        "demo",
        {"stages.deploy.strategy": "all_at_once", "stages.deploy.rollback_alarms": ["mlops-dev-team-alarm"]},
        "stages.deploy.rollback_alarms",
        "blue_green",
    ),
    (
        "prefix without completion marker",
        "demo",
        {"trigger.complete_on": DELETE},
        "trigger.complete_on",
        "every uploaded object starts its own run",
    ),
    (
        "model placeholder without a model",
        "deploy-existing-model",
        {
            "stages.create_model.model_data_url": DELETE,
            "stages.create_model.run": False,
            "stages.deploy.run": False,
            "description": "{model_data_url}",
        },
        "description",
        "{model_data_url} needs a model",
    ),
    (
        "ModelDataUrl inside the request",
        "deploy-existing-model",
        {"stages.create_model.request.PrimaryContainer.ModelDataUrl": "s3://b/m.tar.gz"},
        "stages.create_model.request.PrimaryContainer.ModelDataUrl",
        "model_data_url instead",
    ),
    # fan-out: what cannot combine, named where to fix it
    ("a segment stage that does not run", SEG, {"stages.register.run": False}, "fanout.stages[3]", "does not run"),
    (
        "approval per segment",
        SEG,
        {"fanout.stages[3]": "approval", "stages.approval": {"run": True}},
        "fanout.stages[3]",
        "a person would answer one request per segment",
    ),
    (
        "deploy per segment",
        SEG,
        {"fanout.stages[3]": "deploy"},
        "fanout.stages[3]",
        "one endpoint per segment is not built: run deploy once, after the segments",
    ),
    (
        "a stage once after the segments",
        SEG,
        {"fanout.stages": ["preprocessing", "training", "evaluation"]},
        "stages.register",
        "runs once, after preprocessing, which runs per segment",
    ),
    # serving the segments' models from one multi-model endpoint (deploy once, after them)
    (
        "serving segments that trained nothing",
        SEG,
        {"fanout.stages": ["register"]},
        "fanout.stages",
        "add training (or tuning) to fanout.stages",
    ),
    (
        "serving with create_model per segment",
        SEG,
        {"fanout.stages": ["preprocessing", "training", "evaluation", "register", "create_model"]},
        "stages.create_model",
        "run create_model once (run: true, not in fanout.stages)",
    ),
    (
        "serving with containers",
        SEG,
        {"stages.create_model.request": {"Containers": [{"Image": "{image}"}]}},
        "stages.create_model.request.Containers",
        "one container (PrimaryContainer, in MultiModel mode)",
    ),
    (
        "serving a model the item names",
        SEG,
        {"stages.deploy.model_name": "mlops-dev-other-model"},
        "stages.deploy.model_name",
        "serves the model create_model makes of them",
    ),
    (
        "monitoring a multi-model endpoint",
        SEG,
        {"stages.monitoring": load_item("demo-dev-domain-cal-house-price")["stages"]["monitoring"]},
        "stages.monitoring",
        "Model Monitor does not monitor multi-model endpoints",
    ),
    (
        "a target model no segment has",
        SEG,
        {"stages.deploy.smoke_test.target_model": "band9.tar.gz"},
        "stages.deploy.smoke_test.target_model",
        "'band9.tar.gz' is no segment's model",
    ),
    (
        "a target model on a single-model endpoint",
        "demo",
        {"stages.deploy.smoke_test.target_model": "band1.tar.gz"},
        "stages.deploy.smoke_test.target_model",
        "this endpoint serves one model",
    ),
    (
        "a segment id naming the served models' folder",
        SEG,
        {"fanout.segments[0].id": "models"},
        "fanout.segments[0].id",
        "served models",
    ),
    ("repeated segment ids", SEG, {"fanout.segments[1].id": "band1"}, "fanout.segments[1].id", "repeats segment"),
    ("a segment id with a dot", SEG, {"fanout.segments[0].id": "band.1"}, "fanout.segments[0].id", "1-40 letters"),
    (
        "a segment value that is a list",
        SEG,
        {"fanout.segments[2].latitude_min": [1]},
        "fanout.segments[2].latitude_min",
        "string, number or boolean",
    ),
    (
        "too many segments",
        SEG,
        {"fanout.segments": [{"id": f"s{i}"} for i in range(1001)]},
        "fanout.segments",
        "at most 1000",
    ),
    ("no segments", SEG, {"fanout.segments": []}, "fanout.segments", "at least 1"),
    ("segments and a file of them", SEG, {"fanout.segments_file": "s.csv"}, "fanout", "exactly one of segments"),
    ("neither segments nor a file of them", SEG, {"fanout.segments": DELETE}, "fanout", "exactly one of segments"),
    (
        "a segments file outside the upload",
        SEG,
        {"fanout.segments": DELETE, "fanout.segments_file": "../s.csv"},
        "fanout.segments_file",
        "without '../'",
    ),
    (
        "a tolerance above 100 %",
        SEG,
        {"fanout.tolerated_failure_percentage": 101},
        "fanout.tolerated_failure_percentage",
        "0 to 100",
    ),
    ("concurrency 0", SEG, {"fanout.max_concurrency": 0}, "fanout.max_concurrency", "1 to 10000"),
    (
        "a segment value missing from one segment",
        SEG,
        {"fanout.segments[4].latitude_max": DELETE},
        "stages.preprocessing.request.AppSpecification.ContainerArguments[11]",
        "segment 'band5' has no field 'latitude_max'",
    ),
    (
        "a segment value outside the segment stages",
        SEG,
        {"description": "band {segment}"},
        "description",
        "use it in the blocks of the stages fanout.stages names",
    ),
    (
        "a segment value without fanout",
        "demo",
        {"description": "{segment.region}"},
        "description",
        "the item has no fanout",
    ),
    (
        "a segment id naming the folder of the run's segment list",
        SEG,
        {"fanout.segments[1].id": "items"},
        "fanout.segments[1].id",
        "names the folder of the run's segment list (segments/items/)",
    ),
    (
        "a segment id naming the folder of the segments' outcomes",
        SEG,
        {"fanout.segments[2].id": "results"},
        "fanout.segments[2].id",
        "name the segment otherwise",
    ),
    (
        "a segment id that makes a group name SageMaker refuses",
        SEG,
        {"fanout.segments[0].id": "band_1"},
        "stages.register.request.ModelPackageGroupName",
        "for segment 'band_1'",
    ),
    # managed spot training (stages.training.spot)
    (
        "spot as a word",
        "demo",
        {"stages.training.spot": "yes"},
        "stages.training.spot",
        "boolean (true or false) or object",
    ),
    (
        "spot set in the request",
        "demo",
        {"stages.training.request.EnableManagedSpotTraining": True},
        "stages.training.request.EnableManagedSpotTraining",
        "set stages.training.spot instead",
    ),
    (
        "a spot wait in the request of an on-demand job",
        "demo",
        {"stages.training.request.StoppingCondition.MaxWaitTimeInSeconds": 7200},
        "stages.training.request.StoppingCondition.MaxWaitTimeInSeconds",
        "set stages.training.spot instead",
    ),
    (
        "a spot wait shorter than the job's run time",
        "demo",
        {"stages.training.spot": {"max_wait_minutes": 30}},
        "stages.training.spot.max_wait_minutes",
        "less than the job's MaxRuntimeInSeconds (3600 s)",
    ),
    (
        "a spot job without checkpoints running past an hour",
        "demo",
        {
            "stages.training.spot": {"checkpoints": False},
            "stages.training.request.StoppingCondition.MaxRuntimeInSeconds": 5400,
        },
        "stages.training.spot.checkpoints",
        "may wait and run 60 minutes at most (it would take 90",
    ),
    (
        "a spot job without checkpoints given a long wait",
        "demo",
        {"stages.training.spot": {"checkpoints": False, "max_wait_minutes": 90}},
        "stages.training.spot.max_wait_minutes",
        "within 60 minutes, or give it checkpoints",
    ),
    (
        "a tuning job's spot wait beyond what trials without checkpoints may take",
        "demo",
        {"stages.tuning.spot": {"max_wait_minutes": 120}},
        "stages.tuning.spot.max_wait_minutes",
        "may wait and run 60 minutes at most",
    ),
    (
        "a tuning job's trials running longer than a spot job without checkpoints may",
        "demo",
        {
            "stages.tuning.spot": True,
            "stages.tuning.request.TrainingJobDefinition.StoppingCondition.MaxRuntimeInSeconds": 7200,
        },
        "stages.tuning.spot.max_wait_minutes",
        "may wait and run 60 minutes at most (it would take 120",
    ),
    (
        "spot set in a tuning job's definition",
        "demo",
        {"stages.tuning.request.TrainingJobDefinition.EnableManagedSpotTraining": True},
        "stages.tuning.request.TrainingJobDefinition.EnableManagedSpotTraining",
        "set stages.tuning.spot instead",
    ),
    (
        "tuning spot with checkpoints",
        "demo",
        {"stages.tuning.spot": {"checkpoints": True}},
        "stages.tuning.spot.checkpoints",
        "unknown field",
    ),
    (
        "an unknown spot setting",
        "demo",
        {"stages.training.spot": {"max_wait": 90}},
        "stages.training.spot.max_wait",
        "unknown field",
    ),
]

BASES = {"demo": "demo-dev-domain-cal-house-price"}


@pytest.mark.parametrize(("base", "changes", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_reports_the_exact_field(base: str, changes: dict[str, Any], path: str, words: str) -> None:
    item = edited(load_item(BASES.get(base, f"demo-dev-{base}")), changes)
    problems = check_with_sample(item)
    assert path in [p.path for p in problems], problems
    messages = [p.message for p in problems if p.path == path]
    assert any(words in message for message in messages), messages


@pytest.mark.parametrize(
    "name",
    [
        "demo-dev-domain-cal-house-price",
        "demo-dev-train-and-batch-score",
        "demo-dev-deploy-existing-model",
        "demo-dev-segmented-house-price",
    ],
)
def test_shipped_items_are_valid(name: str) -> None:
    assert check_with_sample(load_item(name)) == []


def test_all_problems_are_reported_at_once() -> None:
    item = edited(load_item(), {f"{TRAINING}.TrainingJobName": "x", "stages.register.run": False})
    paths = {p.path for p in check_with_sample(item)}
    assert {f"{TRAINING}.TrainingJobName", "stages.approval"} <= paths


def test_a_disabled_stage_is_still_checked() -> None:
    item = edited(load_item(), {"stages.tuning.request.HyperParameterTuningJobConfig.Strategy": "Guess"})
    assert [p.path for p in check_with_sample(item)] == ["stages.tuning.request.HyperParameterTuningJobConfig.Strategy"]


def test_an_items_checks_are_kept_per_content_version_and_an_edit_is_checked_again() -> None:
    from mlops_sfn.core import item as items

    broken = edited(load_item(), {"stages.training.request.ResourceConfig.InstanceType": "ml.bogus"})
    first = items.check_item(broken)
    assert [p.path for p in first] == ["stages.training.request.ResourceConfig.InstanceType"]
    assert items.check_item(copy.deepcopy(broken)) == first  # the same content: the same answer
    broken["stages"]["training"]["request"]["ResourceConfig"]["InstanceType"] = "ml.m5.large"  # edited in place
    assert items.check_item(broken) == []
    for size in range(1, items.CHECKED_VERSIONS + 3):  # more versions than are kept: the oldest go
        items.check_item(edited(load_item(), {"stages.training.request.ResourceConfig.VolumeSizeInGB": size}))
    assert len(items._checked) == items.CHECKED_VERSIONS
