"""The state machine template: current, renderable, well-formed, and cheap for disabled stages."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn.core import asl
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import STAGES
from mlops_sfn.core.stages.quality_gate import evaluate
from mlops_sfn.tools import statemachine
from tests.conftest import edited, load_item, serving_package

VARIABLES = {
    "notification_topic_arn": "arn:aws:sns:us-east-1:123456789012:mlops-notifications",
    "approval_topic_arn": "arn:aws:sns:us-east-1:123456789012:mlops-approvals",
    "quality_gate_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-quality-gate",
    "model_copy_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-model-copy",
    "smoke_test_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-smoke-test",
    "segments_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-segments",
    "ledger_table_name": "mlops-run-ledger",
}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return statemachine.render(VARIABLES)


def test_render_fills_every_variable_and_only_known_ones(definition: dict[str, Any]) -> None:
    text = json.dumps(definition)
    assert "${" not in text
    for value in VARIABLES.values():
        assert value in text
    with pytest.raises(KeyError, match="approval_topic_arn"):
        statemachine.render({k: v for k, v in VARIABLES.items() if k != "approval_topic_arn"})
    with pytest.raises(KeyError, match="unknown template variable"):
        statemachine.render(VARIABLES, text='{"a": "${typo}"}')


def test_template_uses_only_terraform_safe_interpolation() -> None:
    text = statemachine.TEMPLATE.read_text()
    # templatefile() also treats %{ as a directive; every ${...} must be a declared variable.
    assert "%{" not in text
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == set(statemachine.VARIABLES)


def _targets(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    found += [catch["Next"] for catch in state.get("Catch", [])]
    return found


def _check_scope(scope: dict[str, Any]) -> None:
    names = set(scope["States"])
    reached, queue = set(), [scope["StartAt"]]
    while queue:
        name = queue.pop()
        if name in reached:
            continue
        assert name in names, f"{name!r} is a target but not a state of this scope"
        reached.add(name)
        state = scope["States"][name]
        ends = state.get("End") or state["Type"] in ("Succeed", "Fail")
        assert ends or _targets(state), f"{name!r} neither ends nor moves on"
        queue += _targets(state)
        for branch in [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]:
            _check_scope(branch)
    assert reached == names, f"unreachable states: {sorted(names - reached)}"


def test_an_independent_asl_validator_accepts_the_definition_and_catches_a_broken_one(
    definition: dict[str, Any], tmp_path: Path
) -> None:
    """statelint (PyPI; make lint runs it on the committed template) reads the Amazon States Language
    specification independently of our builder and of moto's interpreter."""
    statelint = Path(sys.executable).parent / "statelint"

    def lint(document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        (tmp_path / "definition.json").write_text(json.dumps(document))
        return subprocess.run(
            [str(statelint), str(tmp_path / "definition.json")], capture_output=True, text=True, check=False
        )

    result = lint(definition)
    # statelint predates ReaderConfig's InputType, which AWS documents (statemachine.STATELINT_GAPS)
    gap = ' Field "InputType" not allowed in State Machine.States.Segments.ItemReader.ReaderConfig'
    assert result.stdout.splitlines()[1:] == [gap]
    (tmp_path / "definition.json").write_text(json.dumps(definition))
    assert statemachine.lint(str(tmp_path / "definition.json")) == 0
    broken = copy.deepcopy(definition)
    first = broken["States"][broken["StartAt"]]
    first["Default"] = "No such state"
    result = lint(broken)
    assert result.returncode == 1
    assert 'No state found named "No such state"' in result.stdout + result.stderr


def test_every_transition_resolves_and_every_state_is_reachable(definition: dict[str, Any]) -> None:
    _check_scope(definition)
    all_states = asl.states(definition)

    def count(states: dict[str, Any]) -> int:  # every state, at any depth of branches and processors
        total = len(states)
        for state in states.values():
            inner = [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]
            total += sum(count(branch["States"]) for branch in inner)
        return total

    assert len(all_states) == count(definition["States"]), "state names must be unique across the machine"


def test_every_sagemaker_task_retries_transient_errors_and_catches_to_the_failure_path(
    definition: dict[str, Any],
) -> None:
    # Where a failed call is expected, its Catch leads on instead of to the failure path.
    expected_to_fail = {
        "Create model package group": "the group usually exists",
        "Find endpoint": "a new endpoint",
        "Find schedule": "a new schedule",
        "Find schedule to remove": "monitoring never ran",
        "Delete replaced job definition": "tidying only",
    }
    for name, state in asl.states(definition).items():
        if state["Type"] != "Task" or ":sagemaker" not in state["Resource"]:
            continue
        prefix = statemachine.SEGMENT if name.startswith(statemachine.SEGMENT) else ""
        name = name.removeprefix(statemachine.SEGMENT)  # a segment's states: the same
        if name not in expected_to_fail:
            assert state.get("Retry") == asl.retry_for(state["Resource"]), name
        if name in expected_to_fail:
            continue
        # the spot job's failure is read first: capacity may have missed it (stages/training.py)
        *first, catch = state["Catch"]
        spot = [
            {
                "ErrorEquals": ["States.TaskFailed"],
                "ResultPath": "$.results.training",
                "Next": f"{prefix}Spot capacity missed?",
            }
        ]
        assert first == (spot if name == "Training" else []), name
        assert catch["ErrorEquals"] == ["States.ALL"], name
        recorder = asl.states(definition)[catch["Next"]]
        assert recorder["ResultPath"] == "$.failure" and "stage" in recorder["Parameters"], name


def test_each_task_retries_only_error_names_its_integration_reports(definition: dict[str, Any]) -> None:
    """An aws-sdk Task never sees the optimised integration's SageMaker.AmazonSageMakerException, nor
    an optimised one <Service>.<Service>Exception: a name from the wrong list never matches."""
    for name, state in asl.states(definition).items():
        if state["Type"] != "Task" or "Retry" not in state or state["Resource"].startswith("arn:aws:states:::sns"):
            continue
        kind = asl.integration(state["Resource"])
        optimised = {"sagemaker": "SageMaker.", "lambda": "Lambda.", "dynamodb": "DynamoDB."}  # DynamoDB: uppercase DB
        prefix = optimised.get(kind) or (asl.SDK_SERVICES[kind.removeprefix("aws-sdk:")] + ".")
        retried = [error for retry in state["Retry"] for error in retry["ErrorEquals"]]
        assert retried and all(error.startswith(prefix) for error in retried), (name, retried)
        if kind.startswith("aws-sdk:"):
            assert f"{prefix}{prefix[:-1]}Exception" in retried, name  # throttling, 5xx
            assert "SageMaker.AmazonSageMakerException" not in retried, name


def test_failures_publish_a_real_notification_and_end_in_fail(definition: dict[str, Any]) -> None:
    notify = definition["States"]["Notify failure"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == VARIABLES["notification_topic_arn"]
    assert {"failed_stage.$", "error.$", "cause.$", "pipeline.$"} <= set(notify["Parameters"]["Message"])
    assert definition["States"]["Failed"]["Type"] == "Fail"
    # A gate that is not met fails the run; it never reaches Succeeded.
    assert definition["States"]["Quality gate not met"]["Next"] == "Notify failure?"


def test_every_stage_has_a_switch_that_skips_it_in_one_transition(definition: dict[str, Any]) -> None:
    choices = {
        rule["Variable"].removeprefix("$.run.")
        for state in asl.states(definition).values()
        if state["Type"] == "Choice"
        for rule in state["Choices"]
        if rule.get("Variable", "").startswith("$.run.")
    }
    assert choices == set(STAGES)


def _paths(state: dict[str, Any]) -> list[str]:
    """Every $.stages... path a state reads: InputPath, Parameters and Choice variables."""
    text = json.dumps({key: state.get(key) for key in ("InputPath", "Parameters", "Choices", "SecondsPath")})
    text += json.dumps(state.get("TimeoutSecondsPath"))
    return re.findall(r"\$\.stages\.[A-Za-z_.]+", text)


def test_states_read_only_what_the_planner_writes(definition: dict[str, Any]) -> None:
    tuned = load_item() | {
        "stages": load_item()["stages"] | {"tuning": load_item()["stages"]["tuning"] | {"run": True}}
    }
    tuned["stages"]["training"] = tuned["stages"]["training"] | {"run": False}
    unmonitored = load_item()
    unmonitored["stages"]["monitoring"] = unmonitored["stages"]["monitoring"] | {"run": False}
    spot = edited(load_item(), {"stages.training.spot": True})
    # served asynchronously, scaled from zero: every autoscaling request planned
    schedule = [{"name": "nights", "schedule": "cron(0 20 * * ? *)", "max": 1}]
    scaled = edited(
        load_item(),
        {"stages.deploy.mode": "async", "stages.deploy.autoscaling": {"max": 2, "schedule": schedule}},
    )
    packaged = serving_package(load_item())
    items = (load_item(), tuned, unmonitored, spot, scaled, packaged)
    inputs = [plan_execution(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS) for item in items]
    # a deployment whose models another account serves: its groups are shared
    sharing = dataclasses.replace(EXAMPLE_SETTINGS, model_consumer_accounts="444455556666")
    inputs.append(plan_execution(load_item(), SAMPLE_TRIGGER, sharing))

    def found(execution_input: dict[str, Any], keys: list[str]) -> bool:
        node: Any = execution_input
        for key in keys:
            if not (isinstance(node, dict) and key in node):
                return False
            node = node[key]
        return True

    read = 0
    for name, state in asl.states(definition).items():
        for path in _paths(state):
            keys = path.removeprefix("$.").split(".")
            planned = [i for i in inputs if i["run"][keys[1]]]
            assert planned, f"{name}: no planned input runs {keys[1]}"
            assert any(found(i, keys) for i in planned), f"{name}: {path} is not in the execution input"
            read += 1
    assert read > 20


@pytest.mark.parametrize(
    ("report", "gate", "met", "words"),
    [
        ({"regression_metrics": {"rmse": {"value": 0.5}}}, "<= 0.75", True, "= 0.5 (required <= 0.75)"),
        ({"regression_metrics": {"rmse": {"value": 0.91}}}, "<= 0.75", False, "not met: regression_metrics.rmse"),
        ({"regression_metrics": {"rmse": {"value": 0.75}}}, "< 0.75", False, "= 0.75 (required < 0.75)"),
        ({"regression_metrics": {"mae": {"value": 0.1}}}, "<= 0.75", False, "regression_metrics holds: mae"),
        ({"regression_metrics": {"rmse": {"value": "0.5"}}}, "<= 0.75", False, "not a number"),
        ({"regression_metrics": {"rmse": {"value": True}}}, "<= 0.75", False, "not a number"),
        ([], "<= 0.75", False, "a list, not an object"),
    ],
)
def test_quality_gate_verdict_names_metric_value_and_threshold(report: Any, gate: str, met: bool, words: str) -> None:
    symbol, threshold = gate.split()
    comparison = {"<=": "less_than_or_equal", "<": "less_than"}[symbol]
    verdict = evaluate(report, {"metric": "regression_metrics.rmse.value", "comparison": comparison, "threshold": 0.75})
    assert verdict["met"] is met
    assert words in verdict["message"]
    assert verdict["threshold"] == float(threshold)


def test_the_quality_gate_reads_the_report_from_s3_so_no_report_travels_in_the_state() -> None:
    import boto3
    from moto import mock_aws

    from mlops_sfn.core.stages.quality_gate import MAX_REPORT_BYTES, ReportUnreadable, handler

    gate = {"metric": "rmse", "comparison": "less_than", "threshold": 1}
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="mlops-dev-artifacts")
        put = lambda key, body: s3.put_object(Bucket="mlops-dev-artifacts", Key=key, Body=body)  # noqa: E731
        put("ok.json", json.dumps({"rmse": 0.5, "padding": "x" * 300_000}))  # larger than a state may hold
        put("broken.json", "{not json")
        put("huge.json", b" " * (MAX_REPORT_BYTES + 1))
        at = lambda key: {"report": {"Bucket": "mlops-dev-artifacts", "Key": key}, "gate": gate}  # noqa: E731

        assert handler(at("ok.json"), None)["met"] is True
        for key, words in [
            ("missing.json", "no evaluation report at s3://mlops-dev-artifacts/missing.json"),
            ("broken.json", "is not JSON"),
            ("huge.json", "write only the metrics there"),
        ]:
            with pytest.raises(ReportUnreadable, match=words):
                handler(at(key), None)


def test_a_report_s3_refuses_with_403_reads_as_missing() -> None:
    """The gate's role has no s3:ListBucket: on AWS a missing report answers 403 AccessDenied, not 404
    (S3 API reference, GetObject, "Permissions"), and the run must still say what is missing."""
    import boto3
    from botocore.stub import Stubber

    from mlops_sfn.core.stages.quality_gate import ReportUnreadable, read_report

    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stubbed:
        stubbed.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ReportUnreadable, match=r"no evaluation report at s3://b/runs/r/report\.json"):
            read_report({"Bucket": "b", "Key": "runs/r/report.json"}, s3)
        stubbed.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(s3.exceptions.ClientError):
            read_report({"Bucket": "b", "Key": "runs/r/report.json"}, s3)


# The errors each integration reports for a transient failure, pinned here from AWS's documentation
# rather than read from the code that builds the Retry (a Retry compared with its own builder proves
# nothing): Step Functions guide, "Handling errors" and "Handle transient Lambda service exceptions"
# (the four Lambda names); SageMaker API reference, ResourceLimitExceededException on every Create;
# "Call DynamoDB APIs with Step Functions" (DynamoDB.<error>, upper-case DB); "Using AWS SDK service
# integrations" (an aws-sdk Task reports <Service>.<Service>Exception for what the API does not model,
# throttling and 5xx included, and <Service>.SdkClientException for the client's own failures).
RETRIED = {
    "sagemaker": {"SageMaker.AmazonSageMakerException", "SageMaker.ResourceLimitExceededException"},
    "lambda": {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    },
    "dynamodb": {
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.ThrottlingException",
        "DynamoDB.InternalServerError",
        "DynamoDB.AmazonDynamoDBException",
    },
    "aws-sdk:sagemaker": {
        "SageMaker.SageMakerException",
        "SageMaker.SdkClientException",
        "SageMaker.ResourceLimitExceededException",
    },
    "aws-sdk:cloudwatch": {"CloudWatch.CloudWatchException", "CloudWatch.SdkClientException"},
    "aws-sdk:applicationautoscaling": {
        "ApplicationAutoScaling.ApplicationAutoScalingException",
        "ApplicationAutoScaling.SdkClientException",
        "ApplicationAutoScaling.ConcurrentUpdateException",
    },
    # SNS publishes: any failure is retried, except an approver's answer and the approval's timeout.
    "arn:aws:states:::sns:publish": {"States.ALL"},
    "arn:aws:states:::sns:publish.waitForTaskToken": {"States.ALL"},
}


def test_every_task_retries_what_aws_documents_as_transient_and_catches_the_rest(definition: dict[str, Any]) -> None:
    # A task inside an inline Map cannot catch to a state outside it: its Map catches for it.
    inline = {
        inner: state
        for state in asl.states(definition).values()
        if state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "INLINE"
        for inner in state["ItemProcessor"]["States"]
    }
    assert inline, "the deploy's scheduled actions are put from an inline Map"
    # and its tasks count as the stage's its Map's catch records (status, logs, timings)
    assert set(inline) <= set(asl.stage_tasks(definition)["deploy"])
    for name, state in asl.states(definition).items():
        if state["Type"] != "Task":
            continue
        kind = asl.integration(state["Resource"])
        retried = {error for retry in state["Retry"] if retry.get("MaxAttempts") != 0 for error in retry["ErrorEquals"]}
        assert retried == RETRIED[kind], (name, sorted(retried))
        catches = inline.get(name, state)["Catch"]
        assert any(catch["ErrorEquals"] == ["States.ALL"] for catch in catches), name
    approval = asl.states(definition)["Ask for approval"]
    never = [retry for retry in approval["Retry"] if retry.get("MaxAttempts") == 0]
    assert never == [{"ErrorEquals": ["Rejected", "States.Timeout"], "MaxAttempts": 0}]  # an answer is final
    assert asl.states(definition)["Notify success"]["Catch"][0]["Next"] == "Succeeded"


def test_the_two_endpoint_waits_count_separately_and_each_is_bounded(definition: dict[str, Any]) -> None:
    states = asl.states(definition)
    assert states["Create endpoint config"]["ResultSelector"] == {"busy": {"count": 0}, "wait": {"count": 0}}
    assert states["Count busy check"]["ResultPath"] == "$.results.deploy.busy"
    assert states["Busy too long?"]["Choices"][0]["Variable"] == "$.results.deploy.busy.count"
    assert states["Count endpoint check"]["ResultPath"] == "$.results.deploy.wait"
    bounded = [c for c in states["Endpoint status?"]["Choices"] if c.get("Next") == "Endpoint wait timed out"]
    assert bounded[0]["Variable"] == "$.results.deploy.wait.count"
    final = {c["StringEquals"] for c in states["Endpoint status?"]["Choices"] if c.get("Next") == "Endpoint failed"}
    assert final == {"Failed", "UpdateRollbackFailed"}
