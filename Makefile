# The README's commands. Every target creates .venv and installs the project on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test dev bench screenshots lint clean

$(STAMP): pyproject.toml .ci/install-project
	test -x $(BIN)/pip || $(PY) -m venv $(VENV)  # a half-made .venv (no venv module at first) is made again
	.ci/install-project  # uv, or pip where the machine's pip configuration or uv's failure says so
	.ci/system-deps
	touch $(STAMP)

run: $(STAMP)  ## the nightly job for today on data/valuecredit.duckdb (simulates data/landing if empty)
	$(BIN)/valuecredit run

# -n auto: one test worker more than cores (tests/conftest.py says why); PYTEST_XDIST_AUTO_NUM_WORKERS sets another count
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n auto --dist loadfile --no-loadscope-reorder --durations=15

# the UI reads the instance `valuecredit run` records its nights in (data/dagster_home); it starts in
# that folder, beside its dagster.yaml, with every path the definitions need made absolute
dev: $(STAMP)  ## the Dagster UI with the nightly schedule and every night's history, on http://127.0.0.1:3000
	mkdir -p data/dagster_home && cp dagster.yaml data/dagster_home/dagster.yaml
	cd data/dagster_home && DAGSTER_HOME=$(CURDIR)/data/dagster_home VALUECREDIT_DB=$(CURDIR)/data/valuecredit.duckdb \
		VALUECREDIT_LANDING=$(CURDIR)/data/landing VALUECREDIT_REPORTS=$(CURDIR)/build/reports \
		$(CURDIR)/$(BIN)/dagster dev -m pipelines.definitions

bench: $(STAMP)  ## provincial-scale benchmarks, results in benchmarks/results/ (not run by CI)
	$(BIN)/python -m benchmarks.ingest
	$(BIN)/python -m benchmarks.indicators
	$(BIN)/python -m benchmarks.ledger
	$(BIN)/python -m benchmarks.model
	$(BIN)/python -m benchmarks.ceiling --db benchmarks/work/bench.duckdb --landing benchmarks/work/landing
	$(BIN)/python -m benchmarks.eligibility
	$(BIN)/python -m benchmarks.preview
	$(BIN)/python -m benchmarks.reports
	$(BIN)/python -m benchmarks.store_growth
	$(BIN)/python -m benchmarks.nightly
	$(BIN)/python -m benchmarks.incremental
	$(BIN)/python -m benchmarks.publication --db benchmarks/work/incremental/incremental/night.duckdb --base 2026-11-28 --date 2026-11-29
	$(BIN)/python -m benchmarks.audit --db benchmarks/work/incremental/incremental/night.duckdb --date 2026-11-29
	$(BIN)/python -m benchmarks.partitions
	$(BIN)/python -m benchmarks.results_md  # benchmarks/RESULTS.md from the result files

screenshots: $(STAMP)  ## docs/screenshots/: a firm report, the portfolio report and Dagster's asset page, from `make run`'s store
	$(BIN)/python docs/screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf data build benchmarks/work
