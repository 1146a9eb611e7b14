# Two commands for a fresh machine (see README.md for the prerequisites and every target):
#   make book   build the site into _build/html (does nothing if _build/book.key matches the sources; FORCE=1 rebuilds)
#   make test   unit tests, the book (reused when up to date), catalogues, nbval, robustness and browser checks
# Each creates .venv from requirements.txt by itself.
# TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the CPU build of torch (no CUDA) first.

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
# A clean IPython profile for every kernel make starts (no ~/.ipython start-up files); its only
# setting silences ipykernel's "running over TCP without encryption" warning, one per kernel.
export IPYTHONDIR := $(CURDIR)/_build/ipython
IPYTHON_CONFIG := _build/ipython/profile_default/ipython_kernel_config.py
TORCH_INDEX ?=
FORCE ?= 0

.PHONY: book test unit catalogues-check catalogues notebooks-check robustness-check browser-check chapter notebooks wheel bench clean

MATHJAX := _build/mathjax/.version

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if [[ -n "$(TORCH_INDEX)" ]]; then \
	    $(BIN)/python -m pip install --quiet "$$(grep '^torch==' requirements.txt)" --index-url "$(TORCH_INDEX)"; \
	fi
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(IPYTHON_CONFIG):
	mkdir -p $(@D)
	echo 'c.IPKernelApp.log_level = "ERROR"' > $@

# MathJax 3.2.2 from the npm registry (sha256-pinned tarball), for a site that works offline.
$(MATHJAX): scripts/fetch_mathjax.sh
	bash scripts/fetch_mathjax.sh

# Every chapter is executed afresh, two kernels at a time, into the execution cache that the
# build then reads (Jupyter Book alone executes one chapter after the other). The build also
# makes the companion wheel and the reader notebooks (book/_ext). Then, from the same cache
# (nothing executed again): the translation templates (_build/gettext) and the Chinese
# edition (_build/html/zh), both with warnings as errors (scripts/build_edition.py). Skipped when _build/book.key
# holds the hash of the current sources (scripts/build_key.py): the hash of the sources as they
# were when the build started, written only after it succeeded; FORCE=1 rebuilds anyway.
book: $(STAMP) $(MATHJAX) $(IPYTHON_CONFIG)
	if [[ "$(FORCE)" != 1 ]] && $(BIN)/python scripts/build_key.py --check; then \
	    echo "make book: _build/html was built from these sources (_build/book.key); FORCE=1 rebuilds"; \
	else \
	    rm -f _build/book.key; \
	    key=$$($(BIN)/python scripts/build_key.py); \
	    $(BIN)/python scripts/preexecute.py --jobs 2; \
	    $(BIN)/jupyter-book build . --all -W -n --keep-going --quiet; \
	    $(BIN)/python scripts/build_edition.py gettext zh; \
	    echo "$$key" > _build/book.key; \
	fi

unit: $(STAMP) $(IPYTHON_CONFIG)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -p no:cacheprovider

# Strict nbval on the notebooks the build executed: the text the site shows must reproduce exactly.
# (-p nbval_ipc: kernels over IPC sockets, so the two workers' kernels never race for a TCP port.)
notebooks-check: $(STAMP) $(IPYTHON_CONFIG)
	notebooks="$$($(BIN)/python scripts/executed_notebooks.py)"; \
	PYTHONPATH=scripts $(BIN)/python -m pytest -q -p no:cacheprovider -p nbval_ipc --nbval --nbval-current-env \
	    -n 2 --dist loadfile $$notebooks

# Every built page in headless Chromium driven by Playwright, one test per page: console errors,
# HTTP errors, requests leaving the site, broken images, untypeset math, solutions not collapsed;
# plus an href/src/#anchor check of the whole site. Screenshots in _build/screenshots/.
# Without Chromium: fails if CI=true, else skips loudly.
browser-check: $(STAMP)
	SITE_DIR=_build/html $(BIN)/python -m pytest scripts/test_site.py -q -p no:cacheprovider -n 2

# Every chapter again on other random draws (COMPANION_SEED_OFFSET=1000) with other float32
# kernels (MKL_CBWR=COMPATIBLE, ATEN_CPU_CAPABILITY=default): its assertions must still hold.
robustness-check: $(STAMP) $(IPYTHON_CONFIG)
	$(BIN)/python scripts/robustness_check.py --jobs 2

# The Chinese edition's catalogues against the templates of the current sources: fails on an
# untranslated, fuzzy or stale message, lost markup, or a glossary term not used (locales/).
catalogues-check: book
	$(BIN)/python scripts/catalogues.py check

# For translators: merge the current English into locales/ (new sentences untranslated,
# changed ones fuzzy), then translate them (see CONTRIBUTING.md, "Translating").
catalogues: book
	$(BIN)/python scripts/catalogues.py update

test: unit book catalogues-check notebooks-check robustness-check browser-check

# For authors: execute and time one edited chapter, then update the site around it (an incremental
# build that finds the chapter already executed: seconds), e.g.
#   make chapter CH=book/part1/01_exploding_vanishing.md        (SITE=0: only execute and time it)
chapter: $(STAMP) $(IPYTHON_CONFIG)
	test -n "$(CH)" || { echo "usage: make chapter CH=book/partN/NN_slug.md [SITE=0]" >&2; exit 2; }
	$(BIN)/python scripts/chapter_site.py $(CH) $(if $(filter 0,$(SITE)),--no-site,)

# For readers: every chapter as a plain .ipynb in notebooks/ (the same files the site offers):
# the build's numbers in the text, plain Markdown, no myst_nb; runs in any Jupyter with only the
# companion installed (pip install -e . or the wheel).
notebooks: book
	$(BIN)/python scripts/reader_notebooks.py --out notebooks

# The companion's wheel (gradreg-companion) into _build/wheel/; `make book` also puts it on the site.
wheel: $(STAMP)
	$(BIN)/python scripts/build_wheel.py

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f; done

clean:
	rm -rf _build notebooks
