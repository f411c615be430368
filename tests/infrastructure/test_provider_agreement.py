"""`mlops-sfn providers check` agrees with `terraform validate` where both can run: provider 3.39,
the one build installable here, read through `terraform providers schema -json`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn.local import stack
from mlops_sfn.tools import providers, toolchain

pytestmark = pytest.mark.terraform

CLEAN = """resource "aws_sqs_queue" "q" {
  name = "q"
}

resource "aws_iam_role" "r" {
  name               = "r"
  assume_role_policy = "{}"
}

data "aws_region" "current" {}

output "region" {
  value = data.aws_region.current.name
}
"""
# Each a single mistake both must refuse.
MISTAKES = {
    "unknown-type": CLEAN + 'resource "aws_sqs_quee" "x" {}\n',
    "unknown-argument": CLEAN.replace('name = "q"', 'name = "q"\n  visibility = 30'),
    "computed-only": CLEAN.replace('name = "q"', 'name = "q"\n  arn = "x"'),
    "missing-required": CLEAN.replace('  assume_role_policy = "{}"\n', ""),
    "nested-block": CLEAN.replace('"{}"\n', '"{}"\n  inline_policy {\n    nme = "x"\n  }\n'),
    "unknown-attribute": CLEAN.replace("data.aws_region.current.name", "data.aws_region.current.region"),
}


def terraform(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    tools = toolchain.ensure()
    return subprocess.run(
        [str(tools.terraform), *arguments],
        cwd=folder,
        env=stack.terraform_environment(tools),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("agreement")
    (folder / "main.tf").write_text(CLEAN)
    stack.pin_offline_provider(folder)
    assert terraform(folder, "init", "-input=false", "-backend=false").returncode == 0
    exported = terraform(folder, "providers", "schema", "-json")
    keep = {("resource", "aws_sqs_queue"), ("resource", "aws_iam_role"), ("data", "aws_region")}
    return folder, providers.from_terraform(json.loads(exported.stdout), keep)


@pytest.mark.parametrize("case", ["clean", *MISTAKES])
def test_the_check_refuses_what_terraform_validate_refuses(case: str, initialised: tuple[Path, dict[str, Any]]) -> None:
    folder, schema = initialised
    (folder / "main.tf").write_text(MISTAKES.get(case, CLEAN))
    validated = terraform(folder, "validate", "-no-color")
    found = providers.check([folder], schema)
    assert (validated.returncode == 0) == (found == []), (validated.stderr, [str(f) for f in found])
    assert (case == "clean") == (found == [])
