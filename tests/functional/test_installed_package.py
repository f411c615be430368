"""The package as users install it: a wheel in a fresh virtual environment, run outside the checkout.

The wheel is built from the checkout (pip fetches the build backend from the registry); its
dependencies come from this environment through a path file, so nothing else is downloaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from mlops_sfn.tools.statemachine import ROOT
from tests.conftest import DEMO

pytestmark = pytest.mark.functional

ITEM = ROOT / "dynamodb_items" / f"{DEMO}.json"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh environment's bin folder."""
    folder = tmp_path_factory.mktemp("installed")
    wheels = folder / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    environment = folder / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    (wheel,) = wheels.glob("mlops_sfn-*.whl")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies from this environment; a path file does not run that folder's own path files,
    # so the checkout's editable install stays out.
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return environment / "bin"


def run(bin_folder: Path, workspace: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_folder / "mlops-sfn"), *arguments],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder outside the checkout holding only the demo item."""
    shutil.copy(ITEM, tmp_path / ITEM.name)
    return tmp_path


def test_the_installed_package_is_the_one_that_runs(installed: Path, workspace: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import mlops_sfn; print(mlops_sfn.__file__)"],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages" in where and not where.startswith(str(ROOT / "src"))


def test_validate_plan_and_local_run_work_from_an_install(installed: Path, workspace: Path) -> None:
    validated = run(installed, workspace, "validate", ITEM.name)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    planned = run(installed, workspace, "plan", ITEM.name, "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["pipeline"] == DEMO
    ran = run(installed, workspace, "local", "run", ITEM.name, "--approve", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout)
    assert report["status"] == "SUCCEEDED"
    assert "Check quality gate" in report["states"]  # the gate's Lambda handler, from the package


def test_commands_that_need_the_repository_say_so(installed: Path, workspace: Path) -> None:
    for command in (["generate"], ["local", "up"], ["providers", "check"]):
        result = run(installed, workspace, *command)
        assert result.returncode == 2, command
        assert "works on a checkout of the mlops-sfn repository" in result.stderr, command
