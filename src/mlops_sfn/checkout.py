"""Where the repository checkout is: the root module, the items, the generated files.

The package runs from a checkout (`pip install -e .`, as `make install` does); the commands that need
the checkout's files check it is there (cli/__init__.py).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # src/mlops_sfn/ -> the checkout
