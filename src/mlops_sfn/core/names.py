"""Execution and SageMaker resource names: deterministic, unique per trigger, within AWS limits.

Names are derived from the trigger, never from random ids (a warm Lambda reused those), and when
a name must be shortened the pipeline part is cut, never the unique hash at the end.
"""

from __future__ import annotations

import hashlib
import re

EXECUTION_NAME_MAX = 80  # Step Functions; [A-Za-z0-9_-] keeps CloudWatch Logs happy
SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def slug(pipeline: str) -> str:
    """The pipeline name in SageMaker's name alphabet: letters, digits and inner hyphens."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", pipeline).strip("-")
    return cleaned or "pipeline"


UNIQUE_HEX = 16  # the digest that ends every execution name


def execution_prefix(pipeline: str) -> str:
    """What every execution name of `pipeline` starts with: the name, cut to leave room for the digest."""
    return pipeline[: EXECUTION_NAME_MAX - UNIQUE_HEX - 1] + "-"


def execution_name(pipeline: str, trigger_identity: str) -> str:
    """<pipeline>-<16 hex>: the same trigger always gives the same name (so StartExecution is idempotent)."""
    return execution_prefix(pipeline) + digest(f"{pipeline}\n{trigger_identity}", UNIQUE_HEX)


def is_execution_of(pipeline: str, name: str) -> bool:
    """Whether `name` is an execution name of `pipeline` (execution_name: its name, then 16 hex)."""
    head = execution_prefix(pipeline)
    tail = name[len(head) :]
    return name.startswith(head) and len(tail) == UNIQUE_HEX and all(c in "0123456789abcdef" for c in tail)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the execution `name` of a state machine."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def resource_name(pipeline: str, tag: str, execution: str, max_length: int = 63) -> str:
    """<pipeline slug>-<stage tag>-<10 hex of the execution name>, cut to max_length from the slug.
    Short stage tags (stages.Stage.tag) keep room for the pipeline name inside SageMaker's limits."""
    tail = f"-{tag}-{digest(execution, 10)}"
    head = slug(pipeline)[: max(1, max_length - len(tail))].rstrip("-")
    return f"{head}{tail}"


def stable_name(pipeline: str, prefix: str = "") -> str:
    """A per-pipeline SageMaker name (endpoint, model package group) inside the deployment's `prefix`:
    the slug, prefixed unless it already starts with the prefix, at most 63 characters."""
    name = slug(pipeline)
    if not name.startswith(prefix):
        name = prefix + name
    return name[:63].rstrip("-")


# Where SageMaker writes what a job's containers print ("Log groups and streams that Amazon SageMaker
# AI sends to Amazon CloudWatch Logs", SageMaker developer guide): one group per kind of job, one
# stream per instance, named "<job name>/<host>-<epoch>"; a tuning job's training jobs log as
# training jobs, each named "<tuning job>-<NNN>-<8 characters>".
JOB_LOG_GROUPS = {
    "createProcessingJob": "/aws/sagemaker/ProcessingJobs",
    "createTrainingJob": "/aws/sagemaker/TrainingJobs",
    "createHyperParameterTuningJob": "/aws/sagemaker/TrainingJobs",
    "createTransformJob": "/aws/sagemaker/TransformJobs",
}


def job_log_prefix(kind: str, job: str) -> str:
    """The stream-name prefix of a job's log streams in its JOB_LOG_GROUPS group."""
    return f"{job}-" if kind == "createHyperParameterTuningJob" else f"{job}/"
