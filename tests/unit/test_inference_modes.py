"""Inference beyond one real-time endpoint: what stages.deploy's mode, autoscaling, strategy and shift
plan, what validate refuses for each, and the role policy's autoscaling statements."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution, plan_run
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages.deploy import STAGE as DEPLOY
from mlops_sfn.tools import policy
from tests.conftest import DELETE, edited, load_item

DEMO = load_item()  # realtime, blue/green, monitored
SERVERLESS = edited(
    DEMO,
    {
        "stages.deploy.mode": "serverless",
        "stages.deploy.instance_type": DELETE,
        "stages.deploy.instance_count": DELETE,
        "stages.monitoring.run": False,
    },
)
ASYNC = edited(DEMO, {"stages.deploy.mode": "async", "stages.deploy.autoscaling": {"max": 2}})
ENDPOINT = DEMO["stages"]["deploy"]["endpoint_name"]


def deploy(item: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)["stages"]["deploy"]
    return block


def refused(item: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidItem) as raised:
        plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    return {problem.path: problem.message for problem in raised.value.problems}


def test_a_serverless_endpoint_is_planned_with_its_serverless_config_and_no_instances() -> None:
    (variant,) = deploy(SERVERLESS)["endpoint_config_request"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    sized = edited(
        SERVERLESS,
        {"stages.deploy.serverless": {"memory_mb": 6144, "max_concurrency": 20, "provisioned_concurrency": 4}},
    )
    (variant,) = deploy(sized)["endpoint_config_request"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 6144, "MaxConcurrency": 20, "ProvisionedConcurrency": 4}
    assert "serverless, 6144 MB, up to 20 at once" in DEPLOY.preview(deploy(sized))


def test_an_async_endpoint_answers_under_the_deployments_bucket_unless_the_item_says_where() -> None:
    config = deploy(ASYNC)["endpoint_config_request"]["AsyncInferenceConfig"]
    folder = f"s3://{EXAMPLE_SETTINGS.bucket}/inference/{DEMO['consumption_pipeline_name']}"
    assert config == {"OutputConfig": {"S3OutputPath": f"{folder}/output/", "S3FailurePath": f"{folder}/failures/"}}
    topic = "arn:aws:sns:us-east-1:123456789012:answers"
    chosen = edited(
        ASYNC,
        {
            "stages.deploy.async": {
                "output": "s3://{bucket}/answers/",
                "notify": {"success_topic": topic, "error_topic": topic},
                "max_concurrent_invocations_per_instance": 4,
            },
            "stages.deploy.smoke_test": DELETE,  # it reads answers only from the default folder (below)
        },
    )
    config = deploy(chosen)["endpoint_config_request"]["AsyncInferenceConfig"]
    assert config["OutputConfig"]["S3OutputPath"] == f"s3://{EXAMPLE_SETTINGS.bucket}/answers/"
    assert config["OutputConfig"]["NotificationConfig"] == {"SuccessTopic": topic, "ErrorTopic": topic}
    assert config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}
    # the smoke test asks through S3: its input written under the pipeline's folder, read back where answers go
    smoke = deploy(ASYNC)["smoke_test"]["async"]
    assert smoke["input"].startswith(f"{folder}/smoke-tests/") and smoke["output"] == f"{folder}/output/"


def test_autoscaling_plans_a_target_and_a_target_tracking_policy_on_invocations() -> None:
    scaled = deploy(
        edited(DEMO, {"stages.deploy.autoscaling": {"min": 2, "max": 6, "target_invocations_per_instance": 100}})
    )
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    assert scaled["scaling_target"] == target
    assert scaled["autoscaling"]["target"] == target | {"MinCapacity": 2, "MaxCapacity": 6}
    policy_config = scaled["autoscaling"]["policy"]["TargetTrackingScalingPolicyConfiguration"]
    assert policy_config == {
        "TargetValue": 100.0,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    assert "scale_out" not in scaled["autoscaling"]  # a realtime endpoint never has zero instances
    # every deploy plans the target to remove before an update, autoscaled or not
    assert deploy(DEMO)["scaling_target"] == target and "autoscaling" not in deploy(DEMO)


def test_an_async_endpoint_scales_on_its_backlog_and_out_from_zero_on_an_alarm() -> None:
    scaling = deploy(ASYNC)["autoscaling"]
    assert scaling["target"]["MinCapacity"] == 0
    metric = scaling["policy"]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]
    step = scaling["scale_out"]["StepScalingPolicyConfiguration"]
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]
    alarm = scaling["backlog_alarm"]
    assert (alarm["MetricName"], alarm["AlarmName"]) == (
        "HasBacklogWithoutCapacity",
        f"{ENDPOINT}-backlog-without-capacity",
    )
    assert {tag["Key"] for tag in alarm["Tags"]} >= {"mlops-sfn:execution", "mlops-sfn:stage"}  # tagged as the run's
    kept = deploy(edited(ASYNC, {"stages.deploy.autoscaling.min": 1}))["autoscaling"]
    assert "scale_out" not in kept and "backlog_alarm" not in kept


@pytest.mark.parametrize(
    ("strategy", "shift", "routing", "steps"),
    [
        (
            "canary",
            {"percent": 10, "wait_seconds": 120},
            {"Type": "CANARY", "WaitIntervalInSeconds": 120, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
            2,
        ),
        (
            "linear",
            {"percent": 25, "wait_seconds": 60},
            {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 60,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            },
            4,
        ),
    ],
)
def test_canary_and_linear_are_blue_green_updates_that_shift_in_steps(
    strategy: str, shift: dict[str, int], routing: dict[str, Any], steps: int
) -> None:
    block = deploy(edited(DEMO, {"stages.deploy.strategy": strategy, "stages.deploy.shift": shift}))
    policy_config = block["update_request"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy_config == {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": 300}
    alarms = block["update_request"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in alarms] == [f"{ENDPOINT}-5xx-errors", f"{ENDPOINT}-model-latency"]
    # the endpoint wait covers provisioning, each step's wait and the bakes
    assert block["max_checks"] * block["wait_seconds"] >= 3600 + steps * shift["wait_seconds"] + 2 * 300
    assert "DeploymentConfig" not in block["create_request"]  # a new endpoint has no traffic to shift
    shown = {"canary": "canary 10 % then the rest, 120 s apart", "linear": "linear 25 % at a time, 60 s apart"}
    assert f"({shown[strategy]}, 1 x ml.m5.large)" in DEPLOY.preview(block)


def test_a_rolling_update_replaces_the_fleet_in_batches() -> None:
    item = edited(
        DEMO,
        {
            "stages.deploy.strategy": "rolling",
            "stages.deploy.instance_count": 4,
            "stages.deploy.shift": {"instance_count": 1, "wait_seconds": 30},
        },
    )
    block = deploy(item)
    assert block["update_request"]["DeploymentConfig"]["RollingUpdatePolicy"] == {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
        "WaitIntervalInSeconds": 30,
    }
    assert "BlueGreenUpdatePolicy" not in block["update_request"]["DeploymentConfig"]
    assert block["max_checks"] * block["wait_seconds"] >= 4 * (3600 + 30)  # each batch provisioned in turn


def test_scheduled_scaling_plans_one_scheduled_action_per_entry_on_the_variants_target() -> None:
    schedule = [
        {"name": "weekday-mornings", "schedule": "cron(0 7 ? * MON-FRI *)", "timezone": "Europe/Paris", "min": 3},
        {
            "name": "january",
            "schedule": "rate(1 day)",
            "max": 2,
            "start": "2027-01-01T00:00:00Z",
            "end": "2027-02-01T00:00:00Z",
        },
    ]
    block = deploy(edited(DEMO, {"stages.deploy.autoscaling": {"max": 6, "schedule": schedule}}))
    target = block["scaling_target"]
    assert block["autoscaling"]["scheduled"] == [
        target
        | {
            "ScheduledActionName": "weekday-mornings",
            "Schedule": "cron(0 7 ? * MON-FRI *)",
            "Timezone": "Europe/Paris",
            "ScalableTargetAction": {"MinCapacity": 3},
        },
        target
        | {
            "ScheduledActionName": "january",
            "Schedule": "rate(1 day)",
            "StartTime": "2027-01-01T00:00:00Z",
            "EndTime": "2027-02-01T00:00:00Z",
            "ScalableTargetAction": {"MaxCapacity": 2},
        },
    ]
    assert "autoscaled 1-6, 2 scheduled actions" in DEPLOY.preview(block)
    assert "scheduled" not in deploy(edited(DEMO, {"stages.deploy.autoscaling": {"max": 6}}))["autoscaling"]


def scheduled(**entry: Any) -> dict[str, Any]:
    """The demo scaled with one scheduled action: the entry's fields over a valid one."""
    action = {"name": "mornings", "schedule": "cron(0 7 * * ? *)", "min": 2} | entry
    action = {field: value for field, value in action.items() if value is not DELETE}
    return edited(DEMO, {"stages.deploy.autoscaling": {"max": 4, "schedule": [action]}})


SCHEDULE = "stages.deploy.autoscaling.schedule[0]"


@pytest.mark.parametrize(
    ("item", "path", "words"),
    [
        (scheduled(min=DELETE), SCHEDULE, "neither min nor max"),
        (scheduled(min=3, max=2), f"{SCHEDULE}.min", "above max 2"),
        (scheduled(min=0), f"{SCHEDULE}.min", "only an async"),
        (scheduled(schedule="at(2027-02-30T08:00:00)"), f"{SCHEDULE}.schedule", "names no date"),
        (scheduled(schedule="cron(0 7 * * ?)"), f"{SCHEDULE}.schedule", "cron(minutes hours"),
        (scheduled(schedule="rate(0 days)"), f"{SCHEDULE}.schedule", "rate(N"),
        (scheduled(schedule="rate(1 week)"), f"{SCHEDULE}.schedule", "rate(N"),
        (scheduled(name="a/b"), f"{SCHEDULE}.name", "none of : / |"),
        (scheduled(timezone="Europe Paris"), f"{SCHEDULE}.timezone", "IANA"),
        (scheduled(start="2027-01-01 00:00"), f"{SCHEDULE}.start", "yyyy-mm-ddThh:mm:ssZ"),
        (scheduled(start="2027-13-01T00:00:00Z"), f"{SCHEDULE}.start", "names no date"),
        (
            scheduled(start="2027-02-01T00:00:00Z", end="2027-01-01T00:00:00Z"),
            f"{SCHEDULE}.end",
            "not after start",
        ),
        (
            edited(
                DEMO,
                {
                    "stages.deploy.autoscaling": {
                        "max": 4,
                        "schedule": [{"name": "x", "schedule": "rate(1 day)", "min": 1}] * 2,
                    }
                },
            ),
            "stages.deploy.autoscaling.schedule[1].name",
            "names an earlier entry too",
        ),
    ],
)
def test_a_scheduled_action_aws_would_refuse_or_misread_is_refused_naming_its_field(
    item: dict[str, Any], path: str, words: str
) -> None:
    problems = refused(item)
    assert path in problems and words in problems[path], problems


@pytest.mark.parametrize(
    ("item", "path", "words"),
    [
        (
            edited(SERVERLESS, {"stages.deploy.instance_type": "ml.m5.large"}),
            "stages.deploy.instance_type",
            "has no instances",
        ),
        (
            edited(SERVERLESS, {"stages.deploy.autoscaling": {"max": 2}}),
            "stages.deploy.autoscaling",
            "scales with its requests",
        ),
        (edited(SERVERLESS, {"stages.monitoring.run": True}), "stages.deploy.mode", "no data capture"),
        (
            edited(
                SERVERLESS,
                {"stages.deploy.strategy": "rolling", "stages.deploy.shift": {"percent": 25, "wait_seconds": 0}},
            ),
            "stages.deploy.strategy",
            "cannot be updated rolling",
        ),
        (
            edited(SERVERLESS, {"stages.deploy.serverless": {"max_concurrency": 2, "provisioned_concurrency": 3}}),
            "stages.deploy.serverless.provisioned_concurrency",
            "above max_concurrency 2",
        ),
        (
            edited(SERVERLESS, {"stages.deploy.serverless.memory_mb": 1500}),
            "stages.deploy.serverless.memory_mb",
            "1024",
        ),
        (edited(DEMO, {"stages.deploy.serverless": {}}), "stages.deploy.serverless", 'set mode "serverless"'),
        (edited(DEMO, {"stages.deploy.async": {}}), "stages.deploy.async", 'set mode "async"'),
        (
            edited(DEMO, {"stages.deploy.autoscaling": {"min": 0, "max": 2}}),
            "stages.deploy.autoscaling.min",
            "only an async",
        ),
        (
            edited(DEMO, {"stages.deploy.autoscaling": {"min": 3, "max": 2}}),
            "stages.deploy.autoscaling.min",
            "above max 2",
        ),
        (
            edited(ASYNC, {"stages.deploy.autoscaling.target_invocations_per_instance": 5}),
            "stages.deploy.autoscaling.target_invocations_per_instance",
            "target_backlog_per_instance",
        ),
        (edited(DEMO, {"stages.deploy.strategy": "canary"}), "stages.deploy.shift", "canary needs its step"),
        (
            edited(DEMO, {"stages.deploy.shift": {"percent": 10, "wait_seconds": 0}}),
            "stages.deploy.shift",
            "blue_green shifts no traffic in steps",
        ),
        (
            edited(
                DEMO, {"stages.deploy.strategy": "canary", "stages.deploy.shift": {"percent": 60, "wait_seconds": 0}}
            ),
            "stages.deploy.shift.percent",
            "at most 50 %",
        ),
        (
            edited(
                DEMO, {"stages.deploy.strategy": "linear", "stages.deploy.shift": {"percent": 5, "wait_seconds": 0}}
            ),
            "stages.deploy.shift.percent",
            "10-50 %",
        ),
        (
            edited(
                DEMO,
                {
                    "stages.deploy.strategy": "rolling",
                    "stages.deploy.instance_count": 2,
                    "stages.deploy.shift": {"instance_count": 2, "wait_seconds": 0},
                },
            ),
            "stages.deploy.shift.instance_count",
            "2 of instance_count 2 is 100 %",
        ),
        (
            edited(
                DEMO,
                {
                    "stages.deploy.strategy": "linear",
                    "stages.deploy.shift": {"percent": 20, "instance_count": 1, "wait_seconds": 0},
                },
            ),
            "stages.deploy.shift",
            "one of them",
        ),
        (edited(DEMO, {"stages.deploy.strategy": "all_at_once"}), "stages.deploy.rollback_alarms", None),
    ],
)
def test_what_aws_refuses_for_each_mode_and_strategy_is_refused_naming_the_field(
    item: dict[str, Any], path: str, words: str | None
) -> None:
    if words is None:  # the demo names no rollback alarms: all_at_once is fine without them
        plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
        with_alarms = edited(item, {"stages.deploy.rollback_alarms": ["mlops-dev-team-alarm"]})
        assert "guarded update" in refused(with_alarms)[path]
        return
    problems = refused(item)
    assert path in problems and words in problems[path], problems


def test_the_estimate_bounds_an_autoscaled_endpoint_at_its_most_instances() -> None:
    plain = plan_run(DEMO, SAMPLE_TRIGGER, EXAMPLE_SETTINGS).estimate["stages"]["deploy"]
    scaled = plan_run(edited(DEMO, {"stages.deploy.autoscaling": {"max": 4}}), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    assert scaled.estimate["stages"]["deploy"] == pytest.approx(4 * plain)


def test_the_role_may_scale_only_endpoint_variants_and_register_only_with_the_target_services_calls() -> None:
    statements = {statement["Sid"]: statement for statement in policy.build()["Statement"]}
    scaling = statements["Autoscaling"]
    assert sorted(scaling["Action"]) == [
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
        "application-autoscaling:RegisterScalableTarget",
    ]
    assert scaling["Condition"] == {
        "StringEquals": {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
        }
    }
    assert "sagemaker:UpdateEndpointWeightsAndCapacities" in statements["DescribeEndpoint"]["Action"]
    assert statements["DescribeEndpoint"]["Resource"] == [
        "arn:${partition}:sagemaker:${region}:${account_id}:endpoint/${sagemaker_name_prefix}*"
    ]
    linked = statements["AutoscalingRole"]
    assert linked["Action"] == ["iam:CreateServiceLinkedRole"]
    assert linked["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }


def test_a_realtime_endpoint_may_track_a_metric_of_its_own_instead_of_invocations() -> None:
    metric = {"name": "CPUUtilization", "namespace": "/aws/sagemaker/Endpoints", "value": 60}
    scaled = deploy(edited(DEMO, {"stages.deploy.autoscaling": {"max": 3, "target_metric": metric}}))
    tracking = scaled["autoscaling"]["policy"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 60.0 and "PredefinedMetricSpecification" not in tracking
    assert tracking["CustomizedMetricSpecification"] == {
        "MetricName": "CPUUtilization",
        "Namespace": "/aws/sagemaker/Endpoints",
        "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Statistic": "Average",
    }
    both = edited(
        DEMO, {"stages.deploy.autoscaling": {"max": 3, "target_metric": metric, "target_invocations_per_instance": 9}}
    )
    assert "one target" in refused(both)["stages.deploy.autoscaling.target_metric"]
    on_async = edited(ASYNC, {"stages.deploy.autoscaling.target_metric": metric})
    assert "target_backlog_per_instance" in refused(on_async)["stages.deploy.autoscaling.target_metric"]


def test_an_async_endpoints_smoke_test_needs_the_answers_where_its_function_may_read_them() -> None:
    elsewhere = edited(ASYNC, {"stages.deploy.async": {"output": "s3://{bucket}/answers/"}})
    assert "may read answers only under" in refused(elsewhere)["stages.deploy.async.output"]
    without_test = edited(elsewhere, {"stages.deploy.smoke_test": DELETE})
    assert deploy(without_test)["endpoint_config_request"]["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == (
        f"s3://{EXAMPLE_SETTINGS.bucket}/answers/"
    )
