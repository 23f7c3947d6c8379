# Three commands cover a fresh machine: `make run`, `make serve` and `make test`.
VENV := .venv
STAMP := $(VENV)/.bootstrapped
ROOT ?= beamline_runs
PIPELINE ?= penguin
# Where `make serve` logs every request (what `beamline monitor --requests` reads).
REQUESTS ?= $(ROOT)/requests
# More `beamline serve` flags for `make serve`, e.g. SERVE_ARGS='--rest_api_port 8601 --port 8600'.
SERVE_ARGS ?=
# The tests run on this many pytest-xdist workers, whole groups of modules each
# (tests/worker_groups.py); PYTEST_WORKERS=0 runs them in this process, one after another.
PYTEST_WORKERS ?= 2
PYTEST_SPLIT := $(if $(filter 0,$(PYTEST_WORKERS)),-p no:xdist,-n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder)

.PHONY: run serve wheel test test-fast services lint docs lock bench clean flink-fetch flink-up flink-down

$(STAMP): requirements.lock pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

run: $(STAMP)
	$(VENV)/bin/beamline run $(PIPELINE) --root $(ROOT)
	@echo 'beamline is in .venv: `. .venv/bin/activate` once per shell puts it on PATH; `make serve` serves the model.'

# From a fresh clone to a model answering requests: runs the pipeline first when the run root
# holds no pushed version of it, then serves the run root (following its labels) with every
# request logged under it. The ready line gives the curl to paste; Ctrl-C stops it (the server exits 0).
serve: $(STAMP)
	@ls -d $(ROOT)/serving/$(PIPELINE)/[0-9]* >/dev/null 2>&1 \
		|| $(VENV)/bin/beamline run $(PIPELINE) --root $(ROOT)
	exec $(VENV)/bin/beamline serve --root $(ROOT) --request_log_dir $(REQUESTS) $(SERVE_ARGS)

# Beamline is not on PyPI yet: this wheel (dist/beamline_tfx-VERSION-py3-none-any.whl) is what
# another environment installs (docs/guides/your-own-project.md).
wheel: $(STAMP)
	.tools/bin/uv build --wheel --python $(VENV)/bin/python --out-dir dist

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
	$(VENV)/bin/python -m pytest $(PYTEST_SPLIT) -ra --durations=25 $(PYTEST_ARGS)

# The developer's loop: everything but the slow end-to-end tier (markers `e2e` and `slow`,
# docs/guides/testing.md). CI and `make test` run every test.
test-fast: $(STAMP) services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/python -m pytest $(PYTEST_SPLIT) -ra --durations=10 -m "not e2e and not slow" $(PYTEST_ARGS)

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
