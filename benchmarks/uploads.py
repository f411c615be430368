"""Local stack under a crowd: 200 pipelines in the table, 50 uploads at once (each a manifest of its own
pipeline). Figures: runs started, seconds from the last upload to the last start, dead letters, and the
router containers the burst used. Prints figures and asserts nothing; `make bench` runs it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlops_sfn.local import deployment  # noqa: E402
from mlops_sfn.tools import toolchain  # noqa: E402
from tests.infrastructure.crowd import crowd  # noqa: E402

PIPELINES, UPLOADS = 200, 50


def main() -> list[tuple[str, str, str]]:
    toolchain.ensure()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / ".mlops-local"
        running = deployment.up(home, say=lambda _: None)
        try:
            result = crowd(running, PIPELINES, UPLOADS)
        finally:
            deployment.down(home, say=lambda _: None)
    figures = {
        f"{UPLOADS} concurrent uploads, {PIPELINES} pipelines: runs started": str(result.started),
        "last upload to last start, s": f"{result.after_last_upload:.1f}",
        "dead letters": str(result.dead_letters),
        "router containers used": str(result.router_containers),
    }
    print("uploads benchmark (local stack):")
    for name, value in figures.items():
        print(f"  {name:<55} {value}")
    return [("uploads", name, value) for name, value in figures.items()]


if __name__ == "__main__":
    main()
