"""Stand-in for the aiops example's inference.py (scikit-learn serving functions): CSV features in,
one predicted label per line out."""

import json
from pathlib import Path


def model_fn(model_dir):
    return json.loads((Path(model_dir) / "model.json").read_text())


def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return [line.split(",") for line in text.splitlines() if line]


def predict_fn(rows, model):
    return [int(float(row[0]) > model["threshold"]) for row in rows]


def output_fn(prediction, accept):
    return "".join(f"{label}\n" for label in prediction), "text/csv"
