"""Run a pipeline item's execution on this machine: the real definition in moto's interpreter.

    with LocalRuns() as local:
        report = local.run(item, fail={"training"})

`LocalRuns` sets up an in-process local AWS holding what the Terraform stack would (bucket,
notification and approval topics, the state machine rendered from the template, the quality-gate
function) and keeps it across runs, so a second run sees the endpoint the first one created. Each
run plans its input exactly as the router does, then shortens the waits that only cost time here
(`LOCAL_TIMINGS`), starts the execution, answers the approval when asked to, and reports the
states passed, the transitions and the notifications.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import count
from typing import Any

import boto3
import botocore.loaders
import botocore.session

from ..core import asl, cache, fanout, model_copy, smoke_test
from ..core.plan import Planned, apply_overrides, plan_run, with_upload_segments
from ..core.settings import EXAMPLE_SETTINGS, Settings
from ..core.stages import CHECKPOINTS
from ..core.stages import quality_gate as gate
from ..core.triggers import Manual, Trigger
from ..operate import approval, runs
from ..operate.executions import stage_outcomes
from ..tools import policy, statemachine
from ..tools.policy import task_resources
from ..tools.statemachine import SEGMENT
from . import REGION, accounts, distributed_map, inbox, task_permissions
from .integrations import Local, installed
from .motoport import mock_aws, sagemaker_backends
from .sagemaker import ENDPOINT_OUTCOMES, EXISTING_ENDPOINT, FAILABLE, SPOT_CAPACITY, JobRunner, LocalSageMaker
from .simulated import JOB_STAGES, SimulatedJobs

DEFAULT_ACCOUNT_ID = accounts.DEFAULT  # the account moto serves by default
PREFIX = "mlops-sfn-local"
SETTINGS = Settings(
    bucket=f"{PREFIX}-artifacts",
    sagemaker_role_arn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{PREFIX}-sagemaker",
    default_image_uri=EXAMPLE_SETTINGS.default_image_uri,
    sagemaker_name_prefix=EXAMPLE_SETTINGS.sagemaker_name_prefix,
    image_repository_arns=EXAMPLE_SETTINGS.image_repository_arns,
    region=REGION,
)
QUALITY_GATE_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{PREFIX}-quality-gate"
MODEL_COPY_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{PREFIX}-model-copy"
SMOKE_TEST_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{PREFIX}-smoke-test"
SEGMENTS_ARN = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:{PREFIX}-segments"
# The definition's function variables, and what the functions' lambdas/*/handler.py export.
FUNCTION_VARIABLES = {
    "quality_gate_function_arn": QUALITY_GATE_ARN,
    "model_copy_function_arn": MODEL_COPY_ARN,
    "smoke_test_function_arn": SMOKE_TEST_ARN,
    "segments_function_arn": SEGMENTS_ARN,
}


def functions(local: Local) -> dict[str, Callable[[Any, Any], Any]]:
    """The deployed functions' handlers, run in this process, each given the client it calls AWS with.
    `local run` deploys no function roles, so, as for its jobs, the run's guardrails decide the
    functions' calls alone: each client acts as the role Terraform would give the function (named as
    the function, modules/function) with every action allowed, under the guardrails."""

    def client(function_arn: str, service: str) -> Any:
        made = boto3.client(service, region_name=REGION)  # Lambda gives its functions AWS_REGION
        if not local.guardrails or not local.check_permissions:
            return made
        role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{function_arn.rsplit(':', 1)[1]}"
        return task_permissions.acting_as(made, role, [task_permissions.UNDEPLOYED_ROLE], local.guardrails)

    return {
        QUALITY_GATE_ARN: lambda event, context: gate.handler(event, context, client(QUALITY_GATE_ARN, "s3")),
        MODEL_COPY_ARN: lambda event, context: model_copy.handler(event, context, client(MODEL_COPY_ARN, "s3")),
        SMOKE_TEST_ARN: lambda event, context: smoke_test.handler(
            event, context, client(SMOKE_TEST_ARN, "sagemaker-runtime"), client(SMOKE_TEST_ARN, "s3")
        ),
        SEGMENTS_ARN: lambda event, context: fanout.handler(event, context, client(SEGMENTS_ARN, "s3")),
    }


# Waits shortened for local runs (the definition is unchanged; these come from the execution input).
LOCAL_TIMINGS = {
    "endpoint_wait_seconds": 0,  # AWS: 30 s between endpoint checks
    "endpoint_max_checks": 4,  # local endpoints settle at the first check
    "unanswered_approval_seconds": 1,  # without --approve/--reject nobody answers: the request times out
}
APPROVAL_ANSWERS = ("approve", "reject")
# The APIs the definition calls, as `--throttle` names them: "<service>:<action>".
THROTTLEABLE = tuple(
    sorted(
        {
            resource.removeprefix("aws-sdk:").split(".")[0]
            for resource in task_resources(statemachine.build())
            if not resource.startswith("sns:")
        }
    )
)


@dataclass
class RunReport:
    pipeline: str
    execution_name: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ABORTED, or RUNNING when the harness gave up waiting
    error: str | None
    cause: str | None
    states: list[str]  # every state entered, in order (a Parallel's branches interleave)
    transitions: int  # states entered: what Step Functions bills
    notifications: list[dict[str, Any]]  # {"topic", "subject", "message"}
    seconds: float
    history: list[dict[str, Any]] = field(repr=False)
    stages: dict[str, str] = field(default_factory=dict)  # stage (and checkpoint) -> executions.OUTCOMES
    segments: dict[str, Any] | None = None  # a fanned-out run's: fanout.summary
    child_history: list[dict[str, Any]] = field(default_factory=list, repr=False)  # its segments' executions'
    results: dict[str, Any] = field(default_factory=dict, repr=False)  # each stage's, as status reads them

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        del result["history"], result["child_history"], result["results"]
        return result


_OPEN: set[str] = set()  # the name prefixes of the harnesses open in this process (they share moto's backends)
_RUN_IDS = count(1)  # unique in the process: job names follow from run ids, and moto's SageMaker is shared


# The AWS service models the harness's clients read, loaded once per process (a new session would
# load them again: most of a second per harness).
_LOADER = botocore.loaders.create_loader()


class LocalRuns:
    """An in-process local AWS with the pipeline's resources; `run()` executes one item. Its jobs are
    simulated, or run by `jobs` (e.g. `jobs.ScriptJobs`, which executes the item's scripts)."""

    def __init__(self, settings: Settings = SETTINGS, jobs: JobRunner | None = None) -> None:
        self.settings = settings
        self.jobs = jobs
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})

    def __enter__(self) -> LocalRuns:
        # moto's interpreter logs every caught task error; the report carries what matters.
        self._quiet = logging.getLogger("moto.stepfunctions")
        self._level = self._quiet.level
        self._quiet.setLevel(logging.CRITICAL)
        self._installed: Any = None
        self._label = next(label for n in count(1) if (label := PREFIX if n == 1 else f"{PREFIX}-{n}") not in _OPEN)
        _OPEN.add(self._label)
        self._mock.start()
        try:
            self._set_up()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed is not None:
            self._installed.__exit__(None, None, None)
        self._mock.stop()
        _OPEN.discard(self._label)
        self._quiet.setLevel(self._level)

    def _set_up(self) -> None:
        shared = botocore.session.Session()
        shared.register_component("data_loader", _LOADER)
        session = boto3.session.Session(region_name=self.settings.region, botocore_session=shared)
        self.s3, self.sns, self.sqs = session.client("s3"), session.client("sns"), session.client("sqs")
        self.sfn, self.sagemaker = session.client("stepfunctions"), session.client("sagemaker")
        self.dynamodb, self.ledger = session.client("dynamodb"), f"{self._label}-run-ledger"
        if self.ledger in self.dynamodb.list_tables()["TableNames"]:  # an earlier harness's: start empty
            self.dynamodb.delete_table(TableName=self.ledger)
        self.dynamodb.create_table(
            TableName=self.ledger,
            KeySchema=[{"AttributeName": "cache_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "cache_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        if self.settings.bucket not in {bucket["Name"] for bucket in self.s3.list_buckets()["Buckets"]}:
            self.s3.create_bucket(Bucket=self.settings.bucket)
        self.topics = {
            topic: self.sns.create_topic(Name=f"{self._label}-{topic}")["TopicArn"]
            for topic in ("notifications", "approvals")
        }
        self._inboxes = {topic: self._subscribe(topic, arn) for topic, arn in self.topics.items()}
        self.local = Local(
            sagemaker=LocalSageMaker(
                SimulatedJobs(self.s3),
                accounts.client,
                lambda account, region: sagemaker_backends[account][region],
            ),
        )
        self.local.functions = functions(self.local)
        self.definition = statemachine.render(
            {
                "notification_topic_arn": self.topics["notifications"],
                "approval_topic_arn": self.topics["approvals"],
                "ledger_table_name": self.ledger,
                **FUNCTION_VARIABLES,
            }
        )
        self.role_arn = self._role(session.client("iam"))
        # Wired before it exists, so that moto's parse of the definition at creation serves its executions.
        name = f"{self._label}-pipeline"
        self.state_machine_arn = f"arn:aws:states:{self.settings.region}:{DEFAULT_ACCOUNT_ID}:stateMachine:{name}"
        self._installed = installed(self.local, self.state_machine_arn)
        self._installed.__enter__()
        created = self.sfn.create_state_machine(
            name=name,
            definition=json.dumps(self.definition),
            roleArn=self.role_arn,
        )["stateMachineArn"]
        if created != self.state_machine_arn:
            raise RuntimeError(f"the local state machine is {created}, not {self.state_machine_arn} as wired")
        self._stage_tasks = asl.stage_tasks(self.definition)

    def _role(self, iam: Any) -> str:
        """The state machine's role with the derived policy, as modules/state-machine creates it:
        every call the run makes is checked against it (task_permissions)."""
        name = f"{self._label}-pipeline"
        trust = {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        }
        try:
            iam.get_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        variables = {
            "partition": "aws",
            "region": self.settings.region,
            "account_id": DEFAULT_ACCOUNT_ID,
            "sagemaker_role_arn": self.settings.sagemaker_role_arn,
            "sagemaker_name_prefix": self.settings.sagemaker_name_prefix,
            # as modules/state-machine passes them: the deployment's own without a model source
            "model_source_account": self.settings.model_source_account or DEFAULT_ACCOUNT_ID,
            "model_source_prefix": self.settings.model_source_prefix or self.settings.sagemaker_name_prefix,
            "notification_topic_arn": self.topics["notifications"],
            "approval_topic_arn": self.topics["approvals"],
            "ledger_table_name": self.ledger,
            "bucket": self.settings.bucket,
            "state_machine_name": name,
            **FUNCTION_VARIABLES,
        }
        iam.put_role_policy(
            RoleName=name, PolicyName="pipeline", PolicyDocument=json.dumps(policy.render_policy(variables))
        )
        return f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{name}"

    def _subscribe(self, topic: str, topic_arn: str) -> str:
        return inbox.subscribe(self.sqs, self.sns, topic_arn, f"{self._label}-{topic}-inbox")

    def _receive(self, topic: str) -> list[dict[str, Any]]:
        return inbox.drain(self.sqs, self._inboxes[topic], topic)

    def plan(self, item: dict[str, Any], trigger: Trigger | None = None, answer: str | None = None) -> Planned:
        """The run the router would start (its segments' list written), with LOCAL_TIMINGS applied."""
        trigger = trigger or Manual(pipeline=item.get("consumption_pipeline_name"), run_id=f"local-{next(_RUN_IDS)}")
        planned = plan_run(with_upload_segments(item, trigger, self.settings, self.s3), trigger, self.settings)
        execution_input = planned.execution_input
        # as the router does: stages the item caches may be reused from the run ledger, the run's and
        # its segments'; then the segments' list written, before the start
        clients = (self.s3, self.dynamodb, self.sfn)
        reusing = apply_overrides(item, trigger)
        cache.reuse(reusing, execution_input, clients, self.ledger, self.state_machine_arn, planned.segment_inputs)
        if planned.segment_inputs:  # as the router does: segments at once within SageMaker's quotas
            quotas = fanout.read_quotas(boto3.client("service-quotas", region_name=self.settings.region))
            fanout.within_quotas(execution_input, planned.segment_inputs, quotas)
        fanout.write(self.s3, execution_input, planned.segment_inputs)
        stages = execution_input["stages"]
        if "deploy" in stages:
            stages["deploy"]["wait_seconds"] = LOCAL_TIMINGS["endpoint_wait_seconds"]
            stages["deploy"]["max_checks"] = LOCAL_TIMINGS["endpoint_max_checks"]
        if "approval" in stages and answer is None:
            stages["approval"]["timeout_seconds"] = LOCAL_TIMINGS["unanswered_approval_seconds"]
        return planned

    def start(
        self,
        item: dict[str, Any],
        *,
        trigger: Trigger | None = None,
        fail: Iterable[str] = (),
        metric: float | None = None,
        answer: str | None = None,
        endpoint: str = "in_service",
        throttle: Iterable[str] = (),
        limited: Iterable[str] = (),
        deny: Iterable[str] = (),
        scp: dict[str, Any] | None = None,
        report_bytes: int = 0,
        existing_endpoint: str | None = None,
        fail_segments: Iterable[str] = (),
        spot: str = "available",
    ) -> tuple[str, dict[str, Any]]:
        """Start one run of `item` and return (execution ARN, input) at once; `answer` only sets the approval
        timeout here (None: nobody will answer). `deny` (actions) and `scp` (a policy document) are guardrails
        on top of the state machine's role for this run. Raises InvalidItem as the router would, ValueError
        for a bad option.
        """
        fail = set(fail)
        if answer not in (None, *APPROVAL_ANSWERS):
            raise ValueError(f"answer {answer!r}: use approve, reject or None (nobody answers)")
        if endpoint not in ENDPOINT_OUTCOMES:
            raise ValueError(f"endpoint {endpoint!r}: use one of {', '.join(ENDPOINT_OUTCOMES)}")
        if spot not in SPOT_CAPACITY:
            raise ValueError(f"spot capacity {spot!r}: use one of {', '.join(SPOT_CAPACITY)}")
        if existing_endpoint not in (None, *EXISTING_ENDPOINT):
            raise ValueError(f"existing endpoint {existing_endpoint!r}: use one of {', '.join(EXISTING_ENDPOINT)}")
        unknown_apis = sorted(set(throttle) - set(THROTTLEABLE))
        if unknown_apis:
            raise ValueError(f"--throttle {', '.join(unknown_apis)}: use one of {', '.join(THROTTLEABLE)}")
        creates = [api for api in THROTTLEABLE if api.startswith("sagemaker:create")]
        if set(limited) - set(creates):
            raise ValueError(
                f"limited {', '.join(sorted(set(limited) - set(creates)))}: use one of {', '.join(creates)}"
            )
        planned = self.plan(item, trigger, answer)
        execution_input, segment_inputs = planned.execution_input, planned.segment_inputs
        unknown = sorted(fail - set(FAILABLE))
        if unknown:
            raise ValueError(f"--fail {', '.join(unknown)}: use one of {', '.join(FAILABLE)}")
        runs = {stage for stage, on in execution_input["run"].items() if on}
        runs |= set(execution_input.get("fanout", {}).get("stages", []))  # they run in each segment
        runs |= {name for name, (_, stage) in CHECKPOINTS.items() if name in execution_input and stage.name in runs}
        not_run = sorted(fail - runs)
        if not_run:
            raise ValueError(f"--fail {', '.join(not_run)}: not a stage this item runs ({self._running(runs)})")
        fail_segments = set(fail_segments)
        if fail_segments:
            self._check_failable_segments(execution_input, segment_inputs, fail_segments)
        if self.jobs is not None and (fail & JOB_STAGES or fail_segments or metric is not None or report_bytes):
            raise ValueError(
                "--fail of a job stage, --fail-segment, --metric and report sizes apply to simulated jobs only"
            )
        self.local.sagemaker.runner = self.jobs or SimulatedJobs.for_execution(
            self.s3, execution_input, fail & JOB_STAGES, metric, report_bytes, segment_inputs, fail_segments
        )
        self.local.sagemaker.endpoint_outcome = endpoint
        self.local.sagemaker.spot_capacity = spot
        # a stage's first task fails: at the top, and in each segment (its states are named apart)
        self.local.fail_states = {
            first: stage
            for stage in fail - JOB_STAGES
            for first in {
                next((task for task in self._stage_tasks[stage] if task.startswith(SEGMENT) == inside), None)
                for inside in (False, True)
            }
            if first is not None
        }
        self.local.throttle, self.local.limited = set(throttle), set(limited)
        self.local.guardrails = task_permissions.guardrail(deny, scp)
        if existing_endpoint is not None and "deploy" in execution_input["stages"]:
            self._set_endpoint(execution_input["stages"]["deploy"]["endpoint_name"], existing_endpoint)
        execution = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=execution_input["execution_name"],
            input=json.dumps(execution_input),
        )["executionArn"]
        return str(execution), execution_input

    def run(
        self, item: dict[str, Any], *, answer: str | None = None, timeout: float = 120.0, **options: Any
    ) -> RunReport:
        """Start one run (options as for start()), answer its approval request if asked to, report its end."""
        started = time.monotonic()
        self._answered: list[dict[str, Any]] = []
        execution, execution_input = self.start(item, answer=answer, **options)
        return self._report(execution, execution_input, answer, started, timeout)

    def run_input(
        self,
        execution_input: dict[str, Any],
        timeout: float = 120.0,
        endpoint: str = "in_service",
        segment_inputs: Sequence[dict[str, Any]] = (),
    ) -> RunReport:
        """Execute an input planned elsewhere (a rerun's, say; its segments' written first, as its starter
        writes them) with simulated jobs that succeed; nobody answers."""
        started = time.monotonic()
        self._answered = []
        fanout.write(self.s3, execution_input, segment_inputs)
        self.local.sagemaker.runner = self.jobs or SimulatedJobs.for_execution(
            self.s3, execution_input, set(), None, 0, segment_inputs
        )
        self.local.sagemaker.endpoint_outcome = endpoint
        self.local.sagemaker.spot_capacity = "available"
        self.local.fail_states, self.local.throttle, self.local.limited = {}, set(), set()
        self.local.guardrails = []
        execution = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=execution_input["execution_name"],
            input=json.dumps(execution_input),
        )["executionArn"]
        return self._report(execution, execution_input, None, started, timeout)

    def _report(
        self, execution: str, execution_input: dict[str, Any], answer: str | None, started: float, timeout: float
    ) -> RunReport:
        described = self._follow(execution, answer, started + timeout)
        seconds = round(time.monotonic() - started, 3)
        history = runs.history(self.sfn, execution)
        # the segments' child executions' states too: Step Functions bills their transitions as well
        children = distributed_map.child_events(execution)
        entered = [e["stateEnteredEventDetails"]["name"] for e in history + children if "stateEnteredEventDetails" in e]
        stages = stage_outcomes(
            execution_input,
            described["status"],
            described.get("error"),
            {stage: any(task in entered for task in tasks) for stage, tasks in self._stage_tasks.items()},
        )
        return RunReport(
            pipeline=execution_input["pipeline"],
            execution_name=execution_input["execution_name"],
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            states=entered,
            transitions=len(entered),
            notifications=self._answered + self._receive("approvals") + self._receive("notifications"),
            seconds=seconds,
            history=history,
            stages=stages,
            segments=fanout.outcome(self.s3, execution_input),
            child_history=children,
            results=runs.results(json.loads(described.get("output") or "{}")) or runs.results_so_far(history),
        )

    @staticmethod
    def _check_failable_segments(
        execution_input: dict[str, Any], segment_inputs: list[dict[str, Any]], asked: set[str]
    ) -> None:
        """--fail-segment names segments of this run, which runs a job per segment."""
        per_segment = execution_input.get("fanout", {}).get("stages", [])
        if not per_segment:
            raise ValueError("--fail-segment: this item has no fanout (it runs no stage per segment)")
        if not set(per_segment) & JOB_STAGES:
            raise ValueError(f"--fail-segment fails a segment's first job, and {', '.join(per_segment)} run none")
        known = [planned["segment"] for planned in segment_inputs]
        unknown = sorted(asked - set(known))
        if unknown:
            shown = ", ".join(known[:10]) + (f" ... ({len(known)} in all)" if len(known) > 10 else "")
            raise ValueError(f"--fail-segment {', '.join(unknown)}: not a segment of this item (it has {shown})")

    def _set_endpoint(self, name: str, state: str) -> None:
        """Put the item's endpoint in `state` (EXISTING_ENDPOINT) before a run, as an earlier
        deployment could have left it."""
        backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][self.settings.region]
        backend.endpoints.pop(name, None)
        if state == "none":
            return
        model, config = f"{name}-earlier-model", f"{name}-earlier-config"
        self.sagemaker.create_model(
            ModelName=model,
            ExecutionRoleArn=self.settings.sagemaker_role_arn,
            PrimaryContainer={"Image": self.settings.default_image_uri},
        )
        variant = {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large"}
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=config, ProductionVariants=[{**variant, "InitialInstanceCount": 1}]
        )
        self.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
        self.local.sagemaker.forget_rollout(backend.endpoints[name].arn)  # set here, not rolled out
        backend.endpoints[name].endpoint_status = {"in_service": "InService", "failed": "Failed"}.get(state, "Updating")

    @staticmethod
    def _running(runs: set[str]) -> str:
        return "it runs " + ", ".join(sorted(runs)) if runs else "it runs no stage"

    def _follow(self, execution: str, answer: str | None, deadline: float) -> dict[str, Any]:
        """Wait for the end; answer the approval request as an approver would, from its message."""
        while True:
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                self.sfn.stop_execution(
                    executionArn=execution, error="LocalTimeout", cause="the local harness stopped waiting"
                )
                return described
            if answer is not None:
                self._answer(answer)
            time.sleep(0.02)

    def _answer(self, answer: str) -> None:
        for note in self._receive("approvals"):
            token = note["message"]["task_token"]
            approval.answer(self.sfn, token, approved=answer == "approve", comment="answered by mlops-sfn local run")
            self._answered.append(note)
