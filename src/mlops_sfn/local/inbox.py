"""An SQS queue subscribed to an SNS topic: what the team's or the approvers' email would receive.

The local harness and the local demo read notifications and approval requests this way.
"""

from __future__ import annotations

import json
from typing import Any


def subscribe(sqs: Any, sns: Any, topic_arn: str, queue_name: str) -> str:
    """The queue's URL; the queue and its subscription are made once (a second call reuses them)."""
    url: str = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscribed = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    if not any(subscription["Endpoint"] == arn for subscription in subscribed):
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def drain(sqs: Any, queue_url: str, topic: str) -> list[dict[str, Any]]:
    """Every message waiting, as {"topic", "subject", "message"} (a JSON message parsed), deleted once read."""
    received: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            envelope = json.loads(message["Body"])
            try:
                body = json.loads(envelope["Message"])
            except json.JSONDecodeError:
                body = envelope["Message"]
            received.append({"topic": topic, "subject": envelope.get("Subject"), "message": body})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received
