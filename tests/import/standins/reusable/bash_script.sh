#!/bin/bash
# Stand-in for the reusable framework's bash_script.sh: it ran preprocessing.py with the job's
# arguments (--prefix, --bucket), after installing its requirements.
set -e
python3 "$(dirname "$0")/preprocessing.py" "$@"
