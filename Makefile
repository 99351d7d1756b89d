# Two commands a user needs: `make demo` and `make test`. Both install what they need first.
# For changes: `make lint` (CI runs it before `make test`) and `make format`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export UV_CACHE_DIR ?= $(CURDIR)/.cache/uv
# PYTHONDONTWRITEBYTECODE is set on some machines: compile at install time or every import of airflow pays ~2 s.
export UV_COMPILE_BYTECODE := 1
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__UNIT_TEST_MODE := False

.PHONY: install browser services lint format test compat compat-hub2 unit demo bench bench-smoke lock clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.installed: $(BIN)/uv requirements/lock.txt pyproject.toml
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Formatting, lint and types, as CI checks them (run `make format` to apply the formatter and safe fixes).
lint: install
	$(BIN)/ruff format --check --diff .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian's chromium for the UI test (Playwright drives it; no browser download). Needs root, as on CI.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's redis-server and PostgreSQL binaries for the Celery topology test (it runs its own). Needs root, as on CI.
services:
	@bash scripts/services.sh

# The whole suite, against a throw-away AIRFLOW_HOME with a migrated SQLite DB.
test: install browser services
	@export AIRFLOW_HOME=$$(mktemp -d -t hfep-airflow-XXXXXX) && \
	  $(BIN)/airflow db migrate > $$AIRFLOW_HOME/migrate.log 2>&1 && \
	  PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS); \
	  status=$$?; rm -rf $$AIRFLOW_HOME; exit $$status

# The built wheel on every Airflow 3 that users run (3.0.6 to 3.3.2, MWAA's and Composer's pins, and 3.4
# on Python 3.12 and 3.13): a fresh environment per target, installed with pip as the service installs;
# see tests/compat/run.py. First, the huggingface_hub judges with huggingface_hub 2.x (below).
compat: install compat-hub2
	$(BIN)/python tests/compat/run.py

# The tests that drive the real huggingface_hub client (marker huggingface_hub: conformance, body parity,
# real clients, catalog) with its 2.x line too. The lock holds 1.x (the test extra pins it), so they run
# in an environment of their own: the lock, with requirements/hub2-override.txt's huggingface_hub.
# Without compiled bytecode: these few tests import less than compiling costs (46 s against 102 s).
HUB2 := .cache/huggingface-hub-2
$(HUB2)/.installed: $(BIN)/uv requirements/lock.txt requirements/hub2-override.txt pyproject.toml
	rm -rf $(HUB2)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(HUB2)
	UV_COMPILE_BYTECODE=0 $(BIN)/uv pip install --quiet --python $(HUB2)/bin/python \
	  -r requirements/lock.txt --override requirements/hub2-override.txt
	UV_COMPILE_BYTECODE=0 $(BIN)/uv pip install --quiet --python $(HUB2)/bin/python --no-deps -e .
	touch $@

compat-hub2: $(HUB2)/.installed
	@$(HUB2)/bin/python -c 'import huggingface_hub as h; print("huggingface_hub", h.__version__)'
	@export AIRFLOW_HOME=$$(mktemp -d -t hfep-airflow-XXXXXX) && \
	  $(HUB2)/bin/python -m pytest -m huggingface_hub $(PYTEST_ARGS) tests/integration; \
	  status=$$?; rm -rf $$AIRFLOW_HOME; exit $$status

unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# The main job: the example DAG hf_nightly_batch, end to end, with `airflow dags test` against the emulator.
demo: install
	$(BIN)/python scripts/demo.py

# Every script in benchmarks/: a new one runs in `make bench` and `make bench-smoke` without being listed.
BENCHMARKS := $(sort $(wildcard benchmarks/*.py))
# The longest smoke runs first (a real `airflow standalone`, mostly waiting, then the ones with many
# processes), the short ones at the end to fill the slots.
BENCH_SMOKE_FIRST := $(addprefix benchmarks/,worker_slot_seconds.py results_store.py batch_throughput.py engines_throughput.py)
BENCH_SMOKE := $(filter $(BENCHMARKS),$(BENCH_SMOKE_FIRST)) $(filter-out $(BENCH_SMOKE_FIRST),$(BENCHMARKS))
BENCH_SMOKE_JOBS ?= 3

# The figures: every benchmark in full, one at a time (minutes), against a throw-away AIRFLOW_HOME.
bench: install
	@export AIRFLOW_HOME=$$(mktemp -d -t hfep-bench-home-XXXXXX) && status=0 && \
	  for script in $(BENCHMARKS); do \
	    echo "== $$script"; PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python $$script || { status=$$?; break; }; \
	  done; \
	  rm -rf $$AIRFLOW_HOME; exit $$status

# That no benchmark rots (CI runs it): every script with --smoke, the same code paths at tiny sizes, no
# figure judged; three at a time, each one's output printed whole when it ends (75 s on two idle cores).
bench-smoke: install
	@export AIRFLOW_HOME=$$(mktemp -d -t hfep-bench-home-XXXXXX) && \
	  $(MAKE) --no-print-directory -j$(BENCH_SMOKE_JOBS) --output-sync=target $(addprefix bench-smoke/,$(BENCH_SMOKE)); \
	  status=$$?; rm -rf $$AIRFLOW_HOME; exit $$status

bench-smoke/%:
	@started=$$(date +%s) && echo "== $* --smoke" && PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python $* --smoke && \
	  echo "== $* --smoke: done in $$(( $$(date +%s) - started )) s"

lock: $(BIN)/uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-emit-package airflow-provider-hfep \
	  requirements/lock.in -o requirements/lock.txt

clean:
	rm -rf $(VENV) .cache .pytest_cache
