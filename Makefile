# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
VENV := .venv
STAMP := $(VENV)/.bootstrapped
ROOT ?= beamline_runs
PIPELINE ?= penguin

.PHONY: run test test-fast services lint docs lock bench clean flink-fetch flink-up flink-down

$(STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

run: $(STAMP)
	$(VENV)/bin/beamline run $(PIPELINE) --root $(ROOT)

# What the tests need besides the virtualenv: MariaDB (shared-store tests) and Chromium +
# chromedriver (HTML report in a real browser). Both scripts are idempotent; `.ci/run` is `make test`.
services:
	bash .ci/mariadb.sh >/dev/null
	bash .ci/browser.sh

# The local Flink cluster for `--beam flink` (beamline/flink/): the pinned Beam runner jar (Maven)
# and Flink (pip) are fetched once into $BEAMLINE_FLINK_HOME (default ~/.cache/beamline/flink);
# `make test` fetches them first, so the Flink tests find them on a fresh machine.
flink-fetch: $(STAMP)
	$(VENV)/bin/beamline flink fetch

flink-up: $(STAMP)
	$(VENV)/bin/beamline flink up

flink-down: $(STAMP)
	$(VENV)/bin/beamline flink down

test: $(STAMP) services flink-fetch
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(MAKE) docs
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

# The documentation site (mkdocs.yml, docs/) into site/ (git-ignored). --strict: a broken link,
# a page missing from the docs directory or a docstring mkdocstrings cannot render fails it
# (NO_MKDOCS_2_WARNING: Material prints a banner about MkDocs 2.0 on every build otherwise).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock:
	.tools/bin/uv pip compile pyproject.toml --extra dev --extra airflow --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/pipeline_e2e.py

clean:
	rm -rf $(ROOT) site
