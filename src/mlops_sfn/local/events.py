"""EventBridge delivery in the local AWS, as AWS delivers; where moto 5.2 differs, filled here.

`install(invoke_async)` replaces moto's `Rule.send_to_targets` (moto calls it for every S3 event
and every PutEvents entry) with `deliver`, which fills these gaps:
- S3 "Object Created" events carry `detail.object.etag` and an ISO 8601 `time` on AWS; moto sends
  `eTag` and epoch seconds;
- S3 writes the object key URL-encoded in its events (form encoding, '/' kept: "dt=1/a b.csv" is
  "dt%3D1/a+b.csv"), and rules match that encoded key; moto sends the key as stored;
- a rule with a schedule and no event pattern matches no event on AWS; moto matches every event;
- a disabled rule delivers nothing;
- a target's input transformer (or `Input`, `InputPath`) applies to S3 events too; moto skips it;
- a Lambda target is invoked asynchronously (`invoke_async`, i.e. `LocalLambda`: retries, then the
  on-failure destination); moto never invokes it and stops delivering to the targets after it;
- an event whose Lambda target does not exist goes to the target's dead-letter queue at once, with
  EventBridge's message attributes (RULE_ARN, TARGET_ARN, ERROR_CODE NO_RESOURCE, ...);
- EventBridge invokes a function only when the function's resource policy allows
  `events.amazonaws.com` to invoke it for this rule (`AWS:SourceArn`; EventBridge user guide, "Using
  resource-based policies for Amazon EventBridge"), decided by `policy_evaluation`; otherwise the
  event goes to the dead-letter queue at once with ERROR_CODE NO_PERMISSIONS, as on AWS;
- an SQS target, and a target's dead-letter queue, take the event only when the queue's policy allows
  `events.amazonaws.com` to send for this rule, and, for a queue encrypted with a KMS key, the key's
  policy lets EventBridge use it (`kms`; SQS developer guide, "Key management"): a refused target's
  event goes to its dead-letter queue (NO_PERMISSIONS), a refused dead-letter queue's is dropped, as
  on AWS;
- SQS and SNS targets get the same input as on AWS (moto's transformer quotes no strings).
- an event bus of another account takes the event only when the rule's target role may put events on
  it and the bus's resource policy lets the sending account (or role) do so (EventBridge user guide,
  "Sending and receiving events between AWS accounts"; both sides decide, as for any request across
  accounts); a refused event goes to the target's dead-letter queue (NO_PERMISSIONS). The event
  arrives as sent, and the receiving account's rules on that bus match it; an event received from
  another account is not sent on to a third ("If a receiver account sets up a rule that sends events
  received from a sender account on to a third account, these events are not sent to the third
  account", the same page).
Other targets (log groups, buses of the same account, archives) still go through moto's own delivery.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from . import resource_policies
from .functions import FunctionNotFound, send
from .policy_evaluation import Request, decide, denied_message

InvokeAsync = Callable[[str, Any, str, str], None]  # (function ARN, event, account, region)


def as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """The event with AWS's field names and time format (moto's S3 events differ)."""
    event = copy.deepcopy(event)
    if isinstance(event.get("time"), int | float):
        event["time"] = datetime.fromtimestamp(event["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj = event.get("detail", {}).get("object") if isinstance(event.get("detail"), dict) else None
    if isinstance(obj, dict) and "eTag" in obj:
        obj["etag"] = obj.pop("eTag")
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html:
        # "The object key name value is URL encoded. For example, 'red flower.jpg' becomes 'red+flower.jpg'."
        obj["key"] = quote_plus(obj["key"], safe="/")
    return event


def value_at(path: str, event: dict[str, Any]) -> Any:
    """An InputPathsMap path ($, $.a.b) in the event; None when absent."""
    node: Any = event
    for part in path.removeprefix("$").lstrip(".").split(".") if path != "$" else []:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def transform(template: str, paths: dict[str, str], event: dict[str, Any]) -> Any:
    """EventBridge's input transformer: a <name> inside a JSON string takes the value's text, anywhere
    else its JSON (so an unquoted string placeholder becomes a quoted string, as on AWS). The result
    is parsed when it is JSON, else delivered as text."""
    values = {name: value_at(path, event) for name, path in paths.items()}
    values.setdefault("aws.events.event.json", event)
    out, in_string, index = [], False, 0
    while index < len(template):
        char = template[index]
        match = re.match(r"<([\w.\-]+)>", template[index:]) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = value if isinstance(value, str) else json.dumps(value)
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value))
            index += match.end()
            continue
        if char == '"' and (index == 0 or template[index - 1] != "\\"):
            in_string = not in_string
        out.append(char)
        index += 1
    text = "".join(out)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives: Input, InputPath, InputTransformer, or the whole event."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return value_at(target["InputPath"], event)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(transformer["InputTemplate"], transformer.get("InputPathsMap", {}), event)
    return event


def deliver(
    rule: Any, original: Callable[..., None], event: dict[str, Any], invoke_async: InvokeAsync, received: bool = False
) -> None:
    """The event to the rule's targets; `received`: it came from another account's rule."""
    if rule.state != "ENABLED":
        return
    if rule.scheduled_expression and not rule.event_pattern.get_pattern():
        return
    delivered = as_delivered(event)
    if not rule.event_pattern.matches_event(delivered):
        return
    others = []
    for target in rule.targets:
        service = target["Arn"].split(":")[2]
        payload = target_input(target, delivered)
        if service == "lambda":
            refused = not_invocable(rule, target["Arn"])
            if refused:
                dead_letter(rule, target, payload, "NO_PERMISSIONS", refused)
                continue
            try:
                invoke_async(target["Arn"], payload, rule.account_id, rule.region_name)
            except FunctionNotFound as missing:
                dead_letter(rule, target, payload, "NO_RESOURCE", str(missing))
        elif service == "sqs":
            refused = queue_refuses(rule, target["Arn"])
            if refused:
                dead_letter(rule, target, payload, "NO_PERMISSIONS", refused)
                continue
            send(target["Arn"], json.dumps(payload), rule.account_id, rule.region_name)
        elif service == "sns":
            send(target["Arn"], json.dumps(payload), rule.account_id, rule.region_name)
        elif service == "events" and target["Arn"].split(":")[4] != rule.account_id:
            if received:
                continue  # not sent on to a third account
            refused = bus_refuses(rule, target)
            if refused:
                dead_letter(rule, target, payload, "NO_PERMISSIONS", refused)
                continue
            to_bus(target["Arn"], payload, original, invoke_async)
        else:
            others.append(target)
    if others:  # log groups, buses, archives: moto's own delivery
        rest = copy.copy(rule)
        rest.targets = others
        original(rest, event, transform_input=False)


def not_invocable(rule: Any, function_arn: str) -> str | None:
    """Why EventBridge may not invoke the function for this rule (its resource policy), or None. A function
    the local Lambda does not hold is left to the invocation, which answers NO_RESOURCE."""
    from .motoport import lambda_simple_backends

    backend = lambda_simple_backends[rule.account_id][rule.region_name]
    name = function_arn.split(":")[6] if function_arn.count(":") >= 6 else function_arn
    try:
        backend.get_function(name)
    except Exception:
        return None
    try:
        policies = [json.loads(json.loads(backend.get_policy(name))["Policy"])]
    except Exception:  # no statement yet: the function has no resource policy
        policies = []
    return _refusal(rule, "lambda:InvokeFunction", function_arn, policies)


def bus_refuses(rule: Any, target: dict[str, Any]) -> str | None:
    """Why another account's bus refuses the rule's events (events:PutEvents, decided as the target's
    role with the role's policies and the bus's resource policy), or None."""
    from . import task_permissions
    from .motoport import events_backends

    bus_arn = target["Arn"]
    _, _, _, region, account, resource = bus_arn.split(":", 5)
    bus = events_backends[account][region].event_buses.get(resource.removeprefix("event-bus/"))
    if bus is None:
        return f"the event bus {bus_arn} does not exist"
    role = target.get("RoleArn")
    identity = task_permissions.role_policies(role) if role else None
    if role and identity is None:
        return f"the target's role {role} does not exist"
    # Without a role, the rule's account sends (its own identity allows whatever it does).
    principal = role or f"arn:aws:iam::{rule.account_id}:root"
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    request = Request(principal, "events:PutEvents", bus_arn, {"aws:SourceArn": rule.arn})
    bus_policy = [json.loads(bus.policy)] if bus.policy else []
    decision = decide(request, identity=(identity or []) if role else [everything], resource=bus_policy)
    return None if decision.allowed else denied_message(request, decision)


def to_bus(bus_arn: str, event: dict[str, Any], original: Callable[..., None], invoke_async: InvokeAsync) -> None:
    """The event, as sent, to the rules of another account's bus."""
    from .motoport import events_backends

    _, _, _, region, account, resource = bus_arn.split(":", 5)
    bus = events_backends[account][region].event_buses[resource.removeprefix("event-bus/")]
    for rule in list(bus.rules.values()):
        deliver(rule, original, event, invoke_async, received=True)


def queue_refuses(rule: Any, queue_arn: str) -> str | None:
    """Why EventBridge may not send to the queue for this rule (the queue's policy must allow
    events.amazonaws.com sqs:SendMessage: EventBridge user guide, "Amazon SQS permissions" and
    "Using dead-letter queues"; an encrypted queue's key policy must let it use the key), or None.
    A queue the local SQS does not hold is left to the send."""
    context = {"aws:SourceArn": rule.arn, "aws:SourceAccount": rule.account_id}
    refused = resource_policies.write_refusal("events.amazonaws.com", queue_arn, context=context)
    return refused.message if refused else None


def _refusal(rule: Any, action: str, resource: str, policies: list[Any]) -> str | None:
    """AWS's message when the resource's policies do not let EventBridge act on it for this rule."""
    context = {"aws:SourceArn": rule.arn, "aws:SourceAccount": rule.account_id}
    request = Request("events.amazonaws.com", action, resource, context)
    decision = decide(request, resource=policies)
    return None if decision.allowed else denied_message(request, decision)


def dead_letter(rule: Any, target: dict[str, Any], payload: Any, code: str, message: str) -> None:
    """What EventBridge puts in a target's dead-letter queue: the event as the target would have received it,
    and why. Missing permissions or a deleted target are not retried: the event goes there at once.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html
    Without a dead-letter queue, EventBridge drops the event."""
    queue = target.get("DeadLetterConfig", {}).get("Arn")
    if not queue:
        return
    refused = queue_refuses(rule, queue)
    if refused:  # EventBridge drops the event (its InvocationsFailedToBeSentToDlq metric counts it)
        print(
            f"EventBridge dropped an event of {rule.arn}: its dead-letter queue refused it: {refused}", file=sys.stderr
        )
        return
    attributes = {
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": code,
        "ERROR_MESSAGE": message,
        "RETRY_ATTEMPTS": "0",
    }
    send(queue, json.dumps(payload), rule.account_id, rule.region_name, attributes)


def install(invoke_async: InvokeAsync) -> Callable[[], None]:
    """Replace moto's delivery; returns what puts moto's back."""
    from .motoport import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        try:
            deliver(self, original, event, invoke_async)
        except Exception:  # moto swallows errors here; the server log must show them
            traceback.print_exc()
            raise

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        Rule.send_to_targets = original  # type: ignore[method-assign]

    return uninstall
