"""`mlops-sfn local up | down`: the framework's Terraform applied into a local AWS that keeps running.

Everything lives under one folder (`HOME`, `.mlops-local/` in the project; `down` removes it):
  server.log, tls/         the local AWS (a moto server with the local runtime) and its certificate
  terraform/               the staged root (`stack.stage`) and its state
  runtime/                 the functions' containers, the jobs' folders, their logs, and the
                           guardrails `up --deny/--scp` set (guardrails.json, read by the server)
  deployment.json          endpoint, certificate, server pid, the Terraform outputs, the guardrails
  terraform-<account>/, deployment-<account>.json
                           a second deployment, in another account of the same local AWS (`apply`;
                           `local demo --promote` makes a production one)
`up` starts the server in a session of its own, so it outlives the command, and applies the real
root with the offline toolchain; a second `up` finds it running and does nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..checkout import ROOT
from ..core.problems import Error
from ..tools import toolchain
from . import accounts, stack
from .server import GUARDRAILS

HOME = ROOT / ".mlops-local"


class DeploymentError(Error):
    """`up` failed, or nothing is up; the message says where to look."""


@dataclass
class Deployment:
    home: str
    endpoint: str
    cert: str
    pid: int
    outputs: dict[str, Any]
    # policy documents every call a run makes must also be allowed by (task_permissions.guardrail)
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    account: str = accounts.DEFAULT  # the local AWS's account it is deployed in (`apply`)
    # the access key and secret a process signs with to act in that account (a local user's, not a secret)
    credentials: list[str] = field(default_factory=lambda: list(stack.DEFAULT_KEY))

    def reach(self) -> dict[str, str]:
        """The environment the AWS CLI or an SDK (and any mlops-sfn command) reaches this deployment with."""
        access_key, secret_key = self.credentials
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CA_BUNDLE": self.cert,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key,
            "AWS_DEFAULT_REGION": stack.CREDENTIALS["AWS_DEFAULT_REGION"],
        }

    def client(self, service: str, config: Any = None) -> Any:
        return accounts.in_account(stack.client(service, self.endpoint, Path(self.cert), config), self.account)

    @property
    def runtime(self) -> Path:
        return Path(self.home) / "runtime"

    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        try:
            self.client("sts").get_caller_identity()
        except Exception:
            return False
        return True


def _record(home: Path, account: str = accounts.DEFAULT) -> Path:
    return home / ("deployment.json" if account == accounts.DEFAULT else f"deployment-{account}.json")


def _folder(home: Path, account: str) -> Path:
    """The staged root of the deployment in `account`."""
    return home / ("terraform" if account == accounts.DEFAULT else f"terraform-{account}")


def load(home: Path = HOME, account: str = accounts.DEFAULT) -> Deployment | None:
    """The deployment `up` (or `apply`, for another account) made in `home`, if its server still runs."""
    try:
        deployment = Deployment(**json.loads(_record(home, account).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return deployment if deployment.running() else None


def _terraform(tools: toolchain.Toolchain, folder: Path, log: Path, *args: str) -> str:
    environment = stack.terraform_environment(tools)
    with log.open("ab") as output:
        output.write(f"$ terraform {' '.join(args)}\n".encode())
        finished = subprocess.run(
            [str(tools.terraform), *args], cwd=folder, env=environment, capture_output=True, check=False
        )
        output.write(finished.stdout + finished.stderr)
    if finished.returncode != 0:
        tail = "\n".join(finished.stderr.decode(errors="replace").strip().splitlines()[-15:])
        raise DeploymentError(f"terraform {args[0]} failed (full output: {log}):\n{tail}")
    return finished.stdout.decode()


def up(
    home: Path = HOME,
    say: Callable[[str], None] = print,
    variables: dict[str, Any] | None = None,
    guardrails: Sequence[Mapping[str, Any]] | None = None,
) -> Deployment:
    """Start the local AWS and apply the root into it; returns the running deployment. `guardrails`
    (policy documents, task_permissions.guardrail) apply to every call its runs make; None keeps a
    running deployment's, or starts one without."""
    wanted = None if guardrails is None else [dict(policy) for policy in guardrails]
    existing = load(home)
    if existing:
        if wanted is not None and wanted != existing.guardrails:
            raise DeploymentError(
                "the local AWS is already up with other guardrails; they are set when it starts: "
                "mlops-sfn local down, then mlops-sfn local up with the new ones"
            )
        held = ", with the guardrails it started with" if existing.guardrails else ""
        say(f"already up: {existing.endpoint}{held} (mlops-sfn local down to remove it)")
        return existing
    if _record(home).exists():  # a previous server died without `down`: keep its evidence, start clean
        kept = archive(home)
        say(f"the previous local AWS stopped without `mlops-sfn local down`; its logs and job folders: {kept}")
    started = time.monotonic()
    toolchain.ensure()  # before the server starts: a missing toolchain is told first
    (home / "runtime").mkdir(parents=True, exist_ok=True)
    (home / "runtime" / GUARDRAILS).write_text(json.dumps(wanted or [], indent=2) + "\n")
    server = stack.MotoServer(home / "server.log", home=home / "runtime", detach=True).start()
    try:
        say(f"local AWS: {server.endpoint} (log: {server.log})")
        assert server.process is not None
        deployment = Deployment(str(home), server.endpoint, str(server.cert), server.process.pid, {}, wanted or [])
        deployment = apply(deployment, variables or {}, say=say)
    except BaseException:
        server.stop()
        raise
    outputs = deployment.outputs
    say(f"up in {time.monotonic() - started:.1f} s: bucket {outputs['bucket_name']}, table {outputs['table_name']}")
    if wanted:
        say("guardrails: every call its runs make must also be allowed by --deny/--scp")
    return deployment


def apply(
    running: Deployment, variables: dict[str, Any], account: str = accounts.DEFAULT, say: Callable[[str], None] = print
) -> Deployment:
    """The root applied into the running local AWS with `variables` on top of those it was last applied
    with (stack.VARIABLES's defaults the first time), as the deployment of `account`: the default
    account's is the one `up` made; another's is a second deployment beside it (a production serving
    the default account's packages), applied with a key of that account. Returns it, recorded (`load`)."""
    home, tools = Path(running.home), toolchain.ensure()
    signing = (
        None
        if account == accounts.DEFAULT
        else stack.account_credentials(replace(running, account=account).client("iam"))
    )
    folder = _folder(home, account)
    earlier = stack.staged_variables(folder) if (folder / "local.auto.tfvars.json").exists() else {}
    folder = stack.stage(folder, {**earlier, **variables}, credentials=signing)
    (folder / "endpoint.auto.tfvars.json").write_text(json.dumps({"local_endpoint": running.endpoint}) + "\n")
    log = home / ("terraform.log" if account == accounts.DEFAULT else f"terraform-{account}.log")
    _terraform(tools, folder, log, "init", "-input=false", "-no-color")
    applied = time.monotonic()
    _terraform(tools, folder, log, "apply", "-auto-approve", "-input=false", "-no-color")
    where = "" if account == accounts.DEFAULT else f" in account {account}"
    say(f"terraform apply{where}: {time.monotonic() - applied:.1f} s (Terraform {tools.version}, log: {log})")
    outputs = {
        name: entry["value"] for name, entry in json.loads(_terraform(tools, folder, log, "output", "-json")).items()
    }
    deployment = replace(running, outputs=outputs, account=account, credentials=list(signing or stack.DEFAULT_KEY))
    stack.enable_bucket_events(deployment.client("s3"), outputs["bucket_name"])
    stack.set_runtimes(deployment.client("lambda"), stack.staged_variables(folder)["lambda_runtime"])
    _record(home, account).write_text(json.dumps(asdict(deployment), indent=2) + "\n")
    return deployment


def down(home: Path = HOME, say: Callable[[str], None] = print) -> None:
    """Stop the server (and every process it started) and remove `home`."""
    _stop(home)
    if home.exists():
        shutil.rmtree(home)
        say(f"removed {home}")
    else:
        say("nothing is up")


def archive(home: Path) -> Path:
    """Stop what is left of a crashed stack and move its folder aside (never deleted): returns where."""
    _stop(home)
    kept = home.with_name(f"{home.name}.crashed-{time.strftime('%Y%m%d-%H%M%S')}")
    for n in itertools.count(1):
        if not kept.exists():
            break
        kept = kept.with_name(f"{home.name}.crashed-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    home.rename(kept)
    return kept


def _stop(home: Path) -> None:
    try:
        pid = json.loads(_record(home).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        pid = None
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)  # the server leads its own session: its workers go too
            for _ in range(50):
                _reap(pid)
                os.kill(pid, 0)
                time.sleep(0.1)
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _reap(pid: int) -> None:
    """Collect the server if this process started it (otherwise it is not our child: nothing to do)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
