# eventtrigger without Docker: local MariaDB + Kafka under .local/, then the app or tests.
PYTHON ?= python3
DEV_API_KEY ?= dev-key-change-me

.PHONY: install services services-stop migrate run test test-unit lint fmt bench clean

install: .local/.deps-installed

# Reinstall only when the dependency list changes.
.local/.deps-installed: pyproject.toml
	@mkdir -p .local
	@$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v -e '^WARNING: Running pip as' -e '^\[notice\]' || true
	@$(PYTHON) -c "import eventtrigger, starlette, asyncmy, aiokafka, pytest" && touch $@

services:
	@bash scripts/services.sh
	@bash scripts/browser.sh

services-stop:
	@bash scripts/services-stop.sh

migrate: install services
	@eventtrigger migrate

# The dev key is printed so the curl examples in the README work as they are.
run: install services migrate
	@echo "API key for this run: $${EVENTTRIGGER_API_KEYS:-$(DEV_API_KEY)}"
	EVENTTRIGGER_API_KEYS="$${EVENTTRIGGER_API_KEYS:-$(DEV_API_KEY)}" eventtrigger run --roles=all

test: install services
	$(PYTHON) -m pytest -q

test-unit: install
	$(PYTHON) -m pytest -q tests/unit

lint: install
	ruff check .
	ruff format --check .
	mypy

fmt: install
	ruff format .
	ruff check --fix .

# Firing precision under a burst, webhook throughput, memory; report in bench/results/.
bench: install services
	$(PYTHON) -m bench.run

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache *.egg-info
