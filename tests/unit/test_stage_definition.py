"""Adding a stage is one module, its place in the catalog and its schema: shown by adding one.

A copy of the package gets a new stage, `scoring` (a processing job after evaluation, with its own
preview line, status line and item rule), written as one module of core/stages/, one line in
CATALOG and one entry in the item schema, nothing else; the item checks, the planner, the
definition, the role policy, the previews and `status` must all take it.
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
from .preprocessing import processing_stage


def _rules(item):
    if item["stages"].get("scoring", {}).get("run") and not item["stages"].get("evaluation", {}).get("run"):
        return [Problem("stages.scoring", "scores what evaluation wrote: switch evaluation on")]
    return []


STAGE = processing_stage(
    "scoring",
    "score",
    preview=lambda block: "scores " + block["request"]["ProcessingInputs"][0]["S3Input"]["S3Uri"],
    outputs=lambda result, block, where: "scored by " + result.get("job_name", ""),
    rules=_rules,
)
'''

PROBE = """
import json, sys
from mlops_sfn.core import plan, stages
from mlops_sfn.operate import preview, runs
from mlops_sfn.tools import policy, statemachine

item = json.loads(sys.argv[1])
without_evaluation = json.loads(sys.argv[1])
without_evaluation["stages"]["evaluation"]["run"] = False
without_evaluation.pop("quality_gate", None)
planned = plan.plan_execution(item, plan.SAMPLE_TRIGGER, plan.EXAMPLE_SETTINGS)
definition = statemachine.build()
every = statemachine.states(definition)
role = policy.build(definition)
print(json.dumps({
    "catalog": list(stages.STAGES),
    "run": planned["run"].get("scoring"),
    "name": planned["stages"]["scoring"]["request"]["ProcessingJobName"],
    "problems": [p.path + ": " + p.message for p in plan.check_with_sample(without_evaluation)],
    "evaluation_goes_to": every["Record evaluation?"]["Default"],
    "scoring_task": every["Scoring"]["Resource"],
    "scoring_next": every["Run scoring?"]["Default"],
    "processing_resources": next(s["Resource"] for s in role["Statement"] if s["Sid"] == "ProcessingJobSync"),
    "preview": preview.text(planned, True),
    "status": runs.stage_outputs("scoring", {"job_name": "j-1"}, planned),
}))
"""


def _item() -> dict[str, object]:
    item = json.loads(ITEM.read_text())
    item["stages"]["scoring"] = {
        "run": True,
        "request": {
            "ProcessingInputs": [
                {
                    "InputName": "data",
                    "S3Input": {
                        "S3Uri": "s3://{bucket}/runs/{pipeline}/{execution}/evaluation/",
                        "LocalPath": "/opt/ml/processing/input",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ]
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


def test_a_stage_added_as_one_module_runs_through_every_layer(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "mlops_sfn"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stages = copy / "core" / "stages"
    (stages / "scoring.py").write_text(SCORING)
    catalog = (stages / "__init__.py").read_text()
    # its place in the catalog: imported, and listed after evaluation
    catalog = catalog.replace("    register,\n", "    register,\n    scoring,\n", 1)
    catalog = catalog.replace("        evaluation,\n", "        evaluation,\n        scoring,\n", 1)
    (stages / "__init__.py").write_text(catalog)
    schema_file = copy / "core" / "pipeline_item.schema.json"
    schema = json.loads(schema_file.read_text())
    schema["$defs"]["stages"]["properties"]["scoring"] = {"$ref": "#/$defs/processing_stage"}
    schema_file.write_text(json.dumps(schema))

    probe = _probe(copy.parent)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["catalog"][3:5] == ["evaluation", "scoring"]
    assert found["run"] is True and "-score-" in found["name"]  # planned, named per run
    assert found["problems"] == ["stages.scoring: scores what evaluation wrote: switch evaluation on"]
    # in the definition: evaluation (once recorded) leads to it, it leads to the next stage
    assert found["evaluation_goes_to"] == "Run scoring?"
    assert found["scoring_task"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    assert found["scoring_next"] == "Run register?"
    assert any(resource.endswith("processing-job/*-score-*") for resource in found["processing_resources"])
    assert "scoring          scores s3://example-mlops-bucket/runs/" in found["preview"]
    assert found["status"] == "scored by j-1"


def test_without_its_schema_a_stage_block_is_refused(tmp_path: Path) -> None:
    probe = _probe(PACKAGE.parent)  # the package as it is: no scoring stage
    assert probe.returncode == 1
    assert "stages.scoring" in probe.stderr
