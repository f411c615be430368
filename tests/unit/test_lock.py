"""The development environment is exactly the committed locks (`make install`), and they agree.

uv.lock holds every package of the project and its extras, for every Python the project supports;
.ci/uv.txt bootstraps uv itself with the release and hashes uv.lock names; .ci/checkov.txt locks
checkov's own environment. A fresh clone must install these versions and no others: an upstream
release must not change what the suite runs on.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
UV = Path(sys.executable).parent / "uv"  # the release uv.lock names (pyproject.toml, dev extra)
PROJECT = "mlops-sfn"
LOCK_PROJECT_VERSION = next(package["version"] for package in LOCK["package"] if package["name"] == PROJECT)


def locked_for_this_interpreter() -> dict[str, str]:
    """name -> version of what uv.lock installs here: every extra, markers evaluated for this Python."""
    export = ["export", "--frozen", "--all-extras", "--no-emit-project", "--no-hashes", "--no-header"]
    exported = subprocess.run(
        [str(UV), *export, "--no-annotate", "--format", "requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wanted = {}
    for line in exported.splitlines():
        requirement, _, marker = line.partition(";")
        name, _, version = requirement.strip().partition("==")
        if name and (not marker.strip() or Marker(marker.strip()).evaluate()):
            wanted[canonicalize_name(name)] = version
    return wanted


def installed() -> dict[str, str]:
    """name -> version of every distribution this interpreter sees."""
    found = {}
    for distribution in importlib.metadata.distributions():
        found.setdefault(canonicalize_name(distribution.metadata["Name"]), distribution.version)
    return found


def test_the_environment_holds_exactly_the_locked_versions() -> None:
    wanted, present = locked_for_this_interpreter(), installed()
    assert present.pop(PROJECT, None) == LOCK_PROJECT_VERSION, "the project itself is installed (editable)"
    missing = {name: version for name, version in wanted.items() if present.get(name) != version}
    extra = {name: version for name, version in present.items() if name not in wanted}
    assert not missing and not extra, (
        f"not as uv.lock says: {missing} missing or at another version, {extra} not in the lock; "
        "install with make install (uv sync --locked --all-extras)"
    )
    assert {"moto", "ruff", "mypy", "pytest", "uv"} <= set(wanted)  # the lock covers the dev extra


def test_the_lock_covers_every_python_the_project_supports() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert LOCK["requires-python"] == pyproject["project"]["requires-python"] == ">=3.11"
    for package in LOCK["package"]:
        if package["name"] != PROJECT:  # every release comes from the registry with its hash
            files = [package["sdist"]] if "sdist" in package else []
            files += package.get("wheels", [])
            assert files and all(file["hash"].startswith("sha256:") for file in files), package["name"]


def requirement_hashes(text: str) -> dict[str, set[str]]:
    """`name==version` -> its sha256 hashes, from a requirements file pip reads with --require-hashes."""
    found: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        if pinned := re.match(r"^([A-Za-z0-9._-]+==[^ ;\\]+)", line):
            current = pinned.group(1)
            found[current] = set()
        found.setdefault(current, set()).update(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    found.pop("", None)
    return found


def test_uv_is_bootstrapped_at_the_release_and_hashes_uv_lock_names() -> None:
    (uv,) = (package for package in LOCK["package"] if package["name"] == "uv")
    files = [uv["sdist"], *uv["wheels"]]
    locked = {file["hash"].removeprefix("sha256:") for file in files}
    assert requirement_hashes((ROOT / ".ci" / "uv.txt").read_text()) == {f"uv=={uv['version']}": locked}
    assert importlib.metadata.version("uv") == uv["version"]


def test_checkovs_environment_is_locked_with_hashes() -> None:
    pinned = re.search(r"^checkov==\S+", (ROOT / ".ci" / "checkov.in").read_text(), re.MULTILINE)
    locked = requirement_hashes((ROOT / ".ci" / "checkov.txt").read_text())
    assert pinned and pinned.group(0) in locked
    assert len(locked) > 1 and all(locked.values()), "every package pinned with its hashes"
    for requirement in ("boto3", "pydantic"):  # what checkov would otherwise share with the project
        assert any(name.startswith(f"{requirement}==") for name in locked)


def test_the_moto_release_the_local_runtime_names_is_the_locked_one() -> None:
    from mlops_sfn.local import motoport

    (moto,) = (package for package in LOCK["package"] if package["name"] == "moto")
    assert moto["version"] == motoport.TESTED, "after make lock moved moto: run the suite, then set motoport.TESTED"
