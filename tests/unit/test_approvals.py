"""An approved model package as a trigger: the event SageMaker sends (its documented shape), what the
router reads of it, and which items it starts (trigger.model_package_group)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_sfn.core.plan import plan_execution
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.triggers import Approval, InvalidEvent, Trigger, parse_event
from mlops_sfn.operate import approval
from tests.conftest import PACKAGE, edited, load_event, load_item, serving_package

APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-served/2"


def serving(group: str = "mlops-dev-served") -> dict[str, Any]:
    """An item serving a group's approved packages, package 1 until the next approval."""
    return edited(serving_package(load_item(), PACKAGE), {"trigger": {"model_package_group": group}})


def test_an_approval_event_is_a_trigger_serving_that_package() -> None:
    (trigger,) = parse_event(load_event("sagemaker_model_package_approved"), "req-1")
    assert isinstance(trigger, Approval)
    assert (trigger.package, trigger.group()) == (APPROVED, "mlops-dev-served")
    assert trigger.time == "2024-06-03T09:41:26Z"  # when the package changed, not when the event was sent
    assert trigger.overrides == {"stages": {"create_model": {"model_package": APPROVED}}}
    assert Trigger.from_dict(trigger.as_dict()) == trigger  # as the execution input holds it


def test_the_same_approval_sent_twice_is_one_trigger_and_another_approval_is_another() -> None:
    event = load_event("sagemaker_model_package_approved")
    again = copy.deepcopy(event) | {"id": "another-delivery", "time": "2024-06-03T09:41:31Z"}
    (first,), (second,) = parse_event(event), parse_event(again)
    assert first.identity() == second.identity()  # SageMaker "may send multiple events for each state change"
    later = copy.deepcopy(event)
    later["detail"]["LastModifiedTime"] = "2024-06-10T08:00:00Z"  # approved again after a rejection
    (third,) = parse_event(later)
    assert third.identity() != first.identity()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"ModelApprovalStatus": "Rejected"}, "detail.ModelApprovalStatus: 'Rejected'; only an Approved package"),
        ({"ModelApprovalStatus": "PendingManualApproval"}, "only an Approved package starts a run"),
        ({"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/unversioned"}, "versioned"),
        ({"ModelPackageArn": None}, "detail.ModelPackageArn"),
    ],
)
def test_an_event_that_approves_nothing_is_refused_naming_the_field(change: dict[str, Any], words: str) -> None:
    event = load_event("sagemaker_model_package_approved")
    event["detail"] |= change
    with pytest.raises(InvalidEvent, match=words):
        parse_event(event)


def test_only_the_item_serving_the_packages_group_is_started_by_it() -> None:
    (trigger,) = parse_event(load_event("sagemaker_model_package_approved"))
    assert trigger.mismatch(serving()) is None
    assert "has no trigger.model_package_group" in str(trigger.mismatch(load_item()))
    assert "is of group 'mlops-dev-served', not trigger.model_package_group 'mlops-dev-other'" in str(
        trigger.mismatch(serving("mlops-dev-other"))
    )


def test_the_run_serves_the_approved_package_not_the_one_the_item_names() -> None:
    (trigger,) = parse_event(load_event("sagemaker_model_package_approved"))
    planned = plan_execution(serving(), trigger, EXAMPLE_SETTINGS)
    assert planned["stages"]["create_model"]["request"]["Containers"] == [{"ModelPackageName": APPROVED}]
    assert planned["trigger"]["source"] == "model_package" and planned["trigger"]["package"] == APPROVED


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        (
            {"stages.create_model.model_package": APPROVED.replace("mlops-dev-served", "mlops-dev-b")},
            "trigger.model_package_group",
            "serve one group",
        ),
        ({"stages.create_model.run": False}, "stages.create_model.model_package", "name the one served until"),
    ],
)
def test_an_item_serving_a_group_names_a_package_of_that_group(changes: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(InvalidItem) as raised:
        plan_execution(
            edited(serving(), changes), Approval(package=APPROVED, time="2024-06-03T09:41:26Z"), EXAMPLE_SETTINGS
        )
    problems = {problem.path: problem.message for problem in raised.value.problems}
    assert path in problems and words in problems[path], problems


# --- The item `local demo --promote` pushes to production (local/promotion.py) -----------------------


def production_settings() -> Any:
    """Production's deployment, consuming development's packages (model_source)."""
    from dataclasses import replace

    from mlops_sfn.local.harness import SETTINGS
    from mlops_sfn.local.promotion import PRODUCTION

    return replace(
        SETTINGS,
        sagemaker_role_arn=f"arn:aws:iam::{PRODUCTION}:role/mlops-prod-sagemaker",
        sagemaker_name_prefix="mlops-prod-",
        model_source_account="123456789012",
        model_source_prefix="mlops-dev-",
    )


def test_the_promotion_demos_serving_item_is_one_production_accepts() -> None:
    from mlops_sfn.core.plan import check_with_sample
    from mlops_sfn.local.promotion import serving_item

    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-cal-house-price/4"
    smoke = {"content_type": "text/csv", "body": "1,2,3"}
    for smoke_test in (smoke, None):
        item = serving_item("mlops-dev-cal-house-price", package, smoke_test)
        assert check_with_sample(item, production_settings()) == [], smoke_test
        assert ("smoke_test" in item["stages"]["deploy"]) == (smoke_test is not None)
    # a package of another account than its model source's is refused, naming the field
    foreign = package.replace("123456789012", "777788889999")
    problems = check_with_sample(serving_item("mlops-dev-cal-house-price", foreign, smoke), production_settings())
    assert [p.path for p in problems] == ["stages.create_model.model_package"]


class _Answers:
    """A Step Functions client that records the answers sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_task_success(self, **request: Any) -> None:
        self.sent.append("success")

    def send_task_failure(self, **request: Any) -> None:
        self.sent.append("failure")


@pytest.mark.parametrize(("approved", "length", "limit"), [(True, 262_144, 262_144), (False, 32_769, 32_768)])
def test_an_answers_comment_over_step_functions_limit_is_refused_before_answering(
    approved: bool, length: int, limit: int
) -> None:
    """SendTaskSuccess takes an output of at most 262144 characters, SendTaskFailure a cause of at
    most 32768 (Step Functions API reference): a longer --comment is refused, nothing answered."""
    sfn = _Answers()
    with pytest.raises(approval.ApprovalError, match=f"--comment: {length} characters.*at most {limit}"):
        approval.answer(sfn, "a-task-token", approved, comment="c" * length)
    assert sfn.sent == []
    approval.answer(sfn, "a-task-token", approved, comment="within the limit")
    assert sfn.sent == ["success" if approved else "failure"]
