"""Files derived from code: committed current, and `mlops-sfn generate` finds and fixes any that drift."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mlops_sfn import cli
from mlops_sfn.core import contract, dynamodb_json
from mlops_sfn.core.item import TYPED_FOLDER
from mlops_sfn.tools import generated, package, policy, statemachine
from tests.conftest import ITEMS, load_item


def test_every_committed_generated_file_is_current() -> None:
    assert generated.stale() == [], "run `mlops-sfn generate`"
    assert cli.main(["generate", "--check"]) == 0


def test_generated_files_cover_both_templates_every_item_and_the_zip() -> None:
    paths = set(generated.files())
    assert {statemachine.TEMPLATE, policy.POLICY_TEMPLATE, package.PACKAGE} <= paths
    plain = {path.name for path in ITEMS.glob("*.json")}
    assert {path.name for path in paths if path.parent == ITEMS / TYPED_FOLDER} == plain


def test_a_typed_item_is_its_plain_item_as_dynamodb_json(tmp_path: Path) -> None:
    shutil.copy(ITEMS / "demo-dev-domain-cal-house-price.json", tmp_path)
    assert generated.write(tmp_path) == [tmp_path / TYPED_FOLDER / "demo-dev-domain-cal-house-price.json"]
    typed = json.loads((tmp_path / TYPED_FOLDER / "demo-dev-domain-cal-house-price.json").read_text())
    assert typed["consumption_pipeline_name"] == {"S": "demo-dev-domain-cal-house-price"}
    assert dynamodb_json.from_typed(typed) == load_item()


def test_check_names_an_edited_item_and_a_leftover_typed_copy(tmp_path: Path) -> None:
    shutil.copy(ITEMS / "demo-dev-domain-cal-house-price.json", tmp_path)
    generated.write(tmp_path)
    item = load_item()
    item["description"] = "edited"
    (tmp_path / "demo-dev-domain-cal-house-price.json").write_text(json.dumps(item))
    (tmp_path / TYPED_FOLDER / "removed.json").write_text("{}")
    stale = generated.stale(tmp_path)
    assert tmp_path / TYPED_FOLDER / "demo-dev-domain-cal-house-price.json" in stale
    assert tmp_path / TYPED_FOLDER / "removed.json" in stale
    generated.write(tmp_path)
    assert not (tmp_path / TYPED_FOLDER / "removed.json").exists()
    assert tmp_path / TYPED_FOLDER / "demo-dev-domain-cal-house-price.json" not in generated.stale(tmp_path)


def test_validate_skips_the_typed_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(ITEMS / "demo-dev-domain-cal-house-price.json", tmp_path)
    generated.write(tmp_path)
    assert cli.main(["validate", str(tmp_path)]) == 0
    assert "1 item(s) valid" in capsys.readouterr().out


def test_the_zip_is_deterministic_and_holds_the_handlers_and_the_lambda_runtime_only() -> None:
    assert package.build() == package.build()
    names = set(package.read(package.build()))
    assert {
        "router/handler.py",
        "quality_gate/handler.py",
        "model_copy/handler.py",
        "mlops_sfn/core/model_copy.py",
    } <= names
    assert {"mlops_sfn/core/router.py", "mlops_sfn/core/stages/quality_gate.py"} <= names
    assert "mlops_sfn/core/pipeline_item.schema.json" in names  # read at run time by the item checks
    ours = {name for name in names if name.startswith("mlops_sfn/")}
    core = [
        path for path in package.CORE.rglob("*") if path.suffix in (".py", ".json") and "__pycache__" not in path.parts
    ]
    assert ours - {"mlops_sfn/__init__.py"} == {
        f"mlops_sfn/core/{path.relative_to(package.CORE).as_posix()}" for path in core
    }
    assert "mlops_sfn/core/stages/deploy.py" in names  # the stage definitions are the planner's


def test_the_lambda_runtime_imports_nothing_of_ours_outside_it() -> None:
    """The zip holds mlops_sfn.core only: an import of the CLI, the tooling or the local runtime
    would fail in Lambda (and bring repository reads into it)."""

    def ours_outside(module: str) -> bool:
        return module.split(".")[0] == "mlops_sfn" and not module.startswith("mlops_sfn.core")

    outside = []
    for path in sorted(package.CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                leaves = node.level > 1 or (node.level == 0 and ours_outside(node.module or ""))
            elif isinstance(node, ast.Import):
                leaves = any(ours_outside(alias.name) for alias in node.names)
            else:
                continue
            if leaves:
                outside.append(f"{path.name}:{node.lineno}")
    assert outside == []


def test_the_committed_zip_runs_every_handler_on_its_own(tmp_path: Path) -> None:
    """Lambda unpacks the zip into /var/task and imports the handler from there, with boto3 from the runtime."""
    task = tmp_path / "task"
    with zipfile.ZipFile(package.PACKAGE) as archive:
        archive.extractall(task)
    script = f"""
import json, sys
sys.path.insert(0, {str(task)!r})
import io, boto3
copies = []
class S3:  # objects as S3 would serve them (the zip's own code reaches them through boto3)
    class exceptions:
        NoSuchKey = KeyError
        ClientError = KeyError
    def get_object(self, Bucket, Key):
        return {{"ContentLength": 13, "Body": io.BytesIO(b'{{"rmse": 0.5}}')}}
    def head_object(self, Bucket, Key):
        return {{"ContentLength": 7}}
    def copy(self, source, bucket, key, Config):
        copies.append([source, bucket, key, Config.multipart_threshold])
boto3.client = lambda service, **kw: S3()
import router.handler, quality_gate.handler, model_copy.handler
gate = {{"metric": "rmse", "comparison": "less_than", "threshold": 1}}
verdict = quality_gate.handler.handler({{"report": {{"Bucket": "b", "Key": "k"}}, "gate": gate}}, None)
copied = model_copy.handler.handler({{"source": "s3://b/t/j-1/output/model.tar.gz", "target": "s3://b/runs/m"}}, None)
outside = sorted(name for name, module in sys.modules.items()
                 if name.startswith("mlops_sfn")
                 and not (getattr(module, "__file__", "") or "").startswith({str(task)!r}))
loaded = {{"yaml": "yaml" in sys.modules, "moto": "moto" in sys.modules}}
print(json.dumps({{"verdict": verdict, "copied": copied, "copies": copies, "outside": outside, **loaded}}))
"""
    environment = {
        **os.environ,
        "AWS_REGION": "us-east-1",
        **contract.router_environment(
            {
                "table_name": "mlops-dev-pipelines",
                "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-dev-pipeline",
                "bucket": "mlops-dev-artifacts",
                "sagemaker_role_arn": "arn:aws:iam::123456789012:role/mlops-dev-sagemaker",
                "default_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:1",
                "sagemaker_name_prefix": "mlops-dev-",
                "image_repository_arns": "arn:aws:ecr:us-east-1:123456789012:repository/*",
            }
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=tmp_path, check=True
    )
    report = json.loads(result.stdout)
    assert report["verdict"]["met"] is True
    assert report["copied"] == {"model_data_url": "s3://b/runs/m", "bytes": 7}
    assert report["copies"] == [[{"Bucket": "b", "Key": "t/j-1/output/model.tar.gz"}, "b", "runs/m", 256 * 1024**2]]
    assert report == {**report, "outside": [], "yaml": False, "moto": False}


def test_each_code_folder_gets_a_deterministic_source_archive_of_its_scripts(tmp_path: Path) -> None:
    code = tmp_path / "pipeline-a" / "code"
    code.mkdir(parents=True)
    (code / "train.py").write_text("print('train')\n")
    (code / "inference.py").write_text("def model_fn(d): ...\n")
    (code / "notes.txt").write_text("not a script\n")
    archives = package.source_archives(tmp_path)
    assert list(archives) == [code / package.SOURCE_ARCHIVE]
    data = archives[code / package.SOURCE_ARCHIVE]
    assert package.read_tar(data) == {"inference.py": b"def model_fn(d): ...\n", "train.py": b"print('train')\n"}
    assert package.source_archives(tmp_path)[code / package.SOURCE_ARCHIVE] == data  # byte for byte
