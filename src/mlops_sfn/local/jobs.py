"""SageMaker jobs and endpoints that do real work on this machine: the scripts run as Python processes.

`ScriptJobs` is the job runner `mlops-sfn local up/demo` plugs into `LocalSageMaker`. It follows
SageMaker's conventions so the same scripts run here and on SageMaker unchanged:
- every job gets its own folder standing in for the container's `/` (`HOME/jobs/<job>/`); any
  `/opt/ml/...` path in a request (LocalPath, entry point, arguments) points into it;
- processing: each S3Input is downloaded to its LocalPath, ContainerEntrypoint +
  ContainerArguments run (`python3` is this interpreter), each output's LocalPath is uploaded to
  its S3Uri;
- training (script mode, as SageMaker's scikit-learn container runs it): sagemaker_submit_directory
  is unpacked into /opt/ml/code, each channel downloaded to /opt/ml/input/data/<channel>, the SM_*
  variables set, `python <sagemaker_program> --<hyperparameter> <value>...` run, /opt/ml/model
  archived to `<S3OutputPath>/<job>/output/model.tar.gz`, and MetricDefinitions read off the log;
- tuning: one training job, at the middle of every range (a search is not worth it on one machine);
- batch transform and endpoints: the model's `inference.py` (SAGEMAKER_PROGRAM in its
  sagemaker_submit_directory) is served by a `Worker`: model_fn once, then input_fn, predict_fn
  and output_fn per request; batch transform sends each input file as one request and writes
  `<file>.out` under S3OutputPath.
A script's exit status decides the job's; a failed job's FailureReason carries its last error line.
Each job's output is in `HOME/jobs/<job>/log.txt`, and in the local CloudWatch Logs where SageMaker
writes it (`publish_log`), so that `mlops-sfn logs` reads it as it does on AWS.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import ClientError

from ..core import monitoring, names
from . import analyzer, callers
from . import capture as data_capture
from .accounts import DEFAULT
from .sagemaker import (
    JOBS,
    JobError,
    JobResult,
    data_failure,
    not_downloadable,
    package_containers,
    put,
    served_container,
)
from .worker import Worker, WorkerError

CONTAINER_ROOT = "/opt/ml/"
CHECKPOINTS = "/opt/ml/checkpoints/"  # CheckpointConfig.LocalPath's default (SageMaker API reference)
LOG_BATCH = 1000  # lines per PutLogEvents call (AWS allows 10,000 events and 1 MB)
DEFAULT_MAX_RUNTIME = 86400  # SageMaker's default StoppingCondition


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise JobError(f"{uri}: expected an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class ScriptJobs:
    """A JobRunner. `client(service, account)` gives a boto3 client of the local AWS in that account;
    `environment` is what each script's process gets besides the job's own variables (the local AWS
    endpoint, credentials, PATH)."""

    def __init__(self, home: Path, client: Callable[[str, str], Any], environment: dict[str, str]) -> None:
        self.home = home
        self.client = client
        self.environment = environment

    # --- S3 ---------------------------------------------------------------------------------------

    def download(self, uri: str, into: Path, s3: Any = None, required: bool = True) -> list[Path]:
        """An S3 prefix (or one object) into a folder: each object at its key's path below the prefix,
        an object whose key is the prefix itself under its own name. SageMaker downloads
        "s3://your-data-bucket/path/to/input/csv/data into /opt/ml/processing/csv" ("How Amazon
        SageMaker Processing Configures Input and Output"): the prefix's objects, not a data/ folder."""
        bucket, prefix = split_uri(uri)
        s3, written = s3 or self.client("s3", DEFAULT), []
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if entry["Key"].endswith("/"):
                        continue
                    below = entry["Key"][len(prefix) :].lstrip("/") or entry["Key"].rsplit("/", 1)[-1]
                    target = into / below
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, entry["Key"], str(target))
                    written.append(target)
        except (ClientError, Boto3Error) as error:
            raise JobError(data_failure("download", uri, error)) from None
        if not written and required:
            raise JobError(f"ClientError: No S3 objects found under S3 URL {uri!r}")
        return written

    def upload(self, folder: Path, uri: str, s3: Any = None) -> None:
        bucket, prefix = split_uri(uri)
        s3 = s3 or self.client("s3", DEFAULT)
        try:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
                s3.upload_file(str(path), bucket, key)
        except (ClientError, Boto3Error) as error:
            raise JobError(data_failure("upload", uri, error)) from None

    def _put(self, uri: str, body: bytes, s3: Any) -> None:
        bucket, key = split_uri(uri)
        put(s3, bucket, key, body)

    # --- Running ----------------------------------------------------------------------------------

    def run(
        self, kind: str, request: dict[str, Any], s3: Any = None, logs: Any = None, account: str = DEFAULT
    ) -> JobResult:
        name = request[JOBS[kind].name_field]
        folder = self.home / "jobs" / name
        folder.mkdir(parents=True, exist_ok=True)
        s3 = s3 or self.client("s3", account)
        try:
            if kind == "createProcessingJob":
                return self._processing(request, folder, s3)
            if kind == "createTrainingJob":
                return self._training(request, folder, name, s3)
            if kind == "createHyperParameterTuningJob":
                return self._tuning(request, name, s3)
            return self._transform(request, folder, s3, account)
        except JobError as error:
            return JobResult(failure_reason=str(error))
        finally:
            wrote = tuning_candidate(name) if kind == "createHyperParameterTuningJob" else name
            log = self.home / "jobs" / wrote / "log.txt"
            self.publish_log(names.JOB_LOG_GROUPS[kind], wrote, log, logs or self.client("logs", account))

    def publish_log(self, group: str, job: str, log: Path, logs: Any = None) -> None:
        """The job's output into CloudWatch Logs where SageMaker writes it (names.JOB_LOG_GROUPS), as the
        job's role (`logs`): a role that may not write there leaves the job without a log and the job
        runs on, as on SageMaker (its role needs logs:CreateLogStream and logs:PutLogEvents, and
        logs:CreateLogGroup for the first job of its kind; "SageMaker AI execution roles")."""
        if not log.exists():
            return
        logs = logs or self.client("logs", DEFAULT)
        stream = f"{job}/algo-1-{int(time.time())}"
        lines = log.read_text(errors="replace").splitlines() or ["(no output)"]
        now = int(time.time() * 1000)
        try:
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            for start in range(0, len(lines), LOG_BATCH):  # PutLogEvents takes at most 10,000 events a call
                batch = [{"timestamp": now, "message": line or " "} for line in lines[start : start + LOG_BATCH]]
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        except ClientError as error:
            print(f"{job}: its log was not written to {group}: {error}", file=sys.stderr)

    @staticmethod
    def _inside(folder: Path, value: str) -> str:
        """A container path (/opt/ml/...) as the path in the job's folder; anything else unchanged."""
        return str(folder / value.lstrip("/")) if value.startswith(CONTAINER_ROOT) else value

    @staticmethod
    def credentials(role: str | None) -> dict[str, str]:
        """What a job's or model's process signs with: its role's credentials, as SageMaker gives a
        container its execution role's ("How SageMaker AI uses execution roles"), so that the local AWS
        decides the code's own calls as that role (callers.py)."""
        return callers.credentials(role) if role else {}

    def _execute(
        self, command: list[str], env: dict[str, str], cwd: Path, folder: Path, timeout: float, role: str | None
    ) -> str:
        """Run the script as `role`; its output goes to log.txt and is returned. JobError when it fails."""
        if command and command[0] in ("python", "python3"):
            command = [sys.executable, *command[1:]]
        log = folder / "log.txt"
        with log.open("ab") as output:
            try:
                finished = subprocess.run(
                    command,
                    env={**self.environment, **env, **self.credentials(role)},
                    cwd=cwd,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise JobError(f"MaxRuntimeExceeded: the job ran longer than {timeout:g} s (log: {log})") from None
            except OSError as error:
                raise JobError(f"ClientError: cannot run {command[0]!r}: {error}") from None
        text = log.read_text(errors="replace")
        if finished.returncode != 0:
            lines = [line for line in text.splitlines() if line.strip()]
            last = lines[-1].strip() if lines else "no output"
            raise JobError(f'AlgorithmError: ExitCode {finished.returncode}, ErrorMessage "{last}" (log: {log})')
        return text

    @staticmethod
    def _timeout(request: dict[str, Any]) -> float:
        return float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME))

    def _processing(self, request: dict[str, Any], folder: Path, s3: Any) -> JobResult:
        for index, entry in enumerate(request.get("ProcessingInputs", [])):
            source = entry.get("S3Input")
            if source is None:
                raise JobError(f"ClientError: ProcessingInputs[{index}]: only S3Input inputs run locally")
            self.download(source["S3Uri"], Path(self._inside(folder, source["LocalPath"])), s3)
        app = request["AppSpecification"]
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        if app.get("ImageUri", "").split("@")[0].split(":")[0].endswith("/" + monitoring.ANALYZER_REPOSITORY):
            # Model Monitor's analyzer: its image's own entry point, run here by analyzer.baseline_job.
            environment = request.get("Environment", {})
            try:
                analyzer.baseline_job(
                    Path(self._inside(folder, environment.get("dataset_source", monitoring.BASELINE_INPUT))),
                    Path(self._inside(folder, environment.get("output_path", monitoring.ANALYZER_OUTPUT))),
                    environment,
                )
            except (ValueError, UnicodeDecodeError) as error:
                raise JobError(f"AlgorithmError: {error}") from None
            for entry in outputs:
                self.upload(Path(self._inside(folder, entry["S3Output"]["LocalPath"])), entry["S3Output"]["S3Uri"], s3)
            return JobResult()
        command = [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]
        if not app.get("ContainerEntrypoint"):
            raise JobError(
                "ClientError: AppSpecification.ContainerEntrypoint is empty: a local job cannot run an image's own "
                'entry point; name the script, e.g. ["python3", "/opt/ml/processing/input/code/script.py"]'
            )
        command = [self._inside(folder, part) for part in command]
        for entry in outputs:
            Path(self._inside(folder, entry["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        self._execute(
            command, request.get("Environment", {}), folder, folder, self._timeout(request), request.get("RoleArn")
        )
        for entry in outputs:
            self.upload(Path(self._inside(folder, entry["S3Output"]["LocalPath"])), entry["S3Output"]["S3Uri"], s3)
        return JobResult()

    def _training(self, request: dict[str, Any], folder: Path, name: str, s3: Any) -> JobResult:
        hyperparameters = {key: _unquoted(value) for key, value in request.get("HyperParameters", {}).items()}
        program = hyperparameters.get("sagemaker_program")
        submit = hyperparameters.get("sagemaker_submit_directory")
        # AlgorithmSpecification.ContainerEntrypoint names the script itself (CreateTrainingJob), e.g.
        # one delivered in a channel: ["python3", "/opt/ml/input/data/code/train.py"].
        entrypoint = request.get("AlgorithmSpecification", {}).get("ContainerEntrypoint", [])
        if not entrypoint and (not program or not submit):
            raise JobError(
                "ClientError: a local training job runs a script: set HyperParameters.sagemaker_program and "
                "HyperParameters.sagemaker_submit_directory (script mode: an s3:// URI of a .tar.gz holding it), "
                "or AlgorithmSpecification.ContainerEntrypoint"
            )
        ml = folder / "opt" / "ml"
        shutil.rmtree(folder / "opt", ignore_errors=True)  # a new instance (a spot job's next attempt too)
        code, model, output_data = ml / "code", ml / "model", ml / "output" / "data"
        for path in (code, model, output_data, ml / "input" / "config"):
            path.mkdir(parents=True, exist_ok=True)
        # Checkpoints: SageMaker copies what S3Uri holds to LocalPath before the script starts, and what
        # the script writes there back to S3Uri ("Checkpoints in Amazon SageMaker AI"); locally, once
        # the script ended, whether it succeeded or not.
        checkpoint = request.get("CheckpointConfig")
        saved = Path(self._inside(folder, checkpoint.get("LocalPath", CHECKPOINTS))) if checkpoint else None
        if checkpoint and saved:
            saved.mkdir(parents=True, exist_ok=True)
            self.download(checkpoint["S3Uri"], saved, s3, required=False)
        if not entrypoint and submit:
            _extract(self._fetch(submit, s3), code)
        channels = []
        for channel in request.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            self.download(source["S3Uri"], ml / "input" / "data" / channel["ChannelName"], s3)
            channels.append(channel["ChannelName"])
        user = {key: value for key, value in hyperparameters.items() if not key.startswith("sagemaker_")}
        (ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        env = {
            "SM_MODEL_DIR": str(model),
            "SM_OUTPUT_DATA_DIR": str(output_data),
            "SM_INPUT_DIR": str(ml / "input"),
            "SM_OUTPUT_DIR": str(ml / "output"),
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(user),
            "SM_USER_ARGS": json.dumps([part for key, value in user.items() for part in (f"--{key}", value)]),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            **({"SM_MODULE_DIR": submit, "SM_MODULE_NAME": Path(program).stem} if program and submit else {}),
            "SM_TRAINING_JOB_NAME": name,
            **{f"SM_CHANNEL_{channel.upper()}": str(ml / "input" / "data" / channel) for channel in channels},
            **{f"SM_HP_{key.upper()}": value for key, value in user.items()},
            **request.get("Environment", {}),
        }
        if entrypoint:  # run in the job's folder, where its /opt/ml paths are
            arguments = request["AlgorithmSpecification"].get("ContainerArguments", [])
            command, cwd = [self._inside(folder, part) for part in [*entrypoint, *arguments]], folder
        else:
            command, cwd = ["python", str(program), *json.loads(env["SM_USER_ARGS"])], code
        try:
            log = self._execute(command, env, cwd, folder, self._timeout(request), request.get("RoleArn"))
        except JobError:
            failure = ml / "output" / "failure"  # a script may explain itself, as on SageMaker
            if failure.exists() and failure.read_text().strip():
                raise JobError(f"AlgorithmError: {failure.read_text().strip()}") from None
            raise
        finally:
            if checkpoint and saved:
                self.upload(saved, checkpoint["S3Uri"], s3)
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        self._put(f"{output}/{name}/output/model.tar.gz", _archive(model), s3)
        if any(output_data.iterdir()):
            self._put(f"{output}/{name}/output/output.tar.gz", _archive(output_data), s3)
        metrics = read_metrics(log, request.get("AlgorithmSpecification", {}).get("MetricDefinitions", []))
        return JobResult(metrics=metrics)

    def _tuning(self, request: dict[str, Any], name: str, s3: Any) -> JobResult:
        definition = request["TrainingJobDefinition"]
        ranges = request["HyperParameterTuningJobConfig"].get("ParameterRanges", {})
        candidate = tuning_candidate(name)
        training = {
            "TrainingJobName": candidate,
            "HyperParameters": {**definition.get("StaticHyperParameters", {}), **middle_of(ranges)},
            **{key: value for key, value in definition.items() if key != "StaticHyperParameters"},
        }
        result = self._training(training, self.home / "jobs" / candidate, candidate, s3)
        return JobResult(best_training_job=candidate, metrics=result.metrics)

    def _transform(self, request: dict[str, Any], folder: Path, s3: Any, account: str) -> JobResult:
        model = self.client("sagemaker", account).describe_model(ModelName=request["ModelName"])
        worker = self.model_server(model, folder, folder / "log.txt", s3, account)
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        inputs = self.download(source["S3Uri"], folder / "input", s3)
        output = request["TransformOutput"]["S3OutputPath"].rstrip("/")
        content_type = request["TransformInput"].get("ContentType", "text/csv")
        accept = request["TransformOutput"].get("Accept", content_type)
        try:
            for path in inputs:
                answer = worker.call(
                    {"body": path.read_text(), "content_type": content_type, "accept": accept}, timeout=600
                )
                relative = path.relative_to(folder / "input").as_posix()
                self._put(f"{output}/{relative}.out", answer["body"].encode(), s3)
        except WorkerError as error:
            raise JobError(f"ClientError: {error.error_type}: {error} (log: {folder / 'log.txt'})") from None
        finally:
            worker.stop()
        return JobResult()

    def _fetch(self, uri: str, s3: Any) -> bytes:
        bucket, key = split_uri(uri)
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise JobError(data_failure("download", uri, error)) from None
        return body

    def model_server(
        self, model: dict[str, Any], folder: Path, log: Path, s3: Any = None, account: str = DEFAULT
    ) -> Worker:
        """A Worker serving a DescribeModel response's container (of a model in `account`): its
        model.tar.gz and inference script, read through `s3` (a transform job's, acting as the model's
        role) or the runner's own client."""
        s3 = s3 or self.client("s3", account)
        container = model.get("PrimaryContainer") or model["Containers"][0]
        container = package_containers(self.client("sagemaker", account), [container])[0]
        environment = container.get("Environment", {})
        program, submit = environment.get("SAGEMAKER_PROGRAM"), environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if not program or not submit or "ModelDataUrl" not in container:
            raise JobError(
                "ClientError: a local model needs ModelDataUrl and the Environment variables SAGEMAKER_PROGRAM and "
                "SAGEMAKER_SUBMIT_DIRECTORY (the scikit-learn serving convention)"
            )
        model_dir, code = folder / "opt" / "ml" / "model", folder / "opt" / "ml" / "code"
        model_dir.mkdir(parents=True, exist_ok=True)
        code.mkdir(parents=True, exist_ok=True)
        _extract(self._fetch(container["ModelDataUrl"], s3), model_dir)
        _extract(self._fetch(submit, s3), code)
        credentials = self.credentials(model.get("ExecutionRoleArn"))
        env = {**self.environment, **environment, "SM_MODEL_DIR": str(model_dir), **credentials}
        return Worker(["model", str(model_dir), str(code), program], env, log, cwd=code)


class LocalEndpoints:
    """InService endpoints answer InvokeEndpoint with their model: one model server per endpoint (per
    model it was asked for, on a multi-model endpoint), restarted when an update brings another
    endpoint config. An endpoint config with a DataCaptureConfig has its invocations captured (capture.py)."""

    def __init__(self, jobs: ScriptJobs) -> None:
        self.jobs = jobs
        # (account, endpoint) -> (config, its model (DescribeModel), its variant's name, its DataCaptureConfig)
        self._endpoints: dict[tuple[str, str], tuple[str, dict[str, Any], str, dict[str, Any]]] = {}
        # (account, endpoint, the target model or "") -> its model server, for the endpoint's current config
        self._servers: dict[tuple[str, str, str], Worker] = {}
        self._lock = threading.Lock()

    def invoke(
        self,
        endpoint: str,
        body: str,
        content_type: str | None,
        accept: str | None,
        target_model: str | None = None,
        account: str = DEFAULT,
    ) -> tuple[str, str]:
        """(body, content type) from `account`'s endpoint; LookupError if the endpoint is not InService or
        cannot serve the invocation (sagemaker.NotServed), WorkerError if the model fails."""
        sagemaker = self.jobs.client("sagemaker", account)
        try:
            described = sagemaker.describe_endpoint(EndpointName=endpoint)
        except Exception:
            raise LookupError(f"Endpoint {endpoint} not found.") from None
        if described["EndpointStatus"] not in ("InService", "Updating"):
            raise LookupError(f"Endpoint {endpoint} is {described['EndpointStatus']}, not InService.")
        config = described["EndpointConfigName"]
        with self._lock:
            current = self._endpoints.get((account, endpoint))
            if current is None or current[0] != config:
                for key in [key for key in self._servers if key[:2] == (account, endpoint)]:
                    self._servers.pop(key).stop()
                described_config = sagemaker.describe_endpoint_config(EndpointConfigName=config)
                variant = described_config["ProductionVariants"][0]
                model = sagemaker.describe_model(ModelName=variant["ModelName"])
                capture = described_config.get("DataCaptureConfig", {})
                self._endpoints[account, endpoint] = (config, model, variant["VariantName"], capture)
            _, model, variant_name, capture = self._endpoints[account, endpoint]
            container = served_container(model, endpoint, target_model)
            multi = container.get("Mode") == "MultiModel"
            key = (account, endpoint, (target_model or "") if multi else "")
            if key not in self._servers:
                within = names.digest(key[2], 10) if multi else ""
                folder = self.jobs.home / "endpoints" / endpoint / config / within
                log = self.jobs.home / "logs" / "endpoints" / f"{endpoint}.log"
                try:
                    served = model | {"PrimaryContainer": container}
                    self._servers[key] = self.jobs.model_server(served, folder, log, account=account)
                except JobError as error:
                    if multi and container["ModelDataUrl"] in str(error):  # TargetModel's is not under the prefix
                        raise not_downloadable(container["ModelDataUrl"], key[2]) from None
                    raise WorkerError("ModelError", str(error)) from None
            worker = self._servers[key]
            answer = worker.call({"body": body, "content_type": content_type, "accept": accept}, timeout=60)
        if capture:
            call = (body, content_type, answer["body"], answer["content_type"])
            data_capture.capture(self.jobs.client("s3", account), capture, endpoint, variant_name, call)
        return answer["body"], answer["content_type"]

    def invoke_async(
        self, endpoint: str, input_location: str, content_type: str | None, accept: str | None, account: str = DEFAULT
    ) -> tuple[str, str, str]:
        """InvokeEndpointAsync: (inference ID, output location, failure location) at once; the request is
        answered afterwards, in its own thread, as SageMaker answers it from its queue ("Asynchronous
        inference", SageMaker developer guide): the answer in <S3OutputPath>/<ID>.out, an error in
        <S3FailurePath>/<ID>-error.out. LookupError for an endpoint that is not an asynchronous one."""
        sagemaker = self.jobs.client("sagemaker", account)
        try:
            described = sagemaker.describe_endpoint(EndpointName=endpoint)
        except Exception:
            raise LookupError(f"Endpoint {endpoint} not found.") from None
        config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        output = config.get("AsyncInferenceConfig", {}).get("OutputConfig")
        if not output:
            raise LookupError(f"Endpoint {endpoint} is not an asynchronous endpoint: invoke it with InvokeEndpoint.")
        inference = uuid.uuid4().hex
        answered = f"{output['S3OutputPath'].rstrip('/')}/{inference}.out"
        failed = f"{output.get('S3FailurePath', output['S3OutputPath']).rstrip('/')}/{inference}-error.out"

        def answer() -> None:
            s3 = self.jobs.client("s3", account)

            def put(uri: str, body: str, kind: str) -> None:
                bucket, _, key = uri.removeprefix("s3://").partition("/")
                s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=kind)

            try:
                bucket, _, key = input_location.removeprefix("s3://").partition("/")
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
                result, kind = self.invoke(endpoint, body, content_type, accept, account=account)
            except Exception as error:  # a model error, or an input it could not read
                put(failed, f"{type(error).__name__}: {error}", "text/plain")
            else:
                put(answered, result, kind)

        threading.Thread(target=answer, name=f"async {endpoint} {inference}", daemon=True).start()
        return inference, answered, failed

    def stop(self) -> None:
        for worker in self._servers.values():
            worker.stop()


def _unquoted(value: str) -> str:
    """The SageMaker SDK JSON-encodes hyperparameters ('"train.py"'); the framework's items need not."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
            return decoded if isinstance(decoded, str) else value
        except json.JSONDecodeError:
            return value
    return value


def tuning_candidate(tuning_job: str) -> str:
    """The one training job a local tuning job runs, named as SageMaker names a tuning job's jobs."""
    return f"{tuning_job}-001-{names.digest(tuning_job, 8)}"


def read_metrics(log: str, definitions: list[dict[str, str]]) -> dict[str, float]:
    """Each MetricDefinition's last value in the log, as SageMaker reports FinalMetricDataList."""
    found: dict[str, float] = {}
    for definition in definitions:
        matches = re.findall(definition["Regex"], log)
        if matches:
            last = matches[-1]
            found[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    return found


def middle_of(ranges: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for entry in ranges.get("IntegerParameterRanges", []):
        values[entry["Name"]] = str((int(entry["MinValue"]) + int(entry["MaxValue"])) // 2)
    for entry in ranges.get("ContinuousParameterRanges", []):
        values[entry["Name"]] = str((float(entry["MinValue"]) + float(entry["MaxValue"])) / 2)
    for entry in ranges.get("CategoricalParameterRanges", []):
        values[entry["Name"]] = str(entry["Values"][0])
    return values


def _archive(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


# extractall's "data" filter (no absolute paths, no `..`, no links out, no devices) came in Python
# 3.11.4; Debian's python3 is 3.11.2. Without it, the same members are refused here first.
_DATA_FILTER = hasattr(tarfile, "data_filter")


def _extract(data: bytes, into: Path) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            if _DATA_FILTER:
                archive.extractall(into, filter="data")
                return
            for member in archive.getmembers():
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                    raise JobError(f"ClientError: the archive holds {member.name!r}, which may not be extracted")
            archive.extractall(into)
    except tarfile.TarError as error:
        raise JobError(f"ClientError: not a tar.gz archive: {error}") from None
