"""The best tuning job's model, copied to where the run's {model_data_url} points.

The run's later stages are planned before it starts, so they name the model's place in the run
folder; the best job is known only when tuning ends. S3's CopyObject refuses a source above 5 GB
("to copy an object greater than 5 GB, you must use the multipart upload Upload Part - Copy API",
S3 API reference, CopyObject), and a model can be larger. So the state machine calls this small
Lambda (lambdas/model_copy/handler.py), whose managed copy uses UploadPartCopy in parts from
THRESHOLD_BYTES on, up to S3's 5 TB object limit, and a single CopyObject below it.
"""

from __future__ import annotations

from typing import Any

from .problems import Error

# How S3 answers a read of a missing key: 404 (NoSuchKey; "404" for HEAD) to a principal that may
# s3:ListBucket, and 403 (AccessDenied; "403" for HEAD) to one that may not (S3 API reference,
# GetObject and HeadObject, "Permissions"), as the functions' roles may not: both mean "not there".
MISSING = ("NoSuchKey", "404", "NotFound", "AccessDenied", "403")
_MIB = 1024**2
# Parts of 256 MiB copied 8 at a time: a 50 GB model is about 200 parts; s3transfer raises the part
# size itself when a copy would need more than S3's 10,000 parts.
THRESHOLD_BYTES = 256 * _MIB
PART_BYTES = 256 * _MIB
CONCURRENCY = 8


class ModelMissing(Error):
    """The best training job left no model.tar.gz where SageMaker writes it (the run fails at tuning)."""


def _location(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def copy(source: str, target: str, s3: Any = None, threshold: int | None = None, part: int | None = None) -> int:
    """Copy the object at the s3:// URL `source` to `target` (in parts from `threshold` bytes, default
    THRESHOLD_BYTES, of `part` bytes, default PART_BYTES); returns its size in bytes."""
    import boto3  # here, so that importing the module needs no AWS SDK
    from boto3.s3.transfer import TransferConfig

    s3 = s3 or boto3.client("s3")
    bucket, key = _location(source)
    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in MISSING:
            raise
        raise ModelMissing(
            f"no model at {source}: the best training job must leave model.tar.gz there "
            "(SageMaker writes <S3OutputPath>/<job>/output/model.tar.gz)"
        ) from None
    target_bucket, target_key = _location(target)
    config = TransferConfig(
        multipart_threshold=threshold or THRESHOLD_BYTES,
        multipart_chunksize=part or PART_BYTES,
        max_concurrency=CONCURRENCY,
    )
    s3.copy({"Bucket": bucket, "Key": key}, target_bucket, target_key, Config=config)
    return size


def handler(event: dict[str, Any], context: Any, s3: Any = None) -> dict[str, Any]:
    """The model-copy Lambda's handler (lambdas/model_copy/handler.py exports this one).
    Event: {"source": s3:// URL of the best job's model, "target": s3:// URL of the run's model};
    returns {"model_data_url": target, "bytes": size}. `s3`: the client to copy with (Lambda gives
    none: the default one)."""
    size = copy(event["source"], event["target"], s3)
    return {"model_data_url": event["target"], "bytes": size}
