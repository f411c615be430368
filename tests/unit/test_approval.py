"""What `mlops-sfn approve|reject` takes as its target: a task token, an execution ARN, or a name."""

from __future__ import annotations

from mlops_sfn.operate.approval import execution_arn

MACHINE = "arn:aws:states:eu-west-1:111122223333:stateMachine:mlops-pipeline"
EXECUTION = "arn:aws:states:eu-west-1:111122223333:execution:mlops-pipeline:house-price-0123456789abcdef"
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAb4Yx1lV+0c2jM7sPq/ZGQ==" * 8  # AWS tokens: long base64


def test_an_execution_arn_is_used_as_is() -> None:
    assert execution_arn(EXECUTION, None) == EXECUTION
    assert execution_arn(EXECUTION, MACHINE) == EXECUTION


def test_a_name_becomes_an_execution_of_the_given_state_machine() -> None:
    assert execution_arn("house-price-0123456789abcdef", MACHINE) == EXECUTION
    assert execution_arn("house-price-0123456789abcdef", None) is None  # without a machine: a token


def test_a_token_stays_a_token_even_when_a_state_machine_is_set() -> None:
    assert execution_arn(TOKEN, MACHINE) is None
