"""The local runtime's fills, each on its own (moto in-process): EventBridge delivery, Lambda
containers and asynchronous invocations, the worker protocol, script jobs and local endpoints."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from mlops_sfn.local import demo_data, deployment, events, task_permissions
from mlops_sfn.local.functions import LocalLambda
from mlops_sfn.local.jobs import JobError, LocalEndpoints, ScriptJobs, middle_of, read_metrics
from mlops_sfn.local.stack import MotoServer
from mlops_sfn.local.worker import Worker, WorkerError
from mlops_sfn.tools import package
from tests.aws import eventbridge_may_send
from tests.conftest import ROOT

pytestmark = pytest.mark.functional

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "local-runtime-tests"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def client(service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region)


# --- EventBridge ----------------------------------------------------------------------------------


def test_s3_events_are_delivered_with_awss_field_names_and_time_format() -> None:
    moto_event = {"time": 1717181028.0, "detail": {"object": {"key": "a.csv", "eTag": "abc"}}}
    delivered = events.as_delivered(moto_event)
    assert delivered["time"] == "2024-05-31T18:43:48Z"
    assert delivered["detail"]["object"] == {"key": "a.csv", "etag": "abc"}
    assert moto_event["detail"]["object"] == {"key": "a.csv", "eTag": "abc"}  # the original is left alone


def test_s3_event_keys_are_url_encoded_as_s3_writes_them_and_rules_match_the_encoded_key(aws: None) -> None:
    # S3 form-encodes the key in its events ('/' kept); a rule's prefix filter sees that encoded key, so a
    # prefix holding a character S3 encodes would never match. A permissive local AWS would hide both.
    invoked: list[tuple[str, Any]] = []
    uninstall = events.install(lambda arn, event, account, region: invoked.append((arn.rsplit(":", 1)[1], event)))
    try:
        s3, bus = client("s3"), client("events")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        for name, prefix in [("encoded", "input/dt%3D2024-05-31/"), ("raw", "input/dt=2024-05-31/")]:
            pattern = {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"object": {"key": [{"prefix": prefix}]}},
            }
            bus.put_rule(Name=name, EventPattern=json.dumps(pattern))
            bus.put_targets(
                Rule=name, Targets=[{"Id": "t", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"}]
            )
        s3.put_object(Bucket=BUCKET, Key="input/dt=2024-05-31/a b+c é%.csv", Body=b"x\n")
    finally:
        uninstall()
    assert [name for name, _ in invoked] == ["encoded"]
    assert invoked[0][1]["detail"]["object"]["key"] == "input/dt%3D2024-05-31/a+b%2Bc+%C3%A9%25.csv"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{"key": <key>}', {"key": "in/a.csv"}),  # unquoted string: quoted, as on AWS
        ('{"msg": "got <key> (<size> bytes)"}', {"msg": "got in/a.csv (12 bytes)"}),  # inside a string: its text
        ('{"size": <size>, "missing": <nothing>}', {"size": 12, "missing": None}),
        ('{"object": <object>}', {"object": {"key": "in/a.csv", "size": 12}}),
        ('"<key> arrived"', "in/a.csv arrived"),
    ],
)
def test_input_transformer_fills_placeholders_as_eventbridge_does(template: str, expected: Any) -> None:
    event = {"detail": {"object": {"key": "in/a.csv", "size": 12}}}
    paths = {
        "key": "$.detail.object.key",
        "size": "$.detail.object.size",
        "object": "$.detail.object",
        "nothing": "$.detail.absent",
    }
    assert events.transform(template, paths, event) == expected


def test_rules_deliver_s3_events_to_lambda_and_sqs_targets_transformed_and_skip_schedules(aws: None) -> None:
    invoked: list[tuple[str, Any]] = []
    uninstall = events.install(lambda arn, event, account, region: invoked.append((arn.rsplit(":", 1)[1], event)))
    try:
        deliver_an_upload(invoked)
    finally:
        uninstall()


def deliver_an_upload(invoked: list[tuple[str, Any]]) -> None:
    s3, bus, sqs = client("s3"), client("events"), client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    queue = sqs.create_queue(QueueName="copies")["QueueUrl"]
    eventbridge_may_send(sqs, queue)
    transformer = {"InputPathsMap": {"key": "$.detail.object.key"}, "InputTemplate": '{"key": <key>}'}
    bus.put_rule(Name="uploads", EventPattern=json.dumps({"source": ["aws.s3"], "detail-type": ["Object Created"]}))
    bus.put_targets(
        Rule="uploads",
        Targets=[
            {"Id": "router", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:router"},
            {"Id": "copy", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:copies", "InputTransformer": transformer},
            {
                "Id": "after",
                "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:after",
                "InputTransformer": transformer,
            },
        ],
    )
    bus.put_rule(Name="nightly", ScheduleExpression="rate(1 day)")
    bus.put_targets(Rule="nightly", Targets=[{"Id": "t", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sched"}])
    bus.put_rule(Name="off", EventPattern=json.dumps({"source": ["aws.s3"]}), State="DISABLED")
    bus.put_targets(Rule="off", Targets=[{"Id": "t", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:off"}])

    s3.put_object(Bucket=BUCKET, Key="input/a.csv", Body=b"x,y\n")

    assert [name for name, _ in invoked] == ["router", "after"]  # not the schedule's, not the disabled rule's
    full = invoked[0][1]
    assert full["detail"]["object"]["etag"] and "eTag" not in full["detail"]["object"]
    assert full["time"].endswith("Z")
    assert invoked[1][1] == {"key": "input/a.csv"}
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"]) == {"key": "input/a.csv"}


# --- Workers and Lambda ---------------------------------------------------------------------------

HANDLER = """
import os, time
calls = 0

def handler(event, context):
    global calls
    calls += 1
    print("log line from the handler")
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"calls": calls, "env": os.environ.get("GREETING"), "request_id": context.aws_request_id}
"""


def lambda_worker(tmp_path: Path, source: str = HANDLER, env: dict[str, str] | None = None) -> Worker:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(source)
    return Worker(["lambda", str(code), "app.handler"], {"PATH": "/usr/bin:/bin", **(env or {})}, tmp_path / "log")


def test_a_lambda_worker_stays_warm_keeps_logs_apart_and_reports_errors_by_type(tmp_path: Path) -> None:
    worker = lambda_worker(tmp_path, env={"GREETING": "hello"})
    try:
        first = worker.call({"event": {}, "request_id": "r1"}, timeout=30)
        second = worker.call({"event": {}, "request_id": "r2"}, timeout=30)
        assert (first, second) == (
            {"calls": 1, "env": "hello", "request_id": "r1"},
            {"calls": 2, "env": "hello", "request_id": "r2"},  # the same process: a warm container
        )
        with pytest.raises(WorkerError) as raised:
            worker.call({"event": {"fail": True}, "request_id": "r3"}, timeout=30)
        assert (raised.value.error_type, str(raised.value)) == ("ValueError", "asked to fail")
        assert worker.call({"event": {}, "request_id": "r4"}, timeout=30)["calls"] == 4
    finally:
        worker.stop()
    assert (tmp_path / "log").read_text().count("log line from the handler") == 4


def test_a_timed_out_invocation_ends_the_container_and_the_next_one_starts_cold(tmp_path: Path) -> None:
    worker = lambda_worker(tmp_path)
    try:
        with pytest.raises(WorkerError) as raised:
            worker.call({"event": {"sleep": 5}, "request_id": "slow"}, timeout=0.5)
        assert raised.value.error_type == "Sandbox.Timedout"
        assert worker.call({"event": {}, "request_id": "next"}, timeout=30)["calls"] == 1
    finally:
        worker.stop()


def test_an_import_error_is_reported_on_every_invocation(tmp_path: Path) -> None:
    worker = lambda_worker(tmp_path, source="import not_a_module\n")
    try:
        for _ in range(2):
            with pytest.raises(WorkerError) as raised:
                worker.call({"event": {}, "request_id": "r"}, timeout=30)
            assert raised.value.error_type == "Runtime.ImportModuleError: ModuleNotFoundError"
    finally:
        worker.stop()


def deploy_function(
    source: str,
    name: str = "f",
    destination: str | None = None,
    retries: int | None = None,
    may_write_destination: bool = True,
) -> str:
    """A function of the local Lambda; with a `destination`, its role may write there unless told not to."""
    iam = client("iam")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    if destination and may_write_destination:
        action = "sqs:SendMessage" if destination.startswith("arn:aws:sqs:") else "sns:Publish"
        statement = {"Effect": "Allow", "Action": action, "Resource": destination}
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        iam.put_role_policy(RoleName=f"{name}-role", PolicyName="destination", PolicyDocument=document)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package_zip:
        package_zip.writestr("app.py", source)
    lam = client("lambda")
    arn: str = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=10,
        Environment={"Variables": {"GREETING": "from the function"}},
    )["FunctionArn"]
    if destination or retries is not None:
        config: dict[str, Any] = {}
        if retries is not None:
            config["MaximumRetryAttempts"] = retries
        if destination:
            config["DestinationConfig"] = {"OnFailure": {"Destination": destination}}
        lam.put_function_event_invoke_config(FunctionName=name, **config)
    return arn


def test_local_lambda_runs_the_deployed_package_with_its_environment(aws: None, tmp_path: Path) -> None:
    arn = deploy_function(HANDLER)
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        result = lambdas.invoke(arn, {}, ACCOUNT, REGION)
        assert (result["calls"], result["env"]) == (1, "from the function")
        assert lambdas.invoke("f", {}, ACCOUNT, REGION)["calls"] == 2  # by name: the same container
    finally:
        lambdas.stop()
    assert "log line from the handler" in (tmp_path / "logs" / "lambda" / "f.log").read_text()


def test_an_async_invocation_that_keeps_failing_is_retried_then_sent_to_the_failure_destination(
    aws: None, tmp_path: Path
) -> None:
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    arn = deploy_function(HANDLER, destination=f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters", retries=1)
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        lambdas.invoke_async(arn, {"fail": True, "id": 7}, ACCOUNT, REGION)
        lambdas.invoke_async(arn, {"id": 8}, ACCOUNT, REGION)
        assert lambdas.wait_idle(60)
        (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        record = json.loads(message["Body"])
        assert record["requestPayload"] == {"fail": True, "id": 7}  # as sent: replayable
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 2  # 1 + MaximumRetryAttempts
        assert record["responsePayload"]["errorType"] == "ValueError"
    finally:
        lambdas.stop()


def test_lambda_drops_the_failure_record_when_the_functions_role_may_not_write_the_destination(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Lambda developer guide, "Capturing records of Lambda asynchronous invocations": Lambda sends the record
    # as the function's execution role, which needs sqs:SendMessage on the queue; without it the record is lost.
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    destination = f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters"
    arn = deploy_function(HANDLER, destination=destination, retries=0, may_write_destination=False)
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        lambdas.invoke_async(arn, {"fail": True}, ACCOUNT, REGION)
        assert lambdas.wait_idle(60)
    finally:
        lambdas.stop()
    assert "Messages" not in sqs.receive_message(QueueUrl=queue)
    err = capsys.readouterr().err
    assert f"{arn}: record dropped: User: arn:aws:iam::{ACCOUNT}:role/f-role is not authorized to perform: " in err
    assert f"sqs:SendMessage on resource: {destination}" in err


def test_a_configuration_update_is_served_by_new_containers(aws: None, tmp_path: Path) -> None:
    """After UpdateFunctionConfiguration the function runs with its new environment, in a new container,
    as Lambda provisions one for the new configuration (the code is unchanged)."""
    arn = deploy_function(HANDLER)
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        assert lambdas.invoke(arn, {}, ACCOUNT, REGION)["env"] == "from the function"
        client("lambda").update_function_configuration(
            FunctionName="f", Environment={"Variables": {"GREETING": "updated"}}
        )
        assert lambdas.invoke(arn, {}, ACCOUNT, REGION) | {"request_id": None} == {
            "calls": 1,  # a cold start: not the old container
            "env": "updated",
            "request_id": None,
        }
    finally:
        lambdas.stop()


def test_an_event_nested_deeper_than_the_runtime_parses_fails_as_lambdas_runtime_fails_it(
    aws: None, tmp_path: Path
) -> None:
    """Invoked, the runtime answers Runtime.UnmarshalError (a function error, not a server fault); sent
    asynchronously it fails every attempt and its record keeps the payload as it arrived, replayable."""
    from mlops_sfn.local.functions import Unmarshalable

    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    arn = deploy_function(HANDLER, destination=f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters", retries=0)
    raw = "[" * 5000 + "]" * 5000
    deep = Unmarshalable(raw, "maximum recursion depth exceeded")
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        with pytest.raises(WorkerError) as raised:
            lambdas.invoke(arn, deep, ACCOUNT, REGION)
        assert raised.value.error_type == "Runtime.UnmarshalError"
        assert str(raised.value) == "Unable to unmarshal input: maximum recursion depth exceeded"
        lambdas.invoke_async(arn, deep, ACCOUNT, REGION)
        assert lambdas.wait_idle(60)
        (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    finally:
        lambdas.stop()
    assert f'"requestPayload": {raw},' in message["Body"]
    assert '"errorType": "Runtime.UnmarshalError"' in message["Body"]


def test_the_invoke_api_refuses_a_body_that_is_not_json_and_fails_one_too_deep_in_the_function(
    tmp_path: Path,
) -> None:
    """Lambda API reference, Invoke: a body that is not JSON is InvalidRequestContentException (HTTP 400);
    JSON nested deeper than Python's parser goes reaches the runtime, which fails it: HTTP 200 with
    FunctionError, never a server error."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    with MotoServer(tmp_path / "server.log", home=runtime) as server:
        iam, lam = server.client("iam"), server.client("lambda")
        role = iam.create_role(RoleName="f-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as package_zip:
            package_zip.writestr("app.py", HANDLER)
        code = {"ZipFile": archive.getvalue()}
        lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="app.handler", Code=code)
        with pytest.raises(ClientError) as raised:
            lam.invoke(FunctionName="f", Payload=b"{not json")
        assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        answer = lam.invoke(FunctionName="f", Payload=b"[" * 5000 + b"]" * 5000)
        assert (answer["StatusCode"], answer["FunctionError"]) == (200, "Unhandled")
        assert json.loads(answer["Payload"].read())["errorType"] == "Runtime.UnmarshalError"
        assert lam.invoke(FunctionName="f", Payload=b"{}")["StatusCode"] == 200  # and it still serves


def invoke_together(lambdas: LocalLambda, arn: str, count: int) -> list[Any]:
    results: list[Any] = [None] * count

    def call(number: int) -> None:
        results[number] = lambdas.invoke(arn, {"sleep": 1, "pid": True}, ACCOUNT, REGION)

    threads = [threading.Thread(target=call, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_invocations_get_containers_of_their_own_as_on_lambda(aws: None, tmp_path: Path) -> None:
    # One container serves one request at a time; Lambda starts more for concurrent requests.
    arn = deploy_function(HANDLER.replace('"request_id": context.aws_request_id}', '"pid": os.getpid()}'))
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        results = invoke_together(lambdas, arn, 4)
    finally:
        lambdas.stop()
    assert len({result["pid"] for result in results}) == 4
    assert (tmp_path / "logs" / "lambda" / "f.log").read_text().count("INIT_START Runtime Version: python3.12") == 4


def test_a_reserved_concurrency_bounds_the_containers(aws: None, tmp_path: Path) -> None:
    arn = deploy_function(HANDLER.replace('"request_id": context.aws_request_id}', '"pid": os.getpid()}'))
    client("lambda").put_function_concurrency(FunctionName="f", ReservedConcurrentExecutions=1)
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    try:
        results = invoke_together(lambdas, arn, 3)
    finally:
        lambdas.stop()
    assert len({result["pid"] for result in results}) == 1
    assert sorted(result["calls"] for result in results) == [1, 2, 3]  # one warm container, in turn


def test_an_event_whose_lambda_target_is_gone_goes_to_the_targets_dead_letter_queue_at_once(
    aws: None, tmp_path: Path
) -> None:
    # EventBridge does not retry a missing target: the event goes to the target's DLQ with why (NO_RESOURCE).
    sqs, bus = client("sqs"), client("events")
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    eventbridge_may_send(sqs, queue)
    pattern = {"source": ["mlops.test"]}
    rule = bus.put_rule(Name="gone", EventPattern=json.dumps(pattern))["RuleArn"]
    target = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:no-such-function"
    dead_letters = {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters"}
    bus.put_targets(Rule="gone", Targets=[{"Id": "t", "Arn": target, "DeadLetterConfig": dead_letters}])
    lambdas = LocalLambda(tmp_path, {"PATH": "/usr/bin:/bin"})
    uninstall = events.install(lambdas.invoke_async)
    try:
        bus.put_events(Entries=[{"Source": "mlops.test", "DetailType": "t", "Detail": json.dumps({"n": 1})}])
    finally:
        uninstall()
        lambdas.stop()
    (message,) = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"])["detail"] == {"n": 1}
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["RULE_ARN"] == rule and attributes["TARGET_ARN"] == target
    assert attributes["ERROR_CODE"] == "NO_RESOURCE" and "no-such-function" in attributes["ERROR_MESSAGE"]


def test_eventbridge_invokes_a_function_only_for_the_rules_its_resource_policy_names(aws: None, tmp_path: Path) -> None:
    # EventBridge needs the function's resource policy (events.amazonaws.com, AWS:SourceArn = the rule);
    # without it the event goes to the target's dead-letter queue at once with NO_PERMISSIONS.
    sqs, bus, lam = client("sqs"), client("events"), client("lambda")
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    eventbridge_may_send(sqs, queue)
    function = deploy_function("def handler(event, context):\n    return event\n", name="router")
    rules = {}
    for name in ("permitted", "forgotten"):
        rules[name] = bus.put_rule(Name=name, EventPattern=json.dumps({"source": [f"mlops.{name}"]}))["RuleArn"]
        dead_letters = {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters"}
        bus.put_targets(Rule=name, Targets=[{"Id": "t", "Arn": function, "DeadLetterConfig": dead_letters}])
    lam.add_permission(
        FunctionName="router",
        StatementId="permitted",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rules["permitted"],
    )
    invoked: list[str] = []
    uninstall = events.install(lambda arn, event, account, region: invoked.append(event["source"]))
    try:
        for name in ("permitted", "forgotten"):
            bus.put_events(Entries=[{"Source": f"mlops.{name}", "DetailType": "t", "Detail": "{}"}])
    finally:
        uninstall()
    assert invoked == ["mlops.permitted"]
    (message,) = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])["Messages"]
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes["RULE_ARN"] == rules["forgotten"] and attributes["ERROR_CODE"] == "NO_PERMISSIONS"
    assert attributes["ERROR_MESSAGE"] == (
        f"User: events.amazonaws.com is not authorized to perform: lambda:InvokeFunction on resource: {function} "
        "because no resource-based policy allows the lambda:InvokeFunction action"
    )
    assert json.loads(message["Body"])["source"] == "mlops.forgotten"


def test_eventbridge_sends_to_a_queue_only_when_its_policy_lets_it(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # A target queue without the policy: NO_PERMISSIONS, to the target's dead-letter queue. A dead-letter
    # queue without it: the event is dropped (EventBridge user guide, "Using dead-letter queues").
    sqs, bus = client("sqs"), client("events")
    urls = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("unwritable", "letters", "no-letters")}
    eventbridge_may_send(sqs, urls["letters"])
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
    rules = {}
    for name, letters in (("kept", "letters"), ("dropped", "no-letters")):
        rules[name] = bus.put_rule(Name=name, EventPattern=json.dumps({"source": [f"mlops.{name}"]}))["RuleArn"]
        target = {"Id": "t", "Arn": arn + "unwritable", "DeadLetterConfig": {"Arn": arn + letters}}
        bus.put_targets(Rule=name, Targets=[target])
    uninstall = events.install(lambda *_: None)
    try:
        for name in rules:
            bus.put_events(Entries=[{"Source": f"mlops.{name}", "DetailType": "t", "Detail": "{}"}])
    finally:
        uninstall()
    assert "Messages" not in sqs.receive_message(QueueUrl=urls["unwritable"])
    (kept,) = sqs.receive_message(QueueUrl=urls["letters"], MessageAttributeNames=["All"])["Messages"]
    attributes = {name: value["StringValue"] for name, value in kept["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS" and attributes["RULE_ARN"] == rules["kept"]
    assert (
        "not authorized to perform: sqs:SendMessage on resource: " + arn + "unwritable" in attributes["ERROR_MESSAGE"]
    )
    assert "Messages" not in sqs.receive_message(QueueUrl=urls["no-letters"])
    assert f"EventBridge dropped an event of {rules['dropped']}" in capsys.readouterr().err


# --- Jobs -----------------------------------------------------------------------------------------


@pytest.fixture
def jobs(aws: None, tmp_path: Path) -> ScriptJobs:
    client("s3").create_bucket(Bucket=BUCKET)
    return ScriptJobs(tmp_path / "home", lambda service, account: client(service), {"PATH": "/usr/bin:/bin"})


def put(key: str, body: bytes | str) -> None:
    client("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def get(key: str) -> bytes:
    body: bytes = client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def processing_request(name: str, script: str, arguments: list[str]) -> dict[str, Any]:
    put(f"code/{name}.py", script)
    return {
        "ProcessingJobName": name,
        "AppSpecification": {
            "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{name}.py"],
            "ContainerArguments": arguments,
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {"S3Uri": f"s3://{BUCKET}/code/{name}.py", "LocalPath": "/opt/ml/processing/input/code"},
            },
            {
                "InputName": "data",
                "S3Input": {"S3Uri": f"s3://{BUCKET}/data/", "LocalPath": "/opt/ml/processing/input/data"},
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "out",
                    "S3Output": {"S3Uri": f"s3://{BUCKET}/out/{name}/", "LocalPath": "/opt/ml/processing/output"},
                }
            ]
        },
    }


COUNT_ROWS = textwrap.dedent(
    """
    import pathlib, sys
    source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    rows = sum(len(p.read_text().splitlines()) for p in sorted(source.rglob("*.csv")))
    (target / "nested").mkdir(parents=True)
    (target / "nested" / "count.txt").write_text(str(rows))
    """
)


def test_a_processing_job_downloads_its_inputs_to_their_local_paths_and_uploads_its_outputs(jobs: ScriptJobs) -> None:
    put("data/a.csv", "1\n2\n")
    put("data/more/b.csv", "3\n")
    request = processing_request("count", COUNT_ROWS, ["/opt/ml/processing/input/data", "/opt/ml/processing/output"])
    assert jobs.run("createProcessingJob", request).failure_reason is None
    assert get("out/count/nested/count.txt") == b"3"
    folder = jobs.home / "jobs" / "count" / "opt" / "ml" / "processing" / "input" / "data"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")) == ["a.csv", "more/b.csv"]


def test_an_input_prefix_without_a_slash_is_downloaded_as_its_objects_not_as_a_folder(
    jobs: ScriptJobs, tmp_path: Path
) -> None:
    """s3://.../csv/data goes "into /opt/ml/processing/csv" (SageMaker guide, processing input and
    output): the prefix's objects, not a data/ folder; an object named by the whole prefix keeps its name."""
    put("inputs/census/census-income.csv", "a\n")
    put("inputs/census/more/part.csv", "b\n")
    put("models/run-1/output/model.tar.gz", "m")
    into = tmp_path / "into"
    jobs.download(f"s3://{BUCKET}/inputs/census", into / "census")
    jobs.download(f"s3://{BUCKET}/models/run-1/output/model.tar.gz", into / "model")
    found = sorted(path.relative_to(into).as_posix() for path in into.rglob("*") if path.is_file())
    assert found == ["census/census-income.csv", "census/more/part.csv", "model/model.tar.gz"]


ROLE = f"arn:aws:iam::{ACCOUNT}:role/jobs"


def as_role(*statements: dict[str, Any]) -> Any:
    """An S3 client acting as ROLE, whose one policy holds `statements`."""
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return task_permissions.acting_as(client("s3"), ROLE, [policy], [])


READ_CODE_AND_DATA = {
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:ListBucket"],
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/code/*", f"arn:aws:s3:::{BUCKET}/data/*"],
}


def test_a_job_moves_its_data_as_its_role_and_fails_as_sagemaker_reports_a_refusal(jobs: ScriptJobs) -> None:
    """What a job reads and writes, SageMaker reads and writes as the job's role: an input the role may
    not read fails the job before its code runs, an output it may not write fails it after."""
    put("data/a.csv", "1\n2\n")
    request = processing_request("count", COUNT_ROWS, ["/opt/ml/processing/input/data", "/opt/ml/processing/output"])
    write = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET}/out/*"}
    assert jobs.run("createProcessingJob", request, as_role(READ_CODE_AND_DATA, write)).failure_reason is None
    assert get("out/count/nested/count.txt") == b"2"

    again = processing_request("kept", COUNT_ROWS, ["/opt/ml/processing/input/data", "/opt/ml/processing/output"])
    assert jobs.run("createProcessingJob", again, as_role(READ_CODE_AND_DATA)).failure_reason == (
        f"ClientError: Data upload failed:Unable to upload object s3://{BUCKET}/out/kept/ (AccessDenied: User: "
        f"{ROLE} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::{BUCKET}/out/kept/nested/"
        "count.txt because no identity-based or resource-based policy allows the s3:PutObject action)"
    )
    code_only = {**READ_CODE_AND_DATA, "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/code/*"]}
    refused = jobs.run(
        "createProcessingJob", processing_request("early", "open('/ran', 'w')\n", []), as_role(code_only)
    )
    assert refused.failure_reason is not None
    assert refused.failure_reason.startswith(
        f"ClientError: Data download failed:Unable to download object s3://{BUCKET}/data/ (403: Forbidden)"
    )  # s3transfer's HEAD before the download: S3 answers a HEAD's refusal without a body
    assert not (jobs.home / "jobs" / "early" / "log.txt").exists()  # the script never ran


def test_a_missing_key_is_not_found_only_to_a_role_that_may_list_the_bucket(jobs: ScriptJobs) -> None:
    """S3 API reference, GetObject: without s3:ListBucket a missing key answers 403 Access Denied, not 404."""
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}
    for statements, code, status in [((read,), "AccessDenied", 403), ((read, listing), "NoSuchKey", 404)]:
        with pytest.raises(ClientError) as refused:
            as_role(*statements).get_object(Bucket=BUCKET, Key="models/none/model.tar.gz")
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    put("models/there/model.tar.gz", "m")
    assert as_role(read).get_object(Bucket=BUCKET, Key="models/there/model.tar.gz")["Body"].read() == b"m"


def test_a_failing_script_fails_its_job_with_its_last_error_line(jobs: ScriptJobs) -> None:
    put("data/a.csv", "1\n")
    request = processing_request("boom", "raise RuntimeError('the data is wrong')\n", [])
    reason = jobs.run("createProcessingJob", request).failure_reason
    assert reason is not None
    assert reason.startswith('AlgorithmError: ExitCode 1, ErrorMessage "RuntimeError: the data is wrong"')


def test_a_processing_input_with_no_objects_fails_the_job_as_sagemaker_does(jobs: ScriptJobs) -> None:
    request = processing_request("empty", "print('never runs')\n", [])
    reason = jobs.run("createProcessingJob", request).failure_reason
    assert reason is not None and "No S3 objects found under S3 URL" in reason and "data/" in reason


TRAIN = textwrap.dedent(
    """
    import json, os, pathlib, sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    rows = pathlib.Path(os.environ["SM_CHANNEL_TRAIN"], "t.csv").read_text().splitlines()
    pathlib.Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"args": args, "rows": len(rows)}))
    print(f"validation rmse: {0.5 if args['--depth'] == '3' else 0.25}")
    print("env", json.loads(os.environ["SM_HPS"]), os.environ["SM_CHANNELS"])
    """
)


def training_request(name: str, hyperparameters: dict[str, str]) -> dict[str, Any]:
    put("code/sourcedir.tar.gz", package.build_tar({"train.py": TRAIN.encode()}))
    put("train/t.csv", "1\n2\n3\n")
    return {
        "TrainingJobName": name,
        "HyperParameters": {
            "sagemaker_program": '"train.py"',  # as the SageMaker SDK writes it
            "sagemaker_submit_directory": f"s3://{BUCKET}/code/sourcedir.tar.gz",
            **hyperparameters,
        },
        "AlgorithmSpecification": {
            "MetricDefinitions": [{"Name": "validation:rmse", "Regex": "validation rmse: ([0-9.]+)"}]
        },
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/train/"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
    }


def model_json(key: str) -> Any:
    with tarfile.open(fileobj=io.BytesIO(get(key)), mode="r:gz") as archive:
        member = archive.extractfile("model.json")
        assert member is not None
        return json.loads(member.read())


def test_a_training_job_runs_script_mode_and_archives_the_model_where_sagemaker_does(jobs: ScriptJobs) -> None:
    result = jobs.run("createTrainingJob", training_request("fit", {"depth": "3"}))
    assert result.failure_reason is None
    assert result.metrics == {"validation:rmse": 0.5}
    assert model_json("models/fit/output/model.tar.gz") == {"args": {"--depth": "3"}, "rows": 3}
    log = (jobs.home / "jobs" / "fit" / "log.txt").read_text()
    assert "env {'depth': '3'} [\"train\"]" in log  # SM_HPS without the sagemaker_ keys, SM_CHANNELS


def test_a_training_job_may_name_its_script_with_a_container_entrypoint(jobs: ScriptJobs) -> None:
    """AlgorithmSpecification.ContainerEntrypoint (CreateTrainingJob): here a script delivered in a
    channel, run in the job's folder, where its /opt/ml paths are."""
    script = "import pathlib\nrows = pathlib.Path('opt/ml/input/data/train/t.csv').read_text().split()\n"
    script += "pathlib.Path('opt/ml/model/model.json').write_text(str(len(rows)))\n"
    put("scripts/train.py", script)
    request = training_request("entry", {})
    del request["HyperParameters"]
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python3", "/opt/ml/input/data/code/train.py"]
    request["InputDataConfig"].append(
        {"ChannelName": "code", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/scripts"}}}
    )
    assert jobs.run("createTrainingJob", request).failure_reason is None
    assert model_json("models/entry/output/model.tar.gz") == 3


RESUMING = textwrap.dedent(
    """
    import pathlib
    saved = pathlib.Path("opt/ml/checkpoints/epochs.txt")
    scratch = pathlib.Path("opt/ml/output/data/scratch.txt")
    print("fresh instance" if not scratch.exists() else "old instance")
    scratch.write_text("left by this attempt")
    done = int(saved.read_text()) if saved.exists() else 0
    print(f"resuming after epoch {done}")
    saved.write_text(str(done + 1))
    pathlib.Path("opt/ml/model/model.json").write_text(str(done + 1))
    """
)


def test_a_training_job_restores_its_checkpoints_on_a_fresh_instance_and_saves_them(jobs: ScriptJobs) -> None:
    """SageMaker copies CheckpointConfig.S3Uri to LocalPath (default /opt/ml/checkpoints) before the
    script starts and what it writes there back ("Checkpoints in Amazon SageMaker AI"); a spot job's
    next attempt runs on a new instance, with nothing else of the last one."""
    put("scripts/resume.py", RESUMING)
    request = training_request("resume", {})
    del request["HyperParameters"]
    request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["python3", "/opt/ml/input/data/code/resume.py"]
    request["InputDataConfig"].append(
        {"ChannelName": "code", "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/scripts"}}}
    )
    request["CheckpointConfig"] = {"S3Uri": f"s3://{BUCKET}/checkpoints/resume/"}
    assert jobs.run("createTrainingJob", request).failure_reason is None  # nothing saved yet: from the start
    assert get("checkpoints/resume/epochs.txt") == b"1"
    assert jobs.run("createTrainingJob", request).failure_reason is None  # the next attempt
    assert get("checkpoints/resume/epochs.txt") == b"2"
    assert model_json("models/resume/output/model.tar.gz") == 2
    log = (jobs.home / "jobs" / "resume" / "log.txt").read_text()
    assert log.count("fresh instance") == 2 and "old instance" not in log
    assert "resuming after epoch 0" in log and "resuming after epoch 1" in log


def test_a_training_job_without_script_mode_fails_saying_what_to_set(jobs: ScriptJobs) -> None:
    request = training_request("builtin", {})
    del request["HyperParameters"]["sagemaker_program"]
    reason = jobs.run("createTrainingJob", request).failure_reason
    assert reason is not None and "HyperParameters.sagemaker_program" in reason
    assert "or AlgorithmSpecification.ContainerEntrypoint" in reason


def test_a_tuning_job_trains_one_candidate_at_the_middle_of_the_ranges(jobs: ScriptJobs) -> None:
    training = training_request("unused", {})
    request = {
        "HyperParameterTuningJobName": "tune",
        "HyperParameterTuningJobConfig": {
            "ParameterRanges": {"IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "4"}]}
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": training["HyperParameters"],
            **{key: training[key] for key in ("AlgorithmSpecification", "InputDataConfig", "OutputDataConfig")},
        },
    }
    result = jobs.run("createHyperParameterTuningJob", request)
    assert result.best_training_job and result.best_training_job.startswith("tune-001-")
    assert result.metrics == {"validation:rmse": 0.5}
    assert model_json(f"models/{result.best_training_job}/output/model.tar.gz")["args"] == {"--depth": "3"}


INFERENCE = textwrap.dedent(
    """
    import json, pathlib

    def model_fn(model_dir):
        return json.loads(pathlib.Path(model_dir, "model.json").read_text())

    def input_fn(body, content_type):
        return [float(line) for line in body.splitlines() if line]

    def predict_fn(data, model):
        return [value * model["scale"] for value in data]

    def output_fn(prediction, accept):
        return "\\n".join(str(value) for value in prediction) + "\\n", "text/csv"
    """
)


def create_model(name: str, scale: float) -> None:
    model = io.BytesIO()
    with tarfile.open(fileobj=model, mode="w:gz") as archive:
        data = json.dumps({"scale": scale}).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    put(f"models/{name}/model.tar.gz", model.getvalue())
    put("code/serve.tar.gz", package.build_tar({"inference.py": INFERENCE.encode()}))
    client("sagemaker").create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sagemaker",
        PrimaryContainer={
            "Image": "image",
            "ModelDataUrl": f"s3://{BUCKET}/models/{name}/model.tar.gz",
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/code/serve.tar.gz",
            },
        },
    )


def test_batch_transform_serves_the_model_over_each_input_file(jobs: ScriptJobs) -> None:
    create_model("double", 2.0)
    put("score/part-1.csv", "1\n2\n")
    put("score/part-2.csv", "5\n")
    request = {
        "TransformJobName": "score",
        "ModelName": "double",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3Uri": f"s3://{BUCKET}/score/"}},
            "ContentType": "text/csv",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/scored/"},
    }
    assert jobs.run("createTransformJob", request).failure_reason is None
    assert (get("scored/part-1.csv.out"), get("scored/part-2.csv.out")) == (b"2.0\n4.0\n", b"10.0\n")


def test_an_endpoint_answers_with_the_model_of_its_current_config(jobs: ScriptJobs) -> None:
    sagemaker = client("sagemaker")
    endpoints = LocalEndpoints(jobs)
    try:
        for name, scale in (("v1", 2.0), ("v2", 3.0)):
            create_model(name, scale)
            sagemaker.create_endpoint_config(
                EndpointConfigName=f"config-{name}",
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": name,
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                    }
                ],
            )
        sagemaker.create_endpoint(EndpointName="prices", EndpointConfigName="config-v1")
        assert endpoints.invoke("prices", "1\n", "text/csv", None) == ("2.0\n", "text/csv")
        # moto has no UpdateEndpoint; LocalSageMaker settles an update the same way
        sagemaker_backends[ACCOUNT][REGION].endpoints["prices"].endpoint_config_name = "config-v2"
        assert endpoints.invoke("prices", "1\n", "text/csv", None) == ("3.0\n", "text/csv")
        with pytest.raises(LookupError, match="Endpoint absent not found"):
            endpoints.invoke("absent", "1\n", "text/csv", None)
    finally:
        endpoints.stop()


def test_an_async_endpoint_answers_from_s3_into_its_output_path_and_writes_an_error_where_it_failed(
    jobs: ScriptJobs,
) -> None:
    sagemaker = client("sagemaker")
    endpoints = LocalEndpoints(jobs)
    try:
        create_model("async", 2.0)
        output = {"S3OutputPath": f"s3://{BUCKET}/answers/", "S3FailurePath": f"s3://{BUCKET}/errors/"}
        for name, extra in (("async", {"AsyncInferenceConfig": {"OutputConfig": output}}), ("sync", {})):
            variant = {"VariantName": "AllTraffic", "ModelName": "async", "InitialInstanceCount": 1}
            sagemaker.create_endpoint_config(
                EndpointConfigName=f"config-{name}",
                ProductionVariants=[variant | {"InstanceType": "ml.m5.large"}],
                **extra,
            )
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"config-{name}")
        put("requests/one.csv", "1\n4\n")
        inference, answered, failed = endpoints.invoke_async(
            "async", f"s3://{BUCKET}/requests/one.csv", "text/csv", None
        )
        assert answered == f"s3://{BUCKET}/answers/{inference}.out"
        assert failed == f"s3://{BUCKET}/errors/{inference}-error.out"
        wait_for_object(answered.removeprefix(f"s3://{BUCKET}/"))
        assert get(answered.removeprefix(f"s3://{BUCKET}/")) == b"2.0\n8.0\n"  # the model's answer
        put("requests/bad.csv", "not a number\n")
        _, _, failed = endpoints.invoke_async("async", f"s3://{BUCKET}/requests/bad.csv", "text/csv", None)
        wait_for_object(failed.removeprefix(f"s3://{BUCKET}/"))
        assert b"could not convert" in get(failed.removeprefix(f"s3://{BUCKET}/"))
        with pytest.raises(LookupError, match="not an asynchronous endpoint"):
            endpoints.invoke_async("sync", f"s3://{BUCKET}/requests/one.csv", "text/csv", None)
    finally:
        endpoints.stop()


def wait_for_object(key: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client("s3").head_object(Bucket=BUCKET, Key=key)
            return
        except ClientError:
            time.sleep(0.1)
    raise AssertionError(f"{key} was not written in {seconds} s")


def test_metrics_and_ranges_are_read_as_sagemaker_reads_them() -> None:
    log = "epoch 1 validation rmse: 0.9\nepoch 2 validation rmse: 0.4\n"
    assert read_metrics(log, [{"Name": "rmse", "Regex": "validation rmse: ([0-9.]+)"}]) == {"rmse": 0.4}
    ranges = {
        "IntegerParameterRanges": [{"Name": "n", "MinValue": "10", "MaxValue": "21"}],
        "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.1", "MaxValue": "0.3"}],
        "CategoricalParameterRanges": [{"Name": "kind", "Values": ["gini", "entropy"]}],
    }
    assert middle_of(ranges) == {"n": "15", "lr": str((0.1 + 0.3) / 2), "kind": "gini"}
    with pytest.raises(JobError):
        ScriptJobs(Path("unused"), lambda service, account: client(service), {}).download("not-s3://x", Path("x"))


def test_the_shipped_demo_data_is_the_documented_synthetic_set_within_the_size_limit() -> None:
    path = ROOT / "sagemaker-artifacts" / "demo-dev-domain-cal-house-price" / "data" / "houses.csv"
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == list(demo_data.COLUMNS)
    assert len(lines) == demo_data.ROWS + 1
    assert path.stat().st_size <= 1024 * 1024
    assert [float(value) for value in lines[1].split(",")] == pytest.approx(demo_data.rows()[0], abs=1e-3)


def test_the_local_aws_keeps_the_type_of_a_value_put_by_update_item(tmp_path: Path) -> None:
    """The server's DynamoDB fill: Terraform's provider updates items with AttributeUpdates."""
    with MotoServer(tmp_path / "server.log") as server:
        dynamodb = server.client("dynamodb")
        dynamodb.create_table(
            TableName="items",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="items", Item={"k": {"S": "a"}, "enabled": {"BOOL": False}, "note": {"S": "x"}})
        updates = {
            "enabled": {"Action": "PUT", "Value": {"BOOL": True}},
            "blob": {"Action": "PUT", "Value": {"B": b"\x00\x01"}},
            "nothing": {"Action": "PUT", "Value": {"NULL": True}},
            "count": {"Action": "ADD", "Value": {"N": "2"}},
            "note": {"Action": "DELETE"},
        }
        dynamodb.update_item(TableName="items", Key={"k": {"S": "a"}}, AttributeUpdates=updates)
        item = dynamodb.get_item(TableName="items", Key={"k": {"S": "a"}})["Item"]
    assert item == {
        "k": {"S": "a"},
        "enabled": {"BOOL": True},
        "blob": {"B": b"\x00\x01"},
        "nothing": {"NULL": True},
        "count": {"N": "2"},
    }


def test_local_up_after_a_crash_keeps_the_old_stacks_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / ".mlops-local"
    (home / "runtime" / "logs" / "lambda").mkdir(parents=True)
    (home / "runtime" / "logs" / "lambda" / "router.log").write_text("what happened before the crash\n")
    dead = subprocess.Popen(["true"])
    dead.wait()  # a server pid that is gone, as after a crash
    (home / "deployment.json").write_text(json.dumps({"pid": dead.pid}))

    def no_toolchain() -> None:
        raise RuntimeError("stopped here: only the clean-up is under test")

    monkeypatch.setattr(deployment.toolchain, "ensure", no_toolchain)
    said: list[str] = []
    with pytest.raises(RuntimeError, match="stopped here"):
        deployment.up(home, say=said.append)
    (kept,) = tmp_path.glob(".mlops-local.crashed-*")
    assert (kept / "runtime" / "logs" / "lambda" / "router.log").read_text() == "what happened before the crash\n"
    assert not home.exists() and str(kept) in said[0]


def test_the_local_runtime_refuses_a_moto_release_it_was_not_ported_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's internals change between releases: another release is refused with what to install,
    instead of failing somewhere inside a run."""
    import importlib

    import moto

    from mlops_sfn.local import motoport

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(
        ImportError,
        match=rf"supports moto 5\.2\.x \(tested with {re.escape(motoport.TESTED)}\), found 5\.3\.0: "
        rf"pip install 'moto\[server\]=={re.escape(motoport.TESTED)}'",
    ):
        importlib.reload(motoport)
    monkeypatch.undo()
    importlib.reload(motoport)
    assert motoport.SUPPORTED == (5, 2)


def test_an_internal_that_moved_within_the_release_names_the_tested_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.6 dropped a name 5.2.5 had (AWSError): such a move fails the import naming the release to install."""
    import importlib
    import types

    import moto

    from mlops_sfn.local import motoport

    monkeypatch.setattr(moto, "__version__", "5.2.99")
    monkeypatch.setitem(sys.modules, "moto.sagemaker.responses", types.ModuleType("moto.sagemaker.responses"))
    with pytest.raises(
        ImportError,
        match=r"tested with moto .+; moto 5\.2\.99 does not match \(cannot import name "
        r"'SageMakerResponse'.*\): pip install 'moto\[server\]==",
    ):
        importlib.reload(motoport)
    monkeypatch.undo()
    importlib.reload(motoport)
    assert motoport.SageMakerResponse.__module__ == "moto.sagemaker.responses"


def test_only_the_moto_port_imports_moto() -> None:
    """One module to port when moto changes."""
    package = Path(__file__).resolve().parents[2] / "src" / "mlops_sfn"
    importing = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if any(line.lstrip().startswith(("from moto", "import moto")) for line in path.read_text().splitlines())
    )
    assert importing == ["local/motoport.py"]


@pytest.mark.parametrize(
    "data_filter",
    [False, *([True] if hasattr(tarfile, "data_filter") else [])],  # the filter only where this Python has it
    ids=lambda on: "with the data filter" if on else "without it (Python before 3.11.4)",
)
def test_job_archives_extract_safely_on_every_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_filter: bool
) -> None:
    """A model or source archive is extracted with the "data" filter where Python has it (3.11.4+),
    and the same members are refused without it (Debian's python3 is 3.11.2)."""
    from mlops_sfn.local import jobs

    monkeypatch.setattr(jobs, "_DATA_FILTER", data_filter)

    def archive(members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as written:
            for name, body in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(body)
                written.addfile(info, io.BytesIO(body))
        return buffer.getvalue()

    jobs._extract(archive({"model.joblib": b"model", "code/train.py": b"print(1)"}), tmp_path / "ok")
    assert (tmp_path / "ok" / "code" / "train.py").read_bytes() == b"print(1)"
    with pytest.raises(jobs.JobError):
        jobs._extract(archive({"../escaped.txt": b"x"}), tmp_path / "bad")
    assert not (tmp_path / "escaped.txt").exists()
