"""The Lambda deployment package: one zip for every function, built without pip.

The Lambda runtime ships boto3, and the functions need nothing else, so the zip holds each
handler (`router/handler.py`, ...: one per `contract.HANDLERS`) and the
`mlops_sfn.core` package, exactly: what runs in Lambda lives there and imports nothing else of
ours (a test keeps it so). The zip is deterministic (fixed timestamps and modes, sorted entries),
so Terraform's source_code_hash only changes when a file in it does. It is committed (Terraform
Cloud's VCS runs have no build step) and `mlops-sfn generate --check` fails when it no longer
matches the sources.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

from ..checkout import ROOT
from ..core import contract

PACKAGE = ROOT / "lambdas" / "functions.zip"
HANDLERS = {name: ROOT / "lambdas" / name / "handler.py" for name in contract.HANDLERS}
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/mlops_sfn
CORE = PACKAGE_ROOT / "core"
_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no build time leaks in


def contents() -> dict[str, bytes]:
    """Zip path -> file bytes: the handlers, and mlops_sfn.core with its data (e.g. the item schema)."""
    files = {f"{name}/handler.py": path.read_bytes() for name, path in HANDLERS.items()}
    files["mlops_sfn/__init__.py"] = (PACKAGE_ROOT / "__init__.py").read_bytes()
    for path in sorted(CORE.rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            files[f"mlops_sfn/core/{path.relative_to(CORE).as_posix()}"] = path.read_bytes()
    return dict(sorted(files.items()))


def build(files: dict[str, bytes] | None = None) -> bytes:
    files = contents() if files is None else files
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
            info.create_system = 3  # Unix, so the mode below is read
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def code_sha256(data: bytes) -> str:
    """What Lambda reports as CodeSha256 and Terraform's filebase64sha256 computes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def read(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- SageMaker source archives --------------------------------------------------------------------

ARTIFACTS = ROOT / "sagemaker-artifacts"
SOURCE_ARCHIVE = "sourcedir.tar.gz"


def source_archives(artifacts: Path = ARTIFACTS) -> dict[Path, bytes]:
    """`<pipeline>/code/sourcedir.tar.gz` for every code folder with scripts: what training's
    sagemaker_submit_directory and a model's SAGEMAKER_SUBMIT_DIRECTORY point at (SageMaker's script
    mode takes a tar.gz). It holds the folder's *.py files, like the SageMaker SDK's source_dir."""
    archives = {}
    for code in sorted(path.parent for path in artifacts.glob("*/code/*.py")):
        files = {path.name: path.read_bytes() for path in sorted(code.glob("*.py"))}
        archives[code / SOURCE_ARCHIVE] = build_tar(files)
    return archives


def build_tar(files: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz: sorted entries, no times, owners or build-machine modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def read_tar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }
