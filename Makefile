# Every target installs what it needs into .venv/ on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHECKOV := .venv-checkov/bin/checkov
GITLAB_CI_LOCAL := .ci/gitlab-ci-local/node_modules/gitlab-ci-local/dist/index.js

.PHONY: install test lint tf-check provider-schemas demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# checkov pins its own boto3, so it lives in a virtual environment of its own.
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet 'checkov==3.3.30'

# gitlab-ci-local (npm, pinned by its lock file), run by the node that `make install` puts in .venv/.
$(GITLAB_CI_LOCAL): $(STAMP) .ci/gitlab-ci-local/package-lock.json
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/npm ci --prefix .ci/gitlab-ci-local --silent --no-audit --no-fund
	touch $@

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP) $(CHECKOV) $(GITLAB_CI_LOCAL)
	$(BIN)/ruff check src tests lambdas benchmarks
	$(BIN)/ruff format --check src tests lambdas benchmarks
	$(BIN)/mypy
	$(BIN)/mlops-sfn validate dynamodb_items
	$(BIN)/mlops-sfn generate --check
	$(BIN)/mlops-sfn providers check
	$(BIN)/statelint statemachine/pipeline.asl.json
	$(CHECKOV) --directory . --framework terraform --quiet --compact --skip-download
	$(BIN)/node $(GITLAB_CI_LOCAL) --list-json > /dev/null  # .gitlab-ci.yml against GitLab's JSON schema

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
