"""SageMaker Model Monitor's analyzer (sagemaker-model-monitor-analyzer) on this machine, in AWS's formats.

A baseline job writes statistics.json and constraints.json; a monitoring execution compares what
was captured with them ("Schema for Statistics", "Schema for Constraints", "Schema for Violations").
Drift is measured as the analyzer's "Robust" comparison does: the largest distance between the two
distributions' cumulative distribution functions (0 to 1), here computed from the baseline's
sample of each numeric feature and the captured values.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ..core import monitoring

SAMPLE_LIMIT = 2048  # values of a feature kept in statistics.json's sketch (the analyzer's KLL k)
BUCKETS = 10


# --- The analyzer ------------------------------------------------------------------------------


def read_rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row]


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _inferred_type(values: list[str]) -> str:
    present = [v for v in values if v != ""]
    if not present:
        return "Unknown"
    if all(_number(v) is not None for v in present):
        return "Integral" if all(float(v).is_integer() and "." not in v for v in present) else "Fractional"
    return "String"


def _columns(rows: list[list[str]], header: list[str] | None) -> dict[str, list[str]]:
    width = max((len(row) for row in rows), default=len(header or []))
    names = header or [f"_c{index}" for index in range(width)]  # Spark's names for a CSV without header
    return {name: [row[index] if index < len(row) else "" for row in rows] for index, name in enumerate(names)}


def statistics(rows: list[list[str]], header: list[str] | None = None) -> dict[str, Any]:
    """statistics.json ("Schema for Statistics"), with each numeric feature's KLL buckets and sketch."""
    features = []
    for name, values in _columns(rows, header).items():
        kind = _inferred_type(values)
        present = [v for v in values if v != ""]
        common = {"num_present": len(present), "num_missing": len(values) - len(present)}
        if kind in ("Integral", "Fractional"):
            numbers = sorted(float(v) for v in present)
            low, high = numbers[0], numbers[-1]
            width = (high - low) / BUCKETS or 1.0
            counts = [0] * BUCKETS
            for number in numbers:
                counts[min(int((number - low) / width), BUCKETS - 1)] += 1
            step = max(1, len(numbers) // SAMPLE_LIMIT)
            mean = sum(numbers) / len(numbers)
            features.append(
                {
                    "name": name,
                    "inferred_type": kind,
                    "numerical_statistics": {
                        "common": common,
                        "mean": mean,
                        "sum": sum(numbers),
                        "std_dev": math.sqrt(sum((n - mean) ** 2 for n in numbers) / len(numbers)),
                        "min": low,
                        "max": high,
                        "distribution": {
                            "kll": {
                                "buckets": [
                                    {"lower_bound": low + i * width, "upper_bound": low + (i + 1) * width, "count": c}
                                    for i, c in enumerate(counts)
                                ],
                                "sketch": {
                                    "parameters": {"c": 0.64, "k": float(SAMPLE_LIMIT)},
                                    "data": [numbers[::step]],
                                },
                            }
                        },
                    },
                }
            )
        else:
            distinct = sorted(set(present))
            features.append(
                {
                    "name": name,
                    "inferred_type": kind,
                    "string_statistics": {
                        "common": common,
                        "distinct_count": len(distinct),
                        "distribution": {
                            "categorical": {
                                "buckets": [{"value": v, "count": present.count(v)} for v in distinct[:100]]
                            }
                        },
                    },
                }
            )
    return {"version": 0, "dataset": {"item_count": len(rows)}, "features": features}


def constraints(stats: dict[str, Any]) -> dict[str, Any]:
    """constraints.json ("Schema for Constraints") suggested from a baseline's statistics."""
    features = []
    for feature in stats["features"]:
        common = (feature.get("numerical_statistics") or feature.get("string_statistics"))["common"]
        total = common["num_present"] + common["num_missing"]
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": common["num_present"] / total if total else 1.0,
        }
        if "numerical_statistics" in feature:
            entry["num_constraints"] = {"is_non_negative": feature["numerical_statistics"]["min"] >= 0}
        features.append(entry)
    return {
        "version": 0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": monitoring.DEFAULT_THRESHOLD,
                "comparison_method": "Robust",
            },
        },
    }


def _sample(feature: dict[str, Any]) -> list[float]:
    data = feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
    return sorted(value for part in data for value in part)


def distance(baseline: list[float], current: list[float]) -> float:
    """The largest gap between the two empirical cumulative distribution functions."""
    if not baseline or not current:
        return 0.0
    gap = 0.0
    for point in sorted(set(baseline) | set(current)):
        below_base = bisect.bisect_right(baseline, point) / len(baseline)
        below_current = bisect.bisect_right(current, point) / len(current)
        gap = max(gap, abs(below_base - below_current))
    return gap


def compare(
    baseline: dict[str, Any], rules: dict[str, Any], current: dict[str, Any]
) -> tuple[list[dict[str, str]], dict[str, float]]:
    """(the violations, as constraint_violations.json lists them; each numeric feature's drift)."""
    violations: list[dict[str, str]] = []
    drift: dict[str, float] = {}
    config = rules.get("monitoring_config", {})
    threshold = float(config.get("distribution_constraints", {}).get("comparison_threshold", 0.1))
    compared = config.get("distribution_constraints", {}).get("perform_comparison", "Enabled") == "Enabled"
    seen = {feature["name"]: feature for feature in current["features"]}
    base = {feature["name"]: feature for feature in baseline["features"]}
    expected = [rule["name"] for rule in rules["features"]]
    if len(seen) < len(expected):
        violations.append(
            {
                "feature_name": ",".join(name for name in expected if name not in seen),
                "constraint_check_type": "missing_column_check",
                "description": f"There are {len(expected)} columns in the baseline, {len(seen)} in the current data",
            }
        )
    if len(seen) > len(expected):
        violations.append(
            {
                "feature_name": ",".join(name for name in seen if name not in expected),
                "constraint_check_type": "extra_column_check",
                "description": f"There are {len(expected)} columns in the baseline, {len(seen)} in the current data",
            }
        )
    for rule in rules["features"]:
        name, feature = rule["name"], seen.get(rule["name"])
        if feature is None:
            continue
        numeric = ("Integral", "Fractional")
        if feature["inferred_type"] != rule["inferred_type"] and not (
            rule["inferred_type"] == "Fractional" and feature["inferred_type"] == "Integral"
        ):
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "data_type_check",
                    "description": f"Data type match requirement is not met: expected {rule['inferred_type']}, "
                    f"found {feature['inferred_type']}",
                }
            )
            continue
        if rule["inferred_type"] not in numeric or name not in base:
            continue
        common = feature["numerical_statistics"]["common"]
        completeness = common["num_present"] / max(1, common["num_present"] + common["num_missing"])
        if completeness < rule.get("completeness", 0.0):
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "completeness_check",
                    "description": f"Data completeness {completeness:.4f} is below the baseline's "
                    f"{rule['completeness']}",
                }
            )
        drift[name] = distance(_sample(base[name]), _sample(feature))
        if compared and drift[name] > threshold:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "baseline_drift_check",
                    "description": f"Baseline drift distance: {drift[name]:.4f} exceeds threshold: {threshold}",
                }
            )
    return violations, drift


def baseline_job(inputs: Path, outputs: Path, environment: dict[str, str]) -> None:
    """The analyzer as a baseline job: every CSV file under its input, read as `dataset_format` says."""
    header = json.loads(environment.get("dataset_format", "{}")).get("csv", {}).get("header", False)
    names: list[str] | None = None
    rows: list[list[str]] = []
    for path in sorted(inputs.rglob("*")):
        if not path.is_file():
            continue
        found = read_rows(path.read_text())
        if header and found:
            names, found = names or found[0], found[1:]
        rows += found
    if not rows:
        raise ValueError("Job inputs had no data: the baseline dataset holds no CSV rows")
    stats = statistics(rows, names)
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "statistics.json").write_text(json.dumps(stats, indent=2))
    (outputs / "constraints.json").write_text(json.dumps(constraints(stats), indent=2))
