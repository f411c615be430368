"""Deploy: the endpoint created or updated with the run's model (a serving stage: beside batch transform).

The endpoint's alarms are put first (a blue/green update rolls back on them); the endpoint's state
decides between create, update and replace; a smoke test can follow. With monitoring on, the
endpoint config captures traffic for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import fanout, iam, monitoring, names, sagemaker_api
from ..asl import LAMBDA, SAGEMAKER, SDK, TRANSIENT, Builder
from ..problems import Problem
from ..stage import DEFAULT_INSTANCE_TYPE, Block, Item, Stage, Statements, Where, runs
from .shared import endpoint_name, model_name

if TYPE_CHECKING:
    from ..settings import Settings

ENDPOINT_WAIT_SECONDS = 30
ENDPOINT_PROVISIONING_SECONDS = 3600  # SageMaker's own limit for an endpoint to come up
VARIANT_NAME = "AllTraffic"

CONFIG_TAG = "config"  # the endpoint config it creates per run: <pipeline>-config-<hash>


def planned(item: Item, execution: str, name_prefix: str) -> dict[str, Any]:
    """The endpoint config, the alarms and the requests that create or update the endpoint."""
    block = item["stages"]["deploy"]
    pipeline = item["consumption_pipeline_name"]
    model = block.get("model_name") or model_name(item, execution)
    config_name = names.resource_name(pipeline, CONFIG_TAG, execution)
    result: dict[str, Any] = {
        "endpoint_name": endpoint_name(item, name_prefix),
        "endpoint_config_request": {
            "EndpointConfigName": config_name,
            "ProductionVariants": [
                {
                    "VariantName": VARIANT_NAME,
                    "ModelName": model,
                    "InstanceType": block.get("instance_type", DEFAULT_INSTANCE_TYPE),
                    "InitialInstanceCount": block.get("instance_count", 1),
                }
            ],
        },
        "strategy": block.get("strategy", "all_at_once"),
    }
    if "model_name" in block:  # a model the item names: held to the deployment's prefix (_reaches)
        result["model_name"] = block["model_name"]
    result["alarms"] = endpoint_alarms(result["endpoint_name"], block.get("alarms", {}))
    if result["strategy"] == "blue_green":
        bake = block.get("bake_minutes", 5) * 60
        config: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": bake},
                "TerminationWaitInSeconds": bake,
            }
        }
        # The framework's own alarms first, then the item's (checked to exist before the update).
        rollback = [alarm["AlarmName"] for alarm in result["alarms"].values()] + block.get("rollback_alarms", [])
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in rollback]}
        result["rollback_alarms"] = rollback
        result["rollback_alarm_count"] = len(rollback)
        result["deployment_config"] = config
    if "smoke_test" in block:
        result["smoke_test"] = {"content_type": "text/csv"} | block["smoke_test"]
        if fanout.serves(item) and "target_model" not in block["smoke_test"]:
            # a multi-model endpoint answers for one of its models: the test asks the first one published
            result["smoke_test"]["models"] = "{model_data_url}"
    # What the state machine sends: CreateEndpoint when the endpoint is new, UpdateEndpoint otherwise.
    names_only = {"EndpointName": result["endpoint_name"], "EndpointConfigName": config_name}
    result["create_request"] = names_only
    result["update_request"] = names_only | (
        {"DeploymentConfig": result["deployment_config"]} if "deployment_config" in result else {}
    )
    # The bounded wait: every ENDPOINT_WAIT_SECONDS, long enough for provisioning plus a blue/green bake.
    budget = ENDPOINT_PROVISIONING_SECONDS + 2 * block.get("bake_minutes", 5) * 60 * (
        result["strategy"] == "blue_green"
    )
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
                {"Variable": existing, "StringEquals": "InService", "Next": "Update endpoint"},
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
    b.when(
        "Runs new config?",
        "$.results.deploy.endpoint.config",
        "Smoke test?",
        "Endpoint rolled back",
        test={"StringEqualsPath": f"{DEPLOY}.endpoint_config_request.EndpointConfigName"},
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


class Deploy(Stage):
    name = "deploy"
    # Its endpoint is named by the item; the endpoint config it creates per run is the framework's.
    tag = CONFIG_TAG
    resource = "endpoint-config"
    serving = True

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        result = planned(item, execution, settings.sagemaker_name_prefix)
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
        return self.requests(block) + [("PutMetricAlarm", alarm) for alarm in block["alarms"].values()]

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
        if deploy.get("rollback_alarms") and deploy.get("strategy", "all_at_once") != "blue_green":
            problems.append(
                Problem(
                    "stages.deploy.rollback_alarms",
                    'roll back only a blue/green update: set strategy to "blue_green" or remove the alarms',
                )
            )
        return problems

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
            "sagemaker:createEndpoint": (
                iam.statement("CreateEndpoint", ["sagemaker:CreateEndpoint", *iam.TAGGING], endpoints),
            ),
            "sagemaker:updateEndpoint": (
                iam.statement("UpdateEndpoint", ["sagemaker:UpdateEndpoint"], endpoints),
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
        }

    def preview(self, block: Block) -> str:
        config = block["endpoint_config_request"]["ProductionVariants"][0]
        return (
            f"endpoint {block['endpoint_name']} ({block['strategy']}, {config['InitialInstanceCount']} x "
            f"{config['InstanceType']}){_smoke_test_preview(block.get('smoke_test'))}"
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
