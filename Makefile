# Two commands do all set-up on a fresh machine:
#   make reproduce   create .venv if missing, install, re-run every DVC stage (cpu profile)
#   make test        same venv, pytest (unit tests + a smoke `dvc repro` of the whole pipeline)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS ?= 1
PIP_FLAGS ?= -qq --disable-pip-version-check  # -qq: errors only (this machine's pip config warns per index)

.PHONY: install reproduce test status mp-refresh clean-venv

# GPAW (epdi) compiles against these Debian packages; installed only when one is missing.
SYS_PKGS := libxc-dev libopenblas-dev libopenmpi-dev
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)

.PHONY: system-deps
system-deps:
	@dpkg -s $(SYS_PKGS) >/dev/null 2>&1 || { \
	  echo "installing $(SYS_PKGS) (needed to build GPAW)"; \
	  $(SUDO) apt-get install -y -qq $(SYS_PKGS) >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(SYS_PKGS) >/dev/null; } || \
	  { echo "could not install $(SYS_PKGS): install them (Debian/Ubuntu) or use environment.yml (conda-forge gpaw)"; exit 1; }; }

$(STAMP): pyproject.toml constraints.txt | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
# constraints.txt: the exact versions of every package (pip freeze), so numbers do not move with a new release
	$(BIN)/python -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[test,peers]'
# CrabNet (lgdcnn peer): --ignore-requires-python since the wheel's metadata says <3.11 but its code runs on 3.11 (checked by tests/test_lgdcnn_peers.py)
	$(BIN)/python -m pip install $(PIP_FLAGS) --no-deps --ignore-requires-python crabnet==2.0.8
	@touch $(STAMP)

install: $(STAMP)

# --force: re-execute every stage instead of trusting the committed outputs.
reproduce: $(STAMP)
	dvc repro --force
	python -m matrepro.report
	dvc status

test: $(STAMP)
	python -m pytest

status: $(STAMP)
	dvc status
	dvc metrics show --md

# Frozen Materials Project refresh: needs network and MP_API_KEY; never run in CI.
mp-refresh: $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[mp,test]'
	python -m matrepro.papers.capnet.mp_refresh --out data/mp_refresh/li_electrodes_symmetry.csv

clean-venv:
	rm -rf $(VENV)
