"""What a run may read from an upload: the files its manifest lists, with the ETags it lists.

An upload that completes on a manifest (`trigger.complete_on: ["manifest"]`) is read only once every
object the manifest lists is in the bucket with its listed ETag (`problem`). Every run that reads an
upload is held to it, whatever started it: the upload's own event (the router), a drift alarm or a
schedule (the newest upload that passes, `latest_verified`), and a rerun (the earlier run's upload,
checked again: `mlops-sfn rerun`). Only the standard library and boto3 are needed (the router uses it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .problems import Error
from .triggers import completes_upload, shorten

MANIFEST_LIMIT = 1 << 20  # bytes: a manifest listing about 10,000 objects
SUPERSEDED = "was replaced after this event"  # a manifest uploaded again: its older event is skipped
LOOKBACK = 10  # uploads a drift or scheduled run looks back through for one that passes the check
PLACEHOLDER = "{upload_prefix}"


class NoVerifiedUpload(Error):
    """No upload under the prefix passes its manifest's check: the run would read unverified data."""


@dataclass(frozen=True)
class Latest:
    """The upload a run not started by an upload reads: the key that completed it (None: the item has
    no upload prefix, or no upload yet with a suffix marker), and the newer ones passed over and why."""

    key: str | None
    etag: str | None = None  # the completing object's, so a rerun can check it is still the same one
    passed_over: list[tuple[str, str]] = field(default_factory=list)


def reads_upload(item: dict[str, Any]) -> bool:
    """Whether the item's stages name the upload's folder, so a run must know which upload it reads."""
    return PLACEHOLDER in json.dumps(item.get("stages", {}))


def manifest_files(body: bytes, folder: str) -> dict[str, str] | str:
    """{key: ETag} of the objects a manifest lists, or what is wrong with it.

    A manifest is {"files": [{"key": ..., "etag": ...}, ...]}; a key is the object's key in the bucket
    or its path relative to the manifest's folder.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    files = document.get("files") if isinstance(document, dict) else None
    shape = 'expected JSON {"files": [{"key": "<key>", "etag": "<ETag>"}, ...]}'
    if not isinstance(files, list):
        return f"not a manifest: {shape}"
    listed: dict[str, str] = {}
    for index, entry in enumerate(files):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(name), str) for name in ("key", "etag")):
            return f"files[{index}]: {shape}"
        key = entry["key"] if entry["key"].startswith(folder) else folder + entry["key"]
        listed[key] = entry["etag"].strip('"').lower()
    return listed


def problem(s3: Any, bucket: str, key: str, etag: str | None) -> str | None:
    """Why the upload the manifest `key` completes is not there as listed (what is wrong, not what to do:
    that depends on who asks), or None when every listed object exists with its listed ETag. A marker
    that arrives before its data (or over an older upload's) must not start a run on what happens to
    be in the folder. `etag`: the manifest's own, as its event announced it (one uploaded again since
    is SUPERSEDED)."""
    from botocore.exceptions import ClientError

    folder, _, name = key.rpartition("/")
    folder = folder + "/" if folder else ""
    request: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if etag:  # the object the event announced, not one uploaded since (an HTTP entity tag is quoted)
        request["IfMatch"] = etag if etag.startswith('"') else f'"{etag}"'
    try:
        manifest = s3.get_object(**request)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return f"the manifest {name} is no longer in the bucket"
        if code in ("PreconditionFailed", "412"):
            return f"{name} {SUPERSEDED}"
        raise
    if manifest.get("ContentLength", 0) > MANIFEST_LIMIT:
        return f"{name} is {manifest['ContentLength']} bytes; a manifest may be at most {MANIFEST_LIMIT} bytes"
    listed = manifest_files(manifest["Body"].read(), folder)
    if isinstance(listed, str):
        return f"{name}: {listed}"
    # Only the folders the manifest lists files in, each without its subfolders: an upload's root may
    # also hold earlier uploads, which need not be read.
    stored: dict[str, str] = {}
    for listed_folder in sorted({listed_key.rpartition("/")[0] + "/" for listed_key in listed}):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=listed_folder, Delimiter="/")
        for page in pages:
            stored |= {entry["Key"]: entry["ETag"].strip('"').lower() for entry in page.get("Contents", [])}
    wrong = [
        f"{shorten(listed_key, 200)} ({'missing' if listed_key not in stored else 'ETag differs'})"
        for listed_key, listed_etag in listed.items()
        if stored.get(listed_key) != listed_etag
    ]
    if not wrong:
        return None
    return (
        f"{name} lists {len(wrong)} object(s) not in the bucket as listed: {'; '.join(wrong[:5])}"
        f"{'; ...' if len(wrong) > 5 else ''}"
    )


def newest_first(s3: Any, bucket: str, prefix: str, wanted: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The objects under the prefix whose key is wanted, newest first; in the same second (S3 lists
    times to the second), the greater key first, e.g. the later yyyy/mm/dd/hh folder."""
    found = [
        entry
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for entry in page.get("Contents", [])
        if wanted(entry["Key"])
    ]
    return sorted(found, key=lambda entry: (entry["LastModified"], entry["Key"]), reverse=True)


def latest_verified(s3: Any, bucket: str, trigger_config: dict[str, Any]) -> Latest:
    """The newest upload under the item's trigger prefix whose files are still those its manifest lists
    (the check the upload's own run passed; an upload the router refused never passes it), looking back
    LOOKBACK uploads; with a suffix marker (nothing to check), the newest. NoVerifiedUpload when no
    upload passes; botocore's ClientError when the prefix cannot be listed."""
    prefix, complete_on = trigger_config.get("prefix"), trigger_config.get("complete_on")
    if not prefix or not complete_on:
        return Latest(None)
    uploads = newest_first(s3, bucket, prefix, lambda key: completes_upload(trigger_config, key))
    if "manifest" not in complete_on:
        return Latest(str(uploads[0]["Key"]), uploads[0]["ETag"].strip('"')) if uploads else Latest(None)
    passed_over: list[tuple[str, str]] = []
    for entry in uploads[:LOOKBACK]:
        etag = entry["ETag"].strip('"')
        why = problem(s3, bucket, entry["Key"], etag)
        if why is None:
            return Latest(str(entry["Key"]), etag, passed_over)
        passed_over.append((str(entry["Key"]), why))
    looked = min(len(uploads), LOOKBACK)
    raise NoVerifiedUpload(
        f"no upload under {prefix} passes its manifest's check (of the {looked} newest): the run would train"
        " on data nobody verified; upload the data again, then replay this event"
    )


@dataclass(frozen=True)
class Uploaded:
    manifest: str  # its key
    etag: str  # its ETag, as its event will announce it
    files: int
    bytes: int


def put(s3: Any, bucket: str, prefix: str, folder: Path, manifest: str = "manifest.json", **about: Any) -> Uploaded:
    """Every file under `folder` uploaded under `prefix`, then the manifest listing each with its ETag
    (the MD5 of a single-part upload), last: the upload an event of the manifest completes. `about`:
    other fields for the manifest (ignored by the check)."""
    listed: list[dict[str, Any]] = []
    size = 0
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        data = path.read_bytes()
        key = prefix + path.relative_to(folder).as_posix()
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        listed.append({"key": key, "etag": hashlib.md5(data, usedforsecurity=False).hexdigest(), "bytes": len(data)})
        size += len(data)
    body = (json.dumps({**about, "files": listed}, indent=2) + "\n").encode()
    etag = str(s3.put_object(Bucket=bucket, Key=prefix + manifest, Body=body)["ETag"]).strip('"')
    return Uploaded(prefix + manifest, etag, len(listed), size)
