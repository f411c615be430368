"""Writes to queues and topics in the local AWS, decided as AWS decides them: the writer's policies, the
queue's or topic's policy, and, when it is encrypted, the KMS key's policy (`local/resource_policies.py`).
Each rule here fails if the local AWS lets a write through that AWS would refuse: a customer managed
key whose policy does not name EventBridge or CloudWatch, an AWS managed key for a service principal,
a role whose key policy does not let IAM policies count."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest

from mlops_sfn.local import accounts, events, monitor, resource_policies, task_permissions
from mlops_sfn.local.motoport import mock_aws, sns_backends
from tests.aws import eventbridge_may_send

pytestmark = pytest.mark.functional

REGION, ACCOUNT = "us-east-1", "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def key_policy(*services: str) -> str:
    """The default key policy (IAM policies may allow), plus the statements letting `services` use it."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    for service in services:
        statements.append(
            {
                "Sid": f"Allow {service}",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                "Resource": "*",
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def a_key(*services: str) -> str:
    return str(client("kms").create_key(Policy=key_policy(*services))["KeyMetadata"]["Arn"])


def a_role(name: str, *statements: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    iam = client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return arn, [policy] if statements else []


def test_a_role_writes_to_an_encrypted_topic_only_when_the_key_policy_and_its_own_allow(aws: None) -> None:
    key = a_key()
    topic = client("sns").create_topic(Name="notes", Attributes={"KmsMasterKeyId": key})["TopicArn"]
    publish = {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}
    use_key = {"Effect": "Allow", "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": key}
    role, publishing_only = a_role("publisher", publish)
    refused = resource_policies.write_refusal(role, topic, identity=publishing_only)
    assert refused is not None and not refused.missing_key
    assert refused.message.startswith(
        f"User: {role} is not authorized to perform: kms:GenerateDataKey on resource: {key}"
    )
    assert resource_policies.write_refusal(role, topic, identity=[*publishing_only, {"Statement": [use_key]}]) is None
    # A key policy that names neither the role nor the account: the role's own allow counts for nothing.
    client("kms").put_key_policy(
        KeyId=key,
        PolicyName="default",
        Policy=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ]
            }
        ),
    )
    refused = resource_policies.write_refusal(role, topic, identity=[*publishing_only, {"Statement": [use_key]}])
    assert refused is not None and "no statement of the key policy allows it" in refused.message


def test_an_aws_managed_key_serves_the_accounts_roles_through_its_service_and_no_service_principal(
    aws: None,
) -> None:
    # KMS developer guide, "AWS managed keys": its policy lets the account's principals use it through the
    # service, and cannot be changed, so EventBridge and CloudWatch may never use it.
    queue = client("sqs").create_queue(QueueName="letters", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"]
    eventbridge_may_send(client("sqs"), queue)
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:letters"
    role, policies = a_role("sender", {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arn})
    assert resource_policies.write_refusal(role, arn, identity=policies) is None
    refused = resource_policies.write_refusal(
        "events.amazonaws.com", arn, context={"aws:SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/r"}
    )
    assert refused is not None
    assert f"kms:GenerateDataKey on resource: arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/sqs" in refused.message


def test_a_key_that_does_not_exist_is_told_apart(aws: None) -> None:
    missing = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    topic = client("sns").create_topic(Name="notes", Attributes={"KmsMasterKeyId": missing})["TopicArn"]
    role, policies = a_role("publisher", {"Effect": "Allow", "Action": "*", "Resource": "*"})
    refused = resource_policies.write_refusal(role, topic, identity=policies)
    assert refused is not None and refused.missing_key and missing in refused.message


@pytest.mark.parametrize(
    "services", [(), ("events.amazonaws.com",)], ids=["default-key-policy", "key-names-eventbridge"]
)
def test_eventbridge_puts_an_event_in_an_encrypted_dead_letter_queue_only_when_the_key_lets_it(
    aws: None, capsys: pytest.CaptureFixture[str], services: tuple[str, ...]
) -> None:
    # SQS developer guide, "Key management": EventBridge may send to a queue encrypted with a customer managed
    # key only when the key policy lets events.amazonaws.com use it; otherwise the event is dropped.
    sqs, bus = client("sqs"), client("events")
    letters = sqs.create_queue(QueueName="letters", Attributes={"KmsMasterKeyId": a_key(*services)})["QueueUrl"]
    eventbridge_may_send(sqs, letters)
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
    sqs.create_queue(QueueName="unwritable")  # no policy: the event goes to the dead-letter queue
    rule = bus.put_rule(Name="r", EventPattern=json.dumps({"source": ["mlops.test"]}))["RuleArn"]
    bus.put_targets(
        Rule="r", Targets=[{"Id": "t", "Arn": arn + "unwritable", "DeadLetterConfig": {"Arn": arn + "letters"}}]
    )
    uninstall = events.install(lambda *_: None)
    try:
        bus.put_events(Entries=[{"Source": "mlops.test", "DetailType": "t", "Detail": "{}"}])
    finally:
        uninstall()
    kept = sqs.receive_message(QueueUrl=letters).get("Messages", [])
    if services:
        assert len(kept) == 1
    else:
        assert kept == []
        err = capsys.readouterr().err
        assert f"EventBridge dropped an event of {rule}" in err
        assert "events.amazonaws.com is not authorized to perform: kms:GenerateDataKey" in err


def alarm_fires_at(topic: str) -> list[Any]:
    """What the topic received when an alarm whose action is to notify it went into ALARM."""
    uninstall = monitor.install()
    try:
        client("cloudwatch").put_metric_alarm(
            AlarmName="failures",
            Namespace="mlops",
            MetricName="Failed",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[topic],
        )
        client("cloudwatch").set_alarm_state(AlarmName="failures", StateValue="ALARM", StateReason="test")
    finally:
        uninstall()
    return list(sns_backends[ACCOUNT][REGION].topics[topic].sent_notifications)


@pytest.mark.parametrize(
    ("encryption", "published"),
    [
        (None, True),  # the default topic policy lets the account's alarms publish
        ("customer-key-naming-cloudwatch", True),
        ("customer-key-default-policy", False),
        ("alias/aws/sns", False),  # CloudWatch cannot use the AWS managed key
    ],
)
def test_an_alarm_publishes_to_its_topic_only_when_the_topics_key_lets_cloudwatch(
    aws: None, capsys: pytest.CaptureFixture[str], encryption: str | None, published: bool
) -> None:
    attributes = {}
    if encryption == "customer-key-naming-cloudwatch":
        attributes["KmsMasterKeyId"] = a_key("cloudwatch.amazonaws.com")
    elif encryption == "customer-key-default-policy":
        attributes["KmsMasterKeyId"] = a_key()
    elif encryption:
        attributes["KmsMasterKeyId"] = encryption
    topic = client("sns").create_topic(Name="alarms", Attributes=attributes)["TopicArn"]
    sent = alarm_fires_at(topic)
    if published:
        ((_, message, *_),) = sent
        assert json.loads(message)["NewStateValue"] == "ALARM" and json.loads(message)["AlarmName"] == "failures"
    else:
        assert sent == []
        err = capsys.readouterr().err
        assert f"CloudWatch alarm failures: Failed to execute action {topic}" in err
        assert "cloudwatch.amazonaws.com is not authorized to perform: kms:GenerateDataKey" in err


def test_an_alarm_publishes_only_where_the_topic_policy_lets_cloudwatch(aws: None) -> None:
    sns = client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    other_account = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
        "Action": "sns:Publish",
        "Resource": topic,
    }
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({"Statement": [other_account]})
    )
    assert alarm_fires_at(topic) == []


def publish_as(role: str, topic: str) -> dict[str, Any]:
    """A one-state machine publishing to `topic` as `role`, run to its end in the local interpreter."""
    from mlops_sfn.local.integrations import Local, installed

    definition = {
        "StartAt": "Publish",
        "States": {
            "Publish": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish",
                "Parameters": {"TopicArn": topic, "Message": "hello"},
                "End": True,
            }
        },
    }
    sfn = client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m-{role.rsplit('/', 1)[1]}", definition=json.dumps(definition), roleArn=role
    )
    with installed(Local(sagemaker=cast(Any, None))):
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
        for _ in range(200):
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
    raise AssertionError("the execution did not end")


def test_the_state_machine_publishes_to_an_encrypted_topic_only_when_its_role_may_use_the_key() -> None:
    # SNS developer guide, "Key management": the publisher needs kms:GenerateDataKey* and kms:Decrypt on the
    # topic's key; without them Publish fails with KMSAccessDenied (SNS API reference, Publish, Errors), which
    # Step Functions names by the SDK's exception, SNS.KMSAccessDeniedException.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        key = a_key()
        topic = client("sns").create_topic(Name="notes", Attributes={"KmsMasterKeyId": key})["TopicArn"]
        publish = {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}
        use_key = {"Effect": "Allow", "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": key}
        without, _ = a_role("without-key", publish)
        with_key, _ = a_role("with-key", publish, use_key)
        refused, published = publish_as(without, topic), publish_as(with_key, topic)
    assert refused["status"] == "FAILED" and refused["error"] == "SNS.KMSAccessDeniedException", refused
    assert f"User: {without} is not authorized to perform: kms:GenerateDataKey on resource: {key}" in refused["cause"]
    assert published["status"] == "SUCCEEDED", published


def test_a_log_group_is_created_with_a_key_only_when_its_policy_lets_cloudwatch_logs_use_it(aws: None) -> None:
    # CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the key policy must let
    # logs.<region>.amazonaws.com use the key for the log group; otherwise CreateLogGroup is refused.
    logs_statement = {
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {
            "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/mlops/*"}
        },
    }
    policy = json.loads(key_policy())
    policy["Statement"].append(logs_statement)
    kms, logs = client("kms"), client("logs")
    allowed = kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    default = kms.create_key()["KeyMetadata"]["Arn"]  # the account may use IAM policies: no service may
    uninstall = resource_policies.install()
    try:
        logs.create_log_group(logGroupName="/mlops/router", kmsKeyId=allowed)
        for name, key in (("/mlops/other", default), ("/elsewhere/router", allowed)):
            with pytest.raises(logs.exceptions.ClientError) as refused:
                logs.create_log_group(logGroupName=name, kmsKeyId=key)
            error = refused.value.response["Error"]
            group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
            assert error["Code"] == "AccessDeniedException"
            assert (
                error["Message"]
                == f"The specified KMS key does not exist or is not allowed to be used with Arn '{group}'"
            )
    finally:
        uninstall()
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/mlops/router"]


def test_a_bucket_policy_decides_a_roles_s3_calls_with_its_own_policies(aws: None) -> None:
    # IAM user guide, "Policy evaluation logic": a resource policy's Deny wins over the identity policy's
    # Allow; the TLS-only Deny the framework's bucket carries does not apply, as the local AWS speaks TLS only.
    s3 = client("s3")
    s3.create_bucket(Bucket="reports")
    for key in ("reports/ok.json", "secret/no.json"):
        s3.put_object(Bucket="reports", Key=key, Body=b"{}")
    role, policies = a_role("reader", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    statements = [
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "NotTheSecrets",
            "Effect": "Deny",
            "Principal": {"AWS": role},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::reports/secret/*",
        },
    ]
    s3.put_bucket_policy(Bucket="reports", Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    # Decided as the local AWS decides a role's S3 calls (functions, jobs): moto's own bucket-policy check,
    # which reads no principal nor condition, is not what is under test here.
    read = task_permissions.s3_call
    assert (
        task_permissions.refusal(
            role, [read("GetObject", {"Bucket": "reports", "Key": "reports/ok.json"})], policies, []
        )
        is None
    )
    refused = task_permissions.refusal(
        role, [read("GetObject", {"Bucket": "reports", "Key": "secret/no.json"})], policies, []
    )
    assert refused is not None and "explicitly denied by the resource policy's statement NotTheSecrets" in refused
    other, others = a_role("other", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    assert (
        task_permissions.refusal(other, [read("GetObject", {"Bucket": "reports", "Key": "secret/no.json"})], others, [])
        is None
    )


# --- Events across accounts -------------------------------------------------------------------------
CONSUMER = "444455556666"


def test_an_event_reaches_another_accounts_bus_only_when_the_role_and_the_bus_policy_allow_it(aws: None) -> None:
    """EventBridge user guide, "Sending and receiving events between AWS accounts": the receiving bus's
    policy must let the sender put events, and the sending rule's role must be allowed to; the
    receiving account's rules then match the event as sent. A refused event is kept in the target's
    dead-letter queue (NO_PERMISSIONS); a received event is not sent on to a third account."""
    sqs, bus = client("sqs"), client("events")
    consumer_sqs, consumer_events = (accounts.client(s, REGION, CONSUMER) for s in ("sqs", "events"))
    letters = sqs.create_queue(QueueName="letters")["QueueUrl"]
    eventbridge_may_send(sqs, letters)
    arrived = consumer_sqs.create_queue(QueueName="arrived")["QueueUrl"]
    eventbridge_may_send(consumer_sqs, arrived, CONSUMER)
    consumer_bus = f"arn:aws:events:{REGION}:{CONSUMER}:event-bus/default"
    role, _ = a_role("share", {"Effect": "Allow", "Action": "events:PutEvents", "Resource": consumer_bus})
    bus.put_rule(Name="share", EventPattern=json.dumps({"source": ["mlops.test"]}))
    dead_letters = {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:letters"}
    bus.put_targets(
        Rule="share", Targets=[{"Id": "c", "Arn": consumer_bus, "RoleArn": role, "DeadLetterConfig": dead_letters}]
    )
    consumer_events.put_rule(Name="approved", EventPattern=json.dumps({"source": ["mlops.test"]}))
    # The consumer's rule also sends on to a third account, which would take it from the consumer.
    third, third_bus = "777788889999", "arn:aws:events:us-east-1:777788889999:event-bus/default"
    onward = f"arn:aws:iam::{CONSUMER}:role/onward"
    consumer_iam = accounts.client("iam", REGION, CONSUMER)
    consumer_iam.create_role(RoleName="onward", AssumeRolePolicyDocument="{}")
    may_put = {"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}
    consumer_iam.put_role_policy(
        RoleName="onward", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [may_put]})
    )
    third_sqs, third_events = (accounts.client(s, REGION, third) for s in ("sqs", "events"))
    third_events.put_permission(Action="events:PutEvents", Principal=CONSUMER, StatementId="consumer")
    onward_queue = third_sqs.create_queue(QueueName="onward")["QueueUrl"]
    eventbridge_may_send(third_sqs, onward_queue, third)
    third_events.put_rule(Name="any", EventPattern=json.dumps({"source": ["mlops.test"]}))
    third_events.put_targets(Rule="any", Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{third}:onward"}])
    consumer_events.put_targets(
        Rule="approved",
        Targets=[
            {"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{CONSUMER}:arrived"},
            {"Id": "third", "Arn": third_bus, "RoleArn": onward},
        ],
    )
    sent = {"Source": "mlops.test", "DetailType": "approved", "Detail": json.dumps({"n": 1})}

    def put() -> tuple[list[Any], list[Any]]:
        uninstall = events.install(lambda *_: None)
        try:
            bus.put_events(Entries=[sent])
        finally:
            uninstall()
        received = consumer_sqs.receive_message(QueueUrl=arrived).get("Messages", [])
        kept = sqs.receive_message(QueueUrl=letters, MessageAttributeNames=["All"]).get("Messages", [])
        for queue, messages in ((arrived, received), (letters, kept)):
            for message in messages:
                (consumer_sqs if queue == arrived else sqs).delete_message(
                    QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"]
                )
        return received, kept

    received, kept = put()  # the consumer's bus has no policy yet: refused
    assert received == [] and len(kept) == 1
    attributes = kept[0]["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
    assert "events:PutEvents" in attributes["ERROR_MESSAGE"]["StringValue"]

    consumer_events.put_permission(Action="events:PutEvents", Principal=ACCOUNT, StatementId="source")
    received, kept = put()
    assert kept == [] and len(received) == 1
    event = json.loads(received[0]["Body"])
    assert (event["source"], event["detail"]) == ("mlops.test", {"n": 1})
    assert event["account"] == ACCOUNT  # as sent, from the source account
    assert third_sqs.receive_message(QueueUrl=onward_queue).get("Messages", []) == []  # not sent on

    client("iam").delete_role_policy(RoleName="share", PolicyName="p")  # the role may not put any more
    received, kept = put()
    assert received == [] and kept[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
