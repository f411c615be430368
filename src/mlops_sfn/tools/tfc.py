"""Terraform Cloud API-driven runs: `mlops-sfn tfc plan` and `mlops-sfn tfc apply`, used by GitLab CI.

Nothing here names an organisation or a workspace: they come from the environment (CI variables):
  TFC_TOKEN         a team or user API token (masked, protected)
  TFC_ORGANIZATION  the organisation
  TFC_WORKSPACE     the workspace (CI sets it per environment from TFC_WORKSPACE_DEV/UAT/PROD)
  TFC_HOSTNAME      optional, default app.terraform.io (Terraform Enterprise: its host name)
A run uploads the repository's tracked files as a configuration version (the workspace's working
directory, e.g. `deploy`, says which folder is the root), then:
- `plan`: a speculative plan (plan only, never applied), for merge requests and before promotion;
- `apply`: a run that is applied once its plan (and any policy check) finishes; "no changes"
  ends there.
Each prints the run's URL and waits for its end; exit 0 when it planned or applied, 1 otherwise.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .statemachine import ROOT

DEFAULT_HOSTNAME = "app.terraform.io"
# Run states (Terraform Cloud API, "Run States"): where a run waits for us, and where it ends.
CONFIRMABLE = {"planned", "cost_estimated", "policy_checked", "policy_override"}
SUCCEEDED = {"planned_and_finished", "applied"}
FAILED = {"errored", "discarded", "canceled", "force_canceled", "policy_soft_failed"}
EXCLUDED = (".git/", ".venv", ".toolchain/", ".mlops-local/", ".terraform/")


class TfcError(Exception):
    """A missing setting, an API error, or a run that did not succeed; the message says which."""


@dataclass(frozen=True)
class Settings:
    token: str
    organization: str
    workspace: str
    hostname: str = DEFAULT_HOSTNAME
    address: str | None = None  # the API's base URL when it is not https://<hostname> (tests)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, workspace: str | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {
            "TFC_TOKEN": environ.get("TFC_TOKEN") or environ.get("TF_API_TOKEN"),
            "TFC_ORGANIZATION": environ.get("TFC_ORGANIZATION"),
            "TFC_WORKSPACE": workspace or environ.get("TFC_WORKSPACE"),
        }
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise TfcError(f"set {', '.join(missing)} (CI variables; README, 'Delivery')")
        return cls(
            token=str(values["TFC_TOKEN"]),
            organization=str(values["TFC_ORGANIZATION"]),
            workspace=str(values["TFC_WORKSPACE"]),
            hostname=environ.get("TFC_HOSTNAME") or DEFAULT_HOSTNAME,
            address=environ.get("TFC_ADDRESS"),
        )

    @property
    def base(self) -> str:
        return (self.address or f"https://{self.hostname}").rstrip("/")


class Api:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.settings.base}/api/v2{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={
                "Authorization": f"Bearer {self.settings.token}",
                "Content-Type": "application/vnd.api+json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise TfcError(f"{method} {path}: HTTP {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise TfcError(f"{method} {path}: {error.reason}") from None
        result: dict[str, Any] = json.loads(text) if text else {}
        return result

    def upload(self, url: str, data: bytes) -> None:
        request = urllib.request.Request(
            url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"}
        )
        try:
            with urllib.request.urlopen(request, timeout=300):
                pass
        except urllib.error.URLError as error:
            raise TfcError(f"uploading the configuration: {error}") from None


def tracked_files(root: Path) -> list[str]:
    """The repository's files as git tracks them; without git, every file outside the excluded folders."""
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
        return sorted(name for name in listed.splitlines() if name and (root / name).is_file())
    except (OSError, subprocess.CalledProcessError):
        names = (path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
        return sorted(name for name in names if not any(part in f"/{name}" for part in EXCLUDED))


def configuration(root: Path = ROOT) -> bytes:
    """The configuration version's tar.gz: what the workspace plans (its working directory inside)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in tracked_files(root):
            archive.add(root / name, arcname=name, recursive=False)
    return buffer.getvalue()


def run(
    settings: Settings,
    *,
    apply: bool,
    message: str,
    root: Path = ROOT,
    poll_seconds: float = 5.0,
    timeout: float = 3600.0,
    say: Callable[[str], None] = print,
) -> str:
    """Plan (speculative) or plan and apply; returns the final run status. TfcError unless it succeeded."""
    api = Api(settings)
    organization, name = settings.organization, settings.workspace
    workspace = api.call("GET", f"/organizations/{organization}/workspaces/{name}")["data"]
    version = api.call(
        "POST",
        f"/workspaces/{workspace['id']}/configuration-versions",
        {
            "data": {
                "type": "configuration-versions",
                "attributes": {"auto-queue-runs": False, "speculative": not apply},
            }
        },
    )["data"]
    api.upload(version["attributes"]["upload-url"], configuration(root))
    deadline = time.monotonic() + timeout
    while api.call("GET", f"/configuration-versions/{version['id']}")["data"]["attributes"]["status"] != "uploaded":
        _wait(deadline, poll_seconds, "the configuration upload")
    created = api.call(
        "POST",
        "/runs",
        {
            "data": {
                "type": "runs",
                "attributes": {"message": message, "plan-only": not apply},
                "relationships": {
                    "workspace": {"data": {"type": "workspaces", "id": workspace["id"]}},
                    "configuration-version": {"data": {"type": "configuration-versions", "id": version["id"]}},
                },
            }
        },
    )["data"]
    url = f"https://{settings.hostname}/app/{organization}/workspaces/{name}/runs/{created['id']}"
    say(f"{'apply' if apply else 'speculative plan'} in {organization}/{name}: {url}")
    confirmed = False
    while True:
        current = api.call("GET", f"/runs/{created['id']}")["data"]
        status = current["attributes"]["status"]
        if status in SUCCEEDED:
            say(f"run {created['id']}: {status}")
            return str(status)
        if status in FAILED:
            raise TfcError(f"run {created['id']} ended {status}: {url}")
        if apply and not confirmed and status in CONFIRMABLE and current["attributes"]["actions"]["is-confirmable"]:
            api.call("POST", f"/runs/{created['id']}/actions/apply", {"comment": message})
            confirmed = True
            say(f"run {created['id']}: {status}, applying")
        if status == "planned" and not apply:
            say(f"run {created['id']}: planned")
            return str(status)
        _wait(deadline, poll_seconds, f"run {created['id']} ({status})")


def _wait(deadline: float, seconds: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise TfcError(f"gave up waiting for {what}")
    time.sleep(seconds)


def main(command: str, workspace: str | None, message: str | None) -> int:
    try:
        settings = Settings.from_environment(workspace=workspace)
        text = message or os.environ.get("CI_COMMIT_TITLE") or f"mlops-sfn tfc {command}"
        run(settings, apply=command == "apply", message=text)
    except TfcError as error:
        print(f"mlops-sfn tfc {command}: {error}", file=sys.stderr)
        return 1
    return 0
