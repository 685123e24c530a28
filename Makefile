# make run  — set up the virtualenv, migrate, seed demo accounts, start web + worker (embedded default)
# make test — run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install install-test browser axe

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama-cpp-python (requirements/notes-llm.txt) has no wheel on PyPI: pip builds it with cmake,
# portable (GGML_NATIVE=OFF: AVX2, no -march=native) and without AMX, whose kernels segfault on
# these machines. pip caches the built wheel and reuses it on the next install. A deployment whose
# ml machines all have AVX-512 may add -DGGML_AVX512=ON (not measured here).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF

$(VENV)/.installed: $(BIN)/python requirements.txt $(wildcard requirements/*.txt)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL="$$(nproc)" \
		$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements/test.txt
	$(BIN)/pip install --quiet -r requirements/test.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start

browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

AXE_DIR := tests/browser/axe
AXE := $(AXE_DIR)/node_modules/axe-core/axe.min.js

# axe-core for the accessibility browser tests, pinned by tests/browser/axe/package-lock.json.
$(AXE): $(AXE_DIR)/package.json $(AXE_DIR)/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm >/dev/null)
	npm ci --prefix $(AXE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

axe: $(AXE)

test: install-test browser axe
	DJANGO_SETTINGS_MODULE=telehealth.settings.test $(BIN)/pytest

test-fast: install-test
	DJANGO_SETTINGS_MODULE=telehealth.settings.test $(BIN)/pytest -m "not browser and not worker and not slow"

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports
