"""Checks SageMaker requests against the API model botocore ships.

botocore's own ParamValidator checks types and required members but not maximum lengths,
maximum values or patterns, and it stops at the first unknown field; this walker reports
every problem with the item's field path. Strings that still hold a {placeholder} skip the
length and pattern checks; they are checked again once the placeholders are filled.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from .problems import Problem, describe, join, json_type
from .schema import unknown_field_message

# {name}, and a segment's {segment.<field>} (core/fanout.py)
PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_-]+)?)\}")

_EXPECTED = {
    "structure": ("object", "object"),
    "list": ("array", "array"),
    "map": ("object", "object"),
    "string": ("string", "string"),
    "integer": ("integer", "integer"),
    "long": ("integer", "integer"),
    "float": ("number", "number"),
    "double": ("number", "number"),
    "boolean": ("boolean", "boolean (true or false)"),
    "timestamp": ("string", "timestamp string"),
    "blob": ("string", "string"),
}


@cache
def service_model() -> Any:
    # Loaded on first use: about 0.2 s, kept out of the router's cold start.
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def input_shape(operation: str) -> Any:
    return service_model().operation_model(operation).input_shape


def shape_at(operation: str, *members: str) -> Any:
    """The shape reached from an operation's input through member names ("member" steps into lists)."""
    shape = input_shape(operation)
    for name in members:
        shape = shape.member if name == "member" else shape.members[name]
    return shape


@cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:  # a few AWS patterns use Java-only syntax; AWS still checks those
        return None


def check_request(operation: str, request: Any, path: str) -> list[Problem]:
    """All problems of request as the input of a SageMaker operation (e.g. "CreateTrainingJob"):
    its shape, then the rules between fields the model cannot say (spot training's)."""
    problems = check_value(input_shape(operation), request, path)
    if operation == "CreateTrainingJob":
        problems += spot_problems(request, path)
    elif operation == "CreateHyperParameterTuningJob" and isinstance(request, dict):
        problems += spot_problems(request.get("TrainingJobDefinition"), join(path, "TrainingJobDefinition"))
    return problems


SPOT = "EnableManagedSpotTraining"


def spot_problems(job: Any, path: str) -> list[Problem]:
    """Managed spot training's rules between fields, as CreateTrainingJob refuses them: a spot job sets
    StoppingCondition.MaxWaitTimeInSeconds ("Set EnableManagedSpotTraining to True and specify the
    MaxWaitTimeInSeconds", SageMaker developer guide, "Managed Spot Training"), at least its
    MaxRuntimeInSeconds ("It must be equal to or greater than MaxRuntimeInSeconds", API reference,
    StoppingCondition); any other job sets none ("Invalid MaxWaitTimeInSeconds. It is only supported when
    EnableManagedSpotTraining is set to true", as users report it: Kenza-AI/sagify#111,
    aws/amazon-sagemaker-examples#869)."""
    if not isinstance(job, dict) or not isinstance(job.get("StoppingCondition", {}), dict):
        return []
    stop = job.get("StoppingCondition", {})
    wait, run = stop.get("MaxWaitTimeInSeconds"), stop.get("MaxRuntimeInSeconds", 86_400)
    at = join(path, "StoppingCondition.MaxWaitTimeInSeconds")
    if job.get(SPOT) is not True:
        if wait is None:
            return []
        return [Problem(at, f"Invalid MaxWaitTimeInSeconds. It is only supported when {SPOT} is set to true")]
    if wait is None:
        return [Problem(at, f"is required for managed spot training ({SPOT} is true)")]
    if isinstance(wait, int) and isinstance(run, int) and wait < run:
        return [Problem(at, f"{wait} is less than MaxRuntimeInSeconds ({run}): it must be equal to or greater")]
    return []


def check_value(shape: Any, value: Any, path: str) -> list[Problem]:
    wanted, words = _EXPECTED.get(shape.type_name, ("", shape.type_name))
    actual = json_type(value)
    if wanted and actual != wanted and not (wanted == "number" and actual == "integer"):
        quotable = wanted == "string" and actual in ("integer", "number", "boolean")
        hint = f'; write "{json.dumps(value)}"' if quotable else ""
        return [Problem(path, f"expected {words}, got {describe(value)}{hint}")]
    if shape.type_name == "structure":
        return _check_structure(shape, value, path)
    if shape.type_name == "list":
        return _check_list(shape, value, path)
    if shape.type_name == "map":
        problems = _check_count(shape, len(value), path, "entries")
        for key, entry in value.items():
            problems += check_value(shape.key, key, join(path, key))
            problems += check_value(shape.value, entry, join(path, key))
        return problems
    if shape.type_name == "string":
        return _check_string(shape, value, path)
    if wanted in ("integer", "number"):
        return _check_range(shape, value, path)
    return []


def _check_structure(shape: Any, value: dict[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    for name in shape.required_members:
        if name not in value:
            problems.append(Problem(join(path, name), f"is required by SageMaker {shape.name}"))
    for name, entry in value.items():
        member = shape.members.get(name)
        if member is None:
            problems.append(Problem(join(path, name), unknown_field_message(name, shape.members)))
        else:
            problems += check_value(member, entry, join(path, name))
    return problems


def _check_list(shape: Any, value: list[Any], path: str) -> list[Problem]:
    problems = _check_count(shape, len(value), path, "entries")
    for index, entry in enumerate(value):
        problems += check_value(shape.member, entry, join(path, index))
    return problems


def _check_count(shape: Any, count: int, path: str, what: str) -> list[Problem]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and count < low:
        return [Problem(path, f"has {count} {what}; at least {low} required")]
    if high is not None and count > high:
        return [Problem(path, f"has {count} {what}; at most {high} allowed")]
    return []


def _check_string(shape: Any, value: str, path: str) -> list[Problem]:
    if shape.enum and value not in shape.enum:
        listed = ", ".join(shape.enum[:12]) + (", ..." if len(shape.enum) > 12 else "")
        return [Problem(path, f"{value!r} is not a valid {shape.name}; allowed: {listed}")]
    if PLACEHOLDER.search(value):
        return []
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        return [Problem(path, f"{value!r} is too short; at least {low} characters")]
    if high is not None and len(value) > high:
        return [Problem(path, f"is {len(value)} characters long; at most {high} allowed")]
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and not compiled.fullmatch(value):
        return [Problem(path, f"{value!r} does not match the {shape.name} pattern {pattern}")]
    return []


def _check_range(shape: Any, value: float, path: str) -> list[Problem]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
        return [Problem(path, f"{value} is out of range; allowed: {bounds}")]
    return []


def failure_reason(cause: str | None, limit: int | None = None) -> str:
    """A failed .sync job's cause is its whole description: its FailureReason says what matters."""
    try:
        described = json.loads(cause or "")
    except json.JSONDecodeError:
        described = None
    text = str((described.get("FailureReason", cause) if isinstance(described, dict) else cause) or "")
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
