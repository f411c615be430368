"""Training (SageMaker script mode, scikit-learn container): a random forest on the train channel.

SageMaker passes the hyperparameters as arguments and the paths as SM_* variables. The last tenth
of the train channel is held out to print "validation rmse: X", which the item's metric definition
reads. The model is saved to SM_MODEL_DIR, which SageMaker archives as model.tar.gz.
"""

import argparse
import os
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestRegressor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_estimators", type=int, default=100)
    parser.add_argument("--max_depth", type=int, default=None)
    parser.add_argument("--min_samples_leaf", type=int, default=4)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    args, _ = parser.parse_known_args()

    data = np.vstack([np.loadtxt(path, delimiter=",", ndmin=2) for path in sorted(Path(args.train).rglob("*.csv"))])
    held_out = max(1, len(data) // 10)
    fit, validation = data[:-held_out], data[-held_out:]
    model = RandomForestRegressor(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        min_samples_leaf=args.min_samples_leaf,
        n_jobs=-1,
        random_state=0,
    )
    model.fit(fit[:, 1:], fit[:, 0])
    rmse = float(np.sqrt(np.mean((model.predict(validation[:, 1:]) - validation[:, 0]) ** 2)))
    print(f"validation rmse: {rmse:.4f}")

    model.fit(data[:, 1:], data[:, 0])  # the model served is trained on all of the channel
    Path(args.model_dir).mkdir(parents=True, exist_ok=True)
    joblib.dump(model, Path(args.model_dir) / "model.joblib")


if __name__ == "__main__":
    main()
