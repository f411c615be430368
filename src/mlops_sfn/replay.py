"""`mlops-sfn replay`: send the router's dead letters back to it, once their cause is fixed.

Each message in the dead-letter queue is Lambda's invocation record of an event the router
rejected (or could not handle after its retries); `requestPayload` is the event, unchanged. Replay
invokes the router with it synchronously: a message whose event is now handled is deleted; one
still rejected stays in the queue, visible again as soon as the replay ends, and its reason is
printed. Replaying is safe: whatever had already started is a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Replayed:
    handled: int = 0
    still_failing: int = 0
    unreadable: int = 0


def replay(
    sqs: Any,
    lambda_client: Any,
    queue_url: str,
    function: str,
    limit: int = 100,
    say: Callable[[str], None] = print,
) -> Replayed:
    result = Replayed()
    seen = 0
    kept: list[str] = []  # receipt handles of messages left in the queue
    while seen < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - seen), VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen += 1
            try:
                event = json.loads(message["Body"])["requestPayload"]
            except (ValueError, KeyError, TypeError):
                result.unreadable += 1
                kept.append(message["ReceiptHandle"])
                say(f"{message['MessageId']}: not a Lambda invocation record; left in the queue")
                continue
            answer = lambda_client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
            payload = json.loads(answer["Payload"].read() or b"null")
            if answer.get("FunctionError"):
                result.still_failing += 1
                kept.append(message["ReceiptHandle"])
                reason = payload.get("errorMessage") if isinstance(payload, dict) else payload
                say(f"{message['MessageId']}: still rejected ({reason}); left in the queue")
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.handled += 1
            say(f"{message['MessageId']}: handled {json.dumps(payload)}; deleted from the queue")
    for handle in kept:  # hidden while this replay ran (so it reads each message once); visible again now
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    counts = f"{result.handled} handled, {result.still_failing} still rejected, {result.unreadable} unreadable"
    say(f"replayed {seen}: {counts}")
    return result
