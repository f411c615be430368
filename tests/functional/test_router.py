"""The router against moto: every event shape, exactly one execution per upload, nothing lost."""

from __future__ import annotations

import copy
import importlib.util
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from mlops_sfn.core import contract
from mlops_sfn.core.plan import plan_execution
from mlops_sfn.core.router import Config, ConfigurationError, RejectedEvent, Router
from mlops_sfn.core.settings import Settings
from mlops_sfn.core.triggers import parse_event
from tests import aws
from tests.aws import BUCKET, Stack, deploy
from tests.conftest import DEMO, ROOT, STARTING_EVENTS, edited, load_event, load_item

pytestmark = pytest.mark.functional

PREFIX = "input/demo-dev-domain-cal-house-price/"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item(), load_item("demo-dev-train-and-batch-score")])


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("fixture", STARTING_EVENTS)
def test_each_event_shape_starts_one_execution_with_the_planned_input(stack: Stack, fixture: str) -> None:
    event = load_event(fixture)
    summary = stack.router().handle(event, "req-1")

    assert summary["started"] == 1 and summary["duplicates"] == 0 and summary["skipped"] == 0
    (execution,) = stack.executions()
    assert summary["executions"] == [execution["name"]]
    # The same code as `mlops-sfn plan` built it: only the delivery stamp is added.
    (trigger,) = parse_event(event, "req-1")
    if trigger.source == "schedule":  # it names no upload: the router adds the newest verified one
        newest = aws.FIXTURE_MANIFEST_KEYS[0]  # the fixtures' two: the greater key, put last
        etag = stack.s3.head_object(Bucket=BUCKET, Key=newest)["ETag"].strip('"')
        trigger = replace(trigger, bucket=BUCKET, key=newest, etag=etag)
    expected = plan_execution(load_item(), trigger, Settings.from_environment(stack.environment))
    assert stack.execution_input(execution["name"]) == expected | {"delivery": {"request_id": "req-1"}}


def test_an_upload_runs_from_the_folder_it_was_uploaded_to(stack: Stack) -> None:
    key = "input/demo-dev-train-and-batch-score/2024-06-01/_SUCCESS"
    stack.router().handle(stack.s3_event(key), "req-1")
    (execution,) = stack.executions()
    training = stack.execution_input(execution["name"])["stages"]["training"]["request"]
    channel = training["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == f"s3://{BUCKET}/input/demo-dev-train-and-batch-score/2024-06-01/train/"


def test_burst_of_1000_events_for_one_upload_starts_one_execution(stack: Stack) -> None:
    # An upload of many files plus its manifest, every object delivered several times, in any order.
    parts = [stack.s3_event(f"{PREFIX}data/part-{n:04d}.csv", upload=f"p{n}") for n in range(200)]
    events = parts * 4 + [stack.s3_event(f"{PREFIX}manifest.json", upload="m1")] * 200
    random.Random(7).shuffle(events)
    assert len(events) == 1000
    router = stack.router()

    totals = {"started": 0, "duplicates": 0, "skipped": 0}
    for number, event in enumerate(events):
        summary = router.handle(event, f"req-{number}")
        for key in totals:
            totals[key] += summary[key]

    assert len(stack.executions()) == 1
    assert totals == {"started": 1, "duplicates": 199, "skipped": 800}


def test_redelivery_and_lambda_retry_start_nothing_new(stack: Stack) -> None:
    event = load_event("s3_object_created")
    assert stack.router().handle(event, "req-1")["started"] == 1
    # A redelivery (new request id) in a fresh container, and a batch holding the same message twice.
    assert stack.router().handle(copy.deepcopy(event), "req-2")["duplicates"] == 1
    batch = load_event("sqs_s3_object_created")
    batch["Records"] *= 2
    assert stack.router().handle(batch, "req-3") == {"started": 0, "duplicates": 2, "skipped": 0, "executions": []}
    assert len(stack.executions()) == 1


def test_a_new_upload_of_the_same_files_starts_a_new_run(stack: Stack) -> None:
    router = stack.router()
    router.handle(stack.s3_event(f"{PREFIX}manifest.json", upload="first"), "req-1")
    router.handle(stack.s3_event(f"{PREFIX}manifest.json", upload="second"), "req-2")
    assert len(stack.executions()) == 2


def test_numbers_stored_in_dynamodb_reach_the_execution_as_json_numbers(stack: Stack) -> None:
    stored = stack.dynamodb.get_item(TableName="mlops-test-pipelines", Key={"consumption_pipeline_name": {"S": DEMO}})
    assert stored["Item"]["quality_gate"]["M"]["threshold"] == {"N": "0.75"}  # DynamoDB holds them as N

    stack.router().handle(load_event("manual"), "req-1")
    (execution,) = stack.executions()
    execution_input = stack.execution_input(execution["name"])
    assert execution_input["quality_gate"]["threshold"] == 0.75
    count = execution_input["stages"]["training"]["request"]["ResourceConfig"]["InstanceCount"]
    assert count == 1 and isinstance(count, int)


def test_part_of_an_upload_is_skipped_with_a_log_line(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    summary = stack.router().handle(load_event("s3_object_created_part_of_upload"), "req-1")
    assert summary == {"started": 0, "duplicates": 0, "skipped": 1, "executions": []}
    assert stack.executions() == []
    (line,) = log_lines(capsys)
    assert line["outcome"] == "skipped" and line["pipeline"] == DEMO
    assert "complete_on" in line["reason"]


@pytest.mark.parametrize("fixture", ["manual", "scheduled", "records_legacy"])
def test_a_run_named_for_a_disabled_pipeline_is_skipped_with_a_log_line(
    stack: Stack, capsys: pytest.CaptureFixture[str], fixture: str
) -> None:
    stack.put_item(edited(load_item(), {"enabled": False}))
    summary = stack.router().handle(load_event(fixture), "req-1")
    assert summary["skipped"] == 1 and stack.executions() == []
    (line,) = log_lines(capsys)
    assert line["outcome"] == "skipped" and "disabled" in line["reason"]


def test_an_upload_for_a_disabled_pipeline_is_kept_for_replay(stack: Stack) -> None:
    # A disabled item owns no prefix: its upload is dead-lettered with the reason, and replays once enabled.
    stack.put_item(edited(load_item(), {"enabled": False}))
    with pytest.raises(RejectedEvent, match=f"{DEMO} declares '{PREFIX}' but it is disabled") as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    assert raised.value.rejections[0]["pipeline"] == DEMO and stack.executions() == []
    stack.put_item(load_item())
    assert stack.router().handle(load_event("s3_object_created"), "req-2")["started"] == 1


def test_one_json_log_line_per_decision(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.router().handle(load_event("s3_object_created"), "req-1")
    (line,) = log_lines(capsys)
    assert line["outcome"] == "started"
    assert line["pipeline"] == DEMO
    assert line["trigger"]["object"] == f"s3://{BUCKET}/{PREFIX}manifest.json"
    assert line["execution_name"] == stack.executions()[0]["name"]
    assert line["request_id"] == "req-1"


def test_unknown_pipeline_starts_nothing_and_raises_the_documented_error(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("manual") | {"consumption_pipeline_name": "no-such-pipeline"}
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(event, "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["pipeline"] == "no-such-pipeline" and rejection["field"] == "consumption_pipeline_name"
    assert stack.executions() == []
    (line,) = log_lines(capsys)
    assert line["outcome"] == "rejected" and line["pipeline"] == "no-such-pipeline" and line["level"] == "error"


def test_upload_outside_every_prefix_is_rejected(stack: Stack) -> None:
    with pytest.raises(
        RejectedEvent, match=r"no enabled, valid pipeline's trigger\.prefix holds 'input/stray/manifest\.json'"
    ):
        stack.router().handle(stack.s3_event("input/stray/manifest.json"), "req-1")
    assert stack.executions() == []


def test_upload_to_another_bucket_is_rejected(stack: Stack) -> None:
    with pytest.raises(RejectedEvent, match=r"detail\.bucket\.name"):
        stack.router().handle(stack.s3_event(f"{PREFIX}manifest.json", bucket="someone-elses-bucket"), "req-1")
    assert stack.executions() == []


def test_invalid_item_starts_nothing_and_the_error_names_the_field(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.put_item(edited(load_item(), {"stages.training.request.ResourceConfig.InstanceType": "ml.m5.huge"}))
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["pipeline"] == DEMO
    assert rejection["field"] == "stages.training.request.ResourceConfig.InstanceType"
    assert "ml.m5.huge" in str(raised.value)
    assert stack.executions() == []
    (line,) = log_lines(capsys)
    assert line["field"] == "stages.training.request.ResourceConfig.InstanceType" and line["outcome"] == "rejected"


def test_an_item_naming_an_endpoint_outside_the_deployment_starts_nothing(stack: Stack) -> None:
    # Whoever can edit the table must not be able to redeploy an unrelated endpoint through it.
    stack.put_item(edited(load_item(), {"stages.deploy.endpoint_name": "payments-fraud"}))
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "stages.deploy.endpoint_name"
    assert "names start with 'mlops-dev-'" in rejection["reason"]
    assert stack.executions() == []


def test_an_item_reading_a_bucket_the_deployment_cannot_reach_starts_nothing(stack: Stack) -> None:
    # Edited in the console, it would fail with AccessDenied after preprocessing: refuse it now.
    stack.put_item(edited(load_item(), {"stages.training.request.OutputDataConfig.S3OutputPath": "s3://elsewhere/m/"}))
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "stages.training.request.OutputDataConfig.S3OutputPath"
    assert "bucket 'elsewhere' is outside this deployment" in rejection["reason"]
    assert stack.executions() == []


def test_a_data_bucket_declared_in_the_routers_environment_may_be_read(stack: Stack) -> None:
    channel = "stages.training.request.InputDataConfig[0].DataSource.S3DataSource.S3Uri"
    stack.put_item(edited(load_item(), {channel: "s3://team-datasets/houses/"}))
    with pytest.raises(RejectedEvent) as raised:  # not declared: the SageMaker role could not read it
        stack.router().handle(load_event("s3_object_created"), "req-1")
    assert raised.value.rejections[0]["field"] == channel and stack.executions() == []
    stack.environment[contract.ROUTER_ENVIRONMENT["data_buckets"]] = "team-datasets"  # what Terraform sets
    result = stack.router().handle(load_event("s3_object_created"), "req-2")
    assert result["started"] == 1 and len(stack.executions()) == 1


def test_the_deployments_tags_and_required_tags_come_from_the_routers_environment(stack: Stack) -> None:
    """required_tags (REQUIRED_TAGS): an item without one starts nothing and its upload is kept for
    replay, naming the key; once the item sets it, every Create request of the run carries the run's
    tags, the item's and the deployment's (DEPLOYMENT_TAGS), as Terraform sets them."""
    stack.environment[contract.ROUTER_ENVIRONMENT["required_tags"]] = "cost-center"
    stack.environment[contract.ROUTER_ENVIRONMENT["deployment_tags"]] = '{"mlops-sfn:environment":"dev","team":"ml"}'
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "tags" and "cost-center" in rejection["reason"] and stack.executions() == []
    stack.put_item(load_item() | {"tags": {"cost-center": "ml-42"}})
    assert stack.router().handle(load_event("s3_object_created"), "req-2")["started"] == 1
    (execution,) = stack.executions()
    training = stack.execution_input(execution["name"])["stages"]["training"]["request"]
    assert {tag["Key"]: tag["Value"] for tag in training["Tags"]} == {
        "mlops-sfn:environment": "dev",
        "team": "ml",
        "cost-center": "ml-42",
        "mlops-sfn:pipeline": DEMO,
        "mlops-sfn:execution": execution["name"],
        "mlops-sfn:stage": "training",
    }


def test_a_run_above_the_items_budget_starts_nothing_unless_started_over_budget(stack: Stack) -> None:
    """budget_usd: the router refuses an upload's run whose estimate is above it (kept for a replay,
    naming the budget and the estimate); a manual run with over_budget starts, its trigger saying so."""
    stack.put_item(load_item() | {"budget_usd": 1})
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "budget_usd" and "above budget_usd 1" in rejection["reason"]
    assert stack.executions() == []
    manual = {"consumption_pipeline_name": DEMO, "run_id": "accepted-cost"}
    with pytest.raises(RejectedEvent):
        stack.router().handle(manual, "req-2")
    assert stack.router().handle(manual | {"over_budget": True}, "req-3")["started"] == 1
    (execution,) = stack.executions()
    started = stack.execution_input(execution["name"])
    assert started["trigger"]["over_budget"] is True and started["estimate"]["usd"] > 1


def test_an_item_whose_run_input_would_be_too_large_starts_nothing(stack: Stack) -> None:
    values = {f"h{n}": "x" * 2500 for n in range(80)}  # each within SageMaker's limits
    stack.put_item(edited(load_item(), {"stages.training.request.HyperParameters": values}))
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("s3_object_created"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "stages.training" and "262,144" in rejection["reason"]
    assert stack.executions() == []


def test_a_batch_starts_its_valid_triggers_then_rejects_the_rest(stack: Stack) -> None:
    good = load_event("records_legacy")["Records"][0]
    bad = copy.deepcopy(good)
    bad["body"]["consumption_pipeline_name"] = "no-such-pipeline"
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle({"Records": [bad, good]}, "req-1")
    assert [r["pipeline"] for r in raised.value.rejections] == ["no-such-pipeline"]
    assert len(stack.executions()) == 1
    # Replaying the whole event from the dead-letter queue once the item exists starts only the missing run.
    stack.put_item(edited(load_item(), {"consumption_pipeline_name": "no-such-pipeline", "trigger.prefix": "input/x/"}))
    summary = stack.router().handle({"Records": [bad, good]}, "req-2")
    assert (summary["started"], summary["duplicates"]) == (1, 1)


def test_an_item_added_after_the_prefix_map_was_read_is_found(stack: Stack) -> None:
    router = stack.router()
    router.handle(load_event("s3_object_created"), "req-1")  # reads the prefix map
    new = edited(load_item(), {"consumption_pipeline_name": "demo-dev-new", "trigger.prefix": "input/new/"})
    stack.put_item(new)
    assert router.handle(stack.s3_event("input/new/manifest.json"), "req-2")["started"] == 1


def test_an_item_whose_prefix_moved_is_read_again(stack: Stack) -> None:
    router = stack.router()
    router.handle(load_event("s3_object_created"), "req-1")
    stack.put_item(edited(load_item(), {"trigger.prefix": "input/moved/"}))
    with pytest.raises(RejectedEvent, match=r"no enabled, valid pipeline's trigger\.prefix holds"):
        router.handle(stack.s3_event(f"{PREFIX}manifest.json", upload="e2"), "req-2")
    assert router.handle(stack.s3_event("input/moved/manifest.json", upload="e3"), "req-3")["started"] == 1


def test_two_valid_items_with_one_prefix_are_rejected_naming_both_pipelines(stack: Stack) -> None:
    stack.put_item(edited(load_item(), {"consumption_pipeline_name": "demo-dev-twin"}))
    with pytest.raises(RejectedEvent, match=f"pipelines {DEMO}, demo-dev-twin all have trigger.prefix '{PREFIX}'"):
        stack.router().handle(stack.s3_event(f"{PREFIX}manifest.json"), "req-1")
    assert stack.executions() == []


def test_nested_prefixes_send_an_upload_to_the_longest_with_a_warning(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    inner = edited(load_item(), {"consumption_pipeline_name": "demo-dev-inner", "trigger.prefix": PREFIX + "a/"})
    stack.put_item(inner)
    router = stack.router()
    (inner_run,) = router.handle(stack.s3_event(f"{PREFIX}a/manifest.json"), "req-1")["executions"]
    (outer_run,) = router.handle(stack.s3_event(f"{PREFIX}b/manifest.json"), "req-2")["executions"]
    assert inner_run.startswith("demo-dev-inner-") and outer_run.startswith(f"{DEMO}-")
    warning = next(line for line in log_lines(capsys) if line["level"] == "warning")
    assert warning["pipeline"] == "demo-dev-inner" and DEMO in warning["reason"]


class _Body:
    """The raw body botocore reads an HTTP response from (AWSResponse.content calls stream())."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def throttle(client: Any, operation: str, times: int, code: str) -> list[int]:
    """Make AWS refuse the next `times` calls of `operation` on `client` with a throttling error.

    The refusal is the HTTP answer AWS's JSON protocols send (status 400, the error type in `__type`),
    given with botocore's public `before-send` event, so the client's own retry handler sees what it
    would see from AWS. No moto internals are involved."""
    calls: list[int] = []

    def refuse(request: Any, **_: Any) -> AWSResponse | None:
        calls.append(1)
        if len(calls) > times:
            return None  # sent to (moto's) AWS as usual
        # Every before-send handler is called, moto's too: pointed at a reserved name (RFC 2606), the
        # refused attempt matches none of moto's endpoints, so it reaches no (moto) AWS.
        request.url = "https://throttled.invalid/"
        body = json.dumps({"__type": code, "message": "Rate exceeded"}).encode()
        headers = {"x-amzn-RequestId": f"throttled-{len(calls)}", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Body(body))

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-send.{service}.{operation}", refuse)
    return calls


def test_throttling_is_retried_with_backoff_then_succeeds(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", sleeps.append)
    router = stack.router()
    throughput = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    get_item = throttle(router.dynamodb, "GetItem", 2, throughput)
    start = throttle(router.stepfunctions, "StartExecution", 2, "ThrottlingException")

    assert router.handle(load_event("manual"), "req-1")["started"] == 1
    assert (len(get_item), len(start)) == (3, 3)  # two refusals, then the call that reached AWS
    assert len(sleeps) == 4 and all(delay > 0 for delay in sleeps)
    assert len(stack.executions()) == 1


def test_throttling_that_outlasts_the_retries_raises_for_lambda_to_retry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _: None)
    router = stack.router()
    calls = throttle(router.stepfunctions, "StartExecution", 99, "ThrottlingException")
    with pytest.raises(router.stepfunctions.exceptions.ClientError, match="Throttling"):
        router.handle(load_event("manual"), "req-1")
    assert len(calls) == 5  # botocore's standard mode: five attempts in all
    assert stack.executions() == []


def counted_calls(router: Any) -> list[str]:
    calls: list[str] = []
    for client in (*router.clients, router.s3):
        client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def test_two_aws_calls_per_started_execution_when_warm(stack: Stack) -> None:
    # A suffix marker: the item, then the start.
    router = stack.router()
    folder = "input/demo-dev-train-and-batch-score/"
    router.handle(stack.s3_event(f"{folder}0/_SUCCESS"), "req-0")  # cold: also reads the prefix map once
    calls = counted_calls(router)
    for n in range(1, 4):
        router.handle(stack.s3_event(f"{folder}{n}/_SUCCESS"), f"req-{n}")
    assert calls == ["GetItem", "StartExecution"] * 3


def test_a_manifest_costs_a_read_and_one_listing_per_folder_it_lists_files_in(stack: Stack) -> None:
    # Not the whole upload root: it may hold earlier uploads in other subfolders.
    router = stack.router()
    router.handle(load_event("s3_object_created"), "req-0")
    calls = counted_calls(router)
    for n in range(1, 4):
        files = []
        for key in (f"{PREFIX}{n}/data/a.csv", f"{PREFIX}{n}/data/b.csv", f"{PREFIX}{n}/code/train.py"):
            etag = stack.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")["ETag"]
            files.append({"key": key, "etag": etag})
        manifest = json.dumps({"files": files}).encode()
        etag = stack.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{n}/manifest.json", Body=manifest)["ETag"]
        event = load_event("s3_object_created")
        event["detail"]["object"].update(key=f"{PREFIX}{n}/manifest.json", etag=etag.strip('"'))
        assert router.handle(event, f"req-{n}")["started"] == 1
    assert calls == ["GetItem", "GetObject", "ListObjectsV2", "ListObjectsV2", "StartExecution"] * 3


# --- the Lambda entry point ---------------------------------------------------------------------


def load_handler() -> Any:
    spec = importlib.util.spec_from_file_location("router_handler", ROOT / "lambdas" / "router" / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lambda_handler_routes_an_event(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in stack.environment.items():
        monkeypatch.setenv(name, value)
    handler = load_handler()
    summary = handler.handler(load_event("scheduled"), SimpleNamespace(aws_request_id="lambda-req"))
    assert summary["started"] == 1
    assert stack.execution_input(summary["executions"][0])["delivery"] == {"request_id": "lambda-req"}


def test_lambda_cold_start_names_every_missing_or_malformed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_TABLE", raising=False)
    monkeypatch.delenv("DEFAULT_IMAGE_URI", raising=False)
    monkeypatch.setenv("STATE_MACHINE_ARN", "my-state-machine")
    monkeypatch.setenv("ARTIFACT_BUCKET", BUCKET)
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/r")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("PREFIX_CACHE_SECONDS", "soon")
    monkeypatch.setenv("DEPLOYMENT_TAGS", '["team"]')
    with pytest.raises(ConfigurationError) as raised:
        load_handler()
    message = str(raised.value)
    for expected in ("PIPELINE_TABLE is not set", "DEFAULT_IMAGE_URI is not set", "STATE_MACHINE_ARN='my-state"):
        assert expected in message
    assert "PREFIX_CACHE_SECONDS='soon'" in message
    assert "DEPLOYMENT_TAGS='[\"team\"]': expected a JSON object of tag keys and values" in message


IMPORT_GUARD = """
import importlib.abc, json, sys
# What the Lambda runtime provides besides the standard library: boto3 and its dependencies.
ALLOWED = {"mlops_sfn", "router_handler", "boto3", "botocore", "jmespath", "dateutil", "urllib3", "s3transfer", "six"}
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in ALLOWED and top not in sys.stdlib_module_names:
            raise ImportError(f"the router imported {name}, which the Lambda zip does not hold")
        return None
sys.meta_path.insert(0, Guard())
import importlib.util
spec = importlib.util.spec_from_file_location("router_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from mlops_sfn.core.plan import check_with_sample
from mlops_sfn.core.router import aws_clients
item = json.load(open(sys.argv[2]))
assert check_with_sample(item) == []  # loads the lazily imported SageMaker model too
aws_clients("us-east-1")
print("ok")
"""


def test_the_router_imports_only_what_the_lambda_runtime_has(tmp_path: Path) -> None:
    environment = {
        "AWS_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
        **contract.router_environment(
            {
                "table_name": "t-able",
                "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
                "bucket": BUCKET,
                "sagemaker_role_arn": "arn:aws:iam::123456789012:role/r",
                "default_image_uri": "image",
                "sagemaker_name_prefix": "mlops-dev-",
                "image_repository_arns": "arn:aws:ecr:us-east-1:683313688378:repository/*",
            }
        ),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_GUARD,
            str(ROOT / "lambdas/router/handler.py"),
            str(ROOT / f"dynamodb_items/{DEMO}.json"),
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_router_needs_only_the_settings_it_documents() -> None:
    from mlops_sfn.core.router import ENVIRONMENT, OPTIONAL_ENVIRONMENT

    page = (ROOT / "docs" / "router.md").read_text()
    for name in [*ENVIRONMENT, *OPTIONAL_ENVIRONMENT]:
        assert f"`{name}`" in page, f"docs/router.md does not document {name}"


# -- step caching ---------------------------------------------------------------------------------


def cached_training(stack: Stack) -> dict[str, Any]:
    item = edited(load_item("demo-dev-train-and-batch-score"), {"stages.training.cache": {"enabled": True}})
    stack.put_item(item)
    for key in ("code/sourcedir.tar.gz", "train/part-1.csv"):
        stack.s3.put_object(Bucket=BUCKET, Key=f"input/demo-dev-train-and-batch-score/{key}", Body=b"x")
    return item


def manual(run_id: str) -> dict[str, Any]:
    return {"consumption_pipeline_name": "demo-dev-train-and-batch-score", "run_id": run_id}


def test_a_stage_the_ledger_has_a_live_record_of_starts_reused(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    cached_training(stack)
    stack.router().handle(manual("one"), "req-1")
    (first,) = [stack.execution_input(e["name"]) for e in stack.executions()]
    entry = first["cache"]["training"]
    assert "reused" not in first
    job = first["stages"]["training"]["request"]["TrainingJobName"]
    model_key = f"{first['run_folder']}training/{job}/output/model.tar.gz".removeprefix(f"s3://{BUCKET}/")
    stack.s3.put_object(Bucket=BUCKET, Key=model_key, Body=b"model")  # what the training job wrote
    stack.dynamodb.put_item(  # what the state machine's "Record training" writes once training succeeded
        TableName=aws.LEDGER,
        Item={
            "cache_key": {"S": entry["key"]},
            "stage": {"S": "training"},
            "execution": {"S": first["execution_name"]},
            "run_folder": {"S": first["run_folder"]},
            "name": {"S": job},
            "results": {"S": json.dumps({"job_name": "t1", "model_data_url": first["run_folder"] + "m.tar.gz"})},
            "recorded_at": {"S": datetime.now(UTC).isoformat()},
            "expires_at": {"N": str(entry["expires_at"])},
        },
    )
    stack.succeed(first["execution_name"])
    capsys.readouterr()
    stack.router().handle(manual("two"), "req-2")
    second = next(stack.execution_input(e["name"]) for e in stack.executions() if e["name"] != first["execution_name"])
    assert second["reused"] == {"training": first["execution_name"]}
    assert second["results"]["training"]["model_data_url"] == first["run_folder"] + "m.tar.gz"
    model = second["stages"]["create_model"]["request"]["PrimaryContainer"]["ModelDataUrl"]
    assert model.startswith(f"{first['run_folder']}training/{job}/")
    (line,) = [line for line in log_lines(capsys) if line.get("outcome") == "started"]
    assert line["cache"] == {"training": {"reused_from": first["execution_name"]}}


def test_new_data_under_a_cached_stages_input_is_a_miss(stack: Stack) -> None:
    cached_training(stack)
    stack.router().handle(manual("one"), "req-1")
    (first,) = [stack.execution_input(e["name"]) for e in stack.executions()]
    stack.s3.put_object(Bucket=BUCKET, Key="input/demo-dev-train-and-batch-score/train/part-2.csv", Body=b"y")
    stack.router().handle(manual("two"), "req-2")
    second = next(stack.execution_input(e["name"]) for e in stack.executions() if e["name"] != first["execution_name"])
    assert second["cache"]["training"]["key"] != first["cache"]["training"]["key"]


def test_a_cached_stage_whose_input_is_empty_runs_uncached_with_the_reason_logged(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.put_item(edited(load_item("demo-dev-train-and-batch-score"), {"stages.training.cache": {"enabled": True}}))
    assert stack.router().handle(manual("one"), "req-1")["started"] == 1
    (started,) = [stack.execution_input(e["name"]) for e in stack.executions()]
    assert "cache" not in started
    (line,) = [line for line in log_lines(capsys) if line.get("outcome") == "started"]
    assert "nothing there" in line["cache"]["training"]["not_cached"]


def test_without_a_ledger_in_its_environment_the_router_caches_nothing(stack: Stack) -> None:
    cached_training(stack)
    environment = {k: v for k, v in stack.environment.items() if k != contract.ROUTER_ENVIRONMENT["ledger_table_name"]}
    Router(Config.from_environment(environment)).handle(manual("one"), "req-1")
    (started,) = [stack.execution_input(e["name"]) for e in stack.executions()]
    assert "cache" not in started and "reused" not in started


def test_an_unreadable_ledger_starts_the_run_uncached(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    cached_training(stack)
    stack.dynamodb.delete_table(TableName=aws.LEDGER)
    assert stack.router().handle(manual("one"), "req-1")["started"] == 1
    (started,) = [stack.execution_input(e["name"]) for e in stack.executions()]
    assert "cache" not in started and "reused" not in started
    (line,) = [line for line in log_lines(capsys) if line.get("outcome") == "started"]
    assert line["cache"]["training"] == {"not_cached": "the run ledger: ResourceNotFoundException"}
