"""`mlops-sfn local demo --promote [--reject]`: train and register in development, serve in production,
two accounts of one local AWS.

1. `prepare`: the local stack (development, the local AWS's default account) is applied again with
   `model_consumer_accounts = [PRODUCTION]`, and the root is applied a second time into the PRODUCTION
   account with `environment = "prod"` and `model_source` = development's `as_model_source` output:
   what two HCP Terraform workspaces apply (docs/promotion.md).
2. The demo's upload runs in development as `local demo` runs it. When its approval request arrives,
   production's team writes the item that serves development's group (`serving_item`), naming the
   candidate as the package served until the next approval, and pushes it to production's table.
3. The approver answers. An approval changes the package's status, SageMaker's event goes through
   development's share rule to production's default bus (if the bus's policy lets it), production's
   package-approved rule hands it to production's router, and the router starts the serving run,
   which `follow` reports to its end: the endpoint in production, InService, serving the package.
   A rejection is never shared: production starts nothing, and `follow` shows its endpoint absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..core import names
from ..core.plan import check_with_sample
from ..core.settings import Settings
from ..operate import items
from . import deployment
from .demo import Demo, DemoError, DemoResult
from .deployment import Deployment

PRODUCTION = "210987654321"  # the production account of the local AWS
SERVING = "demo-prod-serve-house-price"
ENDPOINT = "mlops-prod-house-price"
# How long production is watched for a run that must not start (a rejection is never shared; delivery
# to production's router takes well under a second locally), and waited for the run an approval starts.
QUIET_SECONDS = 10.0
STARTS_WITHIN_SECONDS = 60.0


@dataclass
class PromotionResult:
    package: str | None  # the candidate the development run registered
    approval: str | None  # its approval status when the demo ended
    run: DemoResult | None  # production's serving run, if one started
    endpoint: dict[str, Any] | None  # production's endpoint (DescribeEndpoint), if it exists
    served: str | None  # the package production's model was created from


def prepare(development: Deployment, say: Callable[[str], None] = print) -> tuple[Deployment, Deployment]:
    """Development applied as production's model source, then production applied as its consumer."""
    development = deployment.apply(development, {"model_consumer_accounts": [PRODUCTION]}, say=say)
    production = deployment.apply(
        development,
        {
            "environment": "prod",
            "model_source": development.outputs["as_model_source"],
            "items_pattern": "demo-prod-*.json",  # none: the serving item is pushed when there is a candidate
        },
        account=PRODUCTION,
        say=say,
    )
    return development, production


def serving_item(group: str, package: str, smoke_test: dict[str, Any] | None) -> dict[str, Any]:
    """What production's team writes to serve development's approved packages of `group`: no training,
    the model created from the package as registered, deployed behind production's own endpoint (with
    development's smoke test, when it has one)."""
    deploy = {
        "run": True,
        "endpoint_name": ENDPOINT,
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "strategy": "all_at_once",
        **({"smoke_test": smoke_test} if smoke_test else {}),
    }
    return {
        "consumption_pipeline_name": SERVING,
        "schema_version": 1,
        "enabled": True,
        "description": f"Serve each package development approves in {group}, behind production's endpoint.",
        "trigger": {"model_package_group": group},
        "notifications": {"on": ["failure", "success"]},
        "stages": {"create_model": {"run": True, "model_package": package}, "deploy": deploy},
    }


class Promotion:
    def __init__(self, development: Demo, production: Deployment, say: Callable[[str], None] = print) -> None:
        self.development = development
        self.production = Demo(production, say)
        self.say = say
        self.package: str | None = None
        self.development_pipeline = ""

    def serve_candidate(self, request: dict[str, Any]) -> None:
        """On development's approval request: production's serving item, naming the candidate, pushed."""
        package = str(request.get("model_package_arn") or "")
        if not package:
            raise DemoError(f"the approval request names no model package: {request}")
        self.package = package
        smoke_test = self.development.item(self.development_pipeline)["stages"].get("deploy", {}).get("smoke_test")
        item = serving_item(package.split("/")[1], package, smoke_test)
        outputs = self.production.outputs
        problems = check_with_sample(item, Settings.from_outputs(outputs))
        if problems:
            raise DemoError(f"{SERVING}: " + "; ".join(f"{p.path}: {p.message}" for p in problems))
        dynamodb = self.production.deployment.client("dynamodb")
        items.push(dynamodb, outputs["table_name"], [item], items.revision(dynamodb, outputs["table_name"]))
        self.say(
            f"  production (account {PRODUCTION}) pushed {SERVING}, serving {item['trigger']['model_package_group']}"
        )

    def run(self, pipeline: str, answer: str, timeout: float = 600) -> tuple[DemoResult, PromotionResult]:
        """Development's run followed (its approval answered), then what production did."""
        self.development_pipeline = pipeline
        since = datetime.now().astimezone()
        self.development.on_approval_request = self.serve_candidate
        # a folder of its own: each promotion trains a new candidate (the same files would start nothing)
        into = f"promotion-{since:%Y%m%dT%H%M%S%f}/"
        trained = self.development.run(pipeline, answer=answer, timeout=timeout, into=into)
        return trained, self.follow(since, timeout)

    def follow(self, since: datetime, timeout: float) -> PromotionResult:
        """Production's serving run, followed to its end; or, when none starts, its absence shown."""
        approval = None
        if self.package:
            sagemaker = self.development.deployment.client("sagemaker")
            approval = sagemaker.describe_model_package(ModelPackageName=self.package)["ModelApprovalStatus"]
        started = time.monotonic()
        wait = STARTS_WITHIN_SECONDS if approval == "Approved" else QUIET_SECONDS
        arn = self._serving_run(since, started + wait)
        run = None
        if arn:
            self.say(f"production's router started {arn.rsplit(':', 1)[1]} on the approval")
            run = self.production.followed(SERVING, arn, True, "approve", started, timeout)
        elif approval == "Approved":
            raise DemoError(
                f"no run of {SERVING} in production {wait:.0f} s after the approval: see the development router's "
                f"dead-letter queue ({self.development.outputs['dead_letter_queue_url']}) and production's"
                f" router log ({self.production.deployment.runtime / 'logs' / 'lambda'}/)"
            )
        sagemaker = self.production.deployment.client("sagemaker")
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        except ClientError:
            return PromotionResult(self.package, approval, run, None, None)
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
        containers = model.get("Containers") or [model.get("PrimaryContainer", {})]
        return PromotionResult(self.package, approval, run, endpoint, containers[0].get("ModelPackageName"))

    def _serving_run(self, since: datetime, deadline: float) -> str | None:
        """The execution of the serving item production started since `since`, or None by `deadline`."""
        sfn, machine = self.production.sfn, self.production.outputs["state_machine_arn"]
        while True:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                for entry in page["executions"]:
                    if names.is_execution_of(SERVING, entry["name"]) and entry["startDate"] >= since.replace(
                        microsecond=0
                    ):
                        return str(entry["executionArn"])
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


def report(result: PromotionResult) -> list[str]:
    """What production serves after the demo, in the user's words."""
    lines = [f"promotion to production (account {PRODUCTION}):"]
    if result.package:
        lines.append(f"  candidate {result.package}: {result.approval}")
    if result.run:
        lines.append(f"  serving run {result.run.execution_name}: {result.run.status}")
        for stage, run in result.run.stages.items():
            if run.status == "skipped":
                continue  # production trains nothing: the stages it ran
            took = f"{run.seconds:6.1f} s" if run.seconds is not None else " " * 8
            lines.append(f"    {stage:<16} {run.status:<12} {took}")
        if result.run.error:
            lines.append(f"    error: {result.run.error}: {result.run.cause}")
    else:
        why = "a rejected package is never shared" if result.approval == "Rejected" else "nothing was approved"
        lines.append(f"  not promoted: {why}; production started no run in {QUIET_SECONDS:.0f} s")
    if not result.endpoint:
        lines.append(f"  endpoint {ENDPOINT}: none: nothing deployed in production")
    elif result.served == result.package:
        lines.append(f"  endpoint {ENDPOINT}: {result.endpoint['EndpointStatus']}, serving the candidate")
    else:  # an earlier promotion's
        lines.append(f"  endpoint {ENDPOINT}: {result.endpoint['EndpointStatus']}, still serving {result.served}")
    return lines


def not_promoted(result: PromotionResult) -> bool:
    """Whether production started nothing and serves anything but the candidate."""
    return result.run is None and (result.served is None or result.served != result.package)


def promoted(result: PromotionResult) -> bool:
    """Whether production ended serving the approved candidate."""
    return bool(
        result.run
        and result.run.status == "SUCCEEDED"
        and result.endpoint
        and result.endpoint["EndpointStatus"] == "InService"
        and result.served == result.package
    )
