"""Preprocessing: a processing job on the run's data, before training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .. import asl, iam
from ..stage import Stage, job_limit, processing_request

PROCESSING_RULE = "StepFunctionsGetEventsForSageMakerProcessingJobsRule"


def processing_stage(name: str, tag: str, **parts: Any) -> Stage:
    """A stage that is one `.sync` processing job (preprocessing, evaluation)."""
    facts = Stage(
        name,
        operation="CreateProcessingJob",
        name_field="ProcessingJobName",
        tag=tag,
        resource="processing-job",
        described_as="processing job",
        cacheable=True,
    )
    permissions = {**iam.sync_job(facts, PROCESSING_RULE), **parts.pop("permissions", {})}
    common: dict[str, Any] = {
        "defaults": lambda item, execution: processing_request(),
        "limit": lambda block: job_limit(block["request"]),
        "states": lambda b, then: b.task(facts.title, name, asl.sagemaker_job(facts, asl.job_name(facts), then)),
        "outputs": wrote,
    }
    return replace(facts, **(common | parts), permissions=permissions)


def wrote(result: dict[str, Any], block: dict[str, Any], where: Callable[[str], str]) -> str:
    outputs = block.get("request", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
    return "wrote " + ", ".join(where(entry["S3Output"]["S3Uri"]) for entry in outputs)


STAGE = processing_stage("preprocessing", "prep")
