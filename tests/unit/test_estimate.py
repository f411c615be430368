"""The cost bound a plan shows and a budget is checked against, the price table behind it, and its
refresh from AWS's price list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops_sfn import cli
from mlops_sfn.core import estimate, prices
from mlops_sfn.core.plan import SAMPLE_TRIGGER, plan_run
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.triggers import InvalidEvent, Manual, parse_event
from tests.conftest import EVENTS, edited, load_item

TABLE = prices.load()
REGION = EXAMPLE_SETTINGS.region
OFFER = EVENTS / "sagemaker_offer.json"


def price(use: str, instance: str) -> float:
    found = TABLE.hourly(REGION, use, instance)
    assert found is not None, f"the shipped table has no {instance} for {use}"
    return found


def bound(item: dict[str, Any], trigger: Any = SAMPLE_TRIGGER) -> dict[str, Any]:
    return plan_run(item, trigger, EXAMPLE_SETTINGS).estimate


def test_the_demos_estimate_is_each_jobs_instances_for_its_limit_and_the_endpoint_for_a_day() -> None:
    found = bound(load_item())
    m5 = "ml.m5.large"
    hand = {  # price per hour x instances x hours, as the demo item plans them
        "preprocessing": price("processing", m5) * 1 * 1,  # MaxRuntimeInSeconds 3600
        "training": price("training", m5) * 1 * 1,
        "evaluation": price("processing", m5) * 1 * 1,
        "batch_transform": price("transform", m5) * 1 * 24,  # no time limit: a day
        "deploy": price("hosting", m5) * 1 * 24,  # an endpoint for a day
        "monitoring": price("processing", m5) * (1 + 24),  # the baseline job, then an hourly job for a day
    }
    for stage, usd in hand.items():
        assert found["stages"][stage] == pytest.approx(usd), stage
    transitions = estimate.RUN_TRANSITIONS + estimate.STAGE_TRANSITIONS * 9  # nine stages run
    assert found["transitions"] == transitions
    assert found["stages"]["step_functions"] == pytest.approx(transitions * TABLE.transition, abs=1e-4)
    assert found["usd"] == round(sum(hand.values()) + transitions * TABLE.transition, 2)
    assert found["prices_as_of"] == TABLE.as_of and found["region"] == REGION and found["unpriced"] == []


def test_a_fanned_out_run_counts_each_segments_jobs() -> None:
    item = load_item("demo-dev-segmented-house-price")
    found = bound(item)
    segments = len(item["fanout"]["segments"])
    assert found["stages"]["training"] == pytest.approx(segments * price("training", "ml.m5.large"))
    planned = plan_run(item, SAMPLE_TRIGGER, EXAMPLE_SETTINGS).execution_input
    once = [stage for stage, on in planned["run"].items() if on]
    assert once == ["create_model", "deploy", "monitoring"]  # monitoring: removing the schedule
    stages = len(once) + len(planned["fanout"]["stages"])
    transitions = estimate.RUN_TRANSITIONS + estimate.STAGE_TRANSITIONS * stages
    assert found["transitions"] == transitions + estimate.SEGMENT_TRANSITIONS * segments
    assert any(line.endswith(f"x {segments} segments") for line in found["charges"])


def test_spot_training_counts_at_most_the_spot_job_and_its_on_demand_fallback() -> None:
    found = bound(edited(load_item(), {"stages.training.spot": True}))
    assert found["stages"]["training"] == pytest.approx(2 * price("training", "ml.m5.large"))


def test_a_tuning_job_counts_every_training_job_it_may_run() -> None:
    item = edited(
        load_item(),
        {
            "stages.training.run": False,
            "stages.tuning.run": True,
            "stages.tuning.request.HyperParameterTuningJobConfig.ResourceLimits": {
                "MaxNumberOfTrainingJobs": 6,
                "MaxParallelTrainingJobs": 2,
            },
            "stages.tuning.request.TrainingJobDefinition.StoppingCondition.MaxRuntimeInSeconds": 1800,
        },
    )
    assert bound(item)["stages"]["tuning"] == pytest.approx(6 * 0.5 * price("training", "ml.m5.large"))


def test_an_instance_the_table_has_no_price_for_is_named_not_counted() -> None:
    found = bound(edited(load_item(), {"stages.training.request.ResourceConfig.InstanceType": "ml.p4d.24xlarge"}))
    assert found["unpriced"] == ["ml.p4d.24xlarge for training"]
    assert found["stages"]["training"] == 0


def test_the_execution_input_carries_its_estimate() -> None:
    planned = plan_run(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS)
    assert planned.execution_input["estimate"] == {
        key: planned.estimate[key] for key in ("usd", "stages", "prices_as_of", "region")
    }


# -- budget_usd --------------------------------------------------------------------------------------


def test_a_run_whose_estimate_is_above_the_budget_is_refused_naming_both() -> None:
    total = bound(load_item())["usd"]
    with pytest.raises(InvalidItem) as raised:
        bound(load_item() | {"budget_usd": 5})
    (problem,) = raised.value.problems
    assert problem.path == "budget_usd"
    assert f"may cost up to USD {total:.2f}" in problem.message and "above budget_usd 5" in problem.message
    assert "monitoring" in problem.message and "--over-budget" in problem.message
    assert bound(load_item() | {"budget_usd": total})["usd"] == total  # at the budget: allowed


def test_a_manual_run_started_over_budget_is_planned_and_says_so() -> None:
    item = load_item() | {"budget_usd": 1}
    manual = Manual(pipeline=item["consumption_pipeline_name"], run_id="r1", over_budget=True)
    planned = plan_run(item, manual, EXAMPLE_SETTINGS).execution_input
    assert planned["trigger"]["over_budget"] is True
    assert "over_budget" not in plan_run(load_item(), SAMPLE_TRIGGER, EXAMPLE_SETTINGS).execution_input["trigger"]


def test_over_budget_comes_from_a_manual_event_and_must_be_a_boolean() -> None:
    event = {"consumption_pipeline_name": "demo-dev-domain-cal-house-price", "over_budget": True}
    (trigger,) = parse_event(event, invocation_id="r1")
    assert isinstance(trigger, Manual) and trigger.over_budget is True
    with pytest.raises(InvalidEvent, match="over_budget: expected true"):
        parse_event(event | {"over_budget": "yes"}, invocation_id="r1")


def test_a_budget_that_cannot_be_checked_is_refused() -> None:
    item = edited(load_item(), {"stages.training.request.ResourceConfig.InstanceType": "ml.p4d.24xlarge"})
    with pytest.raises(InvalidItem) as raised:
        bound(item | {"budget_usd": 1000})
    (problem,) = raised.value.problems
    assert problem.path == "budget_usd" and "no price for ml.p4d.24xlarge for training" in problem.message
    assert "mlops-sfn prices refresh" in problem.message


@pytest.mark.parametrize("budget", [0, -1, "10"])
def test_a_budget_is_a_positive_number(budget: Any) -> None:
    with pytest.raises(InvalidItem) as raised:
        bound(load_item() | {"budget_usd": budget})
    assert [p.path for p in raised.value.problems] == ["budget_usd"]


def test_validate_names_the_budget_and_the_estimate(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps(load_item() | {"budget_usd": 2}))
    assert cli.main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "budget_usd: the run may cost up to USD" in err and "above budget_usd 2" in err


def test_plan_prints_the_estimate_and_its_json_carries_it(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps(load_item() | {"budget_usd": 100}))
    assert cli.main(["plan", str(path)]) == 0
    text = capsys.readouterr().out
    total = bound(load_item())["usd"]
    assert f"estimate:   at most USD {total:.2f} (budget_usd 100), prices of {TABLE.as_of} in {REGION}" in text
    assert "deploy: USD 2.76: 1 x ml.m5.large for hosting, 24 h (a day)" in text
    assert cli.main(["plan", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["estimate"]
    assert shown["usd"] == total and set(shown) == {"usd", "stages", "prices_as_of", "region"}


# -- the table and its refresh -----------------------------------------------------------------------------


def test_an_offer_file_gives_each_regions_hourly_instance_prices_by_use() -> None:
    found = prices.from_offer(json.loads(OFFER.read_text()))
    assert found == {
        "us-east-1": {
            "training": {"ml.m5.large": 0.1},
            "hosting": {"ml.m5.large": 0.25},  # two products: the higher price, a bound
            "processing": {"ml.m5.xlarge": 0.3},
            "transform": {"ml.m5.xlarge": 0.4},
        },
        "eu-west-1": {"training": {"ml.m5.large": 0.11}},
    }  # storage (GB-Mo, not an ML Instance) left out


@pytest.mark.parametrize(
    ("component", "use"),
    [
        ("Training", "training"),
        ("Hosting", "hosting"),
        ("Processing", "processing"),
        ("Batch Transform", "transform"),
        ("Notebook", None),
    ],
)
def test_a_price_lists_components_are_read_as_uses(component: str, use: str | None) -> None:
    assert prices.use_of(component) == use


def test_prices_refresh_writes_a_dated_table_from_an_offer(tmp_path: Path, capsys: Any) -> None:
    into = tmp_path / "prices.json"
    assert cli.main(["prices", "refresh", "--offer", str(OFFER), "--into", str(into)]) == 0
    table = prices.load(into)
    assert table.hourly("us-east-1", "training", "ml.m5.large") == 0.1
    assert table.hourly("eu-west-1", "training", "ml.m5.large") == 0.11
    assert str(OFFER) in table.source and table.transition == TABLE.transition
    assert "wrote" in capsys.readouterr().out


def test_prices_refresh_says_what_it_could_not_read(tmp_path: Path, capsys: Any) -> None:
    empty = tmp_path / "offer.json"
    empty.write_text(json.dumps({"products": {}, "terms": {}}))
    into = tmp_path / "prices.json"
    assert cli.main(["prices", "refresh", "--offer", str(empty), "--into", str(into)]) == 1
    assert "holds no SageMaker instance prices" in capsys.readouterr().err and not into.exists()
    assert cli.main(["prices", "refresh", "--offer", str(tmp_path / "missing.json"), "--into", str(into)]) == 1
    assert "missing.json: cannot read the price list" in capsys.readouterr().err
    assert cli.main(["prices", "refresh", "--offer", str(OFFER), "--region", "us-east-1", "--into", str(into)]) == 2


def test_the_shipped_table_is_dated_and_says_where_its_prices_come_from() -> None:
    assert TABLE.as_of and "refresh" in TABLE.source
    assert price("training", "ml.m5.large") > 0 and TABLE.transition == 0.000025  # USD 0.025 per 1,000
