"""Data capture on this machine: an endpoint whose config enables DataCaptureConfig writes each
sampled invocation as SageMaker does ("Data capture": one JSON line per request under
<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/), and a monitoring execution reads them back.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from .analyzer import read_rows


def capture_record(
    body: str, content_type: str | None, answer: str, answer_type: str, modes: list[str], now: datetime
) -> dict[str, Any]:
    """One captured invocation, as SageMaker writes it ("Data capture")."""
    data: dict[str, Any] = {}
    if "Input" in modes:
        data["endpointInput"] = {
            "observedContentType": content_type or "text/csv",
            "mode": "INPUT",
            "data": body,
            "encoding": "CSV",
        }
    if "Output" in modes:
        data["endpointOutput"] = {
            "observedContentType": answer_type,
            "mode": "OUTPUT",
            "data": answer,
            "encoding": "CSV",
        }
    return {
        "captureData": data,
        "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": "0",
    }


def capture(
    s3: Any,
    config: dict[str, Any],
    endpoint: str,
    variant: str,
    call: tuple[str, str | None, str, str],
    now: datetime | None = None,
) -> str | None:
    """Write one invocation (body, content type, answer, answer type) when the endpoint config
    captures and the sampling draws it; returns the object's URI."""
    if not config or not config.get("EnableCapture", True):
        return None
    if random.uniform(0, 100) >= float(config.get("InitialSamplingPercentage", 100)):
        return None
    now = now or datetime.now(UTC)
    modes = [option["CaptureMode"] for option in config.get("CaptureOptions", [])]
    modes = ["Input", "Output"] if "InputAndOutput" in modes else modes
    record = capture_record(*call, modes=modes, now=now)
    bucket, _, prefix = config["DestinationS3Uri"].removeprefix("s3://").partition("/")
    name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    key = f"{prefix.rstrip('/')}/{endpoint}/{variant}/{now:%Y/%m/%d/%H}/{name}"
    s3.put_object(Bucket=bucket, Key=key.lstrip("/"), Body=(json.dumps(record) + "\n").encode())
    return f"s3://{bucket}/{key.lstrip('/')}"


# --- A monitoring execution -------------------------------------------------------------------------


def _get(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _captured_rows(s3: Any, destination: str, endpoint: str, since: datetime) -> list[list[str]]:
    """The captured requests since `since`: the output's columns first, then the input's (the
    analyzer's output_columns_position START), one row per CSV line."""
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    rows: list[list[str]] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix.rstrip('/')}/{endpoint}/")
    for page in pages:
        for entry in page.get("Contents", []):
            if entry["LastModified"] < since:
                continue
            for line in _get(s3, f"s3://{bucket}/{entry['Key']}").decode().splitlines():
                record = json.loads(line)["captureData"]
                inputs = read_rows(record.get("endpointInput", {}).get("data", ""))
                outputs = read_rows(record.get("endpointOutput", {}).get("data", "")) or [[] for _ in inputs]
                rows += [out + row for out, row in zip(outputs, inputs, strict=False)]
    return rows
