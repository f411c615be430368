"""`mlops-sfn replay` against moto's SQS: every kind of dead letter the deployment produces is replayed
once its cause is fixed, deleted only when handled, and each message is hidden only while it is replayed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_sfn.core.router import RejectedEvent, Router
from mlops_sfn.operate.replay import MARGIN_SECONDS, replay, replayable
from tests.aws import REGION, Stack, deploy
from tests.conftest import DEMO, load_event, load_item

pytestmark = pytest.mark.functional

TIMEOUT = 60  # the router's timeout in seconds


class RouterFunction:
    """The Lambda Invoke API of a deployed router, run in this process: all that replay sees of Lambda."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.invoked: list[Any] = []

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"FunctionName": FunctionName, "Timeout": TIMEOUT}

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.invoked.append(event)
        try:
            result: Any = self.router.handle(event, f"replay-{len(self.invoked)}")
        except RejectedEvent as error:
            payload = {"errorMessage": str(error), "errorType": "RejectedEvent", "stackTrace": []}
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": io.BytesIO(json.dumps(payload).encode()),
            }
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item("demo-dev-train-and-batch-score")])  # the demo's item is not there yet


@pytest.fixture
def sqs(stack: Stack) -> Any:
    return boto3.client("sqs", region_name=REGION)


def lambda_failure_record(event: Any) -> str:
    """What Lambda sends to the on-failure destination after an asynchronous invocation's last retry."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2024-05-31T18:44:02.311Z",
            "requestContext": {
                "requestId": "c9b8a3f2-1b7e-4f55-9d0e-6a1f2b3c4d5e",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-dev-router:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "no item", "errorType": "RejectedEvent", "stackTrace": []},
        }
    )


def fill_queue(sqs: Any) -> str:
    queue: str = sqs.create_queue(QueueName="mlops-dev-router-dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=lambda_failure_record(load_event("manual")))
    dead_letter = load_event("eventbridge_dead_letter")  # the S3 event EventBridge could not deliver
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=dead_letter["Body"],
        MessageAttributes={
            name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
            for name, value in dead_letter["MessageAttributes"].items()
        },
    )
    sqs.send_message(QueueUrl=queue, MessageBody="{not an event")
    return queue


def test_every_kind_of_dead_letter_is_kept_until_its_cause_is_fixed_then_replayed_once(stack: Stack, sqs: Any) -> None:
    queue = fill_queue(sqs)
    function = RouterFunction(stack.router())
    said: list[str] = []

    before = replay(sqs, function, queue, "router", say=said.append)
    assert (before.handled, before.still_failing, before.unreadable) == (0, 2, 1)
    assert stack.executions() == []
    assert len(said) == 4 and "Lambda failure record still rejected" in said[0]
    assert "EventBridge dead letter still rejected" in said[1] and "unreadable" in said[2]
    assert said[3] == "replayed 3: 0 handled, 2 still rejected, 1 unreadable"
    # The S3 event was replayed as EventBridge delivered it: the body, not a wrapper.
    assert function.invoked[1]["detail-type"] == "Object Created"

    stack.put_item(load_item(DEMO))  # the fix
    after = replay(sqs, function, queue, "router", say=said.append)
    assert (after.handled, after.still_failing, after.unreadable) == (2, 0, 1)
    assert len(stack.executions()) == 2
    left = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in left] == ["{not an event"]  # never deleted: a person must look

    # Replayed again (say, by a second operator): nothing is left to start.
    assert replay(sqs, function, queue, "router", say=said.append).handled == 0


def test_a_dead_letter_of_a_superseded_manifest_is_settled_by_a_replay(stack: Stack, sqs: Any) -> None:
    """An event of a manifest uploaded again since (kept in the queue by an earlier release, say): the
    replay deletes it as superseded instead of leaving it to fail on every replay."""
    stack.put_item(load_item(DEMO))
    first = stack.s3_event("input/demo-dev-domain-cal-house-price/manifest.json", upload="one")
    stack.s3_event("input/demo-dev-domain-cal-house-price/manifest.json", upload="two")  # uploaded again
    queue: str = sqs.create_queue(QueueName="mlops-dev-router-dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=lambda_failure_record(first))
    said: list[str] = []
    done = replay(sqs, RouterFunction(stack.router()), queue, "router", say=said.append)
    assert (done.handled, done.still_failing) == (1, 0) and stack.executions() == []
    assert "nothing to start: superseded by a newer upload" in said[0] and "deleted from the queue" in said[0]
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_each_message_is_taken_alone_and_hidden_for_the_routers_timeout(stack: Stack, sqs: Any) -> None:
    queue = fill_queue(sqs)
    receives: list[dict[str, Any]] = []
    sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", lambda params, **_: receives.append(params))
    replay(sqs, RouterFunction(stack.router()), queue, "router", say=lambda _: None)
    assert receives and all(params["MaxNumberOfMessages"] == 1 for params in receives)
    assert all(params["VisibilityTimeout"] == TIMEOUT + MARGIN_SECONDS for params in receives)


def test_a_trigger_queue_message_is_replayed_as_the_sqs_record_it_was() -> None:
    # What SQS moves to a dead-letter queue after maxReceiveCount: the message as sent, its id kept, and
    # the system attribute DeadLetterQueueSourceArn (moto does not set it, so the message is written here).
    body = json.dumps({"consumption_pipeline_name": DEMO})
    message = {
        "MessageId": "2e1424d4-f796-459a-8184-9c92662be6da",
        "ReceiptHandle": "AQEB...",
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "DeadLetterQueueSourceArn": "arn:aws:sqs:us-east-1:123456789012:mlops-dev-triggers",
        },
    }
    kind, event = replayable(message) or ("", None)
    assert kind == "trigger-queue message"
    (record,) = event["Records"]
    assert record["messageId"] == message["MessageId"] and record["body"] == body
    assert record["eventSource"] == "aws:sqs"  # so a manual run keeps the name its message id gave it


def test_a_replay_the_router_answers_with_batch_item_failures_is_still_failing(stack: Stack, sqs: Any) -> None:
    queue: str = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=lambda_failure_record(load_event("sqs_records_legacy")))
    function = RouterFunction(Router(replace(stack.router().config, report_batch_item_failures=True)))
    result = replay(sqs, function, queue, "router", say=lambda _: None)
    assert (result.handled, result.still_failing) == (0, 1)


def test_replay_from_a_queue_that_does_not_exist_is_one_line(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_sfn import cli

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue"
    assert cli.main(["replay", "--queue-url", url, "--function", "router", "--region", REGION]) == 1
    error = capsys.readouterr().err
    assert error.startswith("mlops-sfn: error:") and len(error.splitlines()) == 1


def test_replay_reaches_the_deployment_of_an_outputs_file(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like run and status, replay finds the queue and the router in the deployment's outputs."""
    from mlops_sfn import cli

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/the-deployments-dead-letters"
    outputs = {
        "dead_letter_queue_url": {"value": url},
        "router_function_arn": {"value": "arn:aws:lambda:us-east-1:123456789012:function:the-deployments-router"},
        "region": {"value": REGION},
    }
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    assert cli.main(["replay", "--outputs", str(tmp_path / "outputs.json")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("mlops-sfn: error:") and "function:the-deployments-router" in error, error
