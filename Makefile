# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
VENV := .venv
STAMP := $(VENV)/.bootstrapped
ROOT ?= beamline_runs
PIPELINE ?= penguin

.PHONY: run test test-fast services lint lock bench clean

$(STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

run: $(STAMP)
	$(VENV)/bin/beamline run $(PIPELINE) --root $(ROOT)

# What the tests need besides the virtualenv: MariaDB (shared-store tests) and Chromium +
# chromedriver (HTML report in a real browser). Both scripts are idempotent; `.ci/run` is `make test`.
services:
	bash .ci/mariadb.sh >/dev/null
	bash .ci/browser.sh

test: $(STAMP) services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest -ra $(PYTEST_ARGS)

# The developer's loop: everything but the slow end-to-end tier (markers `e2e` and `slow`,
# docs/guides/testing.md). CI and `make test` run every test.
test-fast: $(STAMP) services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest -ra -m "not e2e and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock:
	.tools/bin/uv pip compile pyproject.toml --extra dev --extra airflow --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/pipeline_e2e.py

clean:
	rm -rf $(ROOT)
