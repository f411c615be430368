"""`make bench`: every benchmark in this folder, then one table of their figures.

Each benchmark prints its own details as it goes and returns (benchmark, measure, value) rows;
nothing is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
BENCHMARKS = ("router", "statemachine", "demo", "uploads", "operate", "caching", "fanout", "cost")


def main() -> int:
    rows: list[tuple[str, str, str]] = []
    for name in BENCHMARKS:
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", FOLDER / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"\n=== {name} ===")
        rows += module.main()
    widths = [max(len(row[i]) for row in [("benchmark", "measure", "value"), *rows]) for i in range(3)]
    print("\n=== all benchmarks ===")
    for row in [("benchmark", "measure", "value"), tuple("-" * width for width in widths), *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
