# make run  — set up the virtualenv, migrate, seed demo accounts, start web + worker (embedded default)
# make test — run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint install install-test browser axe

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama-cpp-python (requirements/notes-llm.txt) has no wheel on PyPI: it is built here with cmake,
# portable (GGML_NATIVE=OFF, no -march=native) and without AMX, whose kernels segfault on these
# machines. AVX2 always; AVX-512 (and its VNNI/VBMI/BF16 parts) where the building machine has it:
# prompt reading 63-70 -> 90-94 tokens/s on 2 cores of an AMD EPYC, generation unchanged
# (docs/notes.md). The wheel is kept per set of flags in LLAMA_WHEELS and reused on the next
# install; it runs only on CPUs with what it was built for, so build it on the ml machine itself
# (or set LLAMA_AVX512= to leave AVX-512 out).
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(filter $(1),$(CPU_FLAGS))
LLAMA_AVX512 ?= $(if $(and $(call has,avx512f),$(call has,avx512bw),$(call has,avx512vl),$(call has,avx512dq)),\
	-DGGML_AVX512=ON $(if $(call has,avx512_vnni),-DGGML_AVX512_VNNI=ON) \
	$(if $(call has,avx512vbmi),-DGGML_AVX512_VBMI=ON) $(if $(call has,avx512_bf16),-DGGML_AVX512_BF16=ON))
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
	-DLLAVA_BUILD=OFF $(strip $(LLAMA_AVX512))
LLAMA_REQ := $(shell grep -m1 '^llama-cpp-python==' requirements/notes-llm.txt)
LLAMA_WHEELS ?= $(HOME)/.cache/telehealth/wheels/$(shell echo '$(LLAMA_REQ) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-16)

$(VENV)/.installed: $(BIN)/python requirements.txt $(wildcard requirements/*.txt)
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 \
		|| CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL="$$(nproc)" \
			$(BIN)/pip wheel --quiet --no-deps --no-cache-dir -w $(LLAMA_WHEELS) "$(LLAMA_REQ)"
	$(BIN)/pip install --quiet --find-links $(LLAMA_WHEELS) -r requirements.txt
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
