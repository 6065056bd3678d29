# Entry points for a fresh machine (see README.rst):
#   make demo   - cluster scikit-learn's digits with every estimator, print a table
#   make test   - run the test suite
#   make lint   - check the code with ruff (settings in pyproject.toml)
#   make test-oldest - run the test suite against the oldest dependencies
#                  pyproject.toml admits, in .venv-oldest
# Each builds a virtual environment in .venv with the CPU build of PyTorch first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build: an unpinned "torch" pulls a multi-GB CUDA build, and on Linux
# so does a pinned one from PyPI alone. PyTorch's CPU index holds the "+cpu"
# build, which pip prefers to PyPI's of the same version. It is an extra
# index, so a machine that cannot reach it still installs from PyPI (or from
# a local wheel), and is asked for torch alone, not for its dependencies;
# TORCH_INDEX= leaves it out.
TORCH ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test test-oldest lint test-slow docs docs-fast bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps \
		$(if $(TORCH_INDEX),--extra-index-url "$(TORCH_INDEX)") "$(TORCH)"
	$(BIN)/python -m pip install --quiet "$(TORCH)"  # its dependencies, from PyPI
	$(BIN)/python -m pip install --quiet -e ".[tests]"
	touch $@

$(VENV)/.docs-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[tests,docs]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py

# Two pytest workers with one thread each: the test networks are tiny, so two
# processes use two cores better than one process with two threads.
test: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -m "not slow" -n 2

# The same suite on the oldest releases pyproject.toml admits
# (.ci/oldest-requirements.txt), so that its lower bounds stay true. Built in a
# virtual environment of its own. PyTorch comes from its CPU index where that
# can be reached; PyPI holds only the CUDA build of that release (about 4 GB
# with the CUDA libraries it pulls in), which runs on the CPU too.
VENV_OLDEST ?= .venv-oldest
TORCH_OLDEST := $(shell grep '^torch==' .ci/oldest-requirements.txt)

$(VENV_OLDEST)/.installed: pyproject.toml .ci/oldest-requirements.txt
	$(PYTHON) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_OLDEST)/bin/python -m pip install --quiet --no-deps \
		$(if $(TORCH_INDEX),--extra-index-url "$(TORCH_INDEX)") "$(TORCH_OLDEST)"
	$(VENV_OLDEST)/bin/python -m pip install --quiet -r .ci/oldest-requirements.txt
	$(VENV_OLDEST)/bin/python -m pip install --quiet -e ".[tests]" \
		-c .ci/oldest-requirements.txt
	touch $@

test-oldest: $(VENV_OLDEST)/.installed
	OMP_NUM_THREADS=1 $(VENV_OLDEST)/bin/python -m pytest -m "not slow" -n 2

lint: $(VENV)/.installed
	$(BIN)/python -m ruff check skdeepcluster tests benchmarks examples doc/conf.py
	$(BIN)/python -m ruff format --check skdeepcluster tests benchmarks examples doc/conf.py

# Quality tests on real MNIST (../shared/data); several minutes.
test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -m slow

docs: $(VENV)/.docs-installed
	$(BIN)/python -m sphinx -W --keep-going -b html doc doc/_build/html

# Same build, warnings as errors, but only the quick-start gallery example is
# executed (the others are rendered without their output): a quick check
# while editing. CI builds the full documentation (make docs).
docs-fast: $(VENV)/.docs-installed
	SKDC_DOCS_GALLERY=plot_quickstart $(BIN)/python -m sphinx -W --keep-going -b html doc doc/_build/html-fast

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py --dataset mnist-test --seeds 0 1 2

clean:
	rm -rf $(VENV) $(VENV_OLDEST) doc/_build doc/auto_examples doc/generated
