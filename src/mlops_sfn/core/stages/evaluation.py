"""Evaluation: a processing job that writes a report, then the quality gate on its metric."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import asl, iam
from ..asl import LAMBDA, Builder
from ..problems import Problem
from ..stage import RUN_FOLDER, Item
from .preprocessing import processing_stage

if TYPE_CHECKING:
    from ..plan import Settings


def _plan(item: Item, execution: str, settings: Settings) -> dict[str, Any]:
    result = {"request": STAGE.request(item, execution)}
    uri = item["stages"]["evaluation"].get("report_uri", RUN_FOLDER + "/evaluation/evaluation.json")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    result["report"] = {"Bucket": bucket, "Key": key}  # where the quality gate reads it
    return result


def _check(block: dict[str, Any], settings: Settings) -> list[Problem]:
    if block["report"]["Bucket"] == settings.bucket:
        return []
    return [
        Problem(
            "stages.evaluation.report_uri",
            f"bucket {block['report']['Bucket']!r} is outside this deployment: the quality gate reads only"
            f" {settings.bucket!r}; write the report there (the default does)",
        )
    ]


def _states(b: Builder, then: str | None) -> str:
    entry = b.task("Evaluation", "evaluation", asl.sagemaker_job(STAGE, asl.job_name(STAGE), "Quality gate?"))
    b.add(
        "Quality gate?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": "$.quality_gate", "IsPresent": True, "Next": "Check quality gate"}],
            "Default": then,
        },
    )
    # JSONPath cannot follow a metric path held in data, so a small function reads the metric. It
    # reads the report from S3 itself: a report in the state could pass the 256 KiB payload limit,
    # and States.DataLimitExceeded ends the run uncaught. The state keeps only the verdict.
    b.task(
        "Check quality gate",
        "quality_gate",
        {
            "Resource": LAMBDA,
            "Parameters": {
                "FunctionName": "${quality_gate_function_arn}",
                "Payload": {"report.$": "$.stages.evaluation.report", "gate.$": "$.quality_gate"},
            },
            "ResultSelector": {
                "met.$": "$.Payload.met",
                "value.$": "$.Payload.value",
                "message.$": "$.Payload.message",
            },
            "ResultPath": "$.results.quality_gate",
            "Next": "Quality gate met?",
        },
    )
    b.add(
        "Quality gate met?",
        {
            "Type": "Choice",
            "Choices": [{"Variable": "$.results.quality_gate.met", "BooleanEquals": True, "Next": then}],
            "Default": "Quality gate not met",
        },
    )
    b.add(
        "Quality gate not met",
        {
            "Type": "Pass",
            "Parameters": {
                "stage": "quality_gate",
                "error": "QualityGateNotMet",
                "cause.$": "$.results.quality_gate.message",
            },
            "ResultPath": "$.failure",
            "Next": b.failure_target,
        },
    )
    return entry


STAGE = processing_stage(
    "evaluation",
    "eval",
    plan=_plan,
    check=_check,
    states=_states,
    permissions={"lambda:invoke": (iam.function("quality_gate_function_arn"),)},
)
