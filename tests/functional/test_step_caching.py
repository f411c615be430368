"""Step caching end to end in the local AWS: the router's lookup (the harness plans as the router
does), the state machine's "Record <stage>" states writing the run ledger (DynamoDB putItem), and
a later run reusing what was recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mlops_sfn.cli.runs import _report as report
from mlops_sfn.core import cache
from mlops_sfn.core.plan import plan_execution
from mlops_sfn.core.triggers import Manual
from mlops_sfn.local.harness import LocalRuns
from mlops_sfn.operate import runs
from tests.conftest import edited, load_item

pytestmark = pytest.mark.functional

PIPELINE = "demo-dev-train-and-batch-score"
PREFIX = f"input/{PIPELINE}/"


@pytest.fixture
def local() -> Iterator[LocalRuns]:
    with LocalRuns() as harness:
        for name, body in (("code/sourcedir.tar.gz", b"code"), ("train/part-1.csv", b"1,2\n"), ("score/a.csv", b"3\n")):
            harness.s3.put_object(Bucket=harness.settings.bucket, Key=PREFIX + name, Body=body)
        yield harness


def item(*cached: str) -> dict[str, Any]:
    return edited(load_item(PIPELINE), {f"stages.{stage}.cache": {"enabled": True} for stage in cached})


def records(local: LocalRuns) -> list[dict[str, Any]]:
    return local.dynamodb.scan(TableName=local.ledger)["Items"]


def training_jobs(local: LocalRuns) -> int:
    return len(local.sagemaker.list_training_jobs()["TrainingJobSummaries"])


def test_a_second_run_with_nothing_changed_reuses_the_cached_stages(local: LocalRuns) -> None:
    first = local.run(item("training", "batch_transform"))
    assert first.status == "SUCCEEDED", first.cause
    recorded = {entry["stage"]["S"]: entry for entry in records(local)}
    assert set(recorded) == {"training", "batch_transform"}
    assert recorded["training"]["execution"]["S"] == first.execution_name
    assert "model_data_url" in json.loads(recorded["training"]["results"]["S"])
    assert "Record training" in first.states

    second = local.run(item("training", "batch_transform"))
    assert second.status == "SUCCEEDED", second.cause
    assert (second.stages["training"], second.stages["batch_transform"]) == ("reused", "reused")
    assert second.stages["create_model"] == "succeeded"  # not cacheable: it runs, on the recorded model
    assert training_jobs(local) == 1
    assert "Training" not in second.states and second.transitions < first.transitions
    models = [local.sagemaker.describe_model(ModelName=m["ModelName"]) for m in local.sagemaker.list_models()["Models"]]
    served = {model["PrimaryContainer"]["ModelDataUrl"] for model in models}
    assert len(models) == 2 and len(served) == 1  # the second run serves the model the first one trained
    assert first.execution_name in served.pop()


def test_status_names_the_run_a_reused_stage_came_from(local: LocalRuns, capsys: pytest.CaptureFixture[str]) -> None:
    first = local.run(item("training"))
    second = local.run(item("training"))
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{second.execution_name}"
    run = runs.from_description(local.sfn.describe_execution(executionArn=arn))
    capsys.readouterr()
    report(local.sfn, run, as_json=True, graph=None)
    training = json.loads(capsys.readouterr().out)["stages"]["training"]
    assert (training["outcome"], training["reused_from"]) == ("reused", first.execution_name)
    assert "model_data_url" in training["outputs"]
    report(local.sfn, run, as_json=False, graph=None)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("training")]
    assert f"reused                 from {first.execution_name}; s3://" in line and "/training/" in line


def test_new_training_data_misses_training_and_what_uses_its_model(local: LocalRuns) -> None:
    assert local.run(item("training", "batch_transform")).status == "SUCCEEDED"
    local.s3.put_object(Bucket=local.settings.bucket, Key=PREFIX + "train/part-1.csv", Body=b"1,2\n5,6\n")
    again = local.run(item("training", "batch_transform"))
    assert again.status == "SUCCEEDED", again.cause
    assert (again.stages["training"], again.stages["batch_transform"]) == ("succeeded", "succeeded")
    assert training_jobs(local) == 2 and len(records(local)) == 4


def test_a_failed_stage_is_never_recorded(local: LocalRuns) -> None:
    failed = local.run(item("training"), fail={"training"})
    assert failed.status == "FAILED"
    assert records(local) == []
    assert local.run(item("training")).stages["training"] == "succeeded"


def test_without_cache_blocks_nothing_is_recorded_or_reused(local: LocalRuns) -> None:
    for _ in range(2):
        assert local.run(item()).stages["training"] == "succeeded"
    assert records(local) == [] and training_jobs(local) == 2


def test_a_new_harness_starts_with_an_empty_ledger() -> None:
    """moto's backends outlive a harness, and the next one takes its name: no record may carry over."""
    for _ in range(2):
        with LocalRuns() as harness:
            assert records(harness) == []
            for name in ("code/sourcedir.tar.gz", "train/part-1.csv", "score/a.csv"):
                harness.s3.put_object(Bucket=harness.settings.bucket, Key=PREFIX + name, Body=b"x")
            assert harness.run(item("training")).stages["training"] == "succeeded"
            assert len(records(harness)) == 1


@pytest.mark.parametrize(
    ("tampered", "why"),
    [
        ("another pipeline's run", "is not a run of demo-dev-train-and-batch-score"),
        ("another bucket", "its run folder is not"),
        ("a folder of another run", "its run folder is not"),
        ("a result outside its folder", "its results name s3://someone-elses-bucket/model.tar.gz"),
        ("a run this state machine never ran", "is not a run of this state machine"),
        ("a time outside its run", "is not within"),
        ("the model replaced since", "changed after the stage was recorded"),
        ("the model gone", "is gone"),
    ],
)
def test_a_ledger_record_is_reused_only_if_aws_confirms_what_it_says(local: LocalRuns, tampered: str, why: str) -> None:
    """Anyone who can write the ledger table, or the run folders, must not make a run read other data:
    a record is reused only if it names a run of this pipeline, in this deployment's bucket, with its
    results in that run's folder, that Step Functions ran and ended SUCCEEDED around the record's time,
    and whose outputs are all still there, none written after the record. Otherwise the stage runs
    (the router's log says why) and is recorded anew."""
    first = local.run(item("training"))
    assert first.status == "SUCCEEDED", first.cause
    (record,) = records(local)
    folder = record["run_folder"]["S"]
    other = "demo-dev-domain-cal-house-price-0123456789abcdef"
    never = f"{PIPELINE}-{'e' * 16}"
    results = json.loads(record["results"]["S"])
    bucket, _, model = results["model_data_url"].removeprefix("s3://").partition("/")
    changed = {
        "another pipeline's run": {
            "execution": {"S": other},
            "run_folder": {"S": folder.replace(f"/{PIPELINE}/{first.execution_name}/", f"/{other[:-17]}/{other}/")},
        },
        "another bucket": {"run_folder": {"S": folder.replace(local.settings.bucket, "someone-elses-bucket")}},
        "a folder of another run": {
            "run_folder": {"S": folder.replace(first.execution_name, f"{PIPELINE}-{'f' * 16}")}
        },
        "a result outside its folder": {
            "results": {"S": json.dumps(results | {"model_data_url": "s3://someone-elses-bucket/model.tar.gz"})}
        },
        "a run this state machine never ran": {
            "execution": {"S": never},
            "run_folder": {"S": folder.replace(first.execution_name, never)},
        },
        "a time outside its run": {"recorded_at": {"S": "2024-01-01T00:00:00Z"}},
        "the model replaced since": {},
        "the model gone": {},
    }[tampered]
    if tampered == "the model replaced since":
        time.sleep(1.05)  # S3 keeps LastModified to the second
        local.s3.put_object(Bucket=bucket, Key=model, Body=b"another model")
    if tampered == "the model gone":
        local.s3.delete_object(Bucket=bucket, Key=model)
    local.dynamodb.put_item(TableName=local.ledger, Item=record | changed)
    planned = plan_execution(item("training"), Manual(run_id="look"), local.settings)
    clients = (local.s3, local.dynamodb, local.sfn)
    found = cache.reuse(item("training"), planned, clients, local.ledger, local.state_machine_arn)
    assert why in str(found["training"].why_not) and "reused" not in planned

    local.dynamodb.put_item(TableName=local.ledger, Item=record | changed)

    second = local.run(item("training"))
    assert second.status == "SUCCEEDED", second.cause
    assert second.stages["training"] == "succeeded" and training_jobs(local) == 2  # trained again
    (rewritten,) = [r for r in records(local) if r["execution"]["S"] == second.execution_name]
    assert rewritten["run_folder"]["S"].endswith(f"/{second.execution_name}/")


def test_a_stage_of_a_run_that_failed_later_is_not_reused(local: LocalRuns, capsys: pytest.CaptureFixture[str]) -> None:
    """Training succeeded and was recorded; the run failed after it. Its model was never evaluated
    as a whole run's: the next run trains again and says why."""
    failed = local.run(item("training"), fail={"batch_transform"})
    assert failed.status == "FAILED" and len(records(local)) == 1
    planned = plan_execution(item("training"), Manual(run_id="look"), local.settings)
    clients = (local.s3, local.dynamodb, local.sfn)
    found = cache.reuse(item("training"), planned, clients, local.ledger, local.state_machine_arn)
    assert f"{failed.execution_name} did not succeed (FAILED)" in str(found["training"].why_not)
    again = local.run(item("training"))
    assert again.stages["training"] == "succeeded" and training_jobs(local) == 2
    # status says why the stage ran although the ledger held a record of it
    arn = local.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{again.execution_name}"
    run = runs.from_description(local.sfn.describe_execution(executionArn=arn))
    capsys.readouterr()
    report(local.sfn, run, as_json=True, graph=None)
    training = json.loads(capsys.readouterr().out)["stages"]["training"]
    assert training["outcome"] == "succeeded"
    why = f"the ledger's record is not reused: {failed.execution_name} did not succeed (FAILED)"
    assert training["not_reused"] == why
    report(local.sfn, run, as_json=False, graph=None)
    assert f"ran: the ledger's record is not reused: {failed.execution_name} did not succeed" in capsys.readouterr().out


def test_a_router_that_may_not_read_runs_reuses_nothing(local: LocalRuns) -> None:
    """Without states:DescribeExecution (the router's FindRuns statement) no record can be proven:
    the stage runs, and the reason names the refusal."""
    from botocore.exceptions import ClientError

    assert local.run(item("training")).status == "SUCCEEDED"

    class Refusing:
        exceptions = local.sfn.exceptions

        def describe_execution(self, **_: Any) -> Any:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}
            raise ClientError(error, "DescribeExecution")

    planned = plan_execution(item("training"), Manual(run_id="look"), local.settings)
    clients = (local.s3, local.dynamodb, Refusing())
    found = cache.reuse(item("training"), planned, clients, local.ledger, local.state_machine_arn)
    assert "could not be read: AccessDeniedException" in str(found["training"].why_not)
