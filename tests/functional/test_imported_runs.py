"""An imported upstream sample is a pipeline that runs: imported with its tokens filled, it runs
locally with jobs that execute stand-in scripts (tests/import/standins) reading what the upstream
scripts read, where the upstream scripts read it."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_sfn.core import dynamodb_json
from mlops_sfn.core.settings import Settings
from mlops_sfn.local import REGION, accounts
from mlops_sfn.local.harness import SETTINGS, LocalRuns
from mlops_sfn.local.jobs import ScriptJobs
from mlops_sfn.operate import importers
from mlops_sfn.tools.statemachine import ROOT

pytestmark = pytest.mark.functional

SAMPLES = ROOT / "tests" / "import"
STANDINS = SAMPLES / "standins"


@contextmanager
def local_runs(home: Path, **deployment: str) -> Iterator[LocalRuns]:
    """A local AWS whose jobs run their scripts (the harness simulates them otherwise)."""

    def client(service: str, account: str) -> Any:
        return accounts.client(service, REGION, account)  # served by the in-process mock

    jobs = ScriptJobs(home, client, {"PATH": os.environ["PATH"]})
    with LocalRuns(Settings(**{**SETTINGS.__dict__, **deployment}), jobs) as runs:
        yield runs


def put(local: LocalRuns, key: str, body: bytes) -> None:
    local.s3.put_object(Bucket=local.settings.bucket, Key=key, Body=body)


def source_archive(folder: Path, *scripts: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in scripts:
            archive.add(folder / name, arcname=name)
    return buffer.getvalue()


def outcomes(report: Any, ran: set[str]) -> dict[str, str]:
    return {stage: "succeeded" if stage in ran else "skipped" for stage in report.stages}


def test_the_reusable_frameworks_sample_imports_and_runs(tmp_path: Path) -> None:
    document = json.loads((SAMPLES / "reusable_framework_item.json").read_text())
    item, _ = importers.from_reusable_framework(document, {"your bucket": "{bucket}"})
    assert importers.unfilled(item, importers.REUSABLE_TOKENS) == []
    standins = STANDINS / "reusable"
    with local_runs(tmp_path, sagemaker_name_prefix="demo-") as local:  # its endpoint is demo-endpoint
        code = "terraform-demo/stepfunc/input/"  # its source_code_path, entrypoint_path and submit directory
        for name in ("bash_script.sh", "preprocessing.py"):
            put(local, code + name, (standins / name).read_bytes())
        put(local, code + "source.tar.gz", source_archive(standins, "script.py"))

        report = local.run(dynamodb_json.from_typed(dynamodb_json.to_typed(item)))

        assert report.status == "SUCCEEDED", (report.error, report.cause)
        # (a deploy is followed by monitoring: without a block, it removes what an earlier run set up)
        assert report.stages == outcomes(report, {"preprocessing", "training", "create_model", "deploy", "monitoring"})
        keys = [entry["Key"] for entry in local.s3.list_objects_v2(Bucket=local.settings.bucket)["Contents"]]
    # Training read both channels (script.py fails without either) and printed its metric.
    (log,) = tmp_path.glob("jobs/*-train-*/log.txt")
    assert "AE-at-50th-percentile:" in log.read_text()
    assert "terraform-demo/sklearn-dataset/test/california_housing_test.csv" in keys
    assert any(key.startswith("terraform-demo/training/output/") and key.endswith("model.tar.gz") for key in keys)


def test_the_aiops_example_imports_and_runs(tmp_path: Path) -> None:
    """Its scripts are one prefix (demo/scripts) every job reads as its code; its raw data is in AWS's
    public sample bucket, declared as a data bucket."""
    sample_data = "sagemaker-sample-data-us-east-1"
    config = yaml.safe_load((SAMPLES / "aiops_input.yaml").read_text())
    item, _ = importers.from_aiops(config, {"MLOPS_BUCKET": "{bucket}", "IMAGE_URI": "{image}"})
    standins = STANDINS / "aiops"
    with local_runs(tmp_path, data_buckets=sample_data) as local:
        local.s3.create_bucket(Bucket=sample_data)
        census = ["age,capital gains,income"] + [
            f"{20 + n},{n * 100},{'50000+.' if n % 3 else '- 50000.'}" for n in range(40)
        ]
        local.s3.put_object(Bucket=sample_data, Key="processing/census/census-income.csv", Body="\n".join(census))
        for name in ("preprocessing.py", "train.py", "evaluation.py", "inference.py"):
            put(local, f"demo/scripts/{name}", (standins / name).read_bytes())
        put(local, "demo/scripts/source.tar.gz", source_archive(standins, "inference.py"))

        report = local.run(item)

        assert report.status == "SUCCEEDED", (report.error, report.cause)
        ran = {"preprocessing", "training", "evaluation", "create_model", "batch_transform"}
        assert report.stages == outcomes(report, ran)
        bucket = local.settings.bucket
        # Evaluation read the model this run trained, and wrote its report where the item reads it.
        written = local.s3.get_object(Bucket=bucket, Key="demo/evaluation/output/evaluation.json")
        assert 0 <= json.loads(written["Body"].read())["accuracy"] <= 1
        scores = f"demo/batch-output/{report.execution_name}/test_features.csv.out"
        labels = local.s3.get_object(Bucket=bucket, Key=scores)["Body"].read().decode().split()
    assert labels and set(labels) <= {"0", "1"}
