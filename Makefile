# imovsp — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := bash
# uv: the one on PATH, else one installed into the project's own .tools/uv virtualenv with the
# python3 on PATH (a distribution's Python is externally managed, PEP 668: pip may not touch it).
UV_LOCAL := .tools/uv/bin/uv
UV ?= $(shell command -v uv 2>/dev/null || echo $(UV_LOCAL))
RUN := $(UV) run --locked --all-extras

.PHONY: help install serve train test lint typecheck unit bench bench-batch bench-api bench-soak openapi clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(filter $(UV_LOCAL),$(UV)) ## Create .venv with the locked runtime and dev dependencies (and every extra)
	$(UV) sync --locked --all-extras

$(UV_LOCAL):
	@echo "uv is not on PATH: installing it into .tools/uv"
	.ci/install-uv

serve: install ## Run the valuation service on the current model (trains one first if none)
	$(RUN) imovsp serve

train: install ## Train a new model on IMOVSP_DATA and make it current
	$(RUN) imovsp train

lint: install ## ruff lint and format check
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

typecheck: install ## mypy (strict) on the package
	$(RUN) mypy

unit: install ## pytest: every test, with PostgreSQL started and Chromium (installed as root)
	.ci/with-services $(RUN) pytest

test: lint typecheck unit ## Everything CI runs: lint, types, every test (.ci/with-services)

bench: install ## Benchmarks (see docs/benchmarks.md)
	$(RUN) python benchmarks/core.py

bench-batch: install ## Batch scoring benchmark: 1M rows, both engines (see docs/benchmarks.md)
	$(RUN) python benchmarks/batch.py

bench-api: install ## HTTP load test against the bare stack and the old one (needs wrk)
	$(RUN) python benchmarks/api.py --json /tmp/imovsp-bench-api.json

bench-soak: install ## Soak (5 min at 256 connections) and a worker killed under load (needs wrk)
	$(RUN) python benchmarks/soak.py --json /tmp/imovsp-bench-soak.json

openapi: install ## Regenerate docs/openapi.json from the app
	$(RUN) python -m imovsp.server.openapi docs/openapi.json

clean: ## Remove caches, test output and the virtualenvs (models stay)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
