"""IAM's decision on one request, written to AWS's documented policy evaluation logic.

IAM user guide, "Policy evaluation logic" (reference_policies_evaluation-logic.html), for a request
within one account:
1. an explicit Deny in any policy that applies (identity, resource, boundary, guardrail) wins;
2. each guardrail level (an organisation's SCPs; `mlops-sfn local ... --scp`) must allow the action;
3. an Allow in the resource's policy that names the caller allows it (a service principal has only
   that); one that names the caller's account only delegates to it: IAM policies must then allow
   ("AWS JSON policy elements: Principal", AWS account principals);
4. otherwise a permissions boundary, when there is one, must allow it, and so must an identity policy;
5. anything else is an implicit deny.
A KMS key is the exception to 4: "unless the key policy explicitly allows it, you cannot use IAM
policies to allow access to a KMS key" (KMS developer guide, "Key policies in AWS KMS"), so with
`key_policy=True` an identity policy counts only when the key policy names the caller's account.

Across accounts (IAM user guide, "Cross-account policy evaluation logic"): when the resource belongs
to another account than the caller (the resource ARN's account, or `owner` for an ARN without one,
such as an S3 bucket's), "the principal must be allowed by an identity-based policy in the
requesting account AND a resource-based policy in the account that owns the resource". A resource
policy naming the caller's account counts then: it is how one account trusts another. Explicit
denies, the caller's guardrails and boundary apply as within one account. A service principal has
no account: its requests are decided within the resource's.

A statement applies when its Action (or NotAction; case-insensitive), Resource (or NotResource;
case-sensitive), Principal (or NotPrincipal; resource policies) and every Condition hold ("IAM JSON
policy elements"). In a Condition every operator and every key must hold and any one value of a key
matches; a key absent from the request fails the operator, except a negated one (it holds),
...IfExists (it holds) and Null, which tests presence ("Condition operators"). Wildcards are `*` and
`?`; ArnLike and ArnEquals compare each of an ARN's six parts on its own.

Not modelled, and refused rather than guessed (NotImplementedError names it): policy variables
(`${aws:username}`), the Date, IP address and Binary operators, and session policies; resource
control policies of the owning account are not modelled either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

Policy = Mapping[str, Any]


@dataclass(frozen=True)
class Request:
    principal: str  # the caller's ARN (a role: arn:aws:iam::<account>:role/<name>) or a service principal
    action: str  # "lambda:InvokeFunction"
    resource: str  # the ARN it acts on
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)  # condition keys -> values


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(
    request: Request,
    *,
    identity: Iterable[Policy] = (),
    resource: Iterable[Policy] = (),
    boundary: Policy | None = None,
    guardrails: Iterable[Policy] = (),
    key_policy: bool = False,
    owner: str | None = None,
) -> Decision:
    """Allow or deny `request`, and why, as IAM would; `resource` is a KMS key's policy when
    `key_policy`; `owner` is the account of a resource whose ARN names none (an S3 bucket's)."""
    identity, resource, guardrails = list(identity), list(resource), list(guardrails)
    layers = [("identity", identity, False), ("resource", resource, True), ("guardrail", guardrails, False)]
    layers += [("boundary", [boundary], False)] if boundary is not None else []
    for where, policies, resource_based in layers:
        denying = _matching(policies, request, "Deny", resource_based)
        if denying:
            return Decision(False, f"explicitly denied by the {where} policy's statement {denying}")
    for guardrail in guardrails:
        if not _matching([guardrail], request, "Allow", False):
            return Decision(False, "no guardrail (service control policy) statement allows it")
    caller, owning = account_of(request.principal), owner or account_of(request.resource)
    if caller and owning and caller != owning:
        return _across_accounts(request, identity, resource, boundary, owning)
    allowing = _matching(resource, request, "Allow", True, named_only=True)
    if allowing:
        return Decision(True, f"allowed by the resource policy's statement {allowing}")
    if key_policy and not _matching(resource, request, "Allow", True):
        return Decision(False, "no statement of the key policy allows it (nor lets IAM policies allow it)")
    if boundary is not None and not _matching([boundary], request, "Allow", False):
        return Decision(False, "no permissions boundary statement allows it")
    allowing = _matching(identity, request, "Allow", False)
    if allowing:
        return Decision(True, f"allowed by the identity policy's statement {allowing}")
    kind = "identity-based or resource-based" if identity or not resource else "resource-based"
    return Decision(False, f"no {kind} policy allows the {request.action} action")


def _across_accounts(
    request: Request, identity: list[Policy], resource: list[Policy], boundary: Policy | None, owning: str
) -> Decision:
    """Both sides must allow: the caller's identity policies (within its boundary) and the owner's
    resource policy, naming the caller or its account."""
    trusting = _matching(resource, request, "Allow", True)
    if not trusting:
        return Decision(False, f"no resource-based policy of account {owning} allows it from another account")
    if boundary is not None and not _matching([boundary], request, "Allow", False):
        return Decision(False, "no permissions boundary statement allows it")
    allowing = _matching(identity, request, "Allow", False)
    if not allowing:
        return Decision(False, f"no identity-based policy allows the {request.action} action")
    return Decision(
        True, f"allowed by the identity policy's statement {allowing} and the resource policy's statement {trusting}"
    )


def account_of(arn: str) -> str:
    """The account an ARN names ("" for a service principal, or an ARN without one such as S3's)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4].isdigit() else ""


def denied_message(request: Request, decision: Decision) -> str:
    """The AccessDenied message AWS writes: who, what, on what, and why."""
    return (
        f"User: {request.principal} is not authorized to perform: {request.action} on resource: "
        f"{request.resource} because {decision.reason}"
    )


def _matching(
    policies: Iterable[Policy], request: Request, effect: str, resource_based: bool, named_only: bool = False
) -> str | None:
    """The Sid (or index) of the first statement of `effect` that applies to the request, or None;
    `named_only`: of a resource policy, only statements that name the caller, not just its account."""
    for policy in policies:
        statements = policy.get("Statement", [])
        for index, statement in enumerate([statements] if isinstance(statements, dict) else statements):
            if statement.get("Effect") == effect and _applies(statement, request, resource_based, named_only):
                return str(statement.get("Sid", f"#{index}"))
    return None


def listed(value: Any) -> list[Any]:
    """A policy element's value as a list: Action, Resource, Principal values, condition values."""
    return value if isinstance(value, list) else [value]


def _applies(statement: Mapping[str, Any], request: Request, resource_based: bool, named_only: bool = False) -> bool:
    if "Action" in statement:
        acts = any(_like(pattern, request.action, ignore_case=True) for pattern in listed(statement["Action"]))
    else:
        acts = not any(_like(pattern, request.action, ignore_case=True) for pattern in listed(statement["NotAction"]))
    if not acts:
        return False
    if "Resource" in statement:
        on = any(_like(pattern, request.resource) for pattern in listed(statement["Resource"]))
    elif "NotResource" in statement:
        on = not any(_like(pattern, request.resource) for pattern in listed(statement["NotResource"]))
    else:
        on = resource_based  # a resource policy's statement is about the resource it is attached to
    if not on:
        return False
    if resource_based:
        if "Principal" in statement:
            named = _principal(statement["Principal"], request.principal, accounts=not named_only)
        else:  # NotPrincipal: everyone it does not name; neither: the statement names no one
            named = "NotPrincipal" in statement and not _principal(statement["NotPrincipal"], request.principal)
        if not named:
            return False
    return all(
        _holds(operator, key, listed(values), request.context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


def _principal(element: Any, caller: str, accounts: bool = True) -> bool:
    """Whether the element names the caller (`accounts`: or the caller's account)."""
    if element == "*":
        return True
    for kind, values in element.items():
        for value in listed(values):
            if kind == "Service" and value == caller:
                return True
            if kind == "AWS" and (value in ("*", caller) or (accounts and _whole_account(value, caller))):
                return True
    return False


def _whole_account(value: str, caller: str) -> bool:
    """ "123456789012" and "arn:aws:iam::123456789012:root" name every principal of that account."""
    if value.isdigit():
        account = value
    elif value.endswith(":root") and value.count(":") == 5:
        account = value.split(":")[4]
    else:
        return False
    return account_of(caller) == account


# --- Conditions -----------------------------------------------------------------------------------


def _string(pattern: str, value: str) -> bool:
    return pattern == value


_COMPARE: dict[str, Any] = {
    "StringEquals": _string,
    "StringEqualsIgnoreCase": lambda pattern, value: pattern.lower() == value.lower(),
    "StringLike": lambda pattern, value: _like(pattern, value),
    "ArnEquals": lambda pattern, value: _arn_like(pattern, value),
    "ArnLike": lambda pattern, value: _arn_like(pattern, value),
    "Bool": lambda pattern, value: str(pattern).lower() == str(value).lower(),
    "NumericEquals": lambda pattern, value: float(value) == float(pattern),
    "NumericLessThan": lambda pattern, value: float(value) < float(pattern),
    "NumericLessThanEquals": lambda pattern, value: float(value) <= float(pattern),
    "NumericGreaterThan": lambda pattern, value: float(value) > float(pattern),
    "NumericGreaterThanEquals": lambda pattern, value: float(value) >= float(pattern),
}
# Negated operators: true when no value matches (and when the key is absent).
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _holds(operator: str, key: str, values: list[Any], context: Mapping[str, Any]) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = {name.lower(): value for name, value in context.items()}
    found = present.get(key.lower())
    if base == "Null":  # "true": the key must be absent; "false": present
        return (found is None) == (str(values[0]).lower() == "true")
    negated = base in _NEGATED
    compare = _COMPARE.get(_NEGATED.get(base, base))
    if compare is None or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise NotImplementedError(f"IAM condition operator {operator} is not modelled by the local AWS")
    if any("${" in str(value) for value in values):
        raise NotImplementedError(f"policy variables ({values}) are not modelled by the local AWS")
    if found is None:
        return if_exists or negated or qualifier == "ForAllValues"
    seen = listed(found)

    def one(value: Any) -> bool:
        return negated != any(compare(pattern, str(value)) for pattern in values)

    if qualifier == "ForAllValues":
        return all(one(value) for value in seen)
    return any(one(value) for value in seen)


# --- Wildcards ------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    if "${" in pattern:
        raise NotImplementedError(f"policy variables ({pattern}) are not modelled by the local AWS")
    text = "".join(
        ".*" if part == "*" else "." if part == "?" else re.escape(part) for part in re.split(r"([*?])", pattern)
    )
    return re.compile(text, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """Each of the ARN's six colon-separated parts on its own (the resource part keeps its colons)."""
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(given) == 6 and all(_like(w, g) for w, g in zip(wanted, given, strict=True))
