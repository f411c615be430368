"""Preprocessing (SageMaker Processing): split the raw CSV files into train and test sets.

Input: every *.csv under --input (a header row, the target last, as in data/houses.csv); with
--latitude-min/--latitude-max, only the rows in that band (a segment of demo-dev-segmented-house-price).
Output, without header rows, the target first (SageMaker's CSV convention):
  --train/train.csv, --test/test.csv, and --test/features/features.csv (the test features only,
  one record per line: what batch transform scores).
"""

import argparse
import csv
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", default="/opt/ml/processing/input/data")
    parser.add_argument("--train", default="/opt/ml/processing/output/train")
    parser.add_argument("--test", default="/opt/ml/processing/output/test")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latitude-min", type=float, default=-90.0)
    parser.add_argument("--latitude-max", type=float, default=90.0)  # the band excludes its upper bound
    args = parser.parse_args()
    if not 0 < args.test_fraction < 1:
        raise SystemExit(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")

    records = []
    for path in sorted(Path(args.input).rglob("*.csv")):
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            latitude = header.index("Latitude") if "Latitude" in header else None
            for row in reader:
                if len(row) != len(header):
                    raise ValueError(f"{path.name}: a row has {len(row)} fields, the header {len(header)}")
                values = [float(value) for value in row]
                if latitude is not None and not args.latitude_min <= values[latitude] < args.latitude_max:
                    continue
                records.append([values[-1], *values[:-1]])  # target first
    if not records:
        raise SystemExit(f"no CSV rows under {args.input} between latitudes {args.latitude_min} and {args.latitude_max}")

    random.Random(args.seed).shuffle(records)
    split = int(len(records) * (1 - args.test_fraction))
    train, test = records[:split], records[split:]
    write(Path(args.train) / "train.csv", train)
    write(Path(args.test) / "test.csv", test)
    write(Path(args.test) / "features" / "features.csv", [row[1:] for row in test])
    print(f"rows: {len(records)}, train: {len(train)}, test: {len(test)}")


def write(path: Path, rows: list[list[float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


if __name__ == "__main__":
    main()
