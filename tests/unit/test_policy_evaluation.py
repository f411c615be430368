"""The local AWS's IAM decisions against AWS's documented policy evaluation logic: a conformance corpus
written from the IAM user guide's pages ("Policy evaluation logic", "IAM JSON policy elements: Action,
NotAction, Resource, NotResource, Principal, Condition", "Condition operators") and from what reviews
found this project's policies get wrong on AWS (reference.md section 7). Each case fails if the
evaluator becomes more permissive than IAM."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_sfn.core import contract
from mlops_sfn.local.policy_evaluation import Decision, Request, decide, denied_message

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-pipeline"
BUCKET = "arn:aws:s3:::mlops-dev-bucket"


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}],
    }


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource, **extra}]}


def request(action: str, resource: str, principal: str = ROLE, **context: Any) -> Request:
    return Request(principal, action, resource, context)


# --- The order of the decision ("Policy evaluation logic") --------------------------------------------


def test_nothing_allows_it_so_it_is_denied_implicitly() -> None:
    decision = decide(request("s3:GetObject", f"{BUCKET}/a"), identity=[allow("s3:PutObject")])
    assert decision == Decision(False, "no identity-based or resource-based policy allows the s3:GetObject action")


def test_an_explicit_deny_wins_over_any_allow() -> None:
    identity = [allow("s3:*"), deny("s3:DeleteObject", f"{BUCKET}/*")]
    assert decide(request("s3:GetObject", f"{BUCKET}/a"), identity=identity).allowed
    decision = decide(request("s3:DeleteObject", f"{BUCKET}/a"), identity=identity)
    assert not decision.allowed and "explicitly denied by the identity policy" in decision.reason
    # A deny in the resource's policy wins over the identity policy's allow too.
    resource = [deny("s3:GetObject", f"{BUCKET}/*", Principal="*")]
    assert not decide(request("s3:GetObject", f"{BUCKET}/a"), identity=[allow("s3:*")], resource=resource).allowed


def test_within_one_account_a_resource_policy_allow_is_enough() -> None:
    resource = [allow("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:q", Principal={"AWS": ROLE})]
    decision = decide(request("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"), resource=resource)
    assert decision.allowed and "resource policy" in decision.reason


def test_a_guardrail_must_allow_and_its_deny_wins() -> None:
    identity = [allow("sagemaker:*")]
    create = request("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/e")
    assert decide(create, identity=identity, guardrails=[allow("*")]).allowed
    # An SCP that does not allow the action denies it, whatever the role allows.
    assert not decide(create, identity=identity, guardrails=[allow("s3:*")]).allowed
    # Several levels: each must allow.
    assert not decide(create, identity=identity, guardrails=[allow("*"), allow("s3:*")]).allowed
    decision = decide(create, identity=identity, guardrails=[allow("*"), deny("sagemaker:CreateEndpoint")])
    assert not decision.allowed and "guardrail" in decision.reason


def test_a_permissions_boundary_caps_the_identity_policy() -> None:
    identity = [allow(["s3:GetObject", "s3:PutObject"], f"{BUCKET}/*")]
    boundary = allow("s3:GetObject", f"{BUCKET}/*")
    assert decide(request("s3:GetObject", f"{BUCKET}/a"), identity=identity, boundary=boundary).allowed
    decision = decide(request("s3:PutObject", f"{BUCKET}/a"), identity=identity, boundary=boundary)
    assert decision == Decision(False, "no permissions boundary statement allows it")
    # The boundary alone grants nothing.
    assert not decide(request("s3:GetObject", f"{BUCKET}/a"), boundary=boundary).allowed


# --- Action, Resource, Principal -------------------------------------------------------------------


def test_actions_match_ignoring_case_and_resources_respecting_it() -> None:
    # SageMaker writes names lower-case in ARNs: a policy scoped with capitals matches none of them.
    endpoint = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ml-team-dev-model"
    assert decide(
        request("SageMaker:createendpoint", endpoint), identity=[allow("sagemaker:CreateEndpoint", endpoint)]
    ).allowed
    scoped = allow("sagemaker:CreateEndpoint", f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ML-Team-dev-*")
    assert not decide(request("sagemaker:CreateEndpoint", endpoint), identity=[scoped]).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3:PutObject", False),
        ("sagemaker:Describe?ndpoint", "sagemaker:DescribeEndpoint", True),
        ("*", "iam:PassRole", True),
        ("s3:*Object", "s3:GetObjectTagging", False),  # the wildcard must reach the end
    ],
)
def test_action_wildcards(pattern: str, action: str, matches: bool) -> None:
    assert decide(request(action, "*"), identity=[allow(pattern)]).allowed is matches


def test_not_action_and_not_resource_allow_everything_else() -> None:
    everything_but_iam = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
    }
    assert decide(request("s3:GetObject", f"{BUCKET}/a"), identity=[everything_but_iam]).allowed
    assert not decide(request("iam:CreateRole", "*"), identity=[everything_but_iam]).allowed
    outside = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": f"{BUCKET}/secret/*"}],
    }
    assert decide(request("s3:GetObject", f"{BUCKET}/data/a"), identity=[outside]).allowed
    assert not decide(request("s3:GetObject", f"{BUCKET}/secret/a"), identity=[outside]).allowed


@pytest.mark.parametrize(
    ("principal", "caller", "named"),
    [
        ({"Service": "events.amazonaws.com"}, "events.amazonaws.com", True),
        ({"Service": "events.amazonaws.com"}, "sns.amazonaws.com", False),
        ({"AWS": ACCOUNT}, ROLE, False),  # the account: delegated to its IAM policies (next test)
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, ROLE, False),
        ({"AWS": "arn:aws:iam::444455556666:root"}, ROLE, False),
        ({"AWS": ROLE}, ROLE, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, ROLE, False),
        ("*", "events.amazonaws.com", True),
    ],
)
def test_a_resource_policy_applies_to_the_principals_it_names(principal: Any, caller: str, named: bool) -> None:
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dead-letters"
    resource = [allow("sqs:SendMessage", queue, Principal=principal)]
    assert decide(request("sqs:SendMessage", queue, principal=caller), resource=resource).allowed is named


@pytest.mark.parametrize("account", [ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"])
def test_a_resource_policy_naming_the_account_delegates_to_its_iam_policies(account: str) -> None:
    # "AWS JSON policy elements: Principal", AWS account principals: naming an account grants nothing by
    # itself; the account's identity policies must allow the call. A Deny naming it denies everyone in it.
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    delegated = [allow("sqs:SendMessage", queue, Principal={"AWS": account})]
    assert not decide(request("sqs:SendMessage", queue), resource=delegated).allowed
    assert decide(request("sqs:SendMessage", queue), identity=[allow("sqs:*")], resource=delegated).allowed
    denied = [deny("sqs:SendMessage", queue, Principal={"AWS": account})]
    assert not decide(request("sqs:SendMessage", queue), identity=[allow("sqs:*")], resource=denied).allowed


KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The default key policy of a key created through the API: the account may use IAM policies for it.
DEFAULT_KEY_POLICY = allow("kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})


# --- Across accounts ("Cross-account policy evaluation logic") -----------------------------------------

PRODUCTION = "444455556666"  # the account that serves: its role asks for what the development account owns
SERVING_ROLE = f"arn:aws:iam::{PRODUCTION}:role/mlops-prod-pipeline"
PACKAGE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/mlops-dev-group/3"


@pytest.mark.parametrize("trusted", [PRODUCTION, f"arn:aws:iam::{PRODUCTION}:root", SERVING_ROLE])
def test_across_accounts_both_the_callers_policy_and_the_owners_resource_policy_must_allow(trusted: str) -> None:
    # "the principal must be allowed by an identity-based policy in the requesting account AND a
    # resource-based policy in the account that owns the resource": naming the caller's account is trust
    ask = request("sagemaker:DescribeModelPackage", PACKAGE, principal=SERVING_ROLE)
    iam = [allow("sagemaker:DescribeModelPackage", PACKAGE)]
    group_policy = [allow("sagemaker:DescribeModelPackage", PACKAGE, Principal={"AWS": trusted})]
    assert decide(ask, identity=iam, resource=group_policy).allowed
    # either side alone is not enough
    decision = decide(ask, identity=iam)
    assert decision == Decision(False, f"no resource-based policy of account {ACCOUNT} allows it from another account")
    decision = decide(ask, resource=group_policy)
    assert decision == Decision(False, "no identity-based policy allows the sagemaker:DescribeModelPackage action")
    # a deny on either side wins
    assert not decide(ask, identity=[*iam, deny("sagemaker:*")], resource=group_policy).allowed
    denying = [*group_policy, deny("sagemaker:DescribeModelPackage", PACKAGE, Principal={"AWS": PRODUCTION})]
    assert not decide(ask, identity=iam, resource=denying).allowed


def test_across_accounts_a_policy_trusting_another_account_does_not_trust_the_caller() -> None:
    ask = request("sagemaker:DescribeModelPackage", PACKAGE, principal=SERVING_ROLE)
    other = [allow("sagemaker:DescribeModelPackage", PACKAGE, Principal={"AWS": "777788889999"})]
    assert not decide(ask, identity=[allow("sagemaker:*")], resource=other).allowed


def test_across_accounts_a_bucket_is_owned_by_the_account_the_caller_names() -> None:
    # an S3 ARN names no account: the bucket's owner is passed; a role of another account needs the
    # bucket's policy, and within the owner's account its identity policy is enough as before
    read = request("s3:GetObject", f"{BUCKET}/models/model.tar.gz", principal=SERVING_ROLE)
    iam = [allow("s3:GetObject", f"{BUCKET}/*")]
    assert not decide(read, identity=iam, owner=ACCOUNT).allowed
    bucket_policy = [allow("s3:GetObject", f"{BUCKET}/models/*", Principal={"AWS": SERVING_ROLE})]
    assert decide(read, identity=iam, resource=bucket_policy, owner=ACCOUNT).allowed
    assert decide(read, identity=iam, owner=PRODUCTION).allowed


def test_across_accounts_a_kms_key_needs_its_key_policy_and_the_callers_policy() -> None:
    # KMS developer guide, "Allowing users in other accounts to use a KMS key": the key policy must
    # give the external account (or principal) permission, and that account's IAM policies must allow
    use = request("kms:Decrypt", KEY, principal=SERVING_ROLE)
    iam = [allow("kms:Decrypt", KEY)]
    assert not decide(use, identity=iam, resource=[DEFAULT_KEY_POLICY], key_policy=True).allowed
    external = allow("kms:Decrypt", "*", Principal={"AWS": f"arn:aws:iam::{PRODUCTION}:root"})
    assert decide(use, identity=iam, resource=[DEFAULT_KEY_POLICY, external], key_policy=True).allowed
    assert not decide(use, resource=[DEFAULT_KEY_POLICY, external], key_policy=True).allowed


def test_a_kms_key_policy_must_allow_before_an_iam_policy_counts() -> None:
    # KMS developer guide, "Key policies in AWS KMS": without permission from the key policy, IAM policies
    # that allow have no effect; with the default key policy they do; the key policy may name the caller.
    use = request("kms:GenerateDataKey", KEY)
    iam = [allow(["kms:GenerateDataKey", "kms:Decrypt"], KEY)]
    assert decide(use, identity=iam, resource=[DEFAULT_KEY_POLICY], key_policy=True).allowed
    assert not decide(use, resource=[DEFAULT_KEY_POLICY], key_policy=True).allowed  # IAM must allow then
    others = allow("kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/key-admin"})
    decision = decide(use, identity=iam, resource=[others], key_policy=True)
    assert decision == Decision(False, "no statement of the key policy allows it (nor lets IAM policies allow it)")
    assert decide(use, identity=iam, resource=[others]).allowed  # what any other resource would answer
    naming = allow("kms:GenerateDataKey", "*", Principal={"AWS": ROLE})
    assert decide(use, resource=[naming], key_policy=True).allowed
    # An IAM policy may deny without the key policy's leave.
    assert not decide(use, identity=[deny("kms:*")], resource=[naming], key_policy=True).allowed


def test_a_service_uses_a_kms_key_only_when_the_key_policy_names_it() -> None:
    # SQS developer guide, "Key management": EventBridge and CloudWatch may use a queue's or topic's
    # customer managed key only when the key policy allows their service principal.
    use = request("kms:GenerateDataKey", KEY, principal="events.amazonaws.com")
    assert not decide(use, resource=[DEFAULT_KEY_POLICY], key_policy=True).allowed
    service = allow(["kms:GenerateDataKey", "kms:Decrypt"], "*", Principal={"Service": "events.amazonaws.com"})
    assert decide(use, resource=[DEFAULT_KEY_POLICY, service], key_policy=True).allowed


def test_a_resource_policy_statement_naming_no_principal_applies_to_no_one() -> None:
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    assert not decide(request("sqs:SendMessage", queue), resource=[allow("sqs:SendMessage", queue)]).allowed
    everyone_else = [allow("sqs:SendMessage", queue, NotPrincipal={"AWS": ROLE})]
    assert not decide(request("sqs:SendMessage", queue), resource=everyone_else).allowed
    assert decide(request("sqs:SendMessage", queue, principal="sns.amazonaws.com"), resource=everyone_else).allowed


# --- Conditions ("Condition operators") -------------------------------------------------------------


def conditioned(condition: dict[str, Any], action: str = "s3:GetObject") -> list[dict[str, Any]]:
    return [allow(action, "*", Condition=condition)]


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        # A key absent from the request fails the operator...
        ({"StringEquals": {"aws:PrincipalTag/team": "ml"}}, {}, False),
        # ...except a negated one, which holds...
        ({"StringNotEquals": {"aws:PrincipalTag/team": "ml"}}, {}, True),
        ({"StringNotEquals": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": "ml"}, False),
        # ...and ...IfExists, which checks only a present key.
        ({"StringEqualsIfExists": {"aws:PrincipalTag/team": "ml"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:PrincipalTag/team": "ml"}}, {"aws:PrincipalTag/team": "web"}, False),
        # Null tests presence.
        ({"Null": {"aws:PrincipalTag/team": "true"}}, {}, True),
        ({"Null": {"aws:PrincipalTag/team": "false"}}, {}, False),
        # Any one value of a key matches; condition key names ignore case, values do not.
        (
            {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "us-east-1"]}},
            {"AWS:requestedregion": "us-east-1"},
            True,
        ),
        ({"StringEquals": {"aws:RequestedRegion": "US-EAST-1"}}, {"aws:RequestedRegion": "us-east-1"}, False),
        ({"StringEqualsIgnoreCase": {"aws:RequestedRegion": "US-EAST-1"}}, {"aws:RequestedRegion": "us-east-1"}, True),
        # Every key and every operator must hold.
        (
            {"StringEquals": {"aws:RequestedRegion": "us-east-1"}, "Bool": {"aws:SecureTransport": "true"}},
            {"aws:RequestedRegion": "us-east-1", "aws:SecureTransport": "false"},
            False,
        ),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "TRUE"}, True),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, False),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], allowed: bool) -> None:
    assert decide(request("s3:GetObject", f"{BUCKET}/a", **context), identity=conditioned(condition)).allowed is allowed


def test_the_metrics_namespace_of_the_monitoring_analyzer_needs_its_own_pattern() -> None:
    # The drift finding (reference.md section 7): /aws/sagemaker/* does not match the analyzer's namespace.
    put = request("cloudwatch:PutMetricData", "*", **{"cloudwatch:namespace": contract.MONITORING_METRIC_NAMESPACE})
    before = conditioned({"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}, "cloudwatch:PutMetricData")
    after = conditioned(
        {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", contract.MONITORING_METRIC_NAMESPACE]}},
        "cloudwatch:PutMetricData",
    )
    assert not decide(put, identity=before).allowed
    assert decide(put, identity=after).allowed


@pytest.mark.parametrize(
    ("operator", "tags", "allowed"),
    [
        ("ForAllValues:StringEquals", ["team", "cost-center"], True),
        ("ForAllValues:StringEquals", ["team", "owner"], False),
        ("ForAllValues:StringEquals", None, True),  # no key: ForAllValues holds
        ("ForAnyValue:StringEquals", ["owner", "team"], True),
        ("ForAnyValue:StringEquals", ["owner"], False),
        ("ForAnyValue:StringEquals", None, False),
    ],
)
def test_set_operators_on_a_multivalued_key(operator: str, tags: list[str] | None, allowed: bool) -> None:
    condition = {operator: {"aws:TagKeys": ["team", "cost-center"]}}
    context = {} if tags is None else {"aws:TagKeys": tags}
    add_tags = request("sagemaker:AddTags", "*", **context)
    assert decide(add_tags, identity=conditioned(condition, "sagemaker:AddTags")).allowed is allowed


def test_arn_like_compares_each_part_of_the_arn() -> None:
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mlops-dev-uploads"
    condition = {"ArnLike": {"aws:SourceArn": f"arn:aws:events:*:{ACCOUNT}:rule/mlops-dev-*"}}
    assert decide(request("s3:GetObject", "*", **{"aws:SourceArn": rule}), identity=conditioned(condition)).allowed
    other_account = rule.replace(ACCOUNT, "444455556666")
    assert not decide(
        request("s3:GetObject", "*", **{"aws:SourceArn": other_account}), identity=conditioned(condition)
    ).allowed
    # A wildcard does not reach across parts: "*" in the region cannot swallow the account.
    spanning = {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:rule/mlops-dev-*"}}
    assert not decide(request("s3:GetObject", "*", **{"aws:SourceArn": rule}), identity=conditioned(spanning)).allowed


def test_eventbridge_may_invoke_a_function_only_for_the_rules_its_policy_names() -> None:
    # What `aws_lambda_permission` writes (Lambda, "Using resource-based policies"): the service principal,
    # the action, the function, and the rule as AWS:SourceArn.
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mlops-dev-router"
    uploads = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/mlops-dev-uploads"
    policy = allow(
        "lambda:InvokeFunction",
        function,
        Principal={"Service": "events.amazonaws.com"},
        Condition={"ArnLike": {"AWS:SourceArn": uploads}},
    )
    invoke = Request("events.amazonaws.com", "lambda:InvokeFunction", function, {"aws:SourceArn": uploads})
    assert decide(invoke, resource=[policy]).allowed
    other = Request("events.amazonaws.com", "lambda:InvokeFunction", function, {"aws:SourceArn": uploads + "-2"})
    decision = decide(other, resource=[policy])
    assert decision == Decision(False, "no resource-based policy allows the lambda:InvokeFunction action")
    assert denied_message(other, decision) == (
        f"User: events.amazonaws.com is not authorized to perform: lambda:InvokeFunction on resource: {function} "
        "because no resource-based policy allows the lambda:InvokeFunction action"
    )


@pytest.mark.parametrize(
    "condition",
    [
        {"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}},
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"StringEquals": {"s3:prefix": "home/${aws:username}/"}},
    ],
)
def test_what_is_not_modelled_is_refused_not_guessed(condition: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError, match="not modelled by the local AWS"):
        decide(
            request("s3:ListBucket", BUCKET, **{"aws:CurrentTime": "x", "aws:SourceIp": "x", "s3:prefix": "x"}),
            identity=conditioned(condition, "s3:ListBucket"),
        )
