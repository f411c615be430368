"""`mlops-sfn replay`: send the router's dead letters back to it, once their cause is fixed.

The dead-letter queue the Terraform wires receives three kinds of message, and each is replayable:
- **Lambda's invocation record** of an event the router rejected or could not handle after its
  retries (the on-failure destination of asynchronous invocations): `requestPayload` is the event.
- **An event EventBridge could not deliver** to the router (the rule target's dead-letter queue):
  the body is the event itself, with the message attributes `RULE_ARN`, `TARGET_ARN`,
  `ERROR_CODE` and `ERROR_MESSAGE` (EventBridge User Guide, "Using dead-letter queues").
- **A trigger-queue message** SQS moved after `maxReceiveCount` failed receives (redrive policy):
  the body is the message as sent; SQS keeps its message id and adds the system attribute
  `DeadLetterQueueSourceArn`. It is replayed as the one-record SQS batch it was, same message id,
  so a run named by that id keeps its name.

Replay takes one message at a time, hidden for the router's timeout plus a margin, and invokes the
router synchronously. A message whose event is now handled is deleted with the receipt handle of that
receive; one still rejected stays in the queue, visible again when the replay ends. One line per
message says what happened. Replaying is safe: whatever had already started is a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.triggers import shorten

MARGIN_SECONDS = 30  # a replayed message stays hidden for the router's timeout plus this


@dataclass
class Replayed:
    handled: int = 0
    still_failing: int = 0
    unreadable: int = 0


def replayable(message: dict[str, Any]) -> tuple[str, Any] | None:
    """(the kind of dead letter, the event to invoke the router with), or None when it is neither."""
    try:
        body = json.loads(message["Body"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(body, dict):
        return None
    if "requestPayload" in body and "requestContext" in body:
        return "Lambda failure record", body["requestPayload"]
    attributes = message.get("MessageAttributes", {})
    if "RULE_ARN" in attributes or "ERROR_CODE" in attributes:
        return "EventBridge dead letter", body
    if "DeadLetterQueueSourceArn" in message.get("Attributes", {}):
        record = {
            "messageId": message["MessageId"],
            "body": message["Body"],
            "eventSource": "aws:sqs",
            "eventSourceARN": message["Attributes"]["DeadLetterQueueSourceArn"],
        }
        return "trigger-queue message", {"Records": [record]}
    return None


def replay(
    sqs: Any,
    lambda_client: Any,
    queue_url: str,
    function: str,
    limit: int = 100,
    say: Callable[[str], None] = print,
) -> Replayed:
    result = Replayed()
    hidden = lambda_client.get_function_configuration(FunctionName=function)["Timeout"] + MARGIN_SECONDS
    kept: list[str] = []  # receipt handles of messages left in the queue
    seen = 0
    while seen < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=1,  # each one hidden only for the time its own replay takes
            VisibilityTimeout=hidden,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        (message,) = messages
        seen += 1
        found = replayable(message)
        if found is None:
            result.unreadable += 1
            kept.append(message["ReceiptHandle"])
            say(f"{message['MessageId']}: unreadable (no event the router can take); left in the queue")
            continue
        kind, event = found
        answer = lambda_client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = json.loads(answer["Payload"].read() or b"null")
        failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
        if answer.get("FunctionError") or failures:
            result.still_failing += 1
            kept.append(message["ReceiptHandle"])
            reason = (
                payload.get("errorMessage", "reported as a failed batch item") if isinstance(payload, dict) else payload
            )
            say(f"{message['MessageId']}: {kind} still rejected ({shorten(str(reason), 500)}); left in the queue")
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        result.handled += 1
        outcome = {name: payload[name] for name in ("started", "duplicates", "skipped") if name in payload}
        settled = (
            " (nothing to start: superseded by a newer upload, already served, or switched off;"
            " the router's log says which)"
            if not payload.get("started")
            else ""
        )
        say(f"{message['MessageId']}: {kind} handled {json.dumps(outcome)}{settled}; deleted from the queue")
    for handle in kept:  # hidden while this replay ran (so it reads each message once); visible again now
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    counts = f"{result.handled} handled, {result.still_failing} still rejected, {result.unreadable} unreadable"
    say(f"replayed {seen}: {counts}")
    return result
