"""Evaluation: a processing job that writes a report, then its checkpoint, the quality gate on its metric."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import iam
from ..asl import LAMBDA, Builder
from ..problems import Problem
from ..stage import Block, Checkpoint, Item, ProcessingStage, Statements, runs
from . import quality_gate
from .shared import evaluation_report

if TYPE_CHECKING:
    from ..settings import Settings

QUALITY_GATE = Checkpoint("quality_gate", "quality gate", quality_gate.explain, "QualityGateNotMet")


class Evaluation(ProcessingStage):
    name = "evaluation"
    tag = "eval"
    checkpoints = (QUALITY_GATE,)

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        result = super().plan(item, execution, settings)
        bucket, _, key = evaluation_report(item).removeprefix("s3://").partition("/")
        result["report"] = {"Bucket": bucket, "Key": key}  # where the quality gate reads it
        return result

    def rules(self, item: Item) -> list[Problem]:
        if QUALITY_GATE.name not in item or runs(item, self.name):
            return []
        return [
            Problem(
                QUALITY_GATE.name,
                "needs the evaluation stage (its report holds the metric): switch evaluation on or remove the gate",
            )
        ]

    def check(self, block: Block, settings: Settings) -> list[Problem]:
        if block["report"]["Bucket"] == settings.bucket:
            return []
        return [
            Problem(
                "stages.evaluation.report_uri",
                f"bucket {block['report']['Bucket']!r} is outside this deployment: the quality gate reads only"
                f" {settings.bucket!r}; write the report there (the default does)",
            )
        ]

    def states(self, b: Builder, then: str | None) -> str:
        entry = b.job(self, self.selector(), "Quality gate?")
        b.when("Quality gate?", "$.quality_gate", "Check quality gate", then)
        # JSONPath cannot follow a metric path held in data, so a small function reads the metric. It
        # reads the report from S3 itself: a report in the state could pass the 256 KiB payload limit,
        # and States.DataLimitExceeded ends the run uncaught. The state keeps only the verdict.
        b.call(
            "Check quality gate",
            "quality_gate",
            LAMBDA,
            parameters={
                "FunctionName": "${quality_gate_function_arn}",
                "Payload": {"report.$": "$.stages.evaluation.report", "gate.$": "$.quality_gate"},
            },
            selector={"met.$": "$.Payload.met", "value.$": "$.Payload.value", "message.$": "$.Payload.message"},
            result="$.results.quality_gate",
            then="Quality gate met?",
        )
        b.when(
            "Quality gate met?",
            "$.results.quality_gate.met",
            then,
            "Quality gate not met",
            test={"BooleanEquals": True},
        )
        b.fail("Quality gate not met", "quality_gate", QUALITY_GATE.error, "$.results.quality_gate.message")
        return entry

    def permissions(self) -> Statements:
        return {**super().permissions(), "lambda:invoke": (iam.function("quality_gate_function_arn"),)}


STAGE = Evaluation()
