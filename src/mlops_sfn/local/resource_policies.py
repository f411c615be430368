"""What the policies attached to queues, topics and KMS keys allow in the local AWS, as AWS decides.

A writer (a role, or a service principal: EventBridge, CloudWatch) may send to a queue or publish to
a topic when the queue's or topic's policy allows it, or, for a role of the same account, its own
policies do (`policy_evaluation`; SQS developer guide, "Overview of managing access"; SNS developer
guide, "Identity and access management").

When the queue or topic is encrypted with a KMS key, the writer must also be allowed to use the key:
SNS needs kms:GenerateDataKey* and kms:Decrypt of the publisher (SNS developer guide, "Key
management", "Configuring AWS KMS permissions"); SQS needs kms:GenerateDataKey and kms:Decrypt of the
sender (SQS developer guide, "Key management"). The key policy must allow it, naming the caller, or
naming the account so that IAM policies may allow it (KMS developer guide, "Key policies in AWS
KMS"); `policy_evaluation.decide(..., key_policy=True)` decides it.
- A customer managed key's policy is read from the local KMS (a key created without one has the
  default policy: the account may use IAM policies for it, "Default key policy").
- An AWS managed key (`alias/aws/<service>`) has the policy AWS gives such keys: every principal of
  the account may use it, through that service only (kms:CallerAccount, kms:ViaService; "AWS managed
  keys"). No one can change it, so no service principal (CloudWatch, EventBridge) may use it.
- The request carries what KMS sees: kms:ViaService (the service that calls KMS for the caller),
  kms:CallerAccount for a principal of an account, and the service's encryption context
  (kms:EncryptionContext:aws:sns:topicArn, kms:EncryptionContext:aws:sqs:arn). It carries no
  aws:SourceArn: a key policy that relies on it for a service principal is refused, never guessed.
- A log group encrypted with a key: CloudWatch Logs must be allowed to use it (the key policy names
  logs.<region>.amazonaws.com, with the log group's ARN as kms:EncryptionContext:aws:logs:arn),
  or CreateLogGroup fails with AccessDeniedException "The specified KMS key does not exist or is
  not allowed to be used with Arn ..." (CloudWatch Logs user guide, "Encrypt log data in CloudWatch
  Logs using AWS KMS"); `install` adds that refusal to the local CloudWatch Logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .policy_evaluation import Policy, Request, decide, denied_message

# What each service asks KMS for when it writes for a caller, and the encryption context it sends.
WRITES = {
    "sns": (("kms:GenerateDataKey", "kms:Decrypt"), "kms:EncryptionContext:aws:sns:topicArn"),
    "sqs": (("kms:GenerateDataKey", "kms:Decrypt"), "kms:EncryptionContext:aws:sqs:arn"),
}


@dataclass(frozen=True)
class Refusal:
    """Why a write was refused, in AWS's words (caller, action, resource); `missing_key` when the
    destination's KMS key does not exist (services answer that with an error of its own)."""

    message: str
    missing_key: bool = False


def _managed_policy(service: str, account: str, region: str) -> Policy:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"Allow access through {service} for all principals in the account that are authorized",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account,
                        "kms:ViaService": f"{service}.{region}.amazonaws.com",
                    }
                },
            }
        ],
    }


def key(reference: str, account: str, region: str) -> tuple[str, Policy] | None:
    """The key `reference` names (key id, key ARN, alias name or alias ARN), as (ARN, key policy); None
    when the local KMS holds no such key."""
    alias = reference.split(":", 5)[-1] if reference.startswith("arn:") else reference
    if alias.startswith("alias/aws/"):
        return f"arn:aws:kms:{region}:{account}:{alias}", _managed_policy(
            alias.removeprefix("alias/aws/"), account, region
        )
    from .motoport import kms_backends

    backend = kms_backends[account][region]
    try:
        found = backend.describe_key(reference)
    except Exception:
        return None
    return found.arn, json.loads(found.policy)


def key_refusal(
    caller: str,
    service: str,
    resource: str,
    reference: str,
    *,
    identity: Sequence[Policy] = (),
    guardrails: Sequence[Policy] = (),
) -> Refusal | None:
    """Why `caller` (a role ARN or a service principal) may not write to `resource` (a topic or queue
    ARN of `service`) encrypted with the key `reference`, or None when it may."""
    _, _, _, region, account, _ = resource.split(":", 5)
    found = key(reference, account, region)
    if found is None:
        return Refusal(f"Key '{reference}' does not exist", missing_key=True)
    arn, policy = found
    actions, encryption_context = WRITES[service]
    context: dict[str, Any] = {"kms:ViaService": f"{service}.{region}.amazonaws.com", encryption_context: resource}
    if caller.startswith("arn:"):
        context["kms:CallerAccount"] = caller.split(":")[4]
    for action in actions:
        request = Request(caller, action, arn, context)
        decision = decide(request, identity=identity, resource=[policy], guardrails=guardrails, key_policy=True)
        if not decision.allowed:
            return Refusal(denied_message(request, decision))
    return None


def _destination(arn: str) -> Any:
    """The local SQS queue or SNS topic `arn` names, or None."""
    from .motoport import sns_backends, sqs_backends

    _, _, service, region, account, name = arn.split(":", 5)
    try:
        if service == "sqs":
            return sqs_backends[account][region].get_queue(name)
        return sns_backends[account][region].get_topic(arn)
    except Exception:
        return None


def key_of(destination: str) -> str | None:
    """The KMS key a queue or topic (by ARN) is encrypted with, or None."""
    return getattr(_destination(destination), "kms_master_key_id", None) or None


def write_refusal(
    writer: str,
    destination: str,
    *,
    identity: Sequence[Policy] = (),
    guardrails: Sequence[Policy] = (),
    context: dict[str, Any] | None = None,
) -> Refusal | None:
    """Why `writer` may not send to the queue or publish to the topic `destination` (its policy, the
    writer's own, then the key's), or None when it may. `context`: what the service tells IAM about the
    request (EventBridge: the rule as aws:SourceArn). A destination the local AWS does not hold is left
    to the write."""
    found = _destination(destination)
    if found is None:
        return None
    service = destination.split(":")[2]
    action = {"sqs": "sqs:SendMessage", "sns": "sns:Publish"}[service]
    policy = found.policy  # moto keeps both as JSON text
    request = Request(writer, action, destination, context or {})
    decision = decide(
        request, identity=identity, resource=[json.loads(policy)] if policy else [], guardrails=guardrails
    )
    if not decision.allowed:
        return Refusal(denied_message(request, decision))
    reference = getattr(found, "kms_master_key_id", None)
    if not reference:
        return None
    return key_refusal(writer, service, destination, reference, identity=identity, guardrails=guardrails)


# What CloudWatch Logs needs of a log group's key ("Encrypt log data ...": kms:Encrypt*, kms:Decrypt*,
# kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe*), each checked on its own.
_LOGS_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")


def log_group_refusal(name: str, reference: str, account: str, region: str) -> str | None:
    """AWS's message when CloudWatch Logs may not use the key `reference` for the log group `name`, or None."""
    group = f"arn:aws:logs:{region}:{account}:log-group:{name}"
    message = f"The specified KMS key does not exist or is not allowed to be used with Arn '{group}'"
    found = key(reference, account, region)
    if found is None:
        return message
    arn, policy = found
    context = {"kms:EncryptionContext:aws:logs:arn": group}
    for action in _LOGS_ACTIONS:
        request = Request(f"logs.{region}.amazonaws.com", action, arn, context)
        if not decide(request, resource=[policy], key_policy=True).allowed:
            return message
    return None


def install() -> Callable[[], None]:
    """Make the local CloudWatch Logs refuse a log group whose key it may not use; returns the undo."""
    from .motoport import JsonRESTError, LogsBackend

    original = LogsBackend.create_log_group

    def create_log_group(backend: Any, log_group_name: str, tags: dict[str, str], **kwargs: Any) -> Any:
        reference = kwargs.get("kmsKeyId")
        if reference:
            refused = log_group_refusal(log_group_name, reference, backend.account_id, backend.region_name)
            if refused:
                raise JsonRESTError("AccessDeniedException", refused)
        return original(backend, log_group_name, tags, **kwargs)

    LogsBackend.create_log_group = create_log_group  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        LogsBackend.create_log_group = original  # type: ignore[method-assign]

    return uninstall
