"""Every committed file that is derived from code, written by `mlops-sfn generate` and checked by `--check`.

- contract.json: what the modules and the Python code must agree on (contract.py);
- statemachine/pipeline.asl.json and statemachine/role-policy.json: templates Terraform renders;
- dynamodb_items/typed/*.json: each item as DynamoDB JSON, because Terraform's table item takes
  that form and HCL cannot convert nested JSON to it;
- lambdas/functions.zip: the Lambda deployment package (compared by content, not by bytes, so a
  different zlib does not make it stale);
- sagemaker-artifacts/<pipeline>/code/sourcedir.tar.gz: the scripts as SageMaker's script mode
  takes them (compared by content too);
- src/mlops_sfn/local/iam_reference.json: the Service Authorization Reference's facts about the actions
  the local AWS checks (iam_reference.py);
- docs/*.md: their generated sections (the item reference, the Terraform inputs and outputs; see docs.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkout import ROOT
from ..core import contract, dynamodb_json
from ..core.item import TYPED_FOLDER, ItemFileError, item_files, load_item_file
from . import docs, iam_reference, package, policy, statemachine

ITEMS = ROOT / "dynamodb_items"


def typed_path(item_file: Path, folder: Path = ITEMS) -> Path:
    return folder / TYPED_FOLDER / item_file.relative_to(folder)


def typed_items(folder: Path = ITEMS) -> dict[Path, bytes]:
    """Typed copy path -> its text, for every item file in folder. Raises ItemFileError naming an unreadable file."""
    typed = {}
    for path in item_files(folder):
        try:
            item = load_item_file(path)
        except ItemFileError as error:
            raise ItemFileError(f"{path}: {error}") from error
        typed[typed_path(path, folder)] = (json.dumps(dynamodb_json.to_typed(item), indent=2) + "\n").encode()
    return typed


def files(items: Path = ITEMS) -> dict[Path, bytes]:
    return {
        contract.path(ROOT): contract.text().encode(),
        statemachine.TEMPLATE: statemachine.template_text().encode(),
        policy.POLICY_TEMPLATE: policy.policy_text().encode(),
        iam_reference.REFERENCE: iam_reference.text().encode(),
        **typed_items(items),
        package.PACKAGE: package.build(),
        **package.source_archives(),
        **docs.pages(),
    }


def _same(path: Path, data: bytes) -> bool:
    if not path.exists():
        return False
    if path == package.PACKAGE:
        return package.read(path.read_bytes()) == package.read(data)
    if path.name == package.SOURCE_ARCHIVE:
        return package.read_tar(path.read_bytes()) == package.read_tar(data)
    return path.read_bytes() == data


def _stale(wanted: dict[Path, bytes], items: Path) -> list[Path]:
    leftovers = set((items / TYPED_FOLDER).rglob("*.json")) - set(wanted)
    return sorted([path for path, data in wanted.items() if not _same(path, data)] + list(leftovers))


def stale(items: Path = ITEMS) -> list[Path]:
    """Generated files that are missing or differ from what the code produces, and typed items left over."""
    return _stale(files(items), items)


def write(items: Path = ITEMS) -> list[Path]:
    """Writes what is stale, removes typed items whose source is gone; returns the paths touched."""
    wanted = files(items)
    touched = _stale(wanted, items)
    for path in touched:
        if path in wanted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wanted[path])
        else:
            path.unlink()
    return touched
