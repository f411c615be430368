"""The demo's house-price data: synthetic, shaped like scikit-learn's California housing set.

The real set (`sklearn.datasets.fetch_california_housing`) is downloaded on first use, and this
project must run offline, so the demo ships a stand-in with the same eight features in the same
order and units (target in $100,000s) drawn from a fixed, documented process. Regenerate with
`python -m mlops_sfn.local.demo_data PATH` (needs numpy); the shipped file came from SEED and ROWS.
"""

from __future__ import annotations

import sys
from pathlib import Path

COLUMNS = (
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
    "MedHouseVal",
)
SEED = 20261124
ROWS = 6000


def rows(count: int = ROWS, seed: int = SEED) -> list[list[float]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    latitude = rng.uniform(32.6, 41.9, count)
    coast = -124.2 + (41.9 - latitude) * 0.62  # the coastline's longitude, roughly, at each latitude
    inland = np.minimum(rng.exponential(1.4, count), 124.2 - 114.2)
    longitude = np.minimum(coast + inland, -114.2)
    income = np.clip(rng.lognormal(np.log(3.6), 0.45, count), 0.5, 15.0)
    age = rng.integers(1, 53, count).astype(float)
    rooms = np.clip(3.0 + 0.4 * income + rng.normal(0, 0.8, count), 1.5, None)
    bedrooms = 1.0 + 0.05 * rooms + rng.normal(0, 0.05, count)
    population = np.round(rng.lognormal(np.log(1200), 0.6, count))
    occupancy = 2.0 + rng.lognormal(np.log(0.9), 0.3, count)
    metro = np.maximum(
        np.exp(-np.hypot(latitude - 37.8, longitude + 122.4) / 0.8),  # San Francisco
        np.exp(-np.hypot(latitude - 34.05, longitude + 118.25) / 0.8),  # Los Angeles
    )
    value = (
        0.35
        + 0.42 * income
        + 0.008 * age
        + 0.9 * np.exp(-(longitude - coast))
        + 0.8 * metro
        - 0.08 * (occupancy - 3.0)
        + rng.normal(0, 0.35, count)
    )
    value = np.clip(value, 0.15, 5.0)
    table = np.column_stack([income, age, rooms, bedrooms, population, occupancy, latitude, longitude, value])
    return [[round(float(v), 4) for v in row] for row in table]


def write(path: Path, count: int = ROWS, seed: int = SEED) -> None:
    lines = [",".join(COLUMNS)] + [",".join(f"{v:g}" for v in row) for row in rows(count, seed)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
