"""The execution input: which stages run, and the same input for the same item and event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_sfn.core.plan import MAX_PLANNED_INPUT_BYTES, SAMPLE_TRIGGER, failure_state_bytes, plan_execution
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.sagemaker_api import PLACEHOLDER
from mlops_sfn.core.settings import EXAMPLE_SETTINGS, Settings
from mlops_sfn.core.stages import STAGE, STAGES
from mlops_sfn.core.triggers import InvalidEvent, Manual, parse_event
from tests.conftest import DELETE, STARTING_EVENTS, edited, load_event, load_item


@pytest.mark.parametrize("fixture", STARTING_EVENTS)
def test_every_event_shape_plans_the_demo_pipeline(fixture: str) -> None:
    (trigger,) = parse_event(load_event(fixture), invocation_id="req-1")
    item = load_item()
    assert trigger.mismatch(item) is None
    first = plan_execution(item, trigger, EXAMPLE_SETTINGS)
    again = plan_execution(load_item(), parse_event(load_event(fixture), invocation_id="req-1")[0], EXAMPLE_SETTINGS)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert first["pipeline"] == "demo-dev-domain-cal-house-price"


def test_sqs_wrapping_does_not_change_the_execution() -> None:
    def name(fixture: str) -> str:
        (trigger,) = parse_event(load_event(fixture))
        return str(plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)["execution_name"])

    assert name("s3_object_created") == name("sqs_s3_object_created")
    assert name("records_legacy") == name("records_legacy_string_body") == name("sqs_records_legacy")


def test_a_new_upload_of_other_content_is_a_new_execution() -> None:
    event = load_event("s3_object_created")
    (first,) = parse_event(event)
    event["detail"]["object"]["etag"] = "another-etag"
    (second,) = parse_event(event)
    names = {plan_execution(load_item(), t, EXAMPLE_SETTINGS)["execution_name"] for t in (first, second)}
    assert len(names) == 2


def test_stages_and_run_flags() -> None:
    (trigger,) = parse_event(load_event("s3_object_created"))
    execution_input = plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)
    assert list(execution_input["run"]) == list(STAGES)
    assert [s for s, on in execution_input["run"].items() if not on] == ["tuning"]
    assert "tuning" not in execution_input["stages"]
    assert execution_input["dataset_date"] == "2024-05-31"


def test_placeholders_are_filled_from_settings_and_trigger() -> None:
    (trigger,) = parse_event(load_event("s3_object_created"))
    execution_input = plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)
    assert not PLACEHOLDER.search(json.dumps(execution_input))
    preprocessing = execution_input["stages"]["preprocessing"]["request"]
    assert preprocessing["RoleArn"] == EXAMPLE_SETTINGS.sagemaker_role_arn
    code = preprocessing["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert code == "s3://example-mlops-bucket/input/demo-dev-domain-cal-house-price/code/preprocessing.py"


def test_evaluation_reads_the_model_training_writes() -> None:
    (trigger,) = parse_event(load_event("s3_object_created"))
    execution_input = plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)
    training = execution_input["stages"]["training"]["request"]
    model = execution_input["stages"]["evaluation"]["request"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    expected = f"{training['OutputDataConfig']['S3OutputPath']}{training['TrainingJobName']}/output/model.tar.gz"
    assert model == expected


def test_manual_overrides_apply_to_that_run_only() -> None:
    (trigger,) = parse_event(load_event("manual"))
    execution_input = plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)
    assert execution_input["run"]["deploy"] is False
    assert execution_input["dataset_date"] == "2024-06-01"


def test_overrides_that_break_the_item_are_rejected() -> None:
    trigger = Manual(pipeline="p", run_id="r", overrides={"stages": {"register": {"run": False}}})
    with pytest.raises(InvalidItem) as error:
        plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)
    assert [p.path for p in error.value.problems] == ["stages.approval"]


def test_register_approval_status_follows_the_approval_stage() -> None:
    trigger = Manual(run_id="r")
    manual = plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)
    automatic = plan_execution(edited(load_item(), {"stages.approval.run": False}), trigger, EXAMPLE_SETTINGS)
    assert manual["stages"]["register"]["request"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert automatic["stages"]["register"]["request"]["ModelApprovalStatus"] == "Approved"


def test_endpoints_and_model_package_groups_stay_inside_the_deployments_prefix() -> None:
    trigger = Manual(run_id="r")
    outside = edited(
        load_item(),
        {"stages.deploy.endpoint_name": "payments-fraud", "stages.register.model_package_group": "payments-fraud"},
    )
    with pytest.raises(InvalidItem) as raised:
        plan_execution(outside, trigger, EXAMPLE_SETTINGS)
    assert sorted(problem.path for problem in raised.value.problems) == [
        "stages.deploy.endpoint_name",
        "stages.register.model_package_group",
    ]
    assert "'payments-fraud' is outside this deployment, whose names start with 'mlops-dev-'" in str(raised.value)
    # A model the item serves (create_model off) is held to the prefix too: another team's model is not.
    existing = load_item("demo-dev-deploy-existing-model")
    others = edited(existing, {"stages.create_model.run": False, "stages.deploy.model_name": "payments-model"})
    with pytest.raises(InvalidItem, match=r"stages\.deploy\.model_name: 'payments-model' is outside this deployment"):
        plan_execution(others, trigger, EXAMPLE_SETTINGS)
    ours = edited(others, {"stages.deploy.model_name": "mlops-dev-fraud-model"})
    planned = plan_execution(ours, trigger, EXAMPLE_SETTINGS)["stages"]["deploy"]
    assert planned["endpoint_config_request"]["ProductionVariants"][0]["ModelName"] == "mlops-dev-fraud-model"
    # Named through the request instead of the field: the same rule.
    request_named = edited(load_item(), {"stages.register.request": {"ModelPackageGroupName": "payments-fraud"}})
    with pytest.raises(InvalidItem, match=r"stages\.register\.model_package_group"):
        plan_execution(request_named, trigger, EXAMPLE_SETTINGS)
    # Unnamed ones default to the pipeline's name inside the prefix.
    unnamed = edited(
        load_item(), {"stages.deploy.endpoint_name": DELETE, "stages.register.model_package_group": DELETE}
    )
    planned = plan_execution(unnamed, trigger, EXAMPLE_SETTINGS)["stages"]
    assert planned["deploy"]["endpoint_name"] == "mlops-dev-demo-dev-domain-cal-house-price"
    assert planned["register"]["request"]["ModelPackageGroupName"] == "mlops-dev-demo-dev-domain-cal-house-price"
    team = Settings(**{**EXAMPLE_SETTINGS.__dict__, "sagemaker_name_prefix": "demo-dev-"})
    planned = plan_execution(unnamed, trigger, team)["stages"]
    assert planned["deploy"]["endpoint_name"] == "demo-dev-domain-cal-house-price"  # never prefixed twice


def oversized() -> dict[str, object]:
    """Hyperparameters within SageMaker's limits (100 of up to 2,500 characters) that fill a run's input."""
    values = {f"h{n}": "x" * 2500 for n in range(80)}
    return edited(load_item(), {"stages.training.request.HyperParameters": values})


def test_an_item_whose_run_input_would_pass_the_payload_limit_is_refused_naming_its_largest_block() -> None:
    """Over 256 KiB a state fails with States.DataLimitExceeded, which no Catch sees: refuse before the run."""
    with pytest.raises(InvalidItem) as raised:
        plan_execution(oversized(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    (problem,) = raised.value.problems
    assert problem.path == "stages.training"
    assert f"more than {MAX_PLANNED_INPUT_BYTES}" in problem.message and "262,144" in problem.message
    assert len(json.dumps(plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS))) < MAX_PLANNED_INPUT_BYTES


def with_hyperparameters(full: int, rest: int) -> dict[str, object]:
    """`full` hyperparameters of SageMaker's longest value (2,500 characters), one more of `rest`."""
    values = {f"h{n:02}": "x" * 2500 for n in range(full)} | {"rest": "x" * rest}
    return edited(load_item(), {"stages.training.request.HyperParameters": values})


def test_the_size_bound_counts_what_a_failure_adds_and_holds_at_its_exact_edge() -> None:
    """The second trial's run: a valid item (planned input ~136 KB) whose training failed ended in
    States.DataLimitExceeded, the failed job's cause repeating its request. The bound counts that cause:
    the largest item that passes and the smallest that is refused differ by one character."""

    def bytes_at(full: int, rest: int) -> int:  # beyond the bound, plan_execution refuses: past the edge
        try:
            planned = plan_execution(with_hyperparameters(full, rest), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
        except InvalidItem:
            return MAX_PLANNED_INPUT_BYTES + 1
        return failure_state_bytes(planned)

    full = 0
    while bytes_at(full + 1, 0) <= MAX_PLANNED_INPUT_BYTES:
        full += 1
    # a character: once in the input, twice in each copy of the cause the training stage holds
    cost = 1 + 2 * STAGE["training"].cause_copies
    fits = (MAX_PLANNED_INPUT_BYTES - bytes_at(full, 0)) // cost
    assert 0 <= fits <= 2500
    planned = plan_execution(with_hyperparameters(full, fits), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    assert MAX_PLANNED_INPUT_BYTES - cost < failure_state_bytes(planned) <= MAX_PLANNED_INPUT_BYTES
    with pytest.raises(InvalidItem, match="a failure of this stage would hold"):
        plan_execution(with_hyperparameters(full, fits + 1), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    # the trial's shape: its planned input alone was under the old bound, so nothing refused it
    assert len(json.dumps(planned).encode()) < 136 * 1024 < MAX_PLANNED_INPUT_BYTES


def test_a_run_that_could_outlast_the_execution_limit_is_refused_at_the_approval_timeout() -> None:
    """Step Functions ends a run after a year, uncaught: the approval wait plus the stages must fit."""
    longest = edited(load_item(), {"stages.approval.timeout_hours": 8760})
    with pytest.raises(InvalidItem) as raised:
        plan_execution(longest, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    (problem,) = raised.value.problems
    assert problem.path == "stages.approval.timeout_hours" and "365 days" in problem.message
    plan_execution(edited(load_item(), {"stages.approval.timeout_hours": 8000}), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)


def test_an_image_the_sagemaker_role_may_not_pull_is_refused_naming_its_field() -> None:
    trigger = Manual(run_id="r")
    elsewhere = "999999999999.dkr.ecr.us-east-1.amazonaws.com/team/trainer:3"
    item = edited(load_item(), {"stages.training.request.AlgorithmSpecification.TrainingImage": elsewhere})
    with pytest.raises(InvalidItem) as raised:
        plan_execution(item, trigger, EXAMPLE_SETTINGS)
    (problem,) = raised.value.problems
    assert problem.path == "stages.training.request.AlgorithmSpecification.TrainingImage"
    assert "add its ARN to the root variable image_repository_arns" in problem.message
    declared = EXAMPLE_SETTINGS.image_repository_arns + ",arn:aws:ecr:us-east-1:999999999999:repository/team/trainer"
    allowed = Settings(**{**EXAMPLE_SETTINGS.__dict__, "image_repository_arns": declared})
    assert (
        plan_execution(item, trigger, allowed)["stages"]["training"]["request"]["AlgorithmSpecification"][
            "TrainingImage"
        ]
        == elsewhere
    )
    other_region = elsewhere.replace("us-east-1", "eu-west-1")
    moved = edited(item, {"stages.training.request.AlgorithmSpecification.TrainingImage": other_region})
    with pytest.raises(InvalidItem, match="image_repository_arns"):
        plan_execution(moved, trigger, allowed)


def test_blue_green_rolls_back_on_the_endpoints_own_alarms_then_the_items() -> None:
    item = edited(load_item(), {"stages.deploy.rollback_alarms": ["mlops-dev-team-errors"]})
    deploy = plan_execution(item, Manual(run_id="r"), EXAMPLE_SETTINGS)["stages"]["deploy"]
    names = ["mlops-dev-cal-house-price-5xx-errors", "mlops-dev-cal-house-price-model-latency", "mlops-dev-team-errors"]
    config = deploy["deployment_config"]
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": name} for name in names]}
    assert (deploy["rollback_alarms"], deploy["rollback_alarm_count"]) == (names, 3)
    assert config["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 300


def test_every_deployed_endpoint_gets_an_errors_and_a_latency_alarm_with_the_items_thresholds() -> None:
    item = edited(load_item(), {"stages.deploy.strategy": "all_at_once", "stages.deploy.alarms": {"errors_5xx": 5}})
    deploy = plan_execution(item, Manual(run_id="r"), EXAMPLE_SETTINGS)["stages"]["deploy"]
    errors, latency = deploy["alarms"]["errors"], deploy["alarms"]["latency"]
    dimensions = [
        {"Name": "EndpointName", "Value": "mlops-dev-cal-house-price"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Invocation5XXErrors", "Sum", 5)
    assert (latency["MetricName"], latency["Threshold"]) == ("ModelLatency", 1000 * 1000)  # microseconds
    assert errors["Dimensions"] == latency["Dimensions"] == dimensions
    assert "rollback_alarms" not in deploy and "deployment_config" not in deploy  # all at once: no rollback
    outside = edited(load_item(), {"stages.deploy.rollback_alarms": ["payments-errors"]})
    with pytest.raises(InvalidItem, match=r"stages\.deploy\.rollback_alarms: 'payments-errors' is outside"):
        plan_execution(outside, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)


def test_upload_parts_and_other_prefixes_start_nothing() -> None:
    item = load_item()
    (part,) = parse_event(load_event("s3_object_created_part_of_upload"))
    assert "only the object named by trigger.complete_on" in (part.mismatch(item) or "")
    (other,) = parse_event(load_event("scheduled"))
    assert other.mismatch(load_item("demo-dev-train-and-batch-score")) is not None


def test_settings_from_environment_name_what_is_missing() -> None:
    with pytest.raises(KeyError, match="SAGEMAKER_ROLE_ARN"):
        Settings.from_environment({"ARTIFACT_BUCKET": "b", "DEFAULT_IMAGE_URI": "i", "AWS_REGION": "r"})


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ([], "expected a JSON object"),
        ({"Records": []}, "non-empty list"),
        ({"Records": [{"body": "{not json"}]}, "not JSON"),
        ({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}, "detail.bucket.name"),
        (
            {"detail-type": "Scheduled Event", "time": "2024-01-01T00:00:00Z", "detail": {}},
            "consumption_pipeline",
        ),
        ({"consumption_pipeline_name": "bad name!"}, "expected a pipeline name"),
        ({"consumption_pipeline_name": "p", "overrides": []}, "overrides"),
        ({"hello": "world"}, "unrecognised event"),
        ({"consumption_pipeline_name": "p", "dataset_date": True}, "dataset_date"),
        (
            {
                "detail-type": "Object Created",
                "source": "aws.s3",
                "detail": {"bucket": {"name": "b"}, "object": {"key": "k", "etag": {}}},
            },
            "detail.object.etag",
        ),
        (
            {
                "detail-type": "Object Created",
                "source": "aws.s3",
                "time": 5,
                "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}},
            },
            "time",
        ),
    ],
)
def test_malformed_events_are_rejected_with_the_reason(event: object, words: str) -> None:
    with pytest.raises(InvalidEvent, match=words):
        parse_event(event)


def test_a_registered_package_carries_the_serving_containers_environment_so_it_deploys_as_registered() -> None:
    """Without SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY a package deployed from the registry
    would not find its inference script."""
    stages = plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]
    (package,) = stages["register"]["request"]["InferenceSpecification"]["Containers"]
    model = stages["create_model"]["request"]["PrimaryContainer"]
    assert package["Environment"] == model["Environment"] and package["Environment"]["SAGEMAKER_PROGRAM"]
    assert package["Image"] == model["Image"] and package["ModelDataUrl"] == model["ModelDataUrl"]
    own = edited(load_item(), {"stages.register.request.InferenceSpecification": {"Containers": [{"Image": "x"}]}})
    planned = plan_execution(own, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["register"]["request"]
    assert "Environment" not in planned["InferenceSpecification"]["Containers"][0]  # the item's own wins


def test_an_item_may_pass_only_the_deployments_role_and_reach_only_its_bucket() -> None:
    """The state machine may pass only the framework's SageMaker role, which reaches only the
    framework's bucket: anything else would fail with AccessDenied mid-run."""
    foreign = edited(
        load_item(),
        {
            "stages.training.request.RoleArn": "arn:aws:iam::123456789012:role/someone-elses",
            "stages.training.request.OutputDataConfig.S3OutputPath": "s3://other-team/models/",
            "stages.create_model.request.PrimaryContainer.Environment.SAGEMAKER_SUBMIT_DIRECTORY": "s3://other-team/c.tgz",
            "stages.evaluation.report_uri": "s3://other-team/report.json",
        },
    )
    with pytest.raises(InvalidItem) as raised:
        plan_execution(foreign, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    found = {problem.path: problem.message for problem in raised.value.problems}
    assert {
        "stages.create_model.request.PrimaryContainer.Environment.SAGEMAKER_SUBMIT_DIRECTORY",
        "stages.evaluation.report_uri",
        "stages.training.request.OutputDataConfig.S3OutputPath",
        "stages.training.request.RoleArn",
        "stages.create_model.request.PrimaryContainer.ModelDataUrl",  # the model trained there
    } <= set(found)
    assert all("other-team" in message or "SageMaker role" in message for message in found.values())
    assert "not this deployment's SageMaker role" in found["stages.training.request.RoleArn"]
    assert (
        "bucket 'other-team' is outside this deployment"
        in found["stages.training.request.OutputDataConfig.S3OutputPath"]
    )
    # The deployment's own role and bucket, named explicitly, are fine.
    own = edited(
        load_item(),
        {
            "stages.training.request.RoleArn": EXAMPLE_SETTINGS.sagemaker_role_arn,
            "stages.training.request.OutputDataConfig.S3OutputPath": f"s3://{EXAMPLE_SETTINGS.bucket}/models/",
        },
    )
    plan_execution(own, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)


def access_problems(item: dict[str, Any], settings: Settings) -> dict[str, str]:
    try:
        plan_execution(item, SAMPLE_TRIGGER, settings)
    except InvalidItem as error:
        return {problem.path: problem.message for problem in error.problems}
    return {}


def test_a_declared_data_bucket_is_read_by_runs_and_never_written() -> None:
    """data_buckets grants the SageMaker role reads only: inputs there pass, outputs there are refused."""
    declared = Settings(**{**EXAMPLE_SETTINGS.__dict__, "data_buckets": "team-datasets,archive"})
    channel = "stages.training.request.InputDataConfig[0].DataSource.S3DataSource.S3Uri"
    output = "stages.preprocessing.request.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"
    reads = edited(load_item(), {channel: "s3://team-datasets/houses/"})
    assert access_problems(reads, declared) == {}
    not_declared = access_problems(reads, EXAMPLE_SETTINGS)
    assert "declare the bucket in the root variable data_buckets" in not_declared[channel]
    writes = edited(load_item(), {output: "s3://team-datasets/prepared/"})
    refused = access_problems(writes, declared)
    assert set(refused) == {output}
    assert "'team-datasets' is declared for reading (data_buckets), and a run writes here" in refused[output]
    for written in (  # every kind of location SageMaker writes
        "stages.training.request.OutputDataConfig.S3OutputPath",
        "stages.training.request.CheckpointConfig.S3Uri",
        "stages.batch_transform.request.TransformOutput.S3OutputPath",
    ):
        assert written in access_problems(edited(load_item(), {written: "s3://archive/x/"}), declared), written


def test_an_item_may_name_only_the_deployments_kms_key() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    field = "stages.training.request.OutputDataConfig.KmsKeyId"
    volume = "stages.training.request.ResourceConfig.VolumeKmsKeyId"
    foreign = edited(load_item(), {field: "arn:aws:kms:us-east-1:999999999999:key/other", volume: key})
    problems = access_problems(foreign, EXAMPLE_SETTINGS)  # a deployment without a customer-managed key
    assert "its roles may use no customer-managed key (validate reads KMS_KEY_ARN)" in problems[field]
    assert volume in problems
    keyed = Settings(**{**EXAMPLE_SETTINGS.__dict__, "kms_key_arn": key})
    assert set(access_problems(foreign, keyed)) == {field}
    by_id = edited(load_item(), {field: "1234abcd-12ab-34cd-56ef-1234567890ab", volume: "alias/aws/s3"})
    assert access_problems(by_id, keyed) == {}  # its key id, and an AWS managed key, are usable
