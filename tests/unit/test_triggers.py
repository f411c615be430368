"""One type per trigger source: each event shape parses to its source's type, whose identity says
when two deliveries are the same run and whose `mismatch` says whether it starts an item; the
execution input keeps it (`as_dict`) so that a rerun gets it back (`from_dict`)."""

from __future__ import annotations

import pytest

from mlops_sfn.core.triggers import SOURCES, Drift, Manual, Records, Scheduled, Trigger, Upload, parse_event
from tests.conftest import load_event, load_item

KINDS = {
    "s3_object_created": Upload,
    "sqs_s3_object_created": Upload,
    "records_legacy": Records,
    "sqs_records_legacy": Records,
    "scheduled": Scheduled,
    "manual": Manual,
    "cloudwatch_alarm_state_change": Drift,
}


@pytest.mark.parametrize(("fixture", "kind"), KINDS.items())
def test_each_event_shape_is_its_sources_type_and_survives_the_execution_input(
    fixture: str, kind: type[Trigger]
) -> None:
    (trigger,) = parse_event(load_event(fixture), invocation_id="req-1")
    assert type(trigger) is kind and SOURCES[trigger.source] is kind
    kept = trigger.as_dict()
    assert next(iter(kept)) == "source" and kept["source"] == kind.source
    assert Trigger.from_dict(kept) == trigger
    assert trigger.identity().startswith(f"{kind.source}:")
    assert parse_event(load_event(fixture), invocation_id="req-1")[0].identity() == trigger.identity()


def test_what_makes_a_delivery_another_run_is_each_sources_own() -> None:
    upload = Upload(bucket="b", key="input/p/manifest.json", etag="e1", time="2024-06-01T00:00:00Z")
    assert upload.identity() == Upload(bucket="b", key="input/p/manifest.json", etag="e1").identity()  # not the time
    assert upload.identity() != Upload(bucket="b", key="input/p/manifest.json", etag="e2").identity()
    schedule = Scheduled(pipeline="p", rule="arn:rule", time="2024-06-01T00:00:00Z")
    assert schedule.identity() != Scheduled(pipeline="p", rule="arn:rule", time="2024-06-02T00:00:00Z").identity()
    manual = Manual(pipeline="p", run_id="r1")
    assert manual.identity() != Manual(pipeline="p", run_id="r1", overrides={"stages": {}}).identity()
    drift = Drift(alarm="a", time="t1", reason="one")
    assert drift.identity() == Drift(alarm="a", time="t1", reason="another wording").identity()
    assert len({t.identity() for t in (upload, schedule, manual, drift, Records(pipeline="p"))}) == 5


def test_an_upload_starts_the_item_whose_prefix_holds_it_a_named_trigger_the_item_it_names() -> None:
    item = load_item()
    prefix = item["trigger"]["prefix"]
    assert Upload(bucket="b", key=f"{prefix}manifest.json").mismatch(item) is None
    assert "part of an upload" in (Upload(bucket="b", key=f"{prefix}data/part-1.csv").mismatch(item) or "")
    assert "not under the trigger prefix" in (Upload(bucket="b", key="elsewhere/manifest.json").mismatch(item) or "")
    assert Manual(pipeline=item["consumption_pipeline_name"]).mismatch(item) is None
    assert Scheduled(pipeline="another").mismatch(item) == (
        f"the event names pipeline 'another', not {item['consumption_pipeline_name']!r}"
    )
