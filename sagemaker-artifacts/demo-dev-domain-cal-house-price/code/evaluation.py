"""Evaluation (SageMaker Processing): score the model on the test set, write evaluation.json.

The report uses SageMaker's model-quality layout ({"regression_metrics": {"rmse": {"value": ...}}}),
which the quality gate reads (the item's quality_gate.metric) and model registration attaches.
"""

import argparse
import json
import tarfile
from pathlib import Path

import joblib
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="/opt/ml/processing/input/model")
    parser.add_argument("--test", default="/opt/ml/processing/input/test")
    parser.add_argument("--output", default="/opt/ml/processing/output/evaluation")
    args = parser.parse_args()

    # Only the one file it needs is read from the archive: no path inside it reaches the disk, on any
    # Python of the container (extractall's safe `filter` needs 3.8.17, 3.9.17, 3.10.12 or 3.11.4).
    with tarfile.open(Path(args.model) / "model.tar.gz") as archive:
        model = joblib.load(archive.extractfile("model.joblib"))

    test = np.loadtxt(Path(args.test) / "test.csv", delimiter=",", ndmin=2)
    truth, predicted = test[:, 0], model.predict(test[:, 1:])
    errors = predicted - truth
    rmse = float(np.sqrt(np.mean(errors**2)))
    mae = float(np.mean(np.abs(errors)))
    r2 = float(1 - np.sum(errors**2) / np.sum((truth - truth.mean()) ** 2))
    report = {
        "regression_metrics": {
            "rmse": {"value": rmse, "standard_deviation": float(np.std(errors))},
            "mae": {"value": mae},
            "r2": {"value": r2},
        },
        "test_rows": int(len(test)),
    }
    Path(args.output).mkdir(parents=True, exist_ok=True)
    (Path(args.output) / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"test rmse: {rmse:.4f}, mae: {mae:.4f}, r2: {r2:.4f}")


if __name__ == "__main__":
    main()
