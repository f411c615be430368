"""The mlops-sfn command: exit codes and output, run as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops_sfn.core import dynamodb_json
from mlops_sfn.core.plan import plan_execution
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.triggers import parse_event
from tests.conftest import EVENTS, ITEMS, ROOT, edited, load_event, load_item

DEMO_FILE = ITEMS / "demo-dev-domain-cal-house-price.json"


def run(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlops_sfn.cli", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, check=False, env={"PATH": "", **(env or {})}
    )


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_validate_defaults_to_the_items_folder() -> None:
    result = run("validate")
    assert result.returncode == 0, result.stdout
    assert "4 item(s) valid" in result.stdout


def test_validate_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", edited(load_item(), {"stages.training.run": "Y", "owner": "me"}))
    result = run("validate", bad)
    assert result.returncode == 1
    assert result.stdout == ""  # problems go to stderr, stdout carries only results
    lines = result.stderr.splitlines()
    assert f"{bad}: owner: unknown field" in lines[0] or f"{bad}: owner: unknown field" in lines[1]
    assert any(line.startswith(f"{bad}: stages.training.run: expected boolean") for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "line 1 column 2: not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            '{"consumption_pipeline_name": {"S": "x"}, "stages": {"M": {"a": {"Q": 1}}}}',
            "stages.a: expected a DynamoDB-typed value",
        ),
        ("", "not valid JSON"),
    ],
)
def test_validate_never_tracebacks_on_bad_files(tmp_path: Path, content: str, words: str) -> None:
    result = run("validate", write(tmp_path / "item.json", content))
    assert result.returncode == 1
    assert words in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_accepts_dynamodb_json_and_folders(tmp_path: Path) -> None:
    write(tmp_path / "typed.json", dynamodb_json.to_typed(load_item()))
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested" / "plain.json", load_item("demo-dev-deploy-existing-model"))
    result = run("validate", tmp_path)
    assert result.returncode == 0, result.stdout
    assert "2 item(s) valid" in result.stdout


def test_validate_finds_clashes_between_items(tmp_path: Path) -> None:
    shutil.copy(DEMO_FILE, tmp_path / "a.json")
    write(tmp_path / "b.json", edited(load_item(), {"consumption_pipeline_name": "other"}))
    result = run("validate", tmp_path)
    assert result.returncode == 1
    prefix = "'input/demo-dev-domain-cal-house-price/'"
    assert (
        f"{tmp_path / 'b.json'}: trigger.prefix: {prefix} is also the prefix of {tmp_path / 'a.json'}" in result.stderr
    )


def test_validate_lets_only_enabled_valid_items_own_a_prefix_and_allows_nesting(tmp_path: Path) -> None:
    # As in the router: a disabled item owns no prefix, and an upload belongs to the longest prefix holding it.
    shutil.copy(DEMO_FILE, tmp_path / "a.json")
    write(tmp_path / "off.json", edited(load_item(), {"consumption_pipeline_name": "off", "enabled": False}))
    inner = {"consumption_pipeline_name": "inner", "trigger.prefix": "input/demo-dev-domain-cal-house-price/a/"}
    write(tmp_path / "inner.json", edited(load_item(), inner))
    result = run("validate", tmp_path)
    assert result.returncode == 0, result.stdout
    assert "3 item(s) valid" in result.stdout


@pytest.mark.parametrize("args", [("validate", "no/such/path"), ("plan",), ("frobnicate",), ("plan", "missing.json")])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_plan_lists_stages_in_order() -> None:
    result = run("plan", DEMO_FILE)
    assert result.returncode == 0, result.stdout
    stage_lines = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert stage_lines[:4] == ["preprocessing", "training", "tuning", "evaluation"]
    assert "-  tuning           skipped" in result.stdout


def test_plan_json_is_what_the_router_builds() -> None:
    result = run("plan", DEMO_FILE, "--event", EVENTS / "s3_object_created.json", "--json")
    assert result.returncode == 0, result.stdout
    (trigger,) = parse_event(load_event("s3_object_created"), invocation_id="plan")
    assert json.loads(result.stdout) == plan_execution(load_item(), trigger, EXAMPLE_SETTINGS)


def test_plan_graph_marks_skipped_stages() -> None:
    result = run("plan", DEMO_FILE, "--graph")
    assert result.returncode == 0
    assert result.stdout.startswith("flowchart TD")
    assert 'tuning["tuning<br/>(skipped)"]:::skipped' in result.stdout
    assert 'training["training"]\n' in result.stdout


def test_plan_of_an_invalid_item_names_the_field(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", edited(load_item(), {"stages.register.run": False}))
    result = run("plan", bad)
    assert result.returncode == 1
    assert f"{bad}: stages.approval: needs the register stage" in result.stderr


def test_plan_of_an_event_that_starts_nothing() -> None:
    result = run("plan", DEMO_FILE, "--event", EVENTS / "s3_object_created_part_of_upload.json")
    assert result.returncode == 1
    assert "this event starts nothing" in result.stderr


AIOPS = ROOT / "tests/import/aiops_input.yaml"  # the aiops-modules example's input.yaml, before deploy-time sed
REUSABLE = ROOT / "tests/import/reusable_framework_item.json"  # the reusable framework's sample item
# The aiops example reads its raw data from AWS's public sample bucket: declared as a data bucket.
SAMPLE_DATA = {"DATA_BUCKETS": "sagemaker-sample-data-us-east-1"}
FILLED = ("--set", "MLOPS_BUCKET={bucket}", "--set", "IMAGE_URI={image}")


def test_an_aiops_import_names_the_deploy_time_tokens_left_to_fill() -> None:
    result = run("import", "aiops", AIOPS, env=SAMPLE_DATA)
    assert result.returncode == 1
    unfilled = [line for line in result.stderr.splitlines() if "a deploy-time token of the earlier file" in line]
    assert [line.split(": ")[1] for line in unfilled] == ["IMAGE_URI", "MLOPS_BUCKET"]  # the role's fields are gone
    assert "--set 'MLOPS_BUCKET=VALUE'" in result.stderr
    assert run("import", "aiops", AIOPS, "--set", "MLOPS_BUCKET").returncode == 2  # not NAME=VALUE


def test_an_aiops_import_fills_the_region_token_and_refuses_a_set_that_matches_nothing(tmp_path: Path) -> None:
    # aiops' deployspec fills AWS_REGION_NAME with the deployment's region, as every run's {region} is.
    text = AIOPS.read_text()
    assert "s3://MLOPS_BUCKET/demo/scripts" in text
    source = write(tmp_path / "input.yaml", text.replace("MLOPS_BUCKET/demo/scripts", "MLOPS_BUCKET/AWS_REGION_NAME/s"))
    result = run("import", "aiops", source, *FILLED, env=SAMPLE_DATA)
    assert result.returncode == 0, result.stderr
    assert "s3://{bucket}/{region}/s" in result.stdout and "AWS_REGION_NAME" not in result.stdout
    # A --set that matches no token of the file would be silently ignored: refused, naming the file's tokens.
    refused = run("import", "aiops", AIOPS, *FILLED, "--set", "MLOPS_BUKET=x")
    assert refused.returncode == 2
    held = "IMAGE_URI, MLOPS_BUCKET, SAGEMAKER_EXECUTION_ROLE"
    assert f"holds no token 'MLOPS_BUKET' (its tokens: {held})" in refused.stderr


def test_an_aiops_import_carries_over_what_its_runs_did(tmp_path: Path) -> None:
    result = run("import", "aiops", AIOPS, *FILLED, env=SAMPLE_DATA)
    assert result.returncode == 0, result.stderr
    item = json.loads(result.stdout)
    stages = item["stages"]
    assert item["consumption_pipeline_name"] == "aiops-demo"
    # Only what the earlier state machine sent: no request-level AppManaged, no role; members kept.
    for stage in ("preprocessing", "evaluation"):
        assert "AppManaged" not in stages[stage]["request"] and "RoleArn" not in stages[stage]["request"]
        assert f"{stage}.input.AppManaged: dropped; the earlier state machine never sent it" in result.stderr
    assert stages["preprocessing"]["request"]["ProcessingInputs"][0]["AppManaged"] is False
    # its jobs' Tags are the item's, which every resource of a run carries
    assert item["tags"] == {"APP_ID": "aiops"} and all("Tags" not in stage["request"] for stage in stages.values())
    assert "preprocessing.input.Tags: moved to the item's tags" in result.stderr
    training = stages["training"]["request"]
    assert [c["ChannelName"] for c in training["InputDataConfig"]] == ["training", "code"]
    assert training["AlgorithmSpecification"]["TrainingImage"] == "{image}"
    assert training["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    # The model the earlier convention located (training named after the run) is this run's model.
    model_input = stages["evaluation"]["request"]["ProcessingInputs"][0]["S3Input"]
    assert model_input["S3Uri"] == "{model_data_url}" and model_input["LocalPath"] == "/opt/ml/processing/model"
    assert "ModelDataUrl" not in stages["create_model"]["request"]["PrimaryContainer"]
    assert stages["evaluation"]["report_uri"] == "s3://{bucket}/demo/evaluation/output/evaluation.json"
    assert stages["batch_transform"]["request"]["TransformOutput"]["S3OutputPath"] == (
        "s3://{bucket}/demo/batch-output/{execution}/"
    )
    # Planned: evaluation reads the model this run's training job writes.
    planned = run("plan", write(tmp_path / "aiops.json", item), "--json", env=SAMPLE_DATA)
    assert planned.returncode == 0, planned.stderr
    runs = json.loads(planned.stdout)["stages"]
    job = runs["training"]["request"]
    model = f"{job['OutputDataConfig']['S3OutputPath']}{job['TrainingJobName']}/output/model.tar.gz"
    assert runs["evaluation"]["request"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == model
    assert runs["create_model"]["request"]["PrimaryContainer"]["ModelDataUrl"] == model


def test_a_reusable_framework_import_carries_over_what_its_state_machine_sent() -> None:
    unfilled = run("import", "reusable-framework", REUSABLE)
    assert unfilled.returncode == 1 and "your bucket: a deploy-time token of the earlier file" in unfilled.stderr
    # Its endpoint keeps its name, which a default deployment ("mlops-dev-") may not touch.
    filled = ("--set", "your bucket={bucket}", "--dynamodb-json")
    refused = run("import", "reusable-framework", REUSABLE, *filled)
    assert refused.returncode == 1
    assert "stages.deploy.endpoint_name: 'demo-endpoint' is outside this deployment" in refused.stderr
    result = run("import", "reusable-framework", REUSABLE, *filled, env={"SAGEMAKER_NAME_PREFIX": "demo-"})
    assert result.returncode == 0, result.stderr
    stages = dynamodb_json.from_typed(json.loads(result.stdout))["stages"]
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3"
    pre = stages["preprocessing"]["request"]
    assert [(i["InputName"], i["S3Input"]["LocalPath"]) for i in pre["ProcessingInputs"]] == [
        ("code", "/opt/ml/processing/input/code"),
        ("entrypoint", "/opt/ml/processing/input/entrypoint"),
    ]
    assert [o["S3Output"]["LocalPath"] for o in pre["ProcessingOutputConfig"]["Outputs"]] == [
        "/opt/ml/processing/train",
        "/opt/ml/processing/test",
        "/opt/ml/processing/output",
    ]
    assert pre["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    training = stages["training"]["request"]
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in training["InputDataConfig"]} == {
        "train": "s3://{bucket}/terraform-demo/sklearn-dataset/train/",  # script.py reads both
        "test": "s3://{bucket}/terraform-demo/sklearn-dataset/test/",
    }
    assert training["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert training["ResourceConfig"] == {"InstanceCount": 1, "VolumeSizeInGB": 30, "InstanceType": "ml.m5.xlarge"}
    assert training["AlgorithmSpecification"]["TrainingImage"] == image
    tuning = stages["tuning"]["request"]
    assert tuning["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] == 5
    assert tuning["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"] == image
    assert len(tuning["TrainingJobDefinition"]["InputDataConfig"]) == 2
    assert "5 in parallel" in result.stderr and "had none" not in result.stderr
    assert stages["create_model"]["request"]["PrimaryContainer"]["Image"] == image  # served as trained
    transform = stages["batch_transform"]["request"]
    assert transform["DataProcessing"] == {"InputFilter": "$[1:]"}
    assert transform["TransformResources"] == {"InstanceCount": 1, "InstanceType": "ml.m4.xlarge"}
    assert stages["deploy"] | {"run": True} == {
        "run": True,
        "endpoint_name": "demo-endpoint",
        "instance_type": "ml.t2.medium",
        "instance_count": 1,
    }
    assert "$.tansform_para (sic)" in result.stderr


def test_import_reports_what_cannot_be_carried_over(tmp_path: Path) -> None:
    old = json.loads(REUSABLE.read_text())
    old["preprocessing"]["M"]["job_type"] = {"S": "glue-spark"}
    old["postprocessing_job"] = {"S": "Y"}
    result = run("import", "reusable-framework", write(tmp_path / "old.json", old))
    assert "preprocessing.job_type 'glue-spark': cannot be carried over" in result.stderr
    assert "postprocessing_job: cannot be carried over" in result.stderr


def test_import_of_an_item_that_does_not_validate_exits_1(tmp_path: Path) -> None:
    source = write(tmp_path / "in.yaml", "app_id: a\nCreateModel:\n  run: true\n  input: {}\n")
    result = run("import", "aiops", source)
    assert result.returncode == 1
    assert "stages.create_model.model_data_url: is required when neither training nor tuning runs" in result.stderr


def test_import_of_bad_yaml_is_a_clear_error(tmp_path: Path) -> None:
    result = run("import", "aiops", write(tmp_path / "in.yaml", "a: [unclosed"))
    assert result.returncode == 1
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def terraform_outputs(path: Path, **changes: object) -> Path:
    """A deployment's `terraform output -json`: {name: {"value", "type", "sensitive"}}."""
    values: dict[str, object] = {
        "bucket_name": "team-ml-artifacts",
        "sagemaker_role_arn": "arn:aws:iam::210987654321:role/team-ml-sagemaker",
        "image_uri": "683313688378.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "sagemaker_name_prefix": "mlops-dev-",
        "image_repository_arns": ["arn:aws:ecr:eu-west-1:683313688378:repository/*"],
        "region": "eu-west-1",
        "table_name": "team-ml-pipelines",
        **changes,
    }
    return write(path, {name: {"value": value, "type": "string", "sensitive": False} for name, value in values.items()})


def test_validate_with_a_deployments_outputs_checks_what_that_deployment_may_reach(tmp_path: Path) -> None:
    outputs = terraform_outputs(tmp_path / "outputs.json")
    assert run("validate", "--outputs", outputs).returncode == 0  # the demo items name nothing outside it

    role = write(
        tmp_path / "role.json",
        edited(load_item(), {"stages.training.request.RoleArn": "arn:aws:iam::210987654321:role/x"}),
    )
    bucket = write(
        tmp_path / "bucket.json",
        edited(load_item(), {"stages.training.request.OutputDataConfig.S3OutputPath": "s3://example-mlops-bucket/m/"}),
    )
    image = write(
        tmp_path / "image.json",
        edited(
            load_item(),
            {
                "stages.training.request.AlgorithmSpecification.TrainingImage": (
                    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
                )
            },
        ),
    )
    for item, words in [
        (role, "stages.training.request.RoleArn: 'arn:aws:iam::210987654321:role/x' is not this deployment's"),
        (bucket, "bucket 'example-mlops-bucket' is outside this deployment: its SageMaker role reaches only 'team-ml"),
        (image, "stages.training.request.AlgorithmSpecification.TrainingImage: image"),
    ]:
        result = run("validate", "--outputs", outputs, item)
        assert result.returncode == 1 and words in result.stderr, result.stderr
    # Without --outputs, the example deployment: its bucket and us-east-1 image are fine there.
    assert run("validate", bucket).returncode == 0 and run("validate", image).returncode == 0


def test_validate_with_outputs_accepts_reads_from_the_declared_data_buckets(tmp_path: Path) -> None:
    channel = "stages.training.request.InputDataConfig[0].DataSource.S3DataSource.S3Uri"
    reads = write(tmp_path / "reads.json", edited(load_item(), {channel: "s3://team-datasets/houses/"}))
    declared = terraform_outputs(tmp_path / "declared.json", data_buckets=["team-datasets"], kms_key_arn=None)
    assert run("validate", "--outputs", declared, reads).returncode == 0
    undeclared = run("validate", "--outputs", terraform_outputs(tmp_path / "none.json", data_buckets=[]), reads)
    assert undeclared.returncode == 1
    assert f"{channel}: bucket 'team-datasets' is outside this deployment" in undeclared.stderr
    assert "declare the bucket in the root variable data_buckets" in undeclared.stderr


def test_outputs_that_are_not_the_roots_are_a_usage_error(tmp_path: Path) -> None:
    old = terraform_outputs(tmp_path / "old.json", sagemaker_name_prefix=None, region=None)
    result = run("validate", "--outputs", old)
    assert result.returncode == 2
    assert "it lacks sagemaker_name_prefix, region (apply the current root" in result.stderr
    assert run("plan", DEMO_FILE, "--outputs", write(tmp_path / "x.json", "[")).returncode == 2


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """`mlops-sfn statemachine | head -1`: stdout closed before the command writes, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_sfn.cli", "statemachine"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # before the interpreter has started: the first write finds no reader
    _, errors = process.communicate(timeout=60)
    assert (process.returncode, errors) == (1, "")


def test_ctrl_c_ends_any_command_with_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_sfn import cli
    from mlops_sfn.cli import validate

    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate, "validate", interrupted)
    assert cli.main(["validate", str(ITEMS)]) == 130
    assert capsys.readouterr().err == "mlops-sfn: interrupted\n"


def test_local_outputs_writes_a_file_every_outputs_option_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_sfn import cli
    from mlops_sfn.cli.common import target
    from mlops_sfn.local import deployment

    outputs = {"state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:m", "region": "us-east-1"}
    running = deployment.Deployment(str(tmp_path), "https://127.0.0.1:1", "cert.pem", 1, outputs, [])
    monkeypatch.setattr(deployment, "load", lambda *_, **__: running)
    written = tmp_path / "local-outputs.json"
    assert cli.main(["local", "outputs", str(written)]) == 0
    assert f"any command takes --outputs {written}" in capsys.readouterr().out
    assert target(written).outputs == outputs  # as `terraform output -json` of the root would be read
    assert cli.main(["local", "outputs", str(tmp_path)]) == 2
    assert "a folder, not a file: name the file to write" in capsys.readouterr().err
    monkeypatch.setattr(deployment, "load", lambda *_, **__: None)
    assert cli.main(["local", "outputs", str(written)]) == 1
    assert "no local deployment is up: mlops-sfn local up starts one" in capsys.readouterr().err


def test_local_outputs_of_another_account_prints_how_to_reach_that_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_sfn import cli
    from mlops_sfn.local import deployment

    outputs = {"state_machine_arn": "arn:aws:states:us-east-1:210987654321:stateMachine:m"}
    production = deployment.Deployment(
        str(tmp_path), "https://127.0.0.1:1", "cert.pem", 1, outputs, [], "210987654321", ["AKIAPROD", "secret"]
    )
    development = deployment.Deployment(str(tmp_path), "https://127.0.0.1:1", "cert.pem", 1, {}, [])
    deployed = {"210987654321": production, None: development}
    monkeypatch.setattr(deployment, "load", lambda *_, account=None: deployed.get(account))
    written = tmp_path / "prod-outputs.json"
    assert cli.main(["local", "outputs", "--account", "210987654321", str(written)]) == 0
    printed = capsys.readouterr().out
    assert "AWS_ACCESS_KEY_ID=AKIAPROD AWS_SECRET_ACCESS_KEY=secret" in printed.splitlines()[-1]
    assert cli.main(["local", "outputs", "--account", "999999999999", str(written)]) == 1
    assert "nothing is deployed in account 999999999999 of the local AWS: mlops-sfn local demo --promote" in (
        capsys.readouterr().err
    )


def test_local_demo_runs_one_demo_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    from mlops_sfn import cli

    assert cli.main(["local", "demo", "--promote", "--drift"]) == 2
    assert "--drift and --promote are two demos: run one, then the other" in capsys.readouterr().err


def test_ctrl_c_while_following_a_run_stops_following_and_says_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from mlops_sfn.cli import runs as cli_runs

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_runs.runs, "follow", interrupted)
    args = argparse.Namespace(json=False, timeout=5, outputs=Path("my outputs.json"), command="run")
    arn = "arn:aws:states:us-east-1:123456789012:execution:m:demo-run-1"
    deployment = SimpleNamespace(client=lambda service: object(), local=False)
    assert cli_runs._wait(deployment, arn, args) == 130  # the shell's code for SIGINT
    assert capsys.readouterr().err == (
        "mlops-sfn run: stopped following demo-run-1; the run goes on:"
        " mlops-sfn status demo-run-1 --outputs 'my outputs.json'\n"
    )


def test_approve_of_a_token_without_deployment_or_region_says_what_to_give(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_sfn import cli
    from mlops_sfn.local import deployment

    monkeypatch.setattr(deployment, "load", lambda *_: None)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "MLOPS_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    assert cli.main(["approve", "AAAAtoken+/=="]) == 2
    assert "the AWS SDK has no region: give --outputs FILE" in capsys.readouterr().err


def test_a_set_value_is_bounded_by_the_items_depth_at_its_exact_edge() -> None:
    from mlops_sfn.cli.common import UsageError, overrides

    path = "training.request.HyperParameters"  # the item's objects down to the one holding x: 5 levels
    at_edge = f"{path}.x=" + "[" * 27 + "]" * 27  # 5 + 27 = 32: what an item may nest
    assert overrides([at_edge])["stages"]["training"]["request"]["HyperParameters"]["x"] is not None
    with pytest.raises(UsageError, match="nests 33 levels \\(path and value\\); an item nests at most 32"):
        overrides([f"{path}.x=" + "[" * 28 + "]" * 28])
    with pytest.raises(UsageError, match="nested more than 64 levels deep"):  # never parsed recursively
        overrides([f"{path}.x=" + "[" * 5000 + "]" * 5000])


@pytest.mark.parametrize("command", [["run", "demo"], ["rerun", "demo-run", "--from", "training"]])
def test_a_malformed_set_is_named_before_a_deployment_is_looked_for(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_sfn import cli
    from mlops_sfn.local import deployment

    monkeypatch.setattr(deployment, "load", lambda *_: None)  # no local stack, no --outputs
    assert cli.main([*command, "--set", "bad"]) == 2
    assert "--set bad: expected PATH=VALUE" in capsys.readouterr().err


def test_validate_refuses_an_item_without_the_deployments_required_tags(tmp_path: Path) -> None:
    item = ROOT / "dynamodb_items" / "demo-dev-domain-cal-house-price.json"
    refused = run("validate", item, env={"REQUIRED_TAGS": "cost-center,owner"})
    assert refused.returncode == 1
    assert "tags: this deployment requires every item to set cost-center, owner" in refused.stdout + refused.stderr
    tagged = json.loads(item.read_text()) | {"tags": {"cost-center": "ml-42", "owner": "pricing"}}
    assert (
        run("validate", write(tmp_path / "tagged.json", tagged), env={"REQUIRED_TAGS": "cost-center,owner"}).returncode
        == 0
    )


def test_deployment_tags_that_are_not_a_json_object_are_a_usage_error_not_a_traceback() -> None:
    item = ROOT / "dynamodb_items" / "demo-dev-domain-cal-house-price.json"
    refused = run("validate", item, env={"DEPLOYMENT_TAGS": "team=ml"})
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "DEPLOYMENT_TAGS: expected a JSON object of tag keys and values" in refused.stderr
