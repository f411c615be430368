"""`mlops-sfn providers check`: the Terraform users apply, against the stored AWS provider 5.x and 6.x schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_sfn.tools import providers
from mlops_sfn.tools.statemachine import ROOT

FIVE, SIX = providers.supported()
CONSTRAINT = """terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "%s"
    }
  }
}
"""


def findings(tmp_path: Path, text: str, provider: str = FIVE, constraint: str = ">= 5.31, < 7.0") -> list[str]:
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    (module / "main.tf").write_text(text)
    (module / "versions.tf").write_text(CONSTRAINT % constraint)
    return [f"{f.where}: {f.message}" for f in providers.check([module], providers.load(provider), base=tmp_path)]


def test_every_folder_users_apply_is_clean_for_both_supported_providers() -> None:
    found, summary = providers.run_check(ROOT)
    assert [str(f) for f in found] == []
    assert len(summary) == 2 and all("0 errors, 0 deprecations" in line for line in summary)
    folders = {str(folder.relative_to(ROOT)) for folder in providers.terraform_folders(ROOT)}
    assert {".", "deploy", "modules/bucket", "modules/router", "examples/new-bucket"} <= folders


def test_the_stored_schemas_come_from_the_pinned_packages() -> None:
    for provider, (package, sha256) in providers.PACKAGES.items():
        schema = providers.load(provider)
        assert (schema["provider"], schema["package"], schema["sha256"]) == (
            provider,
            f"@cdktf/provider-aws@{package}",
            sha256,
        )
        assert len(schema["names"]["resource"]) > 1000  # every type, for "unknown type"
        used = providers.used_types(providers.terraform_folders(ROOT))
        assert {name for kind, name in used if kind == "resource"} <= set(schema["resource"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('resource "aws_sqs_quee" "q" {}\n', "aws_sqs_quee.q: provider 5.100.0 has no resource type aws_sqs_quee"),
        (
            'resource "aws_sqs_queue" "q" {\n  name = "q"\n  visibility = 30\n}\n',
            "aws_sqs_queue.q: provider 5.100.0 knows no argument or block visibility",
        ),
        (
            'resource "aws_sqs_queue" "q" {\n  arn = "x"\n}\n',
            "aws_sqs_queue.q: arn is computed by provider 5.100.0 and cannot be set",
        ),
        (
            'resource "aws_iam_role" "r" {\n  name = "r"\n}\n',
            "aws_iam_role.r: provider 5.100.0 requires assume_role_policy",
        ),
        (
            'resource "aws_lambda_function" "f" {\n  function_name = "f"\n  role = "r"\n'
            '  tracing_config {\n    mode = "Active"\n    sampled = true\n  }\n}\n',
            "aws_lambda_function.f.tracing_config: provider 5.100.0 knows no argument or block sampled",
        ),
        (
            'resource "aws_s3_bucket_object" "o" {\n  bucket = "b"\n  key = "k"\n}\n',
            "aws_s3_bucket_object.o: deprecated in provider 5.100.0: use aws_s3_object",
        ),
        (
            'resource "aws_cloudwatch_event_rule" "r" {\n  is_enabled = false\n}\n',
            "aws_cloudwatch_event_rule.r: is_enabled is deprecated in provider 5.100.0: use state",
        ),
        (
            'resource "aws_s3_bucket" "b" {\n  dynamic "versioning" {\n    for_each = [1]\n'
            "    content {\n      enabled = true\n    }\n  }\n}\n",
            "aws_s3_bucket.b: versioning is deprecated in provider 5.100.0",
        ),
        (
            'data "aws_region" "current" {}\nlocals {\n  region = data.aws_region.current.region\n}\n',
            "data.aws_region.current: provider 5.100.0 has no attribute region on aws_region",
        ),
    ],
    ids=[
        "unknown-type",
        "unknown-argument",
        "computed-only",
        "missing-required",
        "nested-block",
        "deprecated-type",
        "deprecated-argument",
        "deprecated-dynamic-block",
        "unknown-attribute",
    ],
)
def test_each_kind_of_mistake_is_found(text: str, expected: str, tmp_path: Path) -> None:
    found = findings(tmp_path, text)
    assert any(line.startswith(expected) for line in found), found


def test_a_deprecation_of_6x_only_is_reported_for_6x_only(tmp_path: Path) -> None:
    text = 'data "aws_region" "current" {}\nlocals {\n  region = data.aws_region.current.name\n}\n'
    assert findings(tmp_path, text, FIVE) == []
    assert findings(tmp_path, text, SIX) == [
        "data.aws_region.current.name: deprecated in provider 6.25.0: use id (5.x and 6.x) or region (6.x)"
    ]
    portable = text.replace(".name", ".id")
    assert findings(tmp_path, portable, FIVE) == findings(tmp_path, portable, SIX) == []


@pytest.mark.parametrize(
    ("constraint", "words"),
    [
        (">= 5.0, < 6.0.0", "refuses provider 6.25.0"),
        (">= 3.39", "admits provider 3.39.0, older than the 5.31.0"),
        ("~> 5.31", "refuses provider 6.25.0"),
        (">= 4.0", "admits provider 4.8.0"),
    ],
)
def test_a_version_constraint_that_shuts_out_a_supported_major_or_admits_an_old_one(
    constraint: str, words: str, tmp_path: Path
) -> None:
    found = findings(tmp_path, "", SIX, constraint) + findings(tmp_path, "", FIVE, constraint)
    assert any(words in line for line in found), found


@pytest.mark.parametrize(
    ("constraint", "version", "admitted"),
    [
        (">= 5.31, < 7.0", "6.25.0", True),
        (">= 5.31, < 7.0", "7.0.0", False),
        ("~> 5.31", "5.99.1", True),
        ("~> 5.31", "6.0.0", False),
        ("~> 5.31.0", "5.32.0", False),
        ("!= 5.40.0, >= 5.31", "5.40.0", False),
        ("5.100.0", "5.100.0", True),
    ],
)
def test_version_constraints_read_as_terraform_reads_them(constraint: str, version: str, admitted: bool) -> None:
    assert providers.admits(constraint, version) is admitted


def test_a_jsii_assembly_becomes_a_compact_schema() -> None:
    """The shapes the @cdktf/provider-aws assembly uses: a resource class naming its type in its
    docs, a config struct whose properties carry the Terraform name in their registry anchor."""
    page = "https://registry.terraform.io/providers/hashicorp/aws/5.100.0/docs/resources/sqs_queue"
    docs = "Docs at Terraform Registry: {@link " + page + "#%s SqsQueue#%s}."

    def prop(name: str, anchor: str, optional: bool = True, kind: dict | None = None) -> dict:
        return {
            "name": name,
            "optional": optional,
            "docs": {"summary": docs % (anchor, anchor)},
            "type": kind or {"primitive": "string"},
        }

    assembly = {
        "types": {
            "p.sqsQueue.SqsQueue": {
                "base": "cdktf.TerraformResource",
                "kind": "class",
                "docs": {"summary": "Represents a {@link " + page + " aws_sqs_queue}."},
                "initializer": {"parameters": [{}, {}, {"type": {"fqn": "p.sqsQueue.SqsQueueConfig"}}]},
                "properties": [{"name": "arn"}, {"name": "nameInput"}, {"name": "name"}, {"name": "tfResourceType"}],
            },
            "p.sqsQueue.SqsQueueConfig": {
                "properties": [
                    prop("name", "name", optional=False),
                    prop("delaySeconds", "delay_seconds"),
                    prop("redrive", "redrive", kind={"fqn": "@cdktf/provider-aws.sqsQueue.Redrive"}),
                ]
            },
            "@cdktf/provider-aws.sqsQueue.Redrive": {"properties": [prop("maxCount", "max_receive_count")]},
        }
    }
    schema = providers.from_jsii(assembly, {("resource", "aws_sqs_queue")})
    assert schema["provider"] == "5.100.0"
    assert schema["names"] == {"resource": ["aws_sqs_queue"], "data": []}
    assert schema["resource"]["aws_sqs_queue"] == {
        "arguments": {"name": True, "delay_seconds": False, "redrive": [False, {"max_receive_count": False}]},
        "computed": ["arn"],
    }
