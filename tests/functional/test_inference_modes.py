"""Inference modes on the local AWS: a serverless and an asynchronous endpoint deployed and asked, an
endpoint's autoscaling registered after each create and update (and removed first), canary, linear and
rolling updates that move traffic in steps and roll back when an alarm fires, and what SageMaker and
Application Auto Scaling refuse, refused here too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlops_sfn.core import prices
from mlops_sfn.core.stages import STAGES
from mlops_sfn.local.harness import LocalRuns
from mlops_sfn.operate import bill
from tests.conftest import DELETE, edited, load_item

pytestmark = pytest.mark.functional

VARIANT = "AllTraffic"
MODEL = "mlops-dev-served-model"  # an existing model the deploy serves (inside the deployment's prefix)
# The demo's deploy alone (realtime, blue/green, its alarms and smoke test): nothing else runs.
DEMO = edited(
    load_item(),
    {
        **{f"stages.{stage}.run": False for stage in STAGES if stage != "deploy"},
        "quality_gate": DELETE,
        "stages.deploy.model_name": MODEL,
        # the (unused) stages that read a model still name one
        "stages.create_model.model_data_url": "s3://{bucket}/models/existing/model.tar.gz",
    },
)


@pytest.fixture(scope="module")
def local() -> Any:
    with LocalRuns() as runs:
        runs.sagemaker.create_model(
            ModelName=MODEL,
            ExecutionRoleArn=runs.settings.sagemaker_role_arn,
            PrimaryContainer={"Image": runs.settings.default_image_uri},
        )
        yield runs


def named(item: dict[str, Any], endpoint: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The item deploying its own endpoint (alarms are named after it, so each test has its own)."""
    return edited(item, {"stages.deploy.endpoint_name": f"mlops-dev-{endpoint}", **(changes or {})})


def scaling(local: LocalRuns) -> Any:
    return boto3.client("application-autoscaling", region_name=local.settings.region)


def targets(local: LocalRuns, endpoint: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = scaling(local).describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{endpoint}/variant/{VARIANT}"]
    )["ScalableTargets"]
    return found


def policies(local: LocalRuns, endpoint: str) -> list[str]:
    found = scaling(local).describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/{VARIANT}"
    )["ScalingPolicies"]
    return sorted(policy["PolicyName"] for policy in found)


def scheduled(local: LocalRuns, endpoint: str) -> dict[str, tuple[str, dict[str, int], str]]:
    """Each scheduled action: its schedule, what it sets, and when it starts (UTC; "" for no start)."""
    found = scaling(local).describe_scheduled_actions(
        ServiceNamespace="sagemaker", ResourceId=f"endpoint/{endpoint}/variant/{VARIANT}"
    )["ScheduledActions"]
    return {
        action["ScheduledActionName"]: (
            action["Schedule"],
            action["ScalableTargetAction"],
            action["StartTime"].astimezone(UTC).isoformat() if "StartTime" in action else "",
        )
        for action in found
    }


MORNINGS = {"name": "weekday-mornings", "schedule": "cron(0 7 ? * MON-FRI *)", "timezone": "Europe/Paris", "min": 2}
NIGHTS = {"name": "nights", "schedule": "cron(0 20 * * ? *)", "min": 1, "max": 2, "start": "2027-01-04T00:00:00Z"}


def served(local: LocalRuns, endpoint: str) -> dict[str, Any]:
    config = local.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    described: dict[str, Any] = local.sagemaker.describe_endpoint_config(EndpointConfigName=config)
    return described


def test_a_serverless_endpoint_is_deployed_with_its_serverless_config_and_answers_the_smoke_test(
    local: LocalRuns,
) -> None:
    item = named(
        DEMO,
        "serverless",
        {
            "stages.deploy.mode": "serverless",
            "stages.deploy.serverless": {"memory_mb": 3072, "max_concurrency": 10},
            "stages.deploy.instance_type": DELETE,
            "stages.deploy.instance_count": DELETE,
            "stages.monitoring.run": False,
        },
    )
    report = local.run(item, answer="approve")
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    (variant,) = served(local, "mlops-dev-serverless")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 10}
    assert "InstanceType" not in variant
    assert report.results["deploy"]["smoke_test"]["response"]["bytes"] > 0  # invoked like any endpoint
    # billed per request, which the bill does not count: no hosting line, and nothing it cannot price
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{report.execution_name}"
    execution_input = json.loads(local.sfn.describe_execution(executionArn=arn)["input"])
    cost = bill.run_cost(local.sagemaker, execution_input, prices.load(), local.settings.region, datetime.now(UTC))
    assert not [line for line in cost["lines"] if line.startswith("deploy:")], cost["lines"]


def test_an_async_endpoint_scaled_from_zero_gets_its_policies_and_the_alarm_that_brings_its_first_instance(
    local: LocalRuns,
) -> None:
    item = named(DEMO, "async", {"stages.deploy.mode": "async", "stages.deploy.autoscaling": {"max": 3}})
    report = local.run(item, answer="approve")
    assert report.status == "SUCCEEDED", (report.error, report.cause)
    endpoint = "mlops-dev-async"
    config = served(local, endpoint)["AsyncInferenceConfig"]["OutputConfig"]
    assert (
        config["S3OutputPath"] == f"s3://{local.settings.bucket}/inference/{DEMO['consumption_pipeline_name']}/output/"
    )
    ((target,),) = [targets(local, endpoint)]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    assert policies(local, endpoint) == [f"{endpoint}-backlog", f"{endpoint}-scale-out-from-zero"]
    cloudwatch = boto3.client("cloudwatch", region_name=local.settings.region)
    alarm = cloudwatch.describe_alarms(AlarmNames=[f"{endpoint}-backlog-without-capacity"])["MetricAlarms"][0]
    assert alarm["AlarmActions"] == [report.results["deploy"]["scale_out_policy"]["arn"]]  # the step policy
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert "output" in report.results["deploy"]["smoke_test"]["response"]  # asked through S3


def test_autoscaling_is_registered_after_a_create_removed_before_each_update_and_registered_again(
    local: LocalRuns,
) -> None:
    item = named(DEMO, "scaled", {"stages.deploy.autoscaling": {"min": 1, "max": 4, "schedule": [MORNINGS, NIGHTS]}})
    endpoint = "mlops-dev-scaled"
    first = local.run(item, answer="approve")
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    assert "Remove autoscaling" not in first.states  # a new endpoint has none
    assert first.states.index("Register scalable target") > first.states.index("Check endpoint")
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets(local, endpoint)] == [(1, 4)]
    assert policies(local, endpoint) == [f"{endpoint}-invocations"]
    assert first.states.count("Put scheduled action") == 2  # one at a time
    assert scheduled(local, endpoint) == {
        "weekday-mornings": ("cron(0 7 ? * MON-FRI *)", {"MinCapacity": 2}, ""),
        "nights": ("cron(0 20 * * ? *)", {"MinCapacity": 1, "MaxCapacity": 2}, "2027-01-04T00:00:00+00:00"),
    }
    # a blue/green update to a larger instance type: SageMaker would refuse it for a scaled variant, so the
    # run removes the autoscaling first, then registers it again on the new fleet
    bigger = edited(
        item,
        {
            "stages.deploy.instance_type": "ml.m5.xlarge",
            "stages.deploy.autoscaling.max": 6,
            "stages.deploy.autoscaling.schedule": [MORNINGS],
        },
    )
    second = local.run(bigger, answer="approve")
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    assert second.states.index("Remove autoscaling") < second.states.index("Update endpoint")
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets(local, endpoint)] == [(1, 6)]
    assert list(scheduled(local, endpoint)) == ["weekday-mornings"]  # the item's schedule, none other left
    # a plain (all at once) update registers it again too
    plain = local.run(edited(bigger, {"stages.deploy.strategy": "all_at_once"}), answer="approve")
    assert plain.status == "SUCCEEDED" and "Register scalable target" in plain.states
    # an item without autoscaling leaves the endpoint without it
    unscaled = local.run(edited(bigger, {"stages.deploy.autoscaling": DELETE}), answer="approve")
    assert unscaled.status == "SUCCEEDED" and "Register scalable target" not in unscaled.states
    assert targets(local, endpoint) == [] and policies(local, endpoint) == [] and scheduled(local, endpoint) == {}


@pytest.mark.parametrize(
    ("strategy", "shift", "count", "shares"),
    [
        ("canary", {"percent": 20, "wait_seconds": 60}, 1, [20, 100]),
        ("linear", {"percent": 25, "wait_seconds": 60}, 1, [25, 50, 75, 100]),
        ("rolling", {"instance_count": 1, "wait_seconds": 60}, 4, [25, 50, 75, 100]),
    ],
)
def test_a_guarded_update_moves_traffic_in_steps_and_rolls_back_when_its_alarm_fires(
    local: LocalRuns, strategy: str, shift: dict[str, int], count: int, shares: list[int]
) -> None:
    endpoint = f"mlops-dev-{strategy}"
    changes = {"stages.deploy.strategy": strategy, "stages.deploy.shift": shift, "stages.deploy.instance_count": count}
    item = named(DEMO, strategy, changes)
    assert local.run(item, answer="approve").status == "SUCCEEDED"  # created: nothing to shift
    healthy = local.run(item, answer="approve")
    assert healthy.status == "SUCCEEDED", (healthy.error, healthy.cause)
    arn = local.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointArn"]
    assert local.local.sagemaker.traffic[arn] == shares  # every step taken
    before = local.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    # the new fleet answers with errors: its 5xx alarm fires after the first step, and SageMaker rolls back
    failing = local.run(item, answer="approve", endpoint="errors")
    assert (failing.status, failing.error) == ("FAILED", "deploy.EndpointRolledBack"), failing.cause
    assert local.local.sagemaker.traffic[arn] == shares[:1]
    assert local.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == before
    assert f"runs {before}, not the new" in failing.cause


def test_a_canary_update_rolled_back_silently_fails_the_run(local: LocalRuns) -> None:
    item = named(
        DEMO, "silent", {"stages.deploy.strategy": "canary", "stages.deploy.shift": {"percent": 50, "wait_seconds": 0}}
    )
    assert local.run(item, answer="approve").status == "SUCCEEDED"
    report = local.run(item, answer="approve", endpoint="rolled_back")  # InService, on the old config
    assert (report.status, report.error) == ("FAILED", "deploy.EndpointRolledBack")


def test_the_local_sagemaker_refuses_endpoint_updates_as_sagemaker_does(local: LocalRuns) -> None:
    scaled = named(DEMO, "refusals", {"stages.deploy.autoscaling": {"max": 2}})
    assert local.run(scaled, answer="approve").status == "SUCCEEDED"
    endpoint = "mlops-dev-refusals"
    current = served(local, endpoint)
    model = current["ProductionVariants"][0]["ModelName"]

    def config(name: str, variant: dict[str, Any]) -> str:
        local.sagemaker.create_endpoint_config(
            EndpointConfigName=name, ProductionVariants=[{"VariantName": VARIANT, "ModelName": model, **variant}]
        )
        return name

    def refused(config_name: str, **extra: Any) -> str:
        with pytest.raises(ClientError) as raised:
            local.local.sagemaker.call(
                "updateEndpoint",
                {"EndpointName": endpoint, "EndpointConfigName": config_name, **extra},
                local.settings.region,
                "123456789012",
            )
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        return str(raised.value.response["Error"]["Message"])

    bigger = config("refusals-bigger", {"InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1})
    assert "target for auto scaling" in refused(bigger)
    serverless = config("refusals-serverless", {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}})
    assert "cannot be updated to a serverless endpoint" in refused(serverless)
    same = config("refusals-same", {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    canary = {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "WaitIntervalInSeconds": 0,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60},
        }
    }
    assert "must be 0-50%" in refused(same, DeploymentConfig={"BlueGreenUpdatePolicy": canary})
    # deregistered, the same change is allowed
    target = {"ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{endpoint}/variant/{VARIANT}"}
    scaling(local).deregister_scalable_target(**target, ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    local.local.sagemaker.call(
        "updateEndpoint",
        {"EndpointName": endpoint, "EndpointConfigName": bigger},
        local.settings.region,
        "123456789012",
    )


def test_application_auto_scaling_refuses_what_needs_a_target_nobody_registered(local: LocalRuns) -> None:
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/mlops-dev-nobody/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    for call, request in (
        ("deregister_scalable_target", target),
        (
            "put_scaling_policy",
            target
            | {
                "PolicyName": "p",
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "TargetValue": 1.0,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                },
            },
        ),
        ("put_scheduled_action", target | {"ScheduledActionName": "s", "Schedule": "rate(1 day)"}),
    ):
        with pytest.raises(ClientError) as raised:
            getattr(scaling(local), call)(**request)
        assert raised.value.response["Error"]["Code"] == "ObjectNotFoundException", call


def test_application_auto_scaling_refuses_a_201st_scheduled_action_for_one_target(local: LocalRuns) -> None:
    """ "Scheduled actions per scalable target: 200", not adjustable (Quotas for Application Auto Scaling)."""
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/mlops-dev-busy/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    client = scaling(local)
    client.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
    action = {"Schedule": "rate(1 day)", "ScalableTargetAction": {"MinCapacity": 1}}
    for number in range(200):
        client.put_scheduled_action(**target, ScheduledActionName=f"action-{number}", **action)
    client.put_scheduled_action(**target, ScheduledActionName="action-0", **action)  # changing one is no more
    with pytest.raises(ClientError) as raised:
        client.put_scheduled_action(**target, ScheduledActionName="action-200", **action)
    assert raised.value.response["Error"]["Code"] == "LimitExceededException"
    client.deregister_scalable_target(**target)
    assert client.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []


@pytest.mark.parametrize(
    "denied",
    [
        "application-autoscaling:RegisterScalableTarget",
        "sagemaker:UpdateEndpointWeightsAndCapacities",  # the target service's call, made as the role
        "iam:CreateServiceLinkedRole",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
    ],
)
def test_each_permission_autoscaling_needs_is_checked_and_a_denied_one_fails_the_deploy(
    local: LocalRuns, denied: str
) -> None:
    scaled = {"max": 2, "schedule": [NIGHTS]}
    item = named(DEMO, f"denied-{denied.split(':')[1].lower()}", {"stages.deploy.autoscaling": scaled})
    report = local.run(item, answer="approve", deny=[denied])
    assert report.status == "FAILED" and report.stages["deploy"] == "failed"
    # Application Auto Scaling models no AccessDeniedException: the SDK integration names it as its service's
    assert "is not authorized to perform" in report.cause and denied in report.cause, (report.error, report.cause)


def test_an_update_whose_autoscaling_may_not_be_removed_fails_before_the_endpoint_changes(local: LocalRuns) -> None:
    item = named(DEMO, "kept-scaling", {"stages.deploy.autoscaling": {"max": 2}})
    first = local.run(item, answer="approve")
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    config = local.sagemaker.describe_endpoint(EndpointName="mlops-dev-kept-scaling")["EndpointConfigName"]
    denied = "application-autoscaling:DeregisterScalableTarget"
    report = local.run(item, answer="approve", deny=[denied])
    assert report.status == "FAILED" and denied in report.cause and "Update endpoint" not in report.states
    assert local.sagemaker.describe_endpoint(EndpointName="mlops-dev-kept-scaling")["EndpointConfigName"] == config
