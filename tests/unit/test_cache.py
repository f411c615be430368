"""Step caching's keys and lookup (core/cache.py): a key changes with what decides a stage's result
and with nothing else; a live ledger record makes a stage reused and moves later stages to its outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_sfn import cli
from mlops_sfn.core import cache
from mlops_sfn.core.plan import plan_execution, plan_run
from mlops_sfn.core.problems import InvalidItem
from mlops_sfn.core.settings import EXAMPLE_SETTINGS
from mlops_sfn.core.triggers import Manual
from tests.conftest import DELETE, edited, load_item

NOW = 1_800_000_000.0
IMAGES = "683313688378.dkr.ecr.us-east-1.amazonaws.com"


def planned(item: dict[str, Any], run_id: str = "one") -> dict[str, Any]:
    trigger = Manual(pipeline=item["consumption_pipeline_name"], run_id=run_id)
    return plan_execution(item, trigger, EXAMPLE_SETTINGS)


def listing(changed: dict[str, str] | None = None) -> Any:
    """Every location's content is "v1", except those `changed` names (by a part of the location)."""

    def identity(location: str) -> str:
        return next((value for part, value in (changed or {}).items() if part in location), "v1")

    return identity


def keys(item: dict[str, Any], run_id: str = "one", changed: dict[str, str] | None = None) -> dict[str, str | None]:
    return {stage: found.key for stage, found in cache.keys(planned(item, run_id), listing(changed)).items()}


def differing(before: dict[str, str | None], after: dict[str, str | None]) -> set[str]:
    return {stage for stage in before if before[stage] != after[stage]}


def test_another_run_of_the_same_work_has_the_same_keys() -> None:
    item = load_item()
    first, second = keys(item, "one"), keys(item, "two")
    assert planned(item, "one")["run_folder"] != planned(item, "two")["run_folder"]
    assert first == second and all(first.values())


@pytest.mark.parametrize(
    "change",
    [
        {"description": "another description"},
        {"notifications": {"on": ["failure", "success"]}},
        {"stages.approval.timeout_hours": 2},
        {"stages.deploy.instance_count": 3},
        {"stages.training.cache": {"enabled": True, "expire_after": "P1D"}},
    ],
)
def test_edits_of_other_parts_of_the_item_change_no_key_of_the_stages_before_them(change: dict[str, Any]) -> None:
    before, after = keys(load_item()), keys(edited(load_item(), change))
    assert not differing(before, after) - {"deploy", "approval"}


@pytest.mark.parametrize(
    "change",
    [
        {"stages.training.request.HyperParameters.max_depth": "7"},
        {"stages.training.request.AlgorithmSpecification.TrainingImage": f"{IMAGES}/sagemaker-scikit-learn:1.4"},
    ],
)
def test_a_training_change_misses_training_and_everything_after_it_and_nothing_before(change: dict[str, Any]) -> None:
    before, after = keys(load_item()), keys(edited(load_item(), change))
    after_training = {"evaluation", "register", "create_model", "batch_transform", "deploy"}
    assert differing(before, after) == {"training", *after_training}


def test_new_training_data_one_etag_misses_the_stages_that_read_it_and_what_follows() -> None:
    item = load_item("demo-dev-train-and-batch-score")
    before, after = keys(item), keys(item, changed={"/train/": "v2"})
    assert differing(before, after) == {"training", "create_model", "batch_transform"}
    item = load_item()
    before, after = keys(item), keys(item, changed={"/data/": "v2"})  # preprocessing's input
    assert "preprocessing" in differing(before, after) and differing(before, after) >= {"training", "evaluation"}


def test_a_stricter_quality_gate_misses_evaluation() -> None:
    item = load_item()
    stricter = edited(item, {"quality_gate.threshold": item["quality_gate"]["threshold"] / 2})
    # and register, which names evaluation's report as the package's model quality statistics
    assert differing(keys(item), keys(stricter)) == {"evaluation", "register"}


def test_a_location_that_cannot_be_listed_leaves_its_stage_and_the_stages_using_it_without_a_key() -> None:
    def identity(location: str) -> str:
        if "/train/" in location:
            raise cache.Unlisted("AccessDenied")
        return "v1"

    found = cache.keys(planned(load_item("demo-dev-train-and-batch-score")), identity)
    assert found["training"].key is None and "AccessDenied" in str(found["training"].why_not)
    assert found["batch_transform"].key is None and "training" in str(found["create_model"].why_not)


def test_durations_follow_the_schema() -> None:
    assert [cache.seconds(text) for text in ("P30D", "PT12H", "P2W", "P1DT6H", "PT30M")] == [
        2592000,
        43200,
        1209600,
        108000,
        1800,
    ]
    for text in ("P", "PT", "P1H", "P1W2D", "30D"):
        with pytest.raises(ValueError):
            cache.seconds(text)
    bad = edited(load_item(), {"stages.training.cache": {"enabled": True, "expire_after": "P1H"}})
    with pytest.raises(InvalidItem, match=r"stages\.training\.cache\.expire_after"):
        planned(bad)


# -- lookup: what the router does -------------------------------------------------------------------


class Ledger:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.asked: list[str] = []

    def fetch(self, key: str) -> dict[str, Any] | None:
        self.asked.append(key)
        return self.records.get(key)

    def record(self, execution_input: dict[str, Any], stage: str, results: dict[str, Any], expires_at: float) -> None:
        """What the state machine's "Record <stage>" writes, as cache.record_of reads it back."""
        block = execution_input["stages"][stage]["request"]
        name = next(value for field, value in block.items() if field.endswith("Name") and "-" in str(value))
        self.records[execution_input["cache"][stage]["key"]] = {
            "execution": execution_input["execution_name"],
            "run_folder": execution_input["run_folder"],
            "name": name,
            "results": results,
            "expires_at": int(expires_at),
        }


def cached(item: dict[str, Any], *stages: str) -> dict[str, Any]:
    return edited(item, {f"stages.{stage}.cache": {"enabled": True} for stage in stages})


def test_a_first_run_asks_to_record_each_cached_stage_and_a_second_reuses_them() -> None:
    item, ledger = cached(load_item(), "preprocessing", "training"), Ledger()
    first = planned(item, "one")
    cache.lookup(first, item, listing(), ledger.fetch, now=NOW)
    assert set(first["cache"]) == {"preprocessing", "training"} and "reused" not in first
    assert first["cache"]["training"]["expires_at"] == int(NOW) + 30 * 86400
    ledger.record(first, "preprocessing", {"job_name": "p1"}, NOW + 100)
    job = first["stages"]["training"]["request"]["TrainingJobName"]
    model = f"{first['run_folder']}training/{job}/output/model.tar.gz"
    ledger.record(first, "training", {"job_name": "t1", "model_data_url": model}, NOW + 100)

    second = planned(item, "two")
    cache.lookup(second, item, listing(), ledger.fetch, now=NOW + 10)
    assert second["reused"] == {"preprocessing": first["execution_name"], "training": first["execution_name"]}
    assert second["results"]["training"]["model_data_url"] == model
    assert "cache" not in second
    # the stages that run read the reused stages' outputs where the first run wrote them
    text = json.dumps({stage: second["stages"][stage] for stage in ("evaluation", "create_model", "batch_transform")})
    assert second["run_folder"] + "preprocessing/" not in text and second["run_folder"] + "training/" not in text
    assert second["stages"]["create_model"]["request"]["PrimaryContainer"]["ModelDataUrl"] == model
    evaluation = second["stages"]["evaluation"]["request"]
    assert model in [entry["S3Input"]["S3Uri"] for entry in evaluation["ProcessingInputs"]]
    assert first["run_folder"] + "preprocessing/test/features/" in text
    # what the second run writes stays its own
    assert evaluation["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].startswith(second["run_folder"])


def test_an_expired_record_misses_and_is_asked_for_again() -> None:
    item, ledger = cached(load_item("demo-dev-train-and-batch-score"), "training"), Ledger()
    first = planned(item, "one")
    cache.lookup(first, item, listing(), ledger.fetch, now=NOW)
    ledger.record(first, "training", {"job_name": "t1"}, NOW + 100)
    later = planned(item, "two")
    cache.lookup(later, item, listing(), ledger.fetch, now=NOW + 101)
    assert "reused" not in later and set(later["cache"]) == {"training"}


def test_stages_an_item_does_not_cache_are_never_looked_up() -> None:
    item, ledger = cached(load_item(), "training"), Ledger()
    execution_input = planned(item)
    found = cache.lookup(execution_input, item, listing(), ledger.fetch, now=NOW)
    assert ledger.asked == [found["training"].key]
    assert set(execution_input["cache"]) == {"training"}


def test_a_reused_batch_transform_is_the_serving_branchs_output() -> None:
    item, ledger = cached(load_item("demo-dev-train-and-batch-score"), "training", "batch_transform"), Ledger()
    first = planned(item, "one")
    cache.lookup(first, item, listing(), ledger.fetch, now=NOW)
    ledger.record(first, "training", {"job_name": "t1"}, NOW + 100)
    ledger.record(first, "batch_transform", {"job_name": "b1"}, NOW + 100)
    second = planned(item, "two")
    cache.lookup(second, item, listing(), ledger.fetch, now=NOW)
    assert second["results"]["serve"] == {"batch_transform": {"job_name": "b1"}}
    assert set(second["reused"]) == {"training", "batch_transform"}


def test_plan_explain_cache_says_what_each_key_covers(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps(cached(load_item(), "training")))
    assert cli.main(["plan", str(path), "--explain-cache"]) == 0
    text = capsys.readouterr().out
    training = text[text.index("training: cached, a record reused for P30D") : text.index("\nevaluation:")]
    assert "input/demo-dev-domain-cal-house-price/code/sourcedir.tar.gz" in training
    assert "and the keys of: preprocessing" in training
    assert 'preprocessing: not cached (set stages.preprocessing.cache to {"enabled": true}' in text
    assert "and the quality gate (a reused evaluation skips it)" in text


# -- per segment: each segment's stages are keyed, looked up and proven as a run of their own ----------


def segment_inputs(item: dict[str, Any], run_id: str) -> dict[str, dict[str, Any]]:
    trigger = Manual(pipeline=item["consumption_pipeline_name"], run_id=run_id)
    return {segment["segment"]: segment for segment in plan_run(item, trigger, EXAMPLE_SETTINGS).segment_inputs}


SEGMENTED = cached(load_item("demo-dev-segmented-house-price"), "preprocessing", "training")


def test_segments_with_the_same_inputs_have_keys_of_their_own_and_keep_them_across_runs() -> None:
    same = edited(SEGMENTED, {"fanout.segments[1].latitude_min": 32.5, "fanout.segments[1].latitude_max": 33.8})
    first, second = segment_inputs(same, "one"), segment_inputs(same, "two")
    assert (
        first["band1"]["stages"]["preprocessing"]["request"]["AppSpecification"]
        == (first["band2"]["stages"]["preprocessing"]["request"]["AppSpecification"])
    )
    band1, band2 = (cache.keys(first[band], listing())["preprocessing"].key for band in ("band1", "band2"))
    assert band1 and band2 and band1 != band2  # one record per segment: neither overwrites the other's
    assert cache.keys(second["band1"], listing())["preprocessing"].key == band1


def test_a_segment_reuses_its_own_record_and_never_another_segments_folder() -> None:
    ledger = Ledger()
    first = segment_inputs(SEGMENTED, "one")
    for segment in first.values():
        cache.lookup(segment, SEGMENTED, listing(), ledger.fetch, now=NOW)
        assert set(segment["cache"]) == {"preprocessing", "training"} and segment["reused"] == {}
        ledger.record(segment, "preprocessing", {"job_name": "p"}, NOW + 100)
    later = segment_inputs(SEGMENTED, "two")
    cache.lookup(later["band1"], SEGMENTED, listing(), ledger.fetch, now=NOW + 10)
    assert later["band1"]["reused"] == {"preprocessing": first["band1"]["execution_name"]}
    # its training reads band1's preprocessing output where the first run wrote it, in band1's folder
    channel = later["band1"]["stages"]["training"]["request"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert channel["S3Uri"] == first["band1"]["run_folder"] + "preprocessing/train/"
    assert first["band1"]["run_folder"].endswith(f"/{first['band1']['execution_name']}/segments/band1/")

    # a record whose folder is another segment's (the ledger table edited) is not reused
    key = cache.keys(later["band2"], listing())["preprocessing"].key
    assert key is not None
    ledger.records[key] = dict(ledger.records[key], run_folder=first["band3"]["run_folder"])
    cache.lookup(later["band2"], SEGMENTED, listing(), ledger.fetch, now=NOW + 10)
    assert later["band2"]["reused"] == {}
    assert "its run folder is not" in later["band2"]["cache"]["preprocessing"]["why"]
    assert later["band2"]["cache"]["preprocessing"]["why"].endswith("/segments/band2/")


def test_plan_explain_cache_shows_a_segments_keys(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "item.json"
    path.write_text(json.dumps(SEGMENTED))
    assert cli.main(["plan", str(path), "--explain-cache"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("per segment (band1's; each segment has keys of its own, its id included):")
    assert "  training: cached, a record reused for P30D" in text and "  preprocessing: cached" in text
    listed = edited(SEGMENTED, {"fanout.segments": DELETE, "fanout.segments_file": "segments.csv"})
    path.write_text(json.dumps(listed))
    assert cli.main(["plan", str(path), "--explain-cache"]) == 0
    assert "per segment: keyed for each segment once the run reads the upload's list of them" in capsys.readouterr().out
