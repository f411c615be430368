"""Stand-in for the aiops example's evaluation.py: it read model.tar.gz from /opt/ml/processing/model
and the test split from /opt/ml/processing/test, and wrote evaluation.json (with "accuracy") to
/opt/ml/processing/evaluation."""

import json
import tarfile
from pathlib import Path

ml = Path("opt/ml/processing")
with tarfile.open(ml / "model" / "model.tar.gz") as archive:
    model = json.load(archive.extractfile("model.json"))  # type: ignore[arg-type]
features = (ml / "test" / "test_features.csv").read_text().splitlines()
labels = [int(line) for line in (ml / "test" / "test_labels.csv").read_text().splitlines()]
predictions = [int(float(row.split(",")[0]) > model["threshold"]) for row in features]
accuracy = sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)
(ml / "evaluation").mkdir(parents=True, exist_ok=True)
(ml / "evaluation" / "evaluation.json").write_text(json.dumps({"accuracy": accuracy}))
