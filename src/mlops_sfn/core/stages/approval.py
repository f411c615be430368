"""Approval: a person approves or rejects the registered package (an SNS message with a task token)."""

from __future__ import annotations

from typing import Any

from .. import iam
from ..asl import SDK, Builder
from ..stage import Stage


def _states(b: Builder, then: str | None) -> str:
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
        b.task(
            f"{answer} model package",
            "approval",
            {
                "Resource": f"{SDK}sagemaker:updateModelPackage",
                "Parameters": {
                    "ModelPackageArn.$": "$.results.register.model_package_arn",
                    "ModelApprovalStatus": status,
                },
                "ResultPath": None,
                "Next": after,
            },
        )
    return entry


def _outputs(result: dict[str, Any], block: dict[str, Any], where: Any) -> str:
    return f"approved ({result.get('comment', '')})" if result.get("approved") else ""


STAGE = Stage(
    "approval",
    plan=lambda item, execution, settings: {
        "timeout_seconds": item["stages"]["approval"].get("timeout_hours", 24) * 3600
    },
    limit=lambda block: int(block["timeout_seconds"]),
    states=_states,
    permissions={
        "sns:publish.waitForTaskToken": (iam.statement("AskForApproval", ["sns:Publish"], ["${approval_topic_arn}"]),),
        "aws-sdk:sagemaker:updateModelPackage": (
            iam.statement("ApproveOrReject", ["sagemaker:UpdateModelPackage"], iam.PACKAGES),
        ),
    },
    preview=lambda block: f"manual approval, timeout {block['timeout_seconds'] // 3600} h",
    outputs=_outputs,
)
