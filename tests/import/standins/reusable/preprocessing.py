"""Stand-in for the reusable framework's preprocessing.py: it split the California housing data and
wrote train/ and test/ CSVs (a header, the features, then target) under --prefix in --bucket. Here
the split is written to the processing outputs, which the job uploads to those same S3 folders."""

import argparse
import random
from pathlib import Path

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]

parser = argparse.ArgumentParser()
parser.add_argument("--prefix", required=True)
parser.add_argument("--bucket", required=True)
args = parser.parse_args()
rows = random.Random(7)
for split, count in (("train", 60), ("test", 20)):
    folder = Path("opt/ml/processing") / split  # the job's working folder holds its /opt/ml
    folder.mkdir(parents=True, exist_ok=True)
    lines = [",".join(["", *FEATURES, "target"])]
    for index in range(count):
        values = [f"{rows.uniform(0, 10):.3f}" for _ in FEATURES]
        lines.append(",".join([str(index), *values, f"{rows.uniform(0.5, 5):.3f}"]))
    (folder / f"california_housing_{split}.csv").write_text("\n".join(lines) + "\n")
print(f"wrote the split for s3://{args.bucket}/{args.prefix}/")
