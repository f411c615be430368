"""HCP Terraform's API as `mlops-sfn tfc` uses it: run states, settings, the client (its reads retried),
deadlines, and the origin (pipeline, commit) a run's message carries. tfc.py drives runs with it.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytfe import TFEClient, TFEConfig
from pytfe.errors import AuthError, NotFound, RateLimited, ServerError, TFEError
from pytfe.models import (
    RunCancelOptions,
    RunDiscardOptions,
    Workspace,
)

from ..checkout import ROOT
from ..core.problems import Error

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
READ_ATTEMPTS, BACKOFF_CAP_SECONDS = 5, 8.0  # pytfe's own for 429 and 502-504
JOB_MARGIN_SECONDS = 300  # give up this long before GitLab's job timeout, so the run is discarded, not orphaned


class TfcError(Error):
    """A missing setting, an API error, or a run that did not succeed; the message says which and what to do."""


class NeedsAPerson(TfcError):
    """The run waits for a decision only a person can take in HCP Terraform (an override, a run task)."""


class Interrupted(Error):
    """The job was cancelled (SIGTERM from the GitLab runner) or interrupted."""

    exit_code = 130  # 128 + SIGINT, as shells report it


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
            plan=related(relations, "plan"),
            apply=related(relations, "apply"),
            version=related(relations, "configuration-version"),
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
        return related(data.get("relationships", {}), "current-run")

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


def related(relations: Mapping[str, Any], name: str) -> str | None:
    data = (relations.get(name) or {}).get("data")
    return str(data["id"]) if isinstance(data, dict) and data.get("id") else None
