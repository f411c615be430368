"""CloudWatch alarm evaluation on this machine, and the alarm state change events.

Metric data that reaches an alarm's metrics is evaluated at once, and each change of state is sent
to EventBridge as a "CloudWatch Alarm State Change" event (CloudWatch user guide, "Alarm events and
EventBridge"). moto stores alarms but never evaluates them; it also starts a new alarm OK and resets
an updated one, where AWS starts it INSUFFICIENT_DATA and keeps an updated alarm's state
(PutMetricAlarm).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

_COMPARE = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
_STATS: dict[str, Callable[[list[float]], float]] = {
    "Maximum": max,
    "Minimum": min,
    "Sum": sum,
    "Average": lambda v: sum(v) / len(v),
    "SampleCount": lambda v: float(len(v)),
}


def _dimensions(dimensions: Any) -> dict[str, str]:
    return {
        (d["Name"] if isinstance(d, dict) else d.name): (d["Value"] if isinstance(d, dict) else d.value)
        for d in dimensions or []
    }


def _latest(backend: Any, namespace: str, name: str, dimensions: Any, period: int, stat: str) -> float | None:
    """The statistic of a metric over the latest `period` seconds of data it has (as an alarm with one
    evaluation period sees it), None without data."""
    wanted = _dimensions(dimensions)
    found = [
        datum
        for datum in backend.metric_data
        if datum.namespace == namespace and datum.name == name and _dimensions(datum.dimensions) == wanted
    ]
    if not found:
        return None
    end = max(datum.timestamp for datum in found)
    values = [float(datum.value) for datum in found if datum.timestamp > end - timedelta(seconds=period)]
    return float(_STATS[stat](values)) if values and stat in _STATS else None


def _alarm_value(backend: Any, alarm: Any) -> float | None:
    """An alarm's current value: its metric, or the maximum of its metrics (MAX(METRICS()), the one
    metric math expression the framework's alarms use)."""
    if not alarm.metric_data_queries:
        return _latest(backend, alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.period, alarm.statistic)
    values = []
    for query in alarm.metric_data_queries:
        if query.metric_stat is None:
            if query.expression not in (None, "MAX(METRICS())"):
                return None  # not evaluated here: the alarm keeps its state
            continue
        stat, metric = query.metric_stat, query.metric_stat.metric
        value = _latest(backend, metric.namespace, metric.metric_name, metric.dimensions, int(stat.period), stat.stat)
        if value is not None:
            values.append(value)
    return max(values) if values else None


def _state_change_event(backend: Any, alarm: Any, previous: dict[str, Any]) -> dict[str, Any]:
    """The event CloudWatch sends EventBridge when an alarm changes state ("Alarm events and EventBridge")."""

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": backend.account_id,
        "time": datetime.now(UTC).timestamp(),  # moto's events carry epoch seconds until delivered
        "region": backend.region_name,
        "resources": [alarm.alarm_arn],
        "detail": {
            "alarmName": alarm.name,
            "state": {
                "value": alarm.state_value,
                "reason": alarm.state_reason,
                "reasonData": alarm.state_reason_data,
                "timestamp": stamp(alarm.state_updated_timestamp),
            },
            "previousState": previous,
            "configuration": {"description": alarm.description or ""},
        },
    }


def _send(backend: Any, event: dict[str, Any]) -> None:
    from .motoport import events_backends

    for bus in events_backends[backend.account_id][backend.region_name].event_buses.values():
        for rule in list(bus.rules.values()):
            rule.send_to_targets(cast(Any, event), transform_input=False)


def _notify(backend: Any, alarm: Any, previous: str) -> None:
    """Run the alarm's SNS actions for its new state, as CloudWatch does: it publishes as
    cloudwatch.amazonaws.com, so the topic's policy, and an encrypted topic's key policy, must let it
    (SNS developer guide, "Key management": AWS services and encrypted topics; an AWS managed key
    never does). A refused action is logged, as CloudWatch records "Failed to execute action" in the
    alarm's history; the state change itself stands."""
    from .motoport import sns_backends
    from .resource_policies import write_refusal

    if not alarm.actions_enabled:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }[alarm.state_value]
    message = {  # the fields of CloudWatch's alarm notification ("Using Amazon SNS topics")
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": backend.account_id,
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": alarm.state_updated_timestamp.isoformat(),
        "Region": backend.region_name,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": previous,
    }
    # what CloudWatch's publish tells SNS: the alarm, and its account (the default topic policy's SourceOwner)
    account = backend.account_id
    context = {"aws:SourceArn": alarm.alarm_arn, "aws:SourceAccount": account, "aws:SourceOwner": account}
    for action in actions or []:
        if not str(action).startswith("arn:aws:sns:"):
            continue  # other actions (Auto Scaling, EC2, Lambda) are not run here
        refused = write_refusal("cloudwatch.amazonaws.com", action, context=context)
        if refused:
            print(
                f"CloudWatch alarm {alarm.name}: Failed to execute action {action}: {refused.message}", file=sys.stderr
            )
            continue
        _, _, _, region, owner, _ = action.split(":", 5)
        sns_backends[owner][region].publish(message=json.dumps(message), arn=action)


def _changed(backend: Any, alarm: Any, state: str, change: Callable[[], None]) -> None:
    """Put the alarm in `state` with `change`; when its state changed, send the event CloudWatch sends
    and run the alarm's actions for that state."""
    previous = {"value": alarm.state_value, "reason": alarm.state_reason, "reasonData": alarm.state_reason_data}
    change()
    if previous["value"] != state:
        _send(backend, _state_change_event(backend, alarm, previous))
        _notify(backend, alarm, previous["value"])


def evaluate(backend: Any) -> None:
    """Evaluate every metric alarm on the data it has; missing data keeps an alarm's state (the
    framework's drift alarm treats missing data as "ignore")."""
    for alarm in list(backend.alarms.values()):
        if alarm.rule is not None:  # composite alarms are not evaluated here
            continue
        value = _alarm_value(backend, alarm)
        if value is None or alarm.comparison_operator not in _COMPARE:
            continue
        breaching = _COMPARE[alarm.comparison_operator](value, float(alarm.threshold))
        state = "ALARM" if breaching else "OK"
        if state != alarm.state_value:
            relation = "greater than" if breaching else "not greater than"
            reason = f"Threshold Crossed: 1 datapoint [{value:.4f}] was {relation} the threshold ({alarm.threshold})."
            data = json.dumps({"version": "1.0", "recentDatapoints": [value]})
            _changed(backend, alarm, state, partial(alarm.update_state, reason, data, state))


def install() -> Callable[[], None]:
    """Add alarm evaluation and the alarm state change events to moto's CloudWatch; returns what undoes it."""
    from .motoport import CloudWatchBackend

    put_metric_data, set_alarm_state = CloudWatchBackend.put_metric_data, CloudWatchBackend.set_alarm_state
    put_metric_alarm = CloudWatchBackend.put_metric_alarm

    def put_keeping_state(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        # CloudWatch API reference, PutMetricAlarm: a new alarm starts INSUFFICIENT_DATA (moto: OK), and
        # "when you update an existing alarm, its state is left unchanged" (moto starts it afresh).
        existing = backend.alarms.get(name)
        alarm = put_metric_alarm(backend, name, *args, **kwargs)
        if existing is None:
            alarm.state_value, alarm.state_reason = "INSUFFICIENT_DATA", "Unchecked: Initial alarm creation"
        else:
            for field in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
                setattr(alarm, field, getattr(existing, field))
        return alarm

    def put_and_evaluate(backend: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        put_metric_data(backend, namespace, metric_data)
        evaluate(backend)

    def set_and_announce(backend: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = backend.alarms.get(alarm_name)
        change = partial(set_alarm_state, backend, alarm_name, reason, reason_data, state_value)
        if alarm is None:
            change()  # moto refuses it: ResourceNotFound
        else:
            _changed(backend, alarm, state_value, change)

    CloudWatchBackend.put_metric_data = put_and_evaluate  # type: ignore[method-assign,assignment]
    CloudWatchBackend.set_alarm_state = set_and_announce  # type: ignore[method-assign,assignment]
    CloudWatchBackend.put_metric_alarm = put_keeping_state  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        CloudWatchBackend.put_metric_data = put_metric_data  # type: ignore[method-assign]
        CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]
        CloudWatchBackend.put_metric_alarm = put_metric_alarm  # type: ignore[method-assign]

    return uninstall
