# Every target installs what it needs into .venv/ on first use, exactly as the committed locks say:
# uv.lock (the project and every extra), .ci/checkov.txt, .ci/uv.txt (uv itself) and
# .ci/gitlab-ci-local/package-lock.json. `make lock` refreshes the first three.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV     := $(BIN)/uv
# uv uses $(PYTHON)'s interpreter, never one it downloads.
export UV_PYTHON_DOWNLOADS := never

CHECKOV := .venv-checkov/bin/checkov
GITLAB_CI_LOCAL := .ci/gitlab-ci-local/node_modules/gitlab-ci-local/dist/index.js

.PHONY: install lock test newest lint docs tf-check provider-schemas demo bench clean

# uv, the one tool installed from outside a lock: the release and hashes `make lock` copies from uv.lock.
# Later, `uv sync` keeps it at the release uv.lock names (it is in the dev extra). Python 3.11's venv
# also seeds setuptools, which the lock does not name and `uv sync` leaves in place: removed here.
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r .ci/uv.txt
	$(BIN)/python -m pip uninstall -qq --disable-pip-version-check --yes setuptools

# Exactly uv.lock, nothing re-resolved: every extra, the project editable on top, anything else removed.
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --locked --all-extras || { \
	  echo "make install: uv.lock does not match pyproject.toml; run make lock and commit uv.lock" >&2; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# Re-resolve every lock to the newest releases pyproject.toml's ranges allow (uv prints each package
# that moved). Run it after editing a dependency in pyproject.toml, or to take upstream releases,
# then run make test and commit uv.lock, .ci/uv.txt and .ci/checkov.txt together.
lock: | $(UV)
	$(UV) lock --upgrade
	$(UV) export --quiet --frozen --all-extras --no-emit-project --no-header --no-annotate \
	  | awk '/^uv==/ {p = 1} p {print} p && !/\\$$/ {p = 0}' > .ci/uv.txt
	$(UV) pip compile --quiet --universal --generate-hashes --python-version 3.11 --upgrade \
	  .ci/checkov.in -o .ci/checkov.txt

# checkov pins its own boto3, so it lives in a virtual environment of its own, from its own lock.
$(CHECKOV): .ci/checkov.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .venv-checkov
	$(UV) pip sync --quiet --python .venv-checkov/bin/python --require-hashes .ci/checkov.txt
	touch $@

# gitlab-ci-local (npm, pinned by its lock file), run by the node that `make install` puts in .venv/.
$(GITLAB_CI_LOCAL): $(STAMP) .ci/gitlab-ci-local/package-lock.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/npm ci --prefix .ci/gitlab-ci-local --silent --no-audit --no-fund
	touch $@

# One worker per core (at most 4), each taking whole files, so a file's module fixtures (a local stack,
# a Terraform apply) are built once; the slowest items are printed, to see where the time goes.
test: $(STAMP) lint
	$(BIN)/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadfile --durations 15

# The scheduled CI job: the newest releases the ranges allow (each package that moved is printed),
# then the whole suite. What it changes in the locks is not for committing blindly: see make lock.
newest:
	$(MAKE) lock
	$(MAKE) test

lint: $(STAMP) $(CHECKOV) $(GITLAB_CI_LOCAL)
	$(BIN)/ruff check src tests lambdas benchmarks
	$(BIN)/ruff format --check src tests lambdas benchmarks
	$(BIN)/mypy
	$(BIN)/mlops-sfn validate dynamodb_items
	$(BIN)/mlops-sfn generate --check
	$(BIN)/mlops-sfn providers check
	$(BIN)/python -c 'import sys; from mlops_sfn.tools.statemachine import lint; sys.exit(lint("statemachine/pipeline.asl.json"))'
	$(CHECKOV) --directory . --framework terraform --quiet --compact --skip-download
	$(BIN)/node $(GITLAB_CI_LOCAL) --list-json > /dev/null  # .gitlab-ci.yml against GitLab's JSON schema
	$(MAKE) --no-print-directory docs  # a broken link or anchor, or a page left out of the nav, fails

# The documentation site (docs/, mkdocs.yml) into $(SITE); the GitLab `pages` job publishes it from main.
SITE ?= build/site
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(SITE)

# terraform fmt -check and validate for every module, the root, deploy/ and examples/ (offline toolchain).
tf-check: $(STAMP)
	$(BIN)/python -m pytest -q tests/infrastructure/test_terraform_static.py

# Rebuild src/mlops_sfn/tools/provider_schemas/ from the pinned @cdktf/provider-aws packages (npm registry, sha256 checked).
provider-schemas: $(STAMP)
	$(BIN)/mlops-sfn providers fetch

# The framework on one machine: a local AWS, the real Terraform applied into it, an upload of
# sagemaker-artifacts/ and the real run. The local AWS keeps running: `mlops-sfn local down` removes it.
demo: $(STAMP)
	$(BIN)/mlops-sfn local demo

# Figures only, nothing asserted: the machines are shared and noisy.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .mypy_cache .ruff_cache .ci/gitlab-ci-local/node_modules .gitlab-ci-local
