# eventtrigger without Docker: local MariaDB + Kafka under .local/, then the app or tests.
# Everything Python runs from .venv (made here from the system's python3), never the
# system pip: Debian's own Python refuses system-wide installs (PEP 668).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEV_API_KEY ?= dev-key-change-me

.PHONY: install services services-stop migrate run test test-unit lint fmt bench \
	compose-check docs docs-check reference screenshots client-wheel clean

install: $(VENV)/.deps-installed

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list changes; a failed install stops here with pip's
# own error.
$(VENV)/.deps-installed: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(PY) -c "import eventtrigger, starlette, asyncmy, aiokafka, pytest"
	@touch $@

services:
	@bash scripts/services.sh

services-stop:
	@bash scripts/services-stop.sh

migrate: install services
	@$(VENV)/bin/eventtrigger migrate

# The dev key is used only when neither the environment nor .env names one, so the curl
# examples of docs/getting-started.md work with a known key and a key in .env is honoured.
run: install services migrate
	@if [ -z "$${EVENTTRIGGER_API_KEYS:-}" ] && ! grep -qs '^ *EVENTTRIGGER_API_KEYS=' .env; then \
		echo "API key for this run: $(DEV_API_KEY) (set EVENTTRIGGER_API_KEYS in .env for your own)"; \
		export EVENTTRIGGER_API_KEYS=$(DEV_API_KEY); \
	fi; \
	exec $(VENV)/bin/eventtrigger run --roles=all

# Tests also need Debian's Chromium (the console's browser tests) and a few command-line
# tools (scripts/test-tools.sh); `run` does not.
test: install services
	@bash scripts/browser.sh
	@bash scripts/test-tools.sh
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Users' conditions: the platform and the HTTP sink in their own processes; report in
# bench/results/. BENCH_ARGS="--only S1,S4 --scale 0.1" for a quick run.
bench: install services
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| echo "wrk could not be installed: S4 falls back to Python clients (slower)"
	$(PY) -m bench.run $(BENCH_ARGS)

# Long fault runs (Kafka/MariaDB outages under load, kill -9, endpoint chaos, fuzzing)
# against servers the tests start themselves; report in bench/results/chaos-<date>.md.
.PHONY: chaos
chaos: install
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# The Docker path, proven: images, `docker compose up`, the walkthrough of the README and
# the docs, scaling, the test suite in containers, `down -v`.
compose-check:
	@bash scripts/compose-check.sh

# The documentation site (mkdocs.yml, pages under docs/): served with live reload, or built
# as CI builds it, where a broken link, anchor or nav entry is an error. The build goes to
# site/ (git-ignored).
# (NO_MKDOCS_2_WARNING: Material's end-of-life banner, not a finding about the pages.)
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve -a 127.0.0.1:8000

docs-check: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --clean --site-dir site

# The generated reference pages (configuration, CLI, HTTP API, metrics, Kafka message) from
# the code, so they cannot drift from it.
reference: install
	$(PY) scripts/gen_reference.py

# The console screenshots in docs/console, from a real run with failures, retries and
# replays against a private database (needs Chromium: scripts/browser.sh; ~4 minutes).
screenshots: install services
	bash scripts/browser.sh
	$(PY) scripts/screenshots.py

# The client alone (eventtrigger-client: no server dependencies) as a wheel in dist/.
client-wheel: install
	$(PY) -m pip wheel --no-deps -q -w dist clients/python

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache *.egg-info site
