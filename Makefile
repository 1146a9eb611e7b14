# Two commands for a fresh machine (see README.md):
#   make book   build the site into _build/html
#   make test   unit tests, the book built with warnings as errors, every chapter re-executed by nbval
# Each creates .venv from requirements.txt by itself.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One thread: CPU results are then bitwise identical run after run (nbval compares outputs).
export OMP_NUM_THREADS := 1
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test unit notebooks-check robustness-check browser-check chapter notebooks bench clean

MATHJAX := _build/mathjax/.version

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# MathJax 3.2.2 from the npm registry (sha256-pinned tarball), for a site that works offline.
$(MATHJAX): scripts/fetch_mathjax.sh
	bash scripts/fetch_mathjax.sh

# Every chapter is executed afresh, two kernels at a time, into the execution cache that the
# build then reads (Jupyter Book alone executes one chapter after the other).
book: $(STAMP) $(MATHJAX)
	$(BIN)/python scripts/preexecute.py --jobs 2
	$(BIN)/jupyter-book build . --all -W -n --keep-going

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -p no:cacheprovider

# Strict nbval on the notebooks the build executed: the text the site shows must reproduce exactly.
notebooks-check: $(STAMP)
	notebooks="$$($(BIN)/python scripts/executed_notebooks.py)"; \
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
	    -n 2 --dist loadfile $$notebooks

# Every built page in headless Chromium: console errors, HTTP errors, requests leaving the site,
# broken images, untypeset math, solutions not collapsed; plus an href/src/#anchor check of the
# whole site. Screenshots in _build/screenshots/. Without Chromium: fails if CI=true, else skips loudly.
browser-check: $(STAMP)
	$(BIN)/python scripts/browser_check.py _build/html

# Every chapter again on other random draws (COMPANION_SEED_OFFSET=1000) with other float32
# kernels (MKL_CBWR=COMPATIBLE, ATEN_CPU_CAPABILITY=default): its assertions must still hold.
robustness-check: $(STAMP)
	$(BIN)/python scripts/robustness_check.py --jobs 2

test: unit book notebooks-check robustness-check browser-check

# For authors: execute and time one chapter without building the book, e.g. make chapter CH=book/part1/01_exploding_vanishing.md
chapter: $(STAMP)
	$(BIN)/python scripts/run_chapter.py $(CH)

# For readers: every chapter as a plain .ipynb in notebooks/, runnable in any Jupyter with the companion installed.
notebooks: $(STAMP)
	mkdir -p notebooks
	for f in $$(find book -name '*.md' | sort); do \
	    grep -q '^```{code-cell}' $$f || continue; \
	    out=$${f#book/}; out=$${out//\//_}; \
	    $(BIN)/jupytext --quiet --to ipynb --output notebooks/$${out%.md}.ipynb $$f; \
	done
	@echo "Notebooks written to notebooks/ (run them with the companion installed: pip install -e .)"

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f; done

clean:
	rm -rf _build notebooks
