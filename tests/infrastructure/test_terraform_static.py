"""Every module and the root: formatted (`terraform fmt -check`) and valid (`terraform validate`) offline."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_sfn.core import contract
from mlops_sfn.local import stack
from mlops_sfn.tools import toolchain
from mlops_sfn.tools.statemachine import ROOT

pytestmark = pytest.mark.terraform

MODULES = sorted(path.name for path in (ROOT / "modules").iterdir() if (path / "main.tf").exists())
EXAMPLES = sorted(path.name for path in (ROOT / "examples").iterdir() if (path / "main.tf").exists())


def terraform(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    tools = toolchain.ensure()
    return subprocess.run(
        [str(tools.terraform), *arguments, "-no-color"],
        cwd=folder,
        env=stack.terraform_environment(tools),
        capture_output=True,
        text=True,
        timeout=600,
    )


def init_and_validate(folder: Path) -> subprocess.CompletedProcess[str]:
    initialised = terraform(folder, "init", "-input=false", "-backend=false")
    assert initialised.returncode == 0, initialised.stdout + initialised.stderr
    return terraform(folder, "validate")


def test_every_terraform_file_is_formatted() -> None:
    result = terraform(ROOT, "fmt", "-check", "-recursive", "-diff")
    assert result.returncode == 0, f"run `terraform fmt -recursive`:\n{result.stdout}{result.stderr}"


def test_every_module_requires_what_the_root_requires() -> None:
    """One Terraform and provider constraint for the whole stack: a module that admitted other
    versions than the root would be checked (providers check) against releases users cannot run."""
    root = (ROOT / "versions.tf").read_text()
    wanted = {
        "required_version": re.search(r'required_version = "([^"]+)"', root).group(1),  # type: ignore[union-attr]
        "aws": re.search(r'version = "([^"]+)"', root.split("aws =", 1)[1]).group(1),  # type: ignore[union-attr]
    }
    for module in MODULES:
        text = (ROOT / "modules" / module / "versions.tf").read_text()
        found = {
            "required_version": re.search(r'required_version = "([^"]+)"', text),
            "aws": re.search(r'version = "([^"]+)"', text.split("aws =", 1)[1]) if "aws =" in text else None,
        }
        assert {key: match.group(1) if match else None for key, match in found.items()} == wanted, module


@pytest.mark.parametrize("module", [m for m in MODULES if m not in stack.SWAPPED])
def test_module_is_valid(module: str, tmp_path: Path) -> None:
    modules = shutil.copytree(ROOT / "modules", tmp_path / "modules")  # ../function is used by two
    shutil.copy(ROOT / "contract.json", tmp_path)  # read as ../../contract.json
    stack.fit_to_terraform(modules, toolchain.ensure())
    folder = modules / module
    for used in modules.iterdir():
        stack.pin_offline_provider(used)
    result = init_and_validate(folder)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", sorted(stack.SWAPPED))
def test_a_swapped_module_is_refused_by_3_39_and_its_stand_in_is_valid(module: str, tmp_path: Path) -> None:
    """The module itself needs a newer provider (checked by `mlops-sfn providers check`); the local
    stack's stand-in keeps its variables and outputs and validates with 3.39."""
    real = shutil.copytree(ROOT / "modules" / module, tmp_path / "real")
    stack.pin_offline_provider(real)
    refused = init_and_validate(real)
    if module != "bucket-events":  # its one argument is refused at validate; resource types already at init
        assert refused.returncode != 0
    stand_in = stack.stage(tmp_path / "root") / "modules" / module
    result = init_and_validate(stand_in)
    assert result.returncode == 0, result.stdout + result.stderr
    assert interface(stand_in) == interface(real)


def interface(module: Path) -> set[str]:
    """The variables and outputs a module declares."""
    text = "".join(path.read_text() for path in module.glob("*.tf"))
    return set(re.findall(r'^((?:variable|output) "[^"]+")', text, re.MULTILINE))


def test_the_root_as_the_local_stack_stages_it_is_valid(tmp_path: Path) -> None:
    result = init_and_validate(stack.stage(tmp_path / "root"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("caller", ["deploy", *(f"examples/{name}" for name in EXAMPLES)])
def test_each_caller_of_the_root_is_valid(caller: str, tmp_path: Path) -> None:
    """The deployment root and each example, against the root as the local stack stages it
    (its SWAPPED modules replaced), with their provider constraint (5.x, 6.x) pinned to the offline
    mirror's version by an override file."""
    stack.stage(tmp_path / "root", provider=False)
    folder = shutil.copytree(ROOT / caller, tmp_path / "root" / caller)
    stack.pin_offline_provider(folder)
    result = init_and_validate(folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_environment_has_a_variables_file_setting_only_what_deploy_declares() -> None:
    declared = set(re.findall(r'^variable "([^"]+)"', (ROOT / "deploy" / "main.tf").read_text(), re.MULTILINE))
    files = sorted((ROOT / "examples" / "environments").glob("*.tfvars"))
    assert [path.stem for path in files] == ["dev", "prod", "uat"]
    for path in files:
        values = dict(re.findall(r"^(\w+)\s*=\s*(.+)$", path.read_text(), re.MULTILINE))
        assert set(values) <= declared, path.name
        assert values["environment"] == f'"{path.stem}"'
        required = {"region", "environment", "default_image_uri", "items_pattern"}
        assert required <= set(values), path.name


@pytest.mark.parametrize(
    ("variables", "managed"),
    [
        ({}, "true"),  # the framework's own bucket
        ({"bucket_name": "existing-bucket"}, "false"),  # never replace an existing bucket's notifications
        ({"bucket_name": "existing-bucket", "create_bucket_notification": "true"}, "true"),  # said explicitly
        ({"create_bucket_notification": "false"}, "false"),
    ],
)
def test_the_bucket_notification_is_managed_by_default_only_on_the_frameworks_own_bucket(
    variables: dict[str, str], managed: str, tmp_path: Path
) -> None:
    result = console(tmp_path, variables, "local.bucket_notification")
    assert result.stdout.strip() == managed, result.stderr


@pytest.mark.parametrize(
    ("variables", "prefix"),
    [
        ({}, '"mlops-dev-"'),
        ({"sagemaker_name_prefix": "team-a-"}, '"team-a-"'),
        ({"environment": "prod"}, '"mlops-prod-"'),
    ],
)
def test_items_reach_only_endpoints_and_groups_named_with_the_deployments_prefix(
    variables: dict[str, str], prefix: str, tmp_path: Path
) -> None:
    result = console(tmp_path, variables, "local.sagemaker_prefix")
    assert result.stdout.strip() == prefix, result.stderr


@pytest.mark.parametrize("prefix", ["-team a", "ML-Team-dev-"])
def test_a_sagemaker_name_prefix_that_cannot_start_a_lower_case_sagemaker_name_is_refused(
    prefix: str, tmp_path: Path
) -> None:
    # Capitals too: SageMaker's ARNs hold names lower-case, so a policy scoped by "ML-Team-dev-*"
    # would deny every endpoint, package and schedule call (reference.md section 7).
    result = console(tmp_path, {"sagemaker_name_prefix": prefix}, "local.sagemaker_prefix")
    assert "sagemaker_name_prefix must be 1-32 lower-case letters" in plain(result.stderr)


def test_jobs_may_publish_metrics_where_the_drift_alarm_watches_them(tmp_path: Path) -> None:
    # cloudwatch:namespace is matched as StringLike (case-sensitive, * and ?), which fnmatchcase mirrors
    # for these patterns; the analyzer writes without a leading "/", SageMaker's own job metrics with.
    result = console(tmp_path, {}, "jsonencode(local.job_metric_namespaces)")
    patterns = json.loads(json.loads(result.stdout))
    assert any(fnmatch.fnmatchcase(contract.MONITORING_METRIC_NAMESPACE, pattern) for pattern in patterns)
    assert any(fnmatch.fnmatchcase("/aws/sagemaker/TrainingJobs", pattern) for pattern in patterns)
    module = (ROOT / "modules" / "sagemaker-role" / "main.tf").read_text()
    assert '"cloudwatch:namespace" = var.metric_namespaces' in module


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"lambda_runtime": "python3.8"}, "lambda_runtime must be python3.12 or python3.13"),
        ({"image_repository_arns": '["my-image"]'}, "image_repository_arns must be ECR repository ARNs"),
        ({"model_consumer_accounts": '["4444"]'}, "model_consumer_accounts must be 12-digit account IDs"),
        (
            {"model_source": '{account_id = "dev", sagemaker_name_prefix = "p-", bucket = "b-b", kms_key_arn = null}'},
            "model_source must be the source deployment's output as_model_source",
        ),
    ],
)
def test_a_refused_variable_says_what_it_accepts(variables: dict[str, str], words: str, tmp_path: Path) -> None:
    result = console(tmp_path, variables, "local.name")
    assert words in plain(result.stderr)


@pytest.mark.parametrize(
    ("image", "repositories"),
    [
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3", "[]"),
        ("ghcr.io/team/image:1", '["arn:aws:ecr:eu-west-1:123456789012:repository/team/image"]'),
    ],
)
def test_jobs_pull_from_the_default_images_registry_and_the_declared_repositories(
    image: str, repositories: str, tmp_path: Path
) -> None:
    """The registry's ARN needs the partition, known only at apply: its account and region here,
    the ARNs themselves in the applied test."""
    variables = {"default_image_uri": image, "image_repository_arns": repositories}
    result = console(tmp_path, variables, "jsonencode([local.default_registry, var.image_repository_arns])")
    registry, declared = json.loads(json.loads(result.stdout.strip()))
    assert registry == (["683313688378", "us-east-1"] if image.startswith("683") else None), result.stderr
    assert declared == json.loads(repositories)


def plain(text: str) -> str:
    """Terraform's message without colours and line breaks."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).replace("│", " ").split())


def console(tmp_path: Path, variables: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    """`terraform console` on the staged root: what a local value becomes for these variables."""
    folder = stack.stage(tmp_path / "root")
    assert terraform(folder, "init", "-input=false", "-backend=false").returncode == 0
    arguments = [argument for name, value in variables.items() for argument in ("-var", f"{name}={value}")]
    tools = toolchain.ensure()
    return subprocess.run(
        [str(tools.terraform), "console", *arguments],
        cwd=folder,
        env=stack.terraform_environment(tools),
        input=f"{expression}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
