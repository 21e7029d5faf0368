# Two entry points, each building its own environment in .venv on first use:
#   make dashboard   the dashboard on the bundled sample results (the sample study is built into
#                    sample_data/study on first use, about a minute)
#   make test        the whole test suite
# torch 2.13.0 (CPU) is installed first when the environment has no torch, so no CUDA build is pulled.

VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
PORT   ?= 8501

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: setup dashboard study test demo bench
setup: $(VENV)/.installed

dashboard: study
	$(VENV)/bin/jne dashboard --port $(PORT)

study: $(VENV)/.installed
	test -f sample_data/study/study.json || $(VENV)/bin/jne demo --study --out sample_data/study

test: $(VENV)/.installed
	$(PY) -m pytest -ra

demo: $(VENV)/.installed
	$(VENV)/bin/jne demo --out sample_data/sample --simulations --overwrite

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_jne.py
