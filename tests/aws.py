"""A router deployment inside moto (in-process), shared by the router tests and benchmarks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import boto3

from mlops_sfn.core import contract
from mlops_sfn.core.dynamodb_json import to_typed
from mlops_sfn.core.router import Config, Router
from mlops_sfn.local import REGION
from tests.conftest import load_event

TABLE = "mlops-test-pipelines"
LEDGER = "mlops-test-run-ledger"
BUCKET = "example-mlops-bucket"  # the bucket the event fixtures name
ROLE_ARN = "arn:aws:iam::123456789012:role/mlops-test-sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
# The manifest the S3 event fixtures announce (their etag is its MD5): it lists no files.
FIXTURE_MANIFEST = b'{"files": []}\n'
FIXTURE_MANIFEST_KEYS = [
    "input/demo-dev-domain-cal-house-price/manifest.json",
    "input/demo-dev-domain-cal-house-price/dt=2024-05-31/batch 1+é%/manifest.json",
]


@dataclass
class Stack:
    dynamodb: Any
    stepfunctions: Any
    s3: Any
    environment: dict[str, str]
    _uploaded: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def state_machine_arn(self) -> str:
        return self.environment["STATE_MACHINE_ARN"]

    def router(self) -> Router:
        """A router as a fresh Lambda container would build it."""
        return Router(Config.from_environment(self.environment))

    def s3_event(self, key: str, upload: str = "e1", bucket: str = BUCKET) -> dict[str, Any]:
        """The EventBridge event of an object put at `key` now, as S3 sends it (key URL-encoded, real ETag).

        The object is a manifest listing no files; `upload` fixes its content, so the same `upload` is
        the same object (same ETag) and another is a new upload. Another bucket gets no object."""
        etag = upload
        if bucket == BUCKET:
            if (key, upload) not in self._uploaded:
                body = json.dumps({"files": [], "upload": upload}).encode()
                self._uploaded[key, upload] = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
            etag = self._uploaded[key, upload]
        event: dict[str, Any] = load_event("s3_object_created")
        event["detail"]["object"].update(key=quote_plus(key, safe="/"), etag=etag)
        event["detail"]["bucket"]["name"] = bucket
        return event

    def put_item(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=TABLE, Item=to_typed(item))

    def executions(self) -> list[dict[str, Any]]:
        pages = self.stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        return [execution for page in pages for execution in page["executions"]]

    def succeed(self, name: str) -> None:
        """Ends a started execution as SUCCEEDED, as its state machine would (moto's stay RUNNING)."""
        from moto.core.utils import utcnow
        from moto.stepfunctions.models import stepfunctions_backends

        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        execution = stepfunctions_backends[arn.split(":")[4]][REGION].describe_execution(arn)
        execution.status, execution.stop_date = "SUCCEEDED", utcnow()

    def execution_input(self, name: str) -> dict[str, Any]:
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        result: dict[str, Any] = json.loads(self.stepfunctions.describe_execution(executionArn=arn)["input"])
        return result


def deploy(items: list[dict[str, Any]]) -> Stack:
    """Table, items and a state machine; call inside moto's mock_aws."""
    session = boto3.session.Session(region_name=REGION)
    dynamodb = session.client("dynamodb")
    stepfunctions = session.client("stepfunctions")
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    # the greater key last: it is the newest upload whether or not a second passed between the puts
    for key in reversed(FIXTURE_MANIFEST_KEYS):
        s3.put_object(Bucket=BUCKET, Key=key, Body=FIXTURE_MANIFEST)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "consumption_pipeline_name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "consumption_pipeline_name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=LEDGER,
        KeySchema=[{"AttributeName": "cache_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "cache_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    arn = stepfunctions.create_state_machine(
        name="mlops-test-pipeline",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/mlops-test-states",
    )["stateMachineArn"]
    stack = Stack(
        dynamodb,
        stepfunctions,
        s3,
        {
            "AWS_REGION": REGION,
            **contract.router_environment(
                {
                    "table_name": TABLE,
                    "state_machine_arn": arn,
                    "bucket": BUCKET,
                    "sagemaker_role_arn": ROLE_ARN,
                    "default_image_uri": IMAGE,
                    "sagemaker_name_prefix": "mlops-dev-",
                    "image_repository_arns": "arn:aws:ecr:us-east-1:683313688378:repository/*",
                    "ledger_table_name": LEDGER,
                }
            ),
        },
    )
    for item in items:
        stack.put_item(item)
    return stack


def eventbridge_may_send(sqs: Any, queue_url: str, account: str = "123456789012") -> None:
    """The queue policy EventBridge needs to deliver to a queue, as a target or a dead-letter queue
    (what modules/triggers writes): events.amazonaws.com may SendMessage for the account's rules."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:events:{REGION}:{account}:rule/*"}},
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
