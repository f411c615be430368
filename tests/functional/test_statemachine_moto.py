"""The rendered definition in moto's ASL interpreter: accepted, and a run with every stage off succeeds.

Runs that enter SageMaker states need the local execution harness (moto has no SageMaker integration).
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_execution
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.stages import STAGES
from mlops_sfn.tools import statemachine
from tests.conftest import load_item

pytestmark = pytest.mark.functional


def run(execution_input: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.session.Session(region_name="us-east-1")
        sns, sqs, sfn = session.client("sns"), session.client("sqs"), session.client("stepfunctions")
        topic = sns.create_topic(Name="mlops-notifications")["TopicArn"]
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        definition = statemachine.render(
            {
                "notification_topic_arn": topic,
                "approval_topic_arn": topic,
                "quality_gate_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-quality-gate",
                "model_copy_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-model-copy",
                "smoke_test_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-smoke-test",
                "segments_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:mlops-segments",
                "ledger_table_name": "mlops-run-ledger",
            }
        )
        arn = sfn.create_state_machine(
            name="mlops-pipeline", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/states"
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
        for _ in range(100):
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.05)
        events = sfn.get_execution_history(executionArn=execution)["events"]
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return described, events, [json.loads(m["Body"]) for m in messages]


def test_a_run_with_every_stage_off_passes_one_choice_per_stage_and_reports_success() -> None:
    execution_input = plan_execution(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    execution_input["run"] = dict.fromkeys(STAGES, False)
    del execution_input["quality_gate"]

    described, events, messages = run(execution_input)

    assert described["status"] == "SUCCEEDED"
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == [
        "Started by drift?",
        "Run preprocessing?",
        "Run training?",
        "Run tuning?",
        "Run evaluation?",
        "Run register?",
        "Run approval?",
        "Run create model?",
        "Serve model?",
        "Run monitoring?",
        "Notify success?",
        "Notify success",
        "Succeeded",
    ]
    (message,) = messages
    assert message["status"] == "SUCCEEDED" and message["pipeline"] == execution_input["pipeline"]
    assert message["execution_name"] == execution_input["execution_name"]
