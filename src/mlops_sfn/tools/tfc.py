"""HCP Terraform (Terraform Cloud) API-driven runs for GitLab CI, on HashiCorp's Python SDK (pytfe).

  mlops-sfn tfc plan --speculative   a plan-only run (merge requests): green only once every post-plan
                                     stage (cost estimation, policy checks, run tasks) has passed
  mlops-sfn tfc plan [--configuration-version ID] [--dotenv FILE]
                                     a run that can be applied, left waiting once planned: its summary
                                     and URL are shown and its id written for the gate job
  mlops-sfn tfc apply [--run ID]     confirms that same run (default $TFC_RUN_ID) and follows it

Nothing here names an organisation or a workspace; CI variables do (docs/delivery.md). Run states
are HashiCorp's documented list (https://developer.hashicorp.com/terraform/cloud-docs/api-docs/run,
"Run States"): a run is confirmable when its `actions.is-confirmable` says so, whatever its state.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytfe import TFEClient, TFEConfig
from pytfe.errors import AuthError, NotFound, RateLimited, ServerError, TFEError
from pytfe.models import (
    ConfigurationVersion,
    ConfigurationVersionCreateOptions,
    RunApplyOptions,
    RunCancelOptions,
    RunCreateOptions,
    RunDiscardOptions,
    Workspace,
)

from .statemachine import ROOT

DEFAULT_HOSTNAME = "app.terraform.io"
SUCCEEDED = {"applied", "planned_and_finished", "planned_and_saved"}
# policy_soft_failed ends a plan-only run ("a final state"); the others end any run.
FAILED = {"errored", "discarded", "canceled", "force_canceled", "policy_soft_failed"}
# Past confirmation: giving up must not cancel an apply half-way; it goes on in HCP Terraform. The
# post-apply stages (run tasks after the apply) are part of it.
APPLYING = {"confirmed", "apply_queued", "queuing_apply", "pre_apply_running", "pre_apply_completed", "applying"}
APPLYING |= {"post_apply_running", "post_apply_completed"}
# A person decides: a Sentinel policy override, a Terraform-native policy override, a run task's verdict.
DECIDING = {"policy_override", "tf_policy_override"}
CONFIGURATION_VERSION = re.compile(r"cv-[A-Za-z0-9]+")  # HashiCorp's ids: <kind>-<base58>
MARKER = "[mlops-sfn]"  # in the message of every run `tfc plan` leaves waiting, so a newer one may supersede it
EXCLUDED = (".git/", ".venv", ".toolchain/", ".mlops-local/", ".terraform/", "node_modules/")
READ_ATTEMPTS, BACKOFF_CAP_SECONDS = 5, 8.0  # pytfe's own for 429 and 502-504
JOB_MARGIN_SECONDS = 300  # give up this long before GitLab's job timeout, so the run is discarded, not orphaned


class TfcError(Exception):
    """A missing setting, an API error, or a run that did not succeed; the message says which and what to do."""


class NeedsAPerson(TfcError):
    """The run waits for a decision only a person can take in HCP Terraform (an override, a run task)."""


class Interrupted(Exception):
    """The job was cancelled (SIGTERM from the GitLab runner) or interrupted."""


@dataclass(frozen=True)
class Origin:
    """Which pipeline and commit queued a run: written at the end of its message after MARKER, so a
    later job knows whether a run it meets is of an older or a newer commit than its own."""

    pipeline: int | None = None  # CI_PIPELINE_ID: GitLab numbers pipelines in the order they are created
    commit: str | None = None  # CI_COMMIT_SHA

    PATTERN = re.compile(rf"{re.escape(MARKER)}(?: pipeline (\d+))?(?: commit ([0-9a-f]{{7,64}}))?$")

    def tag(self) -> str:
        parts = [MARKER]
        if self.pipeline is not None:
            parts.append(f"pipeline {self.pipeline}")
        if self.commit:
            parts.append(f"commit {self.commit}")
        return " ".join(parts)

    @classmethod
    def of(cls, message: str) -> Origin | None:
        """The origin a message ends with; None for a run this tool did not queue."""
        found = cls.PATTERN.search(message)
        if not found:
            return None
        return cls(int(found.group(1)) if found.group(1) else None, found.group(2))

    def newer_than(self, other: Origin, repository: Path = ROOT) -> bool:
        """Whether this run's commit comes after `other`'s: by git ancestry where the checkout knows both
        commits, else by pipeline number; False when neither says (the runs are then treated alike)."""
        if self.commit and other.commit:
            if self.commit == other.commit:
                return False
            for older, newer, answer in ((other.commit, self.commit, True), (self.commit, other.commit, False)):
                try:
                    done = subprocess.run(
                        ["git", "-C", str(repository), "merge-base", "--is-ancestor", older, newer],
                        capture_output=True,
                        check=False,
                    )
                except OSError:  # no git here: the pipeline numbers decide
                    break
                if done.returncode == 0:
                    return answer
        if self.pipeline is not None and other.pipeline is not None:
            return self.pipeline > other.pipeline
        return False

    def said(self) -> str:
        commit = f"commit {self.commit[:12]}" if self.commit else "commit unknown"
        return f"{commit}, pipeline {self.pipeline if self.pipeline is not None else 'unknown'}"


def needs_a_person(status: str) -> bool:
    return status in DECIDING or status.endswith("_awaiting_decision")


def hostname_of(value: str) -> str:
    """`app.terraform.io` from `app.terraform.io`, `https://app.terraform.io/` or `https://tfe.example.com/app`."""
    host = value.strip().split("://", 1)[-1]
    return host.split("/", 1)[0] or DEFAULT_HOSTNAME


@dataclass(frozen=True)
class Settings:
    token: str
    organization: str
    workspace: str
    hostname: str = DEFAULT_HOSTNAME
    address: str | None = None  # the API's base URL when it is not https://<hostname> (tests)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, workspace: str | None = None, speculative: bool = False
    ) -> Settings:
        environ = os.environ if environ is None else environ
        token = environ.get("TFC_TOKEN") or environ.get("TF_API_TOKEN")
        if speculative:  # merge-request pipelines get no protected variable: a plan-only token may be unprotected
            token = environ.get("TFC_PLAN_TOKEN") or token
        values = {
            "TFC_PLAN_TOKEN or TFC_TOKEN" if speculative else "TFC_TOKEN": token,
            "TFC_ORGANIZATION": environ.get("TFC_ORGANIZATION"),
            "TFC_WORKSPACE": workspace or environ.get("TFC_WORKSPACE"),
        }
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise TfcError(f"set {', '.join(missing)} (CI/CD variables; docs/delivery.md)")
        return cls(
            token=str(token),
            organization=str(values["TFC_ORGANIZATION"]),
            workspace=str(values["TFC_WORKSPACE"]),
            hostname=hostname_of(environ.get("TFC_HOSTNAME") or DEFAULT_HOSTNAME),
            address=environ.get("TFC_ADDRESS"),
        )

    @property
    def base(self) -> str:
        return (self.address or f"https://{self.hostname}").rstrip("/")

    def run_url(self, run_id: str) -> str:
        return f"https://{self.hostname}/app/{self.organization}/workspaces/{self.workspace}/runs/{run_id}"


@dataclass(frozen=True)
class RunState:
    id: str
    status: str
    actions: Mapping[str, bool]
    message: str
    plan: str | None
    apply: str | None
    version: str | None = None  # its configuration version

    def can(self, action: str) -> bool:
        return bool(self.actions.get(f"is-{action}"))


@dataclass
class Deadline:
    """When to give up: `minutes`, and in GitLab never later than the job's own timeout (CI_JOB_TIMEOUT)."""

    seconds: float
    poll_seconds: float = 5.0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_job(cls, minutes: float, environ: Mapping[str, str] | None = None) -> Deadline:
        environ = os.environ if environ is None else environ
        seconds = minutes * 60
        job = environ.get("CI_JOB_TIMEOUT", "")
        if job.isdigit():
            seconds = min(seconds, max(int(job) - JOB_MARGIN_SECONDS, 60))
        return cls(seconds)

    def wait(self, what: str) -> None:
        if time.monotonic() + self.poll_seconds - self.started > self.seconds:
            raise TfcError(f"gave up after {self.seconds / 60:.0f} minutes waiting for {what}")
        time.sleep(self.poll_seconds)


class Cloud:
    """The calls a run needs: pytfe's resources, and its transport (same retries) where pytfe 1.5 falls short."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print, backoff_seconds: float = 0.5) -> None:
        self.settings = settings
        self.say = say
        # pytfe retries 429, 502, 503, 504 and dropped connections with capped, jittered backoff, honouring
        # Retry-After; a read is also tried again after a 500 (`read`), a write never (it may have happened).
        self.backoff_seconds = backoff_seconds
        self.tfe = TFEClient(TFEConfig(address=settings.base, token=settings.token, backoff_base=backoff_seconds))

    def read(self, call: Callable[[], Any], attempts: int = READ_ATTEMPTS) -> Any:
        for attempt in range(attempts):
            try:
                return call()
            except ServerError as error:
                if getattr(error, "status", None) != 500 or attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, self.backoff_seconds * 2**attempt)))
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict[str, Any]:
        body: dict[str, Any] = self.read(lambda: self.tfe._transport.request("GET", path).json())
        return body

    def workspace(self) -> Workspace:
        org, name = self.settings.organization, self.settings.workspace
        with calling(f"workspace {org}/{name}", "TFC_ORGANIZATION, the TFC_WORKSPACE_* variable and the token's team"):
            found: Workspace = self.read(lambda: self.tfe.workspaces.read(name, organization=org))
            return found

    def run(self, run_id: str) -> RunState:
        # Read as JSON, not through pytfe's Run model: pytfe 1.5 refuses `force_canceled`, a documented state.
        with calling(f"run {run_id}", "TFC_RUN_ID and the token's team"):
            data = self.get(f"/api/v2/runs/{run_id}")["data"]
        attributes, relations = data["attributes"], data.get("relationships", {})
        return RunState(
            id=data["id"],
            status=str(attributes["status"]),
            actions=attributes.get("actions") or {},
            message=str(attributes.get("message") or ""),
            plan=_related(relations, "plan"),
            apply=_related(relations, "apply"),
            version=_related(relations, "configuration-version"),
        )

    def poll(self, run_id: str, deadline: Deadline) -> RunState:
        """The run, read again until HCP Terraform answers (5xx and 429 after pytfe's own retries included)."""
        while True:
            try:
                return self.run(run_id)
            except TfcError as error:
                if not isinstance(error.__cause__, ServerError | RateLimited):
                    raise
                self.say(f"run {run_id}: {error}; trying again")
                deadline.wait(f"run {run_id} to be readable")

    def current_run(self, workspace_id: str) -> str | None:
        with calling(f"workspace {workspace_id}", "the token's team"):
            data = self.get(f"/api/v2/workspaces/{workspace_id}")["data"]
        return _related(data.get("relationships", {}), "current-run")

    def log_tail(self, url: str | None, lines: int = 15) -> list[str]:
        """The last error lines of a plan's or an apply's log (pytfe 1.5's `plans.logs` returns nothing)."""
        try:
            text = self.tfe._transport.request("GET", url, include_auth=False).text if url else ""
        except TFEError:
            return []
        found = []
        for line in text.splitlines():
            try:  # structured run output: one JSON object per line
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("@level") == "error":
                    detail = (entry.get("diagnostic") or {}).get("detail")
                    found.append(f"{entry.get('@message')}{f': {detail}' if detail else ''}")
            except ValueError:
                if line.strip():
                    found.append(line.rstrip())
        return found[-lines:]

    def why(self, run: RunState) -> str:
        """What stopped an errored run: the plan's or apply's own error lines, or a failed policy check."""
        try:
            for kind, phase, resource in (("plans", "plan", run.plan), ("applies", "apply", run.apply)):
                if resource:
                    attributes = self.get(f"/api/v2/{kind}/{resource}")["data"]["attributes"]
                    if attributes.get("status") == "errored":
                        tail = self.log_tail(attributes.get("log-read-url"))
                        return f"the {phase} errored" + (":\n  " + "\n  ".join(tail) if tail else "")
            checks = self.get(f"/api/v2/runs/{run.id}/policy-checks").get("data") or []
        except TFEError:
            return "see the run"
        if any(check["attributes"].get("status") == "hard_failed" for check in checks):
            return "a hard-mandatory policy check failed"
        return "a policy check or a run task stopped it"

    def policy_counts(self, run_id: str) -> str:
        """The run's policy checks as HashiCorp's Policy Checks API counts them ("soft-failed", ...);
        their `sentinel` detail is documented as unstable, so policies are not named here."""
        try:
            checks = self.get(f"/api/v2/runs/{run_id}/policy-checks").get("data") or []
        except TFEError:
            return "policy checks unreadable"
        totals: dict[str, int] = {}
        for check in checks:
            result = check.get("attributes", {}).get("result") or {}
            for name in ("soft-failed", "hard-failed", "advisory-failed", "passed"):
                totals[name] = totals.get(name, 0) + int(result.get(name) or 0)
        return ", ".join(f"{count} {name}" for name, count in totals.items() if count) or "no policy counted"

    def give_up(self, run_id: str, reason: str) -> None:
        """Leaves no run holding the workspace: discard one that waits, cancel one still planning."""
        try:
            run = self.run(run_id)
            comment = f"mlops-sfn gave up: {reason}"[:500]
            if run.can("discardable"):
                self.tfe.runs.discard(run_id, RunDiscardOptions(comment=comment))
                self.say(f"run {run_id}: discarded ({reason})")
            elif run.can("cancelable") and run.status not in APPLYING:
                self.tfe.runs.cancel(run_id, RunCancelOptions(comment=comment))
                self.say(f"run {run_id}: cancelled ({reason})")
            elif run.status in APPLYING:
                self.say(f"run {run_id}: the apply goes on in HCP Terraform: {self.settings.run_url(run_id)}")
        except (TfcError, TFEError) as error:
            self.say(f"run {run_id}: could not discard or cancel it ({error}): {self.settings.run_url(run_id)}")


@contextmanager
def calling(what: str, check: str) -> Iterator[None]:
    """pytfe's errors as messages that say what to check."""
    try:
        yield
    except NotFound as error:
        raise TfcError(
            f"{what}: not found, or the token cannot see it (HCP Terraform answers 404 for both); check {check}"
        ) from error
    except AuthError as error:
        raise TfcError(f"{what}: the token was refused ({error}); check TFC_TOKEN and its team's access") from error
    except TFEError as error:
        raise TfcError(f"{what}: {error}") from error


def _related(relations: Mapping[str, Any], name: str) -> str | None:
    data = (relations.get(name) or {}).get("data")
    return str(data["id"]) if isinstance(data, dict) and data.get("id") else None


def tracked_files(root: Path) -> list[str]:
    """The repository's files as git tracks them; without git, every file outside the excluded folders."""
    try:  # -z: names as they are (no quoting of non-ASCII names)
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True).stdout
        return sorted(name for name in listed.split("\0") if name and (root / name).is_file())
    except (OSError, subprocess.CalledProcessError):
        names = (path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
        return sorted(name for name in names if not any(part in f"/{name}" for part in EXCLUDED))


def configuration(root: Path = ROOT) -> bytes:
    """The configuration version's tar.gz: what the workspace plans (its working directory inside)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name in tracked_files(root):
            archive.add(root / name, arcname=name, recursive=False)
    return buffer.getvalue()


def upload(cloud: Cloud, workspace_id: str, speculative: bool, root: Path, deadline: Deadline) -> str:
    """A new configuration version holding the repository; its id once HCP Terraform has it."""
    with calling("creating a configuration version", "the token's team may queue plans"):
        version = cloud.tfe.configuration_versions.create(
            workspace_id, ConfigurationVersionCreateOptions(auto_queue_runs=False, speculative=speculative)
        )
    archive = configuration(root)
    for attempt in range(3):  # a PUT to a pre-signed URL: safe to repeat; pytfe does not retry it
        try:
            cloud.tfe.configuration_versions.upload_tar_gzip(str(version.upload_url), io.BytesIO(archive))
            break
        except TFEError as error:
            if attempt == 2:
                raise TfcError(f"uploading configuration version {version.id}: {error}") from error
            cloud.say(f"uploading configuration version {version.id}: {error}; trying again")
    while True:
        current = _version(cloud, version.id)
        status = getattr(current.status, "value", current.status)
        if status == "uploaded":
            return version.id
        if status in ("errored", "archived"):
            reason = current.error_message or current.error or "no reason given"
            raise TfcError(f"configuration version {version.id} {status}: {reason}")
        deadline.wait(f"configuration version {version.id} ({status})")


def _version(cloud: Cloud, version_id: str) -> ConfigurationVersion:
    with calling(f"configuration version {version_id}", "TFC_CONFIGURATION_VERSION"):
        found: ConfigurationVersion = cloud.read(lambda: cloud.tfe.configuration_versions.read(version_id))
        return found


def plan(
    cloud: Cloud,
    *,
    speculative: bool,
    message: str,
    deadline: Deadline,
    configuration_version: str | None = None,
    root: Path = ROOT,
    dotenv: Path | None = None,
    origin: Origin | None = None,
) -> RunState:
    """A speculative plan followed to its end, or a run followed until it waits to be confirmed."""
    settings, say = cloud.settings, cloud.say
    if configuration_version is not None and not CONFIGURATION_VERSION.fullmatch(configuration_version):
        raise TfcError(
            f"--configuration-version {configuration_version!r} is not a configuration version id (cv-...):"
            " pass the TFC_CONFIGURATION_VERSION the earlier environment's plan job reported, or leave it out"
        )
    workspace = cloud.workspace()
    origin = origin or Origin()
    adopted = _this_pipelines_run(cloud, workspace.id, origin) if not speculative else None
    if adopted is not None:  # the job again (after an override, say): its run, never a new one over it
        say(f"run {adopted.id}: this pipeline's run, {adopted.status}: {settings.run_url(adopted.id)}")
        run = adopted
        with abandoned_on_failure(cloud, run.id):
            run = follow(cloud, run.id, deadline, until_confirmable=True, workspace_id=workspace.id, origin=origin)
        if dotenv is not None:
            _write_dotenv(dotenv, run.id, settings.run_url(run.id), adopted.version or "")
        say(summary(cloud, run))
        return run
    if configuration_version:  # promotion: the code dev got (HashiCorp: runs may use another workspace's version)
        status = getattr(_version(cloud, configuration_version).status, "value", None)
        if status != "uploaded":
            raise TfcError(f"configuration version {configuration_version} is {status}: it cannot be planned again")
        version = configuration_version
    else:
        version = upload(cloud, workspace.id, speculative, root, deadline)
    with calling(f"creating a run in {settings.organization}/{settings.workspace}", "the token's team may queue runs"):
        created = cloud.tfe.runs.create(
            RunCreateOptions(
                workspace=Workspace(id=workspace.id),
                configuration_version=ConfigurationVersion(id=version),
                message=message if speculative else f"{message} {origin.tag()}",
                plan_only=speculative,
                auto_apply=False,  # never the workspace's: the gate job confirms, nobody races it
            )
        )
    url = settings.run_url(created.id)
    say(f"{'speculative plan' if speculative else 'plan'} in {settings.organization}/{settings.workspace}: {url}")
    try:
        with abandoned_on_failure(cloud, created.id):
            run = follow(
                cloud,
                created.id,
                deadline,
                until_confirmable=not speculative,
                workspace_id=workspace.id,
                speculative=speculative,
                origin=origin,
            )
    except NeedsAPerson:
        if dotenv is not None:  # once a person decided, the job run again confirms this run (see above)
            _write_dotenv(dotenv, created.id, url, version)
        raise
    if run.status in SUCCEEDED or run.can("confirmable"):
        say(summary(cloud, run))
    if dotenv is not None:  # GitLab's dotenv report: the gate job confirms this run, promotion reuses the version
        _write_dotenv(dotenv, run.id, url, version)
    return run


def _write_dotenv(path: Path, run_id: str, url: str, version: str) -> None:
    path.write_text(f"TFC_RUN_ID={run_id}\nTFC_RUN_URL={url}\nTFC_CONFIGURATION_VERSION={version}\n")


def _this_pipelines_run(cloud: Cloud, workspace_id: str, origin: Origin) -> RunState | None:
    """The workspace's current run when this pipeline's job queued it and it still waits (to be
    confirmed, or for a person's decision): a job run again adopts it instead of discarding it."""
    current = cloud.current_run(workspace_id) if origin.pipeline is not None else None
    if not current:
        return None
    run = cloud.run(current)
    found = Origin.of(run.message)
    waiting = run.can("confirmable") or needs_a_person(run.status) or run.status == "policy_overridden"
    return run if found is not None and found.pipeline == origin.pipeline and waiting else None


def apply(cloud: Cloud, run_id: str, *, message: str, deadline: Deadline) -> RunState:
    """Confirms the run a plan job left waiting (the plan a person saw) and follows it to its end."""
    say, url = cloud.say, cloud.settings.run_url(run_id)
    run = cloud.poll(run_id, deadline)
    if run.status == "planned_and_finished":
        say(f"run {run_id}: no changes, nothing to apply: {url}")
        return run
    with abandoned_on_failure(cloud, run_id):
        run = follow(cloud, run_id, deadline, until_confirmable=True)
        _not_over_a_newer_commit(cloud, run)
    # A saved plan (planned_and_saved) "can be confirmed" (HashiCorp, run states) like a waiting run.
    if run.status in SUCCEEDED and not run.can("confirmable"):
        return run
    try:
        cloud.tfe.runs.apply(run_id, RunApplyOptions(comment=message))
        say(f"run {run_id}: {run.status}, confirmed: {url}")
    except TFEError as error:  # 409: no longer confirmable (applied meanwhile, discarded, superseded)
        if getattr(error, "status", None) != 409:
            raise TfcError(f"confirming run {run_id}: {error}") from error
        say(f"run {run_id}: HCP Terraform refused the confirmation ({error}); reading it again")
    with abandoned_on_failure(cloud, run_id):  # an apply under way is left to finish (give_up)
        return follow(cloud, run_id, deadline, until_confirmable=False)


def _not_over_a_newer_commit(cloud: Cloud, run: RunState) -> None:
    """TfcError when the workspace's state was last written by a run of a newer commit than this one's
    (an older pipeline, retried after a newer one delivered): applying would put older code back."""
    ours = Origin.of(run.message)
    if ours is None:
        return
    workspace = cloud.workspace()
    try:
        state = cloud.get(f"/api/v2/workspaces/{workspace.id}/current-state-version")["data"]
    except NotFound:  # nothing applied yet
        return
    except TFEError as error:
        raise TfcError(f"reading the workspace's current state version: {error}") from error
    writer = _related(state.get("relationships", {}), "run")
    if not writer or writer == run.id:
        return
    theirs = Origin.of(cloud.run(writer).message)
    if theirs is not None and theirs.newer_than(ours):
        raise TfcError(
            f"the workspace was last applied by run {writer} of a newer commit ({theirs.said()}): this run's"
            f" older commit ({ours.said()}) is not applied over it: {cloud.settings.run_url(writer)}"
        )


def follow(
    cloud: Cloud,
    run_id: str,
    deadline: Deadline,
    *,
    until_confirmable: bool,
    workspace_id: str | None = None,
    speculative: bool = False,
    origin: Origin | None = None,
) -> RunState:
    """The run at its end, or once it waits to be confirmed; TfcError (NeedsAPerson) if it did not succeed.
    A speculative plan whose soft-mandatory policies failed ends with a warning, not a failure: it can
    never be overridden, and the run that is (plan-dev's) decides."""
    say, url, last = cloud.say, cloud.settings.run_url(run_id), ""
    superseded: set[str] = set()
    while True:
        run = cloud.poll(run_id, deadline)
        if run.status != last:
            say(f"run {run_id}: {run.status}")
            last = run.status
        # a saved plan being applied reads planned_and_saved until its apply is queued: not an end then
        if run.status in SUCCEEDED and (until_confirmable or run.status != "planned_and_saved"):
            return run
        if speculative and run.status == "policy_soft_failed":
            say(
                f"WARNING: run {run_id}: a soft-mandatory policy check failed ({cloud.policy_counts(run_id)});"
                f" the run on main can be overridden: {url}"
            )
            return run
        if run.status in FAILED:
            reason = cloud.why(run) if run.status == "errored" else _ENDED[run.status]
            raise TfcError(f"run {run_id} ended {run.status}: {reason}: {url}")
        if until_confirmable and run.can("confirmable"):
            return run
        if needs_a_person(run.status):
            raise NeedsAPerson(
                f"run {run_id} is {run.status}: a policy check or run task failed and waits for someone with the "
                f"right to override it in HCP Terraform; override or discard it there: {url}"
            )
        if run.status == "pending" and workspace_id:
            supersede(cloud, workspace_id, run_id, superseded, origin or Origin())
        deadline.wait(f"run {run_id} ({run.status}): {url}")


_ENDED = {
    "discarded": "discarded in HCP Terraform, or superseded by a newer pipeline's plan",
    "canceled": "cancelled",
    "force_canceled": "force-cancelled by a workspace admin",
    "policy_soft_failed": "a soft-mandatory policy check failed (a plan-only run cannot be overridden)",
}


def supersede(cloud: Cloud, workspace_id: str, ours: str, done: set[str], origin: Origin) -> None:
    """A plan nobody promoted holds the workspace's queue: discard it when it is ours (MARKER), only
    waits, and is of an older commit. One of a newer commit is never discarded: this run, the older,
    gives way (TfcError, and the caller gives it up)."""
    current = cloud.current_run(workspace_id)
    if not current or current == ours or current in done:
        return
    done.add(current)
    blocking = cloud.run(current)
    waiting = blocking.can("confirmable") or needs_a_person(blocking.status)
    theirs = Origin.of(blocking.message)
    if theirs is not None and theirs.newer_than(origin):
        raise TfcError(
            f"run {current} of a newer commit ({theirs.said()}) waits in this workspace: this pipeline's older"
            f" commit ({origin.said()}) is not planned over it; the newer pipeline's jobs deliver it:"
            f" {cloud.settings.run_url(current)}"
        )
    if theirs is not None and waiting and blocking.can("discardable"):
        with calling(f"discarding run {current}", "the token's team may apply runs"):
            cloud.tfe.runs.discard(current, RunDiscardOptions(comment=f"superseded by {ours} {MARKER}"))
        cloud.say(f"run {current}: discarded, superseded by {ours}")
    else:
        cloud.say(f"run {ours}: queued behind {current} ({blocking.status}): {cloud.settings.run_url(current)}")


@contextmanager
def abandoned_on_failure(cloud: Cloud, run_id: str) -> Iterator[None]:
    """A run we stop following (deadline, error, cancelled job) is discarded or cancelled; one that waits for a
    person's decision is left to them."""
    try:
        yield
    except NeedsAPerson:
        raise
    except (TfcError, TFEError, Interrupted, KeyboardInterrupt) as error:
        cloud.give_up(run_id, str(error) or type(error).__name__)
        raise


def summary(cloud: Cloud, run: RunState) -> str:
    """`Plan: 1 to add, 2 to change, 0 to destroy.`, with destroys called out."""
    if not run.plan:
        return f"run {run.id}: {run.status}"
    with calling(f"plan {run.plan}", "the token's team may read runs"):
        found = cloud.tfe.plans.read(run.plan)
    add, change, destroy = (
        found.resource_additions or 0,
        found.resource_changes or 0,
        found.resource_destructions or 0,
    )
    text = f"Plan: {add} to add, {change} to change, {destroy} to destroy."
    if destroy:
        text += f"\nWARNING: this plan DESTROYS {destroy} resource(s); read it before you confirm: "
        text += cloud.settings.run_url(run.id)
    return text


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(f"stopped by signal {signum}")


def main(
    command: str,
    *,
    workspace: str | None = None,
    message: str | None = None,
    speculative: bool = False,
    configuration_version: str | None = None,
    dotenv: str | None = None,
    run_id: str | None = None,
    minutes: float = 50.0,
) -> int:
    """`mlops-sfn tfc plan|apply`: exit 0 when planned (or applied), 1 otherwise, with the reason on stderr."""
    previous = signal.signal(signal.SIGTERM, _interrupt)  # GitLab stops a cancelled job with SIGTERM
    try:
        settings = Settings.from_environment(workspace=workspace, speculative=speculative)
        cloud = Cloud(settings)
        text = message or os.environ.get("CI_COMMIT_TITLE") or f"mlops-sfn tfc {command}"
        deadline = Deadline.for_job(minutes)
        if command == "apply":
            run_id = run_id or os.environ.get("TFC_RUN_ID")
            if not run_id:
                raise TfcError("name the run to confirm: --run ID, or TFC_RUN_ID from the plan job's dotenv report")
            apply(cloud, run_id, message=text, deadline=deadline)
        else:
            plan(
                cloud,
                speculative=speculative,
                message=text,
                deadline=deadline,
                configuration_version=configuration_version,
                dotenv=Path(dotenv) if dotenv else None,
                origin=Origin(  # a retried job finds its pipeline's run; a newer commit's is never discarded
                    int(os.environ["CI_PIPELINE_ID"]) if os.environ.get("CI_PIPELINE_ID", "").isdigit() else None,
                    os.environ.get("CI_COMMIT_SHA") or None,
                ),
            )
    except (TfcError, TFEError, Interrupted, KeyboardInterrupt) as error:
        print(f"mlops-sfn tfc {command}: {error or 'interrupted'}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
