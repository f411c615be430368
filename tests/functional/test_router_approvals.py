"""The router against moto, for a model package's approval: the item serving the package's group
starts once per approval, serving that package; an approval no item serves starts nothing and is no
error; two items serving one group are refused, the event kept for a replay."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from mlops_sfn.core.router import RejectedEvent
from tests.aws import Stack, deploy
from tests.conftest import PACKAGE, edited, load_event, load_item, serving_package

pytestmark = pytest.mark.functional

APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-served/2"


def serving(name: str, group: str = "mlops-dev-served") -> dict[str, Any]:
    item = serving_package(load_item(), PACKAGE)
    return edited(item, {"consumption_pipeline_name": name, "trigger": {"model_package_group": group}})


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        yield deploy([load_item(), serving("demo-dev-serve-package")])


def test_an_approval_starts_the_pipeline_serving_its_group_once(stack: Stack) -> None:
    event = load_event("sagemaker_model_package_approved")
    router = stack.router()
    assert router.handle(event, "req-1")["started"] == 1
    resent = copy.deepcopy(event) | {"id": "another", "time": "2024-06-03T09:41:40Z"}  # the same change again
    assert router.handle(resent, "req-2")["duplicates"] == 1
    (execution,) = stack.executions()
    planned = stack.execution_input(execution["name"])
    assert planned["pipeline"] == "demo-dev-serve-package"
    assert planned["stages"]["create_model"]["request"]["Containers"] == [{"ModelPackageName": APPROVED}]
    assert planned["trigger"] | {"package": APPROVED, "source": "model_package"} == planned["trigger"]


def test_an_approval_no_item_serves_starts_nothing_and_is_no_error(stack: Stack, capsys: Any) -> None:
    event = load_event("sagemaker_model_package_approved")
    other = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-unserved/4"
    event["detail"] |= {"ModelPackageArn": other, "ModelPackageGroupName": "mlops-dev-unserved"}
    summary = stack.router().handle(event, "req-1")
    assert (summary["started"], summary["skipped"]) == (0, 1) and not stack.executions()
    assert "no enabled item has trigger.model_package_group 'mlops-dev-unserved'" in capsys.readouterr().out


def test_a_disabled_item_serving_the_group_is_passed_over(stack: Stack) -> None:
    stack.put_item(serving("demo-dev-serve-package") | {"enabled": False})
    summary = stack.router().handle(load_event("sagemaker_model_package_approved"), "req-1")
    assert summary["skipped"] == 1 and not stack.executions()


def test_two_items_serving_one_group_are_refused_and_the_event_kept(stack: Stack) -> None:
    stack.put_item(serving("demo-dev-serve-package-twice"))
    with pytest.raises(RejectedEvent) as raised:
        stack.router().handle(load_event("sagemaker_model_package_approved"), "req-1")
    (rejection,) = raised.value.rejections
    assert rejection["field"] == "trigger.model_package_group"
    assert "demo-dev-serve-package, demo-dev-serve-package-twice" in rejection["reason"]
    assert not stack.executions()
