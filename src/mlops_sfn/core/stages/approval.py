"""Approval: a person approves or rejects the registered package (an SNS message with a task token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import iam
from ..asl import SDK, Builder
from ..stage import Block, Item, Stage, Statements, Where

if TYPE_CHECKING:
    from ..settings import Settings


class Approval(Stage):
    name = "approval"

    def plan(self, item: Item, execution: str, settings: Settings) -> Block:
        return {"timeout_seconds": item["stages"]["approval"].get("timeout_hours", 24) * 3600}

    def limit(self, block: Block) -> int:
        return int(block["timeout_seconds"])

    def states(self, b: Builder, then: str | None) -> str:
        entry = b.add(
            "Ask for approval",
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {
                    "TopicArn": "${approval_topic_arn}",
                    "Subject": "Model approval requested",
                    "Message": {
                        "pipeline.$": "$.pipeline",
                        "execution_name.$": "$.execution_name",
                        "model_package_arn.$": "$.results.register.model_package_arn",
                        "results.$": "$.results",  # the evaluation and gate verdict, when they ran
                        "task_token.$": "$$.Task.Token",
                        "answer": "mlops-sfn approve|reject <task_token or execution name>",
                    },
                },
                "TimeoutSecondsPath": "$.stages.approval.timeout_seconds",
                "ResultPath": "$.results.approval",
                # A publish that fails is asked again; an answer (Rejected) or the timeout never is: a
                # retrier with MaxAttempts 0 is never retried (ASL, "Retrying after an error").
                "Retry": [
                    {"ErrorEquals": ["Rejected", "States.Timeout"], "MaxAttempts": 0},
                    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3},
                ],
                "Catch": [
                    # Unanswered in time counts as rejected: the package must not wait, pending, for ever.
                    {
                        "ErrorEquals": ["Rejected", "States.Timeout"],
                        "ResultPath": "$.failure",
                        "Next": "Reject model package",
                    },
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": b.recorder("approval")},
                ],
                "Next": "Approve model package",
            },
        )
        for answer, status, after in [("Approve", "Approved", then), ("Reject", "Rejected", "Approval failed")]:
            b.call(
                f"{answer} model package",
                "approval",
                f"{SDK}sagemaker:updateModelPackage",
                parameters={"ModelPackageArn.$": "$.results.register.model_package_arn", "ModelApprovalStatus": status},
                result=None,
                then=after,
            )
        return entry

    def permissions(self) -> Statements:
        return {
            "sns:publish.waitForTaskToken": (
                iam.statement("AskForApproval", ["sns:Publish"], ["${approval_topic_arn}"]),
            ),
            "aws-sdk:sagemaker:updateModelPackage": (
                iam.statement(iam.PACKAGES_SID, ["sagemaker:UpdateModelPackage"], iam.PACKAGES),
            ),
        }

    def preview(self, block: Block) -> str:
        return f"manual approval, timeout {block['timeout_seconds'] // 3600} h"

    def report(self, result: dict[str, Any], block: Block, where: Where) -> str:
        return f"approved ({result.get('comment', '')})" if result.get("approved") else ""


STAGE = Approval()
