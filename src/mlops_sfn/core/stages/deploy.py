"""Deploy: the endpoint created or updated with the run's model (a serving stage: beside batch transform).

The endpoint's alarms are put first (a blue/green update rolls back on them); the endpoint's state
decides between create, update and replace; a smoke test can follow. With monitoring on, the
endpoint config captures traffic for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import fanout, iam, monitoring, names, sagemaker_api
from ..asl import LAMBDA, SAGEMAKER, SDK, TRANSIENT, Builder, retry_for
from ..problems import Problem
from ..stage import DEFAULT_INSTANCE_TYPE, Block, Item, Stage, Statements, Where, runs
from .shared import endpoint_name, model_name

if TYPE_CHECKING:
    from ..settings import Settings

ENDPOINT_WAIT_SECONDS = 30
ENDPOINT_PROVISIONING_SECONDS = 3600  # SageMaker's own limit for an endpoint to come up
VARIANT_NAME = "AllTraffic"

CONFIG_TAG = "config"  # the endpoint config it creates per run: <pipeline>-config-<hash>


# The strategies that update an endpoint under watch: each rolls back when an alarm fires during it
# (DeploymentConfig.AutoRollbackConfiguration: "Deployment guardrails", SageMaker developer guide).
GUARDED = ("blue_green", "canary", "linear", "rolling")
# The share of the variant's instances one step may be, per strategy, in %: TrafficRoutingConfig's
# CanarySize ("less than or equal to 50% of the variant's total instance count") and LinearStepSize
# ("10-50%"), RollingUpdatePolicy's MaximumBatchSize ("between 5% to 50%"), SageMaker API reference.
SHIFT_SHARES = {"canary": (0, 50), "linear": (10, 50), "rolling": (5, 50)}
# Application Auto Scaling's names for an endpoint variant's instance count ("Amazon SageMaker AI and
# Application Auto Scaling", Application Auto Scaling user guide).
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def _variant(block: dict[str, Any], model: str) -> dict[str, Any]:
    """The one production variant, as the mode serves: instances, or a serverless config."""
    variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": model}
    if block.get("mode") == "serverless":
        wanted = block.get("serverless", {})
        serverless = {
            "MemorySizeInMB": wanted.get("memory_mb", 2048),
            "MaxConcurrency": wanted.get("max_concurrency", 5),
        }
        if "provisioned_concurrency" in wanted:
            serverless["ProvisionedConcurrency"] = wanted["provisioned_concurrency"]
        return variant | {"ServerlessConfig": serverless}
    return variant | {
        "InstanceType": block.get("instance_type", DEFAULT_INSTANCE_TYPE),
        "InitialInstanceCount": block.get("instance_count", 1),
    }


def scaling_target(endpoint: str) -> dict[str, str]:
    """The endpoint's variant as Application Auto Scaling names a scalable target."""
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/{VARIANT_NAME}",
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def inference_folder(bucket: str, pipeline: str) -> str:
    """Where an async endpoint's answers, errors and smoke-test requests go by default."""
    return f"s3://{bucket}/inference/{pipeline}"


def _async_config(block: dict[str, Any], bucket: str, pipeline: str) -> dict[str, Any]:
    """AsyncInferenceConfig: where answers and errors go (by default under the deployment's bucket,
    which the SageMaker role may write), the topics told of them, the requests per instance."""
    wanted = block.get("async", {})
    folder = inference_folder(bucket, pipeline)
    output: dict[str, Any] = {
        "S3OutputPath": wanted.get("output", f"{folder}/output/"),
        "S3FailurePath": wanted.get("failure_output", f"{folder}/failures/"),
    }
    topics = {"success_topic": "SuccessTopic", "error_topic": "ErrorTopic"}
    notify = {topics[key]: arn for key, arn in wanted.get("notify", {}).items()}
    if notify:
        output["NotificationConfig"] = notify
    config: dict[str, Any] = {"OutputConfig": output}
    if "max_concurrent_invocations_per_instance" in wanted:
        config["ClientConfig"] = {
            "MaxConcurrentInvocationsPerInstance": wanted["max_concurrent_invocations_per_instance"]
        }
    return config


def _step(shift: dict[str, Any]) -> dict[str, Any]:
    """A step's size as SageMaker's CapacitySize."""
    if "instance_count" in shift:
        return {"Type": "INSTANCE_COUNT", "Value": shift["instance_count"]}
    return {"Type": "CAPACITY_PERCENT", "Value": shift.get("percent", 0)}


def _steps(block: dict[str, Any]) -> int:
    """How many steps a guarded update takes to move all traffic (1 for blue/green)."""
    strategy, shift = block.get("strategy", "all_at_once"), block.get("shift", {})
    if strategy == "canary":
        return 2
    if strategy not in ("linear", "rolling"):
        return 1
    if "instance_count" in shift:
        return -(-int(block.get("instance_count", 1)) // int(shift["instance_count"]))
    return -(-100 // max(1, int(shift.get("percent", 100))))


def _deployment_config(block: dict[str, Any], rollback: list[str]) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for a guarded strategy (SageMaker API reference: DeploymentConfig,
    BlueGreenUpdatePolicy, TrafficRoutingConfig, RollingUpdatePolicy)."""
    strategy, bake = block["strategy"], block.get("bake_minutes", 5) * 60
    wait = block.get("shift", {}).get("wait_seconds", bake)
    config: dict[str, Any] = {}
    if strategy == "rolling":
        config["RollingUpdatePolicy"] = {"MaximumBatchSize": _step(block["shift"]), "WaitIntervalInSeconds": wait}
    else:
        routing: dict[str, Any] = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": bake}
        if strategy == "canary":
            routing = {"Type": "CANARY", "WaitIntervalInSeconds": wait, "CanarySize": _step(block["shift"])}
        if strategy == "linear":
            routing = {"Type": "LINEAR", "WaitIntervalInSeconds": wait, "LinearStepSize": _step(block["shift"])}
        config["BlueGreenUpdatePolicy"] = {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": bake}
    config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollback]}
    return config


def _autoscaling(block: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The requests that scale the variant: its scalable target, a target-tracking policy (invocations
    per instance; for async, the backlog per instance), and for an async endpoint scaled to zero the
    step policy and alarm that bring the first instance when requests wait ("Autoscale an asynchronous
    endpoint", SageMaker developer guide: HasBacklogWithoutCapacity)."""
    wanted, is_async = block["autoscaling"], block.get("mode") == "async"
    target = scaling_target(endpoint)
    tracking: dict[str, Any] = {
        "TargetValue": float(
            wanted.get(
                "target_backlog_per_instance" if is_async else "target_invocations_per_instance", 5 if is_async else 70
            )
        ),
        "ScaleInCooldown": wanted.get("scale_in_cooldown", 300),
        "ScaleOutCooldown": wanted.get("scale_out_cooldown", 60),
    }
    if is_async:
        tracking["CustomizedMetricSpecification"] = {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
            "Statistic": "Average",
        }
    elif "target_metric" in wanted:  # the item's own metric of the variant
        metric = wanted["target_metric"]
        tracking["TargetValue"] = float(metric["value"])
        tracking["CustomizedMetricSpecification"] = {
            "MetricName": metric["name"],
            "Namespace": metric["namespace"],
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT_NAME}],
            "Statistic": metric.get("statistic", "Average"),
        }
    else:
        tracking["PredefinedMetricSpecification"] = {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    least = wanted.get("min", 0 if is_async else 1)
    planned: dict[str, Any] = {
        "target": target | {"MinCapacity": least, "MaxCapacity": wanted["max"]},
        "policy": target
        | {
            "PolicyName": f"{endpoint}-{'backlog' if is_async else 'invocations'}",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": tracking,
        },
    }
    if "schedule" in wanted:
        planned["scheduled"] = [_scheduled_action(entry, target) for entry in wanted["schedule"]]
    if is_async and least == 0:
        planned["scale_out"] = target | {
            "PolicyName": f"{endpoint}-scale-out-from-zero",
            "PolicyType": "StepScaling",
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": wanted.get("scale_out_cooldown", 60),
                "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
            },
        }
        planned["backlog_alarm"] = {
            "AlarmName": f"{endpoint}-backlog-without-capacity",
            "AlarmDescription": f"mlops-sfn: requests wait on endpoint {endpoint} with no instance; scales out",
            "Namespace": "AWS/SageMaker",
            "MetricName": "HasBacklogWithoutCapacity",
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 2,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "missing",
        }
    return planned


def _scheduled_action(entry: dict[str, Any], target: dict[str, str]) -> dict[str, Any]:
    """PutScheduledAction: at the entry's times, the target's min and max become the entry's."""
    action = {key: entry[field] for field, key in (("min", "MinCapacity"), ("max", "MaxCapacity")) if field in entry}
    request = target | {"ScheduledActionName": entry["name"], "Schedule": entry["schedule"]}
    for field, key in (("timezone", "Timezone"), ("start", "StartTime"), ("end", "EndTime")):
        if field in entry:
            request[key] = entry[field]
    return request | {"ScalableTargetAction": action}


def planned(item: Item, execution: str, name_prefix: str, bucket: str = "{bucket}") -> dict[str, Any]:
    """The endpoint config, the alarms and the requests that create or update the endpoint."""
    block = item["stages"]["deploy"]
    pipeline = item["consumption_pipeline_name"]
    model = block.get("model_name") or model_name(item, execution)
    config_name = names.resource_name(pipeline, CONFIG_TAG, execution)
    endpoint = endpoint_name(item, name_prefix)
    config_request: dict[str, Any] = {"EndpointConfigName": config_name, "ProductionVariants": [_variant(block, model)]}
    if block.get("mode") == "async":
        config_request["AsyncInferenceConfig"] = _async_config(block, bucket, pipeline)
    result: dict[str, Any] = {
        "endpoint_name": endpoint,
        "mode": block.get("mode", "realtime"),
        "endpoint_config_request": config_request,
        "strategy": block.get("strategy", "all_at_once"),
        # An update first removes the variant's autoscaling (SageMaker refuses an update that changes
        # the instance type of a variant it scales: "Update endpoints that use auto scaling").
        "scaling_target": scaling_target(endpoint),
    }
    if "model_name" in block:  # a model the item names: held to the deployment's prefix (_reaches)
        result["model_name"] = block["model_name"]
    result["alarms"] = endpoint_alarms(endpoint, block.get("alarms", {}))
    if result["strategy"] in GUARDED:
        # The framework's own alarms first, then the item's (checked to exist before the update).
        rollback = [alarm["AlarmName"] for alarm in result["alarms"].values()] + block.get("rollback_alarms", [])
        result["rollback_alarms"] = rollback
        result["rollback_alarm_count"] = len(rollback)
        result["deployment_config"] = _deployment_config(block, rollback)
    if "autoscaling" in block:
        result["autoscaling"] = _autoscaling(block, endpoint)
    if "smoke_test" in block:
        result["smoke_test"] = {"content_type": "text/csv"} | block["smoke_test"]
        if fanout.serves(item) and "target_model" not in block["smoke_test"]:
            # a multi-model endpoint answers for one of its models: the test asks the first one published
            result["smoke_test"]["models"] = "{model_data_url}"
        if result["mode"] == "async":  # asked through S3: the input written beside the answers
            output = config_request["AsyncInferenceConfig"]["OutputConfig"]
            result["smoke_test"]["async"] = {
                "input": f"{inference_folder(bucket, pipeline)}/smoke-tests/{execution}.in",
                "output": output["S3OutputPath"],
                "failure_output": output["S3FailurePath"],
            }
    # What the state machine sends: CreateEndpoint when the endpoint is new, UpdateEndpoint otherwise.
    names_only = {"EndpointName": endpoint, "EndpointConfigName": config_name}
    result["create_request"] = names_only
    result["update_request"] = names_only | (
        {"DeploymentConfig": result["deployment_config"]} if "deployment_config" in result else {}
    )
    # The bounded wait, every ENDPOINT_WAIT_SECONDS: provisioning, plus a guarded update's steps and
    # bakes (rolling provisions each batch in turn).
    bake = block.get("bake_minutes", 5) * 60 * (result["strategy"] in GUARDED)
    wait = block.get("shift", {}).get("wait_seconds", 0)
    steps = _steps(block)
    provisioning = ENDPOINT_PROVISIONING_SECONDS * (steps if result["strategy"] == "rolling" else 1)
    budget = provisioning + 2 * bake + steps * wait
    result["wait_seconds"] = ENDPOINT_WAIT_SECONDS
    result["max_checks"] = -(-budget // ENDPOINT_WAIT_SECONDS)
    return result


def endpoint_alarms(endpoint: str, thresholds: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The PutMetricAlarm requests of the alarms created for every endpoint the framework deploys
    (metrics of SageMaker's AWS/SageMaker namespace, per endpoint and variant)."""

    def alarm(suffix: str, metric: str, statistic: str, threshold: int, minutes: int, what: str) -> dict[str, Any]:
        return {
            "AlarmName": f"{endpoint}-{suffix}",
            "AlarmDescription": f"mlops-sfn: {what} on endpoint {endpoint}; rolls a blue/green update back",
            "Namespace": "AWS/SageMaker",
            "MetricName": metric,
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": VARIANT_NAME},
            ],
            "Statistic": statistic,
            "Period": 60,
            "EvaluationPeriods": minutes,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",  # no traffic is not a failure
        }

    errors, latency_ms = thresholds.get("errors_5xx", 1), thresholds.get("model_latency_ms", 1000)
    return {
        "errors": alarm("5xx-errors", "Invocation5XXErrors", "Sum", errors, 1, f"{errors}+ 5xx errors a minute"),
        # ModelLatency is in microseconds.
        "latency": alarm("model-latency", "ModelLatency", "Average", latency_ms * 1000, 3, f"latency {latency_ms}+ ms"),
    }


DEPLOY = "$.stages.deploy"
# The endpoint's states (SageMaker API reference, DescribeEndpoint): final, in progress, and those a
# person must look at (OutOfService, UpdateRollbackFailed: the default of "Existing endpoint status?").
_IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
_FAILED = ("Failed", "UpdateRollbackFailed")


def _alarm_states(b: Builder) -> None:
    """The endpoint's alarms, created or updated (PutMetricAlarm does both) before the endpoint
    changes: a blue/green update rolls back on them, and they must exist when it starts. Alarms the
    item names must exist too: SageMaker cannot roll back on an alarm that is not there."""
    for alarm, following in (("errors", "Put latency alarm"), ("latency", "Rollback alarms?")):
        b.call(
            f"Put {alarm} alarm",
            "deploy",
            f"{SDK}cloudwatch:putMetricAlarm",
            input_path=f"{DEPLOY}.alarms.{alarm}",
            result=None,
            then=following,
        )
    b.when("Rollback alarms?", f"{DEPLOY}.rollback_alarms", "Find rollback alarms", "Find endpoint")
    b.call(
        "Find rollback alarms",
        "deploy",
        f"{SDK}cloudwatch:describeAlarms",
        parameters={"AlarmNames.$": f"{DEPLOY}.rollback_alarms", "AlarmTypes": ["MetricAlarm"]},
        selector={"found.$": "States.ArrayLength($.MetricAlarms)"},
        result="$.results.deploy.rollback_alarms",
        then="All rollback alarms exist?",
    )
    b.when(
        "All rollback alarms exist?",
        "$.results.deploy.rollback_alarms.found",
        "Find endpoint",
        "Rollback alarm missing",
        test={"NumericEqualsPath": f"{DEPLOY}.rollback_alarm_count"},
    )


def _find_endpoint_states(b: Builder) -> None:
    """The endpoint's state decides: none yet, create it; InService, update it; Failed, delete it
    (the only call a failed endpoint accepts) and create it again; in progress, wait for it (a
    bounded loop). Any other error fails the stage with its cause."""
    b.add(
        "Find endpoint",
        {
            "Type": "Task",
            "Resource": f"{SDK}sagemaker:describeEndpoint",
            "Parameters": {"EndpointName.$": f"{DEPLOY}.endpoint_name"},
            "ResultSelector": {"status.$": "$.EndpointStatus"},
            "ResultPath": "$.results.deploy.existing",
            # A missing endpoint is reported like a throttle (SageMaker.SageMakerException, from a
            # ValidationException), so only two quick retries before the Catch looks at the cause.
            "Retry": [{"ErrorEquals": TRANSIENT["aws-sdk:sagemaker"], "IntervalSeconds": 1, "MaxAttempts": 2}],
            "Catch": [
                {
                    "ErrorEquals": ["SageMaker.SageMakerException"],
                    "ResultPath": "$.caught",
                    "Next": "Endpoint missing?",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("deploy")},
            ],
            "Next": "Existing endpoint status?",
        },
    )
    b.when(
        "Endpoint missing?",
        "$.caught.Cause",
        "Create endpoint",
        "Endpoint not described",
        test={"StringMatches": "*Could not find endpoint*"},
    )
    # a DescribeEndpoint error is small; it is kept apart ($.caught) until it is known to be a failure,
    # since a $.failure in a serving branch's output says the branch failed
    b.add(
        "Endpoint not described",
        {
            "Type": "Pass",
            "Parameters": {"Error.$": "$.caught.Error", "Cause.$": "$.caught.Cause"},
            "ResultPath": "$.failure",
            "Next": b.recorder("deploy"),
        },
    )
    existing = "$.results.deploy.existing.status"
    b.add(
        "Existing endpoint status?",
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": existing, "StringEquals": "InService", "Next": "Remove autoscaling"},
                {"Variable": existing, "StringEquals": "Failed", "Next": "Delete failed endpoint"},
                *(
                    {"Variable": existing, "StringEquals": status, "Next": "Count busy check"}
                    for status in _IN_PROGRESS
                ),
            ],
            "Default": "Endpoint not updatable",  # OutOfService, UpdateRollbackFailed: a person must look
        },
    )
    b.call(
        "Delete failed endpoint",
        "deploy",
        f"{SDK}sagemaker:deleteEndpoint",
        parameters={"EndpointName.$": f"{DEPLOY}.endpoint_name"},
        result=None,
        then="Count busy check",
    )
    b.count("Count busy check", "$.results.deploy.busy", "Busy too long?")
    b.when(
        "Busy too long?",
        "$.results.deploy.busy.count",
        "Endpoint not updatable",
        "Wait before finding endpoint",
        test={"NumericGreaterThanPath": f"{DEPLOY}.max_checks"},
    )
    b.wait("Wait before finding endpoint", f"{DEPLOY}.wait_seconds", "Find endpoint")


def _autoscaling_states(b: Builder) -> None:
    """Before an update, the variant's autoscaling is removed (deregistering a scalable target deletes
    its policies: DeregisterScalableTarget, Application Auto Scaling API reference): SageMaker refuses
    an update that changes the instance type of a variant it scales, and a deploy without autoscaling
    leaves none behind. After the endpoint is InService on the new config, the item's is registered
    again: target, target-tracking policy, for an async endpoint scaled to zero the step policy
    and the alarm that bring its first instance, then the scheduled actions (deregistering deletes
    them too)."""
    b.add(
        "Remove autoscaling",
        {
            "Type": "Task",
            "Resource": f"{SDK}applicationautoscaling:deregisterScalableTarget",
            "InputPath": f"{DEPLOY}.scaling_target",
            "ResultPath": None,
            "Retry": retry_for(f"{SDK}applicationautoscaling:deregisterScalableTarget"),
            "Catch": [
                # none registered: nothing to remove
                {
                    "ErrorEquals": ["ApplicationAutoScaling.ObjectNotFoundException"],
                    "ResultPath": None,
                    "Next": "Update endpoint",
                },
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("deploy")},
            ],
            "Next": "Update endpoint",
        },
    )
    scaling = f"{DEPLOY}.autoscaling"
    b.call(
        "Register scalable target",
        "deploy",
        f"{SDK}applicationautoscaling:registerScalableTarget",
        input_path=f"{scaling}.target",
        result=None,
        then="Put scaling policy",
    )
    b.call(
        "Put scaling policy",
        "deploy",
        f"{SDK}applicationautoscaling:putScalingPolicy",
        input_path=f"{scaling}.policy",
        result=None,
        then="Scales from zero?",
    )
    b.when("Scales from zero?", f"{scaling}.scale_out", "Put scale-out policy", "Scheduled scaling?")
    b.call(
        "Put scale-out policy",
        "deploy",
        f"{SDK}applicationautoscaling:putScalingPolicy",
        input_path=f"{scaling}.scale_out",
        selector={"arn.$": "$.PolicyARN"},
        result="$.results.deploy.scale_out_policy",
        then="Put backlog alarm",
    )
    alarm = f"{scaling}.backlog_alarm"
    fields = ["AlarmName", "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period"]
    fields += ["EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData", "Tags"]
    b.call(
        "Put backlog alarm",
        "deploy",
        f"{SDK}cloudwatch:putMetricAlarm",
        # the planned alarm, acting on the policy just put (its ARN is known only now)
        parameters={f"{key}.$": f"{alarm}.{key}" for key in fields}
        | {"AlarmActions.$": "States.Array($.results.deploy.scale_out_policy.arn)"},
        result=None,
        then="Scheduled scaling?",
    )
    b.when("Scheduled scaling?", f"{scaling}.scheduled", "Put scheduled actions", "Smoke test?")
    put = f"{SDK}applicationautoscaling:putScheduledAction"
    b.add(
        "Put scheduled actions",
        {
            "Type": "Map",
            "ItemsPath": f"{scaling}.scheduled",
            # one at a time: Application Auto Scaling refuses concurrent changes to one target
            # (ConcurrentUpdateException)
            "MaxConcurrency": 1,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Put scheduled action",
                "States": {
                    "Put scheduled action": {
                        "Type": "Task",
                        "Resource": put,
                        "ResultPath": None,
                        "Retry": retry_for(put),
                        "End": True,
                    }
                },
            },
            "ResultPath": None,
            # a catch inside the processor cannot leave it: the Map's records the failure
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("deploy")}],
            "Next": "Smoke test?",
        },
    )


def _change_endpoint_states(b: Builder) -> None:
    """Create or update the endpoint, then wait (a bounded loop) until it is InService on the new
    config: SageMaker can roll an update back and still report InService."""
    for verb in ("create", "update"):
        b.call(
            f"{verb.capitalize()} endpoint",
            "deploy",
            f"{SAGEMAKER}{verb}Endpoint",
            input_path=f"{DEPLOY}.{verb}_request",
            result=None,
            then="Wait for endpoint",
        )
    b.wait("Wait for endpoint", f"{DEPLOY}.wait_seconds", "Check endpoint")
    b.call(
        "Check endpoint",
        "deploy",
        f"{SDK}sagemaker:describeEndpoint",
        parameters={"EndpointName.$": f"{DEPLOY}.endpoint_name"},
        selector={"status.$": "$.EndpointStatus", "config.$": "$.EndpointConfigName"},
        result="$.results.deploy.endpoint",
        then="Endpoint status?",
    )
    status = "$.results.deploy.endpoint.status"
    b.add(
        "Endpoint status?",
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": status, "StringEquals": "InService", "Next": "Runs new config?"},
                # Final: Failed, and UpdateRollbackFailed (the update and its rollback both failed; the
                # endpoint serves a mix of configs until a person acts: DescribeEndpoint, EndpointStatus).
                *({"Variable": status, "StringEquals": failed, "Next": "Endpoint failed"} for failed in _FAILED),
                {
                    "Variable": "$.results.deploy.wait.count",
                    "NumericGreaterThanEqualsPath": f"{DEPLOY}.max_checks",
                    "Next": "Endpoint wait timed out",
                },
            ],
            "Default": "Count endpoint check",
        },
    )
    b.count("Count endpoint check", "$.results.deploy.wait", "Wait for endpoint")
    new_config = {
        "Variable": "$.results.deploy.endpoint.config",
        "StringEqualsPath": f"{DEPLOY}.endpoint_config_request.EndpointConfigName",
    }
    b.add(
        "Runs new config?",
        {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [new_config, {"Variable": f"{DEPLOY}.autoscaling", "IsPresent": True}],
                    "Next": "Register scalable target",
                },
                {**new_config, "Next": "Smoke test?"},
            ],
            "Default": "Endpoint rolled back",
        },
    )


# The failures the definition decides, with their causes (ASL intrinsic functions).
_FAILURES = [
    (
        "Rollback alarm missing",
        "RollbackAlarmMissing",
        "States.Format('Endpoint {}: only {} of its rollback alarms {} exist: create the missing ones "
        "or remove them from stages.deploy.rollback_alarms', $.stages.deploy.endpoint_name, "
        "$.results.deploy.rollback_alarms.found, States.JsonToString($.stages.deploy.rollback_alarms))",
    ),
    (
        "Endpoint failed",
        "EndpointFailed",
        "States.Format('Endpoint {} is {}', $.stages.deploy.endpoint_name, $.results.deploy.endpoint.status)",
    ),
    (
        "Endpoint not updatable",
        "EndpointNotUpdatable",
        "States.Format('Endpoint {} is {}: it can be neither updated nor replaced now', "
        "$.stages.deploy.endpoint_name, $.results.deploy.existing.status)",
    ),
    (
        "Endpoint wait timed out",
        "EndpointWaitTimedOut",
        "States.Format('Endpoint {} was not InService after {} checks', "
        "$.stages.deploy.endpoint_name, $.results.deploy.wait.count)",
    ),
    (
        "Endpoint rolled back",
        "EndpointRolledBack",
        "States.Format('Endpoint {} runs {}, not the new {}: the update was rolled back', "
        "$.stages.deploy.endpoint_name, $.results.deploy.endpoint.config, "
        "$.stages.deploy.endpoint_config_request.EndpointConfigName)",
    ),
]


def _smoke_test_states(b: Builder, then: str | None) -> None:
    b.when("Smoke test?", f"{DEPLOY}.smoke_test", "Smoke test", "Deployed")
    b.call(
        "Smoke test",
        "deploy",
        LAMBDA,  # a function that keeps a summary of the answer (core/smoke_test.py says why)
        parameters={
            "FunctionName": "${smoke_test_function_arn}",
            # the whole test: content type, body, and for a multi-model endpoint its target or models
            "Payload": {"endpoint.$": f"{DEPLOY}.endpoint_name", "test.$": f"{DEPLOY}.smoke_test"},
        },
        selector={"response.$": "$.Payload"},
        result="$.results.deploy.smoke_test",
        then="Deployed",
    )
    b.add("Deployed", {"Type": "Pass"} | ({"Next": then} if then else {"OutputPath": "$.results.deploy", "End": True}))


def _states(b: Builder, then: str | None) -> str:
    entry = b.call(
        "Create endpoint config",
        "deploy",
        f"{SAGEMAKER}createEndpointConfig",
        input_path=f"{DEPLOY}.endpoint_config_request",
        # Two bounded waits, each with its own count: for a busy endpoint to settle, then for ours.
        selector={"busy": {"count": 0}, "wait": {"count": 0}},
        result="$.results.deploy",
        then="Put errors alarm",
    )
    _alarm_states(b)
    _find_endpoint_states(b)
    _change_endpoint_states(b)
    _autoscaling_states(b)
    for name, error, cause in _FAILURES:
        b.fail(name, "deploy", error, cause)
    _smoke_test_states(b, then)
    return entry


def _smoke_test_preview(test: dict[str, Any] | None) -> str:
    if test is None:
        return ""
    if "target_model" in test:
        return f", smoke test of {test['target_model']}"
    return ", smoke test of the first segment's model published" if "models" in test else ", smoke test"


def _mode_problems(item: Item, deploy: dict[str, Any]) -> list[Problem]:
    """What each mode cannot have. Serverless: "Feature exclusions" (SageMaker developer guide,
    serverless endpoints: no GPUs, multi-model endpoints, VPC or network isolation, data capture,
    Model Monitor, multiple variants), no rolling update ("Exclusions", deployment guardrails), and
    ProvisionedConcurrency at most MaxConcurrency (ProductionVariantServerlessConfig)."""
    mode, problems = deploy.get("mode", "realtime"), []
    for other in ("serverless", "async"):
        if other in deploy and mode != other:
            problems.append(
                Problem(f"stages.deploy.{other}", f'applies to mode {other}: set mode "{other}" or remove it')
            )
    if mode != "serverless":
        return problems
    why = "a serverless endpoint"
    for field, fix in (
        ("instance_type", "has no instances: remove it (serverless.memory_mb sizes it)"),
        ("instance_count", "has no instances: remove it (serverless.max_concurrency bounds it)"),
        ("autoscaling", "scales with its requests: remove it"),
    ):
        if field in deploy:
            problems.append(Problem(f"stages.deploy.{field}", f"{why} {fix}"))
    if runs(item, "monitoring"):
        problems.append(
            Problem(
                "stages.deploy.mode",
                f"{why} has no data capture for monitoring: switch monitoring off or deploy realtime",
            )
        )
    if fanout.serves(item):
        problems.append(
            Problem(
                "stages.deploy.mode", f"{why} cannot serve many models (a fanned-out run's segments): deploy realtime"
            )
        )
    if deploy.get("strategy") == "rolling":
        problems.append(
            Problem("stages.deploy.strategy", f"{why} cannot be updated rolling: use blue_green, canary or linear")
        )
    wanted = deploy.get("serverless", {})
    if wanted.get("provisioned_concurrency", 0) > wanted.get("max_concurrency", 5):
        problems.append(
            Problem(
                "stages.deploy.serverless.provisioned_concurrency",
                f"{wanted['provisioned_concurrency']} is above max_concurrency {wanted.get('max_concurrency', 5)}:"
                " lower it or raise max_concurrency",
            )
        )
    return problems


def _shift_problems(deploy: dict[str, Any]) -> list[Problem]:
    """A step's size within the share of the variant's instances SageMaker takes (SHIFT_SHARES)."""
    strategy, shift = deploy.get("strategy", "all_at_once"), deploy.get("shift")
    if strategy not in SHIFT_SHARES:
        if shift is not None:
            return [
                Problem(
                    "stages.deploy.shift",
                    f"{strategy} shifts no traffic in steps: remove shift, or use canary, linear or rolling",
                )
            ]
        return []
    if shift is None:
        return [
            Problem(
                "stages.deploy.shift",
                f"{strategy} needs its step: set shift: {{percent or instance_count, wait_seconds}}",
            )
        ]
    if ("percent" in shift) == ("instance_count" in shift):
        return [Problem("stages.deploy.shift", "give the step as percent or as instance_count, one of them")]
    least, most = SHIFT_SHARES[strategy]
    count = int(deploy.get("instance_count", 1))
    share = shift["percent"] if "percent" in shift else 100 * shift["instance_count"] / count
    if least <= share <= most:
        return []
    field = "percent" if "percent" in shift else "instance_count"
    of = "" if "percent" in shift else f" ({shift['instance_count']} of instance_count {count} is {share:g} %)"
    bounds = f"at most {most} %" if least == 0 else f"{least}-{most} %"
    fix = f"set it to {bounds} of instance_count {count}" if "instance_count" in shift else f"set it to {bounds}"
    return [Problem(f"stages.deploy.shift.{field}", f"a {strategy} step must be {bounds} of the fleet{of}: {fix}")]


def _autoscaling_problems(deploy: dict[str, Any]) -> list[Problem]:
    wanted = deploy.get("autoscaling")
    if wanted is None:
        return []
    is_async, problems = deploy.get("mode") == "async", []
    least = wanted.get("min", 0 if is_async else 1)
    if least > wanted["max"]:
        problems.append(Problem("stages.deploy.autoscaling.min", f"{least} is above max {wanted['max']}: lower it"))
    if least == 0 and not is_async:
        # scaling to zero instances is for asynchronous endpoints ("Autoscale an asynchronous endpoint")
        problems.append(
            Problem("stages.deploy.autoscaling.min", "only an async endpoint scales to zero: set 1 or more")
        )
    wrong = ["target_invocations_per_instance", "target_metric"] if is_async else ["target_backlog_per_instance"]
    for field in (name for name in wrong if name in wanted):
        right = "target_backlog_per_instance" if is_async else "target_invocations_per_instance or target_metric"
        mode = "an async" if is_async else "a realtime"
        problems.append(
            Problem(f"stages.deploy.autoscaling.{field}", f"{mode} endpoint scales on {right}: use it instead")
        )
    if {"target_invocations_per_instance", "target_metric"} <= set(wanted):
        problems.append(
            Problem(
                "stages.deploy.autoscaling.target_metric", "one target: remove it or target_invocations_per_instance"
            )
        )
    return problems + _schedule_problems(wanted.get("schedule", []), is_async)


def _schedule_problems(schedule: list[dict[str, Any]], is_async: bool) -> list[Problem]:
    """What PutScheduledAction would refuse or get wrong, per entry: a name used twice (the second
    would replace the first: "unique among all other scheduled actions on the specified scalable
    target"), an action that changes nothing, min above max, zero instances outside async, an at()
    that is no date, and a start after the end."""
    problems, seen = [], set()
    for index, entry in enumerate(schedule):
        where = f"stages.deploy.autoscaling.schedule[{index}]"
        if entry["name"] in seen:
            problems.append(Problem(f"{where}.name", f"{entry['name']!r} names an earlier entry too: rename one"))
        seen.add(entry["name"])
        if "min" not in entry and "max" not in entry:
            problems.append(Problem(where, "changes neither min nor max: set one or both"))
        if entry.get("min", 0) > entry.get("max", entry.get("min", 0)):
            problems.append(Problem(f"{where}.min", f"{entry['min']} is above max {entry['max']}: lower it"))
        if entry.get("min") == 0 and not is_async:
            problems.append(Problem(f"{where}.min", "only an async endpoint scales to zero: set 1 or more"))
        when = entry["schedule"]
        if when.startswith("at(") and _instant(when[3:-1]) is None:
            problems.append(Problem(f"{where}.schedule", f"{when} names no date and time: fix it"))
        start, end = _instant(entry.get("start", "")), _instant(entry.get("end", ""))
        for field, instant in (("start", start), ("end", end)):
            if field in entry and instant is None:
                problems.append(Problem(f"{where}.{field}", f"{entry[field]} names no date and time: fix it"))
        if start and end and start >= end:
            problems.append(Problem(f"{where}.end", f"{entry['end']} is not after start {entry['start']}: move it"))
    return problems


def _instant(text: str) -> datetime | None:
    """The date and time `yyyy-mm-ddThh:mm:ss` (a trailing Z allowed) names, or None."""
    try:
        return datetime.strptime(text.removesuffix("Z"), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


# Application Auto Scaling's scalable targets have generated IDs in their ARNs, so the role's calls are
# scoped by what they scale (the service namespace and dimension condition keys, Service Authorization
# Reference) and by the endpoints themselves: registering a target needs, as the caller, the target
# service's calls on it ("Application Auto Scaling identity-based policy examples": for SageMaker,
# DescribeEndpoint, DescribeEndpointConfig and UpdateEndpointWeightsAndCapacities), and the first
# registration creates the service-linked role ("Service-linked roles for Application Auto Scaling").
SCALING_CONDITION = {
    "StringEquals": {
        "application-autoscaling:service-namespace": "sagemaker",
        "application-autoscaling:scalable-dimension": SCALABLE_DIMENSION,
    }
}
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_ROLE = (
    "arn:${partition}:iam::${account_id}:role/aws-service-role/"
    f"{SCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def _autoscaling_permissions(endpoints: list[str], configs: list[str]) -> Statements:
    scaling = {
        "Sid": "Autoscaling",
        "Actions": [
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:PutScheduledAction",
        ],
        "Resources": ["arn:${partition}:application-autoscaling:${region}:${account_id}:scalable-target/*"],
        "Condition": SCALING_CONDITION,
    }
    # merged into the deploy's own statements of these Sids: the endpoints, and the configs it creates
    target = iam.statement(
        "DescribeEndpoint", ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"], endpoints
    )
    config = iam.statement("CreateEndpointConfig", ["sagemaker:DescribeEndpointConfig"], configs)
    linked = {
        "Sid": "AutoscalingRole",
        "Actions": ["iam:CreateServiceLinkedRole"],
        "Resources": [SCALING_ROLE],
        "Condition": {"StringEquals": {"iam:AWSServiceName": SCALING_SERVICE}},
    }
    return {
        "aws-sdk:applicationautoscaling:registerScalableTarget": (scaling, target, config, linked),
        "aws-sdk:applicationautoscaling:deregisterScalableTarget": (scaling,),
        "aws-sdk:applicationautoscaling:putScalingPolicy": (scaling,),
        "aws-sdk:applicationautoscaling:putScheduledAction": (scaling,),
    }


def _strategy_preview(block: Block) -> str:
    """The strategy, with its step: "canary 20 % then the rest, 60 s apart"."""
    config = block.get("deployment_config", {})
    routing = config.get("BlueGreenUpdatePolicy", {}).get("TrafficRoutingConfiguration", {})
    rolling = config.get("RollingUpdatePolicy")
    size = rolling["MaximumBatchSize"] if rolling else routing.get("CanarySize") or routing.get("LinearStepSize")
    if size is None:
        return str(block["strategy"])
    step = f"{size['Value']} %" if size["Type"] == "CAPACITY_PERCENT" else f"{size['Value']} instance(s)"
    wait = (rolling or routing)["WaitIntervalInSeconds"]
    rest = " then the rest" if block["strategy"] == "canary" else " at a time"
    return f"{block['strategy']} {step}{rest}, {wait} s apart"


class Deploy(Stage):
    name = "deploy"
    # Its endpoint is named by the item; the endpoint config it creates per run is the framework's.
    tag = CONFIG_TAG
    resource = "endpoint-config"
    serving = True

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        result = planned(item, execution, settings.sagemaker_name_prefix, settings.bucket)
        if runs(item, "monitoring"):  # the endpoint captures what the monitoring schedule reads
            pipeline = item["consumption_pipeline_name"]
            capture = monitoring.data_capture_config(item["stages"]["monitoring"], settings.bucket, pipeline)
            result["endpoint_config_request"]["DataCaptureConfig"] = capture
        return result

    def limit(self, block: Block) -> int:
        return 2 * int(block["wait_seconds"]) * int(block["max_checks"])  # a busy endpoint, then its own update

    def requests(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("CreateEndpointConfig", block["endpoint_config_request"]),
            ("CreateEndpoint", block["create_request"]),
            ("UpdateEndpoint", block["update_request"]),
        ]

    def tagged(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        # the endpoint's alarms too (PutMetricAlarm tags an alarm it creates, and ignores Tags on update)
        alarms = [
            *block["alarms"].values(),
            *([block["autoscaling"]["backlog_alarm"]] if "backlog_alarm" in block.get("autoscaling", {}) else []),
        ]
        return self.requests(block) + [("PutMetricAlarm", alarm) for alarm in alarms]

    def rules(self, item: Item) -> list[Problem]:
        deploy = item["stages"].get("deploy", {})
        problems = []
        if "instance_type" in deploy:
            shape = sagemaker_api.shape_at("CreateEndpointConfig", "ProductionVariants", "member", "InstanceType")
            problems += sagemaker_api.check_value(shape, deploy["instance_type"], "stages.deploy.instance_type")
        target = deploy.get("smoke_test", {}).get("target_model")
        if target is not None and not fanout.serves(item):
            problems.append(
                Problem(
                    "stages.deploy.smoke_test.target_model",
                    "names a model of a multi-model endpoint, and this endpoint serves one model (a fanned-out"
                    " run's deploy serves its segments'): remove it",
                )
            )
        listed = [fanout.target_model(segment["id"]) for segment in fanout.segments(item)]
        if target is not None and fanout.serves(item) and listed and target not in listed:
            problems.append(
                Problem(
                    "stages.deploy.smoke_test.target_model",
                    f"{target!r} is no segment's model: name one as <segment id>.tar.gz ({', '.join(listed[:3])}"
                    f"{', ...' if len(listed) > 3 else ''}), or remove it to ask the first one published",
                )
            )
        if deploy.get("rollback_alarms") and deploy.get("strategy", "all_at_once") not in GUARDED:
            problems.append(
                Problem(
                    "stages.deploy.rollback_alarms",
                    "roll back only a guarded update: set strategy to blue_green, canary, linear or rolling, or remove"
                    " the alarms",
                )
            )
        return problems + _mode_problems(item, deploy) + _shift_problems(deploy) + _autoscaling_problems(deploy)

    def check(self, block: Block, settings: Settings) -> list[Problem]:
        """An async endpoint's smoke test reads its answer as the smoke-test function, which may read only
        the pipeline's default answer folders (modules/state-machine: ReadAsyncAnswers)."""
        test = block.get("smoke_test", {}).get("async")
        if test is None:
            return []
        folder = str(test["input"]).split("/smoke-tests/")[0]  # s3://<bucket>/inference/<pipeline>
        return [
            Problem(
                f"stages.deploy.async.{field}",
                f"the smoke test may read answers only under {folder}/{default}/: remove {field} or the smoke test",
            )
            for field, default in (("output", "output"), ("failure_output", "failures"))
            if not str(test[field]).startswith(f"{folder}/{default}/")
        ]

    def reaches(self, block: Block) -> list[tuple[str, str]]:
        """The endpoint, the model the item names (the role's CreateEndpointConfig is scoped to the config,
        not to the model it serves, so the prefix is what keeps another team's model out), and the rollback
        alarms the item names (its own alarms are named after the endpoint)."""
        own = {alarm["AlarmName"] for alarm in block["alarms"].values()}
        alarms = [name for name in block.get("rollback_alarms", []) if name not in own]
        model = [("stages.deploy.model_name", block["model_name"])] if "model_name" in block else []
        return (
            [("stages.deploy.endpoint_name", block["endpoint_name"])]
            + model
            + [("stages.deploy.rollback_alarms", name) for name in alarms]
        )

    def states(self, b: Builder, then: str | None) -> str:
        return _states(b, then)

    def permissions(self) -> Statements:
        endpoints = iam.ENDPOINTS + iam.named(self)
        return {
            "sagemaker:createEndpointConfig": (
                iam.statement(
                    "CreateEndpointConfig", ["sagemaker:CreateEndpointConfig", *iam.TAGGING], iam.named(self)
                ),
            ),
            # Creating and updating share one statement (one Sid, one resource list: IAM's size quota).
            "sagemaker:createEndpoint": (
                iam.statement("WriteEndpoints", ["sagemaker:CreateEndpoint", *iam.TAGGING], endpoints),
            ),
            "sagemaker:updateEndpoint": (
                iam.statement("WriteEndpoints", ["sagemaker:UpdateEndpoint"], endpoints),
                iam.READ_ALARMS,  # a blue/green update with auto-rollback reads its alarms as the caller
            ),
            "aws-sdk:cloudwatch:putMetricAlarm": (
                iam.statement("EndpointAlarms", ["cloudwatch:PutMetricAlarm", *iam.TAG_ALARMS], iam.ALARMS),
            ),
            "aws-sdk:cloudwatch:describeAlarms": (iam.READ_ALARMS,),
            "aws-sdk:sagemaker:describeEndpoint": (
                iam.statement("DescribeEndpoint", ["sagemaker:DescribeEndpoint"], iam.ENDPOINTS),
            ),
            "aws-sdk:sagemaker:deleteEndpoint": (
                iam.statement("ReplaceFailedEndpoint", ["sagemaker:DeleteEndpoint"], iam.ENDPOINTS),
            ),
            "lambda:invoke": (iam.function("smoke_test_function_arn"),),
            **_autoscaling_permissions(iam.ENDPOINTS, iam.named(self)),
        }

    def preview(self, block: Block) -> str:
        variant = block["endpoint_config_request"]["ProductionVariants"][0]
        if "ServerlessConfig" in variant:
            serverless = variant["ServerlessConfig"]
            size = f"serverless, {serverless['MemorySizeInMB']} MB, up to {serverless['MaxConcurrency']} at once"
        else:
            size = f"{variant['InitialInstanceCount']} x {variant['InstanceType']}"
            size = f"async, {size}" if block.get("mode") == "async" else size
        scaling = block.get("autoscaling", {}).get("target")
        scaled = f", autoscaled {scaling['MinCapacity']}-{scaling['MaxCapacity']}" if scaling else ""
        scheduled = len(block.get("autoscaling", {}).get("scheduled", []))
        scaled += f", {scheduled} scheduled action{'s' * (scheduled > 1)}" if scheduled else ""
        return (
            f"endpoint {block['endpoint_name']} ({_strategy_preview(block)}, {size}{scaled})"
            f"{_smoke_test_preview(block.get('smoke_test'))}"
        )

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        endpoint = result.get("endpoint", {})
        line = f"endpoint {block.get('endpoint_name', '')} {endpoint.get('status', '')} on {endpoint.get('config', '')}"
        smoke = result.get("smoke_test", {}).get("response")
        if not isinstance(smoke, dict):
            return line
        head = smoke.get("head", "").strip() + (" ..." if smoke.get("truncated") else "")
        target = f" of {smoke['target_model']}" if smoke.get("target_model") else ""
        return line + f"; smoke test{target} answered {head!r} ({smoke.get('bytes')} bytes)"


STAGE = Deploy()
