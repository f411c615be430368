"""A job runner that does no work: what `mlops-sfn local run` uses unless scripts run (jobs.py).

Each job succeeds at once (or fails when asked), writing what later stages read: a model archive,
an evaluation report that passes (or fails) the item's checkpoint, outputs in place.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ..core import names
from ..core.stages import NAME_FIELDS, OPERATIONS
from ..core.stages.quality_gate import COMPARISONS

# What a local endpoint does after CreateEndpoint or UpdateEndpoint, seen at the next describe.
from .sagemaker import JOBS, JobError, JobResult, data_failure, put

SIMULATED_CHECKPOINT = "simulated-checkpoint.json"  # under a training job's CheckpointConfig.S3Uri
# The stages that run a SageMaker job: a failure asked of them is the job's.
JOB_STAGES = frozenset(stage for stage, api in OPERATIONS.items() if api[0].lower() + api[1:] in JOBS)


@dataclass
class SimulatedJobs:
    """Jobs that write only what later states read: model artifacts and the evaluation report, and one
    small object in each processing or transform output (a rerun checks that they are still there).

    `failing` holds job names that end Failed; `report` is the evaluation report, keyed by the
    evaluation job's name with its S3 location. The real runner (scripts run as processes) replaces
    this in `mlops-sfn local demo`.
    """

    s3: Any
    failing: dict[str, str] = field(default_factory=dict)  # job name -> failure reason
    reports: dict[str, tuple[str, str, dict[str, Any]]] = field(default_factory=dict)  # job -> bucket, key, report

    def run(self, kind: str, request: dict[str, Any], s3: Any = None, logs: Any = None, account: str = "") -> JobResult:
        name = request[JOBS[kind].name_field]
        if name in self.failing:
            return JobResult(failure_reason=self.failing[name])
        s3 = s3 or self.s3
        try:
            for uri in job_inputs(request):  # what SageMaker downloads, as far as it exists here
                self._read(s3, uri)
            return self._write(kind, request, name, s3)
        except JobError as error:
            return JobResult(failure_reason=str(error))

    def _write(self, kind: str, request: dict[str, Any], name: str, s3: Any) -> JobResult:
        if kind == "createTrainingJob":
            resumed = self._checkpoint(s3, request)
            self._write_model(s3, request["OutputDataConfig"]["S3OutputPath"], name, resumed)
        if kind == "createHyperParameterTuningJob":
            best = f"{name}-001-{names.digest(name, 8)}"
            self._write_model(s3, request["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"], best)
            return JobResult(best_training_job=best)
        outputs = [entry["S3Output"]["S3Uri"] for entry in request.get("ProcessingOutputConfig", {}).get("Outputs", [])]
        outputs += [request["TransformOutput"]["S3OutputPath"]] if "TransformOutput" in request else []
        for output in outputs:
            bucket, _, prefix = output.removeprefix("s3://").partition("/")
            put(s3, bucket, f"{prefix.rstrip('/')}/simulated-{name}.out", b"simulated\n")
        if name in self.reports:
            bucket, key, report = self.reports[name]
            put(s3, bucket, key, json.dumps(report).encode())
        return JobResult()

    @staticmethod
    def _read(s3: Any, uri: str) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        try:
            for entry in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchBucket":  # no bucket, nothing to read: it goes on
                raise JobError(data_failure("download", uri, error)) from None

    @staticmethod
    def _checkpoint(s3: Any, request: dict[str, Any]) -> dict[str, Any] | None:
        """A job with CheckpointConfig saves one checkpoint, counting its attempts; returns the one it
        found there (what an interrupted job, or the on-demand job after it, resumes from)."""
        uri = request.get("CheckpointConfig", {}).get("S3Uri")
        if not uri:
            return None
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/{SIMULATED_CHECKPOINT}".lstrip("/")
        try:
            found: dict[str, Any] | None = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError:
            found = None
        attempt = (found or {}).get("attempt", 0) + 1
        put(s3, bucket, key, json.dumps({"training_job": request["TrainingJobName"], "attempt": attempt}).encode())
        return found

    @staticmethod
    def _write_model(s3: Any, output_path: str, job: str, resumed: dict[str, Any] | None = None) -> None:
        bucket, _, prefix = output_path.removeprefix("s3://").partition("/")
        key = f"{prefix.rstrip('/')}/{job}/output/model.tar.gz".lstrip("/")
        content = {"simulated": True, "training_job": job} | ({"resumed_from": resumed} if resumed else {})
        put(s3, bucket, key, model_archive(content))

    @classmethod
    def for_execution(
        cls,
        s3: Any,
        execution_input: dict[str, Any],
        fail: set[str],
        metric: float | None,
        report_bytes: int = 0,
        segments: Sequence[dict[str, Any]] = (),
        fail_segments: AbstractSet[str] = frozenset(),
    ) -> SimulatedJobs:
        """Failures and the evaluation report (padded to at least `report_bytes`) for this execution's job
        names, its segments' included (`fail_segments`: ids whose first job that runs fails; a stage
        reused from the run ledger runs no job)."""
        jobs = cls(s3)
        for planned in [execution_input, *segments]:
            failed = planned.get("segment") in fail_segments
            for stage, block in planned["stages"].items():
                if stage in planned.get("reused", {}):
                    continue
                name = block.get("request", {}).get(NAME_FIELDS.get(stage, ""))
                if name and (stage in fail or failed) and stage in JOB_STAGES:
                    why = f"--fail-segment {planned['segment']}" if failed else f"--fail {stage}"
                    jobs.failing[name] = f"AlgorithmError: simulated failure of {stage} (mlops-sfn local run {why})"
                    failed = False  # a segment's first job only
            evaluation = planned["stages"].get("evaluation")
            if evaluation:
                report = simulated_report(execution_input.get("quality_gate"), metric)
                if report_bytes:
                    report["per_row_errors"] = [0.0] * (report_bytes // 5)  # "0.0, " each
                location = evaluation["report"]
                jobs.reports[evaluation["request"]["ProcessingJobName"]] = (location["Bucket"], location["Key"], report)
        return jobs


def job_inputs(request: dict[str, Any]) -> list[str]:
    """The S3 locations a job's request has SageMaker download (a tuning job's: its training definition's)."""
    request = request.get("TrainingJobDefinition", request)
    processing = [entry["S3Input"]["S3Uri"] for entry in request.get("ProcessingInputs", []) if "S3Input" in entry]
    channels = [channel["DataSource"]["S3DataSource"]["S3Uri"] for channel in request.get("InputDataConfig", [])]
    transform = request.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
    return processing + channels + ([transform] if transform else [])


def simulated_report(gate: dict[str, Any] | None, metric: float | None) -> dict[str, Any]:
    """An evaluation report holding the gate's metric: `metric` when given, else a value that passes the gate."""
    if gate is None:
        return {"simulated": True}
    value = metric
    if value is None:
        threshold = gate["threshold"]
        symbol, _ = COMPARISONS[gate["comparison"]]
        step = {"<": -1, ">": 1}.get(symbol, 0) * max(1.0, abs(threshold)) * 0.01
        value = threshold + step
    report: dict[str, Any] = {"simulated": True}
    node = report
    *parents, last = gate["metric"].split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return report


def model_archive(content: dict[str, Any]) -> bytes:
    """A model.tar.gz with one model.json, byte-for-byte the same for the same content."""
    data = json.dumps(content, sort_keys=True).encode()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("model.json")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        archive.addfile(info, io.BytesIO(data))
    return gzip.compress(tar_bytes.getvalue(), mtime=0)
