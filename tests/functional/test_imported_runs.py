"""An imported upstream sample is a pipeline that runs: imported with its tokens filled, it runs
locally with jobs that execute stand-in scripts reading what the upstream scripts read."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_sfn import dynamodb_json, importers
from mlops_sfn.local import REGION
from mlops_sfn.local.harness import SETTINGS, LocalRuns
from mlops_sfn.local.jobs import ScriptJobs
from mlops_sfn.plan import Settings
from mlops_sfn.statemachine import ROOT

pytestmark = pytest.mark.functional

STANDINS = ROOT / "tests" / "import" / "standins"


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalRuns]:
    """A local AWS whose jobs run their scripts (the harness simulates them otherwise); the sample's
    endpoint is named demo-endpoint, so the deployment's prefix is demo-."""

    def client(service: str, region: str = REGION) -> Any:
        return boto3.client(service, region_name=region)  # served by the in-process mock

    jobs = ScriptJobs(tmp_path, client, {"PATH": os.environ["PATH"]})
    with LocalRuns(Settings(**{**SETTINGS.__dict__, "sagemaker_name_prefix": "demo-"}), jobs) as runs:
        yield runs


def put(local: LocalRuns, key: str, body: bytes) -> None:
    local.s3.put_object(Bucket=local.settings.bucket, Key=key, Body=body)


def source_archive(*scripts: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in scripts:
            archive.add(STANDINS / name, arcname=name)
    return buffer.getvalue()


def test_the_reusable_frameworks_sample_imports_and_runs(local: LocalRuns, tmp_path: Path) -> None:
    document = json.loads((ROOT / "tests" / "import" / "reusable_framework_item.json").read_text())
    item, _ = importers.from_reusable_framework(document, {"your bucket": "{bucket}"})
    assert importers.unfilled(item, importers.REUSABLE_TOKENS) == []
    code = "terraform-demo/stepfunc/input/"  # its source_code_path, entrypoint_path and submit directory
    for name in ("bash_script.sh", "preprocessing.py"):
        put(local, code + name, (STANDINS / name).read_bytes())
    put(local, code + "source.tar.gz", source_archive("script.py"))

    report = local.run(dynamodb_json.from_typed(dynamodb_json.to_typed(item)))

    assert report.status == "SUCCEEDED", (report.error, report.cause)
    assert report.stages == {
        "preprocessing": "succeeded",
        "training": "succeeded",
        "tuning": "skipped",
        "evaluation": "skipped",
        "register": "skipped",
        "approval": "skipped",
        "create_model": "succeeded",
        "batch_transform": "skipped",
        "deploy": "succeeded",
    }
    # Training read both channels (script.py fails without either) and printed its metric.
    (log,) = [path for path in tmp_path.glob("jobs/*-train-*/log.txt")]
    assert "AE-at-50th-percentile:" in log.read_text()
    keys = [entry["Key"] for entry in local.s3.list_objects_v2(Bucket=local.settings.bucket)["Contents"]]
    assert "terraform-demo/sklearn-dataset/test/california_housing_test.csv" in keys
    assert any(key.startswith("terraform-demo/training/output/") and key.endswith("model.tar.gz") for key in keys)
