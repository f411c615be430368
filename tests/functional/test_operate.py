"""The operator commands against moto in-process: `items diff | push | pull`, `run`, `runs`, `status`.

The same code acts on the local deployment (tests/infrastructure/test_local_demo.py runs them end
to end); here each AWS call and refusal is checked on its own, against a deployment's outputs file.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops_sfn import cli
from mlops_sfn.cli.runs import overrides
from mlops_sfn.core.router import RejectedEvent
from mlops_sfn.core.stages import STAGES
from mlops_sfn.local import REGION
from mlops_sfn.local.harness import QUALITY_GATE_ARN, LocalRuns
from mlops_sfn.local.sagemaker import JobResult
from mlops_sfn.local.simulated import SimulatedJobs
from mlops_sfn.operate import items as operate_items
from mlops_sfn.operate import rerun, runs
from tests.aws import BUCKET, IMAGE, ROLE_ARN, TABLE, Stack, deploy
from tests.conftest import DEMO, ITEMS, edited, load_item

pytestmark = pytest.mark.functional

ROUTER = f"arn:aws:lambda:{REGION}:123456789012:function:mlops-test-router"


def outputs_file(folder: Path, stack_arn: str, ownership: str = "seeded", **more: Any) -> Path:
    """`terraform output -json` of a root deployed as tests/aws.py deploys it."""
    values = {
        "bucket_name": BUCKET,
        "sagemaker_role_arn": ROLE_ARN,
        "image_uri": IMAGE,
        "state_machine_arn": stack_arn,
        "router_function_arn": ROUTER,
        "table_name": TABLE,
        "sagemaker_name_prefix": "mlops-dev-",
        "image_repository_arns": ["arn:aws:ecr:us-east-1:683313688378:repository/*"],
        "data_buckets": [],
        "kms_key_arn": None,
        "region": REGION,
        "items_ownership": ownership,
        **more,
    }
    path = folder / "outputs.json"
    path.write_text(
        json.dumps({name: {"value": value, "type": "string", "sensitive": False} for name, value in values.items()})
    )
    return path


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield deploy([load_item()])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "items"
    folder.mkdir()
    for name in (DEMO, "demo-dev-train-and-batch-score"):
        shutil.copy(ITEMS / f"{name}.json", folder)
    return folder


def table(stack: Stack) -> dict[str, dict[str, Any]]:
    return operate_items.deployed(stack.dynamodb, TABLE)


# --- items -----------------------------------------------------------------------------------------


def test_items_diff_names_what_differs_and_exits_1(stack: Stack, files: Path, tmp_path: Path, capsys: Any) -> None:
    item = edited(load_item(), {"description": "changed in the console"})
    stack.put_item(item)
    outputs = outputs_file(tmp_path, stack.state_machine_arn)

    assert cli.main(["items", "diff", str(files), "--outputs", str(outputs)]) == 1
    out = capsys.readouterr().out
    assert f"~ {DEMO}: description" in out
    assert "+ demo-dev-train-and-batch-score (only in the files" in out

    stack.put_item(load_item())
    assert cli.main(["items", "diff", str(files / f"{DEMO}.json"), "--outputs", str(outputs)]) == 0
    assert f"= {DEMO}" in capsys.readouterr().out


def test_items_push_writes_only_changed_valid_items(stack: Stack, files: Path, tmp_path: Path, capsys: Any) -> None:
    outputs = outputs_file(tmp_path, stack.state_machine_arn)
    assert cli.main(["items", "push", str(files), "--outputs", str(outputs)]) == 0
    out = capsys.readouterr().out
    assert "1 item(s) written" in out and "1 unchanged" in out
    assert set(table(stack)) == {DEMO, "demo-dev-train-and-batch-score"}
    assert table(stack)["demo-dev-train-and-batch-score"] == load_item("demo-dev-train-and-batch-score")


def test_items_push_of_an_invalid_item_writes_nothing(stack: Stack, files: Path, tmp_path: Path, capsys: Any) -> None:
    before = table(stack)
    broken = edited(
        load_item(), {"description": "new", "stages.training.request.ResourceConfig.InstanceType": "ml.m5.huge"}
    )
    (files / f"{DEMO}.json").write_text(json.dumps(broken))
    outputs = outputs_file(tmp_path, stack.state_machine_arn)

    assert cli.main(["items", "push", str(files), "--outputs", str(outputs)]) == 1
    err = capsys.readouterr().err
    assert "stages.training.request.ResourceConfig.InstanceType" in err
    assert f"nothing written to {TABLE}" in err
    assert table(stack) == before  # the valid new item was not written either


def test_items_push_checks_the_files_against_the_tables_other_items(
    stack: Stack, files: Path, tmp_path: Path, capsys: Any
) -> None:
    """A new item that would share the trigger prefix of an item only the table holds is refused."""
    other = edited(load_item("demo-dev-train-and-batch-score"), {"consumption_pipeline_name": "console-made"})
    stack.put_item(other)
    (files / f"{DEMO}.json").unlink()
    outputs = outputs_file(tmp_path, stack.state_machine_arn)

    assert cli.main(["items", "push", str(files), "--outputs", str(outputs)]) == 1
    assert "trigger.prefix" in capsys.readouterr().err
    assert "demo-dev-train-and-batch-score" not in table(stack)


def test_of_two_overlapping_pushes_that_claim_one_prefix_the_later_writes_nothing(
    stack: Stack, files: Path, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second trial: two `items push` at once, two new pipelines with the same trigger prefix; each
    checked the table before the other wrote, so both succeeded and the prefix's uploads then
    dead-lettered for both. Now the later one's transaction fails on the revision it read."""
    from mlops_sfn.operate import items as operate_items

    outputs = outputs_file(tmp_path, stack.state_machine_arn)
    (files / f"{DEMO}.json").unlink()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    rival = edited(load_item("demo-dev-train-and-batch-score"), {"consumption_pipeline_name": "console-made"})
    (theirs / "console-made.json").write_text(json.dumps(rival))

    checked_before = operate_items.deployed
    other_push: list[int] = []

    def deployed_then_the_other_push_lands(dynamodb: Any, name: str) -> dict[str, Any]:
        found = checked_before(dynamodb, name)  # this push has read the table and its revision...
        if not other_push:  # ...when the other push, started at the same time, writes first
            monkeypatch.setattr(operate_items, "deployed", checked_before)
            other_push.append(cli.main(["items", "push", str(theirs), "--outputs", str(outputs)]))
        return found

    monkeypatch.setattr(operate_items, "deployed", deployed_then_the_other_push_lands)
    assert cli.main(["items", "push", str(files), "--outputs", str(outputs)]) == 1
    assert other_push == [0]
    err = capsys.readouterr().err
    assert f"{TABLE} changed while this command ran (another items push or delete): nothing was written" in err
    assert set(table(stack)) == {DEMO, "console-made"}  # the later push's item is not there
    # run again, it sees the other item and refuses the shared prefix, naming it
    assert cli.main(["items", "push", str(files), "--outputs", str(outputs)]) == 1
    assert "trigger.prefix" in capsys.readouterr().err
    # the revision item is the table's own: never listed, diffed or pulled as a pipeline
    assert cli.main(["items", "diff", str(theirs), "--outputs", str(outputs)]) == 0
    assert "#items-revision" not in capsys.readouterr().out


def test_items_push_refuses_when_terraform_owns_the_items(
    stack: Stack, files: Path, tmp_path: Path, capsys: Any
) -> None:
    outputs = outputs_file(tmp_path, stack.state_machine_arn, ownership="terraform")
    assert cli.main(["items", "push", str(files), "--outputs", str(outputs)]) == 2
    assert 'items_ownership = "terraform"' in capsys.readouterr().err
    assert set(table(stack)) == {DEMO}


def test_items_pull_writes_the_table_back_as_plain_and_typed_json(stack: Stack, tmp_path: Path) -> None:
    console = edited(load_item(), {"description": "edited in the console"})
    stack.put_item(console)
    into = tmp_path / "pulled"
    outputs = outputs_file(tmp_path, stack.state_machine_arn)

    assert cli.main(["items", "pull", "--into", str(into), "--outputs", str(outputs)]) == 0
    assert json.loads((into / f"{DEMO}.json").read_text()) == console
    assert (into / "typed" / f"{DEMO}.json").exists()
    assert cli.main(["items", "diff", str(into), "--outputs", str(outputs)]) == 0  # round trip


def test_items_pull_keeps_each_files_key_order_and_leaves_unchanged_files_alone(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator's file keeps its layout: the keys stay in the file's order (the table keeps none), and
    a file that already holds the item is not rewritten (nor its typed copy)."""
    into, outputs = tmp_path / "pulled", outputs_file(tmp_path, stack.state_machine_arn)
    item = load_item()
    stack.put_item(item)
    into.mkdir()
    mine = {"description": item["description"], **{k: v for k, v in reversed(list(item.items())) if k != "description"}}
    path = into / "mine.json"
    path.write_text(json.dumps(mine, indent=2) + "\n")
    assert cli.main(["items", "pull", "--into", str(into), "--outputs", str(outputs)]) == 0
    assert "0 item(s) written" in capsys.readouterr().out and path.read_text() == json.dumps(mine, indent=2) + "\n"
    typed = into / "typed" / "mine.json"  # made by the first pull, as generate makes it
    stamps = (path.stat().st_mtime_ns, typed.stat().st_mtime_ns)
    assert cli.main(["items", "pull", "--into", str(into), "--outputs", str(outputs)]) == 0
    assert (path.stat().st_mtime_ns, typed.stat().st_mtime_ns) == stamps  # nothing changed: nothing written
    capsys.readouterr()
    stack.put_item(edited(item, {"description": "edited in the console"}))
    assert cli.main(["items", "pull", "--into", str(into), "--outputs", str(outputs)]) == 0
    assert "1 item(s) written" in capsys.readouterr().out
    pulled = json.loads(path.read_text())
    assert list(pulled) == list(mine) and pulled["description"] == "edited in the console"
    assert json.loads(typed.read_text())["description"] == {"S": "edited in the console"}
    # --into a file, or a folder that cannot be made, is one line.
    assert cli.main(["items", "pull", "--into", str(path), "--outputs", str(outputs)]) == 2
    assert "a file, not a folder" in capsys.readouterr().err
    assert cli.main(["items", "pull", "--into", str(path / "below"), "--outputs", str(outputs)]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_without_a_deployment_the_commands_say_how_to_name_one(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setattr("mlops_sfn.local.deployment.HOME", tmp_path / "nothing-up")
    monkeypatch.setattr("mlops_sfn.local.deployment.load", lambda home=tmp_path: None)
    assert cli.main(["runs"]) == 2
    err = capsys.readouterr().err
    assert "no deployment found" in err and "--outputs" in err and "mlops-sfn local up" in err


# --- run --------------------------------------------------------------------------------------------


def test_set_options_become_the_partial_item_the_router_merges() -> None:
    assert overrides(
        ['training.request.HyperParameters.alpha="0.5"', "stages.approval.run=false", "description=x y"]
    ) == {
        "stages": {"training": {"request": {"HyperParameters": {"alpha": "0.5"}}}, "approval": {"run": False}},
        "description": "x y",
    }
    for bad in ("training", "=3", "a..b=1"):
        with pytest.raises(cli.common.UsageError, match="PATH=VALUE"):
            overrides([bad])


class RouterFunction:
    """lambda:Invoke of the router, answered by the router's own code in this process (moto's Lambda
    would need Docker): an unhandled RejectedEvent comes back as Lambda reports it."""

    def __init__(self, stack: Stack) -> None:
        self.router, self.events = stack.router(), []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        assert FunctionName == ROUTER
        event = json.loads(Payload)
        self.events.append(event)
        try:
            body, error = self.router.handle(event, "request-1"), None
        except RejectedEvent as rejected:
            body, error = {"errorType": "RejectedEvent", "errorMessage": str(rejected)}, "Unhandled"
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())} | (
            {"FunctionError": error} if error else {}
        )


def with_router(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> RouterFunction:
    function = RouterFunction(stack)
    real = cli.common.target

    def target(outputs: Path | None) -> cli.common.Target:
        found = real(outputs)
        return cli.common.Target(
            found.outputs, lambda service: function if service == "lambda" else found.client(service), found.where
        )

    monkeypatch.setattr("mlops_sfn.cli.runs.target", target)
    return function


def test_run_starts_through_the_router_with_the_overrides(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    function = with_router(monkeypatch, stack)
    outputs = outputs_file(tmp_path, stack.state_machine_arn)
    code = cli.main(["run", DEMO, "--set", "approval.run=false", "--json", "--outputs", str(outputs)])

    assert code == 0
    started = json.loads(capsys.readouterr().out.splitlines()[-1])  # after the router's own log line
    assert function.events == [
        {"consumption_pipeline_name": DEMO, "overrides": {"stages": {"approval": {"run": False}}}}
    ]
    assert stack.execution_input(started["name"])["run"]["approval"] is False
    assert started["arn"].endswith(f":{started['name']}")


def test_items_delete_removes_an_item_but_not_under_a_run_in_flight_unless_forced(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    with_router(monkeypatch, stack)
    outputs = outputs_file(tmp_path, stack.state_machine_arn)
    assert cli.main(["run", DEMO, "--json", "--outputs", str(outputs)]) == 0  # in flight: moto never ends it
    started = json.loads(capsys.readouterr().out.splitlines()[-1])["name"]
    assert cli.main(["items", "delete", DEMO, "--outputs", str(outputs)]) == 1
    assert f"{DEMO} has a run in flight ({started}): let it end, or give --force" in capsys.readouterr().err
    assert DEMO in table(stack)
    assert cli.main(["items", "delete", DEMO, "--force", "--outputs", str(outputs)]) == 0
    assert DEMO not in table(stack)
    assert cli.main(["items", "delete", DEMO, "--outputs", str(outputs)]) == 1
    assert f"no pipeline {DEMO} in {TABLE}" in capsys.readouterr().err
    owned = outputs_file(tmp_path, stack.state_machine_arn, ownership="terraform")
    assert cli.main(["items", "delete", DEMO, "--outputs", str(owned)]) == 2


def test_run_of_an_invalid_override_or_an_unknown_pipeline_starts_nothing(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    with_router(monkeypatch, stack)
    outputs = outputs_file(tmp_path, stack.state_machine_arn)
    bad = ["run", DEMO, "--set", "training.request.ResourceConfig.InstanceType=ml.m5.huge", "--outputs", str(outputs)]

    assert cli.main(bad) == 1
    assert "the router refused the run" in capsys.readouterr().err
    assert cli.main(["run", "no-such-pipeline", "--outputs", str(outputs)]) == 1
    assert "no-such-pipeline" in capsys.readouterr().err
    assert stack.executions() == []


# --- runs and status --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished() -> Iterator[tuple[LocalRuns, list[str]]]:
    """Three runs of the demo pipeline in the local state machine: succeeded, failed at evaluation, succeeded."""
    with LocalRuns() as local:
        names = [
            local.run(load_item(), answer="approve").execution_name,
            local.run(load_item(), fail=["evaluation"]).execution_name,
            local.run(load_item("demo-dev-train-and-batch-score")).execution_name,
        ]
        yield local, names


def local_outputs(local: LocalRuns, folder: Path) -> Path:
    return outputs_file(folder, local.state_machine_arn, bucket_name=local.settings.bucket)


class Counting:
    """A Step Functions client that counts its calls by operation."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name in ("get_paginator",):
            return lambda operation: CountingPaginator(self, attribute(operation), operation)
        if callable(attribute) and not name.startswith("_") and name != "exceptions":

            def call(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                return attribute(*args, **kwargs)

            return call
        return attribute


class CountingPaginator:
    def __init__(self, counter: Counting, paginator: Any, operation: str) -> None:
        self.counter, self.paginator, self.operation = counter, paginator, operation

    def paginate(self, **options: Any) -> Iterator[dict[str, Any]]:
        for page in self.paginator.paginate(**options):
            self.counter.calls[self.operation] = self.counter.calls.get(self.operation, 0) + 1
            yield page


def test_runs_lists_the_newest_first_with_trigger_status_and_failing_stage(
    finished: tuple[LocalRuns, list[str]],
) -> None:
    local, names = finished
    sfn = Counting(local.sfn)
    found = runs.recent(sfn, local.state_machine_arn, DEMO)

    assert [run.name for run in found] == [names[1], names[0]]  # the other pipeline's run is left out
    failed, succeeded = found
    assert (failed.status, failed.failed_stage, failed.trigger) == ("FAILED", "evaluation", "manual")
    assert succeeded.status == "SUCCEEDED" and "rmse" in succeeded.checks["quality_gate"]
    assert sfn.calls == {"list_executions": 1, "describe_execution": 2}  # one list; one describe per run shown


def test_status_shows_each_stage_with_its_outcome_outputs_and_graph(
    finished: tuple[LocalRuns, list[str]], tmp_path: Path, capsys: Any
) -> None:
    local, names = finished
    outputs = local_outputs(local, tmp_path)
    graph = tmp_path / "run.mmd"

    assert cli.main(["status", names[1], "--json", "--graph", str(graph), "--outputs", str(outputs)]) == 1
    shown = json.loads(capsys.readouterr().out)
    outcomes = {stage: entry["outcome"] for stage, entry in shown["stages"].items()}
    assert outcomes["preprocessing"] == outcomes["training"] == "succeeded"
    assert outcomes["evaluation"] == "failed" and outcomes["register"] == "not reached"
    assert shown["failed_stage"] == "evaluation" and "simulated failure of evaluation" in shown["cause"]
    assert shown["stages"]["training"]["outputs"]["model_data_url"].endswith("model.tar.gz")
    assert shown["console_url"].startswith("https://us-east-1.console.aws.amazon.com/states/")
    assert "evaluation<br/>failed" in graph.read_text()

    assert cli.main(["status", names[0], "--outputs", str(outputs)]) == 0
    text = capsys.readouterr().out
    assert "SUCCEEDED" in text and "register" in text and "arn:aws:sagemaker" in text


def test_status_refuses_an_execution_it_cannot_show(
    finished: tuple[LocalRuns, list[str]], tmp_path: Path, capsys: Any
) -> None:
    local, _ = finished
    outputs = local_outputs(local, tmp_path)
    other = "arn:aws:states:us-east-1:123456789012:execution:another-machine:run-1"

    assert cli.main(["status", other, "--outputs", str(outputs)]) == 2
    assert "another state machine" in capsys.readouterr().err
    assert cli.main(["status", "no-such-run", "--outputs", str(outputs)]) == 1
    assert "no execution no-such-run" in capsys.readouterr().err
    # --graph onto a folder, or into one that does not exist: one line, before anything is asked of AWS.
    assert cli.main(["status", "no-such-run", "--graph", str(tmp_path), "--outputs", str(outputs)]) == 2
    assert f"--graph {tmp_path}: a folder, not a file: name the file to write" in capsys.readouterr().err
    missing = tmp_path / "no-such-folder" / "run.mmd"
    assert cli.main(["status", "no-such-run", "--graph", str(missing), "--outputs", str(outputs)]) == 2
    assert f"its folder {missing.parent} does not exist" in capsys.readouterr().err


def test_status_of_the_local_stack_gives_no_aws_console_link(
    finished: tuple[LocalRuns, list[str]], tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """The AWS console shows no run of the local AWS: status there leaves the link out."""
    from mlops_sfn.cli import common

    local, names = finished
    remote = common.target(local_outputs(local, tmp_path))
    monkeypatch.setattr(common, "target", lambda outputs: replace(remote, local=True))
    monkeypatch.setattr("mlops_sfn.cli.runs.target", lambda outputs: replace(remote, local=True))
    assert cli.main(["status", names[0]]) == 0
    assert "console:" not in capsys.readouterr().out
    assert cli.main(["status", names[0], "--json"]) == 0
    assert "console_url" not in json.loads(capsys.readouterr().out)


# --- rerun --------------------------------------------------------------------------------------------


def trained_and_evaluated() -> dict[str, Any]:
    """The demo's item up to its model (no approval, no serving: nothing waits)."""
    item = load_item()
    for stage in ("approval", "batch_transform", "deploy"):
        item["stages"][stage]["run"] = False
    return item


@pytest.fixture(scope="module")
def evaluation_failed() -> Iterator[tuple[LocalRuns, runs.Run, list[dict[str, Any]]]]:
    with LocalRuns() as local:
        report = local.run(trained_and_evaluated(), fail=["evaluation"])
        arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{report.execution_name}"
        earlier = runs.from_description(local.sfn.describe_execution(executionArn=arn))
        yield local, earlier, runs.history(local.sfn, arn)


def plan(local: LocalRuns, earlier: runs.Run, events: list[dict[str, Any]], stage: str, item: Any = None) -> Any:
    def taken(name: str) -> bool:
        listed = local.sfn.list_executions(stateMachineArn=local.state_machine_arn)["executions"]
        return any(execution["name"] == name for execution in listed)

    return rerun.plan_rerun(
        earlier, events, local.definition, item or trained_and_evaluated(), local.settings, stage, taken
    )


def test_a_rerun_from_evaluation_reuses_preprocessing_and_training_without_a_new_training_job(
    evaluation_failed: tuple[LocalRuns, runs.Run, list[dict[str, Any]]],
) -> None:
    local, earlier, events = evaluation_failed
    assert earlier.status == "FAILED" and earlier.failed_stage == "evaluation"
    training_jobs = local.sagemaker.list_training_jobs()["TrainingJobSummaries"]

    planned = plan(local, earlier, events, "evaluation")
    assert planned.reused == ("preprocessing", "training")
    assert rerun.missing_outputs(planned, local.s3, local.sagemaker) == []
    report = local.run_input(planned.execution_input)

    assert report.status == "SUCCEEDED", report.cause
    assert report.stages == {
        "preprocessing": "reused",
        "training": "reused",
        "tuning": "skipped",
        "evaluation": "succeeded",
        "quality_gate": "succeeded",
        "register": "succeeded",
        "approval": "skipped",
        "create_model": "succeeded",
        "batch_transform": "skipped",
        "deploy": "skipped",
        "monitoring": "skipped",  # it follows a deploy
    }
    assert local.sagemaker.list_training_jobs()["TrainingJobSummaries"] == training_jobs  # nothing retrained
    assert not {"Preprocessing", "Training"} & set(report.states)
    # The evaluation read the model the earlier training made, under a name of its own.
    evaluation = planned.execution_input["stages"]["evaluation"]["request"]
    model = earlier.output or runs.results_so_far(events)
    assert model["training"]["model_data_url"] in json.dumps(evaluation)
    earlier_request = earlier.execution_input["stages"]["evaluation"]["request"]
    assert evaluation["ProcessingJobName"] != earlier_request["ProcessingJobName"]
    again = plan(local, earlier, events, "evaluation")
    assert again.name != planned.name  # the next attempt is named anew


def test_a_rerun_is_refused_when_an_earlier_stage_failed_or_changed_or_its_outputs_are_gone(
    evaluation_failed: tuple[LocalRuns, runs.Run, list[dict[str, Any]]],
) -> None:
    local, earlier, events = evaluation_failed
    with pytest.raises(rerun.RerunRefused, match=r"evaluation did not succeed .* rerun from evaluation or earlier"):
        plan(local, earlier, events, "register")
    ran = ", ".join(stage for stage in STAGES if earlier.execution_input["run"].get(stage))
    with pytest.raises(rerun.RerunRefused) as refused:  # a stage the run never switched on starts nothing
        plan(local, earlier, events, "tuning")
    assert str(refused.value) == (
        f"--from tuning: tuning did not run in {earlier.name}; rerun from a stage that did ({ran})"
    )

    changed = edited(trained_and_evaluated(), {"stages.training.request.HyperParameters.n_estimators": "7"})
    with pytest.raises(rerun.RerunRefused, match=r"stages\.training changed since"):
        plan(local, earlier, events, "evaluation", changed)

    planned = plan(local, earlier, events, "evaluation")
    model = planned.execution_input["results"]["training"]["model_data_url"]
    bucket, _, key = model.removeprefix("s3://").partition("/")
    body = local.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    local.s3.delete_object(Bucket=bucket, Key=key)
    try:
        assert rerun.missing_outputs(planned, local.s3, local.sagemaker) == [f"training: {model}"]
    finally:
        local.s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_a_rerun_reads_its_upload_again_only_if_it_still_passes_its_manifest_check() -> None:
    """A rerun reads the earlier run's upload folder again: a file changed, or the manifest replaced, since
    that run was verified, and the rerun is refused naming it; an item reading no upload is not checked."""
    folder, bucket = "input/demo-dev-domain-cal-house-price/2024-06-01/", "rerun-upload-check"
    with mock_aws():  # (inside another test's moto, nothing is reset: the bucket is this test's own)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=bucket)
        etag = s3.put_object(Bucket=bucket, Key=folder + "data/houses.csv", Body=b"6000 rows")["ETag"].strip('"')
        body = json.dumps({"files": [{"key": "data/houses.csv", "etag": etag}]}).encode()
        manifest = s3.put_object(Bucket=bucket, Key=folder + "manifest.json", Body=body)["ETag"].strip('"')
        trigger = {"source": "s3", "bucket": bucket, "key": folder + "manifest.json", "etag": manifest}
        planned = rerun.Rerun("a-rerun", {"trigger": trigger}, ("preprocessing",))
        assert rerun.upload_changed(planned, load_item(), s3) is None

        s3.put_object(Bucket=bucket, Key=folder + "data/houses.csv", Body=b"100 rows")
        assert "data/houses.csv (ETag differs)" in str(rerun.upload_changed(planned, load_item(), s3))
        unread = json.loads(json.dumps(load_item()).replace("{upload_prefix}", "data/{dataset_date}/"))
        assert rerun.upload_changed(planned, unread, s3) is None

        s3.put_object(Bucket=bucket, Key=folder + "manifest.json", Body=body + b" ")
        assert "manifest.json was replaced after this event" in str(rerun.upload_changed(planned, load_item(), s3))
        for entry in s3.list_objects_v2(Bucket=bucket)["Contents"]:
            s3.delete_object(Bucket=bucket, Key=entry["Key"])
        s3.delete_bucket(Bucket=bucket)


def test_a_rerun_of_a_rerun_keeps_reusing_and_names_the_run_that_made_each_result(
    evaluation_failed: tuple[LocalRuns, runs.Run, list[dict[str, Any]]],
) -> None:
    local, earlier, events = evaluation_failed
    first = local.run_input(plan(local, earlier, events, "evaluation").execution_input)
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{first.execution_name}"
    rerun_run = runs.from_description(local.sfn.describe_execution(executionArn=arn))

    second = plan(local, rerun_run, runs.history(local.sfn, arn), "create_model")
    switched_on = edited(trained_and_evaluated(), {"stages.approval.run": True})  # off in the earlier runs
    with pytest.raises(rerun.RerunRefused, match=r"stages\.approval\.run changed since"):
        plan(local, rerun_run, runs.history(local.sfn, arn), "create_model", switched_on)

    assert second.execution_input["reused"] == {
        "preprocessing": earlier.name,
        "training": earlier.name,
        "evaluation": first.execution_name,
        "register": first.execution_name,
    }
    assert second.execution_input["results"]["quality_gate"]["met"] is True
    assert local.run_input(second.execution_input).status == "SUCCEEDED"
    # `runs` marks both as reruns of the run whose folder they work in; a run is no rerun of itself
    assert rerun_run.rerun_of == earlier.name and earlier.rerun_of is None
    second_arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{second.name}"
    assert runs.from_description(local.sfn.describe_execution(executionArn=second_arn)).rerun_of == earlier.name


def test_runs_of_an_unknown_pipeline_says_so(stack: Stack, tmp_path: Path, capsys: Any) -> None:
    outputs = outputs_file(tmp_path, stack.state_machine_arn)
    assert cli.main(["runs", "no-such-pipeline", "--outputs", str(outputs)]) == 1
    assert f"no pipeline no-such-pipeline in {TABLE}" in capsys.readouterr().err
    assert cli.main(["runs", DEMO, "--outputs", str(outputs)]) == 0
    assert capsys.readouterr().out == f"no runs of {DEMO}\n"


# --- redrive ------------------------------------------------------------------------------------------


def wait_for(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def entered(local: LocalRuns, arn: str) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in runs.history(local.sfn, arn) if "stateEnteredEventDetails" in e
    ]


def test_a_run_stopped_in_the_quality_gate_is_redriven_from_it_and_nothing_before_runs_again(
    tmp_path: Path, capsys: Any
) -> None:
    with LocalRuns() as local:
        gate = local.local.functions[QUALITY_GATE_ARN]

        def slow_gate(event: Any, context: Any) -> Any:
            time.sleep(1.5)  # long enough to be stopped in
            return gate(event, context)

        local.local.functions = {**local.local.functions, QUALITY_GATE_ARN: slow_gate}
        arn, execution_input = local.start(trained_and_evaluated())
        wait_for(lambda: "Check quality gate" in entered(local, arn))
        local.sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped in the quality gate")
        wait_for(lambda: local.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED")
        local.local.functions = {**local.local.functions, QUALITY_GATE_ARN: gate}
        name = execution_input["execution_name"]

        assert cli.main(["redrive", name, "--wait", "--json", "--outputs", str(local_outputs(local, tmp_path))]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["status"] == "SUCCEEDED" and shown["stages"]["register"]["outcome"] == "succeeded"
        described = local.sfn.describe_execution(executionArn=arn)
        assert described["redriveCount"] == 1
        states = entered(local, arn)
        assert states.count("Training") == 1 and states.count("Check quality gate") == 2


def test_redrive_refuses_runs_it_cannot_help_and_names_the_rerun_that_can(
    finished: tuple[LocalRuns, list[str]], tmp_path: Path, capsys: Any
) -> None:
    local, names = finished
    outputs = local_outputs(local, tmp_path)

    assert cli.main(["redrive", names[1], "--outputs", str(outputs)]) == 1  # failed at evaluation, caught
    err = capsys.readouterr().err
    assert "ended in the Failed state" in err and f"mlops-sfn rerun {names[1]} --from evaluation" in err
    assert cli.main(["redrive", names[0], "--outputs", str(outputs)]) == 1
    assert "is SUCCEEDED: only a failed, timed-out or stopped run can be redriven" in capsys.readouterr().err


def test_redrive_refuses_a_run_stopped_in_a_sagemaker_job_whose_name_is_taken(tmp_path: Path, capsys: Any) -> None:
    class SlowTraining(SimulatedJobs):
        def run(
            self, kind: str, request: dict[str, Any], s3: Any = None, logs: Any = None, account: str = ""
        ) -> JobResult:
            if kind == "createTrainingJob":
                time.sleep(2.0)
            return super().run(kind, request, s3)

    with LocalRuns() as local:
        local.jobs = SlowTraining(local.s3)
        arn, execution_input = local.start(trained_and_evaluated())
        wait_for(lambda: "Training" in entered(local, arn))
        local.sfn.stop_execution(executionArn=arn)
        wait_for(lambda: local.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED")
        name = execution_input["execution_name"]

        assert cli.main(["redrive", name, "--outputs", str(local_outputs(local, tmp_path))]) == 1
        err = capsys.readouterr().err
        assert "SageMaker job name is taken" in err and f"mlops-sfn rerun {name} --from training" in err
