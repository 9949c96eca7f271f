# imovsp — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --locked --all-extras

.PHONY: help install serve train test lint typecheck unit bench bench-batch bench-api bench-soak openapi clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## Create .venv with the locked runtime and dev dependencies (and every extra)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked --all-extras

serve: install ## Run the valuation service on the current model (trains one first if none)
	$(RUN) imovsp serve

train: install ## Train a new model on IMOVSP_DATA and make it current
	$(RUN) imovsp train

lint: install ## ruff lint and format check
	$(RUN) ruff check src tests benchmarks
	$(RUN) ruff format --check src tests benchmarks

typecheck: install ## mypy (strict) on the package
	$(RUN) mypy

unit: install ## pytest
	$(RUN) pytest

test: lint typecheck unit ## Everything CI runs: lint, types, tests

bench: install ## Benchmarks (see docs/benchmarks.md)
	$(RUN) python benchmarks/core.py

bench-batch: install ## Batch scoring benchmark: 1M rows, both engines (see docs/benchmarks.md)
	$(RUN) python benchmarks/batch.py

bench-api: install ## HTTP load test against the bare stack and the old one (needs wrk)
	$(RUN) python benchmarks/api.py --json /tmp/imovsp-bench-api.json

bench-soak: install ## Soak (5 min at 256 connections) and a worker killed under load (needs wrk)
	$(RUN) python benchmarks/soak.py --json /tmp/imovsp-bench-soak.json

openapi: install ## Regenerate docs/openapi.json from the app
	$(RUN) python -m imovsp.api.openapi docs/openapi.json

clean: ## Remove caches and the virtualenv (models stay)
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
