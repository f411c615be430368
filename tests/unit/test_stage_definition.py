"""Adding a stage is one module, its place in the catalog and its schema: shown by adding two.

A copy of the package gets two new stages, written as one module of core/stages/ each, one line in
CATALOG and one entry in the item schema, nothing else:
- `scoring`, a processing job after evaluation, with its own preview line, status line and item rule;
- `backtest`, a stage that is not a processing job: a transform job with the run's model, after
  create_model, reading what scoring wrote.
The item checks, the planner, the definition, the role policy, the previews, the cache, `rerun` and
`status` must all take both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlops_sfn

PACKAGE = Path(mlops_sfn.__file__).parent
ITEM = Path(__file__).parents[2] / "dynamodb_items" / "demo-dev-domain-cal-house-price.json"

SCORING = '''"""Scoring: the evaluation data scored by the run's model, in a processing job."""

from ..problems import Problem
from ..stage import ProcessingStage


class Scoring(ProcessingStage):
    name = "scoring"
    tag = "score"

    def rules(self, item):
        if item["stages"].get("scoring", {}).get("run") and not item["stages"].get("evaluation", {}).get("run"):
            return [Problem("stages.scoring", "scores what evaluation wrote: switch evaluation on")]
        return []

    def preview(self, block):
        return "scores " + block["request"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]

    def report(self, result, block, where):
        return "scored by " + result.get("job_name", "")


STAGE = Scoring()
'''

BACKTEST = '''"""Backtest: what scoring wrote, transformed by the run's model (a transform job, not processing)."""

from ..stage import RUN_FOLDER, JobStage
from .shared import model_name


class Backtest(JobStage):
    name = "backtest"
    operation = "CreateTransformJob"
    name_field = "TransformJobName"
    tag = "backtest"
    resource = "transform-job"
    described_as = "transform job"
    cacheable = True
    rule = "StepFunctionsGetEventsForSageMakerTransformJobsRule"

    def defaults(self, item, execution):
        return {
            "ModelName": model_name(item, execution),
            "TransformOutput": {"S3OutputPath": f"{RUN_FOLDER}/backtest/"},
            "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        }


STAGE = Backtest()
'''

PROBE = """
import json, sys
from mlops_sfn.core import asl, cache, plan, stages
from mlops_sfn.operate import preview, rerun, runs
from mlops_sfn.tools import policy, statemachine

item = json.loads(sys.argv[1])
without_evaluation = json.loads(sys.argv[1])
without_evaluation["stages"]["evaluation"]["run"] = False
without_evaluation.pop("quality_gate", None)
planned = plan.plan_execution(item, plan.SAMPLE_TRIGGER, plan.EXAMPLE_SETTINGS)
definition = statemachine.build()
every = asl.states(definition)
role = policy.build(definition)
keys = cache.keys(planned, lambda location: "listed")


class EmptyS3:  # every location lists nothing: what the reused stages made is gone
    def list_objects_v2(self, **request):
        return {"KeyCount": 0}


reused = rerun.Rerun("again", planned | {"results": {}}, ("scoring", "backtest"))
print(json.dumps({
    "catalog": list(stages.STAGES),
    "run": [planned["run"].get(stage) for stage in ("scoring", "backtest")],
    "names": [planned["stages"]["scoring"]["request"]["ProcessingJobName"],
              planned["stages"]["backtest"]["request"]["TransformJobName"]],
    "problems": [p.path + ": " + p.message for p in plan.check_with_sample(without_evaluation)],
    "evaluation_goes_to": every["Record evaluation?"]["Default"],
    "tasks": [every["Scoring"]["Resource"], every["Backtest"]["Resource"]],
    "next": [every["Run scoring?"]["Default"], every["Run backtest?"]["Default"]],
    "records": [every["Record scoring"]["Parameters"]["Item"]["stage"]["S"],
                every["Record backtest"]["Parameters"]["Item"]["stage"]["S"]],
    "resources": {sid: next(s["Resource"] for s in role["Statement"] if s["Sid"] == sid)
                  for sid in ("ProcessingJobSync", "TransformJobSync")},
    "preview": preview.text(planned, True),
    "cache": {stage: [keys[stage].key is not None, list(keys[stage].upstream)] for stage in ("scoring", "backtest")},
    "gone": rerun.missing_outputs(reused, EmptyS3(), None),
    "status": [runs.stage_outputs("scoring", {"job_name": "j-1"}, planned),
               runs.stage_outputs("backtest", {"job_name": "j-2"}, planned)],
}))
"""


def _item() -> dict[str, object]:
    item = json.loads(ITEM.read_text())
    run_folder = "s3://{bucket}/runs/{pipeline}/{execution}"
    item["stages"]["scoring"] = {
        "run": True,
        "request": {
            "ProcessingInputs": [
                {
                    "InputName": "data",
                    "S3Input": {
                        "S3Uri": f"{run_folder}/evaluation/",
                        "LocalPath": "/opt/ml/processing/input",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "scores",
                        "S3Output": {
                            "S3Uri": f"{run_folder}/scoring/",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        },
    }
    item["stages"]["backtest"] = {
        "run": True,
        "request": {
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{run_folder}/scoring/"}},
                "ContentType": "text/csv",
            }
        },
    }
    return item


def _probe(package_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(_item())],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(package_root), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def _add_stages(tmp_path: Path) -> Path:
    """A copy of the package with the two stages: their modules, their places in CATALOG, their schemas."""
    copy = tmp_path / "src" / "mlops_sfn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stages = copy / "core" / "stages"
    (stages / "scoring.py").write_text(SCORING)
    (stages / "backtest.py").write_text(BACKTEST)
    catalog = (stages / "__init__.py").read_text()
    catalog = catalog.replace("    approval,\n", "    approval,\n    backtest,\n", 1)  # imported
    catalog = catalog.replace("    register,\n", "    register,\n    scoring,\n", 1)
    catalog = catalog.replace("        evaluation,\n", "        evaluation,\n        scoring,\n", 1)  # listed
    catalog = catalog.replace("        create_model,\n", "        create_model,\n        backtest,\n", 1)
    (stages / "__init__.py").write_text(catalog)
    schema_file = copy / "core" / "pipeline_item.schema.json"
    schema = json.loads(schema_file.read_text())
    schema["$defs"]["stages"]["properties"]["scoring"] = {"$ref": "#/$defs/processing_stage"}
    schema["$defs"]["stages"]["properties"]["backtest"] = {"$ref": "#/$defs/request_stage"}
    schema_file.write_text(json.dumps(schema))
    return copy.parent


def test_stages_added_as_one_module_each_run_through_every_layer(tmp_path: Path) -> None:
    probe = _probe(_add_stages(tmp_path))
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["catalog"][3:5] == ["evaluation", "scoring"]
    assert found["catalog"][found["catalog"].index("create_model") + 1] == "backtest"
    assert found["run"] == [True, True]
    assert ["-score-" in found["names"][0], "-backtest-" in found["names"][1]] == [True, True]  # named per run
    assert found["problems"] == ["stages.scoring: scores what evaluation wrote: switch evaluation on"]
    # in the definition: each behind its Choice, each recorded for the cache, each leading to what follows
    assert found["evaluation_goes_to"] == "Run scoring?"
    assert found["tasks"] == [
        "arn:aws:states:::sagemaker:createProcessingJob.sync",
        "arn:aws:states:::sagemaker:createTransformJob.sync",
    ]
    assert found["next"] == ["Run register?", "Serve model?"]
    assert found["records"] == ["scoring", "backtest"]
    assert any(r.endswith("processing-job/*-score-*") for r in found["resources"]["ProcessingJobSync"])
    assert any(r.endswith("transform-job/*-backtest-*") for r in found["resources"]["TransformJobSync"])
    assert "scoring          scores s3://example-mlops-bucket/runs/" in found["preview"]
    assert "backtest         transform job " in found["preview"]
    # the cache keys both, and knows backtest uses what scoring wrote and the model create_model made
    assert found["cache"]["scoring"] == [True, ["evaluation"]]
    assert found["cache"]["backtest"][0] is True
    assert {"scoring", "create_model"} <= set(found["cache"]["backtest"][1])
    # a rerun that reuses them checks what each declared it made
    folder = "s3://example-mlops-bucket/runs/"
    assert [entry.split(": ")[0] for entry in found["gone"]] == ["scoring", "backtest"]
    assert all(entry.split(": ")[1].startswith(folder) for entry in found["gone"])
    assert found["gone"][0].endswith("/scoring/") and found["gone"][1].endswith("/backtest/")
    # status: the stage's own line, or by default the locations it wrote
    assert found["status"] == ["scored by j-1", "wrote backtest/"]


def test_without_its_schema_a_stage_block_is_refused(tmp_path: Path) -> None:
    probe = _probe(PACKAGE.parent)  # the package as it is: no scoring stage
    assert probe.returncode == 1
    assert "stages.scoring" in probe.stderr or "stages.backtest" in probe.stderr
