""".gitlab-ci.yml: valid YAML with the stages and jobs the README describes, and only documented variables."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import ROOT

CI = ROOT / ".gitlab-ci.yml"
README = (ROOT / "README.md").read_text()
KEYWORDS = {"stages", "default", "variables", "workflow", "include"}


def pipeline() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    return loaded


def jobs() -> dict[str, dict[str, Any]]:
    return {name: job for name, job in pipeline().items() if name not in KEYWORDS and not name.startswith(".")}


def readme_table(title: str) -> list[list[str]]:
    """Rows of the table that follows the line `title` in the README (cells without backticks)."""
    section = README[README.index(title) :]
    rows = []
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        if set(cells[0]) <= {"-", " "}:
            continue
        rows.append(cells)
    return rows[1:]  # without the header


def test_the_jobs_and_stages_are_the_ones_the_readme_describes() -> None:
    described = readme_table("GitLab CI jobs:")
    assert {row[0]: row[1] for row in described} == {name: job["stage"] for name, job in jobs().items()}
    assert pipeline()["stages"] == list(dict.fromkeys(row[1] for row in described))


def test_the_test_job_runs_the_readmes_test_command() -> None:
    assert "make test   #" in README
    assert jobs()["test"]["script"] == ["make test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_promotion_goes_dev_then_uat_then_prod_with_a_manual_gate_before_each_of_the_last_two() -> None:
    every = jobs()
    assert every["apply-dev"]["needs"] == ["test", "plan"]
    assert every["promote-uat"]["needs"] == ["apply-dev"]
    assert every["promote-prod"]["needs"] == ["promote-uat"]
    for name in ("promote-uat", "promote-prod"):
        assert [rule.get("when") for rule in every[name]["rules"]] == ["manual"]
        assert every[name]["allow_failure"] is False  # blocking: a gate, not an optional job
    for name, environment in (("apply-dev", "DEV"), ("promote-uat", "UAT"), ("promote-prod", "PROD")):
        assert every[name]["variables"] == {"TFC_WORKSPACE": f"$TFC_WORKSPACE_{environment}"}
        assert every[name]["script"][-1] == ".venv/bin/mlops-sfn tfc apply"
        assert every[name]["environment"]["name"] == environment.lower()
    assert every["plan"]["script"][-1] == ".venv/bin/mlops-sfn tfc plan"


def test_every_variable_the_pipeline_needs_is_documented_and_none_is_set_in_the_file() -> None:
    text = CI.read_text() + (ROOT / "src" / "mlops_sfn" / "tools" / "tfc.py").read_text()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", CI.read_text())) | set(re.findall(r'"(TFC_[A-Z_]+)"', text))
    used -= {name for name in used if name.startswith("CI_")}  # GitLab's own
    used -= {"TFC_WORKSPACE", "TFC_ADDRESS", "TF_API_TOKEN"}  # set per job; tests only; an alias of TFC_TOKEN
    documented = {row[0] for row in readme_table("CI/CD variables:")}
    assert used == documented
    assert not re.search(r"TFC_(TOKEN|ORGANIZATION):", CI.read_text())  # secrets and names stay out of the file


def test_every_make_target_the_pipeline_runs_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for job in jobs().values():
        for line in job["script"]:
            for target in re.findall(r"^make (\S+)", line):
                assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
