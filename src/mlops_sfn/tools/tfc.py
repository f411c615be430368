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
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytfe.errors import NotFound, TFEError
from pytfe.models import (
    ConfigurationVersion,
    ConfigurationVersionCreateOptions,
    RunApplyOptions,
    RunCreateOptions,
    RunDiscardOptions,
    Workspace,
)

from ..checkout import ROOT
from .tfc_api import (
    CONFIGURATION_VERSION,
    FAILED,
    MARKER,
    SUCCEEDED,
    Cloud,
    Deadline,
    Interrupted,
    NeedsAPerson,
    Origin,
    RunState,
    Settings,
    TfcError,
    calling,
    needs_a_person,
    related,
)

EXCLUDED = (".git/", ".venv", ".toolchain/", ".mlops-local/", ".terraform/", "node_modules/")


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
    writer = related(state.get("relationships", {}), "run")
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
