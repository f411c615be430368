"""A deployment of the release before the function module (modules/function) upgrades in place:
its `moved` blocks carry the router's and the quality gate's function, role, policy and logs over,
and the plan destroys nothing. Applied into a local AWS, then planned with the current code."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn.local import stack
from mlops_sfn.tools import toolchain
from mlops_sfn.tools.statemachine import ROOT
from tests.infrastructure.applied import apply

pytestmark = pytest.mark.terraform

BEFORE = "ef95741"  # main as landed before the function module (the functions were hand-written blocks)
# Where the earlier release's functions were declared: module -> resources, for its runtime override.
BEFORE_FUNCTIONS = {"router": ("this",), "state-machine": ("quality_gate",)}


def earlier_release(into: Path) -> Path:
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs the repository's history back to {BEFORE} (a full clone)")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(root: Path, tools: toolchain.Toolchain, endpoint: str, *arguments: str) -> str:
    result = subprocess.run(
        [str(tools.terraform), *arguments, "-no-color"],
        cwd=root,
        env=stack.terraform_environment(tools, endpoint),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_deployment_of_the_earlier_release_upgrades_without_destroying_anything(tmp_path: Path) -> None:
    tools = toolchain.ensure()
    if not tools.has_moved_blocks:
        pytest.skip(f"`moved` blocks need Terraform 1.1 or later; the toolchain has {tools.version}")
    before = earlier_release(tmp_path / "before")
    root = stack.stage(tmp_path / "root", root=before)
    for module, resources in BEFORE_FUNCTIONS.items():  # that release's functions, made with 3.39's runtime
        stack.override_runtimes(root / "modules" / module, resources)
    with stack.MotoServer(tmp_path / "moto.log") as server:
        tf = apply(root, server)
        try:
            stack.stage(root)  # the current code over the same state
            run(root, tools, server.endpoint, "init", "-input=false")
            run(root, tools, server.endpoint, "plan", "-input=false", "-out=upgrade.plan")
            plan: dict[str, Any] = json.loads(run(root, tools, server.endpoint, "show", "-json", "upgrade.plan"))
        finally:
            tf.destroy()
    changes = {change["address"]: change for change in plan["resource_changes"]}
    destroyed = sorted(address for address, change in changes.items() if "delete" in change["change"]["actions"])
    assert destroyed == []
    moved = {change["previous_address"]: address for address, change in changes.items() if "previous_address" in change}
    assert moved == {
        "module.router.aws_iam_role.this": "module.router.module.function.aws_iam_role.this",
        "module.router.aws_iam_role_policy.this": "module.router.module.function.aws_iam_role_policy.this",
        "module.router.aws_cloudwatch_log_group.this": "module.router.module.function.aws_cloudwatch_log_group.this",
        "module.router.aws_lambda_function.this": "module.router.module.function.aws_lambda_function.this",
        "module.state_machine.aws_iam_role.quality_gate": "module.state_machine.module.quality_gate.aws_iam_role.this",
        "module.state_machine.aws_iam_role_policy.quality_gate": (
            "module.state_machine.module.quality_gate.aws_iam_role_policy.this"
        ),
        "module.state_machine.aws_cloudwatch_log_group.quality_gate": (
            "module.state_machine.module.quality_gate.aws_cloudwatch_log_group.this"
        ),
        "module.state_machine.aws_lambda_function.quality_gate": (
            "module.state_machine.module.quality_gate.aws_lambda_function.this"
        ),
    }
