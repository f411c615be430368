"""`python -m mlops_sfn.cli`: the same as the mlops-sfn command."""

import sys

from . import main

sys.exit(main())
