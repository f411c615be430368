"""Stand-in for the aiops example's preprocessing.py: it read census-income.csv from its input
(/opt/ml/processing/input, from s3://sagemaker-sample-data-us-east-1/processing/census) and wrote
header-less features and labels to /opt/ml/processing/train and /opt/ml/processing/test.
Paths are relative: a local job runs in a folder that holds its /opt/ml."""

import csv
from pathlib import Path

ml = Path("opt/ml/processing")
with (ml / "input" / "census-income.csv").open() as source:  # fails when the input is not there
    rows = list(csv.DictReader(source))
features = [[row["age"], row["capital gains"]] for row in rows]
labels = ["1" if row["income"].strip() == "50000+." else "0" for row in rows]
cut = len(rows) * 7 // 10
for split, part in (("train", slice(0, cut)), ("test", slice(cut, None))):
    (ml / split).mkdir(parents=True, exist_ok=True)
    (ml / split / f"{split}_features.csv").write_text("".join(",".join(f) + "\n" for f in features[part]))
    (ml / split / f"{split}_labels.csv").write_text("".join(label + "\n" for label in labels[part]))
