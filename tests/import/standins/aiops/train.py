"""Stand-in for the aiops example's train.py: it read train_features.csv and train_labels.csv from
the "training" channel (/opt/ml/input/data/training) and saved its model in /opt/ml/model."""

import json
from pathlib import Path

data = Path("opt/ml/input/data/training")
features = (data / "train_features.csv").read_text().splitlines()
labels = [int(line) for line in (data / "train_labels.csv").read_text().splitlines()]
assert len(features) == len(labels), "features and labels differ in length"
model = {"threshold": sorted(float(row.split(",")[0]) for row in features)[len(features) // 2]}
Path("opt/ml/model/model.json").write_text(json.dumps(model))
print(f"trained on {len(labels)} rows")
