"""`mlops-sfn tfc plan|apply` against a stand-in for the HCP Terraform API that behaves as documented
(tests/tfc_standin.py): the run states, post-plan stages, decisions, 409s, faults and queueing."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn import cli
from mlops_sfn.tools import tfc, tfc_api
from tests.conftest import ROOT
from tests.tfc_standin import PLAN_TOKEN, TOKEN, Cloud, serving

pytestmark = pytest.mark.functional


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with serving() as standin:
        standin.workspace("mlops-dev")
        standin.workspace("mlops-uat")
        yield standin


class Said(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def client(cloud: Cloud, workspace: str = "mlops-dev", token: str = TOKEN, hostname: str = "app.terraform.io") -> Any:
    settings = tfc.Settings(token=token, organization="acme", workspace=workspace, hostname=hostname)
    settings = tfc.Settings(**{**settings.__dict__, "address": cloud.address})
    return tfc.Cloud(settings, say=Said(), backoff_seconds=0.01)


def deadline(seconds: float = 10) -> tfc.Deadline:
    return tfc.Deadline(seconds, poll_seconds=0.001)


def plan(cloud: Cloud, speculative: bool = False, workspace: str = "mlops-dev", **options: Any) -> tfc.RunState:
    return tfc.plan(client(cloud, workspace), speculative=speculative, message="ci", deadline=deadline(), **options)


def created(cloud: Cloud) -> list[dict[str, Any]]:
    return [body["data"] for method, path, body in cloud.calls if (method, path) == ("POST", "/api/v2/runs")]


def posted(cloud: Cloud, action: str) -> list[str]:
    return [path for method, path, _ in cloud.calls if method == "POST" and path.endswith(f"/actions/{action}")]


def policy_outcome(cloud: Cloud, outcome: str) -> None:
    """The policy checks of every run created from now on end `outcome` (soft_failed, hard_failed)."""
    original = cloud._create

    def created_with_outcome(body: Any, token: str | None) -> Any:
        answer = original(body, token)
        cloud.runs[answer[1]["data"]["id"]].policy = outcome
        return answer

    cloud._create = created_with_outcome  # type: ignore[method-assign]


# -- the plan a person approves is the plan applied ------------------------------------------------


def test_plan_uploads_the_repository_and_leaves_its_run_waiting_for_the_gate(cloud: Cloud, tmp_path: Path) -> None:
    run = plan(cloud, dotenv=tmp_path / "tfc.env")
    assert (run.id, run.status, run.can("confirmable")) == ("run-1", "planned", True)
    assert posted(cloud, "apply") == []  # the gate job confirms, not the plan job
    version = cloud.versions["cv-1"]
    assert (version["speculative"], version["auto-queue-runs"]) == (False, False)
    attributes = created(cloud)[0]["attributes"]
    assert attributes["auto-apply"] is False and attributes["plan-only"] is False
    assert attributes["message"] == f"ci {tfc.MARKER}"
    assert (tmp_path / "tfc.env").read_text().splitlines() == [
        "TFC_RUN_ID=run-1",
        "TFC_RUN_URL=https://app.terraform.io/app/acme/workspaces/mlops-dev/runs/run-1",
        "TFC_CONFIGURATION_VERSION=cv-1",
    ]
    with tarfile.open(fileobj=io.BytesIO(cloud.uploads["cv-1"]), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"main.tf", "deploy/main.tf", "modules/router/main.tf", "lambdas/functions.zip"} <= names
    assert not any(name.startswith((".venv", ".git/", ".mlops-local")) for name in names)
    assert ("PUT", "/upload/cv-1", False) in cloud.calls  # the pre-signed URL gets no token


def test_apply_confirms_the_run_the_plan_job_left_and_creates_nothing(cloud: Cloud) -> None:
    plan(cloud)
    count = len(created(cloud))
    run = tfc.apply(client(cloud), "run-1", message="promote", deadline=deadline())
    assert run.status == "applied"
    assert posted(cloud, "apply") == ["/api/v2/runs/run-1/actions/apply"]
    assert len(created(cloud)) == count and len(cloud.versions) == 1
    assert cloud.runs["run-1"].comments == ["promote"]


def test_the_plan_summary_counts_changes_and_calls_out_destroys(cloud: Cloud) -> None:
    cloud.scripts = [["planning", "planned"]]
    remote = client(cloud)
    run = tfc.plan(remote, speculative=False, message="ci", deadline=deadline())
    cloud.runs[run.id].destructions, cloud.runs[run.id].changes = 2, 3
    text = tfc.summary(remote, run)
    assert text.startswith("Plan: 1 to add, 3 to change, 2 to destroy.")
    assert "DESTROYS 2 resource(s)" in text and "runs/run-1" in text
    assert any(line.startswith("Plan: 1 to add, 0 to change, 0 to destroy.") for line in remote.say)


def test_promotion_plans_the_configuration_version_dev_applied_without_uploading(cloud: Cloud) -> None:
    plan(cloud)  # dev: cv-1
    run = plan(cloud, workspace="mlops-uat", configuration_version="cv-1")
    made = created(cloud)[-1]
    assert made["relationships"]["configuration-version"]["data"]["id"] == "cv-1"
    assert made["relationships"]["workspace"]["data"]["id"] == "ws-mlops-uat"
    assert list(cloud.uploads) == ["cv-1"] and run.status == "planned"


def test_a_run_with_no_changes_has_nothing_to_apply(cloud: Cloud) -> None:
    cloud.scripts = [["planning", "planned_and_finished"]]
    assert plan(cloud).status == "planned_and_finished"
    assert tfc.apply(client(cloud), "run-1", message="m", deadline=deadline()).status == "planned_and_finished"
    assert posted(cloud, "apply") == []


# -- every documented state --------------------------------------------------------------------------


def test_post_plan_stages_finish_before_the_run_counts_as_planned(cloud: Cloud) -> None:
    # tfc-workflows-tooling issue 136: post_plan_completed was not treated as confirmable
    stages = ["planning", "planned", "cost_estimating", "cost_estimated", "policy_checking", "policy_checked"]
    cloud.scripts = [[*stages, "post_plan_running", "post_plan_completed"]]
    run = plan(cloud)
    assert (run.status, run.can("confirmable")) == ("post_plan_completed", True)
    assert tfc.apply(client(cloud), run.id, message="m", deadline=deadline()).status == "applied"


def test_a_speculative_plan_is_green_only_after_its_policy_checks(cloud: Cloud) -> None:
    cloud.scripts = [["planning", "planned", "cost_estimating", "cost_estimated", "planned_and_finished"]]
    assert plan(cloud, speculative=True).status == "planned_and_finished"
    assert [made["attributes"]["plan-only"] for made in created(cloud)] == [True]


def test_a_soft_failed_speculative_plan_warns_and_does_not_block_main(cloud: Cloud) -> None:
    """A plan-only run can never be overridden ("policy_soft_failed ... a final state" for it); on main the
    non-speculative run stops at policy_override, where a person may override: the speculative plan
    warns, with the link, and lets plan-dev's run decide."""
    cloud.scripts = [["planning", "planned", "policy_checking", "policy_soft_failed"]]
    policy_outcome(cloud, "soft_failed")
    remote = client(cloud)
    run = tfc.plan(remote, speculative=True, message="ci", deadline=deadline())
    assert run.status == "policy_soft_failed"
    (warning,) = [line for line in remote.say if line.startswith("WARNING")]
    assert "soft-mandatory policy check failed (1 soft-failed, 1 passed)" in warning and "runs/run-1" in warning


def test_after_an_override_the_plan_job_run_again_adopts_its_run_and_the_gate_confirms_it(
    cloud: Cloud, tmp_path: Path
) -> None:
    """The plan job stops at policy_override (exit 1) having written its dotenv; a person overrides in HCP
    Terraform; the job run again (same pipeline) takes that run, never a new one that would discard it,
    and the gate confirms exactly it."""
    dotenv = tmp_path / "tfc.env"
    cloud.scripts = [["planning", "planned", "policy_checking", "policy_override"]]
    with pytest.raises(tfc.NeedsAPerson):
        plan(cloud, dotenv=dotenv, origin=tfc.Origin(4242))
    assert "TFC_RUN_ID=run-1\n" in dotenv.read_text()
    assert created(cloud)[0]["attributes"]["message"].endswith("[mlops-sfn] pipeline 4242")
    cloud.runs["run-1"].status = "policy_overridden"  # a person overrode it
    dotenv.unlink()

    run = plan(cloud, dotenv=dotenv, origin=tfc.Origin(4242))
    assert (run.id, len(created(cloud)), posted(cloud, "discard")) == ("run-1", 1, [])
    assert dotenv.read_text() == (
        "TFC_RUN_ID=run-1\nTFC_RUN_URL=https://app.terraform.io/app/acme/workspaces/mlops-dev/runs/run-1\n"
        "TFC_CONFIGURATION_VERSION=cv-1\n"
    )
    assert tfc.apply(client(cloud), "run-1", message="promote", deadline=deadline()).status == "applied"
    assert posted(cloud, "apply") == ["/api/v2/runs/run-1/actions/apply"]

    plan(cloud, origin=tfc.Origin(4243))  # another pipeline's job: a run of its own
    assert len(created(cloud)) == 2


def test_a_saved_plan_is_confirmed_and_followed_to_its_apply(cloud: Cloud) -> None:
    """HashiCorp: a planned_and_saved run can be confirmed. The gate confirms it (it used to stop there,
    exit 0, applying nothing) and waits while it still reads planned_and_saved."""
    made = cloud.run_made("mlops-dev", ["planned_and_saved"], message="saved")
    made.after_confirm = ["planned_and_saved", "apply_queued", "applying", "applied"]
    run = tfc.apply(client(cloud), made.id, message="promote", deadline=deadline())
    assert run.status == "applied" and posted(cloud, "apply") == [f"/api/v2/runs/{made.id}/actions/apply"]


@pytest.mark.parametrize("version", ["", "  ", "run-1", "cv-1; rm -rf /"])
def test_a_configuration_version_that_is_no_id_is_refused_before_any_call(cloud: Cloud, version: str) -> None:
    with pytest.raises(tfc.TfcError, match="is not a configuration version id"):
        plan(cloud, workspace="mlops-uat", configuration_version=version)
    assert cloud.calls == []


def test_a_hard_mandatory_policy_failure_fails_the_merge_request_plan(cloud: Cloud) -> None:
    cloud.scripts = [["planning", "planned", "policy_checking", "errored"]]
    policy_outcome(cloud, "hard_failed")
    with pytest.raises(tfc.TfcError, match="ended errored: a hard-mandatory policy check failed"):
        plan(cloud, speculative=True)


@pytest.mark.parametrize("status", ["policy_override", "tf_policy_override", "post_plan_awaiting_decision"])
def test_a_run_waiting_for_a_decision_stops_at_once_with_a_link_and_is_left_for_the_person(
    cloud: Cloud, status: str
) -> None:
    cloud.scripts = [["planning", "planned", status]]
    started = time.monotonic()
    with pytest.raises(tfc.NeedsAPerson, match=f"run-1 is {status}: .* override or discard it there: https://"):
        tfc.plan(client(cloud), speculative=False, message="ci", deadline=tfc.Deadline(3600, poll_seconds=0.001))
    assert time.monotonic() - started < 30
    assert cloud.runs["run-1"].status == status and posted(cloud, "discard") == []


def test_an_errored_plan_says_why_from_its_log(cloud: Cloud) -> None:
    cloud.scripts = [["planning", "errored"]]
    original = cloud._create

    def failing(body: Any, token: str | None) -> Any:
        answer = original(body, token)
        run = cloud.runs[answer[1]["data"]["id"]]
        run.plan_status = "errored"
        run.log = [
            '{"@level":"info","@message":"Terraform 1.9.8"}',
            '{"@level":"error","@message":"Error: Invalid reference","diagnostic":{"detail":"A reference to a '
            'resource type must be followed by at least one attribute access."}}',
        ]
        return answer

    cloud._create = failing  # type: ignore[method-assign]
    with pytest.raises(tfc.TfcError, match="the plan errored:\n  Error: Invalid reference: A reference to a resource"):
        plan(cloud)


def test_force_canceled_a_documented_state_pytfes_model_refuses_ends_the_run(cloud: Cloud) -> None:
    cloud.scripts = [["planning", "force_canceled"]]
    with pytest.raises(tfc.TfcError, match="ended force_canceled: force-cancelled by a workspace admin"):
        plan(cloud)


def test_an_errored_configuration_version_fails_with_its_error(cloud: Cloud) -> None:
    cloud.version_script = ["errored"]
    with pytest.raises(tfc.TfcError, match=r"configuration version cv-1 errored: .*no \.tf files found"):
        plan(cloud)
    assert created(cloud) == []


# -- giving up leaves no run holding the workspace --------------------------------------------------


def test_at_the_deadline_a_planning_run_is_cancelled(cloud: Cloud) -> None:
    cloud.scripts = [["planning"] * 10_000]
    with pytest.raises(tfc.TfcError, match="gave up"):
        tfc.plan(client(cloud), speculative=False, message="ci", deadline=tfc.Deadline(0.3, poll_seconds=0.01))
    assert cloud.runs["run-1"].status == "canceled"
    assert cloud.runs["run-1"].comments[0].startswith("mlops-sfn gave up: gave up after")


def test_the_deadline_stays_under_gitlabs_job_timeout() -> None:
    assert tfc.Deadline.for_job(50, {"CI_JOB_TIMEOUT": "3600"}).seconds == 50 * 60
    assert tfc.Deadline.for_job(50, {"CI_JOB_TIMEOUT": "1800"}).seconds == 1800 - tfc_api.JOB_MARGIN_SECONDS
    assert tfc.Deadline.for_job(50, {}).seconds == 50 * 60


def test_a_cancelled_job_sigterm_cancels_its_run(cloud: Cloud, tmp_path: Path) -> None:
    cloud.scripts = [["planning"] * 1_000_000]
    environment = os.environ | {
        "TFC_TOKEN": TOKEN,
        "TFC_ORGANIZATION": "acme",
        "TFC_WORKSPACE": "mlops-dev",
        "TFC_ADDRESS": cloud.address,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_sfn.cli", "tfc", "plan", "--message", "ci"],
        cwd=ROOT,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(600):
        if "run-1" in cloud.runs and cloud.runs["run-1"].status == "planning":
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "stopped by signal" in errors
    assert cloud.runs["run-1"].status == "canceled"


def test_an_unpromoted_plan_of_ours_is_superseded_and_someone_elses_is_not(cloud: Cloud) -> None:
    older = cloud.run_made("mlops-dev", ["planned"], message=f"old commit {tfc.MARKER}")
    assert older.actions["is-confirmable"]
    run = plan(cloud)
    assert (older.status, run.status) == ("discarded", "planned")
    assert older.comments == [f"superseded by {run.id} {tfc.MARKER}"]
    manual = cloud.run_made("mlops-uat", ["planned"], message="queued in the UI")
    remote = client(cloud, "mlops-uat")
    with pytest.raises(tfc.TfcError, match="gave up"):
        tfc.plan(remote, speculative=False, message="ci", deadline=tfc.Deadline(0.5, 0.01))
    assert manual.status == "planned"
    assert any(f"queued behind {manual.id} (planned)" in line for line in remote.say)


def test_a_waiting_run_of_a_newer_commit_is_never_discarded_by_an_older_pipeline(cloud: Cloud) -> None:
    """Superseding follows commit order, not job order: an older pipeline (a retried job, say) meeting a
    newer one's waiting run gives way, its own run given up; a newer pipeline supersedes as before."""
    newer = cloud.run_made("mlops-dev", ["planned"], message=f"ci {tfc.Origin(20, 'b' * 40).tag()}")
    with pytest.raises(tfc.TfcError, match=r"run-1 of a newer commit \(commit bbbbbbbbbbbb, pipeline 20\)"):
        plan(cloud, origin=tfc.Origin(10, "a" * 40))
    assert newer.status == "planned" and cloud.runs["run-2"].status in ("discarded", "canceled")
    newest = plan(cloud, origin=tfc.Origin(30, "c" * 40))
    assert (newer.status, newest.status) == ("discarded", "planned")


def test_commit_order_is_git_ancestry_where_the_checkout_knows_both_commits(tmp_path: Path) -> None:
    """A pipeline created later for an older commit (run by hand on it) is still the older one."""

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", "-C", str(tmp_path), *arguments], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    git("init", "-q")
    shas = []
    for number in (1, 2):
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", f"c{number}")
        shas.append(git("rev-parse", "HEAD"))
    first, second = tfc.Origin(99, shas[0]), tfc.Origin(1, shas[1])
    assert second.newer_than(first, tmp_path) and not first.newer_than(second, tmp_path)
    unknown = tfc.Origin(99, "f" * 40)  # not in this checkout (a shallow clone): the pipeline numbers decide
    assert unknown.newer_than(second, tmp_path) and not second.newer_than(unknown, tmp_path)


def test_an_older_pipelines_gate_refuses_to_apply_over_a_newer_commit(cloud: Cloud) -> None:
    """A newer commit was applied; an older pipeline's jobs are retried afterwards: the workspace is idle,
    so its plan runs, and its gate refuses to put the older code back, saying which run is newer."""
    newer = plan(cloud, origin=tfc.Origin(20, "b" * 40))
    tfc.apply(client(cloud), newer.id, message="m", deadline=deadline())
    older = plan(cloud, origin=tfc.Origin(10, "a" * 40))
    with pytest.raises(tfc.TfcError, match=rf"last applied by run {newer.id} of a newer commit"):
        tfc.apply(client(cloud), older.id, message="m", deadline=deadline())
    assert posted(cloud, "apply") == [f"/api/v2/runs/{newer.id}/actions/apply"]
    assert cloud.runs[older.id].status == "discarded"  # it no longer holds the workspace
    again = plan(cloud, origin=tfc.Origin(30, "c" * 40))  # and a newer commit still applies
    assert tfc.apply(client(cloud), again.id, message="m", deadline=deadline()).status == "applied"


def test_the_gate_job_says_when_its_run_was_superseded(cloud: Cloud) -> None:
    plan(cloud)
    plan(cloud)  # a newer pipeline: run-1 is discarded
    with pytest.raises(tfc.TfcError, match=r"run-1 ended discarded: .*superseded by a newer pipeline"):
        tfc.apply(client(cloud), "run-1", message="m", deadline=deadline())


# -- auto-apply, 409 ----------------------------------------------------------------------------------


def test_runs_never_inherit_the_workspaces_auto_apply(cloud: Cloud) -> None:
    cloud.workspaces["mlops-dev"]["auto-apply"] = True
    run = plan(cloud)
    assert (run.status, cloud.runs[run.id].confirmed) == ("planned", False)  # waits for the gate
    assert tfc.apply(client(cloud), run.id, message="m", deadline=deadline()).status == "applied"


def test_a_409_because_someone_confirmed_first_follows_the_apply(cloud: Cloud) -> None:
    plan(cloud)
    remote = client(cloud)
    original = cloud._act

    def confirmed_first(run: Any, action: str, body: Any) -> Any:
        if action == "apply":
            cloud._confirm(run)  # a person confirmed it in HCP Terraform meanwhile
        return original(run, action, body)

    cloud._act = confirmed_first  # type: ignore[method-assign]
    assert tfc.apply(remote, "run-1", message="m", deadline=deadline()).status == "applied"
    assert any("refused the confirmation" in line for line in remote.say)


# -- retries, connections, names ----------------------------------------------------------------------


def test_429_5xx_and_dropped_connections_are_retried(cloud: Cloud) -> None:
    cloud.faults = [
        ("GET", "/api/v2/organizations/", 429),
        ("POST", "/api/v2/workspaces/", 503),
        ("PUT", "/upload/", 502),
        ("GET", "/api/v2/runs/run-1", 500),
        ("GET", "/api/v2/runs/run-1", "drop"),
        ("GET", "/api/v2/runs/run-1", 504),
    ]
    assert plan(cloud).status == "planned"
    assert cloud.faults == []
    assert len(created(cloud)) == 1  # a retried read never creates a second run


def test_a_500_is_tried_again_on_a_read_and_never_on_a_write(cloud: Cloud) -> None:
    """pytfe retries 429 and 502-504 only: a read (the workspace, a configuration version) is also tried
    again after a 500; creating a run is not, since it may have been created (a second would be queued)."""
    cloud.faults = [("GET", "/api/v2/organizations/", 500)] * 2
    assert plan(cloud).status == "planned" and cloud.faults == []
    cloud.faults = [("POST", "/api/v2/runs", 500)]
    with pytest.raises(tfc.TfcError):
        plan(cloud)
    attempts = [body for method, path, body in cloud.calls if (method, path) == ("POST", "/api/v2/runs")]
    assert attempts[1:] == [500] and len(cloud.runs) == 1  # one attempt, answered by the fault


def test_an_unknown_workspace_says_the_token_may_not_see_it(cloud: Cloud) -> None:
    with pytest.raises(tfc.TfcError, match="acme/nope: not found, or the token cannot see it"):
        plan(cloud, workspace="nope")


def test_a_hostname_given_as_a_url_makes_a_working_run_url() -> None:
    settings = tfc.Settings.from_environment(
        {"TFC_TOKEN": "t", "TFC_ORGANIZATION": "acme", "TFC_WORKSPACE": "w", "TFC_HOSTNAME": "https://tfe.example.com/"}
    )
    assert settings.base == "https://tfe.example.com"
    assert settings.run_url("run-1") == "https://tfe.example.com/app/acme/workspaces/w/runs/run-1"


def test_files_with_non_ascii_names_are_uploaded(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "données").mkdir()
    (tmp_path / "données" / "é.tf").write_text("# é\n")
    (tmp_path / "main.tf").write_text("")
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    with tarfile.open(fileobj=io.BytesIO(tfc.configuration(tmp_path)), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["données/é.tf", "main.tf"]


# -- settings and the command line ------------------------------------------------------------------


def test_a_merge_request_plan_uses_the_unprotected_plan_token(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TFC_TOKEN", "TF_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TFC_PLAN_TOKEN", PLAN_TOKEN)
    monkeypatch.setenv("TFC_ORGANIZATION", "acme")
    monkeypatch.setenv("TFC_WORKSPACE", "mlops-dev")
    monkeypatch.setenv("TFC_ADDRESS", cloud.address)
    monkeypatch.setattr(tfc_api.time, "sleep", lambda seconds: None)
    cloud.scripts = [["planning", "planned_and_finished"]]
    assert cli.main(["tfc", "plan", "--speculative"]) == 0
    assert cli.main(["tfc", "plan"]) == 1  # applying needs TFC_TOKEN, which a merge request does not get


def test_missing_settings_are_named_and_nothing_is_called(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TFC_TOKEN", "TF_API_TOKEN", "TFC_PLAN_TOKEN", "TFC_ORGANIZATION", "TFC_WORKSPACE", "TFC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TFC_ORGANIZATION", "acme")
    assert cli.main(["tfc", "plan"]) == 1
    assert "set TFC_TOKEN, TFC_WORKSPACE" in capsys.readouterr().err
    assert cli.main(["tfc", "plan", "--speculative"]) == 1
    assert "set TFC_PLAN_TOKEN or TFC_TOKEN, TFC_WORKSPACE" in capsys.readouterr().err
    monkeypatch.setenv("TFC_TOKEN", TOKEN)
    monkeypatch.setenv("TFC_WORKSPACE", "mlops-dev")
    assert cli.main(["tfc", "apply"]) == 1
    assert "name the run to confirm: --run ID, or TFC_RUN_ID" in capsys.readouterr().err


def test_the_cli_plans_then_applies_through_the_dotenv_report(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TFC_TOKEN", TOKEN)
    monkeypatch.setenv("TFC_ORGANIZATION", "acme")
    monkeypatch.setenv("TFC_WORKSPACE", "mlops-dev")
    monkeypatch.setenv("TFC_ADDRESS", cloud.address)
    monkeypatch.setenv("CI_COMMIT_TITLE", "Add the churn pipeline")
    monkeypatch.setattr(tfc_api.time, "sleep", lambda seconds: None)
    assert cli.main(["tfc", "plan", "--dotenv", str(tmp_path / "tfc.env")]) == 0
    report = dict(line.split("=", 1) for line in (tmp_path / "tfc.env").read_text().splitlines())
    monkeypatch.setenv("TFC_RUN_ID", report["TFC_RUN_ID"])
    assert cli.main(["tfc", "apply"]) == 0
    assert cloud.runs["run-1"].status == "applied"
    assert created(cloud)[0]["attributes"]["message"] == f"Add the churn pipeline {tfc.MARKER}"
