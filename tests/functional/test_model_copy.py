"""The model copy: the best tuning job's model reaches the run folder whatever its size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlops_sfn.core import model_copy
from mlops_sfn.core.stages import STAGES
from mlops_sfn.local import limits
from mlops_sfn.local.harness import LocalRuns
from tests.conftest import load_item

pytestmark = pytest.mark.functional

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def local() -> Iterator[LocalRuns]:
    with LocalRuns() as runs:
        yield runs


def test_a_model_above_copy_objects_limit_is_copied_in_parts(local: LocalRuns, monkeypatch: pytest.MonkeyPatch) -> None:
    """With CopyObject's limit lowered to 6 MiB, a 12 MiB model copies in 5 MiB parts (S3's smallest)."""
    monkeypatch.setattr(limits, "MAX_COPY_SOURCE_BYTES", 6 * MIB)
    bucket = local.settings.bucket
    body = bytes(range(256)) * (12 * MIB // 256)
    local.s3.put_object(Bucket=bucket, Key="tuning/job-007/output/model.tar.gz", Body=body)
    source = f"s3://{bucket}/tuning/job-007/output/model.tar.gz"
    target = f"s3://{bucket}/runs/p/run-1/tuning/best/model.tar.gz"

    size = model_copy.copy(source, target, s3=local.s3, threshold=5 * MIB, part=5 * MIB)

    copied = local.s3.get_object(Bucket=bucket, Key="runs/p/run-1/tuning/best/model.tar.gz")
    assert size == len(body) and copied["Body"].read() == body
    assert copied["ETag"].strip('"').endswith("-3")  # a multipart object of 3 parts
    # The deployed thresholds keep every model above CopyObject's real limit on the multipart path.
    assert model_copy.THRESHOLD_BYTES < 5 * 1024**3 and model_copy.PART_BYTES <= 5 * 1024**3


def test_a_small_model_is_one_copy(local: LocalRuns) -> None:
    bucket = local.settings.bucket
    local.s3.put_object(Bucket=bucket, Key="tuning/job-001/output/model.tar.gz", Body=b"model")
    result = model_copy.copy(
        f"s3://{bucket}/tuning/job-001/output/model.tar.gz",
        f"s3://{bucket}/runs/p/run-2/tuning/best/model.tar.gz",
        s3=local.s3,
    )
    copied = local.s3.get_object(Bucket=bucket, Key="runs/p/run-2/tuning/best/model.tar.gz")
    assert result == 5 and copied["Body"].read() == b"model" and "-" not in copied["ETag"]


def test_a_missing_model_names_where_it_was_expected(local: LocalRuns) -> None:
    bucket = local.settings.bucket
    source = f"s3://{bucket}/tuning/job-404/output/model.tar.gz"
    with pytest.raises(model_copy.ModelMissing, match=f"no model at {source}: the best training job"):
        model_copy.copy(source, f"s3://{bucket}/runs/p/run-3/tuning/best/model.tar.gz", s3=local.s3)


def tuning_only() -> dict[str, Any]:
    item = load_item()
    for stage in STAGES:
        item["stages"][stage]["run"] = stage == "tuning"
    del item["quality_gate"]
    return item


def test_a_tuning_run_whose_model_is_above_copy_objects_limit_succeeds(
    local: LocalRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every local model is larger than 16 bytes: a CopyObject of it is refused, the function's
    multipart copy (from 1 byte, here) is not."""
    monkeypatch.setattr(limits, "MAX_COPY_SOURCE_BYTES", 16)
    monkeypatch.setattr(model_copy, "THRESHOLD_BYTES", 1)
    report = local.run(tuning_only())
    assert report.status == "SUCCEEDED", report.cause
    key = f"runs/{tuning_only()['consumption_pipeline_name']}/{report.execution_name}/tuning/best/model.tar.gz"
    copied = local.s3.head_object(Bucket=local.settings.bucket, Key=key)
    assert copied["ETag"].strip('"').endswith("-1") and copied["ContentLength"] > 16  # one part, copied as parts


def test_without_the_multipart_path_the_same_run_fails_at_tuning_with_s3s_refusal(
    local: LocalRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_COPY_SOURCE_BYTES", 16)
    report = local.run(tuning_only())
    assert report.status == "FAILED" and report.error == "tuning.InvalidRequest", (report.error, report.cause)
    assert "larger than the maximum allowable size for a copy source: 16" in report.cause


@pytest.mark.parametrize(("code", "status"), [("404", 404), ("403", 403)])
def test_a_missing_model_is_named_whether_s3_answers_404_or_403(code: str, status: int) -> None:
    # The function's role has no s3:ListBucket, so on AWS a missing key answers 403, not 404
    # (S3 API reference, HeadObject, "Permissions"); botocore names a HEAD error by its status.
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stubbed:
        stubbed.add_client_error("head_object", service_error_code=code, http_status_code=status)
        with pytest.raises(model_copy.ModelMissing, match=r"no model at s3://b/tuning/j/output/model\.tar\.gz"):
            model_copy.copy("s3://b/tuning/j/output/model.tar.gz", "s3://b/runs/p/r/tuning/best/model.tar.gz", s3=s3)
        stubbed.add_client_error("head_object", service_error_code="500", http_status_code=500)
        with pytest.raises(s3.exceptions.ClientError):  # anything else is not "missing"
            model_copy.copy("s3://b/tuning/j/output/model.tar.gz", "s3://b/runs/p/r/tuning/best/model.tar.gz", s3=s3)
