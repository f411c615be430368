"""Promotion across accounts on one machine (`mlops-sfn local demo --promote`): development (the local
AWS's default account) trains, registers and asks for approval; production (a second account of the
same local AWS, its own Terraform applied there) serves the approved package. Everything between them
is decided by the policies the two roots write: the group's resource policy, the bucket's and the
key's, the share rule's role and production's bus policy.

The tests run in order on one pair of deployments: a rejection first (nothing in production), then an
approval (production serves it), then production's bus refusing development's events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops_sfn.local import deployment, promotion
from mlops_sfn.local.demo import PIPELINE, Demo

pytestmark = pytest.mark.terraform


class Pair:
    def __init__(self, development: deployment.Deployment, production: deployment.Deployment) -> None:
        self.development, self.production = development, production
        self.lines: list[str] = []

    def promote(self, answer: str) -> tuple[Any, promotion.PromotionResult]:
        demo = Demo(self.development, say=self.lines.append)
        return promotion.Promotion(demo, self.production, say=self.lines.append).run(PIPELINE, answer)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    home = tmp_path_factory.mktemp("promotion") / ".mlops-local"
    running = deployment.up(home, say=lambda _: None)
    try:
        yield Pair(*promotion.prepare(running, say=lambda _: None))
    finally:
        deployment.down(home, say=lambda _: None)


def test_production_is_a_second_deployment_in_its_own_account(pair: Pair) -> None:
    production = pair.production
    assert production.account == promotion.PRODUCTION
    assert production.outputs["state_machine_arn"].split(":")[4] == promotion.PRODUCTION
    assert production.client("sts").get_caller_identity()["Account"] == promotion.PRODUCTION
    assert production.outputs["model_source_account"] == pair.development.account
    assert deployment.load(Path(production.home), promotion.PRODUCTION) == production  # found again by `load`
    # what `local outputs --account` prints reaches production's account as any SDK signs, with no header
    reach = production.reach()
    signed = boto3.client(
        "sts",
        endpoint_url=reach["AWS_ENDPOINT_URL"],
        verify=reach["AWS_CA_BUNDLE"],
        region_name=reach["AWS_DEFAULT_REGION"],
        aws_access_key_id=reach["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=reach["AWS_SECRET_ACCESS_KEY"],
    )
    assert signed.get_caller_identity()["Account"] == promotion.PRODUCTION
    # development shares with production: its bus statement and its bucket's
    policy = json.loads(production.client("events").describe_event_bus()["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"AWS": f"arn:aws:iam::{pair.development.account}:root"}]
    bucket = pair.development.outputs["bucket_name"]
    statements = json.loads(pair.development.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    (readers,) = [s for s in statements if s.get("Sid") == "ModelConsumersReadRunOutputs"]
    assert readers["Principal"] == {"AWS": [f"arn:aws:iam::{promotion.PRODUCTION}:root"]}


def test_a_rejected_candidate_is_never_shared_and_production_deploys_nothing(pair: Pair) -> None:
    trained, result = pair.promote("reject")
    assert result.package and result.approval == "Rejected", trained.status
    assert (trained.error, trained.cause) == ("approval.Rejected", "rejected by mlops-sfn local demo")  # the approver's
    assert promotion.not_promoted(result) and result.run is None and result.endpoint is None
    assert not pair.production.client("sagemaker").list_endpoints()["Endpoints"]
    lines = promotion.report(result)
    assert "  not promoted: a rejected package is never shared; production started no run in 10 s" in lines
    assert f"  endpoint {promotion.ENDPOINT}: none: nothing deployed in production" in lines


def test_an_approved_candidate_is_served_in_production_as_registered_in_development(pair: Pair) -> None:
    trained, result = pair.promote("approve")
    assert trained.status == "SUCCEEDED", (trained.error, trained.cause)
    assert promotion.promoted(result), (result, pair.lines[-20:])
    assert result.package and result.package.split(":")[4] == pair.development.account  # development's package
    assert result.run is not None and result.run.stages["create_model"].status == "succeeded"
    assert result.run.stages["training"].status == "skipped"  # production trains nothing
    sagemaker = pair.production.client("sagemaker")
    (endpoint,) = sagemaker.list_endpoints()["Endpoints"]
    assert (endpoint["EndpointName"], endpoint["EndpointStatus"]) == (promotion.ENDPOINT, "InService")
    assert endpoint["EndpointArn"].split(":")[4] == promotion.PRODUCTION
    answer = pair.production.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=promotion.ENDPOINT, ContentType="text/csv", Body=b"8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23"
    )
    assert float(answer["Body"].read()) > 0  # development's model answers in production
    development_endpoints = pair.development.client("sagemaker").list_endpoints()["Endpoints"]
    assert promotion.ENDPOINT not in [e["EndpointName"] for e in development_endpoints]
    assert f"  endpoint {promotion.ENDPOINT}: InService, serving the candidate" in promotion.report(result)


def test_an_approval_production_s_bus_refuses_stays_in_developments_dead_letter_queue(pair: Pair) -> None:
    """Without the statement production's Terraform adds to its bus's policy, EventBridge refuses
    development's event: it is kept in development's router dead-letter queue, naming the refusal,
    and production starts nothing."""
    events = pair.production.client("events")
    (statement,) = json.loads(events.describe_event_bus()["Policy"])["Statement"]
    events.remove_permission(StatementId=statement["Sid"])
    sagemaker = pair.development.client("sagemaker")
    group = f"{pair.development.outputs['sagemaker_name_prefix']}cal-house-price"
    since = time.time()
    try:
        latest = sagemaker.list_model_packages(ModelPackageGroupName=group, SortOrder="Descending")
        package = latest["ModelPackageSummaryList"][0]["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Rejected")
        sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="Approved")
        kept = dead_letters(pair.development, time.monotonic() + 30)
    finally:
        events.put_permission(
            Action="events:PutEvents", Principal=pair.development.account, StatementId=statement["Sid"]
        )
    attributes = kept["MessageAttributes"]
    assert attributes["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
    assert "events:PutEvents" in attributes["ERROR_MESSAGE"]["StringValue"]
    assert attributes["TARGET_ARN"]["StringValue"].endswith(f":{promotion.PRODUCTION}:event-bus/default")
    assert json.loads(kept["Body"])["detail"]["ModelPackageArn"] == package
    sfn = pair.production.client("stepfunctions")
    started = sfn.list_executions(stateMachineArn=pair.production.outputs["state_machine_arn"])["executions"]
    assert all(entry["startDate"].timestamp() < since for entry in started)  # nothing new in production


def dead_letters(deployed: deployment.Deployment, deadline: float) -> dict[str, Any]:
    sqs = deployed.client("sqs")
    while True:
        found = sqs.receive_message(
            QueueUrl=deployed.outputs["dead_letter_queue_url"], MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, "nothing reached the dead-letter queue"
