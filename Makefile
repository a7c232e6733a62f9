# One command each: `make quick` (CPU quick profile) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Vega, Vega-Lite, Vega-Embed from package-lock.json, and the page template for `dvc plots show`
# with them inlined (written where .dvc/config's plots.html_template says).
NODE_STAMP := node_modules/.installed
PAGE_STAMP := node_modules/.cache/mobilenet-study/.written
# Where CIFAR-10 comes from; empty keeps params.yaml's data.source.
DATA ?=
# Scaling out (docs/scaling-out.md): which profile the shards train, which shard, how many.
PROFILE ?= full
SHARD ?=
N ?= 2
PIPELINE := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mobilenet_study.commands
DATA_ARG := $(if $(DATA),--data "$(DATA)")

.PHONY: setup setup-browser test lint quick cpu repro status results shard assemble shards plots clean

setup: $(STAMP) $(PAGE_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NODE_STAMP)

$(PAGE_STAMP): $(STAMP) $(NODE_STAMP) src/mobilenet_study/plots_page.py .dvc/config
	$(BIN)/python -m mobilenet_study.plots_page
	touch $(PAGE_STAMP)

# Headless Chromium for tests/test_plots_offline.py, from Debian (needs root). Never fails: without
# a browser (apt unreachable, not root) that test skips and says why.
setup-browser:
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends chromium; } || \
		echo "setup-browser: could not install chromium; tests/test_plots_offline.py will skip"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The slow tests spend most of their time starting processes: one worker per core, each
# process on one thread (tiny models; several threads per process would only contend).
test: lint setup-browser
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q --numprocesses auto --dist loadscope

quick: setup
	$(PIPELINE) quick $(DATA_ARG)

# The study answered on a 2-core CPU (results/cpu/ holds a finished run's outcome).
cpu: setup
	$(PIPELINE) cpu $(DATA_ARG)

repro: setup
	$(PIPELINE) full $(DATA_ARG)

# Which training runs of the grid in params.yaml (as a running or stopped profile left it) are
# done, which is in progress (epoch, step) and how much is left.
status: setup
	$(BIN)/python -m mobilenet_study.status

# A finished run's report, tables, figures, params, commit, machine and wall time, copied to
# results/$(PROFILE)/ (and, for the cpu profile, its summary into README.md): make results PROFILE=cpu
results: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mobilenet_study.results $(PROFILE)

# make shard SHARD=i/N: train the i-th of N shards of the grid as one experiment, then push its
# outputs and run-cache to the default DVC remote. make assemble: pull them, run the rest.
shard: setup
	$(PIPELINE) shard "$(SHARD)" --profile $(PROFILE) $(DATA_ARG)

assemble: setup
	$(PIPELINE) assemble --profile $(PROFILE) $(DATA_ARG)

# make shards N=2: all N shards as queued experiments on this machine (dvc queue start -j N),
# then the pipeline, whose training stages restore from the run-cache the shards left.
shards: setup
	$(PIPELINE) shards $(N) --profile $(PROFILE) $(DATA_ARG)

# Every plot in dvc.yaml, rendered offline into dvc_plots/index.html (docs/comparing-experiments.md).
plots: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc plots show
	@echo "$(CURDIR)/dvc_plots/index.html"

clean:
	rm -rf $(VENV) node_modules
